"""Shared set-up: the tools `make test` installs are found even when pytest is run by hand, every test
carries its tier's marker (`pytest -m unit`, `-m engines`, ...), and the node tier runs last while its
images build in the background (tests/prebuild.py)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from tests import prebuild

REPO = Path(__file__).resolve().parents[1]
TOOLS = REPO / ".tools" / "bin"

if TOOLS.is_dir() and str(TOOLS) not in os.environ.get("PATH", "").split(os.pathsep):
    os.environ["PATH"] = f"{TOOLS}{os.pathsep}{os.environ.get('PATH', '')}"

# A test's tier is its directory under tests/ (top-level files are `unit`), unless the module marks another.
TIERS = ("unit", "chart", "stack", "engines", "cluster", "node", "e2e")
# What the node tier builds in the background: its images (KEDA included), its NetworkPolicy engine, and the
# crane that `stackgen bundle --copy` fills the air-gap test's registry mirror with.
NODE_BUILDS = ("node/build.sh", "kube-router/build.sh", "crane/build.sh")


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if any(item.get_closest_marker(tier) for tier in TIERS):
            continue
        parts = item.path.relative_to(REPO / "tests").parts
        item.add_marker(parts[0] if len(parts) > 1 else "unit")
    # Stable: every other test keeps its order, and the node tier's images have the longest time to build.
    items.sort(key=lambda item: item.get_closest_marker("node") is not None)


def pytest_collection_finish(session: pytest.Session) -> None:
    if not session.config.option.collectonly and any(item.get_closest_marker("node") for item in session.items):
        for script in NODE_BUILDS:
            prebuild.start(script)


def pytest_sessionfinish(session: pytest.Session) -> None:
    prebuild.stop_all()
