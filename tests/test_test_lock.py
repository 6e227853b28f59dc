"""scripts/test.sh runs one `make test` at a time on a machine: a second waits for the first, and nothing it
starts holds the lock (a server left running would otherwise block every later run)."""

from __future__ import annotations

import fcntl
import subprocess
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def test_a_second_run_waits_for_the_first_and_its_children_do_not_hold_the_lock(tmp_path: Path) -> None:
    # In place of the Python that runs the builds and pytest: a probe that says when it ran and whether it
    # inherited the lock's descriptor, then fails, which ends the script there.
    probe = tmp_path / "probe"
    probe.write_text('#!/bin/sh\ndate +%s.%N > "$PROBE_OUT"\n[ -e /proc/self/fd/8 ] && echo held >> "$PROBE_OUT"\n'
                     "exit 1\n")
    probe.chmod(0o755)
    out = tmp_path / "ran"
    env = {"PATH": "/usr/bin:/bin", "HOME": str(tmp_path), "STACKGEN_CACHE": str(tmp_path / "cache"),
           "PY": str(probe), "PROBE_OUT": str(out)}
    (tmp_path / "cache").mkdir()
    with (tmp_path / "cache" / "test.lock").open("w") as first:
        fcntl.flock(first, fcntl.LOCK_EX)
        second = subprocess.Popen(["bash", "scripts/test.sh"], cwd=ROOT, env=env, text=True,
                                  stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        time.sleep(2)
        assert second.poll() is None and not out.exists(), "the second run did not wait"
        released = time.time()
        fcntl.flock(first, fcntl.LOCK_UN)
    _, err = second.communicate(timeout=60)
    assert second.returncode == 1, err
    assert "another make test is running" in err, err
    ran, *rest = out.read_text().split()
    assert float(ran) >= released
    assert rest == [], "a command the script started inherited the lock"
