"""llama.cpp (`llama-server`): a GGUF from a Hugging Face repository, the usual choice for CPU nodes and small
GPUs. The official server image downloads the file at start (`--hf-repo`, `--hf-file`) into the cache
volume. The chart's template is `_engine-llamacpp.tpl`."""

from __future__ import annotations

import re
from typing import Any, Literal

from pydantic import Field

from .. import capacity, catalog
from ..capacity import GIB, Capacity, MemoryModel, Sizing
from ..errors import Problem
from ..specbase import OptionalSecret, Profile, ServedModel
from .base import AMD, CPU, NVIDIA, Server, ServedEngine, capabilities

BUILD = "b11549"  # versions.yaml: xllamacpp, whose version ends in the llama.cpp build it carries
# The official images of that build, per accelerator; the CPU one is the chart's default.
IMAGE = "ghcr.io/ggml-org/llama.cpp"
DEFAULT_CONTEXT = 8192  # the KV cache is allocated up front, as with Ollama
OVERHEAD_GIB = 0.5  # an estimate: compute buffers beside weights and KV cache
# Bits per weight of the common GGUF quantisations (llama.cpp's own quantize table, rounded up); the
# file name says which one a file holds.
QUANT_BITS = {"q2_k": 2.7, "q3_k_s": 3.5, "q3_k_m": 3.9, "q3_k_l": 4.3, "q4_0": 4.6, "q4_k_s": 4.6, "q4_k_m": 4.9,
              "q5_0": 5.5, "q5_k_s": 5.6, "q5_k_m": 5.7, "q6_k": 6.6, "q8_0": 8.5, "f16": 16.0, "bf16": 16.0}


class LlamacppModel(ServedModel):
    engine: Literal["llamacpp"]
    file: str = Field(pattern=r"^[^\s]+\.gguf$", description="The GGUF file in the repository named by model.")
    parallel: int = Field(default=1, ge=1, le=64, description="--parallel: requests served at once, each with the whole context.")
    hfToken: OptionalSecret = Field(default=None, description="Hugging Face token for gated repositories.")


def base_model(repo: str) -> catalog.ModelFacts | None:
    """The catalogued model a GGUF repository quantises: `<org>/<Name>-GGUF` holds `<Name>`."""
    name = re.sub(r"-gguf$", "", repo.rsplit("/", 1)[-1], flags=re.IGNORECASE).lower()
    return next((f for f in catalog.HF_MODELS.values() if f.hf_id.lower().rsplit("/", 1)[-1] == name), None)


def quant_bits(file: str) -> float | None:
    stem = file.lower().removesuffix(".gguf")
    return next((bits for q, bits in sorted(QUANT_BITS.items(), key=lambda kv: -len(kv[0])) if stem.endswith(q)), None)


class Llamacpp(ServedEngine):
    name = "llamacpp"
    spec = LlamacppModel
    images = {CPU: None, NVIDIA: f"{IMAGE}:server-cuda-{BUILD}", AMD: f"{IMAGE}:server-rocm-{BUILD}"}

    def facts(self, m: ServedModel) -> catalog.ModelFacts | None:
        return base_model(m.model)

    def weights_gib(self, m: ServedModel) -> float | None:
        assert isinstance(m, LlamacppModel)
        facts, bits = self.facts(m), quant_bits(m.file)
        return facts.params_b * 1e9 * bits / 8 / GIB if facts and bits else None

    def check_model(self, m: ServedModel, profile: Profile | None, at: str) -> list[Problem]:
        facts = self.facts(m)
        if m.toolCalling and facts and not facts.tool_parser:
            return [Problem(f"{at}.toolCalling", f"{facts.hf_id} has no tool-call format in its chat template",
                            "remove toolCalling or pick a model with tools (Qwen 2.5/3, Llama 3.x, Mistral)")]
        return []

    def _context(self, m: ServedModel) -> tuple[int | None, int]:
        facts = self.facts(m)
        native = facts.context_length if facts else None
        return native, min(native or DEFAULT_CONTEXT, DEFAULT_CONTEXT)

    def sizing(self, m: ServedModel, profile: Profile, at: str) -> Sizing:
        assert isinstance(m, LlamacppModel)
        gpu, facts, weights = profile.gpu, self.facts(m), self.weights_gib(m)
        native, default = self._context(m)
        gpus = 1 if gpu else 0
        if facts is None or native is None or weights is None:
            return capacity.unknown("not in the catalog", gpus, m.contextLength or default)
        if gpu is not None and gpu.memoryGiB is None:
            return capacity.unknown("set gpu.memoryGiB", gpus, m.contextLength or default)
        device: Literal["gpu", "cpu"] = "gpu" if gpu else "cpu"
        total = gpu.memoryGiB if gpu and gpu.memoryGiB else capacity.quantity_gib(profile.memory)

        def refusal(cap: Capacity, longest: int, min_tp: int | None) -> Problem:
            return capacity.preallocated_refusal(f"{m.model}/{m.file}", "llama.cpp", profile.memory, m.contextLength,
                                                 cap, longest, at)

        return capacity.size(MemoryModel(
            at=lambda tp, ctx: capacity.preallocated(facts, weights, 2.0, OVERHEAD_GIB, device, total, m.parallel, ctx),
            native=native, default_context=default, requested=m.contextLength, context_key="contextLength",
            refusal=refusal, gpus_per_replica=gpus))

    def server(self, m: ServedModel, profile: Profile, sized: Sizing) -> Server:
        assert isinstance(m, LlamacppModel)
        settings: dict[str, Any] = {"file": m.file, "parallel": m.parallel}
        if sized.context:
            # llama-server splits --ctx-size among its slots: each slot gets the whole context.
            settings["ctxSize"] = sized.context * m.parallel
        # Every layer on the GPU when there is one; none on a CPU node.
        settings["gpuLayers"] = 999 if profile.gpu else 0
        if m.toolCalling:
            settings["jinja"] = True  # tool calls are parsed through the model's own chat template
        values: dict[str, Any] = {"llamacpp": settings}
        if m.hfToken:
            values["hfTokenSecret"] = m.hfToken.model_dump()
        # The chart starts llama-server with --alias <name>, the id the gateway asks for.
        return Server(values, upstream=m.name)

    def capabilities(self, m: ServedModel) -> dict[str, Any]:
        facts = self.facts(m)
        family = m.family or (facts.family if facts else "unknown")
        vision = m.vision if m.vision is not None else False  # a vision GGUF needs its projector file too
        # response_format json_object and json_schema are enforced with a grammar.
        return capabilities(m, family, vision, json_output=True, structured=True)


ENGINE = Llamacpp()
