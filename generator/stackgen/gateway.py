"""The LiteLLM proxy config: which names the gateway serves, where each one goes, and how it retries.

The chart writes this dict verbatim into the gateway's ConfigMap, and `render` writes the same dict to
OUT/litellm/config.yaml, so the two are identical by construction.
"""

from __future__ import annotations

from typing import Any

from .plan import ExternalPlan, Plan, ServedPlan

MASTER_KEY_ENV = "LITELLM_MASTER_KEY"
# LiteLLM's OpenAI client refuses an empty key; in-cluster servers and keyless endpoints ignore this one.
NO_KEY = "none"


def _served_entry(m: ServedPlan, timeout: int) -> dict[str, Any]:
    # vLLM is reached through LiteLLM's hosted_vllm provider; Ollama through its OpenAI-compatible /v1 API
    # (the same wire format vLLM speaks), so one code path serves both and tool calls pass through unchanged.
    provider = "hosted_vllm" if m.engine == "vllm" else "openai"
    params: dict[str, Any] = {
        "model": f"{provider}/{m.upstream_model}",
        "api_base": m.url,
        "api_key": NO_KEY,
        "timeout": timeout,
    }
    info: dict[str, Any] = {"mode": "chat", "supports_function_calling": m.spec.toolCalling}
    if m.context_length:
        info["max_input_tokens"] = m.context_length
    return {"model_name": m.name, "litellm_params": params, "model_info": info}


def _external_entry(m: ExternalPlan, timeout: int) -> dict[str, Any]:
    params: dict[str, Any] = {"model": m.litellm_model, "timeout": timeout}
    if m.base_url:
        params["api_base"] = m.base_url
    params["api_key"] = f"os.environ/{m.api_key_env}" if m.api_key_env else NO_KEY
    info = {"mode": "chat", "supports_function_calling": m.spec.toolCalling}
    return {"model_name": m.name, "litellm_params": params, "model_info": info}


def gateway_config(plan: Plan) -> dict[str, Any]:
    gw = plan.stack.gateway
    entries = [
        _served_entry(m, gw.timeoutSeconds) if isinstance(m, ServedPlan) else _external_entry(m, gw.timeoutSeconds)
        for m in plan.models
    ]
    router: dict[str, Any] = {
        "routing_strategy": "simple-shuffle",
        "num_retries": gw.numRetries,
        "timeout": gw.timeoutSeconds,
        # Each model is one deployment (its replicas sit behind one Service), so benching it benches the
        # whole model: only after repeated failures in a minute, and only for a few seconds, during which
        # its fallbacks answer.
        "allowed_fails": 3,
        "cooldown_time": 10,
    }
    fallbacks = [{m.name: list(m.fallbacks)} for m in plan.stack.models if m.fallbacks]
    if fallbacks:
        router["fallbacks"] = fallbacks
    return {
        "model_list": entries,
        "router_settings": router,
        "litellm_settings": {
            # Agents send OpenAI parameters some backends lack; drop them rather than fail the call.
            "drop_params": True,
            "request_timeout": gw.timeoutSeconds,
            "num_retries": gw.numRetries,
        },
        "general_settings": {"master_key": f"os.environ/{MASTER_KEY_ENV}"},
    }


# LiteLLM's production advice: no per-request info logs (they cost CPU on every call); errors still show.
GATEWAY_ENV = {"LITELLM_LOG": "ERROR"}


def provider_secret_env(plan: Plan) -> dict[str, dict[str, str]]:
    """Gateway environment variables filled from Secrets: the provider keys the config refers to."""
    return {
        m.api_key_env: m.spec.apiKey.model_dump()  # type: ignore[union-attr]
        for m in plan.external
        if m.api_key_env
    }
