"""Run a stack's rendered gateway config on this machine, against model servers running here.

The gateway config stackgen renders addresses in-cluster model servers by their Service DNS names
(``http://<fullname>-<key>/v1``). To exercise that same config against local stand-ins (llama.cpp
servers in the tests, anything OpenAI-compatible for `stackgen verify --local`), only those addresses
change; everything else (model names, provider prefixes, router settings, auth) stays exactly as
rendered, so what is checked is the config that ships.

The gateway is the real LiteLLM proxy, started as the `litellm` executable (installed with
`litellm[proxy]`); nothing here imports LiteLLM.
"""

from __future__ import annotations

import copy
import ctypes
import os
import random
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import yaml

from .errors import Problem, StackgenError
from .gateway import MASTER_KEY_ENV, hook_files
from .plan import Plan

__all__ = ["Gateway", "ManagedProcess", "free_port", "free_ports", "local_gateway", "point_at_local", "rewire", "spawn",
           "start_gateway", "wait_until"]

# The gateway runs as in the chart: master key only, no database, no cost-map download, no telemetry.
GATEWAY_ENV = {"LITELLM_LOCAL_MODEL_COST_MAP": "True", "LITELLM_TELEMETRY_DISABLED": "true", "LITELLM_LOG": "INFO"}
GATEWAY_ENV_DROP = ("DATABASE_URL", "STORE_MODEL_IN_DB", "REDIS_HOST", "REDIS_URL")


def point_at_local(config: Mapping[str, Any], urls: Mapping[str, str]) -> dict[str, Any]:
    """Return a deep copy of ``config`` with each named model's ``api_base`` replaced.

    ``urls`` maps a ``model_name`` to the base URL of an OpenAI-compatible server, ending in ``/v1``
    like the in-cluster addresses it stands in for. Every entry carrying that ``model_name`` is
    re-pointed; entries not named are copied unchanged. Hosted providers (mistral/, together_ai/) get
    an ``api_base`` too: LiteLLM then sends their OpenAI-style requests there. The input is not modified.

    Raises ValueError naming every ``model_name`` the config lacks and every URL not ending in
    ``/v1``: both would otherwise surface later as a confusing 404 from the gateway.
    """
    bad_urls = sorted(name for name, url in urls.items() if not url.rstrip("/").endswith("/v1"))
    if bad_urls:
        raise ValueError(f"local URL must end in /v1 for model(s): {', '.join(bad_urls)}")

    result: dict[str, Any] = copy.deepcopy(dict(config))
    entries = result.get("model_list") or []
    present = {entry.get("model_name") for entry in entries if isinstance(entry, Mapping)}
    missing = sorted(name for name in urls if name not in present)
    if missing:
        raise ValueError(f"gateway config has no model_list entry for: {', '.join(missing)}")

    for entry in entries:
        name = entry.get("model_name") if isinstance(entry, dict) else None
        if isinstance(name, str) and name in urls:
            params = entry.setdefault("litellm_params", {})
            params["api_base"] = urls[name].rstrip("/")
    return result


def rewire(config: Mapping[str, Any], plan: Plan, backends: Mapping[str, str]) -> dict[str, Any]:
    """``point_at_local`` for a whole stack: every in-cluster model must have a backend (there is no
    cluster DNS here); external ones may. Raises StackgenError listing every problem."""
    problems = [Problem("--backend", f"no model named {name!r} in stack {plan.stack.name}",
                        f"name one of: {', '.join(m.name for m in plan.models)}")
                for name in backends if name not in {m.name for m in plan.models}]
    problems += [Problem("--backend", f"{m.name} runs in the cluster, so it needs a local stand-in",
                         f"add --backend {m.name}=http://127.0.0.1:PORT/v1")
                 for m in plan.served if m.name not in backends]
    problems += [Problem("--backend", f"{name}: {url!r} does not end in /v1", "give the server's OpenAI base URL")
                 for name, url in backends.items() if not url.rstrip("/").endswith("/v1")]
    if problems:
        raise StackgenError(problems)
    # An adapter is served by its base model's server.
    adapters = {a.name: backends[a.base] for a in plan.adapters if a.base in backends}
    return point_at_local(config, {**adapters, **backends})


# Ports for local servers come from below both the kernel's ephemeral range (ip_local_port_range, 32768 and up by
# default), where every outgoing connection of every process takes its source port, and Kubernetes' NodePorts
# (30000 and up). The kernel's own pick (a bind to port 0) comes from the ephemeral range, so a connection could
# take it between the check and the server's bind: a loaded test run lost that race once (an Ollama server's
# `bind: address already in use`). Here only another bind can, and no port is handed out twice by one process.
_PORTS = range(15000, 30000)
_given: set[int] = set()
_ports_lock = threading.Lock()
_random = random.SystemRandom()  # not a seeded generator: forked processes must not draw the same ports


def _ephemeral_low() -> int:
    try:
        return int(Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return 32768


def free_port(host: str = "127.0.0.1") -> int:
    """A TCP port on `host`, free a moment ago, that no outgoing connection can take before its server binds it."""
    top = min(_PORTS.stop, _ephemeral_low())
    with _ports_lock:
        for _ in range(200):
            port = _random.randrange(_PORTS.start, top)
            if port in _given:
                continue
            with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
                try:
                    sock.bind((host, port))
                except OSError:
                    continue
            _given.add(port)
            return port
    raise RuntimeError(f"no free TCP port on {host} in {_PORTS.start}-{top - 1} after 200 tries")


def free_ports(count: int, host: str = "127.0.0.1") -> list[int]:
    """`count` distinct free ports on `host`."""
    return [free_port(host) for _ in range(count)]


# Resolved once in the parent: between fork and exec the child must only make the call.
_LIBC = ctypes.CDLL(None, use_errno=True) if sys.platform.startswith("linux") else None
_PR_SET_PDEATHSIG = 1


def _die_with_parent() -> None:
    # The kernel SIGTERMs the child when its parent dies, so even a killed caller leaves no server behind.
    if _LIBC is not None:
        _LIBC.prctl(_PR_SET_PDEATHSIG, int(signal.SIGTERM))


# The parent the kernel watches is the thread that forked, not the process: a server started from a worker
# thread would be killed when that thread ended. Every child is forked from this one thread, which lasts as long
# as the process.
_FORKER = ThreadPoolExecutor(max_workers=1, thread_name_prefix="stackgen-spawn")


@dataclass
class ManagedProcess:
    """A child process in its own process group, with its log file; stop() is idempotent."""

    name: str
    popen: subprocess.Popen[bytes]
    log_path: Path

    @property
    def pid(self) -> int:
        return self.popen.pid

    def alive(self) -> bool:
        return self.popen.poll() is None

    def log_tail(self, lines: int = 40) -> str:
        try:
            text = self.log_path.read_text(errors="replace")
        except OSError:
            return ""
        return "\n".join(text.splitlines()[-lines:])

    def _signal_group(self, sig: signal.Signals) -> None:
        try:
            os.killpg(self.popen.pid, sig)
        except ProcessLookupError:
            pass

    def kill(self) -> None:
        """SIGKILL the process group and reap it: the abrupt death of a crashed pod."""
        self._signal_group(signal.SIGKILL)
        self.popen.wait(timeout=10)

    def stop(self, grace: float = 10.0) -> None:
        """SIGTERM, then SIGKILL after ``grace`` seconds; a stopped (SIGSTOP) process is resumed first."""
        if self.popen.poll() is not None:
            return
        self._signal_group(signal.SIGTERM)
        self._signal_group(signal.SIGCONT)
        try:
            self.popen.wait(timeout=grace)
        except subprocess.TimeoutExpired:
            self.kill()


def spawn(name: str, argv: list[str], log_path: Path, env: Mapping[str, str] | None = None) -> ManagedProcess:
    log_path.parent.mkdir(parents=True, exist_ok=True)
    with log_path.open("wb") as log:
        popen = _FORKER.submit(subprocess.Popen, argv, stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
                               env=dict(env) if env is not None else None,
                               start_new_session=True,  # own process group: killpg reaches grandchildren
                               preexec_fn=_die_with_parent).result()
    return ManagedProcess(name, popen, log_path)


def wait_until(ready: Callable[[], bool], proc: ManagedProcess, timeout: float, what: str,
               interval: float = 0.2) -> None:
    """Poll ``ready`` until true; stop the process and raise with its log tail if it dies or time runs out."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if not proc.alive():
            raise RuntimeError(f"{what} exited with {proc.popen.returncode}:\n{proc.log_tail()}")
        if ready():
            return
        time.sleep(interval)
    proc.stop()
    raise TimeoutError(f"{what} not ready after {timeout:.0f}s:\n{proc.log_tail()}")


def http_ok(url: str, headers: Mapping[str, str] | None = None) -> bool:
    try:
        return httpx.get(url, headers=headers, timeout=2.0).status_code == 200
    except httpx.HTTPError:
        return False


def litellm_executable() -> str:
    """The `litellm` CLI: beside this Python first (a venv used without activating it), then PATH."""
    beside = Path(sys.executable).parent / "litellm"
    found = str(beside) if beside.is_file() else shutil.which("litellm")
    if not found:
        raise StackgenError([Problem("--local", "the litellm executable was not found",
                                     "pip install 'litellm[proxy]' into this environment")])
    return found


@dataclass
class Gateway:
    """A running LiteLLM proxy; ``url`` has no trailing slash and no /v1."""

    url: str
    master_key: str
    process: ManagedProcess
    config_path: Path
    config: dict[str, Any] = field(repr=False)

    @property
    def api_base(self) -> str:
        return f"{self.url}/v1"

    def headers(self, key: str | None = None) -> dict[str, str]:
        return {"Authorization": f"Bearer {key if key is not None else self.master_key}"}


def start_gateway(config: Mapping[str, Any], workdir: Path, env: Mapping[str, str | None] | None = None,
                  port: int | None = None, timeout: float = 120.0) -> Gateway:
    """Write ``config`` to YAML in ``workdir`` and run the LiteLLM proxy on it on a loopback port.

    The child gets this process's environment plus ``env`` (a None value unsets); the master key is ``env``'s
    LITELLM_MASTER_KEY (as the chart sets it from a Secret), or a random one. Returns once the proxy
    is live and ready; raises RuntimeError/TimeoutError with the proxy's log otherwise."""
    tag = secrets.token_hex(3)
    config_path = workdir / f"litellm-{tag}.yaml"
    config_path.write_text(yaml.safe_dump(dict(config), sort_keys=False))
    for name, text in hook_files(config).items():  # the modules its callbacks name, beside it
        (workdir / name).write_text(text)

    child_env = {k: v for k, v in os.environ.items() if k not in GATEWAY_ENV_DROP}
    child_env.update(GATEWAY_ENV)
    for name, value in (env or {}).items():  # None removes a variable (a benchmark of LiteLLM's defaults)
        if value is None:
            child_env.pop(name, None)
        else:
            child_env[name] = value
    master_key = child_env.setdefault(MASTER_KEY_ENV, f"sk-local-{secrets.token_hex(16)}")

    port = port or free_port()
    argv = [litellm_executable(), "--config", str(config_path), "--host", "127.0.0.1", "--port", str(port),
            "--num_workers", "1"]
    proc = spawn("litellm", argv, workdir / f"litellm-{tag}.log", child_env)
    url = f"http://127.0.0.1:{port}"
    for path in ("/health/liveliness", "/health/readiness"):
        wait_until(lambda: http_ok(url + path), proc, timeout, f"LiteLLM {path}", interval=0.5)  # noqa: B023 - waited here
    return Gateway(url, master_key, proc, config_path, dict(config))


@contextmanager
def local_gateway(config: Mapping[str, Any], env: Mapping[str, str] | None = None,
                  timeout: float = 120.0) -> Iterator[Gateway]:
    """``start_gateway`` in a scratch directory that is removed, with the proxy, on exit."""
    with tempfile.TemporaryDirectory(prefix="stackgen-local-") as tmp:
        gateway = start_gateway(config, Path(tmp), env, timeout=timeout)
        try:
            yield gateway
        finally:
            gateway.process.stop()
