"""A virtualenv holding nothing but what one install line installs, as a user's new environment would: the
tests run each `pip install ...` line stackgen writes, as written, and then the snippet it belongs to, in such
an environment. Each is kept per line and Python version under the tests' cache, so a line costs its
download once (10-30 s each, measured)."""

from __future__ import annotations

import hashlib
import os
import shlex
import shutil
import subprocess
import sys
from pathlib import Path

from .engines import cache_root


def fresh_venv(line: str) -> Path:
    """The venv for `line` (`pip install ...`, shell-quoted), made on first use; its python is bin/python."""
    argv = shlex.split(line)
    assert argv[:2] == ["pip", "install"] and len(argv) > 2, f"not an install line: {line!r}"
    key = hashlib.sha256(f"{sys.version_info[:2]} {line}".encode()).hexdigest()[:16]
    venv = cache_root() / "venvs" / key
    if (venv / ".installed").is_file():
        return venv
    shutil.rmtree(venv, ignore_errors=True)  # a run killed half-way
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
    done = subprocess.run([str(venv / "bin" / "python"), "-m", *argv, "--disable-pip-version-check", "--quiet"],
                          capture_output=True, text=True, env={**os.environ, "PIP_REQUIRE_VIRTUALENV": "1"})
    assert done.returncode == 0, f"{line} failed in a fresh venv:\n{done.stderr[-3000:]}"
    (venv / ".installed").write_text(line + "\n")
    return venv
