"""A stack installed with Helm on the real node, as the node tier's modules share it: the spec adapted to this
machine, vLLM's weights pre-seeded, the master-key Secret made, the release installed and rolled out, and
everything removed afterwards."""

from __future__ import annotations

import contextlib
import os
import re
import shutil
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tests.e2e import specs
from tests.e2e.kube import Kube, timed
from tests.e2e.stack import Stack
from tests.engines.registry import mirrored
from tests.support.tools import stackgen

from .conftest import NodeCluster

STACKGEN = stackgen()
SEEDED_CLASS = "seeded-models"
# The cache's snapshot name: any 40 hex digits; refs/main points at it as the Hub's download would.
SNAPSHOT = "0" * 40


def seed_hf_cache(root: Path, repo: str, model_dir: Path) -> Path:
    """``model_dir``'s files laid out as the Hub client caches ``repo`` under HF_HOME, so that vLLM with
    HF_HUB_OFFLINE=1 finds them by id."""
    entry = root / "hub" / f"models--{repo.replace('/', '--')}"
    shutil.copytree(model_dir, entry / "snapshots" / SNAPSHOT)
    (entry / "refs").mkdir(parents=True)
    (entry / "refs" / "main").write_text(SNAPSHOT)
    return root


def node_spec(spec: dict[str, Any], ollama_ref: str, profile_cpu: dict[str, str],
              vllm: dict[str, Any]) -> dict[str, Any]:
    """What this machine needs of a spec, and nothing else: Ollama's models from the local registry mirror,
    vLLM's from a pre-seeded cache volume with HF_HUB_OFFLINE (no machine here reaches the Hub), the
    profiles' CPU requests lowered to fit 2 cores; then `vllm`'s fields set on every vLLM model."""
    out = mirrored(spec, ollama_ref)
    for name, cpu in profile_cpu.items():
        out["profiles"][name]["cpu"] = cpu
    for model in out["models"]:
        if model["engine"] == "vllm":
            model.update(vllm)
            # One node: every replica mounts the one claim there, as an explicit ReadWriteOnce says.
            model["cache"] = {"type": "persistentVolumeClaim", "storageClassName": SEEDED_CLASS, "size": "1Gi",
                              "accessModes": ["ReadWriteOnce"]}
            model.setdefault("env", {})["HF_HUB_OFFLINE"] = "1"
    return out


def give_to(root: Path, uid: int, gid: int) -> None:
    for path in [root, *root.rglob("*")]:
        os.chown(path, uid, gid, follow_symlinks=False)


def seeded_volume(name: str, path: Path, namespace: str, claim: str) -> dict[str, Any]:
    """A volume an administrator made for one claim: pre-bound to it, kept when the claim goes."""
    return {
        "apiVersion": "v1", "kind": "PersistentVolume", "metadata": {"name": name},
        "spec": {
            "capacity": {"storage": "1Gi"}, "accessModes": ["ReadWriteOnce"],
            "persistentVolumeReclaimPolicy": "Retain", "storageClassName": SEEDED_CLASS,
            "claimRef": {"namespace": namespace, "name": claim},
            "hostPath": {"path": str(path), "type": "Directory"},
        },
    }


@dataclass
class Installed:
    cluster: NodeCluster
    stack: Stack
    spec: dict[str, Any]
    spec_file: Path
    out: Path
    values: dict[str, Any]
    deployments: list[str]
    secrets: frozenset[tuple[str, str]]  # the Secrets the user made
    seeded: list[str]

    @property
    def kube(self) -> Kube:
        return self.stack.kube

    @property
    def namespace(self) -> str:
        return self.stack.namespace

    def pods(self) -> list[dict[str, Any]]:
        return self.kube.items("pods", "-n", self.namespace)

    def of(self, component: str) -> list[dict[str, Any]]:
        return [p for p in self.pods() if p["metadata"]["labels"].get("app.kubernetes.io/component") == component]

    def gateway(self) -> tuple[str, int]:
        return f"{self.stack.release}-gateway", int(self.values["gateway"]["port"])

    def gateway_url(self) -> str:
        """The gateway's Service address, as an agent in the cluster calls it (this machine routes Services to the
        node, network.py): the path of load that `kubectl port-forward`, one stream through the API server, is not."""
        svc, port = self.gateway()
        ip = self.kube.run("get", "service", "-n", self.namespace, svc, "-o", "jsonpath={.spec.clusterIP}").stdout
        return f"http://{ip.strip()}:{port}"

    def vllm_requests(self, pod: str) -> float:
        """Requests a vLLM pod has finished, from its own /metrics (read inside the pod)."""
        text = self.kube.run("exec", "-n", self.namespace, pod, "--", "curl", "-s",
                             "http://127.0.0.1:8000/metrics").stdout
        return sum(float(v) for v in re.findall(r"^vllm:request_success_total\{[^}]*\} (\S+)$", text, re.M))


def ready(pod: dict[str, Any]) -> bool:
    statuses = pod.get("status", {}).get("containerStatuses", [])
    return pod["status"].get("phase") == "Running" and bool(statuses) and all(s["ready"] for s in statuses)


# Where a seeded cache volume holds adapters (`adapters` of install), as the pod sees it: under HF_HOME.
ADAPTERS_IN_POD = "/root/.cache/huggingface/adapters"


@contextlib.contextmanager
def install(cluster: NodeCluster, spec: dict[str, Any], work: Path,
            adapters: dict[str, Path] | None = None, chart: tuple[str, ...] | None = None) -> Iterator[Installed]:
    """Render `spec` with stackgen, install it with Helm 3 (the checkout's chart, or `chart`: a reference and its
    flags), wait for every rollout; uninstall at the end. `adapters` (directory name -> adapter) are copied into
    every vLLM model's seeded cache, under ADAPTERS_IN_POD in its pods."""
    spec_file = specs.write_spec(spec, work / "spec.yaml")
    out = specs.render(STACKGEN, spec_file, work / "out")
    values = specs.load_yaml(out / "values.yaml")
    objects = specs.manifest_objects(out)
    namespace = specs.namespace_of(spec, objects)
    kube = cluster.kube("helm3")
    stack = Stack(kube=kube, stackgen=STACKGEN, release=values["fullnameOverride"], namespace=namespace)
    if chart:
        stack.chart = chart
    seeded = []
    for model in spec["models"]:
        if model["engine"] == "vllm":
            name = f"seeded-{model['name']}"
            root = seed_hf_cache(work / name, model["model"], cluster.tiny_qwen)
            for directory, adapter in (adapters or {}).items():
                shutil.copytree(adapter, root / "adapters" / directory)
            # An administrator's volume: the kubelet applies no fsGroup to a hostPath, so it is made the pods' own.
            pod = next(o for o in objects if o["kind"] == "Deployment"
                       and o["metadata"]["name"] == f"{stack.release}-{model['name']}")["spec"]["template"]["spec"]
            give_to(root, pod["securityContext"]["runAsUser"], pod["securityContext"]["fsGroup"])
            kube.apply(seeded_volume(name, root, namespace, f"{stack.release}-{model['name']}"))
            seeded.append(name)
    try:
        secrets = stack.prepare(values)
        stack.helm("install", out / "values.yaml")
        deployments = stack.wait(out)
        yield Installed(cluster, stack, spec, spec_file, out, values, deployments, secrets, seeded)
    finally:
        with timed(f"{stack.release} uninstalled and its namespace deleted"):
            stack.teardown()
        for name in seeded:
            kube.run("delete", "persistentvolume", name, "--ignore-not-found", check=False)
