"""Memory of a model server: what its weights take, what one token of context costs, and how much context
and concurrency the rest of a GPU (or of a CPU pod) buys. Pure arithmetic on catalog facts and the spec.

`size` turns the numbers into the decisions `plan` uses (tensor parallel size, served context) and into
refusals that carry the numbers and a fix. Every figure is a bound from published facts and a fixed
overhead estimate, not a measurement: a plan that fits can still be tuned on the real cluster.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Callable, Literal

from . import catalog
from .errors import Problem
from .spec import OllamaModel, Profile, VllmModel

GIB = 2**30
VLLM_DEFAULT_UTILIZATION = 0.9  # vLLM's --gpu-memory-utilization default
# What vLLM needs on each GPU beside weights and KV cache: CUDA context and other non-torch allocations,
# plus the activation peak of its profiling run. vLLM's start-up log for Llama-3-8B on one GPU reports
# 1.79 GiB non-torch + 1.26 GiB activations, and 3.58 GiB non-torch per GPU at tensor parallel 2 (NCCL
# buffers) (vllm-project/vllm#10511); Llama-3.1-8B on a 24 GiB card logs 2.4-3.3 GiB in all
# (vllm-project/vllm#10517). Rounded up to fixed figures so a plan errs on the side of refusing.
VLLM_GPU_OVERHEAD_GIB = 3.0
VLLM_TP_OVERHEAD_GIB = 1.8  # added per GPU when a replica spans several GPUs
# Estimates, not measurements: the vLLM CPU server before its weights (Python, PyTorch, oneDNN), and
# Ollama's runner (compute graph, plus the CUDA context on a GPU).
VLLM_CPU_OVERHEAD_GIB = 1.5
OLLAMA_OVERHEAD_GIB = 1.0
BLOCK_TOKENS = 16  # vLLM hands out KV cache in blocks of 16 tokens
MIN_CONTEXT = 4096  # a context shrunk to fit is never below this (or the model's own, when smaller)
TP_SIZES = (1, 2, 4, 8, 16)
OLLAMA_KV_BYTES = {"f16": 2.0, "q8_0": 1.0, "q4_0": 0.5}  # OLLAMA_KV_CACHE_TYPE -> bytes per value
DTYPE_BYTES = {"float32": 4.0, "float16": 2.0, "bfloat16": 2.0}


def kv_bytes_per_token(facts: catalog.ModelFacts, tp: int = 1, dtype_bytes: float = 2.0) -> float:
    """Keys and values of every layer for one token, on one of `tp` GPUs. KV heads are split across the
    GPUs; with more GPUs than KV heads vLLM keeps one (replicated) head on each."""
    return 2 * facts.layers * max(1, facts.kv_heads // tp) * facts.head_dim * dtype_bytes


def weight_gib(facts: catalog.ModelFacts, dtype_bytes: float) -> float:
    return facts.params_b * 1e9 * dtype_bytes / GIB


def tp_compatible(facts: catalog.ModelFacts, tp: int) -> bool:
    """vLLM shards KV heads evenly, or replicates them when the GPUs outnumber them."""
    return facts.kv_heads % tp == 0 or tp % facts.kv_heads == 0


def vllm_overhead_gib(tp: int) -> float:
    return VLLM_GPU_OVERHEAD_GIB + (VLLM_TP_OVERHEAD_GIB if tp > 1 else 0.0)


@dataclass(frozen=True)
class Capacity:
    """One replica at one context length; memory figures are per GPU (per pod on CPU), in GiB."""

    device: Literal["gpu", "cpu"]
    tp: int
    context: int
    total: float  # the GPU's memory, or the pod's memory limit
    budget: float  # what the server may use of it: vLLM on GPU takes total x gpuMemoryUtilization
    weights: float
    overhead: float
    kv: float  # KV cache the server allocates (vLLM on GPU: all of the budget that is left)
    kv_needed: float  # KV cache of the served context: one sequence (Ollama: every slot)
    kv_token_bytes: float  # one token of context, whole replica
    max_context: int  # longest sequence the memory holds
    concurrency: float  # full-length sequences the KV cache holds at once
    fits: bool


def _blocks(kv_gib: float, per_token: float) -> int:
    return max(0, math.floor(kv_gib * GIB / per_token / BLOCK_TOKENS)) * BLOCK_TOKENS


def vllm_gpu(facts: catalog.ModelFacts, weight_bytes: float, kv_bytes: float, gpu_gib: float, utilization: float,
             tp: int, context: int) -> Capacity:
    per_gpu = kv_bytes_per_token(facts, tp, kv_bytes)
    budget = gpu_gib * utilization
    weights, overhead = weight_gib(facts, weight_bytes) / tp, vllm_overhead_gib(tp)
    kv = budget - weights - overhead
    tokens = _blocks(kv, per_gpu)
    return Capacity("gpu", tp, context, gpu_gib, budget, weights, overhead, kv, context * per_gpu / GIB,
                    per_gpu * tp, tokens, tokens / context, tokens >= context)


def vllm_cpu(facts: catalog.ModelFacts, weight_bytes: float, kv_bytes: float, pod_gib: float, kv_space_gib: float,
             context: int) -> Capacity:
    per_token = kv_bytes_per_token(facts, 1, kv_bytes)
    weights = weight_gib(facts, weight_bytes)
    room = weights + VLLM_CPU_OVERHEAD_GIB + kv_space_gib <= pod_gib
    tokens = _blocks(kv_space_gib, per_token) if room else 0
    return Capacity("cpu", 1, context, pod_gib, pod_gib, weights, VLLM_CPU_OVERHEAD_GIB, kv_space_gib,
                    context * per_token / GIB, per_token, tokens, tokens / context, room and tokens >= context)


def ollama(facts: catalog.ModelFacts, weights: float, kv_bytes: float, device: Literal["gpu", "cpu"], total: float,
           slots: int, context: int) -> Capacity:
    """Ollama allocates the KV cache of every slot (OLLAMA_NUM_PARALLEL) for the whole context up front."""
    per_token = kv_bytes_per_token(facts, 1, kv_bytes)
    kv = context * slots * per_token / GIB
    left = total - weights - OLLAMA_OVERHEAD_GIB
    longest = max(0, math.floor(left * GIB / (per_token * slots)))
    return Capacity(device, 1, context, total, total, weights, OLLAMA_OVERHEAD_GIB, kv, kv, per_token, longest,
                    float(slots), kv <= left)


@dataclass(frozen=True)
class Sizing:
    """What `plan` decides for one model server from its capacity, and why."""

    verdict: str  # fits | does not fit | unknown: <what to set>
    gpus: int  # per replica; 0 on CPU
    context: int | None
    capacity: Capacity | None  # the numbers at that size; None when unknown
    max_context: int | None = None  # longest context that fits, at most the model's own
    min_tp: int | None = None  # smallest tensor parallel size that fits the context on this GPU (any count)
    notes: tuple[str, ...] = ()
    problems: tuple[Problem, ...] = ()


def _arg(args: list[str], flag: str) -> str | None:
    for i, arg in enumerate(args):
        if arg.startswith(flag + "="):
            return arg.split("=", 1)[1]
        if arg == flag and i + 1 < len(args):
            return args[i + 1]
    return None


def _env_str(m: VllmModel | OllamaModel, name: str) -> str | None:
    value = m.env.get(name)
    return value if isinstance(value, str) else None


def _shrink(longest: int, wanted: int) -> int:
    """A context that fits: the wanted one if it does, else the longest, rounded down to 1024 tokens."""
    return wanted if longest >= wanted else longest // 1024 * 1024


def _model(m: VllmModel | OllamaModel, profile: Profile, facts: catalog.ModelFacts, ollama_gib: float,
           cpu_kv_space_gib: float, pod_gib: float) -> Callable[[int, int], Capacity]:
    """The capacity of this server at a tensor parallel size and context, from the engine's memory model."""
    gpu = profile.gpu
    if isinstance(m, OllamaModel):
        kv_bytes = OLLAMA_KV_BYTES.get(_env_str(m, "OLLAMA_KV_CACHE_TYPE") or "f16", 2.0)
        parallel = _env_str(m, "OLLAMA_NUM_PARALLEL") or "1"
        slots = int(parallel) if parallel.isdigit() and int(parallel) > 0 else 1
        device: Literal["gpu", "cpu"] = "gpu" if gpu else "cpu"
        total = gpu.memoryGiB if gpu and gpu.memoryGiB else pod_gib

        def on_ollama(tp: int, context: int) -> Capacity:
            return ollama(facts, ollama_gib, kv_bytes, device, total, slots, context)
        return on_ollama
    kv_flag = _arg(m.args, "--kv-cache-dtype") or "auto"
    kv_bytes = 1.0 if kv_flag.startswith("fp8") else float(facts.dtype_bytes)
    fp8 = (_arg(m.args, "--quantization") or "") == "fp8"  # vLLM can quantise bf16 weights to fp8 as it loads
    weight_bytes = 1.0 if fp8 else DTYPE_BYTES.get(m.dtype or "auto", float(facts.dtype_bytes))
    if gpu is None:
        def on_cpu(tp: int, context: int) -> Capacity:
            return vllm_cpu(facts, weight_bytes, kv_bytes, pod_gib, cpu_kv_space_gib, context)
        return on_cpu
    memory, util = gpu.memoryGiB or 0.0, m.gpuMemoryUtilization or VLLM_DEFAULT_UTILIZATION

    def on_gpu(tp: int, context: int) -> Capacity:
        return vllm_gpu(facts, weight_bytes, kv_bytes, memory, util, tp, context)
    return on_gpu


def size(m: VllmModel | OllamaModel, profile: Profile, facts: catalog.ModelFacts | None, native: int | None,
         default_context: int | None, ollama_gib: float | None, cpu_kv_space_gib: float, pod_gib: float,
         at: str) -> Sizing:
    """Size one model server on its profile. `default_context` is served when the spec sets none."""
    requested = m.maxModelLen if isinstance(m, VllmModel) else m.contextLength
    gpu = profile.gpu
    fallback_gpus = ((m.tensorParallelSize or 1) if isinstance(m, VllmModel) else 1) if gpu else 0
    if facts is None or native is None or default_context is None or (isinstance(m, OllamaModel) and ollama_gib is None):
        return Sizing("unknown: not in the catalog", fallback_gpus, requested or default_context, None)
    if gpu is not None and gpu.memoryGiB is None:
        return Sizing("unknown: set gpu.memoryGiB", fallback_gpus, requested or default_context, None)
    at_tp = _model(m, profile, facts, ollama_gib or 0.0, cpu_kv_space_gib, pod_gib)
    # The tensor parallel size must fit the context asked for, or at least MIN_CONTEXT when none is.
    floor = requested or min(MIN_CONTEXT, default_context)
    tp, min_tp = 1, None
    if isinstance(m, VllmModel) and gpu is not None:
        sizes = [t for t in TP_SIZES if tp_compatible(facts, t)]
        min_tp = next((t for t in sizes if at_tp(t, floor).fits), None)
        if m.tensorParallelSize:
            tp = m.tensorParallelSize
        else:
            tp = min_tp if min_tp and min_tp <= gpu.count else max(t for t in sizes if t <= gpu.count)
    longest = min(native, at_tp(tp, floor).max_context)
    context = requested or (_shrink(longest, default_context) if longest >= floor else floor)
    cap = at_tp(tp, context)
    notes: list[str] = []
    if isinstance(m, VllmModel) and gpu and not m.tensorParallelSize and tp > 1:
        notes.append(f"tensorParallelSize {tp} filled in: the smallest that fits")
    if not requested and context < default_context and cap.fits:
        key = "maxModelLen" if isinstance(m, VllmModel) else "contextLength"
        notes.append(f"{key} {context} (the default {default_context} does not fit); set {key} to choose")
    problems: tuple[Problem, ...] = ()
    if isinstance(m, VllmModel) and gpu and m.tensorParallelSize and not tp_compatible(facts, tp):
        valid = " or ".join(str(t) for t in TP_SIZES if tp_compatible(facts, t) and t <= gpu.count)
        problems = (Problem(f"{at}.tensorParallelSize", f"{tp} GPUs cannot share the model's {facts.kv_heads} KV heads evenly",
                            f"set tensorParallelSize to {valid}"),)
    elif not cap.fits:
        problems = (_refusal(m, profile, cap, requested, longest, min_tp, at),)
    gpus = (tp if isinstance(m, VllmModel) else 1) if gpu else 0
    return Sizing("does not fit" if problems else "fits", gpus, context, cap, longest, min_tp, tuple(notes), problems)


def _refusal(m: VllmModel | OllamaModel, profile: Profile, cap: Capacity, requested: int | None, longest: int,
             min_tp: int | None, at: str) -> Problem:
    """Why a model does not fit, with the numbers, and every change that would make it fit."""
    vllm = isinstance(m, VllmModel)
    key = "maxModelLen" if vllm else "contextLength"
    kib = f"{cap.kv_token_bytes / 1024:g} KiB per token"
    where = f"{at}.{key}" if requested else f"{at}.profile"
    fixes = [f"set {key} to at most {longest}"] if requested and longest >= 128 else []
    if cap.device == "gpu" and vllm:
        gpus = f"{cap.tp} x {cap.total:g} GiB GPU"
        util = m.gpuMemoryUtilization or VLLM_DEFAULT_UTILIZATION  # type: ignore[union-attr]
        if cap.weights + cap.overhead > cap.budget:
            where = f"{at}.tensorParallelSize" if m.tensorParallelSize else f"{at}.profile"  # type: ignore[union-attr]
            message = (f"{m.model} does not fit {gpus}: {cap.weights:.1f} GiB of weights per GPU + {cap.overhead:.1f} GiB "
                       f"of vLLM overhead is over the {cap.budget:.1f} GiB vLLM may use (gpuMemoryUtilization {util:g})")
            fixes = []
        else:
            message = (f"{cap.context} tokens of context need {cap.kv_needed * cap.tp:.2f} GiB of KV cache ({kib}) but "
                       f"{max(cap.kv, 0) * cap.tp:.2f} GiB is left on {gpus} after {cap.weights * cap.tp:.1f} GiB of weights "
                       f"and {cap.overhead:.1f} GiB of vLLM overhead per GPU (gpuMemoryUtilization {util:g}): "
                       f"{longest} tokens fit")
        count = profile.gpu.count if profile.gpu else 1
        if min_tp and min_tp <= count and min_tp != cap.tp:
            fixes.append(f"set tensorParallelSize: {min_tp}")
        elif min_tp and min_tp > count:
            fixes.append(f"use a profile with {min_tp} GPUs (tensorParallelSize: {min_tp})")
        need = (cap.weights + cap.overhead + cap.kv_needed) / util
        fixes.append(f"use GPUs with at least {math.ceil(need)} GiB each")
    elif vllm:
        need = cap.weights + cap.overhead + cap.kv
        if need > cap.total:
            where = f"{at}.profile"
            message = (f"{cap.weights:.1f} GiB of weights + {cap.kv:g} GiB of KV cache (VLLM_CPU_KVCACHE_SPACE) + "
                       f"{cap.overhead:.1f} GiB of vLLM overhead is over the pod's {profile.memory}")
            fixes = [f"use a profile with memory of at least {math.ceil(need)}Gi"]
        else:
            message = (f"{cap.context} tokens of context need {cap.kv_needed:.2f} GiB of KV cache ({kib}) but "
                       f"VLLM_CPU_KVCACHE_SPACE is {cap.kv:g} GiB: {longest} tokens fit")
            fixes.append(f"raise env VLLM_CPU_KVCACHE_SPACE to {math.ceil(cap.kv_needed)} with memory of at least "
                         f"{math.ceil(cap.weights + cap.overhead + math.ceil(cap.kv_needed))}Gi")
    else:
        need = cap.weights + cap.overhead + cap.kv
        holder = f"one {cap.total:g} GiB GPU" if cap.device == "gpu" else f"the pod's {profile.memory}"
        slots = f" x {cap.concurrency:g} slots" if cap.concurrency > 1 else ""
        message = (f"{m.model} needs {cap.weights:.1f} GiB of weights + {cap.kv:.2f} GiB of KV cache for "
                   f"{cap.context} tokens{slots} ({kib}) + {cap.overhead:.1f} GiB of Ollama runtime = {need:.1f} GiB, "
                   f"over {holder}")
        bigger = f"GPUs of at least {math.ceil(need)} GiB" if cap.device == "gpu" else f"memory of at least {math.ceil(need)}Gi"
        fixes.append(f"use a profile with {bigger}, or a smaller model")
    return Problem(where, message, ", or ".join(fixes))
