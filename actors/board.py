"""The node's status board: each actor publishes its live figures here for the status reporter.

An actor publishes itself in ``setup`` (keyed by its child id, with its incarnation); the
reporter thread reads the figures without going through the actor's mailbox, so a busy or stuck
actor is still reported truthfully (its mailbox depth grows, its last message time stops).
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any


@dataclass(slots=True, kw_only=True)
class Published:
    """One actor incarnation's live figures (read by another thread; values are replaced, not mutated)."""

    incarnation: int
    counters: dict[str, Any] = field(default_factory=dict)
    mailbox_depth: Callable[[], int] = lambda: 0
    processed: Callable[[], int] = lambda: 0
    last_message_at: Callable[[], datetime | None] = lambda: None


class StatusBoard:
    """child id → the latest published incarnation."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._entries: dict[str, Published] = {}

    def publish(self, child_id: str, entry: Published) -> None:
        with self._lock:
            self._entries[child_id] = entry

    def get(self, child_id: str) -> Published | None:
        with self._lock:
            return self._entries.get(child_id)
