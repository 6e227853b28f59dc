"""Ollama: quantised models from Ollama's library or a registry mirror, pulled by an init container before the
server starts, on NVIDIA, AMD or CPU nodes. The chart's template is `_engine-ollama.tpl`."""

from __future__ import annotations

import re
from typing import Literal

from pydantic import Field, field_validator

from .. import catalog, grammars
from ..capacity import GIB, Sizing
from ..errors import Problem
from ..specbase import Mirror, Profile, ServedModel, checked
from .base import (
    AMD,
    CPU,
    NVIDIA,
    Capabilities,
    Download,
    EngineValues,
    PreallocatingEngine,
    Server,
    Since,
    capabilities,
    described,
)

VERSION = "0.17.4"  # versions.yaml: ollama
LIBRARY = "registry.ollama.ai"  # where a name without a registry is pulled from
# Ollama's ROCm build is the same image with a -rocm tag; the default image serves NVIDIA and CPU.
ROCM_IMAGE = f"ollama/ollama:{VERSION}-rocm"
# Ollama unloads a model idle for 5 minutes, and the next agent call pays the load again. A stackgen pod
# serves one model and nothing else, so it keeps that model loaded for ever unless the spec says otherwise.
KEEP_ALIVE = "-1"
# An estimate, not a measurement: Ollama's runner (compute graph, plus the CUDA context on a GPU).
OVERHEAD_GIB = 1.0
KV_BYTES = {"f16": 2.0, "q8_0": 1.0, "q4_0": 0.5}  # OLLAMA_KV_CACHE_TYPE -> bytes per value
# What Ollama reads as OLLAMA_KEEP_ALIVE: a Go duration, or whole seconds; negative is for ever. Anything
# else it silently replaces with 5 minutes, so stackgen refuses it instead.
KEEP_ALIVE_GRAMMAR = re.compile(r"^(-?[0-9]+|-?([0-9]+(\.[0-9]+)?(ns|us|µs|ms|s|m|h))+)$")


class OllamaModel(ServedModel):
    engine: Literal["ollama"]
    keepAlive: str | None = Field(
        default=None, description="OLLAMA_KEEP_ALIVE, e.g. 24h; default -1: the pod serves this model alone, so it stays loaded."
    )
    insecureRegistry: bool = Field(
        default=False,
        description="Pull over plain HTTP (`ollama pull --insecure`): for a registry mirror without TLS, named in "
        "`model` as host[:port]/namespace/model:tag.",
    )

    @field_validator("model")
    @classmethod
    def _name(cls, value: str) -> str:
        return checked(value, grammars.ollama_name(value), "an Ollama model name", grammars.OLLAMA_EXAMPLE)

    @field_validator("keepAlive")
    @classmethod
    def _duration(cls, value: str | None) -> str | None:
        if value is not None and not KEEP_ALIVE_GRAMMAR.match(value):
            raise ValueError(f"{value!r} is not a duration Ollama reads, and it would quietly use 5m instead "
                             "(write e.g. 30m, 24h, 3600 for seconds, or -1 to keep the model loaded)")
        return value


class OllamaValues(EngineValues):
    """Ollama settings; unset ones keep Ollama's defaults."""

    contextLength: int | None = Field(default=None, ge=1, description="`OLLAMA_CONTEXT_LENGTH`: context length in tokens.")
    keepAlive: str | int | None = Field(
        default=None, description="`OLLAMA_KEEP_ALIVE`: how long the model stays loaded, e.g. `30m`, or `-1` for ever.")
    insecure: bool | None = Field(
        default=None, json_schema_extra={"chartDefault": "`false`"},
        description="Pull with `ollama pull --insecure`: plain HTTP, for a registry mirror without TLS named in `model` "
        "(`host:port/library/qwen2.5:0.5b`).")


def _env_str(m: ServedModel, name: str) -> str | None:
    value = m.env.get(name)
    return value if isinstance(value, str) else None


class Ollama(PreallocatingEngine[OllamaModel]):
    name = "ollama"
    spec = OllamaModel
    values = OllamaValues
    default_image = f"ollama/ollama:{VERSION}"
    image_doc = "Ollama's server, for NVIDIA GPUs and CPU nodes (stackgen sets the ROCm image per model)."
    runtime = "Ollama"
    overhead_gib = OVERHEAD_GIB
    images = {NVIDIA: None, CPU: None, AMD: ROCM_IMAGE}
    # Ollama's releases: OLLAMA_KEEP_ALIVE came with 0.1.29 (#3094), OLLAMA_CONTEXT_LENGTH with 0.5.13 (#8938); an
    # older server ignores them and serves 2048 tokens of context.
    needs = (Since("OLLAMA_KEEP_ALIVE", "0.1.29", "keepAlive"), Since("OLLAMA_CONTEXT_LENGTH", "0.5.13", "contextLength"))
    no_adapters = ("Ollama takes an adapter only through `ollama create` with a Modelfile ADAPTER line, which the "
                   "chart does not run, and no adapter has been proven on the pinned Ollama")

    def facts(self, m: OllamaModel) -> catalog.ModelFacts | None:
        return catalog.ollama_model(m.model)

    def weights_gib(self, m: OllamaModel) -> float | None:
        """The library's quantised download, not the architecture's bf16 size."""
        tag = catalog.ollama_tag(m.model)
        return tag.size_gb * 1e9 / GIB if tag else None

    def check_model(self, m: OllamaModel, profile: Profile | None, at: str) -> list[Problem]:
        problems = []
        tag = catalog.ollama_tag(m.model)
        if m.toolCalling and tag and not tag.tools:
            problems.append(Problem(f"{at}.toolCalling", f"Ollama lists no tool support for {m.model}",
                                    "remove toolCalling or pick a model with tools (qwen2.5, llama3.1, mistral)"))
        if m.insecureRegistry and not catalog.ollama_registry(m.model):
            problems.append(Problem(f"{at}.insecureRegistry", f"{m.model} names no registry, and Ollama's own library "
                                    "is only served over HTTPS", "name the mirror in model, e.g. "
                                    "registry.internal:5000/library/qwen2.5:0.5b, or remove insecureRegistry"))
        if m.replicas > 1 and m.cache.type == "persistentVolumeClaim":
            problems.append(Problem(f"{at}.cache.type", "replicas of an Ollama model cannot share one ReadWriteOnce volume",
                                    "use cache.type: emptyDir, or replicas: 1"))
        return problems

    def kv_bytes(self, m: OllamaModel) -> float:
        return KV_BYTES.get(_env_str(m, "OLLAMA_KV_CACHE_TYPE") or "f16", 2.0)

    def slots(self, m: OllamaModel) -> int:
        parallel = _env_str(m, "OLLAMA_NUM_PARALLEL") or "1"
        return int(parallel) if parallel.isdigit() and int(parallel) > 0 else 1

    def server(self, m: OllamaModel, profile: Profile, sized: Sizing) -> Server:
        return Server(OllamaValues(contextLength=sized.context or None, keepAlive=m.keepAlive or KEEP_ALIVE,
                                   insecure=m.insecureRegistry or None))

    def downloads(self, m: OllamaModel) -> tuple[Download, ...]:
        """The model, named with its registry and namespace (qwen2.5:0.5b is registry.ollama.ai/library/qwen2.5:0.5b)."""
        registry = catalog.ollama_registry(m.model)
        name = m.model if registry else f"{LIBRARY}/{m.model if '/' in m.model else 'library/' + m.model}"
        origin = (registry or LIBRARY) + (" over plain HTTP" if m.insecureRegistry else "")
        return (Download("ollama", name, "model", origin),)

    def check_mirror(self, m: OllamaModel, mirror: Mirror, at: str) -> list[Problem]:
        problems = []
        host = mirror.registry.split("/", 1)[0]
        if (named := catalog.ollama_registry(m.model)) and named != host:
            problems.append(Problem(f"{at}.model", f"{m.model} is pulled from {named}, not from the mirror {host}",
                                    "name the model as in Ollama's library (e.g. qwen2.5:0.5b): the mirror's "
                                    "registry is used"))
        if "/" in mirror.registry:
            problems.append(Problem("mirror.registry", f"Ollama names a model host/namespace/model, so it cannot pull "
                                    f"from {mirror.registry}, a registry with a path", "name a host[:port] alone"))
        return problems

    def mirrored(self, m: OllamaModel, mirror: Mirror) -> OllamaModel:
        """A library name read from the mirror: qwen2.5:0.5b as <registry>/library/qwen2.5:0.5b; a name that
        already names a registry is left as written (the plan refuses another registry than the mirror)."""
        if catalog.ollama_registry(m.model):
            return m
        name = m.model if "/" in m.model else f"library/{m.model}"
        return m.model_copy(update={"model": f"{mirror.registry}/{name}",
                                    "insecureRegistry": m.insecureRegistry or mirror.insecure})

    def upstream(self, m: OllamaModel) -> str:
        """The Ollama name itself: Ollama serves models by the name they were pulled as."""
        return m.model

    def capabilities(self, m: OllamaModel) -> Capabilities:
        family, vision = described(m, self.facts(m))
        # Ollama honours response_format json_object; json_schema is not guaranteed through its /v1 API.
        return capabilities(m, family, vision, json_output=True, structured=False)


ENGINE = Ollama()
