"""The smoke check's reads: did every recent paper trade (intent) get its order attempt?

One read-only, repeatable-read transaction, so every count describes the same moment. The window
is measured on the database's clock, the clock that wrote ``paper_trades.created_at``; attempts
belong to the window through their paper trade, whenever the attempt itself was written.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

import psycopg

_WINDOW = "p.created_at >= now() - make_interval(secs => %(window)s)"


@dataclass(frozen=True, slots=True, kw_only=True)
class PipelineFacts:
    """What the paper-to-order pipeline did over one window."""

    window_s: float
    since: datetime  # database time the window starts at
    until: datetime  # database time of the look (the window's end)
    paper_trades: int
    attempts: tuple[tuple[str, str, int], ...]  # (mode, status, attempts), by mode then status
    missing: int  # paper trades without any attempt
    missing_ids: tuple[int, ...]  # the first few of them, oldest first
    reasons: tuple[tuple[str, int], ...]  # blocked_reasons elements, most common first


def pipeline_facts(conn: psycopg.Connection, window_s: float, *, sample: int = 5, top: int = 5) -> PipelineFacts:
    """Read the facts over the last ``window_s`` seconds (autocommit connection expected)."""
    params = {"window": window_s, "sample": sample, "top": top}
    with conn.transaction():
        conn.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY")
        row = conn.execute(
            "SELECT now() - make_interval(secs => %(window)s), now(),"
            f" (SELECT count(*) FROM paper_trades p WHERE {_WINDOW})", params).fetchone()
        assert row is not None
        since, until, trades = row
        attempts = conn.execute(
            "SELECT a.mode, a.status, count(*) FROM order_attempts a JOIN paper_trades p ON p.id = a.paper_trade_id"
            f" WHERE {_WINDOW} GROUP BY a.mode, a.status ORDER BY a.mode, a.status", params).fetchall()
        missing_row = conn.execute(
            "SELECT count(*), (array_agg(p.id ORDER BY p.id))[1:%(sample)s] FROM paper_trades p"
            f" WHERE {_WINDOW} AND NOT EXISTS (SELECT 1 FROM order_attempts a WHERE a.paper_trade_id = p.id)",
            params).fetchone()
        assert missing_row is not None
        reasons = conn.execute(
            "SELECT r.reason, count(*) FROM order_attempts a JOIN paper_trades p ON p.id = a.paper_trade_id"
            " CROSS JOIN LATERAL jsonb_array_elements_text(a.blocked_reasons) AS r(reason)"
            f" WHERE {_WINDOW} GROUP BY r.reason ORDER BY count(*) DESC, r.reason LIMIT %(top)s", params).fetchall()
    return PipelineFacts(
        window_s=window_s, since=since, until=until, paper_trades=int(trades),
        attempts=tuple((str(m), str(s), int(n)) for m, s, n in attempts),
        missing=int(missing_row[0]), missing_ids=tuple(int(i) for i in missing_row[1] or ()),
        reasons=tuple((str(r), int(n)) for r, n in reasons),
    )
