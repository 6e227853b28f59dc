"""Serving: an agent's multi-turn conversation through the rendered gateway to real vLLM on CPU, with the
flags three deployments give the same model.

- stackgen: the command line `helm template` renders for the spec below (the chart's own args and env);
- vllm-defaults: plain `vllm serve MODEL` (the port and host only);
- production-stack: what vLLM production-stack's chart renders for the same model by default: with a
  `vllmConfig` it passes `--no-enable-prefix-caching` unless told otherwise, and `--max-model-len`.

Every turn resends the whole history, as an AutoGen agent does, so a server that caches prefixes skips
most of each prompt. The model is the tests' tiny Qwen2 (tests/engines/tinyqwen.py): its replies are
short and fixed, so the figures are about prompt processing and serving overhead, not a real model's
speed. Rounds interleave the targets; TTFT is read from streamed replies. Loopback only, bounded.

    python bench/serving.py [--conversations 4] [--turns 6] [--rounds 2] [--json FILE]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import sys
import tempfile
import time
from functools import partial
from pathlib import Path
from typing import Any

import httpx
import yaml

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))  # the tests' engines harness and tiny model

from streaming import streamed_turn  # noqa: E402

from stackgen.gateway import GATEWAY_ENV  # noqa: E402
from stackgen.load import load_text  # noqa: E402
from stackgen.localstack import free_port, point_at_local, spawn, start_gateway  # noqa: E402
from stackgen.render import render_files  # noqa: E402
from tests.engines.engines import CPU_IMAGE_ENV, VLLM_START_BUDGET, Vllm, pod_spec, tiny_qwen, vllm_venv  # noqa: E402
from tests.engines.pods import Container, Server, base_env, container, start_together, wait_for_probes  # noqa: E402

SPEC = """\
name: bench
profiles:
  cpu: {cpu: "2", memory: 6Gi}
models:
  - name: agent
    engine: vllm
    model: Qwen/Qwen2.5-0.5B-Instruct
    profile: cpu
    maxModelLen: 4096
"""
# An agent's system prompt: instructions and tool descriptions run to about a thousand tokens.
SYSTEM = "You are a careful assistant. " + " ".join(f"Rule {i}: answer in plain words and cite step {i}." for i in range(40))
QUESTION = "Here is the next part of the task, with the data gathered so far: " + "value " * 30


def _start_plain(vllm: Vllm, name: str, model_dir: Path, extra: list[str], env: dict[str, str], work: Path,
                 like: Container) -> Server:
    """vLLM with a command line of another deployment's making; probed on /health like ours."""
    port = free_port()
    argv = [str(vllm.venv / "bin" / "vllm"), "serve", str(model_dir), "--host", "127.0.0.1", "--port", str(port), *extra]
    server = Server(name, f"http://127.0.0.1:{port}", spawn(name, argv, work / f"{name}.log", env), like)
    wait_for_probes(server, VLLM_START_BUDGET)
    return server


async def conversation(client: httpx.AsyncClient, url: str, model: str, turns: int) -> list[tuple[float, float, int]]:
    """One agent conversation: per turn (time to first token, whole reply, completion tokens)."""
    history: list[dict[str, str]] = [{"role": "system", "content": SYSTEM}]
    out = []
    for turn in range(turns):
        history.append({"role": "user", "content": f"{QUESTION} (turn {turn})"})
        start = time.perf_counter()
        first, reply, tokens = await streamed_turn(client, url, {"model": model, "messages": history, "max_tokens": 32})
        out.append((first, time.perf_counter() - start, tokens))
        history.append({"role": "assistant", "content": reply})
    return out


async def workload(base: str, headers: dict[str, str], model: str, conversations: int, turns: int) -> dict[str, float]:
    async with httpx.AsyncClient(timeout=300, headers=headers) as client:
        began = time.perf_counter()
        results = await asyncio.gather(*(conversation(client, f"{base}/chat/completions", model, turns)
                                         for _ in range(conversations)))
        elapsed = time.perf_counter() - began
    samples = [s for conv in results for s in conv]
    ttft = sorted(s[0] for s in samples)
    return {"ttft_p50_ms": 1000 * statistics.median(ttft),
            "ttft_p95_ms": 1000 * ttft[min(len(ttft) - 1, int(0.95 * len(ttft)))],
            "tokens_per_s": sum(s[2] for s in samples) / elapsed, "turns": len(samples)}


def run(conversations: int, turns: int, rounds: int) -> list[dict[str, Any]]:
    vllm = Vllm(vllm_venv())
    model_dir = tiny_qwen(vllm.venv)
    files = render_files(load_text(SPEC))
    rendered = yaml.safe_load(files["litellm/config.yaml"])
    (entry,) = rendered["model_list"]
    chart = container(pod_spec(files, "bench", "agent"), "vllm")
    # The other two get this machine's CPU setting and nothing else of ours.
    env = base_env(**{k: v for k, v in chart.env.items() if k == "VLLM_CPU_KVCACHE_SPACE"}, **CPU_IMAGE_ENV)
    with tempfile.TemporaryDirectory(prefix="stackgen-serving-") as tmp:
        work = Path(tmp)
        targets = start_together({
            "stackgen": partial(vllm.start, files, "bench", "agent", "Qwen/Qwen2.5-0.5B-Instruct", model_dir, work),
            "vllm-defaults": partial(_start_plain, vllm, "vllm-defaults", model_dir, [], env, work, chart),
            "production-stack": partial(_start_plain, vllm, "production-stack", model_dir,
                                        ["--no-enable-prefix-caching", "--max-model-len", "4096"], env, work, chart),
        })
        try:
            # One gateway, the rendered entry once per target; the others are asked for their default
            # served name, the model's path.
            model_list = []
            for label in targets:
                upstream = entry["litellm_params"]["model"] if label == "stackgen" else f"hosted_vllm/{model_dir}"
                model_list.append({**entry, "model_name": label,
                                   "litellm_params": {**entry["litellm_params"], "model": upstream}})
            config = point_at_local({**rendered, "model_list": model_list},
                                    {label: server.api_base for label, server in targets.items()})
            gateway = start_gateway(config, work, dict(GATEWAY_ENV))
            try:
                for label in targets:  # warm-up: compile paths, connections
                    asyncio.run(workload(gateway.api_base, gateway.headers(), label, 1, 1))
                samples: dict[str, list[dict[str, float]]] = {label: [] for label in targets}
                for _ in range(rounds):
                    for label in targets:
                        samples[label].append(asyncio.run(
                            workload(gateway.api_base, gateway.headers(), label, conversations, turns)))
            finally:
                gateway.process.stop()
        finally:
            for server in targets.values():
                server.stop()
    return [{"target": label, **{k: statistics.median(r[k] for r in runs) for k in runs[0]}}
            for label, runs in samples.items()]


def table(rows: list[dict[str, Any]]) -> str:
    ours = next(r for r in rows if r["target"] == "stackgen")
    lines = ["| target | turns | TTFT p50 ms | TTFT p95 ms | tokens/s | TTFT p50 vs stackgen | tokens/s vs stackgen |",
             "| --- | ---: | ---: | ---: | ---: | ---: | ---: |"]
    for r in rows:
        lines.append(f"| {r['target']} | {r['turns']:.0f} | {r['ttft_p50_ms']:.0f} | {r['ttft_p95_ms']:.0f} | "
                     f"{r['tokens_per_s']:.1f} | {r['ttft_p50_ms'] / ours['ttft_p50_ms']:.2f}x | "
                     f"{r['tokens_per_s'] / ours['tokens_per_s']:.2f}x |")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--conversations", type=int, default=4, help="agents talking at once")
    parser.add_argument("--turns", type=int, default=6, help="turns per conversation")
    parser.add_argument("--rounds", type=int, default=2, help="interleaved rounds (medians reported)")
    parser.add_argument("--json", help="also write the raw numbers here")
    args = parser.parse_args()
    rows = run(args.conversations, args.turns, args.rounds)
    print(table(rows))
    if args.json:
        Path(args.json).write_text(json.dumps(rows, indent=2))


if __name__ == "__main__":
    main()
