"""Plain Kubernetes manifests of a stack: the chart rendered by the real `helm template`.

There is one mapping from values to objects, the chart; this module only runs it and files the output,
one object per file, with a kustomization.yaml that lists them.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
from pathlib import Path
from typing import Any

import yaml

from .errors import Problem, StackgenError

CHART_ENV = "STACKGEN_CHART"
HELM_ENV = "STACKGEN_HELM"


PACKAGED = Path(__file__).resolve().parent / "chart"  # where the wheel carries it (setup.py)
CHECKOUT = Path(__file__).resolve().parents[2]  # the repository, for a checkout or an editable install


def chart_dir() -> Path:
    """STACKGEN_CHART, else the chart the wheel carries, else the checkout's."""
    if os.environ.get(CHART_ENV):
        return Path(os.environ[CHART_ENV]).resolve()
    if (PACKAGED / "Chart.yaml").is_file():
        return PACKAGED
    return CHECKOUT / "charts" / "inference-stack"


def helm_binary() -> str:
    """STACKGEN_HELM, else helm on PATH, else, in a checkout, the helm `make setup` put in .tools/bin (so
    `stackgen` works in an activated venv, which puts only .venv/bin on PATH)."""
    beside = CHECKOUT / ".tools" / "bin" / "helm"
    found = os.environ.get(HELM_ENV) or shutil.which("helm") or (str(beside) if beside.is_file() else None)
    if not found:
        raise StackgenError([Problem(
            "helm", "the plain manifests are the chart rendered by helm, and helm is not on PATH",
            "install Helm 3 or 4 (https://helm.sh/docs/intro/install/) and put it on PATH, or set STACKGEN_HELM "
            "to its path, or pass --no-manifests; in a checkout, `make setup` puts one in .tools/bin",
        )])
    return found


def render_chart(values_file: Path, release: str, namespace: str, with_tests: bool = False) -> str:
    """`helm template` output for the values; test hooks are left out unless asked for (they belong to
    `helm test`)."""
    chart = chart_dir()
    if not (chart / "Chart.yaml").is_file():
        raise StackgenError([Problem("chart", f"no chart at {chart}", f"set {CHART_ENV} to the absolute path of a "
                                     "charts/inference-stack directory, or reinstall stackgen from its wheel, "
                                     "which carries the chart")])
    cmd = [helm_binary(), "template", release, str(chart), "--namespace", namespace, "--values", str(values_file),
           *([] if with_tests else ["--skip-tests"])]
    done = subprocess.run(cmd, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise RuntimeError(f"helm template failed ({' '.join(cmd)}):\n{done.stderr.strip()}")
    return done.stdout


def render_values(values_text: str, release: str, namespace: str, with_tests: bool = False) -> str:
    """`render_chart` for values given as text."""
    with tempfile.TemporaryDirectory(prefix="stackgen-values-") as tmp:
        values_file = Path(tmp) / "values.yaml"
        values_file.write_text(values_text, encoding="utf-8")
        return render_chart(values_file, release, namespace, with_tests)


def split(rendered: str) -> dict[str, dict[str, Any]]:
    """One file name per object: `<kind>-<name>.yaml`, lower case."""
    files: dict[str, dict[str, Any]] = {}
    for doc in yaml.load_all(rendered, Loader=getattr(yaml, "CSafeLoader", yaml.SafeLoader)):
        if not doc:
            continue
        name = f"{doc['kind'].lower()}-{doc['metadata']['name']}.yaml"
        if name in files:
            raise RuntimeError(f"two objects render to {name}")
        files[name] = doc
    return dict(sorted(files.items()))


def kustomization(files: list[str], namespace: str) -> dict[str, Any]:
    return {
        "apiVersion": "kustomize.config.k8s.io/v1beta1",
        "kind": "Kustomization",
        "namespace": namespace,
        "resources": sorted(files),
    }
