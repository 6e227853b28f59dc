"""The capacity model against published numbers, and the decisions the plan takes from it."""

from __future__ import annotations

import pytest
import yaml

from stackgen import capacity, catalog
from stackgen.engines import vllm
from stackgen.load import load_text
from stackgen.plan import plan
from stackgen.render import render_files

GIB = 2**30

# From each model's config.json on the Hugging Face Hub: num_hidden_layers, num_key_value_heads,
# head_dim (hidden_size / num_attention_heads where the config has no head_dim), and the KiB one token
# of bf16 KV cache takes, worked out by hand: 2 (K and V) x layers x KV heads x head dim x 2 bytes.
PUBLISHED_KV = [
    ("meta-llama/Llama-3.1-8B-Instruct", 32, 8, 128, 128),
    ("meta-llama/Llama-3.3-70B-Instruct", 80, 8, 128, 320),
    ("Qwen/Qwen2.5-7B-Instruct", 28, 4, 128, 56),
    ("Qwen/Qwen2.5-0.5B-Instruct", 24, 2, 64, 12),
    ("Qwen/Qwen3-8B", 36, 8, 128, 144),
    ("mistralai/Mistral-7B-Instruct-v0.3", 32, 8, 128, 128),
    ("google/gemma-2-9b-it", 42, 8, 256, 336),
    ("microsoft/Phi-3.5-mini-instruct", 32, 32, 96, 384),
]


@pytest.mark.parametrize(("hf_id", "layers", "kv_heads", "head_dim", "kib"), PUBLISHED_KV)
def test_kv_cache_bytes_per_token_match_the_published_configs(hf_id: str, layers: int, kv_heads: int, head_dim: int,
                                                               kib: int) -> None:
    facts = catalog.hf_model(hf_id)
    assert facts is not None
    assert (facts.layers, facts.kv_heads, facts.head_dim) == (layers, kv_heads, head_dim)
    assert capacity.kv_bytes_per_token(facts) == kib * 1024


def test_kv_cache_agrees_with_vllms_own_log() -> None:
    # vllm-project/vllm#10517, Llama-3.1-8B-Instruct on a 24 GiB card: "kv_cache_size=3.81GiB" with
    # "# GPU blocks: 1952", and "kv_cache_size=2.89GiB" holding 23648 tokens (blocks of 16 tokens).
    facts = catalog.hf_model("meta-llama/Llama-3.1-8B-Instruct")
    assert facts is not None
    per_token = capacity.kv_bytes_per_token(facts)
    assert 1952 * 16 * per_token / GIB == pytest.approx(3.81, abs=0.005)
    assert 23648 * per_token / GIB == pytest.approx(2.89, abs=0.005)


# Parameter counts as the Hub's model pages give them (safetensors metadata); every one is bf16.
PUBLISHED_PARAMS = [
    ("meta-llama/Llama-3.1-8B-Instruct", 8_030_261_248),
    ("meta-llama/Llama-3.3-70B-Instruct", 70_553_706_496),
    ("Qwen/Qwen2.5-7B-Instruct", 7_615_616_512),
    ("Qwen/Qwen2.5-0.5B-Instruct", 494_032_768),
    ("mistralai/Mistral-7B-Instruct-v0.3", 7_248_023_552),
]


@pytest.mark.parametrize(("hf_id", "params"), PUBLISHED_PARAMS)
def test_weight_memory_is_within_5_percent_of_params_times_dtype(hf_id: str, params: int) -> None:
    facts = catalog.hf_model(hf_id)
    assert facts is not None
    assert capacity.weight_gib(facts, 2) * GIB == pytest.approx(params * 2, rel=0.05)
    assert capacity.weight_gib(facts, 4) * GIB == pytest.approx(params * 4, rel=0.05)  # dtype: float32


def test_weights_per_gpu_agree_with_vllms_own_log() -> None:
    # vllm-project/vllm#10511, Meta-Llama-3-8B (same shape and size as 3.1): "model weights take
    # 14.96GiB" on one GPU and "7.48GiB" per GPU at tensor parallel 2.
    facts = catalog.hf_model("meta-llama/Llama-3.1-8B-Instruct")
    assert facts is not None
    assert vllm.on_gpu(facts, 2, 2, 80, 0.9, 1, 4096).weights == pytest.approx(14.96, rel=0.01)
    assert vllm.on_gpu(facts, 2, 2, 80, 0.9, 2, 4096).weights == pytest.approx(7.48, rel=0.01)


def test_kv_heads_split_across_gpus_and_are_replicated_past_their_count() -> None:
    qwen = catalog.hf_model("Qwen/Qwen2.5-0.5B-Instruct")  # 2 KV heads
    phi4 = catalog.hf_model("microsoft/phi-4")  # 10 KV heads
    assert qwen is not None and phi4 is not None
    one = capacity.kv_bytes_per_token(qwen, 1)
    assert capacity.kv_bytes_per_token(qwen, 2) == one / 2
    assert capacity.kv_bytes_per_token(qwen, 4) == one / 2  # one head each, replicated
    assert [t for t in capacity.TP_SIZES if capacity.tp_compatible(phi4, t)] == [1, 2]


def test_vllm_gpu_numbers_for_qwen_7b_on_an_l4() -> None:
    facts = catalog.hf_model("Qwen/Qwen2.5-7B-Instruct")
    assert facts is not None
    cap = vllm.on_gpu(facts, 2, 2, 24, 0.9, 1, 8192)
    weights = 7.62e9 * 2 / GIB
    left = 24 * 0.9 - weights - vllm.GPU_OVERHEAD_GIB
    tokens = int(left * GIB / (56 * 1024) // 16 * 16)
    assert cap.budget == pytest.approx(21.6) and cap.kv == pytest.approx(left) and cap.max_context == tokens
    assert cap.concurrency == pytest.approx(tokens / 8192) and cap.fits
    assert cap.kv_needed == pytest.approx(8192 * 56 * 1024 / GIB)


def test_fp8_kv_cache_halves_the_bytes_per_token() -> None:
    facts = catalog.hf_model("meta-llama/Llama-3.1-8B-Instruct")
    assert facts is not None
    assert capacity.kv_bytes_per_token(facts, 1, 1.0) == 64 * 1024


SPEC = """\
name: team
profiles:
  l4: {gpu: {count: 1, memoryGiB: 24}, cpu: "4", memory: 32Gi}
  l4x4: {gpu: {count: 4, memoryGiB: 24}, cpu: "16", memory: 128Gi}
  a100x2: {gpu: {count: 2, memoryGiB: 80}, cpu: "16", memory: 128Gi}
  nomem: {gpu: {count: 2}, cpu: "4", memory: 32Gi}
  cpu: {cpu: "2", memory: 8Gi}
models:
"""


def planned(models: str):  # type: ignore[no-untyped-def]
    return plan(load_text(SPEC + models))


def test_default_context_is_shrunk_to_fit_and_reported() -> None:
    p = planned("  - {name: llama, engine: vllm, model: meta-llama/Llama-3.1-8B-Instruct, profile: l4}\n")
    m = p.served[0]
    assert m.sizing is not None and m.sizing.verdict == "fits"
    assert m.context_length is not None and m.context_length % 1024 == 0
    assert m.sizing.max_context is not None
    assert capacity.MIN_CONTEXT <= m.context_length <= m.sizing.max_context < 131072
    assert m.sizing.notes == (f"maxModelLen {m.context_length} (the default 131072 does not fit); set maxModelLen to choose",)
    values = yaml.safe_load(render_files(p.stack, with_manifests=False)["values.yaml"])
    assert values["models"]["llama"]["vllm"]["maxModelLen"] == m.context_length


def test_a_context_that_fits_is_left_alone() -> None:
    m = planned("  - {name: q, engine: vllm, model: Qwen/Qwen2.5-7B-Instruct, profile: a100x2}\n").served[0]
    assert m.context_length == 32768 and m.gpus == 1 and m.sizing is not None and m.sizing.notes == ()


@pytest.mark.parametrize(("profile", "gpus"), [("l4x4", 4), ("a100x2", 1)])
def test_tensor_parallel_is_filled_in_with_the_smallest_power_of_two_that_fits(profile: str, gpus: int) -> None:
    p = planned(f"  - {{name: q32, engine: vllm, model: Qwen/Qwen2.5-32B-Instruct, profile: {profile}, maxModelLen: 8192}}\n")
    assert p.served[0].gpus == gpus
    vllm = yaml.safe_load(render_files(p.stack, with_manifests=False)["values.yaml"])["models"]["q32"]["vllm"]
    assert vllm.get("tensorParallelSize") == (gpus if gpus > 1 else None)
    assert yaml.safe_load(render_files(p.stack, with_manifests=False)["values.yaml"])["models"]["q32"]["gpu"]["count"] == gpus


def test_a_given_tensor_parallel_size_is_kept() -> None:
    m = planned("  - {name: q, engine: vllm, model: Qwen/Qwen2.5-7B-Instruct, profile: l4x4, tensorParallelSize: 4}\n").served[0]
    assert m.gpus == 4 and m.sizing is not None and m.sizing.min_tp == 1 and m.sizing.notes == ()


def test_gpu_without_memory_is_unknown_and_keeps_the_old_defaults() -> None:
    m = planned("  - {name: q, engine: vllm, model: Qwen/Qwen2.5-7B-Instruct, profile: nomem}\n").served[0]
    assert m.sizing is not None and m.sizing.verdict == "unknown: set gpu.memoryGiB" and m.sizing.capacity is None
    assert m.gpus == 1 and m.context_length == 32768


def test_uncatalogued_model_is_unknown() -> None:
    m = planned("  - {name: x, engine: vllm, model: acme/secret-13b, profile: l4, maxModelLen: 4096}\n").served[0]
    assert m.sizing is not None and m.sizing.verdict == "unknown: not in the catalog" and m.context_length == 4096


def test_ollama_weights_come_from_the_quantised_download() -> None:
    m = planned("  - {name: g, engine: ollama, model: gemma3:12b, profile: l4}\n").served[0]
    cap = m.sizing.capacity if m.sizing else None
    assert cap is not None and cap.device == "gpu" and cap.fits
    assert cap.weights == pytest.approx(8.1e9 / GIB)  # the library's 8.1 GB, not 12.2B x 2 bytes
    assert cap.kv == pytest.approx(8192 * 2 * 48 * 8 * 256 * 2 / GIB)  # OLLAMA_CONTEXT_LENGTH 8192, f16


def test_ollama_slots_and_kv_type_change_the_kv_cache() -> None:
    m = planned("  - {name: s, engine: ollama, model: qwen2.5:7b, profile: cpu, "
                "env: {OLLAMA_NUM_PARALLEL: '2', OLLAMA_KV_CACHE_TYPE: q8_0}}\n").served[0]
    cap = m.sizing.capacity if m.sizing else None
    assert cap is not None and cap.kv == pytest.approx(8192 * 2 * (28 * 4 * 128 * 2 * 1.0) / GIB)
    assert cap.concurrency == 2


def test_vllm_on_cpu_takes_its_kv_cache_from_the_env_space() -> None:
    m = planned("  - {name: c, engine: vllm, model: Qwen/Qwen2.5-0.5B-Instruct, profile: cpu, maxModelLen: 4096}\n").served[0]
    cap = m.sizing.capacity if m.sizing else None
    assert m.env["VLLM_CPU_KVCACHE_SPACE"] == "2"  # a quarter of 8Gi
    assert cap is not None and cap.kv == 2 and cap.max_context == 2 * GIB // (12 * 1024) // 16 * 16
