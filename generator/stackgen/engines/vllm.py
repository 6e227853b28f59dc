"""vLLM (`vllm serve`): Hugging Face models on NVIDIA, AMD or CPU nodes, with tensor parallelism, tool-call
and reasoning parsers. The chart's template is `_engine-vllm.tpl`."""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import replace
from functools import partial
from typing import Literal

from pydantic import Field, field_validator

from .. import capacity, catalog, grammars
from ..capacity import GIB, Capacity, MemoryModel, Sizing
from ..errors import Problem
from ..specbase import PARSER_NAME, OptionalSecret, Profile, ServedModel, checked
from .base import (
    AMD,
    CPU,
    NVIDIA,
    Capabilities,
    Download,
    EngineMetrics,
    EngineValues,
    ServedEngine,
    Server,
    Since,
    capabilities,
    described,
)

VERSION = "0.32.0"  # versions.yaml: vllm
# vLLM's own images of that release: CPU (x86 with AVX-512) and ROCm; NVIDIA is the chart's default.
CPU_IMAGE = f"public.ecr.aws/q9t5s3a7/vllm-cpu-release-repo:v{VERSION}"
ROCM_IMAGE = f"vllm/vllm-openai-rocm:v{VERSION}"

DEFAULT_UTILIZATION = 0.9  # vLLM's --gpu-memory-utilization default
# What vLLM needs on each GPU beside weights and KV cache: CUDA context and other non-torch allocations,
# plus the activation peak of its profiling run. vLLM's start-up log for Llama-3-8B on one GPU reports
# 1.79 GiB non-torch + 1.26 GiB activations, and 3.58 GiB non-torch per GPU at tensor parallel 2 (NCCL
# buffers) (vllm-project/vllm#10511); Llama-3.1-8B on a 24 GiB card logs 2.4-3.3 GiB in all
# (vllm-project/vllm#10517). Rounded up to fixed figures so a plan errs on the side of refusing.
GPU_OVERHEAD_GIB = 3.0
# `--dtype`: one name for each of vLLM's choices (it also takes `half` and `float`), the spec's and the chart's.
Dtype = Literal["auto", "bfloat16", "float16", "float32"]
TP_OVERHEAD_GIB = 1.8  # added per GPU when a replica spans several GPUs
# The most GPUs a node of the common clouds and servers holds (8 x H100 or H200, 8 x MI300X): a profile with more
# would describe a pod that no node can run, so `plan` suggests a group of nodes beyond it.
MOST_GPUS_PER_NODE = 8
# An estimate, not a measurement: the CPU server before its weights (Python, PyTorch, oneDNN).
CPU_OVERHEAD_GIB = 1.5
MAX_NODES = 16  # the most pods one replica may span (nodesPerReplica), and the most `plan` suggests


class VllmModel(ServedModel):
    engine: Literal["vllm"]
    maxModelLen: int | None = Field(default=None, ge=128, description="--max-model-len; default the model's context length.")
    tensorParallelSize: int | None = Field(default=None, ge=1, le=16,
                                           description="--tensor-parallel-size (GPUs per pod).")
    nodesPerReplica: int = Field(
        default=1, ge=1, le=MAX_NODES,
        description="Pods one replica spans, each on a node of the profile: a LeaderWorkerSet group of a leader that "
        "serves and headless workers, started without Ray. The model's layers are split across them (vLLM's pipeline "
        "parallelism, --pipeline-parallel-size), its tensors across each pod's GPUs (tensorParallelSize). For a model "
        "one node cannot hold; `stackgen plan` says how many.")
    dtype: Dtype | None = None
    gpuMemoryUtilization: float | None = Field(default=None, gt=0, le=1)
    toolCallParser: str | None = Field(default=None, pattern=PARSER_NAME, description="Overrides the catalog's parser.")
    reasoningParser: str | None = Field(
        default=None, pattern=PARSER_NAME,
        description="--reasoning-parser, for a reasoning model the catalog does not know (deepseek_r1, qwen3, ...).",
    )
    hfToken: OptionalSecret = Field(default=None, description="Hugging Face token for gated models.")
    maxLoras: int | None = Field(default=None, ge=1, le=64, description="--max-loras: adapters one batch may mix; "
                                 "default every adapter, so each is always at hand.")
    maxLoraRank: Literal[8, 16, 32, 64, 128, 256, 320, 512] | None = Field(
        default=None, description="--max-lora-rank; default the smallest vLLM accepts that holds every adapter's rank.")

    @field_validator("model")
    @classmethod
    def _repo(cls, value: str) -> str:
        # vLLM also serves a directory of weights mounted into the pod, named by its absolute path.
        problem = None if value.startswith("/") else grammars.hf_repo(value)
        return checked(value, problem, "a Hugging Face id or an absolute path", grammars.HF_EXAMPLE)


class VllmValues(EngineValues):
    """vLLM flags, resolved by stackgen; unset flags are not passed."""

    maxModelLen: int | None = Field(default=None, ge=1, description="`--max-model-len`: context length in tokens.")
    tensorParallelSize: int | None = Field(
        default=None, ge=1, description="`--tensor-parallel-size`: GPUs one pod of the model spans (matches `gpu.count`).")
    pipelineParallelSize: int | None = Field(
        default=None, ge=2, description="`--pipeline-parallel-size`: the pods of one LeaderWorkerSet group, each holding "
        "a share of the layers (matches `group.size`); the pods meet at the leader's address (`--nnodes`, "
        "`--node-rank`, `--master-addr`), and the workers run `--headless`.")
    dtype: Dtype | None = Field(
        default=None, description="`--dtype` of weights and activations.")
    gpuMemoryUtilization: float | None = Field(
        default=None, gt=0, le=1, description="`--gpu-memory-utilization`: the share of each GPU's memory vLLM may use.")
    toolCallParser: str | None = Field(
        default=None, min_length=1, description="Set: `--enable-auto-tool-choice --tool-call-parser <it>`.")
    reasoningParser: str | None = Field(
        default=None, min_length=1, description="Set: `--reasoning-parser <it>` (`deepseek_r1`, `qwen3`, ...): the "
        "thinking of a reasoning model comes back apart from its answer.")
    loraModules: list[str] | None = Field(
        default=None, description="Set: `--enable-lora --lora-modules <name>=<source> ...`, the LoRA adapters served "
        "beside the model, each a model name of its own; the pod is Ready only while `/v1/models` lists them all.")
    maxLoras: int | None = Field(default=None, ge=1, description="`--max-loras`: adapters one batch may mix.")
    maxLoraRank: int | None = Field(default=None, ge=1, description="`--max-lora-rank`: the largest adapter rank.")


def overhead_gib(tp: int) -> float:
    return GPU_OVERHEAD_GIB + (TP_OVERHEAD_GIB if tp > 1 else 0.0)


def lora_gib(facts: catalog.ModelFacts, loras: int, rank: int, dtype_bytes: float) -> float:
    """What vLLM sets aside for adapters: `loras` slots of `rank` for every projection it can adapt (q/k/v, o,
    gate/up, down) in every layer, whichever ones an adapter targets. An estimate: the catalog does not hold the
    MLP's width, so it is taken from the parameter count (embeddings included, which overstates it)."""
    if not loras:
        return 0.0
    kv = 2 * facts.kv_heads * facts.head_dim
    attention = facts.hidden * (facts.hidden + kv) + facts.hidden * facts.hidden
    mlp = max(facts.hidden, (facts.params_b * 1e9 / facts.layers - attention) / (3 * facts.hidden))
    per_rank = (facts.hidden + facts.hidden + kv) + 2 * facts.hidden + (facts.hidden + 2 * mlp) + (mlp + facts.hidden)
    return loras * rank * facts.layers * per_rank * dtype_bytes / GIB


def on_gpu(facts: catalog.ModelFacts, weight_bytes: float | None, kv_bytes: float, gpu_gib: float,
           utilization: float, tp: int, context: int, adapters_gib: float = 0.0, nodes: int = 1) -> Capacity:
    """vLLM takes `utilization` of each GPU and gives the KV cache all that weights and overhead leave. Across
    `nodes` pods, each holds its pipeline stage's share of the layers on its `tp` GPUs."""
    gpus = tp * nodes
    per_gpu = capacity.kv_bytes_per_token(facts, tp, kv_bytes, nodes)
    budget = gpu_gib * utilization
    weights, overhead = capacity.weight_gib(facts, weight_bytes) / gpus, overhead_gib(gpus) + adapters_gib / gpus
    kv = budget - weights - overhead
    tokens = capacity.blocks(kv, per_gpu)
    return Capacity("gpu", tp, context, gpu_gib, budget, weights, overhead, kv, context * per_gpu / GIB,
                    per_gpu * gpus, tokens, tokens / context, tokens >= context, nodes)


def on_cpu(facts: catalog.ModelFacts, weight_bytes: float | None, kv_bytes: float, pod_gib: float,
           kv_space_gib: float, context: int, adapters_gib: float = 0.0, nodes: int = 1) -> Capacity:
    """vLLM's CPU backend takes a fixed KV cache (VLLM_CPU_KVCACHE_SPACE) from the pod's memory; across `nodes`
    pods, each holds its pipeline stage's share of the layers."""
    per_token = capacity.kv_bytes_per_token(facts, 1, kv_bytes, nodes)
    weights = capacity.weight_gib(facts, weight_bytes) / nodes
    overhead = CPU_OVERHEAD_GIB + adapters_gib / nodes
    room = weights + overhead + kv_space_gib <= pod_gib
    tokens = capacity.blocks(kv_space_gib, per_token) if room else 0
    return Capacity("cpu", 1, context, pod_gib, pod_gib, weights, overhead, kv_space_gib,
                    context * per_token / GIB, per_token * nodes, tokens, tokens / context, room and tokens >= context,
                    nodes)


# The --max-lora-rank values vLLM accepts (vllm/config/lora.py of the pinned release).
LORA_RANKS = (1, 8, 16, 32, 64, 128, 256, 320, 512)


def lora_rank(rank: int) -> int:
    """The smallest --max-lora-rank vLLM accepts that holds an adapter of this rank."""
    return next(r for r in LORA_RANKS if r >= rank)


def _arg(args: list[str], flag: str) -> str | None:
    for i, arg in enumerate(args):
        if arg.startswith(flag + "="):
            return arg.split("=", 1)[1]
        if arg == flag and i + 1 < len(args):
            return args[i + 1]
    return None


class Vllm(ServedEngine[VllmModel]):
    name = "vllm"
    spec = VllmModel
    values = VllmValues
    default_image = f"vllm/vllm-openai:v{VERSION}"
    image_doc = "vLLM's OpenAI-compatible server, for NVIDIA GPUs (stackgen sets the CPU and ROCm images per model)."
    images = {NVIDIA: None, CPU: CPU_IMAGE, AMD: ROCM_IMAGE}
    # From vLLM's pull requests and release notes: tool choice #5649, prompt token details #10174, the reasoning
    # parser without --enable-reasoning #17452 (before, it was taken and did nothing), the drain on SIGTERM
    # #36666. The chart writes --shutdown-timeout for every model (its drainSeconds), so that one decides.
    needs = (Since("--enable-auto-tool-choice", "0.6.0", "toolCallParser"),
             Since("--enable-prompt-tokens-details", "0.6.4"),
             Since("--reasoning-parser", "0.9.0", "reasoningParser"),
             Since("--shutdown-timeout", "0.18.0"))
    provider = "hosted_vllm"
    # vLLM's /metrics on the serving port (vllm/v1/metrics/loggers.py of the pinned release).
    metrics = EngineMetrics(
        queue="vllm:num_requests_waiting", running="vllm:num_requests_running",
        kv_cache_usage="vllm:kv_cache_usage_perc", ttft="vllm:time_to_first_token_seconds",
        generation_tokens="vllm:generation_tokens_total", requests="vllm:request_success_total",
        prefix_cache_hits="vllm:prefix_cache_hits_total", prefix_cache_queries="vllm:prefix_cache_queries_total")
    routable = True
    no_adapters = None
    hub_endpoint_env = "HF_ENDPOINT"  # huggingface_hub's, which vLLM downloads with
    preloads = True  # its image carries huggingface_hub's `hf download`
    # A wake's fixed costs (stackgen.wake). The CUDA image pulls about 12 GB (vllm-project/vllm#27154, 2025), ROCm's
    # about 7.5 (ROCm/vllm#363); the CPU image's 2 is an estimate (PyTorch's CPU build and vLLM's dependencies). The
    # CPU start is measured: 70 s from the woken pod's creation to Ready on the node tier's 2 cores, for the tests'
    # tiny model (docs/operations.md); the GPU starts, with PyTorch's compile and the CUDA graphs' capture, are
    # estimates.
    image_gib = {NVIDIA: 12.0, AMD: 7.5, CPU: 2.0}
    start_seconds = {NVIDIA: 90, AMD: 90, CPU: 70}

    def downloads(self, m: VllmModel) -> tuple[Download, ...]:
        """The weights and every adapter named by a Hub id (absolute paths are files the pod already has)."""
        named = [("model", m.model)] + [(f"adapters[{i}].source", a.source) for i, a in enumerate(m.adapters)]
        return tuple(Download("huggingface", ref, at) for at, ref in named if not ref.startswith("/"))

    def facts(self, m: VllmModel) -> catalog.ModelFacts | None:
        return catalog.hf_model(m.model)

    def _native(self, m: VllmModel) -> int | None:
        """The model's own context: the spec's contextLength wins (an uncatalogued model)."""
        facts = self.facts(m)
        return m.contextLength or (facts.context_length if facts else None)

    def tool_parser(self, m: VllmModel) -> str | None:
        facts = self.facts(m)
        return m.toolCallParser or (facts.tool_parser if facts else None)

    def reasoning_parser(self, m: VllmModel) -> str | None:
        facts = self.facts(m)
        return m.reasoningParser or (facts.reasoning_parser if facts else None)

    def check_model(self, m: VllmModel, profile: Profile | None, at: str) -> list[Problem]:
        problems = []
        facts = self.facts(m)
        if m.toolCalling and not self.tool_parser(m):
            why = "the catalog knows no tool-call parser for it" if facts else "it is not in the catalog"
            problems.append(Problem(f"{at}.toolCalling", f"{m.model} cannot do tool calling on vLLM: {why}",
                                    "remove toolCalling, or set toolCallParser to the vLLM parser the model needs"))
        if m.reasoningParser and facts and not facts.reasoning_parser:
            problems.append(Problem(f"{at}.reasoningParser", f"{m.model} does not write a reasoning block, so the "
                                    "parser would find none", "remove reasoningParser"))
        if facts is None and m.contextLength is None and m.maxModelLen is None:
            problems.append(Problem(f"{at}.maxModelLen", f"{m.model} is not in the catalog, so its context length is unknown",
                                    "set maxModelLen (or contextLength)"))
        if facts and not facts.chat_template and not any(a.startswith("--chat-template") for a in m.args):
            problems.append(Problem(f"{at}.model", f"{m.model} has no chat template, so vLLM cannot serve chat completions",
                                    "add args: [--chat-template, /path/to/template.jinja] or pick an instruct model"))
        limit = self._native(m)
        if m.maxModelLen and limit and m.maxModelLen > limit:
            problems.append(Problem(f"{at}.maxModelLen", f"{m.maxModelLen} is over the model's context length {limit}",
                                    f"set maxModelLen to at most {limit}"))
        if profile is not None:
            tp = m.tensorParallelSize or 1
            if profile.gpu is None and m.tensorParallelSize:
                problems.append(Problem(f"{at}.tensorParallelSize", f"profile {m.profile!r} has no GPUs",
                                        "remove tensorParallelSize or use a GPU profile"))
            elif profile.gpu is None and m.nodesPerReplica > 1 and "--enforce-eager" in m.args:
                # Tried on the pinned release, with the group of tests/engines/test_group.py plus --enforce-eager: its
                # CPU worker skips its warm-up run under that flag, and that run is what makes a later stage's
                # buffers, so the first call fails in the worker (AssertionError in
                # sync_and_gather_intermediate_tensors) and the engine dies.
                problems.append(Problem(f"{at}.args", f"vLLM {VERSION}'s CPU build fails the first call of a group "
                                        "started with --enforce-eager: its later stages never make their buffers",
                                        "remove --enforce-eager, or set nodesPerReplica: 1"))
            elif profile.gpu is not None and tp > profile.gpu.count:
                problems.append(Problem(f"{at}.tensorParallelSize",
                                        f"{tp} is larger than the {profile.gpu.count} GPU(s) of profile {m.profile!r}",
                                        f"set tensorParallelSize to at most {profile.gpu.count} or use a profile with more GPUs"))
        problems += self._check_adapters(m, at)
        return problems

    def _check_adapters(self, m: VllmModel, at: str) -> list[Problem]:
        problems = []
        if not m.adapters:
            for field in ("maxLoras", "maxLoraRank"):
                if field in m.model_fields_set:
                    problems.append(Problem(f"{at}.{field}", "the model has no adapters", f"remove {field}"))
            return problems
        for j, adapter in enumerate(m.adapters):
            if m.maxLoraRank and adapter.rank > m.maxLoraRank:
                problems.append(Problem(f"{at}.adapters[{j}].rank", f"adapter {adapter.name} has rank {adapter.rank}, "
                                        f"above maxLoraRank {m.maxLoraRank}: vLLM would refuse it when it starts",
                                        f"raise maxLoraRank to {lora_rank(adapter.rank)} or more, or remove maxLoraRank"))
        if m.maxLoras and m.maxLoras > len(m.adapters):
            problems.append(Problem(f"{at}.maxLoras", f"{m.maxLoras} is more than the {len(m.adapters)} adapter(s)",
                                    f"set maxLoras to at most {len(m.adapters)}, or remove it"))
        return problems

    def _adapters_part(self, m: VllmModel) -> str:
        """What the overhead holds for adapters, for a refusal."""
        loras, rank = self.lora(m)
        facts = self.facts(m)
        if not loras or facts is None:
            return ""
        gib = lora_gib(facts, loras, rank, float(facts.dtype_bytes))
        return f" (with {gib:.2f} GiB for {loras} adapter slot(s) of rank {rank}: maxLoras, maxLoraRank)"

    def lora(self, m: VllmModel) -> tuple[int, int]:
        """(max loras, max lora rank) the server is started with; (0, 0) without adapters."""
        if not m.adapters:
            return 0, 0
        return m.maxLoras or len(m.adapters), m.maxLoraRank or lora_rank(max(a.rank for a in m.adapters))

    def kv_space_gib(self, m: VllmModel, profile: Profile) -> int:
        """On CPU: VLLM_CPU_KVCACHE_SPACE GiB, a quarter of the pod's memory unless the spec's env sets it."""
        given = m.env.get("VLLM_CPU_KVCACHE_SPACE")
        if isinstance(given, str) and given.isdigit():
            return int(given)
        return max(1, int(capacity.quantity_gib(profile.memory) // 4))

    def sizing(self, m: VllmModel, profile: Profile, at: str) -> Sizing:
        gpu, facts, native = profile.gpu, self.facts(m), self._native(m)
        fallback_gpus = (m.tensorParallelSize or 1) if gpu else 0
        if facts is None or native is None:
            return capacity.unknown("not in the catalog", fallback_gpus, m.maxModelLen or native)
        if gpu is not None and gpu.memoryGiB is None:
            return capacity.unknown("set gpu.memoryGiB", fallback_gpus, m.maxModelLen or native)
        kv_flag = _arg(m.args, "--kv-cache-dtype") or "auto"
        kv_bytes = 1.0 if kv_flag.startswith("fp8") else float(facts.dtype_bytes)
        fp8 = (_arg(m.args, "--quantization") or "") == "fp8"  # vLLM can quantise bf16 weights to fp8 as it loads
        # `auto` loads the weights as published (None), a quantised checkpoint's packed size included.
        weight_bytes = 1.0 if fp8 else capacity.DTYPE_BYTES.get(m.dtype or "auto")
        adapters = lora_gib(facts, *self.lora(m), weight_bytes or float(facts.dtype_bytes))
        pod_gib = capacity.quantity_gib(profile.memory)
        nodes = m.nodesPerReplica
        if gpu is None:
            space = self.kv_space_gib(m, profile)

            def at_nodes(n: int, tp: int, ctx: int) -> Capacity:
                return on_cpu(facts, weight_bytes, kv_bytes, pod_gib, space, ctx, adapters, n)
        else:
            memory, util = gpu.memoryGiB or 0.0, m.gpuMemoryUtilization or DEFAULT_UTILIZATION

            def at_nodes(n: int, tp: int, ctx: int) -> Capacity:
                return on_gpu(facts, weight_bytes, kv_bytes, memory, util, tp, ctx, adapters, n)

        def refusal(cap: Capacity, longest: int, min_tp: int | None) -> Problem:
            # A GPU pod cannot grow past its node's GPUs, so a group is the fix; a CPU pod can ask for more memory.
            return self._refusal(m, profile, cap, longest, min_tp, at, _fewest_nodes(at_nodes, cap) if gpu else None)

        model = partial(MemoryModel, at=partial(at_nodes, nodes), native=native, default_context=native,
                        requested=m.maxModelLen, context_key="maxModelLen", refusal=refusal)
        sizes = [t for t in capacity.TP_SIZES if capacity.tp_compatible(facts, t)]
        # A group's pods take whole nodes: vLLM's rule is tensor parallel within a node, pipeline across them.
        whole = max((t for t in sizes if t <= gpu.count), default=1) if gpu else 1
        if gpu is None:
            sized = capacity.size(model(gpus_per_replica=0))
        else:
            tp_problem = None
            if m.tensorParallelSize and not capacity.tp_compatible(facts, m.tensorParallelSize):
                valid = " or ".join(str(t) for t in sizes if t <= gpu.count)
                tp_problem = Problem(f"{at}.tensorParallelSize", f"{m.tensorParallelSize} GPUs cannot share the "
                                     f"model's {facts.kv_heads} KV heads evenly", f"set tensorParallelSize to {valid}")
            sized = capacity.size(model(gpus_per_replica=1, shard_sizes=sizes, gpu_count=gpu.count,
                                        fixed_tp=m.tensorParallelSize or (whole if nodes > 1 else None),
                                        tp_problem=tp_problem))
        # A group crosses nodes with every token: say so when one pod, as large as the node allows, would do.
        if nodes > 1 and sized.capacity and sized.capacity.fits and at_nodes(1, whole, sized.capacity.context).fits:
            pod = f"one pod of {whole} GPU(s)" if gpu else "one pod"
            sized = replace(sized, notes=(*sized.notes, f"{pod} holds it as well: nodesPerReplica 1 keeps its traffic "
                                          "inside a node"))
        return sized

    def _refusal(self, m: VllmModel, profile: Profile, cap: Capacity, longest: int, min_tp: int | None,
                 at: str, nodes: int | None) -> Problem:
        """Why the model does not fit, with the numbers, and every change that would make it fit."""
        requested = m.maxModelLen
        kib = f"{cap.kv_token_bytes / 1024:g} KiB per token"
        where = f"{at}.maxModelLen" if requested else f"{at}.profile"
        fixes = [f"set maxModelLen to at most {longest}"] if requested and longest >= 128 else []
        if cap.device == "cpu":
            need = cap.weights + cap.overhead + cap.kv
            if need > cap.total:
                message = (f"{cap.weights:.1f} GiB of weights + {cap.kv:g} GiB of KV cache (VLLM_CPU_KVCACHE_SPACE) + "
                           f"{cap.overhead:.1f} GiB of vLLM overhead{self._adapters_part(m)} is over the pod's {profile.memory}")
                fix = f"use a profile with memory of at least {math.ceil(need)}Gi"
                return Problem(f"{at}.profile", message, fix + (", or lower maxLoras" if m.adapters else ""))
            message = (f"{cap.context} tokens of context need {cap.kv_needed:.2f} GiB of KV cache ({kib}) but "
                       f"VLLM_CPU_KVCACHE_SPACE is {cap.kv:g} GiB: {longest} tokens fit")
            fixes.append(f"raise env VLLM_CPU_KVCACHE_SPACE to {math.ceil(cap.kv_needed)} with memory of at least "
                         f"{math.ceil(cap.weights + cap.overhead + math.ceil(cap.kv_needed))}Gi")
            return Problem(where, message, ", or ".join(fixes))
        gpus = f"{cap.tp} x {cap.total:g} GiB GPU"
        util = m.gpuMemoryUtilization or DEFAULT_UTILIZATION
        if cap.weights + cap.overhead > cap.budget:
            where = f"{at}.tensorParallelSize" if m.tensorParallelSize else f"{at}.profile"
            message = (f"{m.model} does not fit {gpus}: {cap.weights:.1f} GiB of weights per GPU + {cap.overhead:.1f} GiB "
                       f"of vLLM overhead{self._adapters_part(m)} is over the {cap.budget:.1f} GiB vLLM may use "
                       f"(gpuMemoryUtilization {util:g})")
            fixes = []
        else:
            message = (f"{cap.context} tokens of context need {cap.kv_needed * cap.tp:.2f} GiB of KV cache ({kib}) but "
                       f"{max(cap.kv, 0) * cap.tp:.2f} GiB is left on {gpus} after {cap.weights * cap.tp:.1f} GiB of weights "
                       f"and {cap.overhead:.1f} GiB of vLLM overhead{self._adapters_part(m)} per GPU "
                       f"(gpuMemoryUtilization {util:g}): "
                       f"{longest} tokens fit")
        count = profile.gpu.count if profile.gpu else 1
        if min_tp and min_tp <= count and min_tp != cap.tp:
            fixes.append(f"set tensorParallelSize: {min_tp}")
        else:
            if min_tp and count < min_tp <= MOST_GPUS_PER_NODE:
                fixes.append(f"use a profile with {min_tp} GPUs (tensorParallelSize: {min_tp})")
            if nodes:
                fixes.append(f"set nodesPerReplica: {nodes} (a LeaderWorkerSet group of {nodes} pods of {cap.tp} "
                             "GPU(s), each on its own node)")
        need = (cap.weights + cap.overhead + cap.kv_needed) / util
        if m.adapters:
            fixes.append("lower maxLoras (the adapters one batch may mix) or maxLoraRank")
        fixes.append(f"use GPUs with at least {math.ceil(need)} GiB each")
        return Problem(where, message, ", or ".join(fixes))

    def group_size(self, m: VllmModel) -> int:
        return m.nodesPerReplica

    def server(self, m: VllmModel, profile: Profile, sized: Sizing) -> Server:
        loras, rank = self.lora(m)
        flags = VllmValues(maxModelLen=sized.context or None, tensorParallelSize=sized.gpus if sized.gpus > 1 else None,
                           pipelineParallelSize=m.nodesPerReplica if m.nodesPerReplica > 1 else None,
                           dtype=m.dtype, gpuMemoryUtilization=m.gpuMemoryUtilization or None,
                           toolCallParser=self.tool_parser(m) if m.toolCalling else None,
                           reasoningParser=self.reasoning_parser(m) or None,
                           loraModules=[f"{a.name}={a.source}" for a in m.adapters] or None,
                           maxLoras=loras or None, maxLoraRank=rank or None)
        # PyTorch puts tensor-parallel traffic through /dev/shm; it is memory-backed and counts against the
        # pod's memory limit, so size it with the GPU count and cap it at a quarter of the pod's memory.
        memory_gib = capacity.quantity_gib(profile.memory)
        shm = max(1, min(2 * max(sized.gpus, 1), int(memory_gib // 4)))
        env: dict[str, str] = {}
        if profile.gpu is None:
            # vLLM's CPU backend binds its OpenMP threads to cores it picks among those the process may use
            # (`auto`). A pod without cores of its own (no static CPU manager) may use every core of the node, so
            # every vLLM pod of a node binds to the same first cores and they take turns on them: on the real
            # node, a second replica beside a busy first did not finish loading in 10 minutes. Unbound threads,
            # as many as the pod's CPU request (at least one), let the kernel spread the pods. Where pods get
            # exclusive cores, the spec's env can set VLLM_CPU_OMP_THREADS_BIND back to auto.
            env = {"VLLM_CPU_KVCACHE_SPACE": str(self.kv_space_gib(m, profile)), "VLLM_CPU_OMP_THREADS_BIND": "nobind",
                   "OMP_NUM_THREADS": str(max(1, int(capacity.quantity_cpu(profile.cpu))))}
        # The gateway asks for the spec's name (`upstream`): the chart starts vLLM with --served-model-name <name>.
        return Server(flags, env=env, shm_size=f"{shm}Gi", hf_token=m.hfToken)

    def capabilities(self, m: VllmModel) -> Capabilities:
        family, vision = described(m, self.facts(m))
        # response_format json_object and json_schema (guided decoding) both work on vLLM.
        return capabilities(m, family, vision, json_output=True, structured=True)


def _fewest_nodes(at_nodes: Callable[[int, int, int], Capacity], cap: Capacity) -> int | None:
    """The fewest pods, at the pod size the plan tried, that would hold the model at its context; None if even
    MAX_NODES would not."""
    return next((n for n in range(cap.nodes + 1, MAX_NODES + 1) if at_nodes(n, cap.tp, cap.context).fits), None)


ENGINE = Vllm()
