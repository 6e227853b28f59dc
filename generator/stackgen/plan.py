"""Resolve a validated spec into a plan: every policy decision made once, in one place.

The plan says, for each model, which engine serves it and with what: object name, URL, context length,
tool-call parser, GPUs, cache and /dev/shm sizes, AutoGen capabilities. The emitters (values, gateway,
autogen) only translate the plan; none of them decides anything.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

from . import capacity, catalog
from .errors import Problem, StackgenError
from .spec import ExternalModel, OllamaModel, Profile, SecretRef, Stack, VllmModel

GATEWAY_PORT = 4000
RESERVED_COMPONENTS = frozenset({"gateway", "autogen", "test"})
# vLLM's CPU image; the GPU image is the chart's default (images.vllm).
VLLM_CPU_IMAGE = "public.ecr.aws/q9t5s3a7/vllm-cpu-release-repo:v0.11.0"
PROVIDER_PREFIX = {"openai": "openai", "mistral": "mistral", "together": "together_ai", "openai-compatible": "openai"}
GIB = 2**30
OLLAMA_DEFAULT_CONTEXT = 8192


@dataclass(frozen=True)
class ServedPlan:
    """A model server that runs in the cluster."""

    name: str
    engine: str  # vllm | ollama
    spec: VllmModel | OllamaModel
    profile: Profile
    url: str  # what the gateway calls, ending in /v1
    upstream_model: str  # model id the server expects in requests
    facts: catalog.ModelFacts | None
    context_length: int | None  # what the server is started with: vLLM --max-model-len, OLLAMA_CONTEXT_LENGTH
    tool_parser: str | None
    gpus: int
    shm_gib: int
    cache_size: str
    startup_failure_threshold: int
    image: str | None
    surge: bool  # rolls out by starting a new pod before stopping an old one
    env: dict[str, str | SecretRef] = field(default_factory=dict)
    sizing: capacity.Sizing | None = None  # memory, context and concurrency at this size, and the verdict


@dataclass(frozen=True)
class ExternalPlan:
    name: str
    spec: ExternalModel
    provider: str
    litellm_model: str
    base_url: str | None
    api_key_env: str | None  # the gateway's env var holding the key; None for keyless endpoints


@dataclass(frozen=True)
class Plan:
    stack: Stack
    fullname: str
    gateway_service: str
    master_key: SecretRef
    served: tuple[ServedPlan, ...]
    external: tuple[ExternalPlan, ...]

    def model(self, name: str) -> ServedPlan | ExternalPlan:
        for m in (*self.served, *self.external):
            if m.name == name:
                return m
        raise KeyError(name)

    @property
    def models(self) -> tuple[ServedPlan | ExternalPlan, ...]:
        """Every model in spec order."""
        order = {m.name: i for i, m in enumerate(self.stack.models)}
        return tuple(sorted((*self.served, *self.external), key=lambda m: order[m.name]))

    def default_gateway_url(self) -> str:
        ingress = self.stack.gateway.ingress
        if ingress:
            scheme = "https" if ingress.tlsSecretName else "http"
            return f"{scheme}://{ingress.host}/v1"
        return f"http://{self.gateway_service}.{self.stack.namespace}.svc.cluster.local:{GATEWAY_PORT}/v1"


def api_key_env_name(model_name: str) -> str:
    return model_name.upper().replace("-", "_") + "_API_KEY"


def _quantity_gib(text: str) -> float:
    units = {"Ki": 2**10, "Mi": 2**20, "Gi": 2**30, "Ti": 2**40, "k": 1e3, "M": 1e6, "G": 1e9, "T": 1e12}
    for suffix, factor in sorted(units.items(), key=lambda kv: -len(kv[0])):
        if text.endswith(suffix):
            return float(text[: -len(suffix)]) * factor / GIB
    return float(text) / GIB


def _facts(model: VllmModel | OllamaModel) -> catalog.ModelFacts | None:
    return catalog.hf_model(model.model) if model.engine == "vllm" else catalog.ollama_model(model.model)


def _weights_gib(model: VllmModel | OllamaModel, facts: catalog.ModelFacts | None) -> float | None:
    if model.engine == "ollama":
        tag = catalog.ollama_tag(model.model)
        return tag.size_gb * 1e9 / GIB if tag else None
    return facts.weight_gib if facts else None


def _native_context(m: VllmModel | OllamaModel, facts: catalog.ModelFacts | None) -> int | None:
    """The model's own context length: for vLLM the spec's contextLength wins (uncatalogued models)."""
    if isinstance(m, VllmModel) and m.contextLength:
        return m.contextLength
    return facts.context_length if facts else None


def _default_context(m: VllmModel | OllamaModel, native: int | None) -> int | None:
    if isinstance(m, VllmModel):
        return native
    # Ollama sizes its KV cache for the whole context up front; a model's full 128K would not fit a
    # small pod, so serve at most OLLAMA_DEFAULT_CONTEXT unless the spec asks for more.
    return min(native or OLLAMA_DEFAULT_CONTEXT, OLLAMA_DEFAULT_CONTEXT)


def _cpu_kv_space_gib(m: VllmModel | OllamaModel, profile: Profile) -> int:
    """vLLM's CPU backend takes its KV cache from host memory: VLLM_CPU_KVCACHE_SPACE GiB, a quarter of
    the pod's memory unless the spec's env sets it."""
    given = m.env.get("VLLM_CPU_KVCACHE_SPACE")
    if isinstance(given, str) and given.isdigit():
        return int(given)
    return max(1, int(_quantity_gib(profile.memory) // 4))


def sizing(stack: Stack, m: VllmModel | OllamaModel, at: str) -> capacity.Sizing:
    """Capacity of one served model on its (existing) profile; `at` is its path in the spec."""
    profile = stack.profiles[m.profile]
    facts = _facts(m)
    native = _native_context(m, facts)
    ollama_gib = _weights_gib(m, facts) if isinstance(m, OllamaModel) else None
    return capacity.size(m, profile, facts, native, _default_context(m, native), ollama_gib,
                         _cpu_kv_space_gib(m, profile), _quantity_gib(profile.memory), at)


def check(stack: Stack, with_capacity: bool = True) -> list[Problem]:
    """Cross-field rules; every violation is collected so the user sees them all at once.

    `with_capacity` adds the refusals of models that do not fit their profile's memory."""
    problems: list[Problem] = []
    names: dict[str, int] = {}
    for i, m in enumerate(stack.models):
        at = f"models[{i}]"
        if m.name in names:
            problems.append(Problem(f"{at}.name", f"duplicate model name {m.name!r} (also models[{names[m.name]}])",
                                    "give every model a unique name"))
        names.setdefault(m.name, i)
        if m.name in RESERVED_COMPONENTS:
            problems.append(Problem(f"{at}.name", f"{m.name!r} is reserved for the stack's own objects",
                                    f"pick another name than {', '.join(sorted(RESERVED_COMPONENTS))}"))
        if len(f"{stack.name}-{m.name}") > 63:
            problems.append(Problem(f"{at}.name", f"object name {stack.name}-{m.name!r} is longer than 63 characters",
                                    "shorten the stack or model name"))
    for i, m in enumerate(stack.models):
        at = f"models[{i}]"
        for j, target in enumerate(m.fallbacks):
            if target not in names:
                problems.append(Problem(f"{at}.fallbacks[{j}]", f"no model named {target!r}",
                                        f"name one of: {', '.join(names)}"))
            elif target == m.name:
                problems.append(Problem(f"{at}.fallbacks[{j}]", "a model cannot fall back to itself", "remove it"))
        if isinstance(m, ExternalModel):
            problems += _check_external(at, m)
        else:
            problems += _check_served(at, m, stack, with_capacity)
    return problems


def _check_external(at: str, m: ExternalModel) -> list[Problem]:
    problems = []
    if m.provider in (None, "openai-compatible") and not m.baseUrl:
        problems.append(Problem(f"{at}.baseUrl", "an external model needs a provider or a baseUrl",
                                "set provider: openai | mistral | together, or baseUrl: http://host:port/v1"))
    if m.provider in ("openai", "mistral", "together") and not m.apiKey:
        problems.append(Problem(f"{at}.apiKey", f"provider {m.provider} needs an API key",
                                "set apiKey: {secretName: NAME, key: KEY}"))
    if m.provider in ("openai", "mistral", "together") and not m.model:
        problems.append(Problem(f"{at}.model", f"provider {m.provider} needs the provider's model id",
                                "set model, e.g. mistral-large-latest"))
    return problems


def _check_served(at: str, m: VllmModel | OllamaModel, stack: Stack, with_capacity: bool) -> list[Problem]:
    problems = []
    profile = stack.profiles.get(m.profile)
    if profile is None:
        known = ", ".join(stack.profiles) or "none defined"
        problems.append(Problem(f"{at}.profile", f"no profile named {m.profile!r} (profiles: {known})",
                                "add it under profiles or use an existing one"))
    facts = _facts(m)
    if m.toolCalling:
        if isinstance(m, VllmModel) and not (m.toolCallParser or (facts and facts.tool_parser)):
            why = "the catalog knows no tool-call parser for it" if facts else "it is not in the catalog"
            problems.append(Problem(f"{at}.toolCalling", f"{m.model} cannot do tool calling on vLLM: {why}",
                                    "remove toolCalling, or set toolCallParser to the vLLM parser the model needs"))
        if isinstance(m, OllamaModel):
            tag = catalog.ollama_tag(m.model)
            if tag and not tag.tools:
                problems.append(Problem(f"{at}.toolCalling", f"Ollama lists no tool support for {m.model}",
                                        "remove toolCalling or pick a model with tools (qwen2.5, llama3.1, mistral)"))
    if isinstance(m, VllmModel):
        if facts is None and m.contextLength is None and m.maxModelLen is None:
            problems.append(Problem(f"{at}.maxModelLen", f"{m.model} is not in the catalog, so its context length is unknown",
                                    "set maxModelLen (or contextLength)"))
        if facts and not facts.chat_template and not any(a.startswith("--chat-template") for a in m.args):
            problems.append(Problem(f"{at}.model", f"{m.model} has no chat template, so vLLM cannot serve chat completions",
                                    "add args: [--chat-template, /path/to/template.jinja] or pick an instruct model"))
        limit = m.contextLength or (facts.context_length if facts else None)
        if m.maxModelLen and limit and m.maxModelLen > limit:
            problems.append(Problem(f"{at}.maxModelLen", f"{m.maxModelLen} is over the model's context length {limit}",
                                    f"set maxModelLen to at most {limit}"))
        if profile is not None:
            tp = m.tensorParallelSize or 1
            if profile.gpu is None and m.tensorParallelSize:
                problems.append(Problem(f"{at}.tensorParallelSize", f"profile {m.profile!r} has no GPUs",
                                        "remove tensorParallelSize or use a GPU profile"))
            elif profile.gpu is not None and tp > profile.gpu.count:
                problems.append(Problem(f"{at}.tensorParallelSize",
                                        f"{tp} is larger than the {profile.gpu.count} GPU(s) of profile {m.profile!r}",
                                        f"set tensorParallelSize to at most {profile.gpu.count} or use a profile with more GPUs"))
    if isinstance(m, OllamaModel) and m.replicas > 1 and m.cache.type == "persistentVolumeClaim":
        problems.append(Problem(f"{at}.cache.type", "replicas of an Ollama model cannot share one ReadWriteOnce volume",
                                "use cache.type: emptyDir, or replicas: 1"))
    # Capacity only once the model is otherwise valid: its numbers assume a known profile and context.
    if with_capacity and profile is not None and not problems:
        problems += sizing(stack, m, at).problems
    return problems


def _served(stack: Stack, fullname: str, m: VllmModel | OllamaModel, at: str) -> ServedPlan:
    profile = stack.profiles[m.profile]
    facts = _facts(m)
    # Capacity decides the served context (shrunk to fit when the spec sets none) and the GPUs per
    # replica (the smallest tensor parallel size that fits when the spec sets none).
    sized = sizing(stack, m, at)
    context, gpus = sized.context, sized.gpus
    memory_gib = _quantity_gib(profile.memory)
    weights = _weights_gib(m, facts)
    env: dict[str, str | SecretRef] = {}
    image = m.image
    if isinstance(m, VllmModel):
        # PyTorch puts tensor-parallel traffic through /dev/shm; it is memory-backed and counts against the
        # pod's memory limit, so size it with the GPU count and cap it at a quarter of the pod's memory.
        shm = max(1, min(2 * max(gpus, 1), int(memory_gib // 4)))
        parser = (m.toolCallParser or (facts.tool_parser if facts else None)) if m.toolCalling else None
        upstream = m.name
        if not profile.gpu:
            image = image or VLLM_CPU_IMAGE
            env["VLLM_CPU_KVCACHE_SPACE"] = str(_cpu_kv_space_gib(m, profile))
    else:
        shm = 0
        parser = None
        upstream = m.model
    env.update(m.env)
    cache_gib = math.ceil(max(10.0, 1.5 * weights)) if weights else 50
    # Thirty minutes for start-up, plus a minute per GiB of weights to download and load.
    startup = 180 + 6 * math.ceil(weights or 0)
    return ServedPlan(
        # The chart's contract (values.yaml): a model's Service is <fullname>-<key>, port 80 whatever the
        # engine's port; the chart tests check that every such URL names a Service it renders.
        name=m.name, engine=m.engine, spec=m, profile=profile, url=f"http://{fullname}-{m.name}/v1", upstream_model=upstream, facts=facts, context_length=context,
        tool_parser=parser, gpus=gpus, shm_gib=shm, cache_size=m.cache.size or f"{cache_gib}Gi",
        startup_failure_threshold=startup, image=image, env=env, sizing=sized,
        # A pod holding GPUs rolls in place: a surge pod would wait for a GPU that a full pool never frees,
        # and the rollout would hang. CPU-only pods surge, so capacity never drops.
        surge=gpus == 0,
    )


def _external(m: ExternalModel) -> ExternalPlan:
    provider = m.provider or "openai-compatible"
    model_id = m.model or m.name
    return ExternalPlan(
        name=m.name, spec=m, provider=provider, litellm_model=f"{PROVIDER_PREFIX[provider]}/{model_id}",
        base_url=m.baseUrl, api_key_env=api_key_env_name(m.name) if m.apiKey else None,
    )


def plan(stack: Stack, enforce_capacity: bool = True) -> Plan:
    """Check the spec's cross-field rules and resolve every decision; raises StackgenError. Without
    `enforce_capacity` a model that does not fit is planned anyway, its sizing saying why (`stackgen plan`)."""
    problems = check(stack, with_capacity=enforce_capacity)
    if problems:
        raise StackgenError(problems)
    fullname = stack.name
    master = stack.gateway.masterKey or SecretRef(secretName=f"{stack.name}-litellm-master-key", key="master-key")
    served = tuple(_served(stack, fullname, m, f"models[{i}]") for i, m in enumerate(stack.models)
                   if isinstance(m, (VllmModel, OllamaModel)))
    external = tuple(_external(m) for m in stack.models if isinstance(m, ExternalModel))
    return Plan(stack=stack, fullname=fullname, gateway_service=f"{fullname}-gateway", master_key=master,
                served=served, external=external)
