"""Accepted means installable: the front-door property tests' base spec, which has a model of every engine
(vLLM on a GPU, Ollama, llama.cpp, a custom server, external routes), installs on the real API server and
every Deployment becomes Available; and generated specs that `validate` accepts, with monitoring, autoscaling,
limits, routers, ingress, placement, a mirror and a preloaded cache drawn in, are accepted object by object by the same API
server."""

from __future__ import annotations

import copy
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from stackgen import manifests
from stackgen.errors import StackgenError
from stackgen.load import load_text
from stackgen.plan import plan
from stackgen.render import render_files
from tests.support.edges import BASE, EDGES, leaves, mutate

from .kube import Cluster, render, say
from .releases import Release, wait_all_available

pytestmark = pytest.mark.cluster


@pytest.fixture(scope="module")
def release(cluster: Cluster, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Release]:
    spec = copy.deepcopy(BASE)
    spec["namespace"] = "accepted-every-engine"
    # The test cluster taints its GPU nodes, as GPU pools are; the spec tolerates it as a real one would.
    spec["profiles"]["l4"]["tolerations"] = [{"key": "nvidia.com/gpu", "operator": "Exists", "effect": "NoSchedule"}]
    work = tmp_path_factory.mktemp("accepted")
    path = work / "stack.yaml"
    path.write_text(yaml.safe_dump(spec, sort_keys=False))
    out = render(path, work / "out")
    say(f"installing the front door's base spec into {spec['namespace']}")
    with Release(cluster, "helm3", spec["name"], spec["namespace"], out).installed_for() as rel:
        yield rel


def test_a_spec_with_every_engine_installs_and_becomes_available(release: Release) -> None:
    deps = wait_all_available(release)
    names = {d["metadata"]["name"] for d in deps}
    served = {f"{release.name}-{m['name']}" for m in BASE["models"] if m["engine"] != "external"}
    assert served <= names and names == release.expected_deployments()
    assert Path(release.out / "values.yaml").is_file()


# What a generated spec may switch on beyond the base, each the way a user writes it. Every one adds objects
# or fields the API server checks: labels, annotations, selectors, CRD objects, probes, routers.
FEATURES: dict[str, Any] = {
    "monitoring": {"monitoring": {"enabled": True, "labels": {"release": "kube-prometheus-stack"}}},
    "autoscaling": {"models": {0: {"autoscaling": {"minReplicas": 1, "maxReplicas": 3, "targetQueue": 4}}}},
    "replicas": {"models": {0: {"replicas": 3, "routing": "sticky_least_loaded"}}},
    "limits": {"models": {1: {"limits": {"rpm": 600, "tpm": 100000}}}},
    "ingress": {"gateway": {"ingress": {"host": "agents.example.com", "className": "nginx", "tlsSecretName": "agents-tls",
                                        "annotations": {"nginx.ingress.kubernetes.io/proxy-body-size": "16m"}}}},
    "placement": {"profiles": {"cpu": {"nodeSelector": {"pool.example.com/kind": "cpu"},
                                       "tolerations": [{"key": "dedicated", "value": "llm", "effect": "NoSchedule"}]}}},
    "cache": {"models": {2: {"cache": {"size": "20Gi"}}}},
    # A claim the preload Job fills once, shared by replicas on any node.
    "preload": {"models": {0: {"cache": {"type": "persistentVolumeClaim", "size": "40Gi",
                                         "accessModes": ["ReadWriteMany"], "preload": True}}}},
    "env": {"models": {1: {"env": {"OLLAMA_KEEP_ALIVE": "1h", "TOKEN": {"secretName": "tokens", "key": "ollama"}}}}},
    # Behind a mirror, the hosted provider is reached through an endpoint inside the network.
    "mirror": {"mirror": {"registry": "registry.internal:5000", "insecure": True, "huggingFace": "http://hf.internal:8090"},
               "models": {4: {"baseUrl": "http://mistral-proxy.internal/v1"}}},
    "adapters": {"models": {0: {"adapters": [{"name": "sql-agent", "source": "my-org/sql-lora", "rank": 16},
                                             {"name": "support", "source": "/root/.cache/huggingface/support", "rank": 64}]}}},
}


def _merge(into: Any, edit: Any) -> None:
    for key, value in edit.items():
        if isinstance(value, dict) and isinstance(into[key] if isinstance(into, list) else into.get(key), dict | list):
            _merge(into[key], value)
        else:
            into[key] = copy.deepcopy(value)


def _featured(names: list[str]) -> dict[str, Any]:
    spec = copy.deepcopy(BASE)
    for name in names:
        _merge(spec, FEATURES[name])
    return spec


DRY_RUN = {"accepted": 0, "refused by validate": 0}


@pytest.fixture(scope="module")
def made_namespaces(cluster: Cluster) -> Iterator[set[str]]:
    """Namespaces the dry runs needed and this module made: deleted at its end, so that a later test that
    creates one of them (the README's `llm`) finds the cluster as it was."""
    made: set[str] = set()
    yield made
    for name in sorted(made):
        cluster.delete_namespace(name)


@settings(max_examples=100, deadline=None, derandomize=True, database=None,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture])
@given(data=st.data(), names=st.lists(st.sampled_from(sorted(FEATURES)), unique=True, max_size=len(FEATURES)))
def test_what_validate_accepts_the_api_server_accepts(cluster: Cluster, crds: None, made_namespaces: set[str],
                                                     tmp_path_factory: Any, data: st.DataObject,
                                                     names: list[str]) -> None:
    """Specs near the edges of every field (the front door's edits, here over a base with the features drawn),
    that `stackgen validate` accepts: every object `helm template` renders from them is accepted by the real API
    server (`kubectl apply --dry-run=server`), whose validation and admission see the CRDs of KEDA and the
    Prometheus Operator, in a namespace that enforces the restricted Pod Security level. A refusal here is a
    grammar stackgen does not check yet."""
    featured = _featured(names)
    paths = [p for p in leaves(featured) if p]
    edits = data.draw(st.lists(st.tuples(st.sampled_from(paths), st.sampled_from(EDGES),
                                         st.sampled_from(["set", "set", "drop"])), max_size=2))
    spec = mutate(edits, featured)
    try:
        stack = plan(load_text(yaml.safe_dump(spec, allow_unicode=True))).stack
        values = render_files(stack, with_manifests=False)["values.yaml"]
    except StackgenError:
        DRY_RUN["refused by validate"] += 1
        return
    DRY_RUN["accepted"] += 1
    work = tmp_path_factory.mktemp("dry-run")
    (work / "values.yaml").write_text(values)
    rendered = manifests.render_chart(work / "values.yaml", stack.name, stack.namespace)
    if cluster.kubectl("get", "namespace", stack.namespace, check=False).returncode != 0:
        cluster.create_namespace(stack.namespace)
        made_namespaces.add(stack.namespace)
    done = cluster.kubectl("apply", "--dry-run=server", "-n", stack.namespace, "-f", "-", stdin=rendered, check=False)
    assert done.returncode == 0, f"{names} {edits}:\n{yaml.safe_dump(spec)}\n{done.stderr}"
    # The namespace warns of any pod template the restricted level would refuse (it refuses only pods).
    assert "PodSecurity" not in done.stderr, f"{names} {edits}:\n{done.stderr}"


def test_the_dry_run_sample_held_enough_accepted_specs() -> None:
    """The property test above proves something only for the specs validate accepted: about a third of them."""
    assert DRY_RUN["accepted"] >= 30, DRY_RUN
    say(f"API server dry run: {DRY_RUN}")


def test_the_dry_run_refuses_what_the_label_grammar_forbids(cluster: Cluster, release: Release) -> None:
    """Negative control: the same dry run refuses a rendered object whose label breaks Kubernetes' grammar, the
    kind of value validate must catch first."""
    deployment = yaml.safe_load(next((release.out / "manifests").glob("deployment-*.yaml")).read_text())
    deployment["metadata"]["name"] = "broken"
    deployment["metadata"]["labels"]["app.kubernetes.io/name"] = "not a label"
    done = cluster.kubectl("apply", "--dry-run=server", "-n", release.namespace, "-f", "-",
                           stdin=yaml.safe_dump(deployment), check=False)
    assert done.returncode != 0 and "metadata.labels" in done.stderr, done.stderr
