"""The wheel carries the chart: the build copies charts/inference-stack into the package as stackgen/chart, where
stackgen.manifests finds it. Everything else about the package is in pyproject.toml."""

import shutil
from pathlib import Path

from setuptools import setup
from setuptools.command.build_py import build_py

CHART = Path(__file__).parent / "charts" / "inference-stack"


class BuildWithChart(build_py):  # type: ignore[misc]  # setuptools has no type hints
    def run(self) -> None:
        super().run()
        target = Path(self.build_lib) / "stackgen" / "chart"
        shutil.rmtree(target, ignore_errors=True)
        shutil.copytree(CHART, target)


setup(cmdclass={"build_py": BuildWithChart})
