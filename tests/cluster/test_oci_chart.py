"""The chart as platform teams install it (#36): from an OCI registry, with its signature checked first.

`scripts/chart/publish.sh` packages the chart, signs it with Helm's provenance (an OpenPGP signature over the
package's SHA-256, in a .prov file pushed beside it), checks the signature and pushes both to a registry: here a
real distribution registry on loopback (the one the engines tier builds). A real API server then takes
`helm install oci://... --version X --verify --keyring pubring.gpg`. A chart whose package no longer matches its
signature, and one pushed without any, are refused before anything is created. Helm's provenance, not cosign:
it needs no other tool than helm and GnuPG, helm itself checks it at every install and pull, and a cosign built
from its Go module would be one more long build for what helm already does.
"""

from __future__ import annotations

import shutil
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import yaml

from stackgen.version import VERSION
from tests.engines.engines import ollama_bin_dir
from tests.engines.registry import Registry, start_registry
from tests.support import tools
from tests.support.paths import CHART
from tests.support.signing import Keyrings, make_keyrings, publish_chart

from .kube import Cluster, render
from .releases import Release, wait_all_available

pytestmark = pytest.mark.cluster
HELM = "helm3"


@dataclass(frozen=True)
class Published:
    registry: Registry
    keys: Keyrings
    work: Path

    def ref(self, path: str = "charts") -> str:
        return f"oci://{self.registry.host}/{path}/inference-stack"


@pytest.fixture(scope="module")
def published(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Published]:
    work = tmp_path_factory.mktemp("oci")
    registry = start_registry(ollama_bin_dir() / "registry", work / "registry", redirects=False)
    try:
        keys = make_keyrings(work)
        publish_chart(registry.host, keys, tools.helm(HELM), "--plain-http")
        yield Published(registry, keys, work)
    finally:
        registry.stop()


def test_the_chart_installs_from_the_registry_with_its_signature_verified(
        published: Published, cluster: Cluster, tmp_path: Path) -> None:
    out = render("kind-cpu", tmp_path / "out", namespace="from-oci")
    name = yaml.safe_load((out / "values.yaml").read_text())["fullnameOverride"]
    release = Release(cluster, HELM, name, "from-oci", out, chart=published.ref())
    with release.installed_for("--version", VERSION, "--verify", "--keyring", str(published.keys.public),
                               "--plain-http"):
        wait_all_available(release)
        listed = yaml.safe_load(cluster.helm(HELM, "list", "-n", "from-oci", "-o", "yaml").stdout)
        assert [(r["name"], r["chart"]) for r in listed] == [(name, f"inference-stack-{VERSION}")]


def _push(published: Published, package: Path, path: str) -> None:
    done = subprocess.run([tools.helm(HELM), "push", str(package), f"oci://{published.registry.host}/{path}",
                           "--plain-http"], capture_output=True, text=True, timeout=120, check=False)
    assert done.returncode == 0, done.stderr


def _assert_refused(cluster: Cluster, published: Published, path: str, reason: str) -> None:
    """`helm install --verify` of the chart pushed under `path`, with the flags a user gives, fails for `reason`
    and leaves its namespace empty."""
    cluster.create_namespace(path)
    try:
        refused = cluster.helm(HELM, "install", "refused", published.ref(path), "--version", VERSION, "-n", path,
                               "--verify", "--keyring", str(published.keys.public), "--plain-http",
                               "--set", "gateway.masterKey.secretName=k", check=False)
        assert refused.returncode != 0 and reason in refused.stderr, refused.stderr
        assert cluster.items("all", "-n", path) == []
    finally:
        cluster.delete_namespace(path)


def test_a_chart_changed_after_signing_is_refused_and_creates_nothing(published: Published, cluster: Cluster,
                                                                      tmp_path: Path) -> None:
    signed = tmp_path / "signed"
    signed.mkdir()  # helm pull writes into an existing directory only
    done = subprocess.run([tools.helm(HELM), "pull", published.ref(), "--version", VERSION, "--plain-http",
                           "--prov", "-d", str(signed)], capture_output=True, text=True, timeout=120, check=False)
    assert done.returncode == 0, done.stderr
    # The same chart and version, one template changed, packaged again beside the original signature.
    changed = tmp_path / "inference-stack"
    shutil.copytree(CHART, changed)
    with (changed / "templates" / "gateway-service.yaml").open("a") as template:
        template.write("# changed after signing\n")
    tampered = tmp_path / "tampered"
    subprocess.run([tools.helm(HELM), "package", str(changed), "-d", str(tampered)], check=True, capture_output=True,
                   timeout=120)
    package = tampered / f"inference-stack-{VERSION}.tgz"
    shutil.copy(signed / f"inference-stack-{VERSION}.tgz.prov", f"{package}.prov")
    _push(published, package, "tampered")
    _assert_refused(cluster, published, "tampered", "sha256 sum does not match")


def test_an_unsigned_chart_is_refused_and_creates_nothing(published: Published, cluster: Cluster,
                                                         tmp_path: Path) -> None:
    subprocess.run([tools.helm(HELM), "package", str(CHART), "-d", str(tmp_path)], check=True, capture_output=True,
                   timeout=120)
    _push(published, tmp_path / f"inference-stack-{VERSION}.tgz", "unsigned")
    _assert_refused(cluster, published, "unsigned", "failed to fetch provenance")
