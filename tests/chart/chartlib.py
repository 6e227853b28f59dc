"""Running the real helm binaries against charts/inference-stack and reading what they render."""

from __future__ import annotations

import functools
import json
import subprocess
from collections.abc import Iterator
from typing import Any

import yaml

from tests.support import tools
from tests.support.paths import CHART
from tests.support.rendered import pod_specs  # noqa: F401 - the chart tests read pods the same way

CI_DIR = CHART / "ci"
RELEASE = "demo"
NAMESPACE = "llm"
SCHEMA = json.loads((CHART / "values.schema.json").read_text())

Obj = dict[str, Any]


def scenarios() -> list[str]:
    """The hand-written scenario values files, by file name."""
    return sorted(p.name for p in CI_DIR.glob("*.yaml"))


def scenario_values(name: str) -> Obj:
    values: Obj = yaml.safe_load((CI_DIR / name).read_text())
    return values


def run_helm(helm: str, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([tools.helm(helm), *args], capture_output=True, text=True, timeout=120)


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


def env_of(container: Obj) -> dict[str, Obj]:
    return {e["name"]: e for e in container.get("env", [])}


def _resolve(node: dict[str, Any]) -> dict[str, Any]:
    while "$ref" in node:
        name = node["$ref"].removeprefix("#/definitions/")
        node = SCHEMA["definitions"][name]
    return node


def walk(node: dict[str, Any], path: str = "") -> Iterator[tuple[str, dict[str, Any], dict[str, Any]]]:
    """(dotted path, schema as written, schema resolved) of every key the values can hold."""
    resolved = _resolve(node)
    for key, child in resolved.get("properties", {}).items():
        child_path = f"{path}.{key}" if path else key
        yield child_path, child, _resolve(child)
        yield from walk(child, child_path)
    extra = resolved.get("additionalProperties")
    if isinstance(extra, dict) and ("$ref" in extra or "properties" in extra):
        yield from walk(extra, f"{path}.*")
