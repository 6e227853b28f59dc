"""`stackgen bundle`: what a stack behind `mirror:` needs in the cluster's mirrors, each with where it comes
from and where the cluster reads it.

Images are the exact references the chart renders (`helm template`, the `helm test` pod included), once as
the stack is and once without the mirror: the chart alone maps a source to its place in the registry. Models
are what each server downloads when it starts (its engine's `downloads`), from their plan with and without the
mirror.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

import yaml

from . import manifests
from .engines.base import Download
from .errors import Problem, StackgenError
from .output import Target, dump_yaml
from .plan import Plan, plan
from .spec import Stack
from .values import chart_values


@dataclass(frozen=True, order=True)
class Item:
    kind: Literal["image", "ollama", "huggingface"]
    source: str  # where it comes from, as the stack reads it without the mirror
    target: str  # where the cluster reads it


def _images(resolved: Plan) -> dict[tuple[str, str, str], str]:
    """Every container's image, by (object kind, object name, container name)."""
    values = dump_yaml(chart_values(Target(resolved, resolved.default_gateway_url())), "")
    rendered = manifests.render_values(values, resolved.stack.name, resolved.stack.namespace, with_tests=True)
    found = {}
    for doc in yaml.safe_load_all(rendered):
        if not doc:
            continue
        pod: dict[str, Any] = doc["spec"] if doc["kind"] == "Pod" else doc.get("spec", {}).get("template", {}).get("spec", {})
        for c in pod.get("initContainers", []) + pod.get("containers", []):
            found[(doc["kind"], doc["metadata"]["name"], c["name"])] = c["image"]
    return found


def _downloads(resolved: Plan) -> dict[tuple[str, str], tuple[Download, str]]:
    """What each server downloads and where from, by (model, spec field)."""
    return {(m.name, d.at): (d, where) for m in resolved.served for d, where in m.fetches()}


def items(stack: Stack) -> list[Item]:
    if stack.mirror is None:
        raise StackgenError([Problem("mirror", "the stack names no mirror to fill",
                                     "add mirror: {registry: ...}, as docs/spec.md says")])
    mirrored, direct = plan(stack), plan(stack.model_copy(update={"mirror": None}))
    source_images = _images(direct)
    out = {Item("image", source_images[key], image) for key, image in _images(mirrored).items()}
    sources = _downloads(direct)
    for key, (d, where) in _downloads(mirrored).items():
        # An Ollama model gets a place of its own in the registry; a Hub repository is read from the Hub mirror.
        out.add(Item(d.source, sources[key][0].ref, d.ref if d.source == "ollama" else where))
    return sorted(out)
