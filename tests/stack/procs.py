"""Start llama.cpp model servers as child processes (the gateway's process code is stackgen.localstack's).

Every server runs in its own process (and process group) so a test can kill one to simulate a
crashed pod; nothing outlives the test session (see stackgen.localstack.spawn).
"""

from __future__ import annotations

import os
import secrets
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

from stackgen.gateway import REDIS_ENV
from stackgen.localstack import ManagedProcess, free_port, http_ok, spawn, wait_until

LLAMA_RUNNER = Path(__file__).with_name("llamaserver.py")


@dataclass
class ModelServer:
    """One llama.cpp server; ``api_base`` is what a LiteLLM entry points at."""

    alias: str
    url: str  # http://127.0.0.1:PORT
    process: ManagedProcess
    api_key: str | None = None  # the server refuses requests without it

    @property
    def api_base(self) -> str:
        return f"{self.url}/v1"

    def headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.api_key}"} if self.api_key else {}


def start_llama_server(model: Path, alias: str, workdir: Path, api_key: str | None = None,
                       timeout: float = 60.0, port: int = 0) -> ModelServer:
    """Run tests/stack/llamaserver.py on ``model``, serving it under the name ``alias``; ``port`` 0 lets the
    server pick one, a given port brings a server back where the gateway expects it."""
    tag = f"{alias.replace('/', '_').replace(':', '_')}-{secrets.token_hex(3)}"
    ready_file = workdir / f"llama-{tag}.url"
    argv = [sys.executable, str(LLAMA_RUNNER), "--model", str(model), "--alias", alias, "--port", str(port),
            "--ready-file", str(ready_file)]
    if api_key:
        argv += ["--api-key-env", "LLAMA_API_KEY"]
    # The key goes in through the environment, not argv, where any `ps` would show it.
    env = {**os.environ, **({"LLAMA_API_KEY": api_key} if api_key else {})}
    proc = spawn(f"llama:{alias}", argv, workdir / f"llama-{tag}.log", env)
    wait_until(ready_file.exists, proc, timeout, f"llama.cpp server {alias!r}")
    url = ready_file.read_text().strip()
    server = ModelServer(alias, url, proc, api_key)
    wait_until(lambda: http_ok(f"{url}/v1/models", server.headers()), proc, timeout,
               f"llama.cpp server {alias!r} /v1/models")
    return server



@dataclass
class Redis:
    """Debian's redis-server on loopback with a password, as the gateway's shared state."""

    process: ManagedProcess
    port: int
    password: str

    def cli(self, *args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(["redis-cli", "-p", str(self.port), *args], capture_output=True, text=True,
                              timeout=10, env={"REDISCLI_AUTH": self.password, "PATH": "/usr/bin:/bin"}, check=False)

    def keys(self) -> list[str]:
        return self.cli("--scan").stdout.split()

    def gateway_env(self) -> dict[str, str]:
        """What the chart puts in the gateway's environment for the rendered config to read."""
        return {REDIS_ENV["redis_host"]: "127.0.0.1", REDIS_ENV["redis_port"]: str(self.port),
                REDIS_ENV["redis_password"]: self.password}


def start_redis(workdir: Path) -> Redis:
    binary = shutil.which("redis-server")
    if binary is None:
        raise RuntimeError("redis-server is missing: `make test` installs it (scripts/test-debs.sh)")
    port, password = free_port(), secrets.token_hex(16)
    proc = spawn("redis", [binary, "--bind", "127.0.0.1", "--port", str(port), "--requirepass", password,
                           "--save", "", "--appendonly", "no", "--dir", str(workdir)], workdir / f"redis-{port}.log")
    server = Redis(proc, port, password)
    wait_until(lambda: server.cli("ping").stdout.strip() == "PONG", proc, 20, "redis-server")
    return server
