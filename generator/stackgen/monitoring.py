"""What Prometheus reads of a stack, and what it alerts on: every PromQL expression stackgen writes lives
here, built from the metric names each engine module declares (`EngineMetrics`) and the gateway's below.
The chart maps them to a PrometheusRule, a Grafana dashboard and KEDA's trigger; tests/engines evaluates
each one against a real Prometheus that scrapes real vLLM and the real gateway.

Every series is selected by the scrape's `namespace` label (the Prometheus Operator's monitors set it), and
the gateway's also by `job`, which a ServiceMonitor sets to the Service's name.
"""

from __future__ import annotations

from typing import Any

from .engines.base import EngineMetrics
from .plan import Plan, ServedPlan
from .spec import Stack

# LiteLLM 1.108.7's Prometheus callback (litellm/types/integrations/prometheus.py), as scraped: counters
# carry _total, histograms _bucket.
GATEWAY_REQUESTS = "litellm_proxy_total_requests_metric_total"
GATEWAY_FAILURES = "litellm_proxy_failed_requests_metric_total"
GATEWAY_LATENCY = "litellm_request_total_latency_metric"  # histogram, seconds, by model_group
MODEL_SUCCESSES = "litellm_deployment_success_responses_total"  # by model_group: the gateway's view of a model
MODEL_FAILURES = "litellm_deployment_failure_responses_total"

# Alert thresholds: a queue this long for 5 minutes means the model needs more replicas; a KV cache this
# full for 10 minutes means requests are being preempted; this share of failed gateway requests.
QUEUE_ALERT = 10
KV_CACHE_ALERT = 0.95
GATEWAY_ERROR_RATIO = 0.05
# Below this share of prompt tokens found in the prefix cache over 30 minutes, an agent workload (whose every
# turn repeats the conversation so far) has lost its affinity: the turns are spread over the replicas.
PREFIX_HIT_ALERT = 0.3


def _metrics(m: ServedPlan) -> EngineMetrics:
    metrics = m.engine.metrics
    assert metrics is not None, f"{m.engine_name} exports no metrics"
    return metrics


def queue_query(m: ServedPlan, namespace: str) -> str:
    """The model's queue summed over its replicas: what KEDA scales on."""
    return f'sum({_metrics(m).queue}{{namespace="{namespace}",model_name="{m.name}"}})'


def scraped(plan: Plan) -> tuple[ServedPlan, ...]:
    """The model servers Prometheus scrapes: those whose engine exports metrics."""
    return tuple(m for m in plan.served if m.engine.metrics)


def scrapers(m: ServedPlan, stack: Stack) -> list[str]:
    """The namespaces whose Prometheus reads the server's metrics, which its NetworkPolicy admits to its port:
    the stack's when monitoring is on, and the autoscaler's."""
    if not m.engine.metrics:
        return []
    found = {stack.monitoring.prometheusNamespace} if stack.monitoring.enabled else set()
    if m.spec.autoscaling and (namespace := m.spec.autoscaling.prometheus_namespace):
        found.add(namespace)
    return sorted(found)


def _gateway(plan: Plan) -> str:
    return f'namespace="{plan.stack.namespace}",job="{plan.gateway_service}"'


def _servers(plan: Plan) -> str:
    names = "|".join(m.name for m in scraped(plan))
    return f'namespace="{plan.stack.namespace}",model_name=~"{names}"'


def _engine_metrics(plan: Plan) -> list[EngineMetrics]:
    """Distinct metric sets of the scraped engines (one per engine, in spec order)."""
    seen: list[EngineMetrics] = []
    for m in scraped(plan):
        if _metrics(m) not in seen:
            seen.append(_metrics(m))
    return seen


def _rule(alert: str, expr: str, wait: str, severity: str, summary: str, description: str) -> dict[str, Any]:
    return {"alert": alert, "expr": expr, "for": wait, "labels": {"severity": severity},
            "annotations": {"summary": summary, "description": description}}


def _hit_rate(metrics: EngineMetrics, servers: str, window: str) -> str:
    """Share of prompt tokens found in the prefix cache, per model, over all its replicas."""
    return (f"sum by (model_name) (rate({metrics.prefix_cache_hits}{{{servers}}}[{window}])) / "
            f"sum by (model_name) (rate({metrics.prefix_cache_queries}{{{servers}}}[{window}]))")


def alert_rules(plan: Plan) -> list[dict[str, Any]]:
    """The PrometheusRule's groups."""
    gw, name = _gateway(plan), plan.fullname
    rules = [
        # Every model, whatever its engine (Ollama exports nothing): the gateway's view.
        _rule("StackgenModelUnanswered",
              f"sum by (model_group) (rate({MODEL_FAILURES}{{{gw}}}[5m])) > 0 "
              f"unless sum by (model_group) (rate({MODEL_SUCCESSES}{{{gw}}}[5m])) > 0",
              "5m", "critical", f"{name}: model {{{{ $labels.model_group }}}} answers no request",
              "Every call the gateway made to it failed for 5 minutes: no ready replica, or its server is broken. "
              "Check its pods and logs."),
        _rule("StackgenGatewayErrors",
              f"sum(rate({GATEWAY_FAILURES}{{{gw}}}[5m])) / sum(rate({GATEWAY_REQUESTS}{{{gw}}}[5m])) "
              f"> {GATEWAY_ERROR_RATIO}",
              "5m", "warning", f"{name}: over {GATEWAY_ERROR_RATIO:.0%} of gateway requests fail",
              "Agents get errors from the gateway. Its logs name the model and status."),
    ]
    servers = _servers(plan)
    for metrics in _engine_metrics(plan):
        rules += [
            _rule("StackgenQueueGrowing", f"sum by (model_name) ({metrics.queue}{{{servers}}}) > {QUEUE_ALERT}",
                  "5m", "warning",
                  f"{name}: {{{{ $labels.model_name }}}} has had over {QUEUE_ALERT} requests waiting for 5 minutes",
                  "Add replicas (or autoscaling), or lower the agents' load."),
            _rule("StackgenKvCacheFull",
                  f"max by (model_name) ({metrics.kv_cache_usage}{{{servers}}}) > {KV_CACHE_ALERT}",
                  "10m", "warning", f"{name}: {{{{ $labels.model_name }}}}'s KV cache is over {KV_CACHE_ALERT:.0%} full",
                  "Requests are queued or preempted for lack of cache: lower maxModelLen or add GPUs."),
            _rule("StackgenPrefixCacheHitRateLow", f"{_hit_rate(metrics, servers, '30m')} < {PREFIX_HIT_ALERT}",
                  "30m", "warning",
                  f"{name}: {{{{ $labels.model_name }}}} finds under {PREFIX_HIT_ALERT:.0%} of prompt tokens in its "
                  f"prefix cache",
                  "Agents' turns repeat their conversation, so most of each prompt should be cached. A low rate "
                  "means the turns are spread over the replicas: check that the gateway calls the model's router "
                  "and that clients send x-session-id (`stackgen verify` checks both)."),
        ]
    return [{"name": f"{name}.rules", "rules": rules}]


def panels(plan: Plan) -> list[tuple[str, str, str]]:
    """(title, unit, PromQL) of each dashboard panel: per model, then the gateway."""
    out: list[tuple[str, str, str]] = []
    servers = _servers(plan)
    for metrics in _engine_metrics(plan):
        out += [
            ("Requests finished per second", "reqps",
             f"sum by (model_name) (rate({metrics.requests}{{{servers}}}[5m]))"),
            ("Requests waiting", "short", f"sum by (model_name) ({metrics.queue}{{{servers}}})"),
            ("Requests running", "short", f"sum by (model_name) ({metrics.running}{{{servers}}})"),
            ("Time to first token, p95", "s",
             f"histogram_quantile(0.95, sum by (le, model_name) (rate({metrics.ttft}_bucket{{{servers}}}[5m])))"),
            ("Generated tokens per second", "short",
             f"sum by (model_name) (rate({metrics.generation_tokens}{{{servers}}}[5m]))"),
            ("KV cache use", "percentunit", f"max by (model_name) ({metrics.kv_cache_usage}{{{servers}}})"),
            ("Prefix cache hit rate", "percentunit", _hit_rate(metrics, servers, "5m")),
        ]
    gw = _gateway(plan)
    out += [
        ("Gateway requests per second, by model", "reqps",
         f"sum by (model_group) (rate({MODEL_SUCCESSES}{{{gw}}}[5m]) + rate({MODEL_FAILURES}{{{gw}}}[5m]))"),
        ("Gateway latency p95, by model", "s",
         f"histogram_quantile(0.95, sum by (le, model_group) (rate({GATEWAY_LATENCY}_bucket{{{gw}}}[5m])))"),
        ("Gateway failed requests per second", "reqps", f"sum(rate({GATEWAY_FAILURES}{{{gw}}}[5m]))"),
    ]
    return out


def dashboard(plan: Plan) -> dict[str, Any]:
    """A Grafana dashboard (schema 39) of the panels, two per row, on the `datasource` variable."""
    items = []
    for i, (title, unit, expr) in enumerate(panels(plan)):
        items.append({
            "id": i + 1, "type": "timeseries", "title": title,
            "gridPos": {"h": 8, "w": 12, "x": 12 * (i % 2), "y": 8 * (i // 2)},
            "datasource": {"type": "prometheus", "uid": "${datasource}"},
            "fieldConfig": {"defaults": {"unit": unit}, "overrides": []},
            "targets": [{"refId": "A", "expr": expr, "legendFormat": "__auto"}],
        })
    return {
        "title": f"stackgen: {plan.fullname}",
        "uid": f"stackgen-{plan.fullname}"[:40],
        "schemaVersion": 39,
        "tags": ["stackgen", "llm"],
        "time": {"from": "now-1h", "to": "now"},
        "refresh": "30s",
        "templating": {"list": [{"name": "datasource", "type": "datasource", "query": "prometheus"}]},
        "panels": items,
    }


def expressions(plan: Plan) -> list[str]:
    """Every PromQL expression of the stack: alerts, dashboard panels and autoscaling triggers."""
    exprs = [rule["expr"] for group in alert_rules(plan) for rule in group["rules"]]
    exprs += [expr for _, _, expr in panels(plan)]
    exprs += [queue_query(m, plan.stack.namespace) for m in plan.served if m.spec.autoscaling]
    return exprs
