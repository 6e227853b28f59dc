"""Real AutoGen clients, configured from files that hold no key, talk to the real gateway.

How the key gets in (found here, asserted below):
- AutoGen classic (autogen 0.14.1): OPENAI_API_KEY in the environment when the
  agent is built, or `entry.api_key = SecretStr(key)` on each loaded entry.
  `LLMConfig.from_json` takes no api_key argument. Without either the agent's
  constructor fails with openai.OpenAIError.
- AutoGen 0.4+ (autogen-ext 0.7.5): OPENAI_API_KEY in the environment when
  `load_component` runs, or `config["api_key"]` added to the loaded dict before
  `load_component`. Without either `load_component` fails with openai.OpenAIError.
"""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any, cast

import autogen
import openai
import pytest
from autogen_core.models import ChatCompletionClient, CreateResult, UserMessage
from pydantic import SecretStr

from .conftest import Stack
from .gatewayconfig import MAX_TOKENS, OLLAMA_NAME, VLLM_NAME, decode_count

MODELS = [VLLM_NAME, OLLAMA_NAME]
TAG = "local-stack"


@pytest.fixture(autouse=True)
def _no_ambient_key(monkeypatch: pytest.MonkeyPatch) -> None:
    # Each test decides where the key comes from; none may leak in from the shell.
    for var in ("OPENAI_API_KEY", "OPENAI_ADMIN_KEY", "OPENAI_BASE_URL"):
        monkeypatch.delenv(var, raising=False)


@pytest.fixture
def oai_config_list(stack: Stack, tmp_path: Path) -> Path:
    path = tmp_path / "OAI_CONFIG_LIST"
    entries = [{"model": m, "base_url": f"{stack.gateway.url}/v1", "tags": [m, TAG], "price": [0, 0]} for m in MODELS]
    path.write_text(json.dumps(entries, indent=2))
    return path


def _entries(llm_config: autogen.LLMConfig) -> list[Any]:
    # The entries are pydantic models (one class per api_type) whose union type
    # mypy cannot see through; Any keeps attribute access readable.
    return list(llm_config.config_list)


def _classic_reply(stack: Stack, llm_config: autogen.LLMConfig, model: str) -> None:
    server = stack.servers[model]
    before = decode_count(server.url)
    agent = autogen.ConversableAgent(name="assistant", llm_config=llm_config, human_input_mode="NEVER")

    reply = agent.generate_reply(messages=[{"role": "user", "content": "Say hi."}])

    assert isinstance(reply, str) and reply, reply
    total = agent.get_total_usage()
    assert total is not None
    usage = cast(dict[str, int], total[model])  # per-model entries are token-count dicts
    assert usage["prompt_tokens"] > 0
    assert 0 < usage["completion_tokens"] <= MAX_TOKENS
    assert decode_count(server.url) > before, f"{model}'s server did not answer"


@pytest.mark.parametrize("model", MODELS)
def test_classic_agent_with_key_from_env(stack: Stack, oai_config_list: Path, model: str,
                                         monkeypatch: pytest.MonkeyPatch) -> None:
    llm_config = autogen.LLMConfig.from_json(path=oai_config_list, filter_dict={"tags": [model]},
                                             max_tokens=MAX_TOKENS)
    (entry,) = _entries(llm_config)
    assert entry.model == model and entry.api_key is None

    monkeypatch.setenv("OPENAI_API_KEY", stack.gateway.master_key)
    _classic_reply(stack, llm_config, model)


def test_classic_agent_with_key_set_after_load(stack: Stack, oai_config_list: Path) -> None:
    llm_config = autogen.LLMConfig.from_json(path=oai_config_list, filter_dict={"tags": [OLLAMA_NAME]},
                                             max_tokens=MAX_TOKENS)
    for entry in _entries(llm_config):
        # A plain str here is accepted silently but breaks serialisation later:
        # the field is a pydantic SecretStr and assignment is not validated.
        entry.api_key = SecretStr(stack.gateway.master_key)
    _classic_reply(stack, llm_config, OLLAMA_NAME)


def test_classic_tag_filter_selects_by_tag(oai_config_list: Path) -> None:
    everything = autogen.LLMConfig.from_json(path=oai_config_list, filter_dict={"tags": [TAG]})
    assert sorted(e.model for e in _entries(everything)) == sorted(MODELS)


def test_classic_agent_without_key_fails_on_construction(oai_config_list: Path) -> None:
    llm_config = autogen.LLMConfig.from_json(path=oai_config_list, filter_dict={"tags": [VLLM_NAME]})
    with pytest.raises(openai.OpenAIError, match="api_key"):
        autogen.ConversableAgent(name="assistant", llm_config=llm_config, human_input_mode="NEVER")


def _component(stack: Stack, model: str, tmp_path: Path) -> dict[str, Any]:
    """Write a component config the way a user receives it (no key), and read it back."""
    component = {
        "provider": "autogen_ext.models.openai.OpenAIChatCompletionClient",
        "component_type": "model",
        "config": {
            "model": model,
            "base_url": f"{stack.gateway.url}/v1",
            "max_tokens": MAX_TOKENS,
            "model_info": {"vision": False, "function_calling": False, "json_output": False,
                           "family": "unknown", "structured_output": False},
        },
    }
    path = tmp_path / f"{model.replace(':', '_')}.json"
    path.write_text(json.dumps(component))
    loaded: dict[str, Any] = json.loads(path.read_text())
    return loaded


async def _create(client: ChatCompletionClient) -> CreateResult:
    try:
        return await client.create([UserMessage(content="Say hi.", source="user")])
    finally:
        await client.close()


def _check_result(stack: Stack, model: str, component: dict[str, Any]) -> None:
    server = stack.servers[model]
    before = decode_count(server.url)
    client = ChatCompletionClient.load_component(component)

    result = asyncio.run(_create(client))

    assert isinstance(result.content, str)
    assert result.finish_reason in ("stop", "length")
    assert result.usage.prompt_tokens > 0
    assert 0 < result.usage.completion_tokens <= MAX_TOKENS
    assert decode_count(server.url) > before, f"{model}'s server did not answer"


@pytest.mark.parametrize("model", MODELS)
def test_component_client_with_key_from_env(stack: Stack, model: str, tmp_path: Path,
                                            monkeypatch: pytest.MonkeyPatch) -> None:
    component = _component(stack, model, tmp_path)
    monkeypatch.setenv("OPENAI_API_KEY", stack.gateway.master_key)
    _check_result(stack, model, component)


def test_component_client_with_key_added_after_load(stack: Stack, tmp_path: Path) -> None:
    component = _component(stack, VLLM_NAME, tmp_path)
    component["config"]["api_key"] = stack.gateway.master_key
    _check_result(stack, VLLM_NAME, component)


def test_component_client_without_key_fails_on_load(stack: Stack, tmp_path: Path) -> None:
    component = _component(stack, VLLM_NAME, tmp_path)
    with pytest.raises(openai.OpenAIError, match="api_key"):
        ChatCompletionClient.load_component(component)
