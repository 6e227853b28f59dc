"""Routing across replicas, on real parts: two real vLLM servers started with the chart's command line for a
`replicas: 2` model, the chart's vllm-router in front of them, the rendered gateway config in front of that,
and agents driving multi-turn conversations through the rendered LangChain client module.

The hit rate is read where the PrometheusRule reads it, from the servers' prefix-cache counters, and held
against the workload's ideal: the same workload on one server, whose cache holds every conversation.
The negative control is the same workload through the same router binary with `--policy random`, the
Service's spread: it must measure lower in the same run. `stackgen verify`'s prefix-cache check passes
through the rendered router and fails, naming the cause, through a round-robin one.
"""

from __future__ import annotations

import re
import secrets
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Any

import pytest
import yaml

from stackgen.agents.base import load_module
from stackgen.gateway import MASTER_KEY_ENV
from stackgen.load import load_text
from stackgen.localstack import point_at_local, start_gateway
from stackgen.plan import Plan, plan
from stackgen.render import render_files
from stackgen.verify import verify

from .engines import Vllm
from .pods import Server, start_together
from .router import CacheCounters, cache_counters, start_router

SPEC = """\
name: routed
namespace: agents
gateway: {replicas: 1}
profiles:
  cpu: {cpu: "1", memory: 4Gi}
models:
  - {name: qwen, engine: vllm, model: Qwen/Qwen2.5-0.5B-Instruct, profile: cpu, maxModelLen: 4096, replicas: 2}
"""
AGENTS, TURNS, AT_ONCE = 8, 6, 4
KEY_ENV = "OPENAI_API_KEY"


@dataclass
class Replicas:
    plan: Plan
    files: dict[str, str]
    servers: list[Server]
    workdir: Path


@pytest.fixture(scope="module")
def replicas(vllm: Vllm, tiny_qwen: Path, engines_workdir: Path) -> Iterator[Replicas]:
    stack = load_text(SPEC)
    files = render_files(stack, with_manifests=True)
    workdir = engines_workdir / "routing"
    started = start_together({f"replica-{i}": partial(vllm.start, files, "routed", "qwen", "Qwen/Qwen2.5-0.5B-Instruct",
                                                      tiny_qwen, workdir / f"replica-{i}") for i in range(2)})
    servers = list(started.values())
    try:
        yield Replicas(plan(stack), files, servers, workdir)
    finally:
        for server in servers:
            server.stop()


@dataclass
class Measured:
    counters: CacheCounters
    failed: int
    keys: list[str]  # what the router hashed each request on (consistent_hash only)


def _agent_system_prompt(agent: int, run: str) -> str:
    # Distinct from the first token, so no two agents share a cached block.
    return f"{run}{agent:02d} is your badge. " + " ".join(f"Duty {d} of agent {agent}: be brief." for d in range(40))


def _drive(module: Any, run: str) -> int:
    """AGENTS agents, each its own client (so its own conversation id), TURNS turns each, AT_ONCE at a time.
    Returns how many calls failed."""
    from langchain_core.messages import AIMessage, BaseMessage, HumanMessage, SystemMessage

    def agent(n: int) -> int:
        llm = module.chat_model("qwen", max_tokens=16, temperature=0)
        messages: list[BaseMessage] = [SystemMessage(_agent_system_prompt(n, run))]
        failed = 0
        for turn in range(TURNS):
            messages.append(HumanMessage(f"Turn {turn}: what is duty {turn}?"))
            try:
                reply = llm.invoke(messages)
            except Exception:  # noqa: BLE001 - any failed turn is counted, and the count asserted
                failed += 1
                continue
            messages.append(AIMessage(str(reply.content)))
        return failed

    with ThreadPoolExecutor(AT_ONCE) as pool:
        return sum(pool.map(agent, range(AGENTS)))


def _routed_on(router: Server) -> list[str]:
    """The key the router hashed each request on, from its own log (vllm-router logs it at info level)."""
    log = re.sub(r"\x1b\[[0-9;]*m", "", router.process.log_tail(100_000))
    return re.findall(r"Extracted hash key: (\S+)", log)


def _measure(replicas: Replicas, policy: str | None, tag: str, monkeypatch: pytest.MonkeyPatch,
             servers: list[Server] | None = None) -> Measured:
    """The workload through the gateway and a router of `policy` (None: the rendered one) in front of
    `servers` (default: both replicas)."""
    r = replicas
    servers = servers or r.servers
    router = start_router(r.files, "routed", "qwen", [s.url for s in servers], r.workdir, policy=policy,
                          name=f"router-{tag}")
    key = f"sk-routing-{secrets.token_hex(8)}"
    gateway_config = point_at_local(_config(r), {"qwen": router.api_base})
    gateway = start_gateway(gateway_config, r.workdir, env={MASTER_KEY_ENV: key})
    monkeypatch.setenv(KEY_ENV, key)
    try:
        files = render_files(r.plan.stack, gateway.api_base, with_manifests=False, frameworks=("langchain",))
        path = r.workdir / f"agents-{tag}" / "langchain_models.py"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(files["agents/langchain_models.py"])
        before = cache_counters(r.servers, r.plan.served[0].engine.metrics)  # type: ignore[arg-type]
        failed = _drive(load_module(path), tag)
        after = cache_counters(r.servers, r.plan.served[0].engine.metrics)  # type: ignore[arg-type]
        return Measured(after - before, failed, _routed_on(router))
    finally:
        gateway.process.stop()
        router.stop()


def _config(r: Replicas) -> dict[str, Any]:
    config: dict[str, Any] = yaml.safe_load(r.files["litellm/config.yaml"])
    return config


def test_the_router_keeps_each_conversation_on_one_replica(replicas: Replicas, monkeypatch: pytest.MonkeyPatch) -> None:
    # The workload's ideal: all of it on one server, whose cache holds every conversation (2M tokens here).
    ideal = _measure(replicas, None, "one", monkeypatch, servers=replicas.servers[:1])
    routed = _measure(replicas, None, "routed", monkeypatch)
    spread = _measure(replicas, "random", "spread", monkeypatch)
    print(f"\nprefix-cache hit rate, {AGENTS} agents x {TURNS} turns, {AT_ONCE} at a time: one replica (the ideal) "
          f"{ideal.counters.rate:.3f}, two behind the rendered router {routed.counters.rate:.3f}, two behind a "
          f"random spread {spread.counters.rate:.3f}")
    assert ideal.failed == routed.failed == spread.failed == 0
    # Every turn reached the router with its client's conversation id, through the gateway: one id per agent.
    assert len(routed.keys) == AGENTS * TURNS and all(k.startswith("header:x-session-id:") for k in routed.keys)
    assert len(set(routed.keys)) == AGENTS, routed.keys
    assert routed.counters.rate >= ideal.counters.rate - 0.03, "the routed hit rate is short of the workload's ideal"
    assert spread.counters.rate <= routed.counters.rate - 0.05, "the random spread hit the cache as often"


def test_verify_reads_the_hit_rate_and_fails_when_turns_are_spread(replicas: Replicas) -> None:
    r = replicas
    key = f"sk-verify-{secrets.token_hex(8)}"
    outcomes = {}
    for policy in (None, "round_robin"):
        tag = policy or "rendered"
        router = start_router(r.files, "routed", "qwen", [s.url for s in r.servers], r.workdir, policy=policy,
                              name=f"router-verify-{tag}")
        gateway = start_gateway(point_at_local(_config(r), {"qwen": router.api_base}), r.workdir,
                                env={MASTER_KEY_ENV: key})
        try:
            checks = verify(r.plan, gateway.api_base, key)
        finally:
            gateway.process.stop()
            router.stop()
        outcomes[tag] = next(c for c in checks if c.check == "prefix-cache")
        print(f"\nverify through the {tag} router: {outcomes[tag]}")
    assert outcomes["rendered"].ok, outcomes["rendered"].detail
    assert re.match(r"hit rate 0\.\d\d over \d+ follow-up turns", outcomes["rendered"].detail)
    assert not outcomes["round_robin"].ok
    assert "found nothing in the prefix cache" in outcomes["round_robin"].detail
