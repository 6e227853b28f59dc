"""The node tier's cluster: tests/cluster's real control plane plus one real node (containerd, runc, the CNI
bridge, a kubelet, kube-proxy, kube-router's NetworkPolicy controller) in a network namespace of its own,
cluster DNS (CoreDNS) running on it as a pod, and kwok's GPU pools beside it. The chart's pods run there as
real containers, from the images scripts/node/build.sh makes; the models come from the real-engine tier
(tests/engines): Ollama's from a local registry the pods pull from, vLLM's from a pre-seeded Hugging Face
cache volume.

Built parts are cached per version; no part missing means a loud failure, never a skip.
"""

from __future__ import annotations

import shutil
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.cluster.controlplane import ControlPlane, ControlPlaneError, build_binaries
from tests.cluster.fakes import POOLS
from tests.cluster.kube import helm_binaries, say
from tests.cluster.pki import NODE_NAME
from tests.e2e.kube import Kube
from tests.engines.engines import ollama_bin_dir, tiny_qwen, vllm_venv
from tests.engines.registry import Registry, build_tiny_model, publish_model, start_registry
from tests.pins import pin
from tests.support.kube import condition_true
from tests.support.prebuild import BuildError, built
from tests.support.tools import ToolMissing, tool

from . import policy
from .network import FILES_IP, HOST_IP, NodeNetwork
from .runtime import CLUSTER_DNS, Node, kill_leftovers, leftover_nodes, make_cgroups, remove_runtime_trees

READY_TIMEOUT_S = 240
report: dict[str, Any] = {}


def pytest_terminal_summary(terminalreporter: Any) -> None:
    if report:
        terminalreporter.write_sep("-", "tests/node: the real node")
        for key, value in report.items():
            terminalreporter.write_line(f"{key}: {value}")


@dataclass
class NodeCluster:
    cp: ControlPlane
    node: Node
    helms: dict[str, str]
    refs: dict[str, str]  # image name in scripts/node -> the reference it is tagged with
    registry: Registry
    ollama_model: str  # the tiny Ollama model's reference in that registry
    tiny_qwen: Path  # the tiny Qwen2 the vLLM image serves

    def kube(self, helm: str = "helm3") -> Kube:
        return Kube(context="stackgen-test", kubectl=tool("kubectl"), helm=self.helms[helm],
                    kubeconfig=str(self.cp.kubeconfig))


def _node_ready(cp: ControlPlane) -> bool:
    return condition_true(cp.client.get("node", NODE_NAME), "Ready")


def _coredns_objects() -> list[dict[str, Any]]:
    text = (Path(__file__).with_name("coredns.yaml").read_text()
            .replace("COREDNS_VERSION", pin("coredns")).replace("CLUSTER_DNS", CLUSTER_DNS))
    return [doc for doc in yaml.safe_load_all(text) if doc]


def _gpu_pools() -> list[dict[str, Any]]:
    # The CPU pool stays out: the chart's CPU pods must land on the real node, not on kwok's.
    return [n for pool in POOLS if pool.gpus for n in pool.nodes()]


@pytest.fixture(scope="session")
def node_cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[NodeCluster]:
    try:
        helms = helm_binaries()
    except ToolMissing as err:
        pytest.fail(str(err), pytrace=False)
    t0 = time.monotonic()
    # Each part is waited for only when the start needs it: the images are imported while kube-router still
    # compiles, and crane and KEDA are their modules' to wait for.
    try:
        bin_dir, images = build_binaries(), built("node/build.sh")
    except (ControlPlaneError, BuildError) as err:
        pytest.fail(f"cannot build the node tier's parts: {err}", pytrace=False)
    refs = dict(line.split() for line in (images / "refs.txt").read_text().splitlines())
    report["parts"] = f"{bin_dir}, {images} (ready after {time.monotonic() - t0:.1f}s)"

    work = tmp_path_factory.mktemp("node")
    net = NodeNetwork()
    cp = ControlPlane(bin_dir, work / "controlplane", bind_address=HOST_IP)
    node = Node(cp, net, work, images)
    registry = None
    try:
        def clean_up() -> None:
            if killed := kill_leftovers():
                say(f"killed {killed} processes a killed run of this tier left behind")
            for stale in leftover_nodes(work):
                if remove_runtime_trees(stale):
                    say(f"removed the node's trees that a killed run of this tier left in {stale}")

        net.create(clean_up)
        make_cgroups()
        free, needed = shutil.disk_usage(work).free, node.disk_needed()
        if free < needed:
            pytest.fail(f"the node tier needs about {needed / 2**30:.0f} GB free under {work}, and {free / 2**30:.0f} "
                        "GB is (its images unpacked and its pods' files); free some, or give pytest a --basetemp "
                        "with more room", pytrace=False)
        cp.start()
        start = time.monotonic()
        node.start_runtime(refs["pause"])
        cp.timings["images imported"] = node.import_images()
        node.start_kubelet()
        node.start_kube_proxy()
        cp.wait("node Ready", lambda: _node_ready(cp), timeout=READY_TIMEOUT_S)
        cp.timings["node Ready"] = round(time.monotonic() - start, 1)
        kube = Kube(context="stackgen-test", kubectl=tool("kubectl"), helm=helms["helm3"],
                    kubeconfig=str(cp.kubeconfig))
        for obj in policy.rbac():
            kube.apply(obj)
        node.start_policy_engine(built("kube-router/build.sh") / "kube-router")
        for obj in _gpu_pools() + _coredns_objects():
            kube.apply(obj)
        kube.run("rollout", "status", "-n", "kube-system", "deployment/coredns", f"--timeout={READY_TIMEOUT_S}s",
                 timeout=READY_TIMEOUT_S + 10)
        cp.timings["cluster DNS Ready"] = round(time.monotonic() - start, 1)

        registry = start_registry(ollama_bin_dir() / "registry", work / "registry", host=HOST_IP,
                                  files_host=FILES_IP)
        gguf = build_tiny_model(work / "tiny-ollama.gguf")
        model = publish_model(ollama_bin_dir() / "ollama", gguf, registry, "tiny", work / "publish")
        cluster = NodeCluster(cp, node, helms, refs, registry, model, tiny_qwen(vllm_venv()))
    except BaseException as err:
        _teardown(cp, node, net, registry)
        if isinstance(err, Exception):
            logs = "\n".join(f"--- {c.name}\n{c.tail(25)}" for c in cp.components)
            pytest.fail(f"the node tier did not start: {err}\n{logs}", pytrace=False)
        raise
    report["startup"] = cp.timings
    say(f"real node {NODE_NAME} Ready: {cp.timings}")
    try:
        yield cluster
    finally:
        report["teardown"] = _teardown(cp, node, net, registry) or "every component exited on SIGTERM"


def _teardown(cp: ControlPlane, node: Node, net: NodeNetwork, registry: Registry | None) -> list[str]:
    """Pods first (through the kubelet, which tears their sandboxes and networks down), then the node's
    processes and the control plane, then what the kernel still holds: mounts, the namespace."""
    trouble = []
    if cp.kubeconfig.is_file() and any(c.name == "kubelet" and c.popen.poll() is None for c in cp.components):
        cp.client.run("delete", "deployments,statefulsets,daemonsets,jobs,pods", "--all", "--all-namespaces",
                   "--wait=true", "--timeout=120s", timeout=150, check=False)
    trouble += node.stop_containers()
    trouble += cp.stop()
    if killed := kill_leftovers():
        trouble.append(f"{killed} processes outlived their pods and were killed")
    if not remove_runtime_trees(node.work):
        trouble.append(f"mounts under {node.work} would not go; its trees are left")
    net.delete()
    if registry is not None:
        registry.stop()
    return trouble
