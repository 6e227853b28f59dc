"""point_at_local: re-points only the named in-cluster entries, on a copy."""

from __future__ import annotations

import copy
from typing import Any

import pytest

from stackgen.localstack import point_at_local

from .gatewayconfig import OLLAMA_NAME, OLLAMA_TAG, VLLM_NAME, gateway_config, ollama_entry, service_url, vllm_entry

EXTERNAL = {
    "model_name": "mistral-large",
    "litellm_params": {"model": "mistral/mistral-large-latest", "api_key": "os.environ/MISTRAL_LARGE_API_KEY"},
}


def _rendered() -> dict[str, Any]:
    return gateway_config([vllm_entry(VLLM_NAME), ollama_entry(OLLAMA_NAME, OLLAMA_TAG), EXTERNAL],
                          fallbacks=[{VLLM_NAME: [OLLAMA_NAME]}])


def test_points_named_entries_and_leaves_the_rest() -> None:
    rendered = _rendered()
    before = copy.deepcopy(rendered)

    local = point_at_local(rendered, {VLLM_NAME: "http://127.0.0.1:5001/v1"})

    assert rendered == before, "input must not be modified"
    by_name = {e["model_name"]: e["litellm_params"] for e in local["model_list"]}
    assert by_name[VLLM_NAME]["api_base"] == "http://127.0.0.1:5001/v1"
    assert by_name[VLLM_NAME]["model"] == f"hosted_vllm/{VLLM_NAME}"
    assert by_name[OLLAMA_NAME]["api_base"] == service_url(OLLAMA_NAME)
    assert by_name["mistral-large"] == EXTERNAL["litellm_params"]
    assert local["router_settings"] == rendered["router_settings"]
    assert local["general_settings"] == rendered["general_settings"]
    # A deep copy: editing the result cannot reach back into the input.
    local["router_settings"]["fallbacks"].append({"x": ["y"]})
    assert rendered == before


def test_every_replica_of_a_model_is_repointed() -> None:
    rendered = gateway_config([vllm_entry("pair"), vllm_entry("pair")], fallbacks=[])
    local = point_at_local(rendered, {"pair": "http://127.0.0.1:5002/v1/"})
    assert [e["litellm_params"]["api_base"] for e in local["model_list"]] == ["http://127.0.0.1:5002/v1"] * 2


def test_unknown_model_names_are_all_reported() -> None:
    with pytest.raises(ValueError) as err:
        point_at_local(_rendered(), {"nope": "http://127.0.0.1:1/v1", VLLM_NAME: "http://127.0.0.1:2/v1",
                                     "also-missing": "http://127.0.0.1:3/v1"})
    assert "also-missing, nope" in str(err.value)
    assert VLLM_NAME not in str(err.value)


def test_config_without_model_list_names_the_model() -> None:
    with pytest.raises(ValueError, match="qwen-7b"):
        point_at_local({"general_settings": {}}, {VLLM_NAME: "http://127.0.0.1:1/v1"})


def test_url_must_be_an_openai_v1_base() -> None:
    with pytest.raises(ValueError, match=VLLM_NAME):
        point_at_local(_rendered(), {VLLM_NAME: "http://127.0.0.1:5001"})
