"""The `stackgen` command. A thin layer: parse arguments, call the library, turn errors into messages.

Exit status: 0 done, 2 bad input (a StackgenError, or a usage error), 1 anything unexpected.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Callable, TypeVar

import click

from . import examples
from .errors import StackgenError
from .plan import plan as resolve_plan
from .render import render_files, write_tree
from .spec import Stack

T = TypeVar("T")
SPEC_HELP = "A stack spec file, or the name of a built-in example (see `stackgen examples`)."


def _run(action: Callable[[], T]) -> T:
    try:
        return action()
    except StackgenError as exc:
        click.echo(exc.describe(), err=True)
        sys.exit(2)


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
def render(spec: str | None, out: Path, gateway_url: str | None, no_manifests: bool) -> None:
    """Write values, manifests, gateway config and AutoGen configs for SPEC (default: kind-cpu)."""

    def go() -> int:
        loaded = examples.resolve(spec)
        try:
            files = render_files(loaded.stack, gateway_url, with_manifests=not no_manifests)
        except StackgenError as exc:
            raise loaded.locate(exc) from None
        write_tree(out, files)
        return len(files)

    count = _run(go)
    click.echo(f"wrote {count} files to {out}")


@cli.command()
@click.argument("spec", metavar="SPEC")
def validate(spec: str) -> None:
    """Check SPEC without writing anything."""

    def go() -> Stack:
        loaded = examples.resolve(spec)
        try:
            resolve_plan(loaded.stack)
        except StackgenError as exc:
            raise loaded.locate(exc) from None
        return loaded.stack

    stack = _run(go)
    click.echo(f"{spec}: ok ({len(stack.models)} models)")


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


def main() -> None:
    cli(prog_name="stackgen")
