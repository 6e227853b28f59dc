"""The chart's model pods as local processes: command, args, env and probes read from `helm template`.

Nothing here knows an engine's flags. A container is taken from the Deployment the chart renders for a
model (the `manifests/` output of `stackgen render`, which is `helm template` of the rendered values),
and only what must differ on this machine is substituted, each substitution named by the caller:
the model (a local directory or registry reference instead of a Hub id or library tag), the port
(a free one instead of the engine's default), the host (loopback instead of 0.0.0.0) and the volume
mounts (directories under the test's workdir instead of /root/...).
"""

from __future__ import annotations

import os
import re
import shlex
import signal
import subprocess
import time
from collections.abc import Callable, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import yaml

from stackgen.localstack import ManagedProcess, free_port, spawn
from tests.support.wait import GiveUp, poll


@dataclass(frozen=True)
class Container:
    """One container of a rendered pod, as the kubelet would start it."""

    name: str
    command: list[str]
    args: list[str]
    env: dict[str, str]  # plain values only; a Secret reference is refused (see `container`)
    port: int | None  # the `http` port
    probes: dict[str, str]  # startupProbe/readinessProbe/livenessProbe -> HTTP path
    startup_exec: list[str] | None  # a startup probe that runs a command instead
    readiness_exec: list[str] | None  # a readiness probe that runs a command instead
    probe_budget: float  # seconds the startup probe allows: period x failure threshold
    mounts: dict[str, str]  # volume name -> mount path

    @property
    def argv(self) -> list[str]:
        return [*self.command, *self.args]


def deployment(files: Mapping[str, str], stack: str, model: str) -> dict[str, Any]:
    """The Deployment the chart renders for one model, from `render_files` output."""
    doc: dict[str, Any] = yaml.safe_load(files[f"manifests/deployment-{stack}-{model}.yaml"])
    return doc


def container(pod_spec: Mapping[str, Any], name: str, init: bool = False) -> Container:
    """A named container (or init container) of a pod spec."""
    pool = pod_spec.get("initContainers" if init else "containers") or []
    found = next((c for c in pool if c["name"] == name), None)
    if found is None:
        raise LookupError(f"no {'init ' if init else ''}container {name!r} in {[c['name'] for c in pool]}")
    env: dict[str, str] = {}
    for var in found.get("env") or []:
        if "value" not in var:
            raise ValueError(f"{name}: env {var['name']} comes from {var.get('valueFrom')}; give it a local value")
        env[var["name"]] = str(var["value"])
    port = next((p["containerPort"] for p in found.get("ports") or [] if p.get("name") == "http"), None)
    probes = {kind: found[kind]["httpGet"]["path"] for kind in ("startupProbe", "readinessProbe", "livenessProbe")
              if kind in found and "httpGet" in found[kind]}
    startup = found.get("startupProbe") or {}
    startup_exec = startup.get("exec", {}).get("command")
    readiness_exec = (found.get("readinessProbe") or {}).get("exec", {}).get("command")
    budget = float(startup.get("periodSeconds", 10) * startup.get("failureThreshold", 3))
    mounts = {m["name"]: m["mountPath"] for m in found.get("volumeMounts") or []}
    return Container(name, list(found.get("command") or []), [str(a) for a in found.get("args") or []], env, port,
                     probes, startup_exec, readiness_exec, budget, mounts)


def replace_flag(args: list[str], flag: str, value: str) -> list[str]:
    """`args` with the value after `flag` replaced; the flag must be there (a test must not add one)."""
    if flag not in args:
        raise LookupError(f"{flag} is not in the rendered args {args}")
    i = args.index(flag)
    return [*args[: i + 1], value, *args[i + 2:]]


def rehome(env: Mapping[str, str], mounts: Mapping[str, str], volumes: Mapping[str, Path]) -> dict[str, str]:
    """Env values naming a mount path now name the local directory standing in for that volume."""
    out = dict(env)
    for volume, local in volumes.items():
        mount = mounts[volume]
        out = {k: v.replace(mount, str(local)) for k, v in out.items()}
    return out


def base_env(**extra: str) -> dict[str, str]:
    """A clean environment: PATH and locale from here, nothing else that could change an engine's behaviour."""
    keep = {k: v for k, v in os.environ.items() if k in ("PATH", "LANG", "LC_ALL", "TMPDIR")}
    return {**keep, **extra}


@dataclass
class Server:
    """An engine started from a chart container; `url` is http://127.0.0.1:PORT."""

    name: str
    url: str
    process: ManagedProcess
    container: Container
    started_seconds: float = 0.0
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def api_base(self) -> str:
        return f"{self.url}/v1"

    def stop(self) -> None:
        self.process.stop(grace=20)


def _status(url: str) -> int | None:
    try:
        return httpx.get(url, timeout=5.0).status_code
    except httpx.HTTPError:
        return None


def _exec_ok(argv: list[str], env: Mapping[str, str]) -> bool:
    done = subprocess.run(argv, env=dict(env), capture_output=True, timeout=300, check=False, stdin=subprocess.DEVNULL)
    return done.returncode == 0


def wait_for_probes(server: Server, budget_cap: float, exec_argv: list[str] | None = None,
                    exec_env: Mapping[str, str] | None = None) -> None:
    """Wait as the kubelet does: the startup probe until it passes (within its budget, capped for a test),
    then the readiness and liveness probes must pass too. Raises with the server's log otherwise.
    A startup probe that runs a command is run as `exec_argv` (the container's command, rewritten)."""
    probes = server.container.probes
    start = time.monotonic()
    deadline = start + min(server.container.probe_budget, budget_cap)
    first = probes.get("startupProbe") or probes["readinessProbe"]
    if server.container.startup_exec and exec_argv is None:
        raise ValueError(f"{server.name}: its startup probe runs {server.container.startup_exec}; give it locally")

    def started() -> tuple[bool, str]:
        if not server.process.alive():
            raise GiveUp(f"{server.name} exited with {server.process.popen.returncode} before its startup "
                         f"probe passed:\n{server.process.log_tail(60)}")
        if exec_argv is not None:
            return _exec_ok(exec_argv, exec_env or {}), "startup command failing"
        return _status(server.url + first) == 200, "startup probe failing"

    try:
        poll(f"{server.name}'s startup probe {exec_argv or first}", started, deadline - start, say=lambda _: None)
    except GiveUp as err:
        raise RuntimeError(str(err)) from None
    except AssertionError as err:
        server.stop()
        raise TimeoutError(f"{server.name}: {err}:\n{server.process.log_tail(60)}") from None
    server.started_seconds = time.monotonic() - start
    ready = server.container.readiness_exec
    if ready:
        # The command asks the container's own port; here the server listens on the test's.
        local = [arg.replace(f"127.0.0.1:{server.container.port}/", f"{server.url.removeprefix('http://')}/")
                 for arg in ready]
        done = subprocess.run(local, env=dict(exec_env or os.environ), capture_output=True, text=True, timeout=60,
                              check=False)
        if done.returncode != 0:
            raise AssertionError(f"{server.name}: readiness command failed: {done.stdout}{done.stderr[-2000:]}")
    for kind in ("livenessProbe", *(() if ready else ("readinessProbe",))):
        status = _status(server.url + probes[kind])
        if status != 200:
            raise AssertionError(f"{server.name}: {kind} {probes[kind]} answered {status}")


def expand(args: list[str], env: Mapping[str, str]) -> list[str]:
    """`$(NAME)` in a container's args replaced by NAME's value in its environment, as the kubelet does (a name the
    environment lacks stays as written, as there)."""
    return [re.sub(r"\$\(([A-Za-z_][A-Za-z0-9_]*)\)", lambda m: env.get(m.group(1), m.group(0)), arg) for arg in args]


def spawned(name: str, argv: list[str], env: Mapping[str, str], c: Container, port: int, workdir: Path) -> Server:
    """Start a rewritten container command, its command line and log kept in `workdir`."""
    log = workdir / f"{name}.log"
    log.parent.mkdir(parents=True, exist_ok=True)
    (workdir / f"{name}.cmd").write_text(shlex.join(argv) + "\n")
    return Server(name, f"http://127.0.0.1:{port}", spawn(name, argv, log, env), c)


def launch(name: str, argv: list[str], env: Mapping[str, str], c: Container, port: int, workdir: Path,
           budget_cap: float = 600.0, exec_argv: list[str] | None = None) -> Server:
    """Start a rewritten container command and wait on its probes (an exec probe runs with the same env)."""
    server = spawned(name, argv, env, c, port, workdir)
    wait_for_probes(server, budget_cap, exec_argv, env)
    return server


def start_together(starts: Mapping[str, Callable[[], Server]]) -> dict[str, Server]:
    """Run each start at once: a start mostly waits on one core (two vLLM starts here: 78 s one after the other,
    39 s together). If any fails, the ones that came up are stopped and the first error raised."""
    with ThreadPoolExecutor(max_workers=len(starts)) as pool:
        futures = {name: pool.submit(start) for name, start in starts.items()}
    started = {name: f.result() for name, f in futures.items() if f.exception() is None}
    errors = [err for f in futures.values() if (err := f.exception()) is not None]
    if errors:
        for server in started.values():
            server.stop()
        raise errors[0]
    return started


def run_to_completion(name: str, argv: list[str], env: Mapping[str, str], workdir: Path,
                      timeout: float = 600.0) -> subprocess.CompletedProcess[str]:
    """Run an init container's command as the kubelet would: when it exits, whatever it left running in
    its process group goes too (the container ends). Output goes to a file, so a straggler holding the
    output open cannot hang the test; it is kept in the workdir for a failing test to show."""
    log = workdir / f"{name}.log"
    with log.open("wb") as out:
        proc = subprocess.Popen(argv, env=dict(env), stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                start_new_session=True)
        try:
            code = proc.wait(timeout=timeout)
        finally:
            try:
                os.killpg(proc.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
    return subprocess.CompletedProcess(argv, code, log.read_text(errors="replace"), "")


__all__ = ["Container", "Server", "base_env", "container", "deployment", "free_port", "launch", "rehome",
           "replace_flag", "run_to_completion", "start_together", "wait_for_probes"]
