"""A real LiteLLM proxy process started with the gateway container's own arguments."""

from __future__ import annotations

import contextlib
import os
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path
from typing import Iterator

LITELLM = Path(sys.executable).parent / "litellm"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@contextlib.contextmanager
def litellm_proxy(args: list[str], config_text: str, env: dict[str, str], workdir: Path) -> Iterator[str]:
    """Runs `litellm <args>` with the config file and port swapped for local ones; yields its URL."""
    config = workdir / "config.yaml"
    config.write_text(config_text)
    port = free_port()
    local_args = list(args)
    local_args[local_args.index("--config") + 1] = str(config)
    local_args[local_args.index("--port") + 1] = str(port)
    # One worker: the config and routes are the same, and start-up halves on a small test machine.
    local_args[local_args.index("--num_workers") + 1] = "1"
    log = (workdir / "litellm.log").open("w")
    proc = subprocess.Popen(
        [str(LITELLM), *local_args, "--host", "127.0.0.1"],
        cwd=workdir,
        env={**os.environ, **env},
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        _wait_alive(url, proc, workdir / "litellm.log")
        yield url
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=10)
        log.close()


def _wait_alive(url: str, proc: subprocess.Popen[bytes], log: Path) -> None:
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"litellm exited with {proc.returncode}:\n{log.read_text()[-4000:]}")
        try:
            with urllib.request.urlopen(f"{url}/health/liveliness", timeout=2) as resp:
                if resp.status == 200:
                    return
        except OSError:
            pass
        time.sleep(0.5)
    raise RuntimeError(f"litellm did not come up in 120s:\n{log.read_text()[-4000:]}")
