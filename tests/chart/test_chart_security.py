"""Labels, pod security, Secrets handling and NetworkPolicies across every rendered object."""

from __future__ import annotations

import re

import yaml

from .chartlib import CHART, RELEASE, by_kind, env_of, fullname, pod_specs, render, scenario_values, template_error

CHART_META = yaml.safe_load((CHART / "Chart.yaml").read_text())
SELECTOR_KEYS = {"app.kubernetes.io/name", "app.kubernetes.io/instance", "app.kubernetes.io/component"}
# Env vars that carry secret values wherever they appear.
SECRET_ENV = {"LITELLM_MASTER_KEY", "HF_TOKEN"}


def component_of(values: dict, name: str) -> str:
    """An object's component is its name past the prefix; a preload Job's, without the hash of what it downloads."""
    return re.sub(r"-preload-[0-9a-f]{6}$", "-preload", name.removeprefix(f"{fullname(values)}-"))


def test_recommended_labels_on_every_object(helm: str, scenario: str) -> None:
    values = scenario_values(scenario)
    for obj in render(helm, (scenario,)):
        name = obj["metadata"]["name"]
        labels = obj["metadata"]["labels"]
        assert labels["app.kubernetes.io/name"] == CHART_META["name"]
        assert labels["app.kubernetes.io/instance"] == RELEASE
        assert labels["app.kubernetes.io/component"] == component_of(values, name)
        assert labels["app.kubernetes.io/version"] == str(CHART_META["appVersion"])
        assert labels["app.kubernetes.io/part-of"] == CHART_META["name"]
        assert labels["app.kubernetes.io/managed-by"] == "Helm"
        assert labels["helm.sh/chart"] == f"{CHART_META['name']}-{CHART_META['version']}"
        for key, value in values.get("commonLabels", {}).items():
            assert labels[key] == value, (name, key)
        assert name.startswith(f"{fullname(values)}-") and len(name) <= 63


def test_selectors_are_name_instance_component_only(helm: str, scenario: str) -> None:
    for name, dep in by_kind(render(helm, (scenario,)), "Deployment").items():
        selector = dep["spec"]["selector"]["matchLabels"]
        assert set(selector) == SELECTOR_KEYS, name
        pod_labels = dep["spec"]["template"]["metadata"]["labels"]
        assert selector.items() <= pod_labels.items()
        # Chart upgrades alone must not restart model servers (and re-download their weights).
        assert "helm.sh/chart" not in pod_labels and "app.kubernetes.io/version" not in pod_labels


def test_pods_are_hardened(helm: str, scenario: str) -> None:
    """The restricted Pod Security level, and a read-only root filesystem, on every pod of every scenario (the
    API server's own check of the same level runs in tests/cluster and tests/node)."""
    for name, spec in pod_specs(render(helm, (scenario,))).items():
        assert spec["automountServiceAccountToken"] is False, name
        pod = spec["securityContext"]
        pod_seccomp = pod.get("seccompProfile", {}).get("type")
        for c in spec.get("initContainers", []) + spec["containers"]:
            sc = c["securityContext"]
            assert sc["allowPrivilegeEscalation"] is False, (name, c["name"])
            assert sc["capabilities"] == {"drop": ["ALL"]}, (name, c["name"])
            assert "RuntimeDefault" in (sc.get("seccompProfile", {}).get("type"), pod_seccomp)
            assert not sc.get("privileged") and "add" not in sc["capabilities"]
            assert sc["readOnlyRootFilesystem"] is True, (name, c["name"])
            assert sc.get("runAsNonRoot", pod.get("runAsNonRoot")) is True, (name, c["name"])
            assert sc.get("runAsUser", pod.get("runAsUser")) not in (None, 0), (name, c["name"])
        assert not any("hostPath" in v for v in spec.get("volumes", [])), name
        assert not (spec.get("hostNetwork") or spec.get("hostPID") or spec.get("hostIPC")), name


def test_secrets_are_referenced_never_rendered(helm: str, scenario: str) -> None:
    values = scenario_values(scenario)
    objs = render(helm, (scenario,))
    assert not by_kind(objs, "Secret"), "the chart must not create Secrets"
    secret_names = set(SECRET_ENV) | set(values["gateway"].get("secretEnv", {}))
    for model in values.get("models", {}).values():
        secret_names |= set(model.get("secretEnv", {}))
    seen = set()
    for name, spec in pod_specs(objs).items():
        for c in spec.get("initContainers", []) + spec["containers"]:
            for env_name, env in env_of(c).items():
                if env_name in secret_names:
                    assert "value" not in env and "secretKeyRef" in env["valueFrom"], (name, env_name)
                    seen.add(env_name)
    assert "LITELLM_MASTER_KEY" in seen


def test_network_policies_admit_only_the_gateway(helm: str, scenario: str) -> None:
    values = scenario_values(scenario)
    objs = render(helm, (scenario,))
    policies = by_kind(objs, "NetworkPolicy")
    models = values.get("models", {})
    if not values.get("networkPolicy", {}).get("enabled", True):
        assert not policies
        return
    deployments = by_kind(objs, "Deployment")
    gateway = f"{fullname(values)}-gateway"
    gateway_selector = deployments[gateway]["spec"]["selector"]
    # Every server the chart runs is selected by a policy of its own name.
    assert set(policies) == set(deployments) == {gateway} | {f"{fullname(values)}-{key}" for key in models}
    for name, policy in policies.items():
        dep = deployments[name]
        assert policy["spec"]["podSelector"] == dep["spec"]["selector"]
        assert policy["spec"]["policyTypes"] == ["Ingress"]
        (rule,) = policy["spec"]["ingress"]
        port = dep["spec"]["template"]["spec"]["containers"][0]["ports"][0]["containerPort"]
        assert rule["ports"] == [{"protocol": "TCP", "port": port}]
        # The gateway takes calls from anywhere on its port (networkPolicy.gatewayFrom is empty), a model
        # server from the gateway alone.
        assert rule.get("from") == (None if name == gateway else [{"podSelector": gateway_selector}]), name


def test_too_long_object_names_fail_instead_of_truncating(helm: str) -> None:
    # The gateway config names Services literally: a shortened name would route nowhere.
    long_key = "a-model-key-that-is-long-enough-to-overflow"
    stderr = template_error(
        helm,
        ("03-minimal.yaml",),
        ("fullnameOverride=a-stack-name-that-is-quite-long", f"models.{long_key}.engine=vllm", f"models.{long_key}.model=x"),
    )
    assert "longer than 63" in stderr and long_key in stderr


def test_the_gateway_takes_calls_only_from_the_peers_named(helm: str) -> None:
    objs = render(helm, ("01-kind-cpu.yaml",), ("networkPolicy.gatewayFrom[0].namespaceSelector.matchLabels.team=agents",))
    policy = by_kind(objs, "NetworkPolicy")["kind-cpu-gateway"]
    (rule,) = policy["spec"]["ingress"]
    assert rule["from"] == [{"namespaceSelector": {"matchLabels": {"team": "agents"}}}]
    assert rule["ports"] == [{"protocol": "TCP", "port": 4000}]
