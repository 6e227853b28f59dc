"""Fake-GPU scenario: a GPU vLLM model lands on the (fake) GPU node, and changing its args rolls it
out although the node has no spare GPU.

The kind worker labelled stackgen.dev/e2e-pool=gpu advertises exactly one nvidia.com/gpu, the one
the model uses. A rollout that surges (the Deployment default) would create the new pod first, which
can never be scheduled, and the old one is never removed: a deadlock. The chart rolls GPU holders
with maxSurge 0, so the old pod goes first and the new one takes its GPU. The pods never become
Ready (there is no GPU): scheduling, tolerations and the strategy are asserted, not readiness.
"""

from __future__ import annotations

import os
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from . import gpu, objects, specs
from .kube import Kube, poll, say
from .stack import Stack
from .tools import SCRIPTS

pytestmark = pytest.mark.kind

NAMESPACE = "stackgen-gpu"
RELEASE = "gpu-e2e"


def _model_pods(kube: Kube, deploy: str) -> list[dict[str, Any]]:
    return [p for p in kube.items("pods", "-n", NAMESPACE) if objects.owner_deployment(p) == deploy]


def _scheduled(pod: dict[str, Any]) -> bool:
    cond = objects.condition(pod, "PodScheduled")
    return bool(cond and cond.get("status") == "True" and pod["spec"].get("nodeName"))


def _fake_gpu_node(kube: Kube) -> dict[str, Any]:
    nodes = kube.items("nodes", "-l", f"{gpu.POOL_LABEL}=gpu")
    assert len(nodes) == 1, f"expected one node labelled {gpu.POOL_LABEL}=gpu (scripts/kind/cluster.yaml)"
    name = nodes[0]["metadata"]["name"]
    # Exactly the GPUs in use: one model replica with one GPU.
    subprocess.run([str(SCRIPTS / "kind" / "fake-gpu.sh"), "--context", kube.context, "--count", "1",
                    name], check=True, timeout=180, env={**os.environ, "KUBECTL": kube.kubectl})
    return kube.get("node", name)


def _install(stack: Stack, base: dict[str, Any], max_model_len: int, path: Path, verb: str) -> None:
    path.write_text(yaml.safe_dump(gpu.gpu_values(base, max_model_len), sort_keys=False))
    stack.helm(verb, path)


def test_fake_gpu_scheduling_and_surge_free_rollout(kube: Kube, stackgen: str, tmp_path: Path) -> None:
    fake = gpu.fake_gpu_module()
    spec_file = specs.write_spec(specs.example_spec(stackgen, "kind-cpu"), tmp_path / "spec.yaml")
    base = specs.load_yaml(specs.render(stackgen, spec_file, tmp_path / "out") / "values.yaml")
    deploy_name = f"{base.get('fullnameOverride') or RELEASE}-{gpu.MODEL_KEY}"

    node = _fake_gpu_node(kube)
    node_name, taints = node["metadata"]["name"], node["spec"].get("taints", [])
    assert fake.gpu_taint().as_object() in [
        {k: t.get(k) for k in ("key", "value", "effect")} for t in taints], taints
    assert node["status"]["allocatable"].get(fake.GPU_RESOURCE) == "1"

    stack = Stack(kube=kube, stackgen=stackgen, release=RELEASE, namespace=NAMESPACE)
    try:
        stack.prepare(base)
        _install(stack, base, 1024, tmp_path / "values-1.yaml", "install")

        deploy = kube.get("deployment", deploy_name, "-n", NAMESPACE)
        strategy = deploy["spec"].get("strategy", {})
        assert objects.rolls_without_surge(strategy), f"GPU model would surge: {strategy}"
        assert gpu.gpu_limit(deploy["spec"]["template"]["spec"], fake.GPU_RESOURCE) == 1

        def first_scheduled() -> tuple[bool, str]:
            pods = _model_pods(kube, deploy_name)
            return any(_scheduled(p) for p in pods), "; ".join(objects.pod_state(p) for p in pods)

        poll(first_scheduled, 300, f"{deploy_name} scheduled")
        (pod,) = [p for p in _model_pods(kube, deploy_name) if _scheduled(p)]
        assert pod["spec"]["nodeName"] == node_name
        assert not objects.untolerated(pod["spec"].get("tolerations", []), taints)

        # The advertised count is enforced: one more GPU pod for that node stays Pending.
        probe = gpu.probe_pod(NAMESPACE, pod["spec"]["tolerations"], pod["spec"]["nodeSelector"],
                              fake.GPU_RESOURCE)
        kube.apply(probe)

        def probe_refused() -> tuple[bool, str]:
            cond = objects.condition(kube.get("pod", "gpu-probe", "-n", NAMESPACE), "PodScheduled") or {}
            refused = cond.get("reason") == "Unschedulable" and (
                f"Insufficient {fake.GPU_RESOURCE}" in cond.get("message", ""))
            return refused, cond.get("message", "not evaluated yet")

        poll(probe_refused, 120, "probe pod wanting a 2nd GPU")
        kube.run("delete", "pod", "gpu-probe", "-n", NAMESPACE, "--wait=true", "--timeout=60s",
                 timeout=90)

        # Rollout with no spare GPU: change the args; the old pod must go before the new one fits.
        old_uid = pod["metadata"]["uid"]
        _install(stack, base, 2048, tmp_path / "values-2.yaml", "upgrade")

        def replaced() -> tuple[bool, str]:
            pods = _model_pods(kube, deploy_name)
            old = [p for p in pods if p["metadata"]["uid"] == old_uid]
            new = [p for p in pods if p["metadata"]["uid"] != old_uid]
            done = not old and any(_scheduled(p) for p in new)
            return done, (f"old pod {'present' if old else 'gone'}; new: "
                          + ("; ".join(objects.pod_state(p) for p in new) or "none yet"))

        poll(replaced, 300, "surge-free rollout")
        (new_pod,) = [p for p in _model_pods(kube, deploy_name) if _scheduled(p)]
        assert new_pod["spec"]["nodeName"] == node_name
        container = new_pod["spec"]["containers"][0]
        argv = [*container.get("command", []), *container.get("args", [])]
        assert "2048" in argv, f"the new pod does not run the upgraded args: {argv}"
        say("GPU model rolled out on the fake node without a spare GPU")
    finally:
        stack.teardown()
