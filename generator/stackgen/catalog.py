"""Facts about common open models, from their published configs (config.json on the Hugging Face Hub and
the Ollama library). The generator's policy reads them: context length, tool-call parser, AutoGen family,
and (for capacity) parameters and attention shape. A model that is not here works when the spec supplies
what is needed (contextLength, toolCallParser, family).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class ModelFacts:
    """One model architecture as published; sizes in billions of parameters, lengths in tokens."""

    hf_id: str
    family: str  # AutoGen ModelFamily value for exactly this model, "unknown" where AutoGen has none
    params_b: float
    layers: int
    hidden: int
    kv_heads: int
    head_dim: int
    context_length: int
    tool_parser: str | None  # vLLM --tool-call-parser; None: no native tool calling
    vision: bool = False
    chat_template: bool = True  # False: vLLM needs --chat-template to serve /v1/chat/completions
    dtype_bytes: int = 2  # published weights and activations are bf16 unless noted
    # vLLM --reasoning-parser for models that think before they answer; None: no reasoning block.
    reasoning_parser: str | None = None
    # Latent attention (DeepSeek's MLA): the values one token caches per layer (kv_lora_rank + qk_rope_head_dim),
    # instead of keys and values per KV head; 0: grouped-query attention.
    kv_latent: int = 0
    # Bytes per parameter of the published weights where they are not all dtype_bytes (a quantised checkpoint):
    # the safetensors index's total_size over the parameter count.
    packed_bytes: float | None = None
    # Mixture of experts: the parameters one token passes through (billions); None: a dense model.
    active_b: float | None = None

    @property
    def weight_bytes(self) -> float:
        """Bytes per parameter of the published weights."""
        return self.packed_bytes or float(self.dtype_bytes)


def _m(hf_id: str, family: str, params_b: float, layers: int, hidden: int, kv_heads: int, head_dim: int,
       context: int, parser: str | None, **kw: Any) -> ModelFacts:
    """A catalog row; `kw` sets the optional facts by name (vision, chat_template, dtype_bytes, reasoning_parser)."""
    return ModelFacts(hf_id, family, params_b, layers, hidden, kv_heads, head_dim, context, parser, **kw)


_FACTS = [
    # Qwen 2.5: tool calls in Hermes format (Qwen's own docs recommend --tool-call-parser hermes).
    _m("Qwen/Qwen2.5-0.5B-Instruct", "unknown", 0.494, 24, 896, 2, 64, 32768, "hermes"),
    _m("Qwen/Qwen2.5-1.5B-Instruct", "unknown", 1.54, 28, 1536, 2, 128, 32768, "hermes"),
    _m("Qwen/Qwen2.5-3B-Instruct", "unknown", 3.09, 36, 2048, 2, 128, 32768, "hermes"),
    _m("Qwen/Qwen2.5-7B-Instruct", "unknown", 7.62, 28, 3584, 4, 128, 32768, "hermes"),
    _m("Qwen/Qwen2.5-14B-Instruct", "unknown", 14.7, 48, 5120, 8, 128, 32768, "hermes"),
    _m("Qwen/Qwen2.5-32B-Instruct", "unknown", 32.5, 64, 5120, 8, 128, 32768, "hermes"),
    _m("Qwen/Qwen2.5-72B-Instruct", "unknown", 72.7, 80, 8192, 8, 128, 32768, "hermes"),
    _m("Qwen/Qwen2.5-Coder-7B-Instruct", "unknown", 7.62, 28, 3584, 4, 128, 32768, "hermes"),
    _m("Qwen/Qwen2.5-Coder-32B-Instruct", "unknown", 32.5, 64, 5120, 8, 128, 32768, "hermes"),
    # Qwen 3: thinks in <think> blocks by default (vLLM's qwen3 reasoning parser), calls tools in Hermes format.
    _m("Qwen/Qwen3-0.6B", "unknown", 0.596, 28, 1024, 8, 128, 40960, "hermes", reasoning_parser="qwen3"),
    _m("Qwen/Qwen3-1.7B", "unknown", 1.72, 28, 2048, 8, 128, 40960, "hermes", reasoning_parser="qwen3"),
    _m("Qwen/Qwen3-4B", "unknown", 4.02, 36, 2560, 8, 128, 40960, "hermes", reasoning_parser="qwen3"),
    _m("Qwen/Qwen3-8B", "unknown", 8.19, 36, 4096, 8, 128, 40960, "hermes", reasoning_parser="qwen3"),
    _m("Qwen/Qwen3-14B", "unknown", 14.8, 40, 5120, 8, 128, 40960, "hermes", reasoning_parser="qwen3"),
    _m("Qwen/Qwen3-32B", "unknown", 32.8, 64, 5120, 8, 128, 40960, "hermes", reasoning_parser="qwen3"),
    # Llama 3.x: JSON tool calls (llama3_json).
    _m("meta-llama/Llama-3.1-8B-Instruct", "unknown", 8.03, 32, 4096, 8, 128, 131072, "llama3_json"),
    _m("meta-llama/Llama-3.1-70B-Instruct", "unknown", 70.6, 80, 8192, 8, 128, 131072, "llama3_json"),
    _m("meta-llama/Llama-3.2-1B-Instruct", "unknown", 1.24, 16, 2048, 8, 64, 131072, "llama3_json"),
    _m("meta-llama/Llama-3.2-3B-Instruct", "unknown", 3.21, 28, 3072, 8, 128, 131072, "llama3_json"),
    _m("meta-llama/Llama-3.3-70B-Instruct", "llama-3.3-70b", 70.6, 80, 8192, 8, 128, 131072, "llama3_json"),
    # Mistral
    _m("mistralai/Mistral-7B-Instruct-v0.3", "mistral", 7.25, 32, 4096, 8, 128, 32768, "mistral"),
    _m("mistralai/Mistral-Nemo-Instruct-2407", "mistral", 12.2, 40, 5120, 8, 128, 131072, "mistral"),
    _m("mistralai/Mistral-Small-24B-Instruct-2501", "mistral", 23.6, 40, 5120, 8, 128, 32768, "mistral"),
    # Gemma: no native tool-call format that vLLM parses out of the box.
    _m("google/gemma-2-9b-it", "unknown", 9.24, 42, 3584, 8, 256, 8192, None),
    _m("google/gemma-3-1b-it", "unknown", 1.0, 26, 1152, 1, 256, 32768, None),
    _m("google/gemma-3-4b-it", "unknown", 4.3, 34, 2560, 4, 256, 131072, None, vision=True),
    _m("google/gemma-3-12b-it", "unknown", 12.2, 48, 3840, 8, 256, 131072, None, vision=True),
    _m("google/gemma-3-27b-it", "unknown", 27.4, 62, 5376, 16, 128, 131072, None, vision=True),
    # Phi
    _m("microsoft/Phi-3.5-mini-instruct", "unknown", 3.82, 32, 3072, 32, 96, 131072, None),
    _m("microsoft/Phi-4-mini-instruct", "unknown", 3.84, 32, 3072, 8, 128, 131072, "phi4_mini_json"),
    _m("microsoft/phi-4", "unknown", 14.7, 40, 5120, 10, 128, 16384, None),
    # QwQ: Qwen's reasoning model; its <think> block is what the deepseek_r1 parser reads.
    _m("Qwen/QwQ-32B", "unknown", 32.8, 64, 5120, 8, 128, 40960, "hermes", reasoning_parser="deepseek_r1"),
    # DeepSeek R1 distills: reasoning models on Qwen/Llama bases, no tool-call training.
    _m("deepseek-ai/DeepSeek-R1-Distill-Qwen-1.5B", "r1", 1.78, 28, 1536, 2, 128, 131072, None, reasoning_parser="deepseek_r1"),
    _m("deepseek-ai/DeepSeek-R1-Distill-Qwen-7B", "r1", 7.62, 28, 3584, 4, 128, 131072, None, reasoning_parser="deepseek_r1"),
    _m("deepseek-ai/DeepSeek-R1-Distill-Llama-8B", "r1", 8.03, 32, 4096, 8, 128, 131072, None, reasoning_parser="deepseek_r1"),
    _m("deepseek-ai/DeepSeek-R1-Distill-Qwen-14B", "r1", 14.8, 48, 5120, 8, 128, 131072, None, reasoning_parser="deepseek_r1"),
    _m("deepseek-ai/DeepSeek-R1-Distill-Qwen-32B", "r1", 32.8, 64, 5120, 8, 128, 131072, None, reasoning_parser="deepseek_r1"),
    _m("deepseek-ai/DeepSeek-R1-Distill-Llama-70B", "r1", 70.6, 80, 8192, 8, 128, 131072, None, reasoning_parser="deepseek_r1"),
    # SmolLM2
    _m("HuggingFaceTB/SmolLM2-135M-Instruct", "unknown", 0.135, 30, 576, 3, 64, 8192, None),
    _m("HuggingFaceTB/SmolLM2-360M-Instruct", "unknown", 0.362, 32, 960, 5, 64, 8192, None),
    _m("HuggingFaceTB/SmolLM2-1.7B-Instruct", "unknown", 1.71, 24, 2048, 32, 64, 8192, None),
    # OPT: a base model without a chat template; fp16 weights.
    _m("facebook/opt-125m", "unknown", 0.125, 12, 768, 12, 64, 2048, None, chat_template=False),
    # Models one node of 8 GPUs may not hold (tests/hub_configs holds their config.json). Every expert of a
    # mixture-of-experts model is resident, so params_b counts them all; active_b is what one token passes through.
    _m("meta-llama/Llama-3.1-405B-Instruct", "unknown", 405.9, 126, 16384, 8, 128, 131072, "llama3_json"),
    # Latent attention: 512 (kv_lora_rank) + 64 (qk_rope_head_dim) values per token and layer. FP8 weights: 688.6 GB
    # of files for 684.5 B parameters; 671.0 B of them load (the next-token prediction layer is for speculation).
    _m("deepseek-ai/DeepSeek-V3", "unknown", 671.0, 61, 7168, 128, 128, 163840, "deepseek_v3", kv_latent=576,
       packed_bytes=688.587 / 684.531, active_b=37.0),
    _m("Qwen/Qwen3-235B-A22B", "unknown", 235.09, 94, 4096, 4, 128, 40960, "hermes", reasoning_parser="qwen3",
       active_b=22.0),
    # MXFP4 experts: 65.25 GB of weights for 116.8 B parameters. Half its layers attend to a 128-token window only;
    # the KV cache here counts every layer at the whole context, which overstates it by up to half.
    _m("openai/gpt-oss-120b", "unknown", 116.8, 36, 2880, 8, 64, 131072, "openai", reasoning_parser="openai_gptoss",
       packed_bytes=65.249 / 116.8, active_b=5.1),
]

HF_MODELS: dict[str, ModelFacts] = {f.hf_id.lower(): f for f in _FACTS}


@dataclass(frozen=True)
class Shape:
    """What a model's published config.json says of its memory: the attention's shape, context and experts."""

    layers: int
    hidden: int
    kv_heads: int
    head_dim: int
    context_length: int
    kv_latent: int  # latent attention's values per token and layer; 0: keys and values per KV head
    experts: int  # routed experts per MoE layer; 0: a dense model


def shape(config: dict[str, Any]) -> Shape:
    """Read a config.json of the Hugging Face transformers layout (Llama, Qwen, Mistral, Gemma, DeepSeek's MLA,
    gpt-oss): the fields are named alike across them, with the head size given or implied by the hidden size."""
    text = config.get("text_config", config)  # a vision model keeps its language model's config apart
    heads = int(text["num_attention_heads"])
    rank = int(text.get("kv_lora_rank") or 0)  # latent attention: the latent and its rotary part, per layer
    latent = rank + int(text.get("qk_rope_head_dim") or 0) if rank else 0
    experts = text.get("n_routed_experts") or text.get("num_experts") or text.get("num_local_experts") or 0
    return Shape(layers=int(text["num_hidden_layers"]), hidden=int(text["hidden_size"]),
                 kv_heads=int(text.get("num_key_value_heads") or heads),
                 head_dim=int(text.get("head_dim") or int(text["hidden_size"]) // heads),
                 context_length=int(text["max_position_embeddings"]), kv_latent=latent, experts=int(experts))


@dataclass(frozen=True)
class OllamaTag:
    """An Ollama library tag: the architecture it packs, its download size, and whether Ollama lists 'tools'."""

    tag: str
    hf_id: str
    size_gb: float  # size of the default (mostly Q4_K_M) quantised weights, as the library lists it
    tools: bool


_OLLAMA = [
    OllamaTag("qwen2.5:0.5b", "Qwen/Qwen2.5-0.5B-Instruct", 0.398, True),
    OllamaTag("qwen2.5:1.5b", "Qwen/Qwen2.5-1.5B-Instruct", 0.986, True),
    OllamaTag("qwen2.5:3b", "Qwen/Qwen2.5-3B-Instruct", 1.9, True),
    OllamaTag("qwen2.5:7b", "Qwen/Qwen2.5-7B-Instruct", 4.7, True),
    OllamaTag("qwen2.5:14b", "Qwen/Qwen2.5-14B-Instruct", 9.0, True),
    OllamaTag("qwen2.5:32b", "Qwen/Qwen2.5-32B-Instruct", 20.0, True),
    OllamaTag("qwen2.5:72b", "Qwen/Qwen2.5-72B-Instruct", 47.0, True),
    OllamaTag("qwen2.5-coder:7b", "Qwen/Qwen2.5-Coder-7B-Instruct", 4.7, True),
    OllamaTag("qwen3:0.6b", "Qwen/Qwen3-0.6B", 0.523, True),
    OllamaTag("qwen3:4b", "Qwen/Qwen3-4B", 2.5, True),
    OllamaTag("qwen3:8b", "Qwen/Qwen3-8B", 5.2, True),
    OllamaTag("qwen3:14b", "Qwen/Qwen3-14B", 9.3, True),
    OllamaTag("qwen3:32b", "Qwen/Qwen3-32B", 20.0, True),
    OllamaTag("llama3.1:8b", "meta-llama/Llama-3.1-8B-Instruct", 4.9, True),
    OllamaTag("llama3.1:70b", "meta-llama/Llama-3.1-70B-Instruct", 43.0, True),
    OllamaTag("llama3.2:1b", "meta-llama/Llama-3.2-1B-Instruct", 1.3, True),
    OllamaTag("llama3.2:3b", "meta-llama/Llama-3.2-3B-Instruct", 2.0, True),
    OllamaTag("llama3.3:70b", "meta-llama/Llama-3.3-70B-Instruct", 43.0, True),
    OllamaTag("mistral:7b", "mistralai/Mistral-7B-Instruct-v0.3", 4.1, True),
    OllamaTag("mistral-nemo:12b", "mistralai/Mistral-Nemo-Instruct-2407", 7.1, True),
    OllamaTag("gemma2:9b", "google/gemma-2-9b-it", 5.4, False),
    OllamaTag("gemma3:1b", "google/gemma-3-1b-it", 0.815, False),
    OllamaTag("gemma3:4b", "google/gemma-3-4b-it", 3.3, False),
    OllamaTag("gemma3:12b", "google/gemma-3-12b-it", 8.1, False),
    OllamaTag("gemma3:27b", "google/gemma-3-27b-it", 17.0, False),
    OllamaTag("phi3.5:3.8b", "microsoft/Phi-3.5-mini-instruct", 2.2, False),
    OllamaTag("phi4-mini:3.8b", "microsoft/Phi-4-mini-instruct", 2.5, True),
    OllamaTag("phi4:14b", "microsoft/phi-4", 9.1, False),
    OllamaTag("deepseek-r1:1.5b", "deepseek-ai/DeepSeek-R1-Distill-Qwen-1.5B", 1.1, False),
    OllamaTag("deepseek-r1:7b", "deepseek-ai/DeepSeek-R1-Distill-Qwen-7B", 4.7, False),
    OllamaTag("deepseek-r1:8b", "deepseek-ai/DeepSeek-R1-Distill-Llama-8B", 4.9, False),
    OllamaTag("deepseek-r1:32b", "deepseek-ai/DeepSeek-R1-Distill-Qwen-32B", 20.0, False),
    OllamaTag("smollm2:135m", "HuggingFaceTB/SmolLM2-135M-Instruct", 0.271, True),
    OllamaTag("smollm2:360m", "HuggingFaceTB/SmolLM2-360M-Instruct", 0.726, True),
    OllamaTag("smollm2:1.7b", "HuggingFaceTB/SmolLM2-1.7B-Instruct", 1.8, True),
]

OLLAMA_TAGS: dict[str, OllamaTag] = {t.tag: t for t in _OLLAMA}


# Publishers whose Hub repositories are gated: a download needs a token of a user who accepted the licence.
# Meta's Llama and Google's Gemma repositories are all gated; so are Mistral AI's since mid-2024.
GATED_PREFIXES = ("meta-llama/", "google/gemma", "mistralai/")


def gated(model_id: str) -> bool:
    """Whether the Hub asks for an accepted licence (and a token) before it serves the repository's files."""
    return model_id.lower().startswith(GATED_PREFIXES)


def hf_model(model_id: str) -> ModelFacts | None:
    """Facts of a Hugging Face model id (case-insensitive), or None when uncatalogued."""
    return HF_MODELS.get(model_id.lower())


def ollama_registry(name: str) -> str | None:
    """The registry host of an Ollama model name, or None for Ollama's own library. Ollama reads a name
    as [host/][namespace/]model[:tag]: only a name of three parts names its host."""
    parts = name.split("/")
    return parts[0] if len(parts) == 3 else None


def ollama_tag(tag: str) -> OllamaTag | None:
    """Facts of an Ollama tag; a bare name means its `latest`, which the library points at one size. A
    library model mirrored in another registry (host/library/model:tag) has the library's facts."""
    parts = tag.lower().split("/")
    if len(parts) == 3:
        parts = parts[1:]
    if len(parts) == 2 and parts[0] == "library":
        parts = parts[1:]
    return OLLAMA_TAGS.get("/".join(parts))


def ollama_model(tag: str) -> ModelFacts | None:
    entry = ollama_tag(tag)
    return HF_MODELS[entry.hf_id.lower()] if entry else None
