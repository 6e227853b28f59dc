"""Scale to zero: a model with `autoscaling.minReplicas: 0` sleeps when no call has come for `idleSeconds`, and the
next call wakes it. This module holds every decision about it; the chart maps them to objects (the model's
InterceptorRoute, the second trigger of its ScaledObject, the NetworkPolicies that admit the interceptor).

What holds a call while the model has no replica is KEDA's HTTP add-on (versions.yaml `http-add-on`): for such a
model the gateway calls the add-on's interceptor instead of the model, with a header naming the model's route. The
interceptor waits until the route's Service has a ready endpoint, then forwards the call, and counts the calls it
holds and forwards; its external scaler tells KEDA, and the model's ScaledObject (its queue trigger beside) wakes
the Deployment from zero. KEDA scales it back to zero only once neither the interceptor nor the server's queue
has seen a call for `idleSeconds`, so a call in flight keeps its replica.

The Service the interceptor waits for is the model's router's when it has one, not the model's: a router has no
ready endpoint while it has no healthy worker (vllm-router's readiness), so a call waits for the model's pods, not
for the router, which stays up and would answer "No available workers" at once.

Every hop waits long enough for a cold start: the gateway's timeout for the model grows by `wakeSeconds`, the
interceptor waits that long for readiness and then allows a call the gateway's own budget for its answer, and a
streamed call gets the gateway's keepalive comments from its first second, so that no proxy on the way closes a
connection that is silent while the model loads.

Because the gateway waits that long, it must not wait for an interceptor that is down: before each call to a model
that may sleep, the gateway's check (GATEWAY_HOOK, a module of the chart's) connects to the interceptor, and a call
it cannot reach fails at once with a 503 naming the interceptor, not after the wake's budget.

How long a wake takes is estimated here too (`ColdStart`: `plan` prints it, `validate` warns when it exceeds
`wakeSeconds`), from the weights' size, where the server reads them from, and its engine's image and start-up
(`image_gib`, `start_seconds` in its module).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

from .engines.base import ServedEngine, accelerator
from .specbase import Profile, ServedModel

# The header the gateway sends with each call to a sleeping model, naming its route (the interceptor's routing
# table spans every namespace, so the value names the namespace too).
ROUTE_HEADER = "x-stackgen-route"
# The gateway's check that the interceptor is there: charts/inference-stack/files/<GATEWAY_HOOK>.py, which LiteLLM
# loads from beside its config when its callbacks name GATEWAY_CALLBACK.
GATEWAY_HOOK = "stackgen_wake"
GATEWAY_CALLBACK = f"{GATEWAY_HOOK}.check"
IDLE_SECONDS = 900
WAKE_SECONDS = 600
# Seconds between the gateway's keepalive comments on a streamed call that has no token yet: below the 30 s and
# 60 s idle timeouts of common load balancers and ingress controllers.
KEEPALIVE_SECONDS = 15
# The add-on's concurrency target: this trigger only wakes the model (0 -> 1) and holds it awake while calls are in
# flight; the queue trigger scales it from 1 up. A target no stack reaches keeps in-flight calls from asking for
# replicas of their own.
WAKE_ONLY_TARGET = 100_000
# The rates a wake's estimate assumes: those of a node in a cloud region. They guide; they are not the user's cluster
# measured (what the node tier measured is in docs/operations.md, "Scale to zero").
PULL_GIB_PER_S = 0.1  # an image pulled and unpacked
HUB_GIB_PER_S = 0.1  # weights downloaded from the Hub, or its mirror
VOLUME_GIB_PER_S = 0.25  # weights read from the cache volume (a network disk at its baseline reads 0.12 to 0.25)


@dataclass(frozen=True)
class ColdStart:
    """How long a wake is estimated to take, in seconds, by part; None where the plan cannot tell (weights not in
    the catalog, an image of the spec's own)."""

    pull: int | None  # the image, on a node that has not run it yet
    download: int | None  # the weights from the Hub, while the cache volume does not hold them (0: preloaded)
    load: int | None  # the server's start, its weights read into memory
    downloads_each_wake: bool  # an emptyDir cache starts empty on every wake

    @property
    def usual(self) -> int | None:
        """A wake on a node that has the image: the load, and the download too when every wake downloads."""
        return _sum(self.load, self.download if self.downloads_each_wake else 0)

    @property
    def first(self) -> int | None:
        """The first wake on a new node: the image pulled, the weights downloaded, and the load."""
        return _sum(self.pull, self.download, self.load)


def _sum(*parts: int | None) -> int | None:
    return None if None in parts else sum(p or 0 for p in parts)


def cold_start(engine: ServedEngine[Any], m: ServedModel, profile: Profile) -> ColdStart:
    """The estimate of one wake of m's server on the profile; an image of the spec's own is of unknown size."""
    kind = accelerator(profile) or ""
    weights = engine.weights_gib(m)
    image_gib = None if m.image else engine.image_gib.get(kind)
    start = engine.start_seconds.get(kind)
    fetched = bool(engine.downloads(m)) and not m.cache.preload
    download = 0 if not fetched else None if weights is None else math.ceil(weights / HUB_GIB_PER_S)
    return ColdStart(
        pull=None if image_gib is None else math.ceil(image_gib / PULL_GIB_PER_S), download=download,
        load=None if weights is None or start is None else start + math.ceil(weights / VOLUME_GIB_PER_S),
        downloads_each_wake=fetched and m.cache.type == "emptyDir")


@dataclass(frozen=True)
class WakePlan:
    """How calls wake one sleeping model."""

    key: str  # the route header's value: <namespace>/<fullname>-<model>
    interceptor_url: str
    interceptor_namespace: str
    scaler_address: str
    target: str  # the Service the interceptor waits for and forwards to: the router's, else the model's
    idle_seconds: int
    wake_seconds: int
    cold: ColdStart


def plan(engine: ServedEngine[Any], m: ServedModel, profile: Profile, fullname: str, namespace: str,
         target: str) -> WakePlan | None:
    """The wake plan of a model that may sleep; None for one that never does. `check` refused a model at zero
    whose interceptor names no in-cluster Service."""
    scaling = m.autoscaling
    if scaling is None or scaling.minReplicas > 0:
        return None
    return WakePlan(key=f"{namespace}/{fullname}-{m.name}", interceptor_url=scaling.interceptorUrl.rstrip("/"),
                    interceptor_namespace=scaling.interceptor_namespace or "", scaler_address=scaling.scalerAddress,
                    target=target, idle_seconds=scaling.idleSeconds or IDLE_SECONDS,
                    wake_seconds=scaling.wakeSeconds or WAKE_SECONDS,
                    cold=cold_start(engine, m, profile))


UNKNOWN = "the size of its weights (not in the catalog) or its server's start on this accelerator is unknown"


def describe(cold: ColdStart) -> str:
    """The estimate in words, for `plan`."""
    if cold.usual is None:
        return f"its wake is not estimated ({UNKNOWN})"
    parts = [f"load {cold.load} s"] + ([f"download {cold.download} s"] if cold.downloads_each_wake else [])
    first = "" if cold.first in (None, cold.usual) else (
        f"; {cold.first} s on a node without its image (pull {cold.pull} s"
        + (f", first download {cold.download} s" if cold.download and not cold.downloads_each_wake else "") + ")")
    return f"wakes in about {cold.usual} s ({', '.join(parts)}){first}"


def notes(w: WakePlan, m: ServedModel, at: str, weights_gib: float | None) -> list[str]:
    """What `validate` warns of a sleeping model: a wake estimated above wakeSeconds (the calls that wake it would
    time out), weights downloaded again on wakes, and a wake it cannot estimate."""
    cold, out = w.cold, []
    size = f"{weights_gib:.1f} GiB, " if weights_gib else ""
    if cold.usual is None:
        out.append(f"note: {at}: the wake of {m.name} is not estimated ({UNKNOWN}): make sure it is Ready within "
                   f"wakeSeconds ({w.wake_seconds} s)")
    elif cold.usual > w.wake_seconds:
        out.append(f"warning: {at}.autoscaling.wakeSeconds: a wake of {m.name} is estimated at {cold.usual} s, above "
                   f"wakeSeconds ({w.wake_seconds} s): the calls that wake it would time out (raise wakeSeconds to at "
                   f"least {cold.usual}" + (", and preload its cache" if cold.downloads_each_wake else "") + ")")
    elif cold.first is not None and cold.first > w.wake_seconds:
        out.append(f"warning: {at}.autoscaling.wakeSeconds: the first wake of {m.name} on a node without its image is "
                   f"estimated at {cold.first} s (the pull {cold.pull} s), above wakeSeconds ({w.wake_seconds} s) "
                   f"(raise wakeSeconds to at least {cold.first}, or pull the image onto the nodes beforehand)")
    if cold.downloads_each_wake:
        out.append(f"warning: {at}.cache: {m.name} sleeps, and each wake downloads its weights again ({size}about "
                   f"{cold.download} s): its emptyDir cache starts empty (use cache: {{type: persistentVolumeClaim, "
                   "preload: true}, so that wakes read them from the volume)")
    elif cold.download:
        out.append(f"note: {at}.cache.preload: the first wake of {m.name} downloads its weights into the cache volume "
                   f"({size}about {cold.download} s) (set preload: true to fill it before any call)")
    return out


def waited_seconds(w: WakePlan | None, call_seconds: int) -> int:
    """How long the gateway waits for a model's answer: the call's budget, after a sleeping model's wake."""
    return call_seconds + (w.wake_seconds if w else 0)


def gateway_params(w: WakePlan, call_seconds: int) -> dict[str, Any]:
    """The model's LiteLLM params that differ when it may sleep: where the gateway calls it and how long it waits."""
    return {"api_base": f"{w.interceptor_url}/v1", "extra_headers": {ROUTE_HEADER: w.key},
            "timeout": waited_seconds(w, call_seconds), "keepalive_seconds": KEEPALIVE_SECONDS}


def values(w: WakePlan, call_seconds: int) -> dict[str, Any]:
    """The chart's models.<name>.autoscaling.wake."""
    return {
        "header": ROUTE_HEADER,
        "key": w.key,
        "target": w.target,
        "interceptorNamespace": w.interceptor_namespace,
        "scalerAddress": w.scaler_address,
        "idleSeconds": w.idle_seconds,
        "concurrencyTarget": WAKE_ONLY_TARGET,
        # The interceptor waits this long for a ready endpoint, then gives the call the gateway's own budget.
        "readinessSeconds": w.wake_seconds,
        "responseHeaderSeconds": call_seconds,
        "requestSeconds": waited_seconds(w, call_seconds),
    }
