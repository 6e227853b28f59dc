"""Semantic invariants of what a spec renders, checked as properties over generated valid specs (issue 35).

Specs come from `tests.support.specs.stacks()`: valid by construction, any subset of its features on, or all of
them with a model of every engine at once (the module docstring there lists them); `EVERYTHING` below is one
such spec written out, checked every run. Each spec is rendered once with its manifests, and the properties
are read off the objects `helm template` rendered, as the cluster would read them:

1. every in-cluster model runs the replicas its spec asks for (the Deployment's spec.replicas), or, autoscaled,
   has no replicas field and one KEDA ScaledObject on its Deployment with the spec's min and max;
2. every model the gateway lists (its ConfigMap's model_list, which is litellm/config.yaml) reaches, through the
   Service its api_base names, exactly that model's pods: through its router when the spec's replicas or
   autoscaling call for one (the router Service selects the router's pods, and the router's discovery selects
   the model's pods, on the model's port), on the port the server listens on (the Service's targetPort resolves
   to the server container's port, which is the one its command line or the spec says); a model that sleeps
   (minReplicas 0) through KEDA's HTTP add-on: its one InterceptorRoute, named by the gateway's route header,
   targets that Service, its ScaledObject wakes on that route, and every hop waits the wake time more; an
   ingress-nginx Ingress keeps a call open as long as the gateway waits for any model's answer;
3. the NetworkPolicies admit the gateway's pods to every server, each router to its model's servers, the
   gateway to each router and to Redis, and the namespace of the Prometheus that scrapes (PodMonitor) or
   scales (ScaledObject) a model to its port, and the HTTP add-on's namespace to the router (else the server) of a
   model that sleeps; nothing else in the stack's namespace, and no other namespace, reaches a model server's port;
4. every Secret a pod reads (env secretKeyRef, envFrom, volumes, image pull secrets) is one the spec names for
   that pod's component, with the spec's key (masterKey, the Redis password, hfToken, apiKey, env secret
   references, or their documented defaults), and so are the ServiceMonitor's credentials and the Ingress's
   certificate: none invented;
5. every object name is valid for its kind (63 characters and a DNS label for Services, which must also start
   with a letter, and for the workloads whose name becomes pod names or a label; a DNS subdomain of 253 for the
   rest), unique for its kind, and every label value is one Kubernetes takes;
6. every PromQL expression (the ScaledObjects' queries, the PrometheusRule's alerts, the dashboard's panels)
   selects, in each of its vector selectors, the namespace the release is installed in.

Not tested here: that the plain manifests are the objects `helm template` renders. They are by construction:
stackgen.manifests runs the real `helm template` on the rendered values and only splits its output, one object
per file (`split` refuses two objects of one kind and name).

Hypothesis draws the specs derandomized, without a database, and shrinks a failure to a small spec. Every
invariant test is seeded alike (`@seed`, which fixes the draws as derandomize does), so all six draw the same
specs and one helm run serves them all: the module takes about as long as one test's examples (about 20 s).
A search that finds a failure shrinks it for minutes (every candidate is a helm run), so each counterexample
found is kept in COUNTEREXAMPLES, shrunk, and checked first: while it fails, its test fails at once, without a
search. The last test holds the strategy to drawing valid specs (`validate` refuses under 2%) with every
feature.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar
from urllib.parse import urlsplit

import pytest
import yaml
from click.testing import CliRunner
from hypothesis import HealthCheck, assume, example, given, seed, settings

from stackgen.cli import cli
from stackgen.errors import StackgenError
from stackgen.load import load_text
from stackgen.plan import plan
from stackgen.render import render_files
from stackgen.secretlist import TLS_KEYS, needed
from stackgen.spec import Stack
from tests.support import specs
from tests.support.objects import (
    DNS_1035_LABEL,
    DNS_1123_LABEL,
    DNS_1123_SUBDOMAIN,
    LABEL_VALUE,
    POD_KINDS,
    Obj,
    Pod,
    admits,
    admitting,
    made_by_lws,
    matches,
    name,
    named,
    of_kind,
    pods,
    secret_refs,
    service_selects,
)
from tests.support.promql import vector_selectors
from tests.support.specs import Spec

EXAMPLES = 30  # under half a second of helm each (one render serves all six): the module stays well under a minute
SEED = 35  # issue 35; any constant will do
F = TypeVar("F", bound=Callable[..., None])


def invariant(test: F) -> F:
    """One property over the shared draws: the same seed and settings for every invariant; EVERYTHING and the
    counterexamples found so far first (a failing one fails the test at once, without a search)."""
    decorated = settings(max_examples=EXAMPLES, deadline=None, derandomize=True, database=None,
                         suppress_health_check=[HealthCheck.too_slow])(test)
    for spec in reversed([EVERYTHING, *COUNTEREXAMPLES]):
        decorated = example(spec=spec)(decorated)
    return seed(SEED)(given(spec=specs.stacks())(decorated))  # type: ignore[return-value]


SECRET = {"secretName": "shared", "key": "token"}
# Every engine and every feature at once, each the way a user writes it.
EVERYTHING: Spec = {
    "name": "every", "namespace": "llm",
    "gateway": {"replicas": 3, "numWorkers": 2, "masterKey": {"secretName": "gateway-key", "key": "master-key"},
                "redis": {"password": {"secretName": "redis-auth", "key": "password"}},
                "ingress": {"host": "agents.example.com", "className": "nginx", "tlsSecretName": "agents-tls"}},
    "monitoring": {"enabled": True, "labels": {"release": "kube-prometheus-stack"},
                   "prometheusNamespace": "observability"},
    "mirror": {"registry": "registry.internal:5000", "insecure": True, "huggingFace": "http://hf.internal:8090"},
    "profiles": {p: specs.PROFILES[p] for p in ("cpu", "l4", "mi300")},
    "models": [
        {"name": "coder", **specs.BASES["vllm-cpu"], "toolCalling": True, "fallbacks": ["small"],
         "autoscaling": {"minReplicas": 0, "maxReplicas": 3, "targetQueue": 4, "idleSeconds": 1800,
                         "wakeSeconds": 900, "prometheusUrl": "http://prometheus.monitoring.svc:9090",
                         "interceptorUrl": "http://keda-add-ons-http-interceptor-proxy.keda.svc:8080"},
         "adapters": [{"name": "sql-agent", "source": "my-org/sql-lora", "rank": 16},
                      {"name": "support", "source": "/root/.cache/huggingface/support", "rank": 64}],
         "cache": {"type": "persistentVolumeClaim", "size": "20Gi", "accessModes": ["ReadWriteMany"], "preload": True},
         "env": {"SERVICE_TOKEN": SECRET}, "limits": {"rpm": 600}},
        {"name": "qwen-gpu", **specs.BASES["vllm-nvidia"], "replicas": 3, "routing": "sticky_least_loaded",
         "hfToken": {"secretName": "hf-token", "key": "token"}},
        {"name": "llama", **specs.BASES["vllm-amd"], "replicas": 2, "routing": "service",
         "cache": {"type": "persistentVolumeClaim", "accessModes": ["ReadWriteOnce"]}},
        {"name": "small", **specs.BASES["ollama"], "replicas": 2, "routing": "service"},
        {"name": "gguf", **specs.BASES["llamacpp"], "hfToken": SECRET, "cache": {"type": "persistentVolumeClaim"}},
        {"name": "byo", **specs.BASES["custom"], "port": 9000, "replicas": 2, "env": {"LOG_LEVEL": "debug"}},
        {"name": "cloud", "engine": "external", "provider": "mistral", "model": "mistral-large-latest",
         "apiKey": {"secretName": "provider-keys", "key": "mistral"}, "baseUrl": "http://mistral-proxy.internal/v1"},
        {"name": "desk", "engine": "external", "baseUrl": "http://10.0.0.5:1234/v1"},
    ],
}


CPU_VLLM = specs.BASES["vllm-cpu"]
# Counterexamples the search found (shrunk by hypothesis, then by hand to what still fails), kept so that every run
# checks them first while they fail. Those found so far are refused by `validate` now (REFUSED, below).
COUNTEREXAMPLES: list[Spec] = []
# The counterexamples the search found on 2026-12-06, which `validate` refuses since, and the refusal each gets.
REFUSED: list[tuple[Spec, str, str]] = [
    # 3: the Prometheus that scrapes the model lives in the stack's own namespace (monitoring.prometheusNamespace
    # defaults to `monitoring`; an autoscaling prometheusUrl in the stack's namespace does the same), so the
    # model's NetworkPolicy admitted a namespaceSelector of that namespace: every pod of the namespace, not only
    # the gateway, reached the server's port.
    ({"name": "s", "namespace": "monitoring", "gateway": {"replicas": 1}, "monitoring": {"enabled": True},
      "profiles": {"cpu": specs.PROFILES["cpu"]}, "models": [{"name": "coder", **CPU_VLLM}]},
     "monitoring.prometheusNamespace", "Prometheus in the stack's own namespace (monitoring)"),
    # 2: a model named after another's preload Job: the Job's pods carry app.kubernetes.io/component
    # `coder-preload`, the labels of model `coder-preload`'s pods, so that model's router discovered the Job's pod
    # among its replicas (its Service, NetworkPolicy and PodDisruptionBudget selected the Job's pod too).
    ({"name": "s", "namespace": "llm", "gateway": {"replicas": 1}, "profiles": {"cpu": specs.PROFILES["cpu"]},
      "models": [{"name": "coder", **CPU_VLLM, "cache": {"type": "persistentVolumeClaim", "preload": True}},
                 {"name": "coder-preload", **CPU_VLLM, "replicas": 2}]},
     "models[1].name", "'coder-preload' names the preload Job of model 'coder'"),
    # Found reading LWS's controller while writing tests/node/test_groups.py, not by the search, which checks it now:
    # LWS makes a group's headless Service only if no Service of its name exists. The chart's Service for the leaders
    # took the shared one's name, so the group's pods could not resolve their leader; per-group Services mend that,
    # and a model named after one of them is refused.
    ({"name": "s", "namespace": "llm", "gateway": {"replicas": 1},
      "profiles": {"l4": specs.PROFILES["l4"], "cpu": specs.PROFILES["cpu"]},
      "models": [{"name": "big", **specs.BASES["vllm-nvidia"], "nodesPerReplica": 2},
                 {"name": "big-0", **CPU_VLLM}]},
     "models[1].name", "'big-0' names the headless Service LWS makes for group 0 of model 'big'"),
]


@pytest.mark.parametrize(("spec", "path", "message"), REFUSED, ids=["prometheus-in-own-namespace", "preload-twin",
                                                                     "group-service-twin"])
def test_the_counterexamples_found_are_refused_with_the_reason(spec: Spec, path: str, message: str,
                                                               tmp_path: Path) -> None:
    source = tmp_path / "stack.yaml"
    source.write_text(yaml.safe_dump(spec, sort_keys=False))
    result = CliRunner().invoke(cli, ["validate", str(source)])
    assert result.exit_code == 2, result.output
    assert any(f": {path}: {message}" in line for line in result.output.splitlines()), result.output


# --- one render per spec --------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Rendered:
    spec: Spec
    stack: Stack
    objects: list[Obj]
    files: dict[str, str]

    @property
    def ns(self) -> str:
        return self.stack.namespace

    def pods(self) -> list[Pod]:
        return pods(self.objects, self.ns)

    def workload(self, kind: str, object_name: str) -> Pod:
        found = [p for p in self.pods() if p.owner == f"{kind}/{object_name}"]
        assert len(found) == 1, f"no {kind} {object_name} among {[p.owner for p in self.pods()]}"
        return found[0]


_RENDERS: dict[str, Rendered | None] = {}  # by the spec's JSON; None: validate refused it
REFUSED: list[Spec] = []  # drawn specs validate refused, which the invariants assume away


def rendered(spec: Spec) -> Rendered:
    """The spec's files and manifest objects, rendered once for every invariant that draws it. A spec `validate`
    refuses is assumed away (hypothesis draws another) and kept in REFUSED."""
    key = json.dumps(spec, sort_keys=True)
    if key not in _RENDERS:
        try:
            stack = load_text(yaml.safe_dump(spec, sort_keys=False), "stack.yaml")
            files = render_files(stack, with_manifests=True)
        except StackgenError:
            REFUSED.append(spec)
            _RENDERS[key] = None
        else:
            objects = [yaml.safe_load(body) for rel, body in sorted(files.items())
                       if rel.startswith("manifests/") and rel != "manifests/kustomization.yaml"]
            _RENDERS[key] = Rendered(spec, stack, objects, files)
    found = _RENDERS[key]
    assume(found is not None)
    assert found is not None
    return found


def say(spec: Spec) -> str:
    """The spec, for a failure message."""
    return "\n" + yaml.safe_dump(spec, sort_keys=False)


# --- what the spec says, read as docs/spec.md writes it ---------------------------------------------------------


def served(spec: Spec) -> list[Spec]:
    return [m for m in spec["models"] if m["engine"] != "external"]


def routed(m: Spec) -> bool:
    """A router stands in front of a vLLM model with several replicas or autoscaling, unless `routing: service`."""
    several = bool(m.get("autoscaling")) or m.get("replicas", 1) > 1
    return bool(m["engine"] == "vllm" and several and m.get("routing", "consistent_hash") != "service")


def prometheus_namespace(url: str) -> str | None:
    parts = (urlsplit(url).hostname or "").split(".")
    return parts[1] if len(parts) >= 3 and parts[2] == "svc" else None


DEFAULT_PROMETHEUS_URL = "http://prometheus-operated.monitoring.svc.cluster.local:9090"
DEFAULT_INTERCEPTOR_URL = "http://keda-add-ons-http-interceptor-proxy.keda.svc.cluster.local:8080"
DEFAULT_CALL_SECONDS, DEFAULT_IDLE_SECONDS, DEFAULT_WAKE_SECONDS = 600, 900, 600
NGINX = "nginx.ingress.kubernetes.io/"  # ingress-nginx's annotations
VLLM_MASTER_PORT = 29501  # where a vLLM group's pods meet (vllm/config/parallel.py's master_port)


def sleeps(m: Spec) -> bool:
    """minReplicas 0: the model sleeps when idle, and KEDA's HTTP add-on wakes it."""
    return bool(m.get("autoscaling")) and m["autoscaling"].get("minReplicas", 1) == 0


def interceptor_namespace(m: Spec) -> str | None:
    return prometheus_namespace(m["autoscaling"].get("interceptorUrl", DEFAULT_INTERCEPTOR_URL)) if sleeps(m) else None


def scaling_namespace(m: Spec) -> str | None:
    scaling = m.get("autoscaling")
    return prometheus_namespace(scaling.get("prometheusUrl", DEFAULT_PROMETHEUS_URL)) if scaling else None


def redis_on(spec: Spec) -> bool:
    """The gateway shares its counters through Redis: asked for, or by default with several processes or a host."""
    gw = spec.get("gateway", {})
    redis = gw.get("redis", {})
    enabled = redis.get("enabled")
    return enabled is True or (enabled is None and (gw.get("replicas", 2) * gw.get("numWorkers", 1) > 1 or "host" in redis))


def redis_in_chart(spec: Spec) -> bool:
    return redis_on(spec) and "host" not in spec.get("gateway", {}).get("redis", {})


def ref(secret: Spec) -> tuple[str, str]:
    return secret["secretName"], secret["key"]


def master_key(spec: Spec) -> tuple[str, str]:
    given_key = spec.get("gateway", {}).get("masterKey")
    return ref(given_key) if given_key else (f"{spec['name']}-litellm-master-key", "master-key")


def redis_password(spec: Spec) -> tuple[str, str]:
    given_password = spec.get("gateway", {}).get("redis", {}).get("password")
    return ref(given_password) if given_password else (f"{spec['name']}-redis-password", "password")


# --- 1. replicas ------------------------------------------------------------------------------------------------


@invariant
def test_every_served_model_runs_the_replicas_its_spec_asks_for(spec: Spec) -> None:
    r = rendered(spec)
    scaled = of_kind(r.objects, "ScaledObject")
    for m in served(spec):
        # A replica of several pods is a LeaderWorkerSet's group; of one, a Deployment's pod.
        nodes = m.get("nodesPerReplica", 1)
        kind = "LeaderWorkerSet" if nodes > 1 else "Deployment"
        others = {"LeaderWorkerSet", "Deployment"} - {kind}
        deployment = named(r.objects, kind, f"{spec['name']}-{m['name']}")
        assert deployment is not None, f"model {m['name']} has no {kind}{say(spec)}"
        assert not [o for o in others if named(r.objects, o, name(deployment))], f"{m['name']}: both kinds{say(spec)}"
        if nodes > 1:
            group = deployment["spec"]["leaderWorkerTemplate"]
            assert group["size"] == nodes and group["restartPolicy"] == "RecreateGroupOnPodRestart", say(spec)
        mine = [s for s in scaled if s["spec"]["scaleTargetRef"]["name"] == name(deployment)
                and s["spec"]["scaleTargetRef"].get("kind", "Deployment") == kind]
        scaling = m.get("autoscaling")
        if scaling:
            assert "replicas" not in deployment["spec"], f"{m['name']} is autoscaled but its {kind} sets replicas" \
                f"{say(spec)}"
            assert len(mine) == 1, f"{m['name']} is autoscaled by {len(mine)} ScaledObjects{say(spec)}"
            got = (mine[0]["spec"].get("minReplicaCount"), mine[0]["spec"].get("maxReplicaCount"))
            assert got == (scaling.get("minReplicas", 1), scaling["maxReplicas"]), f"{m['name']}: {got}{say(spec)}"
            trigger = mine[0]["spec"]["triggers"][0]["metadata"]
            assert trigger["serverAddress"] == scaling.get("prometheusUrl", DEFAULT_PROMETHEUS_URL), say(spec)
        else:
            assert deployment["spec"].get("replicas") == m.get("replicas", 1), \
                f"{m['name']} runs {deployment['spec'].get('replicas')} replicas, the spec asks {m.get('replicas', 1)}" \
                f"{say(spec)}"
            assert not mine, f"{m['name']} is not autoscaled, yet a ScaledObject targets it{say(spec)}"
    gateway = named(r.objects, "Deployment", f"{spec['name']}-gateway")
    assert gateway is not None and gateway["spec"]["replicas"] == spec["gateway"].get("replicas", 2), say(spec)


# --- 2. the gateway reaches every model's pods --------------------------------------------------------------------


def service_of(r: Rendered, url: str) -> tuple[Obj, int] | None:
    """The Service an in-cluster URL names (name, name.ns, name.ns.svc[.cluster.local]) and the port it asks."""
    parts = urlsplit(url)
    host = parts.hostname or ""
    labels = host.split(".")
    service_name = labels[0]
    if len(labels) > 1 and not (labels[1] == r.ns and labels[2:] in ([], ["svc"], ["svc", "cluster", "local"])):
        return None
    service = named(r.objects, "Service", service_name)
    if service is None:
        return None
    return service, parts.port or (443 if parts.scheme == "https" else 80)


def selected(r: Rendered, service: Obj) -> list[Pod]:
    """The pods a Service's selector picks, in the stack's namespace."""
    return [p for p in r.pods() if p.namespace == r.ns and service_selects(service, p)]


def target_port(service: Obj, port: int) -> int | str:
    found = [p for p in service["spec"]["ports"] if p["port"] == port]
    assert found, f"Service {name(service)} has no port {port}"
    return found[0].get("targetPort", port)  # type: ignore[no-any-return]


def flag(args: list[str], option: str) -> list[str]:
    """The values after `option` up to the next option."""
    values: list[str] = []
    for arg in args[args.index(option) + 1:] if option in args else []:
        if arg.startswith("--"):
            break
        values.append(arg)
    return values


def server_container(pod: Pod) -> Obj:
    found: list[Obj] = [c for c in pod.spec["containers"] if any(p.get("name") == "http" for p in c.get("ports", []))]
    assert len(found) == 1, f"{pod.owner}: no one serving container"
    return found[0]


def listening_port(pod: Pod, m: Spec) -> int:
    """The port the server itself is told to listen on: its command line, its environment, or the spec."""
    c = server_container(pod)
    if m["engine"] in ("vllm", "llamacpp"):
        return int(flag(c.get("args", []), "--port")[0])
    if m["engine"] == "ollama":
        host = next(e["value"] for e in c.get("env", []) if e["name"] == "OLLAMA_HOST")
        return int(host.rsplit(":", 1)[1])
    return int(m["port"])


def server_of(r: Rendered, model: Spec) -> Pod:
    """The pods that serve a model's calls: its Deployment's, or its LeaderWorkerSet's leaders."""
    kind = "LeaderWorkerSet" if model.get("nodesPerReplica", 1) > 1 else "Deployment"
    return r.workload(kind, f"{r.spec['name']}-{model['name']}")


def members_of(r: Rendered, model: Spec) -> list[Pod]:
    """A group's pods, its leader's and its workers'; none for a model of one pod per replica."""
    if model.get("nodesPerReplica", 1) == 1:
        return []
    own = f"LeaderWorkerSet/{r.spec['name']}-{model['name']}"
    return [p for p in r.pods() if p.owner in (own, f"{own}/worker")]


def check_route(r: Rendered, model: Spec, api_base: str) -> None:
    """The api_base reaches exactly this model's pods, through its router when it has one, on its port."""
    spec = r.spec
    found = service_of(r, api_base)
    assert found is not None, f"{model['name']}: {api_base} names no Service of the stack{say(spec)}"
    service, port = found
    target = target_port(service, port)
    # The Service's endpoints: the pods it selects in which its targetPort names a port (a pod without that port
    # is no endpoint of it).
    first = [p for p in selected(r, service) if p.resolve(target) is not None]
    assert first, f"{model['name']}: Service {name(service)} has no endpoint{say(spec)}"
    server = server_of(r, model)
    if routed(model):
        router_name = f"{spec['name']}-{model['name']}-router"
        assert [p.owner for p in first] == [f"Deployment/{router_name}"], \
            f"{model['name']} is routed, yet {api_base} selects {[p.owner for p in first]}{say(spec)}"
        router = first[0]
        args = router.spec["containers"][0]["args"]
        selector = dict(kv.split("=", 1) for kv in flag(args, "--selector"))
        assert selector, f"router {router_name} selects no pods{say(spec)}"
        namespace = flag(args, "--service-discovery-namespace")
        env = {e["name"]: e for e in router.spec["containers"][0].get("env", [])}
        assert namespace == ["$(POD_NAMESPACE)"] and \
            env["POD_NAMESPACE"]["valueFrom"]["fieldRef"]["fieldPath"] == "metadata.namespace", say(spec)
        discovered = [p.owner for p in r.pods() if all(p.labels.get(k) == v for k, v in selector.items())]
        assert discovered == [server.owner], \
            f"router {router_name} discovers {discovered}, not {model['name']}'s pods ({server.owner}){say(spec)}"
        discovery_port = int(flag(args, "--service-discovery-port")[0])
        assert discovery_port == server.resolve("http") == listening_port(server, model), \
            f"router {router_name} calls port {discovery_port}{say(spec)}"
        check_router_rbac(r, router, router_name)
    else:
        assert [p.owner for p in first] == [server.owner], \
            f"{api_base} selects {[p.owner for p in first]}, not {model['name']}'s pods ({server.owner}){say(spec)}"
        resolved = server.resolve(target)
        assert resolved is not None and resolved == listening_port(server, model), \
            f"{model['name']}: Service {name(service)} targets {target} ({resolved}); the server listens on " \
            f"{listening_port(server, model)}{say(spec)}"


def check_router_rbac(r: Rendered, router: Pod, router_name: str) -> None:
    """The router's ServiceAccount may list and watch the pods it discovers."""
    account = router.spec.get("serviceAccountName")
    bindings = [b for b in of_kind(r.objects, "RoleBinding")
                if any(s.get("kind") == "ServiceAccount" and s.get("name") == account for s in b.get("subjects", []))]
    verbs = {v for b in bindings if (role := named(r.objects, "Role", b["roleRef"]["name"]))
             for rule in role.get("rules", []) if "pods" in rule.get("resources", []) for v in rule.get("verbs", [])}
    assert {"list", "watch"} <= verbs, f"router {router_name} may not watch pods ({verbs}){say(r.spec)}"


def reached(r: Rendered, model: Spec, params: Obj) -> str:
    """Where the gateway's calls to a model reach its Services: its api_base; for a model that sleeps, the target
    of the one InterceptorRoute its route header names, which KEDA's HTTP add-on forwards them to once it is ready,
    with the model's ScaledObject woken by that route and every hop waiting for a cold start."""
    spec = r.spec
    if not sleeps(model):
        assert "extra_headers" not in params and "keepalive_seconds" not in params, f"{model['name']}{say(spec)}"
        return str(params["api_base"])
    scaling = model["autoscaling"]
    assert params["api_base"] == f"{scaling.get('interceptorUrl', DEFAULT_INTERCEPTOR_URL)}/v1", say(spec)
    [(header, key)] = params["extra_headers"].items()
    routes = [ir for ir in of_kind(r.objects, "InterceptorRoute") if any(
        h == {"name": header, "value": key} for rule in ir["spec"]["rules"] for h in rule.get("headers", []))]
    assert len(routes) == 1 and key.startswith(f"{r.ns}/"), f"{model['name']}: {header}: {key} names {routes}{say(spec)}"
    route = routes[0]
    scaled = named(r.objects, "ScaledObject", f"{spec['name']}-{model['name']}")
    assert scaled is not None and scaled["spec"]["minReplicaCount"] == 0, say(spec)
    assert scaled["spec"]["cooldownPeriod"] == scaling.get("idleSeconds", DEFAULT_IDLE_SECONDS), say(spec)
    assert [t["metadata"]["interceptorRoute"] for t in scaled["spec"]["triggers"] if t["type"] == "external-push"] \
        == [name(route)], f"{model['name']}'s ScaledObject does not wake on its route{say(spec)}"
    call = spec["gateway"].get("timeoutSeconds", DEFAULT_CALL_SECONDS)
    wake = scaling.get("wakeSeconds", DEFAULT_WAKE_SECONDS)
    assert params["timeout"] == call + wake and params["keepalive_seconds"] > 0, say(spec)
    assert route["spec"]["timeouts"] == {"readiness": f"{wake}s", "responseHeader": f"{call}s",
                                         "request": f"{call + wake}s"}, say(spec)
    target = route["spec"]["target"]
    return f"http://{target['service']}:{target['port']}/v1"


def gateway_config(r: Rendered) -> Obj:
    configmap = named(r.objects, "ConfigMap", f"{r.spec['name']}-gateway")
    assert configmap is not None
    config: Obj = yaml.safe_load(configmap["data"]["config.yaml"])
    assert config == yaml.safe_load(r.files["litellm/config.yaml"]), "the gateway's ConfigMap is not litellm/config.yaml"
    beside = {rel.removeprefix("litellm/"): text for rel, text in r.files.items()
              if rel.startswith("litellm/") and rel != "litellm/config.yaml"}
    modules = {name: text for name, text in configmap["data"].items() if name != "config.yaml"}
    assert modules == beside, "the gateway's ConfigMap does not carry the modules `render` writes beside its config"
    return config


@invariant
def test_every_model_the_gateway_lists_reaches_its_pods(spec: Spec) -> None:
    r = rendered(spec)
    entries = {e["model_name"]: e["litellm_params"] for e in gateway_config(r)["model_list"]}
    bases = {m["name"]: m for m in spec["models"]}
    names = {m["name"]: m for m in spec["models"]}
    for m in served(spec):
        for adapter in m.get("adapters", []):
            names[adapter["name"]] = m
    assert sorted(entries) == sorted(names), f"the gateway lists {sorted(entries)}{say(spec)}"
    for listed, params in entries.items():
        model = names[listed]
        if model["engine"] == "external":
            assert params.get("api_base") == model.get("baseUrl"), say(spec)
            continue
        assert listed in bases or {k: params.get(k) for k in ("api_base", "extra_headers")} == {
            k: entries[model["name"]].get(k) for k in ("api_base", "extra_headers")}, \
            f"adapter {listed} is not sent where its model {model['name']} is{say(spec)}"
        check_route(r, model, reached(r, model, params))
    routers = {name(d) for d in of_kind(r.objects, "Deployment") if name(d).endswith("-router")
               and d["spec"]["template"]["spec"]["containers"][0].get("command") == ["vllm-router"]}
    assert routers == {f"{spec['name']}-{m['name']}-router" for m in served(spec) if routed(m)}, say(spec)
    # The front door: the gateway's Service and Ingress reach the gateway's pods on its port.
    gateway = r.workload("Deployment", f"{spec['name']}-gateway")
    service = named(r.objects, "Service", f"{spec['name']}-gateway")
    assert service is not None and [p.owner for p in selected(r, service)] == [gateway.owner], say(spec)
    for ingress in of_kind(r.objects, "Ingress"):
        for rule in ingress["spec"]["rules"]:
            for path in rule["http"]["paths"]:
                backend = path["backend"]["service"]
                assert backend["name"] == name(service), say(spec)
                port = next(p for p in service["spec"]["ports"] if p.get("name") == backend["port"].get("name")
                            or p["port"] == backend["port"].get("number"))
                assert gateway.resolve(port.get("targetPort", port["port"])) is not None, say(spec)
        # ingress-nginx keeps a silent call open as long as the gateway waits for any answer (its default is 60 s).
        annotations = ingress["metadata"].get("annotations") or {}
        if ingress["spec"].get("ingressClassName") == "nginx" or any(k.startswith(NGINX) for k in annotations):
            for key in (f"{NGINX}proxy-read-timeout", f"{NGINX}proxy-send-timeout"):
                assert int(annotations.get(key, 60)) >= max(p["timeout"] for p in entries.values()), \
                    f"{key}: {annotations.get(key)} cuts calls the gateway still waits for{say(spec)}"


# --- 3. NetworkPolicies ---------------------------------------------------------------------------------------------

ELSEWHERE = "unrelated-namespace"  # no spec names it


def stranger(namespace: str) -> Pod:
    return Pod(f"a pod of namespace {namespace}", namespace, {"app": "stranger"})


def prometheus(namespace: str) -> Pod:
    return Pod(f"Prometheus in namespace {namespace}", namespace, {"app.kubernetes.io/name": "prometheus"})


def interceptor(namespace: str) -> Pod:
    return Pod(f"KEDA's HTTP add-on interceptor in namespace {namespace}", namespace,
               {"app.kubernetes.io/component": "interceptor"})


def scraped_by_pod_monitor(r: Rendered, pod: Pod) -> bool:
    return any(matches(m["spec"].get("selector"), pod.labels) for m in of_kind(r.objects, "PodMonitor"))


@invariant
def test_network_policies_admit_the_callers_and_nothing_else(spec: Spec) -> None:
    r = rendered(spec)
    policies = of_kind(r.objects, "NetworkPolicy")
    everyone = r.pods()
    gateway = r.workload("Deployment", f"{spec['name']}-gateway")
    monitoring = spec.get("monitoring", {})

    def reach(source: Pod, dest: Pod, port: int) -> bool:
        return admits(policies, source, dest, port, r.ns)

    def check(dest: Pod, port: int, callers: list[Pod], outside: list[str]) -> None:
        for caller in callers:
            assert reach(caller, dest, port), f"{caller.owner} may not reach {dest.owner} on port {port}{say(spec)}"
        others = [stranger(r.ns), stranger(ELSEWHERE)] + [p for p in everyone if p not in callers and p != dest]
        others += [stranger(n) for n in specs.PROMETHEUS_NAMESPACES if n not in outside and n != r.ns]
        for other in others:
            assert not reach(other, dest, port), f"{other.owner} may reach {dest.owner} on port {port}, admitted " \
                f"by {admitting(policies, other, dest, port, r.ns)}{say(spec)}"

    for m in served(spec):
        server = server_of(r, m)
        port = server.resolve("http")
        assert port is not None
        # A group's pods reach one another on every port: the workers the leader's port too.
        members = members_of(r, m)
        for dest in members:
            check(dest, VLLM_MASTER_PORT, members, [])
        callers = [gateway, *[p for p in members if p != server]]
        if routed(m):
            callers.append(r.workload("Deployment", f"{spec['name']}-{m['name']}-router"))
        scrapers = set()
        if scraped_by_pod_monitor(r, server):
            scrapers.add(monitoring.get("prometheusNamespace", "monitoring"))
        if (namespace := scaling_namespace(m)) is not None:
            scrapers.add(namespace)
        for namespace in sorted(scrapers):
            assert reach(prometheus(namespace), server, port), \
                f"the Prometheus of namespace {namespace} may not read {m['name']}'s metrics{say(spec)}"
        # A model that sleeps is called by KEDA's HTTP add-on, through its router when it has one.
        waker = [interceptor(n)] if (n := interceptor_namespace(m)) else []
        if routed(m):
            for caller in waker:
                if caller.namespace not in scrapers:  # a scraping Prometheus's namespace reaches the port whole
                    assert not reach(caller, server, port), \
                        f"{caller.owner} may reach {m['name']} past its router{say(spec)}"
            check(server, port, callers, sorted(scrapers))
            router = callers[-1]
            router_port = router.resolve("http")
            assert router_port is not None
            check(router, router_port, [gateway, *waker], [p.namespace for p in waker])
        else:
            check(server, port, callers + waker, sorted(scrapers | {p.namespace for p in waker}))
    if redis_in_chart(spec):
        redis = r.workload("Deployment", f"{spec['name']}-redis")
        redis_port = redis.resolve("redis")
        assert redis_port is not None
        check(redis, redis_port, [gateway], [])
    # The gateway takes calls from anywhere on its port (an Ingress controller, agents in other namespaces).
    gateway_port = gateway.resolve("http")
    assert gateway_port is not None
    assert reach(stranger(ELSEWHERE), gateway, gateway_port) and reach(stranger(r.ns), gateway, gateway_port), say(spec)


# --- 4. Secrets ----------------------------------------------------------------------------------------------------


def allowed_secrets(spec: Spec) -> dict[str, set[tuple[str, str]]]:
    """By workload ("<Kind>/<name>"), the (Secret, key) pairs the spec names for it."""
    prefix = spec["name"]
    gateway = {master_key(spec)}
    gateway |= {ref(m["apiKey"]) for m in spec["models"] if m["engine"] == "external" and m.get("apiKey")}
    if redis_on(spec):
        gateway.add(redis_password(spec))
    out = {f"Deployment/{prefix}-gateway": gateway}
    if redis_in_chart(spec):
        out[f"Deployment/{prefix}-redis"] = {redis_password(spec)}
    for m in served(spec):
        own = {ref(v) for v in m.get("env", {}).values() if isinstance(v, dict)}
        if m.get("hfToken"):
            own.add(ref(m["hfToken"]))
        out[f"Deployment/{prefix}-{m['name']}"] = own
        out[f"LeaderWorkerSet/{prefix}-{m['name']}"] = out[f"LeaderWorkerSet/{prefix}-{m['name']}/worker"] = own
        out[f"Deployment/{prefix}-{m['name']}-router"] = set()
        out[f"Job/{prefix}-{m['name']}-preload"] = own  # its name ends in a hash: matched below
    return out


@invariant
def test_pods_read_only_the_secrets_the_spec_names(spec: Spec) -> None:
    r = rendered(spec)
    allowed = allowed_secrets(spec)
    for pod in r.pods():
        owner = re.sub(r"^(Job/.*-preload)-[0-9a-f]{6}$", r"\1", pod.owner)
        assert owner in allowed, f"{pod.owner} is no workload the spec asks for{say(spec)}"
        for secret, key, where in secret_refs(pod.spec):
            assert key is not None and (secret, key) in allowed[owner], \
                f"{pod.owner} {where} reads Secret {secret} key {key}, which the spec does not name for it " \
                f"(it names {sorted(allowed[owner])}){say(spec)}"
    for monitor in of_kind(r.objects, "ServiceMonitor"):
        for endpoint in monitor["spec"]["endpoints"]:
            credentials = endpoint.get("authorization", {}).get("credentials")
            if credentials:
                assert (credentials["name"], credentials["key"]) == master_key(spec), say(spec)
    tls = spec["gateway"].get("ingress", {}).get("tlsSecretName")
    for ingress in of_kind(r.objects, "Ingress"):
        assert [t["secretName"] for t in ingress["spec"].get("tls", [])] == ([tls] if tls else []), say(spec)


@invariant
def test_stackgen_secrets_lists_every_key_the_objects_read_and_no_other(spec: Spec) -> None:
    """What `stackgen secrets` tells a user to create before the install (#36) is what the rendered objects read:
    pods' env and volumes, the ServiceMonitor's credentials, the Ingress's certificate."""
    r = rendered(spec)
    read = {(secret, key) for pod in r.pods() for secret, key, _ in secret_refs(pod.spec) if key is not None}
    for monitor in of_kind(r.objects, "ServiceMonitor"):
        for endpoint in monitor["spec"]["endpoints"]:
            if credentials := endpoint.get("authorization", {}).get("credentials"):
                read.add((credentials["name"], credentials["key"]))
    for ingress in of_kind(r.objects, "Ingress"):
        read |= {(t["secretName"], key) for t in ingress["spec"].get("tls", []) for key in TLS_KEYS}
    listed = {(n.secret, n.key) for n in needed(plan(r.stack))}
    assert listed == read, f"listed but never read: {sorted(listed - read)}; read but not listed: " \
        f"{sorted(read - listed)}{say(spec)}"


# --- 5. names ------------------------------------------------------------------------------------------------------

# Kinds whose name Kubernetes holds to a DNS label of 63: a Service's (DNS-1035) becomes a DNS name; a workload's
# becomes its pods' names and hostnames, or (a Job's) a label value of its pods.
LABEL_NAMED = {"Service": DNS_1035_LABEL, **{kind: DNS_1123_LABEL for kind in (*POD_KINDS, "Pod")}}


def label_values(obj: Obj) -> Iterator[tuple[str, str]]:
    """Every label and selector value of an object and its pod template."""
    yield from (obj["metadata"].get("labels") or {}).items()
    spec = obj.get("spec") or {}
    selector = spec.get("selector") or {}
    yield from (selector if obj["kind"] == "Service" else selector.get("matchLabels") or {}).items()
    yield from ((spec.get("template") or {}).get("metadata", {}).get("labels") or {}).items()


@invariant
def test_object_names_fit_their_kind_and_are_unique(spec: Spec) -> None:
    r = rendered(spec)
    seen: set[tuple[str, str]] = set()
    for obj in r.objects:
        kind, object_name = obj["kind"], name(obj)
        assert (kind, object_name) not in seen, f"two {kind}s named {object_name}{say(spec)}"
        seen.add((kind, object_name))
        if kind in LABEL_NAMED:
            assert len(object_name) <= 63 and LABEL_NAMED[kind].match(object_name), \
                f"{kind} {object_name!r} ({len(object_name)} characters) is no DNS label of 63{say(spec)}"
        else:
            assert len(object_name) <= 253 and DNS_1123_SUBDOMAIN.match(object_name), \
                f"{kind} {object_name!r} is no DNS subdomain{say(spec)}"
        for key, value in label_values(obj):
            assert isinstance(value, str) and len(value) <= 63 and LABEL_VALUE.match(value), \
                f"{kind} {object_name}: label {key}={value!r} is no label value{say(spec)}"
    # What LWS's controller makes for a group, at the most groups the spec allows: it makes a headless Service only
    # if none of its name exists, and without it the group's pods cannot resolve their leader.
    services = {name(s) for s in of_kind(r.objects, "Service")}
    for lws in of_kind(r.objects, "LeaderWorkerSet"):
        scaled = [o for o in of_kind(r.objects, "ScaledObject") if o["spec"]["scaleTargetRef"]["name"] == name(lws)]
        groups = int(scaled[0]["spec"]["maxReplicaCount"]) if scaled else int(lws["spec"]["replicas"])
        for what, made in made_by_lws(lws, groups):
            assert len(made) <= 63 and DNS_1123_LABEL.match(made), \
                f"LWS would make {what} {made!r} of LeaderWorkerSet {name(lws)}: no DNS label of 63{say(spec)}"
            assert what != "Service" or made not in services, \
                f"the chart's Service {made} takes the name of LeaderWorkerSet {name(lws)}'s headless one{say(spec)}"


# --- 6. PromQL -----------------------------------------------------------------------------------------------------

def expressions(r: Rendered) -> list[tuple[str, str]]:
    """Every PromQL expression of the objects: (where, expression)."""
    out = []
    for s in of_kind(r.objects, "ScaledObject"):
        out += [(f"ScaledObject {name(s)}", t["metadata"]["query"]) for t in s["spec"]["triggers"]
                if t["type"] == "prometheus"]
    for rule_set in of_kind(r.objects, "PrometheusRule"):
        out += [(f"alert {rule['alert']}", rule["expr"]) for group in rule_set["spec"]["groups"]
                for rule in group["rules"]]
    for configmap in of_kind(r.objects, "ConfigMap"):
        if configmap["metadata"].get("labels", {}).get("grafana_dashboard"):
            for key, text in configmap["data"].items():
                out += [(f"dashboard {key}", expr) for expr in json_exprs(json.loads(text))]
    return out


def json_exprs(node: Any) -> Iterator[str]:
    if isinstance(node, dict):
        for key, value in node.items():
            if key == "expr" and isinstance(value, str):
                yield value
            else:
                yield from json_exprs(value)
    elif isinstance(node, list):
        for item in node:
            yield from json_exprs(item)


@invariant
def test_every_promql_expression_selects_the_release_namespace(spec: Spec) -> None:
    r = rendered(spec)
    found = expressions(r)
    monitoring = spec.get("monitoring", {})
    if monitoring.get("enabled"):
        assert any(w.startswith("alert") for w, _ in found), f"monitoring is on but no alert is rendered{say(spec)}"
        assert monitoring.get("dashboard", True) == any(w.startswith("dashboard") for w, _ in found), say(spec)
    assert sum(w.startswith("ScaledObject") for w, _ in found) == sum(bool(m.get("autoscaling")) for m in spec["models"]), \
        say(spec)
    own = re.compile(rf'(^|[{{,])\s*namespace\s*=\s*"{re.escape(r.ns)}"\s*(,|}}$)')
    for where, expr in found:
        selectors = vector_selectors(expr)
        assert selectors, f"{where}: no series selected in {expr}"
        for metric, matchers in selectors:
            assert own.search(matchers), \
                f"{where}: {metric}{matchers} does not select namespace {r.ns!r} (in {expr}){say(spec)}"
    for s in of_kind(r.objects, "ScaledObject"):
        model = s["spec"]["scaleTargetRef"]["name"].removeprefix(f"{spec['name']}-")
        for t in s["spec"]["triggers"]:
            if t["type"] == "prometheus":  # the other, a sleeping model's wake, is checked with its route (2.)
                assert f'model_name="{model}"' in t["metadata"]["query"], f"{name(s)} scales on another model{say(spec)}"


def test_the_promql_reader_finds_every_selector() -> None:
    """The reader above, on expressions of every shape the module writes, and a selector without the namespace."""
    assert vector_selectors('sum by (model_name) (rate(a:b_total{namespace="x",m=~"p|q"}[5m])) / sum(c{namespace="x"})') \
        == [("a:b_total", '{namespace="x",m=~"p|q"}'), ("c", '{namespace="x"}')]
    assert vector_selectors('histogram_quantile(0.95, sum by (le, g) (rate(h_bucket{namespace="x"}[5m]))) > 0.5') \
        == [("h_bucket", '{namespace="x"}')]
    assert vector_selectors("up unless on (job) absent(down)") == [("up", ""), ("down", "")]


# --- the draws themselves ----------------------------------------------------------------------------------------

SHARE_EXAMPLES = 150  # validate only, no helm: a few seconds


@settings(max_examples=SHARE_EXAMPLES, deadline=None, derandomize=True, database=None,
          suppress_health_check=[HealthCheck.too_slow])
@given(spec=specs.stacks())
def _validate_draw(spec: Spec) -> None:
    if specs.validated(spec) is None:
        REFUSED.append(spec)


def test_the_strategy_draws_valid_specs_with_every_feature() -> None:
    """The invariants hold for what the strategy draws, so it must draw valid specs: `validate` refuses under 2% of
    them (the invariants assume those away, and keep them in REFUSED); and it draws every feature and kind, and
    all of them at once. The specs written out here (EVERYTHING, COUNTEREXAMPLES) are valid too."""
    for written in (EVERYTHING, *COUNTEREXAMPLES):
        assert specs.validated(written) is not None, f"validate refuses a spec this module checks first{say(written)}"
    specs.DRAWS.clear()
    before = len(REFUSED)
    _validate_draw()
    drawn, refused = specs.DRAWS["drawn"], len(REFUSED) - before
    assert drawn >= SHARE_EXAMPLES and refused <= 0.02 * drawn, (refused, REFUSED[before:][:1])
    missing = [f for f in specs.FEATURES if specs.DRAWS[f"feature:{f}"] < 0.2 * drawn] + \
        [k for k in specs.KINDS if specs.DRAWS[f"kind:{k}"] < 0.2 * drawn]
    assert not missing and specs.DRAWS["everything"] >= 5, dict(specs.DRAWS)
