"""A model bigger than one node (nodesPerReplica, #38), made into pods by LeaderWorkerSet's own controller on the real
node: the controller and its webhooks run there as a pod (addons.LWS, built from LWS's Go module), and the
LeaderWorkerSet is the one stackgen renders for a GPU profile, vLLM on two L4s per replica, applied from
`stackgen render`'s manifests.

kwok's L4 nodes stand in for GPU nodes (this machine has no GPU): the scheduler places the pods on them and kwok
reports them running and ready, but no container runs. What is real is all that LWS does: the pods it makes from the
templates, the leader's address and index its webhook gives each pod, the headless Services the pods find their
leader through (answered by the cluster's DNS), the group restarted whole, and the scale subresource KEDA drives.
Serving as a group is proven in tests/engines/test_group.py (vLLM's CPU build, two pipeline stages).

In order, each step a test:
1. Each of the two groups is a leader and a worker, each pod on an L4 node of its own, and every pod's vLLM reads
   its index and its leader's address from LWS's webhook; the cluster's DNS resolves that address to the leader.
2. A worker deleted restarts its whole group (RecreateGroupOnPodRestart), and the other group's pods are untouched.
3. The LeaderWorkerSet's scale subresource, which KEDA's HPA writes, removes a group.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import dns.resolver
import pytest
import yaml

from tests.e2e import specs
from tests.e2e.kube import Kube, timed
from tests.support.objects import LWS_NAME, LWS_WORKER_INDEX
from tests.support.wait import poll

from .addons import LWS, apply_all, installed
from .conftest import NodeCluster, report
from .runtime import CLUSTER_DNS
from .stacks import STACKGEN

NAMESPACE = "groups"
MODEL = "qwen-14b"
GROUPS = 2
L4 = {"gpu": {"resource": "nvidia.com/gpu", "count": 1, "memoryGiB": 24, "product": "NVIDIA-L4"},
      "cpu": "4", "memory": "32Gi", "nodeSelector": {"cloud.google.com/gke-accelerator": "nvidia-l4"},
      "tolerations": [{"key": "nvidia.com/gpu", "operator": "Exists", "effect": "NoSchedule"}]}
# A 14B model is too big for one L4 (24 GiB): two pipeline stages, one per L4.
SPEC = {"name": "grp", "namespace": NAMESPACE, "profiles": {"l4": L4},
        "models": [{"name": MODEL, "engine": "vllm", "model": "Qwen/Qwen2.5-14B-Instruct", "profile": "l4",
                    "maxModelLen": 8192, "nodesPerReplica": 2, "replicas": GROUPS}]}
GROUP_INDEX = "leaderworkerset.sigs.k8s.io/group-index"
SETTLE_TIMEOUT_S = 180


@dataclass
class Group:
    kube: Kube
    lws: str  # the LeaderWorkerSet's name

    def pods(self) -> list[dict[str, Any]]:
        return self.kube.items("pods", "-n", NAMESPACE, "-l", f"{LWS_NAME}={self.lws}")

    def settled(self, groups: int) -> dict[str, dict[str, Any]]:
        """Waits until `groups` groups are ready and no other pod is left; their pods by name."""
        def ready() -> tuple[dict[str, dict[str, Any]] | None, str]:
            lws = self.kube.get("leaderworkerset", "-n", NAMESPACE, self.lws)
            pods = {p["metadata"]["name"]: p for p in self.pods()}
            live = [p for p in pods.values() if not p["metadata"].get("deletionTimestamp")
                    and p["status"].get("phase") == "Running"]
            seen = f"readyReplicas {lws.get('status', {}).get('readyReplicas')}, pods {sorted(pods)}"
            done = lws.get("status", {}).get("readyReplicas") == groups and len(live) == len(pods) == 2 * groups
            return (pods if done else None), seen

        return poll(f"{groups} group(s) of {self.lws} ready", ready, SETTLE_TIMEOUT_S, 2)


@pytest.fixture(scope="module")
def lws(node_cluster: NodeCluster, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Kube]:
    with installed(node_cluster, LWS, tmp_path_factory.mktemp("lws")) as kube:
        yield kube


@pytest.fixture(scope="module")
def group(lws: Kube, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Group]:
    work = tmp_path_factory.mktemp("groups")
    out = specs.render(STACKGEN, specs.write_spec(SPEC, work / "spec.yaml"), work / "out")
    # The model's own objects: its LeaderWorkerSet, the Service of its leaders, its NetworkPolicy and budget. The
    # gateway is not needed to show what LWS makes.
    objects = [o for o in specs.manifest_objects(out)
               if o.get("metadata", {}).get("labels", {}).get("app.kubernetes.io/component") == MODEL]
    assert {o["kind"] for o in objects} >= {"LeaderWorkerSet", "Service"}, objects
    lws_name = next(o["metadata"]["name"] for o in objects if o["kind"] == "LeaderWorkerSet")
    lws.create_namespace(NAMESPACE)
    try:
        start = time.monotonic()
        # LWS's webhooks admit LeaderWorkerSets and their pods; they answer once its certificates are made and
        # mounted, which the manager's readiness does not wait for.
        poll("LWS's webhooks admitting the LeaderWorkerSet",
             lambda: (lws.run("apply", "--dry-run=server", "-n", NAMESPACE, "-f", "-",
                              stdin=yaml.safe_dump_all(objects)) is not None, "admitted"), SETTLE_TIMEOUT_S, 3)
        report["LWS webhooks answering"] = f"{time.monotonic() - start:.0f}s"
        apply_all(lws, [{**o, "metadata": {**o["metadata"], "namespace": NAMESPACE}} for o in objects])
        made = Group(lws, lws_name)
        made.settled(GROUPS)
        report["groups Ready"] = f"{time.monotonic() - start:.0f}s"
        yield made
    finally:
        with timed(f"namespace {NAMESPACE} deleted"):
            # The model's objects first, waiting for the pods they own (foreground): delete_namespace waits for
            # the pods to go before it deletes the namespace, and nothing else would delete these (321 s of
            # waiting out its timeout in a cold run).
            lws.run("delete", "-n", NAMESPACE, "-f", "-", "--ignore-not-found", "--cascade=foreground",
                    "--wait=true", "--timeout=120s", stdin=yaml.safe_dump_all(objects), timeout=150, check=False)
            lws.delete_namespace(NAMESPACE)


def _env(pod: dict[str, Any]) -> dict[str, str]:
    container = next(c for c in pod["spec"]["containers"] if c["name"] == "vllm")
    return {e["name"]: e.get("value", "") for e in container.get("env", [])}


def test_each_group_is_a_leader_and_a_worker_on_l4_nodes_that_find_their_leader(group: Group) -> None:
    pods = group.settled(GROUPS)
    for g in range(GROUPS):
        leader, worker = pods[f"{group.lws}-{g}"], pods[f"{group.lws}-{g}-1"]
        address = f"{group.lws}-{g}.{group.lws}-{g}.{NAMESPACE}"
        for index, pod in enumerate((leader, worker)):
            labels = pod["metadata"]["labels"]
            assert (labels[GROUP_INDEX], labels[LWS_WORKER_INDEX]) == (str(g), str(index)), labels
            env = _env(pod)
            assert (env.get("LWS_LEADER_ADDRESS"), env.get("LWS_WORKER_INDEX")) == (address, str(index)), env
            args = next(c for c in pod["spec"]["containers"] if c["name"] == "vllm")["args"]
            assert args[args.index("--node-rank"):][:2] == ["--node-rank", "$(LWS_WORKER_INDEX)"], args
            assert args[args.index("--master-addr"):][:2] == ["--master-addr", "$(LWS_LEADER_ADDRESS)"], args
        # Only the leader serves: its pod alone has the HTTP port the stack's Service selects.
        assert [p.get("name") for p in next(c for c in leader["spec"]["containers"])["ports"]] == ["http"]
        assert not next(c for c in worker["spec"]["containers"]).get("ports"), worker["spec"]["containers"]
    nodes = [p["spec"]["nodeName"] for p in pods.values()]
    assert len(set(nodes)) == len(nodes), f"two pods of the groups share a node: {nodes}"
    for node_name in nodes:
        node = group.kube.get("node", node_name)
        assert node["metadata"]["labels"].get("cloud.google.com/gke-accelerator") == "nvidia-l4", node_name
    # The address the workers meet their leader at, asked of the cluster's DNS as a pod's resolver would.
    resolver = dns.resolver.Resolver(configure=False)
    resolver.nameservers = [CLUSTER_DNS]
    for g in range(GROUPS):
        answer = poll(f"group {g}'s leader in the cluster's DNS",
                      lambda g=g: ([a.to_text() for a in resolver.resolve(
                          f"{group.lws}-{g}.{group.lws}-{g}.{NAMESPACE}.svc.cluster.local", "A", lifetime=5)], "-"),
                      60, 2)
        assert answer == [pods[f"{group.lws}-{g}"]["status"]["podIP"]], answer


def test_a_deleted_worker_restarts_its_whole_group_and_leaves_the_other_alone(group: Group) -> None:
    before = {name: p["metadata"]["uid"] for name, p in group.settled(GROUPS).items()}
    start = time.monotonic()
    group.kube.run("delete", "pod", "-n", NAMESPACE, f"{group.lws}-0-1", "--wait=false")
    poll("group 0's leader replaced",
         lambda: (group.kube.get("pod", "-n", NAMESPACE, f"{group.lws}-0")["metadata"]["uid"]
                  != before[f"{group.lws}-0"], "the same leader"), SETTLE_TIMEOUT_S, 1)
    after = {name: p["metadata"]["uid"] for name, p in group.settled(GROUPS).items()}
    report["group restarted"] = f"{time.monotonic() - start:.0f}s"
    assert sorted(after) == sorted(before)
    for name, uid in after.items():
        if name.startswith(f"{group.lws}-0"):
            assert uid != before[name], f"{name} was not recreated with its group"
        else:
            assert uid == before[name], f"{name}, of the other group, was recreated"


def test_the_scale_subresource_that_keda_drives_removes_a_group(group: Group) -> None:
    path = f"/apis/leaderworkerset.x-k8s.io/v1/namespaces/{NAMESPACE}/leaderworkersets/{group.lws}/scale"
    scale = yaml.safe_load(group.kube.run("get", "--raw", path).stdout)
    assert scale["kind"] == "Scale" and scale["spec"]["replicas"] == GROUPS, scale
    # An HPA reads the pods it scales through the selector the subresource reports.
    selected = group.kube.items("pods", "-n", NAMESPACE, "-l", scale["status"]["selector"])
    assert sorted(p["metadata"]["name"] for p in selected) == [f"{group.lws}-{g}" for g in range(GROUPS)], \
        "the scale selector must pick the leaders, one per group"
    group.kube.run("scale", "leaderworkerset", "-n", NAMESPACE, group.lws, f"--replicas={GROUPS - 1}")
    pods = group.settled(GROUPS - 1)
    assert sorted(pods) == sorted(f"{group.lws}-{g}{role}" for g in range(GROUPS - 1) for role in ("", "-1"))
