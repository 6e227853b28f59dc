"""Processes the local stack starts live until they are stopped or this process ends, whichever thread started
them (the kernel's parent-death signal follows the forking thread, not the process); the ports they get are
ones no connection takes in the meantime."""

from __future__ import annotations

import socket
import subprocess
import sys
import threading
from pathlib import Path

import pytest

from stackgen.localstack import ManagedProcess, free_ports, spawn


def test_a_process_spawned_from_a_thread_outlives_the_thread(tmp_path: Path) -> None:
    spawned: list[ManagedProcess] = []
    thread = threading.Thread(target=lambda: spawned.append(
        spawn("sleeper", [sys.executable, "-c", "import time; time.sleep(60)"], tmp_path / "sleeper.log")))
    thread.start()
    thread.join()
    (proc,) = spawned
    try:
        # The forking thread is gone; a child tied to it would have had SIGTERM by now.
        with pytest.raises(subprocess.TimeoutExpired):
            proc.popen.wait(timeout=2)
    finally:
        proc.stop()
    assert not proc.alive()


def test_free_ports_are_never_a_connections_source_port_nor_a_nodeport_and_never_handed_out_twice() -> None:
    """Below the kernel's ephemeral range, so no outgoing connection of any process takes one before its server
    binds it, and below Kubernetes' NodePorts; a port once handed out is not handed out again by this process."""
    low = int(Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split()[0])
    ports = free_ports(200)
    assert len(set(ports)) == len(ports) and all(p < min(low, 30000) for p in ports), (low, ports)
    # The race avoided: a connection's source port, the kernel's pick, is inside the ephemeral range.
    with socket.socket() as server, socket.socket() as client:
        server.bind(("127.0.0.1", ports[0]))
        server.listen()
        client.connect(("127.0.0.1", ports[0]))
        assert client.getsockname()[1] >= low
