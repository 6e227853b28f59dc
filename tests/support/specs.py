"""Valid stack specs built from parts, for property tests over what a spec renders (tests/test_invariants.py).

`stacks()` is a hypothesis strategy of spec dicts, written as a user writes them (docs/spec.md), that `validate`
accepts: each feature is drawn with the rules that go with it, so the draw needs no filter. A draw has each
feature on with a chance of 3 in 4 and 0 to 2 models of each kind; one in 16 has every feature and kind at once;
shrinking turns features and models off one by one. The features (`FEATURES`) and kinds (`KINDS`):

- engines: vLLM on a CPU, an NVIDIA and an AMD profile, Ollama, llama.cpp, a custom server, external routes
  (an OpenAI-compatible endpoint, hosted providers with their key);
- `replicas` (1..3) of every in-cluster model, and `autoscaling` of vLLM models (no `replicas` then, a
  prometheusUrl naming an in-cluster Service; minReplicas 0 too, a model that sleeps, with its idle and wake
  times and the HTTP add-on's namespace drawn);
- `routing`: a router policy or `service` for vLLM, `service` (or nothing) for the rest;
- LoRA `adapters` of vLLM models;
- a `mirror` (a registry, with or without a path, and a Hugging Face mirror, or HF_HUB_OFFLINE on the servers
  that download from the Hub; hosted providers reached through an endpoint inside the network);
- a `cache` claim, `preload`ed for vLLM, with `accessModes` wherever several replicas may share it;
- `monitoring`, and where the Prometheus that reads the servers lives (`netpol`: monitoring.prometheusNamespace
  and autoscaling.prometheusUrl, which decide what each model's NetworkPolicy admits; the chart always renders
  the NetworkPolicies, no spec field turns them off), never the stack's own, which `validate` refuses;
- an `ingress`, `redis` (gateway replicas and workers, the chart's Redis or an external one, its password);
- `secrets` (a master key, hfToken, env secret references, shared between models), `limits`, `fallbacks`;
- `long_names`: model names padded up to the 63 characters their longest object may take (a model named after
  another's preload Job, `<model>-preload`, is refused by `validate`: the Job's pods carry its labels).

The strategy does not call `validate` itself (a property test that shrinks draws thousands of specs, and the
rules are built in): `validated(spec)` says whether `validate` (load + plan) accepts one, so a test can hold the
refused share to a bound; `DRAWS` counts what the strategy drew, by feature and kind.
"""

from __future__ import annotations

import copy
from collections import Counter
from typing import Any

import yaml
from hypothesis import strategies as st

from stackgen.errors import StackgenError
from stackgen.load import load_text
from stackgen.plan import group_revision_label, plan
from stackgen.spec import Stack

Spec = dict[str, Any]

FEATURES = ("replicas", "autoscaling", "routing", "adapters", "mirror", "cache", "preload", "monitoring", "netpol",
            "ingress", "redis", "secrets", "limits", "fallbacks", "long_names", "groups")
# The kinds of model a spec may hold: an engine, and for vLLM the accelerator of its profile.
KINDS = ("vllm-cpu", "vllm-nvidia", "vllm-amd", "ollama", "llamacpp", "custom", "external")

PROFILES: Spec = {
    "cpu": {"cpu": "4", "memory": "16Gi"},
    "l4": {"gpu": {"resource": "nvidia.com/gpu", "count": 1, "memoryGiB": 24}, "cpu": "4", "memory": "32Gi",
           "tolerations": [{"key": "nvidia.com/gpu", "operator": "Exists", "effect": "NoSchedule"}]},
    "mi300": {"gpu": {"resource": "amd.com/gpu", "count": 2, "memoryGiB": 192}, "cpu": "8", "memory": "64Gi"},
}
# Each kind's model, as the catalog knows it and its profile holds it.
BASES: dict[str, Spec] = {
    "vllm-cpu": {"engine": "vllm", "model": "Qwen/Qwen2.5-0.5B-Instruct", "profile": "cpu", "maxModelLen": 4096},
    "vllm-nvidia": {"engine": "vllm", "model": "Qwen/Qwen2.5-7B-Instruct", "profile": "l4", "maxModelLen": 8192},
    "vllm-amd": {"engine": "vllm", "model": "meta-llama/Llama-3.1-8B-Instruct", "profile": "mi300", "maxModelLen": 16384},
    "ollama": {"engine": "ollama", "model": "qwen2.5:0.5b", "profile": "cpu"},
    "llamacpp": {"engine": "llamacpp", "model": "Qwen/Qwen2.5-0.5B-Instruct-GGUF",
                 "file": "qwen2.5-0.5b-instruct-q4_k_m.gguf", "profile": "cpu"},
    "custom": {"engine": "custom", "model": "served", "image": "ghcr.io/acme/server:1.0", "healthPath": "/health",
               "profile": "cpu"},
}
NAMES: dict[str, tuple[str, ...]] = {
    "vllm-cpu": ("coder", "qwen"), "vllm-nvidia": ("qwen-gpu", "big"), "vllm-amd": ("llama", "rocm"),
    "ollama": ("small", "chat"), "llamacpp": ("gguf", "tiny"), "custom": ("byo", "tgi"), "external": ("cloud", "desk"),
}
STACK_NAMES = ("s", "edge", "agents-prod", "team-inference-stack-prod-eu1")  # the last: 29 of the 30 allowed
# Apart: a Prometheus in the stack's own namespace is refused (its NetworkPolicies would admit every pod there).
NAMESPACES = ("default", "llm", "agents-with-a-rather-long-namespace-name-to-fill-sixty-three-ch")
PROMETHEUS_NAMESPACES = ("monitoring", "observability")
# Where KEDA's HTTP add-on runs (keda, its chart's default, or beside the Prometheus); never a stack's own namespace.
INTERCEPTOR_NAMESPACES = ("keda", "http-add-on", "monitoring")
SECRET_NAMES = ("shared", "hf-token", "provider-keys", "team.secrets")
SECRET_KEYS = ("token", "api-key", "key")
ROUTER_POLICIES = ("consistent_hash", "sticky_least_loaded", "round_robin", "service")
# Object name suffixes the chart adds to `<stack>-<model>`: the router's, and the preload Job's.
ROUTER_SUFFIX = len("-router")
PRELOAD_SUFFIX = len("-preload-") + 6
OBJECT_NAME_MAX = 63

DRAWS: Counter[str] = Counter()  # "drawn", "everything", and each feature and kind drawn


def validated(spec: Spec) -> Stack | None:
    """The stack, planned, if `validate` accepts the spec; None if it refuses it."""
    try:
        return plan(load_text(yaml.safe_dump(spec, sort_keys=False))).stack
    except StackgenError:
        return None


def _secret(draw: st.DrawFn) -> Spec:
    return {"secretName": draw(st.sampled_from(SECRET_NAMES)), "key": draw(st.sampled_from(SECRET_KEYS))}


def _prometheus_url(draw: st.DrawFn, netpol: bool) -> str | None:
    """None (the default, the Prometheus Operator's in `monitoring`) or an in-cluster Service URL."""
    if not netpol or not draw(st.booleans()):
        return None
    namespace = draw(st.sampled_from(PROMETHEUS_NAMESPACES))
    host = draw(st.sampled_from([f"prometheus.{namespace}.svc", f"prometheus-k8s.{namespace}.svc.cluster.local"]))
    return f"http://{host}:9090"


def _name(draw: st.DrawFn, kind: str, taken: set[str], budget: int, long_names: bool) -> str:
    """A model name not taken yet, padded (with `long_names`) up to the characters its objects leave it."""
    free = [n for n in NAMES[kind] if n not in taken]
    base = draw(st.sampled_from(free)) if free else f"{NAMES[kind][0]}{len(taken)}"
    room = min(budget, 50) - len(base) - 1
    if long_names and room > 0 and draw(st.booleans()):
        base = f"{base}-{'x' * draw(st.integers(1, room))}"
    name, number = base, 2
    while name in taken:  # the pool ran out: number it, still within the budget
        name = f"{base[:min(budget, 50) - len(str(number))]}{number}"
        number += 1
    return name


def _served(draw: st.DrawFn, kind: str, on: set[str], stack: Spec) -> Spec:
    m: Spec = copy.deepcopy(BASES[kind])
    vllm = m["engine"] == "vllm"
    autoscaled = vllm and "autoscaling" in on and draw(st.booleans())
    if autoscaled:
        low = draw(st.integers(0, 2))
        scaling: Spec = {"minReplicas": low, "maxReplicas": draw(st.integers(max(low, 1), 4))}
        if draw(st.booleans()):
            scaling["targetQueue"] = draw(st.integers(1, 20))
        if (url := _prometheus_url(draw, "netpol" in on)) is not None:
            scaling["prometheusUrl"] = url
        if low == 0:  # it sleeps: KEDA's HTTP add-on wakes it (stackgen.wake)
            if draw(st.booleans()):
                scaling["idleSeconds"] = draw(st.integers(60, 86400))
            if draw(st.booleans()):
                scaling["wakeSeconds"] = draw(st.integers(30, 3600))
            if draw(st.booleans()):
                namespace = draw(st.sampled_from(INTERCEPTOR_NAMESPACES))
                scaling["interceptorUrl"] = f"http://keda-add-ons-http-interceptor-proxy.{namespace}.svc:8080"
        m["autoscaling"] = scaling
    elif "replicas" in on:
        m["replicas"] = draw(st.integers(1, 3))
    if vllm and "groups" in on and draw(st.booleans()):
        m["nodesPerReplica"] = draw(st.integers(2, 3))  # a LeaderWorkerSet group of pods per replica
    several = autoscaled or m.get("replicas", 1) > 1 or m.get("nodesPerReplica", 1) > 1
    if "routing" in on and draw(st.booleans()):
        m["routing"] = draw(st.sampled_from(ROUTER_POLICIES)) if vllm else "service"
    if m["engine"] == "custom":
        m["port"] = draw(st.sampled_from([8000, 8080, 9000, 11434, 29000]))
        m["args"] = ["--serve"]
    if vllm and "adapters" in on and draw(st.booleans()):
        count = draw(st.integers(1, 2))
        m["adapters"] = [{"source": draw(st.sampled_from(["my-org/sql-lora", "/root/.cache/huggingface/support"])),
                          "rank": draw(st.sampled_from([8, 16, 64]))} for _ in range(count)]
    # A claim: never for Ollama's several replicas (refused); shared by several replicas only with accessModes.
    claim = "cache" in on and not (m["engine"] == "ollama" and several) and draw(st.booleans())
    preload = vllm and "preload" in on and draw(st.booleans())
    if claim or preload:
        cache: Spec = {"type": "persistentVolumeClaim", "size": draw(st.sampled_from(["20Gi", "40Gi"]))}
        if several or draw(st.booleans()):
            cache["accessModes"] = [draw(st.sampled_from(["ReadWriteOnce", "ReadWriteMany"]))]
        if preload:
            cache["preload"] = True
        m["cache"] = cache
    env: Spec = {}
    if "secrets" in on:
        if m["engine"] in ("vllm", "llamacpp") and draw(st.booleans()):
            m["hfToken"] = _secret(draw)
        if draw(st.booleans()):
            env["SERVICE_TOKEN"] = _secret(draw)
        if draw(st.booleans()):
            env["LOG_LEVEL"] = "debug"
    mirror = stack.get("mirror")
    if mirror and not mirror.get("huggingFace") and m["engine"] in ("vllm", "llamacpp"):
        env["HF_HUB_OFFLINE"] = "1"  # the cache is filled beforehand: there is no Hub to download from
    if env:
        m["env"] = env
    if "limits" in on and draw(st.booleans()):
        m["limits"] = {"rpm": draw(st.integers(1, 1000))}
    return m


def _external(draw: st.DrawFn, on: set[str], stack: Spec) -> Spec:
    provider = draw(st.sampled_from(["openai-compatible", "mistral", "together", "openai"]))
    if provider == "openai-compatible":
        m: Spec = {"engine": "external", "baseUrl": "http://10.0.0.5:1234/v1"}
        if "secrets" in on and draw(st.booleans()):
            m["apiKey"] = _secret(draw)
        return m
    model = {"mistral": "mistral-large-latest", "together": "meta-llama/Llama-3.3-70B-Instruct-Turbo",
             "openai": "gpt-4o-mini"}[provider]
    m = {"engine": "external", "provider": provider, "model": model, "apiKey": _secret(draw)}
    if stack.get("mirror"):
        m["baseUrl"] = f"http://{provider}-proxy.internal/v1"  # behind a mirror, hosted APIs via an endpoint inside
    return m


def _gateway(draw: st.DrawFn, on: set[str]) -> Spec:
    gateway: Spec = {"replicas": 1}
    if "redis" in on:
        gateway["replicas"] = draw(st.integers(1, 3))
        gateway["numWorkers"] = draw(st.integers(1, 2))
        redis: Spec = {}
        how = draw(st.sampled_from(["default", "on", "off", "external"]))
        if how == "on":
            redis["enabled"] = True
        elif how == "off":
            redis["enabled"] = False
        elif how == "external":
            redis["host"] = "redis.cache.svc"
            redis["port"] = draw(st.sampled_from([6379, 6380]))
        if how != "off" and "secrets" in on and draw(st.booleans()):
            redis["password"] = _secret(draw)
        if redis:
            gateway["redis"] = redis
    if "secrets" in on and draw(st.booleans()):
        gateway["masterKey"] = _secret(draw)
    if "ingress" in on:
        ingress: Spec = {"host": "agents.example.com"}
        if draw(st.booleans()):
            ingress["className"] = "nginx"
        if draw(st.booleans()):
            ingress["tlsSecretName"] = "agents-tls"
        if draw(st.booleans()):
            ingress["annotations"] = {"nginx.ingress.kubernetes.io/proxy-body-size": "16m"}
        gateway["ingress"] = ingress
    return gateway


def _mirror(draw: st.DrawFn, kinds: list[str]) -> Spec:
    # A registry with a path cannot serve Ollama models (refused): only without an Ollama model.
    registries = ["registry.internal:5000"] + ([] if "ollama" in kinds else ["mirror.example.com/team"])
    mirror: Spec = {"registry": draw(st.sampled_from(registries))}
    if draw(st.booleans()):
        mirror["insecure"] = True
    if draw(st.booleans()):
        mirror["huggingFace"] = "http://hf.internal:8090"
    return mirror


# Each feature is on with a chance of 3 in 4, and each kind is served by 0, 1 or 2 models: a draw holds most
# features and kinds, and shrinking turns them off one by one (toward 0). One draw in 16 has every feature and
# every kind at once.
LIKELY = st.integers(0, 3).map(lambda n: n > 0)
COUNT = st.sampled_from((0, 1, 1, 2))
ALL_AT_ONCE = 15


@st.composite
def stacks(draw: st.DrawFn) -> Spec:
    """A valid spec (a dict, as its YAML reads), with a drawn set of FEATURES on and models of a drawn set of
    KINDS, or every feature and kind at once."""
    everything = draw(st.integers(0, ALL_AT_ONCE)) == ALL_AT_ONCE
    on = {f for f in FEATURES if draw(LIKELY) or everything}
    kinds = [k for k in KINDS for _ in range(max(draw(COUNT), everything))] or ["vllm-cpu"]
    name = draw(st.sampled_from(STACK_NAMES))
    spec: Spec = {"name": name, "namespace": draw(st.sampled_from(NAMESPACES))}
    spec["gateway"] = _gateway(draw, on)
    if "monitoring" in on:
        monitoring: Spec = {"enabled": True}
        if draw(st.booleans()):
            monitoring["labels"] = {"release": "kube-prometheus-stack"}
        if draw(st.booleans()):
            monitoring["dashboard"] = False
        if "netpol" in on and draw(st.booleans()):
            monitoring["prometheusNamespace"] = draw(st.sampled_from(PROMETHEUS_NAMESPACES))
        spec["monitoring"] = monitoring
    if "mirror" in on:
        spec["mirror"] = _mirror(draw, kinds)
    spec["profiles"] = {p: copy.deepcopy(PROFILES[p]) for p in sorted({BASES[k]["profile"] for k in kinds
                                                                         if k in BASES})}
    models: list[Spec] = []
    taken: set[str] = set()
    for kind in kinds:
        m = _external(draw, on, spec) if kind == "external" else _served(draw, kind, on, spec)
        routed = m.get("engine") == "vllm" and (m.get("autoscaling") or m.get("replicas", 1) > 1) \
            and m.get("routing", "consistent_hash") != "service"
        longest = max(ROUTER_SUFFIX if routed else 0, PRELOAD_SUFFIX if m.get("cache", {}).get("preload") else 0)
        budget = OBJECT_NAME_MAX - len(name) - 1 - longest
        model_name = _name(draw, kind, taken, budget, "long_names" in on)
        taken.add(model_name)
        models.append({"name": model_name, **m})
        for j, adapter in enumerate(m.get("adapters", [])):
            adapter_name = f"{model_name[:40]}-lora{j}"
            taken.add(adapter_name)
            adapter["name"] = adapter_name
    if "fallbacks" in on and len(models) > 1:
        for m in models:
            others = [o["name"] for o in models if o is not m]
            if draw(st.booleans()):
                m["fallbacks"] = draw(st.lists(st.sampled_from(others), min_size=1, max_size=2, unique=True))
    for m in models:  # a group's names (LWS's worker StatefulSets and their revision labels) must fit 63 characters
        groups = int(m["autoscaling"]["maxReplicas"]) if m.get("autoscaling") else int(m.get("replicas", 1))
        if m.get("nodesPerReplica", 1) > 1 and len(group_revision_label(spec["name"], m["name"], groups)) > 63:
            del m["nodesPerReplica"]
    spec["models"] = [_ordered(m) for m in models]
    DRAWS["drawn"] += 1
    DRAWS.update(f"feature:{f}" for f in on)
    DRAWS.update(f"kind:{k}" for k in kinds)
    DRAWS["everything"] += everything
    return spec


def _ordered(m: Spec) -> Spec:
    """A model as a user writes it: name and engine first."""
    return {"name": m["name"], "engine": m["engine"], **{k: v for k, v in m.items() if k not in ("name", "engine")}}
