"""LoRA adapters (`models[].adapters`): each is a model name of its own, everywhere a model name appears, served by
its base model's vLLM server; validate refuses what vLLM would refuse when it starts, and what no engine here
has been proven to serve. The real server and gateway serving them are in tests/engines/test_frameworks.py."""

from __future__ import annotations

import json

import pytest
import yaml

from stackgen import agents
from stackgen.errors import StackgenError
from stackgen.load import load_text
from stackgen.plan import AdapterPlan, plan
from stackgen.render import render_files
from tests.support import CPU_PROFILE, VLLM_CODER

SPEC = ("""\
name: lora
profiles:
""" + CPU_PROFILE + """\
models:
""" + VLLM_CODER + """\
    toolCalling: true
    tags: [local]
    adapters:
      - {name: sql-agent, source: my-org/sql-lora, rank: 8}
      - {name: support, source: /root/.cache/huggingface/adapters/support, rank: 20, tags: [support]}
  - name: desk
    engine: external
    baseUrl: http://192.168.1.20:1234/v1
    fallbacks: [support]
""")
ADAPTERS = ["sql-agent", "support"]
# The same stack with no adapters (and no fallback to one).
NO_ADAPTERS = (SPEC.split("    adapters:")[0]
               + SPEC.split("rank: 20, tags: [support]}\n")[1].replace("    fallbacks: [support]\n", ""))


def refusals(text: str) -> list[str]:
    with pytest.raises(StackgenError) as raised:
        plan(load_text(text, "stack.yaml"))
    return [f"{p.path}: {p.message} ({p.fix})" for p in raised.value.problems]


@pytest.fixture(scope="module")
def files() -> dict[str, str]:
    return render_files(load_text(SPEC, "stack.yaml"))


def _container(files: dict[str, str]) -> dict:
    deployment = yaml.safe_load(files["manifests/deployment-lora-coder.yaml"])
    return deployment["spec"]["template"]["spec"]["containers"][0]


def test_the_server_starts_with_every_adapter_and_room_for_all(files: dict[str, str]) -> None:
    args = _container(files)["args"]
    at = args.index("--lora-modules")
    assert args[at - 1] == "--enable-lora"
    assert args[at + 1:at + 3] == ["sql-agent=my-org/sql-lora", "support=/root/.cache/huggingface/adapters/support"]
    # Every adapter in one batch, and the smallest rank vLLM accepts above the largest adapter's (20 -> 32).
    assert args[args.index("--max-loras") + 1] == "2" and args[args.index("--max-lora-rank") + 1] == "32"


def test_ready_only_while_the_server_lists_every_adapter(files: dict[str, str]) -> None:
    probe = _container(files)["readinessProbe"]["exec"]["command"]
    assert probe[:2] == ["python3", "-c"] and probe[3:] == ADAPTERS
    assert "http://127.0.0.1:8000/v1/models" in probe[2]


def test_without_adapters_readiness_stays_the_health_path() -> None:
    container = _container(render_files(load_text(NO_ADAPTERS, "stack.yaml")))
    assert container["readinessProbe"]["httpGet"]["path"] == "/health" and "--enable-lora" not in container["args"]


def test_each_adapter_is_a_model_name_of_its_own_behind_the_base_server(files: dict[str, str]) -> None:
    config = yaml.safe_load(files["litellm/config.yaml"])
    entries = {e["model_name"]: e for e in config["model_list"]}
    assert list(entries) == ["coder", *ADAPTERS, "desk"]
    for name in ADAPTERS:
        params = entries[name]["litellm_params"]
        assert params["model"] == f"hosted_vllm/{name}"
        assert params["api_base"] == entries["coder"]["litellm_params"]["api_base"]
        assert entries[name]["model_info"] == entries["coder"]["model_info"]
    assert config["router_settings"]["fallbacks"] == [{"desk": ["support"]}]


def test_every_framework_lists_the_adapters_with_the_base_models_abilities(files: dict[str, str]) -> None:
    classic = {e["model"]: e for e in json.loads(files["autogen/OAI_CONFIG_LIST"])}
    assert classic["sql-agent"]["tags"] == ["local"] and classic["support"]["tags"] == ["support"]
    clients = json.loads(files["autogen/model_clients.json"])
    for name in ADAPTERS:
        assert clients[name]["config"]["model_info"] == clients["coder"]["config"]["model_info"]
    for framework in agents.MODULES.values():
        source = files[framework.path]
        assert all(f"'{name}': {{" in source for name in ADAPTERS), framework.name
    resolved = plan(load_text(SPEC, "stack.yaml"))
    adapter = resolved.model("support")
    assert isinstance(adapter, AdapterPlan) and adapter.base == "coder"
    assert adapter.capabilities == resolved.model("coder").capabilities and adapter.context_length == 4096


def test_a_routed_base_forwards_the_conversation_id_for_its_adapters_too() -> None:
    text = SPEC.replace("    maxModelLen: 4096\n", "    maxModelLen: 4096\n    replicas: 2\n")
    config = yaml.safe_load(render_files(load_text(text, "stack.yaml"), with_manifests=False)["litellm/config.yaml"])
    forwarded = config["litellm_settings"]["model_group_settings"]["forward_client_headers_to_llm_api"]
    assert forwarded == ["coder", *ADAPTERS]
    routed = {e["model_name"]: e["litellm_params"]["api_base"] for e in config["model_list"]}
    assert routed["support"] == routed["coder"] == "http://lora-coder-router/v1"


@pytest.mark.parametrize("edit, expected", [
    (("rank: 8}", "rank: 8}\n      - {name: coder, source: a/b, rank: 8}"),
     "models[0].adapters[1].name: duplicate model name 'coder' (also models[0]) (give every model and adapter a unique name)"),
    (("name: support", "name: sql-agent"),
     "models[0].adapters[1].name: duplicate model name 'sql-agent' (also models[0].adapters[0])"),
    (("    maxModelLen: 4096\n", "    maxModelLen: 4096\n    maxLoraRank: 16\n"),
     "models[0].adapters[1].rank: adapter support has rank 20, above maxLoraRank 16: vLLM would refuse it when it "
     "starts (raise maxLoraRank to 32 or more, or remove maxLoraRank)"),
    (("    maxModelLen: 4096\n", "    maxModelLen: 4096\n    maxLoras: 3\n"),
     "models[0].maxLoras: 3 is more than the 2 adapter(s) (set maxLoras to at most 2, or remove it)"),
    (("fallbacks: [support]", "fallbacks: [nope]"), "models[1].fallbacks[0]: no model named 'nope' (name one of: "
     "coder, desk, sql-agent, support)"),
])
def test_refusals_say_what_and_how_to_fix(edit: tuple[str, str], expected: str) -> None:
    found = refusals(SPEC.replace(*edit))
    assert any(line.startswith(expected) for line in found), found


def test_max_loras_without_adapters_is_refused() -> None:
    text = NO_ADAPTERS.replace("    tags: [local]\n", "    tags: [local]\n    maxLoras: 2\n")
    assert refusals(text) == ["models[0].maxLoras: the model has no adapters (remove maxLoras)"]


@pytest.mark.parametrize("engine, model, extra, reason", [
    ("ollama", "qwen2.5:0.5b", "", "Ollama takes an adapter only through `ollama create`"),
    ("llamacpp", "Qwen/Qwen2.5-0.5B-Instruct-GGUF", "    file: qwen2.5-0.5b-instruct-q4_k_m.gguf\n",
     "llama-server takes GGUF adapters with --lora"),
    ("custom", "my-model", "    image: ghcr.io/acme/server:1\n    port: 8080\n    healthPath: /health\n",
     "stackgen cannot know how a server it does not know loads them"),
])
def test_engines_not_proven_with_adapters_refuse_them_with_the_reason(engine: str, model: str, extra: str,
                                                                        reason: str) -> None:
    text = (SPEC.replace("engine: vllm", f"engine: {engine}").replace("Qwen/Qwen2.5-0.5B-Instruct\n", f"{model}\n")
            .replace("    maxModelLen: 4096\n", extra))
    found = [line for line in refusals(text) if line.startswith("models[0].adapters:")]
    assert len(found) == 1 and f"{engine} cannot serve LoRA adapters here: {reason}" in found[0], found
    assert found[0].endswith("(serve the base model with vllm, or remove adapters)")


def test_a_source_that_is_neither_a_hub_id_nor_a_path_is_refused_in_words() -> None:
    found = refusals(SPEC.replace("source: my-org/sql-lora", "source: https://hf.co/my-org/sql-lora"))
    assert any("'https://hf.co/my-org/sql-lora' is not a Hugging Face id or an absolute path" in line for line in found)
    assert not any("^" in line for line in found)


def test_the_adapters_memory_counts_and_a_set_that_does_not_fit_is_refused_with_numbers() -> None:
    gpu = SPEC.replace('  cpu: {cpu: "2", memory: 6Gi}',
                       '  cpu: {cpu: "8", memory: 32Gi, gpu: {resource: nvidia.com/gpu, count: 1, memoryGiB: 24}}')
    gpu = gpu.replace("Qwen/Qwen2.5-0.5B-Instruct", "Qwen/Qwen2.5-7B-Instruct").replace("maxModelLen: 4096", "maxModelLen: 32768")
    fits = plan(load_text(gpu, "stack.yaml")).served[0].sizing.capacity
    many = gpu.replace("      - {name: sql-agent, source: my-org/sql-lora, rank: 8}\n", "".join(
        f"      - {{name: a{i}, source: my-org/a{i}, rank: 64}}\n" for i in range(30)))
    found = refusals(many)
    assert any("for 31 adapter slot(s) of rank 64: maxLoras, maxLoraRank" in line and "lower maxLoras" in line
               for line in found), found
    assert fits is not None and fits.overhead > 3.0  # the two adapters' slots on top of vLLM's own 3 GiB
