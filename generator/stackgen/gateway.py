"""The LiteLLM proxy config: which names the gateway serves, where each one goes, and how it retries.

The chart writes this dict verbatim into the gateway's ConfigMap, and `render` writes the same dict to
OUT/litellm/config.yaml, so the two are identical by construction.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from . import wake
from .errors import Problem, StackgenError
from .manifests import CHART_ENV, chart_dir
from .output import Target
from .plan import ModelPlan, Plan

MASTER_KEY_ENV = "LITELLM_MASTER_KEY"
# Where the gateway finds Redis; the config names the variables, the Deployment fills them.
REDIS_ENV = {"redis_host": "REDIS_HOST", "redis_port": "REDIS_PORT", "redis_password": "REDIS_PASSWORD"}
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
    if m.wake:
        params.update(wake.gateway_params(m.wake, timeout))
    if m.spec.limits:
        params.update({k: v for k, v in m.spec.limits.model_dump().items() if v is not None})
    info: dict[str, Any] = {"mode": "chat", "supports_function_calling": m.spec.toolCalling}
    if m.context_length:
        info["max_input_tokens"] = m.context_length
    return {"model_name": m.name, "litellm_params": params, "model_info": info}


def config_for(target: Target) -> dict[str, Any]:
    """The render's gateway config, made once (the chart's values and litellm/config.yaml both carry it)."""
    return target.once("gateway", lambda: gateway_config(target.plan))


def gateway_config(plan: Plan) -> dict[str, Any]:
    gw = plan.stack.gateway
    entries = [_entry(m, gw.timeoutSeconds) for m in plan.models]
    limited = any(m.spec.limits for m in plan.models)
    router: dict[str, Any] = {
        # LiteLLM enforces a deployment's rpm/tpm only under usage-based-routing-v2 (which counts in Redis
        # when it has one); with one deployment per model name, the strategy picks nothing else.
        "routing_strategy": "usage-based-routing-v2" if limited else "simple-shuffle",
        "num_retries": gw.numRetries,
        "timeout": gw.timeoutSeconds,
        # Each model is one deployment (its replicas sit behind one Service), so benching it benches the
        # whole model: only after repeated failures in a minute, and only for a few seconds, during which
        # its fallbacks answer.
        "allowed_fails": 3,
        "cooldown_time": 10,
    }
    litellm: dict[str, Any] = {
        # Agents send OpenAI parameters some backends lack; drop them rather than fail the call.
        "drop_params": True,
        "request_timeout": gw.timeoutSeconds,
        "num_retries": gw.numRetries,
    }
    # The Prometheus callback serves /metrics on the proxy's port (stackgen.monitoring reads it); the wake's check
    # fails a call at once when the interceptor that would wake its model is down.
    callbacks = [*(["prometheus"] if plan.stack.monitoring.enabled else []),
                 *([wake.GATEWAY_CALLBACK] if any(m.wake for m in plan.models) else [])]
    if callbacks:
        litellm["callbacks"] = callbacks
    routed = [m.name for m in plan.models if m.in_cluster and plan.served_by(m).router]
    if routed:
        # A routed model's router keeps a conversation on one replica by the client's x-session-id; LiteLLM
        # forwards a client's x- headers only to the model groups named here (the rest never see them).
        litellm["model_group_settings"] = {"forward_client_headers_to_llm_api": routed}
    fallbacks = [{m.name: list(m.fallbacks)} for m in plan.stack.models if m.fallbacks]
    if fallbacks:
        router["fallbacks"] = fallbacks
    if plan.redis:
        # Counters and cooldowns shared by every replica and worker.
        router.update({key: f"os.environ/{env}" for key, env in REDIS_ENV.items()})
    return {
        "model_list": entries,
        "router_settings": router,
        "litellm_settings": litellm,
        "general_settings": {"master_key": f"os.environ/{MASTER_KEY_ENV}"},
    }


def hook_files(config: Mapping[str, Any]) -> dict[str, str]:
    """The modules of the chart's that a config's callbacks name, by file name: LiteLLM loads them from beside
    its config.yaml (the chart's ConfigMap carries them; `render` and localstack write them there)."""
    named = config.get("litellm_settings", {}).get("callbacks", [])
    if wake.GATEWAY_CALLBACK not in named:
        return {}
    name = f"{wake.GATEWAY_HOOK}.py"
    path = chart_dir() / "files" / name
    if not path.is_file():
        raise StackgenError([Problem("chart", f"{path} is missing, and the gateway's config names it "
                                     "(a model at minReplicas 0): the chart there is not this stackgen's",
                                     f"unset {CHART_ENV}, or point it at this stackgen's charts/inference-stack")])
    return {name: path.read_text(encoding="utf-8")}


# LiteLLM's production advice: no per-request info logs (they cost CPU on every call); errors still show.
GATEWAY_ENV = {"LITELLM_LOG": "ERROR"}


def gateway_env(plan: Plan) -> dict[str, str]:
    env = dict(GATEWAY_ENV)
    if plan.redis:
        env.update({REDIS_ENV["redis_host"]: plan.redis.host, REDIS_ENV["redis_port"]: str(plan.redis.port)})
    return env


def secret_env(plan: Plan) -> dict[str, dict[str, str]]:
    """Gateway environment variables filled from Secrets: the provider keys and the Redis password the
    config refers to."""
    env = {m.api_key_env: m.api_key.model_dump() for m in plan.models if m.api_key_env and m.api_key}
    if plan.redis:
        env[REDIS_ENV["redis_password"]] = plan.redis.password.model_dump()
    return env
