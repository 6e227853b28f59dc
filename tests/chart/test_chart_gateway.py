"""The LiteLLM gateway, its config, the AutoGen ConfigMap and the naming contract the gateway relies on."""

from __future__ import annotations

import json
from urllib.parse import urlparse

import pytest
import yaml

from .chartlib import CHART, by_kind, env_of, fullname, image_ref, one, render, scenario_values

CONFIG_PATH = "/etc/litellm/config.yaml"
DEFAULTS = yaml.safe_load((CHART / "values.yaml").read_text())


def gateway_of(helm: str, scenario: str, sets: tuple[str, ...] = ()) -> tuple[dict, list[dict], dict]:
    values = scenario_values(scenario)
    objs = render(helm, (scenario,), sets)
    return values, objs, one(objs, "Deployment", f"{fullname(values)}-gateway")


def test_gateway_deployment(helm: str, scenario: str) -> None:
    values, objs, dep = gateway_of(helm, scenario)
    g = values["gateway"]
    port = g.get("port", 4000)
    (c,) = dep["spec"]["template"]["spec"]["containers"]
    image = {**DEFAULTS["images"]["litellm"], **g.get("image", {})}
    assert c["image"] == image_ref(values, image)
    assert c["imagePullPolicy"] == image["pullPolicy"]
    assert dep["spec"]["replicas"] == g.get("replicas", 2)
    assert c["args"] == ["--config", CONFIG_PATH, "--port", str(port), "--num_workers", str(g.get("numWorkers", 1))]
    assert c["ports"] == [{"name": "http", "containerPort": port, "protocol": "TCP"}]
    assert c["livenessProbe"]["httpGet"] == {"path": "/health/liveliness", "port": "http"}
    assert c["readinessProbe"]["httpGet"] == {"path": "/health/readiness", "port": "http"}
    env = env_of(c)
    assert env["LITELLM_LOCAL_MODEL_COST_MAP"]["value"] == "True"
    key = g["masterKey"]
    assert env["LITELLM_MASTER_KEY"]["valueFrom"]["secretKeyRef"] == {
        "name": key["secretName"],
        "key": key.get("key", "master-key"),
    }
    for name, ref in g.get("secretEnv", {}).items():
        ref_out = {"name": ref["secretName"], "key": ref["key"]}
        assert env[name] == {"name": name, "valueFrom": {"secretKeyRef": ref_out}}
    for name, value in g.get("env", {}).items():
        assert env[name] == {"name": name, "value": str(value)}
    assert c["resources"] == g.get("resources", c["resources"])
    cm_name = f"{fullname(values)}-gateway"
    volume = {v["name"]: v for v in dep["spec"]["template"]["spec"]["volumes"]}["config"]
    assert volume["configMap"]["name"] == cm_name
    assert {"name": "config", "mountPath": "/etc/litellm", "readOnly": True} in c["volumeMounts"]
    svc = one(objs, "Service", f"{fullname(values)}-gateway")
    assert svc["spec"]["ports"] == [{"name": "http", "port": port, "targetPort": "http", "protocol": "TCP"}]
    assert svc["spec"]["selector"] == dep["spec"]["selector"]["matchLabels"]


def test_config_map_holds_exactly_gateway_config(helm: str, scenario: str) -> None:
    values, objs, _ = gateway_of(helm, scenario)
    cm = one(objs, "ConfigMap", f"{fullname(values)}-gateway")
    assert yaml.safe_load(cm["data"]["config.yaml"]) == values["gateway"].get("config", {})


def test_config_change_rolls_gateway_pods(helm: str) -> None:
    def checksum(*sets: str) -> str:
        _, _, dep = gateway_of(helm, "01-kind-cpu.yaml", sets)
        return dep["spec"]["template"]["metadata"]["annotations"]["checksum/config"]

    base = checksum()
    assert checksum("gateway.config.router_settings.num_retries=5") != base
    assert checksum("gateway.config.litellm_settings.drop_params=true") != base
    # Only the config moves it: scaling must not restart every gateway pod.
    assert checksum("gateway.replicas=3") == base


def test_the_config_map_carries_each_module_of_the_charts_that_the_callbacks_name(helm: str) -> None:
    """LiteLLM loads a callback `module.instance` from beside its config: the ConfigMap carries files/<module>.py
    when the chart has it (stackgen's wake check), and nothing for LiteLLM's own callbacks (prometheus)."""
    def data(callbacks: str) -> dict[str, str]:
        values, objs, _ = gateway_of(helm, "01-kind-cpu.yaml", (f"gateway.config.litellm_settings.callbacks={callbacks}",))
        return dict(one(objs, "ConfigMap", f"{fullname(values)}-gateway")["data"])

    hook = (CHART / "files" / "stackgen_wake.py").read_text()
    assert set(data("{prometheus}")) == {"config.yaml"}
    assert data("{prometheus,stackgen_wake.check}")["stackgen_wake.py"] == hook


def test_ingress(helm: str) -> None:
    values, objs, _ = gateway_of(helm, "02-gpu-fleet.yaml")
    ing_values = values["gateway"]["ingress"]
    name = f"{fullname(values)}-gateway"
    ing = one(objs, "Ingress", name)
    assert ing["apiVersion"] == "networking.k8s.io/v1"
    assert ing["spec"]["ingressClassName"] == ing_values["className"]
    assert ing["spec"]["tls"] == [{"hosts": [ing_values["host"]], "secretName": ing_values["tlsSecretName"]}]
    (rule,) = ing["spec"]["rules"]
    assert rule["host"] == ing_values["host"]
    (path,) = rule["http"]["paths"]
    assert path["backend"]["service"] == {"name": name, "port": {"name": "http"}}
    assert ing["metadata"]["annotations"] == ing_values["annotations"]
    # Off by default; on without host or TLS it still renders a valid catch-all.
    assert not by_kind(render(helm, ("01-kind-cpu.yaml",)), "Ingress")
    bare = one(render(helm, ("04-external-only.yaml",)), "Ingress", "edge-gateway")
    assert "tls" not in bare["spec"] and "host" not in bare["spec"]["rules"][0]


def test_pod_disruption_budgets(helm: str, scenario: str) -> None:
    values, objs, _ = gateway_of(helm, scenario)
    pdbs = by_kind(objs, "PodDisruptionBudget")
    deployments = by_kind(objs, "Deployment")
    expected = {f"{fullname(values)}-{key}" for key in values.get("models", {})}
    if values["gateway"].get("podDisruptionBudget", {}).get("enabled", True):
        expected.add(f"{fullname(values)}-gateway")
    assert set(pdbs) == expected
    for name, pdb in pdbs.items():
        assert pdb["spec"]["maxUnavailable"] == 1 and "minAvailable" not in pdb["spec"]
        assert pdb["spec"]["selector"] == deployments[name]["spec"]["selector"]


def test_model_services_match_the_gateway_config(helm: str, scenario: str) -> None:
    values, objs, _ = gateway_of(helm, scenario)
    services = by_kind(objs, "Service")
    deployments = by_kind(objs, "Deployment")
    for key in values.get("models", {}):
        name = f"{fullname(values)}-{key}"
        svc = services[name]
        assert svc["spec"]["ports"] == [{"name": "http", "port": 80, "targetPort": "http", "protocol": "TCP"}]
        assert svc["spec"]["selector"] == deployments[name]["spec"]["selector"]["matchLabels"]
    # Every in-cluster api_base the gateway uses must name a model Service the chart renders.
    for entry in values["gateway"].get("config", {}).get("model_list", []):
        base = entry["litellm_params"].get("api_base")
        host = urlparse(base).hostname if base else None
        if host and not host[0].isdigit():
            assert host in services, f"{entry['model_name']} routes to {base}, no such Service"
            assert urlparse(base).port in (None, 80) and urlparse(base).path == "/v1"


@pytest.mark.parametrize("scenario", ["01-kind-cpu.yaml", "02-gpu-fleet.yaml", "04-external-only.yaml"])
def test_autogen_configmap(helm: str, scenario: str) -> None:
    values, objs, _ = gateway_of(helm, scenario)
    autogen = values.get("autogen", {})
    maps = by_kind(objs, "ConfigMap")
    name = f"{fullname(values)}-autogen"
    if not (autogen.get("oaiConfigList") or autogen.get("modelClients")):
        assert name not in maps
        return
    data = maps[name]["data"]
    expected = {
        "OAI_CONFIG_LIST": autogen.get("oaiConfigList"),
        "model_clients.json": autogen.get("modelClients"),
    }
    assert set(data) == {k for k, v in expected.items() if v}
    for key in data:
        assert json.loads(data[key]) == expected[key]
