"""Helm values for charts/inference-stack, from the plan. Pure translation: every decision is the plan's."""

from __future__ import annotations

import json
from typing import Any

from . import monitoring, wake
from .agents import autogen
from .gateway import config_for, gateway_env, secret_env
from .output import Target
from .plan import GATEWAY_PORT, STARTUP_PERIOD_S, Plan, ServedPlan
from .spec import Profile, SecretRef, Stack
from .version import VERSION


def _image(ref: str) -> dict[str, str]:
    repository, _, tag = ref.rpartition(":")
    if not repository or "/" in tag:  # no tag given: a registry port is not a tag
        return {"repository": ref, "tag": "latest"}
    return {"repository": repository, "tag": tag}


def _placement(profile: Profile) -> dict[str, Any]:
    out: dict[str, Any] = {}
    if profile.nodeSelector:
        out["nodeSelector"] = dict(profile.nodeSelector)
    if profile.tolerations:
        out["tolerations"] = [t.model_dump(exclude_none=True) for t in profile.tolerations]
    if profile.affinity:
        out["affinity"] = profile.affinity
    if profile.runtimeClassName:
        out["runtimeClassName"] = profile.runtimeClassName
    if profile.priorityClassName:
        out["priorityClassName"] = profile.priorityClassName
    return out


# A terminating pod is dropped from Endpoints and from the routers' pod lists by watches: a few seconds on a
# busy cluster. Until then it keeps getting calls, so it keeps serving that long before it starts to drain.
PRESTOP_SECONDS = 10
# After the drain: time to exit.
GRACE_MARGIN_SECONDS = 10


def _autoscaling(m: ServedPlan, namespace: str, call_seconds: int) -> dict[str, Any]:
    """KEDA's view of the model: its queue summed over the replicas, divided by KEDA (an AverageValue target)
    into the queue per replica; and, for a model that may sleep, the calls that wake it (stackgen.wake). `check`
    refused engines without a queue metric."""
    scaling = m.spec.autoscaling
    assert scaling is not None
    out: dict[str, Any] = {
        "minReplicas": scaling.minReplicas,
        "maxReplicas": scaling.maxReplicas,
        "serverAddress": scaling.prometheusUrl,
        "query": monitoring.queue_query(m, namespace),
        "threshold": str(scaling.targetQueue),
        "scaleDownDelaySeconds": scaling.scaleDownDelaySeconds,
    }
    if m.wake:
        out["wake"] = wake.values(m.wake, call_seconds)
    return out


def _router(m: ServedPlan, timeout: int) -> dict[str, Any]:
    router = m.router
    assert router is not None
    return {
        "policy": router.policy,
        "replicas": router.replicas,
        # A call the gateway still waits for must not be cut by the router first.
        "requestTimeoutSeconds": timeout,
        "resources": {"requests": {"cpu": router.cpu, "memory": router.memory}, "limits": {"memory": router.memory}},
    }


def _monitoring(plan: Plan) -> dict[str, Any]:
    spec = plan.stack.monitoring
    out: dict[str, Any] = {"enabled": True, "scrapedModels": [m.name for m in monitoring.scraped(plan)],
                           "ruleGroups": monitoring.alert_rules(plan)}
    if spec.labels:
        out["labels"] = dict(spec.labels)
    if spec.dashboard:
        out["dashboard"] = json.dumps(monitoring.dashboard(plan), indent=2, sort_keys=True)
    return out


def _shutdown(timeout: int, group: bool) -> dict[str, int]:
    """How a model pod stops (a scale-down, a rollout, a drained node) without failing a call: it keeps
    serving for `preStopSeconds` while the routers and Services drop it, then drains, letting every call in
    flight run for as long as the gateway would wait for it, before the kubelet may kill it. A group stops all
    its pods at once, and its leader's calls need every worker, so a worker waits out the leader's drain too."""
    out = {"preStopSeconds": PRESTOP_SECONDS, "drainSeconds": timeout,
           "gracePeriodSeconds": PRESTOP_SECONDS + timeout + GRACE_MARGIN_SECONDS}
    if group:
        out["workerPreStopSeconds"] = PRESTOP_SECONDS + timeout
    return out


def _model_values(m: ServedPlan, stack: Stack) -> dict[str, Any]:
    spec, namespace = m.spec, stack.namespace
    values: dict[str, Any] = {"engine": m.engine_name, "model": spec.model}
    values["shutdown"] = _shutdown(stack.gateway.timeoutSeconds, m.nodes > 1)
    if m.router:
        values["router"] = _router(m, stack.gateway.timeoutSeconds)
    if spec.autoscaling:
        values["autoscaling"] = _autoscaling(m, namespace, stack.gateway.timeoutSeconds)
    else:
        values["replicas"] = spec.replicas
    if scrapers := monitoring.scrapers(m, stack):
        values["scrapedFrom"] = scrapers
    if m.image:
        values["image"] = _image(m.image)
    if spec.args:
        values["args"] = list(spec.args)
    plain = {k: v for k, v in m.env.items() if isinstance(v, str)}
    secret = {k: v.model_dump() for k, v in m.env.items() if isinstance(v, SecretRef)}
    if plain:
        values["env"] = plain
    if secret:
        values["secretEnv"] = secret
    values[m.engine_name] = m.settings.chart()
    if m.shm_size:
        values["shmSize"] = m.shm_size
    if m.hf_token:
        values["hfTokenSecret"] = m.hf_token.model_dump()
    if m.gpus and m.profile.gpu:
        values["gpu"] = {"resource": m.profile.gpu.resource, "count": m.gpus}
    if m.nodes > 1:
        values["group"] = {"size": m.nodes}
    memory = m.profile.memory
    values["resources"] = {
        "requests": {"cpu": str(m.profile.cpu), "memory": memory},
        "limits": {"memory": memory},
    }
    cache: dict[str, Any] = {"type": spec.cache.type, "size": m.cache_size}
    if spec.cache.storageClassName:
        cache["storageClassName"] = spec.cache.storageClassName
    if spec.cache.accessModes:
        cache["accessModes"] = list(spec.cache.accessModes)
    if m.preload:
        cache["preload"] = list(m.preload)
    values["cache"] = cache
    values["startupProbe"] = {"periodSeconds": STARTUP_PERIOD_S, "failureThreshold": m.startup_failure_threshold}
    surge, unavailable = (1, 0) if m.surge else (0, 1)
    values["strategy"] = {"type": "RollingUpdate", "rollingUpdate": {"maxSurge": surge, "maxUnavailable": unavailable}}
    values.update(_placement(m.profile))
    return values


def chart_values(target: Target) -> dict[str, Any]:
    plan = target.plan
    stack = plan.stack
    gw = stack.gateway
    gateway: dict[str, Any] = {
        "replicas": gw.replicas,
        "port": GATEWAY_PORT,  # the port in the AutoGen URLs; written so the two cannot drift
        "numWorkers": gw.numWorkers,
        "masterKey": plan.master_key.model_dump(),
        "resources": {
            "requests": {"cpu": str(gw.resources.cpu), "memory": gw.resources.memory},
            "limits": {"memory": _double(gw.resources.memory)},
        },
        "env": gateway_env(plan),
        "config": config_for(target),
    }
    if gw.image:
        gateway["image"] = _image(gw.image)
    from_secrets = secret_env(plan)
    if from_secrets:
        gateway["secretEnv"] = from_secrets
    if gw.ingress:
        ingress: dict[str, Any] = {"enabled": True, "host": gw.ingress.host}
        if gw.ingress.className:
            ingress["className"] = gw.ingress.className
        if gw.ingress.tlsSecretName:
            ingress["tlsSecretName"] = gw.ingress.tlsSecretName
        if plan.ingress_annotations:
            ingress["annotations"] = plan.ingress_annotations
        gateway["ingress"] = ingress
    values: dict[str, Any] = {
        # The chart refuses values made for another version of it.
        "chartVersion": VERSION,
        # The autoscaling queries, alert expressions and agent URLs below name it: the chart refuses another.
        "namespace": stack.namespace,
        "fullnameOverride": plan.fullname,
        "gateway": gateway,
        "models": {m.name: _model_values(m, stack) for m in plan.served},
        "autogen": {f.values_key: f.config(target) for f in (autogen.CLASSIC, autogen.COMPONENTS)},
    }
    if stack.mirror:
        values["imageRegistry"] = stack.mirror.registry
    if stack.router.image and any(m.router for m in plan.served):
        values["images"] = {"router": _image(stack.router.image)}
    if stack.monitoring.enabled:
        values["monitoring"] = _monitoring(plan)
    if plan.redis and plan.redis.in_chart:
        values["redis"] = {"enabled": True, "port": plan.redis.port, "passwordSecret": plan.redis.password.model_dump()}
    return values


def _double(quantity: str) -> str:
    number = "".join(c for c in quantity if c.isdigit() or c == ".")
    unit = quantity[len(number):]
    doubled = float(number) * 2
    return f"{int(doubled) if doubled.is_integer() else doubled}{unit}"
