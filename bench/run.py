"""`make bench`: both benchmarks in one run, written to bench/RESULTS.md with the machine they ran on."""

from __future__ import annotations

import os
import platform
import subprocess
import sys
from datetime import date
from pathlib import Path

HERE = Path(__file__).resolve().parent


def run(script: str, *args: str) -> str:
    done = subprocess.run([sys.executable, str(HERE / script), *args], capture_output=True, text=True, check=True)
    return done.stdout.strip()


def main() -> None:
    vllm = subprocess.run([sys.executable, str(HERE.parent / "scripts" / "versions.py"), "vllm"], capture_output=True,
                          text=True, check=True).stdout.strip()
    gateway = run("gateway.py")
    serving = run("serving.py")
    routing = run("routing.py")
    render = run("render.py")
    mirror = run("mirror.py")
    cpu = platform.processor() or platform.machine()
    report = f"""# Benchmark results

Machine: {os.cpu_count()} cores ({cpu}), Python {platform.python_version()}, {date.today().isoformat()}.
Reproduce with `make bench`. Absolute numbers depend on the machine; read the ratios.

## Gateway: direct calls to the model server against calls through LiteLLM

`bench/gateway.py`: llama.cpp (tiny model, 4 tokens per reply) on loopback; the LiteLLM proxy with the config
stackgen renders for `kind-cpu` (and the env the chart sets); the config it renders with two gateway replicas,
so with Redis (Debian's `redis-server` on loopback); the same with an rpm limit that no run reaches, so that
LiteLLM counts every request in Redis; and LiteLLM's defaults (same routes and key, nothing else). One worker
each. The load generator, the model server, Redis and the gateway share the machine.

{gateway}

## Serving: stackgen's vLLM flags against vLLM's defaults and production-stack's

`bench/serving.py`: real vLLM {vllm} (CPU build) serving the tests' tiny Qwen2, three servers started with the
command line each deployment renders for the same model, one rendered LiteLLM gateway in front. Four agents
each hold a six-turn conversation, every turn resending the history (about a thousand tokens of system prompt
and growing), streamed; TTFT is the time to the first content token. The tiny model's replies are fixed and
short, so this measures prompt processing and serving overhead, not a real model's speed.

{serving}

## Routing across replicas: the router's policies against a Service's random spread

`bench/routing.py`: real vLLM {vllm} (CPU build) serving SmolLM2-135M-Instruct (a real model from PyPI, so a
prefix-cache miss costs a real prefill), 2 replicas started with the chart's command line (1 CPU each), the
chart's vllm-router in front with each policy in turn, the rendered gateway in front of that. Eight agents
share a system prompt of about 1.5K tokens and each keeps its own history, which every turn grows by a tool's
result of about 200 tokens; six turns each, four agents at a time, each agent's client sending its own
`x-session-id`. `one replica` runs the same workload on one server: its hit rate is the workload's ideal.
`random` is what a Kubernetes Service does. Hit rate from the servers' prefix-cache counters; TTFT from
streamed replies.

{routing}

## Rendering

`bench/render.py`: synthetic stacks mixing vLLM on GPUs, Ollama on CPUs and external routes.

{render}

## Filling a registry mirror: crane against the ORAS CLI

`bench/mirror.py`: the same image copied between two distribution registries on loopback by each tool, at
its default concurrency, into a new repository, then again (which must move no blob). `stackgen bundle --copy`
runs crane: ORAS copies about 10% faster here, and is idempotent too, but it takes no Docker Hub short name
(`redis:<tag>`, `curlimages/curl:<tag>`), which the chart's images are, and cannot push a `docker save`
archive.

{mirror}
"""
    (HERE / "RESULTS.md").write_text(report)
    print(report)


if __name__ == "__main__":
    main()
