"""versions.yaml is the one place for every pin, checked the way Kubernetes checks build/dependencies.yaml: each
entry lists the files that write its version down and the text each must contain there, and one generic check
reads them all. A second check fails on any line that names a pinned package with its version where no ref
covers it, so a version cannot be written down without an entry.
"""

from __future__ import annotations

import re
import subprocess
from typing import Any

import pytest
import yaml

from tests.pins import pins
from tests.support.paths import REPO

ENTRIES: dict[str, dict[str, Any]] = yaml.safe_load((REPO / "versions.yaml").read_text())
# Not scanned for stray versions (versions.yaml's header says why).
UNCHECKED = re.compile(r"^(manifests/|bench/RESULTS\.md$|versions\.yaml$)|go\.sum$")


def expand(text: str, version: str) -> str:
    return (text.replace("{version}", version).replace("{bare}", version.removeprefix("v"))
            .replace("{build}", version.rsplit(".", 1)[-1]))


def refs(name: str) -> dict[str, list[str]]:
    """The entry's refs, file -> texts with the version filled in."""
    version = str(ENTRIES[name]["version"])
    return {path: [expand(t, version) for t in ([texts] if isinstance(texts, str) else texts)]
            for path, texts in (ENTRIES[name].get("refs") or {}).items()}


REFS = [(name, path, text) for name in ENTRIES for path, texts in refs(name).items() for text in texts]


def tracked() -> dict[str, str]:
    files = subprocess.run(["git", "ls-files"], cwd=REPO, capture_output=True, text=True, check=True).stdout.split()
    out = {}
    for path in files:
        if UNCHECKED.search(path) or not (REPO / path).is_file():
            continue
        try:
            out[path] = (REPO / path).read_text(encoding="utf-8")
        except UnicodeDecodeError:
            continue  # not text
    return out


def test_the_scripts_read_what_yaml_reads() -> None:
    """scripts/versions.py reads versions.yaml line by line (no YAML library in a bare shell): same answers."""
    assert pins() == {name: str(entry["version"]) for name, entry in ENTRIES.items()}


@pytest.mark.parametrize(("name", "path", "text"), REFS, ids=[f"{r[0]}:{r[1]}:{i}" for i, r in enumerate(REFS)])
def test_each_ref_writes_the_pinned_version(name: str, path: str, text: str) -> None:
    assert (REPO / path).is_file(), f"versions.yaml: {name} refers to {path}, which does not exist"
    assert text in (REPO / path).read_text(), (
        f"{path} should contain {text!r} ({name} {ENTRIES[name]['version']} in versions.yaml)")


def _names(name: str) -> re.Pattern[str]:
    """How a line names the package: its entry name, case aside, with '-', '_' and '/' alike."""
    return re.compile(re.sub(r"\\[-_/]", "[-_/]", re.escape(name)), re.IGNORECASE)


def test_no_version_is_written_outside_its_refs() -> None:
    """Every line of a tracked file that names a pinned package and its version is covered by one of the entry's
    refs: a new place that writes a version down needs a ref, so the next bump cannot miss it."""
    texts = tracked()
    stray = []
    for name, entry in ENTRIES.items():
        version = str(entry["version"]).removeprefix("v")
        at_version = re.compile(rf"(?<![\w.])v?{re.escape(version)}(?![\w])")
        named = _names(name)
        entry_refs = refs(name)
        for path, text in texts.items():
            covered = [(m.start(), m.end()) for ref in entry_refs.get(path, [])
                       for m in re.finditer(re.escape(ref), text)]
            for found in at_version.finditer(text):
                start = text.rfind("\n", 0, found.start()) + 1
                end = text.find("\n", found.end())
                line = text[start:end if end >= 0 else len(text)]
                if named.search(line) and not any(a <= found.start() < b for a, b in covered):
                    stray.append(f"{path}:{text.count(chr(10), 0, found.start()) + 1}: {name} {found.group()}")
    assert not stray, "versions written down without a ref in versions.yaml:\n" + "\n".join(stray)


def test_every_pin_is_used() -> None:
    """A version nobody reads is a version that silently stops being true: each entry has a ref, or a script
    or test reads it at run time."""
    scripts = "\n".join(p.read_text() for p in (REPO / "scripts").rglob("*.sh"))
    tests = "\n".join(p.read_text() for p in (REPO / "tests").rglob("*.py"))
    for name in ENTRIES:
        # `versions.py NAME`, or scripts/node's `pin NAME` wrapper of it
        read_by_a_script = re.search(rf'(versions\.py"?|pin) {re.escape(name)}\)', scripts)
        # what the tests take from Go modules or PyPI at run time: `pin("NAME")`
        read_by_a_test = re.search(rf'pin\("{re.escape(name)}"\)', tests)
        assert read_by_a_script or read_by_a_test or refs(name), name
