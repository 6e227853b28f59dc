"""Every field of every engine's values reaches its server's pod (#35).

The cases are generated from the engine declarations (`ServedEngine.values`): for each field, the values that
stackgen renders for a stack with a model of every engine get that field set to a sample, and again to an
alternative (unset, or a second sample where the field is required). The rendered pod of that model must differ,
and the sample must be found in what differs: a flag, an env var, a port, a probe, a mount or the init script. A
field that reaches nothing fails here, and is to be wired or removed. A new field needs a sample only when its type
gives none (a string with a pattern): the first test says so.
"""

from __future__ import annotations

import types
import typing
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from pydantic.fields import FieldInfo

from stackgen.engines import SERVED
from stackgen.load import load_text
from stackgen.render import render_files
from tests.support.edges import BASE

from .chartlib import CHART, NAMESPACE, RELEASE, Obj, run_helm

HELM = "helm4"  # the templates are the same text under both helms; the chart tests run both elsewhere
# Strings whose form a field's type does not give: (sample, alternative).
STRING_SAMPLES: dict[tuple[str, str], tuple[Any, Any]] = {
    ("vllm", "toolCallParser"): ("pythonic", None),
    ("vllm", "reasoningParser"): ("qwen3", None),
    ("vllm", "loraModules"): (["sql-lora=/adapters/sql"], None),
    ("ollama", "keepAlive"): ("42m", None),
    ("llamacpp", "file"): ("sample-q8_0.gguf", "other-q4_0.gguf"),
    ("custom", "healthPath"): ("/sample-ready", "/other-ready"),
    ("custom", "command"): (["/bin/sample-server", "--sample"], None),
}

# Fields that only mean something beside another: the LoRA limits apply to the adapters `loraModules` serves.
BESIDE: dict[tuple[str, str], Obj] = {
    ("vllm", "maxLoras"): {"loraModules": ["sql-lora=/adapters/sql"]},
    ("vllm", "maxLoraRank"): {"loraModules": ["sql-lora=/adapters/sql"]},
}


def _types(annotation: Any) -> list[Any]:
    if typing.get_origin(annotation) in (typing.Union, types.UnionType):
        return [t for t in typing.get_args(annotation) if t is not type(None)]
    return [annotation]


def _bound(info: FieldInfo, name: str) -> Any:
    return next((getattr(m, name) for m in info.metadata if getattr(m, name, None) is not None), None)


def _samples(engine: str, field: str, info: FieldInfo) -> list[tuple[Any, Any]]:
    """(sample, alternative) pairs for one field: every choice of a Literal, one value of any other type."""
    if (engine, field) in STRING_SAMPLES:
        return [STRING_SAMPLES[engine, field]]
    kind = _types(info.annotation)[0]
    alternative_of = (lambda v: None) if not info.is_required() else (lambda v: v - 1)
    if typing.get_origin(kind) is typing.Literal:
        return [(choice, None) for choice in typing.get_args(kind)]
    if kind is bool:
        return [(True, False)]
    if kind is int:
        low, high = _bound(info, "ge") or 1, _bound(info, "le") or 10**6
        sample = min(max(low, 4099), high)  # not a number the chart writes for anything else
        return [(sample, alternative_of(sample))]
    if kind is float:
        return [(0.37, None)]
    raise AssertionError(f"{engine}.{field}: no sample for a {kind}; add one to STRING_SAMPLES")


def _cases() -> Iterator[Any]:
    for engine in SERVED.values():
        for field, info in engine.values.model_fields.items():
            for sample, alternative in _samples(engine.name, field, info):
                yield pytest.param(engine.name, field, sample, alternative, id=f"{engine.name}.{field}={sample}")


def _base_values() -> tuple[Obj, dict[str, str]]:
    """The values stackgen renders for the edge specs' base stack, and its model key of each engine."""
    files = render_files(load_text(yaml.safe_dump(BASE), "stack.yaml"), with_manifests=False)
    values: Obj = yaml.safe_load(files["values.yaml"])
    keys = {model["engine"]: key for key, model in values["models"].items()}
    return values, keys


VALUES, KEYS = _base_values()


def _pod(tmp_path: Path, engine: str, field: str, value: Any) -> Obj:
    values = yaml.safe_load(yaml.safe_dump(VALUES))  # a deep copy
    section = values["models"][KEYS[engine]].setdefault(engine, {})
    section.pop(field, None)
    section.update(BESIDE.get((engine, field), {}))
    if value is not None:
        section[field] = value
    path = tmp_path / f"{field}-{'unset' if value is None else 'sample'}.yaml"
    path.write_text(yaml.safe_dump(values))
    proc = run_helm(HELM, "template", RELEASE, str(CHART), "-n", NAMESPACE, "-f", str(path))
    assert proc.returncode == 0, proc.stderr
    name = f"{values.get('fullnameOverride') or RELEASE}-{KEYS[engine]}"
    deployment = next(o for o in yaml.safe_load_all(proc.stdout)
                      if o and o["kind"] == "Deployment" and o["metadata"]["name"] == name)
    pod: Obj = deployment["spec"]["template"]["spec"]
    return pod


def _surface(pod: Obj) -> list[str]:
    """What a container is started with, one string a piece: command and args, env, ports, probes, mounts."""
    out: list[str] = []
    for c in pod.get("initContainers", []) + pod["containers"]:
        out += [str(a) for a in c.get("command", []) + c.get("args", [])]
        out += [f"{e['name']}={e.get('value', e.get('valueFrom'))}" for e in c.get("env", [])]
        out += [str(p["containerPort"]) for p in c.get("ports", [])]
        for probe in ("startupProbe", "readinessProbe", "livenessProbe"):
            action = c.get(probe, {}).get("httpGet", {})
            out += [str(action.get("path")), str(action.get("port"))]
        out += [m["mountPath"] for m in c.get("volumeMounts", [])]
    return out


def _found(value: Any, pieces: list[str]) -> bool:
    """The value is a piece, a piece's `NAME=value`, or a word of a piece (a script's line)."""
    wanted = [str(v) for v in value] if isinstance(value, list) else [str(value).lower() if isinstance(value, bool)
                                                                       else str(value)]
    return all(any(w == p or p.endswith(f"={w}") or w in p.split() for p in pieces) for w in wanted)


def test_every_field_of_every_engine_has_a_sample() -> None:
    assert CASES, "no engine fields found"


CASES = list(_cases())


@pytest.mark.parametrize(("engine", "field", "sample", "alternative"), CASES)
def test_each_engine_value_reaches_the_pod(tmp_path: Path, engine: str, field: str, sample: Any,
                                           alternative: Any) -> None:
    with_sample, without = _surface(_pod(tmp_path, engine, field, sample)), _surface(_pod(tmp_path, engine, field,
                                                                                          alternative))
    differs = [p for p in with_sample if p not in without] + [p for p in without if p not in with_sample]
    assert differs, f"models.<name>.{engine}.{field}: {sample!r} renders the same pod as {alternative!r}"
    if isinstance(sample, bool):
        words = {w for p in with_sample for w in p.split()} - {w for p in without for w in p.split()}
        assert any(w.startswith("--") for w in words), f"{engine}.{field}: True adds no flag: {differs}"
    else:
        assert _found(sample, [p for p in with_sample if p not in without]), (
            f"models.<name>.{engine}.{field}={sample!r} is not in what changed: {differs}")
