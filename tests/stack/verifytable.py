"""The table `stackgen verify` prints, read back and expected, for the stack tier's tests that run it against
real servers (test_verify.py, test_faults.py): its header, the checks a stand-in server is known to fail, the
rows of a stack whose every check passes, and the header, rows and summary of a command's output."""

from __future__ import annotations

from click.testing import Result

from stackgen.plan import Plan

HEADER = ["MODEL", "ENGINE", "CHECK", "STATUS", "LATENCY", "DETAIL"]
# LiteLLM's mistral provider turns tool_choice "required" into Mistral's own "any", which the real
# Mistral API takes and llama.cpp, standing in for it here, refuses (it knows auto/none/required).
STAND_IN_LIMITS = {("hybrid", "mistral-large", "tools"): "Invalid tool_choice: any"}


def expected_rows(resolved: Plan, autogen: bool) -> list[list[str]]:
    """MODEL, ENGINE, CHECK, STATUS of a stack whose every check is ok, in the table's order."""
    def engine(name: str) -> str:
        return resolved.model(name).label

    rows = [["-", "gateway", "health", "ok"], ["-", "gateway", "models", "ok"]]
    for m in resolved.models:
        rows.append([m.name, engine(m.name), "chat", "ok"])
        if m.spec.toolCalling:
            rows.append([m.name, engine(m.name), "tools", "ok"])
    # A model behind a router: a few conversations must find their history in the prefix cache (here the
    # llama.cpp stand-in's slot cache, which reports cached tokens as vLLM does).
    rows += [[m.name, engine(m.name), "prefix-cache", "ok"] for m in resolved.served if m.router]
    if autogen:
        for m in resolved.models:
            rows += [[m.name, engine(m.name), "autogen-0.2", "ok"], [m.name, engine(m.name), "autogen-0.4", "ok"]]
    return rows


def table_of(result: Result) -> tuple[list[str], list[list[str]], str]:
    """The table in the command's stdout: header cells, first four cells of each row, summary line."""
    lines = result.stdout.splitlines()
    start = next(i for i, line in enumerate(lines) if line.split() == HEADER)
    *rows, summary = lines[start + 1:]
    return lines[start].split(), [row.split()[:4] for row in rows], summary
