"""Running the real helm binaries against charts/inference-stack and reading what they render."""

from __future__ import annotations

import functools
import os
import subprocess
from pathlib import Path
from typing import Any

import yaml

REPO = Path(__file__).resolve().parents[2]
CHART = REPO / "charts" / "inference-stack"
CI_DIR = CHART / "ci"
RELEASE = "demo"
NAMESPACE = "llm"
HELMS = ("helm3", "helm4")

Obj = dict[str, Any]


class HelmMissing(RuntimeError):
    """A helm binary the suite needs is not installed."""


@functools.cache
def helm_path(name: str) -> str:
    """The binary for `helm3`/`helm4`: the repo's .tools/bin first, then $STACKGEN_HELM3/4."""
    candidates = [REPO / ".tools" / "bin" / name]
    from_env = os.environ.get(f"STACKGEN_{name.upper()}")
    if from_env:
        candidates.append(Path(from_env))
    for path in candidates:
        if path.is_file() and os.access(path, os.X_OK):
            version = subprocess.run(
                [str(path), "version", "--short"], capture_output=True, text=True, check=True
            ).stdout.strip()
            # A helm4 slot holding a v3 binary would silently test one version twice.
            if not version.startswith(f"v{name[-1]}."):
                raise HelmMissing(f"{path} is {version}, expected {name}")
            return str(path)
    raise HelmMissing(
        f"{name} not found in {candidates[0]} nor ${'STACKGEN_' + name.upper()}; "
        "run `make setup-test` (scripts/install-tools.sh) or set the variable"
    )


def scenarios() -> list[str]:
    """The hand-written scenario values files, by file name."""
    return sorted(p.name for p in CI_DIR.glob("*.yaml"))


def scenario_values(name: str) -> Obj:
    return yaml.safe_load((CI_DIR / name).read_text())


def run_helm(helm: str, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([helm_path(helm), *args], capture_output=True, text=True, timeout=120)


def _value_args(values: tuple[str, ...], sets: tuple[str, ...]) -> list[str]:
    args: list[str] = []
    for name in values:
        args += ["-f", str(CI_DIR / name) if "/" not in name else name]
    for item in sets:
        args += ["--set", item]
    return args


@functools.cache
def template_text(helm: str, values: tuple[str, ...] = (), sets: tuple[str, ...] = ()) -> str:
    """`helm template` output; fails the calling test with helm's stderr when helm fails."""
    proc = run_helm(
        helm, "template", RELEASE, str(CHART), "-n", NAMESPACE, *_value_args(values, sets)
    )
    if proc.returncode != 0:
        raise AssertionError(f"{helm} template failed:\n{proc.stderr}")
    return proc.stdout


def render(helm: str, values: tuple[str, ...] = (), sets: tuple[str, ...] = ()) -> list[Obj]:
    """The objects `helm template` renders (hooks such as the test pod included)."""
    return [doc for doc in yaml.safe_load_all(template_text(helm, values, sets)) if doc]


def template_error(helm: str, values: tuple[str, ...] = (), sets: tuple[str, ...] = ()) -> str:
    """stderr of a `helm template` that must fail."""
    proc = run_helm(
        helm, "template", RELEASE, str(CHART), "-n", NAMESPACE, *_value_args(values, sets)
    )
    assert proc.returncode != 0, f"{helm} accepted values it should reject:\n{proc.stdout[:2000]}"
    return proc.stderr


def by_kind(objs: list[Obj], kind: str) -> dict[str, Obj]:
    return {o["metadata"]["name"]: o for o in objs if o["kind"] == kind}


def one(objs: list[Obj], kind: str, name: str) -> Obj:
    found = by_kind(objs, kind)
    assert name in found, f"no {kind} {name}; rendered {kind}s: {sorted(found)}"
    return found[name]


def fullname(values: Obj) -> str:
    return values.get("fullnameOverride") or RELEASE


def image_ref(values: Obj, image: Obj) -> str:
    """The reference an image dict renders as: from `imageRegistry` when set, under the source's path (the
    source's host dropped, Docker Hub's official images under library/)."""
    repository, registry = image["repository"], values.get("imageRegistry")
    if registry:
        first, _, rest = repository.partition("/")
        if rest and ("." in first or ":" in first or first == "localhost"):
            repository = rest
        elif not rest:
            repository = f"library/{repository}"
        repository = f"{registry}/{repository}"
    return f"{repository}:{image['tag']}"


def pod_specs(objs: list[Obj]) -> dict[str, Obj]:
    """Every pod spec the chart renders: Deployments' and Jobs' templates and bare Pods, by object name."""
    out: dict[str, Obj] = {}
    for o in objs:
        if o["kind"] in ("Deployment", "Job"):
            out[o["metadata"]["name"]] = o["spec"]["template"]["spec"]
        elif o["kind"] == "Pod":
            out[o["metadata"]["name"]] = o["spec"]
    return out


def env_of(container: Obj) -> dict[str, Obj]:
    return {e["name"]: e for e in container.get("env", [])}
