"""Fixtures for the local real stack: tiny GGUF -> llama.cpp servers -> LiteLLM gateway.

Fixture API (all session-scoped; every process started is stopped at session end):

- ``tiny_model`` -> Path of a random-weight llama GGUF built once per session.
- ``start_model_server(alias="tiny")`` -> ModelServer(alias, url, process); ``.api_base`` ends in /v1.
- ``start_gateway(config, env=None)`` -> Gateway(url, master_key, process, config_path, config).
- ``stack`` -> Stack: one gateway serving a vLLM-style and an Ollama-style model, never faulted.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from stackgen.localstack import point_at_local

from .gatewayconfig import OLLAMA_NAME, OLLAMA_TAG, VLLM_NAME, gateway_config, ollama_entry, vllm_entry
from .procs import Gateway, ManagedProcess, ModelServer, start_litellm, start_llama_server
from .tinymodel import build_tiny_gguf

StartModelServer = Callable[..., ModelServer]
StartGateway = Callable[..., Gateway]


@dataclass
class Stack:
    gateway: Gateway
    servers: dict[str, ModelServer]  # model_name -> the server standing in for it
    upstream_names: dict[str, str]  # model_name -> model name the engine serves


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
    # Gateways first (they were started after their model servers), then servers.
    for proc in reversed(started):
        proc.stop()
    leftovers = [p.name for p in started if p.alive()]
    assert not leftovers, f"processes survived teardown: {leftovers}"


@pytest.fixture(scope="session")
def start_model_server(tiny_model: Path, stack_workdir: Path,
                       _processes: list[ManagedProcess]) -> StartModelServer:
    def start(alias: str = "tiny") -> ModelServer:
        server = start_llama_server(tiny_model, alias, stack_workdir)
        _processes.append(server.process)
        return server

    return start


@pytest.fixture(scope="session")
def start_gateway(stack_workdir: Path, _processes: list[ManagedProcess]) -> StartGateway:
    def start(config: Mapping[str, Any], env: Mapping[str, str] | None = None) -> Gateway:
        gateway = start_litellm(config, env, stack_workdir)
        _processes.append(gateway.process)
        return gateway

    return start


@pytest.fixture(scope="session")
def stack(start_model_server: StartModelServer, start_gateway: StartGateway) -> Stack:
    upstream = {VLLM_NAME: VLLM_NAME, OLLAMA_NAME: OLLAMA_TAG}
    servers = {name: start_model_server(served) for name, served in upstream.items()}
    rendered = gateway_config(
        [vllm_entry(VLLM_NAME), ollama_entry(OLLAMA_NAME, OLLAMA_TAG)],
        fallbacks=[{VLLM_NAME: [OLLAMA_NAME]}],
    )
    config = point_at_local(rendered, {name: s.api_base for name, s in servers.items()})
    return Stack(start_gateway(config), servers, upstream)
