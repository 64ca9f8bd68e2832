"""Waiting on readings of a live stack: until a condition holds (`wait_for`), or until they stop moving
(`settled`). The experiment, the scenarios and the tests all wait here.

    wait_for(lambda: prometheus.value("up"), lambda up: up == 1, timeout=30)
    settled(lambda: graphite.total(target), quiet=flush_seconds + 1, timeout=60)
"""

import time
from collections.abc import Callable
from typing import TypeVar

T = TypeVar("T")
NOTHING = object()  # no reading is expected: settle on stillness alone


class Unsettled(RuntimeError):
    """The readings kept moving; `first` and `last` are the first and the last one read."""

    def __init__(self, first, last, waited: str):
        super().__init__(f"a reading did not settle in {waited} ({first}, then {last})")
        self.first, self.last = first, last


def wait_for(read: Callable[[], T], done: Callable[[T], bool], timeout: float, interval: float = 0.25) -> T:
    """Call `read()` until `done(value)` or the timeout; return the last value read."""
    deadline = time.monotonic() + timeout
    while True:
        value = read()
        if done(value) or time.monotonic() >= deadline:
            return value
        time.sleep(interval)


def settled(
    read: Callable[[], T],
    quiet: float,
    *,
    timeout: float | None = None,
    tries: int | None = None,
    expected=NOTHING,
    poll: float | None = None,
) -> T:
    """Read until the reading equals `expected`, or holds still for `quiet` seconds; return it.

    It reads every `poll` seconds (default `quiet`: two reads `quiet` apart that agree
    are settled). Whatever was in transit when it started has arrived by then. Raise
    Unsettled after `timeout` seconds or `tries` reads after the first.
    """
    poll = quiet if poll is None else poll
    started = time.monotonic()
    first = last = read()
    still_since, reads = started, 0
    while last != expected:
        time.sleep(poll)
        current, reads = read(), reads + 1
        if current != last:
            last, still_since = current, time.monotonic()
        elif poll >= quiet or time.monotonic() - still_since >= quiet:
            return current
        if (tries is not None and reads >= tries) or (
            timeout is not None and time.monotonic() - started >= timeout
        ):
            raise Unsettled(first, current, f"{reads} reads" if tries is not None else f"{timeout:g} s")
    return last
