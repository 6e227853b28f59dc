#!/usr/bin/env python3
"""Print one pinned version from versions.yaml, for shell scripts: `scripts/versions.py vllm`.

The file is flat `name: version` YAML, so this needs nothing beyond the standard library.
"""

import sys
from pathlib import Path

VERSIONS = Path(__file__).resolve().parent.parent / "versions.yaml"


def read() -> dict[str, str]:
    pins = {}
    for line in VERSIONS.read_text(encoding="utf-8").splitlines():
        text = line.split("#", 1)[0].strip()
        if text:
            name, _, value = text.partition(":")
            pins[name.strip()] = value.strip()
    return pins


if __name__ == "__main__":
    pins = read()
    if len(sys.argv) != 2 or sys.argv[1] not in pins:
        sys.exit(f"usage: versions.py NAME   (one of: {', '.join(pins)})")
    print(pins[sys.argv[1]])
