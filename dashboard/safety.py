"""The "exits pending · needs review" section: what execution could not finish on its own.

Read straight from the tables (``pending_exits``, ``order_attempts``), so it is right even while
the execution node is down::

    safety  {"pending": [{"paper_trade_id", "market", "mode", "since", "age_s", "reason", "tries",
                          "next_at"}],
             "review": [{"attempt_id", "identifier", "market", "side", "since", "age_s"}],
             "note"}

A pending exit is retried by execution with backoff until it executes; ``ctl abandon-exit`` gives
it up. An order in the needs-review queue waits for ``ctl review <attempt> placed|absent``.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

import psycopg

from persistence import attempts, exits


def read_safety(conn: psycopg.Connection, now: datetime) -> dict[str, Any]:
    """Pending exits and the needs-review queue, oldest first."""
    pending = [{"paper_trade_id": p.paper_trade_id, "market": p.market, "mode": p.mode, "since": p.since,
                "age_s": max(0.0, (now - p.since).total_seconds()), "reason": p.reason, "tries": p.tries,
                "next_at": p.next_at} for p in exits.pending(conn)]
    review = [{"attempt_id": o.id, "identifier": o.identifier, "market": o.market, "side": o.side,
               "since": o.review_since, "age_s": max(0.0, (now - o.created_at).total_seconds())}
              for o in attempts.needs_review(conn)]
    if pending or review:
        note = ("every pending exit is retried until it executes (ctl abandon-exit <paper trade> gives one up); "
                "an order under review waits for ctl review <attempt> placed|absent")
    else:
        note = "nothing waiting: every exit executed or is on its way, and no order outcome is in doubt"
    return {"pending": pending, "review": review, "note": note}
