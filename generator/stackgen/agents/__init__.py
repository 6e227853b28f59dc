"""The agent frameworks stackgen writes configs for, by the name `--frameworks` takes, one module each.

AutoGen's two data files (autogen.py, OUT/autogen/) and the generated client modules of the others
(OUT/agents/) are written through the same hook (`Framework.files`), and probed through the same two
(`reply`, `tool_round_trip`). A new framework is a module with its `Framework`, listed in FRAMEWORKS.
"""

from __future__ import annotations

from ..errors import Problem, StackgenError
from ..output import Target
from . import ag2, agent_framework, autogen, langchain, openai_agents
from .base import Client, Framework, ModuleFramework

# In the order --frameworks lists them and the READMEs present them.
FRAMEWORKS: dict[str, Framework] = {f.name: f for f in (autogen.CLASSIC, autogen.COMPONENTS, ag2.FRAMEWORK,
                                                         agent_framework.FRAMEWORK, langchain.FRAMEWORK,
                                                         openai_agents.FRAMEWORK)}
NAMES: tuple[str, ...] = tuple(FRAMEWORKS)
MODULES: dict[str, ModuleFramework] = {n: f for n, f in FRAMEWORKS.items() if isinstance(f, ModuleFramework)}


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


def files(target: Target, selected: tuple[str, ...] = NAMES) -> dict[str, str]:
    """Every file of the selected frameworks, by path relative to OUT, with a README in each directory."""
    out: dict[str, str] = {}
    chosen = [FRAMEWORKS[name] for name in NAMES if name in selected]
    for directory in dict.fromkeys(f.directory for f in chosen):
        group = [f for f in chosen if f.directory == directory]
        for framework in group:
            out.update(framework.files(target))
        readme = group[0].readme_head(target, group) + "".join(f.section(target) for f in group)
        out[f"{directory}/README.md"] = readme
    return out


__all__ = ["Client", "FRAMEWORKS", "Framework", "MODULES", "NAMES", "files", "parse"]
