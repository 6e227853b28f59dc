"""Built-in example specs, shipped inside the package, addressable by name wherever a SPEC is taken."""

from __future__ import annotations

from dataclasses import dataclass
from importlib import resources
from pathlib import Path

from .errors import Problem, StackgenError
from .load import line_finder, load_text
from .spec import Stack

DEFAULT = "kind-cpu"


def _dir() -> Path:
    return Path(str(resources.files("stackgen") / "examples"))


def names() -> list[str]:
    return sorted(p.stem for p in _dir().glob("*.yaml"))


def summary(name: str) -> str:
    """The first comment line of the example, without its name prefix."""
    first = example_text(name).splitlines()[0]
    return first.lstrip("# ").removeprefix(f"{name}:").strip()


def example_text(name: str) -> str:
    return (_dir() / f"{name}.yaml").read_text(encoding="utf-8")


@dataclass(frozen=True)
class Loaded:
    """A validated spec and where it came from, so later errors can name its file and lines."""

    stack: Stack
    source: str
    text: str

    def locate(self, exc: StackgenError) -> StackgenError:
        return exc.with_source(self.source, line_finder(self.text))


def resolve(spec: str | None) -> Loaded:
    """A SPEC argument (a file path or an example name) -> the loaded spec; raises StackgenError."""
    spec = spec or DEFAULT
    path = Path(spec)
    if path.is_file():
        text, source = path.read_text(encoding="utf-8"), str(path)
    elif spec in names():
        text, source = example_text(spec), f"example:{spec}"
    else:
        raise StackgenError([Problem("SPEC", f"{spec!r} is neither a file nor a built-in example",
                                 f"give a path to a stack.yaml or one of: {', '.join(names())}")])
    return Loaded(load_text(text, source), source, text)
