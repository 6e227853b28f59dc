"""The real LiteLLM gateway in front of real llama.cpp servers: routing, usage, auth."""

from __future__ import annotations

import importlib.util

import httpx
import pytest

from .conftest import Stack
from .gatewayconfig import OLLAMA_NAME, VLLM_NAME, chat, decode_count

MODELS = [VLLM_NAME, OLLAMA_NAME]


@pytest.mark.parametrize("model", MODELS)
def test_model_answers_through_gateway(stack: Stack, model: str) -> None:
    gw = stack.gateway
    target = stack.servers[model]
    others = [s for name, s in stack.servers.items() if name != model]
    before = {s.url: decode_count(s.url) for s in stack.servers.values()}

    resp = chat(gw.url, gw.headers(), model)

    assert resp.status_code == 200, resp.text
    body = resp.json()
    assert body["object"] == "chat.completion"
    assert body["model"] == model
    (choice,) = body["choices"]
    assert choice["message"]["role"] == "assistant"
    assert isinstance(choice["message"]["content"], str)
    assert choice["finish_reason"] in ("stop", "length")
    usage = body["usage"]
    assert usage["prompt_tokens"] > 0
    assert usage["completion_tokens"] > 0
    assert usage["total_tokens"] == usage["prompt_tokens"] + usage["completion_tokens"]
    # LiteLLM says where it sent the request; the servers' own counters confirm it.
    upstream = stack.upstream_names[model]
    provider = "hosted_vllm" if model == VLLM_NAME else "openai"
    assert resp.headers["x-litellm-model-group"] == model
    assert resp.headers["x-litellm-model-name"] == f"{provider}/{upstream}"
    assert resp.headers["x-litellm-model-api-base"] == target.api_base
    assert decode_count(target.url) > before[target.url]
    for other in others:
        assert decode_count(other.url) == before[other.url], f"{other.alias} answered a request for {model}"


def test_models_endpoint_lists_configured_names(stack: Stack) -> None:
    resp = httpx.get(f"{stack.gateway.url}/v1/models", headers=stack.gateway.headers(), timeout=30)
    assert resp.status_code == 200, resp.text
    assert sorted(m["id"] for m in resp.json()["data"]) == sorted(MODELS)


def _prisma_importable() -> bool:
    return importlib.util.find_spec("prisma") is not None


def test_missing_key_is_refused(stack: Stack) -> None:
    gw = stack.gateway
    before = decode_count(stack.servers[VLLM_NAME].url)
    body = {"model": VLLM_NAME, "messages": [{"role": "user", "content": "hi"}], "max_tokens": 4}

    resp = httpx.post(f"{gw.url}/v1/chat/completions", json=body, timeout=30)

    assert decode_count(stack.servers[VLLM_NAME].url) == before, "an unauthenticated request reached the model"
    if not _prisma_importable():
        # LiteLLM 1.108.7 classifies auth failures with `import prisma`; when that
        # package is absent the classification itself crashes and the proxy
        # answers a bare 500 instead of its 401. The request is still refused.
        assert resp.status_code == 500, resp.text
        assert resp.text == "Internal Server Error"
        pytest.xfail("missing key gives 500, not 401, because the `prisma` package is not installed")
    assert resp.status_code == 401, resp.text
    assert resp.json()["error"]["type"] == "auth_error"


@pytest.mark.parametrize("path", ["/v1/chat/completions", "/v1/models"])
def test_wrong_key_is_refused(stack: Stack, path: str) -> None:
    gw = stack.gateway
    before = decode_count(stack.servers[VLLM_NAME].url)
    headers = gw.headers("sk-not-the-master-key")

    if path == "/v1/models":
        resp = httpx.get(f"{gw.url}{path}", headers=headers, timeout=30)
    else:
        resp = chat(gw.url, headers, VLLM_NAME, timeout=30)

    assert decode_count(stack.servers[VLLM_NAME].url) == before, "a request with a wrong key reached the model"
    # Without a database LiteLLM cannot look a non-master key up, and says so
    # with 400 no_db_connection rather than 401; no setting changes that (only
    # custom_auth code or a database would). It is still a refusal, never a 2xx.
    assert resp.status_code == 400, resp.text
    assert resp.json()["error"]["type"] == "no_db_connection"
