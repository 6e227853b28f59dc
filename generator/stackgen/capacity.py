"""Memory of a model server: what its weights take, what one token of context costs, and how much context
and concurrency the rest of a GPU (or of a CPU pod) buys. Pure arithmetic on catalog facts and the spec.

Each engine describes how it spends memory as a `MemoryModel` (engines/<name>.py); `size` turns that into
the decisions `plan` uses (tensor parallel size, served context) and into refusals that carry the numbers
and a fix. Every figure is a bound from published facts and a fixed overhead estimate, not a measurement:
a plan that fits can still be tuned on the real cluster.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Literal

from . import catalog
from .errors import Problem

GIB = 2**30
BLOCK_TOKENS = 16  # vLLM hands out KV cache in blocks of 16 tokens
MIN_CONTEXT = 4096  # a context shrunk to fit is never below this (or the model's own, when smaller)
TP_SIZES = (1, 2, 4, 8, 16)
DTYPE_BYTES = {"float32": 4.0, "float16": 2.0, "bfloat16": 2.0}


def kv_bytes_per_token(facts: catalog.ModelFacts, tp: int = 1, dtype_bytes: float = 2.0, pp: int = 1) -> float:
    """The KV cache of one token on one GPU of a replica that spans `tp` GPUs in each of `pp` pipeline stages.
    A stage holds its share of the layers (the largest share, when they do not divide evenly). Keys and values
    are cached per KV head, and the heads are split across the stage's GPUs; with more GPUs than KV heads vLLM
    keeps one (replicated) head on each. Latent attention (DeepSeek's MLA) caches one latent vector per layer
    instead, shared by every head, so every GPU of the stage holds all of it."""
    layers = math.ceil(facts.layers / pp)
    if facts.kv_latent:
        return layers * facts.kv_latent * dtype_bytes
    return 2 * layers * max(1, facts.kv_heads // tp) * facts.head_dim * dtype_bytes


def weight_gib(facts: catalog.ModelFacts, dtype_bytes: float | None = None) -> float:
    """The weights in memory at `dtype_bytes` per parameter; None: as published (a quantised checkpoint's own
    size). Every expert of a mixture-of-experts model is resident, so its whole parameter count is."""
    per_param = facts.weight_bytes if dtype_bytes is None else dtype_bytes
    return facts.params_b * 1e9 * per_param / GIB


def tp_compatible(facts: catalog.ModelFacts, tp: int) -> bool:
    """vLLM shards KV heads evenly, or replicates them when the GPUs outnumber them."""
    return facts.kv_heads % tp == 0 or tp % facts.kv_heads == 0


def quantity_cpu(quantity: str | int | None) -> float:
    """A Kubernetes CPU quantity in cores; none is unbounded."""
    if quantity is None:
        return math.inf
    text = str(quantity)
    return float(text[:-1]) / 1000 if text.endswith("m") else float(text)


def quantity_gib(text: str) -> float:
    """A Kubernetes memory quantity in GiB."""
    units = {"Ki": 2**10, "Mi": 2**20, "Gi": 2**30, "Ti": 2**40, "k": 1e3, "M": 1e6, "G": 1e9, "T": 1e12}
    for suffix, factor in sorted(units.items(), key=lambda kv: -len(kv[0])):
        if text.endswith(suffix):
            return float(text[: -len(suffix)]) * factor / GIB
    return float(text) / GIB


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
    nodes: int = 1  # pipeline stages, one pod (on its own node) each: the pods one replica spans


def blocks(kv_gib: float, per_token: float) -> int:
    """Tokens of KV cache that fit, in whole blocks."""
    return max(0, math.floor(kv_gib * GIB / per_token / BLOCK_TOKENS)) * BLOCK_TOKENS


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


# Why a model does not fit: (capacity, longest context that fits, smallest fitting tensor parallel size).
Refusal = Callable[[Capacity, int, "int | None"], Problem]


@dataclass(frozen=True)
class MemoryModel:
    """How one engine spends memory for one model on one profile; built by the engine's module."""

    at: Callable[[int, int], Capacity]  # capacity at (tensor parallel size, context)
    native: int  # the model's own context length
    default_context: int  # served when the spec sets none
    requested: int | None  # the context the spec asks for
    context_key: str  # the spec field that sets it, for notes
    refusal: Refusal
    gpus_per_replica: int  # on a GPU profile; 0 on CPU; a sharding engine's is decided here
    shard_sizes: Sequence[int] = ()  # tensor parallel sizes the engine may spread over; () if it does not shard
    gpu_count: int = 1  # GPUs one pod of the profile may take
    fixed_tp: int | None = None  # the spec's tensor parallel size
    tp_problem: Problem | None = None  # a fixed size the model cannot use


def preallocated(facts: catalog.ModelFacts, weights: float, kv_bytes: float, overhead: float,
                 device: Literal["gpu", "cpu"], total: float, slots: int, context: int) -> Capacity:
    """A server that allocates the KV cache of every slot for the whole context up front (Ollama, llama.cpp)."""
    per_token = kv_bytes_per_token(facts, 1, kv_bytes)
    kv = context * slots * per_token / GIB
    left = total - weights - overhead
    longest = max(0, math.floor(left * GIB / (per_token * slots)))
    return Capacity(device, 1, context, total, total, weights, overhead, kv, kv, per_token, longest, float(slots),
                    kv <= left)


def preallocated_refusal(model: str, runtime: str, memory: str, requested: int | None, cap: Capacity, longest: int,
                         at: str) -> Problem:
    """Why a `preallocated` server does not fit, and what would make it fit."""
    kib = f"{cap.kv_token_bytes / 1024:g} KiB per token"
    where = f"{at}.contextLength" if requested else f"{at}.profile"
    fixes = [f"set contextLength to at most {longest}"] if requested and longest >= 128 else []
    need = cap.weights + cap.overhead + cap.kv
    holder = f"one {cap.total:g} GiB GPU" if cap.device == "gpu" else f"the pod's {memory}"
    slots = f" x {cap.concurrency:g} slots" if cap.concurrency > 1 else ""
    message = (f"{model} needs {cap.weights:.1f} GiB of weights + {cap.kv:.2f} GiB of KV cache for "
               f"{cap.context} tokens{slots} ({kib}) + {cap.overhead:.1f} GiB of {runtime} runtime = {need:.1f} GiB, "
               f"over {holder}")
    bigger = f"GPUs of at least {math.ceil(need)} GiB" if cap.device == "gpu" else f"memory of at least {math.ceil(need)}Gi"
    fixes.append(f"use a profile with {bigger}, or a smaller model")
    return Problem(where, message, ", or ".join(fixes))


def unknown(why: str, gpus: int, context: int | None) -> Sizing:
    return Sizing(f"unknown: {why}", gpus, context, None)


def shrink(longest: int, wanted: int) -> int:
    """A context that fits: the wanted one if it does, else the longest, rounded down to 1024 tokens."""
    return wanted if longest >= wanted else longest // 1024 * 1024


def size(mm: MemoryModel) -> Sizing:
    """Decide the tensor parallel size and served context of one model server, or refuse it."""
    # The tensor parallel size must fit the context asked for, or at least MIN_CONTEXT when none is.
    floor = mm.requested or min(MIN_CONTEXT, mm.default_context)
    tp, min_tp = 1, None
    if mm.shard_sizes:
        min_tp = next((t for t in mm.shard_sizes if mm.at(t, floor).fits), None)
        if mm.fixed_tp:
            tp = mm.fixed_tp
        else:
            tp = min_tp if min_tp and min_tp <= mm.gpu_count else max(t for t in mm.shard_sizes if t <= mm.gpu_count)
    longest = min(mm.native, mm.at(tp, floor).max_context)
    context = mm.requested or (shrink(longest, mm.default_context) if longest >= floor else floor)
    cap = mm.at(tp, context)
    notes: list[str] = []
    if mm.shard_sizes and not mm.fixed_tp and tp > 1:
        notes.append(f"tensorParallelSize {tp} filled in: the smallest that fits")
    if not mm.requested and context < mm.default_context and cap.fits:
        notes.append(f"{mm.context_key} {context} (the default {mm.default_context} does not fit); "
                     f"set {mm.context_key} to choose")
    problems: tuple[Problem, ...] = ()
    if mm.tp_problem:
        problems = (mm.tp_problem,)
    elif not cap.fits:
        problems = (mm.refusal(cap, longest, min_tp),)
    gpus = tp if mm.shard_sizes else mm.gpus_per_replica
    return Sizing("does not fit" if problems else "fits", gpus, context, cap, longest, min_tp, tuple(notes), problems)
