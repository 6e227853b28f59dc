"""Real vLLM and real Ollama, started exactly as the chart's pods start them, behind the real gateway.

For a spec that mixes vLLM, Ollama, llama.cpp, a server of one's own and an external endpoint: the chart's Ollama init
script pulls the model from a registry mirror, both engines come up on the chart's probes, and the
rendered gateway config serves chat, a forced tool call through vLLM's parser, usage, and both AutoGen
APIs; `stackgen verify --local` passes against the same engines.

The one change to each spec is the Ollama model: the library tag becomes the same model in the local
registry (`127.0.0.1:PORT/library/tiny:latest`, insecureRegistry), as an air-gapped cluster names its
mirror. vLLM's Hub id is swapped for the tiny model's directory on the rendered command line.

`kind-cpu` ran here too until 2026-12-06: its engines are this spec's, and the node tier (tests/node/test_kind_cpu.py)
proves the same of it more strongly, from the chart's own pods on a real kubelet: probes, the pull before the server,
verify with both AutoGen configs.
"""

from __future__ import annotations

import json
import secrets
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml
from click.testing import CliRunner

from stackgen.cli import cli
from stackgen.gateway import MASTER_KEY_ENV
from stackgen.load import load_text
from stackgen.localstack import Gateway, point_at_local, start_gateway
from stackgen.plan import Plan, plan
from stackgen.render import render_files, write_tree
from stackgen.verify import verify
from tests.support import CPU_PROFILE, VLLM_CODER

from .conftest import LocalEngines
from .pods import Server
from .registry import mirrored
from .served import start_engines

MIXED_SPEC = ("""\
name: mixed
namespace: agents
autogen: {apiKeyEnv: MIXED_GATEWAY_KEY}
profiles:
""" + CPU_PROFILE + """\
  small: {cpu: "1", memory: 2Gi}
models:
""" + VLLM_CODER + """\
    toolCalling: true
    tags: [local, tools]
    fallbacks: [helper]
  - name: helper
    engine: ollama
    model: qwen2.5:0.5b
    profile: small
    tags: [local]
  - name: desk
    engine: external
    baseUrl: http://192.168.1.20:1234/v1
    model: coder
    tags: [desk]
  - name: small
    engine: llamacpp
    model: Qwen/Qwen2.5-0.5B-Instruct-GGUF
    file: qwen2.5-0.5b-instruct-q4_k_m.gguf
    profile: small
    toolCalling: true
    tags: [local]
  - name: byo
    engine: custom
    image: ghcr.io/ggml-org/llama.cpp:server-b11549
    command: [/app/llama-server]
    args: [--model, /models/tiny.gguf, --host, 0.0.0.0, --port, "9000", --alias, byo-model]
    port: 9000
    healthPath: /health
    model: byo-model
    profile: small
    toolCalling: true
    jsonOutput: true
    contextLength: 4096
    tags: [byo]
""")
# The external endpoint's stand-in is a real server of another make: the vLLM started for `coder`, asked
# for its served name, as an LM Studio on a desk would be asked for its loaded model.
EXTERNAL_STAND_IN = {"mixed": {"desk": "coder"}}


@dataclass
class RunningStack:
    plan: Plan
    spec_path: Path
    files: dict[str, str]
    gateway: Gateway
    servers: dict[str, Server]  # in-cluster model name -> its engine
    pulls: dict[str, str] = field(default_factory=dict)  # Ollama model name -> the init container's output

    @property
    def key_env(self) -> str:
        return self.plan.stack.autogen.apiKeyEnv


@pytest.fixture(scope="module", params=["mixed"])
def running(request: pytest.FixtureRequest, local: LocalEngines, ollama_model: str,
            engines_workdir: Path) -> Iterator[RunningStack]:
    name: str = request.param
    workdir = engines_workdir / name
    workdir.mkdir()
    text = yaml.safe_dump(mirrored(yaml.safe_load(MIXED_SPEC), ollama_model), sort_keys=False)
    spec_path = workdir / "stack.yaml"
    spec_path.write_text(text)
    resolved = plan(load_text(text, str(spec_path)))
    files = render_files(resolved.stack)
    servers, pulls = start_engines(resolved, files, local, workdir)
    urls = {model: servers[model].api_base for model in servers}
    urls.update({ext: servers[target].api_base for ext, target in EXTERNAL_STAND_IN.get(name, {}).items()})
    config = point_at_local(yaml.safe_load(files["litellm/config.yaml"]), urls)
    key = f"sk-test-{secrets.token_hex(8)}"
    try:
        gateway = start_gateway(config, workdir, {MASTER_KEY_ENV: key})
    except BaseException:
        for server in servers.values():
            server.stop()
        raise
    try:
        yield RunningStack(resolved, spec_path, files, gateway, servers, pulls)
    finally:
        gateway.process.stop()
        for server in servers.values():
            server.stop()


def _chat(base: str, key: str, model: str, **extra: Any) -> dict[str, Any]:
    body = {"model": model, "messages": [{"role": "user", "content": "Say hi."}], "max_tokens": 16, **extra}
    response = httpx.post(f"{base}/chat/completions", json=body, headers={"Authorization": f"Bearer {key}"},
                          timeout=120.0)
    response.raise_for_status()
    reply: dict[str, Any] = response.json()
    return reply


def test_pull_script_put_the_model_on_the_volume_first(running: RunningStack) -> None:
    """The init container pulled from the mirror before the server started, so Ready means loaded-able."""
    ollama_models = [m for m in running.plan.served if m.engine_name == "ollama"]
    assert ollama_models
    for m in ollama_models:
        assert "success" in running.pulls[m.name], running.pulls[m.name]
        listed = httpx.get(f"{running.servers[m.name].url}/api/tags", timeout=10).json()["models"]
        assert [t["name"] for t in listed] == [m.spec.model]


def test_every_engine_passes_the_charts_probes(running: RunningStack) -> None:
    for server in running.servers.values():
        for kind, path in server.container.probes.items():
            assert httpx.get(server.url + path, timeout=10).status_code == 200, (server.name, kind, path)


def test_ollama_is_warm_before_the_first_request(running: RunningStack) -> None:
    """The startup probe (`ollama run MODEL ""`) loaded the model: it is in memory before any agent asks."""
    for m in running.plan.served:
        if m.engine_name == "ollama":
            loaded = httpx.get(f"{running.servers[m.name].url}/api/ps", timeout=10).json()["models"]
            assert [x["name"] for x in loaded] == [m.spec.model]


def test_verify_passes_with_both_autogen_apis(running: RunningStack, tmp_path: Path) -> None:
    """Chat with usage from every model, a forced tool call where toolCalling is on, both AutoGen configs."""
    out = tmp_path / "out"
    write_tree(out, render_files(running.plan.stack, gateway_url=running.gateway.api_base, with_manifests=False))
    checks = verify(running.plan, running.gateway.api_base, running.gateway.master_key, out / "autogen")
    failed = [c for c in checks if not c.ok]
    assert not failed, failed
    kinds = {(c.model, c.check) for c in checks}
    for m in running.plan.models:
        assert {(m.name, "chat"), (m.name, "autogen-0.2"), (m.name, "autogen-0.4")} <= kinds
        assert ((m.name, "tools") in kinds) == m.spec.toolCalling


def test_forced_tool_call_comes_back_through_vllms_parser(running: RunningStack) -> None:
    tool_models = [m for m in running.plan.served if m.engine_name == "vllm" and m.spec.toolCalling]
    assert tool_models
    tool = {"type": "function", "function": {"name": "lookup", "description": "Look a word up.", "parameters": {
        "type": "object", "properties": {"word": {"type": "string"}}, "required": ["word"]}}}
    for m in tool_models:
        assert "--tool-call-parser" in running.servers[m.name].container.args
        reply = _chat(running.gateway.api_base, running.gateway.master_key, m.name, tools=[tool],
                      tool_choice="required", max_tokens=128)
        calls = reply["choices"][0]["message"]["tool_calls"]
        assert calls[0]["function"]["name"] == "lookup"
        assert isinstance(json.loads(calls[0]["function"]["arguments"]), dict)


def test_usage_is_reported_for_every_model(running: RunningStack) -> None:
    for m in running.plan.models:
        usage = _chat(running.gateway.api_base, running.gateway.master_key, m.name)["usage"]
        assert usage["prompt_tokens"] > 0 and usage["completion_tokens"] > 0, (m.name, usage)


def test_ollama_keeps_its_model_loaded(running: RunningStack) -> None:
    """The plan's OLLAMA_KEEP_ALIVE=-1: after a call the model stays in memory, no 5-minute unload."""
    for m in running.plan.served:
        if m.engine_name != "ollama":
            continue
        assert running.servers[m.name].container.env["OLLAMA_KEEP_ALIVE"] == "-1"
        _chat(running.gateway.api_base, running.gateway.master_key, m.name)
        loaded = httpx.get(f"{running.servers[m.name].url}/api/ps", timeout=10).json()["models"]
        assert [x["name"] for x in loaded] == [m.spec.model]
        # Ollama reports "for ever" as an expiry years ahead.
        assert int(loaded[0]["expires_at"][:4]) >= 2100, loaded[0]["expires_at"]


def test_stackgen_verify_local_against_the_real_engines(running: RunningStack, tmp_path: Path) -> None:
    out = tmp_path / "out"
    write_tree(out, render_files(running.plan.stack, with_manifests=False))
    backends = [f"{name}={server.api_base}" for name, server in running.servers.items()]
    backends += [f"{ext}={running.servers[target].api_base}"
                 for ext, target in EXTERNAL_STAND_IN.get(running.plan.stack.name, {}).items()]
    argv = ["verify", str(running.spec_path), "--local", "--autogen-dir", str(out / "autogen")]
    for backend in backends:
        argv += ["--backend", backend]
    result = CliRunner().invoke(cli, argv, catch_exceptions=False)
    assert result.exit_code == 0, result.output
    assert "FAIL" not in result.output
