"""The control plane itself: built from the versions pinned in scripts/controlplane, reporting
them, and reused from the per-machine cache instead of rebuilt."""

from __future__ import annotations

import json
import re
import subprocess
import time
from pathlib import Path

import pytest

from tests.pins import pin
from tests.support.paths import REPO, SCRIPTS

from .kube import Cluster

pytestmark = pytest.mark.cluster
MODULE_DIR = SCRIPTS / "controlplane"
BUILD_SCRIPT = MODULE_DIR / "build.sh"


def _pinned(go_mod: Path, module: str) -> str:
    match = re.search(rf"^(?:require)?\s+{re.escape(module)} (v\S+)", go_mod.read_text(), re.MULTILINE)
    assert match, f"{module} not required in {go_mod}"
    return match.group(1)


def _version_output(binary: Path, *args: str) -> str:
    return subprocess.run([str(binary), *args], capture_output=True, text=True, timeout=30,
                          check=True).stdout


def test_binaries_report_the_pinned_versions(cluster: Cluster) -> None:
    kube = _pinned(MODULE_DIR / "go.mod", "k8s.io/kubernetes")
    etcd = _pinned(MODULE_DIR / "go.mod", "go.etcd.io/etcd/server/v3")
    kwok = _pinned(MODULE_DIR / "kwok" / "go.mod", "sigs.k8s.io/kwok")
    bin_dir = cluster.cp.bin_dir
    for name in ("kube-apiserver", "kube-controller-manager", "kube-scheduler", "kubelet", "kube-proxy"):
        assert _version_output(bin_dir / name, "--version").strip() == f"Kubernetes {kube}"
    assert f"etcd Version: {etcd.lstrip('v')}" in _version_output(bin_dir / "etcd", "--version")
    assert f"kwok version {kwok} " in _version_output(bin_dir / "kwok", "--version")
    # The running apiserver says the same (the -X ldflags reached component-base/version).
    versions = json.loads(cluster.kubectl("version", "-o", "json").stdout)
    assert versions["serverVersion"]["gitVersion"] == kube
    # kubectl is the tools' (make setup), within the one minor of skew kubectl supports.
    client = versions["clientVersion"]
    assert client["gitVersion"] == pin("kubectl")
    assert abs(int(client["minor"]) - int(versions["serverVersion"]["minor"])) <= 1, versions


def test_second_build_reuses_the_cache(cluster: Cluster) -> None:
    start = time.monotonic()
    done = subprocess.run(["bash", str(BUILD_SCRIPT)], capture_output=True, text=True,
                          timeout=120, check=True)
    assert Path(done.stdout.strip().splitlines()[-1]) == cluster.cp.bin_dir
    assert "controlplane: cached in" in done.stderr, done.stderr
    assert time.monotonic() - start < 60
    # Outside the work tree: a fresh clone on this machine finds the same binaries.
    assert not cluster.cp.bin_dir.is_relative_to(REPO)
