"""Fixtures for the local real stack: tiny GGUF -> llama.cpp servers -> the rendered LiteLLM gateway.

A stack here is a spec rendered by stackgen exactly as `stackgen render` writes it, with one change:
each model's address points at a llama.cpp server on 127.0.0.1 (`point_at_local`). That includes the
external models: hosted providers reach their stand-in through `api_base`, and a stand-in for a
keyed provider refuses requests without the key the gateway reads from the variable the rendered
config names, so a reply proves the Secret-sourced key got through.

Fixture API (session-scoped unless said; every process is stopped at session end, and the session
fails if one survives):

- ``tiny_model`` -> Path of a random-weight llama GGUF built once.
- ``start_model_server(alias, api_key=None)`` -> ModelServer.
- ``launch(stack)`` -> LocalStack: servers, gateway and rendered files for a spec (a new set per call).
- ``example_stacks`` -> ExamplePool: ``.get(name)`` launches a built-in example once and keeps it up.
"""

from __future__ import annotations

import secrets
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import yaml

from stackgen import examples
from stackgen.localstack import Gateway, ManagedProcess, free_port, point_at_local, start_gateway
from stackgen.plan import ModelPlan, Plan, plan
from stackgen.render import render_files
from stackgen.spec import Stack

from .procs import ModelServer, start_llama_server
from .tinymodel import build_tiny_gguf

EXAMPLES = ("kind-cpu", "gpu-fleet", "hybrid")
StartModelServer = Callable[..., ModelServer]


@dataclass
class LocalStack:
    """A rendered stack running here: the gateway and one llama.cpp server per model."""

    plan: Plan
    gateway: Gateway
    servers: dict[str, ModelServer]  # model name -> the server standing in for it
    files: dict[str, str] = field(repr=False)  # render_files output for this gateway's URL
    autogen_dir: Path
    provider_keys: dict[str, str]  # gateway env var -> the key its provider's stand-in requires

    @property
    def name(self) -> str:
        return self.plan.stack.name

    @property
    def gateway_key_env(self) -> str:
        return self.plan.stack.autogen.apiKeyEnv

    def rendered_config(self) -> dict[str, Any]:
        loaded: dict[str, Any] = yaml.safe_load(self.files["litellm/config.yaml"])
        return loaded


def served_alias(model: ModelPlan) -> str:
    """The model id the gateway sends upstream: vLLM's served name, Ollama's tag, the provider's id."""
    return model.route.split("/", 1)[1]


@pytest.fixture(scope="session")
def stack_workdir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("stack")


@pytest.fixture(scope="session")
def tiny_model(stack_workdir: Path) -> Path:
    return build_tiny_gguf(stack_workdir / "tiny-llama.gguf")


@pytest.fixture(scope="session")
def _processes() -> Iterator[list[ManagedProcess]]:
    started: list[ManagedProcess] = []
    yield started
    # Gateways were started after their model servers: stop in reverse.
    for proc in reversed(started):
        proc.stop()
    leftovers = [p.name for p in started if p.alive()]
    assert not leftovers, f"processes survived teardown: {leftovers}"


@pytest.fixture(scope="session")
def start_model_server(tiny_model: Path, stack_workdir: Path,
                       _processes: list[ManagedProcess]) -> StartModelServer:
    def start(alias: str = "tiny", api_key: str | None = None) -> ModelServer:
        server = start_llama_server(tiny_model, alias, stack_workdir, api_key)
        _processes.append(server.process)
        return server

    return start


Launch = Callable[[Stack], LocalStack]


@pytest.fixture(scope="session")
def launch(start_model_server: StartModelServer, stack_workdir: Path,
           _processes: list[ManagedProcess]) -> Launch:
    def start(stack: Stack) -> LocalStack:
        resolved = plan(stack)
        keys = {m.api_key_env: f"sk-provider-{secrets.token_hex(12)}" for m in resolved.external if m.api_key_env}
        servers = {m.name: start_model_server(served_alias(m), _provider_key(m, keys)) for m in resolved.models}
        # The port is chosen first so the AutoGen files can be rendered for the gateway's real URL.
        port = free_port()
        files = render_files(stack, gateway_url=f"http://127.0.0.1:{port}/v1", with_manifests=False)
        rendered = yaml.safe_load(files["litellm/config.yaml"])
        config = point_at_local(rendered, {name: s.api_base for name, s in servers.items()})
        gateway = start_gateway(config, stack_workdir, env=keys, port=port)
        _processes.append(gateway.process)
        autogen_dir = stack_workdir / f"{stack.name}-{port}-autogen"
        autogen_dir.mkdir()
        for rel, text in files.items():
            if rel.startswith("autogen/"):
                (autogen_dir / rel.removeprefix("autogen/")).write_text(text)
        return LocalStack(resolved, gateway, servers, files, autogen_dir, keys)

    return start


def _provider_key(model: ModelPlan, keys: Mapping[str, str]) -> str | None:
    return keys[model.api_key_env] if model.api_key_env else None


class ExamplePool:
    """Built-in examples, each launched on first use and kept up for the session."""

    def __init__(self, launch: Launch) -> None:
        self._launch = launch
        self._up: dict[str, LocalStack] = {}

    def get(self, name: str) -> LocalStack:
        if name not in self._up:
            self._up[name] = self._launch(examples.resolve(name).stack)
        return self._up[name]


@pytest.fixture(scope="session")
def example_stacks(launch: Launch) -> ExamplePool:
    return ExamplePool(launch)


def example_models() -> list[tuple[str, str]]:
    """(example, model) pairs, for parametrizing tests that talk to every model of every example."""
    return [(name, m.name) for name in EXAMPLES for m in plan(examples.resolve(name).stack).models]

