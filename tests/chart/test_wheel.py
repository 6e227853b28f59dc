"""stackgen as a platform team installs it (#36): `python -m build` makes the sdist and, from it, the wheel; the
wheel goes into an empty virtualenv with its dependencies from the index, and `stackgen render`, run from a
directory that is no checkout, writes exactly what the checkout's golden output holds. The wheel carries the
chart (setup.py copies it in) and the built-in examples; helm is the only thing it needs from outside."""

from __future__ import annotations

import filecmp
import os
import shutil
import subprocess
import sys
import tarfile
import zipfile
from pathlib import Path

import pytest

from stackgen.version import VERSION
from tests.support import tools
from tests.support.paths import REPO

SOURCES = ("pyproject.toml", "setup.py", "MANIFEST.in", "README.md", "generator", "charts")


def _run(*argv: str) -> None:
    done = subprocess.run(argv, capture_output=True, text=True, timeout=600, check=False)
    assert done.returncode == 0, f"{' '.join(argv)}: exit {done.returncode}\n{done.stderr[-3000:]}"


@pytest.fixture(scope="module")
def installed(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path, Path]:
    """(the sdist, the wheel, the virtualenv's bin directory)."""
    work = tmp_path_factory.mktemp("wheel")
    source = work / "source"  # a copy: the build writes its egg-info beside the sources
    source.mkdir()
    for name in SOURCES:
        if (REPO / name).is_dir():
            shutil.copytree(REPO / name, source / name, ignore=shutil.ignore_patterns("__pycache__", "*.egg-info"))
        else:
            shutil.copy2(REPO / name, source / name)
    _run(sys.executable, "-m", "build", "--outdir", str(work / "dist"), str(source))
    sdist, wheel = next((work / "dist").glob("*.tar.gz")), next((work / "dist").glob("*.whl"))
    subprocess.run([sys.executable, "-m", "venv", str(work / "venv")], check=True, timeout=120)
    bin_dir = work / "venv" / "bin"
    _run(str(bin_dir / "pip"), "install", "--quiet", str(wheel))
    return sdist, wheel, bin_dir


def test_the_sdist_and_the_wheel_carry_the_chart_at_stackgens_version(installed: tuple[Path, Path, Path]) -> None:
    sdist, wheel, _ = installed
    assert sdist.name == f"stackgen-{VERSION}.tar.gz" and wheel.name.startswith(f"stackgen-{VERSION}-")
    chart_files = {p.relative_to(REPO / "charts" / "inference-stack").as_posix()
                   for p in (REPO / "charts" / "inference-stack").rglob("*") if p.is_file()}
    with tarfile.open(sdist) as archive:
        in_sdist = {n.split("/", 1)[1] for n in archive.getnames() if "/" in n}
    assert {f"charts/inference-stack/{f}" for f in chart_files} <= in_sdist
    in_wheel = set(zipfile.ZipFile(wheel).namelist())
    assert {f"stackgen/chart/{f}" for f in chart_files} <= in_wheel
    assert {f"stackgen/examples/{p.name}" for p in (REPO / "generator/stackgen/examples").glob("*.yaml")} <= in_wheel


def test_the_installed_stackgen_renders_the_golden_output_from_any_directory(installed: tuple[Path, Path, Path],
                                                                            tmp_path: Path) -> None:
    _, _, bin_dir = installed
    helm_dir = tmp_path / "helm"
    helm_dir.mkdir()
    (helm_dir / "helm").symlink_to(tools.helm("helm3"))  # the helm `make manifests` renders the golden output with
    env = {"PATH": f"{bin_dir}{os.pathsep}{helm_dir}{os.pathsep}/usr/bin:/bin", "HOME": str(tmp_path)}
    version = subprocess.run([str(bin_dir / "stackgen"), "--version"], capture_output=True, text=True, env=env,
                             cwd=tmp_path, check=True)
    assert VERSION in version.stdout
    for example in ("kind-cpu", "gpu-fleet"):
        done = subprocess.run([str(bin_dir / "stackgen"), "render", example, "-o", f"out-{example}"], cwd=tmp_path,
                              env=env, capture_output=True, text=True, timeout=300, check=False)
        assert done.returncode == 0, done.stderr
        _assert_same_tree(tmp_path / f"out-{example}", REPO / "manifests" / example)


def test_without_helm_the_installed_stackgen_says_how_to_get_it(installed: tuple[Path, Path, Path],
                                                              tmp_path: Path) -> None:
    _, _, bin_dir = installed
    done = subprocess.run([str(bin_dir / "stackgen"), "render", "kind-cpu", "-o", "out"], cwd=tmp_path,
                          env={"PATH": f"{bin_dir}{os.pathsep}/usr/bin:/bin", "HOME": str(tmp_path)},
                          capture_output=True, text=True, timeout=300, check=False)
    assert done.returncode == 2, done.stderr
    assert "helm is not on PATH (install Helm 3 or 4 (https://helm.sh/docs/intro/install/)" in done.stderr
    assert "make setup" not in done.stderr.split("; in a checkout")[0]
    assert not (tmp_path / "out").exists()


def _assert_same_tree(got: Path, want: Path) -> None:
    got_files = sorted(p.relative_to(got).as_posix() for p in got.rglob("*") if p.is_file())
    want_files = sorted(p.relative_to(want).as_posix() for p in want.rglob("*") if p.is_file())
    assert got_files == want_files
    _, mismatch, errors = filecmp.cmpfiles(got, want, got_files, shallow=False)
    assert not mismatch and not errors, mismatch or errors
