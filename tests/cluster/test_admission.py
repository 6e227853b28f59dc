"""The checks the example installs pass are live: a restricted namespace refuses a pod that breaks the
restricted level (a rendered model pod with one field broken included), and the API server refuses objects its
schema rejects. Without these, an install "succeeding" could mean admission was simply off."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.support.kube import pod_of

from .kube import Cluster, render

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


def test_restricted_namespace_refuses_a_pod_that_may_run_as_root(cluster: Cluster, namespace: str) -> None:
    done = cluster.kubectl("create", "-n", namespace, "-f", "-", stdin=_pod(), check=False)
    assert done.returncode != 0
    assert 'violates PodSecurity "restricted:latest"' in done.stderr and "runAsNonRoot" in done.stderr, done.stderr


def _rendered_model_pod(tmp_path: Path) -> dict[str, Any]:
    out = render("kind-cpu", tmp_path / "out")
    return pod_of(yaml.safe_load((out / "manifests" / "deployment-kind-cpu-ollama-small.yaml").read_text()), "rendered")


def test_a_rendered_model_pod_passes_and_one_broken_field_is_refused(cluster: Cluster, namespace: str,
                                                                     tmp_path: Path) -> None:
    """The Ollama pod, init container included, as the chart renders it: the restricted level lets it in. With
    privilege escalation allowed in its init container, the same pod is refused, and the message names it."""
    pod = _rendered_model_pod(tmp_path)
    done = cluster.kubectl("create", "--dry-run=server", "-n", namespace, "-f", "-", stdin=json.dumps(pod),
                           check=False)
    assert done.returncode == 0, done.stderr
    pod["spec"]["initContainers"][0]["securityContext"]["allowPrivilegeEscalation"] = True
    done = cluster.kubectl("create", "--dry-run=server", "-n", namespace, "-f", "-", stdin=json.dumps(pod),
                           check=False)
    assert done.returncode != 0
    assert 'violates PodSecurity "restricted:latest"' in done.stderr, done.stderr
    assert 'allowPrivilegeEscalation != false (container "pull-model"' in done.stderr, done.stderr


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
