"""How rendering scales with the number of models.

Renders synthetic stacks of 1, 10, 100 and 1,000 models (a mix of vLLM on GPUs, Ollama on CPUs and external
routes) and reports the median time of the pure render (values, gateway config, AutoGen configs) and,
separately, of the manifests (the real `helm template` of the chart). Prints a Markdown table.

    python bench/render.py [--sizes 1,10,100,1000] [--repeat 5] [--json FILE]
"""

from __future__ import annotations

import argparse
import functools
import json
import statistics
import time
from collections.abc import Callable
from typing import Any

from stackgen.render import render_files
from stackgen.spec import Stack

ENGINES = (
    {"engine": "vllm", "model": "Qwen/Qwen2.5-7B-Instruct", "profile": "l4", "maxModelLen": 8192, "toolCalling": True},
    {"engine": "ollama", "model": "qwen2.5:0.5b", "profile": "cpu"},
    {"engine": "external", "provider": "mistral", "model": "mistral-small-latest",
     "apiKey": {"secretName": "mistral-api", "key": "api-key"}},
)


def synthetic_stack(models: int) -> Stack:
    spec: dict[str, Any] = {
        "name": "bench",
        "namespace": "bench",
        "profiles": {
            "l4": {"gpu": {"resource": "nvidia.com/gpu", "count": 1, "memoryGiB": 24}, "cpu": "4", "memory": "32Gi"},
            "cpu": {"cpu": "2", "memory": "4Gi"},
        },
        "models": [{"name": f"m{i}", "tags": [f"group{i % 7}"], **ENGINES[i % len(ENGINES)]} for i in range(models)],
    }
    return Stack.model_validate(spec)


def median_seconds(action: Callable[[], object], repeat: int) -> float:
    samples = []
    for _ in range(repeat):
        start = time.perf_counter()
        action()
        samples.append(time.perf_counter() - start)
    return statistics.median(samples)


def measure(sizes: list[int], repeat: int, helm_limit: int) -> list[dict[str, Any]]:
    rows = []
    for size in sizes:
        stack = synthetic_stack(size)
        pure = median_seconds(functools.partial(render_files, stack, with_manifests=False), repeat)
        helm = median_seconds(functools.partial(render_files, stack, with_manifests=True), max(1, repeat // 2)) \
            if size <= helm_limit else None
        rows.append({"models": size, "render_s": pure, "with_manifests_s": helm})
    return rows


def table(rows: list[dict[str, Any]]) -> str:
    base = rows[0]
    lines = ["| models | render (s) | per model (ms) | with manifests via helm (s) |",
             "| ---: | ---: | ---: | ---: |"]
    for r in rows:
        helm = f"{r['with_manifests_s']:.3f}" if r["with_manifests_s"] is not None else "not run"
        lines.append(f"| {r['models']} | {r['render_s']:.4f} | {1000 * r['render_s'] / r['models']:.2f} | {helm} |")
    last = rows[-1]
    growth = (last["render_s"] / base["render_s"]) / (last["models"] / base["models"]) if len(rows) > 1 else 1.0
    lines.append("")
    lines.append(f"Time per model at {last['models']} models is {growth:.2f}x its value at {base['models']} "
                 "(1.0 = perfectly linear).")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="1,10,100,1000")
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--helm-limit", type=int, default=1000, help="largest stack to render through helm")
    parser.add_argument("--json", help="also write the raw numbers here")
    args = parser.parse_args()
    rows = measure([int(s) for s in args.sizes.split(",")], args.repeat, args.helm_limit)
    print(table(rows))
    if args.json:
        with open(args.json, "w") as f:
            json.dump(rows, f, indent=2)


if __name__ == "__main__":
    main()
