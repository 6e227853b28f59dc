"""Reading rendered Kubernetes objects as the cluster would, without a cluster: which pods a label selector
picks, which container port a Service's targetPort reaches, and whether the NetworkPolicies let one pod open a
connection to another's port (the semantics of networking.k8s.io/v1, ingress only: a pod no policy selects
takes everything; a selected pod takes what some rule of some policy selecting it admits). For the property
tests of tests/test_invariants.py; usable by any test that holds the objects of `helm template`."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

Obj = dict[str, Any]

NAMESPACE_LABEL = "kubernetes.io/metadata.name"  # every namespace carries its name (Kubernetes 1.22+)
POD_KINDS = ("Deployment", "StatefulSet", "DaemonSet", "Job", "ReplicaSet")
# Names Kubernetes validates: a DNS-1123 label (Services: DNS-1035, starting with a letter) or subdomain.
DNS_1123_LABEL = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")
DNS_1035_LABEL = re.compile(r"^[a-z]([-a-z0-9]*[a-z0-9])?$")
DNS_1123_SUBDOMAIN = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$")
LABEL_VALUE = re.compile(r"^(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?$")


@dataclass(frozen=True)
class Pod:
    """The pods of one workload's template (or a pod that is not rendered, such as another namespace's)."""

    owner: str  # "<Kind>/<name>" of the workload, or a description
    namespace: str
    labels: dict[str, str]
    spec: Obj = field(default_factory=dict, hash=False, compare=False)

    def ports(self) -> dict[str, int]:
        """Every container port, by name (a port without a name is keyed by its number)."""
        out: dict[str, int] = {}
        for c in self.spec.get("containers", []):
            for p in c.get("ports", []):
                out[str(p.get("name") or p["containerPort"])] = int(p["containerPort"])
        return out

    def resolve(self, port: int | str) -> int | None:
        """A named or numbered port as the kubelet resolves it: the container port it names, or None."""
        ports = self.ports()
        if isinstance(port, int) or str(port).isdigit():
            return int(port) if int(port) in ports.values() else None
        return ports.get(str(port))


def name(obj: Obj) -> str:
    return str(obj["metadata"]["name"])


def of_kind(objs: list[Obj], kind: str) -> list[Obj]:
    return [o for o in objs if o["kind"] == kind]


def named(objs: list[Obj], kind: str, object_name: str) -> Obj | None:
    return next((o for o in objs if o["kind"] == kind and name(o) == object_name), None)


def pods(objs: list[Obj], namespace: str) -> list[Pod]:
    """The pods every workload of the objects would run (one per template), in the namespace they install to."""
    out = []
    for o in objs:
        if o["kind"] in POD_KINDS:
            template = o["spec"]["template"]
            out.append(Pod(f"{o['kind']}/{name(o)}", o["metadata"].get("namespace", namespace),
                           dict(template["metadata"].get("labels") or {}), template["spec"]))
        elif o["kind"] == "Pod":
            out.append(Pod(f"Pod/{name(o)}", o["metadata"].get("namespace", namespace),
                           dict(o["metadata"].get("labels") or {}), o["spec"]))
        elif o["kind"] == "LeaderWorkerSet":
            out += group_pods(o, namespace)
    return out


LWS_NAME, LWS_WORKER_INDEX = "leaderworkerset.sigs.k8s.io/name", "leaderworkerset.sigs.k8s.io/worker-index"


def group_pods(lws: Obj, namespace: str) -> list[Pod]:
    """A LeaderWorkerSet's leader (owner LeaderWorkerSet/<name>) and one of its workers (.../worker), labelled as
    LWS's controller labels them: its name, and the pod's index in its group (0 for the leader)."""
    template = lws["spec"]["leaderWorkerTemplate"]
    out = []
    for role, index, key in (("", "0", "leaderTemplate"), ("/worker", "1", "workerTemplate")):
        pod = template.get(key) or template["workerTemplate"]
        labels = {**(pod["metadata"].get("labels") or {}), LWS_NAME: name(lws), LWS_WORKER_INDEX: index}
        out.append(Pod(f"LeaderWorkerSet/{name(lws)}{role}", lws["metadata"].get("namespace", namespace), labels,
                       pod["spec"]))
    return out


# The longest revision hash a StatefulSet's controller-revision-hash label (<statefulset>-<hash>) carries.
REVISION_HASH_CHARS = 10


def made_by_lws(lws: Obj, groups: int) -> list[tuple[str, str]]:
    """What LWS's controller (at the `lws` pin) makes for a LeaderWorkerSet of `groups` groups, as (what, name): its leaders'
    StatefulSet, each group's workers' StatefulSet and pods, the headless Services its pods resolve their leader
    through (one named after it, or one per group with the UniquePerReplica subdomain), and the revision label each
    StatefulSet gives its pods."""
    lws_name, template = name(lws), lws["spec"]["leaderWorkerTemplate"]
    policy = (lws["spec"].get("networkConfig") or {}).get("subdomainPolicy", "Shared")
    out = [("StatefulSet", lws_name)]
    out += [("Service", lws_name)] if policy == "Shared" else [("Service", f"{lws_name}-{i}") for i in range(groups)]
    for i in range(groups):
        out.append(("StatefulSet", f"{lws_name}-{i}"))
        out += [("Pod", f"{lws_name}-{i}-{j}") for j in range(1, int(template["size"]))]
    out += [("label controller-revision-hash", f"{sts}-{'0' * REVISION_HASH_CHARS}")
            for what, sts in list(out) if what == "StatefulSet"]
    return out


def matches(selector: Obj | None, labels: dict[str, str]) -> bool:
    """A metav1.LabelSelector (matchLabels, matchExpressions) against labels; an empty selector selects all."""
    selector = selector or {}
    if any(labels.get(k) != v for k, v in (selector.get("matchLabels") or {}).items()):
        return False
    for e in selector.get("matchExpressions") or []:
        key, op, values = e["key"], e["operator"], e.get("values") or []
        if op == "In" and labels.get(key) not in values:
            return False
        if op == "NotIn" and key in labels and labels[key] in values:
            return False
        if op == "Exists" and key not in labels:
            return False
        if op == "DoesNotExist" and key in labels:
            return False
    return True


def service_selects(service: Obj, pod: Pod) -> bool:
    """A Service's plain map selector (a Service without one selects no pod: its endpoints are managed by hand)."""
    selector = service["spec"].get("selector") or {}
    return bool(selector) and all(pod.labels.get(k) == v for k, v in selector.items())


def _port_admitted(rule_ports: list[Obj] | None, dest: Pod, port: int) -> bool:
    if not rule_ports:
        return True  # no ports: every port
    for p in rule_ports:
        if p.get("protocol", "TCP") != "TCP":
            continue
        if "port" not in p:
            return True
        number = dest.resolve(p["port"]) if isinstance(p["port"], str) else int(p["port"])
        if number is not None and number <= port <= int(p.get("endPort", number)):
            return True
    return False


def _peer_admits(peer: Obj, policy_namespace: str, source: Pod) -> bool:
    assert "ipBlock" not in peer, f"an ipBlock peer cannot be judged without addresses: {peer}"
    if "namespaceSelector" in peer:
        in_namespace = matches(peer["namespaceSelector"], {NAMESPACE_LABEL: source.namespace})
    else:
        in_namespace = source.namespace == policy_namespace
    return in_namespace and ("podSelector" not in peer or matches(peer["podSelector"], source.labels))


def admitting(policies: list[Obj], source: Pod, dest: Pod, port: int, namespace: str) -> list[str]:
    """Why NetworkPolicies (all installed to `namespace` unless they say otherwise) let `source` open a TCP
    connection to `dest` on `port`: each admitting rule, as "<policy>: <peer>"; ["no policy selects it"] when no
    policy selects `dest`; empty when none admits it. Egress is not judged: the chart renders ingress only."""
    selecting = []
    for p in policies:
        policy_namespace = p["metadata"].get("namespace", namespace)
        types = p["spec"].get("policyTypes") or ["Ingress"]
        if policy_namespace == dest.namespace and "Ingress" in types and matches(p["spec"].get("podSelector"), dest.labels):
            selecting.append((p, policy_namespace))
    if not selecting:
        return ["no policy selects it"]
    reasons = []
    for p, policy_namespace in selecting:
        for rule in p["spec"].get("ingress") or []:
            if not _port_admitted(rule.get("ports"), dest, port):
                continue
            peers = rule.get("from")
            if not peers:
                reasons.append(f"{name(p)}: any source")
            reasons += [f"{name(p)}: {peer}" for peer in peers or [] if _peer_admits(peer, policy_namespace, source)]
    return reasons


def admits(policies: list[Obj], source: Pod, dest: Pod, port: int, namespace: str) -> bool:
    """Whether the NetworkPolicies let `source` reach `dest` on `port` (see `admitting`)."""
    return bool(admitting(policies, source, dest, port, namespace))


def secret_refs(spec: Obj) -> list[tuple[str, str | None, str]]:
    """Every Secret a pod spec reads: (name, key or None for the whole Secret, where)."""
    out: list[tuple[str, str | None, str]] = []
    for c in spec.get("initContainers", []) + spec.get("containers", []):
        for e in c.get("env") or []:
            ref = (e.get("valueFrom") or {}).get("secretKeyRef")
            if ref:
                out.append((ref["name"], ref["key"], f"container {c['name']} env {e['name']}"))
        for e in c.get("envFrom") or []:
            if "secretRef" in e:
                out.append((e["secretRef"]["name"], None, f"container {c['name']} envFrom"))
    for v in spec.get("volumes") or []:
        if "secret" in v:
            out.append((v["secret"]["secretName"], None, f"volume {v['name']}"))
        for source in (v.get("projected") or {}).get("sources") or []:
            if "secret" in source:
                out.append((source["secret"]["name"], None, f"projected volume {v['name']}"))
    for s in spec.get("imagePullSecrets") or []:
        out.append((s["name"], None, "imagePullSecrets"))
    return out
