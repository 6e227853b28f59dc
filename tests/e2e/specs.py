"""Stack specs for the e2e runs, derived from the built-in examples without yq.

The e2e tier changes a spec in two ways: without AVX-512 the vLLM CPU model is removed (vLLM's x86
CPU image is built for AVX-512), and the upgrade step adds a model. Both work on the spec's `models`
collection, whether the spec keeps it as a map keyed by name or as a list of entries with `name`.
"""

from __future__ import annotations

import copy
import platform
import subprocess
from pathlib import Path
from typing import Any

import yaml

Spec = dict[str, Any]


class SpecShapeError(ValueError):
    pass


def has_avx512(cpuinfo: str, machine: str) -> bool:
    """True when an x86-64 CPU lists `avx512f` (the AVX-512 foundation) among its flags.

    Same test as scripts/e2e-kind.sh (`grep -qw avx512f /proc/cpuinfo`): a whole flag, so that
    `avx512_vnni`-style flags alone do not count. Non-x86 machines have no x86 vLLM CPU image at all.
    """
    if machine.lower() not in {"x86_64", "amd64"}:
        return False
    for line in cpuinfo.splitlines():
        key, _, value = line.partition(":")
        if key.strip() == "flags" and "avx512f" in value.split():
            return True
    return False


def host_has_avx512(cpuinfo_path: Path = Path("/proc/cpuinfo")) -> bool:
    try:
        text = cpuinfo_path.read_text()
    except OSError:
        return False
    return has_avx512(text, platform.machine())


def models_of(spec: Spec) -> dict[str, dict[str, Any]]:
    """The spec's models by name, in spec order."""
    models = spec.get("models")
    if isinstance(models, dict):
        return {str(name): entry for name, entry in models.items()}
    if isinstance(models, list):
        out: dict[str, dict[str, Any]] = {}
        for entry in models:
            if not isinstance(entry, dict) or "name" not in entry:
                raise SpecShapeError(f"model entry without a name: {entry!r}")
            out[str(entry["name"])] = entry
        return out
    raise SpecShapeError("spec has no `models` map or list")


def _with_models(spec: Spec, keep: dict[str, dict[str, Any]]) -> Spec:
    out = copy.deepcopy(spec)
    if isinstance(spec["models"], dict):
        out["models"] = copy.deepcopy(keep)
    else:
        out["models"] = [copy.deepcopy(entry) for entry in keep.values()]
    return out


def drop_engine(spec: Spec, engine: str) -> tuple[Spec, list[str]]:
    """The spec without its models served by `engine`, and the names removed.

    Other models' `fallbacks` lose the removed names too (a fallback to a model that does not exist
    is an error in the spec). Refuses to remove every model.
    """
    models = models_of(spec)
    dropped = [name for name, entry in models.items() if entry.get("engine") == engine]
    keep = {name: copy.deepcopy(entry) for name, entry in models.items() if name not in dropped}
    if not keep:
        raise SpecShapeError(f"removing the {engine} models leaves no model")
    for entry in keep.values():
        if isinstance(entry.get("fallbacks"), list):
            entry["fallbacks"] = [f for f in entry["fallbacks"] if f not in dropped]
            if not entry["fallbacks"]:
                del entry["fallbacks"]
    return _with_models(spec, keep), dropped


def add_model_copy(spec: Spec, source: str, new_name: str) -> Spec:
    """The spec with one more model: a copy of `source` served under `new_name`."""
    models = models_of(spec)
    if source not in models:
        raise SpecShapeError(f"no model {source!r} in the spec (has {sorted(models)})")
    if new_name in models:
        raise SpecShapeError(f"model {new_name!r} already exists")
    entry = copy.deepcopy(models[source])
    if "name" in entry:
        entry["name"] = new_name
    return _with_models(spec, {**models, new_name: entry})


def first_model_with_engine(spec: Spec, engine: str) -> str:
    for name, entry in models_of(spec).items():
        if entry.get("engine") == engine:
            return name
    raise SpecShapeError(f"no {engine} model in the spec")


def example_spec(stackgen: str, name: str) -> Spec:
    """The built-in example as printed by `stackgen examples --show NAME`."""
    proc = subprocess.run(
        [stackgen, "examples", "--show", name], check=True, capture_output=True, text=True, timeout=60
    )
    loaded = yaml.safe_load(proc.stdout)
    if not isinstance(loaded, dict):
        raise SpecShapeError(f"`stackgen examples --show {name}` did not print a YAML mapping")
    return loaded


def write_spec(spec: Spec, path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(yaml.safe_dump(spec, sort_keys=False))
    return path


def render(stackgen: str, spec_file: Path, out: Path) -> Path:
    """`stackgen render SPEC -o OUT`; returns OUT after checking every promised file is there."""
    subprocess.run([stackgen, "render", str(spec_file), "-o", str(out)], check=True, timeout=120)
    for rel in ("values.yaml", "manifests", "litellm/config.yaml", "autogen/OAI_CONFIG_LIST",
                "autogen/model_clients.json"):
        if not (out / rel).exists():
            raise AssertionError(f"stackgen render did not write {rel} under {out}")
    return out


def load_yaml(path: Path) -> Any:
    return yaml.safe_load(path.read_text())


def manifest_objects(out: Path) -> list[dict[str, Any]]:
    """Every object in OUT/manifests (any file layout, multi-document files included)."""
    objects: list[dict[str, Any]] = []
    for path in sorted((out / "manifests").rglob("*")):
        if path.suffix in {".yaml", ".yml"} and path.is_file():
            objects.extend(doc for doc in yaml.safe_load_all(path.read_text()) if doc)
    return objects


def workload_names(objects: list[dict[str, Any]], kind: str = "Deployment") -> list[str]:
    return sorted(o["metadata"]["name"] for o in objects if o.get("kind") == kind)


def namespace_of(spec: Spec, objects: list[dict[str, Any]], default: str = "stackgen") -> str:
    """The namespace the stack is meant for: the spec's, else the manifests', else `default`."""
    declared = spec.get("namespace")
    if isinstance(declared, str):
        return declared
    found = {str(ns) for o in objects if (ns := (o.get("metadata") or {}).get("namespace"))}
    if len(found) > 1:
        raise SpecShapeError(f"manifests span several namespaces: {sorted(found)}")
    return found.pop() if found else default
