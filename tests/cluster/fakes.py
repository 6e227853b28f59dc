"""What a GPU cloud cluster has beyond the control plane, made of API objects: node pools (kwok
plays their kubelets), the `nvidia` RuntimeClass the GPU operator installs, storage classes, and a
provisioner that creates a PersistentVolume for each claim (nothing is ever mounted: no container runs)."""

from __future__ import annotations

import json
import threading
from dataclasses import dataclass, field
from typing import Any

from .controlplane import KWOK_NODE_ANNOTATION, ControlPlane

GPU = "nvidia.com/gpu"
PROVISIONER = "stackgen.test/fake-provisioner"
# The pool the GPU-rollout test owns: its taint keeps every other GPU workload off it.
ROLLOUT_TAINT = {"key": "stackgen.test/pool", "value": "rollout", "effect": "NoSchedule"}


@dataclass(frozen=True)
class Pool:
    name: str
    count: int
    cpu: str
    memory: str
    machine: str
    gpus: int = 0
    accelerator: str = ""  # GKE's cloud.google.com/gke-accelerator value
    product: str = ""  # NVIDIA GPU feature discovery's nvidia.com/gpu.product value
    extra_taints: tuple[dict[str, str], ...] = field(default_factory=tuple)

    def labels(self, index: int) -> dict[str, str]:
        labels = {
            "kubernetes.io/hostname": self.node_name(index),
            "kubernetes.io/os": "linux",
            "kubernetes.io/arch": "amd64",
            "node.kubernetes.io/instance-type": self.machine,
            "cloud.google.com/gke-nodepool": self.name,
            "type": "kwok",
        }
        if self.gpus:
            labels |= {
                "cloud.google.com/gke-accelerator": self.accelerator,
                "nvidia.com/gpu.present": "true",
                "nvidia.com/gpu.product": self.product,
                "nvidia.com/gpu.count": str(self.gpus),
            }
        return labels

    def taints(self) -> list[dict[str, str]]:
        # GPU nodes are tainted so that only pods that tolerate it (GPU workloads) land there.
        base = [{"key": GPU, "value": "present", "effect": "NoSchedule"}] if self.gpus else []
        return base + [dict(t) for t in self.extra_taints]

    def node_name(self, index: int) -> str:
        return f"{self.name}-{index}"

    def nodes(self) -> list[dict[str, Any]]:
        resources = {"cpu": self.cpu, "memory": self.memory, "pods": "110",
                     "ephemeral-storage": "200Gi"}
        if self.gpus:
            resources[GPU] = str(self.gpus)
        return [{
            "apiVersion": "v1",
            "kind": "Node",
            "metadata": {"name": self.node_name(i), "labels": self.labels(i),
                         "annotations": {KWOK_NODE_ANNOTATION: "fake"}},
            "spec": {"taints": self.taints()},
            # Status is accepted on create for Nodes (that is how kubelets register).
            "status": {"capacity": resources, "allocatable": resources,
                       "nodeInfo": {"architecture": "amd64", "operatingSystem": "linux",
                                    "kubeletVersion": "kwok"}},
        } for i in range(self.count)]


# Sized so every example fits at once with room for a surge pod on CPU, but not on the rollout pool.
POOLS = (
    Pool("cpu", 3, cpu="8", memory="32Gi", machine="n2-standard-8"),
    # 4 L4s: gpu-fleet runs qwen-7b x2, mistral-7b and gemma-ollama on L4s.
    Pool("l4", 4, cpu="12", memory="48Gi", machine="g2-standard-12", gpus=1,
         accelerator="nvidia-l4", product="NVIDIA-L4"),
    Pool("a100", 1, cpu="24", memory="340Gi", machine="a2-ultragpu-2g", gpus=2,
         accelerator="nvidia-a100-80gb", product="NVIDIA-A100-SXM4-80GB"),
    Pool("rollout", 1, cpu="8", memory="30Gi", machine="n1-standard-8", gpus=1,
         accelerator="nvidia-tesla-t4", product="Tesla-T4", extra_taints=(ROLLOUT_TAINT,)),
)


def cluster_objects() -> list[dict[str, Any]]:
    objs: list[dict[str, Any]] = [n for pool in POOLS for n in pool.nodes()]
    # gpu-fleet's a100x2 profile names runtimeClassName: nvidia, which the GPU operator creates.
    objs.append({"apiVersion": "node.k8s.io/v1", "kind": "RuntimeClass",
                 "metadata": {"name": "nvidia"}, "handler": "nvidia"})
    for name, default in (("standard", True), ("premium-rwo", False)):
        objs.append({
            "apiVersion": "storage.k8s.io/v1", "kind": "StorageClass",
            "metadata": {"name": name, "annotations": {
                "storageclass.kubernetes.io/is-default-class": str(default).lower()}},
            "provisioner": PROVISIONER, "reclaimPolicy": "Delete",
            "volumeBindingMode": "Immediate"})
    return objs


class FakeProvisioner:
    """Plays an external provisioner: the PV controller marks claims of our storage classes with
    our name; we create a matching pre-bound PV, and delete released ones (reclaimPolicy Delete)."""

    def __init__(self, cp: ControlPlane, period_s: float = 1.0) -> None:
        self.cp = cp
        self.period_s = period_s
        self.stop_event = threading.Event()
        self.errors: list[str] = []
        self.thread = threading.Thread(target=self._run, name="fake-provisioner", daemon=True)

    def start(self) -> None:
        self.thread.start()

    def stop(self) -> None:
        self.stop_event.set()
        self.thread.join(timeout=30)

    def _run(self) -> None:
        while not self.stop_event.wait(self.period_s):
            try:
                self.sync()
            except Exception as err:  # noqa: BLE001 - keep provisioning; the tests see the errors
                self.errors.append(str(err))

    def sync(self) -> None:
        listing = json.loads(self.cp.client.run("get", "pvc,pv", "-A", "-o", "json").stdout)
        pvs = [o for o in listing["items"] if o["kind"] == "PersistentVolume"]
        claimed = {pv["spec"].get("claimRef", {}).get("uid") for pv in pvs}
        for pvc in listing["items"]:
            if pvc["kind"] != "PersistentVolumeClaim":
                continue
            ann = pvc["metadata"].get("annotations", {})
            if (ann.get("volume.kubernetes.io/storage-provisioner") == PROVISIONER
                    and not pvc["spec"].get("volumeName")
                    and pvc["metadata"]["uid"] not in claimed
                    and "deletionTimestamp" not in pvc["metadata"]):
                self.cp.client.run("create", "-f", "-", stdin=json.dumps(self._volume_for(pvc)))
        for pv in pvs:
            ann = pv["metadata"].get("annotations", {})
            if (ann.get("pv.kubernetes.io/provisioned-by") == PROVISIONER
                    and pv.get("status", {}).get("phase") == "Released"):
                self.cp.client.run("delete", "pv", pv["metadata"]["name"], "--wait=false",
                                "--ignore-not-found")

    @staticmethod
    def _volume_for(pvc: dict[str, Any]) -> dict[str, Any]:
        meta, spec = pvc["metadata"], pvc["spec"]
        name = f"pvc-{meta['uid']}"
        return {
            "apiVersion": "v1", "kind": "PersistentVolume",
            "metadata": {"name": name, "annotations": {"pv.kubernetes.io/provisioned-by": PROVISIONER}},
            "spec": {
                "capacity": {"storage": spec["resources"]["requests"]["storage"]},
                "accessModes": spec["accessModes"],
                "storageClassName": spec.get("storageClassName", ""),
                "persistentVolumeReclaimPolicy": "Delete",
                "claimRef": {"apiVersion": "v1", "kind": "PersistentVolumeClaim",
                             "namespace": meta["namespace"], "name": meta["name"],
                             "uid": meta["uid"]},
                # Never mounted (kwok runs no container); a source is required by validation.
                "hostPath": {"path": f"/var/lib/stackgen-fake-volumes/{name}"},
            },
        }
