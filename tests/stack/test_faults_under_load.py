"""Faults under load: 16 agents at once through the rendered gateway for a bounded time, while the model
server behind `ollama-small` dies and comes back, or hangs. The rendered router settings (retries, the
spec's fallback to `vllm-small`, cooldown, a short per-call timeout) must lose no request.

Load is loopback only and bounded: at most MAX_REQUESTS requests and SECONDS seconds per scenario.
"""

from __future__ import annotations

import asyncio
import os
import signal
import time
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import pytest

from stackgen import examples

from .conftest import Launch, LocalStack
from .procs import start_llama_server

CONCURRENCY = 16
SECONDS = 24.0
MAX_REQUESTS = 3000
TIMEOUT_S = 3  # the spec's gateway.timeoutSeconds for these tests: a hung server costs seconds, not 600


@dataclass
class Tally:
    ok: int = 0
    failed: list[str] = field(default_factory=list)
    latencies: list[tuple[float, float]] = field(default_factory=list)  # (sent at, seconds)
    answered_by: dict[str, int] = field(default_factory=dict)  # api_base -> requests


async def _load(local: LocalStack, tally: Tally, started: float) -> None:
    body = {"model": "ollama-small", "messages": [{"role": "user", "content": "hi"}], "max_tokens": 4}
    remaining = MAX_REQUESTS
    limits = httpx.Limits(max_connections=CONCURRENCY)
    async with httpx.AsyncClient(timeout=60, limits=limits, headers=local.gateway.headers()) as client:

        async def agent() -> None:
            nonlocal remaining
            while remaining > 0 and time.monotonic() - started < SECONDS:
                remaining -= 1
                sent = time.monotonic()
                try:
                    resp = await client.post(f"{local.gateway.api_base}/chat/completions", json=body)
                except httpx.HTTPError as exc:
                    tally.failed.append(repr(exc))
                    continue
                tally.latencies.append((sent - started, time.monotonic() - sent))
                if resp.status_code == 200:
                    tally.ok += 1
                    base = resp.headers.get("x-litellm-model-api-base", "?")
                    tally.answered_by[base] = tally.answered_by.get(base, 0) + 1
                else:
                    tally.failed.append(f"{resp.status_code}: {resp.text[:200]}")

        await asyncio.gather(*(agent() for _ in range(CONCURRENCY)))


def _run_with(local: LocalStack, fault: asyncio.Future[None] | None = None, *, at: float,
              action: object, undo_at: float | None = None, undo: object = None) -> Tally:
    tally = Tally()

    async def main() -> None:
        started = time.monotonic()

        async def faults() -> None:
            await asyncio.sleep(at)
            await asyncio.to_thread(action)  # type: ignore[arg-type]
            if undo_at is not None:
                await asyncio.sleep(undo_at - at)
                await asyncio.to_thread(undo)  # type: ignore[arg-type]

        await asyncio.gather(_load(local, tally, started), faults())

    asyncio.run(main())
    return tally


@pytest.fixture
def stack(launch: Launch) -> LocalStack:
    spec = examples.resolve("kind-cpu").stack
    gateway = spec.gateway.model_copy(update={"timeoutSeconds": TIMEOUT_S})
    return launch(spec.model_copy(update={"gateway": gateway}))


def test_a_server_that_dies_and_comes_back_loses_no_request(stack: LocalStack, tiny_model: Path,
                                                            stack_workdir: Path) -> None:
    own = stack.servers["ollama-small"]
    port = int(own.url.rsplit(":", 1)[1])
    revived: list[object] = []

    def revive() -> None:
        revived.append(start_llama_server(tiny_model, own.alias, stack_workdir, port=port))

    tally = _run_with(stack, at=5, action=own.process.kill, undo_at=12, undo=revive)
    try:
        assert not tally.failed, tally.failed[:5]
        assert tally.ok >= 100, tally.ok
        fallback = stack.servers["vllm-small"].api_base
        assert tally.answered_by.get(fallback, 0) > 0, tally.answered_by  # the fallback took over
        assert tally.answered_by.get(own.api_base, 0) > 0, tally.answered_by
        print(f"\ndied at 5 s, back at 12 s: {tally.ok} answered, 0 lost; by server: {tally.answered_by}")
    finally:
        for server in revived:
            server.process.stop()  # type: ignore[attr-defined]


def test_a_hung_server_costs_its_retries_timeouts_then_the_fallback_answers(stack: LocalStack) -> None:
    """Not "at most one timeout": LiteLLM 1.108.7 retries a timed-out call (numRetries) on the same model
    before its fallbacks, and does not cool a model group of one deployment down, so every call to a hung
    server waits (numRetries + 1) timeouts. Turning timeout retries off (retry_policy TimeoutErrorRetries: 0)
    was tried: LiteLLM then answers 408 without trying the fallback at all, which loses requests."""
    own = stack.servers["ollama-small"]

    def hang() -> None:
        os.kill(own.process.pid, signal.SIGSTOP)

    tally = _run_with(stack, at=5, action=hang)
    own.process.stop()  # resumes (SIGCONT) and stops it
    assert not tally.failed, tally.failed[:5]
    slowest = max(seconds for _, seconds in tally.latencies)
    after = [seconds for sent, seconds in tally.latencies if sent > 5 + 2 * TIMEOUT_S]
    print(f"\nhung at 5 s: {tally.ok} answered, 0 lost; slowest {slowest:.1f} s (timeout {TIMEOUT_S} s); "
          f"after the first timeouts the slowest was {max(after):.2f} s; by server: {tally.answered_by}")
    retries = stack.plan.stack.gateway.numRetries
    # Each attempt is cut at the timeout (plus the proxy's own overhead under load); then the fallback answers.
    assert slowest <= (retries + 1) * (TIMEOUT_S + 1.0) + 5.0, slowest
    assert tally.answered_by.get(stack.servers["vllm-small"].api_base, 0) > 0
