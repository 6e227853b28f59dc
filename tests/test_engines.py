"""Every engine through the same checks: one row per engine, and a new engine is one more row.

Each row is a model of that engine. It must validate, render, pass the chart's schema and `helm template`,
route through the gateway with its engine's provider, start in a pod on the port its template says, with
three HTTP probes, and report complete AutoGen capabilities. Every accelerator meets every in-cluster
engine: a known one gets an image, an unknown one is refused with a message asking for `image`.
"""

from __future__ import annotations

import json
import textwrap
from pathlib import Path
from typing import Any

import pytest
import yaml
from click.testing import CliRunner

from stackgen.cli import cli
from stackgen.engines import ENGINES, SERVED
from stackgen.load import load_text
from stackgen.plan import plan
from stackgen.render import render_files
from tests.support.paths import CHART

# engine -> (the model's spec lines, the LiteLLM route the gateway must take, the port its pod serves on)
ROWS: dict[str, tuple[str, str, int | None]] = {
    "vllm": ("model: Qwen/Qwen2.5-0.5B-Instruct\nmaxModelLen: 4096\ntoolCalling: true", "hosted_vllm/m", 8000),
    "ollama": ("model: qwen2.5:0.5b\ntoolCalling: true", "openai/qwen2.5:0.5b", 11434),
    "llamacpp": ("model: Qwen/Qwen2.5-0.5B-Instruct-GGUF\nfile: qwen2.5-0.5b-instruct-q4_k_m.gguf\ntoolCalling: true",
                 "openai/m", 8080),
    "custom": ("model: served-id\nimage: ghcr.io/acme/server:1.0\nport: 9000\nhealthPath: /ready\nargs: [--serve]",
               "openai/served-id", 9000),
    "external": ("baseUrl: http://127.0.0.1:1234/v1\nmodel: desk-model", "openai/desk-model", None),
}
AUTOGEN_KEYS = ["vision", "function_calling", "json_output", "family", "structured_output"]
PROFILES = {
    "cpu": "{cpu: '2', memory: 8Gi}",
    "nvidia": "{gpu: {resource: nvidia.com/gpu, count: 1, memoryGiB: 24}, cpu: '4', memory: 32Gi}",
    "amd": "{gpu: {resource: amd.com/gpu, count: 1, memoryGiB: 64}, cpu: '4', memory: 32Gi}",
    "intel": "{gpu: {resource: gpu.intel.com/i915, count: 1, memoryGiB: 16}, cpu: '4', memory: 32Gi}",
}


def spec(engine: str, profile: str = "cpu") -> str:
    body = textwrap.indent(f"name: m\nengine: {engine}\n{ROWS[engine][0]}", "    ").replace("    name:", "  - name:", 1)
    where = f"\n    profile: {profile}" if engine in SERVED else ""
    profiles = "\n".join(f"  {name}: {text}" for name, text in PROFILES.items())
    return f"name: t\nprofiles:\n{profiles}\nmodels:\n{body}{where}\n"


def test_every_engine_has_a_row() -> None:
    assert list(ROWS) == list(ENGINES)


def test_the_chart_knows_every_in_cluster_engine() -> None:
    """Each one has its template, and the values schema accepts its name (and no other)."""
    chart = CHART
    schema = json.loads((chart / "values.schema.json").read_text())
    assert schema["definitions"]["model"]["properties"]["engine"]["enum"] == list(SERVED)
    templates = sorted(p.name for p in (chart / "templates").glob("_engine-*.tpl"))
    assert templates == sorted(f"_engine-{name}.tpl" for name in SERVED)


@pytest.mark.parametrize("engine", list(ROWS))
def test_engine_renders_routes_and_reports_capabilities(engine: str) -> None:
    files = render_files(load_text(spec(engine)))
    entry = yaml.safe_load(files["litellm/config.yaml"])["model_list"][0]
    assert entry["litellm_params"]["model"] == ROWS[engine][1]
    clients = json.loads(files["autogen/model_clients.json"])["m"]["config"]["model_info"]
    assert list(clients) == AUTOGEN_KEYS
    config_list = json.loads(files["autogen/OAI_CONFIG_LIST"])[0]
    assert ("price" in config_list) == (engine in SERVED)  # self-hosted models cost nothing per token
    deployment = files.get("manifests/deployment-t-m.yaml")
    assert (deployment is not None) == (engine in SERVED)
    if deployment is None:
        return
    pod = yaml.safe_load(deployment)["spec"]["template"]["spec"]
    (server,) = pod["containers"]
    assert server["ports"] == [{"name": "http", "containerPort": ROWS[engine][2], "protocol": "TCP"}]
    for probe in ("readinessProbe", "livenessProbe"):
        assert server[probe]["httpGet"]["port"] == "http" and server[probe]["httpGet"]["path"].startswith("/")
    started = server["startupProbe"]  # an HTTP path, or a command that loads the model (Ollama)
    assert started.get("httpGet", {}).get("path", "").startswith("/") or started["exec"]["command"]
    assert pod["volumes"][-1]["name"] == "cache"
    assert any(m["name"] == "cache" for m in server["volumeMounts"])
    policy = yaml.safe_load(files["manifests/networkpolicy-t-m.yaml"])
    assert policy["spec"]["ingress"][0]["ports"] == [{"protocol": "TCP", "port": ROWS[engine][2]}]


# accelerator -> the image each in-cluster engine runs there (None: the chart's default for the engine)
IMAGES = {
    "vllm": {"cpu": "public.ecr.aws/q9t5s3a7/vllm-cpu-release-repo", "nvidia": None, "amd": "vllm/vllm-openai-rocm"},
    "ollama": {"cpu": None, "nvidia": None, "amd": "ollama/ollama"},
    "llamacpp": {"cpu": None, "nvidia": "ghcr.io/ggml-org/llama.cpp", "amd": "ghcr.io/ggml-org/llama.cpp"},
    "custom": {"cpu": "ghcr.io/acme/server", "nvidia": "ghcr.io/acme/server", "amd": "ghcr.io/acme/server"},
}


def test_every_in_cluster_engine_has_an_image_row() -> None:
    assert list(IMAGES) == list(SERVED)


@pytest.mark.parametrize("accelerator", ["cpu", "nvidia", "amd"])
@pytest.mark.parametrize("engine", list(IMAGES))
def test_each_accelerator_gets_its_image(engine: str, accelerator: str) -> None:
    values: dict[str, Any] = yaml.safe_load(render_files(load_text(spec(engine, accelerator)),
                                                         with_manifests=False)["values.yaml"])["models"]["m"]
    expected = IMAGES[engine][accelerator]
    assert values.get("image", {}).get("repository") == expected
    image = values.get("image", {})
    ref = f"{image.get('repository')}:{image.get('tag')}"
    if accelerator == "amd" and engine != "custom":
        assert "rocm" in ref, ref  # never the CUDA build on an AMD node
    if engine == "llamacpp" and accelerator == "nvidia":
        assert image["tag"].startswith("server-cuda-")


@pytest.mark.parametrize("engine", [e for e in IMAGES if e != "custom"])
def test_an_accelerator_without_a_known_image_is_refused(engine: str, tmp_path: Path) -> None:
    path = tmp_path / "stack.yaml"
    path.write_text(spec(engine, "intel"))
    result = CliRunner().invoke(cli, ["validate", str(path)])
    assert result.exit_code == 2
    assert f"models[0].image: stackgen knows no {engine} image for gpu.intel.com/i915 (set image to a {engine} build " \
           "for that accelerator, or use a profile with amd.com or nvidia.com GPUs)" in result.output
    # Naming the image is the fix.
    path.write_text(spec(engine, "intel").replace("    profile: intel", "    profile: intel\n    image: registry.example/srv:1"))
    assert CliRunner().invoke(cli, ["validate", str(path)]).exit_code == 0


CUSTOM_MISSING = [("image", "models[0].image: a custom server runs the image the spec names, and none is named"),
                  ("port", "models[0].port: stackgen cannot know the port a custom server listens on (set port, e.g. 8080)"),
                  ("healthPath", "models[0].healthPath: the pod's probes need a path that answers 200 once the server "
                                 "can serve (set healthPath, e.g. /health or /v1/models)")]


@pytest.mark.parametrize(("field", "line"), CUSTOM_MISSING, ids=[f for f, _ in CUSTOM_MISSING])
def test_custom_without_a_required_piece_is_refused(field: str, line: str, tmp_path: Path) -> None:
    path = tmp_path / "stack.yaml"
    path.write_text("\n".join(ln for ln in spec("custom").splitlines() if not ln.strip().startswith(f"{field}:")) + "\n")
    result = CliRunner().invoke(cli, ["render", str(path), "-o", str(tmp_path / "out"), "--no-manifests"])
    assert result.exit_code == 2 and line in result.output, result.output
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize("engine", sorted(SERVED))
def test_validate_says_what_an_image_it_cannot_prove_restricted_must_do(engine: str, tmp_path: Path) -> None:
    """Every pod runs as a non-root user on a read-only root filesystem. The engines the real node runs that way
    (vLLM, Ollama) say nothing; llama.cpp, which runs there from no image, says so; a server stackgen does not
    know (custom) hears what its image must do."""
    path = tmp_path / "stack.yaml"
    path.write_text(spec(engine))
    result = CliRunner().invoke(cli, ["validate", str(path)])
    assert result.exit_code == 0, result.output
    assert ("read-only root filesystem" in result.output) == (engine in ("custom", "llamacpp")), result.output
    assert ("must be root, fails to start" in result.output) == (engine == "custom"), result.output


@pytest.mark.parametrize("profile", ["amd", "nvidia"])
def test_validate_asks_for_the_device_groups_of_amd_gpus(profile: str, tmp_path: Path) -> None:
    path = tmp_path / "stack.yaml"
    path.write_text(spec("vllm", profile))
    result = CliRunner().invoke(cli, ["validate", str(path)])
    assert result.exit_code == 0, result.output
    assert ("podSecurity.supplementalGroups" in result.output) == (profile == "amd"), result.output


def test_reasoning_models_get_their_parser_and_family() -> None:
    text = spec("vllm", "nvidia").replace("model: Qwen/Qwen2.5-0.5B-Instruct", "model: deepseek-ai/DeepSeek-R1-Distill-Qwen-7B")
    text = text.replace("    toolCalling: true\n", "")
    resolved = plan(load_text(text))
    (m,) = resolved.served
    assert m.settings.chart()["reasoningParser"] == "deepseek_r1" and "toolCallParser" not in m.settings.chart()
    assert m.capabilities.family == "r1"  # AutoGen's own family for R1 models
    qwen3 = plan(load_text(spec("vllm", "nvidia").replace("Qwen/Qwen2.5-0.5B-Instruct", "Qwen/Qwen3-8B"))).served[0]
    assert qwen3.settings.chart()["reasoningParser"] == "qwen3" and qwen3.settings.chart()["toolCallParser"] == "hermes"


def test_a_reasoning_parser_on_a_model_that_does_not_reason_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "stack.yaml"
    path.write_text(spec("vllm").replace("    maxModelLen: 4096", "    maxModelLen: 4096\n    reasoningParser: deepseek_r1"))
    result = CliRunner().invoke(cli, ["validate", str(path)])
    assert result.exit_code == 2
    assert ("models[0].reasoningParser: Qwen/Qwen2.5-0.5B-Instruct does not write a reasoning block, so the parser "
            "would find none (remove reasoningParser)") in result.output


def test_reasoning_without_tool_calls_refuses_tool_calling(tmp_path: Path) -> None:
    """A DeepSeek R1 distill reasons but was not trained to call tools: tool calling is refused."""
    path = tmp_path / "stack.yaml"
    path.write_text(spec("vllm", "nvidia").replace("Qwen/Qwen2.5-0.5B-Instruct", "deepseek-ai/DeepSeek-R1-Distill-Qwen-7B"))
    result = CliRunner().invoke(cli, ["validate", str(path)])
    assert result.exit_code == 2 and "models[0].toolCalling: deepseek-ai/DeepSeek-R1-Distill-Qwen-7B cannot do tool " \
                                     "calling on vLLM" in result.output


# An image older than a flag the render uses (#35): engine -> (that image, the flag, the release named).
OLD_IMAGES = {
    "vllm": ("public.ecr.aws/q9t5s3a7/vllm-cpu-release-repo:v0.17.1", "--shutdown-timeout", "0.18.0"),
    "ollama": ("ollama/ollama:0.5.12", "OLLAMA_CONTEXT_LENGTH", "0.5.13"),
    "llamacpp": ("ghcr.io/ggml-org/llama.cpp:server-b4523", "--jinja", "b4524"),  # the row asks for tool calls
}


def test_every_engine_that_gates_images_has_an_old_image_row() -> None:
    assert sorted(OLD_IMAGES) == sorted(n for n, e in SERVED.items() if e.needs)


def test_each_engines_own_image_meets_what_its_render_needs() -> None:
    for name, engine in SERVED.items():
        for image in [engine.default_image, *engine.images.values()]:
            tag = (image or "").rpartition(":")[2]
            if image and engine.release_of(tag) is not None:
                newest = max((engine.release_of(n.release) or () for n in engine.needs), default=())
                assert engine.release_of(tag) >= newest, (name, image)


@pytest.mark.parametrize("engine", sorted(OLD_IMAGES))
def test_an_image_older_than_a_rendered_flag_is_refused_with_the_release(engine: str, tmp_path: Path) -> None:
    old, flag, release = OLD_IMAGES[engine]
    path = tmp_path / "stack.yaml"
    for image, refused in [(old, True), (f"{old.rpartition(':')[0]}:{release}", False), (f"{old}-custom@sha256:" + "a" * 64,
                                                                                         False)]:
        path.write_text(spec(engine).replace("  - name: m\n", f"  - name: m\n    image: {image}\n"))
        result = CliRunner().invoke(cli, ["validate", str(path)])
        assert (result.exit_code == 2) == refused, result.output
        if refused:
            assert f"models[0].image: {old} runs {engine} " in result.output, result.output
            assert f"older than {release}, the first release with {flag}" in result.output, result.output
            assert result.output.rstrip().endswith(")"), result.output
