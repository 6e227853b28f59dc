"""Why the kind tests cannot run on this machine (if so)."""

from __future__ import annotations

import shutil
import subprocess

from tests.support.paths import SCRIPTS

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
