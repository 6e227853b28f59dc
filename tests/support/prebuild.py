"""A slow build a later tier needs, started in the background when the session begins.

The node tier's images (KEDA's operator compiled from its Go module, Debian images holding the engines) take
about 13 minutes of CPU on a cold machine, while the tiers before it spend most of their time waiting on
servers. So when a session has node-tier tests, it starts scripts/node/build.sh at the lowest CPU priority,
runs that tier last (tests/conftest.py), and the tier's fixture waits for the build before it asks the
cache. Warm, the script finds its cache entry and returns in seconds. The scripts' cache lock keeps a
second build of the same entry waiting, and a failed build is run again in the fixture, which fails with
its output.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
_started: dict[str, tuple[subprocess.Popen[bytes], Path, float]] = {}


def start(script: str) -> None:
    """Run scripts/<script> in the background, once per session, its output in a log file."""
    if script in _started:
        return
    log = Path(tempfile.mkstemp(prefix="stackgen-prebuild-", suffix=".log")[1])
    with log.open("wb") as out:
        process = subprocess.Popen(["nice", "-n", "19", "bash", str(REPO / "scripts" / script)], stdout=out,
                                   stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, start_new_session=True)
    _started[script] = (process, log, time.monotonic())


def wait(script: str) -> str | None:
    """Wait for the background build of scripts/<script>, if one was started: how it went, in words."""
    if script not in _started:
        return None
    process, log, began = _started.pop(script)
    asked = time.monotonic()
    code = process.wait()
    return (f"built in the background (exit {code}, {time.monotonic() - began:.0f}s after the session began; "
            f"waited {time.monotonic() - asked:.0f}s; log {log})")


def stop_all() -> None:
    """Stop any build still running: the session is over."""
    for process, _, _ in _started.values():
        if process.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(process.pid, signal.SIGTERM)
            process.wait(timeout=60)
    _started.clear()
