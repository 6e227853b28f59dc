"""Accepted means installable: the front-door property tests' base spec, which has a model of every engine
(vLLM on a GPU, Ollama, llama.cpp, a custom server, external routes), installs on the real API server and
every Deployment becomes Available."""

from __future__ import annotations

import copy
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml

from tests.test_front_door import BASE

from .kube import Cluster, render, say
from .releases import Release, wait_all_available

pytestmark = pytest.mark.cluster


@pytest.fixture(scope="module")
def release(cluster: Cluster, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Release]:
    spec = copy.deepcopy(BASE)
    # The test cluster taints its GPU nodes, as GPU pools are; the spec tolerates it as a real one would.
    spec["profiles"]["l4"]["tolerations"] = [{"key": "nvidia.com/gpu", "operator": "Exists", "effect": "NoSchedule"}]
    work = tmp_path_factory.mktemp("accepted")
    path = work / "stack.yaml"
    path.write_text(yaml.safe_dump(spec, sort_keys=False))
    out = render(path, work / "out")
    rel = Release(cluster, "helm3", spec["name"], "accepted-every-engine", out)
    rel.prepare_namespace()
    say(f"installing the front door's base spec into {rel.namespace}")
    try:
        rel.install()
        yield rel
    finally:
        rel.teardown()


def test_a_spec_with_every_engine_installs_and_becomes_available(release: Release) -> None:
    deps = wait_all_available(release)
    names = {d["metadata"]["name"] for d in deps}
    served = {f"{release.name}-{m['name']}" for m in BASE["models"] if m["engine"] != "external"}
    assert served <= names and names == release.expected_deployments()
    assert Path(release.out / "values.yaml").is_file()
