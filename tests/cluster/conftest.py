"""The `cluster` fixture: one real control plane (etcd, kube-apiserver, controller-manager,
scheduler) with kwok nodes, for the whole session. Binaries come from scripts/controlplane/build.sh,
which builds them once per machine; no binary means a loud failure, never a skip."""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

import pytest

from tests.support.kube import condition_true
from tests.support.tools import ToolMissing
from tests.support.wait import poll

from .controlplane import ControlPlane, ControlPlaneError, build_binaries
from .crds import interceptorroute_crd, keda_scaledobject_crd, leaderworkerset_crd, pin, prometheus_operator_crds
from .fakes import POOLS, FakeProvisioner, cluster_objects
from .kube import Cluster, helm_binaries, say

NODE_READY_TIMEOUT_S = 90
_report: dict[str, Any] = {}


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers", "cluster: runs against the real control plane of tests/cluster (kwok nodes)")


def pytest_terminal_summary(terminalreporter: Any) -> None:
    if _report:
        terminalreporter.write_sep("-", "tests/cluster control plane")
        for key, value in _report.items():
            terminalreporter.write_line(f"{key}: {value}")


def _nodes_ready(c: Cluster, expected: int) -> tuple[bool, str]:
    ready = sum(condition_true(node, "Ready") for node in c.items("nodes"))
    return ready == expected, f"{ready} Ready"


@pytest.fixture(scope="session")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    try:
        helms = helm_binaries()
    except ToolMissing as err:
        pytest.fail(str(err), pytrace=False)
    t0 = time.monotonic()
    try:
        bin_dir = build_binaries()
    except ControlPlaneError as err:
        pytest.fail(f"cannot build the control-plane binaries: {err}", pytrace=False)
    _report["binaries"] = f"{bin_dir} (ready after {time.monotonic() - t0:.1f}s)"

    work = tmp_path_factory.mktemp("controlplane")
    cp = ControlPlane(bin_dir, work)
    provisioner = FakeProvisioner(cp)
    c = Cluster(cp, provisioner, helms, work)
    try:
        cp.start()
        for obj in cluster_objects():
            c.apply(obj)
        expected = sum(p.count for p in POOLS)
        poll(f"{expected} kwok nodes Ready", lambda: _nodes_ready(c, expected), NODE_READY_TIMEOUT_S)
        provisioner.start()
    except Exception as err:  # noqa: BLE001 - any start-up failure: stop, then fail loudly
        trouble = cp.stop()
        logs = "\n".join(f"--- {comp.name}\n{comp.tail(15)}" for comp in cp.components)
        pytest.fail(f"control plane did not start: {err}\n{trouble}\n{logs}", pytrace=False)
    except BaseException:  # Ctrl-C or a pytest timeout during start-up: still leave no process
        cp.stop()
        raise
    _report["startup"] = cp.timings
    say(f"control plane up at {cp.api_url}: {cp.timings}")
    try:
        yield c
    finally:
        provisioner.stop()
        trouble = cp.stop()
        _report["teardown"] = trouble or "every component exited on SIGTERM"
        if provisioner.errors:
            _report["provisioner errors"] = provisioner.errors[:5]
        assert not trouble, f"control plane teardown: {trouble}"


@pytest.fixture(scope="session")
def crds(cluster: Cluster) -> None:
    """KEDA's ScaledObject, its HTTP add-on's InterceptorRoute, the Prometheus Operator's CRDs and LWS's
    LeaderWorkerSet, from their Go modules, established."""
    for crd in [keda_scaledobject_crd(), interceptorroute_crd(), *prometheus_operator_crds(), leaderworkerset_crd()]:
        cluster.apply(crd)
        name = crd["metadata"]["name"]
        # Right after the create its conditions are null: "not yet", never an error.
        poll(f"CRD {name} established",
             lambda: (condition_true(cluster.get("crd", name), "Established"), "not established"), 60)  # noqa: B023
    say(f"CRDs of KEDA {pin('keda')}, its HTTP add-on {pin('http-add-on')}, the Prometheus Operator "
        f"{pin('prometheus-operator')} and LWS {pin('lws')} established")
