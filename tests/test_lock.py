"""The image lock's own rules (stackgen.lock): which tags move, what a lock file must hold, and the warning
`validate` gives. The lock read from a real registry and installed is tests/cluster/test_image_lock.py."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from stackgen import lock
from stackgen.errors import StackgenError
from tests.support.tools import stackgen

DIGEST = "sha256:" + "ab" * 32


@pytest.mark.parametrize(("ref", "moves"), [
    ("vllm/vllm-router:latest", True),
    ("redis", True),
    ("localhost:5000/team/server", True),
    ("ghcr.io/x/y:nightly", True),
    ("ghcr.io/x/y:v1-nightly", True),
    ("ghcr.io/acme/server:main-v2.0.1", False),
    ("localhost:5000/team/server:1.2", False),
    (f"vllm/vllm-router:latest@{DIGEST}", False),
])
def test_a_tag_that_names_no_release_moves(ref: str, moves: bool) -> None:
    assert lock.moving([ref]) == ([ref] if moves else [])


def test_a_lock_file_round_trips_and_a_bad_digest_is_named_at_its_line(tmp_path: Path) -> None:
    good = tmp_path / "good.lock.yaml"
    good.write_text(lock.dump({"b/x:1": DIGEST, "a/y:2": DIGEST}))
    assert lock.read(good) == {"a/y:2": DIGEST, "b/x:1": DIGEST}
    bad = tmp_path / "bad.lock.yaml"
    bad.write_text(good.read_text().replace(f"b/x:1: {DIGEST}", "b/x:1: sha256:nothex"))
    with pytest.raises(StackgenError) as err:
        lock.read(bad)
    line = bad.read_text().splitlines().index("  b/x:1: sha256:nothex") + 1
    assert err.value.describe() == (f"{bad}:{line}: images[b/x:1]: 'sha256:nothex' is not a sha256 digest "
                                    "(write the lock again with `stackgen lock`)")
    empty = tmp_path / "empty.lock.yaml"
    empty.write_text("images: {}\n")
    with pytest.raises(StackgenError, match="images: a lock maps each image reference to its digest"):
        lock.read(empty)


def test_validate_warns_of_a_moving_tag_and_says_how_to_pin_it() -> None:
    fleet = subprocess.run([stackgen(), "validate", "gpu-fleet"], capture_output=True, text=True, timeout=120,
                           check=False)
    assert fleet.returncode == 0, fleet.stderr
    warnings = [line for line in fleet.stderr.splitlines() if line.startswith("warning: image ")]
    assert warnings == ["warning: image vllm/vllm-router:latest: its tag moves, so each install pulls whatever it "
                        "points to that day (pin it: `stackgen lock SPEC -o FILE`, then `stackgen render SPEC "
                        "--lock FILE`)"], fleet.stderr
    cpu = subprocess.run([stackgen(), "validate", "kind-cpu"], capture_output=True, text=True, timeout=120,
                         check=False)
    assert cpu.returncode == 0 and "warning:" not in cpu.stderr, cpu.stderr
