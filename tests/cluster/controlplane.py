"""A real Kubernetes control plane on loopback: etcd, kube-apiserver, kube-controller-manager,
kube-scheduler, and kwok standing in for kubelets. Every wait is bounded; stop() leaves no process."""

from __future__ import annotations

import contextlib
import ctypes
import functools
import json
import os
import signal
import ssl
import subprocess
import time
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from stackgen.localstack import free_ports
from tests.support import prebuild
from tests.support.kube import Kubectl
from tests.support.tools import tool
from tests.support.wait import GiveUp, poll

from . import pki as pki_mod

STAGES = Path(__file__).with_name("kwok-stages.yaml")
# kubectl is the tools' (tests/support/tools.py), as every tier's.
BINARIES = ("etcd", "kube-apiserver", "kube-controller-manager", "kube-scheduler", "kubelet", "kube-proxy", "kwok")
# A cold build is ~30 min on 2 cores (see scripts/controlplane/README.md); `make test` builds first.
BUILD_TIMEOUT_S = 75 * 60
START_TIMEOUT_S = 180.0
STOP_GRACE_S = 15.0
# Inside 198.18.0.0/15, the benchmarking range: no test address is a private-network address.
SERVICE_CIDR = "198.19.0.0/16"
KUBERNETES_SERVICE_IP = "198.19.0.1"
# Nodes carrying this annotation are the ones kwok plays the kubelet for.
KWOK_NODE_ANNOTATION = "kwok.x-k8s.io/node"


class ControlPlaneError(RuntimeError):
    pass


def build_binaries() -> Path:
    """The control plane's bin dir, built by scripts/controlplane/build.sh (a cache hit takes about a second)."""
    try:
        bin_dir = prebuild.built("controlplane/build.sh", timeout=BUILD_TIMEOUT_S)
    except prebuild.BuildError as err:
        raise ControlPlaneError(str(err)) from err
    missing = [b for b in BINARIES if not (bin_dir / b).is_file()]
    if missing:
        raise ControlPlaneError(f"{bin_dir} lacks {missing} after scripts/controlplane/build.sh")
    return bin_dir


def _die_with_parent() -> None:
    # If pytest itself is killed, the kernel kills the component too: no orphan survives a CI abort.
    libc = ctypes.CDLL("libc.so.6", use_errno=True)
    libc.prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG


@dataclass
class Component:
    name: str
    popen: subprocess.Popen[bytes]
    log: Path

    def tail(self, lines: int = 40) -> str:
        try:
            return "\n".join(self.log.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return "(no log)"


@dataclass
class ControlPlane:
    bin_dir: Path
    work: Path
    # Loopback unless a real node (tests/node) must reach the apiserver from its network namespace.
    bind_address: str = "127.0.0.1"
    pki: pki_mod.Pki | None = None
    components: list[Component] = field(default_factory=list)
    api_url: str = ""
    kubeconfig: Path = Path()
    timings: dict[str, float] = field(default_factory=dict)

    def binary(self, name: str) -> str:
        return str(self.bin_dir / name)

    # -- processes ---------------------------------------------------------------------------

    def spawn(self, name: str, argv: list[str]) -> Component:
        log = self.work / "logs" / f"{name}.log"
        log.parent.mkdir(parents=True, exist_ok=True)
        with log.open("wb") as out:
            # preexec_fn is safe here: components start before the provisioner thread does.
            popen = subprocess.Popen(argv, stdout=out, stderr=subprocess.STDOUT,
                                     stdin=subprocess.DEVNULL, start_new_session=True,
                                     preexec_fn=_die_with_parent,  # noqa: PLW1509
                                     cwd=self.work)
        comp = Component(name, popen, log)
        self.components.append(comp)
        return comp

    def wait(self, what: str, ok: Callable[[], bool], comp: Component | None = None,
             timeout: float = START_TIMEOUT_S) -> None:
        """Until ok() holds; at once, with its log, if any process of the control plane (or the node's) exits."""
        start = time.monotonic()

        def check() -> tuple[bool, str]:
            for c in self.components:
                if c.popen.poll() is not None:
                    raise GiveUp(f"{c.name} exited ({c.popen.returncode}) while waiting for {what}:\n{c.tail()}")
            return ok(), "not yet"

        try:
            poll(what, check, timeout, period=0.5, say=lambda _: None)
        except (GiveUp, AssertionError) as err:
            detail = comp.tail() if comp else ""
            raise ControlPlaneError(f"{err}\n{detail}") from err
        self.timings[what] = round(time.monotonic() - start, 1)

    def _get(self, url: str, context: ssl.SSLContext | None = None) -> str:
        with urllib.request.urlopen(url, timeout=5, context=context) as resp:
            return str(resp.read().decode())

    def _is_ok(self, url: str, context: ssl.SSLContext | None = None) -> bool:
        return self._get(url, context) == "ok"

    @property
    def client(self) -> Kubectl:
        """kubectl against this control plane, as its admin."""
        return Kubectl(kubectl=tool("kubectl"), kubeconfig=str(self.kubeconfig))

    # -- lifecycle ---------------------------------------------------------------------------

    def start(self) -> None:
        t0 = time.monotonic()
        pki = self.pki = pki_mod.make_pki(self.work / "pki", (self.bind_address, KUBERNETES_SERVICE_IP))
        etcd_port, peer_port, api_port, cm_port, sched_port, kwok_port = free_ports(6)
        self.api_url = f"https://{self.bind_address}:{api_port}"
        # Pods reach the API through the `kubernetes` Service only when there is a node to run them.
        endpoints = (["--endpoint-reconciler-type=none"] if self.bind_address == "127.0.0.1"
                     else ["--endpoint-reconciler-type=lease"])
        configs = {}
        for client in pki_mod.CLIENTS:
            path = self.work / f"{client}.kubeconfig"
            path.write_text(pki_mod.kubeconfig(pki, client, self.api_url))
            configs[client] = str(path)
        self.kubeconfig = Path(configs["admin"])

        etcd = self.spawn("etcd", [
            self.binary("etcd"), "--name", "test", "--data-dir", str(self.work / "etcd"),
            "--listen-client-urls", f"http://127.0.0.1:{etcd_port}",
            "--advertise-client-urls", f"http://127.0.0.1:{etcd_port}",
            "--listen-peer-urls", f"http://127.0.0.1:{peer_port}",
            "--initial-advertise-peer-urls", f"http://127.0.0.1:{peer_port}",
            "--initial-cluster", f"test=http://127.0.0.1:{peer_port}",
            # Throwaway data: fsync only costs time on a shared CI disk.
            "--unsafe-no-fsync", "--log-level", "warn",
        ])
        self.wait("etcd healthy", lambda: json.loads(
            self._get(f"http://127.0.0.1:{etcd_port}/health")).get("health") == "true", etcd)

        api = self.spawn("kube-apiserver", [
            self.binary("kube-apiserver"),
            f"--etcd-servers=http://127.0.0.1:{etcd_port}",
            f"--bind-address={self.bind_address}", f"--secure-port={api_port}",
            f"--advertise-address={self.bind_address}", *endpoints,
            # The node tier's kubelet is reached at its address: no DNS here knows the node's name.
            "--kubelet-preferred-address-types=InternalIP,Hostname",
            f"--kubelet-client-certificate={pki.cert('apiserver-kubelet-client')}",
            f"--kubelet-client-key={pki.key('apiserver-kubelet-client')}",
            f"--tls-cert-file={pki.cert('apiserver')}", f"--tls-private-key-file={pki.key('apiserver')}",
            f"--client-ca-file={pki.ca_cert}",
            "--service-account-issuer=https://kubernetes.default.svc.cluster.local",
            f"--service-account-key-file={pki.sa_pub}",
            f"--service-account-signing-key-file={pki.sa_key}",
            f"--service-cluster-ip-range={SERVICE_CIDR}",
            "--authorization-mode=Node,RBAC",
            "--allow-privileged=true", "--profiling=false",
            f"--cert-dir={self.work / 'apiserver-certs'}",
            # The aggregation layer, for aggregated API servers (KEDA's external metrics, tests/node): the
            # front proxy's CA and the name it trusts, the headers that carry the user, and the client cert
            # the apiserver presents. No kube-proxy runs beside the apiserver, so it dials the aggregated
            # server's endpoints (pod IPs, routed to the node) rather than its Service IP.
            f"--requestheader-client-ca-file={pki.front_proxy_ca}",
            f"--requestheader-allowed-names={pki_mod.FRONT_PROXY_CLIENT}",
            "--requestheader-username-headers=X-Remote-User", "--requestheader-group-headers=X-Remote-Group",
            "--requestheader-extra-headers-prefix=X-Remote-Extra-",
            f"--proxy-client-cert-file={pki.cert(pki_mod.FRONT_PROXY_CLIENT)}",
            f"--proxy-client-key-file={pki.key(pki_mod.FRONT_PROXY_CLIENT)}",
            "--enable-aggregator-routing=true",
        ])
        ctx = ssl.create_default_context(cafile=str(pki.ca_cert))
        ctx.load_cert_chain(str(pki.cert("admin")), str(pki.key("admin")))
        self.wait("kube-apiserver ready", functools.partial(self._is_ok, f"{self.api_url}/readyz", ctx),
                   api)

        # Their serving certs are self-signed at start-up; only health is read from them.
        insecure = ssl.create_default_context()
        insecure.check_hostname = False
        insecure.verify_mode = ssl.CERT_NONE
        for name, port, extra in (
            ("kube-controller-manager", cm_port, [
                f"--service-account-private-key-file={pki.sa_key}", f"--root-ca-file={pki.ca_cert}",
                "--use-service-account-credentials=true"]),
            ("kube-scheduler", sched_port, []),
        ):
            client = "controller-manager" if name == "kube-controller-manager" else "scheduler"
            comp = self.spawn(name, [
                self.binary(name), f"--kubeconfig={configs[client]}",
                f"--authentication-kubeconfig={configs[client]}",
                f"--authorization-kubeconfig={configs[client]}",
                "--bind-address=127.0.0.1", f"--secure-port={port}",
                f"--cert-dir={self.work / (name + '-certs')}", "--leader-elect=false", *extra])
            url = f"https://127.0.0.1:{port}/healthz"
            self.wait(f"{name} healthy", functools.partial(self._is_ok, url, insecure), comp)

        kwok = self.spawn("kwok", [
            self.binary("kwok"), f"--kubeconfig={configs['kwok']}",
            "--manage-all-nodes=false",
            f"--manage-nodes-with-annotation-selector={KWOK_NODE_ANNOTATION}=fake",
            "--node-lease-duration-seconds=40",
            f"--server-address=127.0.0.1:{kwok_port}",
            f"--config={STAGES}",
        ])
        self.wait("kwok healthy", functools.partial(self._is_ok, f"http://127.0.0.1:{kwok_port}/healthz"),
                   kwok)
        # The controller-manager's token controller must have run before pods can be admitted.
        self.wait("default service account", lambda: self.client.run(
            "get", "serviceaccount", "default", "-n", "default", check=False).returncode == 0, None)
        self.timings["control plane up"] = round(time.monotonic() - t0, 1)

    def stop(self) -> list[str]:
        """Stop in reverse order; returns the names of components that needed SIGKILL or survived."""
        trouble = []
        for comp in reversed(self.components):
            if comp.popen.poll() is not None:
                continue
            with contextlib.suppress(ProcessLookupError):
                os.killpg(comp.popen.pid, signal.SIGTERM)
            try:
                comp.popen.wait(timeout=STOP_GRACE_S)
            except subprocess.TimeoutExpired:
                trouble.append(f"{comp.name} ignored SIGTERM")
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(comp.popen.pid, signal.SIGKILL)
                comp.popen.wait(timeout=STOP_GRACE_S)
        for comp in self.components:
            # The whole process group must be gone, not just the leader.
            with contextlib.suppress(ProcessLookupError):
                os.killpg(comp.popen.pid, 0)
                trouble.append(f"{comp.name} process group {comp.popen.pid} still alive")
        return trouble
