"""A newcomer's first commands, exactly as the README gives them, in a fresh copy of the checkout.

The copy holds what a clone holds (the files git tracks, and new ones it does not ignore): no .venv, no
.tools. `make render` sets it up; then the README's "Deploy a stack" block runs line by line in bash, in
the virtualenv activated as the README says and with the helm and kubectl `make render` installed, against
this tier's real control plane. Nothing in the block is rewritten.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from pathlib import Path

from tests.support.paths import REPO

from .kube import Cluster


def _block_after(heading: str, readme: Path = REPO / "README.md") -> list[str]:
    """The commands of the first ```sh block after a README heading, comments and blank lines left out."""
    text = readme.read_text()
    section = text[text.index(heading):]
    block = re.search(r"```sh\n(.*?)```", section, re.DOTALL)
    assert block, f"no sh block after {heading}"
    lines = [re.sub(r"\s+# .*$", "", ln).strip() for ln in block.group(1).splitlines()]
    return [ln for ln in lines if ln and not ln.startswith("#")]


def _fresh_copy(dest: Path) -> None:
    listed = subprocess.run(["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"], cwd=REPO,
                            capture_output=True, check=True).stdout.decode().split("\0")
    for rel in filter(None, listed):
        source = REPO / rel
        if source.is_file():
            (dest / rel).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, dest / rel)


def test_quick_start_and_deploy_commands_work_as_written(cluster: Cluster, tmp_path: Path) -> None:
    clone = tmp_path / "stackgen"
    _fresh_copy(clone)
    quick = _block_after("## Quick start")
    assert quick[0] == "make render"
    # A newcomer's shell: system tools only, nothing of this checkout's venv or tools.
    env = {"PATH": "/usr/local/bin:/usr/bin:/bin", "HOME": os.environ.get("HOME", "/root"), "LANG": "C.UTF-8",
           "KUBECONFIG": str(cluster.kubeconfig)}
    made = subprocess.run(["make", "render"], cwd=clone, env=env, capture_output=True, text=True, timeout=900)
    assert made.returncode == 0, made.stdout[-2000:] + made.stderr[-2000:]
    assert (clone / "out" / "values.yaml").is_file()

    deploy = _block_after("## Deploy a stack")
    assert deploy[0].startswith("stackgen init")
    _run_as_written(deploy, "my-stack", clone, env, cluster)
    # The chart's own README installs the same way, with the names `stackgen secrets` gives (#36).
    chart_install = _block_after("## Install", REPO / "charts" / "inference-stack" / "README.md")
    assert chart_install[0].startswith("stackgen init")
    _run_as_written(chart_install, "my-stack", clone, env, cluster)


def _run_as_written(lines: list[str], release: str, clone: Path, env: dict[str, str], cluster: Cluster) -> None:
    # `. .venv/bin/activate`, as the README says; kubectl and helm are the ones `make render` put in .tools/bin.
    # A user's interactive shell: stop at the first failure, but unset variables are empty, not errors.
    script = "set -eo pipefail\n. .venv/bin/activate\nexport PATH=\"$PWD/.tools/bin:$PATH\"\n" + "\n".join(lines)
    try:
        ran = subprocess.run(["bash", "-c", script], cwd=clone, env=env, capture_output=True, text=True, timeout=600)
        assert ran.returncode == 0, ran.stdout[-3000:] + ran.stderr[-3000:]
        assert "[missing]" not in ran.stdout and "Every one exists." in ran.stdout, ran.stdout[-2000:]
        assert "Phase:          Succeeded" in ran.stdout, ran.stdout[-2000:]  # `helm test`
    finally:
        subprocess.run(["bash", "-c", f"{clone}/.tools/bin/helm uninstall {release} -n llm --wait || true"], env=env,
                       capture_output=True, timeout=300)
        cluster.delete_namespace("llm")
