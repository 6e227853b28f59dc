"""A reasoning model on real vLLM: the catalog's parser is rendered (`--reasoning-parser qwen3` for Qwen3), vLLM
returns the thinking apart from the answer, and both AutoGen clients get the answer without the thinking
(AutoGen 0.4 also gets the thinking, as its `thought`).

The tiny model writes a `<think>` block when the request asks for thinking (`chat_template_kwargs`), as Qwen3
does by default; the requests here ask, through each client's way of passing extra body fields.
"""

from __future__ import annotations

import asyncio
import json
import secrets
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml

from stackgen.gateway import MASTER_KEY_ENV
from stackgen.load import load_text
from stackgen.localstack import Gateway, point_at_local, start_gateway
from stackgen.render import render_files, write_tree

from .conftest import LocalEngines

SPEC = """\
name: think
profiles:
  cpu: {cpu: "2", memory: 6Gi}
models:
  - name: thinker
    engine: vllm
    model: Qwen/Qwen3-0.6B
    profile: cpu
    maxModelLen: 4096
    toolCalling: true
"""
THINK = {"chat_template_kwargs": {"enable_thinking": True}}
GREETING = "Hi, tinyqwen."  # what the tiny model answers (tests/engines/tinyqwen.py)


@pytest.fixture(scope="module")
def thinking(local: LocalEngines, tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Gateway, Path, list[str]]]:
    work = tmp_path_factory.mktemp("reasoning")
    files = render_files(load_text(SPEC))
    server = local.vllm.start(files, "think", "thinker", "Qwen/Qwen3-0.6B", local.tiny_qwen, work)
    try:
        config = point_at_local(yaml.safe_load(files["litellm/config.yaml"]), {"thinker": server.api_base})
        gateway = start_gateway(config, work, {MASTER_KEY_ENV: f"sk-{secrets.token_hex(8)}"})
        try:
            out = work / "out"
            write_tree(out, render_files(load_text(SPEC), gateway_url=gateway.api_base, with_manifests=False))
            yield gateway, out / "autogen", server.container.args
        finally:
            gateway.process.stop()
    finally:
        server.stop()


def test_the_catalogs_reasoning_parser_is_rendered(thinking: tuple[Gateway, Path, list[str]]) -> None:
    args = thinking[2]
    assert args[args.index("--reasoning-parser") + 1] == "qwen3"
    assert args[args.index("--tool-call-parser") + 1] == "hermes"


def test_vllm_returns_the_thinking_apart_from_the_answer(thinking: tuple[Gateway, Path, list[str]]) -> None:
    gateway = thinking[0]
    body = {"model": "thinker", "messages": [{"role": "user", "content": "Say hi."}], "max_tokens": 64, **THINK}
    reply = httpx.post(f"{gateway.api_base}/chat/completions", json=body, headers=gateway.headers(), timeout=120)
    reply.raise_for_status()
    message = reply.json()["choices"][0]["message"]
    assert message["content"].strip() == GREETING
    thought = message.get("reasoning_content") or message.get("reasoning")
    assert thought and "<think>" not in message["content"], message


def test_autogen_04_gets_answer_and_thought(thinking: tuple[Gateway, Path, list[str]]) -> None:
    from autogen_core.models import ChatCompletionClient, UserMessage

    gateway, autogen_dir, _ = thinking
    component: dict[str, Any] = json.loads((autogen_dir / "model_clients.json").read_text())["thinker"]
    client = ChatCompletionClient.load_component({**component, "config": {**component["config"],
                                                                          "api_key": gateway.master_key}})

    async def ask() -> Any:
        try:
            return await client.create([UserMessage(content="Say hi.", source="test")],
                                       extra_create_args={"extra_body": THINK, "max_tokens": 64})
        finally:
            await client.close()

    result = asyncio.run(ask())
    assert isinstance(result.content, str) and result.content.strip() == GREETING
    assert result.thought, result


def test_ag2_classic_gets_the_answer_without_the_thinking(thinking: tuple[Gateway, Path, list[str]]) -> None:
    from autogen import ConversableAgent, LLMConfig

    gateway, autogen_dir, _ = thinking
    entries = [{**e, "api_key": gateway.master_key, "extra_body": THINK, "max_tokens": 64}
               for e in json.loads((autogen_dir / "OAI_CONFIG_LIST").read_text())]
    agent = ConversableAgent("thinker", llm_config=LLMConfig(*entries), human_input_mode="NEVER")
    reply = agent.generate_reply(messages=[{"role": "user", "content": "Say hi."}])
    text = reply if isinstance(reply, str) else (reply or {}).get("content")
    assert text is not None and text.strip() == GREETING, reply
