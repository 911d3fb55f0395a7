"""``pending_exits``: exits that have not executed yet, kept until they do or an operator decides.

An exit is a sell intent in test or live mode. Its attempt can end without executing it: blocked
(the order breaker open, a risk limit, a persistent throttle), refused by the venue, failed
``MAX_ATTEMPTS`` times, or cancelled with nothing filled. Such an exit is *pending* (one row here,
written in the same transaction as the attempt's final status, so a crash cannot lose it) until:

* an attempt of it executes (``resolution = 'executed'``),
* nothing of ours is left to sell (``'nothing held'``: a later exit of the market sold it), or
* an operator gives it up (``'abandoned by …'``, audited in ``control_commands``).

The engine (:mod:`execution.engine`) re-checks a pending exit at ``next_at`` and sends a new
attempt once the cause has cleared. Functions take a cursor and never commit: the caller owns the
transaction.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

import psycopg

Conn = psycopg.Connection | psycopg.Cursor

BACKOFF_FIRST_S = 1.0
BACKOFF_MAX_S = 300.0


def backoff_s(tries: int) -> float:
    """Seconds before the next re-check after ``tries`` (>= 1) checks: 1, 2, 4 … capped at 300."""
    if tries < 1:
        raise ValueError(f"tries must be >= 1, got {tries}")
    return min(BACKOFF_FIRST_S * 2 ** min(tries - 1, 30), BACKOFF_MAX_S)


@dataclass(frozen=True, slots=True, kw_only=True)
class PendingExit:
    """One exit that has not executed."""

    paper_trade_id: int
    market: str
    mode: str  # the mode it must go out in: "test" | "live"
    since: datetime
    reason: str
    tries: int
    next_at: datetime


_COLUMNS = "paper_trade_id, market, mode, since, reason, tries, next_at"


def _row(r: tuple) -> PendingExit:
    return PendingExit(paper_trade_id=r[0], market=r[1], mode=r[2], since=r[3], reason=r[4], tries=r[5],
                       next_at=r[6])


def keep_pending(cur: Conn, *, paper_trade_id: int, market: str, mode: str, reason: str,
                 now: datetime) -> PendingExit:
    """Record that the exit did not execute (again), with the backoff before its next check.

    Returns the row; ``tries == 1`` means it became pending just now (the caller alerts once)."""
    row = cur.execute(
        f"INSERT INTO pending_exits (paper_trade_id, market, mode, since, reason, tries, next_at)"
        f" VALUES (%(id)s, %(market)s, %(mode)s, %(now)s, %(reason)s, 1, %(first)s)"
        f" ON CONFLICT (paper_trade_id) DO UPDATE SET reason = EXCLUDED.reason,"
        f" tries = pending_exits.tries + 1, updated_at = now(),"
        f" next_at = %(now)s + make_interval(secs => least(%(first_s)s * 2 ^ least(pending_exits.tries, 30),"
        f" %(max_s)s)),"
        f" resolved_at = NULL, resolution = NULL"
        f" RETURNING {_COLUMNS}",
        {"id": paper_trade_id, "market": market, "mode": mode, "now": now, "reason": reason,
         "first": now + timedelta(seconds=BACKOFF_FIRST_S), "first_s": BACKOFF_FIRST_S, "max_s": BACKOFF_MAX_S},
    ).fetchone()
    assert row is not None
    return _row(row)


def defer(cur: Conn, paper_trade_id: int, *, reason: str, now: datetime) -> PendingExit | None:
    """A re-check found the cause still there: count it, keep the reason, back off further."""
    row = cur.execute(
        f"UPDATE pending_exits SET reason = %(reason)s, tries = tries + 1, updated_at = now(),"
        f" next_at = %(now)s + make_interval(secs => least(%(first_s)s * 2 ^ least(tries, 30), %(max_s)s))"
        f" WHERE paper_trade_id = %(id)s AND resolved_at IS NULL RETURNING {_COLUMNS}",
        {"id": paper_trade_id, "reason": reason, "now": now, "first_s": BACKOFF_FIRST_S, "max_s": BACKOFF_MAX_S},
    ).fetchone()
    return None if row is None else _row(row)


def resolve(cur: Conn, paper_trade_id: int, resolution: str) -> PendingExit | None:
    """The exit is settled; the row it was pending as, or ``None`` when it was not pending."""
    row = cur.execute(
        f"UPDATE pending_exits SET resolved_at = now(), resolution = %s, updated_at = now()"
        f" WHERE paper_trade_id = %s AND resolved_at IS NULL RETURNING {_COLUMNS}",
        (resolution, paper_trade_id),
    ).fetchone()
    return None if row is None else _row(row)


def due_now(cur: Conn, now: datetime) -> int:
    """Bring every pending exit's next check forward to ``now`` (the exchange just took an order
    again: whatever kept them out may have cleared); how many."""
    result = cur.execute("UPDATE pending_exits SET next_at = %s WHERE resolved_at IS NULL AND next_at > %s",
                         (now, now))
    return result.rowcount


def pending(conn: Conn) -> list[PendingExit]:
    """Every exit still pending, oldest first."""
    rows = conn.execute(f"SELECT {_COLUMNS} FROM pending_exits WHERE resolved_at IS NULL"
                        " ORDER BY paper_trade_id").fetchall()
    return [_row(r) for r in rows]


def due(conn: Conn, now: datetime, limit: int = 20) -> list[PendingExit]:
    """Pending exits whose next check is due and that have no attempt in flight, oldest first."""
    rows = conn.execute(
        f"SELECT {', '.join('p.' + c for c in _COLUMNS.split(', '))} FROM pending_exits p"
        " WHERE p.resolved_at IS NULL AND p.next_at <= %s"
        " AND NOT EXISTS (SELECT 1 FROM order_attempts a WHERE a.paper_trade_id = p.paper_trade_id AND NOT a.final)"
        " ORDER BY p.next_at, p.paper_trade_id LIMIT %s",
        (now, limit),
    ).fetchall()
    return [_row(r) for r in rows]


def pending_markets(conn: Conn, mode: str) -> dict[str, datetime]:
    """Markets with an exit pending in ``mode``, and since when (the oldest)."""
    rows = conn.execute("SELECT market, min(since) FROM pending_exits WHERE resolved_at IS NULL AND mode = %s"
                        " GROUP BY market", (mode,)).fetchall()
    return {m: since for m, since in rows}
