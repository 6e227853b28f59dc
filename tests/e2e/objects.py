"""Pure readings of Kubernetes objects (dicts as `kubectl get -o json` returns them).

Kept apart from the code that talks to a cluster so `make test` checks them without one.
"""

from __future__ import annotations

from typing import Any

Obj = dict[str, Any]

# What Kubernetes itself puts in every namespace: not left behind by anyone.
DEFAULT_OBJECTS = frozenset({("ConfigMap", "kube-root-ca.crt"), ("ServiceAccount", "default")})
# Records, not objects anything owns: they expire on their own (an hour by default).
RECORD_RESOURCES = frozenset({"events", "events.events.k8s.io"})


def tolerates(toleration: Obj, taint: Obj) -> bool:
    """Whether one toleration matches one taint, with the API's rules (core/v1 Toleration):
    an empty effect matches every effect; an empty key with operator Exists matches every taint;
    Exists ignores the value; Equal (the default operator) compares values."""
    effect = toleration.get("effect") or ""
    if effect and effect != taint.get("effect"):
        return False
    operator = toleration.get("operator") or "Equal"
    key = toleration.get("key") or ""
    if not key:
        return operator == "Exists"
    if key != taint.get("key"):
        return False
    if operator == "Exists":
        return True
    return operator == "Equal" and (toleration.get("value") or "") == (taint.get("value") or "")


def untolerated(tolerations: list[Obj], taints: list[Obj]) -> list[Obj]:
    """Taints that keep a pod with these tolerations off the node (PreferNoSchedule only prefers)."""
    return [
        taint for taint in taints
        if taint.get("effect") in {"NoSchedule", "NoExecute"}
        and not any(tolerates(t, taint) for t in tolerations)
    ]


def _is_zero(quantity: Any) -> bool:
    return str(quantity).strip() in {"0", "0%"}


def rolls_without_surge(strategy: Obj) -> bool:
    """True when a rollout never needs a pod beyond `replicas`: Recreate, or RollingUpdate with
    maxSurge 0 (then maxUnavailable must be > 0, which the API enforces). The Deployment default,
    RollingUpdate with maxSurge 25%, wants a spare GPU and deadlocks when none is free."""
    kind = strategy.get("type", "RollingUpdate")
    if kind == "Recreate":
        return True
    rolling = strategy.get("rollingUpdate") or {}
    return kind == "RollingUpdate" and "maxSurge" in rolling and _is_zero(rolling["maxSurge"])


def deployment_done(deploy: Obj) -> bool:
    """The same test `kubectl rollout status` applies: the controller saw the latest spec and every
    replica is updated, available and no old one is left."""
    spec, status = deploy.get("spec", {}), deploy.get("status", {})
    want = spec.get("replicas", 1)
    return (
        status.get("observedGeneration", 0) >= deploy["metadata"].get("generation", 0)
        and status.get("updatedReplicas", 0) == want
        and status.get("replicas", 0) == want
        and status.get("availableReplicas", 0) == want
    )


def owner_deployment(pod: Obj) -> str | None:
    """Name of the Deployment whose ReplicaSet owns the pod (ReplicaSet = <deployment>-<hash>)."""
    for ref in pod["metadata"].get("ownerReferences", []):
        if ref.get("kind") == "ReplicaSet":
            return str(ref["name"]).rsplit("-", 1)[0]
    return None


def pod_state(pod: Obj) -> str:
    """Short human state: the waiting reason if a container waits, else phase and readiness."""
    statuses = pod.get("status", {}).get("containerStatuses", []) + pod.get("status", {}).get(
        "initContainerStatuses", [])
    for status in statuses:
        waiting = status.get("state", {}).get("waiting")
        if waiting and waiting.get("reason") not in {None, "PodInitializing"}:
            return str(waiting["reason"])
    phase = pod.get("status", {}).get("phase", "Unknown")
    if phase == "Pending":
        scheduled = condition(pod, "PodScheduled")
        if scheduled and scheduled.get("status") == "False":
            return f"Unschedulable: {scheduled.get('message', '')[:80]}"
    ready = sum(1 for s in pod.get("status", {}).get("containerStatuses", []) if s.get("ready"))
    return f"{phase} {ready}/{len(pod['spec'].get('containers', []))} ready"


def condition(obj: Obj, kind: str) -> Obj | None:
    for cond in obj.get("status", {}).get("conditions", []) or []:
        if cond.get("type") == kind:
            return cond
    return None


def progress_line(deploy: Obj, pods: list[Obj]) -> str:
    status = deploy.get("status", {})
    name = deploy["metadata"]["name"]
    want = deploy.get("spec", {}).get("replicas", 1)
    mark = "ok" if deployment_done(deploy) else ".."
    states = sorted({pod_state(p) for p in pods if owner_deployment(p) == name})
    return f"  [{mark}] {name}: {status.get('readyReplicas', 0)}/{want} ready" + (
        f" ({'; '.join(states)})" if states and mark == ".." else "")


def leftovers(items: list[Obj], ignore: frozenset[tuple[str, str]] = frozenset()) -> list[str]:
    """`Kind/name` of every object that is neither a namespace default nor explicitly ignored."""
    skip = DEFAULT_OBJECTS | ignore
    return sorted(
        f"{o['kind']}/{o['metadata']['name']}" for o in items
        if (o["kind"], o["metadata"]["name"]) not in skip
    )


def pvs_claimed_from(pvs: list[Obj], namespace: str) -> list[str]:
    """PersistentVolumes still bound to a claim of `namespace` (cluster-scoped, so listed apart)."""
    return sorted(
        pv["metadata"]["name"] for pv in pvs
        if (pv.get("spec", {}).get("claimRef") or {}).get("namespace") == namespace
    )
