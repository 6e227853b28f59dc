"""Routing across replicas: agents' multi-turn conversations through the rendered gateway and the chart's router
in front of real vLLM replicas (2 and 3 by default), each router policy side by side in one run.

- consistent_hash: stackgen's default (the chart's router, each agent's client sending its conversation id);
- round_robin: the balancing baseline;
- random: what a Kubernetes Service does (kube-proxy picks a pod at random per connection);
- cache_aware: vllm-router's prefix-tree policy, which stackgen does not offer (docs/operations.md), with the
  options in CACHE_AWARE; on request also `cache_aware/no-id` and `consistent_hash/no-id`, agents that send no
  conversation id (only the prompt's text could route them);
- one replica: the same conversations on a single server, one agent at a time: its hit rate is the workload's
  ideal (every prefix is cached where the next turn needs it) and its TTFT one replica's unloaded turn time.

The workload: agents share a long system prompt (instructions and tool descriptions) and each keep their own
growing history, every turn adding a tool's result and resending it all. The model is SmolLM2-135M-Instruct (a
real model from PyPI, tests/engines/smollm2.py), so a prefix-cache miss costs a real prefill. Hit rate comes
from the servers' prefix-cache counters; TTFT from streamed replies. Loopback only, bounded in count.

Cores: each replica gets its own, as a pod with exclusive cores would. vLLM's CPU backend binds its OpenMP
threads to the cores VLLM_CPU_OMP_THREADS_BIND lists, like `0` or `0-3` (`auto` keeps the last core for its
scheduler and binds to the rest of those the process may use: on 2 cores every replica gets core 0; `nobind`
binds nothing). The chart renders `nobind` (pods of a node share its cores); here each replica's copy of the
rendered Deployment says its own: replica i is bound to core i, and a replica beyond the machine's cores (the
third on 2 cores) is left unbound, its one thread (OMP_NUM_THREADS=1, from the chart) running on whichever core
is free instead of always doubling up with the same pinned replica.

Load: `--at-once` agents talk at a time, each sending its next turn when the last is answered. The default, 2,
is the machine's cores and no more than the replicas: one agent per replica (at 2) if routing spreads them, so
a turn waits for another only where routing put two conversations on one replica.

    python bench/routing.py [--replicas 2,3] [--policies consistent_hash,round_robin,random,cache_aware]
                            [--agents 4] [--turns 4] [--at-once 2] [--model smollm2|tiny]

The defaults took 13.2 minutes alone on 2 cores (bench/RESULTS.md): 2.6 of them the three servers' start with
torch.compile's cache cold, then the warm-up and the nine phases; five turns took 20.1. Each phase prints as it
ends.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import re
import shlex
import statistics
import sys
import tempfile
import time
from collections.abc import Mapping, Sequence
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

STACK, MODEL = "bench", "agent"
HUB_ID = "HuggingFaceTB/SmolLM2-135M-Instruct"
# float32 for SmolLM2: this CPU (AVX2, no AVX512-BF16) computes bfloat16 about 4x slower (a cached turn 12 s
# against 3 s, measured alone on one core); the tiny model keeps its own dtype.
SPEC = f"""\
name: {STACK}
profiles:
  cpu: {{cpu: "1", memory: 4Gi}}
models:
  - {{name: {MODEL}, engine: vllm, model: {HUB_ID}, profile: cpu, maxModelLen: 4096, contextLength: 8192, replicas: 2DTYPE}}
"""
DTYPE = {"smollm2": ", dtype: float32", "tiny": ""}
POLICIES = ("consistent_hash", "round_robin", "random", "cache_aware", "cache_aware/no-id", "consistent_hash/no-id")
DEFAULT_POLICIES = "consistent_hash,round_robin,random,cache_aware"
# vllm-router's cache_aware (the pinned release) (`vllm-router --help`; docs/load_balancing in its repository) prepares each
# chat request into tokens through the workers' /v1/chat/completions/render, which vLLM 0.32 serves only with
# --enable-scale-out: without it every preparation is refused (403; the router counts `preparation_rejected` and
# routes on load alone), so the replicas get that flag when a cache_aware policy runs (it adds endpoints and
# nothing else). With tokens, a request goes to the worker whose prefix tree matches most of its prompt if that
# share is above --cache-threshold (0.3), else to the least loaded; and to the least loaded whenever the loads
# (requests in flight) are imbalanced: more than --balance-abs-threshold apart and above
# --balance-rel-threshold times. At the defaults (64 apart) a few agents never unbalance it, and every
# conversation follows the shared system prompt to the worker that served it first (seen on stand-in workers);
# here a request more in flight on one worker than on another is an imbalance. Measured, that routed nearly
# every turn on load, to an idle worker, and no conversation moved (bench/RESULTS.md).
CACHE_AWARE = ("--balance-abs-threshold", "0", "--balance-rel-threshold", "1.0")
# Instructions and tool descriptions every agent shares: 1.1K tokens of SmolLM2's; the tiny model reads a byte
# a token and serves 4K, so it gets a fifth of them.
TOOLS = {"smollm2": 50, "tiny": 10}
# Records each tool call returns into one agent's history: its own growing context, about 430 tokens a turn (the
# fifth turn's prompt is about 3K tokens).
RECORDS = {"smollm2": 10, "tiny": 1}
CORES = sorted(os.sched_getaffinity(0))  # the cores this process, and so the replicas, may run on


def shared_prompt(tools: int) -> str:
    return " ".join(f"Tool {i}: look up record {i} in the ledger and report its owner, date and amount."
                    for i in range(tools))


def tool_result(n: int, turn: int, records: int) -> str:
    return " ".join(f"Record {n}-{turn}-{r}: owner agent {n}'s client {r}, dated 2026-{1 + r % 12:02d}-{10 + turn}, "
                    f"amount {n * 1000 + turn * 10 + r}.50 EUR." for r in range(records))


def bindings(count: int, cores: Sequence[int] = CORES) -> list[str]:
    """VLLM_CPU_OMP_THREADS_BIND for each of `count` replicas: its own core while there are cores, then none."""
    return [str(cores[i]) if i < len(cores) else "nobind" for i in range(count)]


def _edited(files: Mapping[str, str], key: str, container: str, edit: Any) -> dict[str, str]:
    """`files` with one container of a rendered Deployment changed by `edit` (the rest as rendered)."""
    doc = yaml.safe_load(files[key])
    (found,) = [c for c in doc["spec"]["template"]["spec"]["containers"] if c["name"] == container]
    edit(found)
    return {**files, key: yaml.safe_dump(doc, sort_keys=False)}


def replica(files: Mapping[str, str], bind: str, render: bool) -> dict[str, str]:
    """The rendered files with the model's pod binding vLLM's threads to `bind` instead of the chart's value, and
    with `--enable-scale-out` if `render` (the endpoint cache_aware prepares each request through)."""
    def edit(c: dict[str, Any]) -> None:
        var = next((e for e in c.get("env") or [] if e["name"] == "VLLM_CPU_OMP_THREADS_BIND"), None)
        if var is None:
            raise LookupError("the chart no longer renders VLLM_CPU_OMP_THREADS_BIND for a CPU vLLM pod")
        var["value"] = bind
        c["args"] = [*c["args"], *(["--enable-scale-out"] if render else [])]
    return _edited(files, f"manifests/deployment-{STACK}-{MODEL}.yaml", "vllm", edit)


def router_flags(files: Mapping[str, str], flags: Sequence[str]) -> dict[str, str]:
    """The rendered files with `flags` added to the router's command line."""
    def edit(c: dict[str, Any]) -> None:
        c["args"] = [*c["args"], *flags]
    return _edited(files, f"manifests/deployment-{STACK}-{MODEL}-router.yaml", "router", edit)


def router_counts(work: Path, name: str) -> dict[str, float]:
    """The router's own counts of its decisions, preparations and failures (non-zero ones), from its metrics."""
    argv = shlex.split((work / f"{name}.cmd").read_text())
    port = argv[argv.index("--prometheus-port") + 1]
    try:
        text = httpx.get(f"http://127.0.0.1:{port}/metrics", timeout=10).text
    except httpx.HTTPError as err:
        return {"unread": 0.0, str(err): 0.0}
    out = {}
    for line in text.splitlines():
        series, _, value = line.rpartition(" ")
        if series and not line.startswith("#") and re.search(r"decision|routing_inputs|error|fail|retr|reject",
                                                               series.split("{")[0]) and float(value):
            out[series] = float(value)
    return out


@dataclass(frozen=True)
class Shape:
    """What every agent shares (instructions, tools), and how many records each tool call adds to one history."""
    shared: str
    records: int


async def agent(client: httpx.AsyncClient, url: str, phase: str, shape: Shape, n: int, turns: int,
                send_id: bool) -> list[tuple[float, int] | None]:
    """One agent's conversation, on its own id if `send_id`: per turn, (time to first token, completion tokens),
    or None for a turn the gateway answered with an error (the agent goes on, as a retrying client would)."""
    headers = {routing.SESSION_HEADER: f"{phase}-agent-{n}"} if send_id else {}
    history = [{"role": "system", "content": f"Run {phase}. {shape.shared}"}]
    out: list[tuple[float, int] | None] = []
    for turn in range(turns):
        history.append({"role": "user", "content": f"Agent {n}, step {turn}. The lookup returned: "
                        f"{tool_result(n, turn, shape.records)} Which tool fits next?"})
        body = {"model": MODEL, "messages": history, "max_tokens": 4, "temperature": 0}
        try:
            first, reply, tokens = await streamed_turn(client, url, body, headers)
        except httpx.HTTPStatusError as err:
            print(f"{phase} agent {n} turn {turn}: {err.response.status_code} {err.response.text[:300]}",
                  file=sys.stderr, flush=True)
            out.append(None)
            reply = ""
        else:
            out.append((first, tokens))
        history.append({"role": "assistant", "content": reply or "ok"})
    return out


async def workload(base: str, headers: dict[str, str], phase: str, shape: Shape, agents: int, turns: int,
                   at_once: int, send_id: bool) -> dict[str, float]:
    gate = asyncio.Semaphore(at_once)

    async def one(client: httpx.AsyncClient, n: int) -> list[tuple[float, int] | None]:
        async with gate:
            return await agent(client, f"{base}/chat/completions", phase, shape, n, turns, send_id)

    async with httpx.AsyncClient(timeout=600, headers=headers) as client:
        began = time.perf_counter()
        results = await asyncio.gather(*(one(client, n) for n in range(agents)))
        elapsed = time.perf_counter() - began
    answered = [s for r in results for s in r if s is not None]
    ttft = sorted(s[0] for s in answered) or [float("nan")]
    return {"ttft_p50_ms": 1000 * statistics.median(ttft), "ttft_p95_ms": 1000 * ttft[int(0.95 * (len(ttft) - 1))],
            "tokens_per_s": sum(s[1] for s in answered) / elapsed, "turns": len(answered),
            "errors": agents * turns - len(answered), "seconds": elapsed}


def phase(files: dict[str, str], servers: list[Server], label: str, work: Path, shape: Shape, agents: int,
          turns: int, at_once: int) -> dict[str, Any]:
    """`label` is a router policy, `<policy>/no-id` for agents that send no conversation id, or `one replica`."""
    policy, _, mode = label.partition("/")
    policy = "round_robin" if policy == "one replica" else policy
    name = f"router-{len(servers)}x-" + label.replace("/", "-").replace(" ", "-")
    rendered = router_flags(files, CACHE_AWARE) if policy == "cache_aware" else files
    router = start_router(rendered, STACK, MODEL, [s.url for s in servers], work, policy=policy, name=name)
    config = point_at_local(yaml.safe_load(files["litellm/config.yaml"]), {MODEL: router.api_base})
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
        decisions = router_counts(work, name)
    finally:
        gateway.process.stop()
        router.stop()
    row = {"replicas": len(servers), "policy": label, "at_once": at_once, "hit_rate": counted.rate, **result}
    print(f"measured: {row}\n  router: {decisions}", file=sys.stderr, flush=True)  # a long run shows its progress
    return row


async def conversation(base: str, phase: str, shape: Shape, turns: int) -> list[tuple[float, int] | None]:
    async with httpx.AsyncClient(timeout=600) as client:
        return await agent(client, f"{base}/chat/completions", phase, shape, 0, turns, send_id=False)


def warm_up(servers: list[Server], binds: list[str], shape: Shape) -> None:
    """One two-turn conversation straight to each server, alone (its first request compiles paths); prints the
    turn times: the first a full prefill, the second a turn on a cached prefix."""
    for server, bind in zip(servers, binds, strict=True):
        times = [s[0] for s in asyncio.run(conversation(server.api_base, f"warm {server.url}", shape, 2)) if s]
        print(f"warm-up {server.name} (VLLM_CPU_OMP_THREADS_BIND={bind}): turns "
              f"{', '.join(f'{t:.2f}' for t in times)} s", file=sys.stderr, flush=True)


def run(replica_counts: list[int], policies: list[str], agents: int, turns: int, at_once: int,
        model: str) -> list[dict[str, Any]]:
    vllm = Vllm(vllm_venv())
    model_dir = smollm2(vllm.venv) if model == "smollm2" else tiny_qwen(vllm.venv)
    files = render_files(load_text(SPEC.replace("DTYPE", DTYPE[model])))
    shape = Shape(shared_prompt(TOOLS[model]), RECORDS[model])
    binds = bindings(max(replica_counts))
    render = any(p.startswith("cache_aware") for p in policies)
    rows = []
    with tempfile.TemporaryDirectory(prefix="stackgen-routing-") as tmp:
        work = Path(tmp)
        began = time.monotonic()
        servers = list(start_together({
            f"replica-{i}": partial(vllm.start, replica(files, bind, render), STACK, MODEL, HUB_ID, model_dir,
                                    work / f"replica-{i}")
            for i, bind in enumerate(binds)}).values())
        print(f"{len(servers)} replicas up in {time.monotonic() - began:.0f} s", file=sys.stderr, flush=True)
        try:
            warm_up(servers, binds, shape)
            rows.append(phase(files, servers[:1], "one replica", work, shape, agents, turns, 1))
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
             "hit rate vs random | TTFT p50 vs random | TTFT p95 vs random | tokens/s vs random | errors |",
             "| ---: | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |"]
    for r in rows:
        # Against a Service's random spread over as many replicas; one replica has none to compare with.
        spread = next((x for x in rows if x["replicas"] == r["replicas"] and x["policy"] == "random"), None)
        ratios = [f"{r[k] / spread[k]:.2f}x" if spread and spread[k] else "-"
                  for k in ("hit_rate", "ttft_p50_ms", "ttft_p95_ms", "tokens_per_s")]
        lines.append(
            f"| {r['replicas']} | {r['policy']} | {r['turns']:.0f} | {r['hit_rate']:.3f} | "
            f"{100 * (r['hit_rate'] - ideal):+.1f} pts | {r['ttft_p50_ms']:.0f} | {r['ttft_p95_ms']:.0f} | "
            f"{r['tokens_per_s']:.2f} | {' | '.join(ratios)} | {r['errors']:.0f} |")
    return "\n".join(lines)


def against_goal(rows: list[dict[str, Any]]) -> list[str]:
    """At the most replicas: each policy's hit rate against the ideal (goal: within 5 points) and its TTFT p50
    against random's (goal: at least 1.5 times better)."""
    ideal, most = rows[0]["hit_rate"], max(r["replicas"] for r in rows)
    spread = next((x for x in rows if x["replicas"] == most and x["policy"] == "random"), None)
    out = []
    for r in rows:
        if r["replicas"] != most or r["policy"] == "random" or spread is None:
            continue
        gap, speedup = 100 * (ideal - r["hit_rate"]), spread["ttft_p50_ms"] / r["ttft_p50_ms"]
        met = "met" if gap <= 5 and speedup >= 1.5 else "not met"
        out.append(f"{most} replicas, {r['policy']}: hit rate {gap:.1f} pts under the ideal (goal: at most 5), "
                   f"TTFT p50 {speedup:.2f}x better than random (goal: at least 1.5x): {met}")
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--replicas", default="2,3", help="replica counts to compare, comma-separated")
    parser.add_argument("--policies", default=DEFAULT_POLICIES,
                        help=f"router policies to compare, of: {', '.join(POLICIES)}")
    parser.add_argument("--agents", type=int, default=4)
    parser.add_argument("--turns", type=int, default=4)
    parser.add_argument("--at-once", type=int, default=2, help="agents talking at the same time")
    parser.add_argument("--model", choices=("smollm2", "tiny"), default="smollm2",
                        help="tiny: the tests' scripted Qwen2 (a smoke run; its prefill is nearly free)")
    parser.add_argument("--json", help="also write the raw numbers here")
    args = parser.parse_args()
    unknown = [p for p in args.policies.split(",") if p not in POLICIES]
    if unknown:
        parser.error(f"unknown policies {unknown}; choose from {', '.join(POLICIES)}")
    began = time.monotonic()
    rows = run([int(n) for n in args.replicas.split(",")], args.policies.split(","), args.agents, args.turns,
               args.at_once, args.model)
    print(table(rows))
    print()
    print("\n".join(against_goal(rows)))
    print(f"run took {time.monotonic() - began:.0f} s", file=sys.stderr)
    if args.json:
        Path(args.json).write_text(json.dumps(rows, indent=2))


if __name__ == "__main__":
    main()
