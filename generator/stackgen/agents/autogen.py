"""AutoGen, as two frameworks: the OAI_CONFIG_LIST of AutoGen 0.2 / AG2 classic (`ag2-classic`), and the
component configs of AutoGen 0.4+ (`autogen-0.4`, OpenAIChatCompletionClient), both data files in OUT/autogen/
that point agents at the gateway. The chart carries the same two configs in its autogen ConfigMap.

Neither file carries a key. Both AutoGen flavours fall back to OPENAI_API_KEY when `api_key` is absent;
another variable named in the spec is read by the agent's code (see the README written beside them).
"""

from __future__ import annotations

import asyncio
import json
from abc import abstractmethod
from pathlib import Path
from typing import Any

from ..engines import Capabilities
from ..output import Target, dump_json
from ..routing import SESSION_HEADER
from .base import PROMPT, Client, Framework, expect_reply, pip_install

CLIENT_PROVIDER = "autogen_ext.models.openai.OpenAIChatCompletionClient"
# What a user installs to load each file (pyproject's `autogen` extra pins the same releases; a test checks).
# Both need the `openai` extra: without it, the classic agent fails at its first config and AutoGen 0.4 cannot
# load the client. The classic one's extra wants openai<3, which ag2[openai] (>=3.27) excludes: the two do not
# share an environment with their extras, and stackgen's own environment takes `autogen` without it.
CLASSIC_REQUIREMENT = "autogen[openai]==0.14.1"
COMPONENT_REQUIREMENT = "autogen-ext[openai]==0.7.5"


def model_info(c: Capabilities) -> dict[str, Any]:
    """AutoGen's model_info, in its key order."""
    return {"vision": c.vision, "function_calling": c.tools, "json_output": c.json_output, "family": c.family,
            "structured_output": c.structured_output}


class AutogenFramework(Framework):
    """One of the two AutoGen data files."""

    directory = "autogen"
    file: str  # OUT/autogen/<file>
    values_key: str  # the chart's autogen.<key>

    @property
    def path(self) -> str:
        return f"{self.directory}/{self.file}"

    @abstractmethod
    def make(self, target: Target) -> Any:
        """The file's content."""

    def config(self, target: Target) -> Any:
        """The file's content, made once per render (the chart's values carry it too)."""
        return target.once(self.name, lambda: self.make(target))

    def files(self, target: Target) -> dict[str, str]:
        return {self.path: dump_json(self.config(target))}

    def readme_head(self, target: Target, chosen: list[Framework]) -> str:
        return f"""# AutoGen configs for stack `{target.plan.stack.name}`

Agents reach every model through the gateway at `{target.url}`.
The files hold no key: export the gateway key (a LiteLLM virtual key or the master key) as `{_env(target)}`.

Each agent adds its own conversation id, the `{SESSION_HEADER}` header: a model served by several replicas
keeps every turn of a conversation on one replica, whose prefix cache then holds all of it. The files cannot
carry one, since every agent that loads them would share it.
"""

    def reply(self, out: Path, model: str, client: Client) -> str:
        return self.reply_from(out / self.path, model, client)

    @abstractmethod
    def reply_from(self, path: Path, model: str, client: Client) -> str:
        """A reply from `model` through the file at `path` (`stackgen verify --autogen-dir` names the directory)."""


def _env(target: Target) -> str:
    return target.plan.stack.autogen.apiKeyEnv


def _key_setting(target: Target) -> str:
    # Both clients read OPENAI_API_KEY by themselves; any other variable is passed in by the agent's code.
    env = _env(target)
    return "" if env == "OPENAI_API_KEY" else f', "api_key": os.environ["{env}"]'


def _apply(client: Client, config: dict[str, Any]) -> dict[str, Any]:
    extra = {"api_key": client.api_key, "timeout": client.timeout}
    return {**config, **extra, **({"base_url": client.base_url} if client.base_url else {})}


class Classic(AutogenFramework):
    name = "ag2-classic"
    title = "AutoGen 0.2 / AG2"
    requirement = CLASSIC_REQUIREMENT
    file = "OAI_CONFIG_LIST"
    values_key = "oaiConfigList"

    def make(self, target: Target) -> list[dict[str, Any]]:
        entries = []
        for m in target.plan.models:
            entry: dict[str, Any] = {"model": m.name, "base_url": target.url, "api_type": "openai",
                                     "tags": list(m.spec.tags)}
            if m.in_cluster:
                # Self-hosted: no per-token price, and AutoGen stops warning about unknown costs.
                entry["price"] = [0, 0]
            entries.append(entry)
        return entries

    def section(self, target: Target) -> str:
        first = target.plan.models[0]
        tag = first.spec.tags[0] if first.spec.tags else None
        where = f'.where(tags=["{tag}"])' if tag else ""
        return f"""
## AutoGen 0.2 / AG2 (`OAI_CONFIG_LIST`)

Install: `{pip_install(self.requirement)}`

```python
import json, os, uuid
from autogen import AssistantAgent, LLMConfig

conversation = {{"default_headers": {{"{SESSION_HEADER}": uuid.uuid4().hex}}{_key_setting(target)}}}
with open("OAI_CONFIG_LIST") as f:
    config_list = [{{**entry, **conversation}} for entry in json.load(f)]
llm_config = LLMConfig(*config_list){where}
agent = AssistantAgent("assistant", llm_config=llm_config)
```
"""

    def reply_from(self, path: Path, model: str, client: Client) -> str:
        from autogen import ConversableAgent, LLMConfig  # optional: pip install 'stackgen[autogen]'

        entries = [_apply(client, e) for e in json.loads(path.read_text()) if e["model"] == model]
        if not entries:
            raise LookupError(f"{path.name} has no entry for {model}")
        agent = ConversableAgent("verify", llm_config=LLMConfig(*entries), human_input_mode="NEVER")
        reply = agent.generate_reply(messages=[{"role": "user", "content": PROMPT}])
        # Usage is kept per model name as the gateway reported it; its absence means no reply came back.
        usage = (agent.get_total_usage() or {}).get(model)
        if reply is None or not isinstance(usage, dict):
            raise ValueError(f"no reply, or no usage recorded for {model}")
        return expect_reply(reply.get("content") if isinstance(reply, dict) else reply)


class Components(AutogenFramework):
    name = "autogen-0.4"
    title = "AutoGen 0.4+"
    requirement = COMPONENT_REQUIREMENT
    file = "model_clients.json"
    values_key = "modelClients"

    def make(self, target: Target) -> dict[str, dict[str, Any]]:
        return {
            m.name: {
                "provider": CLIENT_PROVIDER,
                "component_type": "model",
                "version": 1,
                "component_version": 1,
                "description": f"{m.name} through the stack's gateway",
                "label": "OpenAIChatCompletionClient",
                "config": {"model": m.name, "base_url": target.url, "model_info": model_info(m.capabilities)},
            }
            for m in target.plan.models
        }

    def section(self, target: Target) -> str:
        return f"""
## AutoGen 0.4+ (`model_clients.json`)

Install: `{pip_install(self.requirement)}`

```python
import json, os, uuid
from autogen_core.models import ChatCompletionClient

with open("model_clients.json") as f:
    component = json.load(f)["{target.plan.models[0].name}"]
conversation = {{"default_headers": {{"{SESSION_HEADER}": uuid.uuid4().hex}}{_key_setting(target)}}}
client = ChatCompletionClient.load_component({{**component, "config": {{**component["config"], **conversation}}}})
```
"""

    def reply_from(self, path: Path, model: str, client: Client) -> str:
        from autogen_core.models import ChatCompletionClient, UserMessage  # optional: pip install 'stackgen[autogen]'

        components: dict[str, Any] = json.loads(path.read_text())
        if model not in components:
            raise LookupError(f"{path.name} has no entry for {model}")
        component = components[model]
        loaded = ChatCompletionClient.load_component({**component, "config": _apply(client, component["config"])})

        async def ask() -> object:
            try:
                result = await loaded.create([UserMessage(content=PROMPT, source="verify")])
            finally:
                await loaded.close()
            return result.content

        return expect_reply(asyncio.run(ask()))


CLASSIC = Classic()
COMPONENTS = Components()
