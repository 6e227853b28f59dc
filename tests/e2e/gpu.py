"""The fake-GPU scenario: a GPU vLLM model scheduled on a kind node that only claims to have GPUs.

Built on chart values (the chart contract in charts/inference-stack/values.yaml) derived from a real
`stackgen render` of kind-cpu: the gateway part stays as rendered, the models are replaced by one
vLLM model that asks for one `nvidia.com/gpu`, selects the fake GPU node and tolerates its taint.

Its image is the pause image, not vLLM: without a GPU vLLM exits at start anyway, and the CUDA
image is several GB the test would pull only to watch it fail. What is under test is scheduling,
tolerations and the rollout strategy, which do not depend on what the container runs.
"""

from __future__ import annotations

import copy
import importlib.util
from types import ModuleType
from typing import Any

from .tools import SCRIPTS

MODEL_KEY = "gpu-sched"
POOL_LABEL = "stackgen.dev/e2e-pool"
PAUSE_IMAGE = {"repository": "registry.k8s.io/pause", "tag": "3.10", "pullPolicy": "IfNotPresent"}


def fake_gpu_module() -> ModuleType:
    """scripts/kind/fake_gpu.py, the one place the fake node's objects are defined."""
    spec = importlib.util.spec_from_file_location("fake_gpu", SCRIPTS / "kind" / "fake_gpu.py")
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def gpu_values(base: dict[str, Any], max_model_len: int, gpus: int = 1) -> dict[str, Any]:
    """Values with one GPU vLLM model (`gpus` GPUs) for the fake node; `max_model_len` is the arg the
    rollout test changes."""
    fake = fake_gpu_module()
    values = copy.deepcopy(base)
    values["models"] = {
        MODEL_KEY: {
            "engine": "vllm",
            "model": "Qwen/Qwen2.5-0.5B-Instruct",
            "replicas": 1,
            "image": dict(PAUSE_IMAGE),
            "gpu": {"resource": fake.GPU_RESOURCE, "count": gpus},
            "args": ["--max-model-len", str(max_model_len)],
            "nodeSelector": {"nvidia.com/gpu.product": fake.FAKE_PRODUCT},
            "tolerations": [{"key": fake.GPU_RESOURCE, "operator": "Exists", "effect": "NoSchedule"}],
            "resources": {"requests": {"cpu": "10m", "memory": "32Mi"}},
            "cache": {"type": "emptyDir"},
        }
    }
    values["gateway"]["replicas"] = 1
    values["helmTest"] = {"enabled": False}
    return values


def model_deployment(rendered: list[dict[str, Any]], fullname: str) -> dict[str, Any]:
    name = f"{fullname}-{MODEL_KEY}"
    for obj in rendered:
        if obj.get("kind") == "Deployment" and obj["metadata"]["name"] == name:
            return obj
    raise AssertionError(f"no Deployment {name} rendered")


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
                "image": f"{PAUSE_IMAGE['repository']}:{PAUSE_IMAGE['tag']}",
                "resources": {"limits": {resource: "1"}, "requests": {"cpu": "10m", "memory": "16Mi"}},
            }],
            "tolerations": tolerations,
            "nodeSelector": node_selector,
            "terminationGracePeriodSeconds": 0,
        },
    }
