"""Fixtures of the chart tests: both helm binaries and every scenario values file."""

from __future__ import annotations

import pytest

from tests.support.tools import HELMS, ToolMissing
from tests.support.tools import helm as helm_path

from .chartlib import scenarios

REQUIRED_SCENARIOS = ("01-kind-cpu.yaml", "02-gpu-fleet.yaml", "03-minimal.yaml")


@pytest.fixture(scope="session", params=HELMS)
def helm(request: pytest.FixtureRequest) -> str:
    """`helm3` or `helm4`. A missing binary fails the run: these tests prove Helm 3 and 4 support."""
    try:
        helm_path(request.param)
    except ToolMissing as exc:
        pytest.fail(str(exc))
    return str(request.param)


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    # Tests that name their own scenarios (@pytest.mark.parametrize("scenario", ...)) keep them.
    own = any(
        "scenario" in str(m.args[0]) for m in metafunc.definition.iter_markers("parametrize")
    )
    if "scenario" in metafunc.fixturenames and not own:
        metafunc.parametrize("scenario", scenarios())


@pytest.fixture(scope="session", autouse=True)
def _required_scenarios_exist() -> None:
    missing = [s for s in REQUIRED_SCENARIOS if s not in scenarios()]
    if missing:
        pytest.fail(f"scenario values files missing from charts/inference-stack/ci: {missing}")
