#!/usr/bin/env python3
"""Make the compiled modules under an image's directories valid inside the image: unchecked-hash .pyc files.

A .pyc written at install time (by pip, or by Debian's py3compile) records its source's mtime and size. oci.py
writes every layer with mtimes of zero, for byte-identical archives, so inside the image every such .pyc is
stale: each Python process compiles again, in memory, every module it imports (a container that runs as a
user other than the files' owner cannot write them back). Measured on this machine: importing vLLM's API
server takes 11 s with valid .pyc files and 23 s without; LiteLLM's proxy 10 s and 22 s. A vLLM pod runs three
such processes.

An unchecked-hash .pyc (PEP 552) is used without reading its source's mtime, as fits an image nobody edits.
Each .pyc whose header matches its source (mtime and size, and this Python's magic number) gets that header:
flags 0b01 and the source's hash. Any other .pyc is left as it was: Python compiles its module as before.

Usage: pyc.py DIR...   (prints how many files it rewrote and how many it left)
"""

from __future__ import annotations

import importlib.util
import struct
import sys
from pathlib import Path

UNCHECKED_HASH = 0b01  # PEP 552: hash-based, and the source is not checked


def source_of(pyc: Path) -> Path:
    """__pycache__/NAME.TAG[.opt-N].pyc -> NAME.py beside __pycache__."""
    return pyc.parent.parent / (pyc.name.split(".", 1)[0] + ".py")


def rewrite(pyc: Path) -> bool:
    source = source_of(pyc)
    with pyc.open("r+b") as f:
        header = f.read(16)
        if len(header) < 16 or header[:4] != importlib.util.MAGIC_NUMBER or not source.is_file():
            return False
        flags, mtime, size = struct.unpack("<III", header[4:16])
        st = source.stat()
        if flags != 0 or mtime != int(st.st_mtime) & 0xFFFFFFFF or size != st.st_size & 0xFFFFFFFF:
            return False
        f.seek(4)
        f.write(struct.pack("<I", UNCHECKED_HASH) + importlib.util.source_hash(source.read_bytes()))
    return True


def main(dirs: list[str]) -> int:
    if not dirs:
        print(__doc__.strip().splitlines()[-1], file=sys.stderr)
        return 2
    rewritten = left = 0
    for top in dirs:
        for pyc in sorted(Path(top).rglob("__pycache__/*.pyc")):
            if pyc.is_symlink():
                continue
            if rewrite(pyc):
                rewritten += 1
            else:
                left += 1
    print(f"pyc.py: {rewritten} .pyc files made unchecked-hash, {left} left as they were")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
