"""The gateway's shared state and per-model limits, as resolved from the spec: when Redis is on, what the
gateway config, values and chart get, what the user is told, and what is refused.
(tests/stack/test_shared_state.py runs the result on real Redis and two real LiteLLM proxies.)"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml
from click.testing import CliRunner

from stackgen.cli import cli
from stackgen.gateway import REDIS_ENV, gateway_config
from stackgen.load import load_text
from stackgen.output import Target
from stackgen.plan import plan
from stackgen.values import chart_values

BASE = """\
name: team
gateway: {GATEWAY}
profiles:
  cpu: {{cpu: "1", memory: 2Gi}}
models:
  - {{name: small, engine: ollama, model: "qwen2.5:0.5b", profile: cpu{EXTRA}}}
"""


def spec(gateway: str = "{}", extra: str = "") -> str:
    return BASE.format(GATEWAY=gateway, EXTRA=extra)


def resolved(text: str) -> Any:
    return plan(load_text(text, "stack.yaml"))


def test_one_process_needs_no_redis() -> None:
    p = resolved(spec("{replicas: 1}"))
    assert p.redis is None and p.notes == ()
    assert not set(REDIS_ENV) & set(gateway_config(p)["router_settings"])
    assert "redis" not in chart_values(Target(p, "http://x/v1"))


@pytest.mark.parametrize("gateway", ["{}", "{replicas: 1, numWorkers: 2}"])
def test_more_than_one_process_turns_redis_on_and_says_so(gateway: str) -> None:
    p = resolved(spec(gateway))
    router = gateway_config(p)["router_settings"]
    assert {router[k] for k in REDIS_ENV} == {f"os.environ/{v}" for v in REDIS_ENV.values()}
    values = chart_values(Target(p, "http://x/v1"))
    assert values["redis"] == {"enabled": True, "port": 6379,
                               "passwordSecret": {"secretName": "team-redis-password", "key": "password"}}
    assert values["gateway"]["env"]["REDIS_HOST"] == "team-redis"
    assert values["gateway"]["secretEnv"]["REDIS_PASSWORD"] == values["redis"]["passwordSecret"]
    assert len(p.notes) == 1 and "team-redis-password" in p.notes[0] and p.notes[0].startswith("note:")


def test_an_external_redis_is_used_and_not_deployed() -> None:
    p = resolved(spec("{redis: {host: redis.shared.svc, port: 6380, password: {secretName: r, key: k}}}"))
    values = chart_values(Target(p, "http://x/v1"))
    assert "redis" not in values
    env = values["gateway"]["env"]
    assert (env["REDIS_HOST"], env["REDIS_PORT"]) == ("redis.shared.svc", "6380")
    assert values["gateway"]["secretEnv"]["REDIS_PASSWORD"] == {"secretName": "r", "key": "k"}


def test_turning_redis_off_with_several_processes_warns(tmp_path: Path) -> None:
    path = tmp_path / "stack.yaml"
    path.write_text(spec("{replicas: 3, redis: {enabled: false}}"))
    result = CliRunner().invoke(cli, ["validate", str(path)])
    assert result.exit_code == 0, result.output
    assert "warning: gateway.redis.enabled is false with 3 processes" in result.stderr
    assert "3 times" in result.stderr


@pytest.mark.parametrize(("gateway", "extra", "path", "fix"), [
    ("{redis: {enabled: false, host: r.example}}", "", "gateway.redis.host", "remove host"),
    ("{}", ", limits: {}", "models[0].limits", "set rpm, tpm or both"),
    ("{}", ", limits: {rpm: 0}", "models[0].limits.rpm", ""),
])
def test_contradictions_are_refused_at_their_path(tmp_path: Path, gateway: str, extra: str, path: str,
                                                  fix: str) -> None:
    spec_path = tmp_path / "stack.yaml"
    spec_path.write_text(spec(gateway, extra))
    out = tmp_path / "out"
    result = CliRunner().invoke(cli, ["render", str(spec_path), "-o", str(out), "--no-manifests"])
    assert result.exit_code == 2, result.output
    assert f"{spec_path}:" in result.output and path in result.output and fix in result.output
    assert not out.exists()


def test_limits_become_the_deployments_rpm_and_tpm_under_the_strategy_that_enforces_them() -> None:
    p = resolved(spec(extra=", limits: {rpm: 60, tpm: 50000}"))
    config = gateway_config(p)
    params = config["model_list"][0]["litellm_params"]
    assert (params["rpm"], params["tpm"]) == (60, 50000)
    assert config["router_settings"]["routing_strategy"] == "usage-based-routing-v2"
    assert gateway_config(resolved(spec()))["router_settings"]["routing_strategy"] == "simple-shuffle"


def test_a_model_may_not_be_named_redis() -> None:
    text = spec().replace("name: small", "name: redis")
    with pytest.raises(Exception, match="reserved"):
        resolved(text)


def test_the_rendered_redis_runs_with_its_password_and_no_persistence(tmp_path: Path) -> None:
    path = tmp_path / "stack.yaml"
    path.write_text(spec())
    out = tmp_path / "out"
    result = CliRunner().invoke(cli, ["render", str(path), "-o", str(out)])
    assert result.exit_code == 0, result.output
    deployment = yaml.safe_load((out / "manifests" / "deployment-team-redis.yaml").read_text())
    container = deployment["spec"]["template"]["spec"]["containers"][0]
    args = container["args"]
    assert args[args.index("--requirepass") + 1] == "$(REDIS_PASSWORD)"
    assert args[args.index("--save") + 1] == "" and args[args.index("--appendonly") + 1] == "no"
    env = {e["name"]: e["valueFrom"]["secretKeyRef"] for e in container["env"]}
    assert env["REDIS_PASSWORD"] == {"name": "team-redis-password", "key": "password"}
    policy = yaml.safe_load((out / "manifests" / "networkpolicy-team-redis.yaml").read_text())
    allowed = policy["spec"]["ingress"][0]["from"][0]["podSelector"]["matchLabels"]
    assert allowed["app.kubernetes.io/component"] == "gateway"
