"""Read a stack spec: YAML text -> validated `Stack`, or a StackgenError naming every bad field.

Pydantic finds the errors; this module turns each into `line N: models[2].toolCalling: message (fix)`
with a "did you mean" for misspelt keys.
"""

from __future__ import annotations

import difflib
import re
import types
import typing
from collections.abc import Callable, Iterator, Sequence
from typing import Any

import yaml
from pydantic import BaseModel, ValidationError

from .engines import ENGINES
from .errors import Problem, StackgenError, format_path, parse_path
from .spec import Stack
from .specbase import DNS_LABEL, DNS_SUBDOMAIN, PATTERN_WORDS, QUANTITY


def load_text(text: str, source: str = "") -> Stack:
    """Parse and validate spec text; `source` names the file in messages."""
    try:
        root = yaml.compose(text, Loader=yaml.SafeLoader)
        data = yaml.safe_load(text)
    except yaml.reader.ReaderError as exc:
        char = exc.character if isinstance(exc.character, str) else chr(exc.character)
        at_line = text.count("\n", 0, exc.position) + 1
        raise StackgenError([Problem("", f"character #x{ord(char):04x} is not allowed in a YAML file",
                                     "remove it, or write it as an escape inside double quotes", at_line)], source) from None
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        problem = " ".join(str(getattr(exc, "problem", None) or exc).split())  # one line, as every message
        line = mark.line + 1 if mark else None
        column = f"column {mark.column + 1}" if mark else ""
        raise StackgenError([Problem(column, f"YAML syntax: {problem}", "fix the indentation or quoting there", line)],
                            source) from None
    if not isinstance(data, dict):
        raise StackgenError([Problem("", "a stack spec is a YAML mapping (name:, models:, ...)",
                                     "start from `stackgen init`")], source)
    try:
        duplicates = list(_duplicate_keys(root, []))
        if duplicates:
            raise StackgenError(duplicates, source)
        return Stack.model_validate(data)
    except ValidationError as exc:
        raise StackgenError(_problems(exc, data, root) + _beside(exc, data, root), source) from None
    except RecursionError:
        # An alias inside its own anchor (`a: &x [*x]`) makes a structure without end.
        raise StackgenError([Problem("", "the YAML refers to itself: an alias (*name) inside its own anchor (&name)",
                                     "write the repeated part out, or anchor a finished mapping")], source) from None


def _duplicate_keys(node: yaml.Node | None, at: list[str | int]) -> Iterator[Problem]:
    """YAML keeps the last of two equal keys and drops the first without a word: refuse both instead."""
    if isinstance(node, yaml.MappingNode):
        seen: dict[str, int] = {}
        for key, value in node.value:
            name = str(key.value)
            if name in seen:
                yield Problem(format_path([*at, name]), f"{name!r} is given twice (also line {seen[name]}); YAML "
                              "would silently keep only this one", "remove one of them", key.start_mark.line + 1)
            seen.setdefault(name, key.start_mark.line + 1)
            yield from _duplicate_keys(value, [*at, name])
    elif isinstance(node, yaml.SequenceNode):
        for i, item in enumerate(node.value):
            yield from _duplicate_keys(item, [*at, i])


def _problems(exc: ValidationError, data: Any, root: yaml.Node | None) -> list[Problem]:
    found: list[tuple[str, Problem]] = []
    for err in exc.errors(include_url=False):
        loc = _data_loc(err["loc"], data, err["type"] == "missing")
        path = format_path(loc)
        found.append((path, Problem(path, _message(dict(err)), _fix(dict(err), loc, data), _line(root, loc))))
    # A union reports each member's complaint; a deeper error at the same place says more.
    paths = [p for p, _ in found]
    kept = [prob for p, prob in found if not any(o != p and o.startswith(p + ".") for o in paths)]
    unique: dict[str, Problem] = {}
    for prob in kept:
        unique.setdefault(prob.path, prob)
    return list(unique.values())


def _beside(exc: ValidationError, data: dict[str, Any], root: yaml.Node | None) -> list[Problem]:
    """The cross-field problems of the rest of a spec that has type errors, so that one run reports both kinds.

    The rest: the spec without each field that holds a type error (a model's field, a profile, a top-level
    section), and without a model that cannot stand without it. A problem of a model so trimmed, or one that names
    what was taken out, is left for the next run: it may be the type error's echo."""
    from .plan import check  # plan reads validated specs, never text

    if not isinstance(data.get("models"), list):
        return []
    models: list[Any] = [dict(m) if isinstance(m, dict) else m for m in data["models"]]
    origin = list(range(len(models)))  # each model's index in the spec as written
    rest: dict[str, Any] = dict(data)
    trimmed: set[int] = set()  # models with a field taken out, by their index as written
    gone: set[str] = set()  # names of profiles, sections and models taken out
    for _ in range(4):  # each round takes out more; a required top-level field ends the search
        for err in exc.errors():
            loc = _data_loc(err["loc"], {**rest, "models": models}, err["type"] == "missing")
            if loc[:1] == ["models"] and len(loc) >= 2 and isinstance(loc[1], int):
                model = models[loc[1]]
                if len(loc) >= 3 and isinstance(model, dict) and loc[2] not in ("name", "engine") \
                        and err["type"] != "missing":
                    model.pop(loc[2], None)
                    trimmed.add(origin[loc[1]])
                else:
                    models[loc[1]] = None
            elif loc[:1] == ["profiles"] and len(loc) >= 2 and isinstance(rest.get("profiles"), dict):
                rest["profiles"] = {k: v for k, v in rest["profiles"].items() if k != loc[1]}
                gone.add(str(loc[1]))
            elif loc and loc[0] not in ("name", "models") and err["type"] != "missing":
                rest.pop(str(loc[0]), None)
                gone.add(str(loc[0]))
            else:
                return []
        for i, m in enumerate(models):
            if m is not None and (not isinstance(m, dict) or str(m.get("profile")) in gone):
                models[i] = None
        written = data["models"]
        gone |= {str(written[origin[i]].get("name")) for i, m in enumerate(models)
                 if m is None and isinstance(written[origin[i]], dict)}
        origin = [origin[i] for i, m in enumerate(models) if m is not None]
        models = [m for m in models if m is not None]
        try:
            stack = Stack.model_validate({**rest, "models": models})
            break
        except ValidationError as again:
            exc = again
    else:
        return []

    def original(text: str) -> str:
        return re.sub(r"models\[(\d+)\]", lambda hit: f"models[{origin[int(hit.group(1))]}]", text)

    found = []
    for problem in check(stack):
        path = original(problem.path)
        at = path.split(".")[0]
        if at in gone or any(at == f"models[{i}]" for i in trimmed) or any(repr(name) in problem.message
                                                                            for name in gone):
            continue
        found.append(Problem(path, original(problem.message), problem.fix, _line(root, parse_path(path))))
    return found


def _data_loc(loc: Sequence[str | int], data: Any, missing: bool) -> list[str | int]:
    """Drop the parts of a pydantic location that name a union member rather than a key in the data."""
    out: list[str | int] = []
    node = data
    for i, part in enumerate(loc):
        last = i == len(loc) - 1
        if isinstance(node, dict) and part in node:  # noqa: SIM114 - the type checker narrows each branch alone
            node = node[part]
        elif isinstance(node, list) and isinstance(part, int) and part < len(node):
            node = node[part]
        elif not (missing and last) and not isinstance(part, int):
            continue  # a tag such as 'vllm' or 'SecretRef'
        out.append(part)
    return out


def line_finder(text: str) -> Callable[[str], int | None]:
    """Maps a field path such as 'models[2].profile' to its line in the spec text."""
    try:
        root = yaml.compose(text, Loader=yaml.SafeLoader)
    except yaml.YAMLError:
        return lambda path: None
    return lambda path: _line(root, parse_path(path))


def _line(root: yaml.Node | None, loc: Sequence[str | int]) -> int | None:
    node, line = root, None
    for part in loc:
        if isinstance(node, yaml.MappingNode):
            match = next((v for k, v in node.value if k.value == part), None)
            if match is None:
                return line
            key = next(k for k, v in node.value if v is match)
            node, line = match, key.start_mark.line + 1
        elif isinstance(node, yaml.SequenceNode) and isinstance(part, int) and part < len(node.value):
            node = node.value[part]
            line = node.start_mark.line + 1
        else:
            return line
    return line


def _message(err: dict[str, Any]) -> str:
    kind = err["type"]
    if kind == "extra_forbidden":
        return "unknown field"
    if kind == "missing":
        return "required field is missing"
    if kind in ("union_tag_not_found", "union_tag_invalid"):
        return f"engine must be one of: {', '.join(ENGINES)}"
    if kind == "string_pattern_mismatch":
        what = PATTERN_WORDS.get(err["ctx"]["pattern"], ("in the form this field takes", ""))[0]
        return f"{err['input']!r} is not {what}"
    message = str(err["msg"]).removeprefix("Value error, ")
    own = _OWN_FIX.match(message) if kind == "value_error" else None
    return own["message"] if own else message


def _engine_at(data: Any, loc: Sequence[str | int]) -> str | None:
    node = data
    for part in loc:
        try:
            node = node[part]
        except (KeyError, IndexError, TypeError):
            return None
    return node.get("engine") if isinstance(node, dict) else None


# What users type for a value stackgen spells otherwise: LiteLLM's provider names, the common spellings of
# the engines. Matched case-insensitively; anything else close to a known value gets a "did you mean" too.
ALIASES = {
    "together_ai": "together", "togetherai": "together", "together.ai": "together", "mistralai": "mistral",
    "mistral_ai": "mistral", "lm_studio": "openai-compatible", "lmstudio": "openai-compatible",
    "openai_compatible": "openai-compatible", "hosted_vllm": "vllm", "vllm-openai": "vllm", "ollama_chat": "ollama",
    "llama.cpp": "llamacpp", "llama-cpp": "llamacpp", "llama_cpp": "llamacpp", "llama-server": "llamacpp",
    "llamaserver": "llamacpp", "openai-compat": "openai-compatible",
}
# Common ways of naming a GPU that Kubernetes knows by its device plugin's resource name.
GPU_RESOURCES = {"nvidia": "nvidia.com/gpu", "gpu": "nvidia.com/gpu", "cuda": "nvidia.com/gpu",
                 "nvidia/gpu": "nvidia.com/gpu", "amd": "amd.com/gpu", "rocm": "amd.com/gpu", "amd/gpu": "amd.com/gpu"}


def did_you_mean(value: Any, known: Sequence[str]) -> str:
    """'did you mean X?' for a value that is an alias or a near miss of a known one, else ''."""
    text = str(value).strip()
    for candidate in (text, text.lower()):
        if candidate in known and candidate != value:
            return f"did you mean {candidate!r}?"
        if ALIASES.get(candidate) in known:
            return f"did you mean {ALIASES[candidate]!r}?"
    close = difflib.get_close_matches(text.lower(), list(known), n=1, cutoff=0.6)
    return f"did you mean {close[0]!r}?" if close else ""


def _expected(ctx: dict[str, Any], key: str) -> list[str]:
    return re.findall(r"'([^']*)'", str(ctx.get(key, "")))


# The fix for each of the schema library's own complaints that says nothing of its value, by error type.
_NUMBER = "write a number, without quotes or units"
_WHOLE = "write a whole number, without quotes or units"
_MAPPING = "write a mapping: `key: value` lines, indented under it"
TYPE_FIXES = {
    "string_type": "write text, quoted where YAML would read a number, true/false or null",
    "int_type": _WHOLE, "int_parsing": _WHOLE, "int_from_float": _WHOLE, "int_parsing_size": "write a smaller number",
    "float_type": _NUMBER, "float_parsing": _NUMBER, "finite_number": _NUMBER,
    "bool_type": "write true or false", "bool_parsing": "write true or false",
    "list_type": "write a list: `- item` lines, or [a, b]",
    "dict_type": _MAPPING, "model_type": _MAPPING, "model_attributes_type": _MAPPING,
}
# Bounds: the fix names the limit the schema gives in the error's context.
BOUND_FIXES = {
    "greater_than_equal": "write {ge} or more", "greater_than": "write more than {gt}",
    "less_than_equal": "write {le} or less", "less_than": "write less than {lt}",
    "string_too_long": "shorten it to {max_length} characters or fewer", "string_too_short": "write at least {min_length} "
    "character(s)", "too_short": "give at least {min_length} item(s)", "too_long": "give at most {max_length} item(s)",
}
# A message of stackgen's own validators ends in its fix, in parentheses.
_OWN_FIX = re.compile(r"^(?P<message>.*\S) \((?P<fix>[^()]*(?:\([^()]*\)[^()]*)*)\)$", re.DOTALL)


def _fix(err: dict[str, Any], loc: Sequence[str | int], data: Any) -> str:
    """Every complaint's fix: a likely intended value where one can be read off, else how to write one."""
    kind, ctx = err["type"], err.get("ctx", {})
    if kind in TYPE_FIXES:
        return TYPE_FIXES[kind]
    if kind in BOUND_FIXES:
        return BOUND_FIXES[kind].format(**ctx)
    if kind == "value_error":
        own = _OWN_FIX.match(str(err["msg"]).removeprefix("Value error, "))
        return own["fix"] if own else ""
    if kind == "literal_error":
        expected = _expected(ctx, "expected")
        return did_you_mean(err["input"], expected) or f"write one of: {', '.join(expected)}"
    if kind == "union_tag_not_found":
        return "add engine: with one of them"
    if kind == "union_tag_invalid":
        return did_you_mean(ctx.get("tag", ""), list(ENGINES)) or "write one of them"
    if kind == "string_pattern_mismatch" and loc and loc[-1] == "resource":
        resource = GPU_RESOURCES.get(str(err["input"]).strip().lower())
        if resource:
            return f"did you mean {resource!r}?"
        return "write the device plugin's resource, e.g. nvidia.com/gpu or amd.com/gpu"
    if kind == "extra_forbidden" and loc:
        known = _known_fields(loc[:-1], _engine_at(data, loc[:-1]))
        close = difflib.get_close_matches(str(loc[-1]), known, n=1, cutoff=0.6)
        if close:
            return f"did you mean {close[0]!r}?"
        return f"known fields here: {', '.join(known)}" if known else "remove it"
    if kind == "missing" and loc:
        return f"add {loc[-1]}"
    if kind == "string_pattern_mismatch":
        return _pattern_fix(str(err["input"]), err["ctx"]["pattern"])
    return ""


def _pattern_fix(value: str, pattern: str) -> str:
    """How to write a value that matches: the likely intended value where one can be read off, else the rule."""
    if pattern == QUANTITY:
        decimal = re.fullmatch(r"\s*([0-9]+(?:\.[0-9]+)?)\s*([KMGT])i?B\s*", value, re.IGNORECASE)
        if decimal:
            return f"write {decimal.group(1)}{decimal.group(2).upper()}i"
    if pattern in (DNS_SUBDOMAIN, DNS_LABEL):
        if "://" in value:
            return f"write the host name only, without the scheme: {value.split('://', 1)[1].split('/')[0]}"
        if value.lower() != value and re.match(pattern, value.lower()):
            return f"write it in lower case: {value.lower()}"
    return PATTERN_WORDS.get(pattern, ("", ""))[1]


def _known_fields(loc: Sequence[str | int], engine: str | None) -> list[str]:
    """Field names of the model at a location, following lists, maps and the engine discriminator."""
    candidates: list[Any] = [Stack]
    for part in loc:
        nxt: list[Any] = []
        for cls in candidates:
            nxt += _step(cls, part)
        candidates = nxt
    fields: list[str] = []
    for cls in candidates:
        tagged = getattr(cls, "model_fields", {}).get("engine")
        if engine and tagged and typing.get_args(tagged.annotation) != (engine,):
            continue
        if isinstance(cls, type) and issubclass(cls, BaseModel):
            fields += [f for f in cls.model_fields if f not in fields]
    return fields


def _unwrap(tp: Any) -> list[Any]:
    origin = typing.get_origin(tp)
    if origin is typing.Annotated:
        return _unwrap(typing.get_args(tp)[0])
    if origin in (typing.Union, types.UnionType):
        return [t for arg in typing.get_args(tp) for t in _unwrap(arg)]
    return [tp]


def _step(cls: Any, part: str | int) -> list[Any]:
    out: list[Any] = []
    for tp in _unwrap(cls):
        origin = typing.get_origin(tp)
        if origin is list and isinstance(part, int):
            out += _unwrap(typing.get_args(tp)[0])
        elif origin is dict and isinstance(part, str):
            out += _unwrap(typing.get_args(tp)[1])
        elif isinstance(tp, type) and issubclass(tp, BaseModel) and isinstance(part, str) and part in tp.model_fields:
            out += _unwrap(tp.model_fields[part].annotation)
    return out
