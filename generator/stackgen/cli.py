"""The `stackgen` command. A thin layer: parse arguments, call the library, turn errors into messages.

Exit status: 0 done, 2 bad input (a StackgenError, or a usage error), 1 anything unexpected.
"""

from __future__ import annotations

import json
import shutil
import sys
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any, NoReturn, TypeVar

import click

from . import agents as agent_frameworks
from . import examples
from .errors import StackgenError
from .plan import plan as resolve_plan
from .render import render_files, write_file, write_tree
from .spec import Stack

if TYPE_CHECKING:
    from .plan import Plan
    from .verify import Check

T = TypeVar("T")


def _run(action: Callable[[], T]) -> T:
    try:
        return action()
    except StackgenError as exc:
        click.echo(exc.describe(), err=True)
        sys.exit(2)


def _located(loaded: examples.Loaded, action: Callable[[], T]) -> T:
    """Runs a step on a loaded spec; its errors name the spec's file and lines."""
    try:
        return action()
    except StackgenError as exc:
        raise loaded.locate(exc) from None


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="stackgen")
def cli() -> None:
    """Render a Kubernetes inference stack (vLLM, Ollama, LiteLLM) and its AutoGen configs from one spec."""


@cli.command()
@click.argument("spec", required=False, metavar="[SPEC]")
@click.option("-o", "--out", "out", default="out", show_default=True, type=click.Path(path_type=Path),
              help="Directory to write; replaced whole.")
@click.option("--gateway-url", help="URL agents use for the gateway, ending in /v1 (default: in-cluster URL, or the ingress).")
@click.option("--no-manifests", is_flag=True, help="Skip OUT/manifests (which needs helm).")
@click.option("--frameworks", metavar="NAMES", help=f"Agent frameworks to write configs for, comma-separated "
              f"(default: all of {', '.join(agent_frameworks.NAMES)}).")
@click.option("--lock", "lock_file", type=click.Path(path_type=Path), metavar="FILE",
              help="Pin every image by the digest this lock records (`stackgen lock` writes it).")
def render(spec: str | None, out: Path, gateway_url: str | None, no_manifests: bool, frameworks: str | None,
           lock_file: Path | None) -> None:
    """Write values, manifests, gateway config and agent configs for SPEC (default: kind-cpu)."""

    def go() -> tuple[int, tuple[str, ...]]:
        selected = agent_frameworks.parse(frameworks)
        loaded = examples.resolve(spec or examples.DEFAULT)
        resolved = _located(loaded, lambda: resolve_plan(loaded.stack))
        notes = resolved.notes + (() if lock_file else _image_notes(resolved))
        files = _located(loaded, lambda: render_files(loaded.stack, gateway_url, with_manifests=not no_manifests,
                                                      frameworks=selected, lock=lock_file))
        write_tree(out, files)
        return len(files), notes

    count, notes = _run(go)
    _say_notes(notes)
    click.echo(f"wrote {count} files to {out}")


def _image_notes(resolved: Plan) -> tuple[str, ...]:
    """A warning for each image the chart renders by a moving tag (stackgen.lock)."""
    from . import bundle, lock

    try:
        return lock.moving_notes(bundle.plan_images(resolved))
    except StackgenError as err:  # no helm to render the chart's images with: say so, and check the rest
        return tuple(f"note: images not checked for moving tags: {p.render()}" for p in err.problems)


def _say_notes(notes: tuple[str, ...]) -> None:
    for note in notes:
        click.echo(note, err=True)


@cli.command()
@click.argument("spec", metavar="SPEC")
def validate(spec: str) -> None:
    """Check SPEC without writing anything."""

    def go() -> Plan:
        loaded = examples.resolve(spec)
        return _located(loaded, lambda: resolve_plan(loaded.stack))

    resolved = _run(go)
    _say_notes(resolved.notes + _image_notes(resolved))
    click.echo(f"{spec}: ok ({len(resolved.stack.models)} models)")


def _inventories() -> Path:
    from importlib import resources

    return Path(str(resources.files("stackgen") / "inventories"))


@cli.command("lock")
@click.argument("spec", metavar="SPEC")
@click.option("-o", "--out", "out", required=True, type=click.Path(path_type=Path), metavar="FILE",
              help="The lock file to write (replaced whole).")
@click.option("--crane", default="crane", show_default=True, help="go-containerregistry's crane command.")
@click.option("--insecure", is_flag=True, help="Speak plain HTTP to the registries.")
def lock_command(spec: str, out: Path, crane: str, insecure: bool) -> None:
    """Record the digest of every image SPEC renders, read from the registry the cluster pulls it from (behind
    `mirror:`, the mirror); `render --lock FILE` then pins each image by it."""
    from . import bundle, lock

    if shutil.which(crane) is None:
        click.echo(f"no crane command {crane!r} (build one with scripts/crane/build.sh, or pass --crane PATH)", err=True)
        sys.exit(2)

    def go() -> dict[str, str]:
        loaded = examples.resolve(spec)
        resolved = _located(loaded, lambda: resolve_plan(loaded.stack))
        return lock.lock(bundle.plan_images(resolved), crane, insecure)

    digests = _run(go)
    write_file(out, lock.dump(digests))
    click.echo(f"wrote the digests of {len(digests)} images to {out}")


@cli.command("bundle")
@click.argument("spec", metavar="SPEC")
@click.option("--format", "fmt", type=click.Choice(["text", "json"]), default="text", show_default=True)
@click.option("--copy", "do_copy", is_flag=True,
              help="Copy every image and Ollama model into mirror.registry (with crane), and check that "
                   "mirror.huggingFace serves every Hub repository. Exits 1 naming what is missing.")
@click.option("--from", "source_registry", metavar="REGISTRY",
              help="With --copy: read images and Ollama models from this registry, under their sources' paths "
                   "(a staging registry or a pull-through cache), instead of from their sources.")
@click.option("--crane", default="crane", show_default=True, help="go-containerregistry's crane command.")
@click.option("--insecure", is_flag=True, help="With --copy: speak plain HTTP to the registries.")
def bundle_command(spec: str, fmt: str, do_copy: bool, source_registry: str | None, crane: str,
                   insecure: bool) -> None:
    """What SPEC's `mirror:` must hold: every image the chart renders and every model its servers download,
    each with where it comes from and where the cluster reads it; with --copy, put it there."""
    from . import bundle

    loaded = _run(lambda: examples.resolve(spec))
    found = _run(lambda: _located(loaded, lambda: bundle.items(loaded.stack)))
    if not do_copy:
        if fmt == "json":
            click.echo(json.dumps([{"kind": i.kind, "source": i.source, "target": i.target} for i in found], indent=2))
        else:
            for i in found:
                click.echo(f"{i.kind:<12} {i.source} -> {i.target}")
        return
    if shutil.which(crane) is None:
        click.echo(f"--copy: no crane command {crane!r} (build one with scripts/crane/build.sh, or pass --crane PATH)",
                   err=True)
        sys.exit(2)
    done = bundle.copy(loaded.stack, crane, source_registry, insecure, _get_json)
    if fmt == "json":
        click.echo(json.dumps([{"kind": c.item.kind, "source": c.item.source, "target": c.item.target,
                                "from": c.read_from, "digest": c.digest, "result": c.done, "detail": c.detail}
                               for c in done], indent=2))
    else:
        for c in done:
            where = f"{c.item.target}@{c.digest}" if c.digest and c.item.kind != "huggingface" else c.item.target
            click.echo(f"{c.done:<8} {c.item.kind:<12} {c.read_from} -> {where}" + (f": {c.detail}" if c.detail else ""))
        counts = {r: sum(c.done == r for c in done) for r in ("copied", "present", "served", "missing")}
        summary = ", ".join(f"{n} {r}" for r, n in counts.items() if n)
        if not counts["copied"] and not counts["missing"]:
            summary += "; nothing copied: every item was there already"
        click.echo(summary)
    if any(c.done == "missing" for c in done):
        sys.exit(1)


@cli.command("plan")
@click.argument("spec", required=False, metavar="[SPEC]")
@click.option("--cluster", metavar="INVENTORY",
              help="Node pools to place the stack on: a YAML file, or a built-in inventory "
                   f"({', '.join(sorted(p.stem for p in _inventories().glob('*.yaml')))}).")
@click.option("--format", "fmt", type=click.Choice(["table", "json"]), default="table", show_default=True)
@click.option("--png", "png_path", type=click.Path(path_type=Path, dir_okay=False),
              help="Also draw each model server's memory (weights, KV cache, headroom) into this PNG (needs matplotlib).")
def plan_command(spec: str | None, cluster: str | None, fmt: str, png_path: Path | None) -> None:
    """Capacity of SPEC (default: kind-cpu): GPUs, memory, context and concurrency per model, and where it fits.

    Exits 2, after the report, when a model or its replicas do not fit."""
    from . import inventory, report

    loaded = _run(lambda: examples.resolve(spec or examples.DEFAULT))
    resolved = _run(lambda: _located(loaded, lambda: resolve_plan(loaded.stack, enforce_capacity=False)))
    placement = None
    if cluster:
        path = Path(cluster)
        builtin = _inventories() / f"{cluster}.yaml"
        source = path if path.is_file() else builtin if builtin.is_file() else None
        if source is None:
            click.echo(f"--cluster: {cluster!r} is neither a file nor a built-in inventory", err=True)
            sys.exit(2)
        text = source.read_text(encoding="utf-8")
        found = _run(lambda: inventory.load_inventory(text, str(cluster)))
        placement = inventory.place(resolved, found)
    click.echo(report.table(resolved, placement) if fmt == "table" else report.as_json(resolved, placement), nl=False)
    if png_path is not None:
        png_path.write_bytes(_run(lambda: report.png(resolved)))
    refused = report.problems(resolved, placement)
    if refused:
        click.echo(loaded.locate(StackgenError(refused)).describe(), err=True)
        sys.exit(2)


@cli.command("secrets")
@click.argument("spec", metavar="SPEC")
@click.option("--kube-context", metavar="CONTEXT",
              help="Also read the cluster with kubectl in this context: which of them exist already.")
def secrets_command(spec: str, kube_context: str | None) -> None:
    """List every Secret SPEC's stack reads (name, key, what for) and the kubectl lines that create them.

    With --kube-context, say which exist, and exit 1 while one is missing."""
    from .secretlist import present, report

    loaded = _run(lambda: examples.resolve(spec))
    resolved = _run(lambda: _located(loaded, lambda: resolve_plan(loaded.stack)))
    held = present(resolved, ["kubectl", "--context", kube_context]) if kube_context else None
    text, complete = report(resolved, held)
    click.echo(text, nl=False)
    sys.exit(0 if complete or held is None else 1)


@cli.command("examples")
@click.option("--show", metavar="NAME", help="Print the example's spec.")
def list_examples(show: str | None) -> None:
    """List the built-in examples, one a line: name, then what it shows."""
    if show:
        if show not in examples.names():
            click.echo(f"no example {show!r} (known: {', '.join(examples.names())})", err=True)
            sys.exit(2)
        click.echo(examples.example_text(show), nl=False)
        return
    width = max(len(n) for n in examples.names())
    for name in examples.names():
        click.echo(f"{name.ljust(width)}  {examples.summary(name)}")


@cli.command()
@click.argument("path", default="stack.yaml", type=click.Path(path_type=Path))
@click.option("--force", is_flag=True, help="Overwrite PATH if it exists.")
def init(path: Path, force: bool) -> None:
    """Write a commented starter spec to PATH (default stack.yaml)."""
    from .starter import STARTER

    if path.exists() and not force:
        click.echo(f"{path} exists; pass --force to overwrite it", err=True)
        sys.exit(2)
    path.write_text(STARTER, encoding="utf-8")
    click.echo(f"wrote {path}; edit it, then: stackgen render {path}")


@cli.command()
def schema() -> None:
    """Print the spec's JSON Schema (for editor completion)."""
    click.echo(json.dumps(Stack.model_json_schema(), indent=2, sort_keys=True))


@cli.command("verify")
@click.argument("spec", required=False, metavar="[SPEC]")
@click.option("--gateway", "gateway_url", help="The gateway's URL, ending in /v1.")
@click.option("--local", is_flag=True,
              help="Instead of a deployed gateway: run SPEC's gateway config here (the `litellm` executable), "
                   "each in-cluster model pointed at a --backend.")
@click.option("--backend", "backends", multiple=True, metavar="NAME=URL",
              help="With --local: the OpenAI-compatible server (URL ending in /v1) standing in for model NAME. "
                   "Every vLLM and Ollama model needs one; an external model without one calls its provider.")
@click.option("--api-key-env", metavar="NAME",
              help="With --gateway: variable holding the gateway key (default: the spec's autogen.apiKeyEnv).")
@click.option("--autogen-dir", type=click.Path(path_type=Path, file_okay=False),
              help="Also load OUT/autogen's files with both AutoGen APIs and get a reply from each model "
                   "(with --local, through the local gateway whatever URL the files name).")
@click.option("--frameworks", metavar="NAMES",
              help="Also render these agent frameworks' configs for the gateway (comma-separated, or all: "
                   f"{', '.join(agent_frameworks.NAMES)}) and, through each, get a reply from every model and a "
                   "tool round trip from every tool-calling one (needs the frameworks' packages).")
@click.option("--kube-context", metavar="CONTEXT",
              help="With --gateway: also read each autoscaled model's autoscaler with kubectl in this context "
                   "(its replicas, desired replicas and the queue it sees).")
@click.option("--wake", is_flag=True,
              help="With --kube-context: call the models asleep at zero replicas too, which wakes them; each chat's "
                   "time is then its model's wake (without it, they are reported asleep and left so).")
@click.option("--timeout", default=120.0, show_default=True, help="Seconds allowed for each request.")
def verify_command(spec: str | None, gateway_url: str | None, local: bool, backends: tuple[str, ...],
                   api_key_env: str | None, autogen_dir: Path | None, frameworks: str | None, kube_context: str | None,
                   wake: bool, timeout: float) -> None:
    """Check a stack: health, model list, a chat per model, tool calls, AutoGen and agent framework configs.

    Either a deployed one (--gateway URL) or, with --local, SPEC's own gateway config run on this
    machine against local model servers. Exits 0 when every check is ok, 1 when one is not."""
    import os

    from .verify import table, verify

    def usage(message: str) -> NoReturn:
        click.echo(message, err=True)
        sys.exit(2)

    if local == bool(gateway_url):
        usage("give either --gateway URL (a deployed stack) or --local (run the gateway here)")
    if backends and not local:
        usage("--backend only applies with --local")
    if local and api_key_env:
        usage("--api-key-env only applies with --gateway; --local makes a key for its own gateway")
    if local and kube_context:
        usage("--kube-context only applies with --gateway; --local runs no cluster")
    if wake and not kube_context:
        usage("--wake only applies with --kube-context: without it, every model is called, and a sleeping one wakes")
    selected = _run(lambda: agent_frameworks.parse(frameworks)) if frameworks is not None else ()
    loaded = _run(lambda: examples.resolve(spec or examples.DEFAULT))
    resolved = _run(lambda: _located(loaded, lambda: resolve_plan(loaded.stack)))
    if autogen_dir is not None and not (autogen_dir / "OAI_CONFIG_LIST").is_file():
        usage(f"--autogen-dir: {autogen_dir} has no OAI_CONFIG_LIST (point it at OUT/autogen)")
    if local:
        checks = _verify_local(loaded.stack, resolved, backends, autogen_dir, timeout, selected)
    else:
        env = api_key_env or loaded.stack.autogen.apiKeyEnv
        key = os.environ.get(env)
        if not key:
            usage(f"--api-key-env: ${env} is empty (export the gateway key in it)")
        kubectl = ["kubectl", "--context", kube_context] if kube_context else None
        checks = verify(resolved, str(gateway_url), key, autogen_dir, timeout, frameworks=selected, kubectl=kubectl,
                        wake=wake)
    click.echo(table(checks))
    sys.exit(0 if all(c.ok for c in checks) else 1)


def _verify_local(stack: Stack, resolved: Plan, backends: tuple[str, ...], autogen_dir: Path | None,
                  timeout: float, frameworks: tuple[str, ...] = ()) -> list[Check]:
    import os
    import secrets

    import yaml

    from .errors import Problem
    from .gateway import MASTER_KEY_ENV
    from .localstack import local_gateway, rewire
    from .verify import verify

    def parse(pairs: tuple[str, ...]) -> dict[str, str]:
        bad = [p for p in pairs if "=" not in p or not p.split("=", 1)[0] or not p.split("=", 1)[1]]
        if bad:
            raise StackgenError([Problem("--backend", f"{p!r} is not NAME=URL", "e.g. --backend small=http://127.0.0.1:8080/v1")
                                 for p in bad])
        return dict(p.split("=", 1) for p in pairs)

    urls = _run(lambda: parse(backends))
    rendered = yaml.safe_load(render_files(stack, with_manifests=False)["litellm/config.yaml"])
    config = _run(lambda: rewire(rendered, resolved, urls))
    for m in resolved.external:
        if m.name not in urls and m.api_key_env and not os.environ.get(m.api_key_env):
            click.echo(f"note: {m.name} calls {m.provider} itself and ${m.api_key_env} is empty", err=True)
    # A key for this run only: the gateway and the checks share it, nothing else knows it.
    key = f"sk-local-{secrets.token_hex(16)}"
    click.echo(f"starting the gateway of {stack.name} here (LiteLLM) ...", err=True)
    try:
        with local_gateway(config, {MASTER_KEY_ENV: key}) as gateway:
            return verify(resolved, gateway.api_base, key, autogen_dir, timeout,
                          autogen_base_url=gateway.api_base if autogen_dir else None, frameworks=frameworks)
    except StackgenError as exc:
        click.echo(exc.describe(), err=True)
        sys.exit(2)
    except (RuntimeError, TimeoutError) as exc:
        click.echo(f"the local gateway did not start: {exc}", err=True)
        sys.exit(1)


def _get_json(url: str) -> tuple[int, Any]:
    """GET a URL: its status and its body as JSON (None if none), for `bundle --copy`'s Hub mirror checks."""
    import urllib.error
    import urllib.request

    try:
        with urllib.request.urlopen(url, timeout=30) as answer:
            return answer.status, json.loads(answer.read() or b"null")
    except urllib.error.HTTPError as err:
        return err.code, None
    except (urllib.error.URLError, OSError, ValueError) as err:
        return 0, str(err)


def main() -> None:
    cli(prog_name="stackgen")

