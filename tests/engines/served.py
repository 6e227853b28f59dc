"""Every model a plan serves, started at once as its pod would start it (engines.py, pods.py): the real-engine
tests that run a whole stack behind the real gateway begin here."""

from __future__ import annotations

from functools import partial
from pathlib import Path

from stackgen.plan import Plan, ServedPlan

from .conftest import LocalEngines
from .pods import Server, start_together

# Where the custom server's args name its model: the test's tiny GGUF stands in for that file. (The `byo`
# model of test_real_engines.py's MIXED_SPEC names it.)
CUSTOM_MODEL_PATH = "/models/tiny.gguf"


def start_engines(resolved: Plan, files: dict[str, str], local: LocalEngines,
                  workdir: Path) -> tuple[dict[str, Server], dict[str, str]]:
    pulls: dict[str, str] = {}
    stack = resolved.stack.name

    def start(m: ServedPlan) -> Server:
        if m.engine_name == "vllm":
            return local.vllm.start(files, stack, m.name, m.spec.model, local.tiny_qwen, workdir)
        if m.engine_name == "ollama":
            home = workdir / f"{m.name}-home"
            done = local.ollama.pull(files, stack, m.name, home, workdir)
            pulls[m.name] = done.stdout + done.stderr
            assert done.returncode == 0, f"the chart's pull-model script failed:\n{pulls[m.name][-3000:]}"
            return local.ollama.start(files, stack, m.name, home, workdir)
        if m.engine_name == "llamacpp":
            return local.llama.start(files, stack, m.name, workdir)
        return local.llama.start_custom(files, stack, m.name, CUSTOM_MODEL_PATH, workdir)

    return start_together({m.name: partial(start, m) for m in resolved.served}), pulls
