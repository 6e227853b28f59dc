"""Fixtures of the kind tier. Tests marked `kind` need a container engine: without one they are
skipped with the reason (as in `make test` on CI); under `make e2e-kind` (STACKGEN_E2E_CLUSTER set)
a missing engine is an error instead, so the tier can never pass by skipping everything."""

from __future__ import annotations

import os
import subprocess
from collections.abc import Iterator

import pytest

from tests.support.paths import SCRIPTS
from tests.support.tools import stackgen as stackgen_command
from tests.support.tools import tool

from .kube import Kube, say
from .specs import host_has_avx512
from .tools import kind_unavailable_reason


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    kind_items = [item for item in items if item.get_closest_marker("kind")]
    if not kind_items:
        return
    reason = kind_unavailable_reason()
    if reason is None:
        return
    if os.environ.get("STACKGEN_E2E_CLUSTER"):
        raise pytest.UsageError(f"make e2e-kind cannot run: {reason}")
    for item in kind_items:
        item.add_marker(pytest.mark.skip(reason=reason))


def _cluster_exists(name: str) -> bool:
    proc = subprocess.run(["kind", "get", "clusters"], capture_output=True, text=True, timeout=60,
                          check=True)
    return name in proc.stdout.split()


@pytest.fixture(scope="session")
def kube() -> Iterator[Kube]:
    """The kind cluster: the one `make e2e-kind` made, or one made (and deleted) here."""
    name = os.environ.get("STACKGEN_E2E_CLUSTER")
    owned = False
    if not name:
        name = os.environ.get("KIND_CLUSTER_NAME", "stackgen-e2e")
        owned = not _cluster_exists(name)
        subprocess.run([str(SCRIPTS / "kind-up.sh"), "--name", name], check=True, timeout=1200)
    yield Kube(
        context=f"kind-{name}",
        kubectl=tool("kubectl"),
        helm=tool("helm"),
    )
    if owned and os.environ.get("KEEP_CLUSTER") != "1":
        subprocess.run([str(SCRIPTS / "kind-down.sh"), "--name", name], check=False, timeout=600)


@pytest.fixture(scope="session")
def stackgen() -> str:
    return stackgen_command()


@pytest.fixture(scope="session")
def vllm_enabled() -> bool:
    """Whether this run includes the vLLM CPU model (the driver decided; else look ourselves)."""
    decided = os.environ.get("STACKGEN_E2E_VLLM")
    enabled = decided == "1" if decided in {"0", "1"} else host_has_avx512()
    if not enabled:
        say("no AVX-512 here: the vLLM CPU model is left out of this run (Ollama, gateway and "
            "AutoGen still run)")
    return enabled
