"""Faults behind the rendered gateway config: model servers die or hang.

Each fixture launches its own stack (servers and gateway), so breaking a server here never touches the
stacks other modules use. The rendered router settings decide the behaviour asserted: num_retries,
allowed_fails and cooldown_time as rendered, fallbacks from the spec.
"""

from __future__ import annotations

import os
import signal
import time

import httpx
import pytest
from click.testing import CliRunner

from stackgen import examples
from stackgen.cli import cli

from .calls import chat, decode_count
from .conftest import Launch, LocalStack
from .verifytable import STAND_IN_LIMITS, expected_rows, table_of

# An error must come back well inside this; a hang would run into the client's own timeout.
ERROR_DEADLINE_S = 30.0
# The one change to the hybrid example for these tests: a short per-call timeout, so a hung server
# costs seconds (the default is 600).
TIMEOUT_S = 2


def _timed_chat(local: LocalStack, model: str) -> tuple[httpx.Response, float]:
    start = time.monotonic()
    resp = chat(local.gateway.api_base, local.gateway.headers(), model, timeout=ERROR_DEADLINE_S * 2)
    return resp, time.monotonic() - start


@pytest.fixture(scope="module")
def kind_cpu(launch: Launch) -> LocalStack:
    return launch(examples.resolve("kind-cpu").stack)


def test_fallback_answers_when_the_model_server_dies(kind_cpu: LocalStack) -> None:
    assert kind_cpu.rendered_config()["router_settings"]["fallbacks"] == [{"ollama-small": ["vllm-small"]}]
    own, fallback = kind_cpu.servers["ollama-small"], kind_cpu.servers["vllm-small"]
    resp, _ = _timed_chat(kind_cpu, "ollama-small")
    assert resp.status_code == 200, resp.text
    assert resp.headers["x-litellm-model-api-base"] == own.api_base

    own.process.kill()
    # Twice: the first request finds the server dead, the second finds it benched (cooldown).
    for _ in range(2):
        before = decode_count(fallback)
        resp, elapsed = _timed_chat(kind_cpu, "ollama-small")

        assert resp.status_code == 200, resp.text
        assert resp.json()["usage"]["completion_tokens"] > 0
        assert resp.headers["x-litellm-model-api-base"] == fallback.api_base
        assert int(resp.headers["x-litellm-attempted-fallbacks"]) >= 1
        assert decode_count(fallback) > before
        assert elapsed < ERROR_DEADLINE_S, f"answer took {elapsed:.1f}s"


@pytest.fixture(scope="module")
def degraded(launch: Launch) -> LocalStack:
    """The hybrid example with a short call timeout, whose local-ollama server (no fallback) has died."""
    spec = examples.resolve("hybrid").stack
    local = launch(spec.model_copy(update={"gateway": spec.gateway.model_copy(update={"timeoutSeconds": TIMEOUT_S})}))
    resp, _ = _timed_chat(local, "local-ollama")
    assert resp.status_code == 200, resp.text
    local.servers["local-ollama"].process.kill()
    return local


def test_dead_model_server_is_a_prompt_error(degraded: LocalStack) -> None:
    assert not degraded.plan.model("local-ollama").spec.fallbacks
    resp, elapsed = _timed_chat(degraded, "local-ollama")

    # A refused connection, retried as rendered (num_retries), surfaces as LiteLLM's 500.
    assert resp.status_code == 500, resp.text
    assert "model group 'local-ollama' failed" in resp.text
    assert elapsed < ERROR_DEADLINE_S, f"error took {elapsed:.1f}s"
    # The gateway itself lives on and serves the other models.
    resp, _ = _timed_chat(degraded, "local-llama")
    assert resp.status_code == 200, resp.text


def test_hung_model_server_times_out(degraded: LocalStack) -> None:
    stalled = degraded.servers["lm-studio"].process
    os.kill(stalled.pid, signal.SIGSTOP)  # accepts connections, never answers
    try:
        resp, elapsed = _timed_chat(degraded, "lm-studio")
    finally:
        os.kill(stalled.pid, signal.SIGCONT)

    # LiteLLM maps an upstream timeout to 408 and names the deployment's limit: the rendered one.
    assert resp.status_code == 408, resp.text
    message = resp.json()["error"]["message"]
    assert f"\ntimeout: {float(TIMEOUT_S)}\n" in message and "model group 'lm-studio' failed" in message
    # Not a refused connection (instant) and not a hang.
    assert TIMEOUT_S <= elapsed < ERROR_DEADLINE_S, f"error took {elapsed:.1f}s"


def test_cli_verify_reports_the_dead_model(degraded: LocalStack) -> None:
    env = {degraded.gateway_key_env: degraded.gateway.master_key}

    result = CliRunner().invoke(cli, ["verify", "hybrid", "--gateway", degraded.gateway.api_base,
                                      "--timeout", "60"], env=env)

    assert result.exit_code == 1, result.output
    _, rows, summary = table_of(result)
    failing = {("local-ollama", "chat"), ("local-ollama", "tools")} | {
        (model, check) for (ex, model, check) in STAND_IN_LIMITS if ex == "hybrid"}
    expected = [[m, e, c, "FAIL" if (m, c) in failing else "ok"] for m, e, c, _ in expected_rows(degraded.plan, False)]
    assert rows == expected
    assert summary == f"verify: {len(rows) - len(failing)} of {len(rows)} checks ok"
    ollama_rows = [line for line in result.stdout.splitlines() if line.startswith("local-ollama ")]
    assert ollama_rows and all("HTTP 500" in line or "HTTP 429" in line for line in ollama_rows), ollama_rows


@pytest.fixture(scope="module")
def round_trip(launch: Launch) -> LocalStack:
    """kind-cpu with its two models backing each other up: fallbacks that go round (a -> b -> a)."""
    spec = examples.resolve("kind-cpu").stack
    models = [m.model_copy(update={"fallbacks": [other.name for other in spec.models if other.name != m.name]})
              for m in spec.models]
    return launch(spec.model_copy(update={"models": models}))


def test_fallbacks_that_go_round_end_once_every_model_has_failed(round_trip: LocalStack) -> None:
    assert round_trip.rendered_config()["router_settings"]["fallbacks"] == [
        {"ollama-small": ["vllm-small"]}, {"vllm-small": ["ollama-small"]}]
    assert any("fallbacks go round (ollama-small -> vllm-small -> ollama-small)" in n for n in round_trip.plan.notes)
    first, second = round_trip.servers["ollama-small"], round_trip.servers["vllm-small"]
    first.process.kill()
    resp, _ = _timed_chat(round_trip, "ollama-small")
    assert resp.status_code == 200 and resp.headers["x-litellm-model-api-base"] == second.api_base, resp.text

    second.process.kill()
    for model in ("ollama-small", "vllm-small"):
        resp, elapsed = _timed_chat(round_trip, model)
        # Each model tried at most once: an error, promptly, not a request bouncing between two dead servers.
        assert resp.status_code >= 500, resp.text
        assert elapsed < ERROR_DEADLINE_S, f"{model}: error took {elapsed:.1f}s"
    assert httpx.get(f"{round_trip.gateway.api_base.removesuffix('/v1')}/health/liveliness", timeout=10).status_code == 200
