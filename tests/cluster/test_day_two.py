"""Day-two objects accepted by a real API server that knows their kinds from their projects' own CRDs (KEDA's
and the Prometheus Operator's, read from their Go modules): a stack with Redis, autoscaling and monitoring
installs, each object says what it should, and objects the CRDs' schemas forbid are refused, so the
acceptance means something."""

from __future__ import annotations

import copy
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from stackgen.load import load_text
from stackgen.plan import plan
from stackgen.verify import autoscaler
from tests.support.paths import CHART
from tests.support.tools import tool
from tests.support.wait import poll

from .kube import Cluster, render
from .releases import Release, wait_all_available

pytestmark = pytest.mark.cluster

SPEC = {
    "name": "ops",
    "namespace": "ops",
    "gateway": {"replicas": 2},  # Redis on by default
    "monitoring": {"enabled": True, "labels": {"release": "kube-prometheus-stack"}},
    "profiles": {"cpu": {"cpu": "2", "memory": "8Gi"}},
    "models": [
        {"name": "qwen", "engine": "vllm", "model": "Qwen/Qwen2.5-0.5B-Instruct", "profile": "cpu",
         "maxModelLen": 4096, "limits": {"rpm": 600},
         "autoscaling": {"minReplicas": 1, "maxReplicas": 3, "targetQueue": 4}},
        {"name": "small", "engine": "ollama", "model": "qwen2.5:0.5b", "profile": "cpu"},
    ],
}


@pytest.fixture(scope="module")
def release(cluster: Cluster, crds: None, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Release]:
    work = tmp_path_factory.mktemp("day-two")
    path = work / "stack.yaml"
    path.write_text(yaml.safe_dump(SPEC, sort_keys=False))
    with Release(cluster, "helm4", "ops", "ops", render(path, work / "out")).installed_for() as rel:
        yield rel


def _get(release: Release, kind: str, name: str) -> dict[str, Any]:
    return release.cluster.get(kind, name, "-n", release.namespace)


def test_every_deployment_redis_included_becomes_available(release: Release) -> None:
    names = {d["metadata"]["name"] for d in wait_all_available(release)}
    assert names == release.expected_deployments() and "ops-redis" in names


def test_the_scaledobject_is_accepted_and_targets_the_model(release: Release) -> None:
    spec = _get(release, "scaledobject", "ops-qwen")["spec"]
    assert spec["scaleTargetRef"]["name"] == "ops-qwen"
    assert (spec["minReplicaCount"], spec["maxReplicaCount"]) == (1, 3)
    trigger = spec["triggers"][0]
    assert trigger["type"] == "prometheus" and trigger["metricType"] == "AverageValue"
    assert trigger["metadata"]["query"] == 'sum(vllm:num_requests_waiting{namespace="ops",model_name="qwen"})'
    assert trigger["metadata"]["threshold"] == "4"
    assert _get(release, "deployment", "ops-qwen")["spec"]["replicas"] == 1  # the default, until KEDA's HPA sets it
    # The chart writes no replicas, so a `helm upgrade` never resets what the autoscaler chose.
    manifest = yaml.safe_load((release.out / "manifests" / "deployment-ops-qwen.yaml").read_text())
    assert "replicas" not in manifest["spec"]
    behavior = spec["advanced"]["horizontalPodAutoscalerConfig"]["behavior"]
    assert behavior["scaleDown"]["stabilizationWindowSeconds"] == 300


def test_verify_says_when_no_autoscaler_reads_the_queue(release: Release) -> None:
    # No KEDA operator runs on this tier: the ScaledObject is accepted, but no HPA exists, and
    # `stackgen verify --kube-context` must say so (tests/node watches the working case).
    resolved = plan(load_text(yaml.safe_dump(SPEC), "stack.yaml"))
    qwen = next(m for m in resolved.served if m.name == "qwen")
    kubectl = [tool("kubectl"), "--kubeconfig", str(release.cluster.kubeconfig)]
    with pytest.raises(LookupError, match="ScaledObject ops-qwen names no HorizontalPodAutoscaler: is KEDA running"):
        autoscaler(kubectl, resolved, qwen)


def test_the_monitors_select_the_gateway_and_the_servers_that_export_metrics(release: Release) -> None:
    service_monitor = _get(release, "servicemonitor", "ops-gateway")
    assert service_monitor["metadata"]["labels"]["release"] == "kube-prometheus-stack"
    endpoint = service_monitor["spec"]["endpoints"][0]
    assert endpoint["authorization"]["credentials"]["name"] == release.values["gateway"]["masterKey"]["secretName"]
    selector = service_monitor["spec"]["selector"]["matchLabels"]
    gateway_pods = release.cluster.items("pods", "-n", release.namespace, "-l",
                                         ",".join(f"{k}={v}" for k, v in selector.items()))
    assert len(gateway_pods) == 2

    pod_monitor = _get(release, "podmonitor", "ops-monitoring")["spec"]
    components = pod_monitor["selector"]["matchExpressions"][0]["values"]
    assert components == ["qwen"]  # Ollama exports no metrics: the gateway's metrics cover it
    rules = _get(release, "prometheusrule", "ops-monitoring")["spec"]["groups"][0]["rules"]
    assert {r["alert"] for r in rules} == {"StackgenModelUnanswered", "StackgenGatewayErrors",
                                           "StackgenQueueGrowing", "StackgenKvCacheFull",
                                           "StackgenPrefixCacheHitRateLow"}
    dashboard = _get(release, "configmap", "ops-dashboard")
    assert dashboard["metadata"]["labels"]["grafana_dashboard"] == "1"
    assert json.loads(dashboard["data"]["stackgen.json"])["panels"]


@pytest.mark.parametrize(("manifest", "break_it", "field"), [
    ("scaledobject-ops-qwen.yaml", lambda o: o["spec"].update(minReplicaCount="one"), "minReplicaCount"),
    ("prometheusrule-ops-monitoring.yaml", lambda o: o["spec"]["groups"][0]["rules"][0].pop("expr"), "expr"),
    ("servicemonitor-ops-gateway.yaml", lambda o: o["spec"]["endpoints"][0].update(interval="often"), "interval"),
])
def test_an_object_the_crd_forbids_is_refused(release: Release, manifest: str, break_it: Any, field: str) -> None:
    broken = yaml.safe_load((release.out / "manifests" / manifest).read_text())
    broken["metadata"]["name"] = "broken"
    break_it(broken)
    done = release.cluster.kubectl("apply", "--dry-run=server", "-n", release.namespace, "-f", "-",
                                   stdin=json.dumps(broken), check=False)
    assert done.returncode != 0 and field in done.stderr, done.stderr


def test_an_install_into_another_namespace_is_refused_and_creates_nothing(release: Release) -> None:
    """The release's values name namespace ops in their queries (above): `helm install -n elsewhere` with them
    fails before it creates anything, and says how to install them."""
    cluster = release.cluster
    cluster.create_namespace("elsewhere")
    try:
        done = cluster.helm(release.helm, "install", "ops", str(CHART), "-n", "elsewhere",
                            "-f", str(release.out / "values.yaml"), check=False)
        assert done.returncode != 0
        assert 'rendered for namespace "ops"' in done.stderr and "install them with -n ops" in done.stderr, done.stderr
        assert cluster.items("all", "-n", "elsewhere") == []
        assert cluster.helm(release.helm, "list", "-n", "elsewhere", "-q").stdout.strip() == ""
    finally:
        cluster.delete_namespace("elsewhere")


# Day two as docs/operations.md tells it (#36): each change is an edit of the spec, a render and a `helm upgrade`;
# a pod that the change does not concern keeps running (the same UID), and `helm rollback` brings the previous
# revision back. These run last: they change the release the tests above read.
def _settled(release: Release) -> dict[str, set[str]]:
    """Once every Deployment is Available and no pod of an old ReplicaSet is left: component -> its pods' UIDs."""
    wait_all_available(release)

    def one_generation() -> tuple[dict[str, set[str]] | None, str]:
        pods = release.pods()
        going = [p["metadata"]["name"] for p in pods if "deletionTimestamp" in p["metadata"]]
        uids: dict[str, set[str]] = {}
        for pod in pods:
            uids.setdefault(release.component(pod), set()).add(pod["metadata"]["uid"])
        return (None if going else uids), f"still going: {going}"

    return poll("the old pods gone", one_generation, 120)


def _upgrade_to(release: Release, spec: dict[str, Any], work: Path) -> None:
    path = work / "stack.yaml"
    path.write_text(yaml.safe_dump(spec, sort_keys=False))
    release.upgrade(render(path, work / "out") / "values.yaml", "--wait", "--timeout", "180s")


def _gateway_models(release: Release) -> list[str]:
    config = yaml.safe_load(_get(release, "configmap", "ops-gateway")["data"]["config.yaml"])
    return sorted(m["model_name"] for m in config["model_list"])


def test_adding_a_model_starts_its_pods_and_the_gateways_and_no_other(release: Release, tmp_path: Path) -> None:
    before = _settled(release)
    grown = copy.deepcopy(SPEC)
    grown["models"].append({"name": "extra", "engine": "ollama", "model": "qwen2.5:0.5b", "profile": "cpu"})
    _upgrade_to(release, grown, tmp_path)
    after = _settled(release)
    assert {c: after[c] for c in ("qwen", "small", "redis")} == {c: before[c] for c in ("qwen", "small", "redis")}
    assert after["gateway"].isdisjoint(before["gateway"])  # its config lists the new model: it rolled
    assert "extra" in after and "extra" not in before
    assert _gateway_models(release) == ["extra", "qwen", "small"]


def test_changing_one_models_flags_rolls_that_model_only(release: Release, tmp_path: Path) -> None:
    before = _settled(release)
    changed = copy.deepcopy(SPEC)
    changed["models"].append({"name": "extra", "engine": "ollama", "model": "qwen2.5:0.5b", "profile": "cpu"})
    changed["models"][1]["keepAlive"] = "45m"  # small's OLLAMA_KEEP_ALIVE
    _upgrade_to(release, changed, tmp_path)
    after = _settled(release)
    assert after["small"].isdisjoint(before["small"])
    assert {c: uids for c, uids in after.items() if c != "small"} == {c: uids for c, uids in before.items()
                                                                    if c != "small"}


def test_rollback_brings_the_first_revision_back(release: Release) -> None:
    before = _settled(release)
    release.cluster.helm(release.helm, "rollback", release.name, "1", "-n", release.namespace, "--wait",
                         "--timeout", "180s")
    after = _settled(release)
    assert {d["metadata"]["name"] for d in release.deployments()} == release.expected_deployments()
    assert "extra" not in after and _gateway_models(release) == ["qwen", "small"]
    assert after["qwen"] == before["qwen"] and after["redis"] == before["redis"]  # unchanged since revision 1
    history = yaml.safe_load(release.cluster.helm(release.helm, "history", release.name, "-n", release.namespace,
                                                  "-o", "yaml").stdout)
    assert [h["revision"] for h in history] == [1, 2, 3, 4] and "Rollback to 1" in history[-1]["description"]
