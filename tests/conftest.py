"""Shared set-up: the tools `make test` installs are found even when pytest is run by hand, every test
carries its tier's marker (`pytest -m unit`, `-m engines`, ...), and the tiers run in the order of
pyproject.toml's markers, the ones that need no build first, while the builds of the later ones run in the
background (tests/support/prebuild.py)."""

from __future__ import annotations

import os
import time
from typing import Any

import pytest

from tests.support import prebuild
from tests.support.paths import REPO, TOOLS

if TOOLS.is_dir() and str(TOOLS) not in os.environ.get("PATH", "").split(os.pathsep):
    os.environ["PATH"] = f"{TOOLS}{os.pathsep}{os.environ.get('PATH', '')}"

# Markers that are not a directory's tier: `kind` marks the tests that need a kind cluster.
NOT_TIERS = {"kind"}


def tiers(config: pytest.Config) -> list[str]:
    # In the order they run: the later a tier, the longer its builds have had in the background.
    """The tiers, as pyproject.toml's markers list them (the one place they are named)."""
    names = [line.split(":", 1)[0].strip() for line in config.getini("markers")]
    return [name for name in names if name not in NOT_TIERS]


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    known = tiers(config)
    for item in items:
        if any(item.get_closest_marker(tier) for tier in known):
            continue
        # A test's tier is its directory under tests/ (top-level files are `unit`), unless the module marks another.
        parts = item.path.relative_to(REPO / "tests").parts
        tier = parts[0] if len(parts) > 1 else "unit"
        if tier not in known:
            raise pytest.UsageError(f"{item.nodeid}: tests/{tier}/ is no tier of pyproject.toml's markers {known}")
        item.add_marker(tier)
    # Stable: within a tier every test keeps its order.
    items.sort(key=lambda item: known.index(tier_of(item, known) or known[-1]))


def tier_of(item: pytest.Item, known: list[str]) -> str | None:
    """The item's tier; None only while another hook has refused the session before tiers were set."""
    return next((tier for tier in known if item.get_closest_marker(tier)), None)


def pytest_collection_finish(session: pytest.Session) -> None:
    if not session.config.option.collectonly:
        known = tiers(session.config)
        prebuild.start({tier for item in session.items if (tier := tier_of(item, known))})


# Seconds each tier took, fixtures included, from its first test's start to its last test's end: what
# docs/testing.md quotes as each tier's cost.
_tier_spans: dict[str, list[float]] = {}


@pytest.hookimpl(wrapper=True)
def pytest_runtest_protocol(item: pytest.Item) -> Any:
    start = time.monotonic()
    try:
        return (yield)
    finally:
        tier = tier_of(item, tiers(item.config))
        if tier:
            span = _tier_spans.setdefault(tier, [start, start])
            span[1] = time.monotonic()


def pytest_terminal_summary(terminalreporter: Any) -> None:
    if prebuild.waits:
        terminalreporter.write_sep("-", "background builds (tests/support/prebuild.py)")
        for script, how in prebuild.waits.items():
            terminalreporter.write_line(f"{script}: {how}")
    if _tier_spans:
        terminalreporter.write_sep("-", "time per tier (first test's start to last test's end)")
        for tier, (start, end) in _tier_spans.items():
            terminalreporter.write_line(f"{tier}: {(end - start) / 60:.1f} min")


def pytest_sessionfinish(session: pytest.Session) -> None:
    prebuild.stop_all()
