"""Autoscaling on queue depth, as resolved from the spec: the ScaledObject's query names the engine's own
queue metric, replicas are left to the autoscaler, engines without a queue metric are refused, a model at
minReplicas 0 is called through the HTTP add-on that wakes it, and `stackgen plan --cluster` refuses a
maxReplicas the pool's GPUs cannot hold.
(tests/cluster/test_autoscaling.py installs the result against KEDA's CRD on a real API server.)"""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import pytest
import yaml
from click.testing import CliRunner

from stackgen import examples, wake
from stackgen.cli import cli
from stackgen.engines import SERVED
from stackgen.load import load_text
from stackgen.manifests import CHART_ENV, chart_dir
from stackgen.output import Target
from stackgen.plan import plan
from stackgen.render import render_files
from stackgen.report import as_json
from stackgen.values import chart_values

CPU_SPEC = """\
name: team
namespace: llm
gateway: {{replicas: 1}}
profiles:
  cpu: {{cpu: "2", memory: 8Gi}}
models:
  - {{name: qwen, engine: {engine}, model: {model}, profile: cpu{extra}}}
"""
MODELS = {"vllm": "Qwen/Qwen2.5-0.5B-Instruct", "ollama": '"qwen2.5:0.5b"',
          "llamacpp": "Qwen/Qwen2.5-0.5B-Instruct-GGUF, file: qwen2.5-0.5b-instruct-q4_k_m.gguf"}


def spec(engine: str = "vllm", extra: str = ", autoscaling: {maxReplicas: 4}") -> str:
    return CPU_SPEC.format(engine=engine, model=MODELS[engine], extra=extra)


def model_values(text: str) -> dict[str, Any]:
    values = chart_values(Target(plan(load_text(text, "stack.yaml")), "http://x/v1"))
    result: dict[str, Any] = values["models"]["qwen"]
    return result


def test_vllm_scales_on_its_queue_and_leaves_replicas_to_the_autoscaler() -> None:
    values = model_values(spec(extra=", autoscaling: {minReplicas: 2, maxReplicas: 6, targetQueue: 3}"))
    assert "replicas" not in values
    assert values["autoscaling"] == {
        "minReplicas": 2, "maxReplicas": 6,
        "serverAddress": "http://prometheus-operated.monitoring.svc.cluster.local:9090",
        "query": 'sum(vllm:num_requests_waiting{namespace="llm",model_name="qwen"})', "threshold": "3",
        "scaleDownDelaySeconds": 300}


def test_every_model_pod_drains_for_as_long_as_the_gateway_waits_for_a_call() -> None:
    # Told to stop, a pod keeps serving while routers drop it, then lets its calls finish; the kubelet
    # waits for both. A call can last the gateway's timeout (600 s by default).
    shutdown = model_values(spec())["shutdown"]
    assert shutdown == {"preStopSeconds": 10, "drainSeconds": 600, "gracePeriodSeconds": 620}
    custom = model_values(spec().replace("gateway: {replicas: 1}", "gateway: {replicas: 1, timeoutSeconds: 90}"))
    assert custom["shutdown"]["drainSeconds"] == 90 and custom["shutdown"]["gracePeriodSeconds"] == 110


def test_a_model_at_zero_is_called_through_the_interceptor_that_wakes_it() -> None:
    """minReplicas 0 (stackgen.wake): the gateway calls KEDA's HTTP add-on with the model's route header and waits
    the wake time more; the chart gets the route, its timeouts, and the idle time before the last replica goes."""
    text = spec(extra=", autoscaling: {minReplicas: 0, maxReplicas: 1, idleSeconds: 1200, wakeSeconds: 300}")
    wake = model_values(text)["autoscaling"]["wake"]
    assert wake == {"header": "x-stackgen-route", "key": "llm/team-qwen", "target": "team-qwen-router",
                    "interceptorNamespace": "keda",
                    "scalerAddress": "keda-add-ons-http-external-scaler.keda.svc.cluster.local:9090",
                    "idleSeconds": 1200, "concurrencyTarget": 100_000, "readinessSeconds": 300,
                    "responseHeaderSeconds": 600, "requestSeconds": 900}
    files = render_files(load_text(text, "stack.yaml"), with_manifests=False)
    [entry] = yaml.safe_load(files["litellm/config.yaml"])["model_list"]
    assert entry["litellm_params"] | {"model": None} == {
        "model": None, "api_base": "http://keda-add-ons-http-interceptor-proxy.keda.svc.cluster.local:8080/v1",
        "api_key": "none", "timeout": 900, "extra_headers": {"x-stackgen-route": "llm/team-qwen"},
        "keepalive_seconds": 15}


def test_a_model_at_zero_gets_the_gateways_check_on_its_interceptor_and_no_other_stack_does() -> None:
    """The gateway's check (charts/inference-stack/files/stackgen_wake.py) is named in the config of a stack with a
    model at zero, and `render` writes it beside the config; it knows the wake's route header by the same name."""
    files = render_files(load_text(spec(extra=", autoscaling: {minReplicas: 0, maxReplicas: 1}"), "stack.yaml"),
                         with_manifests=False)
    config = yaml.safe_load(files["litellm/config.yaml"])
    assert config["litellm_settings"]["callbacks"] == [wake.GATEWAY_CALLBACK]
    hook = files[f"litellm/{wake.GATEWAY_HOOK}.py"]
    assert hook == (chart_dir() / "files" / f"{wake.GATEWAY_HOOK}.py").read_text()
    assert f'\nROUTE_HEADER = "{wake.ROUTE_HEADER}"' in hook

    awake = render_files(load_text(spec(), "stack.yaml"), with_manifests=False)
    assert "callbacks" not in yaml.safe_load(awake["litellm/config.yaml"])["litellm_settings"]
    assert sorted(awake) == sorted(f for f in files if f != f"litellm/{wake.GATEWAY_HOOK}.py")


def test_a_chart_without_the_check_is_refused_with_the_fix(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """STACKGEN_CHART naming another version's chart, one without the check: exit 2, what is missing and the fix,
    and nothing written."""
    shutil.copytree(chart_dir(), tmp_path / "chart", ignore=lambda where, names: ["files"] if "Chart.yaml" in names else [])
    monkeypatch.setenv(CHART_ENV, str(tmp_path / "chart"))
    out = tmp_path / "out"
    code, output = run(tmp_path, spec(extra=", autoscaling: {minReplicas: 0, maxReplicas: 1}"), "render",
                       "--no-manifests", "-o", str(out))
    assert code == 2 and f"files/{wake.GATEWAY_HOOK}.py is missing" in output and f"unset {CHART_ENV}" in output, output
    assert not out.exists()


def test_scale_down_waits_for_the_spec_delay() -> None:
    values = model_values(spec(extra=", autoscaling: {maxReplicas: 2, scaleDownDelaySeconds: 45}"))
    assert values["autoscaling"]["scaleDownDelaySeconds"] == 45


def test_the_query_names_the_metric_the_engine_module_declares() -> None:
    # One place knows vLLM's metric: its engine module.
    metrics = SERVED["vllm"].metrics
    assert metrics is not None and metrics.queue == "vllm:num_requests_waiting"
    assert metrics.queue in model_values(spec())["autoscaling"]["query"]


def run(tmp_path: Path, text: str, *args: str) -> tuple[int, str]:
    path = tmp_path / "stack.yaml"
    path.write_text(text)
    result = CliRunner().invoke(cli, [*args, str(path)])
    return result.exit_code, result.output


@pytest.mark.parametrize("engine", sorted(n for n, e in SERVED.items() if e.metrics is None and n in MODELS))
def test_an_engine_without_a_queue_metric_is_refused(tmp_path: Path, engine: str) -> None:
    code, output = run(tmp_path, spec(engine), "validate")
    assert code == 2 and "models[0].autoscaling" in output and "exports no queue-depth metric" in output, output
    assert "vllm" in output  # the fix names an engine that does


@pytest.mark.parametrize(("extra", "path", "fix"), [
    (", replicas: 2, autoscaling: {maxReplicas: 4}", "models[0].replicas", "set autoscaling.minReplicas instead"),
    (", autoscaling: {minReplicas: 5, maxReplicas: 4}", "models[0].autoscaling.minReplicas", "lower minReplicas"),
    (", autoscaling: {minReplicas: 1}", "models[0].autoscaling.maxReplicas", ""),
    (", autoscaling: {maxReplicas: 2, idleSeconds: 600}", "models[0].autoscaling.idleSeconds",
     "remove idleSeconds, or set minReplicas: 0"),
    (", autoscaling: {minReplicas: 1, maxReplicas: 2, wakeSeconds: 300}", "models[0].autoscaling.wakeSeconds",
     "remove wakeSeconds, or set minReplicas: 0"),
    (", autoscaling: {minReplicas: 0, maxReplicas: 2, interceptorUrl: 'http://proxy.example.com:8080'}",
     "models[0].autoscaling.interceptorUrl", "name the HTTP add-on's proxy Service as http://<service>.<namespace>.svc"),
    (", autoscaling: {minReplicas: 0, maxReplicas: 2, interceptorUrl: 'http://interceptor.llm.svc:8080'}",
     "models[0].autoscaling.interceptorUrl", "install KEDA's HTTP add-on in a namespace of its own"),
])
def test_contradictions_are_refused_at_their_path(tmp_path: Path, extra: str, path: str, fix: str) -> None:
    code, output = run(tmp_path, spec(extra=extra), "validate")
    assert code == 2 and path in output and fix in output, output


def test_plan_refuses_a_max_the_gpu_pool_cannot_hold(tmp_path: Path) -> None:
    fleet = yaml.safe_load(examples.example_text("gpu-fleet"))
    qwen = fleet["models"][0]
    assert qwen["name"] == "qwen-7b"
    del qwen["replicas"]
    qwen["autoscaling"] = {"minReplicas": 1, "maxReplicas": 3}
    path = tmp_path / "fleet.yaml"
    path.write_text(yaml.safe_dump(fleet, sort_keys=False))
    result = CliRunner().invoke(cli, ["plan", str(path), "--cluster", "gke-gpu"])
    # The L4 pool has 4 GPUs; mistral-7b and gemma-ollama take 2, so 2 replicas of qwen-7b fit, not 3.
    assert result.exit_code == 2, result.output
    assert "models[0].autoscaling.maxReplicas" in result.output
    assert "2 of 3 replicas of qwen-7b fit" in result.output
    assert "lower autoscaling.maxReplicas to 2" in result.output

    qwen["autoscaling"]["maxReplicas"] = 2
    path.write_text(yaml.safe_dump(fleet, sort_keys=False))
    assert CliRunner().invoke(cli, ["plan", str(path), "--cluster", "gke-gpu"]).exit_code == 0


def test_the_prometheus_that_scrapes_the_queue_is_admitted_to_the_server() -> None:
    # The model's NetworkPolicy admits only the gateway unless told more: KEDA would then never see a queue.
    assert model_values(spec())["scrapedFrom"] == ["monitoring"]
    other = spec(extra=", autoscaling: {maxReplicas: 2, prometheusUrl: 'http://prom.observe.svc:9090'}")
    assert model_values(other)["scrapedFrom"] == ["observe"]
    monitored = other.replace("gateway:", "monitoring: {enabled: true, prometheusNamespace: metrics}\ngateway:")
    assert model_values(monitored)["scrapedFrom"] == ["metrics", "observe"]
    # Nothing scrapes an unmonitored server, nor one whose engine exports no metrics.
    assert "scrapedFrom" not in model_values(spec(extra=""))
    monitored = spec("llamacpp", extra="").replace("gateway:", "monitoring: {enabled: true}\ngateway:")
    assert "scrapedFrom" not in model_values(monitored)


def test_a_prometheus_outside_the_cluster_is_refused(tmp_path: Path) -> None:
    code, output = run(tmp_path, spec(extra=", autoscaling: {maxReplicas: 2, prometheusUrl: 'http://10.0.0.9:9090'}"),
                       "validate")
    assert code == 2 and "models[0].autoscaling.prometheusUrl" in output, output
    assert "write http://<service>.<namespace>.svc:<port>" in output, output


def test_the_rendered_policy_admits_that_namespace_on_the_servers_port_alone() -> None:
    files = render_files(load_text(spec(), "stack.yaml"), with_manifests=True)
    gateway, scraper = yaml.safe_load(files["manifests/networkpolicy-team-qwen.yaml"])["spec"]["ingress"]
    assert scraper == {"from": [{"namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "monitoring"}}}],
                       "ports": [{"protocol": "TCP", "port": 8000}]}
    assert scraper["ports"] == gateway["ports"]


def rendered_deployment(text: str) -> dict[str, Any]:
    """The model's Deployment as `helm template` renders it from the spec's values."""
    files = render_files(load_text(text, "stack.yaml"), with_manifests=True)
    deployment: dict[str, Any] = yaml.safe_load(files["manifests/deployment-team-qwen.yaml"])
    return deployment


@pytest.mark.parametrize("monitoring", ["", "monitoring: {enabled: true}\n"], ids=["unmonitored", "monitored"])
def test_the_deployment_runs_the_spec_replicas_unless_the_autoscaler_owns_them(monitoring: str) -> None:
    # Issue 35: with monitoring on, the replicas were dropped with the scrapers' check, so the Deployment
    # ran one pod while `stackgen plan` reported three.
    fixed = rendered_deployment(spec(extra=", replicas: 3").replace("gateway:", f"{monitoring}gateway:"))
    assert fixed["spec"]["replicas"] == 3
    scaled = spec(extra=", autoscaling: {minReplicas: 2, maxReplicas: 4}").replace("gateway:", f"{monitoring}gateway:")
    assert "replicas" not in model_values(scaled)
    assert "replicas" not in rendered_deployment(scaled)["spec"]  # the ScaledObject's HPA sets them


# A cache claim of one node (a sleeping model runs at most one replica here), and the same filled beforehand.
CLAIM = "type: persistentVolumeClaim, accessModes: [ReadWriteOnce]"
PRELOADED = f", cache: {{{CLAIM}, preload: true}}"


def sleeping(extra: str = "", model: str = "Qwen/Qwen2.5-0.5B-Instruct", wake: str = "") -> str:
    """A vLLM model at zero replicas, with `extra` fields beside autoscaling and `wake` inside it."""
    return spec(extra=f", autoscaling: {{minReplicas: 0, maxReplicas: 1{wake}}}{extra}").replace(
        "Qwen/Qwen2.5-0.5B-Instruct", model)


def estimate(text: str) -> dict[str, Any]:
    """`stackgen plan`'s wake estimate of the one model, as its JSON gives it."""
    [row] = json.loads(as_json(plan(load_text(text, "stack.yaml")), None))["models"]
    wake: dict[str, Any] = row["wake"]
    return wake


def test_plan_estimates_a_wake_from_the_weights_where_they_come_from_and_the_engine() -> None:
    small, large = estimate(sleeping()), estimate(sleeping(model="Qwen/Qwen2.5-1.5B-Instruct"))
    # An emptyDir cache starts empty on every wake: each downloads the weights, then loads them.
    assert small["downloadsEachWake"] and small["estimateSeconds"] == small["downloadSeconds"] + small["loadSeconds"]
    assert small["firstOnANodeSeconds"] == small["estimateSeconds"] + small["pullSeconds"]
    assert large["downloadSeconds"] > small["downloadSeconds"] and large["loadSeconds"] > small["loadSeconds"]
    assert large["pullSeconds"] == small["pullSeconds"] > 0  # the same image
    # Preloaded into a claim, a wake downloads nothing: it reads the volume.
    preloaded = estimate(sleeping(PRELOADED))
    assert preloaded["downloadSeconds"] == 0 and not preloaded["downloadsEachWake"]
    assert preloaded["estimateSeconds"] == preloaded["loadSeconds"] == small["loadSeconds"]
    # A claim without the preload: the first wake fills it, the later ones read it.
    claimed = estimate(sleeping(f", cache: {{{CLAIM}}}"))
    assert claimed["estimateSeconds"] == claimed["loadSeconds"]
    assert claimed["firstOnANodeSeconds"] == claimed["pullSeconds"] + claimed["downloadSeconds"] + claimed["loadSeconds"]


def test_validate_warns_when_a_wake_can_outlast_wake_seconds_and_its_fix_silences_it(tmp_path: Path) -> None:
    preload = PRELOADED
    cold = estimate(sleeping(preload))
    code, output = run(tmp_path, sleeping(preload, wake=f", wakeSeconds: {cold['estimateSeconds'] - 1}"), "validate")
    assert code == 0 and "warning: models[0].autoscaling.wakeSeconds: a wake of qwen is estimated at " \
        f"{cold['estimateSeconds']} s" in output and f"raise wakeSeconds to at least {cold['estimateSeconds']}" in output
    # Enough for a node that has the image, not for a new one: said apart, with the pull's share.
    code, output = run(tmp_path, sleeping(preload, wake=f", wakeSeconds: {cold['estimateSeconds']}"), "validate")
    assert code == 0 and "the first wake of qwen on a node without its image is estimated at " \
        f"{cold['firstOnANodeSeconds']} s (the pull {cold['pullSeconds']} s)" in output, output
    code, output = run(tmp_path, sleeping(preload, wake=f", wakeSeconds: {cold['firstOnANodeSeconds']}"), "validate")
    assert code == 0 and "models[0]" not in output, output


def test_validate_says_when_wakes_download_the_weights_again(tmp_path: Path) -> None:
    code, output = run(tmp_path, sleeping(), "validate")
    assert code == 0 and "warning: models[0].cache: qwen sleeps, and each wake downloads its weights again" in output
    assert "use cache: {type: persistentVolumeClaim, preload: true}" in output, output
    code, output = run(tmp_path, sleeping(f", cache: {{{CLAIM}}}"), "validate")
    assert code == 0 and "note: models[0].cache.preload: the first wake of qwen downloads its weights" in output
    code, output = run(tmp_path, sleeping(PRELOADED), "validate")
    assert code == 0 and "models[0].cache" not in output, output
    # Awake models are not estimated, nor warned of.
    code, output = run(tmp_path, spec(), "validate")
    assert code == 0 and "models[0]" not in output, output


def test_a_wake_the_plan_cannot_estimate_is_said_so(tmp_path: Path) -> None:
    text = sleeping(", contextLength: 4096", model="example/not-in-the-catalog")
    assert estimate(text)["estimateSeconds"] is None
    code, output = run(tmp_path, text, "validate")
    assert code == 0 and "note: models[0]: the wake of qwen is not estimated" in output, output
    table = CliRunner().invoke(cli, ["plan", str(tmp_path / "stack.yaml")]).output
    assert "qwen: its wake is not estimated" in table, table


def ingress_of(text: str) -> dict[str, Any]:
    """The gateway's Ingress as `helm template` renders it from the spec's values."""
    files = render_files(load_text(text, "stack.yaml"), with_manifests=True)
    ingress: dict[str, Any] = yaml.safe_load(files["manifests/ingress-team-gateway.yaml"])
    return ingress


def with_ingress(text: str, ingress: str) -> str:
    return text.replace("gateway: {replicas: 1}", f"gateway: {{replicas: 1, ingress: {{host: llm.example.com{ingress}}}}}")


def test_ingress_nginx_waits_as_long_as_the_gateway_the_wake_included(tmp_path: Path) -> None:
    """ingress-nginx cuts a proxied call silent for 60 s by default; a call that is not streamed is silent until its
    answer, which the gateway waits 600 s for, and a sleeping model's wake on top."""
    read, send = "nginx.ingress.kubernetes.io/proxy-read-timeout", "nginx.ingress.kubernetes.io/proxy-send-timeout"
    awake = ingress_of(with_ingress(spec(), ", className: nginx"))["metadata"]["annotations"]
    assert awake[read] == awake[send] == "600"
    asleep = with_ingress(sleeping(wake=", wakeSeconds: 300"), ", className: nginx")
    assert ingress_of(asleep)["metadata"]["annotations"][read] == "900"
    # The spec's own value stays; one that would cut calls is warned of, with the value that does not.
    code, output = run(tmp_path, asleep.replace("className: nginx", f"className: nginx, annotations: {{{read}: '120'}}"),
                       "validate")
    assert code == 0 and f"warning: gateway.ingress.annotations.{read}: 120 cuts the calls the gateway waits up to " \
        "900 s for (remove it, and stackgen sets 900)" in output, output
    # Another controller's timeouts are not stackgen's to name: it says what to set.
    other = with_ingress(sleeping(wake=", wakeSeconds: 300"), ", className: traefik")
    assert not any(k.startswith("nginx.") for k in ingress_of(other)["metadata"].get("annotations") or {})
    code, output = run(tmp_path, other, "validate")
    assert code == 0 and "note: gateway.ingress: a call can wait 900 s for its answer" in output, output
