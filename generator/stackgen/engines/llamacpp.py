"""llama.cpp (`llama-server`): a GGUF from a Hugging Face repository, the usual choice for CPU nodes and small
GPUs. The official server image downloads the file at start (`--hf-repo`, `--hf-file`) into the cache
volume. The chart's template is `_engine-llamacpp.tpl`."""

from __future__ import annotations

import re
from typing import Literal

from pydantic import Field, field_validator

from .. import catalog, grammars
from ..capacity import GIB, Sizing
from ..errors import Problem
from ..specbase import GGUF_FILE, OptionalSecret, Profile, ServedModel, checked
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

BUILD = "b11549"  # versions.yaml: xllamacpp, whose version ends in the llama.cpp build it carries
# The official images of that build, per accelerator; the CPU one is the chart's default.
IMAGE = "ghcr.io/ggml-org/llama.cpp"
OVERHEAD_GIB = 0.5  # an estimate: compute buffers beside weights and KV cache
# Bits per weight of the common GGUF quantisations (llama.cpp's own quantize table, rounded up); the
# file name says which one a file holds.
QUANT_BITS = {"q2_k": 2.7, "q3_k_s": 3.5, "q3_k_m": 3.9, "q3_k_l": 4.3, "q4_0": 4.6, "q4_k_s": 4.6, "q4_k_m": 4.9,
              "q5_0": 5.5, "q5_k_s": 5.6, "q5_k_m": 5.7, "q6_k": 6.6, "q8_0": 8.5, "f16": 16.0, "bf16": 16.0}


class LlamacppModel(ServedModel):
    engine: Literal["llamacpp"]
    file: str = Field(pattern=GGUF_FILE, description="The GGUF file in the repository named by model.")
    parallel: int = Field(default=1, ge=1, le=64, description="--parallel: requests served at once, each with the whole context.")
    hfToken: OptionalSecret = Field(default=None, description="Hugging Face token for gated repositories.")

    @field_validator("model")
    @classmethod
    def _repo(cls, value: str) -> str:
        return checked(value, grammars.hf_repo(value), "a Hugging Face repository", "Qwen/Qwen2.5-0.5B-Instruct-GGUF")


class LlamacppValues(EngineValues):
    """llama.cpp settings; the GGUF is downloaded from the Hugging Face repository `model` into the cache volume
    at start."""

    file: str = Field(pattern=GGUF_FILE, description="`--hf-file`: the GGUF in that repository.")
    parallel: int | None = Field(default=None, ge=1, json_schema_extra={"chartDefault": "`1`"},
                                 description="`--parallel`: requests served at once.")
    ctxSize: int | None = Field(default=None, ge=1, json_schema_extra={"chartDefault": "llama.cpp's"},
                                description="`--ctx-size`: the context of all slots together.")
    gpuLayers: int | None = Field(default=None, ge=0, json_schema_extra={"chartDefault": "`0`"},
                                  description="`--n-gpu-layers`: layers on the GPU.")
    jinja: bool | None = Field(default=None, json_schema_extra={"chartDefault": "`false`"},
                               description="`--jinja`: the model's own chat template, which tool calls need.")


def base_model(repo: str) -> catalog.ModelFacts | None:
    """The catalogued model a GGUF repository quantises: `<org>/<Name>-GGUF` holds `<Name>`."""
    name = re.sub(r"-gguf$", "", repo.rsplit("/", 1)[-1], flags=re.IGNORECASE).lower()
    return next((f for f in catalog.HF_MODELS.values() if f.hf_id.lower().rsplit("/", 1)[-1] == name), None)


def quant_bits(file: str) -> float | None:
    stem = file.lower().removesuffix(".gguf")
    return next((bits for q, bits in sorted(QUANT_BITS.items(), key=lambda kv: -len(kv[0])) if stem.endswith(q)), None)


class Llamacpp(PreallocatingEngine[LlamacppModel]):
    name = "llamacpp"
    spec = LlamacppModel
    values = LlamacppValues
    default_image = f"{IMAGE}:server-{BUILD}"
    image_doc = ("llama.cpp's server (llama-server), for CPU nodes (stackgen sets the -cuda and -rocm builds of the "
                 "same release per model on GPU profiles).")
    runtime = "llama.cpp"
    overhead_gib = OVERHEAD_GIB
    images = {CPU: None, NVIDIA: f"{IMAGE}:server-cuda-{BUILD}", AMD: f"{IMAGE}:server-rocm-{BUILD}"}
    # llama.cpp's builds: the Hub cache directory LLAMA_CACHE came with b2956 (#7353; older builds ignore it and
    # download again at every start), --jinja with b4524 (#11016). Its image tags end in the build: server-b4524.
    needs = (Since("LLAMA_CACHE", "b2956"), Since("--jinja", "b4524", "jinja"))
    release_tag = r"(?:^|-)b(\d+)$"
    hub_endpoint_env = "HF_ENDPOINT"  # what llama-server b11549 reads for its --hf-repo downloads
    restricted_note = ("llama-server runs as the chart's non-root user (values: podSecurity) on a read-only root "
                       "filesystem, writing only to its cache volume, HOME and /tmp; the tests here "
                       "run it so only as a process, not from its image on a node")
    no_adapters = ("llama-server takes GGUF adapters with --lora, which the chart does not render, and no adapter has "
                   "been proven on the pinned build")

    def facts(self, m: LlamacppModel) -> catalog.ModelFacts | None:
        return base_model(m.model)

    def weights_gib(self, m: LlamacppModel) -> float | None:
        facts, bits = self.facts(m), quant_bits(m.file)
        return facts.params_b * 1e9 * bits / 8 / GIB if facts and bits else None

    def check_model(self, m: LlamacppModel, profile: Profile | None, at: str) -> list[Problem]:
        facts = self.facts(m)
        if m.toolCalling and facts and not facts.tool_parser:
            return [Problem(f"{at}.toolCalling", f"{facts.hf_id} has no tool-call format in its chat template",
                            "remove toolCalling or pick a model with tools (Qwen 2.5/3, Llama 3.x, Mistral)")]
        return []

    def slots(self, m: LlamacppModel) -> int:
        return m.parallel

    def served_name(self, m: LlamacppModel) -> str:
        return f"{m.model}/{m.file}"

    def downloads(self, m: LlamacppModel) -> tuple[Download, ...]:
        return (Download("huggingface", f"{m.model} {m.file}", "model"),)

    def server(self, m: LlamacppModel, profile: Profile, sized: Sizing) -> Server:
        settings = LlamacppValues(
            file=m.file, parallel=m.parallel,
            # llama-server splits --ctx-size among its slots: each slot gets the whole context.
            ctxSize=sized.context * m.parallel if sized.context else None,
            # Every layer on the GPU when there is one; none on a CPU node.
            gpuLayers=999 if profile.gpu else 0,
            # Tool calls are parsed through the model's own chat template.
            jinja=True if m.toolCalling else None)
        # The chart starts llama-server with --alias <name>, the id the gateway asks for (`upstream`).
        return Server(settings, hf_token=m.hfToken)

    def capabilities(self, m: LlamacppModel) -> Capabilities:
        family, _ = described(m, self.facts(m))
        vision = bool(m.vision)  # a vision GGUF needs its projector file too, which stackgen does not fetch
        # response_format json_object and json_schema are enforced with a grammar.
        return capabilities(m, family, vision, json_output=True, structured=True)


ENGINE = Llamacpp()
