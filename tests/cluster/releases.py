"""A chart release of a rendered stack on the test cluster, and the facts the tests read from it."""

from __future__ import annotations

import contextlib
import json
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from tests.support import kube
from tests.support.paths import CHART
from tests.support.wait import poll

from .fakes import GPU, PROVISIONER
from .kube import EXAMPLES_DIR, Cluster, referenced_secrets

EXAMPLES = ("kind-cpu", "gpu-fleet", "hybrid")
INSTALL_TIMEOUT = "180s"
# Kinds a release may leave behind that the namespace itself owns (not the chart's).
NAMESPACE_OWN = {("ConfigMap", "kube-root-ca.crt"), ("ServiceAccount", "default")}


@dataclass
class Release:
    cluster: Cluster
    helm: str
    name: str
    namespace: str
    out: Path
    example: str = ""  # the built-in example rendered into `out`, if any
    installed: bool = False
    chart: str = str(CHART)  # the checkout's, or a reference such as oci://HOST/PATH/inference-stack

    @property
    def values(self) -> dict[str, Any]:
        values: dict[str, Any] = yaml.safe_load((self.out / "values.yaml").read_text())
        return values

    def expected_deployments(self) -> set[str]:
        """The Deployments the rendered values ask for: the gateway, every model and its router if it has one,
        and Redis when the chart runs it."""
        models = self.values.get("models", {})
        names = {f"{self.name}-gateway"} | {f"{self.name}-{k}" for k in models}
        names |= {f"{self.name}-{k}-router" for k, m in models.items() if m.get("router")}
        if self.values.get("redis", {}).get("enabled"):
            names.add(f"{self.name}-redis")
        return names

    def prepare_namespace(self) -> None:
        self.cluster.create_namespace(self.namespace)
        for secret, keys in referenced_secrets(self.values).items():
            self.cluster.create_secret(self.namespace, secret, keys)

    def install(self, *extra: str) -> None:
        self.cluster.helm(self.helm, "install", self.name, self.chart, "-n", self.namespace,
                          "-f", str(self.out / "values.yaml"), "--wait",
                          "--timeout", INSTALL_TIMEOUT, *extra)
        self.installed = True

    def upgrade(self, values: Path, *extra: str) -> None:
        self.cluster.helm(self.helm, "upgrade", self.name, self.chart, "-n", self.namespace,
                          "-f", str(values), *extra)

    def uninstall(self) -> None:
        self.cluster.helm(self.helm, "uninstall", self.name, "-n", self.namespace, "--wait",
                          "--timeout", INSTALL_TIMEOUT)
        self.installed = False

    def teardown(self) -> None:
        if self.installed:
            self.cluster.helm(self.helm, "uninstall", self.name, "-n", self.namespace, check=False)
        self.cluster.delete_namespace(self.namespace)

    @contextlib.contextmanager
    def installed_for(self, *install_flags: str) -> Iterator[Release]:
        """Installed into its namespace (made first, with the Secrets the values name) while the block runs;
        then uninstalled and the namespace deleted, which waits for its pods, whatever the block did."""
        self.prepare_namespace()
        try:
            self.install(*install_flags)
            yield self
        finally:
            self.teardown()

    # -- reading the cluster -----------------------------------------------------------------

    def deployments(self) -> list[dict[str, Any]]:
        return self.cluster.items("deployments", "-n", self.namespace)

    def pods(self) -> list[dict[str, Any]]:
        return self.cluster.items("pods", "-n", self.namespace)

    def component(self, obj: dict[str, Any]) -> str:
        return str(obj["metadata"]["labels"]["app.kubernetes.io/component"])

    def gpu_models(self) -> dict[str, int]:
        """Model key -> GPUs per pod, for models whose profile has GPUs."""
        return {k: int(m["gpu"]["count"]) for k, m in (self.values.get("models") or {}).items()
                if m.get("gpu", {}).get("count", 0)}


def available(dep: dict[str, Any]) -> bool:
    status = kube.status(dep)
    want = dep["spec"].get("replicas", 1)
    return (kube.condition_true(dep, "Available")
            and status.get("observedGeneration") == dep["metadata"]["generation"]
            and status.get("updatedReplicas", 0) == want
            and status.get("readyReplicas", 0) == want
            and status.get("replicas", 0) == want)


def pod_gpus(pod: dict[str, Any]) -> int:
    return sum(int(c.get("resources", {}).get("limits", {}).get(GPU, 0))
               for c in pod["spec"]["containers"])


def wait_all_available(release: Release, timeout: float = 120) -> list[dict[str, Any]]:
    def check() -> tuple[list[dict[str, Any]] | None, str]:
        deps = release.deployments()
        return (deps if deps and all(available(d) for d in deps) else None), not_running(release)
    return poll(f"every Deployment in {release.namespace} Available", check, timeout)


def not_running(release: Release) -> str:
    """Why pods are not up: each non-running pod with its scheduling message."""
    lines = []
    for pod in release.pods():
        if kube.status(pod).get("phase") != "Running":
            scheduled = kube.conditions(pod).get("PodScheduled", {}).get("message", "")
            lines.append(f"{pod['metadata']['name']} {kube.status(pod).get('phase')}: {scheduled}")
    return "; ".join(lines) or "all pods running; Deployments not yet reporting Available"


def leftovers(cluster: Cluster, namespace: str, keep_secrets: set[str]) -> list[str]:
    """Every namespaced object still in `namespace`, except what the namespace itself brings."""
    kinds = cluster.kubectl("api-resources", "--verbs=list", "--namespaced", "-o", "name").stdout
    wanted = [k for k in kinds.split() if k not in ("events", "events.events.k8s.io")]
    listing = json.loads(cluster.kubectl("get", ",".join(wanted), "-n", namespace,
                                         "-o", "json").stdout)
    left = []
    for obj in listing["items"]:
        kind, name = obj["kind"], obj["metadata"]["name"]
        if (kind, name) in NAMESPACE_OWN or (kind == "Secret" and name in keep_secrets):
            continue
        left.append(f"{kind}/{name}")
    return left


def provisioned_volumes(cluster: Cluster, namespace: str) -> list[str]:
    return [pv["metadata"]["name"] for pv in cluster.items("pv")
            if pv["metadata"].get("annotations", {}).get("pv.kubernetes.io/provisioned-by")
            == PROVISIONER and pv["spec"].get("claimRef", {}).get("namespace") == namespace]


def changed_spec(example: str, work: Path) -> tuple[Path, str, int]:
    """The example's spec with one more gateway replica and a smaller context for its first vLLM
    model (its args change, so its pods roll). Returns (spec path, model key, new maxModelLen)."""
    spec = yaml.safe_load((EXAMPLES_DIR / f"{example}.yaml").read_text())
    spec["gateway"]["replicas"] = int(spec["gateway"].get("replicas", 1)) + 1
    model = next(m for m in spec["models"] if m.get("engine") == "vllm")
    model["maxModelLen"] = int(model["maxModelLen"]) // 2
    path = work / f"{example}-changed.yaml"
    path.write_text(yaml.safe_dump(spec, sort_keys=False))
    return path, model["name"], model["maxModelLen"]

