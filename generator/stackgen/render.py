"""The render pipeline: spec -> plan -> files, and the one place that writes them.

Every stage before `write_tree` is pure, so a bad spec fails before anything touches the disk, and the
output directory is swapped in whole or not at all.
"""

from __future__ import annotations

import shutil
import tempfile
from pathlib import Path

from . import agents, manifests
from . import lock as lock_mod
from .errors import Problem, StackgenError
from .gateway import config_for, hook_files
from .output import Target, dump_yaml
from .plan import plan
from .spec import Stack
from .values import chart_values

MARKER = "values.yaml"


def _header(stack: Stack, what: str) -> str:
    return f"# {what} for stack {stack.name}, rendered by stackgen. Edit the spec, not this file.\n"


def render_files(stack: Stack, gateway_url: str | None = None, with_manifests: bool = True,
                 frameworks: tuple[str, ...] = agents.NAMES, lock: Path | None = None) -> dict[str, str]:
    """Every output file, by path relative to OUT; agent configs only for these frameworks (agents.NAMES); with a
    lock (stackgen.lock), every image pinned by the digest it records."""
    resolved = plan(stack)
    target = Target(resolved, gateway_url or resolved.default_gateway_url())
    values = chart_values(target)
    if lock is not None:
        values["imageDigests"] = lock_mod.pinned(values, stack.name, stack.namespace, lock_mod.read(lock), str(lock))
    files = {
        "values.yaml": dump_yaml(values, _header(stack, "Values of charts/inference-stack")),
        "litellm/config.yaml": dump_yaml(config_for(target), _header(stack, "LiteLLM proxy config")),
        **{f"litellm/{name}": text for name, text in hook_files(config_for(target)).items()},
        **agents.files(target, frameworks),
    }
    if with_manifests:
        files.update(_manifest_files(stack, files["values.yaml"]))
    return dict(sorted(files.items()))


def _manifest_files(stack: Stack, values_text: str) -> dict[str, str]:
    objects = manifests.split(manifests.render_values(values_text, stack.name, stack.namespace))
    out = {f"manifests/{name}": dump_yaml(doc) for name, doc in objects.items()}
    out["manifests/kustomization.yaml"] = dump_yaml(manifests.kustomization(list(objects), stack.namespace))
    return out


def write_file(path: Path, text: str) -> None:
    """Replace one file whole: written beside it, then renamed over it."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, staging = tempfile.mkstemp(prefix=f".{path.name}.new-", dir=path.parent)
    try:
        with open(fd, "w", encoding="utf-8") as f:
            f.write(text)
        Path(staging).replace(path)
    except BaseException:
        Path(staging).unlink(missing_ok=True)
        raise


def write_tree(out: Path, files: dict[str, str]) -> None:
    """Replace OUT with exactly these files: built beside it, then swapped in by rename."""
    out = out.resolve()
    if out.exists() and (not out.is_dir() or (any(out.iterdir()) and not (out / MARKER).is_file())):
        raise StackgenError([Problem("OUT", f"{out} exists and is not a stackgen output directory",
                                     "choose an empty or new directory, or one stackgen wrote before")])
    out.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{out.name}.new-", dir=out.parent))
    try:
        for rel, text in files.items():
            target = staging / rel
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_text(text, encoding="utf-8")
        retired = None
        if out.exists():
            retired = Path(tempfile.mkdtemp(prefix=f".{out.name}.old-", dir=out.parent))
            out.rename(retired / "tree")
        try:
            staging.rename(out)
        except BaseException:
            if retired:
                (retired / "tree").rename(out)
            raise
        if retired:
            shutil.rmtree(retired)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
