"""The exactly-once protocol's shell: at most one exchange order per intent, whatever crashes and whenever.

The decisions are :mod:`execution.protocol`'s (pure transitions: an attempt and what the venue
answered in, the actions that follow out); this module is the shell that gathers facts, reads and
writes the database, talks to the venue and carries the actions out, one unit of work per
transition (the database actions in one transaction, then the venue and the budget). The venue's
error classes are mapped to protocol events here, once (:meth:`Engine._answer`).

An *intent* is a paper trade. For each one, in order:

1. **Decide.** The requested mode (``TRADE_MODE``, or ``ctl mode`` at run time) goes through the
   guards (:func:`execution.guards.decide_mode`), then the intent through :func:`~execution.guards.gate`
   with its facts: switches, age, breaker, request budget, reconciliation, risk and budget. A
   verdict with a status (``logged``, ``blocked``, a persistent ``throttled``) is recorded — the
   attempt row and the consumer cursor in one transaction — and nothing is sent.
2. **Commit, then send.** The attempt row (identifier ``{bot}-{intent}-{attempt}-{nonce}``: see
   :mod:`trading.orders`; the request; status ``unknown``) and the cursor move are committed
   *before* the request leaves. A crash from here on leaves an ``unknown`` row that the next start
   resolves; it can never lead to a second request with a fresh identifier for the same attempt.
3. **Record the answer** (:func:`execution.protocol.after_send`). Test orders: ``test_ok``. Live
   orders: ``submitted`` (or ``done`` / ``cancelled``) with the exchange's uuid, fills, fees and a
   snapshot. A refusal by the venue is ``error`` (final). A 429 is ``throttled`` and a new attempt
   follows after the wait. An open breaker means nothing was sent: ``blocked`` with ``BREAKER_OPEN``.
4. **Resolve the unknown** (:func:`execution.protocol.after_lookup`). A timeout, reset, 5xx or
   unparsable answer, a duplicate-identifier error, and any attempt found non-final at start: the
   identifier is looked up. Found → adopt the exchange's order. Not found → ask again until
   ``lookup_answers`` answers spread over at least ``lookup_window_s`` agree (the exchange lists
   new orders late, docs/upbit-api.md §2.5; the window must exceed that lag: docs/supervision.md
   §6, E4). Only then is the attempt ``error`` ("absent"), and — in the same transaction — the
   intent's next attempt is committed if the intent still passes the gate. Each answer is
   persisted, so a restart continues the count. The database refuses a second non-final attempt
   of one intent (partial unique index), so "two unresolved attempts" cannot happen even by bug.
5. **Follow.** Submitted live orders are polled (``GET /v1/order`` by uuid) to a final state:
   every ``follow_timeout_s`` at first on each wake, then every 10 s; fills are deduplicated by
   the exchange's trade uuid.

Test orders create nothing, so a test attempt with an unknown outcome is simply ``error`` and
the next attempt is sent (up to :data:`MAX_ATTEMPTS`).

**Live sells sell only what is ours.** A live sell's volume is what our own fills bought of the
market and did not sell, minus what our open sells still ask for (:func:`execution.risk.sell_volume`),
never the paper volume. When that is worth less than the venue's minimum order, the sell is
``blocked`` with ``NOTHING_HELD`` and an alert says so: no order. Exits are risk-checked too
(``LIVE_MARKETS``, ``RISK_MAX_ORDER_KRW``: :func:`execution.risk.check_exit`).

**An exit is never dropped.** A live exit (a sell: it closes a real position) whose attempt ends
without executing — blocked by the breaker, a risk limit or a persistent throttle, refused by the
venue, failed :data:`MAX_ATTEMPTS` times, cancelled with nothing filled — is kept in
``pending_exits`` (:mod:`persistence.exits`), in the same transaction as that attempt's final
status, with one critical alert. Every step re-checks the due ones (backoff 1 s doubling to 300 s,
cut short when the exchange accepts an order again) and sends a new attempt, in live mode only,
once the gate lets it through. It stays pending until an attempt executes it, nothing of ours is
left to sell, or an operator abandons it. While an exit of a market is pending, entries in that
market are refused (``RISK_LIMIT``), and so is an entry that would make a position worth more
than one order may carry (its exit would be refused by the cap).

**Adoption checks the order.** An order found under our identifier (a lookup, or the reply to a
duplicate-identifier answer) is adopted only when it is the order we requested
(:func:`execution.adoption.mismatches`). A mismatch is never adopted: the attempt is recorded as
not placed (``error``), the kill switch is set (entries halt until an operator looks) and a
critical alert names both orders. Identifiers carry a random nonce
(:func:`trading.orders.identifier`), so an honest collision cannot happen.

**Needs review.** A live attempt whose outcome no lookup could settle for ``review_after_s``
(every lookup failed) enters the needs-review queue: one critical alert, shown by ``ctl status``,
the dashboard and Telegram. It stays ``unknown`` (no second attempt of its intent can go out) and
is still looked up every :data:`REVIEW_LOOKUP_S`; ``ctl review <attempt> placed|absent`` settles it.

Failpoints (drills): ``execution.after_intent_commit`` between 2 and the send,
``execution.after_send`` between the exchange's answer and its record.
"""

from __future__ import annotations

import dataclasses
import logging
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from typing import Any, Protocol

import psycopg

from config import ExecutionSettings, RiskSettings, Settings, TradeMode
from exchange.errors import (
    AuthFailed, CircuitOpen, CredentialsMissing, DuplicateIdentifier, ExchangeError, OrderRejectedByVenue, RateLimited,
)
from exchange.models import Order
from execution import risk
from execution import protocol
from execution.failpoints import Failpoints
from execution.protocol import LookupRules, Target
from execution.guards import GuardConfig, IntentFacts, ModeDecision, Verdict, decide_mode, gate
from model.reasons import Flag, Reason, Status
from persistence import account as account_repo
from persistence import alerts, control, cursors
from persistence import attempts as repo
from persistence import exits as exits_repo
from persistence import execution_state as state_repo
from model.intents import Attempt, Intent, Open
from model.risk import RiskState
from persistence.errors import translated
from model.clock import Clock
from trading.orders import identifier, market_order_request, new_nonce

log = logging.getLogger(__name__)

CONSUMER = "execution"
BATCH = 500
SEND_BATCH = 20  # test/live intents per step: each may wait on the exchange
STEP_BUDGET_S = 20.0  # no new intent is started after this long in one step (the hang limit is 300 s)
FOLLOW_INTERVAL_S = 0.5
FOLLOWS_PER_STEP = 10
MAX_ATTEMPTS = 3
THROTTLE_WAITS = 3  # a throttled intent waits for this many fresh seconds before it is recorded
SLOW_FOLLOW_S = 10.0
REVIEW_LOOKUP_S = 30.0  # an attempt in the needs-review queue is looked up this often
EXITS_PER_STEP = 10


class Exchange(Protocol):
    """What execution needs of :class:`exchange.rest.UpbitClient`."""

    def create_order(self, *, market: str, side: str, ord_type: str, identifier: str, price: Decimal | None = None,
                     volume: Decimal | None = None) -> Order: ...
    def test_order(self, *, market: str, side: str, ord_type: str, identifier: str | None = None,
                   price: Decimal | None = None, volume: Decimal | None = None) -> Order: ...
    def find_order(self, identifier: str) -> Order | None: ...
    def get_order(self, *, uuid: str | None = None, identifier: str | None = None) -> Order: ...
    def is_simulator(self) -> bool: ...
    def last_remaining(self, group: str) -> int | None: ...
    def breaker_state(self, group: str) -> str: ...


@dataclass(frozen=True, slots=True, kw_only=True)
class EngineConfig:
    """What the engine runs with: every value comes from the settings (``from_settings``), declared once
    in ``config``; tests build it with the groups they need."""

    bot_id: str
    requested: TradeMode  # TRADE_MODE; a ``mode`` flag set at run time wins
    guards: GuardConfig
    risk: RiskSettings = field(default_factory=RiskSettings)
    execution: ExecutionSettings = field(default_factory=ExecutionSettings)
    feed_is_live: bool = False  # the bars come from the live feed: their age counts for DATA_LAG

    @classmethod
    def from_settings(cls, settings: Settings) -> EngineConfig:
        """The engine's configuration of a loaded ``Settings``."""
        return cls(bot_id=settings.bot_id, requested=settings.trade_mode, guards=GuardConfig.from_settings(settings),
                   risk=settings.risk, execution=settings.execution, feed_is_live=settings.feed.is_live)


@dataclass(slots=True)
class _Follow:
    next_at: float  # monotonic
    since: float


@dataclass(slots=True)
class Stats:
    attempts: int = 0
    sent: int = 0
    blocked: int = 0
    unknown: int = 0
    adopted: int = 0
    absent: int = 0
    fills: int = 0
    pending_exits: int = 0  # exits that became pending (did not execute) since start
    exits_retried: int = 0  # new attempts sent for pending exits
    mismatches: int = 0  # orders found under our identifier that were not ours: never adopted
    reviews: int = 0  # attempts put in the needs-review queue
    by_status: dict[str, int] = field(default_factory=dict)


def _body(shown: protocol.VenueOrder) -> dict[str, Any]:
    """A JSON-able snapshot of an order answer (the shell hands the protocol only ``Order``\ s)."""
    if not isinstance(shown, Order):
        raise TypeError(f"expected an exchange Order, got {type(shown).__name__}")
    order = shown
    out: dict[str, Any] = {}
    for name in ("uuid", "identifier", "market", "side", "ord_type", "state", "price", "volume", "remaining_volume",
                 "executed_volume", "executed_funds", "paid_fee", "locked", "trades_count"):
        value = getattr(order, name)
        out[name] = str(value) if isinstance(value, Decimal) else value
    out["created_at"] = order.created_at.isoformat()
    out["trades"] = [{"uuid": t.uuid, "price": str(t.price), "volume": str(t.volume), "funds": str(t.funds),
                      "side": t.side, "created_at": t.created_at.isoformat()} for t in order.trades]
    return out


def _attempt_row(intent: Intent, number: int, verdict: Verdict, request: dict[str, str]) -> Attempt:
    """The attempt row for ``verdict``: its final status, or ``unknown`` when it is about to be sent."""
    return Attempt(
        paper_trade_id=intent.paper_trade_id, attempt=number, identifier=request["identifier"],
        mode=verdict.mode.value, status=(verdict.status or Status.UNKNOWN).value, market=intent.market,
        side=request["side"], request=request, blocked_reasons=tuple(r.value for r in verdict.reasons),
        error=verdict.detail)


def _budget_key(paper_trade_id: int) -> str:
    """Reservations are per intent, whichever of its attempts holds the KRW."""
    return str(paper_trade_id)


def _params(request: Mapping[str, str]) -> dict[str, Any]:
    params: dict[str, Any] = {"market": request["market"], "side": request["side"], "ord_type": request["ord_type"],
                              "identifier": request["identifier"]}
    if "price" in request:
        params["price"] = Decimal(request["price"])
    if "volume" in request:
        params["volume"] = Decimal(request["volume"])
    return params


class Engine:
    """Carries out the protocol above over one connection; called by the ExecutionActor."""

    def __init__(self, conn: psycopg.Connection, exchange: Exchange | None, config: EngineConfig, *,
                 clock: Clock, failpoints: Failpoints | None = None, sleep: Callable[[float], None] = time.sleep,
                 on_mode: Callable[[ModeDecision], None] | None = None,
                 nonce: Callable[[], str] = new_nonce) -> None:
        self.conn = conn
        self.exchange = exchange
        self.config = config
        self.clock = clock
        self.failpoints = failpoints or Failpoints()
        self.sleep = sleep
        self.on_mode = on_mode
        self.nonce = nonce
        self.cursor = 0
        self.started_at = clock.now()
        self.decision: ModeDecision | None = None
        self.budget = risk.KrwBudget()
        self.follows: dict[int, _Follow] = {}
        self.stats = Stats()
        self.waiting: str | None = None
        self.pending_exits: list[exits_repo.PendingExit] = []  # as of the last step (counters, status)
        self.in_review: int = 0  # attempts in the needs-review queue, as of the last pass
        ex = config.execution
        self.rules = LookupRules(answers=ex.lookup_answers, window_s=ex.lookup_window_s,
                                 review_after_s=ex.review_after_s, max_attempts=MAX_ATTEMPTS)
        self._maybe_open = True  # non-final attempts may exist (always at start): look them up
        self._review_next: dict[int, float] = {}  # attempt id -> monotonic time of its next lookup

    # ---- start-up -------------------------------------------------------------------------

    def prepare(self) -> None:
        with translated():
            self.cursor = cursors.get(self.conn, CONSUMER)
            self.pending_exits = exits_repo.pending(self.conn)
            self.conn.commit()
        log.info("execution resuming after paper trade %d", self.cursor)
        if self.pending_exits:
            log.warning("%d exit(s) pending from before this start: %s", len(self.pending_exits),
                        "; ".join(f"{p.market} (paper trade {p.paper_trade_id}, {p.mode}): {p.reason}"
                                  for p in self.pending_exits))

    # ---- one wake -------------------------------------------------------------------------

    def step(self) -> bool:
        """Resolve and follow what is open, retry due pending exits, then turn the next batch of
        intents into attempts.

        Returns True when there may be more to do (the caller wakes it again at once): one call
        never runs long, so the actor stays responsive and the hang watchdog stays quiet."""
        if self._maybe_open:
            self._resume_open()
        limit = BATCH if self.decision is None or self.decision.effective is TradeMode.SHADOW else SEND_BATCH
        with translated():
            # the flags are read after the intents: a switch set before one is always seen
            intents, switches = repo.intents_and_flags(self.conn, self.cursor, limit)
        decision = self._decide(switches)
        if self._hold_for_reconciliation(switches):
            return False
        self._retry_exits(decision, switches)
        if not intents:
            return False
        if decision.effective is TradeMode.SHADOW:
            self._record_batch(intents, decision, switches)
        else:
            started = self.clock.monotonic()
            for n, intent in enumerate(intents[:SEND_BATCH]):
                if n and self.clock.monotonic() - started > STEP_BUDGET_S:
                    break  # an exchange in trouble makes each intent slow: let the actor breathe
                self._one(intent, decision, switches if n == 0 else self._switches())
        return True

    def _switches(self) -> dict[str, object]:
        with translated():
            flags = control.flags(self.conn)
            self.conn.commit()
        return flags

    def _decide(self, switches: Mapping[str, object]) -> ModeDecision:
        requested = self.config.requested
        flag = switches.get(Flag.MODE)
        if isinstance(flag, str) and flag in TradeMode.__members__.values():
            requested = TradeMode(flag)
        decision = decide_mode(requested, self.config.guards)
        if decision != self.decision:
            previous, self.decision = self.decision, decision
            self._mode_changed(previous, decision)
        return decision

    def _mode_changed(self, previous: ModeDecision | None, decision: ModeDecision) -> None:
        text = decision.describe()
        log.warning("execution mode: %s", text) if decision.downgraded else log.info("execution mode: %s", text)
        with translated(), self.conn.transaction(), self.conn.cursor() as cur:
            state_repo.event(cur, "mode_changed", {
                "requested": decision.requested.value, "effective": decision.effective.value,
                "reasons": [r.value for r in decision.reasons],
                "previous": None if previous is None else previous.effective.value})
            if previous is not None or decision.effective is not TradeMode.SHADOW or decision.downgraded:
                level = "warning" if decision.effective is TradeMode.LIVE or decision.downgraded else "info"
                alerts.enqueue(cur, kind="mode", level=level, text=f"execution mode: {text}")
        if self.on_mode is not None:
            self.on_mode(decision)

    def _hold_for_reconciliation(self, switches: Mapping[str, object]) -> bool:
        """Live intents wait until a reconciliation has run since this start (exits included:
        selling what the exchange may not hold is no better)."""
        assert self.decision is not None
        if self.decision.effective is not TradeMode.LIVE:
            self.waiting = None
            return False
        latest = switches.get(Flag.RECONCILED)
        if isinstance(latest, dict) and datetime.fromisoformat(str(latest.get("at"))) >= self.started_at:
            self.waiting = None
            return False
        if self.waiting is None:
            log.info("live execution waits for the start-up reconciliation with the exchange")
            with translated(), self.conn.transaction(), self.conn.cursor() as cur:
                account_repo.request_reconciliation(cur, command_id=None, by="execution start")
        self.waiting = "the start-up reconciliation"
        return True

    def _reconciled(self, switches: Mapping[str, object]) -> bool:
        latest = switches.get(Flag.RECONCILED)
        return (isinstance(latest, dict) and latest.get("ok") is True
                and datetime.fromisoformat(str(latest.get("at"))) >= self.started_at)

    # ---- shadow: a batch in one transaction -------------------------------------------------

    def _record_batch(self, intents: list[Intent], decision: ModeDecision, switches: Mapping[str, object]) -> None:
        rows = []
        for intent in intents:
            verdict = gate(decision, self._facts(intent, switches, decision),
                           max_data_lag_s=self.config.execution.max_data_lag_s, throttle_remaining=self.config.execution.throttle_remaining)
            ident = self._identifier(intent, 1)
            rows.append(_attempt_row(intent, 1, verdict, market_order_request(intent, ident)))
        with translated():
            with self.conn.cursor() as cur:
                repo.insert(cur, rows)
                cursors.advance(cur, CONSUMER, intents[-1].paper_trade_id)
            self.conn.commit()
        self.cursor = intents[-1].paper_trade_id
        self._count(rows)

    def _identifier(self, intent: Intent, number: int) -> str:
        return identifier(self.config.bot_id, intent.paper_trade_id, number, self.nonce())

    def _count(self, rows: list[Attempt]) -> None:
        self.stats.attempts += len(rows)
        for r in rows:
            if r.status != Status.UNKNOWN:
                self._counted(r.status)
            if r.status == Status.BLOCKED:
                self.stats.blocked += 1

    def _counted(self, status: str) -> None:
        self.stats.by_status[status] = self.stats.by_status.get(status, 0) + 1

    # ---- test and live: one intent at a time ------------------------------------------------

    def _facts(self, intent: Intent, switches: Mapping[str, object], decision: ModeDecision, *,
               violations: tuple[str, ...] = (), nothing_held: bool = False) -> IntentFacts:
        now = self.clock.now()
        age = (now - intent.created_at).total_seconds() if intent.created_at is not None else 0.0
        bar_age = None
        if self.config.feed_is_live and intent.bar_ts is not None:
            bar_age = (now - intent.bar_ts).total_seconds() - 1.0  # a bar closes one second after its start
        group = "order" if decision.effective is TradeMode.LIVE else "order-test"
        breaker_open = remaining = None
        if self.exchange is not None and decision.effective is not TradeMode.SHADOW:
            breaker_open = self.exchange.breaker_state(group) == "open"
            remaining = self.exchange.last_remaining(group)
        return IntentFacts(side=intent.side, switches=switches, intent_age_s=age, bar_age_s=bar_age,
                           breaker_open=bool(breaker_open), remaining=remaining,
                           reconciled=self._reconciled(switches), risk=violations, nothing_held=nothing_held)

    def _risk(self, intent: Intent, decision: ModeDecision, snapshot: RiskState) -> tuple[str, ...]:
        """The risk limits an entry breaks, the KRW budget and pending exits included."""
        if intent.side != "buy":
            return ()
        violations = list(risk.check_entry(market=intent.market, amount_krw=intent.amount_krw, now=self.clock.now(),
                                           state=snapshot, limits=self.config.risk,
                                           live=decision.effective is TradeMode.LIVE))
        with translated():
            pending = exits_repo.pending_markets(self.conn, decision.effective.value)
            self.conn.commit()
        if intent.market in pending:
            violations.append(f"an exit of {intent.market} is pending since "
                              f"{pending[intent.market]:%Y-%m-%d %H:%M:%S} UTC: no new entry until it executes")
        if decision.effective is TradeMode.LIVE:
            with translated():
                held = state_repo.sellable_volume(self.conn, intent.market)
                free = state_repo.free_balance(self.conn, "KRW")
                self.conn.commit()
            position = held * intent.price + intent.amount_krw
            if held > 0 and position > self.config.risk.max_order_krw:
                violations.append(f"{intent.market} held would be worth about {position:,.0f} KRW, above "
                                  f"RISK_MAX_ORDER_KRW={self.config.risk.max_order_krw:,.0f}: its exit could not go "
                                  f"out as one order")
            if free is not None:
                self.budget.observe(free[0], free[1])
            if not self.budget.reserve(_budget_key(intent.paper_trade_id), intent.amount_krw, self.clock.now()):
                available = self.budget.available
                violations.append(f"order total {intent.amount_krw:,.0f} KRW above the free KRW budget "
                                  f"{'unknown' if available is None else f'{available:,.0f}'}")
        return tuple(violations)

    def _exit_risk(self, intent: Intent, decision: ModeDecision, request: Mapping[str, str]) -> tuple[str, ...]:
        """The limits a sell breaks (LIVE_MARKETS, the order cap); never the entry-only ones."""
        if intent.side != "sell" or decision.effective is TradeMode.SHADOW:
            return ()
        return risk.check_exit(market=intent.market, volume=Decimal(request["volume"]), price=intent.price,
                               limits=self.config.risk, live=decision.effective is TradeMode.LIVE)

    def _verdict(self, intent: Intent, decision: ModeDecision, switches: Mapping[str, object],
                 violations: tuple[str, ...], nothing_held: bool) -> Verdict:
        """The gate's verdict, waiting up to THROTTLE_WAITS fresh seconds while it says THROTTLED."""
        verdict = None
        for _ in range(THROTTLE_WAITS + 1):
            verdict = gate(decision, self._facts(intent, switches, decision, violations=violations,
                                                 nothing_held=nothing_held),
                           max_data_lag_s=self.config.execution.max_data_lag_s, throttle_remaining=self.config.execution.throttle_remaining)
            if verdict.status is not Status.THROTTLED:
                break
            self.sleep(1.0)  # Upbit's budgets are per second: the next second has a fresh one
        assert verdict is not None
        return verdict

    def _one(self, intent: Intent, decision: ModeDecision, switches: Mapping[str, object]) -> None:
        violations: tuple[str, ...] = ()
        if intent.side == "buy":  # entries only: the risk state, the daily loss, the budget
            with translated():
                snapshot = state_repo.risk_state(self.conn, mode=decision.effective.value,
                                                 day_of=intent.bar_ts or self.clock.now())
            if self._check_daily_loss(snapshot, switches):
                switches = self._switches()
            violations = self._risk(intent, decision, snapshot)
        request, nothing_held = self._request(intent, self._identifier(intent, 1), decision)
        violations += self._exit_risk(intent, decision, request)
        verdict = self._verdict(intent, decision, switches, violations, nothing_held)
        row = _attempt_row(intent, 1, verdict, request)
        settle = None
        if verdict.status is not None and row.side == "ask" and verdict.mode is TradeMode.LIVE:
            outcome = _NOTHING_HELD if Reason.NOTHING_HELD in verdict.reasons else _NOT_EXECUTED

            def settle(cur: psycopg.Cursor) -> None:  # in the attempt's own transaction
                self._settle_exit(cur, intent.paper_trade_id, intent.market, verdict.mode.value, outcome,
                                  _why(verdict), request=request)
        with translated():
            attempt_id = repo.commit_first_attempt(self.conn, row, CONSUMER, then=settle)
        self.cursor = intent.paper_trade_id
        self._count([row])
        if verdict.status is None:
            before, self._maybe_open = self._maybe_open, True  # until the answer is recorded
            if self._send(_target_of_row(attempt_id, row)):
                self._maybe_open = before  # final, and nothing else was opened: no lookup pass needed
        elif intent.side == "buy":
            self.budget.release(_budget_key(intent.paper_trade_id), spent=False)

    def _request(self, intent: Intent, ident: str, decision: ModeDecision, *,
                 replacing: int | None = None) -> tuple[dict[str, str], bool]:
        """The order for the intent, and whether a live sell has nothing of ours to sell.

        A live sell sells what our ledger holds of the market and no open sell of ours already
        asks for (:func:`execution.risk.sell_volume`): a market buy of a KRW total rarely buys
        exactly the paper volume, an exit must not leave dust, and it must never sell coins this
        bot did not buy. The paper volume is never sent live."""
        request = market_order_request(intent, ident)
        if intent.side != "sell" or decision.effective is not TradeMode.LIVE:
            return request, False
        with translated():
            held = state_repo.sellable_volume(self.conn, intent.market, replacing=replacing)
            self.conn.commit()
        volume = risk.sell_volume(intent.volume, held, intent.market)
        request["volume"] = str(volume)
        return request, risk.below_venue_minimum(volume, intent.price, intent.market)

    def _check_daily_loss(self, snapshot: RiskState, switches: Mapping[str, object]) -> bool:
        """Trip the kill switch when the day's realised loss reached the limit; whether it did now."""
        if switches.get(Flag.KILLSWITCH) is True:
            return False
        if not risk.daily_loss_breached(snapshot.realized_today_krw, self.config.risk):
            return False
        text = (f"kill switch ON (automatic): realised loss today {-snapshot.realized_today_krw:,.0f} KRW reached "
                f"RISK_DAILY_LOSS_KRW={self.config.risk.daily_loss_krw:,.0f}; new entries are blocked")
        log.error("%s", text)
        with translated(), self.conn.transaction(), self.conn.cursor() as cur:
            control.set_flag(cur, Flag.KILLSWITCH, True, "risk")
            state_repo.event(cur, "kill_switch", {"by": "risk", "realized_today_krw": str(snapshot.realized_today_krw)})
            alerts.enqueue(cur, kind="killswitch", level="critical", text=text)
        return True

    # ---- exits that have not executed ---------------------------------------------------------

    def _settle_exit(self, cur: psycopg.Cursor, paper_trade_id: int, market: str, mode: str, outcome: str,
                     why: str, *, request: Mapping[str, str] | None = None) -> None:
        """Record what became of an exit, in the caller's transaction (the one that gave its attempt
        a final status): executed, nothing of ours to sell, or still pending (one critical alert)."""
        if outcome == _EXECUTED:
            was = exits_repo.resolve(cur, paper_trade_id, "executed")
            if was is not None:
                alerts.enqueue(cur, kind="exit", level="info",
                               text=f"pending exit of {market} (paper trade {paper_trade_id}, {mode}) executed after "
                                    f"{was.tries} tr{'y' if was.tries == 1 else 'ies'}; it was pending since "
                                    f"{was.since:%Y-%m-%d %H:%M:%S} UTC ({was.reason})")
            return
        if outcome == _NOTHING_HELD:
            was = exits_repo.resolve(cur, paper_trade_id, "nothing held")
            volume = (request or {}).get("volume", "0")
            alerts.enqueue(cur, kind="exit", level="warning",
                           text=f"exit of {market} (paper trade {paper_trade_id}) not sent: our ledger holds "
                                f"{volume} {market.partition('-')[2]} to sell, less than the venue's minimum order "
                                f"(NOTHING_HELD){'; its pending exit is closed' if was is not None else ''}. Coins "
                                f"this bot did not buy are never sold.")
            return
        pending = exits_repo.keep_pending(cur, paper_trade_id=paper_trade_id, market=market, mode=mode, reason=why,
                                          now=self.clock.now())
        if pending.tries == 1:
            self.stats.pending_exits += 1
            alerts.enqueue(cur, kind="exit", level="critical",
                           text=f"EXIT PENDING: the {mode} exit of {market} (paper trade {paper_trade_id}) did not "
                                f"execute: {why}. It stays pending and is retried with backoff until it executes "
                                f"(ctl status shows it; ctl abandon-exit {paper_trade_id} gives it up)")
            log.error("exit of %s (paper trade %d, %s) pending: %s", market, paper_trade_id, mode, why)

    def _retry_exits(self, decision: ModeDecision, switches: Mapping[str, object]) -> None:
        """Re-check the pending exits that are due; send a new attempt for each the gate lets through."""
        now = self.clock.now()
        with translated():
            due = exits_repo.due(self.conn, now, limit=EXITS_PER_STEP)
            self.pending_exits = exits_repo.pending(self.conn)
            self.conn.commit()
        for pending in due:
            if pending.mode != decision.effective.value:
                why = (f"waiting for {pending.mode} mode (running {decision.effective.value}); "
                       f"{_last_cause(pending.reason)}")
                with translated(), self.conn.transaction(), self.conn.cursor() as cur:
                    exits_repo.defer(cur, pending.paper_trade_id, reason=why, now=now)
                continue
            self._retry_exit(pending, decision, switches)

    def _retry_exit(self, pending: exits_repo.PendingExit, decision: ModeDecision,
                    switches: Mapping[str, object]) -> None:
        intent = self._intent(pending.paper_trade_id)
        with translated():
            number = repo.next_attempt(self.conn, intent.paper_trade_id)
            self.conn.commit()
        request, nothing_held = self._request(intent, self._identifier(intent, number), decision)
        violations = self._exit_risk(intent, decision, request)
        verdict = gate(decision, self._facts(intent, switches, decision, violations=violations,
                                             nothing_held=nothing_held),
                       max_data_lag_s=self.config.execution.max_data_lag_s, throttle_remaining=self.config.execution.throttle_remaining)
        if verdict.status is Status.THROTTLED:
            return  # the next wake, in a fresh second
        if verdict.status is not None:
            with translated(), self.conn.transaction(), self.conn.cursor() as cur:
                if Reason.NOTHING_HELD in verdict.reasons:
                    self._settle_exit(cur, intent.paper_trade_id, intent.market, pending.mode, _NOTHING_HELD, "",
                                      request=request)
                else:
                    exits_repo.defer(cur, intent.paper_trade_id, reason=_why(verdict), now=self.clock.now())
            return
        row = _attempt_row(intent, number, verdict, request)
        with translated(), self.conn.transaction(), self.conn.cursor() as cur:
            attempt_id = repo.insert_one(cur, row)
        self._count([row])
        self.stats.exits_retried += 1
        log.info("pending exit of %s (paper trade %d): attempt %d", intent.market, intent.paper_trade_id, number)
        self._maybe_open = True
        self._send(_target_of_row(attempt_id, row))

    # ---- sending, recording, resolving: the shell over execution.protocol ---------------------

    def _send(self, target: Target) -> bool:
        """Send the attempt's request and carry out what the protocol makes of the answer; True when it
        ended final without leaving or opening any other attempt (nothing for a lookup pass to find)."""
        exchange = self.exchange
        assert exchange is not None
        self.failpoints.passed("execution.after_intent_commit")
        params = _params(target.request)
        self.stats.sent += 1
        result = self._answer(lambda: (exchange.create_order(**params) if target.live
                                       else exchange.test_order(**params)))
        if isinstance(result, protocol.Accepted):
            self.failpoints.passed("execution.after_send")
        elif isinstance(result, protocol.Unknown):
            self.stats.unknown += 1
        actions = protocol.after_send(target, result, self.rules)
        self._carry_out(target, actions)
        if any(isinstance(a, protocol.LookUp) for a in actions):
            self._resolve(self._open(target.attempt_id))
        return not any(isinstance(a, (protocol.LookUp, protocol.OpenNext, protocol.Follow)) for a in actions)

    @staticmethod
    def _answer(request: Callable[[], Order]) -> protocol.SendResult:
        """The venue's answer as a protocol event: Upbit's error classes, classified once (exchange.errors),
        mapped to what they mean for the order."""
        try:
            return protocol.Accepted(request())
        except DuplicateIdentifier as exc:
            return protocol.IdentifierTaken(str(exc))
        except CircuitOpen as exc:
            return protocol.BreakerOpen(str(exc))
        except RateLimited as exc:
            return protocol.RateLimited(str(exc), exc.retry_after)
        except OrderRejectedByVenue as exc:
            return protocol.Refused(str(exc))
        except (AuthFailed, CredentialsMissing) as exc:
            return protocol.Refused(str(exc), auth=True)
        except ExchangeError as exc:  # anything else (OrderOutcomeUnknown included): it may have been placed
            return protocol.Unknown(str(exc))

    def _carry_out(self, target: Target, actions: list[protocol.Action]) -> None:
        """One transition's actions as a unit of work: the database ones in one transaction, then the rest."""
        stored = [a for a in actions if isinstance(a, protocol.DATABASE_ACTIONS)]
        if stored:
            with translated(), self.conn.transaction(), self.conn.cursor() as cur:
                for action in stored:
                    self._store(cur, target, action)
        for step in actions:
            if isinstance(step, protocol.DATABASE_ACTIONS):
                continue
            if isinstance(step, protocol.Wait):
                self.sleep(step.seconds)
            elif isinstance(step, protocol.OpenNext):
                self._open_next(target, step.status, step.error)
            elif isinstance(step, protocol.Follow):
                self._maybe_open = True
                now = self.clock.monotonic()
                self.follows.setdefault(target.attempt_id, _Follow(next_at=now, since=now))
            elif isinstance(step, protocol.Unfollow):
                self.follows.pop(target.attempt_id, None)
            elif isinstance(step, protocol.Placed):
                if target.attempt_id not in self.follows:  # once: the venue locked the KRW from now on
                    self.budget.placed(_budget_key(target.paper_trade_id), self.clock.now())
            elif isinstance(step, protocol.Release):
                self.budget.release(_budget_key(target.paper_trade_id), spent=step.spent)
            elif isinstance(step, protocol.Park):
                self._review_next[target.attempt_id] = self.clock.monotonic() + REVIEW_LOOKUP_S
            # LookUp: the caller's resolution loop asks next

    def _store(self, cur: psycopg.Cursor, target: Target, action: protocol.Action) -> None:
        """One database action of a unit of work, in its transaction."""
        if isinstance(action, protocol.Record):
            self.stats.fills += repo.record_order(cur, target.attempt_id, action.order, _body(action.order),
                                                  status=action.status.value, source=action.source)
            if action.status is not Status.SUBMITTED:
                self._counted(action.status.value)
        elif isinstance(action, protocol.Finish):
            repo.finish(cur, target.attempt_id, status=action.status.value, error=action.error,
                        response=None if action.response is None else _body(action.response), reasons=action.reasons)
            self._counted(action.status.value)
        elif isinstance(action, protocol.Note):
            repo.note_error(cur, target.attempt_id, action.error)
        elif isinstance(action, protocol.RecordNotFound):
            repo.record_lookup(cur, target.attempt_id, action.at)
        elif isinstance(action, protocol.RefuseForeign):
            self._refuse(cur, target, action)
        elif isinstance(action, protocol.SettleExit):
            self._settle_exit(cur, target.paper_trade_id, target.market, target.mode,
                              _EXECUTED if action.outcome is protocol.Outcome.EXECUTED else _NOT_EXECUTED, action.why)
        elif isinstance(action, protocol.StartReview):
            self._start_review(cur, target, action)
        elif isinstance(action, protocol.Alert):
            alerts.enqueue(cur, kind="execution", level=action.level, text=action.text)
        elif isinstance(action, protocol.WakeExits):
            if self.pending_exits:
                exits_repo.due_now(cur, self.clock.now())

    def _refuse(self, cur: psycopg.Cursor, target: Target, action: protocol.RefuseForeign) -> None:
        """An order under our identifier that is not ours: never adopted. The attempt was not placed
        (the venue holds someone else's order under that name); entries halt until an operator looks."""
        order, found = action.order, action.mismatches
        self.stats.mismatches += 1
        text = (f"FOREIGN ORDER under our identifier {target.identifier}: the exchange's order {order.uuid} "
                f"({order.market} {order.side} {order.ord_type}) differs from our request: {'; '.join(found)}. "
                f"It is NOT adopted; our attempt counts as not placed. Kill switch ON: new entries are blocked until "
                f"an operator checks the account (another installation with BOT_ID {self.config.bot_id}? a "
                f"restored database?) and runs ctl killswitch off.")
        log.critical("%s", text)
        repo.finish(cur, target.attempt_id, status=Status.ERROR.value,
                    error=f"not placed: identifier taken by foreign order {order.uuid} ({'; '.join(found)})",
                    response={"foreign": _body(order), "source": action.source})
        control.set_flag(cur, Flag.KILLSWITCH, True, "execution: foreign order under our identifier")
        state_repo.event(cur, "adoption_refused", {"attempt": target.attempt_id, "identifier": target.identifier,
                                                   "order": _body(order), "mismatches": list(found)})
        alerts.enqueue(cur, kind="execution", level="critical", text=text)
        self._counted(Status.ERROR.value)

    def _start_review(self, cur: psycopg.Cursor, target: Target, action: protocol.StartReview) -> None:
        """An unknown outcome no lookup could settle, old enough: into the needs-review queue (once)."""
        if not repo.start_review(cur, target.attempt_id, self.clock.now()):
            return
        state_repo.event(cur, "needs_review", {"attempt": target.attempt_id, "identifier": target.identifier,
                                               "why": action.why})
        alerts.enqueue(cur, kind="execution", level="critical",
                       text=f"NEEDS REVIEW: order {target.identifier} ({target.market} {target.side}, attempt "
                            f"{target.attempt_id}) has had an unknown outcome for {action.age_s:.0f} s; {action.why}. "
                            f"No other order of this intent goes out until it is settled. Check the exchange, then "
                            f"ctl review {target.attempt_id} placed|absent")
        self.stats.reviews += 1
        log.critical("attempt %d (%s) needs review: %s", target.attempt_id, target.identifier, action.why)

    def _open(self, attempt_id: int) -> Open:
        with translated():
            rows = [o for o in repo.unresolved(self.conn) if o.id == attempt_id]
            self.conn.commit()
        if not rows:
            raise LookupError(f"attempt {attempt_id} is not open")
        return rows[0]

    # ---- resolving unknown outcomes, following live orders ----------------------------------

    def _resume_open(self) -> None:
        with translated():
            open_ = repo.unresolved(self.conn)
            self.conn.commit()
        self._maybe_open = bool(open_)  # those still open after this pass are found again next time
        self.in_review = sum(1 for att in open_ if att.review_since is not None and att.status == Status.UNKNOWN)
        polls = 0
        now = self.clock.monotonic()
        for att in open_:
            if att.status == Status.SUBMITTED and polls >= FOLLOWS_PER_STEP:
                continue  # the rest on the next wake
            if att.status == Status.UNKNOWN:
                if att.mode == TradeMode.LIVE:
                    if att.review_since is not None and now < self._review_next.get(att.id, 0.0):
                        continue  # in review: looked up every REVIEW_LOOKUP_S, not on every wake
                    self._resolve(att)
                else:  # a test order creates nothing: try again
                    target = _target_of_open(att)
                    self._carry_out(target, protocol.retry(target, Status.ERROR,
                                                           "test order outcome unknown (interrupted)", self.rules))
            else:
                polls += self._follow(att)

    def _intent(self, paper_trade_id: int) -> Intent:
        with translated():
            found = repo.intent(self.conn, paper_trade_id)
            self.conn.commit()
        return found

    def _resolve(self, att: Open) -> None:
        """Look the identifier up until the protocol is certain of the answer (execution.protocol)."""
        assert self.exchange is not None
        target = _target_of_open(att)
        lookups = att.lookups
        began = self.clock.monotonic()
        while True:
            try:
                order = self.exchange.find_order(att.identifier)
                result: protocol.LookupResult = (protocol.Found(order) if order is not None
                                                 else protocol.NotFound(self.clock.now()))
            except ExchangeError as exc:
                log.warning("looking up %s failed: %s", att.identifier, exc)
                result = protocol.LookupFailed(str(exc), self.clock.now(), self.clock.monotonic() - began)
            lookups, actions = protocol.after_lookup(target, lookups, result, self.rules)
            if isinstance(result, protocol.Found):
                self._review_next.pop(att.id, None)
                if not any(isinstance(a, protocol.RefuseForeign) for a in actions):
                    log.info("order %s found on the exchange (%s): adopted", att.identifier, result.order.state)
                    self.stats.adopted += 1
            elif any(isinstance(a, protocol.OpenNext | protocol.Finish) for a in actions):
                self.stats.absent += 1
                self._review_next.pop(att.id, None)
                log.warning("order %s absent after %d lookups: never placed", att.identifier, len(lookups))
            self._carry_out(target, actions)
            if not any(isinstance(a, protocol.LookUp) for a in actions):
                return

    def _open_next(self, target: Target, status: Status, error: str) -> None:
        """Finish the attempt and, in the same transaction, commit the intent's next attempt if it still
        passes the gate (else record why not, and keep an exit pending); then send it."""
        intent = self._intent(target.paper_trade_id)
        with translated():
            number = repo.next_attempt(self.conn, intent.paper_trade_id)
            self.conn.commit()
        switches = self._switches()
        decision = self._decide(switches)
        request, nothing_held = self._request(intent, self._identifier(intent, number), decision,
                                              replacing=target.attempt_id)
        verdict = gate(decision, self._facts(intent, switches, decision,
                                             violations=self._exit_risk(intent, decision, request),
                                             nothing_held=nothing_held),
                       max_data_lag_s=self.config.execution.max_data_lag_s, throttle_remaining=self.config.execution.throttle_remaining)
        if verdict.status is Status.THROTTLED:  # the 429's wait was just served: send it
            verdict = dataclasses.replace(verdict, status=None)
        row = _attempt_row(intent, number, verdict, request)
        with translated(), self.conn.transaction(), self.conn.cursor() as cur:
            repo.finish(cur, target.attempt_id, status=status.value, error=error)
            new_id = repo.insert_one(cur, row)
            if verdict.status is not None and row.side == "ask" and verdict.mode is TradeMode.LIVE:
                outcome = _NOTHING_HELD if Reason.NOTHING_HELD in verdict.reasons else _NOT_EXECUTED
                self._settle_exit(cur, intent.paper_trade_id, intent.market, verdict.mode.value, outcome,
                                  _why(verdict), request=request)
        self._counted(status.value)
        self._count([row])
        if verdict.status is None:
            self._maybe_open = True
            self._send(_target_of_row(new_id, row))
        elif row.side == "bid":
            self.budget.release(_budget_key(intent.paper_trade_id), spent=False)

    def _follow(self, att: Open) -> bool:
        """Poll one submitted order if it is due; whether it was polled."""
        assert self.exchange is not None
        now = self.clock.monotonic()
        follow = self.follows.setdefault(att.id, _Follow(next_at=now, since=now))
        if now < follow.next_at:
            return False
        try:
            order = self.exchange.get_order(uuid=att.uuid) if att.uuid else self.exchange.get_order(
                identifier=att.identifier)
        except ExchangeError as exc:
            log.warning("following order %s failed: %s", att.identifier, exc)
            follow.next_at = now + 1.0
            return True
        self._carry_out(_target_of_open(att), protocol.adopt(_target_of_open(att), order, "poll"))
        if att.id in self.follows:
            slow = now - follow.since > self.config.execution.follow_timeout_s
            follow.next_at = now + (SLOW_FOLLOW_S if slow else FOLLOW_INTERVAL_S)
        return True


def _target_of_row(attempt_id: int, row: Attempt) -> Target:
    return Target(attempt_id=attempt_id, paper_trade_id=row.paper_trade_id, attempt=row.attempt, market=row.market,
                  side=row.side, mode=row.mode, identifier=row.identifier, request=row.request)


def _target_of_open(att: Open) -> Target:
    return Target(attempt_id=att.id, paper_trade_id=att.paper_trade_id, attempt=att.attempt, market=att.market,
                  side=att.side, mode=att.mode, identifier=att.identifier, request=att.request,
                  created_at=att.created_at, review_since=att.review_since)


_EXECUTED = "executed"
_NOTHING_HELD = "nothing held"
_NOT_EXECUTED = "not executed"


def _why(verdict: Verdict) -> str:
    """Why a verdict stopped an attempt: its status, reasons and detail, for alerts and the exit row."""
    text = f"{verdict.status.value if verdict.status else 'sent'} ({', '.join(verdict.reasons)})"
    return f"{text}: {verdict.detail}" if verdict.detail else text


def _last_cause(reason: str) -> str:
    """The cause part of a pending exit's reason (without an earlier 'waiting for … mode' prefix)."""
    return reason.split("; ", 1)[1] if reason.startswith("waiting for ") and "; " in reason else reason
