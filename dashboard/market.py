"""Market data and money: the feed's state, the price chart's series, the paper book and its equity.

Feed freshness is judged by when bars were last *stored* (``feed_offsets.updated_at``, written
with every batch of closed bars), not by the bars' own timestamps: a replay's bars carry the
recording's times (years ago), and a live bar's time is the exchange's. ``lag_s`` per market is
still ``now − close of the newest bar`` as the operator expects for a live feed; for a replay the
page shows the replay clock instead.

Money is read as ``numeric`` and sent as JSON numbers (the page only displays and plots them).
"""

from __future__ import annotations

from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any

import psycopg

from dashboard.rates import RateTracker

SERIES_LIMIT = 1_800
SERIES_MAX = 20_000
EQUITY_POINTS = 5_000
LATE_WINDOW = timedelta(hours=1)


def read_feed(conn: psycopg.Connection, now: datetime, actors: list[dict[str, Any]], rates: RateTracker | None,
              *, stale_s: float) -> dict[str, Any]:
    """The feed: kind, state, counters, trades/s and one row per market."""
    feed_actor = next((a for a in actors if a["actor"] == "feed"), None)
    bar_actor = next((a for a in actors if a["actor"] == "bar"), None)
    counters = feed_actor["counters"] if feed_actor else {}
    bar_counters = bar_actor["counters"] if bar_actor else {}
    kind = "replay" if "finished" in counters else ("live" if "connected" in counters else None)
    markets = _markets(conn, kind)
    feed_name = markets[0]["feed"] if markets else None
    if kind is None and feed_name is not None:
        kind = "replay" if feed_name.startswith("replay:") else "live"
    writes = [m["stored_at"] for m in markets if m["stored_at"] is not None]
    write_age = _age(now, max(writes)) if writes else None
    for m in markets:
        m["stored_age_s"] = _age(now, m.pop("stored_at"))
        close = m["last_bar_ts"] + timedelta(seconds=1) if m["last_bar_ts"] is not None else None
        m["lag_s"] = (now - close).total_seconds() if close is not None else None
    rate = None
    if rates is not None and feed_actor is not None and feed_actor["reported_at"] is not None:
        rate = rates.observe("feed.trades", lifetime=(feed_actor["node"], feed_actor["incarnation"]),
                             at=feed_actor["reported_at"], value=float(counters.get("trades", 0) or 0))
    finished = bool(counters.get("finished"))
    if kind == "replay" and finished:
        state, why = "finished", "the replay has reached the end of the recording: no new bars are expected"
    elif write_age is None:
        state, why = "no data", "no bar has been stored yet"
    elif write_age > stale_s:
        state, why = "stale", f"no bar stored for {write_age:.1f} s"
    else:
        state, why = "flowing", ""
    newest = max((m["last_bar_ts"] for m in markets if m["last_bar_ts"] is not None), default=None)
    return {
        "kind": kind,
        "name": feed_name,
        "state": state,
        "why": why,
        "connected": counters.get("connected"),
        "sessions": counters.get("sessions"),
        "trades_total": _int(counters.get("trades")),
        "trades_per_s": rate,
        "bars_total": _int(bar_counters.get("bars")),
        "bar_trades": _int(bar_counters.get("trades")),
        "late_trades": _int(bar_counters.get("late_trades")),
        "skipped_trades": _int(bar_counters.get("skipped")),
        "amended_bars_1h": sum(m["amended_bars_1h"] for m in markets),
        "last_write_age_s": write_age,
        "newest_bar_ts": newest,
        "markets": markets,
    }


def _markets(conn: psycopg.Connection, kind: str | None) -> list[dict[str, Any]]:
    """Markets of the current feed (the most recently written one of its kind), newest bar each."""
    prefix = {"replay": "replay:%", "live": "live:%"}.get(kind or "", "%")
    rows = conn.execute(
        "WITH cur AS (SELECT feed FROM feed_offsets WHERE feed LIKE %s ORDER BY updated_at DESC LIMIT 1)"
        " SELECT f.feed, f.market, f.applied_offset, f.updated_at, b.ts, b.close, b.source,"
        "  (SELECT count(*) FROM market_1s l WHERE l.market = f.market AND l.ts > b.ts - %s"
        "   AND l.late_trades > 0) AS amended"
        " FROM feed_offsets f JOIN cur USING (feed)"
        " LEFT JOIN LATERAL (SELECT ts, close, source FROM market_1s m WHERE m.market = f.market"
        "   ORDER BY ts DESC LIMIT 1) b ON true"
        " ORDER BY f.market",
        (prefix, LATE_WINDOW),
    ).fetchall()
    return [{"feed": feed, "market": market, "applied_offset": offset, "stored_at": stored, "last_bar_ts": ts,
             "last_close": close, "source": source, "amended_bars_1h": int(amended or 0)}
            for feed, market, offset, stored, ts, close, source, amended in rows]


def read_series(conn: psycopg.Connection, market: str | None, limit: int = SERIES_LIMIT) -> dict[str, Any]:
    """Recent bars of ``market`` (default: the one with the newest bar), paper fills aligned to them, equity."""
    limit = max(2, min(int(limit), SERIES_MAX))
    markets = [r[0] for r in conn.execute(
        "SELECT market FROM paper_positions UNION SELECT market FROM feed_offsets ORDER BY 1").fetchall()]
    if market is None or market not in markets:
        row = conn.execute(
            "SELECT f.market FROM feed_offsets f ORDER BY f.updated_at DESC, f.market LIMIT 1").fetchone()
        market = row[0] if row else (markets[0] if markets else None)
    bars = [] if market is None else conn.execute(
        "SELECT extract(epoch FROM ts)::bigint, open, high, low, close, volume, source FROM market_1s"
        " WHERE market = %s ORDER BY ts DESC LIMIT %s", (market, limit)).fetchall()[::-1]
    t = [int(b[0]) for b in bars]
    buys: list[float | None] = [None] * len(t)
    sells: list[float | None] = [None] * len(t)
    fills: list[dict[str, Any]] = []
    if bars:
        index = {ts: i for i, ts in enumerate(t)}
        for fid, side, price, bar_ts, reason in conn.execute(
                "SELECT id, side, price, extract(epoch FROM bar_ts)::bigint, reason FROM paper_trades"
                " WHERE market = %s AND bar_ts >= to_timestamp(%s) AND bar_ts <= to_timestamp(%s) ORDER BY id",
                (market, t[0], t[-1])).fetchall():
            i = index.get(int(bar_ts))
            if i is None:
                continue
            (buys if side == "buy" else sells)[i] = float(price)
            fills.append({"id": fid, "side": side, "price": price, "t": int(bar_ts), "reason": reason})
    return {
        "market": market,
        "markets": markets,
        "source": bars[-1][6] if bars else None,
        "bars": {"t": t, "open": [b[1] for b in bars], "high": [b[2] for b in bars], "low": [b[3] for b in bars],
                 "close": [b[4] for b in bars], "volume": [b[5] for b in bars]},
        "buys": buys,
        "sells": sells,
        "fills": fills[-200:],
        "equity": read_equity(conn),
    }


def read_equity(conn: psycopg.Connection) -> dict[str, Any]:
    """Cumulative realised PnL after each closing fill (by bar time), then the mark-to-market point."""
    rows = conn.execute(
        "SELECT t, cum FROM (SELECT id, side, extract(epoch FROM bar_ts)::bigint AS t,"
        "  sum(realized_pnl) OVER (ORDER BY id) AS cum FROM paper_trades) s"
        " WHERE side = 'sell' ORDER BY id DESC LIMIT %s", (EQUITY_POINTS,)).fetchall()[::-1]
    book = read_portfolio(conn)
    t = [int(r[0]) for r in rows]
    realised: list[float | None] = [float(r[1]) for r in rows]
    marked: list[float | None] = [None] * len(t)
    last_bar = book["last_bar_ts"]
    if last_bar is not None and (rows or book["positions"]):
        end = int(last_bar.timestamp())
        total = float(book["realised"] + book["unrealised"])
        if t and end <= t[-1]:
            marked[-1] = total
        else:
            t.append(end)
            realised.append(float(book["realised"]))
            marked.append(total)
    return {"t": t, "realised": realised, "marked": marked}


def read_portfolio(conn: psycopg.Connection) -> dict[str, Any]:
    """Paper positions with realised and unrealised PnL (net of the entry fee) and fees."""
    rows = conn.execute(
        "SELECT market, volume, avg_price, last_price, realized_pnl, entry_fee_krw, fees_krw, trades, last_bar_ts"
        " FROM paper_positions ORDER BY market").fetchall()
    positions = []
    realised = unrealised = fees = Decimal(0)
    for market, volume, avg, last, real, entry_fee, fee, trades, bar_ts in rows:
        open_pnl = (last - avg) * volume - entry_fee if volume > 0 and last is not None else Decimal(0)
        realised += real
        unrealised += open_pnl
        fees += fee
        positions.append({"market": market, "volume": volume, "avg_price": avg, "last_price": last,
                          "value_krw": (last or Decimal(0)) * volume, "unrealised": open_pnl, "realised": real,
                          "fees": fee, "trades": trades, "last_bar_ts": bar_ts})
    count = conn.execute("SELECT count(*) FROM paper_trades").fetchone()
    return {
        "positions": positions,
        "realised": realised,
        "unrealised": unrealised,
        "fees": fees,
        "total": realised + unrealised,
        "paper_trades": int(count[0]) if count else 0,
        "last_bar_ts": max((p["last_bar_ts"] for p in positions if p["last_bar_ts"] is not None), default=None),
    }


def _int(value: object) -> int | None:
    return int(value) if isinstance(value, int | float) and not isinstance(value, bool) else None


def _age(now: datetime, then: datetime | None) -> float | None:
    return None if then is None else max(0.0, (now - then).total_seconds())
