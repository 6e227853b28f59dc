"""A newcomer's first commands, exactly as the README gives them, in a fresh copy of the checkout.

The copy holds what a clone holds (the files git tracks, and new ones it does not ignore): no .venv, no
.tools. `make render` sets it up; then the README's "Deploy a stack" block runs line by line in bash, in
the virtualenv activated as the README says and with the helm and kubectl `make render` installed, against
this tier's real control plane.

The block installs the chart from the platform team's registry, its signature checked. That part is played as
docs/operations.md gives it: `make chart-publish` signs the chart with the team's key and pushes it to a real
registry (distribution, on loopback), and the team's public keyring is handed over as pubring.gpg. One word of the
block is rewritten: the README's registry.example.com, which becomes that registry's address. (Helm speaks plain
HTTP to a registry on a loopback address whatever it is told, so this one serves plain HTTP; measured: a registry
serving TLS on 127.0.0.1 and on 127.0.0.2 got helm's requests in plain HTTP and answered 400.)
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from pathlib import Path

from tests.engines.engines import ollama_bin_dir
from tests.engines.registry import start_registry
from tests.support.paths import REPO
from tests.support.signing import make_keyrings

from .kube import Cluster

# The README's stand-in for the platform team's registry.
TEAM_REGISTRY = "registry.example.com"


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

    registry = start_registry(ollama_bin_dir() / "registry", tmp_path / "registry", redirects=False)
    try:
        keys = make_keyrings(tmp_path / "keys")
        published = subprocess.run(["make", "chart-publish", f"CHART_REGISTRY=oci://{registry.host}/charts",
                                    f"KEY={keys.name}", f"SECRET_KEYRING={keys.secret}",
                                    f"PUBLIC_KEYRING={keys.public}"],
                                   cwd=clone, env=env, capture_output=True, text=True, timeout=300)
        assert published.returncode == 0, published.stdout[-2000:] + published.stderr[-2000:]
        shutil.copy(keys.public, clone / "pubring.gpg")
        deploy = [line.replace(TEAM_REGISTRY, registry.host) for line in _block_after("## Deploy a stack")]
        assert deploy[0].startswith("stackgen init")
        assert any(f"oci://{registry.host}/charts/inference-stack" in line and "--verify" in line for line in deploy)
        _run_as_written(deploy, "my-stack", clone, env, cluster)
    finally:
        registry.stop()
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
