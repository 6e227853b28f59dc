"""What a killed run of this tier leaves is cleared by the next: its node's trees, mounts and all (a run killed
before its teardown once left 26 GB and 18 mounts in /tmp, and the next run's image import found no room)."""

from __future__ import annotations

import subprocess
from pathlib import Path

from .runtime import leftover_nodes, remove_runtime_trees


def test_a_killed_runs_node_trees_are_found_unmounted_and_removed(tmp_path: Path) -> None:
    current = tmp_path / "pytest-3" / "node0"
    killed = tmp_path / "pytest-1" / "node0"
    for tree in (current / "containerd", killed / "containerd" / "root", killed / "kubelet", tmp_path / "pytest-2"
                 / "engines0" / "containerd", tmp_path / "pytest-2" / "node0" / "registry"):
        tree.mkdir(parents=True)
    mounted = killed / "kubelet" / "pods"
    mounted.mkdir()
    subprocess.run(["mount", "-t", "tmpfs", "tmpfs", str(mounted)], check=True)
    (mounted / "secret").write_text("x")
    try:
        # Only earlier nodes' directories holding a node's trees: not this run's, nor another tier's, nor a node's
        # directory whose trees are already gone.
        assert leftover_nodes(current) == [killed]
        assert remove_runtime_trees(killed)
        assert str(mounted) not in Path("/proc/self/mounts").read_text()
        assert not (killed / "containerd").exists() and not (killed / "kubelet").exists()
        assert (current / "containerd").is_dir()
        assert leftover_nodes(current) == []
    finally:
        subprocess.run(["umount", "-l", str(mounted)], capture_output=True, check=False)
