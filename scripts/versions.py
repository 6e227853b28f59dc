#!/usr/bin/env python3
"""Print one pinned version from versions.yaml, for shell scripts: `scripts/versions.py vllm`.

Each entry of versions.yaml starts with a line `NAME:` and has a line `  version: VERSION`; this reads just
those, with nothing beyond the standard library (tests/test_versions.py checks it agrees with a YAML parser).
"""

import re
import sys
from pathlib import Path

VERSIONS = Path(__file__).resolve().parent.parent / "versions.yaml"


def read() -> dict[str, str]:
    pins: dict[str, str] = {}
    name = None
    for line in VERSIONS.read_text(encoding="utf-8").splitlines():
        if entry := re.fullmatch(r"([\w.-]+):\s*", line):
            name = entry.group(1)
        elif (version := re.fullmatch(r"  version:\s*(\S+)\s*", line)) and name:
            pins[name] = version.group(1)
    return pins


if __name__ == "__main__":
    pins = read()
    if len(sys.argv) != 2 or sys.argv[1] not in pins:
        sys.exit(f"usage: versions.py NAME   (one of: {', '.join(pins)})")
    print(pins[sys.argv[1]])
