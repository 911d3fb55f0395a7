"""Addressing sibling actors by name, always reaching their current incarnation (S46).

Nobody keeps a pykka ``ActorRef`` to a supervised sibling: after a restart that ref belongs to a
dead actor. ``Peers`` resolves the name through the node's supervisor on every message (a
non-blocking table lookup). A message to a sibling that is down is dropped and counted: in the
market node's rest_for_one pipeline an actor whose downstream is down is itself about to be
restarted, and everything it would have sent is re-derived from PostgreSQL on restart.
"""

from __future__ import annotations

import logging
import queue
from collections.abc import Callable
from typing import Any

import pykka

log = logging.getLogger(__name__)

Lookup = Callable[[str], "pykka.ActorRef[Any] | None"]


class Peers:
    """Name → current ``ActorRef`` of the node's actors."""

    def __init__(self) -> None:
        self._lookup: Lookup | None = None
        self.dropped = 0

    def bind(self, lookup: Lookup) -> None:
        """Connect to the node's supervisor (once it exists)."""
        self._lookup = lookup

    def ref(self, name: str) -> pykka.ActorRef[Any] | None:
        return None if self._lookup is None else self._lookup(name)

    def tell(self, name: str, message: Any) -> bool:
        """Deliver to the current incarnation of ``name``; False (and counted) if it is down."""
        ref = self.ref(name)
        if ref is not None:
            try:
                ref.tell(message)
            except pykka.ActorDeadError:
                pass
            else:
                return True
        self.dropped += 1
        log.debug("dropped %s for %s: not running", type(message).__name__, name)
        return False

    def mailbox_depth(self, name: str) -> int:
        """Messages waiting in ``name``'s mailbox (0 if it is down)."""
        ref = self.ref(name)
        inbox = None if ref is None else ref.actor_inbox
        return inbox.qsize() if isinstance(inbox, queue.Queue) else 0  # a threading actor's inbox is a Queue
