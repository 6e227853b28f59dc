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
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from .specbase import ServedModel

# The header the gateway sends with each call to a sleeping model, naming its route (the interceptor's routing
# table spans every namespace, so the value names the namespace too).
ROUTE_HEADER = "x-stackgen-route"
IDLE_SECONDS = 900
WAKE_SECONDS = 600
# Seconds between the gateway's keepalive comments on a streamed call that has no token yet: below the 30 s and
# 60 s idle timeouts of common load balancers and ingress controllers.
KEEPALIVE_SECONDS = 15
# The add-on's concurrency target: this trigger only wakes the model (0 -> 1) and holds it awake while calls are in
# flight; the queue trigger scales it from 1 up. A target no stack reaches keeps in-flight calls from asking for
# replicas of their own.
WAKE_ONLY_TARGET = 100_000


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


def plan(m: ServedModel, fullname: str, namespace: str, target: str) -> WakePlan | None:
    """The wake plan of a model that may sleep; None for one that never does. `check` refused a model at zero
    whose interceptor names no in-cluster Service."""
    scaling = m.autoscaling
    if scaling is None or scaling.minReplicas > 0:
        return None
    return WakePlan(key=f"{namespace}/{fullname}-{m.name}", interceptor_url=scaling.interceptorUrl.rstrip("/"),
                    interceptor_namespace=scaling.interceptor_namespace or "", scaler_address=scaling.scalerAddress,
                    target=target, idle_seconds=scaling.idleSeconds or IDLE_SECONDS,
                    wake_seconds=scaling.wakeSeconds or WAKE_SECONDS)


def gateway_params(w: WakePlan, call_seconds: int) -> dict[str, Any]:
    """The model's LiteLLM params that differ when it may sleep: where the gateway calls it and how long it waits."""
    return {"api_base": f"{w.interceptor_url}/v1", "extra_headers": {ROUTE_HEADER: w.key},
            "timeout": call_seconds + w.wake_seconds, "keepalive_seconds": KEEPALIVE_SECONDS}


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
        "requestSeconds": call_seconds + w.wake_seconds,
    }
