"""What every agent framework answers (`Framework`): the files it writes for a render, its part of the README
beside them, and the probes (a chat reply, a tool round trip) that the tests and `stackgen verify` run through
those files as an agent would. `ModuleFramework` is the shape of the frameworks that get a generated Python
module in OUT/agents/ (the generated module's frame and capability table are here too).
"""

from __future__ import annotations

import importlib.util
import shlex
import textwrap
from abc import ABC, abstractmethod
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import Any

from ..output import Target
from ..plan import ModelPlan, Plan
from ..routing import SESSION_HEADER

PROMPT = "Reply with the word ok."
TOOL_PROMPT = "What time is it in Paris? Use the tool."
# What the probe's tool returns; the model's final answer must carry it back.
TOOL_RESULT = "12:00"


def counted_tool() -> tuple[Callable[[str], str], list[str]]:
    """The probe's tool, and the cities it was called with."""
    calls: list[str] = []

    def get_time(city: str) -> str:
        """Current time in a city."""
        calls.append(city)
        return f"{TOOL_RESULT} in {city}"

    return get_time, calls


def pip_install(requirements: str) -> str:
    """The line a user runs to install `requirements` (space-separated), quoted for any shell: extras' brackets
    are globs to zsh. The tests run each such line, as written, in a fresh virtualenv."""
    return " ".join(["pip", "install", *(shlex.quote(r) for r in requirements.split())])


@dataclass(frozen=True)
class Client:
    """What a probe adds to a framework's files, as an agent's code would: the key, a time limit, and perhaps
    another gateway URL than the one written in them."""

    api_key: str
    timeout: float = 120.0
    base_url: str | None = None


class Framework(ABC):
    """One agent framework stackgen writes configs for. Its files go to OUT/<directory>/, whose README.md is the
    head the frameworks of that directory share, then each chosen one's section."""

    name: str  # what --frameworks takes
    title: str
    requirement: str  # the pinned packages its users install (a test runs the line in an empty venv)
    directory: str
    probes_tools: bool = False  # whether `tool_round_trip` runs a tool through its files

    @abstractmethod
    def files(self, target: Target) -> dict[str, str]:
        """Its files, by path relative to OUT."""

    @abstractmethod
    def readme_head(self, target: Target, chosen: list[Framework]) -> str:
        """The start of OUT/<directory>/README.md, for the chosen frameworks of that directory."""

    @abstractmethod
    def section(self, target: Target) -> str:
        """Its part of that README: how an agent installs it and loads the files (tests run the snippet)."""

    @abstractmethod
    def reply(self, out: Path, model: str, client: Client) -> str:
        """A chat reply from `model` through the framework's files in OUT; returns its text."""

    def tool_round_trip(self, out: Path, model: str, client: Client) -> str:
        """The model calls get_time, gets its result and answers with it (frameworks that `probes_tools`)."""
        raise NotImplementedError(f"{self.name} has no tool probe")


def capabilities(m: ModelPlan) -> dict[str, Any]:
    """The abilities a framework module's table lists for a model, under stackgen's names (each module renames
    them into its framework's terms where the framework has some)."""
    return {
        "tools": m.capabilities.tools,
        "vision": m.capabilities.vision,
        "json_output": m.capabilities.json_output,
        "context_length": m.context_length,
    }


@dataclass(frozen=True)
class ModuleFramework(Framework):
    """A framework whose users get a generated Python module in OUT/agents/ that builds a client per model name."""

    name: str
    title: str
    requirement: str
    module: str  # OUT/agents/<module>.py
    function: str  # what the module offers per model name
    usage: Callable[[Plan], str]  # a few lines for OUT/agents/README.md
    source: Callable[[Plan, str], str]  # the module's text, for a gateway URL
    ask: Callable[[ModuleType, str], str]  # a chat reply through the loaded module; returns the text
    ask_with_tool: Callable[[ModuleType, str], str]  # the model calls get_time, gets its result, answers
    directory: str = "agents"
    probes_tools: bool = True

    @property
    def path(self) -> str:
        return f"{self.directory}/{self.module}.py"

    def files(self, target: Target) -> dict[str, str]:
        return {self.path: self.source(target.plan, target.url)}

    def readme_head(self, target: Target, chosen: list[Framework]) -> str:
        env = target.plan.stack.autogen.apiKeyEnv
        rows = "".join(f"| {f.title} | `{pip_install(f.requirement)}` | `{f.module}.py` | `{f.function}` |\n"
                       for f in chosen if isinstance(f, ModuleFramework))
        return f"""# Agent framework clients for stack `{target.plan.stack.name}`

Each module here builds a client of any model of the stack, by name, through the gateway at `{target.url}`.
None holds a key: each reads `{env}` (a LiteLLM virtual key or the master key) when it makes a client.
Put this directory on `PYTHONPATH` (or copy a module into your project). The AutoGen data files are in
`../autogen/`.

| Framework | Install | Module | Per model |
|---|---|---|---|
{rows}"""

    def section(self, target: Target) -> str:
        usage = "".join(line[4:] if line.startswith("    ") else line
                        for line in self.usage(target.plan).splitlines(keepends=True))
        return (f"\n## {self.title} (`{self.module}.py`)\n\nInstall: `{pip_install(self.requirement)}`\n\n"
                f"```python\n{usage}```\n")

    def load(self, out: Path, client: Client) -> ModuleType:
        """The generated module in OUT, loaded as an agent's code would, with the probe's key (and URL)."""
        module = load_module(out / self.path)
        # setattr: a module's names are not known to the type checker.
        setattr(module, "API_KEY", client.api_key)  # noqa: B010
        if client.base_url:
            setattr(module, "GATEWAY_URL", client.base_url)  # noqa: B010
        return module

    def reply(self, out: Path, model: str, client: Client) -> str:
        return self.ask(self.load(out, client), model)

    def tool_round_trip(self, out: Path, model: str, client: Client) -> str:
        return self.ask_with_tool(self.load(out, client), model)


def literal(table: dict[str, dict[str, Any]]) -> str:
    """A dict of dicts as Python source, one model a line (repr is deterministic for these values)."""
    lines = [f"    {name!r}: {{{', '.join(f'{k!r}: {v!r}' for k, v in row.items())}}}," for name, row in table.items()]
    return "{\n" + "\n".join(lines) + "\n}"


def module_text(plan: Plan, url: str, framework: str, usage: str, imports: str, table_doc: str,
                table_name: str, table_type: str, table: dict[str, dict[str, Any]], body: str) -> str:
    stack = plan.stack
    return f'''"""{framework} clients for stack `{stack.name}`, rendered by stackgen. Edit the spec, not this file.

Every model is reached through the stack's gateway; the key is read from ${stack.autogen.apiKeyEnv}
when a client is made, and never written here.

{usage}"""

from __future__ import annotations

import os
import uuid
from typing import Any

{imports}

GATEWAY_URL = {url!r}
API_KEY_ENV = {stack.autogen.apiKeyEnv!r}
# Set by code that holds the key itself; unset, each client reads the variable above.
API_KEY: str | None = None
# Every client sends one conversation id in this header (a new one per client unless given): a model with
# several replicas keeps the conversation on one of them, whose prefix cache then holds all of it.
SESSION_HEADER = {SESSION_HEADER!r}
{comment(table_doc)}
{table_name}: {table_type} = {literal(table)}


def _api_key() -> str:
    return API_KEY or os.environ[API_KEY_ENV]


def _known(model: str) -> str:
    if model not in {table_name}:
        raise KeyError(f"{{model!r}} is not a model of stack {stack.name} (models: {{', '.join({table_name})}})")
    return model


def _conversation(conversation: str | None) -> dict[str, str]:
    """The headers of one conversation: pass the same id to every client of one conversation."""
    return {{SESSION_HEADER: conversation or uuid.uuid4().hex}}


{body}'''


def comment(text: str) -> str:
    return "\n".join(textwrap.wrap(text, 108, initial_indent="# ", subsequent_indent="# "))


def load_module(path: Path) -> ModuleType:
    """Imports a generated module from its file, as an agent's code would (under a private name)."""
    name = f"stackgen_generated_{path.stem}"
    spec = importlib.util.spec_from_file_location(name, path)
    if spec is None or spec.loader is None:
        raise ImportError(f"cannot import {path}")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def expect_reply(text: Any, what: str = "reply") -> str:
    if not isinstance(text, str) or not text.strip():
        raise ValueError(f"the {what} has no text: {text!r}")
    return text.strip()


def expect_tool_result(text: Any, calls: list[str]) -> str:
    answer = expect_reply(text, "final answer")
    if not calls:
        raise ValueError(f"the model did not call the tool; it answered {answer[:80]!r}")
    if TOOL_RESULT not in answer:
        raise ValueError(f"the final answer does not carry the tool's result: {answer[:80]!r}")
    return answer
