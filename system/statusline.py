"""The root's periodic one-line summary of what flows, read from the database.

Actor counters come from ``runtime_actors`` (each node reports its actors every second), money
from ``paper_positions``; trades/s is the feed's trade counter differentiated between two lines.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from decimal import Decimal
from typing import Any, TextIO

import psycopg

from persistence import runtime


class StatusLine:
    """Prints ``trades/s | bars | position | PnL | nodes | actors``."""

    def __init__(self, *, out: TextIO) -> None:
        self._out = out
        self._last: tuple[float, int] | None = None

    def print(self, conn: psycopg.Connection, nodes: Sequence[tuple[str, str]], *, final: bool = False) -> None:
        """``nodes`` is ``[(name, state)]`` from the root supervisor."""
        self._out.write(self.render(conn, nodes, final=final) + "\n")
        self._out.flush()

    def render(self, conn: psycopg.Connection, nodes: Sequence[tuple[str, str]], *, final: bool = False) -> str:
        actors = runtime.read_actors(conn)
        trades = _counter(actors, "feed", "trades")
        bars = _counter(actors, "bar", "bars")
        now = time.monotonic()
        rate = ""
        if self._last is not None and now > self._last[0]:
            rate = f"{max(0, trades - self._last[1]) / (now - self._last[0]):,.0f}/s "  # a restart resets it
        self._last = (now, trades)
        parts = [
            f"trades {rate}(total {trades:,})",
            f"bars {bars:,}",
            self._positions(conn),
            "nodes " + " ".join(f"{name}:{state}" for name, state in nodes),
            "actors " + " ".join(f"{a['actor']}:{a['state']}" + (f"#{a['incarnation']}" if a["incarnation"] > 1 else "")
                                 for a in actors),
        ]
        prefix = "final | " if final else ""
        return prefix + " | ".join(p for p in parts if p)

    def _positions(self, conn: psycopg.Connection) -> str:
        rows = conn.execute(
            "SELECT market, volume, avg_price, last_price, realized_pnl, entry_fee_krw FROM paper_positions ORDER BY market"
        ).fetchall()
        if not rows:
            return "no position"
        held = [f"{m} long {v.normalize()} @ {a:,.0f}" for m, v, a, _l, _r, _f in rows if v > 0]
        realised = sum((r for *_x, r, _f in rows), Decimal(0))
        unrealised = sum(((last - a) * v - fee for _m, v, a, last, _r, fee in rows if v > 0 and last is not None),
                         Decimal(0))
        return (", ".join(held) or "flat") + f" | PnL realised {realised:+,.0f} unrealised {unrealised:+,.0f} KRW"


def _counter(actors: list[dict[str, Any]], actor: str, key: str) -> int:
    for a in actors:
        if a["actor"] == actor:
            value = a["counters"].get(key, 0)
            return int(value) if isinstance(value, int | float) else 0
    return 0
