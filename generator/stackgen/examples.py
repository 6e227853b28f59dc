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


def decode(raw: bytes, source: str) -> str:
    """The spec's text; a file that is not UTF-8 is refused at the line of its first bad byte."""
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = raw.count(b"\n", 0, exc.start) + 1
        column = exc.start - (raw.rfind(b"\n", 0, exc.start) + 1) + 1
        raise StackgenError([Problem(f"column {column}", f"byte 0x{raw[exc.start]:02x} is not UTF-8, the encoding YAML "
                                     "files are read in", "save the file as UTF-8", line)], source) from None


def resolve(spec: str) -> Loaded:
    """A SPEC argument (a file path or an example name) -> the loaded spec; raises StackgenError.

    There is no silent default here: a command that has one (`stackgen render` with no SPEC) passes DEFAULT itself."""
    if not spec:
        raise StackgenError([Problem("SPEC", "no spec was given",
                                     f"give a path to a stack.yaml or one of: {', '.join(names())}")])
    path = Path(spec)
    if path.is_file():
        text, source = decode(path.read_bytes(), str(path)), str(path)
    elif spec in names():
        text, source = example_text(spec), f"example:{spec}"
    else:
        raise StackgenError([Problem("SPEC", f"{spec!r} is neither a file nor a built-in example",
                                 f"give a path to a stack.yaml or one of: {', '.join(names())}")])
    return Loaded(load_text(text, source), source, text)
