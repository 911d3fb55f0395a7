"""``trading.exits``: which exit a plan calls for, in which order."""

from __future__ import annotations

from decimal import Decimal

import pytest

from model.trading import ExitPlan, SignalKind
from trading.exits import exit_plan_decision

D = Decimal
PLAN = ExitPlan(stop_loss_bps=D(100), take_profit_bps=D(300), trailing_stop_bps=D(200), time_limit_s=600,
                partial_take_profit_bps=D(150))


def _decide(close: int, *, high: int = 100_000, held_s: int = 0, partial: bool = False,
            plan: ExitPlan = PLAN) -> tuple[SignalKind | None, str]:
    return exit_plan_decision(plan, entry=D(100_000), max_price=D(high), entered_ts=1_000, partial_taken=partial,
                              close=D(close), ts=1_000 + held_s)


@pytest.mark.parametrize(("kwargs", "kind", "reason"), [
    ({"close": 99_000}, SignalKind.EXIT, "stop-loss"),
    ({"close": 99_001}, None, ""),
    ({"close": 105_000, "high": 108_000}, SignalKind.EXIT, "trailing stop"),  # wins over take-profit
    ({"close": 103_000, "high": 103_000}, SignalKind.EXIT, "take-profit"),
    ({"close": 100_500, "held_s": 600}, SignalKind.EXIT, "time limit"),
    ({"close": 100_500, "held_s": 599}, None, ""),
    ({"close": 101_500, "high": 101_500}, SignalKind.PARTIAL_EXIT, "partial take-profit"),
    ({"close": 101_500, "high": 101_500, "partial": True}, None, ""),
])
def test_plan_decisions(kwargs: dict[str, int], kind: SignalKind | None, reason: str) -> None:
    got_kind, got_reason = _decide(**kwargs)  # type: ignore[arg-type]
    assert got_kind is kind and got_reason.startswith(reason)


def test_break_even_stop_after_a_partial_and_trailing_activation() -> None:
    plan = ExitPlan(stop_loss_bps=D(100), breakeven_after_partial=True)
    assert _decide(99_950, plan=plan) == (None, "")
    assert _decide(100_000, plan=plan, partial=True)[1].startswith("break-even stop")
    armed_late = ExitPlan(trailing_stop_bps=D(100), trailing_activation_bps=D(300))
    assert _decide(101_000, high=102_500, plan=armed_late) == (None, "")  # max never got 3 % above entry
    assert _decide(101_000, high=103_000, plan=armed_late)[1].startswith("trailing stop")
