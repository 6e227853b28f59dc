"""Fake-GPU scenario: a GPU vLLM model lands on the (fake) GPU node, and changing its args rolls it
out although the node has no spare GPU.

The kind worker labelled stackgen.dev/e2e-pool=gpu advertises exactly one nvidia.com/gpu, the one
the model uses. A rollout that surges (the Deployment default) would create the new pod first, which
can never be scheduled, and the old one would never be removed: a deadlock. GPU holders roll with
maxSurge 0, so the old pod goes first and the new one takes its GPU. The pods never become Ready
(there is no GPU): scheduling, tolerations and the strategy are asserted, not readiness.
"""

from __future__ import annotations

import os
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.support.wait import poll

from . import gpu, objects, specs
from .kube import Kube, say
from .stack import Stack
from .tools import SCRIPTS

pytestmark = pytest.mark.kind

fake = gpu.fake_gpu_module()


def _fake_gpu(kube: Kube, node: str, *args: str) -> None:
    subprocess.run([str(SCRIPTS / "kind" / "fake-gpu.sh"), "--context", kube.context, *args, node],
                   check=True, timeout=180, env={**os.environ, "KUBECTL": kube.kubectl})


@pytest.fixture()
def gpu_node(kube: Kube) -> Iterator[dict[str, Any]]:
    """The GPU-pool worker, advertising exactly the GPUs in use (one replica, one GPU); a plain
    worker again afterwards."""
    nodes = kube.items("nodes", "-l", f"{gpu.POOL_LABEL}=gpu")
    assert len(nodes) == 1, f"expected one node labelled {gpu.POOL_LABEL}=gpu (scripts/kind/cluster.yaml)"
    name = nodes[0]["metadata"]["name"]
    _fake_gpu(kube, name, "--count", "1")
    yield kube.get("node", name)
    _fake_gpu(kube, name, "--remove")


def _pods(kube: Kube) -> list[dict[str, Any]]:
    return [p for p in kube.items("pods", "-n", gpu.NAMESPACE)
            if objects.owner_deployment(p) == gpu.DEPLOYMENT]


def _scheduled(pod: dict[str, Any]) -> bool:
    cond = objects.condition(pod, "PodScheduled")
    return bool(cond and cond.get("status") == "True" and pod["spec"].get("nodeName"))


def _render(stackgen: str, tmp_path: Path, step: str, max_num_seqs: int) -> Path:
    spec_file = specs.write_spec(gpu.gpu_spec(["--max-num-seqs", str(max_num_seqs)]),
                                 tmp_path / f"spec-{step}.yaml")
    return specs.render(stackgen, spec_file, tmp_path / f"out-{step}") / "values.yaml"


def test_fake_gpu_scheduling_and_surge_free_rollout(
    kube: Kube, stackgen: str, gpu_node: dict[str, Any], tmp_path: Path
) -> None:
    node_name, taints = gpu_node["metadata"]["name"], gpu_node["spec"].get("taints", [])
    assert gpu_node["status"]["allocatable"].get(fake.GPU_RESOURCE) == "1"
    assert any(objects.tolerates({"key": fake.GPU_RESOURCE, "operator": "Exists"}, t) for t in taints)

    values_1 = _render(stackgen, tmp_path, "1", 4)
    stack = Stack(kube=kube, stackgen=stackgen, release=gpu.STACK, namespace=gpu.NAMESPACE)
    try:
        stack.prepare(specs.load_yaml(values_1))
        stack.helm("install", values_1)

        deploy = kube.get("deployment", gpu.DEPLOYMENT, "-n", gpu.NAMESPACE)
        strategy = deploy["spec"].get("strategy", {})
        assert objects.rolls_without_surge(strategy), f"the GPU model would surge: {strategy}"
        assert gpu.gpu_limit(deploy["spec"]["template"]["spec"], fake.GPU_RESOURCE) == 1

        def first_scheduled() -> tuple[bool, str]:
            pods = _pods(kube)
            return any(map(_scheduled, pods)), "; ".join(map(objects.pod_state, pods)) or "no pod yet"

        poll(f"{gpu.DEPLOYMENT} scheduled", first_scheduled, 300, 2)
        (pod,) = [p for p in _pods(kube) if _scheduled(p)]
        assert pod["spec"]["nodeName"] == node_name
        assert objects.untolerated(pod["spec"].get("tolerations", []), taints) == []

        # The advertised count is enforced: a pod wanting one more GPU there stays Pending.
        kube.apply(gpu.probe_pod(gpu.NAMESPACE, pod["spec"]["tolerations"], pod["spec"]["nodeSelector"],
                                 fake.GPU_RESOURCE))

        def probe_refused() -> tuple[bool, str]:
            probe = kube.get("pod", "gpu-probe", "-n", gpu.NAMESPACE)
            cond = objects.condition(probe, "PodScheduled") or {}
            message = str(cond.get("message", "not evaluated yet"))
            return cond.get("reason") == "Unschedulable" and f"Insufficient {fake.GPU_RESOURCE}" in message, message

        poll("probe pod wanting a second GPU", probe_refused, 120, 2)
        kube.run("delete", "pod", "gpu-probe", "-n", gpu.NAMESPACE, "--wait=true", "--timeout=60s", timeout=90)

        # Rollout without a spare GPU: new args; the old pod has to go before the new one fits.
        old_uid = pod["metadata"]["uid"]
        stack.helm("upgrade", _render(stackgen, tmp_path, "2", 8))

        def replaced() -> tuple[bool, str]:
            pods = _pods(kube)
            old = [p for p in pods if p["metadata"]["uid"] == old_uid]
            new = [p for p in pods if p["metadata"]["uid"] != old_uid]
            states = "; ".join(map(objects.pod_state, new)) or "none yet"
            return not old and any(map(_scheduled, new)), f"old pod {'present' if old else 'gone'}; new: {states}"

        poll("surge-free rollout", replaced, 300, 2)
        (new_pod,) = [p for p in _pods(kube) if _scheduled(p)]
        assert new_pod["spec"]["nodeName"] == node_name
        container = new_pod["spec"]["containers"][0]
        argv = [*container.get("command", []), *container.get("args", [])]
        assert "--max-num-seqs" in argv and argv[argv.index("--max-num-seqs") + 1] == "8", (
            f"the new pod does not run the upgraded args: {argv}")
        say("the GPU model rolled out on the fake GPU node without a spare GPU")
    finally:
        stack.teardown()
