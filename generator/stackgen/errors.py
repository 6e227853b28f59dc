"""The one error type of stackgen: every problem with the input, each at a field path, with its fix."""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace


@dataclass(frozen=True)
class Problem:
    """One thing wrong with the input, where it is, and what to do about it."""

    path: str
    message: str
    fix: str = ""
    line: int | None = None

    def render(self, source: str = "") -> str:
        if source and self.line:
            where = f"{source}:{self.line}: "
        else:
            where = f"{source}: " if source else (f"line {self.line}: " if self.line else "")
        at = f"{self.path}: " if self.path else ""
        fix = f" ({self.fix})" if self.fix else ""
        return f"{where}{at}{self.message}{fix}"


class StackgenError(Exception):
    """Bad input: carries every problem found, so the user fixes them all in one round.

    The CLI turns it into lines `file: path: message (fix)` and exit status 2.
    """

    def __init__(self, problems: Sequence[Problem], source: str = "") -> None:
        if not problems:
            raise ValueError("StackgenError needs at least one problem")
        self.problems = tuple(problems)
        self.source = source
        super().__init__(self.describe())

    def describe(self) -> str:
        return "\n".join(p.render(self.source) for p in self.problems)

    def with_source(self, source: str, lines: Callable[[str], int | None] | None = None) -> StackgenError:
        """The same problems, named after their file and, where `lines` finds them, their line; problems already
        named after a file (another input's: a lock's) stay as they are."""
        if self.source:
            return self
        problems = self.problems
        if lines:
            problems = tuple(p if p.line else replace(p, line=lines(p.path)) for p in problems)
        return StackgenError(problems, source)


def format_path(loc: Sequence[str | int]) -> str:
    """('models', 2, 'toolCalling') -> 'models[2].toolCalling'."""
    out = ""
    for part in loc:
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            out += f".{part}" if out else str(part)
    return out


def parse_path(path: str) -> list[str | int]:
    """'models[2].toolCalling' -> ['models', 2, 'toolCalling']."""
    return [int(index) if index else name for name, index in re.findall(r"([^.\[\]]+)|\[(\d+)\]", path)]
