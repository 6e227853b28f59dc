"""`stackgen bundle`: what a stack behind `mirror:` needs in the cluster's mirrors, each with where it comes
from and where the cluster reads it.

Images are the exact references the chart renders (`helm template`, the `helm test` pod included), once as
the stack is and once without the mirror: the chart alone maps a source to its place in the registry. Models
are what each server downloads when it starts (its engine's `downloads`), from their plan with and without the
mirror.
"""

from __future__ import annotations

import subprocess
from collections.abc import Callable, Mapping
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


def _pod_images(values: Mapping[str, Any], release: str, namespace: str) -> dict[tuple[str, str, str], str]:
    """Every container's image as the chart renders it from these values (the `helm test` pod's too), by (object
    kind, object name, container name)."""
    rendered = manifests.render_values(dump_yaml(dict(values), ""), release, namespace, with_tests=True)
    found = {}
    for doc in yaml.safe_load_all(rendered):
        if not doc:
            continue
        pod: dict[str, Any] = doc["spec"] if doc["kind"] == "Pod" else doc.get("spec", {}).get("template", {}).get("spec", {})
        for c in pod.get("initContainers", []) + pod.get("containers", []):
            found[(doc["kind"], doc["metadata"]["name"], c["name"])] = c["image"]
    return found


def _images(resolved: Plan) -> dict[tuple[str, str, str], str]:
    return _pod_images(chart_values(Target(resolved, resolved.default_gateway_url())), resolved.stack.name,
                       resolved.stack.namespace)


def rendered_images(values: Mapping[str, Any], release: str, namespace: str) -> list[str]:
    """The image references the chart renders from these values, each once, sorted."""
    return sorted(set(_pod_images(values, release, namespace).values()))


def plan_images(resolved: Plan) -> list[str]:
    """The image references the chart renders for a plan, each once, sorted."""
    return sorted(set(_images(resolved).values()))


def crane_digest(crane: str, ref: str, insecure: bool) -> str | None:
    """The digest of ref's manifest as its registry serves it, or None if crane cannot read it."""
    done = subprocess.run([crane, "digest", *(["--insecure"] if insecure else []), ref], capture_output=True,
                          text=True, check=False)
    return done.stdout.strip() if done.returncode == 0 else None


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
        target = d.ref if d.source == "ollama" else stack.mirror.huggingFace or where
        out.add(Item(d.source, sources[key][0].ref, target))
    return sorted(out)


@dataclass(frozen=True)
class Copied:
    item: Item
    read_from: str  # where the copy read it: its source, or its place under --from
    digest: str  # of the manifest in the mirror, once there
    done: Literal["copied", "present", "served", "missing"]
    detail: str = ""


def staged(stack: Stack, registry: str, found: list[Item] | None = None) -> dict[Item, str]:
    """Where each registry item (of `found`, the stack's items if not given) sits in a staging registry that
    holds it under its source's path (a registry filled on a connected machine, or a pull-through cache): the
    chart's mapping with that registry as the mirror, so the two can never disagree."""
    assert stack.mirror is not None
    there = items(stack.model_copy(update={"mirror": stack.mirror.model_copy(update={"registry": registry})}))
    by_source = {(i.kind, i.source): i.target for i in there}
    return {i: by_source[(i.kind, i.source)] for i in (items(stack) if found is None else found)
            if i.kind != "huggingface"}


def copy(stack: Stack, crane: str, source_registry: str | None, insecure: bool,
         hub_get: Callable[[str], tuple[int, Any]]) -> list[Copied]:
    """Copy every image and Ollama model into the registry with crane, skipping those whose manifest is
    there already (same digest), and ask the Hub mirror for every repository (`hub_get` answers a URL's status
    and JSON). Idempotent: a second run copies nothing."""
    found = items(stack)
    read_from = staged(stack, source_registry, found) if source_registry else {i: i.source for i in found}
    flags = ["--insecure"] if insecure else []

    out = []
    for item in found:
        if item.kind == "huggingface":
            out.append(_served(item, hub_get))
            continue
        source = read_from[item]
        wanted = crane_digest(crane, source, insecure)
        if wanted is None:
            out.append(Copied(item, source, "", "missing", f"crane cannot read {source}"))
            continue
        if crane_digest(crane, item.target, insecure) == wanted:
            out.append(Copied(item, source, wanted, "present"))
            continue
        done = subprocess.run([crane, "copy", *flags, source, item.target], capture_output=True, text=True,
                              check=False)
        if done.returncode != 0:
            why = done.stderr.strip().splitlines() or [f"crane copy exited {done.returncode}"]
            out.append(Copied(item, source, "", "missing", why[-1]))
        else:
            out.append(Copied(item, source, wanted, "copied"))
    return out


def _served(item: Item, hub_get: Callable[[str], tuple[int, Any]]) -> Copied:
    """Whether the Hub mirror serves a repository (and the file named after it, llama.cpp's GGUF) at main: its
    revision's file list, as the Hub client asks for it first."""
    repo, *file = item.source.split()
    url = f"{item.target.rstrip('/')}/api/models/{repo}/revision/main"
    status, body = hub_get(url)
    if status != 200:
        return Copied(item, item.target, "", "missing", f"GET {url} answered {status}")
    files = {s.get("rfilename") for s in body.get("siblings", [])} if isinstance(body, dict) else set()
    if file and file[0] not in files:
        return Copied(item, item.target, "", "missing", f"{repo} has no {file[0]} at main")
    return Copied(item, item.target, str(body.get("sha", "")), "served")
