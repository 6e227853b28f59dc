"""The agent frameworks stackgen writes configs for, by the name `--frameworks` takes.

`ag2-classic` and `autogen-0.4` are the data files of autogen.py (OUT/autogen/); every other framework gets a
Python module in OUT/agents/ that builds a client per model name (modules of this package).
"""

from __future__ import annotations

from .. import autogen
from ..errors import Problem, StackgenError
from ..plan import Plan
from . import ag2, agent_framework, langchain, openai_agents
from .base import Framework, pip_install

# Data files of autogen.py, by framework name; OUT/autogen/README.md comes with either.
AUTOGEN_FILES = {"ag2-classic": "autogen/OAI_CONFIG_LIST", "autogen-0.4": "autogen/model_clients.json"}
MODULES: dict[str, Framework] = {f.name: f for f in (ag2.FRAMEWORK, agent_framework.FRAMEWORK, langchain.FRAMEWORK,
                                                     openai_agents.FRAMEWORK)}
NAMES: tuple[str, ...] = (*AUTOGEN_FILES, *MODULES)


def parse(text: str | None) -> tuple[str, ...]:
    """`--frameworks`: comma-separated names (or `all`); None means all. Kept in NAMES' order."""
    if text is None or text.strip() == "all":
        return NAMES
    asked = [part.strip() for part in text.split(",") if part.strip()]
    unknown = [name for name in asked if name not in NAMES]
    if unknown or not asked:
        what = f"unknown framework {unknown[0]!r}" if unknown else "no framework named"
        raise StackgenError([Problem("--frameworks", what, f"known: {', '.join(NAMES)}, or all")])
    return tuple(name for name in NAMES if name in asked)


def files(plan: Plan, url: str, selected: tuple[str, ...] = NAMES) -> dict[str, str]:
    """Every agent config file of the selected frameworks, by path relative to OUT."""
    from ..render import dump_json

    out: dict[str, str] = {}
    if "ag2-classic" in selected:
        out[AUTOGEN_FILES["ag2-classic"]] = dump_json(autogen.oai_config_list(plan, url))
    if "autogen-0.4" in selected:
        out[AUTOGEN_FILES["autogen-0.4"]] = dump_json(autogen.model_clients(plan, url))
    if out:
        out["autogen/README.md"] = autogen.usage_readme(plan, url)
    chosen = [MODULES[name] for name in selected if name in MODULES]
    for framework in chosen:
        out[framework.path] = framework.source(plan, url)
    if chosen:
        out["agents/README.md"] = readme(plan, url, chosen)
    return out


def readme(plan: Plan, url: str, chosen: list[Framework]) -> str:
    env = plan.stack.autogen.apiKeyEnv
    parts = [f"""# Agent framework clients for stack `{plan.stack.name}`

Each module here builds a client of any model of the stack, by name, through the gateway at `{url}`.
None holds a key: each reads `{env}` (a LiteLLM virtual key or the master key) when it makes a client.
Put this directory on `PYTHONPATH` (or copy a module into your project). The AutoGen data files are in
`../autogen/`.

| Framework | Install | Module | Per model |
|---|---|---|---|
"""]
    parts += [f"| {f.title} | `{pip_install(f.requirement)}` | `{f.module}.py` | `{f.function}` |\n" for f in chosen]
    for f in chosen:
        parts.append(f"\n## {f.title} (`{f.module}.py`)\n\nInstall: `{pip_install(f.requirement)}`\n\n"
                     f"```python\n{_dedent(f.usage(plan))}```\n")
    return "".join(parts)


def _dedent(text: str) -> str:
    return "".join(line[4:] if line.startswith("    ") else line for line in text.splitlines(keepends=True))


__all__ = ["Framework", "MODULES", "NAMES", "files", "parse"]
