"""`stackgen plan` output: a table, JSON, or a PNG chart of a plan's memory and its placement on a cluster.

Pure: each function returns text or bytes; the CLI writes them. Numbers are rounded for reading only.
"""

from __future__ import annotations

import io
import json
from collections.abc import Sequence
from typing import Any

from . import wake
from .capacity import Capacity
from .errors import Problem, StackgenError
from .inventory import Placement, as_dict
from .plan import Plan, ServedPlan

LEGEND = """\
Memory columns: GiB per GPU (per pod on CPU). vLLM on a GPU uses gpuMemoryUtilization of it and gives the KV cache
all that weights and overhead leave. Overhead is a fixed estimate (CUDA context, activations, NCCL). FREE below zero
is the overflow. SEQS: full-length sequences the KV cache holds at once."""


def split(cap: Capacity) -> dict[str, float]:
    """GiB of one device by use. Where the model does not fit, `free` is negative: the overflow."""
    kv = max(cap.kv, cap.kv_needed)
    return {"weights": cap.weights, "overhead": cap.overhead, "kvOneSequence": cap.kv_needed,
            "kvMore": kv - cap.kv_needed, "free": cap.total - cap.weights - cap.overhead - kv}


def problems(plan: Plan, placement: Placement | None) -> list[Problem]:
    found = [p for m in plan.served if m.sizing for p in m.sizing.problems]
    return found + list(placement.problems if placement else ())


def _row(m: ServedPlan) -> dict[str, Any]:
    sized = m.sizing
    cap = sized.capacity if sized else None
    row: dict[str, Any] = {
        "name": m.name, "engine": m.engine_name, "profile": m.spec.profile, "replicas": m.spec.replicas,
        "podsPerReplica": m.nodes, "gpusPerReplica": m.gpus * m.nodes, "gpus": m.gpus * m.nodes * m.spec.replicas,
        "context": m.context_length,
        "verdict": sized.verdict if sized else "unknown",
    }
    if sized and cap:
        row.update({
            "maxContext": sized.max_context, "minTensorParallelSize": sized.min_tp,
            "kvBytesPerToken": round(cap.kv_token_bytes), "concurrency": round(cap.concurrency, 2),
            "memory": {"device": cap.device, "totalGiB": round(cap.total, 2), "budgetGiB": round(cap.budget, 2),
                       **{f"{k}GiB": round(v, 2) for k, v in split(cap).items()}},
        })
    if m.router:
        r = m.router
        row["router"] = {"policy": r.policy, "replicas": r.replicas, "cpu": r.cpu, "memory": r.memory,
                         "service": r.service}
    if m.wake:
        cold = m.wake.cold
        row["wake"] = {"wakeSeconds": m.wake.wake_seconds, "estimateSeconds": cold.usual,
                       "firstOnANodeSeconds": cold.first, "pullSeconds": cold.pull, "downloadSeconds": cold.download,
                       "loadSeconds": cold.load, "downloadsEachWake": cold.downloads_each_wake}
    row["notes"] = list(sized.notes if sized else ()) + ([wake.describe(m.wake.cold)] if m.wake else [])
    return row


def _router_note(m: ServedPlan) -> list[str]:
    r = m.router
    return [f"{m.name}: behind router {r.service} ({r.policy}): {r.replicas} pod(s) of {r.cpu} CPU and {r.memory}"] \
        if r else []


def as_json(plan: Plan, placement: Placement | None) -> str:
    models = []
    rows = {m.name: _row(m) for m in plan.served}
    rows.update({m.name: {"name": m.name, "engine": m.engine_name, "provider": m.provider, "verdict": "external"}
                 for m in plan.external})
    # An adapter's memory is in its base model's overhead (maxLoras slots of maxLoraRank).
    rows.update({m.name: {"name": m.name, "engine": m.engine_name, "adapterOf": m.base, "verdict": "adapter"}
                 for m in plan.adapters})
    for m in plan.models:
        models.append(rows[m.name])
    found = problems(plan, placement)
    out: dict[str, Any] = {"stack": plan.stack.name, "fits": not found, "models": models}
    out["downloads"] = [{"model": m.name, "source": d.source, "ref": d.ref, "from": where}
                        for m in plan.served for d, where in m.fetches()]
    out["imageRegistry"] = plan.stack.mirror.registry if plan.stack.mirror else None
    if placement:
        out["placement"] = as_dict(placement)
    out["problems"] = [{"path": p.path, "message": p.message, "fix": p.fix} for p in found]
    return json.dumps(out, indent=2) + "\n"


def _grid(header: Sequence[str], rows: list[list[str]]) -> list[str]:
    widths = [max(len(r[i]) for r in [list(header), *rows]) for i in range(len(header))]
    return ["  ".join(cell.ljust(w) for cell, w in zip(r, widths, strict=True)).rstrip() for r in [list(header), *rows]]


def _gib(value: float) -> str:
    return f"{value:.1f}"


def table(plan: Plan, placement: Placement | None) -> str:
    header = ["MODEL", "ENGINE", "PROFILE", "REPLICAS", "ROUTER", "GPUS/REPLICA", "GPUS", "CONTEXT", "MEMORY", "WEIGHTS",
              "OVERHEAD", "KV CACHE", "FREE", "KV/TOKEN", "MAX CONTEXT", "SEQS", "VERDICT"]
    rows, notes = [], []
    served = {m.name: m for m in plan.served}
    adapters = {m.name: m.base for m in plan.adapters}
    for planned in plan.models:
        if planned.name not in served:
            what = f"adapter of {adapters[planned.name]}" if planned.name in adapters else "external"
            rows.append([planned.name, planned.engine_name, *["-"] * 14, what])
            continue
        m = served[planned.name]
        r = _row(m)
        gpus = [str(r["gpusPerReplica"]) if m.gpus else "-", str(r["gpus"]) if m.gpus else "-"]
        cap = m.sizing.capacity if m.sizing else None
        if cap is None:
            numbers = ["-"] * 8
        else:
            s = split(cap)
            numbers = [f"{cap.total:g} GiB {'GPU' if cap.device == 'gpu' else 'pod'}", _gib(s["weights"]),
                       _gib(s["overhead"]), _gib(s["kvOneSequence"] + s["kvMore"]), _gib(s["free"]),
                       f"{cap.kv_token_bytes / 1024:g} KiB", str(r["maxContext"]), f"{cap.concurrency:.1f}"]
        rows.append([m.name, m.engine_name, m.spec.profile, str(m.spec.replicas), m.router.policy if m.router else "-",
                     *gpus, str(m.context_length or "-"),
                     *numbers, r["verdict"]])
        notes += [f"{m.name}: {note}" for note in r["notes"]] + _router_note(m)
    lines = _grid(header, rows) + [""] + [f"note: {n}" for n in notes] + [LEGEND]
    fetched = [[m.name, d.ref, where] for m in plan.served for d, where in m.fetches()]
    if fetched:
        lines += ["", *_grid(["MODEL", "DOWNLOADS AT START", "FROM"], fetched)]
    mirror = plan.stack.mirror
    lines.append(f"images: from {mirror.registry}, under their sources' paths" if mirror else
                 "images: each from its own registry")
    if placement:
        lines += ["", *_grid(["POOL", "NODES", "GPUS/NODE", "GPUS NEEDED/AVAILABLE", "PODS"],
                             [[u.name, str(u.nodes), u.gpu, f"{u.gpus_needed}/{u.gpus_available}", ", ".join(u.pods) or "-"]
                              for u in placement.pools])]
        lines += ["", *_grid(["POD", "REPLICAS", "PLACED", "GPUS/REPLICA", "POOLS", "ROLLOUT", "VERDICT"],
                             [[p.name, str(p.replicas), str(p.placed), str(p.gpus), ", ".join(p.pools) or "-", p.rollout,
                               "fits" if p.fits else "does not fit"] for p in placement.pods])]
    return "\n".join(lines) + "\n"


COLOURS = {"weights": "#4c72b0", "overhead": "#8c8c8c", "kvOneSequence": "#dd8452", "kvMore": "#f3c29b",
           "free": "#e8e8e8"}
LABELS = {"weights": "weights", "overhead": "overhead (runtime, CUDA, activations)",
          "kvOneSequence": "KV cache: one full-length sequence", "kvMore": "KV cache: further sequences",
          "free": "free / outside gpuMemoryUtilization"}


def png(plan: Plan) -> bytes:
    """A horizontal bar per model server: its GPU's (or pod's) memory by use; overflow in red."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        from matplotlib import pyplot
    except ImportError:
        raise StackgenError([Problem("--png", "matplotlib is not installed, so no chart can be drawn",
                                     "pip install matplotlib, or leave out --png")]) from None
    sized = [(m, m.sizing.capacity) for m in plan.served if m.sizing and m.sizing.capacity]
    if not sized:
        raise StackgenError([Problem("--png", "no model server has known capacity to draw",
                                     "set gpu.memoryGiB on the GPU profiles, or use catalogued models")])
    height = 1.7 + 0.6 * len(sized)  # inches: bars, plus room for the title, axis label and legend
    fig, ax = pyplot.subplots(figsize=(10, height), dpi=100)
    fig.subplots_adjust(left=0.16, right=0.97, top=1 - 0.45 / height, bottom=1.0 / height)
    seen: set[str] = set()
    ends = []
    for y, (m, cap) in enumerate(reversed(sized)):
        left = 0.0
        for key, width in split(cap).items():
            if width <= 0:
                continue
            ax.barh(y, width, left=left, color=COLOURS[key], label=None if key in seen else LABELS[key])
            seen.add(key)
            left += width
        if left > cap.total:  # hatch what lies beyond the device: the part that does not fit
            ax.barh(y, left - cap.total, left=cap.total, color="none", edgecolor="#c44e52", hatch="///",
                    label=None if "over" in seen else "beyond the GPU / pod: does not fit")
            seen.add("over")
        ax.plot([cap.total, cap.total], [y - 0.45, y + 0.45], color="#c44e52" if left > cap.total else "black", linewidth=1.5)
        if cap.budget < cap.total:  # the engine takes only part of the GPU (vLLM's gpuMemoryUtilization)
            ax.plot([cap.budget, cap.budget], [y - 0.4, y + 0.4], color="black", linewidth=1, linestyle="--")
        end = max(left, cap.total)
        ends.append(end)
        ax.text(end, y, f" {m.sizing.verdict if m.sizing else ''}", va="center", fontsize=8)
    ax.set_xlim(0, max(ends) * 1.15)
    ax.set_yticks(range(len(sized)),
                  [f"{m.name}\n{cap.tp} x {cap.total:g} GiB GPU" if cap.device == "gpu" else f"{m.name}\n{cap.total:g} GiB pod"
                   for m, cap in reversed(sized)], fontsize=8)
    ax.set_xlabel("GiB per GPU (per pod on CPU); solid line: the device, dashed: vLLM's gpuMemoryUtilization", fontsize=9)
    ax.set_title(f"{plan.stack.name}: memory of each model server")
    fig.legend(fontsize=7, loc="lower center", ncol=3, frameon=False)
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", metadata={"Software": None})
    pyplot.close(fig)
    return buffer.getvalue()
