"""Faults: model servers die or hang behind the real gateway.

One gateway for the module, each test breaking a different model server, so the
tests do not depend on each other's order.
"""

from __future__ import annotations

import os
import signal
import time
from collections.abc import Iterator
from dataclasses import dataclass

import pytest

from stackgen.localstack import point_at_local

from .conftest import StartGateway, StartModelServer
from .gatewayconfig import OLLAMA_TAG, UPSTREAM_TIMEOUT_S, chat, decode_count, gateway_config, ollama_entry, vllm_entry
from .procs import Gateway, ModelServer

# An error must come back well inside this; a hang would run into httpx's own timeout.
ERROR_DEADLINE_S = 30.0
COOLDOWN_S = 60


@dataclass
class FaultStack:
    gateway: Gateway
    doomed: ModelServer  # alone, no fallback: its death must become a prompt error
    stalled: ModelServer  # alone, no fallback: frozen, so only the configured timeout ends the wait
    primary: ModelServer  # falls back to backup
    backup: ModelServer
    replicas: tuple[ModelServer, ModelServer]  # two deployments of one model_name


@pytest.fixture(scope="module")
def faults(start_model_server: StartModelServer, start_gateway: StartGateway) -> Iterator[FaultStack]:
    doomed, stalled, primary = (start_model_server(n) for n in ("doomed", "stalled", "primary"))
    backup = start_model_server(OLLAMA_TAG)
    replicas = (start_model_server("pair"), start_model_server("pair"))

    second_replica = vllm_entry("pair")
    second_replica["litellm_params"]["api_base"] = replicas[1].api_base
    rendered = gateway_config(
        [vllm_entry("doomed"), vllm_entry("stalled"), vllm_entry("primary"), ollama_entry("backup", OLLAMA_TAG),
         vllm_entry("pair")],
        fallbacks=[{"primary": ["backup"]}],
        # One failure takes a deployment out of rotation, so the next attempt
        # (a retry) goes to a healthy replica instead of the dead one again.
        allowed_fails=0,
        cooldown_time=COOLDOWN_S,
    )
    config = point_at_local(rendered, {"doomed": doomed.api_base, "stalled": stalled.api_base,
                                       "primary": primary.api_base, "backup": backup.api_base,
                                       "pair": replicas[0].api_base})
    config["model_list"].append(second_replica)
    gateway = start_gateway(config)
    yield FaultStack(gateway, doomed, stalled, primary, backup, replicas)
    gateway.process.stop()


def _timed_chat(gw: Gateway, model: str) -> tuple[int, float, str]:
    start = time.monotonic()
    resp = chat(gw.url, gw.headers(), model, timeout=ERROR_DEADLINE_S * 2)
    return resp.status_code, time.monotonic() - start, resp.text


def test_killed_model_is_a_prompt_error(faults: FaultStack) -> None:
    gw = faults.gateway
    status, _, text = _timed_chat(gw, "doomed")
    assert status == 200, text

    faults.doomed.process.kill()
    status, elapsed, text = _timed_chat(gw, "doomed")

    print("KILLED", status, elapsed, text[:600])
    assert status >= 500, text
    assert "doomed" in text, "the error should name the model group that failed"
    assert elapsed < ERROR_DEADLINE_S, f"error took {elapsed:.1f}s"
    # The gateway itself survives and keeps serving the other models.
    status, _, text = _timed_chat(gw, "backup")
    assert status == 200, text


def test_hung_model_times_out(faults: FaultStack) -> None:
    gw = faults.gateway
    os.kill(faults.stalled.process.pid, signal.SIGSTOP)  # accepts connections, never answers
    try:
        status, elapsed, text = _timed_chat(gw, "stalled")
    finally:
        os.kill(faults.stalled.process.pid, signal.SIGCONT)

    print("HUNG", status, elapsed, text[:600])
    assert status in (408, 500, 504), f"{status}: {text}"
    assert "timeout" in text.lower() or "timed out" in text.lower(), text
    # Not a refused connection (that would be instant) and not a hang.
    assert UPSTREAM_TIMEOUT_S - 0.5 <= elapsed < ERROR_DEADLINE_S, f"error took {elapsed:.1f}s"


def test_fallback_answers_when_primary_dies(faults: FaultStack) -> None:
    gw = faults.gateway
    resp = chat(gw.url, gw.headers(), "primary")
    assert resp.status_code == 200, resp.text
    assert resp.headers["x-litellm-model-api-base"] == faults.primary.api_base

    faults.primary.process.kill()
    before = decode_count(faults.backup.url)
    start = time.monotonic()
    resp = chat(gw.url, gw.headers(), "primary", timeout=ERROR_DEADLINE_S * 2)
    elapsed = time.monotonic() - start

    assert resp.status_code == 200, resp.text
    assert resp.json()["usage"]["completion_tokens"] > 0
    assert resp.headers["x-litellm-model-api-base"] == faults.backup.api_base
    assert int(resp.headers["x-litellm-attempted-fallbacks"]) >= 1
    assert decode_count(faults.backup.url) > before
    assert elapsed < ERROR_DEADLINE_S


def test_model_survives_losing_a_replica(faults: FaultStack) -> None:
    gw = faults.gateway
    dead, alive = faults.replicas
    faults_seen = 0
    dead.process.kill()
    before = decode_count(alive.url)

    for _ in range(6):
        resp = chat(gw.url, gw.headers(), "pair", timeout=ERROR_DEADLINE_S * 2)
        assert resp.status_code == 200, resp.text
        assert resp.headers["x-litellm-model-api-base"] == alive.api_base
        faults_seen += int(resp.headers.get("x-litellm-attempted-retries", "0"))
        print("REPLICA", dict((k, v) for k, v in resp.headers.items() if "attempted" in k))

    assert decode_count(alive.url) >= before + 6
    # The dead replica costs at most one failed attempt before its cooldown.
    assert faults_seen <= 1, f"{faults_seen} retries: the dead replica was not taken out of rotation"
