"""Models bigger than one node (#38): the catalog's frontier rows against their published configs, their memory
across a group of nodes, the group size `plan` suggests, and the LeaderWorkerSet a group renders."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import yaml

from stackgen import capacity, catalog
from stackgen.errors import StackgenError
from stackgen.load import load_text
from stackgen.plan import Plan, plan
from stackgen.render import render_files

pytestmark = pytest.mark.unit

GIB = 2**30
CONFIGS = Path(__file__).parent / "hub_configs"
# The bytes of each model's published weights (tests/hub_configs/README.md) and the parameters they hold.
PUBLISHED_WEIGHTS = {
    "openai/gpt-oss-120b": (65_248_815_744, 116.8e9),
    "Qwen/Qwen3-235B-A22B": (470_187_269_120, 235.09e9),
    "deepseek-ai/DeepSeek-V3": (688_586_727_753, 684.531e9),
}


def published(hf_id: str) -> dict[str, Any]:
    config: dict[str, Any] = json.loads((CONFIGS / f"{hf_id.replace('/', '--')}.json").read_text())
    return config


@pytest.mark.parametrize("hf_id", sorted(PUBLISHED_WEIGHTS))
def test_the_catalog_rows_are_the_published_configs(hf_id: str) -> None:
    facts, shape = catalog.hf_model(hf_id), catalog.shape(published(hf_id))
    assert facts is not None
    assert (facts.layers, facts.hidden, facts.kv_heads, facts.context_length, facts.kv_latent) == \
        (shape.layers, shape.hidden, shape.kv_heads, shape.context_length, shape.kv_latent)
    if not shape.kv_latent:  # latent attention caches no per-head keys: its head size sizes nothing here
        assert facts.head_dim == shape.head_dim
    assert (facts.active_b is not None) == (shape.experts > 0)  # every MoE row says what a token passes through


@pytest.mark.parametrize("hf_id", sorted(PUBLISHED_WEIGHTS))
def test_weights_are_what_the_published_files_hold(hf_id: str) -> None:
    """Every expert resident, at the bytes per parameter the files hold (MXFP4, FP8 or bf16)."""
    total, params = PUBLISHED_WEIGHTS[hf_id]
    facts = catalog.hf_model(hf_id)
    assert facts is not None
    assert capacity.weight_gib(facts) * GIB == pytest.approx(total * facts.params_b * 1e9 / params, rel=0.01)


def test_latent_attention_caches_one_vector_per_layer_whole_on_every_gpu() -> None:
    # DeepSeek-V3: 61 layers x (512 + 64) values x 2 bytes, against 2 x 61 x 128 heads x 128 x 2 for per-head K and V.
    v3 = catalog.hf_model("deepseek-ai/DeepSeek-V3")
    assert v3 is not None
    assert capacity.kv_bytes_per_token(v3) == 61 * 576 * 2
    assert capacity.kv_bytes_per_token(v3, tp=8) == 61 * 576 * 2  # not split across the tensor-parallel GPUs
    assert capacity.kv_bytes_per_token(v3, tp=8, pp=2) == 31 * 576 * 2  # each stage holds its own layers (61 = 31 + 30)


def test_pipeline_stages_split_the_layers_and_the_weights() -> None:
    qwen = catalog.hf_model("Qwen/Qwen3-235B-A22B")  # 94 layers, 4 KV heads of 128
    assert qwen is not None
    assert capacity.kv_bytes_per_token(qwen, tp=4, pp=2) == 2 * 47 * 1 * 128 * 2
    assert capacity.kv_bytes_per_token(qwen, tp=4, pp=3) == 2 * 32 * 1 * 128 * 2  # the largest stage: 32 of 94


SPEC = """\
name: big
profiles:
  h100: {gpu: {count: 8, memoryGiB: 80}, cpu: "64", memory: 1024Gi}
  h200: {gpu: {count: 8, memoryGiB: 141}, cpu: "64", memory: 1536Gi}
  cpu: {cpu: "8", memory: 16Gi}
models:
"""


def planned(model: str, enforce_capacity: bool = True) -> Plan:
    return plan(load_text(SPEC + model, "stack.yaml"), enforce_capacity)


def refusal(model: str) -> str:
    with pytest.raises(StackgenError) as raised:
        planned(model)
    return str(raised.value)


@pytest.mark.parametrize(("model", "profile", "nodes"), [
    ("meta-llama/Llama-3.1-405B-Instruct", "h100", 2),  # 756 GiB of bf16 weights
    ("deepseek-ai/DeepSeek-V3", "h100", 2),  # 629 GiB of FP8 weights
])
def test_a_model_no_node_holds_is_refused_with_the_group_that_would(model: str, profile: str, nodes: int) -> None:
    entry = f"  - {{name: m, engine: vllm, model: {model}, profile: {profile}, maxModelLen: 32768}}\n"
    assert f"set nodesPerReplica: {nodes} (a LeaderWorkerSet group of {nodes} pods of 8 GPU(s)" in refusal(entry)
    grouped = planned(entry.replace("}", f", nodesPerReplica: {nodes}}}")).served[0]
    assert grouped.sizing.verdict == "fits" and (grouped.gpus, grouped.nodes) == (8, nodes)
    assert grouped.sizing.capacity is not None and grouped.sizing.capacity.nodes == nodes


@pytest.mark.parametrize(("model", "profile", "gpus"), [
    ("deepseek-ai/DeepSeek-V3", "h200", 8),
    ("Qwen/Qwen3-235B-A22B", "h100", 8),  # 438 GiB of bf16 experts: 55 per GPU
    ("openai/gpt-oss-120b", "h100", 1),  # 61 GiB of MXFP4 weights fit one 80 GiB GPU
])
def test_a_model_one_node_holds_takes_one_pod(model: str, profile: str, gpus: int) -> None:
    m = planned(f"  - {{name: m, engine: vllm, model: {model}, profile: {profile}, maxModelLen: 32768}}\n").served[0]
    assert m.sizing.verdict == "fits" and (m.gpus, m.nodes) == (gpus, 1)


def test_a_group_that_one_pod_could_hold_says_so() -> None:
    m = planned("  - {name: m, engine: vllm, model: Qwen/Qwen3-235B-A22B, profile: h100, nodesPerReplica: 2}\n").served[0]
    assert m.sizing.verdict == "fits"
    assert "one pod of 8 GPU(s) holds it as well: nodesPerReplica 1 keeps its traffic inside a node" in m.sizing.notes


def test_a_cpu_group_splits_the_weights_across_its_pods() -> None:
    one = planned("  - {name: m, engine: vllm, model: Qwen/Qwen2.5-7B-Instruct, profile: cpu, maxModelLen: 4096}\n",
                  enforce_capacity=False)
    two = planned("  - {name: m, engine: vllm, model: Qwen/Qwen2.5-7B-Instruct, profile: cpu, maxModelLen: 4096, "
                  "nodesPerReplica: 2}\n")
    alone, split = one.served[0].sizing.capacity, two.served[0].sizing.capacity
    assert alone is not None and split is not None
    assert not alone.fits and split.fits and split.weights == pytest.approx(alone.weights / 2)


def test_a_cpu_group_without_its_warm_up_is_refused() -> None:
    assert "fails the first call of a group started with --enforce-eager" in refusal(
        "  - {name: m, engine: vllm, model: Qwen/Qwen2.5-0.5B-Instruct, profile: cpu, nodesPerReplica: 2, "
        "args: [--enforce-eager]}\n")


def lws_of(model: str) -> dict[str, Any]:
    files = render_files(planned(model).stack, with_manifests=True)
    [lws] = [yaml.safe_load(body) for path, body in files.items() if path.startswith("manifests/leaderworkerset-")]
    assert not any(path.startswith("manifests/deployment-big-m") for path in files)  # the group replaces it
    return lws


def test_a_group_renders_a_leaderworkerset_whose_pods_meet_at_the_leader() -> None:
    lws = lws_of("  - {name: m, engine: vllm, model: meta-llama/Llama-3.1-405B-Instruct, profile: h100, "
                 "maxModelLen: 32768, nodesPerReplica: 2, hfToken: {secretName: hf, key: token}}\n")
    group = lws["spec"]["leaderWorkerTemplate"]
    assert (lws["apiVersion"], group["size"], group["restartPolicy"]) == \
        ("leaderworkerset.x-k8s.io/v1", 2, "RecreateGroupOnPodRestart")
    leader, worker = (group[f"{role}Template"]["spec"]["containers"][0] for role in ("leader", "worker"))
    meet = ["--tensor-parallel-size", "8", "--pipeline-parallel-size", "2", "--distributed-executor-backend", "mp",
            "--nnodes", "2", "--node-rank", "$(LWS_WORKER_INDEX)", "--master-addr", "$(LWS_LEADER_ADDRESS)"]
    for container in (leader, worker):
        args = container["args"]
        start = args.index("--tensor-parallel-size")
        assert args[start:start + len(meet)] == meet
        assert container["resources"]["limits"]["nvidia.com/gpu"] == "8"
    # The leader serves, behind its probes; a worker serves nothing and waits out its leader's drain when stopped.
    assert "--headless" not in leader["args"] and leader["ports"][0]["name"] == "http" and "readinessProbe" in leader
    assert worker["args"][-1] == "--headless" and "ports" not in worker and "readinessProbe" not in worker
    assert worker["lifecycle"]["preStop"]["sleep"]["seconds"] > leader["lifecycle"]["preStop"]["sleep"]["seconds"]
