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
from collections import Counter
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
HUNG_AT = 5.0  # seconds into the load
# The pinned LiteLLM sleeps INITIAL_RETRY_DELAY * 2**n (plus up to 0.75 s of jitter) before retry n + 1 of a
# model group of one deployment (utils.calculate_retry_after)
BACKOFF_S = 0.5
CLIENT_TIMEOUT_S = 60  # the agents' own: a call left to LiteLLM's default timeout (600 s) fails here


@dataclass(frozen=True)
class Call:
    sent: float  # seconds into the run
    seconds: float
    api_base: str  # the server that answered, as LiteLLM's x-litellm-model-api-base says
    fallbacks: int  # x-litellm-attempted-fallbacks (0 when absent)


@dataclass
class Tally:
    failed: list[str] = field(default_factory=list)
    answered: list[Call] = field(default_factory=list)

    @property
    def answered_by(self) -> Counter[str]:
        """api_base -> calls it answered."""
        return Counter(call.api_base for call in self.answered)


async def _load(local: LocalStack, tally: Tally, started: float) -> None:
    body = {"model": "ollama-small", "messages": [{"role": "user", "content": "hi"}], "max_tokens": 4}
    remaining = MAX_REQUESTS
    limits = httpx.Limits(max_connections=CONCURRENCY)
    async with httpx.AsyncClient(timeout=CLIENT_TIMEOUT_S, limits=limits, headers=local.gateway.headers()) as client:

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
                if resp.status_code == 200:
                    tally.answered.append(Call(
                        sent - started, time.monotonic() - sent, resp.headers.get("x-litellm-model-api-base", "?"),
                        int(resp.headers.get("x-litellm-attempted-fallbacks", 0))))
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
        assert len(tally.answered) >= 100, len(tally.answered)
        fallback = stack.servers["vllm-small"].api_base
        assert tally.answered_by.get(fallback, 0) > 0, tally.answered_by  # the fallback took over
        assert tally.answered_by.get(own.api_base, 0) > 0, tally.answered_by
        print(f"\ndied at 5 s, back at 12 s: {len(tally.answered)} answered, 0 lost; by server: {tally.answered_by}")
    finally:
        for server in revived:
            server.process.stop()  # type: ignore[attr-defined]


def test_a_hung_server_costs_its_retries_timeouts_then_the_fallback_answers(stack: LocalStack) -> None:
    """Not "at most one timeout": LiteLLM 1.108.7 retries a timed-out call (numRetries) on the same model
    before its fallbacks, and does not cool a model group of one deployment down, so every call to a hung
    server waits (numRetries + 1) timeouts, and the back-off between them, then the fallback answers. Turning
    timeout retries off (retry_policy TimeoutErrorRetries: 0) was tried: LiteLLM then answers 408 without trying
    the fallback at all, which loses requests.

    What is asserted holds at any speed: no call waits less than its timeouts and back-offs (so the retries
    happen), and none is lost to the agents' own 60 s timeout (so each attempt is cut by the rendered timeout,
    not LiteLLM's default of 600 s). An upper bound in seconds does not: under a cold run's load the slowest call
    took 19.8 s against a bound of 17, on a machine where it takes 14 s idle."""
    own = stack.servers["ollama-small"]

    def hang() -> None:
        os.kill(own.process.pid, signal.SIGSTOP)

    tally = _run_with(stack, at=HUNG_AT, action=hang)
    own.process.stop()  # resumes (SIGCONT) and stops it
    assert not tally.failed, tally.failed[:5]
    retries = stack.plan.stack.gateway.numRetries
    waited = (retries + 1) * TIMEOUT_S + sum(BACKOFF_S * 2**n for n in range(retries))
    after = [call for call in tally.answered if call.sent > HUNG_AT + 1]  # sent once the server hung
    assert after, "no call was sent after the hang"
    shapes = sorted({(call.api_base, call.fallbacks) for call in after})
    print(f"\nhung at {HUNG_AT} s: {len(tally.answered)} answered, 0 lost; of the {len(after)} sent after it, "
          f"the fastest took {min(c.seconds for c in after):.1f} s and the slowest {max(c.seconds for c in after):.1f} s "
          f"(its timeouts and back-offs: {waited} s); (answered by, fallbacks tried): {shapes}")
    fallback = stack.servers["vllm-small"].api_base
    assert {call.api_base for call in after} == {fallback}, shapes
    assert {call.fallbacks for call in after} == {1}, shapes
    assert min(call.seconds for call in after) >= waited, min(call.seconds for call in after)
