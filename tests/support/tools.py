"""The binaries the tests run, found one way: the project's pinned copies (`.tools/bin`, the virtualenv's
`bin`), then PATH. A missing one raises with the command that installs it."""

from __future__ import annotations

import functools
import os
import shutil
import subprocess
import sys
from pathlib import Path

from .paths import TOOLS

HELMS = ("helm3", "helm4")


class ToolMissing(RuntimeError):
    """A binary the tests need is not installed."""


def find(name: str) -> str | None:
    for candidate in (TOOLS / name, Path(sys.executable).parent / name):
        if candidate.is_file() and os.access(candidate, os.X_OK):
            return str(candidate)
    return shutil.which(name)


def tool(name: str, fix: str = "run `make setup-test`") -> str:
    path = find(name)
    if path is None:
        raise ToolMissing(f"{name} not found in {TOOLS}, the virtualenv or PATH ({fix})")
    return path


@functools.cache
def helm(name: str) -> str:
    """`helm3` or `helm4`, checked to be that major version: a helm4 slot holding a v3 binary would silently
    test one version twice."""
    path = tool(name)
    version = subprocess.run([path, "version", "--short"], capture_output=True, text=True, timeout=60,
                             check=True).stdout.strip()
    if not version.startswith(f"v{name[-1]}."):
        raise ToolMissing(f"{path} is {version}, expected {name} (run `make setup-test`)")
    return path


def stackgen() -> str:
    """The installed `stackgen` command, as a user runs it."""
    return tool("stackgen")
