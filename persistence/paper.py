"""The paper book's durable state: ``paper_trades``, ``paper_positions``, ``paper_orders``,
``paper_marks`` and ``paper_account`` (see migrations 0001 and 0002).

``save`` writes one ``PaperBook.apply`` — fills, positions (with the processed-through mark),
queued and resolved orders, marks — in the caller's transaction and NOTIFYs the execution node,
so a paper trade is recorded together with the position it changed or not at all.
``paper_trades`` has a single writer (the market node's PaperActor), so its ids become visible
in order and a cursor over them never skips one. A replay's batch writes each table with one
statement whose parameters are whole columns (array literals), so the transaction can be pipelined
(``persistence.bars.pipelined_transaction``) and waits on the server only where a result is read.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import orjson
import psycopg

from model.trading import ExitPlan, SignalKind
from persistence import alerts
from persistence.bars import array_literal, quote_array_text
from persistence.notify import ALERTS, PAPER_TRADES
from trading.paper import BookChanges, Order, Position

_POSITION = """
INSERT INTO paper_positions (market, volume, avg_price, entry_fee_krw, max_price, realized_pnl, fees_krw, trades,
                             last_price, last_bar_ts, cost_krw, entered_ts, partial_taken, cooldown_until, exit_plan,
                             unrealized_pnl, exposure_krw, updated_at)
VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s::jsonb, %s, %s, now())
ON CONFLICT (market) DO UPDATE SET
    volume = EXCLUDED.volume, avg_price = EXCLUDED.avg_price, entry_fee_krw = EXCLUDED.entry_fee_krw,
    max_price = EXCLUDED.max_price, realized_pnl = EXCLUDED.realized_pnl, fees_krw = EXCLUDED.fees_krw,
    trades = EXCLUDED.trades, last_price = EXCLUDED.last_price, last_bar_ts = EXCLUDED.last_bar_ts,
    cost_krw = EXCLUDED.cost_krw, entered_ts = EXCLUDED.entered_ts, partial_taken = EXCLUDED.partial_taken,
    cooldown_until = EXCLUDED.cooldown_until, exit_plan = EXCLUDED.exit_plan,
    unrealized_pnl = EXCLUDED.unrealized_pnl, exposure_krw = EXCLUDED.exposure_krw, updated_at = now()
"""

_TRADE = """
INSERT INTO paper_trades (market, side, price, volume, amount_krw, fee_krw, realized_pnl, reason, bar_ts, source,
                          intent, origin, fill_ts, signal_price, market_price, position_volume)
VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s)
"""

# The live case, one fill, waits for no id: the order it filled refers to it as the paper trade this session
# inserted last (``currval`` of its sequence, in the same transaction), written as the id ``_JUST_INSERTED``.
_JUST_INSERTED = -1

_OrderRow = tuple[Order, str, int | None, str | None, int | None]  # order, status, resolved_ts, note, trade id

_ORDER = """
INSERT INTO paper_orders (market, intent, origin, status, reason, bar_ts, timeframe_s, signal_price, decided_ts,
                          amount_krw, fraction, once, exit_plan, resolved_ts, note, paper_trade_id)
SELECT market, intent, origin, status, reason, bar_ts, timeframe_s, signal_price, decided_ts, amount_krw, fraction,
       once, exit_plan::jsonb, resolved_ts, note,
       CASE WHEN trade = -1 THEN currval(pg_get_serial_sequence('paper_trades', 'id')) ELSE trade END
FROM (VALUES (%s::text, %s::text, %s::text, %s::text, %s::text, %s::timestamptz, %s::integer, %s::numeric,
              %s::timestamptz, %s::numeric, %s::numeric, %s::boolean, %s::text, %s::timestamptz, %s::text,
              %s::bigint))
    AS o (market, intent, origin, status, reason, bar_ts, timeframe_s, signal_price, decided_ts, amount_krw,
          fraction, once, exit_plan, resolved_ts, note, trade)
"""

# Several fills or orders (a replay's batch) go in one statement each, every column one array literal, rows
# inserted (and ids drawn) in the order given; RETURNING order is not guaranteed, but the ids of one
# statement are drawn in insertion order, so sorted they match the fills.
_TRADES = """
INSERT INTO paper_trades (market, side, price, volume, amount_krw, fee_krw, realized_pnl, reason, bar_ts, source,
                          intent, origin, fill_ts, signal_price, market_price, position_volume)
SELECT market, side, price, volume, amount_krw, fee_krw, realized_pnl, reason, to_timestamp(bar_ts), source,
       intent, origin, to_timestamp(fill_ts), signal_price, market_price, position_volume
FROM unnest(%s::text[], %s::text[], %s::numeric[], %s::numeric[], %s::numeric[], %s::numeric[], %s::numeric[],
            %s::text[], %s::bigint[], %s::text[], %s::text[], %s::text[], %s::bigint[], %s::numeric[], %s::numeric[],
            %s::numeric[])
    WITH ORDINALITY AS f (market, side, price, volume, amount_krw, fee_krw, realized_pnl, reason, bar_ts, source,
                          intent, origin, fill_ts, signal_price, market_price, position_volume, n)
ORDER BY n
RETURNING id
"""
# (one fill: ``_TRADE``, and its order refers to it as ``_JUST_INSERTED``)

_ORDERS = """
INSERT INTO paper_orders (market, intent, origin, status, reason, bar_ts, timeframe_s, signal_price, decided_ts,
                          amount_krw, fraction, once, exit_plan, resolved_ts, note, paper_trade_id)
SELECT market, intent, origin, status, reason, to_timestamp(bar_ts), timeframe_s, signal_price, to_timestamp(decided_ts),
       amount_krw, fraction, once, exit_plan::jsonb, to_timestamp(resolved_ts), note,
       CASE WHEN paper_trade_id = -1 THEN currval(pg_get_serial_sequence('paper_trades', 'id')) ELSE paper_trade_id END
FROM unnest(%s::text[], %s::text[], %s::text[], %s::text[], %s::text[], %s::bigint[], %s::integer[], %s::numeric[],
            %s::bigint[], %s::numeric[], %s::numeric[], %s::boolean[], %s::text[], %s::bigint[], %s::text[],
            %s::bigint[])
    WITH ORDINALITY AS o (market, intent, origin, status, reason, bar_ts, timeframe_s, signal_price, decided_ts,
                          amount_krw, fraction, once, exit_plan, resolved_ts, note, paper_trade_id, n)
ORDER BY n
"""

_FILL_ALERTS = """
INSERT INTO alerts (kind, level, text)
SELECT 'paper_fill', 'info', text FROM unnest(%s::text[]) WITH ORDINALITY AS a (text, n) ORDER BY n
"""

_MARK = """
INSERT INTO paper_marks (market, ts, price, volume, realized_pnl, unrealized_pnl, fees_krw, exposure_krw)
VALUES (%s, %s, %s, %s, %s, %s, %s, %s)
ON CONFLICT (market, ts) DO UPDATE SET
    price = EXCLUDED.price, volume = EXCLUDED.volume, realized_pnl = EXCLUDED.realized_pnl,
    unrealized_pnl = EXCLUDED.unrealized_pnl, fees_krw = EXCLUDED.fees_krw, exposure_krw = EXCLUDED.exposure_krw
"""

_SMALL_BATCH = 32  # up to this many marks, a plain executemany costs no more than building the arrays
# More marks (a replay's batch) go in one statement, each column one array literal (numbers exactly as
# ``str`` writes them, as psycopg sends a Decimal; times as epoch seconds): no per-value adaptation, and the
# statement pipelines with the rest of the transaction.
_MARKS = """
INSERT INTO paper_marks (market, ts, price, volume, realized_pnl, unrealized_pnl, fees_krw, exposure_krw)
SELECT market, to_timestamp(ts), price, volume, realized_pnl, unrealized_pnl, fees_krw, exposure_krw
FROM unnest(%s::text[], %s::bigint[], %s::numeric[], %s::numeric[], %s::numeric[], %s::numeric[], %s::numeric[],
            %s::numeric[]) AS m (market, ts, price, volume, realized_pnl, unrealized_pnl, fees_krw, exposure_krw)
ON CONFLICT (market, ts) DO UPDATE SET
    price = EXCLUDED.price, volume = EXCLUDED.volume, realized_pnl = EXCLUDED.realized_pnl,
    unrealized_pnl = EXCLUDED.unrealized_pnl, fees_krw = EXCLUDED.fees_krw, exposure_krw = EXCLUDED.exposure_krw
"""


def save(cur: psycopg.Cursor, changes: BookChanges, positions: Iterable[Position]) -> None:
    """Record one ``apply`` (positions: those of ``changes.markets``). In pipeline mode it waits for the
    server only when several fills need their ids back (a replay's batch), never for one fill."""
    ids: list[int] = []
    trade_id: dict[int, int] = {}
    fills = changes.fills
    if len(fills) == 1:  # the live case: one plain statement, its id taken in SQL by the order it filled
        f = fills[0]
        cur.execute(_TRADE, (f.market, f.side, f.price, f.volume, f.amount_krw, f.fee_krw, f.realized_pnl, f.reason,
                             _ts(f.bar_ts), f.source, f.intent, f.origin, _ts(f.fill_ts), f.signal_price,
                             f.market_price, f.position_volume))
        ids.append(_JUST_INSERTED)
    elif fills:
        cur.execute(_TRADES, (
            _texts([f.market for f in fills]), _texts([f.side for f in fills]), array_literal([f.price for f in fills]),
            array_literal([f.volume for f in fills]), array_literal([f.amount_krw for f in fills]),
            array_literal([f.fee_krw for f in fills]), array_literal([f.realized_pnl for f in fills]),
            _texts([f.reason for f in fills]), array_literal([f.bar_ts for f in fills]),
            _texts([f.source for f in fills]), _texts([f.intent for f in fills]), _texts([f.origin for f in fills]),
            array_literal([f.fill_ts for f in fills]), _nullable([f.signal_price for f in fills]),
            _nullable([f.market_price for f in fills]), array_literal([f.position_volume for f in fills])))
        ids.extend(sorted(int(r[0]) for r in cur.fetchall()))
        if len(ids) != len(fills):
            raise RuntimeError(f"{len(fills)} paper trades inserted but {len(ids)} ids returned")
    for f, trade in zip(fills, ids, strict=True):
        trade_id[id(f)] = trade
    positions = list(positions)
    if positions:
        cur.executemany(_POSITION, [_position_row(p) for p in positions])
        cur.execute("DELETE FROM paper_orders WHERE status = 'pending' AND market = ANY(%s)",
                    ([p.market for p in positions],))
    orders: list[_OrderRow] = [(r.order, r.status, r.ts, r.note or None,
                                None if r.fill is None else trade_id[id(r.fill)]) for r in changes.resolved]
    orders += [(o, "pending", None, None, None) for p in positions for o in p.pending]
    if len(orders) == 1:
        cur.execute(_ORDER, _order_row(*orders[0]))
    elif orders:
        cur.execute(_ORDERS, _order_columns(orders))
    if 0 < len(changes.marks) <= _SMALL_BATCH:
        cur.executemany(_MARK, [(m.market, _ts(m.ts), m.price, m.volume, m.realized_pnl, m.unrealized_pnl,
                                 m.fees_krw, m.exposure_krw) for m in changes.marks.values()])
    elif changes.marks:  # one statement: the marks are unique per (market, ts) within one apply
        marks = list(changes.marks.values())
        names = {m: quote_array_text(m) for m in {m.market for m in marks}}
        cur.execute(_MARKS, (array_literal([names[m.market] for m in marks]), array_literal([m.ts for m in marks]),
                             array_literal([m.price for m in marks]), array_literal([m.volume for m in marks]),
                             array_literal([m.realized_pnl for m in marks]),
                             array_literal([m.unrealized_pnl for m in marks]),
                             array_literal([m.fees_krw for m in marks]), array_literal([m.exposure_krw for m in marks])))
    if fills:
        cur.execute(f"NOTIFY {PAPER_TRADES}")


def enqueue_fill_alerts(cur: psycopg.Cursor, texts: list[str]) -> None:
    """One ``paper_fill`` info alert per text, in this order (the caller's transaction), and one NOTIFY.

    ``alerts.enqueue_many`` writes the same rows; this is its set-based form for a replay's batch of
    fills: one statement instead of a row at a time (which, pipelined, waits on the socket once a row).
    """
    if len(texts) <= 1:
        alerts.enqueue_many(cur, [("paper_fill", "info", text) for text in texts])
        return
    cur.execute(_FILL_ALERTS, (_texts(texts),))
    cur.execute(f"NOTIFY {ALERTS}")


def load_positions(conn: psycopg.Connection) -> dict[str, Position]:
    """Every persisted position with its queued orders (restored on start)."""
    pending: dict[str, list[Order]] = {}
    for r in conn.execute(
        "SELECT market, intent, origin, reason, bar_ts, timeframe_s, signal_price, decided_ts, amount_krw, fraction,"
        " once, exit_plan FROM paper_orders WHERE status = 'pending' ORDER BY id"
    ).fetchall():
        pending.setdefault(r[0], []).append(Order(
            market=r[0], kind=SignalKind(r[1]), origin=r[2], reason=r[3], bar_ts=_epoch(r[4]), timeframe_s=r[5],
            signal_price=r[6], decided_ts=_epoch(r[7]), amount_krw=r[8], fraction=r[9], once=r[10],
            exit_plan=plan_from_json(r[11]),
        ))
    rows = conn.execute(
        "SELECT market, volume, avg_price, entry_fee_krw, max_price, realized_pnl, fees_krw, trades, last_price,"
        " last_bar_ts, cost_krw, entered_ts, partial_taken, cooldown_until, exit_plan FROM paper_positions"
    ).fetchall()
    return {
        r[0]: Position(
            market=r[0], volume=r[1], avg_price=r[2], entry_fee_krw=r[3], max_price=r[4], realized_pnl=r[5],
            fees_krw=r[6], trades=r[7], last_price=r[8], last_bar_ts=_epoch_or_none(r[9]), cost_krw=r[10],
            entered_ts=_epoch_or_none(r[11]), partial_taken=r[12], cooldown_until=_epoch_or_none(r[13]),
            exit_plan=plan_from_json(r[14]), pending=tuple(pending.get(r[0], ())),
        )
        for r in rows
    }


def processed_marks(conn: psycopg.Connection) -> dict[str, int]:
    """Per market, the last 1-second bar the paper stage has processed (epoch seconds)."""
    rows = conn.execute("SELECT market, extract(epoch FROM last_bar_ts)::bigint FROM paper_positions"
                        " WHERE last_bar_ts IS NOT NULL").fetchall()
    return {m: int(ts) for m, ts in rows}


def set_capital(conn: psycopg.Connection, capital_krw: Decimal) -> None:
    """Record the paper account's starting capital (``paper_totals`` computes equity from it)."""
    conn.execute("INSERT INTO paper_account (id, capital_krw) VALUES (true, %s) ON CONFLICT (id) DO UPDATE"
                 " SET capital_krw = EXCLUDED.capital_krw, updated_at = now()", (capital_krw,))


def warmup_window_start(conn: psycopg.Connection, market: str, upto_ts: int, period_s: int,
                        windows: int) -> tuple[int | None, bool]:
    """Where a ``period_s`` strategy's warm-up starts: the open of the ``windows``-th most recent
    ``period_s`` window holding stored 1-second bars at or before ``upto_ts``, and whether older
    bars exist (then that window was observed from its start). ``(None, False)``: no bars at all.

    Reads ``market_1s`` (the strategy's warm-up is the only reader that needs whole windows),
    one backward index probe per window (a loose index scan), however long the history.
    """
    rows = conn.execute(
        """
        WITH RECURSIVE w (start, n) AS (
            SELECT (extract(epoch FROM max(ts))::bigint / %(p)s) * %(p)s, 1
            FROM market_1s WHERE market = %(m)s AND ts <= %(upto)s
          UNION ALL
            SELECT (SELECT (extract(epoch FROM max(b.ts))::bigint / %(p)s) * %(p)s FROM market_1s b
                    WHERE b.market = %(m)s AND b.ts < to_timestamp(w.start)), w.n + 1
            FROM w WHERE w.start IS NOT NULL AND w.n <= %(windows)s
        )
        SELECT start FROM w WHERE start IS NOT NULL ORDER BY n
        """,
        {"p": period_s, "m": market, "upto": _ts(upto_ts), "windows": windows},
    ).fetchall()
    if not rows:
        return None, False
    if len(rows) > windows:
        return int(rows[windows - 1][0]), True
    return int(rows[-1][0]), False


def plan_to_json(plan: ExitPlan | None) -> str | None:
    if plan is None:
        return None
    fields: dict[str, Any] = {name: getattr(plan, name) for name in plan.__dataclass_fields__}
    return orjson.dumps({k: (str(v) if isinstance(v, Decimal) else v) for k, v in fields.items()}).decode()


def plan_from_json(value: dict[str, Any] | None) -> ExitPlan | None:
    if value is None:
        return None
    decimals = {"take_profit_bps", "stop_loss_bps", "trailing_stop_bps", "trailing_activation_bps",
                "partial_take_profit_bps", "partial_fraction"}
    fields: dict[str, Any] = {k: (Decimal(v) if k in decimals and v is not None else v) for k, v in value.items()}
    return ExitPlan(**fields)


def _texts(values: list[str]) -> str:
    """An array literal of strings (each quoted)."""
    return array_literal([quote_array_text(v) for v in values])


def _nullable(values: list[Any]) -> str:
    """An array literal of numbers, ``None`` as NULL."""
    return array_literal(["NULL" if v is None else v for v in values])


def _nullable_texts(values: list[str | None]) -> str:
    return array_literal(["NULL" if v is None else quote_array_text(v) for v in values])


def _order_columns(orders: list[_OrderRow]) -> tuple[str, ...]:
    """The parameters of ``_ORDERS``: ``(order, status, resolved_ts, note, paper_trade_id)`` as column arrays."""
    o = [order for order, *_rest in orders]
    return (
        _texts([x.market for x in o]), _texts([x.kind.value for x in o]), _texts([x.origin for x in o]),
        _texts([status for _o, status, *_rest in orders]), _texts([x.reason for x in o]),
        array_literal([x.bar_ts for x in o]), array_literal([x.timeframe_s for x in o]),
        array_literal([x.signal_price for x in o]), array_literal([x.decided_ts for x in o]),
        _nullable([x.amount_krw for x in o]), _nullable([x.fraction for x in o]),
        array_literal(["t" if x.once else "f" for x in o]), _nullable_texts([plan_to_json(x.exit_plan) for x in o]),
        _nullable([resolved for _o, _s, resolved, *_rest in orders]),
        _nullable_texts([note for _o, _s, _r, note, _t in orders]),
        _nullable([trade for *_rest, trade in orders]),
    )


def _position_row(p: Position) -> tuple[Any, ...]:
    return (p.market, p.volume, p.avg_price, p.entry_fee_krw, p.max_price, p.realized_pnl, p.fees_krw, p.trades,
            p.last_price, _ts_or_none(p.last_bar_ts), p.cost_krw, _ts_or_none(p.entered_ts), p.partial_taken,
            _ts_or_none(p.cooldown_until), plan_to_json(p.exit_plan), p.unrealized_pnl, p.exposure_krw)


def _order_row(o: Order, status: str, resolved_ts: int | None, note: str | None,
               paper_trade_id: int | None) -> tuple[Any, ...]:
    return (o.market, o.kind.value, o.origin, status, o.reason, _ts(o.bar_ts), o.timeframe_s, o.signal_price,
            _ts(o.decided_ts), o.amount_krw, o.fraction, o.once, plan_to_json(o.exit_plan), _ts_or_none(resolved_ts),
            note, paper_trade_id)


def _ts(epoch_s: int) -> datetime:
    return datetime.fromtimestamp(epoch_s, UTC)


def _ts_or_none(epoch_s: int | None) -> datetime | None:
    return None if epoch_s is None else _ts(epoch_s)


def _epoch(moment: datetime) -> int:
    return int(moment.timestamp())


def _epoch_or_none(moment: datetime | None) -> int | None:
    return None if moment is None else _epoch(moment)
