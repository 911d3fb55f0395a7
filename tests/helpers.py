"""Generic test helpers: scaled timeouts and deadline-bounded polling (never a bare sleep)."""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Callable, Iterable
from typing import TypeVar

T = TypeVar("T")

MS = float(os.environ.get("TEST_TIME_SCALE", "1")) / 1000.0
"""One millisecond, scaled by ``TEST_TIME_SCALE`` (e.g. 3 on a slow CI machine). Write timeouts as ``n * MS``."""


def eventually(predicate: Callable[[], T], timeout: float = 5000 * MS, interval: float = 2 * MS, what: str = "") -> T:
    """Poll ``predicate`` until it returns something truthy, and return that.

    Raises ``AssertionError`` naming ``what`` (or the predicate) once ``timeout`` seconds have
    passed. The short pause between polls is the only sleep tests should ever need.
    """
    deadline = time.monotonic() + timeout
    while True:
        result = predicate()
        if result:
            return result
        if time.monotonic() >= deadline:
            raise AssertionError(f"not true within {timeout:.3f} s: {what or predicate}")
        time.sleep(interval)


def new_threads(before: Iterable[threading.Thread]) -> list[threading.Thread]:
    """Live threads that were not in ``before`` (for leak checks at teardown)."""
    known = set(before)
    return [t for t in threading.enumerate() if t not in known and t.is_alive()]
