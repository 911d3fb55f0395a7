"""NotifierActor: a backlog larger than one read is delivered in one go, not one batch per poll."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import psycopg
import pykka
import pytest

from actors.notifier import BATCH, NotifierActor
from persistence import alerts
from otp.child import ChildContext
from tests.helpers import MS, eventually


@pytest.fixture
def notifier() -> Iterator[list[pykka.ActorRef[Any]]]:
    """The actors a test started (it starts them once its rows are in); stopped at teardown."""
    refs: list[pykka.ActorRef[Any]] = []
    yield refs
    for ref in refs:
        ref.stop(block=True, timeout=5000 * MS)


@pytest.mark.parametrize("muted", [False, True])
def test_a_backlog_of_several_batches_is_delivered_without_waiting_for_polls(db_url: str, notifier: list,
                                                                              muted: bool) -> None:
    total = BATCH * 2 + 50
    with psycopg.connect(db_url) as conn:
        with conn.cursor() as cur:
            for i in range(total):
                alerts.enqueue(cur, kind="paper_fill", level="info", text=f"fill {i}")
        conn.commit()
        ctx = ChildContext(supervisor_name="test", child_id="notifier", incarnation=1, exit_sink=lambda _r: None)
        # a poll interval far beyond the test: only the start-up wake and the actor's own re-wakes remain
        notifier.append(NotifierActor.start(context=ctx, db_url=db_url, poll_s=3600.0,
                                            disabled_kinds=("paper_fill",) if muted else ()))
        channel = "suppressed" if muted else "log"
        eventually(lambda: conn.execute("SELECT count(*) FROM alerts WHERE sent_at IS NOT NULL AND channel = %s",
                                        (channel,)).fetchone()[0] == total,
                   timeout=10_000 * MS, what=f"all {total} alerts delivered ({channel})")
