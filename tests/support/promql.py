"""The vector selectors of a PromQL expression, read the way Prometheus's lexer splits it, without a Prometheus: what
every rendered query, alert and dashboard selects (tests/test_invariants.py checks they name the release's
namespace)."""

from __future__ import annotations

import re

PROMQL = re.compile(r'''\s*(?:(?P<string>"(?:[^"\\]|\\.)*")|(?P<braces>\{(?:[^{}"]|"(?:[^"\\]|\\.)*")*\})|'''
                    r'''(?P<range>\[[^\]]*\])|(?P<number>\d+(?:\.\d+)?(?:[eE][-+]?\d+)?)|(?P<word>[A-Za-z_:][\w:]*)|'''
                    r'''(?P<open>\()|(?P<close>\))|(?P<other>[,+\-*/%^<>=!~]+))''')
AGGREGATIONS = {"sum", "min", "max", "avg", "group", "stddev", "stdvar", "count", "count_values", "bottomk", "topk",
                "quantile", "limitk", "limit_ratio"}
KEYWORDS = AGGREGATIONS | {"by", "without", "on", "ignoring", "group_left", "group_right", "and", "or", "unless",
                           "bool", "offset", "atan2"}
GROUPING = {"by", "without", "on", "ignoring", "group_left", "group_right"}


def vector_selectors(expr: str) -> list[tuple[str, str]]:
    """Every vector selector of a PromQL expression: (metric name or '', its {matchers} or '')."""
    tokens: list[tuple[str, str]] = []
    at = 0
    while at < len(expr.rstrip()):
        found = PROMQL.match(expr, at)
        assert found and found.end() > at, f"cannot read PromQL at {expr[at:]!r}"
        kind = found.lastgroup
        assert kind is not None
        tokens.append((kind, found.group(kind)))
        at = found.end()
    out: list[tuple[str, str]] = []
    i = 0
    while i < len(tokens):
        kind, text = tokens[i]
        following = tokens[i + 1] if i + 1 < len(tokens) else ("", "")
        if kind == "word" and text in GROUPING and following[0] == "open":
            i = next(j for j in range(i, len(tokens)) if tokens[j][0] == "close")  # a label list, not selectors
        elif kind == "word" and text not in KEYWORDS and following[0] != "open":
            out.append((text, following[1] if following[0] == "braces" else ""))
            i += following[0] == "braces"
        elif kind == "braces":
            out.append(("", text))
        i += 1
    return out
