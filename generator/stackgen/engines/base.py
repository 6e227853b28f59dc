"""What every engine answers, so that the stages (plan, values, gateway, agents) never ask which engine they
hold.

Every engine, in the cluster or not, answers one interface (`Engine`): its spec model, its checks, the route
the gateway takes to it and what the model can do (`Capabilities`). An in-cluster engine (`ServedEngine`) runs
a model server in a pod of the chart and also knows its image for each accelerator, its memory model, and its
own section of the chart's values, a typed model (`EngineValues`) that `charts/inference-stack/templates/
_engine-<name>.tpl` turns into command, args, env, port and probes. That model and the engine's default image
generate the chart's values.schema.json engine sections and values.yaml's image defaults (stackgen.chartgen,
`make chart`); a test fails if the chart's files differ from what they generate.

Adding an engine: its module here, listed in `ENGINES` (engines/__init__.py); its `_engine-<name>.tpl` in the
chart; its row in tests/test_engines.py; then `make chart` and `make manifests`. An engine the tests run for
real also needs its installer under scripts/engines/ and its pin in versions.yaml (docs/testing.md).
"""

from __future__ import annotations

import re
from abc import ABC, abstractmethod
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, ClassVar, Generic, Literal, TypeVar

from pydantic import BaseModel, ConfigDict

from .. import capacity, catalog
from ..capacity import Capacity, MemoryModel, Sizing
from ..errors import Problem
from ..specbase import Mirror, ModelCommon, Profile, SecretRef, ServedModel

# Accelerators stackgen knows images for, by the vendor of the profile's GPU resource (MIG slices are
# NVIDIA's). A resource of any other vendor has no known image: the spec must name one.
CPU, NVIDIA, AMD = "cpu", "nvidia", "amd"
GPU_VENDORS = {"nvidia.com": NVIDIA, "amd.com": AMD}


def accelerator(profile: Profile) -> str | None:
    """cpu, nvidia or amd; None for a GPU resource of a vendor no engine has images for."""
    if profile.gpu is None:
        return CPU
    return GPU_VENDORS.get(profile.gpu.resource.split("/", 1)[0])


class EngineValues(BaseModel):
    """An engine's own section of `models.<name>` in the chart's values (`models.<name>.<engine>`). Each field's
    type, bounds and description are the chart's schema for it (stackgen.chartgen); unset fields are left out."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    def chart(self) -> dict[str, Any]:
        return self.model_dump(exclude_none=True)


@dataclass(frozen=True)
class Server:
    """What an engine decides for one in-cluster model, beyond what every model server shares."""

    settings: EngineValues  # the chart's models.<name>.<engine>
    env: Mapping[str, str | SecretRef] = field(default_factory=dict)  # defaults; the spec's env goes over them
    shm_size: str | None = None  # models.<name>.shmSize: a memory-backed /dev/shm
    hf_token: SecretRef | None = None  # models.<name>.hfTokenSecret: the Hugging Face token of a gated model


@dataclass(frozen=True)
class Since:
    """A flag or env var the chart renders that older releases of the engine lack, and the first release with it.
    `field`: rendered when that field of the engine's values is set; None: always."""

    flag: str
    release: str  # as the engine's image tags write it: 0.18.0, b4524
    field: str | None = None


@dataclass(frozen=True)
class Download:
    """Something a server fetches when it starts: a Hugging Face repository, or an Ollama model."""

    source: Literal["huggingface", "ollama"]
    ref: str  # the repository id (and file), or the Ollama model with its registry
    at: str  # the spec field that names it, under the model: model, adapters[0].source
    origin: str | None = None  # where from, when the engine alone knows (an Ollama registry); None: the Hub


@dataclass(frozen=True)
class Capabilities:
    """What a model can do, in no framework's terms; each agent framework writes it in its own words. Family
    names follow AutoGen's ModelFamily (qwen, llama, r1, mistral, unknown, ...), the one framework that asks."""

    family: str
    tools: bool  # function calling
    vision: bool  # image input
    json_output: bool  # response_format json_object is honoured
    structured_output: bool  # response_format json_schema is honoured


def capabilities(m: ModelCommon, family: str, vision: bool, json_output: bool, structured: bool) -> Capabilities:
    return Capabilities(family=family, tools=m.toolCalling, vision=vision, json_output=json_output,
                        structured_output=structured)


def described(m: ServedModel, facts: catalog.ModelFacts | None) -> tuple[str, bool]:
    """AutoGen family and vision: the spec's word for an uncatalogued model, else the catalog's."""
    family = m.family or (facts.family if facts else "unknown")
    vision = m.vision if m.vision is not None else bool(facts and facts.vision)
    return family, vision


@dataclass(frozen=True)
class EngineMetrics:
    """Prometheus series a model server exports (names as scraped), each labelled with the served model's
    name (`model_name`)."""

    queue: str  # gauge: requests waiting for a slot (what autoscaling reads)
    running: str  # gauge: requests being served
    kv_cache_usage: str  # gauge, 0 to 1
    ttft: str  # histogram of the time to first token, seconds (the base name, before _bucket)
    generation_tokens: str  # counter of generated tokens
    requests: str  # counter of finished requests
    prefix_cache_hits: str  # counter of prompt tokens found in the prefix cache
    prefix_cache_queries: str  # counter of prompt tokens looked up in it


M = TypeVar("M", bound=ModelCommon)
S = TypeVar("S", bound=ServedModel)


class Engine(ABC, Generic[M]):
    """One kind of model endpoint, for models of its spec model `M` (`spec`). Subclasses set the class
    attributes. The stages reach an engine through `engine_of(model)`, which only ever pairs a model with its
    own engine."""

    name: ClassVar[str]
    spec: ClassVar[type[ModelCommon]]
    in_cluster: ClassVar[bool]

    @abstractmethod
    def check(self, m: M, profile: Profile | None, at: str) -> list[Problem]:
        """Every problem of the model: `profile` is its profile for an in-cluster engine (None: it has none, or
        names one that does not exist), and None for every model outside the cluster."""

    @abstractmethod
    def route(self, m: M) -> str:
        """The LiteLLM model the gateway calls: a provider prefix and the model id the server knows."""

    @abstractmethod
    def capabilities(self, m: M) -> Capabilities:
        """What the model can do on this engine."""


class ServedEngine(Engine[S]):
    """A model server the chart runs. `images` maps an accelerator to the image for it; None means the
    chart's default image for the engine (`images.<name>` in values.yaml, which is `default_image`)."""

    in_cluster = True
    values: ClassVar[type[EngineValues]]  # its section of the chart's models.<name>
    default_image: ClassVar[str | None]  # the chart's images.<name>; None: the spec always names the image
    image_doc: ClassVar[str] = ""  # what values.yaml and the schema say of that default image
    images: ClassVar[Mapping[str, str | None]]
    # The LiteLLM provider prefix the gateway speaks to the server with.
    provider: ClassVar[str] = "openai"
    # What the server exports on its serving port's /metrics; None: nothing to scrape, alert on or scale on
    # (the gateway's own metrics still cover the model).
    metrics: ClassVar[EngineMetrics | None] = None
    # Whether its replicas can sit behind the router (stackgen.routing): the router speaks to them as to vLLM
    # (its health and model endpoints), and is proven only on that.
    routable: ClassVar[bool] = False
    # Why the engine does not serve LoRA adapters (`adapters` in the spec); None: it does.
    no_adapters: ClassVar[str | None] = "stackgen does not load adapters into it"
    # What a user must know of its pod running as the chart's non-root user on a read-only root filesystem
    # (the restricted Pod Security level); None: proven here on the engine's own server.
    restricted_note: ClassVar[str | None] = None
    # The environment variable the server reads the Hugging Face endpoint from, for its Hub downloads; the plan
    # points it at `mirror.huggingFace`.
    hub_endpoint_env: ClassVar[str | None] = None
    # Whether its image can fill a cache volume with its Hub downloads before the servers start (`cache.preload`,
    # the chart's inference-stack.<engine>.preload), which then read it with HF_HUB_OFFLINE.
    preloads: ClassVar[bool] = False
    # What the render needs of an image the spec names instead of the engine's own (`image`), and how its tag
    # writes the release: a pattern whose groups are the release's numbers. A tag it does not match (a digest,
    # `latest`, a build of one's own) is not judged.
    needs: ClassVar[tuple[Since, ...]] = ()
    # What a wake from zero replicas costs beside the weights (stackgen.wake's estimate), by accelerator: the size in
    # GiB of its own image as a node pulls it, and the seconds its server takes to become ready, reading the weights
    # excepted. An accelerator absent: unknown, and the estimate says so.
    image_gib: ClassVar[Mapping[str, float]] = {}
    start_seconds: ClassVar[Mapping[str, int]] = {}
    release_tag: ClassVar[str] = r"^v?(\d+)\.(\d+)\.(\d+)"

    def release_of(self, text: str) -> tuple[int, ...] | None:
        """The release an image tag or a `Since.release` names; None if it names none."""
        found = re.search(self.release_tag, text)
        return tuple(int(g) for g in found.groups()) if found else None

    def check_image(self, m: S, profile: Profile, settings: EngineValues, at: str) -> list[Problem]:
        """An image override older than a flag the render uses would fail to start, or quietly ignore it."""
        tag = m.image.rpartition(":")[2] if m.image and "@" not in m.image and ":" in m.image.rsplit("/", 1)[-1] else ""
        running = self.release_of(tag)
        if running is None:
            return []
        used = settings.chart()
        late = sorted((n for n in self.needs if (n.field is None or n.field in used)
                       and running < (self.release_of(n.release) or ())),
                      key=lambda n: self.release_of(n.release) or (), reverse=True)
        own = self.images.get(accelerator(profile) or "") or self.default_image
        return [Problem(f"{at}.image", f"{m.image} runs {self.name} {tag}, older than {n.release}, the first release "
                        f"with {n.flag}, which the chart renders for this model",
                        f"use {self.name} {n.release} or later, e.g. {own}")
                for n in late[:1]]

    def group_size(self, m: S) -> int:
        """The pods one replica spans (a LeaderWorkerSet group, the chart's models.<name>.group); 1: one pod."""
        return 1

    def downloads(self, m: S) -> tuple[Download, ...]:
        """What the server fetches when it starts; empty for one that brings its own files."""
        return ()

    def mirrored(self, m: S, mirror: Mirror) -> S:
        """The model as its server fetches it from the cluster's mirrors (`downloads` says what it fetches)."""
        return m

    def check_mirror(self, m: S, mirror: Mirror, at: str) -> list[Problem]:
        """Every download comes from the mirrors, or the stack is refused: an air-gapped cluster would otherwise
        wait out a start-up probe on a download that cannot happen. A Hub download needs the Hub mirror,
        unless the cache is filled some other way (HF_HUB_OFFLINE)."""
        if mirror.huggingFace or m.env.get("HF_HUB_OFFLINE") == "1":
            return []
        return [Problem(f"{at}.{d.at}", f"{self.name} downloads {d.ref} from the Hugging Face Hub when it starts, and "
                        "the mirror names no Hub mirror", "set mirror.huggingFace, or fill the model's cache "
                        "beforehand and set env HF_HUB_OFFLINE: '1'")
                for d in self.downloads(m) if d.source == "huggingface"]

    def facts(self, m: S) -> catalog.ModelFacts | None:
        """The catalog's facts of the architecture served, if known."""
        return None

    def weights_gib(self, m: S) -> float | None:
        """What is downloaded and loaded, for the cache volume and the start-up budget."""
        facts = self.facts(m)
        return capacity.weight_gib(facts) if facts else None

    def check(self, m: S, profile: Profile | None, at: str) -> list[Problem]:
        problems = []
        if profile is not None and not m.image:
            where = accelerator(profile)
            if where not in self.images:
                resource = profile.gpu.resource if profile.gpu else "cpu"
                problems.append(Problem(
                    f"{at}.image", f"stackgen knows no {self.name} image for {resource}",
                    f"set image to a {self.name} build for that accelerator, or use a profile with "
                    f"{' or '.join(sorted(r for r, v in GPU_VENDORS.items() if v in self.images))} GPUs"))
        return problems + self.check_model(m, profile, at)

    def check_model(self, m: S, profile: Profile | None, at: str) -> list[Problem]:
        return []

    def image(self, m: S, profile: Profile) -> str | None:
        """The image to run (None: the chart's default); `check` has refused an unknown accelerator."""
        return m.image or self.images.get(accelerator(profile) or "")

    @abstractmethod
    def sizing(self, m: S, profile: Profile, at: str) -> Sizing:
        """Memory, context and GPUs of one replica on the profile, and why it does (not) fit."""

    @abstractmethod
    def server(self, m: S, profile: Profile, sized: Sizing) -> Server:
        """The engine's values and env."""

    def route(self, m: S) -> str:
        return f"{self.provider}/{self.upstream(m)}"

    def upstream(self, m: S) -> str:
        """The model id the gateway sends the server: the spec's name, which the chart makes the server answer
        to, unless the engine says otherwise."""
        return m.name


class PreallocatingEngine(ServedEngine[S]):
    """A server that allocates the KV cache of every slot for the whole context when it starts (Ollama,
    llama.cpp): it serves at most `default_context` unless the spec asks for more, since a model's full
    128K would not fit a small pod."""

    default_context: ClassVar[int] = 8192
    overhead_gib: ClassVar[float]  # an estimate: the runtime beside weights and KV cache
    runtime: ClassVar[str]  # its name in refusals

    def slots(self, m: S) -> int:
        return 1

    def kv_bytes(self, m: S) -> float:
        return 2.0

    def sizing(self, m: S, profile: Profile, at: str) -> Sizing:
        gpu, facts, weights = profile.gpu, self.facts(m), self.weights_gib(m)
        native = facts.context_length if facts else None
        default = min(native or self.default_context, self.default_context)
        gpus = 1 if gpu else 0
        if facts is None or native is None or weights is None:
            return capacity.unknown("not in the catalog", gpus, m.contextLength or default)
        if gpu is not None and gpu.memoryGiB is None:
            return capacity.unknown("set gpu.memoryGiB", gpus, m.contextLength or default)
        device: Literal["gpu", "cpu"] = "gpu" if gpu else "cpu"
        total = gpu.memoryGiB if gpu and gpu.memoryGiB else capacity.quantity_gib(profile.memory)
        kv_bytes, slots, served = self.kv_bytes(m), self.slots(m), self.served_name(m)

        def refusal(cap: Capacity, longest: int, min_tp: int | None) -> Problem:
            return capacity.preallocated_refusal(served, self.runtime, profile.memory, m.contextLength, cap, longest, at)

        return capacity.size(MemoryModel(
            at=lambda tp, ctx: capacity.preallocated(facts, weights, kv_bytes, self.overhead_gib, device, total, slots, ctx),
            native=native, default_context=default, requested=m.contextLength, context_key="contextLength",
            refusal=refusal, gpus_per_replica=gpus))

    def served_name(self, m: S) -> str:
        """The model as refusals name it."""
        return m.model
