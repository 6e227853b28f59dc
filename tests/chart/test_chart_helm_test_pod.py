"""The `helm test` pod: its wiring, and its script run against a real LiteLLM proxy serving the chart's config."""

from __future__ import annotations

import os
import secrets
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml

from stackgen.localstack import local_gateway

from .chartlib import CHART, CI_DIR, by_kind, env_of, fullname, image_ref, one, render, scenario_values

FLEET = "02-gpu-fleet.yaml"
DEFAULTS = yaml.safe_load((CHART / "values.yaml").read_text())


def rendered_test_pod(helm: str, scenario: str, values_files: tuple[str, ...] = ()) -> dict:
    values = scenario_values(scenario)
    objs = render(helm, values_files or (scenario,))
    name = f"{fullname(values)}-test"
    if not values.get("helmTest", {}).get("enabled", True):
        assert name not in by_kind(objs, "Pod")
        return {}
    return one(objs, "Pod", name)


def test_helm_test_pod_wiring(helm: str, scenario: str) -> None:
    pod = rendered_test_pod(helm, scenario)
    if not pod:
        return
    values = scenario_values(scenario)
    g = values["gateway"]
    assert pod["metadata"]["annotations"]["helm.sh/hook"] == "test"
    assert pod["spec"]["restartPolicy"] == "Never"
    assert pod["spec"]["securityContext"]["runAsNonRoot"] is True
    (c,) = pod["spec"]["containers"]
    image = DEFAULTS["images"]["test"]
    assert c["image"] == image_ref(values, image)
    assert c["command"] == ["/bin/sh", "-c"] and "/v1/models" in c["args"][0]
    env = env_of(c)
    assert env["GATEWAY_URL"]["value"] == f"http://{fullname(values)}-gateway:{g.get('port', 4000)}"
    names = [m["model_name"] for m in g.get("config", {}).get("model_list", [])]
    assert env["EXPECTED_MODELS"]["value"].split("\n") == (names or [""])
    ref = env["LITELLM_MASTER_KEY"]["valueFrom"]["secretKeyRef"]
    assert ref == {"name": g["masterKey"]["secretName"], "key": g["masterKey"].get("key", "master-key")}


@pytest.fixture(scope="session")
def fleet_gateway() -> Iterator[tuple[str, str]]:
    """A real LiteLLM proxy serving the fleet gateway's rendered ConfigMap; (url, master key)."""
    values = scenario_values(FLEET)
    objs = render("helm4", (FLEET,))
    name = f"{fullname(values)}-gateway"
    config = yaml.safe_load(one(objs, "ConfigMap", name)["data"]["config.yaml"])
    # The proxy runs with the flags the container passes (the same ones local_gateway uses).
    (container,) = one(objs, "Deployment", name)["spec"]["template"]["spec"]["containers"]
    assert container["args"][:2] == ["--config", "/etc/litellm/config.yaml"] and "--port" in container["args"]
    master_key = f"sk-{secrets.token_hex(16)}"
    env = {"LITELLM_MASTER_KEY": master_key}
    # Provider keys the config names as os.environ/...; never used, since nothing is called.
    env.update({k: "unused-placeholder" for k in values["gateway"].get("secretEnv", {})})
    with local_gateway(config, env) as gateway:
        yield gateway.url, master_key


def run_test_pod(pod: dict, url: str, master_key: str) -> subprocess.CompletedProcess[str]:
    (c,) = pod["spec"]["containers"]
    env = {e["name"]: e["value"] for e in c["env"] if "value" in e}
    env.update(GATEWAY_URL=url, LITELLM_MASTER_KEY=master_key, PATH=os.environ["PATH"])
    return subprocess.run([*c["command"], *c["args"]], env=env, capture_output=True, text=True, timeout=120)


def test_helm_test_passes_when_every_model_is_listed(helm: str, fleet_gateway: tuple[str, str]) -> None:
    url, key = fleet_gateway
    proc = run_test_pod(rendered_test_pod(helm, FLEET), url, key)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    for entry in scenario_values(FLEET)["gateway"]["config"]["model_list"]:
        assert f"listed: {entry['model_name']}" in proc.stdout


def test_helm_test_fails_naming_missing_models(helm: str, fleet_gateway: tuple[str, str], tmp_path: Path) -> None:
    # The pod expects two models the running gateway was never configured with.
    values = scenario_values(FLEET)
    for ghost in ("ghost-model", "qwen2.5:72b"):
        values["gateway"]["config"]["model_list"].append(
            {"model_name": ghost, "litellm_params": {"model": f"openai/{ghost}", "api_key": "none"}}
        )
    extra = tmp_path / "ghosts.yaml"
    extra.write_text(yaml.safe_dump(values))
    url, key = fleet_gateway
    proc = run_test_pod(rendered_test_pod(helm, FLEET, (str(CI_DIR / FLEET), str(extra))), url, key)
    assert proc.returncode != 0
    missing_line = next(line for line in proc.stderr.splitlines() if "missing" in line)
    assert missing_line.endswith(": ghost-model qwen2.5:72b"), proc.stderr
