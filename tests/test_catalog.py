"""The catalog against the models' published configs."""

from __future__ import annotations

import pytest

from stackgen import catalog


@pytest.mark.parametrize("hf_id", [
    "Qwen/Qwen2.5-7B-Instruct", "Qwen/Qwen3-8B", "meta-llama/Llama-3.1-8B-Instruct", "meta-llama/Llama-3.3-70B-Instruct",
    "mistralai/Mistral-7B-Instruct-v0.3", "google/gemma-3-12b-it", "microsoft/Phi-4-mini-instruct",
    "deepseek-ai/DeepSeek-R1-Distill-Qwen-7B", "HuggingFaceTB/SmolLM2-135M-Instruct", "facebook/opt-125m",
])
def test_the_families_the_project_promises_are_catalogued(hf_id: str) -> None:
    assert catalog.hf_model(hf_id) is not None
    assert catalog.hf_model(hf_id.upper()) is catalog.hf_model(hf_id)  # ids are case-insensitive on the Hub


@pytest.mark.parametrize(("hf_id", "parser"), [
    ("Qwen/Qwen2.5-7B-Instruct", "hermes"),
    ("Qwen/Qwen3-8B", "hermes"),
    ("meta-llama/Llama-3.1-8B-Instruct", "llama3_json"),
    ("mistralai/Mistral-7B-Instruct-v0.3", "mistral"),
    ("microsoft/Phi-4-mini-instruct", "phi4_mini_json"),
    ("google/gemma-2-9b-it", None),
    ("deepseek-ai/DeepSeek-R1-Distill-Qwen-7B", None),
])
def test_tool_call_parsers(hf_id: str, parser: str | None) -> None:
    assert catalog.hf_model(hf_id).tool_parser == parser  # type: ignore[union-attr]


def test_every_ollama_tag_points_at_a_catalogued_architecture() -> None:
    for tag in catalog.OLLAMA_TAGS.values():
        facts = catalog.ollama_model(tag.tag)
        assert facts is not None, tag.tag
        # Ollama's default files are quantised (the smallest ones f16): never larger than 16-bit weights.
        assert tag.size_gb <= facts.params_b * 2 * 1.05, tag.tag


def test_attention_shapes_are_consistent() -> None:
    for facts in catalog.HF_MODELS.values():
        assert facts.layers > 0 and facts.kv_heads > 0 and facts.head_dim in (64, 96, 128, 256), facts.hf_id
        assert facts.context_length >= 2048, facts.hf_id
        assert facts.family in {"unknown", "r1", "mistral", "llama-3.3-8b", "llama-3.3-70b"}, facts.hf_id
