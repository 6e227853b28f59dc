"""point_at_local and rewire on rendered gateway configs: only addresses change, on a copy."""

from __future__ import annotations

import copy
from typing import Any

import pytest
import yaml

from stackgen import examples
from stackgen.errors import StackgenError
from stackgen.localstack import point_at_local, rewire
from stackgen.plan import plan
from stackgen.render import render_files


def _rendered(name: str = "hybrid") -> dict[str, Any]:
    text = render_files(examples.resolve(name).stack, with_manifests=False)["litellm/config.yaml"]
    config: dict[str, Any] = yaml.safe_load(text)
    return config


def _params(config: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {e["model_name"]: e["litellm_params"] for e in config["model_list"]}


def test_points_named_entries_and_leaves_the_rest() -> None:
    rendered = _rendered()
    before = copy.deepcopy(rendered)

    local = point_at_local(rendered, {"local-llama": "http://127.0.0.1:5001/v1", "mistral-large": "http://127.0.0.1:5002/v1"})

    assert rendered == before, "input must not be modified"
    got, was = _params(local), _params(before)
    assert got["local-llama"] == {**was["local-llama"], "api_base": "http://127.0.0.1:5001/v1"}
    # A hosted provider gains an api_base; its model and key reference stay.
    assert got["mistral-large"] == {**was["mistral-large"], "api_base": "http://127.0.0.1:5002/v1"}
    assert {n: p for n, p in got.items() if n not in ("local-llama", "mistral-large")} == {
        n: p for n, p in was.items() if n not in ("local-llama", "mistral-large")}
    assert {k: v for k, v in local.items() if k != "model_list"} == {k: v for k, v in before.items() if k != "model_list"}
    # A deep copy: editing the result cannot reach back into the input.
    local["router_settings"]["fallbacks"].append({"x": ["y"]})
    assert rendered == before


def test_every_entry_of_a_model_name_is_repointed() -> None:
    rendered = _rendered("kind-cpu")
    rendered["model_list"].append(copy.deepcopy(rendered["model_list"][0]))
    name = rendered["model_list"][0]["model_name"]
    local = point_at_local(rendered, {name: "http://127.0.0.1:5002/v1/"})
    bases = [e["litellm_params"]["api_base"] for e in local["model_list"] if e["model_name"] == name]
    assert bases == ["http://127.0.0.1:5002/v1"] * 2


def test_unknown_model_names_are_all_reported() -> None:
    with pytest.raises(ValueError) as err:
        point_at_local(_rendered(), {"nope": "http://127.0.0.1:1/v1", "local-llama": "http://127.0.0.1:2/v1",
                                     "also-missing": "http://127.0.0.1:3/v1"})
    assert "also-missing, nope" in str(err.value)
    assert "local-llama" not in str(err.value)


def test_config_without_model_list_names_the_model() -> None:
    with pytest.raises(ValueError, match="local-llama"):
        point_at_local({"general_settings": {}}, {"local-llama": "http://127.0.0.1:1/v1"})


def test_url_must_be_an_openai_v1_base() -> None:
    with pytest.raises(ValueError, match="local-llama"):
        point_at_local(_rendered(), {"local-llama": "http://127.0.0.1:5001"})


def test_rewire_needs_a_backend_for_every_in_cluster_model() -> None:
    resolved = plan(examples.resolve("hybrid").stack)
    with pytest.raises(StackgenError) as err:
        rewire(_rendered(), resolved, {"local-llama": "http://127.0.0.1:1/v1", "typo": "http://127.0.0.1:2/v1",
                                       "lm-studio": "http://127.0.0.1:3"})
    messages = [p.message for p in err.value.problems]
    assert messages == ["no model named 'typo' in stack hybrid",
                        "local-ollama runs in the cluster, so it needs a local stand-in",
                        "lm-studio: 'http://127.0.0.1:3' does not end in /v1"]
    assert {p.path for p in err.value.problems} == {"--backend"}


def test_rewire_leaves_externals_without_a_backend_alone() -> None:
    resolved = plan(examples.resolve("hybrid").stack)
    local = rewire(_rendered(), resolved, {"local-llama": "http://127.0.0.1:1/v1", "local-ollama": "http://127.0.0.1:2/v1"})
    assert _params(local)["mistral-large"] == _params(_rendered())["mistral-large"]
    assert _params(local)["local-ollama"]["api_base"] == "http://127.0.0.1:2/v1"
