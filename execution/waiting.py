"""What execution could not finish on its own, as lines for an operator (ctl status, Telegram /status).

Two kinds of work wait for the world or for a person: live exits that have not executed yet
(``pending_exits``: retried until they do; ``ctl abandon-exit`` gives one up), and orders whose
outcome no lookup could settle (the needs-review queue: ``ctl review <attempt> placed|absent``).
Pure: rows in, lines out.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime

from model.intents import Open
from persistence.exits import PendingExit

__all__ = ["describe_waiting"]


def describe_waiting(pending: Sequence[PendingExit], in_review: Sequence[Open]) -> list[str]:
    """The exits not executed yet and the orders waiting for an operator: one line each, or 'none'."""
    lines = [f"exits pending: {len(pending) or 'none'}" + (" (retried with backoff until they execute)"
                                                           if pending else "")]
    lines += [f"  paper trade {p.paper_trade_id}: {p.market} {p.mode} exit since {_utc(p.since)}, {p.tries} "
              f"tr{'y' if p.tries == 1 else 'ies'}: {p.reason} (ctl abandon-exit {p.paper_trade_id} gives it up)"
              for p in pending]
    lines.append(f"needs review: {len(in_review) or 'none'}")
    lines += [f"  attempt {o.id}: {o.identifier} ({o.market} {o.side}), outcome unknown since {_utc(o.created_at)}: "
              f"check the exchange, then ctl review {o.id} placed|absent" for o in in_review]
    return lines


def _utc(moment: datetime) -> str:
    return f"{moment.astimezone(UTC):%Y-%m-%d %H:%M:%S} UTC"
