"""The kind-cpu example installed with Helm on the real node: its pods run as containers, pass their own
probes, and agents reach every model through the gateway Service.

The spec is kind-cpu with what this machine needs, and nothing else:
- Ollama's model comes from the local registry mirror (no machine here reaches ollama.com);
- vLLM's model comes from a pre-seeded Hugging Face cache volume with HF_HUB_OFFLINE (none reaches the
  Hub): the tiny Qwen2 of the real-engine tier, under kind-cpu's model id;
- the profiles request less CPU: kind-cpu asks 3.25 CPUs for a laptop, the node here has 2;
- the vLLM model serves two LoRA adapters from its cache volume (made with peft by tests/engines/tinylora.py),
  so that `verify` lists and exercises all three names on the real node;
- the gateway keeps its state in the chart's Redis, so that Redis' NetworkPolicy is enforced too.

Several replicas, the router in front of them and pods that come and go under load are test_autoscaling.py's:
there KEDA adds and removes the second vLLM replica.

The chart comes as platform teams install it: signed by scripts/chart/publish.sh (`make chart-publish`) into the
node tier's registry, and installed, upgraded and uninstalled from there, `--verify` checking its signature each time.

The steps run in order on one install (install with Helm 3, upgrade and uninstall with Helm 4, which takes
over Helm 3's release), each a test so that a failure names its step. Day two as docs/operations.md gives it: a
model added (no other model's pod restarts: same UIDs), one model's flag changed (that model alone rolls), `helm
rollback` (the previous revision serves), `helm uninstall` (only the cache claims stay, then the documented delete).
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.cluster.pki import NODE_NAME
from tests.e2e import specs
from tests.e2e.kube import port_forward, say
from tests.engines.engines import tiny_lora, vllm_venv
from tests.support.kube import pod_of
from tests.support.signing import make_keyrings, publish_chart

from .conftest import NodeCluster
from .network import POD_CIDR
from .stacks import ADAPTERS_IN_POD, STACKGEN, Installed, install, node_spec, ready

EXAMPLE = "kind-cpu"
ADDED_MODEL = "ollama-extra"
CHANGED_KEEP_ALIVE = "10m"  # the one flag the day-two step changes, on the added model
# CPU requests that fit 2 cores with room for a rolling gateway pod, an added model and CoreDNS.
PROFILE_CPU = {"cpu-small": "200m", "cpu-vllm": "350m"}
# The vLLM model's adapters: name -> (the letter of the greeting each swaps, for which).
ADAPTERS = {"vllm-small-q": ("q", "Q"), "vllm-small-w": ("w", "W")}


@pytest.fixture(scope="module")
def installed(node_cluster: NodeCluster, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Installed]:
    adapters = [{"name": name, "source": f"{ADAPTERS_IN_POD}/{name}", "rank": 8} for name in ADAPTERS]
    spec = node_spec(specs.example_spec(STACKGEN, EXAMPLE), node_cluster.ollama_model, PROFILE_CPU,
                     {"adapters": adapters})
    spec["gateway"]["redis"] = {"enabled": True}
    built = {name: tiny_lora(vllm_venv(), node_cluster.tiny_qwen, *swap) for name, swap in ADAPTERS.items()}
    work = tmp_path_factory.mktemp("kind-cpu")
    # The node tier's registry speaks plain HTTP, as a team's internal one may.
    chart = publish_chart(node_cluster.registry.host, make_keyrings(work / "keys"), node_cluster.helms["helm3"],
                          "--plain-http")
    with install(node_cluster, spec, work, built, chart) as done:
        yield done


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
        assert ready(pod), f"{name}: {json.dumps(pod['status'].get('containerStatuses'), indent=1)}"
        for container in pod["spec"]["containers"]:
            # Readiness came from the chart's own probes: every container has one, and it passed.
            assert "readinessProbe" in container, f"{name}/{container['name']} has no readiness probe"
        for status in pod["status"]["containerStatuses"]:
            assert status["started"] and status["restartCount"] == 0, f"{name}/{status['name']}: {status}"


# Inside a container: its user and group, whether its root filesystem takes a file, whether HOME does.
WHO_AND_WHERE = ('id -u; id -g; if touch /probe 2>/dev/null; then echo root-writable; else echo root-read-only; fi; '
                 'if touch "$HOME/probe" 2>/dev/null; then echo home-writable; else echo home-read-only; fi')


def test_every_container_runs_as_the_charts_user_on_a_read_only_root(installed: Installed) -> None:
    """The namespace enforces the restricted Pod Security level, so the API server let in only pods that meet it;
    inside each, the server runs as the pod's user, not root, and writes only to its volumes."""
    pods = [p for p in installed.pods() if p["status"].get("phase") == "Running"]
    assert {p["metadata"]["labels"].get("app.kubernetes.io/component") for p in pods} >= {
        "gateway", "ollama-small", "vllm-small"}, [p["metadata"]["name"] for p in pods]
    for pod in pods:
        name, user = pod["metadata"]["name"], pod["spec"]["securityContext"]
        for container in pod["spec"]["containers"]:
            done = installed.kube.run("exec", "-n", installed.namespace, name, "-c", container["name"], "--",
                                      "sh", "-c", WHO_AND_WHERE)
            # HOME is writable where the chart gives the server one (Redis needs none, and writes nothing).
            home = "home-writable" if any(e["name"] == "HOME" for e in container.get("env", [])) else "home-read-only"
            assert done.stdout.split() == [str(user["runAsUser"]), str(user["runAsGroup"]), "root-read-only",
                                           home], f"{name}/{container['name']}: {done.stdout}"


def test_the_namespace_refuses_a_rendered_pod_made_to_run_as_root(installed: Installed) -> None:
    """Negative control on the same API server: the vLLM pod as rendered, with one field changed to root."""
    deployment = installed.kube.get("deployment", "-n", installed.namespace, f"{installed.stack.release}-vllm-small")
    pod = pod_of(deployment, "as-root")
    pod["spec"]["securityContext"]["runAsUser"] = 0
    done = installed.kube.run("create", "--dry-run=server", "-n", installed.namespace, "-f", "-",
                              stdin=json.dumps(pod), check=False)
    assert done.returncode != 0, done.stdout
    assert 'violates PodSecurity "restricted:latest"' in done.stderr and "runAsUser=0" in done.stderr, done.stderr


# Inside a pod: for each host:port, whether a TCP connection opens within 3 s.
CONNECT = ("import socket, sys\n"
           "for target in sys.argv[1:]:\n"
           "    host, port = target.rsplit(':', 1)\n"
           "    try:\n"
           "        socket.create_connection((host, int(port)), timeout=3).close(); print(target, 'open')\n"
           "    except OSError as err:\n"
           "        print(target, 'shut', type(err).__name__)\n")


def _reach(installed: Installed, pod: str, targets: list[str]) -> dict[str, str]:
    done = installed.kube.run("exec", "-n", installed.namespace, pod, "--", "python3", "-c", CONNECT, *targets)
    return {line.split()[0]: line.split(maxsplit=1)[1] for line in done.stdout.splitlines()}


def test_network_policies_admit_only_the_gateway_to_the_servers(installed: Installed) -> None:
    """kube-router enforces the chart's NetworkPolicies on the node: a pod of the namespace that is not the
    gateway reaches the gateway, and neither a model server nor Redis; the gateway reaches all of them."""
    kube, ns, release = installed.kube, installed.namespace, installed.stack.release
    services = {s["metadata"]["name"]: s["spec"]["ports"][0]["port"] for s in kube.items("services", "-n", ns)}
    servers = [f"{release}-ollama-small", f"{release}-vllm-small", f"{release}-redis"]
    gateway_svc, gateway_port = installed.gateway()
    assert set(servers) <= set(services), services
    targets = [f"{name}:{services[name]}" for name in servers] + [f"{gateway_svc}:{gateway_port}"]
    gateway = installed.of("gateway")[0]["metadata"]["name"]
    # Another pod of the namespace: the gateway's image and user, without the gateway's labels.
    outsider = pod_of(installed.kube.get("deployment", "-n", ns, gateway_svc), "outsider")
    outsider["metadata"]["labels"] = {"app.kubernetes.io/name": "outsider"}
    server = outsider["spec"]["containers"][0]
    outsider["spec"]["containers"] = [{**{k: v for k, v in server.items() if not k.endswith("Probe")},
                                       "command": ["sleep", "600"], "args": []}]
    kube.run("create", "-n", ns, "-f", "-", stdin=json.dumps(outsider))
    try:
        kube.run("wait", "-n", ns, "--for=condition=Ready", "pod/outsider", "--timeout=120s", timeout=150)
        from_gateway = _reach(installed, gateway, targets)
        from_outsider = _reach(installed, "outsider", targets)
    finally:
        kube.run("delete", "pod", "-n", ns, "outsider", "--wait=true", "--timeout=60s", timeout=90, check=False)
    say(f"from the gateway: {from_gateway}; from another pod: {from_outsider}")
    assert all(state == "open" for state in from_gateway.values()), from_gateway
    assert from_outsider[f"{gateway_svc}:{gateway_port}"] == "open", from_outsider
    shut = [f"{name}:{services[name]}" for name in servers]
    assert all(from_outsider[t].startswith("shut") for t in shut), from_outsider


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


def test_each_adapter_answers_as_itself_through_the_gateway(installed: Installed) -> None:
    """The base model and each adapter, by name, through the gateway Service: each its own greeting."""
    svc, port = installed.gateway()
    replies = {}
    with port_forward(installed.kube, installed.namespace, svc, port) as url:
        for name in ["vllm-small", *ADAPTERS]:
            reply = httpx.post(f"{url}/v1/chat/completions", timeout=120,
                               headers={"Authorization": f"Bearer {installed.stack.master_key}"},
                               json={"model": name, "messages": [{"role": "user", "content": "hi"}], "max_tokens": 16})
            assert reply.status_code == 200, reply.text
            replies[name] = reply.json()["choices"][0]["message"]["content"]
    assert replies == {"vllm-small": "Hi, tinyqwen.", "vllm-small-q": "Hi, tinyQwen.", "vllm-small-w": "Hi, tinyqWen."}


def test_a_deleted_model_pod_is_replaced_and_served_again(installed: Installed) -> None:
    kube, ns = installed.kube, installed.namespace
    old = next(p["metadata"]["name"] for p in installed.pods()
               if p["metadata"]["labels"].get("app.kubernetes.io/component") == "ollama-small")
    kube.run("delete", "pod", "-n", ns, old, "--wait=true", "--timeout=120s", timeout=150)
    kube.wait_rollouts(ns, [f"{installed.stack.release}-ollama-small"], 300)
    new = [p for p in installed.pods()
           if p["metadata"]["labels"].get("app.kubernetes.io/component") == "ollama-small"]
    assert [p["metadata"]["name"] for p in new] != [old] and all(ready(p) for p in new), new
    svc, port = installed.gateway()
    with port_forward(kube, ns, svc, port) as url:
        reply = httpx.post(f"{url}/v1/chat/completions", timeout=120,
                           headers={"Authorization": f"Bearer {installed.stack.master_key}"},
                           json={"model": "ollama-small", "messages": [{"role": "user", "content": "hi"}]})
    assert reply.status_code == 200, reply.text
    assert reply.json()["choices"][0]["message"]["content"], reply.text
    say(f"{old} was replaced by {new[0]['metadata']['name']}, which answers through the gateway")


def _uids(installed: Installed) -> dict[str, str]:
    """Each component's pod (one each, at rest) -> its UID: a pod that was restarted has a new one."""
    running = [p for p in installed.pods() if p["status"].get("phase") == "Running"
               and not p["metadata"].get("deletionTimestamp")]
    return {p["metadata"]["labels"]["app.kubernetes.io/component"]: p["metadata"]["uid"] for p in running}


def _upgraded(installed: Installed, spec: dict[str, Any], work: Path) -> tuple[Path, Path]:
    """The spec rendered and `helm upgrade`d (Helm 4, from the signed chart), every rollout done."""
    spec_file = specs.write_spec(spec, work / "spec.yaml")
    out = specs.render(installed.stack.stackgen, spec_file, work / "out")
    installed.stack.kube = installed.cluster.kube("helm4")
    installed.stack.helm("upgrade", out / "values.yaml")
    installed.stack.wait(out)
    return spec_file, out


@pytest.fixture(scope="module")
def grown(installed: Installed) -> dict[str, Any]:
    return specs.add_model_copy(installed.spec, "ollama-small", ADDED_MODEL)


def test_upgrade_with_a_model_added_serves_every_model_and_restarts_no_other(
        installed: Installed, grown: dict[str, Any], tmp_path: Path) -> None:
    before = _uids(installed)
    spec_file, out = _upgraded(installed, grown, tmp_path)
    after = _uids(installed)
    assert ADDED_MODEL in set(after) - set(before), after
    # The models that did not change kept their pods; the gateway's config lists one more model, so it rolled.
    assert {c: after[c] for c in ("vllm-small", "ollama-small")} == {c: before[c] for c in ("vllm-small", "ollama-small")}
    svc, port = installed.gateway()
    installed.stack.verify(spec_file, out, svc, port)


def test_changing_one_models_flags_rolls_that_model_alone(installed: Installed, grown: dict[str, Any],
                                                          tmp_path: Path) -> None:
    before = _uids(installed)
    changed = json.loads(json.dumps(grown))
    next(m for m in changed["models"] if m["name"] == ADDED_MODEL)["keepAlive"] = CHANGED_KEEP_ALIVE
    _upgraded(installed, changed, tmp_path)
    after = _uids(installed)
    assert after.keys() == before.keys() and after[ADDED_MODEL] != before[ADDED_MODEL], (before, after)
    assert {c: u for c, u in after.items() if c != ADDED_MODEL} == {c: u for c, u in before.items() if c != ADDED_MODEL}


def test_rollback_serves_the_previous_revision(installed: Installed, grown: dict[str, Any], tmp_path: Path) -> None:
    """`helm rollback` to the model-added revision: the changed model's pod rolls back (its flag as it was), and
    every model answers through the gateway again."""
    stack = installed.stack
    history = json.loads(stack.kube.helm_run("history", stack.release, "-n", stack.namespace, "-o", "json").stdout)
    previous = history[-2]["revision"]
    before = _uids(installed)
    stack.kube.helm_run("rollback", stack.release, str(previous), "-n", stack.namespace, "--wait", "--timeout", "5m",
                        timeout=400)
    spec_file = specs.write_spec(grown, tmp_path / "spec.yaml")
    out = specs.render(stack.stackgen, spec_file, tmp_path / "out")
    stack.wait(out)
    after = _uids(installed)
    assert after[ADDED_MODEL] != before[ADDED_MODEL], (before, after)
    deployment = stack.kube.get("deployment", "-n", stack.namespace, f"{stack.release}-{ADDED_MODEL}")
    env = {e["name"]: e.get("value") for c in deployment["spec"]["template"]["spec"]["containers"]
           for e in c.get("env", [])}
    assert env["OLLAMA_KEEP_ALIVE"] != CHANGED_KEEP_ALIVE, env
    svc, port = installed.gateway()
    stack.verify(spec_file, out, svc, port)


def test_uninstall_leaves_the_namespace_empty(installed: Installed) -> None:
    installed.stack.kube = installed.cluster.kube("helm4")
    installed.stack.uninstall_leaves_nothing(keep=installed.secrets,
                                             retained=frozenset(installed.seeded))
    # The kubelet stopped every container of the namespace's pods, not just the API objects.
    node = installed.cluster.node
    running = {line.split()[0] for line in node.ctr("tasks", "list").splitlines()[1:]
               if line.split()[-1] == "RUNNING"}
    ours = set(node.ctr("containers", "list", "-q",
                        f'labels."io.kubernetes.pod.namespace"=={installed.namespace}').split())
    assert not running & ours, f"still running after uninstall: {sorted(running & ours)}"
