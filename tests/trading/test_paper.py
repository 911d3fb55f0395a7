from __future__ import annotations

from decimal import Decimal

from actors.messages import Bar, SignalKind, SignalRaised, TradeSource
from trading.paper import PaperBook


def _bar(ts: int, close: str, market: str = "KRW-BTC") -> Bar:
    c = Decimal(close)
    return Bar(market=market, ts=ts, open=c, high=c, low=c, close=c, volume=Decimal("0.1"), trade_count=1,
               source=TradeSource.CAPTURE)


def _sig(ts: int, kind: SignalKind, price: str) -> SignalRaised:
    return SignalRaised(market="KRW-BTC", kind=kind, bar_ts=ts, price=Decimal(price), reason="t")


def test_round_trip_pnl_is_net_of_both_fees() -> None:
    book = PaperBook(order_krw=Decimal(100_000), fee_rate=Decimal("0.0005"))
    bars = [_bar(1, "50000000"), _bar(2, "51000000")]
    fills = book.apply(bars, [_sig(1, SignalKind.ENTER_LONG, "50000000"), _sig(2, SignalKind.EXIT, "51000000")])
    assert [f.side for f in fills] == ["buy", "sell"]
    buy, sell = fills
    assert buy.volume == Decimal("0.00200000")  # 100 000 / 50 000 000, rounded down to 8 dp
    assert buy.fee_krw == Decimal("50.00000000")
    assert sell.amount_krw == Decimal("102000.00000000")
    assert sell.fee_krw == Decimal("51.00000000")
    assert sell.realized_pnl == Decimal("102000") - Decimal("51") - Decimal("100000") - Decimal("50")
    pos = book.position("KRW-BTC")
    assert not pos.is_long and pos.realized_pnl == sell.realized_pnl and pos.fees_krw == Decimal(101)


def test_bars_already_applied_are_ignored_after_restore() -> None:
    book = PaperBook(order_krw=Decimal(100_000), fee_rate=Decimal("0.0005"))
    book.apply([_bar(1, "100")], [_sig(1, SignalKind.ENTER_LONG, "100")])
    restored = PaperBook(order_krw=Decimal(100_000), fee_rate=Decimal("0.0005"), positions=dict(book.positions))
    again = restored.apply([_bar(1, "100")], [_sig(1, SignalKind.ENTER_LONG, "100")])
    assert again == []
    assert restored.position("KRW-BTC").trades == 1


def test_enter_while_long_and_exit_while_flat_do_nothing() -> None:
    book = PaperBook(order_krw=Decimal(100_000), fee_rate=Decimal("0.0005"))
    assert book.apply([_bar(1, "100")], [_sig(1, SignalKind.EXIT, "100")]) == []
    assert len(book.apply([_bar(2, "100")], [_sig(2, SignalKind.ENTER_LONG, "100")])) == 1
    assert book.apply([_bar(3, "120")], [_sig(3, SignalKind.ENTER_LONG, "120")]) == []
    assert book.position("KRW-BTC").max_price == Decimal("120")
