"""``order_attempts``: what execution did (or would have done) for each paper trade."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from decimal import Decimal
from typing import Any

import orjson
import psycopg

from model.intents import Attempt, Intent, Open
from persistence import control, cursors


def intents_and_flags(conn: psycopg.Connection, after_id: int, limit: int) -> tuple[list[Intent], dict[str, Any]]:
    """Paper trades with id > ``after_id`` (oldest first, at most ``limit``) and then the system flags,
    in one committed read transaction that waits for the server once (pipelined: ``BEGIN``, both
    queries and ``COMMIT`` go out together). The flags are read after the intents, so a switch set
    before an intent was committed is always seen."""
    with conn.pipeline():
        intents = conn.execute(_INTENTS_AFTER, (after_id, limit))
        flags = conn.execute(control.FLAGS)
        conn.commit()
    return [_intent(r) for r in intents.fetchall()], dict(flags.fetchall())


_INTENT_COLUMNS = "id, market, side, price, volume, amount_krw, created_at, bar_ts"
_INTENTS_AFTER = f"SELECT {_INTENT_COLUMNS} FROM paper_trades WHERE id > %s ORDER BY id LIMIT %s"


def intent(conn: psycopg.Connection, paper_trade_id: int) -> Intent:
    """One paper trade by id."""
    row = conn.execute(f"SELECT {_INTENT_COLUMNS} FROM paper_trades WHERE id = %s", (paper_trade_id,)).fetchone()
    if row is None:
        raise LookupError(f"no paper trade {paper_trade_id}")
    return _intent(row)


def _intent(r: tuple) -> Intent:
    return Intent(paper_trade_id=r[0], market=r[1], side=r[2], price=r[3], volume=r[4], amount_krw=r[5],
                  created_at=r[6], bar_ts=r[7])


def insert_one(cur: psycopg.Cursor, a: Attempt) -> int:
    """Insert one attempt and return its id."""
    row = cur.execute(_INSERT_ONE + " RETURNING id", _values(a)).fetchone()
    assert row is not None
    return int(row[0])


def commit_first_attempt(conn: psycopg.Connection, a: Attempt, consumer: str,
                         then: Callable[[psycopg.Cursor], None] | None = None) -> int:
    """Insert an intent's attempt and move ``consumer``'s cursor to its paper trade, committed, in one
    statement that waits for the server once (the commit included: the row is durable when this
    returns, before any request goes out); the attempt's id. ``then`` adds its own statements to
    the same transaction (an exit kept pending, an alert), so they commit with the attempt or not
    at all."""
    with conn.cursor() as cur:
        with conn.pipeline():
            cur.execute(_INSERT_ADVANCING, (*_values(a), consumer, a.paper_trade_id))
            row = cur.fetchone() if then is not None else None
            if then is not None:
                with conn.cursor() as more:
                    then(more)
            conn.commit()
        if row is None:
            row = cur.fetchone()
    assert row is not None
    return int(row[0])


_INSERT_ONE = ("INSERT INTO order_attempts (paper_trade_id, attempt, identifier, mode, status, market, side, request,"
               " blocked_reasons, error) VALUES (%s, %s, %s, %s, %s, %s, %s, %s::jsonb, %s::jsonb, %s)")
_INSERT_ADVANCING = (
    f"WITH attempt AS ({_INSERT_ONE} RETURNING id),"
    f" moved AS ({cursors.ADVANCE})"
    " SELECT id FROM attempt")


def _values(a: Attempt) -> tuple[Any, ...]:
    return (a.paper_trade_id, a.attempt, a.identifier, a.mode, a.status, a.market, a.side,
            orjson.dumps(a.request).decode(), orjson.dumps(list(a.blocked_reasons)).decode(), a.error)


def insert(cur: psycopg.Cursor, attempts: list[Attempt]) -> None:
    """Insert attempts; the unique identifier and (intent, attempt) keys make a second one impossible."""
    cur.executemany(
        "INSERT INTO order_attempts (paper_trade_id, attempt, identifier, mode, status, market, side, request,"
        " blocked_reasons, error) VALUES (%s, %s, %s, %s, %s, %s, %s, %s::jsonb, %s::jsonb, %s)",
        [
            (a.paper_trade_id, a.attempt, a.identifier, a.mode, a.status, a.market, a.side,
             orjson.dumps(a.request).decode(), orjson.dumps(list(a.blocked_reasons)).decode(), a.error)
            for a in attempts
        ],
    )


def unresolved(conn: psycopg.Connection | psycopg.Cursor) -> list[Open]:
    """Every attempt that is not final, oldest first."""
    rows = conn.execute(
        "SELECT id, paper_trade_id, attempt, identifier, mode, status, market, side, request, uuid, lookups,"
        " created_at, review_since FROM order_attempts WHERE NOT final ORDER BY id"
    ).fetchall()
    return [Open(id=r[0], paper_trade_id=r[1], attempt=r[2], identifier=r[3], mode=r[4], status=r[5], market=r[6],
                 side=r[7], request=r[8], uuid=r[9], created_at=r[11], review_since=r[12],
                 lookups=tuple(datetime.fromisoformat(x) for x in r[10])) for r in rows]


def start_review(cur: psycopg.Cursor, attempt_id: int, at: datetime) -> bool:
    """Put an unknown attempt in the needs-review queue; False when it already was (or is settled)."""
    result = cur.execute("UPDATE order_attempts SET review_since = %s, updated_at = now()"
                         " WHERE id = %s AND review_since IS NULL AND NOT final", (at, attempt_id))
    return result.rowcount == 1


def needs_review(conn: psycopg.Connection | psycopg.Cursor) -> list[Open]:
    """The needs-review queue: unknown attempts no lookup could settle, oldest first."""
    return [o for o in unresolved(conn) if o.review_since is not None and o.status == "unknown"]


def record_review(cur: psycopg.Cursor, attempt_id: int, *, by: str, verdict: str, at: datetime) -> None:
    """An operator's verdict on a reviewed attempt (the caller sets its status in the same transaction)."""
    cur.execute("UPDATE order_attempts SET reviewed = %s::jsonb, updated_at = now() WHERE id = %s",
                (orjson.dumps({"by": by, "verdict": verdict, "at": at.isoformat()}).decode(), attempt_id))


def record_lookup(cur: psycopg.Cursor, attempt_id: int, at: datetime) -> None:
    """The exchange answered "no order with this identifier" at ``at``."""
    cur.execute("UPDATE order_attempts SET lookups = lookups || %s::jsonb, updated_at = now() WHERE id = %s",
                (orjson.dumps([at.isoformat()]).decode(), attempt_id))


def finish(cur: psycopg.Cursor, attempt_id: int, *, status: str, error: str | None = None,
           response: object | None = None, reasons: tuple[str, ...] | None = None) -> None:
    """Give an attempt its final status (and what the exchange said, if anything)."""
    cur.execute(
        "UPDATE order_attempts SET status = %s, error = coalesce(%s, error),"
        " response = coalesce(%s::jsonb, response),"
        " blocked_reasons = CASE WHEN %s::jsonb IS NULL THEN blocked_reasons ELSE blocked_reasons || %s::jsonb END,"
        " updated_at = now() WHERE id = %s",
        (status, error, None if response is None else orjson.dumps(response).decode(),
         None if reasons is None else orjson.dumps(list(reasons)).decode(),
         None if reasons is None else orjson.dumps(list(reasons)).decode(), attempt_id),
    )


def note_error(cur: psycopg.Cursor, attempt_id: int, error: str) -> None:
    """Remember why an attempt is (still) unknown without changing its status."""
    cur.execute("UPDATE order_attempts SET error = %s, updated_at = now() WHERE id = %s", (error, attempt_id))


def record_order(cur: psycopg.Cursor, attempt_id: int, order: object, body: dict, *, status: str,
                 source: str) -> int:
    """Adopt the exchange's order: uuid, state, executed figures, fills (deduplicated by trade uuid),
    and a snapshot of the answer. Returns how many new fills were recorded."""
    from exchange.models import Order  # the exchange's model; imported here to keep this module light

    assert isinstance(order, Order)
    funds = order.executed_funds if order.executed_funds is not None else sum(
        (t.funds for t in order.trades), Decimal(0))
    avg = (funds / order.executed_volume) if order.executed_volume else None
    cur.execute(
        "UPDATE order_attempts SET uuid = %s, state = %s, status = %s, executed_volume = %s, executed_funds = %s,"
        " paid_fee = %s, avg_price = %s, response = %s::jsonb, updated_at = now() WHERE id = %s",
        (order.uuid, order.state, status, order.executed_volume, funds, order.paid_fee, avg,
         orjson.dumps(body).decode(), attempt_id),
    )
    cur.execute("INSERT INTO order_snapshots (attempt_id, source, state, body) VALUES (%s, %s, %s, %s::jsonb)",
                (attempt_id, source, order.state, orjson.dumps(body).decode()))
    new = 0
    for t in order.trades:
        cur.execute(
            "INSERT INTO order_fills (trade_uuid, attempt_id, market, side, price, volume, funds, traded_at)"
            " VALUES (%s, %s, %s, %s, %s, %s, %s, %s) ON CONFLICT (trade_uuid) DO NOTHING",
            (t.uuid, attempt_id, t.market, t.side, t.price, t.volume, t.funds, t.created_at),
        )
        new += cur.rowcount
    return new


def next_attempt(conn: psycopg.Connection, paper_trade_id: int) -> int:
    """The number the intent's next attempt gets."""
    row = conn.execute("SELECT coalesce(max(attempt), 0) + 1 FROM order_attempts WHERE paper_trade_id = %s",
                       (paper_trade_id,)).fetchone()
    assert row is not None
    return int(row[0])
