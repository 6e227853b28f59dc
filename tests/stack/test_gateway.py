"""The rendered gateway config, run by the real LiteLLM proxy in front of real llama.cpp servers:
every model of every built-in example is listed, routed to its own server, and accounted for; keys
are required at the gateway and reach keyed providers."""

from __future__ import annotations

import httpx
import pytest
import yaml

from .calls import MAX_TOKENS, chat, decode_count, decode_counts
from .conftest import EXAMPLES, ExamplePool, example_models, served_alias


@pytest.mark.parametrize("example", EXAMPLES)
def test_models_endpoint_lists_every_model(example_stacks: ExamplePool, example: str) -> None:
    local = example_stacks.get(example)
    resp = httpx.get(f"{local.gateway.api_base}/models", headers=local.gateway.headers(), timeout=30)
    assert resp.status_code == 200, resp.text
    assert sorted(m["id"] for m in resp.json()["data"]) == sorted(m.name for m in local.plan.models)


@pytest.mark.parametrize(("example", "model"), example_models())
def test_model_is_routed_to_its_own_server(example_stacks: ExamplePool, example: str, model: str) -> None:
    local = example_stacks.get(example)
    planned = local.plan.model(model)
    before = decode_counts(local.servers)

    resp = chat(local.gateway.api_base, local.gateway.headers(), model)

    assert resp.status_code == 200, resp.text
    body = resp.json()
    assert body["object"] == "chat.completion"
    assert body["model"] == model
    (choice,) = body["choices"]
    assert choice["message"]["role"] == "assistant"
    assert isinstance(choice["message"]["content"], str) and choice["message"]["content"]
    assert choice["finish_reason"] in ("stop", "length")
    usage = body["usage"]
    assert usage["prompt_tokens"] > 0
    assert 0 < usage["completion_tokens"] <= MAX_TOKENS
    assert usage["total_tokens"] == usage["prompt_tokens"] + usage["completion_tokens"]
    # LiteLLM names the deployment it called; the servers' own counters confirm which one did the work.
    # vLLM through LiteLLM's hosted_vllm provider, Ollama through the OpenAI wire format, externals by provider.
    prefix = {"vllm": "hosted_vllm", "ollama": "openai"}.get(planned.engine_name) or planned.route.split("/")[0]
    assert resp.headers["x-litellm-model-group"] == model
    assert resp.headers["x-litellm-model-name"] == f"{prefix}/{served_alias(planned)}"
    assert resp.headers["x-litellm-model-api-base"] == local.servers[model].api_base
    assert resp.headers["x-litellm-attempted-fallbacks"] == "0"
    after = decode_counts(local.servers)
    assert after[model] > before[model]
    assert {n: c for n, c in after.items() if n != model} == {n: c for n, c in before.items() if n != model}


@pytest.mark.parametrize("example", EXAMPLES)
def test_gateway_runs_the_rendered_config_but_for_addresses(example_stacks: ExamplePool, example: str) -> None:
    local = example_stacks.get(example)
    rendered, running = local.rendered_config(), yaml.safe_load(local.gateway.config_path.read_text())
    assert [e["litellm_params"]["api_base"] for e in running["model_list"]] == [
        local.servers[e["model_name"]].api_base for e in running["model_list"]]
    for entry in running["model_list"]:
        entry["litellm_params"].pop("api_base")
    for entry in rendered["model_list"]:
        entry["litellm_params"].pop("api_base", None)
    assert running == rendered


def test_provider_key_from_the_environment_reaches_the_provider(example_stacks: ExamplePool) -> None:
    local = example_stacks.get("hybrid")
    keyed = [m for m in local.plan.external if m.api_key_env]
    assert {m.provider for m in keyed} == {"mistral", "together"}
    for m in keyed:
        server = local.servers[m.name]
        # The stand-in refuses a caller without its key, as the provider would ...
        assert chat(server.api_base, {}, served_alias(m)).status_code == 401
        assert chat(server.api_base, {"Authorization": "Bearer sk-wrong"}, served_alias(m)).status_code == 401
        # ... and answers the gateway, which read the key from the variable the rendered config names.
        params = next(e["litellm_params"] for e in local.gateway.config["model_list"] if e["model_name"] == m.name)
        assert params["api_key"] == f"os.environ/{m.api_key_env}"
        before = decode_count(server)
        resp = chat(local.gateway.api_base, local.gateway.headers(), m.name)
        assert resp.status_code == 200, resp.text
        assert decode_count(server) > before


@pytest.mark.parametrize("example", EXAMPLES)
def test_request_without_key_is_refused(example_stacks: ExamplePool, example: str) -> None:
    local = example_stacks.get(example)
    first = local.plan.models[0].name
    before = decode_counts(local.servers)

    resp = chat(local.gateway.api_base, {}, first)
    listing = httpx.get(f"{local.gateway.api_base}/models", timeout=30)

    assert resp.status_code == 401, resp.text
    assert resp.json()["error"]["type"] == "auth_error"
    assert listing.status_code == 401, listing.text
    assert decode_counts(local.servers) == before, "an unauthenticated request reached a model"


@pytest.mark.parametrize("example", EXAMPLES)
def test_request_with_wrong_key_is_refused(example_stacks: ExamplePool, example: str) -> None:
    local = example_stacks.get(example)
    first = local.plan.models[0].name
    headers = local.gateway.headers("sk-not-the-master-key")
    before = decode_counts(local.servers)

    resp = chat(local.gateway.api_base, headers, first)
    listing = httpx.get(f"{local.gateway.api_base}/models", headers=headers, timeout=30)

    # Without a database LiteLLM cannot look a non-master key up and answers 400 no_db_connection
    # rather than 401; only a database or custom auth code changes that. It is a refusal either way.
    for refused in (resp, listing):
        assert refused.status_code == 400, refused.text
        assert refused.json()["error"]["type"] == "no_db_connection"
    assert decode_counts(local.servers) == before, "a request with a wrong key reached a model"

