"""Every agent framework's generated client, run as its users run it, against real engines behind the real
gateway: a chat reply from every model of a mixed spec, and a full tool round trip (the model calls the tool,
the agent runs it, the model answers with its result) from every tool-calling model.

One vLLM and one Ollama serve the module; the external endpoint is the vLLM server under another name. The
vLLM model serves two LoRA adapters made with peft (tinylora.py), each a model name of its own that changes one
letter of the greeting: every framework, AutoGen's two included, gets each name's own reply.
"""

from __future__ import annotations

import json
import os
import re
import secrets
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
import yaml
from click.testing import CliRunner

from stackgen import agents
from stackgen.agents.base import TOOL_RESULT
from stackgen.cli import cli
from stackgen.gateway import MASTER_KEY_ENV
from stackgen.load import load_text
from stackgen.localstack import Gateway, rewire, start_gateway
from stackgen.plan import Plan, plan
from stackgen.render import render_files, write_tree
from stackgen.verify import verify

from .conftest import LocalEngines
from .engines import tiny_lora
from .fresh_venv import fresh_venv
from .registry import mirrored
from .served import start_engines

KEY_ENV = "FRAMEWORKS_GATEWAY_KEY"
SPEC = f"""\
name: frameworks
namespace: agents
autogen: {{apiKeyEnv: {KEY_ENV}}}
profiles:
  cpu: {{cpu: "2", memory: 6Gi}}
  small: {{cpu: "1", memory: 2Gi}}
models:
  - name: coder
    engine: vllm
    model: Qwen/Qwen2.5-0.5B-Instruct
    profile: cpu
    maxModelLen: 4096
    toolCalling: true
    adapters:
      - {{name: coder-q, source: ADAPTER_Q, rank: 8}}
      - {{name: coder-w, source: ADAPTER_W, rank: 8, tags: [shouty]}}
  - name: helper
    engine: ollama
    model: qwen2.5:0.5b
    profile: small
    toolCalling: true
  - name: desk
    engine: external
    provider: openai-compatible
    baseUrl: http://192.168.1.20:1234/v1
    model: coder
"""
# What each model name answers: the base greeting, or an adapter's with its letter swapped.
GREETINGS = {"coder": "Hi, tinyqwen.", "coder-q": "Hi, tinyQwen.", "coder-w": "Hi, tinyqWen.",
             "helper": "Hi, tinyqwen.", "desk": "Hi, tinyqwen."}
ADAPTERS = {"ADAPTER_Q": ("q", "Q"), "ADAPTER_W": ("w", "W")}
MODELS = list(GREETINGS)
TOOL_MODELS = ["coder", "coder-q", "helper"]


@dataclass
class Running:
    plan: Plan
    gateway: Gateway
    out: Path  # the rendered tree, every framework, pointed at the local gateway
    key: str
    spec_text: str


@pytest.fixture(scope="module")
def stack(local: LocalEngines, ollama_model: str, engines_workdir: Path) -> Iterator[Running]:
    workdir = engines_workdir / "frameworks"
    workdir.mkdir()
    spec = SPEC
    for placeholder, (source, target) in ADAPTERS.items():
        spec = spec.replace(placeholder, str(tiny_lora(local.vllm.venv, local.tiny_qwen, source, target)))
    text = yaml.safe_dump(mirrored(yaml.safe_load(spec), ollama_model), sort_keys=False)
    resolved = plan(load_text(text, str(workdir / "stack.yaml")))
    files = render_files(resolved.stack)
    servers, _ = start_engines(resolved, files, local, workdir)
    urls = {name: server.api_base for name, server in servers.items()}
    urls["desk"] = servers["coder"].api_base
    config = rewire(yaml.safe_load(files["litellm/config.yaml"]), resolved, urls)
    key = f"sk-test-{secrets.token_hex(8)}"
    saved = os.environ.get(KEY_ENV)
    try:
        gateway = start_gateway(config, workdir, {MASTER_KEY_ENV: key})
        try:
            out = workdir / "out"
            write_tree(out, render_files(resolved.stack, gateway.api_base, with_manifests=False))
            os.environ[KEY_ENV] = key
            yield Running(resolved, gateway, out, key, text)
        finally:
            gateway.process.stop()
    finally:
        if saved is None:
            os.environ.pop(KEY_ENV, None)
        else:
            os.environ[KEY_ENV] = saved
        for server in servers.values():
            server.stop()


@pytest.mark.parametrize("model", MODELS)
@pytest.mark.parametrize("name", agents.NAMES)
def test_every_framework_gets_each_names_own_reply(stack: Running, name: str, model: str) -> None:
    """The base model's greeting when an agent names the base model, an adapter's when it names the adapter."""
    reply = agents.FRAMEWORKS[name].reply(stack.out, model, agents.Client(stack.key))
    assert GREETINGS[model] in reply, reply


@pytest.mark.parametrize("model", TOOL_MODELS)
@pytest.mark.parametrize("name", list(agents.MODULES))
def test_every_framework_completes_a_tool_round_trip(stack: Running, name: str, model: str) -> None:
    answer = agents.MODULES[name].tool_round_trip(stack.out, model, agents.Client(stack.key))
    assert answer.startswith("The tool returned:") and TOOL_RESULT in answer


def test_the_server_lists_its_adapters_and_the_gateway_routes_them_to_it(stack: Running) -> None:
    listed = httpx.get(f"{stack.gateway.api_base}/models", headers={"Authorization": f"Bearer {stack.key}"}).json()
    assert set(MODELS) <= {m["id"] for m in listed["data"]}
    served = {m.name: m.api_base for m in stack.plan.models}
    assert served["coder-q"] == served["coder-w"] == served["coder"]
    assert [m.name for m in stack.plan.models] == ["coder", "coder-q", "coder-w", "helper", "desk"]
    entries = json.loads((stack.out / "autogen" / "OAI_CONFIG_LIST").read_text())
    assert {e["model"]: e["tags"] for e in entries}["coder-w"] == ["shouty"]


# What each AutoGen snippet, which only builds an agent or a client, is followed by to ask the model something.
AUTOGEN_ASKS = {
    "ag2-classic": 'print(agent.generate_reply(messages=[{"role": "user", "content": "Say hi."}]))\n',
    "autogen-0.4": "import asyncio\nfrom autogen_core.models import UserMessage\n"
                   'print(asyncio.run(client.create([UserMessage(content="Say hi.", source="user")])).content)\n',
}


def _sections(readme: Path) -> list[tuple[str, str]]:
    """(install line, snippet) of every section of a rendered README, as written."""
    return re.findall(r"Install: `(pip install [^`]+)`\n\n```python\n(.*?)```", readme.read_text(), re.S)


@pytest.mark.parametrize("readme", ["agents/README.md", "autogen/README.md"])
def test_each_readme_snippet_runs_in_a_fresh_venv_holding_only_its_install_line(stack: Running, readme: str) -> None:
    """Every install line stackgen writes, run as written in an empty virtualenv; then the snippet under it, in
    that venv's Python (nothing of stackgen's or the tests' environment), against the real gateway."""
    sections = _sections(stack.out / readme)
    asks = list(AUTOGEN_ASKS.values()) if readme.startswith("autogen") else [""] * len(agents.MODULES)
    assert len(sections) == len(asks), sections
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV", "PYTHONHOME")}
    env.update({"PYTHONPATH": str(stack.out / "agents"), KEY_ENV: stack.key})
    for (line, code), ask in zip(sections, asks, strict=True):
        python = fresh_venv(line) / "bin" / "python"
        done = subprocess.run([str(python), "-c", code + ask], env=env, cwd=stack.out / Path(readme).parent,
                              capture_output=True, text=True, timeout=300)
        assert done.returncode == 0 and "Hi, tinyqwen." in done.stdout, (line, code, done.stdout, done.stderr[-3000:])


def test_generated_modules_read_the_key_only_from_the_environment(stack: Running) -> None:
    for framework in agents.MODULES.values():
        text = (stack.out / framework.path).read_text()
        assert stack.key not in text and "os.environ[API_KEY_ENV]" in text and f"API_KEY_ENV = '{KEY_ENV}'" in text


def test_verify_runs_every_framework_against_the_gateway(stack: Running) -> None:
    checks = verify(stack.plan, stack.gateway.api_base, stack.key, frameworks=agents.NAMES)
    failed = [c for c in checks if not c.ok]
    assert not failed, failed
    names = {(c.model, c.check) for c in checks}
    for name in agents.NAMES:
        assert {(m, name) for m in MODELS} <= names
    for name in agents.MODULES:
        assert {(m, f"{name}-tools") for m in TOOL_MODELS} <= names


def test_stackgen_verify_frameworks_from_the_command_line(stack: Running, tmp_path: Path) -> None:
    spec = tmp_path / "stack.yaml"
    spec.write_text(stack.spec_text)
    result = CliRunner().invoke(cli, ["verify", str(spec), "--gateway", stack.gateway.api_base,
                                      "--frameworks", "langchain,openai-agents"])
    assert result.exit_code == 0, result.output
    for check in ("langchain", "langchain-tools", "openai-agents", "openai-agents-tools"):
        assert f" {check} " in result.output
    assert "ag2-classic" not in result.output
