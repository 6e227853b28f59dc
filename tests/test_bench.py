"""The benchmarks stay runnable (`make bench`): each runs here at its smallest and reports every row."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

BENCH = Path(__file__).resolve().parents[1] / "bench"


def run(script: str, *args: str) -> list[str]:
    done = subprocess.run([sys.executable, str(BENCH / script), *args], capture_output=True, text=True,
                          timeout=300, check=False)
    assert done.returncode == 0, done.stderr[-3000:]
    return [line for line in done.stdout.splitlines() if line.startswith("| ") and "---" not in line]


def test_render_benchmark_reports_each_size() -> None:
    rows = run("render.py", "--sizes", "1,10", "--repeat", "1")
    assert [r.split("|")[1].strip() for r in rows[1:]] == ["1", "10"]


def test_gateway_benchmark_reports_each_target_without_errors() -> None:
    rows = run("gateway.py", "--concurrency", "1", "--requests", "4", "--rounds", "1", "--seconds", "30")
    cells = [[c.strip() for c in r.split("|")[1:-1]] for r in rows[1:]]
    assert [c[0] for c in cells] == ["direct", "stackgen", "litellm-defaults"]
    assert all(c[2] == "4/0" for c in cells), cells  # every request answered, none failed
