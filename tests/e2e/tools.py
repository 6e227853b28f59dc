"""Where the e2e tests find their tools, and why the kind tests cannot run on this machine (if so)."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
CHART = REPO / "charts" / "inference-stack"
SCRIPTS = REPO / "scripts"
KIND_CONFIG = SCRIPTS / "kind" / "cluster.yaml"

# The one reason printed when the kind tests are skipped (as on CI, which has no container engine).
NO_DOCKER = (
    "kind e2e needs a container engine: docker not found on PATH "
    "(run on a machine with Docker: make e2e-kind)"
)
NO_DAEMON = (
    "kind e2e needs a container engine: docker is on PATH but its daemon does not answer "
    "(start Docker, then: make e2e-kind)"
)
NO_KIND = (
    "kind e2e needs kind: kind not found on PATH "
    "(go install sigs.k8s.io/kind@v0.30.0, then: make e2e-kind)"
)


def find_tool(name: str) -> str | None:
    """The project's pinned copy first (.tools/bin, the virtualenv), then PATH."""
    for candidate in (REPO / ".tools" / "bin" / name, Path(sys.executable).parent / name):
        if candidate.is_file() and os.access(candidate, os.X_OK):
            return str(candidate)
    return shutil.which(name)


def require_tool(name: str, hint: str) -> str:
    path = find_tool(name)
    if path is None:
        raise RuntimeError(f"{name} not found ({hint})")
    return path


def kind_unavailable_reason() -> str | None:
    """None when a kind cluster can exist here; otherwise the reason, for the skip message."""
    if shutil.which("docker") is None:
        return NO_DOCKER
    try:
        subprocess.run(["docker", "info"], check=True, capture_output=True, timeout=30)
    except (subprocess.CalledProcessError, subprocess.TimeoutExpired):
        return NO_DAEMON
    if shutil.which("kind") is None:
        return NO_KIND
    return None
