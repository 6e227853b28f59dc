"""`mirror:` in the spec: every image the chart renders, every Ollama model and every Hugging Face download of
the stack comes from the cluster's own mirrors, and a stack that would still reach out is refused at the field
that does. (What reaches a real registry is the node tier's to prove.)"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import yaml
from click.testing import CliRunner

from stackgen.cli import cli
from tests.pins import pin
from tests.support.rendered import HUB, REGISTRY, containers, objects, validate

LITELLM, REDIS, CURL = pin("litellm"), pin("redis"), pin("curl")
SPEC = f"""\
name: team
namespace: llm
mirror: {{registry: "{REGISTRY}", insecure: true, huggingFace: "{HUB}"}}
gateway: {{replicas: 2}}
profiles:
  cpu: {{cpu: "2", memory: 8Gi}}
models:
  - {{name: qwen, engine: vllm, model: Qwen/Qwen2.5-0.5B-Instruct, profile: cpu, replicas: 2,
     adapters: [{{name: sql, source: my-org/sql-lora, rank: 8}}]}}
  - {{name: small, engine: ollama, model: "qwen2.5:0.5b", profile: cpu}}
  - {{name: gguf, engine: llamacpp, model: Qwen/Qwen2.5-0.5B-Instruct-GGUF, file: qwen2.5-0.5b-instruct-q4_k_m.gguf,
     profile: cpu}}
"""


def env_of(objs: list[dict[str, Any]], deployment: str) -> dict[str, str]:
    pod = next(o for o in objs if o["kind"] == "Deployment" and o["metadata"]["name"] == deployment)
    return {e["name"]: e.get("value", "") for c in containers([pod]) for e in c.get("env", [])}


def test_every_image_the_chart_renders_comes_from_the_mirror() -> None:
    objs = objects(SPEC)
    images = {c["image"] for c in containers(objs)}
    # The gateway, Redis, the router, every engine and the helm test pod.
    assert len(images) >= 6, images
    assert all(image.startswith(f"{REGISTRY}/") for image in images), images
    assert f"{REGISTRY}/library/redis:{REDIS}" in images and f"{REGISTRY}/berriai/litellm:main-v{LITELLM}" in images


def test_ollama_pulls_its_model_from_the_mirror_and_the_gateway_asks_for_that_name() -> None:
    objs = objects(SPEC)
    env = env_of(objs, "team-small")
    assert env["OLLAMA_MODEL"] == f"{REGISTRY}/library/qwen2.5:0.5b"
    config = yaml.safe_load(next(o for o in objs if o["kind"] == "ConfigMap" and o["metadata"]["name"] == "team-gateway")
                            ["data"]["config.yaml"])
    routes = {m["model_name"]: m["litellm_params"]["model"] for m in config["model_list"]}
    assert routes["small"].endswith(f"/{REGISTRY}/library/qwen2.5:0.5b"), routes


@pytest.mark.parametrize("deployment", ["team-qwen", "team-gguf"])
def test_servers_that_download_from_the_hub_read_the_hub_mirror(deployment: str) -> None:
    assert env_of(objects(SPEC), deployment)["HF_ENDPOINT"] == HUB


def test_plan_says_what_each_server_downloads_and_from_where(tmp_path: Path) -> None:
    path = tmp_path / "stack.yaml"
    path.write_text(SPEC)
    result = CliRunner().invoke(cli, ["plan", str(path), "--format", "json"])
    assert result.exit_code == 0, result.output
    report = json.loads(result.output)
    assert {(d["model"], d["ref"], d["from"]) for d in report["downloads"]} == {
        ("qwen", "Qwen/Qwen2.5-0.5B-Instruct", HUB), ("qwen", "my-org/sql-lora", HUB),
        ("small", f"{REGISTRY}/library/qwen2.5:0.5b", f"{REGISTRY} over plain HTTP"),
        ("gguf", "Qwen/Qwen2.5-0.5B-Instruct-GGUF qwen2.5-0.5b-instruct-q4_k_m.gguf", HUB)}
    assert report["imageRegistry"] == REGISTRY


@pytest.mark.parametrize(("change", "path", "fix"), [
    # No Hub mirror: vLLM's weights and adapter, llama.cpp's GGUF.
    ((f', huggingFace: "{HUB}"', ""), "models[0].model", "set mirror.huggingFace"),
    ((f', huggingFace: "{HUB}"', ""), "models[0].adapters[0].source", "set mirror.huggingFace"),
    ((f', huggingFace: "{HUB}"', ""), "models[2].model", "set mirror.huggingFace"),
    # An Ollama model from another registry than the mirror.
    (('"qwen2.5:0.5b"', '"other.registry:5000/library/qwen2.5:0.5b"'), "models[1].model",
     "the mirror's registry is used"),
    # Ollama cannot read a registry with a path.
    ((f'registry: "{REGISTRY}"', 'registry: "harbor.corp/mirror"'), "mirror.registry", "name a host[:port] alone"),
    # A scheme where the host goes: refused in words.
    ((f'registry: "{REGISTRY}"', f'registry: "http://{REGISTRY}"'), "mirror.registry", "without a scheme"),
])
def test_a_stack_that_would_still_reach_out_is_refused_at_the_field(tmp_path: Path, change: tuple[str, str],
                                                                     path: str, fix: str) -> None:
    code, output = validate(tmp_path, SPEC.replace(*change))
    assert code == 2 and path in output and fix in output, output


def test_a_hosted_provider_is_reached_only_through_an_endpoint_inside(tmp_path: Path) -> None:
    spec = yaml.safe_load(SPEC)
    spec["models"].append({"name": "cloud", "engine": "external", "provider": "mistral", "model": "mistral-small-latest",
                           "apiKey": {"secretName": "mistral", "key": "api-key"}})
    code, output = validate(tmp_path, yaml.safe_dump(spec))
    assert code == 2 and "models[3].provider" in output and "set baseUrl" in output, output
    spec["models"][3]["baseUrl"] = "http://mistral-proxy.internal/v1"
    code, output = validate(tmp_path, yaml.safe_dump(spec))
    assert code == 0 and output.endswith(": ok (4 models)\n"), output


def test_a_cache_filled_beforehand_needs_no_hub_mirror(tmp_path: Path) -> None:
    spec = yaml.safe_load(SPEC)
    del spec["mirror"]["huggingFace"]
    spec["models"] = [{"name": "qwen", "engine": "vllm", "model": "Qwen/Qwen2.5-0.5B-Instruct", "profile": "cpu",
                       "env": {"HF_HUB_OFFLINE": "1"}}]
    code, output = validate(tmp_path, yaml.safe_dump(spec))
    assert code == 0, output


def test_bundle_lists_every_image_and_model_with_its_source_and_place(tmp_path: Path) -> None:
    path = tmp_path / "stack.yaml"
    path.write_text(SPEC)
    result = CliRunner().invoke(cli, ["bundle", str(path), "--format", "json"])
    assert result.exit_code == 0, result.output
    found = {(i["kind"], i["source"], i["target"]) for i in json.loads(result.output)}
    images = {(source, target) for kind, source, target in found if kind == "image"}
    # Exactly the images the chart renders, the helm test pod's included, each from its source.
    rendered = {c["image"] for c in containers(objects(SPEC))}
    curl = f"curlimages/curl:{CURL}"
    assert {target for _, target in images} >= rendered - {f"{REGISTRY}/{curl}"}
    assert (f"redis:{REDIS}", f"{REGISTRY}/library/redis:{REDIS}") in images
    assert (curl, f"{REGISTRY}/{curl}") in images
    assert all(target == f"{REGISTRY}/{source.split('/', 1)[1] if '.' in source.split('/')[0] else source}"
               for source, target in images if "/" in source), images
    assert ("ollama", "registry.ollama.ai/library/qwen2.5:0.5b", f"{REGISTRY}/library/qwen2.5:0.5b") in found
    assert {(source, target) for kind, source, target in found if kind == "huggingface"} == {
        ("Qwen/Qwen2.5-0.5B-Instruct", HUB), ("my-org/sql-lora", HUB),
        ("Qwen/Qwen2.5-0.5B-Instruct-GGUF qwen2.5-0.5b-instruct-q4_k_m.gguf", HUB)}


def test_bundle_refuses_a_stack_without_a_mirror() -> None:
    result = CliRunner().invoke(cli, ["bundle", "kind-cpu"])
    assert result.exit_code == 2 and "mirror: the stack names no mirror to fill" in result.output, result.output
