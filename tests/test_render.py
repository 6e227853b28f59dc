"""What `stackgen render` decides, read back from its files."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
import yaml
from click.testing import CliRunner

from stackgen import examples, manifests
from stackgen.cli import cli
from stackgen.load import load_text
from stackgen.render import render_files
from tests.support.paths import REPO

EXAMPLES = examples.names()




def rendered(name: str, *args: str) -> dict[str, str]:
    stack = examples.resolve(name).stack
    return render_files(stack, *args, with_manifests=False)


def values_of(name: str) -> dict:
    return yaml.safe_load(rendered(name)["values.yaml"])


def test_built_in_examples() -> None:
    assert {"kind-cpu", "gpu-fleet", "hybrid"} <= set(EXAMPLES)
    result = CliRunner().invoke(cli, ["examples"])
    assert result.exit_code == 0
    lines = result.output.splitlines()
    assert [line.split()[0] for line in lines] == EXAMPLES
    assert all(len(line.split(maxsplit=1)) == 2 for line in lines)


def test_kind_cpu_runs_vllm_on_its_cpu_image() -> None:
    models = values_of("kind-cpu")["models"]
    vllm = models["vllm-small"]
    assert vllm["image"]["repository"].endswith("vllm-cpu-release-repo")
    assert "gpu" not in vllm
    assert int(vllm["env"]["VLLM_CPU_KVCACHE_SPACE"]) >= 1
    assert vllm["vllm"]["maxModelLen"] == 4096
    ollama = models["ollama-small"]
    assert ollama["engine"] == "ollama" and ollama["model"] == "qwen2.5:0.5b" and "gpu" not in ollama


def test_gpu_fleet_resolves_parsers_gpus_and_shm() -> None:
    models = values_of("gpu-fleet")["models"]
    assert models["qwen-7b"]["vllm"]["toolCallParser"] == "hermes"
    assert "toolCallParser" not in models["mistral-7b"]["vllm"]  # tool calling not asked for
    big = models["llama-70b"]
    assert big["vllm"]["tensorParallelSize"] == 2
    assert big["gpu"] == {"resource": "nvidia.com/gpu", "count": 2}
    assert big["shmSize"] == "4Gi"
    assert big["runtimeClassName"] == "nvidia"
    assert big["hfTokenSecret"] == {"secretName": "hf-token", "key": "token"}
    assert big["cache"] == {"type": "persistentVolumeClaim", "size": "200Gi", "storageClassName": "premium-rwo"}
    assert models["gemma-ollama"]["gpu"] == {"resource": "nvidia.com/gpu", "count": 1}
    assert models["qwen-7b"]["tolerations"] == [{"key": "nvidia.com/gpu", "operator": "Exists", "effect": "NoSchedule"}]


def test_hybrid_routes_every_kind_of_endpoint_through_the_gateway() -> None:
    files = rendered("hybrid")
    config = yaml.safe_load(files["litellm/config.yaml"])
    routes = {e["model_name"]: e["litellm_params"] for e in config["model_list"]}
    assert routes["local-llama"]["model"] == "hosted_vllm/local-llama"
    assert routes["local-llama"]["api_base"] == "http://hybrid-local-llama/v1"
    assert routes["local-ollama"] == {"model": "openai/llama3.2:3b", "api_base": "http://hybrid-local-ollama/v1",
                                      "api_key": "none", "timeout": 600}
    assert routes["together-llama"]["model"] == "together_ai/meta-llama/Llama-3.3-70B-Instruct-Turbo"
    assert routes["together-llama"]["api_key"] == "os.environ/TOGETHER_LLAMA_API_KEY"
    assert routes["mistral-large"]["model"] == "mistral/mistral-large-latest"
    assert routes["lm-studio"]["api_base"] == "http://10.0.0.5:1234/v1"
    assert config["router_settings"]["fallbacks"] == [{"local-llama": ["together-llama"]}]
    assert config["general_settings"]["master_key"] == "os.environ/LITELLM_MASTER_KEY"
    values = yaml.safe_load(files["values.yaml"])
    assert values["gateway"]["config"] == config  # the chart's ConfigMap gets exactly this
    assert values["gateway"]["secretEnv"]["MISTRAL_LARGE_API_KEY"] == {"secretName": "mistral-api", "key": "api-key"}
    assert values["gateway"]["masterKey"] == {"secretName": "gateway-master-key", "key": "master-key"}
    assert set(values["models"]) == {"local-llama", "local-ollama"}


def test_autogen_files_point_at_the_gateway() -> None:
    files = rendered("hybrid")
    config_list = json.loads(files["autogen/OAI_CONFIG_LIST"])
    url = "http://hybrid-gateway.agents.svc.cluster.local:4000/v1"
    assert [e["model"] for e in config_list] == ["local-llama", "local-ollama", "together-llama", "mistral-large", "lm-studio"]
    assert all(e["base_url"] == url and "api_key" not in e for e in config_list)
    by_name = {e["model"]: e for e in config_list}
    assert by_name["local-llama"]["tags"] == ["local", "tools"]
    assert by_name["local-llama"]["price"] == [0, 0]
    assert "price" not in by_name["mistral-large"]  # a cloud model has a real price; AutoGen knows or asks
    clients = json.loads(files["autogen/model_clients.json"])
    assert clients["local-llama"]["config"]["model_info"]["function_calling"] is True
    assert clients["lm-studio"]["config"]["model_info"]["function_calling"] is False
    assert clients["mistral-large"]["config"]["model_info"]["family"] == "mistral"
    assert "STACK_GATEWAY_KEY" in files["autogen/README.md"]


def test_gateway_url_defaults_to_ingress_and_can_be_overridden() -> None:
    fleet = json.loads(rendered("gpu-fleet")["autogen/OAI_CONFIG_LIST"])
    assert {e["base_url"] for e in fleet} == {"https://llm.example.com/v1"}
    custom = json.loads(rendered("kind-cpu", "http://localhost:4000/v1")["autogen/OAI_CONFIG_LIST"])
    assert {e["base_url"] for e in custom} == {"http://localhost:4000/v1"}


@pytest.mark.parametrize("name", EXAMPLES)
def test_no_secret_values_and_no_literal_keys(name: str) -> None:
    for path, text in rendered(name).items():
        assert "sk-" not in text, path
        data = yaml.safe_load(text) if path.endswith(".yaml") else None
        if path == "values.yaml":
            for key in data["gateway"].get("secretEnv", {}).values():
                assert set(key) == {"secretName", "key"}


def test_render_is_byte_identical(tmp_path: Path) -> None:
    runner = CliRunner()
    for attempt in ("a", "b"):
        result = runner.invoke(cli, ["render", "gpu-fleet", "-o", str(tmp_path / attempt)])
        assert result.exit_code == 0, result.output
    files_a = sorted(p.relative_to(tmp_path / "a") for p in (tmp_path / "a").rglob("*") if p.is_file())
    files_b = sorted(p.relative_to(tmp_path / "b") for p in (tmp_path / "b").rglob("*") if p.is_file())
    assert files_a == files_b and any(str(p).startswith("manifests/") for p in files_a)
    for rel in files_a:
        assert (tmp_path / "a" / rel).read_bytes() == (tmp_path / "b" / rel).read_bytes(), rel


def test_default_render_is_kind_cpu_into_out(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    result = CliRunner().invoke(cli, ["render"])
    assert result.exit_code == 0, result.output
    assert result.output.startswith("wrote ") and result.output.rstrip().endswith("files to out")
    values = yaml.safe_load((tmp_path / "out" / "values.yaml").read_text())
    assert values["fullnameOverride"] == "kind-cpu"
    kustomization = yaml.safe_load((tmp_path / "out" / "manifests" / "kustomization.yaml").read_text())
    assert kustomization["namespace"] == "stackgen"
    for resource in kustomization["resources"]:
        assert (tmp_path / "out" / "manifests" / resource).is_file()


def test_missing_helm_is_a_clear_error(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # A checkout with no .tools/bin (as an installed wheel has none: tests/chart/test_wheel.py), no helm on PATH.
    chart = tmp_path / "charts" / "inference-stack"
    shutil.copytree(REPO / "charts" / "inference-stack", chart)
    monkeypatch.setenv("STACKGEN_CHART", str(chart))
    monkeypatch.setattr(manifests, "CHECKOUT", tmp_path)
    monkeypatch.setenv("PATH", str(tmp_path))
    monkeypatch.delenv("STACKGEN_HELM", raising=False)
    result = CliRunner().invoke(cli, ["render", "kind-cpu", "-o", str(tmp_path / "out")])
    assert result.exit_code == 2
    assert "helm is not on PATH" in result.output and "--no-manifests" in result.output
    assert not (tmp_path / "out").exists()


def test_the_checkouts_helm_is_found_without_path(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """In an activated venv only .venv/bin is on PATH; the helm `make setup` installed beside it is found."""
    assert (REPO / ".tools" / "bin" / "helm").is_file(), "make setup installs helm into .tools/bin"
    monkeypatch.setenv("PATH", str(REPO / ".venv" / "bin"))
    monkeypatch.delenv("STACKGEN_HELM", raising=False)
    monkeypatch.delenv("STACKGEN_CHART", raising=False)
    result = CliRunner().invoke(cli, ["render", "kind-cpu", "-o", str(tmp_path / "out")])
    assert result.exit_code == 0, result.output
    assert (tmp_path / "out" / "manifests" / "kustomization.yaml").is_file()


def test_init_writes_a_spec_that_renders(tmp_path: Path) -> None:
    runner = CliRunner()
    spec = tmp_path / "stack.yaml"
    assert runner.invoke(cli, ["init", str(spec)]).exit_code == 0
    again = runner.invoke(cli, ["init", str(spec)])
    assert again.exit_code == 2 and "--force" in again.output
    result = runner.invoke(cli, ["validate", str(spec)])
    assert result.exit_code == 0 and result.stdout == f"{spec}: ok (1 models)\n"


def test_rollout_strategy_is_decided_per_model() -> None:
    """GPU holders roll in place (a surge pod would wait for a GPU a full pool never frees); CPU ones surge."""
    in_place = {"type": "RollingUpdate", "rollingUpdate": {"maxSurge": 0, "maxUnavailable": 1}}
    surge = {"type": "RollingUpdate", "rollingUpdate": {"maxSurge": 1, "maxUnavailable": 0}}
    fleet = values_of("gpu-fleet")["models"]
    assert {name: m["strategy"] for name, m in fleet.items()} == {name: in_place for name in fleet}
    kind = values_of("kind-cpu")["models"]
    assert {name: m["strategy"] for name, m in kind.items()} == {name: surge for name in kind}


def test_ollama_from_a_mirror_keeps_the_librarys_facts_and_pulls_insecurely() -> None:
    """A library model in an air-gapped registry mirror is sized like the library's, pulled over plain
    HTTP when the spec says so, and kept loaded (OLLAMA_KEEP_ALIVE -1) unless the spec says otherwise."""
    mirrored = GOOD_OLLAMA.replace("model: qwen2.5:0.5b", "model: mirror.internal:5000/library/qwen2.5:0.5b\n    "
                                   "insecureRegistry: true")
    values = yaml.safe_load(render_files(load_text(mirrored), with_manifests=False)["values.yaml"])["models"]["small"]
    assert values["ollama"] == {"contextLength": 8192, "keepAlive": "-1", "insecure": True}
    assert values["cache"]["size"] == "10Gi"  # from the catalog's qwen2.5:0.5b
    kept = GOOD_OLLAMA.replace("model: qwen2.5:0.5b", "model: qwen2.5:0.5b\n    keepAlive: 30m")
    values = yaml.safe_load(render_files(load_text(kept), with_manifests=False)["values.yaml"])["models"]["small"]
    assert values["ollama"] == {"contextLength": 8192, "keepAlive": "30m"}


GOOD_OLLAMA = """\
name: team
profiles:
  cpu: {cpu: "1", memory: 2Gi}
models:
  - name: small
    engine: ollama
    model: qwen2.5:0.5b
    profile: cpu
"""
