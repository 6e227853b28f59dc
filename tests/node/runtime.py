"""The node's parts, configured for this machine and started inside the node's network namespace:
containerd (Debian's, with runc and the CNI plugins), the kubelet and kube-proxy (built with the control
plane). Each config says why it departs from a default; every wait is bounded.

Four settings make a kubelet run here at all (measured on a machine of this kind):
- containerd's `restrict_oom_score_adj`: processes here lack CAP_SYS_RESOURCE, so lowering a sandbox's
  oom_score_adj fails ("can't get final child's PID from pipe: EOF") unless the runtime clamps it;
- no rlimit above the current hard limit, for the same reason: containerd's default spec (NOFILE 1024) fits;
- the kubelet's `cgroupDriver: cgroupfs` (no systemd here; cgroups are v1) and `failSwapOn: false`;
- images imported with `ctr -n k8s.io images import`, so IfNotPresent never pulls.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import socket as sock
import subprocess
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import yaml

from tests.cluster.controlplane import ControlPlane
from tests.cluster.pki import NODE_NAME, kubeconfig

from . import policy
from .network import NODE_IP, POD_CIDR, NodeNetwork

CNI_BIN = Path("/usr/lib/cni")
CGROUPS = Path("/sys/fs/cgroup")
# The kubelet puts its pods under this cgroup of every hierarchy, not at the top: what a killed run left
# there is ours alone to kill, whatever else runs on the machine.
CGROUP_ROOT = "stackgen-node"
CLUSTER_DNS = "198.19.0.10"
KUBELET_PORT = 10250


def containerd_config(work: Path, sandbox_image: str) -> str:
    """containerd 1.6's config (version 2), everything under ``work`` but the CNI plugins."""
    cri = {
        "sandbox_image": sandbox_image,
        "restrict_oom_score_adj": True,
        "containerd": {
            "snapshotter": "overlayfs",
            "default_runtime_name": "runc",
            "runtimes": {"runc": {"runtime_type": "io.containerd.runc.v2"}},
        },
        "cni": {"bin_dir": str(CNI_BIN), "conf_dir": str(work / "cni")},
        # Per-registry settings, read at each pull: Node.trust_registry writes one for a plain-HTTP registry.
        "registry": {"config_path": str(work / "certs.d")},
    }
    lines = [
        "version = 2",
        f'root = "{work / "root"}"',
        f'state = "{work / "state"}"',
        "[grpc]",
        f'  address = "{socket(work)}"',
        "[plugins.\"io.containerd.grpc.v1.cri\"]",
    ]
    return "\n".join(lines) + "\n" + _toml_tables("plugins.\"io.containerd.grpc.v1.cri\"", cri)


def _toml_tables(prefix: str, table: dict[str, object]) -> str:
    """The small subset of TOML these configs need: scalars first, then sub-tables."""
    out = []
    for key, value in table.items():
        if not isinstance(value, dict):
            out.append(f"{key} = {json.dumps(value)}")
    for key, value in table.items():
        if isinstance(value, dict):
            name = f'{prefix}.{key}'
            out.append(f"[{name}]")
            out.append(_toml_tables(name, value))
    return "\n".join(line for line in out if line) + "\n"


def socket(work: Path) -> Path:
    return work / "containerd.sock"


def cni_config() -> dict[str, object]:
    """A bridge on the pod CIDR with host-local addresses, the pods' default route through it, masquerade
    for traffic leaving the pod network, hairpin for a pod reaching itself through a Service, portmap."""
    return {
        "cniVersion": "1.0.0",
        "name": "stackgen-pods",
        "plugins": [
            {"type": "bridge", "bridge": "cni0", "isGateway": True, "ipMasq": True, "hairpinMode": True,
             "ipam": {"type": "host-local", "ranges": [[{"subnet": POD_CIDR}]],
                      "routes": [{"dst": "0.0.0.0/0"}]}},
            {"type": "portmap", "capabilities": {"portMappings": True}},
        ],
    }


def write_cni(conf_dir: Path) -> None:
    conf_dir.mkdir(parents=True, exist_ok=True)
    (conf_dir / "10-stackgen.conflist").write_text(json.dumps(cni_config(), indent=2))


def kubelet_config(work: Path, ca: Path, runtime_socket: Path) -> dict[str, object]:
    return {
        "apiVersion": "kubelet.config.k8s.io/v1beta1",
        "kind": "KubeletConfiguration",
        "address": NODE_IP,
        "port": KUBELET_PORT,
        "readOnlyPort": 0,
        "healthzBindAddress": "127.0.0.1",
        "healthzPort": 10248,
        # The apiserver's client certificate (logs, exec, port-forward) is signed by the cluster CA.
        "authentication": {"anonymous": {"enabled": False}, "webhook": {"enabled": False},
                           "x509": {"clientCAFile": str(ca)}},
        "authorization": {"mode": "AlwaysAllow"},
        "cgroupDriver": "cgroupfs",
        "cgroupRoot": f"/{CGROUP_ROOT}",
        "failSwapOn": False,
        "containerRuntimeEndpoint": f"unix://{runtime_socket}",
        "clusterDNS": [CLUSTER_DNS],
        "clusterDomain": "cluster.local",
        # The node's own resolver for pods with dnsPolicy Default: nothing outside the cluster resolves.
        "resolvConf": str(work / "resolv.conf"),
        "podCIDR": POD_CIDR,
        "podLogsDir": str(work / "pod-logs"),
        # A shared CI disk is often fuller than the defaults allow; images imported here must never be
        # collected (nothing could pull them back).
        "evictionHard": {"memory.available": "200Mi", "nodefs.available": "1%", "imagefs.available": "1%",
                         "nodefs.inodesFree": "1%"},
        "imageGCHighThresholdPercent": 100,
        "imageGCLowThresholdPercent": 99,
        "serializeImagePulls": False,
        "maxPods": 30,
        # Status every few seconds, so tests see a replaced pod Ready soon after it is.
        "nodeStatusUpdateFrequency": "4s",
        "syncFrequency": "10s",
    }


def kube_proxy_config(kubeconfig_path: Path) -> dict[str, object]:
    return {
        "apiVersion": "kubeproxy.config.k8s.io/v1alpha1",
        "kind": "KubeProxyConfiguration",
        "clientConnection": {"kubeconfig": str(kubeconfig_path)},
        "mode": "iptables",
        "clusterCIDR": POD_CIDR,
        "hostnameOverride": NODE_NAME,
        "bindAddress": NODE_IP,
        "healthzBindAddress": "127.0.0.1:10256",
        "metricsBindAddress": "127.0.0.1:10249",
        # Conntrack tables are the machine's, not the namespace's: leave their size alone (as kind does).
        "conntrack": {"maxPerCore": 0},
    }


def normalized(ref: str) -> str:
    """An image reference as containerd stores it: Docker Hub's implied host and library/ spelled out."""
    first, _, rest = ref.partition("/")
    if not rest:
        return f"docker.io/library/{ref}"
    if "." not in first and ":" not in first and first != "localhost":
        return f"docker.io/{ref}"
    return ref


def _cgroup_dirs() -> list[Path]:
    """Our cgroup in each mounted v1 hierarchy (cpu,cpuacct style symlinks skipped)."""
    return [d / CGROUP_ROOT for d in sorted(CGROUPS.iterdir()) if d.is_dir() and not d.is_symlink()]


def make_cgroups() -> None:
    for d in _cgroup_dirs():
        d.mkdir(exist_ok=True)


def kill_leftovers() -> int:
    """Kill every process under our cgroups and every runc shim whose containerd is gone (a shim outlives
    its containerd by design); returns how many processes were killed."""
    pids = set()
    for d in _cgroup_dirs():
        for procs in d.rglob("cgroup.procs") if d.is_dir() else []:
            pids.update(int(p) for p in procs.read_text().split())
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit():
            continue
        try:
            argv = (proc / "cmdline").read_bytes().split(b"\0")
        except OSError:
            continue
        if argv and argv[0].endswith(b"containerd-shim-runc-v2") and b"-address" in argv:
            address = argv[argv.index(b"-address") + 1].decode()
            # Only shims of a test's containerd (under pytest's temporary directories).
            if "/pytest-of-" in address and not _listening(address):
                pids.add(int(proc.name))
    for pid in pids:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)
    # Empty cgroups, deepest first, so the next kubelet starts from a clean root.
    for d in _cgroup_dirs():
        for sub in sorted((p for p in d.rglob("*") if p.is_dir()), key=lambda p: -len(p.parts)):
            with contextlib.suppress(OSError):
                sub.rmdir()
    return len(pids)


RUNTIME_TREES = ("containerd", "kubelet")  # a node's trees under its work directory


def _mounts_under(work: Path) -> list[str]:
    return [target for target in (line.split()[1] for line in Path("/proc/self/mounts").read_text().splitlines())
            if target == str(work) or target.startswith(f"{work}/")]


def remove_runtime_trees(work: Path) -> bool:
    """Unmount what a node's kubelet and containerd left mounted under ``work``, then delete their trees (the
    unpacked images and the pods' files: 26 GB after a whole run of the tier). Returns False, deleting nothing,
    if a mount would not go: nothing is deleted through a mount point."""
    for target in reversed(_mounts_under(work)):
        subprocess.run(["umount", "-l", target], capture_output=True, check=False)
    if _mounts_under(work):
        return False
    for tree in RUNTIME_TREES:
        shutil.rmtree(work / tree, ignore_errors=True)
    return True


def leftover_nodes(work: Path) -> list[Path]:
    """The work directories of this tier's earlier runs that still hold a node's trees: a run killed before its
    teardown leaves them, mounts and all, in pytest's numbered temporary directories beside ``work``'s."""
    return sorted(d for d in work.parent.parent.glob(f"*/{work.name.rstrip('0123456789')}*")
                  if d != work and any((d / tree).is_dir() for tree in RUNTIME_TREES))


def _listening(path: str) -> bool:
    with contextlib.suppress(OSError), sock.socket(sock.AF_UNIX) as s:
        s.settimeout(2)
        s.connect(path.removeprefix("unix://"))
        return True
    return False


class Node:
    """containerd, kubelet and kube-proxy for one node, as components of ``cp`` (stopped with it)."""

    def __init__(self, cp: ControlPlane, net: NodeNetwork, work: Path, images: Path) -> None:
        self.cp, self.net, self.work, self.images = cp, net, work, images
        self.runtime = work / "containerd"

    def _in_ns(self, name: str, argv: list[str]) -> None:
        # nsenter joins only the network namespace: the kubelet's mounts (Secrets, ConfigMaps, tokens)
        # must be the ones containerd sees, so both stay in this machine's mount namespace.
        self.cp.spawn(name, ["nsenter", f"--net={self.net.path}", *argv])

    def ctr(self, *args: str, timeout: float = 600) -> str:
        done = subprocess.run(["ctr", "--address", str(socket(self.runtime)), "-n", "k8s.io", *args],
                              capture_output=True, text=True, timeout=timeout, check=False)
        if done.returncode != 0:
            raise RuntimeError(f"ctr {' '.join(args)} failed: {done.stderr.strip()}")
        return done.stdout

    def start_runtime(self, sandbox_image: str) -> None:
        self.runtime.mkdir(parents=True, exist_ok=True)
        config = self.runtime / "config.toml"
        config.write_text(containerd_config(self.runtime, sandbox_image))
        write_cni(self.runtime / "cni")
        self._in_ns("containerd", ["containerd", "--config", str(config), "--log-level", "warn"])
        self.cp.wait("containerd serving", lambda: bool(self.ctr("version", timeout=10)))

    def trust_registry(self, host: str) -> None:
        """Let the kubelet's pulls reach the registry ``host`` (host:port) over plain HTTP: its hosts.toml."""
        where = self.runtime / "certs.d" / host
        where.mkdir(parents=True, exist_ok=True)
        (where / "hosts.toml").write_text(f'server = "http://{host}"\n\n[host."http://{host}"]\n'
                                          '  capabilities = ["pull", "resolve"]\n')

    def import_images(self) -> dict[str, float]:
        """Import every archive of scripts/node/build.sh; returns seconds per image."""
        refs = dict(line.split() for line in (self.images / "refs.txt").read_text().splitlines())
        return self.import_archives({self.images / f"{name}.tar": ref for name, ref in refs.items()})

    def import_archives(self, archives: dict[Path, str]) -> dict[str, float]:
        """Import image archives (path -> the reference each holds), two at a time and the biggest first
        (vLLM's, two thirds of the node's bytes, is mostly disk writes, and the rest import beside it); returns
        seconds per archive, by its name without `.tar`."""

        def one(archive: Path) -> float:
            start = time.monotonic()
            self.ctr("images", "import", str(archive), timeout=1800)
            return round(time.monotonic() - start, 1)

        paths = sorted(archives, key=lambda path: -path.stat().st_size)
        with ThreadPoolExecutor(max_workers=2) as pool:
            took = {path.stem: seconds for path, seconds in zip(paths, pool.map(one, paths), strict=True)}
        listed = self.ctr("images", "list", "-q").split()
        missing = [ref for ref in archives.values() if normalized(ref) not in listed]
        assert not missing, f"missing after import: {missing}"
        return took

    def start_kubelet(self) -> None:
        assert self.cp.pki is not None
        kubelet = self.work / "kubelet"
        kubelet.mkdir(parents=True, exist_ok=True)
        (kubelet / "resolv.conf").write_text("nameserver 127.0.0.1\n")
        (kubelet / "config.yaml").write_text(yaml.safe_dump(
            kubelet_config(kubelet, self.cp.pki.ca_cert, socket(self.runtime))))
        kubeconfig_path = kubelet / "kubeconfig"
        kubeconfig_path.write_text(kubeconfig(self.cp.pki, "node", self.cp.api_url))
        self._in_ns("kubelet", [
            self.cp.binary("kubelet"), f"--config={kubelet / 'config.yaml'}",
            f"--kubeconfig={kubeconfig_path}", f"--root-dir={kubelet / 'root'}",
            f"--cert-dir={kubelet / 'pki'}", f"--node-ip={NODE_IP}", f"--hostname-override={NODE_NAME}",
            "--v=1",
        ])

    def start_kube_proxy(self) -> None:
        assert self.cp.pki is not None
        proxy = self.work / "kube-proxy"
        proxy.mkdir(parents=True, exist_ok=True)
        kubeconfig_path = proxy / "kubeconfig"
        kubeconfig_path.write_text(kubeconfig(self.cp.pki, "kube-proxy", self.cp.api_url))
        (proxy / "config.yaml").write_text(yaml.safe_dump(kube_proxy_config(kubeconfig_path)))
        self._in_ns("kube-proxy", [self.cp.binary("kube-proxy"), f"--config={proxy / 'config.yaml'}"])

    def start_policy_engine(self, binary: Path) -> None:
        """kube-router's NetworkPolicy controller (policy.py), once the node is registered (it reads its Node);
        returns when its chains are in the node's filter table."""
        assert self.cp.pki is not None
        work = self.work / "kube-router"
        work.mkdir(parents=True, exist_ok=True)
        kubeconfig_path = work / "kubeconfig"
        kubeconfig_path.write_text(kubeconfig(self.cp.pki, "kube-router", self.cp.api_url))
        self._in_ns("kube-router", policy.argv(binary, kubeconfig_path))
        self.cp.wait("kube-router's NetworkPolicy chains",
                     lambda: f":{policy.FORWARD_CHAIN} " in self.net.in_ns("iptables-save", "-t", "filter"))

    def stop_containers(self) -> list[str]:
        """Kill whatever containers are left (their shims outlive containerd's process group), so the
        runtime can stop and nothing keeps running after the session; returns what had to be killed."""
        if not socket(self.runtime).exists():
            return []
        try:
            tasks = [line.split()[0] for line in self.ctr("tasks", "list", "-q", timeout=30).splitlines()]
            for task in tasks:
                self.ctr("tasks", "kill", "-s", "SIGKILL", task, timeout=30)
            deadline = time.monotonic() + 30
            while time.monotonic() < deadline and self.ctr("tasks", "list", "-q", timeout=30).strip():
                time.sleep(0.5)
            for container in self.ctr("containers", "list", "-q", timeout=30).split():
                subprocess.run(["ctr", "--address", str(socket(self.runtime)), "-n", "k8s.io", "tasks",
                                "delete", container], capture_output=True, timeout=30, check=False)
                try:
                    self.ctr("containers", "delete", container, timeout=30)
                except RuntimeError as err:
                    if "not found" not in str(err):  # the kubelet, still running, may remove it first
                        raise
        except (RuntimeError, subprocess.TimeoutExpired) as err:
            return [f"containers: {err}"]
        return [f"killed {len(tasks)} leftover containers"] if tasks else []

    def disk_needed(self) -> int:
        """Bytes a whole run of the tier writes under the work directory: its image archives, unpacked, and the
        pods' files (a whole run left 26 GB for 10.5 GB of archives)."""
        return int(2.5 * sum(archive.stat().st_size for archive in self.images.glob("*.tar")))

