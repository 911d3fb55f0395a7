"""PaperActor: the paper book. Bars and signals in, paper fills (intents) out, via PostgreSQL.

Owns the paper connection. Each batch's fills, the positions with their queued orders, the
processed-through mark, the resolved orders and the equity marks are committed in one
pipelined transaction (with an alert per fill and a NOTIFY that wakes the execution node; the
actor waits for the server only to read the flags, the new trade ids and the commit), so a paper
trade is either entirely recorded or not at all, and the execution node picks it up from the
table — never from memory. Positions, their queued orders (signals waiting for the next
1-second bar), max prices, partial-exit flags and cooldowns are restored from PostgreSQL on
start. The book's rules are in ``trading.paper``.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from decimal import Decimal
from typing import Any

import psycopg

from model.market import Bar
from actors.messages import BarsEvaluated, Drained
from model.trading import SignalRaised
from model.trading import SignalKind
from actors.node_actor import NodeActor
from persistence import alerts, control
from persistence import paper as paper_repo
from persistence.bars import pipelined_transaction
from persistence.db import connect
from persistence.errors import translated
from trading.paper import Fill, PaperBook
from trading.strategy import fmt_price

log = logging.getLogger(__name__)

DEFAULT_CAPITAL_KRW = Decimal(10_000_000)


class PaperActor(NodeActor):
    """Applies signals to the paper book and records fills as intents for execution."""

    def __init__(self, *, order_krw: Decimal, fee_rate: Decimal | None, db_url: str,
                 on_drained: Callable[[int], None], slippage_bps: Decimal = Decimal(0), cooldown_s: int = 0,
                 capital_krw: Decimal = DEFAULT_CAPITAL_KRW, mark_interval_s: int = 60, **kw: Any) -> None:
        super().__init__(**kw)
        self.db_url = db_url
        self.on_drained = on_drained
        self.capital_krw = capital_krw
        self.conn: psycopg.Connection | None = None
        self.book = PaperBook(order_krw=order_krw, fee_rate=fee_rate, slippage_bps=Decimal(slippage_bps),
                              cooldown_s=cooldown_s, mark_interval_s=mark_interval_s)
        self.counters.update(bars=0, fills=0, rejected=0, ignored=0)

    def setup(self) -> None:
        super().setup()
        self.conn = conn = connect(self.db_url, application_name=f"{self.context.supervisor_name}-paper",
                                   durable=False)
        with translated():
            self.book.positions = paper_repo.load_positions(conn)
            paper_repo.set_capital(conn, self.capital_krw)
            conn.commit()
        held = {m: str(p.volume) for m, p in self.book.positions.items() if p.is_long}
        queued = sum(len(p.pending) for p in self.book.positions.values())
        log.info("paper book restored: %d markets, open positions %s, %d queued orders",
                 len(self.book.positions), held or "none", queued)

    def handle(self, message: Any) -> None:
        if isinstance(message, BarsEvaluated):
            assert self.conn is not None
            # one pipelined transaction: the server is waited for when the flags and the new trade ids are
            # read, and once at the commit
            with translated(), pipelined_transaction(self.conn) as cur:
                flatten_id, exits = self._operator_exits(cur, message.bars)
                changes = self.book.apply(message.bars, (*message.signals, *exits))
                positions = [self.book.positions[m] for m in sorted(changes.markets)]
                paper_repo.save(cur, changes, positions)
                paper_repo.enqueue_fill_alerts(cur, [describe_fill(fill) for fill in changes.fills])
                if flatten_id and not any(p.is_long for p in self.book.positions.values()):
                    control.set_flag(cur, "flatten_done", flatten_id, "paper")
                    alerts.enqueue(cur, kind="control", level="info",
                                   text=f"flatten (command #{flatten_id}) complete: every paper position is closed")
            rejected = [r for r in changes.resolved if r.status == "rejected"]
            for r in rejected:
                log.info("paper %s %s rejected: %s (%s)", r.order.kind.value, r.order.market, r.note, r.order.reason)
            self.counters["bars"] += len(message.bars)
            self.counters["fills"] += len(changes.fills)
            self.counters["rejected"] += len(rejected)
            self.counters["ignored"] += len(changes.ignored)
        elif isinstance(message, Drained):
            log.info("paper stage drained (recording exhausted at offset %d)", message.last_offset)
            self.on_drained(message.last_offset)
        else:
            super().handle(message)

    def _operator_exits(self, cur: Any, bars: tuple[Bar, ...]) -> tuple[int, list[SignalRaised]]:
        """An operator's pending flatten: an exit for every long position with a bar in this batch.

        The request (``system_flags.flatten``) stays active until every position is flat, then it
        is marked done in the same transaction as the last exit fill — exactly once across restarts.
        """
        switches = control.flags(cur)
        request = switches.get("flatten")
        if not isinstance(request, dict) or int(request.get("id", 0)) <= int(switches.get("flatten_done") or 0):
            return 0, []
        flatten_id = int(request["id"])
        first: dict[str, Bar] = {}
        for bar in bars:
            pos = self.book.position(bar.market)
            if pos.last_bar_ts is None or bar.ts > pos.last_bar_ts:
                first.setdefault(bar.market, bar)
        exits = [SignalRaised(market=m, kind=SignalKind.EXIT, bar_ts=b.ts, price=b.close,
                              reason=f"operator flatten (command #{flatten_id})")
                 for m, b in first.items() if self.book.position(m).is_long]
        return flatten_id, exits

    def cleanup(self) -> None:
        if self.conn is not None:
            self.conn.close()
            self.conn = None


def describe_fill(fill: Fill) -> str:
    """One line for the alert: what was bought or sold, at what, and the PnL of a sale."""
    what = {"enter_long": "buy", "exit": "sell", "partial_exit": "partial sell"}.get(fill.intent, fill.side)
    text = (f"paper {what} {fill.market} {fill.volume.normalize()} @ {fmt_price(fill.price)} "
            f"({fill.amount_krw:,.0f} KRW, fee {fill.fee_krw:,.2f}) — {fill.reason}")
    if fill.side == "sell":
        text += f"; realised PnL {fill.realized_pnl:+,.0f} KRW"
    if fill.source == "candles-derived":
        text += " [data derived from candles]"
    return text
