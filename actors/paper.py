"""PaperActor: the paper book. Bars and signals in, paper fills (intents) out, via PostgreSQL.

Owns the paper connection. Each batch's fills, the positions and the processed-through mark are
committed in one transaction (with an alert per fill and a NOTIFY that wakes the execution
node), so a paper trade is either entirely recorded or not at all, and the execution node picks
it up from the table — never from memory. Positions are restored from PostgreSQL on start.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from decimal import Decimal
from typing import Any

from actors.node_actor import NodeActor
from actors.messages import BarsEvaluated, Drained
from persistence import alerts
from persistence import paper as paper_repo
from persistence.db import connect
from persistence.errors import translated
from trading.paper import Fill, PaperBook

log = logging.getLogger(__name__)


class PaperActor(NodeActor):
    """Applies signals to the paper book and records fills as intents for execution."""

    def __init__(self, *, order_krw: Decimal, fee_rate: Decimal, db_url: str,
                 on_drained: Callable[[int], None], **kw: Any) -> None:
        super().__init__(**kw)
        self.order_krw = order_krw
        self.fee_rate = fee_rate
        self.db_url = db_url
        self.on_drained = on_drained
        self.conn = None
        self.book = PaperBook(order_krw=order_krw, fee_rate=fee_rate)
        self.counters.update(bars=0, fills=0)

    def setup(self) -> None:
        super().setup()
        self.conn = connect(self.db_url, application_name=f"{self.context.supervisor_name}-paper")
        with translated():
            self.book.positions = paper_repo.load_positions(self.conn)
            self.conn.commit()
        held = {m: str(p.volume) for m, p in self.book.positions.items() if p.is_long}
        log.info("paper book restored: %d markets, open positions %s", len(self.book.positions), held or "none")

    def handle(self, message: Any) -> None:
        if isinstance(message, BarsEvaluated):
            fills = self.book.apply(message.bars, message.signals)
            touched = {b.market for b in message.bars}
            assert self.conn is not None
            with translated(), self.conn.transaction(), self.conn.cursor() as cur:
                paper_repo.save(cur, fills, [self.book.positions[m] for m in sorted(touched)])
                for fill in fills:
                    alerts.enqueue(cur, kind="paper_fill", level="info", text=describe_fill(fill))
            self.counters["bars"] += len(message.bars)
            self.counters["fills"] += len(fills)
        elif isinstance(message, Drained):
            log.info("paper stage drained (recording exhausted at offset %d)", message.last_offset)
            self.on_drained(message.last_offset)
        else:
            super().handle(message)

    def cleanup(self) -> None:
        if self.conn is not None:
            self.conn.close()
            self.conn = None


def describe_fill(fill: Fill) -> str:
    """One line for the alert: what was bought or sold, at what, and the PnL of a sale."""
    text = (f"paper {fill.side} {fill.market} {fill.volume.normalize()} @ {fill.price:,.0f} "
            f"({fill.amount_krw:,.0f} KRW, fee {fill.fee_krw:,.2f}) — {fill.reason}")
    if fill.side == "sell":
        text += f"; realised PnL {fill.realized_pnl:+,.0f} KRW"
    if fill.source == "candles-derived":
        text += " [data derived from candles]"
    return text
