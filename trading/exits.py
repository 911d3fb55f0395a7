"""Exit plans: when a position's stop-loss, trailing stop, take-profit, time limit or partial
take-profit fires. Pure: the paper book calls it on every 1-second close of a held position."""

from __future__ import annotations

from decimal import Decimal

from model.trading import ExitPlan, SignalKind
from trading.strategy import fmt_price as _p

BPS = Decimal(10_000)


def exit_plan_decision(plan: ExitPlan, *, entry: Decimal, max_price: Decimal, entered_ts: int | None,
                       partial_taken: bool, close: Decimal, ts: int) -> tuple[SignalKind | None, str]:
    """Which exit ``plan`` calls for at a 1-second ``close`` at bar time ``ts``, and why.

    ``entry`` is the position's average entry price, ``max_price`` the highest price since entry.
    Checked in this order, the first that applies wins: stop-loss (or the break-even stop after a
    partial exit), trailing stop, take-profit, time limit, partial take-profit.
    """
    stop, stop_name = None, "stop-loss"
    if plan.stop_loss_bps is not None:
        stop = entry * (1 - plan.stop_loss_bps / BPS)
    if plan.breakeven_after_partial and partial_taken and (stop is None or stop < entry):
        stop, stop_name = entry, "break-even stop"
    if stop is not None and close <= stop:
        return SignalKind.EXIT, f"{stop_name}: close {_p(close)} <= {_p(stop)} (entry {_p(entry)})"
    if plan.trailing_stop_bps is not None:
        armed = plan.trailing_activation_bps is None or max_price >= entry * (1 + plan.trailing_activation_bps / BPS)
        level = max_price * (1 - plan.trailing_stop_bps / BPS)
        if armed and close <= level:
            return SignalKind.EXIT, (f"trailing stop: close {_p(close)} <= {_p(level)} "
                                     f"({plan.trailing_stop_bps} bps under the high {_p(max_price)} since entry)")
    if plan.take_profit_bps is not None:
        target = entry * (1 + plan.take_profit_bps / BPS)
        if close >= target:
            return SignalKind.EXIT, f"take-profit: close {_p(close)} >= {_p(target)} (entry {_p(entry)})"
    if plan.time_limit_s is not None and entered_ts is not None and ts - entered_ts >= plan.time_limit_s:
        return SignalKind.EXIT, f"time limit: held {ts - entered_ts} s >= {plan.time_limit_s} s"
    if plan.partial_take_profit_bps is not None and not partial_taken:
        target = entry * (1 + plan.partial_take_profit_bps / BPS)
        if close >= target:
            return SignalKind.PARTIAL_EXIT, (f"partial take-profit: close {_p(close)} >= {_p(target)}, "
                                             f"selling {plan.partial_fraction}")
    return None, ""
