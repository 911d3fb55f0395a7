"""``PaperActor`` on a real database: one transaction per batch, restored state, exactly one fill."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from decimal import Decimal
from typing import Any

import psycopg
import pykka
import pytest

from model.market import Bar, TradeSource
from actors.messages import BarsEvaluated, Drained
from model.trading import SignalRaised
from model.trading import ExitPlan, SignalKind
from actors.paper import PaperActor
from persistence import paper as paper_repo
from otp.child import ChildContext
from tests.helpers import MS, eventually, new_threads
from trading.paper import PaperBook

D = Decimal
T0 = 1_724_500_020  # a minute boundary on 2024-08-24


@pytest.fixture(autouse=True)
def _stop_all_actors() -> Iterator[None]:
    before = set(threading.enumerate())
    yield
    pykka.ActorRegistry.stop_all(block=True, timeout=2000 * MS)
    eventually(lambda: not new_threads(before), 3000 * MS, what=f"threads left behind: {new_threads(before)}")


def _bar(ts: int, close: int, *, open_: int | None = None, high: int | None = None) -> Bar:
    c, o = D(close), D(open_ if open_ is not None else close)
    return Bar(market="KRW-BTC", ts=ts, open=o, high=D(high) if high else max(o, c), low=min(o, c), close=c,
               volume=D(1), trade_count=1, source=TradeSource.CANDLES)


def _sig(ts: int, kind: SignalKind, **kw: Any) -> SignalRaised:
    return SignalRaised(market="KRW-BTC", kind=kind, bar_ts=ts, price=D(1), reason=f"{kind.value} at {ts}", **kw)


class PaperNode:
    """Starts PaperActor incarnations on one database and waits for them to finish a batch."""

    def __init__(self, db_url: str) -> None:
        self.db_url = db_url
        self.drained: list[int] = []
        self._cond = threading.Condition()
        self.ref: pykka.ActorRef[Any] | None = None

    def start(self, **kw: Any) -> None:
        ctx = ChildContext(supervisor_name="test", child_id="paper", incarnation=1, exit_sink=lambda _r: None)
        kw.setdefault("order_krw", D(100_000))
        kw.setdefault("fee_rate", None)
        self.ref = PaperActor.start(context=ctx, db_url=self.db_url, on_drained=self._on_drained, **kw)

    def _on_drained(self, offset: int) -> None:
        with self._cond:
            self.drained.append(offset)
            self._cond.notify_all()

    def send(self, bars: list[Bar], signals: list[SignalRaised] = ()) -> None:  # type: ignore[assignment]
        """Tell a batch and wait until it is committed (the following Drained is handled after it)."""
        assert self.ref is not None
        marker = len(self.drained)
        self.ref.tell(BarsEvaluated(bars=tuple(bars), signals=tuple(signals)))
        self.ref.tell(Drained(last_offset=marker))
        with self._cond:
            assert self._cond.wait_for(lambda: len(self.drained) > marker, 5000 * MS), "batch not processed"

    def stop(self) -> None:
        assert self.ref is not None
        self.ref.stop(block=True, timeout=5000 * MS)


def _count(db: psycopg.Connection, sql: str) -> Any:
    row = db.execute(sql).fetchone()
    assert row is not None
    return row[0]


def test_a_queued_order_survives_a_restart_and_fills_exactly_once(db_url: str, db: psycopg.Connection) -> None:
    node = PaperNode(db_url)
    node.start()
    node.send([_bar(T0, 80_000_000), _bar(T0 + 1, 80_100_000)], [_sig(T0 + 1, SignalKind.ENTER_LONG)])
    assert _count(db, "SELECT count(*) FROM paper_trades") == 0
    assert db.execute("SELECT intent, status, decided_ts = to_timestamp(%s) FROM paper_orders",
                      (T0 + 2,)).fetchall() == [("enter_long", "pending", True)]
    node.stop()

    node.start()  # a new incarnation restores the queued order from the table
    later = [_bar(T0 + 5, 80_300_000, open_=80_200_000), _bar(T0 + 6, 80_400_000)]
    node.send(later)
    node.send(later)  # re-delivered after an upstream restart: nothing twice
    trades = db.execute("SELECT id, side, price, fill_ts = to_timestamp(%s), bar_ts = to_timestamp(%s), intent,"
                        " market_price FROM paper_trades", (T0 + 5, T0 + 1)).fetchall()
    assert len(trades) == 1
    trade_id, side, price, at_fill_bar, at_signal_bar, intent, market_price = trades[0]
    assert (side, price, at_fill_bar, at_signal_bar, intent, market_price) == (
        "buy", D(80_200_000), True, True, "enter_long", D(80_200_000))
    assert db.execute("SELECT status, paper_trade_id FROM paper_orders").fetchall() == [("filled", trade_id)]
    assert _count(db, "SELECT count(*) FROM alerts WHERE kind = 'paper_fill'") == 1
    assert _count(db, "SELECT extract(epoch FROM last_bar_ts)::bigint FROM paper_positions") == T0 + 6


def test_position_state_round_trips_and_rejections_are_recorded(db_url: str, db: psycopg.Connection) -> None:
    plan = ExitPlan(partial_take_profit_bps=D(50), partial_fraction=D("0.5"), breakeven_after_partial=True,
                    stop_loss_bps=D(200), trailing_stop_bps=D(300))
    bars = [_bar(T0 + i, c, high=h) for i, (c, h) in enumerate(
        [(80_000_000, None), (80_000_000, None), (80_500_000, 81_000_000), (80_600_000, None), (80_550_000, None)])]
    signals = [_sig(T0, SignalKind.ENTER_LONG, exit_plan=plan), _sig(T0 + 3, SignalKind.ENTER_LONG),
               _sig(T0 + 4, SignalKind.PARTIAL_EXIT, fraction=D("0.1"), once=False)]
    rules = {"order_krw": D(100_000), "fee_rate": None, "slippage_bps": D(2), "cooldown_s": 90}
    node = PaperNode(db_url)
    node.start(**rules)
    node.send(bars[:3], [s for s in signals if s.bar_ts < T0 + 3])
    node.stop()
    node.start(**rules)
    node.send(bars[3:], [s for s in signals if s.bar_ts >= T0 + 3])
    node.stop()

    book = PaperBook(order_krw=D(100_000), slippage_bps=D(2), cooldown_s=90)
    book.apply(bars, signals)
    with psycopg.connect(db_url) as conn:
        restored = paper_repo.load_positions(conn)
    assert restored == book.positions  # max price, partial flag, exit plan, queued orders: all of it
    pos = restored["KRW-BTC"]
    assert pos.partial_taken and pos.max_price == D(81_000_000) and pos.exit_plan == plan
    assert [o.kind for o in pos.pending] == [SignalKind.PARTIAL_EXIT]  # decided on the last bar
    assert db.execute("SELECT intent, origin, status FROM paper_orders ORDER BY id").fetchall() == [
        ("enter_long", "strategy", "filled"), ("partial_exit", "exit_plan", "filled"),
        ("partial_exit", "strategy", "pending")]


def test_totals_marks_and_capital(db_url: str, db: psycopg.Connection) -> None:
    node = PaperNode(db_url)
    node.start(capital_krw=D(1_000_000), fee_rate=D("0.001"))
    bars = [_bar(T0 + 30 * i, 80_000_000 + 100_000 * i) for i in range(8)]
    node.send(bars, [_sig(T0, SignalKind.ENTER_LONG), _sig(T0 + 90, SignalKind.EXIT),
                     _sig(T0 + 150, SignalKind.ENTER_LONG)])
    (realised, unrealised, fees, exposure, trades, open_positions, capital, equity, cash) = db.execute(
        "SELECT realized_pnl, unrealized_pnl, fees_krw, exposure_krw, trades, open_positions, capital_krw,"
        " equity_krw, cash_krw FROM paper_totals").fetchone()
    assert (trades, open_positions, capital) == (3, 1, D(1_000_000))
    flows = db.execute("SELECT sum(CASE WHEN side = 'sell' THEN amount_krw - fee_krw ELSE -(amount_krw + fee_krw)"
                       " END), sum(fee_krw) FROM paper_trades").fetchone()
    assert cash == capital + flows[0] and fees == flows[1]
    assert equity == capital + realised + unrealised == cash + exposure
    assert exposure == D(80_700_000) * _count(db, "SELECT volume FROM paper_positions")
    marks = db.execute("SELECT extract(epoch FROM ts)::bigint, price FROM paper_marks ORDER BY ts").fetchall()
    assert [m[0] for m in marks] == [T0 + 60 * i for i in range(4)]  # one per minute, its last close
    assert marks[-1][1] == D(80_700_000)


def test_an_operator_flatten_sells_every_position_once_and_is_marked_done(db_url: str,
                                                                          db: psycopg.Connection) -> None:
    from persistence import control

    node = PaperNode(db_url)
    node.start()
    node.send([_bar(T0, 80_000_000), _bar(T0 + 1, 80_100_000)], [_sig(T0, SignalKind.ENTER_LONG)])
    assert _count(db, "SELECT count(*) FROM paper_positions WHERE volume > 0") == 1
    control.set_flag(db, "flatten", {"id": 7, "by": "test"}, "test")
    node.send([_bar(T0 + 2, 80_200_000)])  # the exit is decided on this bar...
    assert _count(db, "SELECT count(*) FROM paper_positions WHERE volume > 0") == 1
    node.stop()
    node.start()  # ...and survives a restart before its fill
    node.send([_bar(T0 + 3, 80_300_000, open_=80_250_000)])  # ...and fills at the next trade
    sells = db.execute("SELECT price, reason FROM paper_trades WHERE side = 'sell'").fetchall()
    assert sells == [(D(80_250_000), "operator flatten (command #7)")]
    assert _count(db, "SELECT count(*) FROM paper_positions WHERE volume > 0") == 0
    assert _count(db, "SELECT value FROM system_flags WHERE name = 'flatten_done'") == 7
    node.send([_bar(T0 + 4, 80_300_000)], [_sig(T0 + 4, SignalKind.ENTER_LONG)])
    node.send([_bar(T0 + 5, 80_300_000), _bar(T0 + 6, 80_300_000)])
    assert _count(db, "SELECT count(*) FROM paper_trades WHERE side = 'sell'") == 1, "a done flatten sells no more"
    assert _count(db, "SELECT count(*) FROM alerts WHERE kind = 'control'") == 1


def test_a_replay_sized_batch_is_recorded_row_for_row(db_url: str, db: psycopg.Connection) -> None:
    """Many fills, rejections, a pending order and more than 32 marks in one batch: the set-based statements
    record exactly what the book decided, in its order, with each order linked to its own fill."""
    from actors.paper import describe_fill

    odd = 'a "quoted", {braced} \\ back\\slashed\nreason'
    bars = [_bar(T0 + 20 * i, 80_000_000 + 10_000 * (i % 7), open_=80_000_000 + 10_000 * (i % 5)) for i in range(150)]
    signals = []
    for i in range(0, 147, 3):
        signals.append(SignalRaised(market="KRW-BTC", kind=SignalKind.ENTER_LONG, bar_ts=T0 + 20 * i, price=D(1),
                                    reason=f"{odd} {i}", amount_krw=D(4_000) if i % 9 == 0 else None))
        signals.append(_sig(T0 + 20 * (i + 1), SignalKind.EXIT))
    signals.append(_sig(T0 + 20 * 149, SignalKind.ENTER_LONG))  # decided on the last bar: stays pending
    node = PaperNode(db_url)
    node.start()
    node.send(bars, signals)
    node.stop()

    book = PaperBook(order_krw=D(100_000))
    changes = book.apply(bars, signals)
    assert len(changes.fills) > 40 and len(changes.marks) > 32
    assert any(r.status == "rejected" for r in changes.resolved) and book.position("KRW-BTC").pending
    rows = db.execute(
        "SELECT id, market, side, price, volume, amount_krw, fee_krw, realized_pnl, reason,"
        " extract(epoch FROM bar_ts)::bigint, source, intent, origin, extract(epoch FROM fill_ts)::bigint,"
        " signal_price, market_price, position_volume FROM paper_trades ORDER BY id").fetchall()
    assert [r[1:] for r in rows] == [
        (f.market, f.side, f.price, f.volume, f.amount_krw, f.fee_krw, f.realized_pnl, f.reason, f.bar_ts, f.source,
         f.intent, f.origin, f.fill_ts, f.signal_price, f.market_price, f.position_volume) for f in changes.fills]
    trade_id = {id(f): r[0] for f, r in zip(changes.fills, rows, strict=True)}
    expected_orders = [(r.order.kind.value, r.order.origin, r.status, r.order.reason, r.note or None,
                        None if r.fill is None else trade_id[id(r.fill)]) for r in changes.resolved]
    expected_orders += [(o.kind.value, o.origin, "pending", o.reason, None, None)
                        for o in book.position("KRW-BTC").pending]
    assert db.execute("SELECT intent, origin, status, reason, note, paper_trade_id FROM paper_orders"
                      " ORDER BY id").fetchall() == expected_orders
    assert [r[0] for r in db.execute("SELECT text FROM alerts WHERE kind = 'paper_fill' ORDER BY id")] == [
        describe_fill(f) for f in changes.fills]
    marks = db.execute("SELECT market, extract(epoch FROM ts)::bigint, price, volume, realized_pnl, unrealized_pnl,"
                       " fees_krw, exposure_krw FROM paper_marks ORDER BY ts").fetchall()
    assert marks == [tuple(m) for m in changes.marks.values()]
