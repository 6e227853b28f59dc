"""Processes the local stack starts live until they are stopped or this process ends, whichever thread started
them (the kernel's parent-death signal follows the forking thread, not the process)."""

from __future__ import annotations

import subprocess
import sys
import threading
from pathlib import Path

import pytest

from stackgen.localstack import ManagedProcess, spawn


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
