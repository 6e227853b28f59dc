"""Checks a running stack from the outside, the way agents use it: the gateway is healthy, lists every model
of the spec, each model answers a chat, tool-calling models call a tool, and both AutoGen configs load and
get a reply. Used after `helm install` (kind tests, users) and against the local stack in the tests.
"""

from __future__ import annotations

import json
import subprocess
import time
from collections.abc import Callable
from dataclasses import dataclass
from functools import partial
from pathlib import Path

import httpx

from .agents.base import Client
from .plan import Plan, ServedPlan
from .routing import SESSION_HEADER

PROMPT = [{"role": "user", "content": "Reply with the word ok."}]
# The chat and tools checks look at each model's own server, so a fallback must not answer for it
# (LiteLLM's router takes this per-request switch off the body before calling the backend).
OWN_SERVER_ONLY = {"disable_fallbacks": True}
# Room for a model that writes a few words before its call, or a verbose call format.
TOOL_CALL_MAX_TOKENS = 256
# A tool any model can call; the reply only has to contain a call to it.
TOOL_NAME = "get_time"
CLOCK_TOOL = {
    "type": "function",
    "function": {
        "name": TOOL_NAME,
        "description": "Current time in a city.",
        "parameters": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]},
    },
}


@dataclass(frozen=True)
class Check:
    model: str  # "-" for checks of the gateway itself
    engine: str
    check: str
    ok: bool
    seconds: float | None
    detail: str = ""


def _timed(model: str, engine: str, check: str, probe: Callable[[], str]) -> Check:
    start = time.perf_counter()
    try:
        detail = probe()
        return Check(model, engine, check, True, time.perf_counter() - start, detail)
    except Exception as exc:  # noqa: BLE001 - every failure becomes a row of the report, not a crash
        return Check(model, engine, check, False, time.perf_counter() - start, _reason(exc))


def _reason(exc: Exception) -> str:
    if isinstance(exc, httpx.HTTPStatusError):
        body = exc.response.text.strip().replace("\n", " ")
        # Without a database LiteLLM can only check the master key; any other key gets this 400.
        refused = exc.response.status_code == 401 or "no_db_connection" in body
        hint = "the gateway refused the key: " if refused else ""
        return f"HTTP {exc.response.status_code}: {hint}{body[:160]}"
    return f"{type(exc).__name__}: {str(exc)[:160]}"


def _engine(plan: Plan, name: str) -> str:
    return plan.model(name).label


def asleep(kubectl: list[str], plan: Plan) -> set[str]:
    """The models that may sleep (minReplicas 0) and have no replica now, read with kubectl; their adapters too."""
    out = set()
    for m in plan.served:
        if m.wake is None:
            continue
        done = subprocess.run([*kubectl, "get", "deployment", f"{plan.fullname}-{m.name}", "-n", plan.stack.namespace,
                               "-o", "jsonpath={.spec.replicas}"], capture_output=True, text=True, timeout=60, check=False)
        if done.returncode == 0 and done.stdout.strip() == "0":
            out |= {m.name, *(a.name for a in m.spec.adapters)}
    return out


def verify(plan: Plan, gateway_url: str, api_key: str, autogen_dir: Path | None = None,
           timeout: float = 120.0, autogen_base_url: str | None = None,
           frameworks: tuple[str, ...] = (), kubectl: list[str] | None = None, wake: bool = False) -> list[Check]:
    """Every check, in a stable order; nothing raises for a failing stack.

    ``autogen_base_url`` replaces the gateway URL written in the AutoGen files, for files rendered
    for another address than the one checked (`stackgen verify --local`). ``frameworks`` (names of
    stackgen.agents) renders their configs for this gateway and gets, through each, a reply from every model
    and a tool round trip from every tool-calling one. ``kubectl`` (a command line naming the cluster) also
    reads each autoscaled model's autoscaler: its replicas and the queue it sees; and a model asleep (minReplicas
    0, no replica) is reported so and left asleep, unless ``wake``: then its chat wakes it, and its time is the
    wake's. A call to a model that may sleep is given its wake time on top of ``timeout``."""
    sleeping = asleep(kubectl, plan) if kubectl is not None and not wake else set()
    base = gateway_url.rstrip("/")
    root = base.removesuffix("/v1")
    headers = {"Authorization": f"Bearer {api_key}"}
    checks: list[Check] = []
    with httpx.Client(timeout=timeout, headers=headers) as http:

        def health() -> str:
            for path in ("/health/liveliness", "/health/readiness"):
                http.get(root + path).raise_for_status()
            return "live and ready"

        checks.append(_timed("-", "gateway", "health", health))
        listed: set[str] = set()

        def models() -> str:
            response = http.get(base + "/models")
            response.raise_for_status()
            listed.update(m["id"] for m in response.json()["data"])
            missing = [m.name for m in plan.models if m.name not in listed]
            if missing:
                raise LookupError(f"not listed: {', '.join(missing)}")
            return f"{len(plan.models)} models listed"

        checks.append(_timed("-", "gateway", "models", models))
        for m in plan.models:
            if m.name in sleeping:
                checks.append(Check(m.name, _engine(plan, m.name), "chat", True, None,
                                    "asleep: no replica; a call wakes it (--wake: wake it and time the wake)"))
                continue
            wait = timeout + (m.wake.wake_seconds if m.wake else 0)
            checks.append(_timed(m.name, _engine(plan, m.name), "chat", partial(_chat, http, base, m.name, wait)))
            if m.spec.toolCalling:
                checks.append(_timed(m.name, _engine(plan, m.name), "tools", partial(_tools, http, base, m.name)))
        for served in plan.served:
            if served.router and served.name not in sleeping:
                checks.append(_timed(served.name, served.label, "prefix-cache",
                                     partial(prefix_cache, http, base, served.name)))
    if kubectl is not None:
        checks += [_timed(m.name, m.label, "autoscaling", partial(autoscaler, kubectl, plan, m))
                   for m in plan.served if m.spec.autoscaling]
    if autogen_dir is not None:
        checks += _autogen_checks(plan, autogen_dir, Client(api_key, timeout, autogen_base_url))
    if frameworks:
        checks += framework_checks(plan, base, api_key, frameworks, timeout)
    return checks


def framework_checks(plan: Plan, gateway_url: str, api_key: str, frameworks: tuple[str, ...],
                     timeout: float = 120.0) -> list[Check]:
    """Renders the frameworks' files for ``gateway_url`` and runs each as an agent's code would: a chat reply per
    model (check `<framework>`) and, for tool-calling models, a tool round trip where the framework has one
    (`<framework>-tools`). The key reaches them as an agent's own code would hand it over."""
    import tempfile

    from . import agents
    from .render import render_files, write_tree

    checks: list[Check] = []
    client = agents.Client(api_key, timeout)
    with tempfile.TemporaryDirectory(prefix="stackgen-frameworks-") as tmp:
        out = Path(tmp) / "out"
        write_tree(out, render_files(plan.stack, gateway_url, with_manifests=False, frameworks=frameworks))
        for name in frameworks:
            framework = agents.FRAMEWORKS[name]
            for m in plan.models:
                engine = _engine(plan, m.name)
                checks.append(_timed(m.name, engine, name, partial(_short_of, framework.reply, out, m.name, client)))
                if m.spec.toolCalling and framework.probes_tools:
                    checks.append(_timed(m.name, engine, f"{name}-tools",
                                         partial(_short_of, framework.tool_round_trip, out, m.name, client)))
    return checks


def _short_of(run: Callable[[Path, str, Client], str], where: Path, model: str, client: Client) -> str:
    """A framework's reply, cut to 60 characters for its table cell."""
    return run(where, model, client)[:60]


def _chat(http: httpx.Client, base: str, model: str, timeout: float) -> str:
    request = {"model": model, "messages": PROMPT, "max_tokens": 16, **OWN_SERVER_ONLY}
    response = http.post(base + "/chat/completions", json=request, timeout=timeout)
    response.raise_for_status()
    body = response.json()
    message = body["choices"][0]["message"]
    if message.get("content") is None and not message.get("tool_calls"):
        raise ValueError("reply has no content")
    return f"{body['usage']['total_tokens']} tokens"


def _tools(http: httpx.Client, base: str, model: str) -> str:
    request = {"model": model, "messages": [{"role": "user", "content": "What time is it in Paris?"}],
               "tools": [CLOCK_TOOL], "tool_choice": "required", "max_tokens": TOOL_CALL_MAX_TOKENS,
               **OWN_SERVER_ONLY}
    response = http.post(base + "/chat/completions", json=request)
    response.raise_for_status()
    calls = response.json()["choices"][0]["message"].get("tool_calls") or []
    if not calls:
        raise ValueError("no tool call in the reply")
    name = calls[0]["function"]["name"]
    if name != TOOL_NAME:
        raise ValueError(f"called {name!r}, a tool it was not offered")
    json.loads(calls[0]["function"]["arguments"] or "{}")  # arguments must be JSON
    return f"called {name}"


# The prefix-cache check: a few conversations of a few turns, each on its own id, behind a system prompt long
# enough to fill a few KV blocks (vLLM's CPU blocks hold 128 tokens) and short enough for a 2K context.
CONVERSATIONS = 3
TURNS = 3
SYSTEM_PROMPT = "You are the verifier of an inference stack. " + " ".join(
    f"Rule {i}: answer in as few words as you can." for i in range(1, 26))


def prefix_cache(http: httpx.Client, base: str, model: str) -> str:
    """Every turn after a conversation's first must find its history in the serving replica's prefix cache,
    which the router ensures by keeping the conversation on one replica. Reads the cached prompt tokens the
    server reports in each reply's usage (vLLM: --enable-prompt-tokens-details). Returns the hit rate."""
    cached = prompted = 0
    for c in range(CONVERSATIONS):
        conversation = f"stackgen-verify-{time.time_ns()}-{c}"
        headers = {SESSION_HEADER: conversation}
        # Its own first words: no other conversation's cached blocks can answer for it.
        messages = [{"role": "system", "content": f"{conversation}. {SYSTEM_PROMPT}"}]
        for turn in range(TURNS):
            messages.append({"role": "user", "content": f"Conversation {c}, question {turn}: say ok."})
            request = {"model": model, "messages": messages, "max_tokens": 8, "temperature": 0, **OWN_SERVER_ONLY}
            response = http.post(base + "/chat/completions", json=request, headers=headers)
            response.raise_for_status()
            body = response.json()
            messages.append({"role": "assistant", "content": body["choices"][0]["message"].get("content") or "ok"})
            if turn == 0:
                continue
            usage = body.get("usage") or {}
            details = usage.get("prompt_tokens_details") or {}
            if details.get("cached_tokens") is None:
                raise ValueError("the server reports no cached prompt tokens (vLLM needs "
                                 "--enable-prompt-tokens-details, which the chart sets)")
            if details["cached_tokens"] == 0:
                raise ValueError(f"turn {turn + 1} of a conversation found nothing in the prefix cache: its turns "
                                 f"are spread over the replicas (is the gateway calling the model's router, and "
                                 f"forwarding {SESSION_HEADER}?)")
            cached += details["cached_tokens"]
            prompted += usage["prompt_tokens"]
    return f"hit rate {cached / prompted:.2f} over {CONVERSATIONS * (TURNS - 1)} follow-up turns"


def _autogen_checks(plan: Plan, autogen_dir: Path, client: Client) -> list[Check]:
    """Both AutoGen files in a directory the user rendered (`stackgen verify --autogen-dir`)."""
    from .agents.autogen import CLASSIC, COMPONENTS

    checks = []
    for m in plan.models:
        engine = _engine(plan, m.name)
        for check, framework in (("autogen-0.2", CLASSIC), ("autogen-0.4", COMPONENTS)):
            checks.append(_timed(m.name, engine, check,
                                 partial(_short_of, framework.reply_from, autogen_dir / framework.file, m.name, client)))
    return checks


def _quantity(text: str) -> float:
    """A Kubernetes quantity as the HPA reports a metric: "3", "1500m"."""
    return float(text[:-1]) / 1000 if text.endswith("m") else float(text)


def autoscaler(kubectl: list[str], plan: Plan, m: ServedPlan) -> str:
    """The HPA KEDA made for the model's ScaledObject (the name KEDA writes in the ScaledObject's status): its
    replicas, and the queue per replica it last read against the target. Fails when there is no HPA (KEDA is
    not running) or when it cannot read the queue (Prometheus, or KEDA's metrics API, is not answering)."""
    scaling = m.spec.autoscaling
    assert scaling is not None
    scaled_object = f"{plan.fullname}-{m.name}"
    done = subprocess.run([*kubectl, "get", "scaledobject", scaled_object, "-n", plan.stack.namespace,
                           "-o", "jsonpath={.status.hpaName}"], capture_output=True, text=True, timeout=60, check=False)
    name = done.stdout.strip()
    if done.returncode != 0 or not name:
        raise LookupError(f"ScaledObject {scaled_object} names no HorizontalPodAutoscaler: is KEDA running? "
                          f"({done.stderr.strip()[:120]})")
    done = subprocess.run([*kubectl, "get", "hpa", name, "-n", plan.stack.namespace, "-o", "json"],
                          capture_output=True, text=True, timeout=60, check=False)
    if done.returncode != 0:
        raise LookupError(f"no HorizontalPodAutoscaler {name}: is KEDA running? ({done.stderr.strip()[:120]})")
    # Fields a controller has not filled in yet are missing or null.
    status = json.loads(done.stdout).get("status") or {}
    if scaling.minReplicas == 0 and not status.get("currentReplicas"):
        # KEDA took it to zero and holds the HPA off: asleep, not failing.
        return f"asleep: 0 replicas ({scaling.minReplicas}-{scaling.maxReplicas}); a call wakes it"
    for condition in status.get("conditions") or []:
        if condition["type"] == "ScalingActive" and condition["status"] != "True":
            raise RuntimeError(f"the autoscaler cannot read the queue: {condition.get('message', '')[:160]}")
    queue = [_quantity(metric["external"]["current"]["averageValue"]) for metric in status.get("currentMetrics") or []
             if metric.get("type") == "External"]
    seen = f"queue {queue[0]:g} per replica" if queue else "no queue read yet"
    return (f"replicas {status.get('currentReplicas', 0)}, desired {status.get('desiredReplicas', 0)} "
            f"({scaling.minReplicas}-{scaling.maxReplicas}); {seen}, target {scaling.targetQueue}")


def table(checks: list[Check]) -> str:
    """A fixed-width table: model, engine, check, status, latency, detail."""
    rows = [("MODEL", "ENGINE", "CHECK", "STATUS", "LATENCY", "DETAIL")]
    for c in checks:
        latency = f"{c.seconds * 1000:.0f} ms" if c.seconds is not None else "-"
        # One line per check, whatever a reply or an error spans.
        rows.append((c.model, c.engine, c.check, "ok" if c.ok else "FAIL", latency, " ".join(c.detail.split())))
    widths = [max(len(r[i]) for r in rows) for i in range(5)]
    lines = ["  ".join(cell.ljust(w) for cell, w in zip(r[:5], widths, strict=True)) + "  " + r[5] for r in rows]
    ok = sum(c.ok for c in checks)
    # Not "N passed, N failed": CI log scanners read that as a test runner's summary.
    lines.append(f"verify: {ok} of {len(checks)} checks ok")
    return "\n".join(line.rstrip() for line in lines)
