"""AutoGen configs that point agents at the gateway: the OAI_CONFIG_LIST of AutoGen 0.2 / AG2, and
component configs of AutoGen 0.4+ (OpenAIChatCompletionClient).

Neither file carries a key. Both AutoGen flavours fall back to OPENAI_API_KEY when `api_key` is absent;
another variable named in the spec is read by the agent's code (see the README written beside them).
"""

from __future__ import annotations

from typing import Any

from .plan import Plan

CLIENT_PROVIDER = "autogen_ext.models.openai.OpenAIChatCompletionClient"


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
    # Both clients read OPENAI_API_KEY by themselves; any other variable is passed in by the agent's code.
    if env == "OPENAI_API_KEY":
        filter_arg = f', filter_dict={{"tags": ["{tag}"]}}' if tag else ""
        classic_load = f'llm_config = LLMConfig.from_json(path="OAI_CONFIG_LIST"{filter_arg})\n'
        modern_config = 'component["config"]'
    else:
        where = f'.where(tags=["{tag}"])' if tag else ""
        classic_load = (
            'with open("OAI_CONFIG_LIST") as f:\n'
            f'    config_list = [{{**entry, "api_key": os.environ["{env}"]}} for entry in json.load(f)]\n'
            f"llm_config = LLMConfig(*config_list){where}\n"
        )
        modern_config = f'{{**component["config"], "api_key": os.environ["{env}"]}}'
    return f"""# AutoGen configs for stack `{plan.stack.name}`

Agents reach every model through the gateway at `{gateway_url}`.
The files hold no key: export the gateway key (a LiteLLM virtual key or the master key) as `{env}`.

## AutoGen 0.2 / AG2 (`OAI_CONFIG_LIST`)

```python
import json, os
from autogen import AssistantAgent, LLMConfig

{classic_load}agent = AssistantAgent("assistant", llm_config=llm_config)
```

## AutoGen 0.4+ (`model_clients.json`)

```python
import json, os
from autogen_core.models import ChatCompletionClient

with open("model_clients.json") as f:
    component = json.load(f)["{first.name}"]
client = ChatCompletionClient.load_component({{**component, "config": {modern_config}}})
```
"""
