"""Routing across replicas: agents' multi-turn conversations through the rendered gateway and a router in front
of real vLLM replicas (2 by default), each router policy side by side in one run.

- consistent_hash: stackgen's default (the chart's router, each agent's client sending its conversation id);
- random: what a Kubernetes Service does (kube-proxy picks a pod at random per connection);
- round_robin: the balancing baseline;
- cache_aware: vllm-router's prefix-tree policy, which stackgen does not offer (docs/operations.md), with and
  without conversation ids (`/no-id`: agents that send none, where only the prompt's text could route them);
- one replica: the same workload on a single server, whose hit rate is the workload's ideal (every prefix is
  cached where the next turn needs it).

The workload: agents that share a long system prompt (instructions and tool descriptions, about 1.5K tokens)
and each keep their own growing history, every turn adding a tool's result (about 200 tokens) and resending
it all. The model is SmolLM2-135M-Instruct (a real model from
PyPI, tests/engines/smollm2.py), so a prefix-cache miss costs a real prefill. Hit rate comes from the
servers' prefix-cache counters; TTFT from streamed replies. Loopback only, bounded in count.

    python bench/routing.py [--replicas 2] [--policies consistent_hash,random] [--agents 8] [--turns 6]
                            [--at-once 4] [--model smollm2|tiny]

On 2 cores each phase (48 turns of SmolLM2) takes about 12 minutes, so the defaults run three: one replica,
consistent_hash and random (about 40 minutes with the servers' start-up).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import sys
import tempfile
import time
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Any

import httpx
import yaml

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))  # the tests' engines harness and models

from streaming import streamed_turn  # noqa: E402

from stackgen import routing  # noqa: E402
from stackgen.engines.vllm import ENGINE as VLLM  # noqa: E402
from stackgen.gateway import GATEWAY_ENV  # noqa: E402
from stackgen.load import load_text  # noqa: E402
from stackgen.localstack import point_at_local, start_gateway  # noqa: E402
from stackgen.render import render_files  # noqa: E402
from tests.engines.engines import Vllm, tiny_qwen, vllm_venv  # noqa: E402
from tests.engines.pods import Server, start_together  # noqa: E402
from tests.engines.router import CacheCounters, cache_counters, start_router  # noqa: E402
from tests.engines.smollm2 import smollm2  # noqa: E402

HUB_ID = "HuggingFaceTB/SmolLM2-135M-Instruct"
SPEC = f"""\
name: bench
profiles:
  cpu: {{cpu: "1", memory: 4Gi}}
models:
  - {{name: agent, engine: vllm, model: {HUB_ID}, profile: cpu, maxModelLen: 4096, contextLength: 8192, replicas: 2}}
"""
POLICIES = ("consistent_hash", "random", "round_robin", "cache_aware", "cache_aware/no-id", "consistent_hash/no-id")
# Instructions and tool descriptions every agent shares: about 1.5K tokens of SmolLM2's; the tiny model reads
# a byte a token and serves 4K, so it gets a fifth of them.
TOOLS = {"smollm2": 75, "tiny": 15}
# Records each tool call returns into one agent's history: its own growing context, about 200 tokens a turn.
RECORDS = {"smollm2": 8, "tiny": 1}


def shared_prompt(tools: int) -> str:
    return " ".join(f"Tool {i}: look up record {i} in the ledger and report its owner, date and amount."
                    for i in range(tools))


def tool_result(n: int, turn: int, records: int) -> str:
    return " ".join(f"Record {n}-{turn}-{r}: owner agent {n}'s client {r}, dated 2026-{1 + r % 12:02d}-{10 + turn}, "
                    f"amount {n * 1000 + turn * 10 + r}.50 EUR." for r in range(records))


@dataclass(frozen=True)
class Shape:
    """What every agent shares (instructions, tools), and how many records each tool call adds to one history."""
    shared: str
    records: int


async def agent(client: httpx.AsyncClient, url: str, phase: str, shape: Shape, n: int, turns: int,
                send_id: bool) -> list[tuple[float, int]]:
    """One agent's conversation, on its own id if `send_id`: per turn, (time to first token, completion tokens)."""
    headers = {routing.SESSION_HEADER: f"{phase}-agent-{n}"} if send_id else {}
    history = [{"role": "system", "content": f"Run {phase}. {shape.shared}"}]
    out = []
    for turn in range(turns):
        history.append({"role": "user", "content": f"Agent {n}, step {turn}. The lookup returned: "
                        f"{tool_result(n, turn, shape.records)} Which tool fits next?"})
        body = {"model": "agent", "messages": history, "max_tokens": 4, "temperature": 0}
        first, reply, tokens = await streamed_turn(client, url, body, headers)
        out.append((first, tokens))
        history.append({"role": "assistant", "content": reply or "ok"})
    return out


async def workload(base: str, headers: dict[str, str], phase: str, shape: Shape, agents: int, turns: int,
                   at_once: int, send_id: bool) -> dict[str, float]:
    gate = asyncio.Semaphore(at_once)

    async def one(client: httpx.AsyncClient, n: int) -> list[tuple[float, int]]:
        async with gate:
            return await agent(client, f"{base}/chat/completions", phase, shape, n, turns, send_id)

    async with httpx.AsyncClient(timeout=600, headers=headers) as client:
        began = time.perf_counter()
        results = await asyncio.gather(*(one(client, n) for n in range(agents)))
        elapsed = time.perf_counter() - began
    ttft = sorted(s[0] for r in results for s in r)
    return {"ttft_p50_ms": 1000 * statistics.median(ttft), "ttft_p95_ms": 1000 * ttft[int(0.95 * (len(ttft) - 1))],
            "tokens_per_s": sum(s[1] for r in results for s in r) / elapsed, "turns": len(ttft)}


def phase(files: dict[str, str], servers: list[Server], label: str, work: Path, shape: Shape, agents: int,
          turns: int, at_once: int) -> dict[str, Any]:
    """`label` is a router policy, `<policy>/no-id` for agents that send no conversation id, or `one replica`."""
    policy, _, mode = label.partition("/")
    policy = "round_robin" if policy == "one replica" else policy
    name = "router-" + label.replace("/", "-").replace(" ", "-")
    router = start_router(files, "bench", "agent", [s.url for s in servers], work, policy=policy, name=name)
    config = point_at_local(yaml.safe_load(files["litellm/config.yaml"]), {"agent": router.api_base})
    gateway = start_gateway(config, work, dict(GATEWAY_ENV))
    metrics = VLLM.metrics
    assert metrics is not None
    try:
        before = cache_counters(servers, metrics)
        # Each phase its own system prompt: no phase finds another's conversations in the caches.
        run_id = f"{len(servers)}x {label}"
        result = asyncio.run(workload(gateway.api_base, gateway.headers(), run_id, shape, agents, turns, at_once,
                                      send_id=mode != "no-id"))
        counted: CacheCounters = cache_counters(servers, metrics) - before
    finally:
        gateway.process.stop()
        router.stop()
    row = {"replicas": len(servers), "policy": label, "hit_rate": counted.rate, **result}
    print(f"measured: {row}", file=sys.stderr, flush=True)  # a long run shows its progress
    return row


def run(replica_counts: list[int], policies: list[str], agents: int, turns: int, at_once: int,
        model: str) -> list[dict[str, Any]]:
    vllm = Vllm(vllm_venv())
    model_dir = smollm2(vllm.venv) if model == "smollm2" else tiny_qwen(vllm.venv)
    files = render_files(load_text(SPEC))
    shape = Shape(shared_prompt(TOOLS[model]), RECORDS[model])
    rows = []
    with tempfile.TemporaryDirectory(prefix="stackgen-routing-") as tmp:
        work = Path(tmp)
        servers = list(start_together({f"replica-{i}": partial(vllm.start, files, "bench", "agent", HUB_ID, model_dir,
                                                                work / f"replica-{i}")
                                       for i in range(max(replica_counts))}).values())
        try:
            # Warm-up: one conversation straight to every server (its first request compiles paths).
            for server in servers:
                asyncio.run(workload(server.api_base, {}, f"warm {server.url}", shape, 1, 1, 1, send_id=False))
            rows.append(phase(files, servers[:1], "one replica", work, shape, agents, turns, at_once))
            for count in replica_counts:
                for label in policies:
                    rows.append(phase(files, servers[:count], label, work, shape, agents, turns, at_once))
        finally:
            for server in servers:
                server.stop()
    return rows


def table(rows: list[dict[str, Any]]) -> str:
    ideal = rows[0]["hit_rate"]
    lines = ["| replicas | policy | turns | hit rate | vs ideal | TTFT p50 ms | TTFT p95 ms | tokens/s | "
             "hit rate vs random | TTFT p50 vs random | tokens/s vs random |",
             "| ---: | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |"]
    for r in rows:
        # Against a Service's random spread over as many replicas; one replica has none to compare with.
        spread = next((x for x in rows if x["replicas"] == r["replicas"] and x["policy"] == "random"), None)
        ratios = [f"{r[k] / spread[k]:.2f}x" if spread else "-" for k in ("hit_rate", "ttft_p50_ms", "tokens_per_s")]
        lines.append(
            f"| {r['replicas']} | {r['policy']} | {r['turns']:.0f} | {r['hit_rate']:.3f} | "
            f"{100 * (r['hit_rate'] - ideal):+.1f} pts | {r['ttft_p50_ms']:.0f} | {r['ttft_p95_ms']:.0f} | "
            f"{r['tokens_per_s']:.2f} | {' | '.join(ratios)} |")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--replicas", default="2", help="replica counts to compare, comma-separated")
    parser.add_argument("--policies", default="consistent_hash,random",
                        help=f"router policies to compare, of: {', '.join(POLICIES)}")
    parser.add_argument("--agents", type=int, default=8)
    parser.add_argument("--turns", type=int, default=6)
    parser.add_argument("--at-once", type=int, default=4, help="agents talking at the same time")
    parser.add_argument("--model", choices=("smollm2", "tiny"), default="smollm2",
                        help="tiny: the tests' scripted Qwen2 (a smoke run; its prefill is nearly free)")
    parser.add_argument("--json", help="also write the raw numbers here")
    args = parser.parse_args()
    rows = run([int(n) for n in args.replicas.split(",")], args.policies.split(","), args.agents, args.turns,
               args.at_once, args.model)
    print(table(rows))
    if args.json:
        Path(args.json).write_text(json.dumps(rows, indent=2))


if __name__ == "__main__":
    main()
