"""Images pinned by digest (#36): `stackgen lock` reads each image's digest from a real registry, `render --lock`
pins every image the chart renders by it, and a real API server takes the install.

The registry is a real distribution registry on loopback (the one the engines tier builds), standing for a
cluster's mirror: the spec's `mirror.registry` points at it, so the chart renders every image under it. Each of
those references is filled with a small image of its own, made and pushed by crane (`crane append`), so every
digest differs. What the lock must then hold is what crane reads back from the registry.

Not proven here: a kubelet pulling by digest (kwok runs no container); the node tier's pods run by tag.
"""

from __future__ import annotations

import os
import subprocess
import tarfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import yaml

from tests.engines.engines import ollama_bin_dir
from tests.engines.registry import Registry, start_registry
from tests.support.paths import TOOLS
from tests.support.prebuild import built
from tests.support.tools import stackgen

from .kube import EXAMPLES_DIR, Cluster
from .releases import Release, wait_all_available

pytestmark = pytest.mark.cluster
HELM = "helm3"
EXAMPLE = "kind-cpu"
NAMESPACE = "locked"


@dataclass(frozen=True)
class Mirror:
    registry: Registry
    crane: str
    spec: Path  # the example behind the mirror
    digests: dict[str, str]  # each reference the chart renders for it -> the digest crane pushed it with


def _run(*argv: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    env = os.environ | {"PATH": f"{TOOLS}{os.pathsep}{os.environ.get('PATH', '')}"}
    done = subprocess.run(list(argv), capture_output=True, text=True, timeout=180, env=env, check=False)
    if check:
        assert done.returncode == 0, f"{' '.join(argv)}:\n{done.stdout}\n{done.stderr}"
    return done


def _behind(example: str, registry: Registry, work: Path) -> Path:
    spec = yaml.safe_load((EXAMPLES_DIR / f"{example}.yaml").read_text())
    # The Hub mirror is named only because a mirrored spec must say where its servers download from.
    spec.update(namespace=NAMESPACE, mirror={"registry": registry.host, "insecure": True,
                                             "huggingFace": f"http://hub-mirror.{NAMESPACE}.svc:8090"})
    path = work / f"{example}-mirrored.yaml"
    path.write_text(yaml.safe_dump(spec, sort_keys=False))
    return path


@pytest.fixture(scope="module")
def mirror(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Mirror]:
    work = tmp_path_factory.mktemp("lock")
    crane = str(built("crane/build.sh") / "crane")
    registry = start_registry(ollama_bin_dir() / "registry", work / "registry", redirects=False)
    try:
        spec = _behind(EXAMPLE, registry, work)
        refs = [i["target"] for i in yaml.safe_load(_run(stackgen(), "bundle", str(spec), "--format", "json").stdout)
                if i["kind"] == "image"]
        digests = {}
        for n, ref in enumerate(refs):
            layer = work / f"layer-{n}.tar"
            (work / f"ref-{n}").write_text(ref)
            with tarfile.open(layer, "w") as tar:
                tar.add(work / f"ref-{n}", arcname="ref")
            _run(crane, "append", "--insecure", "-f", str(layer), "-t", ref)
            digests[ref] = _run(crane, "digest", "--insecure", ref).stdout.strip()
        yield Mirror(registry, crane, spec, digests)
    finally:
        registry.stop()


def test_lock_records_each_rendered_image_as_the_registry_serves_it(mirror: Mirror, tmp_path: Path) -> None:
    lock = tmp_path / "stack.lock.yaml"
    _run(stackgen(), "lock", str(mirror.spec), "-o", str(lock), "--crane", mirror.crane, "--insecure")
    assert yaml.safe_load(lock.read_text())["images"] == mirror.digests
    assert len(set(mirror.digests.values())) == len(mirror.digests) > 1


def test_render_with_the_lock_pins_every_image_and_the_api_server_takes_it(
        mirror: Mirror, cluster: Cluster, tmp_path: Path) -> None:
    lock = tmp_path / "stack.lock.yaml"
    _run(stackgen(), "lock", str(mirror.spec), "-o", str(lock), "--crane", mirror.crane, "--insecure")
    out = tmp_path / "out"
    rendered = _run(stackgen(), "render", str(mirror.spec), "-o", str(out), "--lock", str(lock))
    assert "warning: image" not in rendered.stderr, rendered.stderr
    values = yaml.safe_load((out / "values.yaml").read_text())
    assert values["imageDigests"] == mirror.digests
    images = set()
    for path in sorted((out / "manifests").glob("*.yaml")):
        for doc in yaml.safe_load_all(path.read_text()):
            pod = (doc or {}).get("spec", {}).get("template", {}).get("spec", {})
            images |= {c["image"] for c in pod.get("initContainers", []) + pod.get("containers", [])}
    # The helm test pod is not among the plain manifests; every other image is, each by its digest.
    assert images and images <= {f"{ref}@{digest}" for ref, digest in mirror.digests.items()}, images
    release = Release(cluster, HELM, values["fullnameOverride"], NAMESPACE, out)
    with release.installed_for():
        running = {c["image"] for d in wait_all_available(release) for c in d["spec"]["template"]["spec"]["containers"]}
        assert running and all("@sha256:" in image for image in running), running


def test_a_lock_missing_an_image_the_stack_renders_is_refused_naming_it(mirror: Mirror, tmp_path: Path) -> None:
    lock = tmp_path / "stack.lock.yaml"
    _run(stackgen(), "lock", str(mirror.spec), "-o", str(lock), "--crane", mirror.crane, "--insecure")
    dropped = sorted(mirror.digests)[0]
    data = yaml.safe_load(lock.read_text())
    del data["images"][dropped]
    lock.write_text(yaml.safe_dump(data))
    done = _run(stackgen(), "render", str(mirror.spec), "-o", str(tmp_path / "out"), "--lock", str(lock), check=False)
    assert done.returncode == 2, done.stderr
    assert f"{lock}: images[{dropped}]: the stack renders this image" in done.stderr, done.stderr
    assert not (tmp_path / "out").exists()


def test_an_image_the_registry_lacks_is_named_and_no_lock_is_written(mirror: Mirror, tmp_path: Path) -> None:
    """gpu-fleet behind the same mirror renders images nobody pushed there (its GPU vLLM, the router)."""
    spec = _behind("gpu-fleet", mirror.registry, tmp_path)
    lock = tmp_path / "fleet.lock.yaml"
    done = _run(stackgen(), "lock", str(spec), "-o", str(lock), "--crane", mirror.crane, "--insecure", check=False)
    assert done.returncode == 2, done.stderr
    router = f"{mirror.registry.host}/vllm/vllm-router:latest"
    assert f"{router}: crane cannot read its digest" in done.stderr, done.stderr
    assert not lock.exists()
