"""The checks the example installs pass are live: a baseline namespace refuses a pod that breaks
the baseline level, and the API server refuses objects its schema rejects. Without these, an
install "succeeding" could mean admission was simply off."""

from __future__ import annotations

import json
from collections.abc import Iterator

import pytest

from .kube import Cluster

pytestmark = pytest.mark.cluster
NAMESPACE = "admission-check"


@pytest.fixture(scope="module")
def namespace(cluster: Cluster) -> Iterator[str]:
    cluster.create_namespace(NAMESPACE)
    yield NAMESPACE
    cluster.delete_namespace(NAMESPACE)


def _pod(**spec: object) -> str:
    return json.dumps({
        "apiVersion": "v1", "kind": "Pod", "metadata": {"name": "probe"},
        "spec": {"containers": [{"name": "c", "image": "busybox"}], **spec}})


def test_baseline_namespace_refuses_a_host_network_pod(cluster: Cluster, namespace: str) -> None:
    done = cluster.kubectl("create", "-n", namespace, "-f", "-", stdin=_pod(hostNetwork=True),
                           check=False)
    assert done.returncode != 0
    assert "violates PodSecurity" in done.stderr and "baseline" in done.stderr, done.stderr


def test_server_side_validation_refuses_a_bad_object(cluster: Cluster, namespace: str) -> None:
    done = cluster.kubectl("create", "-n", namespace, "-f", "-", check=False,
                           stdin=_pod(restartPolicy="Sometimes"))
    assert done.returncode != 0
    assert "Unsupported value" in done.stderr, done.stderr


def test_missing_runtime_class_is_refused(cluster: Cluster, namespace: str) -> None:
    # gpu-fleet's a100x2 profile needs the `nvidia` RuntimeClass the fixture installs; without
    # one the RuntimeClass admission plugin refuses the pod, as on a cluster lacking the GPU operator.
    done = cluster.kubectl("create", "-n", namespace, "-f", "-", check=False,
                           stdin=_pod(runtimeClassName="no-such-runtime"))
    assert done.returncode != 0
    assert "no-such-runtime" in done.stderr, done.stderr
