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
    gateway = run("gateway.py")
    render = run("render.py")
    cpu = platform.processor() or platform.machine()
    report = f"""# Benchmark results

Machine: {os.cpu_count()} cores ({cpu}), Python {platform.python_version()}, {date.today().isoformat()}.
Reproduce with `make bench`. Absolute numbers depend on the machine; read the ratios.

## Gateway: direct calls to the model server against calls through LiteLLM

`bench/gateway.py`: llama.cpp (tiny model, 4 tokens per reply) on loopback; the LiteLLM proxy with the config
stackgen renders for `kind-cpu` (and the env the chart sets) and with LiteLLM's defaults (same routes and
key, nothing else); one worker each. The load generator, the model server and the gateway share the machine.

{gateway}

## Rendering

`bench/render.py`: synthetic stacks mixing vLLM on GPUs, Ollama on CPUs and external routes.

{render}
"""
    (HERE / "RESULTS.md").write_text(report)
    print(report)


if __name__ == "__main__":
    main()
