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

    # A refused connection surfaces as LiteLLM's InternalServerError (500).
    assert status == 500, text
    assert "model group 'doomed' failed" in text
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

    # LiteLLM maps an upstream timeout to 408 and names the configured limit.
    assert status == 408, text
    assert f"Timeout passed={float(UPSTREAM_TIMEOUT_S)}" in text
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

    # Both deployments of "pair" take traffic while healthy (random choice, so
    # ask until each has answered; 30 misses in a row has odds of 1 in 2**30).
    seen: set[str] = set()
    for _ in range(30):
        resp = chat(gw.url, gw.headers(), "pair")
        assert resp.status_code == 200, resp.text
        seen.add(resp.headers["x-litellm-model-api-base"])
        if len(seen) == 2:
            break
    assert seen == {dead.api_base, alive.api_base}

    dead.process.kill()
    before = decode_count(alive.url)
    retries: list[int] = []
    # Keep asking until the router has picked the dead replica once (seen as a
    # retry), then a few more: every answer must still come, from the survivor.
    for _ in range(30):
        resp = chat(gw.url, gw.headers(), "pair", timeout=ERROR_DEADLINE_S * 2)
        assert resp.status_code == 200, resp.text
        assert resp.headers["x-litellm-model-api-base"] == alive.api_base
        retries.append(int(resp.headers["x-litellm-attempted-retries"]))
        first_retry = next((i for i, n in enumerate(retries) if n), None)
        if first_retry is not None and len(retries) >= first_retry + 5:
            break

    assert sum(retries) == 1, f"retries per request {retries}: the dead replica was not cooled down"
    assert decode_count(alive.url) >= before + len(retries)
