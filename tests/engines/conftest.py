"""Fixtures of the real-engine tier: real vLLM (CPU wheel) and real Ollama (built from its Go module),
started with the command lines, env and probes of the chart's rendered pods, behind the real LiteLLM
gateway on the rendered config.

The engines come from scripts/engines (installed or built once per version and cached, see the README).
The models are made here: a tiny Qwen2 for vLLM (tinyqwen.py) and the same weights as a GGUF for Ollama
(tinyollama.py), whose chat templates script their replies; Ollama's is published to a local registry
that the chart's own pull script pulls from (registry.py). llama.cpp serves the stack tier's steered GGUF.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.stack.tinymodel import build_tiny_gguf

from . import engines
from .engines import LlamaServer, Ollama, Vllm, llamacpp_bin_dir, ollama_bin_dir, vllm_venv
from .registry import Registry, build_tiny_model, publish_model, start_registry


@pytest.fixture(scope="session")
def engines_workdir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("engines")


@pytest.fixture(scope="session")
def vllm() -> Vllm:
    return Vllm(vllm_venv())


@pytest.fixture(scope="session")
def ollama() -> Ollama:
    return Ollama(ollama_bin_dir())


@pytest.fixture(scope="session")
def tiny_qwen(vllm: Vllm) -> Path:
    """A Hugging Face model directory vLLM loads (tinyqwen.py)."""
    return engines.tiny_qwen(vllm.venv)


@pytest.fixture(scope="session")
def registry(ollama: Ollama, engines_workdir: Path) -> Iterator[Registry]:
    with start_registry(ollama.bin_dir / "registry", engines_workdir / "registry") as running:
        yield running


@pytest.fixture(scope="session")
def ollama_model(ollama: Ollama, registry: Registry, engines_workdir: Path) -> str:
    """The tiny model's reference in the local registry, as a spec names a mirrored model."""
    gguf = build_tiny_model(engines_workdir / "tiny-ollama.gguf")
    return publish_model(ollama.bin_dir / "ollama", gguf, registry, "tiny", engines_workdir / "publish")


@dataclass(frozen=True)
class LocalEngines:
    """Every engine's local stand-in for its image, and the models they serve."""

    vllm: Vllm
    ollama: Ollama
    llama: LlamaServer
    tiny_qwen: Path


@pytest.fixture(scope="session")
def local(vllm: Vllm, ollama: Ollama, tiny_qwen: Path, engines_workdir: Path) -> LocalEngines:
    # llama.cpp serves the stack tier's tiny GGUF, steered for llama.cpp's tool-call grammar.
    gguf = build_tiny_gguf(engines_workdir / "tiny-llama.gguf")
    return LocalEngines(vllm, ollama, LlamaServer(llamacpp_bin_dir(), gguf), tiny_qwen)
