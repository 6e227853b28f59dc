"""`kubectl apply --server-side` of the plain manifests (OUT/manifests) creates the same objects a
Helm install of the chart does, and they come up the same way."""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import pytest
import yaml

from .kube import Cluster, render
from .releases import EXAMPLES, Release, wait_all_available

pytestmark = pytest.mark.cluster
# Fields the server (or Helm's bookkeeping) fills in differently for two identical requests.
SERVER_SET_META = ("uid", "resourceVersion", "creationTimestamp", "generation", "managedFields",
                   "namespace")
HELM_ANNOTATIONS = ("meta.helm.sh/release-name", "meta.helm.sh/release-namespace")


def _ids(docs: list[dict[str, Any]]) -> set[tuple[str, str]]:
    return {(d["kind"], d["metadata"]["name"]) for d in docs if d}


def _objects(cluster: Cluster, namespace: str, ids: set[tuple[str, str]]) -> dict[tuple[str, str], Any]:
    refs = [f"{kind.lower()}/{name}" for kind, name in sorted(ids)]
    listing = json.loads(cluster.kubectl("get", *refs, "-n", namespace, "-o", "json").stdout)
    return {(o["kind"], o["metadata"]["name"]): o for o in listing["items"]}


def _normalized(obj: dict[str, Any], rendered_for: str) -> dict[str, Any]:
    """`obj` less what differs between two correct installs; `rendered_for` is the namespace the plain
    manifests were rendered for (the spec's), which they name wherever an object must name one."""
    o = copy.deepcopy(obj)
    o.pop("status", None)
    meta = o["metadata"]
    for key in SERVER_SET_META:
        meta.pop(key, None)
    annotations = meta.get("annotations", {})
    for key in (*HELM_ANNOTATIONS, "deployment.kubernetes.io/revision"):
        annotations.pop(key, None)
    if not annotations:
        meta.pop("annotations", None)
    spec = o.get("spec", {})
    if o["kind"] == "Service":  # allocated from the service CIDR
        spec.pop("clusterIP", None)
        spec.pop("clusterIPs", None)
    if o["kind"] == "PersistentVolumeClaim":  # a fresh volume per claim
        spec.pop("volumeName", None)
    if o["kind"] == "RoleBinding":  # Helm binds the Release's namespace; the manifests, the spec's
        for subject in o["subjects"]:
            assert subject.pop("namespace") in (obj["metadata"]["namespace"], rendered_for), obj
    return o


def _apply(cluster: Cluster, namespace: str, files: list[Path]) -> None:
    args = [x for f in files for x in ("-f", str(f))]
    cluster.kubectl("apply", "--server-side", "--field-manager=stackgen", "-n", namespace, *args)


@pytest.mark.parametrize("example", EXAMPLES)
def test_server_side_apply_of_plain_manifests_matches_the_helm_release(
        example: str, cluster: Cluster, crds: None, tmp_path: Path) -> None:
    # Rendered for the namespace Helm installs it into (the chart refuses another); the plain manifests name it,
    # and go into a second namespace too, as `kubectl apply -n` puts them.
    rendered_for = f"{example}-via-helm"
    out = render(example, tmp_path / "out", namespace=rendered_for)
    name = yaml.safe_load((out / "values.yaml").read_text())["fullnameOverride"]
    via_helm = Release(cluster, "helm3", name, f"{example}-via-helm", out)
    via_ssa = Release(cluster, "helm3", name, f"{example}-via-ssa", out)  # never installed
    files = sorted(p for p in (out / "manifests").glob("*.yaml") if p.name != "kustomization.yaml")
    plain_ids = _ids([d for f in files for d in yaml.safe_load_all(f.read_text())])
    try:
        # One copy at a time: gpu-fleet fills the cluster's GPU pools on its own.
        via_helm.prepare_namespace()
        via_helm.install()
        helm_ids = _ids(list(yaml.safe_load_all(cluster.helm(
            "helm3", "get", "manifest", name, "-n", via_helm.namespace).stdout)))
        assert plain_ids == helm_ids
        wait_all_available(via_helm)
        from_helm = _objects(cluster, via_helm.namespace, helm_ids)
        via_helm.teardown()

        via_ssa.prepare_namespace()
        _apply(cluster, via_ssa.namespace, files)
        wait_all_available(via_ssa)
        from_ssa = _objects(cluster, via_ssa.namespace, plain_ids)
        assert set(from_ssa) == plain_ids
        for key, obj in from_ssa.items():
            assert _normalized(obj, rendered_for) == _normalized(from_helm[key], rendered_for), key

        # Applying the same manifests again changes no spec (generation) and no content.
        _apply(cluster, via_ssa.namespace, files)
        again = _objects(cluster, via_ssa.namespace, plain_ids)
        for key, obj in again.items():
            assert obj["metadata"].get("generation") == from_ssa[key]["metadata"].get("generation")
            assert _normalized(obj, rendered_for) == _normalized(from_ssa[key], rendered_for), key
    finally:
        via_helm.teardown()
        via_ssa.teardown()
