"""Refusals speak words, never regular expressions: every pattern a spec or inventory field is checked against
has a sentence and a fix (specbase.PATTERN_WORDS), and a spec with a bad value in every such field is
refused with messages that show no pattern, and with the value the user likely meant where it can be read."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from click.testing import CliRunner

from stackgen.cli import cli
from stackgen.inventory import Inventory
from stackgen.spec import Stack
from stackgen.specbase import PATTERN_WORDS

# One bad value in every pattern-checked field of the spec (engines included).
BAD = """\
name: Team_A
namespace: Agents
gateway:
  masterKey: {secretName: "master key", key: "a b"}
  ingress: {host: "https://agents.example.com"}
  redis: {host: "http://redis.cache:6379"}
autogen: {apiKeyEnv: "1KEY"}
profiles:
  cpu: {cpu: "2", memory: 4GB}
  gpu: {memory: 8gb, gpu: {resource: nvidia}}
models:
  - name: Qwen_7b
    engine: vllm
    model: Qwen/Qwen2.5-0.5B-Instruct
    profile: cpu
    toolCallParser: Hermes-2
    reasoningParser: "deepseek r1"
    cache: {size: 10 GB}
    autoscaling: {maxReplicas: 2, prometheusUrl: "prometheus:9090"}
  - {name: small, engine: llamacpp, model: a/b-GGUF, file: model.bin, profile: cpu}
  - {name: byo, engine: custom, image: "x:1", port: 9000, healthPath: health, model: m, profile: cpu}
  - {name: desk, engine: external, provider: openai-compatible, baseUrl: "192.168.1.20:1234/v1", model: m}
"""


def _patterns(schema: Any) -> Iterator[str]:
    if isinstance(schema, dict):
        if isinstance(schema.get("pattern"), str):
            yield schema["pattern"]
        for value in schema.values():
            yield from _patterns(value)
    elif isinstance(schema, list):
        for value in schema:
            yield from _patterns(value)


def test_every_pattern_of_the_schemas_is_put_in_words() -> None:
    used = set(_patterns(Stack.model_json_schema())) | set(_patterns(Inventory.model_json_schema()))
    assert used and not used - set(PATTERN_WORDS), f"patterns without words: {sorted(used - set(PATTERN_WORDS))}"


def test_no_refusal_shows_a_pattern(tmp_path: Any) -> None:
    spec = tmp_path / "stack.yaml"
    spec.write_text(BAD)
    result = CliRunner().invoke(cli, ["validate", str(spec)])
    assert result.exit_code == 2, result.output
    lines = [line for line in result.output.splitlines() if line.startswith(str(spec))]
    assert len(lines) >= 15, result.output
    for line in lines:
        assert not any(pattern in line for pattern in PATTERN_WORDS), line
        assert "^" not in line and "does not match" not in line, line
        assert line.endswith(")"), f"no fix: {line}"
    said = "\n".join(lines)
    # The value the user meant, where it can be read off what they wrote.
    for expected in ("profiles.cpu.memory: '4GB' is not a Kubernetes quantity (write 4Gi)",
                     "profiles.gpu.memory: '8gb' is not a Kubernetes quantity (write 8Gi)",
                     "models[0].cache.size: '10 GB' is not a Kubernetes quantity (write 10Gi)",
                     "gateway.redis.host: 'http://redis.cache:6379' is not a DNS name (write the host name only, "
                     "without the scheme: redis.cache",
                     "gateway.ingress.host: 'https://agents.example.com' is not a DNS name (write the host name only",
                     "namespace: 'Agents' is not a DNS label (write it in lower case: agents)",
                     "profiles.gpu.gpu.resource: 'nvidia' is not a device plugin's resource name (did you mean "
                     "'nvidia.com/gpu'?)"):
        assert expected in said, f"missing {expected!r} in:\n{said}"


@pytest.mark.parametrize("pattern", sorted(PATTERN_WORDS))
def test_each_sentence_and_fix_is_words(pattern: str) -> None:
    what, fix = PATTERN_WORDS[pattern]
    assert what and fix and pattern not in what + fix


LABELLED = """\
name: t
monitoring: {{enabled: true, labels: {labels}}}
profiles: {{cpu: {{cpu: "1"}}}}
models:
  - {{name: q, engine: vllm, model: Qwen/Qwen2.5-0.5B-Instruct, profile: cpu}}
"""


@pytest.mark.parametrize(("labels", "refused"), [
    ('{release: kube-prometheus-stack, "app.kubernetes.io/part-of": ml, empty: ""}', None),
    ('{release: "kube prometheus"}', "'kube prometheus' is not a Kubernetes label value (of release)"),
    ('{release: "-stack"}', "'-stack' is not a Kubernetes label value"),
    (f'{{release: "{"a" * 64}"}}', "is not a Kubernetes label value"),
    ('{"Example.com/team": x}', "its prefix 'Example.com' must be a lower-case DNS name"),
    ('{"a/b/c": x}', "at most one '/'"),
    (f'{{"{"k" * 64}": x}}', "is not a Kubernetes label key"),
])
def test_labels_follow_the_api_servers_grammar(tmp_path: Any, labels: str, refused: str | None) -> None:
    """A value that becomes a label (monitoring.labels, a nodeSelector) is checked as the API server checks it:
    the label grammar is stricter than YAML strings (tests/cluster installs what is accepted)."""
    spec = tmp_path / "stack.yaml"
    spec.write_text(LABELLED.format(labels=labels))
    result = CliRunner().invoke(cli, ["validate", str(spec)])
    if refused is None:
        assert result.exit_code == 0, result.output
    else:
        assert result.exit_code == 2 and ":2: monitoring.labels: " in result.output, result.output
        assert refused in result.output, result.output


# A type error in one model, a range error in a section, and cross-field errors in the rest (#35).
MIXED = """\
name: demo
namespace: llm
profiles:
  cpu: {cpu: "2", memory: 8Gi}
gateway: {numWorkers: 900}
models:
  - {name: a, engine: ollama, model: qwen2.5:0.5b, profile: cpu, replicas: many}
  - {name: b, engine: ollama, model: qwen2.5:0.5b, profile: cpu, fallbacks: [zzz, a]}
  - {name: b, engine: ollama, model: qwen2.5:0.5b, profile: cpu}
  - {name: c, engine: ollama, model: qwen2.5:0.5b, profile: cpu, replicas: -1, fallbacks: [zzz]}
"""


def test_one_run_reports_type_errors_and_cross_field_errors_together(tmp_path: Any) -> None:
    path = tmp_path / "stack.yaml"
    path.write_text(MIXED)
    result = CliRunner().invoke(cli, ["validate", str(path)])
    assert result.exit_code == 2
    assert result.output.splitlines() == [
        f"{path}:5: gateway.numWorkers: Input should be less than or equal to 64 (write 64 or less)",
        f"{path}:7: models[0].replicas: Input should be a valid integer, unable to parse string as an integer "
        "(write a whole number, without quotes or units)",
        f"{path}:10: models[3].replicas: Input should be greater than or equal to 0 (write 0 or more)",
        # the cross-field errors of the models without a type error, at their index as written
        f"{path}:9: models[2].name: duplicate model name 'b' (also models[1]) (give every model a unique name)",
        f"{path}:8: models[1].fallbacks[0]: no model named 'zzz' (name one of: a, b, c)",
        # models[3]'s own fallback is left for the next run: its model had a field taken out
    ]
