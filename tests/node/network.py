"""The real node's network: a network namespace of its own, joined to this machine by one veth pair.

Everything lies in 198.18.0.0/15, the benchmarking range, so no address of the test cluster is a
private-network address and nothing leaves the machine:

    198.18.0.0/29   the link: this machine .1 (the apiserver, the model registry) and .3 (the registry's
                    file server, which must be another host), the node .2 (kubelet, kube-proxy)
    198.18.1.0/24   pods, on the node's bridge (CNI bridge + host-local)
    198.19.0.0/16   Services (tests/cluster/controlplane.py SERVICE_CIDR)

kube-proxy's iptables rules and the pods' bridge live in the node's namespace, so they vanish with it;
this machine keeps only the veth end and its routes to the pods and to the Services, which go when the namespace
is deleted. A Service's address reached from here passes kube-proxy's rules in the node, as an agent's call from
another node would.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import subprocess
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import IO

from tests.cluster.controlplane import SERVICE_CIDR

HOST_IP = "198.18.0.1"
FILES_IP = "198.18.0.3"
NODE_IP = "198.18.0.2"
LINK_PREFIX = 29
POD_CIDR = "198.18.1.0/24"
# Names start with this; a run removes what a killed run left (a namespace, and so its veth).
PREFIX = "sgnode"
# The addresses are fixed, so one node tier runs at a time on a machine; another run waits for it.
LOCK = "/run/lock/stackgen-node.lock"
LOCK_WAIT_S = 1800


def run(*argv: str) -> str:
    done = subprocess.run(argv, capture_output=True, text=True, timeout=30, check=False)
    if done.returncode != 0:
        raise RuntimeError(f"{' '.join(argv)} failed ({done.returncode}): {done.stderr.strip()}")
    return done.stdout


def _stale_namespaces() -> list[str]:
    return [line.split()[0] for line in run("ip", "netns", "list").splitlines()
            if line.startswith(PREFIX)]


@dataclass
class NodeNetwork:
    name: str = f"{PREFIX}{os.getpid()}"
    lock: IO[str] | None = field(default=None, repr=False)

    @property
    def host_if(self) -> str:
        return f"{self.name}h"[-15:]  # interface names are at most 15 characters

    @property
    def path(self) -> str:
        return f"/run/netns/{self.name}"

    def in_ns(self, *argv: str) -> str:
        return run("ip", "netns", "exec", self.name, *argv)

    def _take_lock(self) -> None:
        self.lock = open(LOCK, "w")  # noqa: SIM115 - held until delete()
        deadline = time.monotonic() + LOCK_WAIT_S
        while True:
            try:
                fcntl.flock(self.lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
                return
            except BlockingIOError:
                if time.monotonic() > deadline:
                    raise RuntimeError(f"another node tier held {LOCK} for {LOCK_WAIT_S}s") from None
                time.sleep(2)

    def create(self, clean_up: Callable[[], object] = lambda: None) -> None:
        """Take the machine's node lock, run `clean_up` (a killed run's processes must go before its namespace
        can), remove what such a run left, and make the namespace and link."""
        self._take_lock()
        clean_up()
        # Holding the lock, any namespace of ours belongs to a run that was killed.
        for stale in _stale_namespaces():
            with contextlib.suppress(RuntimeError):
                run("ip", "netns", "delete", stale)
            # A namespace outlives its deletion while a killed run's processes still hold it; removing our end
            # of its link removes the pair and the route through it now.
            with contextlib.suppress(RuntimeError):
                run("ip", "link", "delete", f"{stale}h"[-15:])
        run("ip", "netns", "add", self.name)
        run("ip", "link", "add", self.host_if, "type", "veth", "peer", "name", "eth0", "netns", self.name)
        run("ip", "addr", "add", f"{HOST_IP}/{LINK_PREFIX}", "dev", self.host_if)
        run("ip", "addr", "add", f"{FILES_IP}/{LINK_PREFIX}", "dev", self.host_if)
        run("ip", "link", "set", self.host_if, "up")
        for cidr in (POD_CIDR, SERVICE_CIDR):
            run("ip", "route", "add", cidr, "via", NODE_IP, "dev", self.host_if)
        self.in_ns("ip", "addr", "add", f"{NODE_IP}/{LINK_PREFIX}", "dev", "eth0")
        self.in_ns("ip", "link", "set", "lo", "up")
        self.in_ns("ip", "link", "set", "eth0", "up")
        self.in_ns("ip", "route", "add", "default", "via", HOST_IP)
        # The node routes between its pods and the link; Service traffic between two pods on one bridge
        # must pass iptables for kube-proxy's NAT to be undone on the way back.
        self.in_ns("sysctl", "-qw", "net.ipv4.ip_forward=1", "net.bridge.bridge-nf-call-iptables=1")

    def delete(self) -> None:
        with contextlib.suppress(RuntimeError):
            run("ip", "netns", "delete", self.name)
        if self.lock is not None:
            self.lock.close()  # releases the lock
            self.lock = None
