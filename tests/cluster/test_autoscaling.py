"""Autoscaling on queue depth, accepted by a real API server that knows KEDA's ScaledObject from KEDA's own
CRD (its Go module): the chart's ScaledObject passes the CRD's schema, names the Deployment it scales, and
the Deployment leaves replicas to the autoscaler. A ScaledObject the schema forbids is refused, so the
acceptance means something."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest
import yaml

from .crds import keda_scaledobject_crd, pin
from .kube import Cluster, render, say, wait_for
from .releases import Release, wait_all_available

pytestmark = pytest.mark.cluster

SPEC = {
    "name": "scaled",
    "namespace": "scaled",
    "gateway": {"replicas": 1},
    "profiles": {"cpu": {"cpu": "2", "memory": "8Gi"}},
    "models": [{"name": "qwen", "engine": "vllm", "model": "Qwen/Qwen2.5-0.5B-Instruct", "profile": "cpu",
                "maxModelLen": 4096, "autoscaling": {"minReplicas": 1, "maxReplicas": 3, "targetQueue": 4}}],
}


@pytest.fixture(scope="module")
def keda_crd(cluster: Cluster) -> dict[str, Any]:
    crd = keda_scaledobject_crd()
    cluster.apply(crd)
    name = crd["metadata"]["name"]
    wait_for(f"CRD {name} established", lambda: any(
        c["type"] == "Established" and c["status"] == "True"
        for c in cluster.get("crd", name).get("status", {}).get("conditions", [])), 60)
    say(f"KEDA {pin('keda')} CRD {name} established")
    return crd


@pytest.fixture(scope="module")
def release(cluster: Cluster, keda_crd: dict[str, Any],
            tmp_path_factory: pytest.TempPathFactory) -> Iterator[Release]:
    work = tmp_path_factory.mktemp("autoscaling")
    path = work / "stack.yaml"
    path.write_text(yaml.safe_dump(SPEC, sort_keys=False))
    rel = Release(cluster, "helm4", "scaled", "scaled", render(path, work / "out"))
    rel.prepare_namespace()
    try:
        rel.install()
        yield rel
    finally:
        rel.teardown()


def test_the_scaledobject_is_accepted_and_targets_the_model(release: Release) -> None:
    wait_all_available(release)
    obj = release.cluster.get("scaledobject", "scaled-qwen", "-n", release.namespace)
    spec = obj["spec"]
    assert spec["scaleTargetRef"]["name"] == "scaled-qwen"
    assert (spec["minReplicaCount"], spec["maxReplicaCount"]) == (1, 3)
    trigger = spec["triggers"][0]
    assert trigger["type"] == "prometheus" and trigger["metricType"] == "AverageValue"
    assert trigger["metadata"]["query"] == 'sum(vllm:num_requests_waiting{namespace="scaled",model_name="qwen"})'
    assert trigger["metadata"]["threshold"] == "4"
    deployment = release.cluster.get("deployment", "scaled-qwen", "-n", release.namespace)
    assert deployment["spec"]["replicas"] == 1  # the API server's default, until the autoscaler sets it
    # The chart writes no replicas, so a `helm upgrade` never resets what the autoscaler chose.
    manifest = yaml.safe_load((release.out / "manifests" / "deployment-scaled-qwen.yaml").read_text())
    assert "replicas" not in manifest["spec"]


def test_a_scaledobject_the_crd_forbids_is_refused(release: Release) -> None:
    broken = yaml.safe_load((release.out / "manifests" / "scaledobject-scaled-qwen.yaml").read_text())
    broken["metadata"]["name"] = "broken"
    broken["spec"]["minReplicaCount"] = "one"  # the CRD types it as an integer
    done = release.cluster.kubectl("apply", "--dry-run=server", "-n", release.namespace, "-f", "-",
                                   stdin=json.dumps(broken), check=False)
    assert done.returncode != 0 and "minReplicaCount" in done.stderr, done.stderr
