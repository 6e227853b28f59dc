"""The real engines refuse what they do not accept, in their own words: proof that the tier runs what the
chart renders and does not paper over it. A flag vLLM does not know, rendered into the args, ends vLLM
with its own argparse error; a model the registry lacks fails the chart's Ollama pull script with
Ollama's error, so the pod never starts its server; an adapter vLLM cannot load ends vLLM with its error."""

from __future__ import annotations

from pathlib import Path

import pytest

from stackgen.load import load_text
from stackgen.render import render_files
from tests.support import CPU_PROFILE, VLLM_CODER

from .engines import Ollama, Vllm

SPEC = ("""\
name: neg
profiles:
""" + CPU_PROFILE + """\
models:
""" + VLLM_CODER + """\
    args: [--no-such-flag]
  - name: helper
    engine: ollama
    model: MODEL_REF
    insecureRegistry: true
    profile: cpu
""")


def test_a_flag_vllm_does_not_know_fails_with_vllms_own_error(vllm: Vllm, tiny_qwen: Path, tmp_path: Path) -> None:
    files = render_files(load_text(SPEC.replace("MODEL_REF", "127.0.0.1:5000/library/x:latest")))
    with pytest.raises(RuntimeError, match="unrecognized arguments: --no-such-flag"):
        vllm.start(files, "neg", "coder", "Qwen/Qwen2.5-0.5B-Instruct", tiny_qwen, tmp_path)


def test_a_model_the_registry_lacks_fails_the_pull_script(ollama: Ollama, ollama_model: str, tmp_path: Path) -> None:
    missing = ollama_model.replace("/library/tiny:", "/library/absent:")
    files = render_files(load_text(SPEC.replace("MODEL_REF", missing)))
    done = ollama.pull(files, "neg", "helper", tmp_path / "home", tmp_path)
    assert done.returncode == 1
    assert "Error: pull model manifest: file does not exist" in done.stdout + done.stderr


def test_an_adapter_that_cannot_be_fetched_keeps_the_server_from_ready_with_vllms_error(
        vllm: Vllm, tiny_qwen: Path, tmp_path: Path) -> None:
    """vLLM loads the chart's --lora-modules as it starts: one it cannot find ends it, in its own words, so the
    pod never passes its probes (the kubelet restarts it, and it stays un-Ready)."""
    spec = SPEC.replace("    args: [--no-such-flag]\n",
                        f"    adapters: [{{name: gone, source: {tmp_path}/no-adapter, rank: 8}}]\n")
    files = render_files(load_text(spec.replace("MODEL_REF", "127.0.0.1:5000/library/x:latest")))
    with pytest.raises(RuntimeError, match="Loading lora gone failed: No adapter found"):
        vllm.start(files, "neg", "coder", "Qwen/Qwen2.5-0.5B-Instruct", tiny_qwen, tmp_path)
