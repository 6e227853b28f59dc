"""The LiteLLM proxy config: which names the gateway serves, where each one goes, and how it retries.

The chart writes this dict verbatim into the gateway's ConfigMap, and `render` writes the same dict to
OUT/litellm/config.yaml, so the two are identical by construction.
"""

from __future__ import annotations

from typing import Any

from .plan import ModelPlan, Plan

MASTER_KEY_ENV = "LITELLM_MASTER_KEY"
# LiteLLM's OpenAI client refuses an empty key; in-cluster servers and keyless endpoints ignore this one.
NO_KEY = "none"


def _entry(m: ModelPlan, timeout: int) -> dict[str, Any]:
    # In-cluster servers are reached through their Service with the provider their engine speaks (vLLM's
    # hosted_vllm; the OpenAI wire format for the rest, so tool calls pass through unchanged); external
    # ones through their provider's route, with the key from the Secret the spec names.
    params: dict[str, Any] = {"model": m.route}
    if m.api_base:
        params["api_base"] = m.api_base
    params["api_key"] = f"os.environ/{m.api_key_env}" if m.api_key_env else NO_KEY
    params["timeout"] = timeout
    info: dict[str, Any] = {"mode": "chat", "supports_function_calling": m.spec.toolCalling}
    if m.context_length:
        info["max_input_tokens"] = m.context_length
    return {"model_name": m.name, "litellm_params": params, "model_info": info}


def gateway_config(plan: Plan) -> dict[str, Any]:
    gw = plan.stack.gateway
    entries = [_entry(m, gw.timeoutSeconds) for m in plan.models]
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
    return {m.api_key_env: m.api_key.model_dump() for m in plan.models if m.api_key_env and m.api_key}
