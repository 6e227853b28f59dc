"""Start, wait for and stop the real servers of the local stack as child processes.

Every server runs in its own process (and process group) so a test can kill one
to simulate a crashed pod, and so nothing outlives the test session: children
are terminated at teardown and, on Linux, also die with the test runner if it
is killed outright (PR_SET_PDEATHSIG).
"""

from __future__ import annotations

import ctypes
import os
import secrets
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import yaml

LLAMA_RUNNER = Path(__file__).with_name("llamaserver.py")

# Environment for the gateway: no network fetch of the cost map, no telemetry,
# and no database, so the proxy runs in its master-key-only mode as in the chart.
_GATEWAY_ENV = {
    "LITELLM_LOCAL_MODEL_COST_MAP": "True",
    "LITELLM_TELEMETRY_DISABLED": "true",
    "LITELLM_LOG": "INFO",
}
_GATEWAY_ENV_DROP = ("DATABASE_URL", "STORE_MODEL_IN_DB", "REDIS_HOST", "REDIS_URL")


def free_port() -> int:
    """A TCP port on 127.0.0.1 that was free a moment ago (the kernel picks it)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


# Resolved once in the parent: the child (between fork and exec) must only make
# the call, not load libraries, as the parent may have other threads by then.
_LIBC = ctypes.CDLL(None, use_errno=True) if sys.platform.startswith("linux") else None
_PR_SET_PDEATHSIG = 1
_SIGTERM = int(signal.SIGTERM)


def _die_with_parent() -> None:
    # Ask the kernel to SIGTERM the child when the test runner dies, so even a
    # killed pytest leaves no servers behind.
    if _LIBC is not None:
        _LIBC.prctl(_PR_SET_PDEATHSIG, _SIGTERM)


@dataclass
class ManagedProcess:
    """A child process with its log file; stop() is idempotent."""

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
        popen = subprocess.Popen(
            argv,
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            env=dict(env) if env is not None else None,
            start_new_session=True,  # own process group: killpg reaches any grandchildren
            preexec_fn=_die_with_parent,
        )
    return ManagedProcess(name, popen, log_path)


def wait_until(
    ready: Callable[[], bool], proc: ManagedProcess, timeout: float, what: str, interval: float = 0.2
) -> None:
    """Poll ``ready`` until true; fail fast with the log tail if the process dies or time runs out."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if not proc.alive():
            raise RuntimeError(f"{what} exited with {proc.popen.returncode}:\n{proc.log_tail()}")
        if ready():
            return
        time.sleep(interval)
    proc.stop()
    raise TimeoutError(f"{what} not ready after {timeout:.0f}s:\n{proc.log_tail()}")


def _http_ok(url: str, headers: Mapping[str, str] | None = None) -> bool:
    try:
        return httpx.get(url, headers=headers, timeout=2.0).status_code == 200
    except httpx.HTTPError:
        return False


@dataclass
class ModelServer:
    """One llama.cpp server; ``api_base`` is what a LiteLLM entry points at."""

    alias: str
    url: str  # http://127.0.0.1:PORT
    process: ManagedProcess

    @property
    def api_base(self) -> str:
        return f"{self.url}/v1"


def start_llama_server(model: Path, alias: str, workdir: Path, timeout: float = 60.0) -> ModelServer:
    """Run tests/stack/llamaserver.py on ``model``, serving it under the name ``alias``."""
    tag = f"{alias.replace('/', '_').replace(':', '_')}-{secrets.token_hex(3)}"
    ready_file = workdir / f"llama-{tag}.url"
    argv = [sys.executable, str(LLAMA_RUNNER), "--model", str(model), "--alias", alias, "--port", "0",
            "--ready-file", str(ready_file)]
    proc = spawn(f"llama:{alias}", argv, workdir / f"llama-{tag}.log")
    wait_until(ready_file.exists, proc, timeout, f"llama.cpp server {alias!r}")
    url = ready_file.read_text().strip()
    wait_until(lambda: _http_ok(f"{url}/v1/models"), proc, timeout, f"llama.cpp server {alias!r} /v1/models")
    return ModelServer(alias, url, proc)


@dataclass
class Gateway:
    """A running LiteLLM proxy; ``url`` has no trailing slash and no /v1."""

    url: str
    master_key: str
    process: ManagedProcess
    config_path: Path
    config: dict[str, Any] = field(repr=False)

    def headers(self, key: str | None = None) -> dict[str, str]:
        return {"Authorization": f"Bearer {key if key is not None else self.master_key}"}


def start_litellm(
    config: Mapping[str, Any], env: Mapping[str, str] | None, workdir: Path, timeout: float = 120.0
) -> Gateway:
    """Write ``config`` to YAML and run the real LiteLLM proxy CLI on a free loopback port."""
    tag = secrets.token_hex(3)
    config_path = workdir / f"litellm-{tag}.yaml"
    config_path.write_text(yaml.safe_dump(dict(config), sort_keys=False))

    child_env = {k: v for k, v in os.environ.items() if k not in _GATEWAY_ENV_DROP}
    child_env.update(_GATEWAY_ENV)
    child_env.update(env or {})
    master_key = child_env.setdefault("LITELLM_MASTER_KEY", f"sk-test-{secrets.token_hex(16)}")

    port = free_port()
    argv = [sys.executable, "-m", "litellm.proxy.proxy_cli", "--config", str(config_path),
            "--host", "127.0.0.1", "--port", str(port), "--num_workers", "1"]
    proc = spawn("litellm", argv, workdir / f"litellm-{tag}.log", child_env)
    url = f"http://127.0.0.1:{port}"
    wait_until(lambda: _http_ok(f"{url}/health/liveliness"), proc, timeout, "LiteLLM /health/liveliness",
               interval=0.5)
    wait_until(lambda: _http_ok(f"{url}/health/readiness"), proc, timeout, "LiteLLM /health/readiness",
               interval=0.5)
    return Gateway(url, master_key, proc, config_path, dict(config))
