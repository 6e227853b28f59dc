"""AutoGen configs that point agents at the gateway: the OAI_CONFIG_LIST of AutoGen 0.2 / AG2, and
component configs of AutoGen 0.4+ (OpenAIChatCompletionClient).

Neither file carries a key. Both AutoGen flavours fall back to OPENAI_API_KEY when `api_key` is absent;
another variable named in the spec is read by the agent's code (see the README written beside them).
"""

from __future__ import annotations

from typing import Any

from .agents.base import pip_install
from .plan import Plan
from .routing import SESSION_HEADER

CLIENT_PROVIDER = "autogen_ext.models.openai.OpenAIChatCompletionClient"
# What a user installs to load each file (pyproject's `autogen` extra pins the same releases; a test checks).
# Both need the `openai` extra: without it, the classic agent fails at its first config and AutoGen 0.4 cannot
# load the client. The classic one's extra wants openai<3, which ag2[openai] (>=3.27) excludes: the two do not
# share an environment with their extras, and stackgen's own environment takes `autogen` without it.
CLASSIC_REQUIREMENT = "autogen[openai]==0.14.1"
COMPONENT_REQUIREMENT = "autogen-ext[openai]==0.7.5"


def oai_config_list(plan: Plan, gateway_url: str) -> list[dict[str, Any]]:
    entries = []
    for m in plan.models:
        entry: dict[str, Any] = {"model": m.name, "base_url": gateway_url, "api_type": "openai", "tags": list(m.spec.tags)}
        if m.in_cluster:
            # Self-hosted: no per-token price, and AutoGen stops warning about unknown costs.
            entry["price"] = [0, 0]
        entries.append(entry)
    return entries


def model_clients(plan: Plan, gateway_url: str) -> dict[str, dict[str, Any]]:
    return {
        m.name: {
            "provider": CLIENT_PROVIDER,
            "component_type": "model",
            "version": 1,
            "component_version": 1,
            "description": f"{m.name} through the stack's gateway",
            "label": "OpenAIChatCompletionClient",
            "config": {"model": m.name, "base_url": gateway_url, "model_info": dict(m.capabilities)},
        }
        for m in plan.models
    }


def usage_readme(plan: Plan, gateway_url: str) -> str:
    """How an agent loads these files; the snippets are executed by the tests, so they stay true."""
    env = plan.stack.autogen.apiKeyEnv
    first = plan.models[0]
    tag = first.spec.tags[0] if first.spec.tags else None
    where = f'.where(tags=["{tag}"])' if tag else ""
    # Both clients read OPENAI_API_KEY by themselves; any other variable is passed in by the agent's code.
    key = "" if env == "OPENAI_API_KEY" else f', "api_key": os.environ["{env}"]'
    return f"""# AutoGen configs for stack `{plan.stack.name}`

Agents reach every model through the gateway at `{gateway_url}`.
The files hold no key: export the gateway key (a LiteLLM virtual key or the master key) as `{env}`.

Each agent adds its own conversation id, the `{SESSION_HEADER}` header: a model served by several replicas
keeps every turn of a conversation on one replica, whose prefix cache then holds all of it. The files cannot
carry one, since every agent that loads them would share it.

## AutoGen 0.2 / AG2 (`OAI_CONFIG_LIST`)

Install: `{pip_install(CLASSIC_REQUIREMENT)}`

```python
import json, os, uuid
from autogen import AssistantAgent, LLMConfig

conversation = {{"default_headers": {{"{SESSION_HEADER}": uuid.uuid4().hex}}{key}}}
with open("OAI_CONFIG_LIST") as f:
    config_list = [{{**entry, **conversation}} for entry in json.load(f)]
llm_config = LLMConfig(*config_list){where}
agent = AssistantAgent("assistant", llm_config=llm_config)
```

## AutoGen 0.4+ (`model_clients.json`)

Install: `{pip_install(COMPONENT_REQUIREMENT)}`

```python
import json, os, uuid
from autogen_core.models import ChatCompletionClient

with open("model_clients.json") as f:
    component = json.load(f)["{first.name}"]
conversation = {{"default_headers": {{"{SESSION_HEADER}": uuid.uuid4().hex}}{key}}}
client = ChatCompletionClient.load_component({{**component, "config": {{**component["config"], **conversation}}}})
```
"""
