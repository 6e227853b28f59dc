"""Each built-in example through a chart release's whole life on a real API server, with Helm 3
and Helm 4: install (server-side validation, admission, Pod Security baseline), every Deployment
Available, GPU placement, claims bound, upgrade with a changed spec, `helm test`, uninstall.

The tests of one release run in file order and share it; the last one uninstalls it."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator

import pytest
import yaml

from tests.support.kube import delete_kept_caches
from tests.support.wait import poll

from .fakes import GPU
from .kube import Cluster, referenced_secrets, render, say
from .releases import (
    EXAMPLES,
    Release,
    changed_spec,
    leftovers,
    pod_gpus,
    provisioned_volumes,
    wait_all_available,
)

pytestmark = pytest.mark.cluster
CASES = [(example, helm) for example in EXAMPLES for helm in ("helm3", "helm4")]


@pytest.fixture(scope="module", params=CASES, ids=[f"{e}-{h}" for e, h in CASES])
def release(request: pytest.FixtureRequest, cluster: Cluster, crds: None,
            tmp_path_factory: pytest.TempPathFactory) -> Iterator[Release]:
    example, helm = request.param
    out = render(example, tmp_path_factory.mktemp(f"{example}-{helm}") / "out", namespace=f"{example}-{helm}")
    name = yaml.safe_load((out / "values.yaml").read_text())["fullnameOverride"]
    say(f"installing {example} with {helm} into {example}-{helm}")
    with Release(cluster, helm, name, f"{example}-{helm}", out, example=example).installed_for() as rel:
        yield rel


def test_install_makes_every_deployment_available(release: Release) -> None:
    deps = wait_all_available(release)
    names = {d["metadata"]["name"] for d in deps}
    assert names == release.expected_deployments()
    for pod in release.pods():
        assert pod["status"]["phase"] == "Running", pod["metadata"]["name"]
        assert pod["spec"].get("nodeName"), pod["metadata"]["name"]


def test_gpu_models_land_on_gpu_nodes_and_nothing_else_does(release: Release,
                                                           cluster: Cluster) -> None:
    nodes = {n["metadata"]["name"]: n for n in cluster.items("nodes")}
    gpu_models = release.gpu_models()
    placed: Counter[str] = Counter()
    for pod in release.pods():
        node = nodes[pod["spec"]["nodeName"]]
        node_gpus = int(node["status"]["allocatable"].get(GPU, 0))
        component = release.component(pod)
        wanted = pod_gpus(pod)
        assert wanted == gpu_models.get(component, 0), pod["metadata"]["name"]
        if wanted:
            placed[component] += 1
            assert node_gpus >= wanted, f"{pod['metadata']['name']} on {node['metadata']['name']}"
            # The profile's node selector (accelerator type) is honoured, not just "some GPU".
            for key, value in (pod["spec"].get("nodeSelector") or {}).items():
                assert node["metadata"]["labels"].get(key) == value
        else:
            assert node_gpus == 0, f"{pod['metadata']['name']} (no GPU) on GPU node"
    replicas = {k: int(m.get("replicas", 1)) for k, m in release.values.get("models", {}).items()}
    assert dict(placed) == {k: replicas[k] for k in gpu_models}


def test_cache_claims_are_bound(release: Release, cluster: Cluster) -> None:
    models = release.values.get("models", {})
    expected = {f"{release.name}-{k}": m["cache"].get("storageClassName")
                for k, m in models.items() if m.get("cache", {}).get("type") == "persistentVolumeClaim"}
    claims = cluster.items("pvc", "-n", release.namespace)
    assert {c["metadata"]["name"] for c in claims} == set(expected)
    for claim in claims:
        assert claim["status"]["phase"] == "Bound"
        # No class in the spec means the cluster's default class, as on a real cluster.
        want = expected[claim["metadata"]["name"]] or "standard"
        assert claim["spec"]["storageClassName"] == want
    assert len(provisioned_volumes(cluster, release.namespace)) == len(expected)


def test_helm_test_pod_is_admitted_run_and_reaped(release: Release, cluster: Cluster) -> None:
    # kwok declares the pod exited 0 (tests/cluster/kwok-stages.yaml): this proves admission,
    # scheduling and Helm's hook handling, not the script (tests/chart and tests/stack do that).
    done = cluster.helm(release.helm, "test", release.name, "-n", release.namespace,
                        "--timeout", "120s")
    assert f"{release.name}-test" in done.stdout
    assert "Succeeded" in done.stdout
    # hook-delete-policy hook-succeeded: Helm deletes the pod once it has passed.
    poll("test pod deleted", lambda: (cluster.kubectl(
        "get", "pod", f"{release.name}-test", "-n", release.namespace,
        check=False).returncode != 0, "still there"), 60)


def test_upgrade_with_changed_spec_rolls_out(release: Release, cluster: Cluster,
                                             tmp_path_factory: pytest.TempPathFactory) -> None:
    before = {d["metadata"]["name"]: d for d in release.deployments()}
    spec, model, max_len = changed_spec(release.example, tmp_path_factory.mktemp("changed"))
    out = render(spec, tmp_path_factory.mktemp("changed-out") / "out", namespace=release.namespace)
    release.upgrade(out / "values.yaml", "--wait", "--timeout", "180s")

    deps = wait_all_available(release)
    after = {d["metadata"]["name"]: d for d in deps}
    gateway = f"{release.name}-gateway"
    assert after[gateway]["spec"]["replicas"] == before[gateway]["spec"]["replicas"] + 1
    target = after[f"{release.name}-{model}"]
    assert target["metadata"]["generation"] > before[f"{release.name}-{model}"]["metadata"]["generation"]
    pods = [p for p in release.pods() if release.component(p) == model
            and "deletionTimestamp" not in p["metadata"]]  # old pods may still be going
    assert len(pods) == target["spec"]["replicas"]
    for pod in pods:
        args = pod["spec"]["containers"][0]["args"]
        assert args[args.index("--max-model-len") + 1] == str(max_len)
    history = cluster.helm(release.helm, "history", release.name, "-n", release.namespace,
                           "-o", "yaml").stdout
    assert [h["status"] for h in yaml.safe_load(history)] == ["superseded", "deployed"]


def test_uninstall_keeps_the_caches_and_the_documented_delete_leaves_nothing(release: Release,
                                                                             cluster: Cluster) -> None:
    """`helm uninstall` leaves the model caches (helm.sh/resource-policy: keep) and nothing else of the chart's;
    the command docs/operations.md gives for the caches then leaves the namespace as it was."""
    keep = set(referenced_secrets(release.values))  # created by the test, not by the chart
    claims = sorted(f"PersistentVolumeClaim/{name.split('/', 1)[1]}" for name in cluster.kubectl(
        "get", "pvc", "-n", release.namespace, "-l", f"app.kubernetes.io/instance={release.name}", "-o", "name"
    ).stdout.split())
    release.uninstall()

    def only_caches() -> tuple[bool, str]:
        left = leftovers(cluster, release.namespace, keep)
        return left == claims, f"left: {left}, kept claims expected: {claims}"

    poll(f"{release.namespace} holding only the kept caches", only_caches, 120)
    cluster.kubectl(*delete_kept_caches(release.namespace, release.name), timeout=120)
    poll(f"{release.namespace} emptied", lambda: (not (left := leftovers(cluster, release.namespace, keep)),
                                                  f"left: {left}"), 60)
    poll("provisioned volumes deleted", lambda: (not (left := provisioned_volumes(cluster, release.namespace)),
                                                 f"left: {left}"), 60)
    assert cluster.helm(release.helm, "list", "-n", release.namespace, "-q").stdout.strip() == ""
