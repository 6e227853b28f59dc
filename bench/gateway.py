"""What the gateway costs: the same chat requests sent straight to a model server and through LiteLLM.

One run, loopback only, bounded in requests and time. The model server is llama.cpp (xllamacpp) on the tiny
model the tests build; the gateway is the real LiteLLM proxy: with the config stackgen renders for kind-cpu
(one replica, no Redis); with the config it renders for two replicas (Redis on, Debian's redis-server); the
same plus an rpm limit (counted in Redis on every request); and with LiteLLM's defaults (the same model_list
and key, nothing else). For each concurrency level it reports
requests per second and p50/p99 latency, the latency the gateway adds and its throughput ratio to direct calls.

    python bench/gateway.py [--concurrency 1,8,32] [--requests 96] [--seconds 30] [--rounds 3] [--json FILE]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))  # the tests' tiny model and llama.cpp runner

from stackgen import examples  # noqa: E402
from stackgen.gateway import GATEWAY_ENV, gateway_config  # noqa: E402
from stackgen.localstack import point_at_local, start_gateway  # noqa: E402
from stackgen.plan import plan  # noqa: E402
from stackgen.spec import Stack  # noqa: E402
from stackgen.specbase import Limits  # noqa: E402
from tests.stack.procs import start_llama_server, start_redis  # noqa: E402
from tests.stack.tinymodel import build_tiny_gguf  # noqa: E402

MODEL = "ollama-small"  # kind-cpu's first model; its route is what every in-cluster model uses
BODY = {"model": MODEL, "messages": [{"role": "user", "content": "hi"}], "max_tokens": 4}


def defaults_config(rendered: dict[str, Any]) -> dict[str, Any]:
    """LiteLLM's own defaults: the same routes and key, no router or litellm settings of ours."""
    return {"model_list": rendered["model_list"], "general_settings": rendered["general_settings"]}


async def load(url: str, headers: dict[str, str], body: dict[str, Any], concurrency: int, requests: int,
               seconds: float) -> dict[str, float]:
    latencies: list[float] = []
    errors = 0
    deadline = time.perf_counter() + seconds
    remaining = requests
    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
    async with httpx.AsyncClient(timeout=60, limits=limits, headers=headers) as client:

        async def worker() -> None:
            nonlocal remaining, errors
            while remaining > 0 and time.perf_counter() < deadline:
                remaining -= 1
                start = time.perf_counter()
                response = await client.post(url, json=body)
                if response.status_code == 200:
                    latencies.append(time.perf_counter() - start)
                else:
                    errors += 1

        began = time.perf_counter()
        await asyncio.gather(*(worker() for _ in range(concurrency)))
        elapsed = time.perf_counter() - began
    ordered = sorted(latencies) or [float("nan")]
    return {
        "ok": len(latencies), "errors": errors, "rps": len(latencies) / elapsed,
        "p50_ms": 1000 * statistics.median(ordered),
        "p99_ms": 1000 * ordered[min(len(ordered) - 1, int(0.99 * len(ordered)))],
    }


def _combine(runs: list[dict[str, float]]) -> dict[str, float]:
    """Median of each figure over the rounds; counts are summed."""
    return {
        "ok": sum(r["ok"] for r in runs), "errors": sum(r["errors"] for r in runs),
        **{key: statistics.median(r[key] for r in runs) for key in ("rps", "p50_ms", "p99_ms")},
    }


def _with_redis(stack: Stack, limits: bool) -> dict[str, Any]:
    """kind-cpu with two gateway replicas (so Redis is on, as stackgen renders it), and, with `limits`, an rpm
    limit on every model that no run reaches (so LiteLLM counts every request in Redis)."""
    gateway = stack.gateway.model_copy(update={"replicas": 2})
    models = [m.model_copy(update={"limits": Limits(rpm=10**6)}) if limits else m for m in stack.models]
    return gateway_config(plan(stack.model_copy(update={"gateway": gateway, "models": models})))


def run(concurrency: list[int], requests: int, seconds: float, rounds: int) -> list[dict[str, Any]]:
    stack = examples.resolve("kind-cpu").stack
    rendered = gateway_config(plan(stack))
    rows: list[dict[str, Any]] = []
    with tempfile.TemporaryDirectory(prefix="stackgen-bench-") as tmp:
        work = Path(tmp)
        model = build_tiny_gguf(work / "tiny.gguf")
        # Every route points at the one server, under the upstream name the rendered config sends.
        server = start_llama_server(model, "qwen2.5:0.5b", work)
        redis = start_redis(work)
        processes = [server.process, redis.process]
        try:
            local = {e["model_name"]: server.api_base for e in rendered["model_list"]}
            targets = {"direct": (server.api_base, {}, {**BODY, "model": "qwen2.5:0.5b"})}
            # stackgen's gateway runs with the env the chart gives it; the defaults with none of ours.
            variants = (("stackgen", rendered, dict(GATEWAY_ENV)),
                        ("stackgen+redis", _with_redis(stack, False), {**GATEWAY_ENV, **redis.gateway_env()}),
                        ("stackgen+redis+rpm", _with_redis(stack, True), {**GATEWAY_ENV, **redis.gateway_env()}),
                        ("litellm-defaults", defaults_config(rendered), {name: None for name in GATEWAY_ENV}))
            for label, config, env in variants:
                gateway = start_gateway(point_at_local(config, local), work, env)
                processes.append(gateway.process)
                targets[label] = (gateway.api_base, gateway.headers(), BODY)
            for level in concurrency:
                for base, headers, body in targets.values():  # warm-up: connections, caches
                    asyncio.run(load(base + "/chat/completions", headers, body, level, min(8, requests), seconds))
                # Rounds interleave the targets so a burst of load elsewhere on the machine hits all alike.
                samples: dict[str, list[dict[str, float]]] = {label: [] for label in targets}
                for _ in range(rounds):
                    for label, (base, headers, body) in targets.items():
                        samples[label].append(asyncio.run(
                            load(base + "/chat/completions", headers, body, level, requests, seconds)))
                for label, runs in samples.items():
                    rows.append({"target": label, "concurrency": level, **_combine(runs)})
        finally:
            for proc in reversed(processes):
                proc.stop()
    return rows


def table(rows: list[dict[str, Any]]) -> str:
    direct = {r["concurrency"]: r for r in rows if r["target"] == "direct"}
    lines = ["| target | concurrency | ok/errors | req/s | p50 ms | p99 ms | added p50 ms | throughput vs direct |",
             "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |"]
    for r in rows:
        d = direct[r["concurrency"]]
        added = r["p50_ms"] - d["p50_ms"]
        lines.append(f"| {r['target']} | {r['concurrency']} | {r['ok']}/{r['errors']} | {r['rps']:.1f} | "
                     f"{r['p50_ms']:.1f} | {r['p99_ms']:.1f} | {added:+.1f} | {r['rps'] / d['rps']:.2f}x |")
    rps = {(r["target"], r["concurrency"]): r["rps"] for r in rows}
    levels = sorted({r["concurrency"] for r in rows})

    def ratios(over: str, under: str) -> str:
        return ", ".join(f"{rps[over, c] / rps[under, c]:.2f}x at {c}" for c in levels)

    lines += ["", f"Throughput of stackgen's config over LiteLLM's defaults, by concurrency: "
                  f"{ratios('stackgen', 'litellm-defaults')}.",
              f"Throughput with Redis over without: {ratios('stackgen+redis', 'stackgen')}; with Redis and an rpm "
              f"limit counted in it: {ratios('stackgen+redis+rpm', 'stackgen')}."]
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--concurrency", default="1,8,32")
    parser.add_argument("--requests", type=int, default=96, help="requests per target and level")
    parser.add_argument("--seconds", type=float, default=30, help="time limit per target and level")
    parser.add_argument("--rounds", type=int, default=3, help="interleaved rounds per level (medians reported)")
    parser.add_argument("--json", help="also write the raw numbers here")
    args = parser.parse_args()
    rows = run([int(c) for c in args.concurrency.split(",")], args.requests, args.seconds, args.rounds)
    print(table(rows))
    if args.json:
        Path(args.json).write_text(json.dumps(rows, indent=2))


if __name__ == "__main__":
    main()
