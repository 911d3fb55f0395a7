"""backtest.report: the figures of a hand-made trade list, checked against sums done by hand."""

from __future__ import annotations

import math
import statistics
from datetime import UTC, datetime
from decimal import Decimal

import pytest

from backtest.report import PaperTrade, ReportError, compute, iso, plain

D = Decimal


def _s(text: str) -> int:
    return int(datetime.fromisoformat(text).replace(tzinfo=UTC).timestamp())


def _fill(n: int, when: str, market: str, side: str, price: str, volume: str, fee: str, pnl: str = "0") -> PaperTrade:
    return PaperTrade(id=n, market=market, side=side, price=D(price), volume=D(volume),
                      amount_krw=D(price) * D(volume), fee_krw=D(fee), realized_pnl=D(pnl), reason="test",
                      fill_ts=_s(when))


# Two days, two markets, fee 0.05 %, 100,000 KRW a trade. Every number below is worked out by hand.
TRADES = [
    _fill(1, "2024-01-01 00:00", "KRW-BTC", "buy", "100000000", "0.001", "50"),
    # 101,000 − 50.5 − 100,000 − 50 = +899.5
    _fill(2, "2024-01-01 06:00", "KRW-BTC", "sell", "101000000", "0.001", "50.5", "899.5"),
    _fill(3, "2024-01-01 12:00", "KRW-BTC", "buy", "100000000", "0.001", "50"),
    _fill(4, "2024-01-01 18:00", "KRW-ETH", "buy", "4000000", "0.025", "50"),  # two positions: 200,000 committed
    # 98,000 − 49 − 100,000 − 50 = −2,099
    _fill(5, "2024-01-02 00:00", "KRW-BTC", "sell", "98000000", "0.001", "49", "-2099"),
    # 102,500 − 51.25 − 100,000 − 50 = +2,398.75
    _fill(6, "2024-01-02 12:00", "KRW-ETH", "sell", "4100000", "0.025", "51.25", "2398.75"),
    _fill(7, "2024-01-02 18:00", "KRW-BTC", "buy", "99000000", "0.00101", "49.995"),  # still open at the end
]
START, END = _s("2024-01-01 00:00") * 1000, _s("2024-01-03 00:00") * 1000


def test_figures_of_the_hand_made_list() -> None:
    report = compute(TRADES, start_ms=START, end_ms=END, last_prices={"KRW-BTC": D("99500000"), "KRW-ETH": D(1)})
    f = report.figures
    assert (f.trades, f.closed_trades, f.wins, f.losses) == (7, 3, 2, 1)
    assert f.win_rate_pct == D("66.67")  # 2 / 3
    assert f.pnl_krw == D("1199.25")  # 899.5 − 2,099 + 2,398.75
    assert f.fees_krw == D("350.745")  # 50 + 50.5 + 50 + 50 + 49 + 51.25 + 49.995
    assert f.capital_krw == D(200_000)  # BTC and ETH open together from 18:00 to midnight
    assert f.return_pct == D("0.60")  # 1,199.25 / 200,000
    # equity 0 → +899.5 → −1,199.5 → +1,199.25: the fall from +899.5 to −1,199.5
    assert f.max_drawdown_krw == D(2099)
    # in a position 00–06 h, 12–36 h (BTC 12–24 overlaps ETH 18–36) and 42–48 h: 36 of 48 hours
    assert f.exposure_pct == D("75.00")
    # open BTC: 0.00101 × 99,500,000 − 99,990 − 49.995
    assert f.unrealized_pnl_krw == D("455.005")
    assert [(p.market, p.volume, p.cost_krw) for p in report.open_positions] == [("KRW-BTC", D("0.00101"), D(99990))]
    # daily PnL: 2024-01-01 +899.5; 2024-01-02 −2,099 + 2,398.75 = +299.75
    daily = [899.5, 299.75]
    expected = statistics.mean(daily) / statistics.stdev(daily) * math.sqrt(365)
    assert f.days == 2
    assert f.sharpe_daily is not None and abs(float(f.sharpe_daily) - expected) < 0.0006
    assert [(p.ts_ms, p.equity_krw) for p in report.equity] == [
        (START, 0), (_s("2024-01-01 06:00") * 1000, D("899.5")), (_s("2024-01-02 00:00") * 1000, D("-1199.5")),
        (_s("2024-01-02 12:00") * 1000, D("1199.25")), (END, D("1199.25"))]


def test_days_without_trades_count_as_flat_days() -> None:
    end = _s("2024-01-05 00:00") * 1000  # two more days, nothing closed on them
    f = compute(TRADES, start_ms=START, end_ms=end, last_prices={}).figures
    daily = [899.5, 299.75, 0, 0]
    assert f.days == 4
    assert f.sharpe_daily is not None
    assert abs(float(f.sharpe_daily) - statistics.mean(daily) / statistics.stdev(daily) * math.sqrt(365)) < 0.0006
    assert f.unrealized_pnl_krw == D("-49.995")  # no last price: valued at cost, minus the entry fee


def test_partial_sells_use_the_average_cost() -> None:
    trades = [
        _fill(1, "2024-01-01 00:00", "KRW-BTC", "buy", "100", "2", "0.1"),
        _fill(2, "2024-01-01 01:00", "KRW-BTC", "buy", "200", "2", "0.2"),
        _fill(3, "2024-01-01 02:00", "KRW-BTC", "sell", "300", "1", "0.15", "149.775"),
    ]
    report = compute(trades, start_ms=START, end_ms=START + 4 * 3_600_000, last_prices={"KRW-BTC": D(300)})
    (pos,) = report.open_positions
    assert (pos.volume, pos.cost_krw, pos.entry_fees_krw) == (D(3), D(450), D("0.225"))  # ¾ of 600 and of 0.3
    assert pos.unrealized_pnl_krw == D("449.775")  # 900 − 450 − 0.225
    assert report.figures.capital_krw == D(600)
    assert report.figures.exposure_pct == D("100.00")


def test_no_trades() -> None:
    f = compute([], start_ms=START, end_ms=END, last_prices={}).figures
    assert (f.trades, f.pnl_krw, f.fees_krw, f.max_drawdown_krw, f.exposure_pct) == (0, 0, 0, 0, D("0.00"))
    assert f.win_rate_pct is None and f.return_pct is None and f.sharpe_daily is None


def test_inconsistent_lists_and_windows_are_refused() -> None:
    oversold = [_fill(1, "2024-01-01 00:00", "KRW-BTC", "sell", "1", "1", "0")]
    with pytest.raises(ReportError, match="paper trade 1: sells 1 KRW-BTC but the position holds 0"):
        compute(oversold, start_ms=START, end_ms=END, last_prices={})
    with pytest.raises(ValueError, match="empty window"):
        compute([], start_ms=END, end_ms=START, last_prices={})


def test_text_forms_are_stable() -> None:
    assert [plain(D(x)) for x in ("0E-8", "-0", "1.50000000", "1E+2", "0.00000001")] == ["0", "0", "1.5", "100",
                                                                                        "0.00000001"]
    assert iso(START) == "2024-01-01T00:00:00Z"
    assert iso(START + 5) == "2024-01-01T00:00:00.005Z"
