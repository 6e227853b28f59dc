"""The GPU path in `validate`: what a GPU profile or a Hub model asks of the cluster that stackgen cannot check
or place by itself is said, with the fix; a MIG slice's memory comes from its resource name, so models on it
are sized like any other."""

from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import CliRunner

from stackgen.cli import cli


def spec(gpu: str, placement: str = "", model: str = "Qwen/Qwen2.5-0.5B-Instruct", extra: str = "") -> str:
    return f"""\
name: gpus
profiles:
  gpu: {{gpu: {gpu}{placement}}}
models:
  - name: m
    engine: vllm
    model: {model}
    profile: gpu
    maxModelLen: 4096
{extra}"""


def validate(tmp_path: Path, text: str) -> tuple[int, str]:
    path = tmp_path / "stack.yaml"
    path.write_text(text)
    result = CliRunner().invoke(cli, ["validate", str(path)])
    return result.exit_code, result.output + result.stderr


def test_a_product_that_no_node_selector_asks_for_is_a_warning_with_the_label_to_use(tmp_path: Path) -> None:
    code, out = validate(tmp_path, spec("{resource: nvidia.com/gpu, count: 1, memoryGiB: 24, product: NVIDIA-L4}"))
    assert code == 0, out
    assert ("warning: profiles.gpu.gpu.product: NVIDIA-L4 asks no node for it" in out
            and "(add nodeSelector: {nvidia.com/gpu.product: NVIDIA-L4}" in out), out
    placed = spec("{resource: nvidia.com/gpu, count: 1, memoryGiB: 24, product: NVIDIA-L4}",
                  ", nodeSelector: {nvidia.com/gpu.product: NVIDIA-L4}")
    assert "gpu.product" not in validate(tmp_path, placed)[1]


def test_a_gpu_of_unknown_memory_is_a_warning_that_nothing_checks_the_fit(tmp_path: Path) -> None:
    code, out = validate(tmp_path, spec("{resource: nvidia.com/gpu, count: 1}"))
    assert code == 0, out
    assert "warning: profiles.gpu.gpu.memoryGiB: not set, so nothing checks that its models fit" in out, out


@pytest.mark.parametrize(("model", "fits"), [("Qwen/Qwen2.5-0.5B-Instruct", True), ("Qwen/Qwen2.5-14B-Instruct", False)])
def test_a_mig_slice_is_sized_by_the_memory_its_name_gives(tmp_path: Path, model: str, fits: bool) -> None:
    """nvidia.com/mig-1g.10gb holds 10 GB: a 0.5B model fits it, a 14B one (about 28 GiB of weights) does not."""
    code, out = validate(tmp_path, spec("{resource: nvidia.com/mig-1g.10gb, count: 1}", model=model))
    assert "memoryGiB" not in out, out  # known from the name: no warning
    assert (code == 0) is fits, out
    if not fits:
        assert "models[0]" in out and "GiB" in out, out


def test_a_gated_model_without_a_token_is_a_warning_with_the_fix(tmp_path: Path) -> None:
    gpu = "{resource: nvidia.com/gpu, count: 1, memoryGiB: 80}"
    code, out = validate(tmp_path, spec(gpu, model="meta-llama/Llama-3.1-8B-Instruct"))
    assert code == 0, out
    assert ("warning: models[0].hfToken: m's meta-llama/Llama-3.1-8B-Instruct is gated on the Hugging Face Hub" in out
            and "(add hfToken: {secretName: hf-token, key: token})" in out), out
    with_token = spec(gpu, model="meta-llama/Llama-3.1-8B-Instruct", extra="    hfToken: {secretName: hf, key: t}\n")
    assert "hfToken" not in validate(tmp_path, with_token)[1]
    assert "hfToken" not in validate(tmp_path, spec(gpu))[1]  # Qwen's repositories are open
