"""Every alert, dashboard query and autoscaling trigger stackgen writes, evaluated by a real Prometheus
(Debian's) that scrapes real vLLM and the real LiteLLM gateway, both started as the chart renders them.

The scrape jobs give the targets the labels the Prometheus Operator's monitors give them (namespace; job =
the gateway Service's name), so the expressions run unchanged. An expression passes when Prometheus
evaluates it and every series it selects, with its label matchers, exists: a metric the pinned engines do
not export, or a label they do not set, fails the test. The checker's own refusal of a made-up metric is
checked too, so a pass means something.
"""

from __future__ import annotations

import re
import secrets
import shutil
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml

from stackgen import monitoring
from stackgen.gateway import MASTER_KEY_ENV
from stackgen.load import load_text
from stackgen.localstack import Gateway, ManagedProcess, free_port, point_at_local, spawn, start_gateway, wait_until
from stackgen.plan import Plan, plan
from stackgen.render import render_files
from tests.support.wait import poll

from .conftest import LocalEngines
from .pods import Server

SPEC = """
name: watched
namespace: llm
gateway: {replicas: 1}
monitoring: {enabled: true}
profiles:
  cpu: {cpu: "2", memory: 8Gi}
models:
  - {name: qwen, engine: vllm, model: Qwen/Qwen2.5-0.5B-Instruct, profile: cpu, maxModelLen: 2048,
     autoscaling: {maxReplicas: 2}}
  - {name: gone, engine: ollama, model: "qwen2.5:0.5b", profile: cpu}
"""
SCRAPE_S = 1
# A selector: a metric name followed by its label matchers.
SELECTOR = re.compile(r"([a-zA-Z_:][a-zA-Z0-9_:]*)(\{[^}]*\})")


@dataclass
class Watched:
    plan: Plan
    gateway: Gateway
    vllm: Server
    prometheus: str  # base URL

    def query(self, expr: str) -> dict[str, Any]:
        reply = httpx.get(f"{self.prometheus}/api/v1/query", params={"query": expr}, timeout=10)
        body: dict[str, Any] = reply.json()
        return body


def _prometheus_config(plan: Plan, gateway: Gateway, vllm: Server) -> dict[str, Any]:
    namespace = plan.stack.namespace

    def job(name: str, url: str, **extra: Any) -> dict[str, Any]:
        return {"job_name": name, "metrics_path": "/metrics", "scrape_interval": f"{SCRAPE_S}s",
                "static_configs": [{"targets": [url.removeprefix("http://")], "labels": {"namespace": namespace}}],
                **extra}

    # The gateway's metrics need its key, as the chart's ServiceMonitor sends it (from the master-key Secret).
    auth = {"authorization": {"type": "Bearer", "credentials": gateway.master_key}}
    return {"global": {"scrape_interval": f"{SCRAPE_S}s", "evaluation_interval": f"{SCRAPE_S}s"},
            "scrape_configs": [job(plan.gateway_service, gateway.url, **auth), job(f"{plan.fullname}-models", vllm.url)]}


def _start_prometheus(config: dict[str, Any], workdir: Path) -> tuple[ManagedProcess, str]:
    binary = shutil.which("prometheus")
    assert binary, "prometheus is missing: `make test` installs Debian's (scripts/test-debs.sh)"
    path = workdir / "prometheus.yml"
    path.write_text(yaml.safe_dump(config))
    port = free_port()
    proc = spawn("prometheus", [binary, f"--config.file={path}", f"--storage.tsdb.path={workdir / 'tsdb'}",
                                f"--web.listen-address=127.0.0.1:{port}"], workdir / "prometheus.log")
    url = f"http://127.0.0.1:{port}"

    def ready() -> bool:
        try:
            return httpx.get(f"{url}/-/ready", timeout=2).status_code == 200
        except httpx.HTTPError:
            return False

    wait_until(ready, proc, 60, "prometheus")
    return proc, url


@pytest.fixture(scope="module")
def watched(local: LocalEngines, engines_workdir: Path) -> Iterator[Watched]:
    workdir = engines_workdir / "monitoring"
    workdir.mkdir()
    resolved = plan(load_text(SPEC, "watched.yaml"))
    files = render_files(resolved.stack)
    vllm = local.vllm.start(files, "watched", "qwen", "Qwen/Qwen2.5-0.5B-Instruct", local.tiny_qwen, workdir)
    procs: list[Any] = [vllm]
    try:
        # `gone` has no server: nothing listens on its address, so every call to it fails.
        config = point_at_local(yaml.safe_load(files["litellm/config.yaml"]),
                                {"qwen": vllm.api_base, "gone": f"http://127.0.0.1:{free_port()}/v1"})
        gateway = start_gateway(config, workdir, {MASTER_KEY_ENV: f"sk-{secrets.token_hex(8)}"})
        procs.append(gateway.process)
        prom, url = _start_prometheus(_prometheus_config(resolved, gateway, vllm), workdir)
        procs.append(prom)
        w = Watched(resolved, gateway, vllm, url)
        # Two rounds, each scraped twice after it ends: rate() needs a counter to rise between samples, and a
        # counter's first sample is not a rise. Waited for, not slept on: a loaded machine scrapes late.
        for _ in range(2):
            for model in ("qwen", "qwen", "gone"):
                httpx.post(f"{gateway.api_base}/chat/completions", headers=gateway.headers(), timeout=120,
                           json={"model": model, "messages": [{"role": "user", "content": "hi"}], "max_tokens": 4})
            _scraped_after(w, time.time() + SCRAPE_S)
        yield w
    finally:
        for proc in reversed(procs):
            proc.stop()


def _scraped_after(w: Watched, moment: float) -> None:
    """Until Prometheus has scraped every target after `moment` (each target's `up` sample is newer)."""
    def check() -> tuple[bool, str]:
        stamps = [float(r["value"][1]) for r in w.query("timestamp(up)")["data"]["result"]]
        return bool(stamps) and min(stamps) > moment, f"latest scrapes {stamps}, waiting for {moment:.1f}"

    poll("every target scraped", check, 60, period=SCRAPE_S)


def missing_series(w: Watched, expr: str) -> list[str]:
    """The selectors of ``expr`` that match no series in Prometheus (name and label matchers)."""
    found = SELECTOR.findall(expr)
    assert found, f"no selector in {expr}"
    missing = []
    for name, matchers in found:
        result = w.query(f"count({name}{matchers})")
        if result["status"] != "success" or not result["data"]["result"]:
            missing.append(f"{name}{matchers}")
    return missing


def test_the_gateway_exports_its_metrics_to_its_key_only(watched: Watched) -> None:
    body = httpx.get(f"{watched.gateway.url}/metrics", headers=watched.gateway.headers(), timeout=10,
                     follow_redirects=True).text
    assert monitoring.GATEWAY_REQUESTS in body, body[:2000]
    refused = httpx.get(f"{watched.gateway.url}/metrics", timeout=10, follow_redirects=True)
    assert monitoring.GATEWAY_REQUESTS not in refused.text, refused.text[:500]


def test_every_expression_evaluates_on_series_the_engines_export(watched: Watched) -> None:
    expressions = monitoring.expressions(watched.plan)
    # alerts, panels and the autoscaling trigger are all here
    assert any("num_requests_waiting" in e for e in expressions) and len(expressions) >= 12, expressions
    problems = {}
    for expr in expressions:
        result = watched.query(expr)
        if result["status"] != "success":
            problems[expr] = result.get("error")
        elif missing := missing_series(watched, expr):
            problems[expr] = f"no series for {missing}"
    assert not problems, "\n".join(f"{e}\n  -> {why}" for e, why in problems.items())


def test_a_made_up_metric_is_caught(watched: Watched) -> None:
    assert missing_series(watched, 'sum(vllm:num_requests_queued{namespace="llm"})')
    # and a real metric with a label the engine does not set
    assert missing_series(watched, 'sum(vllm:num_requests_waiting{namespace="llm",model="qwen"})')


def test_the_model_nobody_answers_for_is_the_one_alerted_on(watched: Watched) -> None:
    rule = next(r for g in monitoring.alert_rules(watched.plan) for r in g["rules"]
                if r["alert"] == "StackgenModelUnanswered")
    firing = {s["metric"]["model_group"] for s in watched.query(rule["expr"])["data"]["result"]}
    assert firing == {"gone"}, firing


def test_the_rules_pass_promtool(watched: Watched, tmp_path: Path) -> None:
    path = tmp_path / "rules.yaml"
    path.write_text(yaml.safe_dump({"groups": monitoring.alert_rules(watched.plan)}))
    done = subprocess.run(["promtool", "check", "rules", str(path)], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stdout + done.stderr
