"""The emitted AutoGen files, loaded by the real AutoGen libraries (classic 0.2/AG2 and 0.4+)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from stackgen import examples
from stackgen.render import render_files


@pytest.fixture
def hybrid_files(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    # The files carry no key; both AutoGen flavours read OPENAI_API_KEY when `api_key` is absent.
    monkeypatch.setenv("OPENAI_API_KEY", "gateway-key-from-env")
    for rel, text in render_files(examples.resolve("hybrid").stack, with_manifests=False).items():
        if rel.startswith("autogen/"):
            (tmp_path / Path(rel).name).write_text(text)
    return tmp_path


def test_classic_llm_config_filters_by_tag(hybrid_files: Path) -> None:
    from autogen import LLMConfig

    tools = LLMConfig.from_json(path=str(hybrid_files / "OAI_CONFIG_LIST"), filter_dict={"tags": ["tools"]})
    assert sorted(c.model for c in tools.config_list) == ["local-llama", "together-llama"]
    local = LLMConfig.from_json(path=str(hybrid_files / "OAI_CONFIG_LIST"), filter_dict={"tags": ["local"]})
    assert sorted(c.model for c in local.config_list) == ["local-llama", "local-ollama"]
    entry = local.config_list[0]
    assert str(entry.base_url).rstrip("/") == "http://hybrid-gateway.agents.svc.cluster.local:4000/v1"
    assert entry.api_type == "openai"


def test_classic_agent_accepts_the_config(hybrid_files: Path) -> None:
    from autogen import AssistantAgent, LLMConfig

    llm_config = LLMConfig.from_json(path=str(hybrid_files / "OAI_CONFIG_LIST"), filter_dict={"tags": ["cloud"]})
    agent = AssistantAgent("assistant", llm_config=llm_config)
    assert sorted(c["model"] for c in agent.llm_config["config_list"]) == ["mistral-large", "together-llama"]


def test_component_configs_load_with_their_model_info(hybrid_files: Path) -> None:
    from autogen_core.models import ChatCompletionClient
    from autogen_ext.models.openai import OpenAIChatCompletionClient

    configs = json.loads((hybrid_files / "model_clients.json").read_text())
    assert set(configs) == {"local-llama", "local-ollama", "together-llama", "mistral-large", "lm-studio"}
    for name, component in configs.items():
        client = ChatCompletionClient.load_component(component)
        assert isinstance(client, OpenAIChatCompletionClient)
        assert client.model_info["function_calling"] is (name != "lm-studio")
        assert client.model_info == component["config"]["model_info"]
        # The loaded client dumps back to the same config: nothing was lost or renamed.
        assert client.dump_component().config["base_url"] == "http://hybrid-gateway.agents.svc.cluster.local:4000/v1"


@pytest.mark.parametrize("example", ["hybrid", "kind-cpu"])
def test_the_generated_usage_snippets_run(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, example: str) -> None:
    """OUT/autogen/README.md tells users how to load the files; its code must work as written."""
    import re

    stack = examples.resolve(example).stack
    for rel, text in render_files(stack, with_manifests=False).items():
        if rel.startswith("autogen/"):
            (tmp_path / Path(rel).name).write_text(text)
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    monkeypatch.setenv(stack.autogen.apiKeyEnv, "key-from-the-environment")
    snippets = re.findall(r"```python\n(.*?)```", (tmp_path / "README.md").read_text(), re.S)
    assert len(snippets) == 2
    classic: dict = {}
    exec(snippets[0], classic)
    # The clients' keys sit in AutoGen's private fields: no public call returns them.
    clients = classic["agent"].client._clients  # noqa: SLF001
    assert clients and all(c._oai_client.api_key  # noqa: SLF001
                           == "key-from-the-environment" for c in clients)
    tag = stack.models[0].tags[0]
    expected = sorted(m.name for m in stack.models if tag in m.tags)
    assert sorted(e["model"] for e in classic["agent"].llm_config["config_list"]) == expected
    modern: dict = {}
    exec(snippets[1], modern)
    assert modern["client"]._client.api_key == "key-from-the-environment"  # noqa: SLF001
