"""`stackgen verify` against the local real stack: the library function on every built-in example,
and the command line both ways, `--gateway URL` (a running gateway) and `--local` (the spec's own
gateway config started here)."""

from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import CliRunner

from stackgen import examples
from stackgen.cli import cli
from stackgen.load import load_text
from stackgen.plan import plan
from stackgen.render import render_files
from stackgen.verify import verify
from tests.support import CPU_PROFILE, VLLM_CODER

from .conftest import EXAMPLES, ExamplePool, StartModelServer, served_alias
from .verifytable import HEADER, STAND_IN_LIMITS, expected_rows, table_of

# A spec of its own beside the examples: vLLM and Ollama in the cluster, a keyed hosted provider and a
# keyless OpenAI-compatible endpoint outside it. No model of a provider that renames tool_choice has
# toolCalling, so every check can pass here.
MIXED_SPEC = ("""\
name: mixed
namespace: agents
autogen: {apiKeyEnv: MIXED_GATEWAY_KEY}
profiles:
""" + CPU_PROFILE + """\
models:
""" + VLLM_CODER + """\
    toolCalling: true
    tags: [local, tools]
    fallbacks: [helper]
  - name: helper
    engine: ollama
    model: qwen2.5:0.5b
    profile: cpu
    toolCalling: true
    tags: [local]
  - name: mistral-small
    engine: external
    provider: mistral
    model: mistral-small-latest
    apiKey: {secretName: mistral, key: api-key}
    tags: [cloud]
  - name: desk
    engine: external
    baseUrl: http://192.168.1.20:1234/v1
    model: qwen2.5-7b-instruct
    tags: [desk]
""")


@pytest.mark.parametrize("example", EXAMPLES)
def test_every_check_is_ok_on_each_example(example_stacks: ExamplePool, example: str) -> None:
    local = example_stacks.get(example)

    checks = verify(local.plan, local.gateway.api_base, local.gateway.master_key, local.autogen_dir, timeout=60)

    got = [[c.model, c.engine, c.check, "ok" if c.ok else "FAIL"] for c in checks]
    limits = {(model, check): reason for (ex, model, check), reason in STAND_IN_LIMITS.items() if ex == example}
    expected = expected_rows(local.plan, autogen=True)
    for row in expected:
        if (row[0], row[2]) in limits:
            row[3] = "FAIL"
    assert got == expected, "\n".join(f"{c.model} {c.check}: {c.detail}" for c in checks if not c.ok)
    details = {(c.model, c.check): c.detail for c in checks}
    for key, reason in limits.items():
        assert reason in details[key]
    for m in local.plan.models:
        assert details[(m.name, "chat")].endswith(" tokens")
        if m.spec.toolCalling and (m.name, "tools") not in limits:
            assert details[(m.name, "tools")] == "called get_time"


def test_cli_verify_gateway_all_ok(example_stacks: ExamplePool) -> None:
    local = example_stacks.get("kind-cpu")
    env = {local.gateway_key_env: local.gateway.master_key}

    result = CliRunner().invoke(cli, ["verify", "kind-cpu", "--gateway", local.gateway.api_base,
                                      "--autogen-dir", str(local.autogen_dir), "--timeout", "60"], env=env)

    assert result.exit_code == 0, result.output
    header, rows, summary = table_of(result)
    assert header == HEADER
    assert rows == expected_rows(local.plan, autogen=True)
    assert summary == f"verify: {len(rows)} of {len(rows)} checks ok"


def test_cli_verify_gateway_without_the_key_exits_2(example_stacks: ExamplePool) -> None:
    local = example_stacks.get("kind-cpu")
    result = CliRunner().invoke(cli, ["verify", "kind-cpu", "--gateway", local.gateway.api_base,
                                      "--api-key-env", "NO_SUCH_GATEWAY_KEY"], env={"NO_SUCH_GATEWAY_KEY": None})
    assert result.exit_code == 2
    assert "--api-key-env: $NO_SUCH_GATEWAY_KEY is empty" in result.stderr
    assert result.stdout == ""


def test_cli_verify_gateway_with_a_wrong_key_fails_every_authenticated_check(example_stacks: ExamplePool) -> None:
    local = example_stacks.get("kind-cpu")
    result = CliRunner().invoke(cli, ["verify", "kind-cpu", "--gateway", local.gateway.api_base],
                                env={local.gateway_key_env: "sk-not-the-master-key"})

    assert result.exit_code == 1, result.output
    _, rows, summary = table_of(result)
    # Health needs no key; everything else is refused.
    assert rows == [[m, e, c, "ok" if c == "health" else "FAIL"] for m, e, c, _ in expected_rows(local.plan, False)]
    assert summary == f"verify: 1 of {len(rows)} checks ok"
    refused = [line for line in result.stdout.splitlines() if " FAIL " in line]
    assert refused and all("HTTP 400: the gateway refused the key" in line for line in refused), refused


def test_cli_verify_local_runs_the_specs_gateway(start_model_server: StartModelServer, tmp_path: Path) -> None:
    spec = tmp_path / "mixed.yaml"
    spec.write_text(MIXED_SPEC)
    resolved = plan(load_text(MIXED_SPEC, str(spec)))
    provider_key = "sk-provider-mixed-0123456789"
    mistral = resolved.model("mistral-small")
    servers = {m.name: start_model_server(served_alias(m), provider_key if m is mistral else None)
               for m in resolved.models}
    # AutoGen files as `stackgen render` writes them, naming the in-cluster gateway URL: --local sends
    # their requests to its own gateway instead.
    autogen_dir = tmp_path / "autogen"
    autogen_dir.mkdir()
    for rel, text in render_files(resolved.stack, with_manifests=False).items():
        if rel.startswith("autogen/"):
            (autogen_dir / Path(rel).name).write_text(text)
    backends = [arg for name, s in servers.items() for arg in ("--backend", f"{name}={s.api_base}")]

    result = CliRunner().invoke(
        cli, ["verify", str(spec), "--local", *backends, "--autogen-dir", str(autogen_dir), "--timeout", "60"],
        env={"MISTRAL_SMALL_API_KEY": provider_key})

    assert result.exit_code == 0, result.output
    header, rows, summary = table_of(result)
    assert header == HEADER
    assert rows == expected_rows(resolved, autogen=True)
    assert summary == f"verify: {len(rows)} of {len(rows)} checks ok"
    assert "starting the gateway of mixed here" in result.stderr


@pytest.mark.parametrize(("args", "messages"), [
    (["--local", "--gateway", "http://127.0.0.1:1/v1"], ["give either --gateway URL"]),
    ([], ["give either --gateway URL"]),
    (["--gateway", "http://127.0.0.1:1/v1", "--backend", "ollama-small=http://127.0.0.1:1/v1"],
     ["--backend only applies with --local"]),
    (["--local", "--api-key-env", "X", "--backend", "ollama-small=http://127.0.0.1:1/v1"],
     ["--api-key-env only applies with --gateway"]),
    (["--local", "--backend", "ollama-small=http://127.0.0.1:1/v1"],
     ["--backend: vllm-small runs in the cluster, so it needs a local stand-in"]),
    (["--local", "--backend", "ollama-small", "--backend", "vllm-small=http://127.0.0.1:2/v1"],
     ["--backend: 'ollama-small' is not NAME=URL"]),
    (["--local", "--backend", "ollama-small=http://127.0.0.1:1", "--backend", "vllm-small=http://127.0.0.1:2/v1",
      "--backend", "nope=http://127.0.0.1:3/v1"],
     ["--backend: no model named 'nope' in stack kind-cpu", "--backend: ollama-small: 'http://127.0.0.1:1' does not end in /v1"]),
])
def test_cli_verify_refuses_bad_arguments_before_starting_anything(args: list[str], messages: list[str]) -> None:
    result = CliRunner().invoke(cli, ["verify", "kind-cpu", *args])
    assert result.exit_code == 2, result.output
    for message in messages:
        assert message in result.stderr
    assert result.stdout == ""


def test_every_example_is_checked_here() -> None:
    assert set(EXAMPLES) == set(examples.names())
