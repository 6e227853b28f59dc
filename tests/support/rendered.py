"""What a spec renders and what `stackgen validate` says of it, read without a cluster, for the unit tests of
stacks that fetch everything from mirrors inside the network (tests/test_mirror.py, tests/test_preload.py): the
mirror addresses their specs name (`REGISTRY` for images and Ollama models, `HUB` for Hugging Face downloads),
the Kubernetes objects of a spec's `manifests/`, every container of those objects' pods, and the exit code and
output of `stackgen validate` on a spec's text."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml
from click.testing import CliRunner

from stackgen.cli import cli
from stackgen.load import load_text
from stackgen.render import render_files

from .objects import pods

REGISTRY = "registry.internal:5000"
HUB = "http://hf.internal:8090"


Obj = dict[str, Any]


def objects(text: str) -> list[dict[str, Any]]:
    files = render_files(load_text(text, "stack.yaml"), with_manifests=True)
    return [yaml.safe_load(body) for rel, body in sorted(files.items())
            if rel.startswith("manifests/") and rel.endswith(".yaml") and "kustomization" not in rel]


def containers(objs: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [c for spec in pod_specs(objs).values() for c in spec.get("initContainers", []) + spec["containers"]]


def validate(tmp_path: Path, text: str) -> tuple[int, str]:
    path = tmp_path / "stack.yaml"
    path.write_text(text)
    result = CliRunner().invoke(cli, ["validate", str(path)])
    return result.exit_code, result.output


def pod_specs(objs: list[Obj]) -> dict[str, Obj]:
    """Every pod spec the chart renders (workloads' templates, a LeaderWorkerSet's leader and worker, bare Pods),
    by owner ("<Kind>/<name>", tests/support/objects.py)."""
    return {p.owner: p.spec for p in pods(objs, "")}


def longest_answer_s(config: Obj, model: str | None = None) -> int:
    """The longest a rendered gateway config lets the gateway take to answer a call: its timeout for `model` (else
    its default request_timeout), for each of its tries (num_retries + 1)."""
    settings = config["litellm_settings"]
    timeout = settings["request_timeout"] if model is None else \
        next(m["litellm_params"]["timeout"] for m in config["model_list"] if m["model_name"] == model)
    return int(timeout) * (int(settings["num_retries"]) + 1)

