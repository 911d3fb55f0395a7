"""``trading.paper``: the paper book's rules, exact accounting, and restart/batching invariance."""

from __future__ import annotations

from decimal import Decimal

from hypothesis import given, settings
from hypothesis import strategies as st

from model.market import Bar, TradeSource
from model.trading import ExitPlan, SignalKind
from model.trading import SignalRaised
from trading.paper import BookChanges, Mark, PaperBook, Position

D = Decimal
T0 = 1_724_500_000  # 2024-08-24, when KRW prices >= 2M had a 1,000 KRW tick


def _bar(ts: int, close: int | str, *, open_: int | str | None = None, high: int | str | None = None,
         low: int | str | None = None, market: str = "KRW-BTC", incomplete: bool = False) -> Bar:
    c = D(close)
    o = D(open_) if open_ is not None else c
    h = D(high) if high is not None else max(o, c)
    lo = D(low) if low is not None else min(o, c)
    return Bar(market=market, ts=ts, open=o, high=h, low=lo, close=c, volume=D("0.1"), trade_count=1,
               source=TradeSource.CANDLES, incomplete=incomplete)


def _sig(ts: int, kind: SignalKind, *, market: str = "KRW-BTC", price: str = "1", timeframe_s: int = 1,
         trigger_ts: int | None = None, **kw: object) -> SignalRaised:
    return SignalRaised(market=market, kind=kind, bar_ts=ts, price=D(price), reason=f"{kind.value}@{ts}",
                        timeframe_s=timeframe_s, trigger_ts=trigger_ts, **kw)  # type: ignore[arg-type]


def _book(**kw: object) -> PaperBook:
    kw.setdefault("order_krw", D(100_000))
    return PaperBook(**kw)  # type: ignore[arg-type]


ENTER, EXIT, PARTIAL = SignalKind.ENTER_LONG, SignalKind.EXIT, SignalKind.PARTIAL_EXIT


def test_round_trip_fills_at_the_next_open_net_of_both_fees() -> None:
    book = _book()
    bars = [_bar(T0, 50_000_000), _bar(T0 + 3, 51_000_000, open_=50_000_000), _bar(T0 + 4, 52_000_000, open_=51_000_000)]
    changes = book.apply(bars, [_sig(T0, ENTER), _sig(T0 + 3, EXIT)])
    buy, sell = changes.fills
    assert (buy.side, buy.fill_ts, buy.price, buy.bar_ts, buy.intent) == ("buy", T0 + 3, D(50_000_000), T0, "enter_long")
    assert buy.volume == D("0.00200000")  # 100 000 / 50 000 000, down to 8 decimals
    assert buy.fee_krw == D("50.00000000")  # Upbit's 0.05 % from exchange.rules
    assert (sell.fill_ts, sell.price, sell.amount_krw, sell.fee_krw) == (T0 + 4, D(51_000_000), D(102_000), D(51))
    assert sell.realized_pnl == D(102_000) - D(51) - D(100_000) - D(50)
    pos = book.position("KRW-BTC")
    assert not pos.is_long and pos.realized_pnl == sell.realized_pnl and pos.fees_krw == D(101)
    assert [r.status for r in changes.resolved] == ["filled", "filled"]


def test_a_signal_on_the_last_bar_stays_queued_until_the_next_bar() -> None:
    book = _book()
    first = book.apply([_bar(T0, 100_000_000)], [_sig(T0, ENTER)])
    assert first.fills == [] and [o.kind for o in book.position("KRW-BTC").pending] == [ENTER]
    restored = _book(positions=dict(book.positions))  # what a restart restores
    [fill] = restored.apply([_bar(T0 + 7, 101_000_000, open_=100_500_000)], []).fills
    assert (fill.price, fill.fill_ts) == (D(100_500_000), T0 + 7)
    assert restored.position("KRW-BTC").pending == ()
    assert restored.apply([_bar(T0 + 7, 1), _bar(T0 + 8, 101_000_000)], []).fills == []  # nothing twice


def test_a_timeframe_signal_fills_at_the_open_of_the_bar_that_closed_its_window() -> None:
    book = _book()
    bars = [_bar(T0 + 30, 100_000_000), _bar(T0 + 75, 99_000_000, open_=98_000_000)]
    # the minute bar [T0, T0+60) was closed by the 1-second bar at T0+75: decided at T0+60
    sig = _sig(T0, ENTER, timeframe_s=60, trigger_ts=T0 + 75, price="100000000")
    [fill] = book.apply(bars, [sig]).fills
    assert (fill.price, fill.fill_ts, fill.bar_ts) == (D(98_000_000), T0 + 75, T0)


def test_slippage_moves_the_price_against_us_onto_the_tick_grid() -> None:
    book = _book(slippage_bps=D(5))
    bars = [_bar(T0, 85_610_000), _bar(T0 + 1, 85_610_000), _bar(T0 + 2, 85_610_000)]
    buy, sell = book.apply(bars, [_sig(T0, ENTER), _sig(T0 + 1, EXIT)]).fills
    assert buy.price == D(85_653_000) and buy.market_price == D(85_610_000)  # 85,652,805 up to a 1,000 tick
    assert sell.price == D(85_567_000)  # 85,567,195 down to a 1,000 tick
    assert sell.realized_pnl < 0


def test_orders_under_the_minimum_total_are_rejected_with_the_reason() -> None:
    book = _book(order_krw=D(4_000))
    changes = book.apply([_bar(T0, 1_000), _bar(T0 + 1, 1_000)], [_sig(T0, ENTER)])
    [rejected] = changes.resolved
    assert changes.fills == [] and rejected.status == "rejected" and "5000 KRW minimum" in rejected.note
    big = _book()
    assert big.apply([_bar(T0, 1_000), _bar(T0 + 1, 1_000)], [_sig(T0, ENTER, amount_krw=D(3_000))]).fills == []


def test_partial_exit_sells_a_share_once_and_releases_cost_pro_rata() -> None:
    book = _book()
    bars = [_bar(T0 + i, 10_000) for i in range(5)]
    sigs = [_sig(T0, ENTER), _sig(T0 + 1, PARTIAL, fraction=D("0.4")), _sig(T0 + 2, PARTIAL, fraction=D("0.4"))]
    changes = book.apply(bars, sigs)
    buy, part = changes.fills
    assert part.intent == "partial_exit" and part.volume == D("4.0000") and part.position_volume == D(6)
    assert part.realized_pnl == -part.fee_krw - D(20)  # flat price: lost its own fee and 40 % of the buy fee
    pos = book.position("KRW-BTC")
    assert pos.partial_taken and pos.volume == D(6) and pos.cost_krw == D(60_000) and pos.entry_fee_krw == D(30)
    assert [reason for _sig_, reason in changes.ignored] == ["a partial exit was already taken"]


def test_a_partial_whose_remainder_would_be_unsellable_sells_everything() -> None:
    book = _book(order_krw=D(9_000))
    bars = [_bar(T0 + i, 1_000) for i in range(3)]
    changes = book.apply(bars, [_sig(T0, ENTER), _sig(T0 + 1, PARTIAL, fraction=D("0.6"))])
    assert changes.fills[1].volume == D(9) and "sold everything" in changes.resolved[1].note
    assert not book.position("KRW-BTC").is_long


def test_signals_that_do_not_apply_are_ignored() -> None:
    book = _book()
    assert book.apply([_bar(T0, 100)], [_sig(T0, EXIT)]).ignored[0][1] == "no position"
    book.apply([_bar(T0 + 1, 100_000)], [_sig(T0 + 1, ENTER)])
    changes = book.apply([_bar(T0 + 2, 100_000)], [_sig(T0 + 2, ENTER), _sig(T0 + 2, EXIT), _sig(T0 + 2, EXIT)])
    assert [why for _s, why in changes.ignored] == ["already long", "an exit is already queued"]


def test_rebuy_cooldown_after_a_full_exit() -> None:
    book = _book(cooldown_s=60)
    book.apply([_bar(T0 + i, 100_000) for i in range(3)], [_sig(T0, ENTER), _sig(T0 + 1, EXIT)])
    assert book.position("KRW-BTC").cooldown_until == T0 + 2 + 60
    early = book.apply([_bar(T0 + 30, 100_000), _bar(T0 + 31, 100_000)], [_sig(T0 + 30, ENTER)])
    assert early.fills == [] and early.ignored[0][1].startswith("re-buy cooldown")
    late = book.apply([_bar(T0 + 61, 100_000), _bar(T0 + 62, 100_000)], [_sig(T0 + 61, ENTER)])
    assert len(late.fills) == 1 and book.position("KRW-BTC").cooldown_until is None


def _entered(plan: ExitPlan, price: int = 1_000_000) -> tuple[PaperBook, BookChanges]:
    book = _book()
    return book, book.apply([_bar(T0, price), _bar(T0 + 1, price)], [_sig(T0, ENTER, exit_plan=plan)])


def _exit_after(book: PaperBook, closes: list[int]) -> tuple[str, int]:
    """Feed closes on the next seconds (and one more bar); the plan's exit and how many bars it took."""
    start = (book.position("KRW-BTC").last_bar_ts or T0) + 1
    bars = [_bar(start + i, c) for i, c in enumerate([*closes, closes[-1]])]
    changes = book.apply(bars, [])
    [sell] = [f for f in changes.fills if f.side == "sell"]
    assert sell.origin == "exit_plan"
    return sell.reason, sell.fill_ts - start


def test_exit_plan_stop_loss_and_take_profit() -> None:
    book, _ = _entered(ExitPlan(stop_loss_bps=D(100), take_profit_bps=D(200)))
    reason, at = _exit_after(book, [995_000, 990_000])
    assert reason.startswith("stop-loss") and at == 2  # decided on the 990,000 close, filled on the next bar
    book, _ = _entered(ExitPlan(stop_loss_bps=D(100), take_profit_bps=D(200)))
    assert _exit_after(book, [1_010_000, 1_020_000])[0].startswith("take-profit")


def test_exit_plan_time_limit_counts_bar_time_since_the_fill() -> None:
    book, _ = _entered(ExitPlan(time_limit_s=3600))
    assert book.apply([_bar(T0 + 3600, 1_000_000)], []).fills == []
    book.apply([_bar(T0 + 3601, 1_000_000)], [])
    [sell] = book.apply([_bar(T0 + 3602, 1_000_000)], []).fills
    assert sell.reason.startswith("time limit")


def test_trailing_stop_follows_the_highest_price_once_armed() -> None:
    book, _ = _entered(ExitPlan(trailing_stop_bps=D(100), trailing_activation_bps=D(50)))
    book.apply([_bar(T0 + 2, 995_000, low=990_000)], [])  # not armed: a 1 % fall from entry does nothing
    assert book.position("KRW-BTC").pending == ()
    book.apply([_bar(T0 + 3, 1_010_000, high=1_020_000)], [])
    assert book.position("KRW-BTC").max_price == D(1_020_000)
    reason, _at = _exit_after(book, [1_009_800])  # 1,020,000 - 1 % = 1,009,800
    assert reason.startswith("trailing stop")


def test_partial_take_profit_then_break_even_stop() -> None:
    plan = ExitPlan(partial_take_profit_bps=D(100), partial_fraction=D("0.5"), breakeven_after_partial=True,
                    stop_loss_bps=D(300))
    book, _ = _entered(plan)
    changes = book.apply([_bar(T0 + 2, 1_010_000), _bar(T0 + 3, 1_012_000)], [])
    [part] = changes.fills
    assert part.intent == "partial_exit" and part.reason.startswith("partial take-profit")
    assert book.position("KRW-BTC").partial_taken
    reason, _at = _exit_after(book, [1_000_000])
    assert reason.startswith("break-even stop")


def test_max_price_is_the_high_since_entry_and_never_lowered_by_a_restore() -> None:
    book, _ = _entered(ExitPlan(time_limit_s=10**6), price=1_000_000)
    book.apply([_bar(T0 + 2, 1_005_000, high=1_030_000)], [])
    restored = _book(positions=dict(book.positions))
    restored.apply([_bar(T0 + 3, 990_000), _bar(T0 + 2, 2_000_000, high=2_000_000)], [])  # the old bar is skipped
    assert restored.position("KRW-BTC").max_price == D(1_030_000)


def test_exit_plans_are_not_checked_on_incomplete_bars() -> None:
    book, _ = _entered(ExitPlan(stop_loss_bps=D(100)))
    book.apply([_bar(T0 + 2, 900_000, incomplete=True)], [])
    assert book.position("KRW-BTC").pending == ()


def test_only_krw_markets_are_paper_traded() -> None:
    book = _book()
    bars = [_bar(T0, 100, market="BTC-ITAM"), _bar(T0 + 1, 100, market="BTC-ITAM")]
    changes = book.apply(bars, [_sig(T0, ENTER, market="BTC-ITAM")])
    assert changes.fills == [] and "KRW markets only" in changes.resolved[0].note


# --- properties ----------------------------------------------------------------------------

_closes = st.lists(st.integers(min_value=900, max_value=1_100), min_size=2, max_size=60)
_kinds = st.sampled_from([ENTER, EXIT, PARTIAL, None, None, None])


@st.composite
def _scenario(draw: st.DrawFn) -> tuple[list[Bar], list[SignalRaised]]:
    closes = draw(_closes)
    bars, signals, ts = [], [], T0
    for c in closes:
        ts += draw(st.integers(min_value=1, max_value=90))
        o = draw(st.integers(min_value=900, max_value=1_100))
        bars.append(_bar(ts, c * 100, open_=o * 100, high=max(c, o) * 100 + draw(st.integers(0, 500))))
        kind = draw(_kinds)
        if kind is PARTIAL:
            signals.append(_sig(ts, kind, fraction=D(draw(st.sampled_from(["0.25", "0.5", "0.9"])))))
        elif kind is ENTER:
            plan = draw(st.one_of(st.none(), st.builds(
                ExitPlan, stop_loss_bps=st.sampled_from([None, D(50), D(300)]),
                take_profit_bps=st.sampled_from([None, D(80)]), time_limit_s=st.sampled_from([None, 120]),
                trailing_stop_bps=st.sampled_from([None, D(60)]), partial_take_profit_bps=st.sampled_from([None, D(40)]))))
            signals.append(_sig(ts, kind, exit_plan=plan, amount_krw=draw(st.sampled_from([None, D(7_000)]))))
        elif kind is EXIT:
            signals.append(_sig(ts, kind))
    return bars, signals


def _run(bars: list[Bar], signals: list[SignalRaised], cuts: list[int], **kw: object) -> tuple[list, Position]:
    book = _book(**kw)
    fills, lo = [], 0
    for hi in [*sorted(set(cuts)), len(bars)]:
        if hi <= lo:
            continue
        book = _book(**kw, positions=dict(book.positions))  # a restart between batches
        chunk = bars[lo:hi]
        ts = {b.ts for b in chunk}
        fills += book.apply(chunk, [s for s in signals if s.bar_ts in ts]).fills
        lo = hi
    return fills, book.position("KRW-BTC")


@settings(max_examples=150, deadline=None)
@given(scenario=_scenario(), cuts=st.lists(st.integers(min_value=1, max_value=59), max_size=5))
def test_batches_and_restarts_do_not_change_the_book(scenario: tuple[list[Bar], list[SignalRaised]],
                                                     cuts: list[int]) -> None:
    bars, signals = scenario
    once = _run(bars, signals, [], slippage_bps=D(3), cooldown_s=30)
    assert _run(bars, signals, cuts, slippage_bps=D(3), cooldown_s=30) == once


@settings(max_examples=150, deadline=None)
@given(scenario=_scenario())
def test_equity_is_cash_plus_holdings_exactly(scenario: tuple[list[Bar], list[SignalRaised]]) -> None:
    bars, signals = scenario
    fills, pos = _run(bars, signals, [], slippage_bps=D(7))
    cash = sum(((f.amount_krw - f.fee_krw) if f.side == "sell" else -(f.amount_krw + f.fee_krw) for f in fills), D(0))
    assert pos.realized_pnl + pos.unrealized_pnl == cash + pos.exposure_krw
    assert pos.realized_pnl == sum((f.realized_pnl for f in fills), D(0))
    assert pos.fees_krw == sum((f.fee_krw for f in fills), D(0))
    held = sum((f.volume if f.side == "buy" else -f.volume for f in fills), D(0))
    assert pos.volume == held and pos.volume >= 0
    if pos.is_long:
        last_buy = [f for f in fills if f.side == "buy"][-1]
        assert pos.max_price >= last_buy.market_price  # the highest price since entry includes the entry
    for f in fills:
        assert f.fill_ts > f.bar_ts  # never filled on the bar that decided it
        assert f.side == "sell" or f.amount_krw >= 5_000



def _batched_marks(bars: list[Bar], signals: list[SignalRaised], cuts: list[int]) -> dict[tuple[str, int], Mark]:
    book, marks, lo = _book(), {}, 0
    for hi in [*sorted(set(cuts)), len(bars)]:
        if hi <= lo:
            continue
        chunk = bars[lo:hi]
        ts = {b.ts for b in chunk}
        marks.update(book.apply(chunk, [s for s in signals if s.bar_ts in ts]).marks)  # later batches overwrite
        lo = hi
    return marks


@settings(max_examples=100, deadline=None)
@given(scenario=_scenario(), cuts=st.lists(st.integers(min_value=1, max_value=59), max_size=5))
def test_marks_are_the_position_after_the_last_bar_of_each_interval(scenario: tuple[list[Bar], list[SignalRaised]],
                                                                     cuts: list[int]) -> None:
    bars, signals = scenario
    book, expected = _book(), {}
    for bar in bars:  # bar by bar: the mark of an interval is the position after its last bar
        book.apply([bar], [s for s in signals if s.bar_ts == bar.ts])
        start = bar.ts - bar.ts % book.mark_interval_s
        expected[("KRW-BTC", start)] = Mark.of(book.position("KRW-BTC"), start)
    assert _batched_marks(bars, signals, cuts) == expected


def test_markets_interleaved_in_one_batch_are_booked_and_marked_apart() -> None:
    book = _book()
    bars = [_bar(T0 + i, 50_000_000 + 1_000 * i, market=m) for i in range(0, 130, 10)
            for m in ("KRW-BTC", "KRW-ETH")]
    changes = book.apply(bars, [_sig(T0, ENTER, market="KRW-ETH"), _sig(T0 + 60, EXIT, market="KRW-ETH")])
    assert [(f.market, f.side, f.fill_ts) for f in changes.fills] == [("KRW-ETH", "buy", T0 + 10),
                                                                      ("KRW-ETH", "sell", T0 + 70)]
    assert list(changes.marks) == [(m, T0 - T0 % 60 + 60 * k) for k in range(3) for m in ("KRW-BTC", "KRW-ETH")]
    assert changes.markets == {"KRW-BTC", "KRW-ETH"}
    for (market, start), mark in changes.marks.items():
        last = max((b for b in bars if b.market == market and b.ts - b.ts % 60 == start), key=lambda b: b.ts)
        assert mark.price == last.close
    assert book.position("KRW-BTC").trades == 0 and book.position("KRW-ETH").trades == 2
