"""Rewrite the reference output of the built-in examples: `python -m stackgen.golden manifests`.

`manifests/<example>/` holds exactly what `stackgen render <example>` writes; a test fails when it is stale.
"""

from __future__ import annotations

import sys
from pathlib import Path

from . import examples
from .render import render_files, write_tree


def expected(name: str) -> dict[str, str]:
    return render_files(examples.resolve(name).stack)


def main(argv: list[str]) -> int:
    root = Path(argv[0]) if argv else Path("manifests")
    for name in examples.names():
        write_tree(root / name, expected(name))
        print(f"rewrote {root / name}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
