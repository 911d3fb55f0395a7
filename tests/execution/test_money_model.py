"""A model-based test of the live order path: random interleavings against an independent model.

Hypothesis's ``RuleBasedStateMachine`` drives the real execution engine and the real account
actor (called step by step, in this thread) against the simulated Upbit over loopback and a real
PostgreSQL. One fake clock runs the engine, the account actor, the exchange client and the
simulator, so backoffs, lookup windows and listing lags are exact and cost no real time.

The rules, in any order: buy and sell intents (markets inside and outside ``LIVE_MARKETS``,
volumes above, at and below what our ledger holds, totals above the order cap); engine steps;
trades printing (fills); exchange faults (5xx before processing, 429, accept-then-drop, a listing
lag shorter than the lookup window, failing lookups); SIGKILL-equivalent crashes at both
failpoints; restarts with a different ``TRADE_MODE``; runtime mode requests (``ctl mode``); a
fresh database mid-life; a foreign order under the identifier of our next attempt; deposits and
withdrawals behind the bot's back; time passing.

After every rule, against the model (which reads the simulator's own order book, never our
ledger, to decide what is true):

1. at most one exchange order per intent, and never an identifier twice;
2. no sell exceeds what our ledger held (our own fills in this database's life, minus our open
   sells), no order is outside ``LIVE_MARKETS`` or above the notional cap, and no live order goes
   out while the configured mode (or a runtime request since the last start) is not live;
3. every live exit either executed, was refused as NOTHING_HELD when the model agrees nothing
   sellable was held, is still in flight, or is pending with exactly one critical alert;
4. nothing is adopted unless it matches the request (a foreign order never is);

and at the end, after the faults heal and the engine restarts live (5. the configured mode
governs: it is live only then), every pending live exit executes, and (6.) our ledger equals the
exchange's fills and fees, to the won.

Profiles: ``HYPOTHESIS_PROFILE=ci`` (the default: 12 sequences of up to 40 rules, about 25 s) and
``HYPOTHESIS_PROFILE=night`` (hundreds of longer runs; see README "Live trading safety").
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import psycopg
import pytest
from hypothesis import HealthCheck, event, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, invariant, precondition, rule, \
    run_state_machine_as_test

from actors.account import AccountActor
from config import ExecutionSettings, PaperProfile, RiskSettings, TradeMode
from config.settings import AccountSettings
from exchange.errors import ExchangeError
from exchange.rest import UpbitClient
from execution.engine import Engine, EngineConfig
from execution.failpoints import Failpoints
from execution.guards import GuardConfig
from persistence import exits as exits_repo
from persistence import control
from persistence.db import with_database
from otp.child import ChildContext
from model.clock import FakeClock
from system.commands import CommandHandler
from system.root import discard_runtime_mode
from upbit_sim import SimConfig, SimServer

ACCESS, SECRET = "MODELKEY" * 3, "MODELSECRET" * 4
BOT = "m"
ALLOWED, OTHER = "KRW-BTC", "KRW-ETH"
START_PRICE = {ALLOWED: Decimal(100_000_000), OTHER: Decimal(3_000_000)}
CAP = Decimal(300_000)
MIN_TOTAL = Decimal(5000)
GUARDS = GuardConfig(has_keys=True, live_trading=True, live_confirmed=True, paper_profile=PaperProfile.DEFAULT,
                     read_only=False, test_orders=True, auto_test=False, feed_live=True)
RISK = RiskSettings(live_markets=(ALLOWED,), max_order_krw=CAP, max_positions=5, daily_loss_krw=Decimal(0))
LOOKUP_WINDOW_S = 1.0
LISTING_LAG_S = 0.4  # shorter than the window, as the lookup floor requires (config: LOOKUP_WINDOW_MIN_S)

PROFILES = {
    "ci": settings(max_examples=12, stateful_step_count=40, deadline=None, derandomize=True,
                   suppress_health_check=list(HealthCheck)),
    "night": settings(max_examples=300, stateful_step_count=80, deadline=None,
                      suppress_health_check=list(HealthCheck)),
}


class Crashed(BaseException):
    """A failpoint fired: the process would be SIGKILLed here."""


@dataclass
class Incarnation:
    """One start of the execution node: its configured mode and what was requested at run time."""

    configured: TradeMode
    runtime: TradeMode | None = None

    @property
    def may_go_live(self) -> bool:
        return (self.runtime or self.configured) is TradeMode.LIVE


@dataclass
class Seen:
    """What the model knows of one exchange order of the account."""

    uuid: str
    identifier: str | None
    foreign: bool
    generation: int
    paper_trade_id: int | None


@dataclass
class Generation:
    """One life of our database."""

    url: str
    intents: dict[int, tuple[str, str]] = field(default_factory=dict)  # paper trade id -> (side, market)


class MoneyModel(RuleBasedStateMachine):
    server_url: str = ""
    template: str = ""

    def __init__(self) -> None:
        super().__init__()
        self.clock = FakeClock(now=datetime.now(UTC))
        self.sim = SimServer(SimConfig(keys={ACCESS: SECRET}, balances={ACCESS: {
            "KRW": Decimal(5_000_000), "BTC": Decimal("0.5"), "ETH": Decimal(2)}},
            seed=False, rate_limits=False, clock=self.clock)).start()
        self.price = dict(START_PRICE)
        for market, price in self.price.items():
            self.sim.print_trade(market, str(price), "1")
        self.client = UpbitClient(self.sim.rest_url, access_key=ACCESS, secret_key=SECRET, clock=self.clock.monotonic,
                                  sleep=self.clock.advance, retry_initial_s=0.01, retry_max_s=0.05,
                                  breaker_fail_max=3, breaker_reset_s=0.2)
        self.generations: list[Generation] = []
        self.orders: dict[str, Seen] = {}  # uuid -> what the model knows
        self.foreign: set[str] = set()
        self.conn: psycopg.Connection | None = None
        self.account_conn: psycopg.Connection | None = None
        self.engine: Engine | None = None
        self.account: AccountActor | None = None
        self.incarnation = Incarnation(configured=TradeMode.LIVE)
        self.risk = RISK
        self.deposits = False

    # ---- the system under test ------------------------------------------------------------------

    def _new_database(self) -> None:
        name = f"money_{os.getpid()}_{id(self)}_{len(self.generations)}"
        with psycopg.connect(self.server_url, autocommit=True) as admin:
            admin.execute(f'CREATE DATABASE "{name}" TEMPLATE "{self.template}"')
        self.generations.append(Generation(url=with_database(self.server_url, name)))

    @property
    def gen(self) -> Generation:
        return self.generations[-1]

    def _stop(self) -> None:
        for conn in (self.conn, self.account_conn):
            if conn is not None:
                conn.close()
        self.conn = self.account_conn = None

    def _start(self, mode: TradeMode, *, system: bool) -> None:
        """A start of the execution node (``system``: of the whole system, so the root first drops
        any runtime mode); then the account actor reconciles once, as live execution waits for."""
        self._stop()
        self.conn = psycopg.connect(self.gen.url)
        if system:
            with self.conn.transaction(), self.conn.cursor() as cur:
                discard_runtime_mode(cur, mode)
            self.incarnation = Incarnation(configured=mode)
        config = EngineConfig(bot_id=BOT, requested=mode, guards=GUARDS, risk=self.risk,
                              execution=ExecutionSettings(lookup_answers=2, lookup_window_s=LOOKUP_WINDOW_S,
                                                          review_after_s=60.0))
        self.engine = Engine(self.conn, self.client, config, clock=self.clock, sleep=self.clock.advance,
                             failpoints=Failpoints())
        self.engine.prepare()
        self.account = AccountActor(
            context=ChildContext(supervisor_name="model", child_id="account", incarnation=1, exit_sink=lambda _r: None),
            client=self.client, bot_id=BOT, db_url=self.gen.url, clock=self.clock,
            settings=AccountSettings(poll_s=3600, reconcile_interval_s=3600, halt_on_difference=True))
        self.account_conn = psycopg.connect(self.gen.url)
        self.account.prepare(self.account_conn)
        self._reconcile()

    def _reconcile(self) -> None:
        """Drain the account actor until it has reconciled since this start (it defers while an
        outcome is unknown, and execution resolves those first)."""
        assert self.account is not None and self.account_conn is not None and self.engine is not None
        started = self.engine.started_at
        for _ in range(6):
            self.account.drain(self.account_conn)
            flag = self.account_conn.execute("SELECT value FROM system_flags WHERE name = 'reconciled'").fetchone()
            self.account_conn.commit()
            if flag is not None and datetime.fromisoformat(flag[0]["at"]) >= started:
                return
            self._step_engine(1)

    def _step_engine(self, times: int) -> None:
        assert self.engine is not None
        try:
            for _ in range(times):
                self.clock.advance(0.6)  # the actor is woken every 0.5 s: follows fall due
                if not self.engine.step():
                    break
        except Crashed:
            self._start(self.incarnation.configured, system=False)  # the node is restarted, the root is not
        finally:
            if self.engine is not None:
                self.engine.failpoints = Failpoints()

    def _tick(self) -> None:
        """The system runs on between rules: the actor wakes, the market trades, the actor wakes.

        The ledger invariant is checked before the market trades, so each new sell is judged
        against what had filled when it was placed."""
        self._step_engine(2)
        self.orders_are_ours_once_per_intent_and_within_every_limit()
        for market, price in self.price.items():
            self.sim.print_trade(market, str(price), "10")
        self._step_engine(2)

    def _order_something(self) -> None:
        """An intent for the next send to carry: an exit of what is held, else an entry."""
        held = self._held(ALLOWED)
        if held > 0:
            self._intent("sell", ALLOWED, amount=held * self.price[ALLOWED], volume=held)
        else:
            self._intent("buy", ALLOWED, amount=Decimal(60_000),
                         volume=(Decimal(60_000) / self.price[ALLOWED]).quantize(Decimal("1e-8")))

    def _intent(self, side: str, market: str, *, amount: Decimal, volume: Decimal) -> int:
        assert self.conn is not None
        price = self.price[market]
        row = self.conn.execute(
            "INSERT INTO paper_trades (market, side, price, volume, amount_krw, fee_krw, reason, bar_ts, source,"
            " created_at) VALUES (%s, %s, %s, %s, %s, 0, 'model', %s, 'model', %s) RETURNING id",
            (market, side, price, volume, amount, self.clock.now(), self.clock.now())).fetchone()
        self.conn.commit()
        assert row is not None
        self.gen.intents[int(row[0])] = (side, market)
        return int(row[0])

    # ---- rules ----------------------------------------------------------------------------------

    @initialize()
    def start(self) -> None:
        self._new_database()
        self._start(TradeMode.LIVE, system=True)

    @rule(market=st.sampled_from([ALLOWED, ALLOWED, OTHER]),
          amount=st.sampled_from([Decimal(5000), Decimal(60_000), Decimal(150_000), Decimal(400_000)]))
    def enter(self, market: str, amount: Decimal) -> None:
        self._intent("buy", market, amount=amount, volume=(amount / self.price[market]).quantize(Decimal("1e-8")))
        self._tick()

    @rule(market=st.sampled_from([ALLOWED, ALLOWED, ALLOWED, OTHER]),
          share=st.sampled_from([Decimal("0.3"), Decimal(1), Decimal(1), Decimal(3)]))
    def leave(self, market: str, share: Decimal) -> None:
        held = self._held(market)
        volume = max(held * share, Decimal("0.0001")).quantize(Decimal("1e-8"))
        self._intent("sell", market, amount=volume * self.price[market], volume=volume)
        self._tick()

    # money moving is what the invariants are about: these two rules are drawn twice as often
    @rule(amount=st.sampled_from([Decimal(60_000), Decimal(150_000)]))
    def enter_allowed(self, amount: Decimal) -> None:
        self.enter(ALLOWED, amount)

    @rule(share=st.sampled_from([Decimal("0.5"), Decimal(1)]))
    def leave_allowed(self, share: Decimal) -> None:
        self.leave(ALLOWED, share)

    @rule(kind=st.sampled_from(["5xx-burst", "drop", "lookups-fail", "429"]))
    def exit_into_trouble(self, kind: str) -> None:
        """A position is bought, then its exit meets an exchange fault (an outage opens the breaker)."""
        self.enter(ALLOWED, Decimal(60_000))
        self.fault(kind)
        self.leave(ALLOWED, Decimal(1))

    @rule(market=st.sampled_from([ALLOWED, OTHER]), move=st.sampled_from([Decimal("-0.3"), Decimal(0), Decimal("0.2")]))
    def trade(self, market: str, move: Decimal) -> None:
        self.price[market] = (self.price[market] * (1 + move)).quantize(Decimal(1000))
        self._tick()

    @rule(kind=st.sampled_from(["5xx", "5xx-burst", "429", "drop", "lag", "lookups-fail"]))
    def fault(self, kind: str) -> None:
        faults = self.sim.faults
        if kind == "5xx":
            faults.fail_next(1, 500, path="/v1/orders", method="POST")
        elif kind == "5xx-burst":  # an outage: enough failures to open the order breaker
            faults.fail_next(4, 503, path="/v1/orders", method="POST")
        elif kind == "429":
            faults.fail_next(1, 429, path="/v1/orders", method="POST")
        elif kind == "drop":
            faults.drop_after_accept(1, path="/v1/orders", method="POST")
        elif kind == "lag":
            faults.lookup_lag(LISTING_LAG_S)
        else:
            faults.fail_next(3, 500, path="/v1/order", method="GET")
        self._tick()

    @rule(point=st.sampled_from(["execution.after_intent_commit", "execution.after_send"]))
    def crash(self, point: str) -> None:
        assert self.engine is not None

        def killed() -> None:
            raise Crashed(point)

        self.engine.failpoints = Failpoints(f"{point}@1", action=killed)
        self._order_something()
        self._tick()

    @rule(mode=st.sampled_from([TradeMode.SHADOW, TradeMode.TEST, TradeMode.LIVE, TradeMode.LIVE, TradeMode.LIVE]))
    def restart(self, mode: TradeMode) -> None:
        """The operator restarts the system with another TRADE_MODE."""
        self._start(mode, system=True)
        self._tick()

    @rule(mode=st.sampled_from([TradeMode.SHADOW, TradeMode.TEST, TradeMode.LIVE, TradeMode.LIVE]))
    def request_mode(self, mode: TradeMode) -> None:
        """``ctl mode``: a control command carried out by the root's handler, as in production."""
        with psycopg.connect(self.gen.url, autocommit=True) as conn:
            control.issue(conn, issuer="cli:model", command="mode", args={"mode": mode.value}, timeout_s=15.0)
            handled = CommandHandler(restart_node=lambda _n: None, crash_actor=lambda *_a: None,  # type: ignore[arg-type,return-value]
                                     actor_nodes=lambda _c: {}).handle_pending(conn)
        assert handled == 1
        self.incarnation.runtime = mode
        self._tick()

    @precondition(lambda self: len(self.generations) < 3)
    @rule()
    def fresh_database(self) -> None:
        """A fresh (or restored, or reset) database: ids start again; the exchange keeps its orders."""
        self._new_database()
        self._start(self.incarnation.configured, system=True)
        self._tick()

    @rule()
    def foreign_order_under_our_next_identifier(self) -> None:
        """Someone places a BUY under the identifier our next attempt is about to send."""
        assert self.engine is not None

        def collide() -> None:
            with psycopg.connect(self.gen.url) as conn:
                row = conn.execute("SELECT identifier FROM order_attempts WHERE status = 'unknown'"
                                   " ORDER BY id DESC LIMIT 1").fetchone()
            if row is None:
                return
            with UpbitClient(self.sim.rest_url, access_key=ACCESS, secret_key=SECRET) as intruder:
                try:
                    order = intruder.create_order(market=ALLOWED, side="bid", ord_type="price", price=Decimal(7000),
                                                  identifier=row[0])
                except ExchangeError:  # an armed fault met the intruder's request instead of ours
                    self.foreign.update(str(o["uuid"]) for o in self._every_order() if o.get("identifier") == row[0])
                    return
            self.foreign.add(order.uuid)

        self.engine.failpoints = Failpoints("execution.after_intent_commit@1", action=collide)
        self._order_something()
        self._tick()

    @rule(currency=st.sampled_from(["KRW", "BTC"]), out=st.booleans())
    def behind_our_back(self, currency: str, out: bool) -> None:
        amount = Decimal(100_000) if currency == "KRW" else Decimal("0.001")
        if out:
            self.sim.withdraw(ACCESS, currency, amount)
        else:
            self.sim.deposit(ACCESS, currency, amount)
        self.deposits = True
        self._tick()

    @rule(seconds=st.sampled_from([1.0, 5.0, 30.0, 400.0]))
    def time_passes(self, seconds: float) -> None:
        self.clock.advance(seconds)
        self._tick()

    # ---- the model ------------------------------------------------------------------------------

    def _every_order(self) -> list[dict[str, Any]]:
        return self.sim.venue.every_order(ACCESS)

    def _ours_of_this_life(self, orders: list[dict[str, Any]]) -> list[dict[str, Any]]:
        gen = len(self.generations) - 1
        return [o for o in orders if o["uuid"] in self.orders and not self.orders[o["uuid"]].foreign
                and self.orders[o["uuid"]].generation == gen]

    def _held(self, market: str) -> Decimal:
        """What our own fills of this database's life bought of ``market`` and did not sell."""
        held = Decimal(0)
        for o in self._ours_of_this_life(self._every_order()):
            if o["market"] == market:
                executed = Decimal(o["executed_volume"])
                held += executed if o["side"] == "bid" else -executed
        return held

    def _learn(self) -> list[dict[str, Any]]:
        """Classify the exchange's orders the model has not seen yet; the new ones of ours, in order."""
        assert self.conn is not None
        new = []
        for o in self._every_order():
            if o["uuid"] in self.orders:
                continue
            ident = o.get("identifier")
            if o["uuid"] in self.foreign:
                self.orders[o["uuid"]] = Seen(o["uuid"], ident, True, -1, None)
                continue
            row = self.conn.execute("SELECT paper_trade_id FROM order_attempts WHERE identifier = %s",
                                    (ident,)).fetchone()
            self.conn.commit()
            assert row is not None, f"an order no attempt of ours asked for, and not the intruder's: {o}"
            self.orders[o["uuid"]] = Seen(o["uuid"], ident, False, len(self.generations) - 1, int(row[0]))
            new.append(o)
        return new

    @invariant()
    def orders_are_ours_once_per_intent_and_within_every_limit(self) -> None:
        if self.conn is None:
            return
        every = self._every_order()
        before = {u for u in self.orders}
        new = self._learn()
        # 1. one order per intent, one identifier per order
        idents = [o.get("identifier") for o in every if not self.orders[o["uuid"]].foreign]
        assert len(idents) == len(set(idents)), f"an identifier sent twice: {idents}"
        per_intent: dict[tuple[int, int], int] = {}
        for seen in self.orders.values():
            if not seen.foreign and seen.paper_trade_id is not None:
                key = (seen.generation, seen.paper_trade_id)
                per_intent[key] = per_intent.get(key, 0) + 1
        assert all(n == 1 for n in per_intent.values()), f"two exchange orders for one intent: {per_intent}"
        # 2. the limits, the ledger and the mode, for every order placed since the last check
        if new:
            assert self.incarnation.may_go_live, (
                f"live orders while the configured mode is {self.incarnation.configured} and the runtime request "
                f"{self.incarnation.runtime}: {new}")
        old = [o for o in self._ours_of_this_life(every) if o["uuid"] in before]
        cap = self.risk.max_order_krw
        for order in new:
            assert order["market"] in self.risk.live_markets, f"an order outside LIVE_MARKETS: {order}"
            if order["side"] == "bid":
                assert Decimal(order["price"]) <= cap, f"a buy above the cap: {order}"
            else:
                seen = self.orders[order["uuid"]]
                row = self.conn.execute("SELECT price FROM paper_trades WHERE id = %s", (seen.paper_trade_id,)).fetchone()
                self.conn.commit()
                assert row is not None and Decimal(order["volume"]) * row[0] <= cap, f"a sell above the cap: {order}"
                held = sum((Decimal(o["executed_volume"]) * (1 if o["side"] == "bid" else -1)
                            for o in old if o["market"] == order["market"]), Decimal(0))
                open_sells = sum((Decimal(o["volume"]) - Decimal(o["executed_volume"]) for o in old
                                  if o["market"] == order["market"] and o["side"] == "ask"
                                  and o["state"] in ("wait", "watch")), Decimal(0))
                assert Decimal(order["volume"]) <= held - open_sells, (
                    f"a sell of {order['volume']} when our ledger held {held} and our open sells asked for "
                    f"{open_sells}: {order}")
            old.append(order)

    @invariant()
    def nothing_foreign_is_adopted_and_adoptions_match(self) -> None:
        if self.conn is None:
            return
        by_uuid = {o["uuid"]: o for o in self._every_order()}
        rows = self.conn.execute("SELECT uuid, request FROM order_attempts WHERE uuid IS NOT NULL").fetchall()
        self.conn.commit()
        for uuid, request in rows:
            assert uuid not in self.foreign, f"a foreign order was adopted: {uuid}"
            order = by_uuid[uuid]
            for name in ("market", "side", "ord_type"):
                assert order[name] == request[name], (name, order, request)
            for name in ("price", "volume"):
                if name in request:
                    assert Decimal(order[name]) == Decimal(request[name]), (name, order, request)

    @invariant()
    def every_live_exit_executed_or_waits_visibly(self) -> None:
        if self.conn is None:
            return
        rows = self.conn.execute(
            "SELECT a.paper_trade_id, a.status, a.blocked_reasons, a.executed_volume, a.request, a.mode"
            " FROM order_attempts a JOIN paper_trades p ON p.id = a.paper_trade_id"
            " WHERE p.side = 'sell' AND a.mode = 'live' ORDER BY a.id").fetchall()
        pending = {p.paper_trade_id: p for p in exits_repo.pending(self.conn)}
        settled = {r[0]: r[1] for r in self.conn.execute(
            "SELECT paper_trade_id, resolution FROM pending_exits WHERE resolved_at IS NOT NULL")}
        alerts = [t for (t,) in self.conn.execute("SELECT text FROM alerts WHERE level = 'critical'"
                                                  " AND text LIKE 'EXIT PENDING%'")]
        self.conn.commit()
        last: dict[int, tuple[Any, ...]] = {}
        for row in rows:
            last[row[0]] = row
        for trade, (_t, status, reasons, executed, _request, _mode) in last.items():
            if status in ("submitted", "unknown"):
                continue  # in flight
            if status in ("done", "cancelled") and executed > 0:
                continue  # executed
            if status == "blocked" and "NOTHING_HELD" in reasons:
                continue  # nothing of ours to sell (checked by the ledger invariant when something went out)
            if settled.get(trade) == "nothing held":
                continue  # a later exit of the market sold what it was to sell
            assert trade in pending, f"live exit of paper trade {trade} ended {status} {reasons} and is not pending"
            raised = [t for t in alerts if f"(paper trade {trade})" in t]
            assert len(raised) == 1, f"exit {trade}: {len(raised)} critical alerts, expected one: {raised}"

    # ---- the end: heal, restart live, and every exit must go out ------------------------------

    def teardown(self) -> None:
        try:
            if self.conn is not None and self.engine is not None:
                self._heal_and_check()
        finally:
            self._stop()
            self.client.close()
            self.sim.stop()
            with psycopg.connect(self.server_url, autocommit=True) as admin:
                for gen in self.generations:
                    name = psycopg.conninfo.conninfo_to_dict(gen.url)["dbname"]
                    admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')

    def _heal_and_check(self) -> None:
        """Every cause clears: no faults, and the operator restarts live with limits that allow every
        exit still pending (a risk limit is a cause only the configuration clears)."""
        self.sim.faults.clear()
        self.risk = RiskSettings(live_markets=(ALLOWED, OTHER), max_order_krw=Decimal(10**9), max_positions=5,
                                 daily_loss_krw=Decimal(0))
        self._start(TradeMode.LIVE, system=True)
        assert self.conn is not None and self.engine is not None
        for _ in range(60):
            time.sleep(0.01)  # pybreaker's reset timeout runs on the real clock (0.2 s)
            self.clock.advance(310.0)  # past the longest pending-exit backoff
            self.sim.print_trade(ALLOWED, str(self.price[ALLOWED]), "10")
            self._step_engine(3)
            self.orders_are_ours_once_per_intent_and_within_every_limit()
            open_rows = self.conn.execute("SELECT count(*) FROM order_attempts WHERE NOT final").fetchone()
            live_pending = [p for p in exits_repo.pending(self.conn) if p.mode == "live"]
            self.conn.commit()
            if open_rows == (0,) and not live_pending:
                break
        self.orders_are_ours_once_per_intent_and_within_every_limit()
        live_pending = [p for p in exits_repo.pending(self.conn) if p.mode == "live"]
        outcomes = self.conn.execute(
            "SELECT count(*) FILTER (WHERE side = 'ask' AND status = 'done'),"
            " count(*) FILTER (WHERE blocked_reasons ? 'NOTHING_HELD'),"
            " count(*) FILTER (WHERE error LIKE 'not placed: identifier taken%%'),"
            " (SELECT count(*) FROM pending_exits WHERE resolution = 'executed')"
            " FROM order_attempts WHERE mode = 'live'").fetchone()
        self.conn.commit()
        for name, n in zip(("live sells executed", "NOTHING_HELD", "foreign refused", "pending exit executed"),
                           outcomes or (), strict=True):
            event(f"{name}: {'none' if not n else 'some'}")
        assert not live_pending, f"live exits still pending after every cause cleared: {live_pending}"
        # 6. the ledger equals the exchange's fills and fees, to the won
        for o in self._ours_of_this_life(self._every_order()):
            row = self.conn.execute("SELECT executed_volume, executed_funds, paid_fee FROM order_attempts"
                                    " WHERE uuid = %s", (o["uuid"],)).fetchone()
            fills = self.conn.execute("SELECT coalesce(sum(volume), 0), coalesce(sum(funds), 0), count(*)"
                                      " FROM order_fills f JOIN order_attempts a ON a.id = f.attempt_id"
                                      " WHERE a.uuid = %s", (o["uuid"],)).fetchone()
            self.conn.commit()
            assert row is not None, f"an order of ours that no attempt adopted: {o}"
            exchange = (Decimal(o["executed_volume"]), Decimal(o["executed_funds"]), Decimal(o["paid_fee"]))
            assert tuple(row) == exchange, f"ledger {tuple(row)} != exchange {exchange} for {o['uuid']}"
            trades = o.get("trades", [])
            assert fills == (sum((Decimal(t["volume"]) for t in trades), Decimal(0)),
                             sum((Decimal(t["funds"]) for t in trades), Decimal(0)), len(trades))


@pytest.mark.timeout(600)  # ~25 s on an idle machine; several times that with a core kept busy
def test_the_live_path_keeps_every_money_invariant(pg_server_url: str, template_url: str) -> None:
    MoneyModel.server_url = pg_server_url
    MoneyModel.template = str(psycopg.conninfo.conninfo_to_dict(template_url)["dbname"])
    profile = PROFILES[os.environ.get("HYPOTHESIS_PROFILE", "ci")]
    run_state_machine_as_test(MoneyModel, settings=profile)
