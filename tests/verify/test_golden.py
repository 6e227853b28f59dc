"""manifests/<example>/ is exactly what `stackgen render <example>` writes today."""

from __future__ import annotations

import difflib

import pytest

from stackgen import examples
from stackgen.golden import expected
from tests.support.paths import REPO

GOLDEN = REPO / "manifests"


@pytest.mark.parametrize("name", examples.names())
def test_reference_output_is_current(name: str) -> None:
    want = expected(name)
    have = {str(p.relative_to(GOLDEN / name)): p.read_text() for p in (GOLDEN / name).rglob("*") if p.is_file()}
    stale = []
    for rel in sorted(set(want) | set(have)):
        if want.get(rel) != have.get(rel):
            diff = difflib.unified_diff((have.get(rel) or "").splitlines(), (want.get(rel) or "").splitlines(),
                                        f"manifests/{name}/{rel}", "rendered now", lineterm="", n=1)
            stale.append("\n".join(list(diff)[:20]))
    assert not stale, "reference output is stale; run `make manifests` and review the diff:\n" + "\n".join(stale)
