"""A model server holding every GPU of its pool, upgraded with new args: the chart's strategy for
GPU holders (maxSurge 0, maxUnavailable 1) completes the rollout; a surge strategy hangs, its new
pod Pending for lack of nvidia.com/gpu. The pool is the `rollout` pool of fakes.POOLS (1 node,
1 GPU, tainted so that nothing else lands there)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.support.kube import conditions
from tests.support.wait import poll

from .fakes import GPU, ROLLOUT_TAINT
from .kube import Cluster, render
from .releases import Release, available, pod_gpus, wait_all_available

pytestmark = pytest.mark.cluster
MODEL = "qwen-3b"
# The surge pod must stay Pending for this long (the scheduler retries it meanwhile).
HANG_WINDOW_S = 20
SURGE = {"type": "RollingUpdate", "rollingUpdate": {"maxSurge": 1, "maxUnavailable": 0}}


def _spec(max_model_len: int, namespace: str) -> dict[str, Any]:
    return {
        "name": "roll",
        "namespace": namespace,
        "gateway": {"replicas": 1},
        "profiles": {"t4": {
            "gpu": {"resource": GPU, "count": 1, "memoryGiB": 16, "product": "Tesla-T4"},
            "cpu": "4", "memory": "16Gi",
            "nodeSelector": {"cloud.google.com/gke-accelerator": "nvidia-tesla-t4"},
            "tolerations": [
                {"key": GPU, "operator": "Exists", "effect": "NoSchedule"},
                {**ROLLOUT_TAINT, "operator": "Equal"},
            ],
        }},
        "models": [{"name": MODEL, "engine": "vllm", "model": "Qwen/Qwen2.5-3B-Instruct",
                    "profile": "t4", "maxModelLen": max_model_len}],
    }


def _render(tmp: Path, namespace: str, max_model_len: int, strategy: dict[str, Any] | None = None) -> Path:
    spec = tmp / f"spec-{max_model_len}.yaml"
    spec.write_text(yaml.safe_dump(_spec(max_model_len, namespace)))
    out = render(spec, tmp / f"out-{max_model_len}")
    values_file = out / "values.yaml"
    if strategy:
        values = yaml.safe_load(values_file.read_text())
        values["models"][MODEL]["strategy"] = strategy
        values_file.write_text(yaml.safe_dump(values))
    return values_file


def _model_pods(rel: Release) -> list[dict[str, Any]]:
    return [p for p in rel.pods() if rel.component(p) == MODEL
            and "deletionTimestamp" not in p["metadata"]]


def _max_len(pod: dict[str, Any]) -> str:
    args = pod["spec"]["containers"][0]["args"]
    return str(args[args.index("--max-model-len") + 1])


@pytest.fixture
def gpu_release(request: pytest.FixtureRequest, cluster: Cluster,
                tmp_path: Path) -> Iterator[Release]:
    namespace = "rollout-" + request.node.name.split("_")[1]
    values = _render(tmp_path, namespace, 4096)
    # Deleting the namespace afterwards waits for its pods: the GPU is free for the next test.
    with Release(cluster, "helm3", "roll", namespace, values.parent).installed_for() as rel:
        yield rel


def _pool_is_full(cluster: Cluster, rel: Release) -> dict[str, Any]:
    """The one model pod sits on the rollout node and uses all of its GPUs."""
    pods = _model_pods(rel)
    assert len(pods) == 1
    node = cluster.get("node", pods[0]["spec"]["nodeName"])
    assert node["metadata"]["labels"]["cloud.google.com/gke-accelerator"] == "nvidia-tesla-t4"
    assert pod_gpus(pods[0]) == int(node["status"]["allocatable"][GPU]) == 1
    return pods[0]


def test_chart_strategy_rolls_a_gpu_holder_on_a_full_pool(gpu_release: Release,
                                                          cluster: Cluster, tmp_path: Path) -> None:
    dep = cluster.get("deployment", f"roll-{MODEL}", "-n", gpu_release.namespace)
    assert dep["spec"]["strategy"] == {"type": "RollingUpdate",
                                       "rollingUpdate": {"maxSurge": 0, "maxUnavailable": 1}}
    old = _pool_is_full(cluster, gpu_release)

    (tmp_path / "next").mkdir()
    gpu_release.upgrade(_render(tmp_path / "next", gpu_release.namespace, 2048), "--wait", "--timeout", "120s")
    wait_all_available(gpu_release)
    new = _pool_is_full(cluster, gpu_release)
    assert new["metadata"]["uid"] != old["metadata"]["uid"]
    assert (_max_len(old), _max_len(new)) == ("4096", "2048")


def test_surge_strategy_hangs_on_a_full_pool(gpu_release: Release, cluster: Cluster,
                                             tmp_path: Path) -> None:
    old = _pool_is_full(cluster, gpu_release)
    (tmp_path / "next").mkdir()
    # No --wait: this rollout is expected never to finish.
    gpu_release.upgrade(_render(tmp_path / "next", gpu_release.namespace, 2048, SURGE))

    def surge_pod_unschedulable() -> tuple[dict[str, Any] | None, str]:
        for pod in _model_pods(gpu_release):
            sched = conditions(pod).get("PodScheduled", {})
            if (pod["metadata"]["uid"] != old["metadata"]["uid"]
                    and sched.get("status") == "False" and sched.get("reason") == "Unschedulable"):
                return pod, "found"
        return None, "no surge pod Unschedulable yet"

    surge = poll("surge pod reported Unschedulable", surge_pod_unschedulable, 60)
    message = next(c.get("message", "") for c in surge["status"]["conditions"]
                   if c["type"] == "PodScheduled")
    assert f"Insufficient {GPU}" in message, message
    assert _max_len(surge) == "2048"

    # It stays that way: the old pod keeps the GPU, the new one never gets it.
    rollout = cluster.kubectl("rollout", "status", f"deployment/roll-{MODEL}", "-n",
                              gpu_release.namespace, f"--timeout={HANG_WINDOW_S}s",
                              timeout=HANG_WINDOW_S + 30, check=False)
    assert rollout.returncode != 0, rollout.stdout
    pods = {p["metadata"]["uid"]: p for p in _model_pods(gpu_release)}
    assert pods[old["metadata"]["uid"]]["status"]["phase"] == "Running"
    assert pods[surge["metadata"]["uid"]]["status"]["phase"] == "Pending"
    assert not pods[surge["metadata"]["uid"]]["spec"].get("nodeName")
    dep = cluster.get("deployment", f"roll-{MODEL}", "-n", gpu_release.namespace)
    assert not available(dep)
    assert dep["status"].get("updatedReplicas") == 1 and dep["status"].get("availableReplicas") == 1
