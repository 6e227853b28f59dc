"""kubectl against one cluster, for every tier that has one (the control plane, the real node, kind).

Each call names its kubeconfig and context when they are given, and has a time limit."""

from __future__ import annotations

import json
import subprocess
from dataclasses import dataclass
from typing import Any

# The Pod Security level every namespace of the tests enforces: the chart's (charts/inference-stack/README.md).
POD_SECURITY = "restricted"


@dataclass(frozen=True, kw_only=True)
class Kubectl:
    kubectl: str
    kubeconfig: str = ""  # empty: the user's ($KUBECONFIG or ~/.kube/config), as kind writes it
    context: str = ""  # empty: the kubeconfig's current context

    def kubectl_argv(self) -> list[str]:
        config = ["--kubeconfig", self.kubeconfig] if self.kubeconfig else []
        context = ["--context", self.context] if self.context else []
        return [self.kubectl, *config, *context]

    def run(self, *args: str, timeout: float = 120, stdin: str | None = None,
            check: bool = True) -> subprocess.CompletedProcess[str]:
        proc = subprocess.run([*self.kubectl_argv(), *args], input=stdin,
                              capture_output=True, text=True, timeout=timeout, check=False)
        if check and proc.returncode != 0:
            raise AssertionError(f"kubectl {' '.join(args[:3])} failed: {proc.stderr.strip()}")
        return proc

    def get(self, *args: str, timeout: float = 60) -> dict[str, Any]:
        obj: dict[str, Any] = json.loads(self.run("get", *args, "-o", "json", timeout=timeout).stdout)
        return obj

    def items(self, *args: str) -> list[dict[str, Any]]:
        return list(self.get(*args).get("items") or [])

    def apply(self, obj: dict[str, Any], server_side: bool = False) -> None:
        # Through stdin: a Secret's value never appears in a command line.
        how = ["--server-side", "--field-manager=stackgen-tests"] if server_side else []
        self.run("apply", *how, "-f", "-", stdin=json.dumps(obj))

    def create_namespace(self, name: str) -> None:
        """A namespace whose pods the API server's PodSecurity admission holds to POD_SECURITY."""
        labels = {f"pod-security.kubernetes.io/{mode}": POD_SECURITY for mode in ("enforce", "audit", "warn")}
        labels["pod-security.kubernetes.io/enforce-version"] = "latest"
        self.apply({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": name, "labels": labels}})


def status(obj: dict[str, Any]) -> dict[str, Any]:
    """An object's status: empty until a controller fills it in (the API server may return `null`)."""
    return obj.get("status") or {}


def conditions(obj: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """An object's conditions by type; none yet right after its creation, when the list is missing or null."""
    return {c["type"]: c for c in status(obj).get("conditions") or []}


def condition_true(obj: dict[str, Any], kind: str) -> bool:
    return conditions(obj).get(kind, {}).get("status") == "True"


def pod_of(deployment: dict[str, Any], name: str) -> dict[str, Any]:
    """A Pod made of a Deployment's template, to show the API server's admission the pod the chart renders."""
    template = deployment["spec"]["template"]
    return {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": name, "labels": template["metadata"]["labels"]},
            "spec": template["spec"]}


def delete_kept_caches(namespace: str, release: str) -> list[str]:
    """The kubectl arguments docs/operations.md gives for deleting the model caches `helm uninstall` keeps."""
    return ["delete", "pvc", "-n", namespace, "-l", f"app.kubernetes.io/instance={release}", "--wait=true"]
