"""Named failpoints: places in the code where a resilience drill may kill the process outright.

``FAILPOINTS`` (a setting; drills and tests only) lists ``name%N`` (SIGKILL at every Nth pass of
the point within this process) or ``name@N`` (at the Nth pass only). Passes are counted per
process, so a restarted process counts from zero again: the same setting kills at the same
points every run, which is what makes a drill repeatable. A point nobody armed costs one dict
lookup.

The points execution passes (see :mod:`execution.engine`):

- ``execution.after_intent_commit``: the attempt row is committed, its request not yet sent;
- ``execution.after_send``: the exchange answered, the answer not yet recorded.

SIGKILL (not an exception) because that is the failure the exactly-once protocol must survive:
no ``finally``, no rollback, no flush.
"""

from __future__ import annotations

import logging
import os
import signal
from collections.abc import Callable

log = logging.getLogger(__name__)


def _sigkill_self() -> None:
    os.kill(os.getpid(), signal.SIGKILL)


class Failpoints:
    """The armed points of this process and how often each was passed."""

    def __init__(self, spec: str = "", *, action: Callable[[], None] = _sigkill_self) -> None:
        self._every: dict[str, int] = {}
        self._at: dict[str, int] = {}
        self._passes: dict[str, int] = {}
        self._action = action
        for item in filter(None, (part.strip() for part in spec.split(","))):
            if "%" in item:
                name, count = item.split("%", 1)
                self._every[name] = int(count)
            else:
                name, count = item.split("@", 1)
                self._at[name] = int(count)

    @property
    def armed(self) -> bool:
        return bool(self._every or self._at)

    def passed(self, name: str) -> None:
        """Count one pass of ``name``; carry out the action when the setting says so."""
        if name not in self._every and name not in self._at:
            return
        n = self._passes[name] = self._passes.get(name, 0) + 1
        every, at = self._every.get(name), self._at.get(name)
        if (every is not None and n % every == 0) or n == at:
            log.warning("failpoint %s: pass %d, killing this process", name, n)
            for handler in logging.getLogger().handlers:
                handler.flush()
            self._action()
