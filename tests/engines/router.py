"""The chart's router pod as a local process, and the prefix-cache counters of the servers behind it.

The router is vllm-router from its PyPI wheel (the release versions.yaml pins, installed by `make test` into
the project's venv), started with the command line the chart renders for a model's router. What differs on
this machine is substituted: the port and host, and the pods the router would discover through the API
server are given as worker URLs (the node tier runs the discovery itself), so its namespace is not needed.
"""

from __future__ import annotations

import re
import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import yaml

from stackgen.engines.base import EngineMetrics

from .pods import Server, base_env, container, free_port, launch, replace_flag

# The flags of Kubernetes service discovery and what follows each (the selector takes several values).
DISCOVERY_FLAGS = ("--service-discovery", "--selector", "--service-discovery-port", "--service-discovery-namespace")


def router_container(files: Mapping[str, str], stack: str, model: str) -> Any:
    doc = yaml.safe_load(files[f"manifests/deployment-{stack}-{model}-router.yaml"])
    spec = doc["spec"]["template"]["spec"]
    # The pod's namespace (downward API) serves only the discovery flags, which give way to worker URLs here.
    for c in spec["containers"]:
        c["env"] = [e for e in c.get("env") or [] if e["name"] != "POD_NAMESPACE"]
    return container(spec, "router")


def without_discovery(args: Sequence[str]) -> list[str]:
    """The rendered args less the discovery flags and their values; refuses args that have none."""
    if "--service-discovery" not in args:
        raise LookupError(f"the router's args have no --service-discovery: {args}")
    out: list[str] = []
    skipping = False
    for arg in args:
        if arg.startswith("--"):
            skipping = arg in DISCOVERY_FLAGS
        if not skipping:
            out.append(arg)
    return out


def start_router(files: Mapping[str, str], stack: str, model: str, workers: Sequence[str], workdir: Path,
                 policy: str | None = None, name: str | None = None) -> Server:
    """The model's router in front of `workers` (base URLs without /v1); `policy` replaces the rendered one
    (a negative control)."""
    c = router_container(files, stack, model)
    port = free_port()
    args = without_discovery(c.args)
    args = replace_flag(replace_flag(args, "--port", str(port)), "--host", "127.0.0.1")
    args = replace_flag(replace_flag(args, "--prometheus-port", str(free_port())), "--prometheus-host", "127.0.0.1")
    if policy:
        args = replace_flag(args, "--policy", policy)
    if c.command != ["vllm-router"]:
        raise AssertionError(f"expected the image's vllm-router, got {c.command}")
    argv = [str(Path(sys.executable).with_name("vllm-router")), *args, "--worker-urls", *workers]
    return launch(name or f"router-{model}", argv, base_env(), c, port, workdir, budget_cap=120)


@dataclass(frozen=True)
class CacheCounters:
    hits: float
    queries: float

    def __sub__(self, other: CacheCounters) -> CacheCounters:
        return CacheCounters(self.hits - other.hits, self.queries - other.queries)

    def __add__(self, other: CacheCounters) -> CacheCounters:
        return CacheCounters(self.hits + other.hits, self.queries + other.queries)

    @property
    def rate(self) -> float:
        return self.hits / self.queries if self.queries else 0.0


def _counter(text: str, name: str) -> float:
    values = [float(v) for v in re.findall(rf"^{re.escape(name)}(?:{{[^}}]*}})? (\S+)$", text, re.M)]
    if not values:
        raise LookupError(f"{name} is not in the server's /metrics")
    return sum(values)


def cache_counters(servers: Sequence[Server], metrics: EngineMetrics) -> CacheCounters:
    """The servers' prefix-cache counters (tokens), summed: what the PrometheusRule's hit rate reads."""
    total = CacheCounters(0.0, 0.0)
    for server in servers:
        text = httpx.get(f"{server.url}/metrics", timeout=10).text
        total += CacheCounters(_counter(text, metrics.prefix_cache_hits), _counter(text, metrics.prefix_cache_queries))
    return total
