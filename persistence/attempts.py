"""``order_attempts``: what execution did (or would have done) for each paper trade."""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal

import orjson
import psycopg


@dataclass(frozen=True, slots=True, kw_only=True)
class Intent:
    """A paper trade as execution sees it."""

    paper_trade_id: int
    market: str
    side: str
    price: Decimal
    volume: Decimal
    amount_krw: Decimal


@dataclass(frozen=True, slots=True, kw_only=True)
class Attempt:
    """One order attempt row to write."""

    paper_trade_id: int
    attempt: int
    identifier: str
    mode: str
    status: str
    market: str
    side: str
    request: dict
    blocked_reasons: tuple[str, ...] = ()
    error: str | None = None


def intents_after(conn: psycopg.Connection, after_id: int, limit: int) -> list[Intent]:
    """Paper trades with id > ``after_id``, oldest first."""
    rows = conn.execute(
        "SELECT id, market, side, price, volume, amount_krw FROM paper_trades WHERE id > %s ORDER BY id LIMIT %s",
        (after_id, limit),
    ).fetchall()
    return [Intent(paper_trade_id=r[0], market=r[1], side=r[2], price=r[3], volume=r[4], amount_krw=r[5]) for r in rows]


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
