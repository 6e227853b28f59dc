"""Resolve a validated spec into a plan: every policy decision made once, in one place.

The plan says, for each model, what serves it and with what: object name, URL, the route the gateway
takes, context length, GPUs, image, cache and start-up budget, the engine's own chart values, AutoGen
capabilities. Engine knowledge comes from the model's engine module (engines/); the emitters (values,
gateway, agents) only translate the plan. None of them decides anything.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

from . import capacity, catalog, routing
from . import wake as wake_mod
from .engines import SERVED, Capabilities, EngineValues, ServedEngine, engine_of
from .engines.base import AMD, Download, accelerator
from .engines.external import ENGINE as ROUTED  # the one engine of models outside the cluster
from .engines.external import HOSTED, ExternalModel, api_key_env_name
from .errors import Problem, StackgenError
from .routing import RouterPlan
from .spec import Stack
from .specbase import ModelCommon, Profile, SecretRef, ServedModel

GATEWAY_PORT = 4000
# The components the chart names its own objects after (<fullname>-<component>): no model may take one.
# tests/test_spec.py checks this holds every name the chart's templates give.
RESERVED_COMPONENTS = frozenset({"gateway", "autogen", "test", "redis", "monitoring", "dashboard"})
HF_HUB = "https://huggingface.co"  # where Hub downloads go without a mirror
# ingress-nginx's annotations, and its two timeouts (seconds) between reads, and between writes, of a proxied call.
NGINX_PREFIX = "nginx.ingress.kubernetes.io/"
NGINX_TIMEOUTS = (f"{NGINX_PREFIX}proxy-read-timeout", f"{NGINX_PREFIX}proxy-send-timeout")
# The chart names a model's preload Job <fullname>-<model>-preload-<6 hex digits of what it downloads>, and
# labels its pods with component <model>-preload.
# LWS's controller names what it makes for a LeaderWorkerSet <lws> after its groups: each group i's leader pod <lws>-i,
# its workers' StatefulSet <lws>-i with pods <lws>-i-j, and, with the per-replica subdomain the chart sets, a headless
# Service <lws>-i. A StatefulSet labels its pods with <statefulset>-<revision hash of up to 10 characters>.
GROUP_REVISION_HASH = "-" + "0" * 10
PRELOAD_COMPONENT_SUFFIX = "-preload"
PRELOAD_JOB_SUFFIX = f"{PRELOAD_COMPONENT_SUFFIX}-{'0' * 6}"
REDIS_PASSWORD_KEY = "password"
# Seconds between a model server's startup probes (the values set it; the chart's default is the same).
STARTUP_PERIOD_S = 10


@dataclass(frozen=True)
class ModelPlan:
    """What the gateway and the agents need of any model, wherever it runs."""

    name: str
    spec: ModelCommon
    engine_name: str
    route: str  # the LiteLLM model the gateway calls: provider prefix / model id
    api_base: str | None  # where the gateway calls it; None: the provider's own endpoint
    api_key: SecretRef | None  # the provider key the gateway reads from a Secret
    api_key_env: str | None  # ... through this variable
    context_length: int | None  # what the server is started with (or serves)
    capabilities: Capabilities
    in_cluster: bool
    label: str  # for reports: the engine, or external/<provider>
    # How calls wake its server, if the server may sleep (minReplicas 0): an adapter's is its base model's.
    wake: wake_mod.WakePlan | None = field(default=None, kw_only=True)


@dataclass(frozen=True)
class ServedPlan(ModelPlan):
    """A model server that runs in the cluster."""

    spec: ServedModel
    engine: ServedEngine[Any] = field(repr=False)
    profile: Profile
    gpus: int  # per pod
    nodes: int  # pods per replica: 1, or a LeaderWorkerSet group's size
    cache_size: str
    startup_failure_threshold: int
    image: str | None  # None: the chart's default image for the engine
    surge: bool  # rolls out by starting a new pod before stopping an old one
    env: dict[str, str | SecretRef]
    settings: EngineValues  # the engine's own section of the chart's models.<name>
    shm_size: str | None
    hf_token: SecretRef | None
    sizing: capacity.Sizing  # memory, context and concurrency at this size, and the verdict
    router: RouterPlan | None = None  # what the gateway calls instead of the Service, with several replicas
    preload: tuple[str, ...] = ()  # the Hub repositories a Job downloads into the cache before any server starts

    def fetches(self) -> list[tuple[Download, str]]:
        """What the server downloads when it starts, each with where from (the mirrors, once applied)."""
        out = []
        offline = self.env.get("HF_HUB_OFFLINE") == "1"
        hub = self.env.get(self.engine.hub_endpoint_env or "")
        hub = hub if isinstance(hub, str) else HF_HUB
        for d in self.engine.downloads(self.spec):
            if d.origin:
                out.append((d, d.origin))
            elif d.ref in self.preload:
                out.append((d, f"{hub}, once, by the preload Job"))
            else:
                out.append((d, "its cache volume (HF_HUB_OFFLINE)" if offline else hub))
        return out


@dataclass(frozen=True)
class AdapterPlan(ModelPlan):
    """A LoRA adapter: a model name of its own, served by its base model's server (every replica loads every
    adapter, so the base's route, router and affinity serve it unchanged), with the base's abilities."""

    base: str


@dataclass(frozen=True)
class ExternalPlan(ModelPlan):
    spec: ExternalModel
    provider: str


@dataclass(frozen=True)
class RedisPlan:
    """The Redis the gateway's replicas and workers share: the chart's own, or an external one."""

    host: str
    port: int
    password: SecretRef
    in_chart: bool


@dataclass(frozen=True)
class Plan:
    stack: Stack
    fullname: str
    gateway_service: str
    master_key: SecretRef
    served: tuple[ServedPlan, ...]
    external: tuple[ExternalPlan, ...]
    adapters: tuple[AdapterPlan, ...] = ()
    redis: RedisPlan | None = None
    # Decisions the user should hear about (a default turned on, a risky choice kept): validate and
    # render print them.
    notes: tuple[str, ...] = ()
    # The gateway Ingress's annotations: the spec's, and the timeouts of its controller when stackgen knows them.
    ingress_annotations: dict[str, str] = field(default_factory=dict)

    def model(self, name: str) -> ModelPlan:
        for m in self.models:
            if m.name == name:
                return m
        raise KeyError(name)

    @property
    def models(self) -> tuple[ModelPlan, ...]:
        """Every model name agents can ask for, in spec order, each model's adapters right after it."""
        order = {m.name: i for i, m in enumerate(self.stack.models)}
        adapters = {a.name: (order[a.base], j + 1) for j, a in enumerate(self.adapters)}
        return tuple(sorted((*self.served, *self.external, *self.adapters),
                            key=lambda m: adapters.get(m.name, (order.get(m.name, 0), 0))))

    def served_by(self, m: ModelPlan) -> ServedPlan:
        """The in-cluster server of a model name: its own, or its base model's for an adapter."""
        name = m.base if isinstance(m, AdapterPlan) else m.name
        return next(s for s in self.served if s.name == name)

    def default_gateway_url(self) -> str:
        ingress = self.stack.gateway.ingress
        if ingress:
            scheme = "https" if ingress.tlsSecretName else "http"
            return f"{scheme}://{ingress.host}/v1"
        return f"http://{self.gateway_service}.{self.stack.namespace}.svc.cluster.local:{GATEWAY_PORT}/v1"


def _served_engine(m: ModelCommon) -> ServedEngine[Any] | None:
    engine = engine_of(m)
    return engine if isinstance(engine, ServedEngine) else None


def sizing(stack: Stack, m: ServedModel, at: str) -> capacity.Sizing:
    """Capacity of one served model on its (existing) profile; `at` is its path in the spec."""
    engine = _served_engine(m)
    assert engine is not None
    return engine.sizing(m, stack.profiles[m.profile], at)


def group_revision_label(stack_name: str, model_name: str, groups: int) -> str:
    """The longest name a model of `groups` groups makes: its last group's worker StatefulSet's revision label."""
    return f"{stack_name}-{model_name}-{groups - 1}{GROUP_REVISION_HASH}"


def _groups(m: ModelCommon) -> int | None:
    """The most groups a model of several pods per replica runs (its LeaderWorkerSet's replicas); None: one pod."""
    engine = _served_engine(m)
    if engine is None or not isinstance(m, ServedModel) or engine.group_size(m) == 1:
        return None
    return m.autoscaling.maxReplicas if m.autoscaling else m.replicas


def _names(stack: Stack) -> list[tuple[str, str]]:
    """Every name agents can ask for, and its path in the spec: the models', then the adapters'."""
    models = [(m.name, f"models[{i}].name") for i, m in enumerate(stack.models)]
    adapters = [(a.name, f"models[{i}].adapters[{j}].name") for i, m in enumerate(stack.models)
                if isinstance(m, ServedModel) for j, a in enumerate(m.adapters)]
    return models + adapters


def check(stack: Stack, with_capacity: bool = True) -> list[Problem]:
    """Cross-field rules; every violation is collected so the user sees them all at once.

    `with_capacity` adds the refusals of models that do not fit their profile's memory."""
    problems: list[Problem] = []
    seen: dict[str, str] = {}  # every name agents can ask for, models' and adapters', and where it is
    for name, where in _names(stack):
        if name in seen:
            either = "model and adapter" if "adapters" in where + seen[name] else "model"
            problems.append(Problem(where, f"duplicate model name {name!r} (also {seen[name].removesuffix('.name')})",
                                    f"give every {either} a unique name"))
        seen.setdefault(name, where)
    names: dict[str, int] = {}  # the models' own names, which also name objects
    for i, m in enumerate(stack.models):
        names.setdefault(m.name, i)
    for i, m in enumerate(stack.models):
        at = f"models[{i}]"
        if m.name in RESERVED_COMPONENTS:
            problems.append(Problem(f"{at}.name", f"{m.name!r} is reserved for the stack's own objects",
                                    f"pick another name than {', '.join(sorted(RESERVED_COMPONENTS))}"))
        objects = [f"{stack.name}-{routing.component(m.name)}" if _policy(m) else f"{stack.name}-{m.name}"]
        if isinstance(m, ServedModel) and m.cache.preload:
            objects.append(f"{stack.name}-{m.name}{PRELOAD_JOB_SUFFIX}")
        if (groups := _groups(m)) is not None:  # the last group's worker StatefulSet's revision label
            objects.append(group_revision_label(stack.name, m.name, groups))
        longest = max(objects, key=len)
        if len(longest) > 63:
            problems.append(Problem(f"{at}.name", f"object name {longest!r} is longer than 63 characters",
                                    "shorten the stack or model name"))
    for m in stack.models:  # a router's and a preload Job's pods are labelled like a model called <model>-<part>
        taken = {routing.component(m.name): "the router"} if _policy(m) else {}
        if isinstance(m, ServedModel) and m.cache.preload:
            taken[f"{m.name}{PRELOAD_COMPONENT_SUFFIX}"] = "the preload Job"
        for component, what in taken.items():
            if component in names:
                problems.append(Problem(f"models[{names[component]}].name",
                                        f"{component!r} names {what} of model {m.name!r}, whose pods it would take as "
                                        "its own", "pick another model name"))
        if _groups(m) is not None:  # LWS's headless Service of group i is <lws>-i: a model of that name has its Service
            for other, i in names.items():
                if other.startswith(f"{m.name}-") and other[len(m.name) + 1:].isdigit():
                    problems.append(Problem(f"models[{i}].name", f"{other!r} names the headless Service LWS makes for "
                                            f"group {other[len(m.name) + 1:]} of model {m.name!r} (nodesPerReplica): "
                                            "taken, LWS makes none, and the group's pods cannot find their leader",
                                            "pick another model name"))
    # A model server's NetworkPolicy admits the namespace of the Prometheus that scrapes or scales it: the stack's
    # own would admit every pod of it, past the gateway.
    own = stack.namespace
    scraping: list[tuple[str, str | None]] = (
        [("monitoring.prometheusNamespace", stack.monitoring.prometheusNamespace)] if stack.monitoring.enabled else [])
    scraping += [(f"models[{i}].autoscaling.prometheusUrl", m.autoscaling.prometheus_namespace)
                 for i, m in enumerate(stack.models) if isinstance(m, ServedModel) and m.autoscaling]
    for at, namespace in scraping:
        if namespace == own:
            problems.append(Problem(at, f"Prometheus in the stack's own namespace ({own}): the model servers' "
                                        "NetworkPolicies would admit every pod of it to their ports, past the gateway",
                                    "run Prometheus in a namespace of its own, e.g. monitoring"))
    redis = stack.gateway.redis
    if redis.enabled is False and redis.host:
        problems.append(Problem("gateway.redis.host", "an external Redis is named, but gateway.redis.enabled is false",
                                "remove host, or remove enabled: false"))
    for i, m in enumerate(stack.models):
        at = f"models[{i}]"
        if m.limits and m.limits.rpm is None and m.limits.tpm is None:
            problems.append(Problem(f"{at}.limits", "neither rpm nor tpm is set", "set rpm, tpm or both, or remove limits"))
        for j, target in enumerate(m.fallbacks):
            if target not in seen:
                problems.append(Problem(f"{at}.fallbacks[{j}]", f"no model named {target!r}",
                                        f"name one of: {', '.join(seen)}"))
            elif target == m.name:
                problems.append(Problem(f"{at}.fallbacks[{j}]", "a model cannot fall back to itself", "remove it"))
        if isinstance(m, ServedModel):
            problems += _check_served(at, m, stack, with_capacity)
        else:
            problems += engine_of(m).check(m, None, at)
            if stack.mirror and isinstance(m, ExternalModel) and m.provider in HOSTED and not m.baseUrl:
                problems.append(Problem(f"{at}.provider", f"{m.provider}'s API is on the internet, which a cluster "
                                        "behind a mirror cannot reach", "remove the model, or set baseUrl to the "
                                        "provider's endpoint inside your network"))
    return problems


def _check_autoscaling(at: str, m: ServedModel, engine: ServedEngine[Any], namespace: str) -> list[Problem]:
    scaling = m.autoscaling
    assert scaling is not None
    problems = []
    if engine.metrics is None:
        scalable = ", ".join(sorted(n for n, e in SERVED.items() if e.metrics)) or "none"
        problems.append(Problem(f"{at}.autoscaling", f"{engine.name} exports no queue-depth metric to scale on",
                                f"remove autoscaling, or serve the model with an engine that does ({scalable})"))
    if scaling.minReplicas == 0 and scaling.interceptor_namespace is None:
        # The model's NetworkPolicy must admit the interceptor that forwards the calls which wake it.
        problems.append(Problem(f"{at}.autoscaling.interceptorUrl",
                                f"{scaling.interceptorUrl!r} names no in-cluster Service, so the model's NetworkPolicy "
                                "cannot admit the interceptor that forwards its calls",
                                "name the HTTP add-on's proxy Service as http://<service>.<namespace>.svc:<port>"))
    if scaling.minReplicas == 0 and scaling.interceptor_namespace == namespace:
        # A namespaceSelector of the stack's own namespace would admit every pod of it to the model's port.
        problems.append(Problem(f"{at}.autoscaling.interceptorUrl",
                                f"the HTTP add-on in the stack's own namespace ({namespace}): the NetworkPolicy that "
                                "admits its interceptor would admit every pod of the namespace",
                                "install KEDA's HTTP add-on in a namespace of its own (its chart's default is keda)"))
    if scaling.minReplicas > 0:
        problems += [Problem(f"{at}.autoscaling.{name}", f"{name} only applies to a model that sleeps (minReplicas 0)",
                             f"remove {name}, or set minReplicas: 0")
                     for name in ("idleSeconds", "wakeSeconds") if getattr(scaling, name) is not None]
    if scaling.minReplicas > scaling.maxReplicas:
        problems.append(Problem(f"{at}.autoscaling.minReplicas",
                                f"minReplicas {scaling.minReplicas} is above maxReplicas {scaling.maxReplicas}",
                                "lower minReplicas or raise maxReplicas"))
    if "replicas" in m.model_fields_set:
        problems.append(Problem(f"{at}.replicas", "replicas is the autoscaler's to set when autoscaling is on",
                                "remove replicas; set autoscaling.minReplicas instead"))
    if scaling.prometheus_namespace is None:
        # The model's NetworkPolicy must admit the Prometheus that scrapes its queue, or KEDA never sees one.
        problems.append(Problem(f"{at}.autoscaling.prometheusUrl",
                                f"{scaling.prometheusUrl!r} names no in-cluster Service, so the model's NetworkPolicy "
                                "cannot admit the Prometheus that scrapes its queue",
                                "write http://<service>.<namespace>.svc:<port>"))
    return problems


def _check_cache(at: str, m: ServedModel, engine: ServedEngine[Any]) -> list[Problem]:
    cache, problems = m.cache, []
    if cache.type != "persistentVolumeClaim":
        return [Problem(f"{at}.{name}", f"{name} is a claim's, and an emptyDir lives and dies with its pod",
                        f"set cache.type: persistentVolumeClaim, or remove {name}")
                for name in ("preload", "accessModes") if name in cache.model_fields_set]
    if cache.preload and not engine.preloads:
        preloading = ", ".join(n for n, e in SERVED.items() if e.preloads)
        problems.append(Problem(f"{at}.preload", f"stackgen cannot preload a cache for {engine.name}",
                                f"remove preload (the server downloads into the claim as it starts), or serve the "
                                f"model with {preloading}"))
    elif cache.preload and not _hub_downloads(engine, m):
        problems.append(Problem(f"{at}.preload", "the server downloads nothing from the Hub: there is nothing to preload",
                                "remove preload"))
    if (m.autoscaling or m.replicas > 1 or engine.group_size(m) > 1) and cache.accessModes is None:
        problems.append(Problem(f"{at}.accessModes", "the pods share one claim, and a ReadWriteOnce volume attaches "
                                "to one node: replicas scheduled on another node would wait in ContainerCreating "
                                "(Multi-Attach error)", "set accessModes: [ReadWriteMany] with a storageClassName that "
                                "provides it (NFS, CephFS, a cloud file store), or [ReadWriteOnce] when every replica "
                                "runs on one node"))
    return problems


def _hub_downloads(engine: ServedEngine[Any], m: ServedModel) -> tuple[str, ...]:
    return tuple(d.ref for d in engine.downloads(m) if d.source == "huggingface")


def _check_served(at: str, m: ServedModel, stack: Stack, with_capacity: bool) -> list[Problem]:
    engine = _served_engine(m)
    assert engine is not None
    problems = []
    profile = stack.profiles.get(m.profile)
    if profile is None:
        known = ", ".join(stack.profiles) or "none defined"
        problems.append(Problem(f"{at}.profile", f"no profile named {m.profile!r} (profiles: {known})",
                                "add it under profiles or use an existing one"))
    problems += engine.check(m, profile, at)
    if m.adapters and engine.no_adapters:
        serving = ", ".join(n for n, e in SERVED.items() if not e.no_adapters)
        problems.append(Problem(f"{at}.adapters", f"{engine.name} cannot serve LoRA adapters here: {engine.no_adapters}",
                                f"serve the base model with {serving}, or remove adapters"))
    if m.autoscaling:
        problems += _check_autoscaling(at, m, engine, stack.namespace)
    problems += _check_cache(f"{at}.cache", m, engine)
    if stack.mirror:
        problems += engine.check_mirror(m, stack.mirror, at)
    # Capacity, and what the render needs of an image override, only once the model is otherwise valid: their
    # numbers assume a known profile and context.
    if profile is not None and not problems:
        sized = engine.sizing(m, profile, at)
        problems += sized.problems if with_capacity else []
        problems += engine.check_image(m, profile, engine.server(m, profile, sized).settings, at) if m.image else []
    if m.routing not in (None, routing.NO_ROUTER) and not engine.routable:
        routable = ", ".join(sorted(n for n, e in SERVED.items() if e.routable))
        problems.append(Problem(f"{at}.routing", f"the router is proven in front of {routable} only, not {engine.name}",
                                f"remove routing (the replicas share requests through their Service), or serve the "
                                f"model with {routable}"))
    return problems


def _hub_endpoint(stack: Stack, engine: ServedEngine[Any], m: ServedModel) -> dict[str, str]:
    """The Hugging Face mirror, in the variable the server reads, if it downloads from the Hub."""
    hub, name = (stack.mirror.huggingFace if stack.mirror else None), engine.hub_endpoint_env
    if hub and name and any(d.source == "huggingface" for d in engine.downloads(m)):
        return {name: hub}
    return {}


def _policy(m: ModelCommon) -> str | None:
    """The router policy of a model, or None where no router stands in front of it: one replica, an engine
    the router is not proven on, or `routing: service`."""
    engine = _served_engine(m)
    if engine is None or not engine.routable or not isinstance(m, ServedModel):
        return None
    if not routing.needs_router(m.replicas, m.autoscaling is not None):
        return None
    policy = m.routing or routing.DEFAULT_POLICY
    return None if policy == routing.NO_ROUTER else policy


def _served(stack: Stack, fullname: str, m: ServedModel, at: str) -> ServedPlan:
    engine = _served_engine(m)
    assert engine is not None
    if stack.mirror:
        m = engine.mirrored(m, stack.mirror)
    profile = stack.profiles[m.profile]
    # Capacity decides the served context (shrunk to fit when the spec sets none) and the GPUs per
    # replica (the smallest tensor parallel size that fits when the spec sets none).
    sized = engine.sizing(m, profile, at)
    server = engine.server(m, profile, sized)
    weights = engine.weights_gib(m)
    cache_gib = math.ceil(max(10.0, 1.5 * weights)) if weights else 50
    # Thirty minutes for start-up, plus a minute per GiB of weights to download and load, in probe periods.
    startup = (1800 + 60 * math.ceil(weights or 0)) // STARTUP_PERIOD_S
    policy = _policy(m)
    router = routing.router(fullname, m.name, policy) if policy else None
    # The chart's contract (values.yaml): a model's Service is <fullname>-<key>, port 80 whatever the engine's
    # port; the chart tests check that every such URL names a Service it renders. With several replicas the
    # gateway calls the model's router instead (stackgen.routing); a model that may sleep, the interceptor that
    # wakes it (stackgen.wake).
    service = router.service if router else f"{fullname}-{m.name}"
    wake = wake_mod.plan(engine, m, profile, fullname, stack.namespace, service)
    preload = _hub_downloads(engine, m) if m.cache.preload else ()
    # A claim one node attaches can't follow a surge pod to another node: such a pod rolls in place.
    attached_once = m.cache.type == "persistentVolumeClaim" and "ReadWriteMany" not in (m.cache.accessModes or ())
    return ServedPlan(
        name=m.name, spec=m, engine_name=engine.name, route=engine.route(m),
        api_base=router.url if router else f"http://{service}/v1", api_key=None, api_key_env=None,
        context_length=sized.context,
        capabilities=engine.capabilities(m), in_cluster=True, label=engine.name,
        engine=engine, profile=profile,
        gpus=sized.gpus, nodes=engine.group_size(m), cache_size=m.cache.size or f"{cache_gib}Gi",
        startup_failure_threshold=startup,
        image=engine.image(m, profile),
        env={**server.env, **_hub_endpoint(stack, engine, m), **m.env},
        settings=server.settings,
        shm_size=server.shm_size, hf_token=server.hf_token, sizing=sized,
        # A pod holding GPUs rolls in place: a surge pod would wait for a GPU that a full pool never frees,
        # and the rollout would hang. CPU-only pods surge, so capacity never drops.
        surge=sized.gpus == 0 and not attached_once, router=router, preload=preload, wake=wake,
    )


def _adapters(base: ServedPlan) -> list[AdapterPlan]:
    """The base model's adapters: its route with the adapter's name (the server lists each adapter as a model),
    its address and abilities; the adapter's own tags, or the base's."""
    return [AdapterPlan(
        name=a.name, spec=ModelCommon(name=a.name, tags=list(base.spec.tags if a.tags is None else a.tags),
                                      toolCalling=base.spec.toolCalling),
        engine_name=base.engine_name, route=f"{base.engine.provider}/{a.name}", api_base=base.api_base, api_key=None,
        api_key_env=None, context_length=base.context_length, capabilities=base.capabilities, in_cluster=True,
        label=base.label, base=base.name, wake=base.wake) for a in base.spec.adapters]


def _external(m: ExternalModel) -> ExternalPlan:
    engine = ROUTED
    provider = engine.provider(m)
    key_env = api_key_env_name(m.name) if m.apiKey else None
    return ExternalPlan(
        name=m.name, spec=m, engine_name=engine.name, route=engine.route(m), api_base=m.baseUrl, api_key=m.apiKey,
        api_key_env=key_env, context_length=None, capabilities=engine.capabilities(m), in_cluster=False,
        label=f"external/{provider}", provider=provider,
    )


def plan(stack: Stack, enforce_capacity: bool = True) -> Plan:
    """Check the spec's cross-field rules and resolve every decision; raises StackgenError. Without
    `enforce_capacity` a model that does not fit is planned anyway, its sizing saying why (`stackgen plan`)."""
    problems = check(stack, with_capacity=enforce_capacity)
    if problems:
        raise StackgenError(problems)
    fullname = stack.name
    master = stack.gateway.masterKey or SecretRef(secretName=f"{stack.name}-litellm-master-key", key="master-key")
    served, external, adapters = [], [], []
    for i, m in enumerate(stack.models):
        if isinstance(m, ServedModel):
            served.append(_served(stack, fullname, m, f"models[{i}]"))
            adapters += _adapters(served[-1])
        else:
            assert isinstance(m, ExternalModel)
            external.append(_external(m))
    redis, notes = _redis(stack, fullname)
    annotations, ingress_notes = _ingress(stack, served)
    notes += _spread_notes(stack) + _fallback_cycle_notes(stack) + _restricted_notes(stack) + _gpu_notes(stack)
    notes += _wake_notes(stack, served) + ingress_notes
    return Plan(stack=stack, fullname=fullname, gateway_service=f"{fullname}-gateway", master_key=master,
                served=tuple(served), external=tuple(external), adapters=tuple(adapters), redis=redis, notes=notes,
                ingress_annotations=annotations)


def _ingress(stack: Stack, served: list[ServedPlan]) -> tuple[dict[str, str], tuple[str, ...]]:
    """The gateway Ingress's annotations, and what to tell of its timeouts. A controller that closes a connection
    silent for less than the gateway waits for an answer cuts a call that is not streamed: ingress-nginx's default is
    60 s, against the gateway's 600 (and a sleeping model's wake before it). stackgen sets ingress-nginx's two
    timeouts to the longest wait; of another controller it says what to set."""
    ingress = stack.gateway.ingress
    if ingress is None:
        return {}, ()
    longest = max((wake_mod.waited_seconds(m.wake, stack.gateway.timeoutSeconds) for m in served),
                  default=stack.gateway.timeoutSeconds)
    annotations = dict(ingress.annotations)
    nginx = ingress.className == "nginx" or any(k.startswith(NGINX_PREFIX) for k in annotations)
    if not nginx:
        return annotations, (f"note: gateway.ingress: a call can wait {longest} s for its answer: set your ingress "
                             f"controller's idle (read) timeout to at least that (stackgen sets ingress-nginx's, for "
                             "className nginx)",)
    notes = []
    for key in NGINX_TIMEOUTS:
        given = annotations.setdefault(key, str(longest))
        if not given.isdigit() or int(given) < longest:
            notes.append(f"warning: gateway.ingress.annotations.{key}: {given} cuts the calls the gateway waits up to "
                         f"{longest} s for (remove it, and stackgen sets {longest})")
    return annotations, tuple(notes)


def _wake_notes(stack: Stack, served: list[ServedPlan]) -> tuple[str, ...]:
    """What a sleeping model's wake is estimated to cost, where it can exceed wakeSeconds (stackgen.wake)."""
    at = {m.name: f"models[{i}]" for i, m in enumerate(stack.models)}
    return tuple(note for m in served if m.wake
                 for note in wake_mod.notes(m.wake, m.spec, at[m.name], m.engine.weights_gib(m.spec)))


def _spread_notes(stack: Stack) -> tuple[str, ...]:
    """Models whose replicas share requests at random, so each replica caches only part of a conversation."""
    notes = []
    for i, m in enumerate(stack.models):
        engine = _served_engine(m)
        if (engine is None or not isinstance(m, ServedModel) or _policy(m)
                or not routing.needs_router(m.replicas, m.autoscaling is not None)):
            continue
        why = "routing: service" if m.routing == routing.NO_ROUTER else f"no router is proven on {engine.name}"
        notes.append(f"note: models[{i}]: the replicas of {m.name} share requests through their Service at random "
                     f"({why}): each replica's prompt cache sees only part of each conversation")
    return tuple(notes)


def _gpu_notes(stack: Stack) -> tuple[str, ...]:
    """What the GPU path cannot check or place by itself: a product that no node selector asks for, a GPU whose
    memory is unknown (nothing checks a model fits it), and a gated Hub model with no token."""
    notes = []
    for key, profile in stack.profiles.items():
        gpu = profile.gpu
        if gpu is None:
            continue
        if gpu.product and not profile.nodeSelector and not profile.affinity:
            label = "nvidia.com/gpu.product" if gpu.resource.startswith("nvidia.com/") else "<the node label naming it>"
            notes.append(f"warning: profiles.{key}.gpu.product: {gpu.product} asks no node for it: its pods may land "
                         f"on any node with {gpu.resource} (add nodeSelector: {{{label}: {gpu.product}}}, the label "
                         "GPU feature discovery sets)")
        if gpu.memoryGiB is None:
            notes.append(f"warning: profiles.{key}.gpu.memoryGiB: not set, so nothing checks that its models fit their "
                         "GPUs (set the memory of one GPU in GiB, e.g. 24 for an L4)")
    for i, m in enumerate(stack.models):
        # Only the engines that download from the Hub have an hfToken field (False: this one has none).
        model = getattr(m, "model", "")
        if getattr(m, "hfToken", False) is None and catalog.gated(model):
            notes.append(f"warning: models[{i}].hfToken: {m.name}'s {model} is gated on the Hugging "
                         "Face Hub: without a token of a user who accepted its licence, its download fails with 401 "
                         "(add hfToken: {secretName: hf-token, key: token})")
    return tuple(notes)


def _restricted_notes(stack: Stack) -> tuple[str, ...]:
    """What running as a non-root user (the restricted Pod Security level) asks of the user: servers whose running
    so stackgen cannot prove say what their image must do, and AMD GPUs need the device files' groups."""
    notes = [f"note: models[{i}]: {m.name}: {engine.restricted_note}" for i, m in enumerate(stack.models)
             if (engine := _served_engine(m)) is not None and engine.restricted_note]
    amd = [m.name for m in stack.models if isinstance(m, ServedModel) and m.profile in stack.profiles
           and accelerator(stack.profiles[m.profile]) == AMD]
    if amd:
        notes.append(f"note: models: {', '.join(amd)} run on AMD GPUs as a non-root user, and ROCm's device files "
                     "(/dev/kfd, /dev/dri) usually belong to the node's video and render groups: give those GIDs as "
                     "the chart's podSecurity.supplementalGroups (helm install --set), or the server finds no GPU")
    return tuple(notes)


def _fallback_cycle_notes(stack: Stack) -> tuple[str, ...]:
    """Fallbacks that lead back to where they started (a -> b -> a: two models backing each other up). Accepted:
    LiteLLM 1.108.7 tries each model at most once per request (it skips the targets a request has tried), so a
    cycle ends, in an error once every model on it has failed (tests/stack/test_faults.py)."""
    edges = {m.name: list(m.fallbacks) for m in stack.models}
    cycles: list[list[str]] = []
    for start in edges:
        path, todo = [start], [iter(edges[start])]
        while todo:
            nxt = next(todo[-1], None)
            if nxt is None:
                todo.pop()
                path.pop()
            elif nxt == start and len(path) > 1:
                # Each cycle once, from its first model in spec order.
                if min(path, key=list(edges).index) == start:
                    cycles.append([*path, start])
            elif nxt not in path and nxt in edges:
                path.append(nxt)
                todo.append(iter(edges[nxt]))
    return tuple(f"note: models: fallbacks go round ({' -> '.join(c)}): the gateway tries each model at most once "
                 "per request, so the round ends; the request fails only when every model on it has failed"
                 for c in cycles)


def _redis(stack: Stack, fullname: str) -> tuple[RedisPlan | None, tuple[str, ...]]:
    """Redis is on by default wherever more than one process serves the gateway: LiteLLM keeps its rate-limit
    counters per process otherwise, so every model's limits multiply by the process count."""
    gw = stack.gateway
    processes = gw.replicas * gw.numWorkers
    shared = f"{processes} processes ({gw.replicas} replicas x {gw.numWorkers} workers)"
    if gw.redis.enabled is False or (gw.redis.enabled is None and processes == 1 and not gw.redis.host):
        if processes > 1:
            return None, (f"warning: gateway.redis.enabled is false with {shared}: each keeps its own rate-limit "
                          f"counters, so a model's limits allow up to {processes} times their value",)
        return None, ()
    password = gw.redis.password or SecretRef(secretName=f"{fullname}-redis-password", key=REDIS_PASSWORD_KEY)
    in_chart = gw.redis.host is None
    plan = RedisPlan(host=gw.redis.host or f"{fullname}-redis", port=gw.redis.port, password=password,
                     in_chart=in_chart)
    notes: tuple[str, ...] = ()
    if gw.redis.enabled is None and processes > 1:
        where = "which the chart runs" if in_chart else f"at {plan.host}:{plan.port}"
        notes = (f"note: gateway: {shared} share their rate-limit counters through Redis, {where}; create "
                 f"Secret {password.secretName} (key {password.key}) first, or set gateway.redis.enabled: false",)
    return plan, notes
