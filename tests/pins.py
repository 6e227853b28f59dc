"""versions.yaml, read for the tests by the same code the scripts use (scripts/versions.py)."""

from __future__ import annotations

import importlib.util
from functools import cache

from tests.support.paths import SCRIPTS

SCRIPT = SCRIPTS / "versions.py"


@cache
def pins() -> dict[str, str]:
    spec = importlib.util.spec_from_file_location("stackgen_versions", SCRIPT)
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    read: dict[str, str] = module.read()
    return read


def pin(name: str) -> str:
    return pins()[name]
