"""Hand-written LiteLLM configs in the shape stackgen renders, plus small HTTP helpers.

The configs address models by their in-cluster Service names, exactly as the
chart would; the tests re-point them at local llama.cpp servers with
``stackgen.localstack.point_at_local`` so that function is exercised too.
"""

from __future__ import annotations

import re
from typing import Any

import httpx

# The names a rendered stack would use: vLLM serves the model under its key,
# Ollama under its library tag.
VLLM_NAME = "qwen-7b"
OLLAMA_NAME = "small"
OLLAMA_TAG = "qwen2.5:0.5b"

# Short upstream timeouts so a dead or hung model server turns into an error
# within seconds instead of LiteLLM's default of ten minutes.
UPSTREAM_TIMEOUT_S = 4
MAX_TOKENS = 8


def service_url(component: str, release: str = "team-llm") -> str:
    return f"http://{release}-{component}/v1"


def vllm_entry(name: str) -> dict[str, Any]:
    return {
        "model_name": name,
        "litellm_params": {
            "model": f"hosted_vllm/{name}",
            "api_base": service_url(name),
            "api_key": "none",
            "timeout": UPSTREAM_TIMEOUT_S,
        },
    }


def ollama_entry(name: str, tag: str) -> dict[str, Any]:
    return {
        "model_name": name,
        "litellm_params": {
            "model": f"openai/{tag}",
            "api_base": service_url(name),
            "api_key": "none",
            "timeout": UPSTREAM_TIMEOUT_S,
        },
    }


def gateway_config(entries: list[dict[str, Any]], fallbacks: list[dict[str, list[str]]],
                   **router: Any) -> dict[str, Any]:
    """A gateway config with master-key auth from the environment, as the chart mounts it."""
    router_settings: dict[str, Any] = {"num_retries": 1, "fallbacks": fallbacks}
    router_settings.update(router)
    return {
        "model_list": entries,
        "general_settings": {"master_key": "os.environ/LITELLM_MASTER_KEY"},
        "router_settings": router_settings,
    }


def chat(url: str, headers: dict[str, str], model: str, timeout: float = 60.0,
         content: str = "Say hi.") -> httpx.Response:
    """POST one short chat completion to an OpenAI-compatible base URL (without /v1)."""
    body = {"model": model, "messages": [{"role": "user", "content": content}], "max_tokens": MAX_TOKENS}
    return httpx.post(f"{url}/v1/chat/completions", json=body, headers=headers, timeout=timeout)


_DECODES = re.compile(r"^llamacpp:n_decode_total\s+(\d+(?:\.\d+)?)", re.MULTILINE)


def decode_count(server_url: str) -> int:
    """llama.cpp's count of decode calls: it rises on every request that server answers."""
    text = httpx.get(f"{server_url}/metrics", timeout=5.0).text
    match = _DECODES.search(text)
    if match is None:
        raise AssertionError(f"no llamacpp:n_decode_total in {server_url}/metrics")
    return int(float(match.group(1)))
