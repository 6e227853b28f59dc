"""The AutoGen files `stackgen render` writes, loaded by real AutoGen clients, get replies through the
real gateway from every model of every built-in example.

How the key gets in (found here, asserted below), which the rendered README tells users:
- AutoGen classic (autogen 0.14.1): OPENAI_API_KEY in the environment when the agent is built, or
  `entry.api_key = SecretStr(key)` on each loaded entry (`LLMConfig.from_json` takes no key).
- AutoGen 0.4+ (autogen-ext 0.7.5): OPENAI_API_KEY in the environment when `load_component` runs, or
  `config["api_key"]` added before it.
Without either, both fail at construction with openai.OpenAIError, never at the first request.
"""

from __future__ import annotations

import asyncio
import json
import os
from pathlib import Path
from typing import Any, cast

import autogen
import openai
import pytest
from autogen_core.models import ChatCompletionClient, CreateResult, UserMessage
from pydantic import SecretStr

from stackgen import examples
from stackgen.render import render_files

from .calls import decode_counts
from .conftest import EXAMPLES, ExamplePool, LocalStack, example_models


@pytest.fixture(autouse=True)
def _no_ambient_key(monkeypatch: pytest.MonkeyPatch) -> None:
    # Each test decides where the key comes from; none may leak in from the shell.
    for var in ("OPENAI_API_KEY", "OPENAI_ADMIN_KEY", "OPENAI_BASE_URL", "STACK_GATEWAY_KEY"):
        monkeypatch.delenv(var, raising=False)


def _export_gateway_key(local: LocalStack, monkeypatch: pytest.MonkeyPatch) -> str:
    """What a user does: put the gateway key in the variable the spec names (autogen.apiKeyEnv)."""
    monkeypatch.setenv(local.gateway_key_env, local.gateway.master_key)
    return local.gateway_key_env


def _entries(llm_config: autogen.LLMConfig) -> list[Any]:
    # One pydantic class per api_type, a union mypy cannot see through; Any keeps access readable.
    return list(llm_config.config_list)


def _assert_only_server_worked(local: LocalStack, model: str, before: dict[str, int]) -> None:
    after = decode_counts(local.servers)
    assert after[model] > before[model], f"{model}'s server did not answer"
    assert {n: c for n, c in after.items() if n != model} == {n: c for n, c in before.items() if n != model}


@pytest.mark.parametrize(("example", "model"), example_models())
def test_classic_agent_gets_a_reply(example_stacks: ExamplePool, example: str, model: str,
                                    monkeypatch: pytest.MonkeyPatch) -> None:
    local = example_stacks.get(example)
    tag = local.plan.model(model).spec.tags[0]
    env = _export_gateway_key(local, monkeypatch)
    llm_config = autogen.LLMConfig.from_json(path=local.autogen_dir / "OAI_CONFIG_LIST",
                                             filter_dict={"tags": [tag], "model": [model]})
    (entry,) = _entries(llm_config)
    assert entry.model == model and entry.api_key is None  # the file holds no key
    if env != "OPENAI_API_KEY":
        entry.api_key = SecretStr(os.environ[env])  # a str is accepted silently but breaks serialising
    before = decode_counts(local.servers)

    agent = autogen.ConversableAgent(name="assistant", llm_config=llm_config, human_input_mode="NEVER")
    reply = agent.generate_reply(messages=[{"role": "user", "content": "Say hi."}])

    assert isinstance(reply, str) and reply, reply
    total = agent.get_total_usage()
    assert total is not None
    usage = cast(dict[str, int], total[model])  # keyed by the model name the gateway answered with
    assert usage["prompt_tokens"] > 0 and usage["completion_tokens"] > 0
    _assert_only_server_worked(local, model, before)


async def _create(client: ChatCompletionClient) -> CreateResult:
    try:
        return await client.create([UserMessage(content="Say hi.", source="user")])
    finally:
        await client.close()


@pytest.mark.parametrize(("example", "model"), example_models())
def test_component_client_gets_a_reply(example_stacks: ExamplePool, example: str, model: str,
                                       monkeypatch: pytest.MonkeyPatch) -> None:
    local = example_stacks.get(example)
    env = _export_gateway_key(local, monkeypatch)
    component = json.loads((local.autogen_dir / "model_clients.json").read_text())[model]
    assert "api_key" not in component["config"]
    if env != "OPENAI_API_KEY":
        component = {**component, "config": {**component["config"], "api_key": os.environ[env]}}
    before = decode_counts(local.servers)

    client = ChatCompletionClient.load_component(component)
    result = asyncio.run(_create(client))

    assert isinstance(result.content, str) and result.content
    assert result.finish_reason in ("stop", "length")
    assert result.usage.prompt_tokens > 0 and result.usage.completion_tokens > 0
    assert client.model_info["function_calling"] == local.plan.model(model).spec.toolCalling
    _assert_only_server_worked(local, model, before)


@pytest.fixture(scope="module")
def rendered_autogen(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """Each example's AutoGen files, rendered for some gateway URL; no gateway needed to load them."""
    dirs = {}
    for name in EXAMPLES:
        out = tmp_path_factory.mktemp(name)
        files = render_files(examples.resolve(name).stack, gateway_url="http://127.0.0.1:9/v1", with_manifests=False)
        for rel in ("autogen/OAI_CONFIG_LIST", "autogen/model_clients.json"):
            (out / Path(rel).name).write_text(files[rel])
        dirs[name] = out
    return dirs


@pytest.mark.parametrize("example", EXAMPLES)
def test_without_a_key_both_clients_fail_on_construction(rendered_autogen: dict[str, Path], example: str) -> None:
    first = examples.resolve(example).stack.models[0].name
    llm_config = autogen.LLMConfig.from_json(path=rendered_autogen[example] / "OAI_CONFIG_LIST",
                                             filter_dict={"model": [first]})
    with pytest.raises(openai.OpenAIError, match="api_key"):
        autogen.ConversableAgent(name="assistant", llm_config=llm_config, human_input_mode="NEVER")
    component = json.loads((rendered_autogen[example] / "model_clients.json").read_text())[first]
    with pytest.raises(openai.OpenAIError, match="api_key"):
        ChatCompletionClient.load_component(component)
