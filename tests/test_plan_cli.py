"""`stackgen plan`, and the capacity refusals of `render` and `validate`, through the real CLI."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from stackgen import examples
from stackgen.cli import cli
from tests.support.paths import REPO

INVENTORIES = REPO / "generator" / "stackgen" / "inventories"


def run(*args: str) -> Result:
    return CliRunner().invoke(cli, list(args))


def table_rows(output: str) -> dict[str, list[str]]:
    """The first table's rows by model name, split on runs of spaces."""
    rows = {}
    for line in output.split("\n\n")[0].splitlines()[1:]:
        cells = line.split()
        rows[cells[0]] = cells
    return rows


@pytest.mark.parametrize("name", examples.names())
def test_plan_works_on_every_example(name: str) -> None:
    result = run("plan", name)
    assert result.exit_code == 0, result.output
    rows = table_rows(result.stdout)
    stack = examples.resolve(name).stack
    assert list(rows) == [m.name for m in stack.models]
    for m in stack.models:
        assert rows[m.name][-1] == ("external" if m.engine == "external" else "fits"), rows[m.name]


def test_gpu_fleet_table_splits_the_memory_of_each_gpu() -> None:
    rows = table_rows(run("plan", "gpu-fleet").stdout)
    # llama-70b: 70.6B bf16 on 2 x 80 GiB at gpuMemoryUtilization 0.92: 65.8 GiB of weights per GPU,
    # 3.0 + 1.8 GiB overhead, the 3.0 GiB left of 73.6 as KV cache, 6.4 GiB outside the budget.
    assert rows["llama-70b"] == ["llama-70b", "vllm", "a100x2", "1", "-", "2", "2", "16384", "80", "GiB", "GPU", "65.8",
                                 "4.8", "3.0", "6.4", "320", "KiB", "19968", "1.2", "fits"]
    assert rows["gemma-ollama"][8:11] == ["24", "GiB", "GPU"] and rows["gemma-ollama"][11] == "7.5"  # 8.1 GB download


@pytest.mark.parametrize(("spec", "inventory"), [("gpu-fleet", "gke-gpu"), ("hybrid", "gke-gpu"), ("kind-cpu", "laptop")])
def test_examples_fit_the_inventory_examples(spec: str, inventory: str) -> None:
    by_name = run("plan", spec, "--cluster", inventory)
    by_path = run("plan", spec, "--cluster", str(INVENTORIES / f"{inventory}.yaml"))
    assert by_name.exit_code == 0, by_name.output
    assert by_path.exit_code == 0, by_path.output
    assert by_name.stdout == by_path.stdout
    pods = by_name.stdout.split("\n\n")[-1].splitlines()
    assert pods[0].split()[:3] == ["POD", "REPLICAS", "PLACED"]
    assert all(line.endswith(" fits") for line in pods[1:])


def test_gpu_fleet_placement_counts_gpus_per_pool() -> None:
    out = run("plan", "gpu-fleet", "--cluster", "gke-gpu", "--format", "json")
    assert out.exit_code == 0, out.output
    pools = {p["name"]: p for p in json.loads(out.stdout)["placement"]["pools"]}
    assert (pools["l4"]["gpusNeeded"], pools["l4"]["gpusAvailable"]) == (4, 4)  # qwen-7b x2, mistral-7b, gemma-ollama
    assert (pools["a100"]["gpusNeeded"], pools["a100"]["gpusAvailable"]) == (2, 2)  # llama-70b, tensor parallel 2
    assert pools["system"]["pods"] == ["gateway x3"]


def test_json_has_the_numbers_of_every_model() -> None:
    result = run("plan", "hybrid", "--format", "json")
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    assert data["fits"] is True and data["problems"] == [] and "placement" not in data
    models = {m["name"]: m for m in data["models"]}
    llama = models["local-llama"]
    assert llama["kvBytesPerToken"] == 128 * 1024 and llama["gpusPerReplica"] == 1 and llama["context"] == 16384
    assert set(llama["memory"]) == {"device", "totalGiB", "budgetGiB", "weightsGiB", "overheadGiB", "kvOneSequenceGiB",
                                    "kvMoreGiB", "freeGiB"}
    assert llama["memory"]["kvOneSequenceGiB"] == 2.0  # 16384 tokens x 128 KiB
    assert models["mistral-large"] == {"name": "mistral-large", "engine": "external", "provider": "mistral",
                                       "verdict": "external"}


def test_png_chart_is_written_and_deterministic(tmp_path: Path) -> None:
    first, second = tmp_path / "a.png", tmp_path / "b.png"
    assert run("plan", "gpu-fleet", "--png", str(first)).exit_code == 0
    assert run("plan", "gpu-fleet", "--png", str(second)).exit_code == 0
    assert first.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert first.read_bytes() == second.read_bytes()


def test_png_without_matplotlib_says_so(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "matplotlib", None)  # what `import matplotlib` meets when it is not installed
    target = tmp_path / "chart.png"
    result = run("plan", "kind-cpu", "--png", str(target))
    assert result.exit_code == 2
    assert result.stderr.splitlines() == ["--png: matplotlib is not installed, so no chart can be drawn "
                                          "(pip install matplotlib, or leave out --png)"]
    assert not target.exists()


def test_default_context_that_does_not_fit_is_shrunk_and_noted(tmp_path: Path) -> None:
    spec = tmp_path / "stack.yaml"
    spec.write_text(BASE + "  - {name: llama, engine: vllm, model: meta-llama/Llama-3.1-8B-Instruct, profile: l4}\n")
    result = run("plan", str(spec))
    assert result.exit_code == 0, result.output
    assert table_rows(result.stdout)["llama"][7] == "29696"
    assert "note: llama: maxModelLen 29696 (the default 131072 does not fit); set maxModelLen to choose" in result.stdout
    assert run("validate", str(spec)).exit_code == 0


BASE = """\
name: team
profiles:
  l4: {gpu: {count: 1, memoryGiB: 24}, cpu: "4", memory: 32Gi}
  l4x2: {gpu: {count: 2, memoryGiB: 24}, cpu: "8", memory: 64Gi}
  l4x4: {gpu: {count: 4, memoryGiB: 24}, cpu: "16", memory: 128Gi}
  small-gpu: {gpu: {count: 1, memoryGiB: 20}, cpu: "4", memory: 32Gi}
  cpu: {cpu: "2", memory: 4Gi}
  cpu8: {cpu: "4", memory: 8Gi}
models:
"""

# Each refusal: the model entry (after BASE), and the exact line every command prints for it.
REFUSALS = {
    "70B on one 24 GiB GPU": (
        "  - name: big\n    engine: vllm\n    model: meta-llama/Llama-3.3-70B-Instruct\n    profile: l4\n",
        "{spec}:13: models[0].profile: meta-llama/Llama-3.3-70B-Instruct does not fit 1 x 24 GiB GPU: 131.5 GiB of "
        "weights per GPU + 3.0 GiB of vLLM overhead is over the 21.6 GiB vLLM may use (gpuMemoryUtilization 0.9) "
        "(use a profile with 8 GPUs (tensorParallelSize: 8), or set nodesPerReplica: 8 (a LeaderWorkerSet group of 8 "
        "pods of 1 GPU(s), each on its own node), or use GPUs with at least 151 GiB each)"),
    "context whose KV cache does not fit": (
        "  - name: long\n    engine: vllm\n    model: meta-llama/Llama-3.1-8B-Instruct\n    profile: l4\n"
        "    maxModelLen: 131072\n",
        "{spec}:14: models[0].maxModelLen: 131072 tokens of context need 16.00 GiB of KV cache (128 KiB per token) but "
        "3.64 GiB is left on 1 x 24 GiB GPU after 15.0 GiB of weights and 3.0 GiB of vLLM overhead per GPU "
        "(gpuMemoryUtilization 0.9): 29840 tokens fit (set maxModelLen to at most 29840, or use a profile with 2 GPUs "
        "(tensorParallelSize: 2), or set nodesPerReplica: 2 (a LeaderWorkerSet group of 2 pods of 1 GPU(s), each on its "
        "own node), or use GPUs with at least 38 GiB each)"),
    "tensor parallel size too small": (
        "  - name: q32\n    engine: vllm\n    model: Qwen/Qwen2.5-32B-Instruct\n    profile: l4x4\n"
        "    tensorParallelSize: 2\n",
        "{spec}:14: models[0].tensorParallelSize: Qwen/Qwen2.5-32B-Instruct does not fit 2 x 24 GiB GPU: 30.3 GiB of "
        "weights per GPU + 4.8 GiB of vLLM overhead is over the 21.6 GiB vLLM may use (gpuMemoryUtilization 0.9) "
        "(set tensorParallelSize: 4, or use GPUs with at least 40 GiB each)"),
    "tensor parallel size that splits KV heads unevenly": (
        "  - name: phi\n    engine: vllm\n    model: microsoft/phi-4\n    profile: l4x4\n    tensorParallelSize: 4\n",
        "{spec}:14: models[0].tensorParallelSize: 4 GPUs cannot share the model's 10 KV heads evenly "
        "(set tensorParallelSize to 1 or 2)"),
    "not even the smallest context fits": (
        "  - name: tight\n    engine: vllm\n    model: meta-llama/Llama-3.1-8B-Instruct\n    profile: small-gpu\n",
        "{spec}:13: models[0].profile: 4096 tokens of context need 0.50 GiB of KV cache (128 KiB per token) but 0.04 GiB "
        "is left on 1 x 20 GiB GPU after 15.0 GiB of weights and 3.0 GiB of vLLM overhead per GPU "
        "(gpuMemoryUtilization 0.9): 336 tokens fit (use a profile with 2 GPUs (tensorParallelSize: 2), or set "
        "nodesPerReplica: 2 (a LeaderWorkerSet group of 2 pods of 1 GPU(s), each on its own node), or use GPUs with at "
        "least 21 GiB each)"),
    "Ollama model larger than its pod": (
        "  - name: big\n    engine: ollama\n    model: llama3.1:70b\n    profile: cpu\n",
        "{spec}:13: models[0].profile: llama3.1:70b needs 40.0 GiB of weights + 1.25 GiB of KV cache for 4096 tokens "
        "(320 KiB per token) + 1.0 GiB of Ollama runtime = 42.3 GiB, over the pod's 4Gi (use a profile with memory of "
        "at least 43Gi, or a smaller model)"),
    "Ollama context larger than its GPU": (
        "  - name: big\n    engine: ollama\n    model: qwen2.5:32b\n    profile: l4\n    contextLength: 32768\n",
        "{spec}:14: models[0].contextLength: qwen2.5:32b needs 18.6 GiB of weights + 8.00 GiB of KV cache for 32768 "
        "tokens (256 KiB per token) + 1.0 GiB of Ollama runtime = 27.6 GiB, over one 24 GiB GPU (set contextLength to "
        "at most 17914, or use a profile with GPUs of at least 28 GiB, or a smaller model)"),
    "vLLM on CPU larger than its pod": (
        "  - name: c\n    engine: vllm\n    model: Qwen/Qwen2.5-7B-Instruct\n    profile: cpu\n    maxModelLen: 4096\n",
        "{spec}:13: models[0].profile: 14.2 GiB of weights + 1 GiB of KV cache (VLLM_CPU_KVCACHE_SPACE) + 1.5 GiB of "
        "vLLM overhead is over the pod's 4Gi (use a profile with memory of at least 17Gi)"),
    "vLLM on CPU context over its KV cache space": (
        "  - name: c\n    engine: vllm\n    model: meta-llama/Llama-3.2-1B-Instruct\n    profile: cpu8\n"
        "    maxModelLen: 131072\n",
        "{spec}:14: models[0].maxModelLen: 131072 tokens of context need 4.00 GiB of KV cache (32 KiB per token) but "
        "VLLM_CPU_KVCACHE_SPACE is 2 GiB: 65536 tokens fit (set maxModelLen to at most 65536, or raise env "
        "VLLM_CPU_KVCACHE_SPACE to 4 with memory of at least 8Gi)"),
}


@pytest.mark.parametrize("case", sorted(REFUSALS))
def test_render_refuses_a_stack_that_does_not_fit_and_writes_nothing(tmp_path: Path, case: str) -> None:
    model, line = REFUSALS[case]
    spec = tmp_path / "stack.yaml"
    spec.write_text(BASE + model)
    out = tmp_path / "out"
    result = run("render", str(spec), "-o", str(out), "--no-manifests")
    assert result.exit_code == 2, result.output
    assert result.stderr.splitlines() == [line.format(spec=spec)]
    assert not out.exists()


@pytest.mark.parametrize("case", sorted(REFUSALS))
def test_validate_and_plan_refuse_with_the_same_line(tmp_path: Path, case: str) -> None:
    model, line = REFUSALS[case]
    spec = tmp_path / "stack.yaml"
    spec.write_text(BASE + model)
    validated = run("validate", str(spec))
    assert validated.exit_code == 2 and validated.stderr.splitlines() == [line.format(spec=spec)]
    planned = run("plan", str(spec))
    assert planned.exit_code == 2 and planned.stderr.splitlines() == [line.format(spec=spec)]
    assert table_rows(planned.stdout)[model.split()[2]][-3:] == ["does", "not", "fit"]  # the table still shows why


INVENTORY = """\
pools:
  - name: cpu
    nodes: 1
    cpu: 4
    memory: 16Gi
  - name: l4
    nodes: 2
    gpu: {count: 2, memoryGiB: 24, product: NVIDIA-L4}
    cpu: 16
    memory: 80Gi
    labels: {pool: l4}
    taints: [{key: nvidia.com/gpu, value: present, effect: NoSchedule}]
"""

PLACED = """\
name: team
gateway: {replicas: 1, resources: {cpu: "1", memory: 2Gi}}
profiles:
  l4: {gpu: {count: 1, memoryGiB: 24}, cpu: "4", memory: 32Gi, nodeSelector: {pool: l4}, tolerations: [{key: nvidia.com/gpu, operator: Exists}]}
  l4x4: {gpu: {count: 4, memoryGiB: 24}, cpu: "8", memory: 64Gi, tolerations: [{key: nvidia.com/gpu, operator: Exists}]}
  untolerated: {gpu: {count: 1, memoryGiB: 24}, cpu: "4", memory: 32Gi}
  a100: {gpu: {count: 1, memoryGiB: 80}, cpu: "4", memory: 32Gi, nodeSelector: {pool: a100}, tolerations: [{key: nvidia.com/gpu, operator: Exists}]}
  cpu: {cpu: "1", memory: 6Gi}
models:
"""

PLACEMENT_REFUSALS = {
    "more replicas than GPUs": (
        "  - {name: qwen, engine: vllm, model: Qwen/Qwen2.5-7B-Instruct, profile: l4, replicas: 5, maxModelLen: 8192}\n",
        "{spec}:10: models[0].replicas: 4 of 5 replicas of qwen fit: each needs 1 GPU(s), 4 CPU and 32 GiB on one node, "
        "and l4 is full (add 1 node(s) to pool l4, or lower replicas to 4)"),
    "tensor parallel across more GPUs than a node has": (
        "  - {name: q32, engine: vllm, model: Qwen/Qwen2.5-32B-Instruct, profile: l4x4, maxModelLen: 8192}\n",
        "{spec}:10: models[0].replicas: no pool can run q32 (cpu: no nvidia.com/gpu; l4: 2 GPU(s) per node, a replica "
        "needs 4) (add a matching pool to the inventory, or change the profile's nodeSelector, tolerations or gpu)"),
    "taint not tolerated": (
        "  - {name: bare, engine: vllm, model: Qwen/Qwen2.5-7B-Instruct, profile: untolerated, maxModelLen: 8192}\n",
        "{spec}:10: models[0].replicas: no pool can run bare (cpu: no nvidia.com/gpu; l4: taint nvidia.com/gpu:NoSchedule "
        "not tolerated) (add a matching pool to the inventory, or change the profile's nodeSelector, tolerations or gpu)"),
    "no pool with the labels": (
        "  - {name: far, engine: vllm, model: Qwen/Qwen2.5-7B-Instruct, profile: a100, maxModelLen: 8192}\n",
        "{spec}:10: models[0].replicas: no pool can run far (cpu: labels lack pool=a100; l4: labels lack pool=a100) "
        "(add a matching pool to the inventory, or change the profile's nodeSelector, tolerations or gpu)"),
    "no room for a rollout's extra pod": (
        "  - {name: small, engine: ollama, model: qwen2.5:0.5b, profile: cpu, replicas: 2}\n",
        "{spec}:10: models[0].replicas: a rollout of small starts one extra pod (1 CPU, 6 GiB) first, and no node that "
        "matches has room for it: the rollout would stall (add a node to pool cpu)"),
}


@pytest.mark.parametrize("case", sorted(PLACEMENT_REFUSALS))
def test_plan_refuses_what_the_cluster_cannot_hold(tmp_path: Path, case: str) -> None:
    model, line = PLACEMENT_REFUSALS[case]
    spec, inventory = tmp_path / "stack.yaml", tmp_path / "cluster.yaml"
    spec.write_text(PLACED + model)
    inventory.write_text(INVENTORY)
    result = run("plan", str(spec), "--cluster", str(inventory))
    assert result.exit_code == 2, result.output
    assert result.stderr.splitlines() == [line.format(spec=spec)]
    assert run("validate", str(spec)).exit_code == 0  # a cluster is only checked when one is given
    data = json.loads(run("plan", str(spec), "--cluster", str(inventory), "--format", "json").stdout)
    assert data["fits"] is False and [p["path"] for p in data["problems"]] == ["models[0].replicas"]


def test_unknown_inventory_is_refused() -> None:
    result = run("plan", "kind-cpu", "--cluster", "no-such-cluster")
    assert result.exit_code == 2
    assert result.stderr.splitlines() == ["--cluster: 'no-such-cluster' is neither a file nor a built-in inventory"]


def test_bad_inventory_names_its_file_line_and_field(tmp_path: Path) -> None:
    inventory = tmp_path / "cluster.yaml"
    inventory.write_text(INVENTORY.replace("    nodes: 2\n", "    nodes: 2\n    gpus: 4\n"))
    result = run("plan", "kind-cpu", "--cluster", str(inventory))
    assert result.exit_code == 2
    assert result.stderr.splitlines() == [f"{inventory}:8: pools[1].gpus: unknown field (see `pools:` in the inventory example)"]
