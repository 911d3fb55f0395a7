"""``NodeActor``: a ``SupervisedActor`` that publishes its live figures on its node's status board.

Every product actor derives from it and keeps its own figures in ``self.counters`` (plain
numbers and strings; replaced or incremented, read by the status reporter thread).
"""

from __future__ import annotations

from typing import Any

from actors.board import Published, StatusBoard
from otp.actor import SupervisedActor
from persistence.errors import classified


class NodeActor(SupervisedActor):
    """Publishes counters, mailbox depth, messages processed and last message time."""

    classify = staticmethod(classified)  # exits report a lost database as DatabaseUnavailable

    def __init__(self, *, board: StatusBoard | None = None, **kw: Any) -> None:
        super().__init__(**kw)
        self.counters: dict[str, Any] = {}
        self._board = board

    def setup(self) -> None:
        if self._board is not None:
            self._board.publish(self.context.child_id, Published(
                incarnation=self.context.incarnation,
                counters=self.counters,
                mailbox_depth=self.mailbox_depth,
                processed=lambda: self.messages_processed,
                last_message_at=lambda: self.last_message_at,
            ))
