"""``AccountActor`` against the simulated Upbit (loopback) and a real database.

The actor runs on a ``FakeClock``: it is woken every few milliseconds, but a poll or a periodic
reconciliation is due only when the test moves the clock. Orders are placed on the simulator
through a real ``UpbitClient`` and recorded the way execution records them (rows written here).
"""

from __future__ import annotations

import threading
import uuid as uuid_module
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from decimal import Decimal as D
from typing import Any

import psycopg
import pykka
import pytest

from actors.account import NO_KEYS, AccountActor
from config.settings import AccountSettings
from exchange.models import Order
from exchange.rest import UpbitClient
from persistence import account as account_repo
from persistence.account import ReportRow
from otp.child import ChildContext
from model.clock import FakeClock
from otp.exits import ExitReason
from tests.helpers import MS, eventually, new_threads
from upbit_sim import SimConfig, SimServer

ACCESS = "ACCESS"
SECRET = "SECRET" * 11
START_KRW, START_BTC = D(10_000_000), D(1)
INTERVAL = 60.0
POLL = 5.0


@pytest.fixture(autouse=True)
def _stop_all_actors() -> Iterator[None]:
    before = set(threading.enumerate())
    yield
    pykka.ActorRegistry.stop_all(block=True, timeout=2000 * MS)
    eventually(lambda: not new_threads(before), 5000 * MS, what=f"threads left behind: {new_threads(before)}")


@pytest.fixture
def sim() -> Iterator[SimServer]:
    """A simulated Upbit with one funded user and KRW-BTC last traded at 100,000,000 KRW."""
    server = SimServer(SimConfig(keys={ACCESS: SECRET}, balances={ACCESS: {"KRW": START_KRW, "BTC": START_BTC}},
                                 seed=False)).start()
    server.print_trade("KRW-BTC", "100000000", "1")
    yield server
    server.stop()


def _client(sim: SimServer) -> UpbitClient:
    return UpbitClient(sim.rest_url, access_key=ACCESS, secret_key=SECRET, max_attempts=2, retry_initial_s=0.01,
                       retry_max_s=0.02)


@pytest.fixture
def trader(sim: SimServer) -> Iterator[UpbitClient]:
    """The test's own client: places orders the way execution (or a person) would."""
    client = _client(sim)
    yield client
    client.close()


class AccountNode:
    """Starts the actor on the simulator and reads what it wrote."""

    def __init__(self, sim: SimServer, db_url: str, db: psycopg.Connection) -> None:
        self.sim, self.db_url, self.db = sim, db_url, db
        # behind the wall clock, so attempts the test inserts (created_at = now()) follow the baseline
        self.clock = FakeClock(monotonic=0.0, now=datetime.now(UTC) - timedelta(hours=1))
        self.exits: list[ExitReason] = []
        self.client: UpbitClient | None = None
        self.ref: pykka.ActorRef[Any] | None = None

    def start(self, *, keys: bool = True, **settings: Any) -> None:
        values: dict[str, Any] = {"poll_s": POLL, "reconcile_interval_s": INTERVAL, "tolerance_krw": D(1),
                                  "halt_on_difference": True, "cancel_unknown": False}
        values.update(settings)
        self.client = _client(self.sim) if keys else None
        ctx = ChildContext(supervisor_name="test", child_id="account", incarnation=1, exit_sink=self.exits.append)
        self.ref = AccountActor.start(context=ctx, client=self.client, settings=AccountSettings(**values),
                                      bot_id="bot", db_url=self.db_url, clock=self.clock, tick_s=0.03)

    def stop(self) -> None:
        if self.ref is not None:
            self.ref.stop(block=True, timeout=5000 * MS)
        if self.client is not None:
            self.client.close()

    def counters(self) -> dict[str, Any]:
        assert self.ref is not None
        return dict(self.ref.proxy().counters.get(timeout=5000 * MS))

    def reports(self, n: int) -> list[ReportRow]:
        """Wait until there are ``n`` reports; return them (oldest first)."""
        return eventually(lambda: (r := account_repo.reports(self.db)) and len(r) >= n and r,
                          10_000 * MS, what=f"{n} reconciliation reports")

    def request(self, command_id: int) -> ReportRow:
        """``ctl reconcile``: set the request, wait for the report that answers it."""
        before = len(account_repo.reports(self.db))
        account_repo.request_reconciliation(self.db, command_id=command_id, by="test")
        report = self.reports(before + 1)[-1]
        assert report.trigger == "command"
        assert account_repo.pending_request(self.db) is None
        return report

    def periodic(self) -> ReportRow:
        before = len(account_repo.reports(self.db))
        self.clock.advance(INTERVAL)
        report = self.reports(before + 1)[-1]
        assert report.trigger == "periodic"
        return report

    def flag(self, name: str) -> Any:
        return account_repo.flag(self.db, name)


@pytest.fixture
def node(sim: SimServer, db_url: str, db: psycopg.Connection) -> Iterator[AccountNode]:
    n = AccountNode(sim, db_url, db)
    yield n
    n.stop()


def _rows(db: psycopg.Connection, sql: str, *args: Any) -> list[tuple[Any, ...]]:
    return db.execute(sql, args).fetchall()


# ---- recording orders the way execution does ----------------------------------------------------


def _attempt(db: psycopg.Connection, *, side: str, identifier: str) -> int:
    """Execution's first step: the attempt row, committed (status unknown) before the request leaves."""
    trade = db.execute(
        "INSERT INTO paper_trades (market, side, price, volume, amount_krw, fee_krw, reason, bar_ts, source)"
        " VALUES ('KRW-BTC', %s, 100000000, 0.001, 100000, 50, 'test', now(), 'test') RETURNING id",
        ("buy" if side == "bid" else "sell",),
    ).fetchone()[0]
    return db.execute(
        "INSERT INTO order_attempts (paper_trade_id, attempt, identifier, mode, status, market, side, request)"
        " VALUES (%s, 1, %s, 'live', 'unknown', 'KRW-BTC', %s, '{}') RETURNING id", (trade, identifier, side),
    ).fetchone()[0]


def _submitted(db: psycopg.Connection, attempt_id: int, order: Order) -> None:
    db.execute("UPDATE order_attempts SET status = 'submitted', uuid = %s, state = %s WHERE id = %s",
               (order.uuid, order.state, attempt_id))


def _finished(db: psycopg.Connection, attempt_id: int, order: Order) -> None:
    """The order's final state, its figures and its fills, in one transaction."""
    assert not order.is_open and order.trades
    with db.transaction():
        db.execute(
            "UPDATE order_attempts SET status = %s, state = %s, executed_volume = %s, executed_funds = %s,"
            " paid_fee = %s WHERE id = %s",
            ("done" if order.state == "done" else "cancelled", order.state, order.executed_volume,
             sum((t.funds for t in order.trades), D(0)), order.paid_fee, attempt_id),
        )
        for t in order.trades:
            db.execute("INSERT INTO order_fills (trade_uuid, attempt_id, market, side, price, volume, funds, traded_at)"
                       " VALUES (%s, %s, %s, %s, %s, %s, %s, %s)",
                       (t.uuid, attempt_id, t.market, t.side, t.price, t.volume, t.funds, t.created_at))


# ---- tests -------------------------------------------------------------------------------------


def test_start_takes_the_baseline_and_reports_ok(node: AccountNode, db: psycopg.Connection) -> None:
    node.start()
    (report,) = node.reports(1)
    assert (report.trigger, report.ok, report.halted, report.error) == ("start", True, False, None)
    assert (report.differences, report.unknown_orders, report.missing_orders) == ([], [], [])
    baseline = account_repo.baseline(db)
    assert baseline is not None and baseline.balances == {"KRW": START_KRW, "BTC": START_BTC}
    assert baseline.taken_at == node.clock.now()
    assert node.flag("reconciled") == {"at": node.clock.now().isoformat(), "ok": True, "report": report.id,
                                       "note": "baseline taken"}
    assert node.flag("reconcile_halt") is None
    (alert,) = _rows(db, "SELECT level, text FROM alerts WHERE kind = 'reconcile'")
    assert alert[0] == "info" and "baseline taken" in alert[1] and "KRW 10000000" in alert[1]
    assert _rows(db, "SELECT kind, detail->'report' FROM execution_events") == [("reconcile_baseline", report.id)]
    # the first poll: a snapshot and the position
    assert sorted(_rows(db, "SELECT currency, balance + locked FROM account_snapshots")) == [
        ("BTC", START_BTC), ("KRW", START_KRW)]
    assert _rows(db, "SELECT market, volume FROM live_positions") == [("KRW-BTC", START_BTC)]
    counters = node.counters()
    assert (counters["reconciliations"], counters["differences"], counters["errors"]) == (1, 0, 0)
    assert (counters["last_ok"], counters["last_report"], counters["polls"], counters["reason"]) == (
        True, report.id, 1, "")


def test_balances_are_snapshotted_on_change_or_every_ten_minutes(node: AccountNode, trader: UpbitClient,
                                                               sim: SimServer, db: psycopg.Connection) -> None:
    def instants() -> list[datetime]:
        return [r[0] for r in _rows(db, "SELECT DISTINCT taken_at FROM account_snapshots ORDER BY 1")]

    def poll() -> None:
        polls = node.counters()["polls"]
        node.clock.advance(POLL)
        eventually(lambda: node.counters()["polls"] > polls, 5000 * MS, what="a balance poll")

    node.start(reconcile_interval_s=1e9)
    eventually(lambda: node.counters()["polls"] == 1, 5000 * MS, what="the first poll")
    start = node.clock.now()
    poll()
    assert instants() == [start]  # nothing changed: nothing written

    trader.create_order(market="KRW-BTC", side="ask", ord_type="market", volume=START_BTC, identifier="sell-all")
    sim.print_trade("KRW-BTC", "100000000", "1")
    poll()
    assert instants() == [start, node.clock.now()]
    assert _rows(db, "SELECT currency, balance + locked FROM account_snapshots WHERE taken_at = %s"
                     " AND currency = 'KRW'", node.clock.now()) == [("KRW", sim.holding(ACCESS, "KRW").total)]
    assert _rows(db, "SELECT count(*) FROM live_positions") == [(0,)]  # no BTC held any more

    changed = node.clock.now()
    poll()
    assert instants() == [start, changed]
    node.clock.advance(600 - 2 * POLL)
    poll()  # ten minutes after the last snapshot: written although nothing changed
    assert instants() == [start, changed, node.clock.now()]


def test_our_own_orders_keep_the_ledger_exact_to_the_won(node: AccountNode, trader: UpbitClient, sim: SimServer,
                                                         db: psycopg.Connection) -> None:
    node.start()
    assert node.reports(1)[0].ok

    buy = _attempt(db, side="bid", identifier="bot-1-1")
    account_repo.request_reconciliation(db, command_id=1, by="test")
    deferred = node.counters()["deferred"]
    eventually(lambda: node.counters()["deferred"] > deferred + 2, 5000 * MS, what="deferred while unknown")
    assert len(account_repo.reports(db)) == 1 and account_repo.pending_request(db) is not None
    assert "outcome unknown" in node.counters()["deferred_why"]

    placed = trader.create_order(market="KRW-BTC", side="bid", ord_type="price", price=D(100_000),
                                 identifier="bot-1-1")
    _submitted(db, buy, placed)
    resting = node.reports(2)[-1]  # resting, nothing filled and nothing recorded: comparable, and ok
    assert (resting.trigger, resting.ok) == ("command", True)

    sim.print_trade("KRW-BTC", "100000000", "1")  # the buy fills; execution has not recorded it yet
    eventually(lambda: not trader.get_order(uuid=placed.uuid).is_open, 5000 * MS, what="the buy filled")
    account_repo.request_reconciliation(db, command_id=2, by="test")
    deferred = node.counters()["deferred"]
    eventually(lambda: node.counters()["deferred"] > deferred + 2, 5000 * MS, what="deferred while unrecorded")
    assert len(account_repo.reports(db)) == 2
    assert "not yet recorded" in node.counters()["deferred_why"]
    bought = trader.get_order(uuid=placed.uuid)
    _finished(db, buy, bought)
    assert node.reports(3)[-1].ok

    sell = _attempt(db, side="ask", identifier="bot-2-1")
    placed = trader.create_order(market="KRW-BTC", side="ask", ord_type="market", volume=bought.executed_volume,
                                 identifier="bot-2-1")
    _submitted(db, sell, placed)
    sim.print_trade("KRW-BTC", "100500000", "1")
    sold = eventually(lambda: (o := trader.get_order(uuid=placed.uuid)) and not o.is_open and o, 5000 * MS)
    _finished(db, sell, sold)
    report = node.request(3)
    assert report.ok and report.differences == []

    krw = START_KRW - sum(t.funds for t in bought.trades) - bought.paid_fee + sum(t.funds for t in sold.trades) \
        - sold.paid_fee
    assert bought.paid_fee > 0 and sold.paid_fee > 0
    assert sim.holding(ACCESS, "KRW").total == krw
    result = account_repo.expected_balances(db)
    assert result is not None and result[1] == {"KRW": krw, "BTC": START_BTC}
    assert sim.holding(ACCESS, "BTC").total == START_BTC
    assert node.flag("reconcile_halt") is None and node.counters()["differences"] == 0


def test_a_deposit_behind_our_back_is_a_difference_that_halts_entries(node: AccountNode, sim: SimServer,
                                                                      db: psycopg.Connection) -> None:
    node.start()
    node.reports(1)
    sim.deposit(ACCESS, "KRW", D(1))  # exactly the tolerance: fine
    assert node.request(1).ok

    sim.deposit(ACCESS, "KRW", D(50_000))
    report = node.request(2)
    assert (report.ok, report.halted, report.unknown_orders, report.missing_orders) == (False, True, [], [])
    (diff,) = report.differences
    assert (diff["currency"], D(diff["expected"]), D(diff["actual"]), D(diff["value_krw"])) == (
        "KRW", START_KRW, START_KRW + 50_001, D(50_001))
    (alert,) = _rows(db, "SELECT text FROM alerts WHERE kind = 'reconcile' AND level = 'error'")
    assert alert[0].startswith("reconciliation found 1 problem: KRW: expected 10,000,000, exchange has 10,050,001")
    assert node.flag("reconcile_halt") == {"at": node.clock.now().isoformat(), "report": report.id, "why": alert[0]}
    assert node.flag("reconciled") == {"at": node.clock.now().isoformat(), "ok": False, "report": report.id}
    assert node.flag("reconcile_request") is False
    assert _rows(db, "SELECT detail->'report', detail->>'summary' FROM execution_events"
                     " WHERE kind = 'reconcile_difference'") == [(report.id, alert[0])]
    assert (node.counters()["differences"], node.counters()["last_ok"]) == (1, False)

    again = node.periodic()  # the same finding again: recorded, halted, but not alerted twice
    assert (again.ok, again.halted) == (False, True)
    assert _rows(db, "SELECT count(*) FROM alerts WHERE kind = 'reconcile' AND level = 'error'") == [(1,)]
    assert node.flag("reconcile_halt")["report"] == again.id


def test_an_unknown_open_order_is_reported_never_adopted_and_entries_resume_once_it_is_gone(
        node: AccountNode, trader: UpbitClient, db: psycopg.Connection) -> None:
    node.start()
    assert node.reports(1)[0].ok
    manual = trader.create_order(market="KRW-BTC", side="bid", ord_type="limit", price=D(90_000_000),
                                 volume=D("0.001"), identifier="manual-1")
    report = node.periodic()
    assert (report.ok, report.halted, report.differences) == (False, True, [])  # locked KRW still counts
    (unknown,) = report.unknown_orders
    assert (unknown["uuid"], unknown["identifier"], unknown["ours_by_prefix"], unknown["cancel"]) == (
        manual.uuid, "manual-1", False, None)
    assert trader.get_order(uuid=manual.uuid).state == "wait"  # left alone
    assert _rows(db, "SELECT count(*) FROM order_attempts") == [(0,)]  # and not adopted
    assert node.flag("reconcile_halt")["report"] == report.id

    trader.cancel_order(uuid=manual.uuid)  # the operator deals with it
    clean = node.periodic()
    assert clean.ok and not clean.halted
    assert node.flag("reconcile_halt") is False
    assert node.flag("reconciled")["ok"] is True
    (resumed,) = _rows(db, "SELECT text FROM alerts WHERE kind = 'reconcile' AND level = 'info'"
                           " AND text LIKE '%%resume%%'")
    assert f"report {report.id}" in resumed[0]
    assert _rows(db, "SELECT detail->'halted_by' FROM execution_events WHERE kind = 'reconcile_resumed'") == [
        (report.id,)]


def test_unknown_orders_are_cancelled_when_configured(node: AccountNode, trader: UpbitClient) -> None:
    lost = trader.create_order(market="KRW-BTC", side="bid", ord_type="limit", price=D(90_000_000),
                               volume=D("0.001"), identifier="bot-77-1")  # our prefix, no attempt row
    node.start(cancel_unknown=True)
    (report,) = node.reports(1)
    assert not report.ok
    (unknown,) = report.unknown_orders
    assert (unknown["uuid"], unknown["ours_by_prefix"], unknown["cancel"]) == (lost.uuid, True, "cancelled")
    assert trader.get_order(uuid=lost.uuid).state == "cancel"
    assert node.periodic().ok


def test_a_submitted_attempt_the_exchange_does_not_know_is_missing(node: AccountNode,
                                                                   db: psycopg.Connection) -> None:
    node.start()
    node.reports(1)
    attempt = _attempt(db, side="bid", identifier="bot-5-1")
    db.execute("UPDATE order_attempts SET status = 'submitted', uuid = %s WHERE id = %s",
               (str(uuid_module.uuid4()), attempt))
    # just placed: the exchange may list it late, so "not found" proves nothing yet and the balances wait
    account_repo.request_reconciliation(db, command_id=1, by="test")
    eventually(lambda: node.counters()["deferred"] > 0 and "not listed by the exchange yet" in
               node.counters().get("deferred_why", ""), 10_000 * MS, what="a deferred reconciliation")
    assert len(account_repo.reports(db)) == 1
    db.execute("UPDATE order_attempts SET created_at = now() - interval '31 seconds' WHERE id = %s", (attempt,))
    report = node.reports(2)[-1]
    assert report.trigger == "command"
    assert (report.ok, report.halted, report.differences, report.unknown_orders) == (False, True, [], [])
    assert [(m["attempt_id"], m["identifier"]) for m in report.missing_orders] == [(attempt, "bot-5-1")]


def test_an_exchange_error_is_recorded_and_the_next_interval_recovers(node: AccountNode, sim: SimServer,
                                                                      db: psycopg.Connection) -> None:
    node.start()
    assert node.reports(1)[0].ok
    sim.faults.fail_next(2, status=503, path="/v1/orders/open")  # both tries of one call
    failed = node.periodic()
    assert (failed.ok, failed.halted) == (False, False)
    assert failed.error is not None and "503" in failed.error
    assert node.flag("reconciled") == {"at": node.clock.now().isoformat(), "ok": False, "report": failed.id,
                                       "error": failed.error}
    counters = node.counters()
    assert (counters["errors"], counters["last_ok"], counters["reconciliations"]) == (1, False, 1)
    assert node.ref is not None and node.ref.is_alive() and node.exits == []
    assert node.flag("reconcile_halt") is None  # an error is no difference

    assert node.periodic().ok
    assert node.flag("reconciled")["ok"] is True
    assert node.counters()["reconciliations"] == 2


def test_without_keys_the_actor_idles_and_says_why(node: AccountNode, db: psycopg.Connection) -> None:
    node.start(keys=False)
    counters = node.counters()
    assert (counters["reason"], counters["idle"]) == (NO_KEYS, True)
    node.clock.advance(INTERVAL)
    assert node.ref is not None and node.ref.is_alive()
    assert account_repo.reports(db) == [] and account_repo.baseline(db) is None


def _written(db: psycopg.Connection) -> dict[str, Any]:
    """Everything a reconciliation writes, to compare before and after."""
    return {"reports": _rows(db, "SELECT id FROM reconciliation_reports"),
            "flags": _rows(db, "SELECT name, value FROM system_flags WHERE name LIKE 'reconcile%%' ORDER BY name"),
            "alerts": _rows(db, "SELECT id FROM alerts"), "events": _rows(db, "SELECT id FROM execution_events"),
            "baseline": _rows(db, "SELECT currency, balance FROM account_baseline ORDER BY currency")}


def test_nothing_is_written_while_a_reconciliation_is_deferred(node: AccountNode, db: psycopg.Connection) -> None:
    node.start()
    node.reports(1)
    attempt = _attempt(db, side="bid", identifier="bot-1-1")  # outcome unknown: nothing can be compared
    account_repo.request_reconciliation(db, command_id=1, by="test")
    before = _written(db)
    deferred = node.counters()["deferred"]
    eventually(lambda: node.counters()["deferred"] > deferred + 3, 5000 * MS, what="deferred several times")
    node.clock.advance(INTERVAL)  # a periodic run falls due as well: deferred too
    eventually(lambda: node.counters()["deferred"] > deferred + 6, 5000 * MS, what="deferred again")
    assert _written(db) == before
    assert account_repo.pending_request(db) == {"id": 1, "by": "test"}  # still waiting for its answer
    assert node.counters()["reconciliations"] == 1
    db.execute("UPDATE order_attempts SET status = 'error' WHERE id = %s", (attempt,))  # never sent after all
    assert node.reports(2)[-1].trigger == "command"  # answered once it can be


def test_on_command_the_same_findings_are_alerted_again(node: AccountNode, sim: SimServer,
                                                         db: psycopg.Connection) -> None:
    node.start()
    node.reports(1)
    sim.deposit(ACCESS, "KRW", D(50_000))
    assert not node.request(1).ok
    node.counters()  # an ask: answered once the run that wrote the report has also rescheduled itself
    assert not node.periodic().ok  # the same finding: not alerted again
    assert not node.request(2).ok  # but the operator asked: alerted
    assert _rows(db, "SELECT count(*) FROM alerts WHERE kind = 'reconcile' AND level = 'error'") == [(2,)]


def test_a_new_incarnation_reconciles_at_once_against_the_baseline_it_finds(node: AccountNode,
                                                                            db: psycopg.Connection) -> None:
    node.start()
    (first,) = node.reports(1)
    baseline = account_repo.baseline(db)
    node.stop()
    node.clock.advance(POLL)  # well within ten minutes, nothing changed: no new snapshot either
    node.start()
    second = node.reports(2)[-1]
    assert (second.trigger, second.ok) == ("start", True)
    assert account_repo.baseline(db) == baseline  # found, not taken again
    assert node.flag("reconciled") == {"at": node.clock.now().isoformat(), "ok": True, "report": second.id}
    eventually(lambda: node.counters()["polls"] == 1, 5000 * MS, what="the new incarnation's first poll")
    assert _rows(db, "SELECT count(DISTINCT taken_at) FROM account_snapshots") == [(1,)]
    assert first.id < second.id
