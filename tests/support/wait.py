"""The one way a test waits: poll a check until it is done or a deadline passes.

As with Kubernetes' `wait.PollUntilContextTimeout`, "not yet" is told apart from "never": a check returns
`(done, seen)`, where `seen` says what it found; a check that raises is "not yet" too (an object whose
status is not filled in, an API server still starting), and what it raised is what was seen. Only `GiveUp`
ends the wait at once, for a failure no amount of waiting mends (a process that exited). The deadline's
message says what was last seen."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TypeVar

T = TypeVar("T")


class GiveUp(Exception):
    """Raised by a check when waiting longer cannot help."""


def poll(what: str, check: Callable[[], tuple[T, str]], timeout: float, period: float = 1.0,
         say: Callable[[str], None] = print) -> T:
    """Call `check` every `period` seconds until its `done` is truthy, and return it. Each change in what it
    sees is printed (pytest shows it with a failure); after `timeout` seconds, AssertionError."""
    start = time.monotonic()
    last = ""
    while True:
        done: T | None
        try:
            done, seen = check()
        except GiveUp:
            raise
        except Exception as err:  # noqa: BLE001 - "not yet": retried until the deadline, and reported then
            done, seen = None, f"{type(err).__name__}: {err}"
        elapsed = time.monotonic() - start
        if seen != last:
            say(f"{what} [{elapsed:4.0f}s / {timeout:.0f}s]: {seen}")
            last = seen
        if done:
            return done
        if elapsed >= timeout:
            raise AssertionError(f"timed out after {timeout:.0f}s waiting for {what}; last seen: {seen}")
        time.sleep(period)
