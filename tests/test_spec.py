"""Bad input: each case prints the file, the field path and the fix, exits 2, and writes nothing."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from click.testing import CliRunner

from stackgen.cli import cli
from stackgen.engines import ENGINES
from stackgen.plan import RESERVED_COMPONENTS
from tests.support.paths import CHART

# The engines in the order refusals list them (a new engine joins it without an edit here).
ENGINE_LIST = ", ".join(ENGINES)

GOOD = """\
name: team
namespace: llm
profiles:
  l4: {gpu: {resource: nvidia.com/gpu, count: 1, memoryGiB: 24}, cpu: "4", memory: 32Gi}
  cpu: {cpu: "2", memory: 4Gi}
models:
  - name: qwen-7b
    engine: vllm
    model: Qwen/Qwen2.5-7B-Instruct
    profile: l4
    maxModelLen: 8192
    toolCalling: true
  - name: small
    engine: ollama
    model: qwen2.5:0.5b
    profile: cpu
"""


def run_render(tmp_path: Path, text: str) -> tuple[int, str, Path]:
    spec = tmp_path / "stack.yaml"
    spec.write_text(text)
    out = tmp_path / "out"
    result = CliRunner().invoke(cli, ["render", str(spec), "-o", str(out), "--no-manifests"])
    return result.exit_code, result.output, out


BAD_CASES = {
    "yaml syntax": (GOOD.replace("namespace: llm", "namespace: llm\n  oops: [unclosed"),
                    ["stack.yaml:3: column 7: YAML syntax:", "fix the indentation or quoting there"]),
    "unknown field": (GOOD.replace("toolCalling: true", "toolCalls: true"),
                      ["stack.yaml:12: models[0].toolCalls: unknown field (did you mean 'toolCalling'?)"]),
    "wrong type": (GOOD.replace("maxModelLen: 8192", "maxModelLen: lots"),
                   ["stack.yaml:11: models[0].maxModelLen: Input should be a valid integer"]),
    "invalid name": (GOOD.replace("name: team", "name: Team_LLM"),
                     ["stack.yaml:1: name: 'Team_LLM' is not a DNS label", "(use lower-case letters, digits and '-', starting with a letter)"]),
    "duplicate model": (GOOD.replace("name: small", "name: qwen-7b"),
                        ["stack.yaml:13: models[1].name: duplicate model name 'qwen-7b' (also models[0]) (give every model a unique name)"]),
    "missing profile": (GOOD.replace("profile: cpu", "profile: cpus"),
                        ["stack.yaml:16: models[1].profile: no profile named 'cpus' (profiles: l4, cpu)"]),
    "tool calling impossible": (GOOD.replace("model: Qwen/Qwen2.5-7B-Instruct", "model: google/gemma-2-9b-it"),
                                ["stack.yaml:12: models[0].toolCalling: google/gemma-2-9b-it cannot do tool calling on vLLM",
                                 "set toolCallParser"]),
    "tensor parallel over gpus": (GOOD.replace("maxModelLen: 8192", "maxModelLen: 8192\n    tensorParallelSize: 2"),
                                  ["stack.yaml:12: models[0].tensorParallelSize: 2 is larger than the 1 GPU(s) of profile 'l4'",
                                   "set tensorParallelSize to at most 1"]),
    "literal secret": (GOOD.replace("namespace: llm", "namespace: llm\ngateway:\n  masterKey: sk-live-123"),
                       ["stack.yaml:4: gateway.masterKey: a secret must not be written in the spec",
                        "{secretName: NAME, key: KEY}"]),
    "literal secret in env": (GOOD.replace("    profile: cpu\n", "    profile: cpu\n    env: {HF_TOKEN: hf_abc}\n"),
                              ["stack.yaml:17: models[1].env: HF_TOKEN looks like a credential but is given as a literal value"]),
    "bad engine": (GOOD.replace("engine: ollama", "engine: llamafile"),
                   [f"stack.yaml:13: models[1]: engine must be one of: {ENGINE_LIST}"]),
    "missing field": (GOOD.replace("    model: qwen2.5:0.5b\n", ""),
                      ["models[1].model: required field is missing (add model)"]),
    "keep-alive Ollama cannot read": (GOOD.replace("    profile: cpu\n", "    profile: cpu\n    keepAlive: forever\n"),
                                      ["stack.yaml:17: models[1].keepAlive: 'forever' is not a duration Ollama reads, "
                                       "and it would quietly use 5m instead (write e.g. 30m, 24h, 3600 for seconds, or "
                                       "-1 to keep the model loaded)"]),
    "ollama tag outside Ollama's grammar": (GOOD.replace("model: qwen2.5:0.5b", "model: 'qwen2.5 0.5b; rm -rf /'"),
                                            ["stack.yaml:15: models[1].model: 'qwen2.5 0.5b; rm -rf /' is not an Ollama model name",
                                             "(write it like qwen2.5:0.5b, or registry.internal:5000/library/qwen2.5:0.5b)"]),
    "hugging face id outside the hub's rules": (GOOD.replace("Qwen/Qwen2.5-7B-Instruct", "Qwen/-Qwen2.5--7B"),
                                                ["stack.yaml:9: models[0].model: 'Qwen/-Qwen2.5--7B' is not a Hugging Face id",
                                                 "(write it like Qwen/Qwen2.5-7B-Instruct)"]),
    "image outside the reference grammar": (GOOD.replace("    profile: cpu\n", "    profile: cpu\n    image: 'Ollama/Ollama:latest'\n"),
                                            ["stack.yaml:17: models[1].image: 'Ollama/Ollama:latest' is not an image reference"]),
    "litellm's provider name": (GOOD + "  - {name: t, engine: external, provider: together_ai, model: m, apiKey: {secretName: s, key: k}}\n",
                                ["models[2].provider: Input should be 'openai', 'mistral', 'together' or 'openai-compatible' "
                                 "(did you mean 'together'?)"]),
    "engine spelt like the project": (GOOD.replace("engine: ollama", "engine: llama.cpp"),
                                      [f"stack.yaml:13: models[1]: engine must be one of: {ENGINE_LIST} "
                                       "(did you mean 'llamacpp'?)"]),
    "gpu named by vendor": (GOOD.replace("resource: nvidia.com/gpu", "resource: nvidia"),
                            ["stack.yaml:4: profiles.l4.gpu.resource: 'nvidia' is not a device plugin's resource name", "(did you mean 'nvidia.com/gpu'?)"]),
    "a key given twice": (GOOD.replace("    toolCalling: true\n", "    toolCalling: true\n    toolCalling: false\n"),
                          ["stack.yaml:13: models[0].toolCalling: 'toolCalling' is given twice (also line 12); YAML would "
                           "silently keep only this one (remove one of them)"]),
    "insecure pull from the library": (GOOD.replace("    profile: cpu\n", "    profile: cpu\n    insecureRegistry: true\n"),
                                       ["stack.yaml:17: models[1].insecureRegistry: qwen2.5:0.5b names no registry, and "
                                        "Ollama's own library is only served over HTTPS (name the mirror in model, e.g. "
                                        "registry.internal:5000/library/qwen2.5:0.5b, or remove insecureRegistry)"]),
}


@pytest.mark.parametrize("case", sorted(BAD_CASES))
def test_bad_input_is_reported_and_nothing_written(tmp_path: Path, case: str) -> None:
    text, expected_lines = BAD_CASES[case]
    code, output, out = run_render(tmp_path, text)
    assert code == 2, output
    for expected in expected_lines:
        assert expected in output, f"{expected!r} not in:\n{output}"
    assert str(tmp_path / "stack.yaml") in output
    assert not out.exists()


def test_every_problem_is_reported_in_one_run(tmp_path: Path) -> None:
    text = GOOD.replace("name: small", "name: qwen-7b").replace("profile: cpu", "profile: nope") \
        .replace("maxModelLen: 8192", "maxModelLen: 8192\n    tensorParallelSize: 3")
    code, output, _ = run_render(tmp_path, text)
    assert code == 2
    lines = [line for line in output.splitlines() if line.strip()]
    assert len(lines) == 3, output
    assert any("duplicate model name" in line for line in lines)
    assert any("no profile named 'nope'" in line for line in lines)
    assert any("tensorParallelSize: 3 is larger" in line for line in lines)


def test_bad_input_leaves_an_existing_output_untouched(tmp_path: Path) -> None:
    code, _, out = run_render(tmp_path, GOOD)
    assert code == 0
    before = {p: p.read_bytes() for p in out.rglob("*") if p.is_file()}
    code, output, _ = run_render(tmp_path, GOOD.replace("engine: ollama", "engine: nope"))
    assert code == 2, output
    assert {p: p.read_bytes() for p in out.rglob("*") if p.is_file()} == before


def test_output_directory_of_other_files_is_refused(tmp_path: Path) -> None:
    (tmp_path / "out").mkdir()
    (tmp_path / "out" / "notes.txt").write_text("mine")
    code, output, out = run_render(tmp_path, GOOD)
    assert code == 2
    assert "is not a stackgen output directory" in output
    assert (out / "notes.txt").read_text() == "mine"


def test_external_rules(tmp_path: Path) -> None:
    text = GOOD + """\
  - name: cloud
    engine: external
    provider: mistral
  - name: nowhere
    engine: external
"""
    code, output, _ = run_render(tmp_path, text)
    assert code == 2
    assert "models[2].apiKey: provider mistral needs an API key" in output
    assert "models[2].model: provider mistral needs the provider's model id" in output
    assert "models[3].baseUrl: an external model needs a provider or a baseUrl" in output


def test_unknown_model_works_when_the_user_supplies_what_is_needed(tmp_path: Path) -> None:
    base = GOOD.replace("model: Qwen/Qwen2.5-7B-Instruct", "model: acme/house-model-7b").replace("    maxModelLen: 8192\n", "")
    code, output, _ = run_render(tmp_path, base)
    assert code == 2
    assert "acme/house-model-7b is not in the catalog, so its context length is unknown" in output
    assert "cannot do tool calling on vLLM: it is not in the catalog" in output
    supplied = base.replace("toolCalling: true", "toolCalling: true\n    toolCallParser: hermes\n    maxModelLen: 8192")
    code, output, out = run_render(tmp_path, supplied)
    assert code == 0, output
    values = (out / "values.yaml").read_text()
    assert "toolCallParser: hermes" in values
    assert "maxModelLen: 8192" in values


def test_schema_lists_every_field() -> None:
    import json

    result = CliRunner().invoke(cli, ["schema"])
    assert result.exit_code == 0
    schema = json.loads(result.output)
    assert schema["additionalProperties"] is False
    vllm = schema["$defs"]["VllmModel"]
    assert {"toolCalling", "tensorParallelSize", "maxModelLen", "hfToken"} <= set(vllm["properties"])
    assert vllm["additionalProperties"] is False


def test_a_file_that_is_not_utf8_is_refused_at_its_line(tmp_path: Path) -> None:
    spec = tmp_path / "stack.yaml"
    spec.write_bytes(GOOD.replace("name: small", "name: caf\xe9").encode("latin-1"))
    result = CliRunner().invoke(cli, ["validate", str(spec)])
    assert result.exit_code == 2 and result.exception is None or isinstance(result.exception, SystemExit)
    assert result.output == f"{spec}:13: column 14: byte 0xe9 is not UTF-8, the encoding YAML files are read in " \
                            "(save the file as UTF-8)\n"


def test_no_model_may_take_a_name_the_chart_gives_its_own_objects() -> None:
    """The chart names its own objects <fullname>-<component> with a literal component; each is reserved, so that
    a model's objects (named by its key) never collide with them."""
    literal = re.compile(r'"component" "([a-z][a-z0-9-]*)"')
    given = {name for path in (CHART / "templates").rglob("*") if path.is_file()
             for name in literal.findall(path.read_text())}
    assert given and given <= RESERVED_COMPONENTS, sorted(given - RESERVED_COMPONENTS)
