"""The kind-cpu example installed with Helm on the real node: its pods run as containers, pass their own
probes, and agents reach every model through the gateway Service.

The spec is kind-cpu with what this machine needs, and nothing else:
- Ollama's model comes from the local registry mirror (no machine here reaches ollama.com);
- vLLM's model comes from a pre-seeded Hugging Face cache volume with HF_HUB_OFFLINE (none reaches the
  Hub): the tiny Qwen2 of the real-engine tier, under kind-cpu's model id;
- the profiles request less CPU: kind-cpu asks 3.25 CPUs for a laptop, the node here has 2;
- vLLM runs 2 replicas, so the chart puts its router in front of them: the router finds the pods through the
  API server, and a replica deleted under load loses no request.

The steps run in order on one install (install with Helm 3, upgrade and uninstall with Helm 4, which takes
over Helm 3's release), each a test so that a failure names its step.
"""

from __future__ import annotations

import json
import re
import shutil
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

from stackgen.routing import SESSION_HEADER
from tests.cluster.pki import NODE_NAME
from tests.e2e import specs
from tests.e2e.kube import Kube, port_forward, say
from tests.e2e.stack import Stack
from tests.engines.registry import mirrored

from .conftest import NodeCluster
from .network import POD_CIDR

EXAMPLE = "kind-cpu"
ADDED_MODEL = "ollama-extra"
SEEDED_CLASS = "seeded-models"
# The cache's snapshot name: any 40 hex digits; refs/main points at it as the Hub's download would.
SNAPSHOT = "0" * 40
# CPU requests that fit 2 cores with room for a rolling gateway pod, an added model and CoreDNS.
PROFILE_CPU = {"cpu-small": "200m", "cpu-vllm": "350m"}
VLLM_REPLICAS = 2
# The load while a replica is deleted: agents in threads, each request a few tokens, bounded in count.
LOAD_AGENTS, LOAD_MAX_REQUESTS = 4, 500


def seed_hf_cache(root: Path, repo: str, model_dir: Path) -> Path:
    """``model_dir``'s files laid out as the Hub client caches ``repo`` under HF_HOME, so that vLLM with
    HF_HUB_OFFLINE=1 finds them by id."""
    entry = root / "hub" / f"models--{repo.replace('/', '--')}"
    shutil.copytree(model_dir, entry / "snapshots" / SNAPSHOT)
    (entry / "refs").mkdir(parents=True)
    (entry / "refs" / "main").write_text(SNAPSHOT)
    return root


def node_spec(spec: dict[str, Any], ollama_ref: str) -> dict[str, Any]:
    out = mirrored(spec, ollama_ref)
    for name, cpu in PROFILE_CPU.items():
        out["profiles"][name]["cpu"] = cpu
    for model in out["models"]:
        if model["engine"] == "vllm":
            model["replicas"] = VLLM_REPLICAS
            model["cache"] = {"type": "persistentVolumeClaim", "storageClassName": SEEDED_CLASS, "size": "1Gi"}
            model.setdefault("env", {})["HF_HUB_OFFLINE"] = "1"
    return out


def seeded_volume(name: str, path: Path, namespace: str, claim: str) -> dict[str, Any]:
    """A volume an administrator made for one claim: pre-bound to it, kept when the claim goes."""
    return {
        "apiVersion": "v1", "kind": "PersistentVolume", "metadata": {"name": name},
        "spec": {
            "capacity": {"storage": "1Gi"}, "accessModes": ["ReadWriteOnce"],
            "persistentVolumeReclaimPolicy": "Retain", "storageClassName": SEEDED_CLASS,
            "claimRef": {"namespace": namespace, "name": claim},
            "hostPath": {"path": str(path), "type": "Directory"},
        },
    }


@dataclass
class Installed:
    cluster: NodeCluster
    stack: Stack
    spec: dict[str, Any]
    spec_file: Path
    out: Path
    values: dict[str, Any]
    deployments: list[str]
    secret: tuple[str, str]
    seeded: list[str]

    @property
    def kube(self) -> Kube:
        return self.stack.kube

    @property
    def namespace(self) -> str:
        return self.stack.namespace

    def pods(self) -> list[dict[str, Any]]:
        return self.kube.items("pods", "-n", self.namespace)

    def gateway(self) -> tuple[str, int]:
        return f"{self.stack.release}-gateway", int(self.values["gateway"]["port"])


@pytest.fixture(scope="module")
def installed(node_cluster: NodeCluster, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Installed]:
    work = tmp_path_factory.mktemp("kind-cpu")
    stackgen = str(Path(specs.__file__).resolve().parents[2] / ".venv" / "bin" / "stackgen")
    spec = node_spec(specs.example_spec(stackgen, EXAMPLE), node_cluster.ollama_model)
    spec_file = specs.write_spec(spec, work / "spec.yaml")
    out = specs.render(stackgen, spec_file, work / "out")
    values = specs.load_yaml(out / "values.yaml")
    manifests = specs.manifest_objects(out)
    namespace = specs.namespace_of(spec, manifests)
    kube = node_cluster.kube("helm3")
    stack = Stack(kube=kube, stackgen=stackgen, release=values["fullnameOverride"], namespace=namespace)

    seeded = []
    for model in spec["models"]:
        if model["engine"] == "vllm":
            name = f"seeded-{model['name']}"
            root = seed_hf_cache(work / name, model["model"], node_cluster.tiny_qwen)
            kube.apply(seeded_volume(name, root, namespace, f"{stack.release}-{model['name']}"))
            seeded.append(name)
    try:
        secret = stack.prepare(values)
        stack.helm("install", out / "values.yaml")
        deployments = stack.wait(out)
        yield Installed(node_cluster, stack, spec, spec_file, out, values, deployments, secret, seeded)
    finally:
        stack.teardown()
        for name in seeded:
            kube.run("delete", "persistentvolume", name, "--ignore-not-found", check=False)


def _of(installed: Installed, component: str) -> list[dict[str, Any]]:
    return [p for p in installed.pods() if p["metadata"]["labels"].get("app.kubernetes.io/component") == component]


def _ready(pod: dict[str, Any]) -> bool:
    statuses = pod.get("status", {}).get("containerStatuses", [])
    return pod["status"].get("phase") == "Running" and bool(statuses) and all(s["ready"] for s in statuses)


def _images(obj: Any) -> set[str]:
    if isinstance(obj, dict):
        found = {obj["image"]} if isinstance(obj.get("image"), str) else set()
        return found.union(*(_images(v) for v in obj.values()))
    if isinstance(obj, list):
        return set().union(*(_images(v) for v in obj))
    return set()


def test_every_image_the_chart_renders_was_built_here(installed: Installed) -> None:
    rendered = _images(specs.manifest_objects(installed.out))
    assert rendered, "no image in the rendered manifests"
    assert rendered <= set(installed.cluster.refs.values()), (
        f"scripts/node/build.sh builds no image for {sorted(rendered - set(installed.cluster.refs.values()))}")


def test_every_pod_runs_on_the_real_node_and_is_ready_through_its_probes(installed: Installed) -> None:
    pods = installed.pods()
    assert {p["metadata"]["labels"].get("app.kubernetes.io/component") for p in pods} >= {
        "gateway", "ollama-small", "vllm-small"}, [p["metadata"]["name"] for p in pods]
    prefix = POD_CIDR.rsplit(".", 2)[0]
    for pod in pods:
        name = pod["metadata"]["name"]
        assert pod["spec"]["nodeName"] == NODE_NAME, f"{name} is on {pod['spec']['nodeName']}"
        assert pod["status"]["podIP"].startswith(prefix + "."), f"{name} has {pod['status']['podIP']}"
        assert _ready(pod), f"{name}: {json.dumps(pod['status'].get('containerStatuses'), indent=1)}"
        for container in pod["spec"]["containers"]:
            # Readiness came from the chart's own probes: every container has one, and it passed.
            assert "readinessProbe" in container, f"{name}/{container['name']} has no readiness probe"
        for status in pod["status"]["containerStatuses"]:
            assert status["started"] and status["restartCount"] == 0, f"{name}/{status['name']}: {status}"


def test_ollama_pulled_its_model_from_the_registry_before_the_server_started(installed: Installed) -> None:
    for pod in installed.pods():
        if pod["metadata"]["labels"].get("app.kubernetes.io/component") != "ollama-small":
            continue
        init = {s["name"]: s for s in pod["status"]["initContainerStatuses"]}
        assert init["pull-model"]["state"]["terminated"]["exitCode"] == 0, init
        server = pod["status"]["containerStatuses"][0]["state"]["running"]["startedAt"]
        assert init["pull-model"]["state"]["terminated"]["finishedAt"] <= server
        # What it pulled: the registry mirror's reference, which the spec named.
        spec = next(c for c in pod["spec"]["initContainers"] if c["name"] == "pull-model")
        env = {e["name"]: e.get("value") for e in spec["env"]}
        assert env["OLLAMA_MODEL"] == installed.cluster.ollama_model, env
        log = installed.kube.run("logs", "-n", installed.namespace, pod["metadata"]["name"], "-c",
                                 "pull-model").stdout
        assert "success" in log, log[-2000:]
        return
    pytest.fail("no ollama-small pod")


def test_cluster_dns_resolves_every_service_inside_a_pod(installed: Installed) -> None:
    services = {s["metadata"]["name"]: s["spec"]["clusterIP"]
                for s in installed.kube.items("services", "-n", installed.namespace)}
    gateway = next(p["metadata"]["name"] for p in installed.pods()
                   if p["metadata"]["labels"].get("app.kubernetes.io/component") == "gateway")
    names = [f"{name}.{installed.namespace}.svc.cluster.local" for name in sorted(services)]
    script = "import socket, sys; print(' '.join(socket.gethostbyname(n) for n in sys.argv[1:]))"
    done = installed.kube.run("exec", "-n", installed.namespace, gateway, "--", "python3", "-c", script, *names)
    assert done.stdout.split() == [services[name] for name in sorted(services)], done.stdout


def test_helm_test_passes_in_its_pod(installed: Installed) -> None:
    installed.stack.helm_test()


def test_verify_through_port_forward_with_both_autogen_configs(installed: Installed) -> None:
    svc, port = installed.gateway()
    installed.stack.verify(installed.spec_file, installed.out, svc, port)


def test_the_router_discovers_every_vllm_replica_through_the_api_server(installed: Installed) -> None:
    replicas = {p["metadata"]["name"]: p["status"]["podIP"] for p in _of(installed, "vllm-small")}
    routers = _of(installed, "vllm-small-router")
    assert len(replicas) == VLLM_REPLICAS and routers, installed.kube.diagnostics(installed.namespace)
    for router in routers:
        log = installed.kube.run("logs", "-n", installed.namespace, router["metadata"]["name"]).stdout
        for name, ip in replicas.items():
            assert re.search(rf"Adding pod: {re.escape(name)} .*url: http://{re.escape(ip)}:8000", log), log[-3000:]
    say(f"{len(routers)} routers each found {sorted(replicas)} through the API server")


def _vllm_requests(installed: Installed, pod: str) -> float:
    """Requests a vLLM pod has finished, from its own /metrics (read inside the pod)."""
    text = installed.kube.run("exec", "-n", installed.namespace, pod, "--", "curl", "-s",
                              "http://127.0.0.1:8000/metrics").stdout
    return sum(float(v) for v in re.findall(r"^vllm:request_success_total\{[^}]*\} (\S+)$", text, re.M))


def test_a_deleted_vllm_replica_loses_no_request_and_its_replacement_is_routed_to(installed: Installed) -> None:
    kube, ns, release = installed.kube, installed.namespace, installed.stack.release
    svc, port = installed.gateway()
    headers = {"Authorization": f"Bearer {installed.stack.master_key}"}
    statuses: list[int] = []
    stop = threading.Event()

    def agent(url: str, n: int) -> None:
        messages = [{"role": "user", "content": f"agent {n}: say ok"}]
        for _ in range(LOAD_MAX_REQUESTS):
            if stop.is_set():
                return
            try:
                reply = httpx.post(f"{url}/v1/chat/completions", timeout=120,
                                   headers={**headers, SESSION_HEADER: f"load-{n}"},
                                   json={"model": "vllm-small", "messages": messages, "max_tokens": 8})
                statuses.append(reply.status_code)
            except httpx.HTTPError:
                statuses.append(0)

    old = [p["metadata"]["name"] for p in _of(installed, "vllm-small")]
    with port_forward(kube, ns, svc, port) as url:
        threads = [threading.Thread(target=agent, args=(url, n)) for n in range(LOAD_AGENTS)]
        for thread in threads:
            thread.start()
        time.sleep(5)
        kube.run("delete", "pod", "-n", ns, old[0], "--wait=true", "--timeout=120s", timeout=150)
        kube.wait_rollouts(ns, [f"{release}-vllm-small"], 300)
        time.sleep(5)
        stop.set()
        for thread in threads:
            thread.join(timeout=150)
        new = [p["metadata"]["name"] for p in _of(installed, "vllm-small") if p["metadata"]["name"] not in old]
        assert len(new) == 1, _of(installed, "vllm-small")
        before = _vllm_requests(installed, new[0])
        # New conversations spread over both replicas, the replacement among them.
        for n in range(16):
            reply = httpx.post(f"{url}/v1/chat/completions", timeout=120, headers={**headers, SESSION_HEADER: f"new-{n}"},
                               json={"model": "vllm-small", "messages": [{"role": "user", "content": "hi"}],
                                     "max_tokens": 4})
            assert reply.status_code == 200, reply.text
    failed = [s for s in statuses if s != 200]
    say(f"deleting {old[0]} under load: {len(statuses) - len(failed)} answered, {len(failed)} failed; "
        f"the replacement {new[0]} answered {_vllm_requests(installed, new[0]) - before:.0f} of 16 new conversations")
    assert statuses and not failed, f"{len(failed)} of {len(statuses)} requests failed: {failed}"
    assert _vllm_requests(installed, new[0]) > before, "the router sends nothing to the replacement pod"


def test_a_deleted_model_pod_is_replaced_and_served_again(installed: Installed) -> None:
    kube, ns = installed.kube, installed.namespace
    old = next(p["metadata"]["name"] for p in installed.pods()
               if p["metadata"]["labels"].get("app.kubernetes.io/component") == "ollama-small")
    kube.run("delete", "pod", "-n", ns, old, "--wait=true", "--timeout=120s", timeout=150)
    kube.wait_rollouts(ns, [f"{installed.stack.release}-ollama-small"], 300)
    new = [p for p in installed.pods()
           if p["metadata"]["labels"].get("app.kubernetes.io/component") == "ollama-small"]
    assert [p["metadata"]["name"] for p in new] != [old] and all(_ready(p) for p in new), new
    svc, port = installed.gateway()
    with port_forward(kube, ns, svc, port) as url:
        reply = httpx.post(f"{url}/v1/chat/completions", timeout=120,
                           headers={"Authorization": f"Bearer {installed.stack.master_key}"},
                           json={"model": "ollama-small", "messages": [{"role": "user", "content": "hi"}]})
    assert reply.status_code == 200, reply.text
    assert reply.json()["choices"][0]["message"]["content"], reply.text
    say(f"{old} was replaced by {new[0]['metadata']['name']}, which answers through the gateway")


def test_upgrade_with_a_model_added_serves_every_model(installed: Installed, tmp_path: Path) -> None:
    grown = specs.add_model_copy(installed.spec, "ollama-small", ADDED_MODEL)
    grown_file = specs.write_spec(grown, tmp_path / "spec-upgrade.yaml")
    out = specs.render(installed.stack.stackgen, grown_file, tmp_path / "out-upgrade")
    installed.stack.kube = installed.cluster.kube("helm4")
    installed.stack.helm("upgrade", out / "values.yaml")
    after = installed.stack.wait(out)
    assert f"{installed.stack.release}-{ADDED_MODEL}" in set(after) - set(installed.deployments), after
    svc, port = installed.gateway()
    installed.stack.verify(grown_file, out, svc, port)


def test_uninstall_leaves_the_namespace_empty(installed: Installed) -> None:
    installed.stack.kube = installed.cluster.kube("helm4")
    installed.stack.uninstall_leaves_nothing(keep=frozenset({installed.secret}),
                                             retained=frozenset(installed.seeded))
    # The kubelet stopped every container of the namespace's pods, not just the API objects.
    node = installed.cluster.node
    running = {line.split()[0] for line in node.ctr("tasks", "list").splitlines()[1:]
               if line.split()[-1] == "RUNNING"}
    ours = set(node.ctr("containers", "list", "-q",
                        f'labels."io.kubernetes.pod.namespace"=={installed.namespace}').split())
    assert not running & ours, f"still running after uninstall: {sorted(running & ours)}"
