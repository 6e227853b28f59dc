"""A cluster inventory (node pools: GPUs per node, node count) and where a plan's pods would land on it.

Placement follows the scheduler's hard rules: a pool's labels must match the profile's nodeSelector, its
NoSchedule/NoExecute taints must be tolerated, and one node must hold a whole pod (a tensor-parallel
replica's GPUs sit on one node). Pods are packed first-fit, GPU pods first, in a fixed order, so the
answer is deterministic. Rollouts follow the chart: GPU holders stop a pod before starting its
replacement (no spare GPU needed), every other pod surges one extra pod (that pod needs room), as the plan
decides for each model and the values tell the chart.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, field
from typing import Any, Literal

import yaml
from pydantic import Field, ValidationError, field_validator

from .capacity import quantity_cpu
from .capacity import quantity_gib as _quantity_gib
from .errors import Problem, StackgenError, format_path
from .load import line_finder
from .plan import Plan
from .specbase import DNS_LABEL, QUANTITY, Base, Quantity, Toleration


class PoolGpu(Base):
    resource: str = Field(default="nvidia.com/gpu", description="Extended resource name the nodes advertise.")
    count: int = Field(ge=1, le=16, description="GPUs on each node.")
    memoryGiB: float | None = Field(default=None, gt=0, description="Memory of one GPU in GiB.")
    product: str | None = Field(default=None, description="GPU product, e.g. NVIDIA-L4 (nvidia.com/gpu.product).")


class Taint(Base):
    key: str
    value: str | None = None
    effect: Literal["NoSchedule", "PreferNoSchedule", "NoExecute"] = "NoSchedule"


class Pool(Base):
    """A node pool: identical nodes."""

    name: str = Field(pattern=DNS_LABEL, max_length=63)
    nodes: int = Field(ge=0, description="Nodes in the pool (its maximum, for an autoscaled pool).")
    gpu: PoolGpu | None = Field(default=None, description="GPUs of each node; absent means none.")
    cpu: Quantity | None = Field(default=None, description="Allocatable CPU of each node; absent: not checked.")
    memory: str | None = Field(default=None, pattern=QUANTITY,
                               description="Allocatable memory of each node; absent: not checked.")
    labels: dict[str, str] = Field(default_factory=dict, description="Node labels (matched against nodeSelector).")
    taints: list[Taint] = Field(default_factory=list)


    @field_validator("cpu")
    @classmethod
    def _cpu_quantity(cls, value: str | int | None) -> str | None:
        if value is not None and not re.match(QUANTITY, str(value)):
            raise ValueError(f"{value!r} is not a Kubernetes CPU quantity (write e.g. 8 or 7500m)")
        return None if value is None else str(value)


class Inventory(Base):
    pools: list[Pool] = Field(min_length=1)


def load_inventory(text: str, source: str) -> Inventory:
    """Parse and validate inventory text; raises StackgenError naming each bad field and its line."""
    lines = line_finder(text)
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise StackgenError([Problem("", f"YAML syntax: {exc}", "fix the indentation or quoting there")], source) from None
    try:
        inventory = Inventory.model_validate(data)
    except ValidationError as exc:
        problems = []
        for err in exc.errors(include_url=False):
            path = format_path(err["loc"])
            message = {"extra_forbidden": "unknown field", "missing": "required field is missing"}.get(
                err["type"], str(err["msg"]).removeprefix("Value error, "))
            problems.append(Problem(path, message, "see `pools:` in the inventory example", lines(path)))
        raise StackgenError(problems, source) from None
    names = [p.name for p in inventory.pools]
    dupes = [Problem(f"pools[{i}].name", f"duplicate pool name {n!r}", "give every pool a unique name", lines(f"pools[{i}].name"))
             for i, n in enumerate(names) if n in names[:i]]
    if dupes:
        raise StackgenError(dupes, source)
    return inventory


@dataclass(frozen=True)
class Pod:
    """One kind of pod the stack runs: `replicas` of it, each needing this much of one node."""

    name: str
    path: str  # the spec entry it comes from
    replicas: int  # the most it runs: replicas, or autoscaling.maxReplicas
    gpus: int
    cpu: float
    memory: float  # GiB
    surge: bool  # rolls out by adding a pod first
    resource: str | None = None
    product: str | None = None
    gpu_gib: float | None = None
    selector: dict[str, str] = field(default_factory=dict)
    tolerations: tuple[Toleration, ...] = ()
    count_field: str = "replicas"  # the spec field that sets `replicas`


def pods(plan: Plan) -> list[Pod]:
    gw = plan.stack.gateway
    out = [Pod("gateway", "gateway", gw.replicas, 0, quantity_cpu(gw.resources.cpu), _quantity_gib(gw.resources.memory), True)]
    index = {m.name: i for i, m in enumerate(plan.stack.models)}
    for m in plan.served:
        p, gpu = m.profile, m.profile.gpu
        # An autoscaled model must fit at its most: a scale-up that finds no GPU stays Pending for good.
        scaling = m.spec.autoscaling
        count, count_field = (scaling.maxReplicas, "autoscaling.maxReplicas") if scaling else (m.spec.replicas, "replicas")
        # A replica of a group is `nodes` pods alike (the leader's and its workers'), each placed on its own.
        out.append(Pod(m.name, f"models[{index[m.name]}]", count * m.nodes, m.gpus, quantity_cpu(p.cpu), _quantity_gib(p.memory),
                       m.surge, gpu.resource if gpu else None, gpu.product if gpu else None,
                       gpu.memoryGiB if gpu else None, dict(p.nodeSelector), tuple(p.tolerations), count_field))
    # Fixed replicas are always there; an autoscaler's extra ones come on top of them, so they are placed last
    # (and a pool too small for a scale-up names the maxReplicas to lower).
    return sorted(out, key=lambda pod: pod.count_field != "replicas")


def _tolerated(taint: Taint, tolerations: tuple[Toleration, ...]) -> bool:
    for t in tolerations:
        if t.effect and t.effect != taint.effect:
            continue
        if t.key is None and t.operator == "Exists":
            return True
        if t.key == taint.key and (t.operator == "Exists" or (t.value or "") == (taint.value or "")):
            return True
    return False


def why_not(pool: Pool, pod: Pod) -> str | None:
    """Why no node of the pool can ever run the pod, or None when one can."""
    missing = [f"{k}={v}" for k, v in pod.selector.items() if pool.labels.get(k) != v]
    taints = [t for t in pool.taints if t.effect != "PreferNoSchedule" and not _tolerated(t, pod.tolerations)]
    g = pool.gpu
    if pool.nodes == 0:
        return "no nodes"
    if missing:
        return f"labels lack {', '.join(missing)}"
    if taints:
        return f"taint {taints[0].key}:{taints[0].effect} not tolerated"
    if pod.gpus and (g is None or g.resource != pod.resource):
        return f"no {pod.resource}"
    if pod.gpus and g and g.count < pod.gpus:
        return f"{g.count} GPU(s) per node, a replica needs {pod.gpus}"
    if pod.gpus and g and pod.product and g.product and g.product != pod.product:
        return f"GPUs are {g.product}, the profile's are {pod.product}"
    if pod.gpus and g and pod.gpu_gib and g.memoryGiB and g.memoryGiB < pod.gpu_gib:
        return f"GPUs have {g.memoryGiB:g} GiB, the profile assumes {pod.gpu_gib:g}"
    if pod.cpu > quantity_cpu(pool.cpu) or pod.memory > (_quantity_gib(pool.memory) if pool.memory else math.inf):
        return f"a node ({pool.cpu} CPU, {pool.memory}) is smaller than a pod ({pod.cpu:g} CPU, {pod.memory:g} GiB)"
    return None


@dataclass(frozen=True)
class PoolUse:
    name: str
    nodes: int
    gpu: str  # e.g. "2 x NVIDIA-A100 (80 GiB)", "-" without GPUs
    gpus_available: int
    gpus_needed: int  # what the pods that match it first ask for, placed or not
    gpus_placed: int
    pods: tuple[str, ...]  # "name x replicas placed here"


@dataclass(frozen=True)
class PodPlacement:
    name: str
    replicas: int
    placed: int
    gpus: int  # per replica
    pools: tuple[str, ...]
    rollout: str
    fits: bool


@dataclass(frozen=True)
class Placement:
    pools: tuple[PoolUse, ...]
    pods: tuple[PodPlacement, ...]
    problems: tuple[Problem, ...]


Free = list[list[float]]  # per node: GPUs, CPU, GiB of memory left


def _fit(free: Free, pod: Pod) -> int | None:
    for n, (gpus, cpu, mem) in enumerate(free):
        if gpus >= pod.gpus and cpu >= pod.cpu and mem >= pod.memory:
            return n
    return None


def _take(node: list[float], pod: Pod) -> None:
    node[0] -= pod.gpus
    node[1] -= pod.cpu
    node[2] -= pod.memory


def place(plan: Plan, inventory: Inventory) -> Placement:
    pools = inventory.pools
    free: dict[str, Free] = {
        p.name: [[float(p.gpu.count if p.gpu else 0), quantity_cpu(p.cpu), _quantity_gib(p.memory) if p.memory else math.inf]
                 for _ in range(p.nodes)] for p in pools}
    everything = pods(plan)
    eligible = {pod.name: [p for p in pools if why_not(p, pod) is None] for pod in everything}
    order = sorted(everything, key=lambda pod: (-pod.gpus, -pod.memory, everything.index(pod)))
    placed: dict[str, dict[str, int]] = {pod.name: {} for pod in everything}
    for pod in order:
        for _ in range(pod.replicas):
            for pool in eligible[pod.name]:
                node = _fit(free[pool.name], pod)
                if node is not None:
                    _take(free[pool.name][node], pod)
                    placed[pod.name][pool.name] = placed[pod.name].get(pool.name, 0) + 1
                    break
    results, problems = [], []
    for pod in everything:
        count = sum(placed[pod.name].values())
        rollout, rollout_ok = _rollout(pod, count, eligible[pod.name], free)
        results.append(PodPlacement(pod.name, pod.replicas, count, pod.gpus, tuple(placed[pod.name]), rollout,
                                    count == pod.replicas and rollout_ok))
        if count < pod.replicas:
            problems.append(_unplaced(pod, count, pools, eligible[pod.name]))
        elif not rollout_ok:
            problems.append(Problem(
                f"{pod.path}.{pod.count_field}",
                f"a rollout of {pod.name} starts one extra pod ({pod.cpu:g} CPU, {pod.memory:g} GiB) first, and no node "
                "that matches has room for it: the rollout would stall",
                f"add a node to pool {eligible[pod.name][0].name}"))
    uses = []
    for p in pools:
        here = [(pod, placed[pod.name].get(p.name, 0)) for pod in everything]
        used = sum(pod.gpus * n for pod, n in here)
        # Replicas that fit nowhere count against the first pool that matches them: that is where they are missing.
        short = sum(pod.gpus * (pod.replicas - sum(placed[pod.name].values()))
                    for pod in everything if eligible[pod.name] and eligible[pod.name][0] is p)
        gpu = "-"
        if p.gpu:
            gpu = f"{p.gpu.count} x {p.gpu.product or p.gpu.resource}" + (f" {p.gpu.memoryGiB:g} GiB" if p.gpu.memoryGiB else "")
        uses.append(PoolUse(p.name, p.nodes, gpu, p.nodes * (p.gpu.count if p.gpu else 0), used + short, used,
                            tuple(f"{pod.name} x{n}" for pod, n in here if n)))
    return Placement(tuple(uses), tuple(results), tuple(problems))


def _rollout(pod: Pod, count: int, eligible: list[Pool], free: dict[str, Free]) -> tuple[str, bool]:
    if pod.replicas == 0 or count < pod.replicas:
        return "-", True  # nothing to roll, or already refused for its replicas
    if not pod.surge:
        down = "the model is down while it restarts" if pod.replicas == 1 else "one replica down at a time"
        return f"in place: {down}", True
    room = any(_fit(free[p.name], pod) is not None for p in eligible)
    return ("surge: one extra pod fits", True) if room else ("surge: no room for one extra pod", False)


def _unplaced(pod: Pod, count: int, pools: list[Pool], eligible: list[Pool]) -> Problem:
    missing = pod.replicas - count
    where = f"{pod.path}.{pod.count_field}"
    if not eligible:
        reasons = "; ".join(f"{p.name}: {why_not(p, pod)}" for p in pools)
        return Problem(where, f"no pool can run {pod.name} ({reasons})",
                       "add a matching pool to the inventory, or change the profile's nodeSelector, tolerations or gpu")
    pool = eligible[0]
    limits = []  # replicas one node of the pool holds, by each resource it has a number for
    if pod.gpus and pool.gpu:
        limits.append(pool.gpu.count // pod.gpus)
    if pod.cpu and pool.cpu is not None:
        limits.append(int(quantity_cpu(pool.cpu) // pod.cpu))
    if pod.memory and pool.memory:
        limits.append(int(_quantity_gib(pool.memory) // pod.memory))
    extra = math.ceil(missing / max(1, min(limits, default=missing)))
    need = f"{pod.gpus} GPU(s), " if pod.gpus else ""
    return Problem(where, f"{count} of {pod.replicas} replicas of {pod.name} fit: each needs {need}{pod.cpu:g} CPU and "
                          f"{pod.memory:g} GiB on one node, and {', '.join(p.name for p in eligible)} is full",
                   f"add {extra} node(s) to pool {pool.name}, or lower {pod.count_field} to {count}")


def as_dict(placement: Placement) -> dict[str, Any]:
    return {
        "pools": [{"name": u.name, "nodes": u.nodes, "gpu": u.gpu, "gpusAvailable": u.gpus_available,
                   "gpusNeeded": u.gpus_needed, "gpusPlaced": u.gpus_placed, "pods": list(u.pods)} for u in placement.pools],
        "pods": [{"name": p.name, "replicas": p.replicas, "placed": p.placed, "gpusPerReplica": p.gpus,
                  "pools": list(p.pools), "rollout": p.rollout, "fits": p.fits} for p in placement.pods],
    }
