"""A stand-in sibling actor for actor tests: it keeps what it is told, and says when it was told."""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any

import pykka


class Told:
    """Messages of one kind a stand-in received, in order (read them under ``changed``)."""

    def __init__(self, kind: type) -> None:
        self.kind = kind
        self.messages: list[Any] = []
        self.changed = threading.Condition()

    def wait_for(self, predicate: Callable[[list[Any]], bool], timeout: float) -> bool:
        with self.changed:
            return self.changed.wait_for(lambda: predicate(self.messages), timeout)


class StandIn(pykka.ThreadingActor):
    """Records every message of each ``Told``'s kind; ignores the rest."""

    def __init__(self, *told: Told) -> None:
        super().__init__()
        self.told = told

    def on_receive(self, message: Any) -> None:
        for t in self.told:
            if isinstance(message, t.kind):
                with t.changed:
                    t.messages.append(message)
                    t.changed.notify_all()
