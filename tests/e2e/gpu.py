"""The fake-GPU scenario: a GPU vLLM model scheduled on a kind node that only claims to have GPUs.

A stack spec of its own, rendered by the real `stackgen render`: one GPU profile matching the fake
node (its `nvidia.com/gpu.product` label, a toleration for its taint, one GPU) and one vLLM model on
it. The model's image is the pause image instead of vLLM's: it has no `vllm` to run, so the
container fails to start, as vLLM would without a GPU, and the test does not pull several GB of
CUDA image only to watch it fail. Scheduling, tolerations and the rollout strategy, which are under
test, do not depend on what the container runs.
"""

from __future__ import annotations

import importlib.util
import sys
from types import ModuleType
from typing import Any

from .tools import SCRIPTS

STACK = "gpu-e2e"
NAMESPACE = "stackgen-gpu"
PROFILE = "fake-gpu"
MODEL_KEY = "gpu-sched"
DEPLOYMENT = f"{STACK}-{MODEL_KEY}"
POOL_LABEL = "stackgen.dev/e2e-pool"
PAUSE_IMAGE = "registry.k8s.io/pause:3.10"


def fake_gpu_module() -> ModuleType:
    """scripts/kind/fake_gpu.py, the one place the fake node's objects are defined."""
    name = "stackgen_e2e_fake_gpu"
    if name in sys.modules:
        return sys.modules[name]
    spec = importlib.util.spec_from_file_location(name, SCRIPTS / "kind" / "fake_gpu.py")
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module  # dataclasses look their module up while the file executes
    spec.loader.exec_module(module)
    return module


def gpu_spec(server_args: list[str]) -> dict[str, Any]:
    """The GPU scenario's spec; `server_args` are the vLLM arguments the rollout test changes."""
    fake = fake_gpu_module()
    return {
        "name": STACK,
        "namespace": NAMESPACE,
        "gateway": {"replicas": 1, "resources": {"cpu": "100m", "memory": "512Mi"}},
        "profiles": {
            PROFILE: {
                "gpu": {"resource": fake.GPU_RESOURCE, "count": 1, "product": fake.FAKE_PRODUCT},
                "cpu": "100m",
                "memory": "512Mi",
                "nodeSelector": {"nvidia.com/gpu.product": fake.FAKE_PRODUCT},
                "tolerations": [{"key": fake.GPU_RESOURCE, "operator": "Exists", "effect": "NoSchedule"}],
            }
        },
        "models": [{
            "name": MODEL_KEY,
            "engine": "vllm",
            "model": "Qwen/Qwen2.5-0.5B-Instruct",
            "profile": PROFILE,
            "image": PAUSE_IMAGE,
            "maxModelLen": 1024,
            "args": list(server_args),
        }],
    }


def model_deployment(rendered: list[dict[str, Any]]) -> dict[str, Any]:
    for obj in rendered:
        if obj.get("kind") == "Deployment" and obj["metadata"]["name"] == DEPLOYMENT:
            return obj
    raise AssertionError(f"no Deployment {DEPLOYMENT} rendered")


def gpu_limit(pod_spec: dict[str, Any], resource: str) -> int:
    """GPUs the pod asks for (extended resources are requested through limits)."""
    total = 0
    for container in pod_spec.get("containers", []):
        limits = (container.get("resources") or {}).get("limits") or {}
        total += int(str(limits.get(resource, 0)))
    return total


def probe_pod(namespace: str, tolerations: list[dict[str, Any]], node_selector: dict[str, str],
              resource: str) -> dict[str, Any]:
    """A pod that wants one more GPU on the fake node: it must stay Pending, which shows the
    advertised count is enforced (otherwise 'no deadlock' would prove nothing)."""
    return {
        "apiVersion": "v1", "kind": "Pod",
        "metadata": {"name": "gpu-probe", "namespace": namespace},
        "spec": {
            "containers": [{
                "name": "probe",
                "image": PAUSE_IMAGE,
                "resources": {"limits": {resource: "1"}, "requests": {"cpu": "10m", "memory": "16Mi"}},
            }],
            "tolerations": tolerations,
            "nodeSelector": node_selector,
            "terminationGracePeriodSeconds": 0,
        },
    }
