"""What every agent framework's emitter shares: the generated module's frame, the capability table, and
the probes (a chat reply, a tool round trip) that the tests and `stackgen verify` run through the module.
"""

from __future__ import annotations

import importlib.util
import shlex
import textwrap
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import Any, Callable

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
class Framework:
    """One agent framework stackgen writes a client module for, in OUT/agents/."""

    name: str  # what --frameworks takes
    title: str
    requirement: str  # the pinned package its users install (also in pyproject's `frameworks` extra)
    module: str  # OUT/agents/<module>.py
    function: str  # what the module offers per model name
    usage: Callable[[Plan], str]  # a few lines for OUT/agents/README.md
    source: Callable[[Plan, str], str]  # the module's text, for a gateway URL
    reply: Callable[[ModuleType, str], str]  # a chat reply through the module; returns the text
    tool_round_trip: Callable[[ModuleType, str], str]  # the model calls get_time, gets its result, answers

    @property
    def path(self) -> str:
        return f"agents/{self.module}.py"


def capabilities(m: ModelPlan) -> dict[str, Any]:
    """The model's abilities in neutral terms; each framework renames them."""
    return {
        "tools": bool(m.capabilities.get("function_calling")),
        "vision": bool(m.capabilities.get("vision")),
        "json_output": bool(m.capabilities.get("json_output")),
        "context_length": m.context_length,
    }


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
# Every client sends one conversation id in this header (a new one per client unless given): a model with
# several replicas keeps the conversation on one of them, whose prefix cache then holds all of it.
SESSION_HEADER = {SESSION_HEADER!r}
{comment(table_doc)}
{table_name}: {table_type} = {literal(table)}


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
