"""CustomResourceDefinitions taken from their projects' Go modules (the Go module proxy is reachable where
the tests run; the files are the projects' own, never copied by hand)."""

from __future__ import annotations

import json
import os
import subprocess
import tempfile
from pathlib import Path
from typing import Any

import yaml

from tests.pins import pin


def module_file(module: str, version: str, path: str) -> Path:
    """A file of a Go module at a version, from the module cache (downloaded when missing)."""
    with tempfile.TemporaryDirectory() as empty:
        # Outside any module, so nothing here reads or edits a go.mod.
        done = subprocess.run(["go", "mod", "download", "-json", f"{module}@{version}"], cwd=empty,
                              capture_output=True, text=True, timeout=600, check=False,
                              env={**os.environ, "GOFLAGS": "-mod=mod", "GOTOOLCHAIN": "local"})
    if done.returncode != 0:
        raise RuntimeError(f"go mod download {module}@{version} failed: {done.stdout}{done.stderr}")
    found = Path(json.loads(done.stdout)["Dir"]) / path
    if not found.is_file():
        raise RuntimeError(f"{module}@{version} has no {path}")
    return found


def _crd(path: Path) -> dict[str, Any]:
    crd: dict[str, Any] = yaml.safe_load(path.read_text())
    return crd


def keda_scaledobject_crd() -> dict[str, Any]:
    return _crd(module_file("github.com/kedacore/keda/v2", pin("keda"), "config/crd/bases/keda.sh_scaledobjects.yaml"))


def interceptorroute_crd() -> dict[str, Any]:
    """KEDA's HTTP add-on's InterceptorRoute: what a model that sleeps renders (stackgen.wake)."""
    return _crd(module_file("github.com/kedacore/http-add-on", pin("http-add-on"),
                            "config/crd/bases/http.keda.sh_interceptorroutes.yaml"))


def prometheus_operator_crds() -> list[dict[str, Any]]:
    """The kinds the chart's monitoring renders: ServiceMonitor, PodMonitor, PrometheusRule."""
    return [_crd(module_file("github.com/prometheus-operator/prometheus-operator", pin("prometheus-operator"),
                             f"example/prometheus-operator-crd/monitoring.coreos.com_{kind}.yaml"))
            for kind in ("servicemonitors", "podmonitors", "prometheusrules")]


def leaderworkerset_crd() -> dict[str, Any]:
    """LWS's LeaderWorkerSet: what a model of several pods per replica renders (nodesPerReplica)."""
    return _crd(module_file("sigs.k8s.io/lws", pin("lws"),
                            "config/crd/bases/leaderworkerset.x-k8s.io_leaderworkersets.yaml"))
