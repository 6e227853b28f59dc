"""Routing across replicas, as resolved from the spec: which models get a router, where the gateway then
sends them, what the chart renders for the router (discovery by the model's own pod labels, RBAC that reads
pods and nothing else, a NetworkPolicy path from the router to the pods), and the conversation id every
generated client sends. (tests/engines/test_routing.py measures the hit rate on real vLLM servers; the
node tier runs the router's discovery against a real API server.)"""

from __future__ import annotations

import re
from typing import Any

import pytest
import yaml

from stackgen import monitoring, routing
from stackgen.agents.base import load_module
from stackgen.errors import StackgenError
from stackgen.load import load_text
from stackgen.plan import plan
from stackgen.render import render_files

SPEC = """\
name: team
namespace: llm
gateway: {{replicas: 1}}
monitoring: {{enabled: true}}
profiles:
  cpu: {{cpu: "2", memory: 8Gi}}
models:
  - {{name: qwen, engine: {engine}, model: {model}, profile: cpu{extra}}}
  - {{name: solo, engine: vllm, model: Qwen/Qwen2.5-0.5B-Instruct, profile: cpu}}
"""
MODELS = {"vllm": "Qwen/Qwen2.5-0.5B-Instruct", "ollama": '"qwen2.5:0.5b"'}


def spec(extra: str = ", replicas: 2", engine: str = "vllm") -> str:
    return SPEC.format(engine=engine, model=MODELS[engine], extra=extra)


def manifests(text: str) -> dict[str, Any]:
    files = render_files(load_text(text, "stack.yaml"), with_manifests=True)
    return {rel.removeprefix("manifests/"): yaml.safe_load(body) for rel, body in files.items()
            if rel.startswith("manifests/") and rel.endswith(".yaml")}


@pytest.mark.parametrize("extra", [", replicas: 2", ", autoscaling: {maxReplicas: 3}"])
def test_several_replicas_are_served_through_a_router(extra: str) -> None:
    planned = plan(load_text(spec(extra)))
    qwen, solo = planned.served
    assert qwen.router and qwen.router.policy == routing.DEFAULT_POLICY
    assert qwen.api_base == "http://team-qwen-router/v1"
    # One replica has nothing to choose between: no router, the Service as before.
    assert solo.router is None and solo.api_base == "http://team-solo/v1"


def test_the_gateway_forwards_conversation_ids_to_routed_models_only() -> None:
    files = render_files(load_text(spec()), with_manifests=False)
    config = yaml.safe_load(files["litellm/config.yaml"])
    assert config["litellm_settings"]["model_group_settings"] == {"forward_client_headers_to_llm_api": ["qwen"]}
    assert "model_group_settings" not in yaml.safe_load(
        render_files(load_text(spec(", replicas: 1")), with_manifests=False)["litellm/config.yaml"])["litellm_settings"]


def test_the_router_discovers_exactly_the_models_pods_with_read_only_rbac() -> None:
    objects = manifests(spec())
    router = objects["deployment-team-qwen-router.yaml"]["spec"]["template"]["spec"]
    model = objects["deployment-team-qwen.yaml"]["spec"]["template"]
    args = router["containers"][0]["args"]
    selector = args[args.index("--selector") + 1: args.index("--service-discovery-port")]
    # Every label the router selects by is on the model's pods, and the router's own pods do not match.
    labels = model["metadata"]["labels"]
    assert selector and all(labels[k] == v for k, v in (s.split("=", 1) for s in selector))
    router_labels = objects["deployment-team-qwen-router.yaml"]["spec"]["template"]["metadata"]["labels"]
    assert not all(router_labels.get(k) == v for k, v in (s.split("=", 1) for s in selector))
    assert args[args.index("--service-discovery-port") + 1] == str(model["spec"]["containers"][0]["ports"][0]["containerPort"])
    # Its own namespace, from the downward API: the same manifest serves any namespace it is applied in.
    assert args[args.index("--service-discovery-namespace") + 1] == "$(POD_NAMESPACE)"
    env = router["containers"][0]["env"]
    assert env == [{"name": "POD_NAMESPACE", "valueFrom": {"fieldRef": {"fieldPath": "metadata.namespace"}}}]
    assert args[args.index("--policy") + 1] == "consistent_hash"
    assert router["serviceAccountName"] == "team-qwen-router" and router["automountServiceAccountToken"] is True
    role = objects["role-team-qwen-router.yaml"]
    assert role["rules"] == [{"apiGroups": [""], "resources": ["pods"], "verbs": ["get", "list", "watch"]}]
    # No other pod of the stack holds an API token.
    others = [doc for rel, doc in objects.items() if rel.startswith("deployment-") and "router" not in rel]
    assert all(d["spec"]["template"]["spec"]["automountServiceAccountToken"] is False for d in others)


def test_network_policies_let_the_router_and_only_it_beside_the_gateway_reach_the_replicas() -> None:
    objects = manifests(spec())
    peers = objects["networkpolicy-team-qwen.yaml"]["spec"]["ingress"][0]["from"]
    assert {p["podSelector"]["matchLabels"]["app.kubernetes.io/component"] for p in peers} == {"gateway", "qwen-router"}
    solo = objects["networkpolicy-team-solo.yaml"]["spec"]["ingress"][0]["from"]
    assert [p["podSelector"]["matchLabels"]["app.kubernetes.io/component"] for p in solo] == ["gateway"]
    router = objects["networkpolicy-team-qwen-router.yaml"]["spec"]["ingress"]
    assert router[0]["from"][0]["podSelector"]["matchLabels"]["app.kubernetes.io/component"] == "gateway"


def test_routing_service_keeps_the_random_spread_and_says_so() -> None:
    planned = plan(load_text(spec(", replicas: 2, routing: service")))
    assert planned.served[0].router is None and planned.served[0].api_base == "http://team-qwen/v1"
    assert any("models[0]: the replicas of qwen share requests through their Service at random" in n
               for n in planned.notes)


def test_engines_the_router_is_not_proven_on_are_not_routed_and_refuse_a_policy() -> None:
    planned = plan(load_text(spec(", replicas: 2", engine="ollama")))
    assert planned.served[0].router is None
    assert any("no router is proven on ollama" in n for n in planned.notes)
    with pytest.raises(StackgenError) as refused:
        plan(load_text(spec(", replicas: 2, routing: consistent_hash", engine="ollama")))
    [problem] = refused.value.problems
    assert problem.path == "models[0].routing" and "not ollama" in problem.message


def test_a_model_named_like_another_models_router_is_refused() -> None:
    text = spec() + "  - {name: qwen-router, engine: vllm, model: Qwen/Qwen2.5-0.5B-Instruct, profile: cpu}\n"
    with pytest.raises(StackgenError) as refused:
        plan(load_text(text))
    assert [p.path for p in refused.value.problems] == ["models[2].name"]


def test_the_routers_name_must_fit_63_characters() -> None:
    long = "q" * 30
    text = spec().replace("name: team", "name: " + "t" * 26).replace("name: qwen,", f"name: {long},")
    with pytest.raises(StackgenError) as refused:
        plan(load_text(text))
    assert any(p.path == "models[0].name" and "-router" in p.message for p in refused.value.problems)


def test_the_hit_rate_is_alerted_on_and_drawn() -> None:
    planned = plan(load_text(spec()))
    rules = {r["alert"]: r for g in monitoring.alert_rules(planned) for r in g["rules"]}
    expr = rules["StackgenPrefixCacheHitRateLow"]["expr"]
    assert "vllm:prefix_cache_hits_total" in expr and "vllm:prefix_cache_queries_total" in expr
    assert any(title == "Prefix cache hit rate" for title, _, _ in monitoring.panels(planned))


def test_every_generated_client_sends_one_conversation_id(tmp_path: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OPENAI_API_KEY", "k")
    files = render_files(load_text(spec()), "http://127.0.0.1:9/v1", with_manifests=False,
                         frameworks=("langchain", "openai-agents", "agent-framework", "ag2"))
    for rel, text in files.items():
        if rel.endswith(".py"):
            (tmp_path / rel).parent.mkdir(parents=True, exist_ok=True)
            (tmp_path / rel).write_text(text)
    langchain = load_module(tmp_path / "agents/langchain_models.py")
    first, second = langchain.chat_model("qwen"), langchain.chat_model("qwen")
    ids = {first.default_headers[routing.SESSION_HEADER], second.default_headers[routing.SESSION_HEADER]}
    assert len(ids) == 2 and all(re.fullmatch(r"[0-9a-f]{32}", i) for i in ids)
    assert langchain.chat_model("qwen", conversation="c-1").default_headers[routing.SESSION_HEADER] == "c-1"
    agents_sdk = load_module(tmp_path / "agents/openai_agents_models.py")
    assert agents_sdk.model("qwen", "c-2")._client.default_headers[routing.SESSION_HEADER] == "c-2"  # noqa: SLF001 - the SDK keeps its client private
    framework = load_module(tmp_path / "agents/agent_framework_models.py")
    assert framework.client("qwen", "c-3").default_headers[routing.SESSION_HEADER] == "c-3"
    ag2 = load_module(tmp_path / "agents/ag2_models.py")
    assert ag2.config("qwen", "c-4").default_headers[routing.SESSION_HEADER] == "c-4"
