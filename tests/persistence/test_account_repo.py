"""persistence.account on a real database: the ledger sums, snapshots, positions, reports and flags."""

from __future__ import annotations

from dataclasses import replace

from datetime import UTC, datetime, timedelta
from decimal import Decimal as D

import psycopg
import pytest

from model.reconciliation import OurOrder
from persistence import account as account_repo
from persistence.account import Holding
from persistence.errors import IntegrityViolation, translated

T0 = datetime(2026, 1, 5, 3, 0, tzinfo=UTC)


def _attempt(db: psycopg.Connection, *, market: str, side: str, created_at: datetime, mode: str = "live",
             status: str = "done", paid_fee: D = D(0), uuid: str | None = None, identifier: str | None = None,
             executed_volume: D = D(0)) -> int:
    """An attempt of its own intent, written the way execution writes one."""
    trade = db.execute(
        "INSERT INTO paper_trades (market, side, price, volume, amount_krw, fee_krw, reason, bar_ts, source)"
        " VALUES (%s, %s, 1, 1, 1, 0, 'test', %s, 'test') RETURNING id",
        (market, "buy" if side == "bid" else "sell", created_at),
    ).fetchone()[0]
    return db.execute(
        "INSERT INTO order_attempts (paper_trade_id, attempt, identifier, mode, status, market, side, request,"
        " created_at, paid_fee, uuid, executed_volume) VALUES (%s, 1, %s, %s, %s, %s, %s, '{}', %s, %s, %s, %s)"
        " RETURNING id",
        (trade, identifier or f"bot-{trade}-1", mode, status, market, side, created_at, paid_fee, uuid,
         executed_volume),
    ).fetchone()[0]


def _fill(db: psycopg.Connection, attempt_id: int, *, market: str, side: str, price: str, volume: str,
          funds: str) -> None:
    db.execute(
        "INSERT INTO order_fills (trade_uuid, attempt_id, market, side, price, volume, funds, traded_at)"
        " VALUES (gen_random_uuid()::text, %s, %s, %s, %s, %s, %s, %s)",
        (attempt_id, market, side, D(price), D(volume), D(funds), T0),
    )


def test_expected_balances_are_the_baseline_plus_live_fills_minus_fees(db: psycopg.Connection) -> None:
    assert account_repo.expected_balances(db) is None  # no baseline yet
    account_repo.insert_baseline(db, {"KRW": D(1_000_000), "BTC": D("0.5")}, T0)

    before = _attempt(db, market="KRW-BTC", side="bid", created_at=T0 - timedelta(hours=1), paid_fee=D(5))
    _fill(db, before, market="KRW-BTC", side="bid", price="100000000", volume="0.0001", funds="10000")
    buy = _attempt(db, market="KRW-BTC", side="bid", created_at=T0 + timedelta(minutes=1), paid_fee=D("50.03"))
    _fill(db, buy, market="KRW-BTC", side="bid", price="100000000", volume="0.0004", funds="40000")
    _fill(db, buy, market="KRW-BTC", side="bid", price="100100000", volume="0.0006", funds="60060")
    sell = _attempt(db, market="KRW-BTC", side="ask", created_at=T0 + timedelta(minutes=2), paid_fee=D("15.15"))
    _fill(db, sell, market="KRW-BTC", side="ask", price="101000000", volume="0.0003", funds="30300")
    tested = _attempt(db, market="KRW-BTC", side="bid", created_at=T0 + timedelta(minutes=3), mode="test",
                      status="test_ok", paid_fee=D(7))
    _fill(db, tested, market="KRW-BTC", side="bid", price="1", volume="1", funds="1")
    eth = _attempt(db, market="KRW-ETH", side="bid", created_at=T0 + timedelta(minutes=4), paid_fee=D(20))
    _fill(db, eth, market="KRW-ETH", side="bid", price="4000000", volume="0.01", funds="40000")
    _attempt(db, market="KRW-XRP", side="bid", created_at=T0 + timedelta(minutes=5), status="cancelled")  # no fill

    assert account_repo.ledger_deltas(db, T0) == {
        "KRW": D(-40000) - D(60060) - D("50.03") + D(30300) - D("15.15") - D(40000) - D(20),
        "BTC": D("0.0004") + D("0.0006") - D("0.0003"),
        "ETH": D("0.01"),
    }
    result = account_repo.expected_balances(db)
    assert result is not None
    base, expected = result
    assert base.taken_at == T0 and base.balances == {"KRW": D(1_000_000), "BTC": D("0.5")}
    assert expected == {"KRW": D("890154.82"), "BTC": D("0.5007"), "ETH": D("0.01")}


def test_the_baseline_is_taken_once(db: psycopg.Connection) -> None:
    account_repo.insert_baseline(db, {"KRW": D(5)}, T0)
    with pytest.raises(IntegrityViolation), translated():
        account_repo.insert_baseline(db, {"KRW": D(6)}, T0 + timedelta(seconds=1))
    assert account_repo.baseline(db) == account_repo.Baseline(taken_at=T0, balances={"KRW": D(5)})


def test_unresolved_live_attempts_and_known_orders(db: psycopg.Connection) -> None:
    sub = _attempt(db, market="KRW-BTC", side="bid", created_at=T0, status="submitted", uuid="u-1",
                   executed_volume=D("0.001"), paid_fee=D("0.5"))
    unk = _attempt(db, market="KRW-BTC", side="ask", created_at=T0, status="unknown")
    _attempt(db, market="KRW-BTC", side="bid", created_at=T0, status="unknown", mode="test")
    _attempt(db, market="KRW-BTC", side="bid", created_at=T0, status="done", uuid="u-2", identifier="x-2")
    found = account_repo.unresolved_live(db)
    assert all(o.age_s > 0 for o in found)  # their age, by the database's clock
    assert tuple(replace(o, age_s=0.0) for o in found) == (
        OurOrder(attempt_id=sub, identifier=f"bot-{_trade_of(db, sub)}-1", status="submitted", market="KRW-BTC",
                 uuid="u-1", executed_volume=D("0.001"), paid_fee=D("0.5"), age_s=0.0),
        OurOrder(attempt_id=unk, identifier=f"bot-{_trade_of(db, unk)}-1", status="unknown", market="KRW-BTC",
                 age_s=0.0),
    )
    uuids, identifiers = account_repo.known_orders(db, ["u-1", "u-9"], ["x-2", "x-9"])
    assert (uuids, identifiers) == (frozenset({"u-1"}), frozenset({"x-2"}))
    assert account_repo.known_orders(db, [], []) == (frozenset(), frozenset())


def _trade_of(db: psycopg.Connection, attempt_id: int) -> str:
    return str(db.execute("SELECT paper_trade_id FROM order_attempts WHERE id = %s", (attempt_id,)).fetchone()[0])


def test_snapshots_and_positions(db: psycopg.Connection) -> None:
    assert account_repo.latest_snapshot(db) is None
    krw = Holding(currency="KRW", balance=D(900_000), locked=D(100_050), avg_buy_price=D(0))
    btc = Holding(currency="BTC", balance=D("0.5"), locked=D("0.1"), avg_buy_price=D(90_000_000))
    eth = Holding(currency="ETH", balance=D(0), locked=D(0), avg_buy_price=D(0))
    account_repo.write_snapshot(db, T0, [krw, btc, eth])
    account_repo.write_snapshot(db, T0, [krw, btc])  # the same instant again: replaced, not refused
    account_repo.sync_positions(db, [krw, btc, eth], T0)
    assert account_repo.latest_snapshot(db) == (T0, (btc, eth, krw))
    assert db.execute("SELECT market, volume, locked, avg_buy_price, updated_at FROM live_positions").fetchall() == [
        ("KRW-BTC", D("0.5"), D("0.1"), D(90_000_000), T0)]  # ETH is not held, KRW is no position

    later = T0 + timedelta(seconds=10)
    xrp = Holding(currency="XRP", balance=D(10), locked=D(0), avg_buy_price=D(700))
    account_repo.write_snapshot(db, later, [krw, xrp])
    account_repo.sync_positions(db, [krw, xrp], later)
    assert account_repo.latest_snapshot(db) == (later, (krw, xrp))
    assert db.execute("SELECT market FROM live_positions").fetchall() == [("KRW-XRP",)]
    account_repo.sync_positions(db, [krw], later)
    assert db.execute("SELECT count(*) FROM live_positions").fetchone()[0] == 0


def test_reports_and_the_request_flag(db: psycopg.Connection) -> None:
    found = {"differences": [{"currency": "KRW", "expected": "1", "actual": "2"}], "unknown_orders": [],
             "missing_orders": []}
    first = account_repo.insert_report(db, at=T0, trigger="start", ok=False, found=found, halted=True)
    account_repo.insert_report(db, at=T0, trigger="periodic", ok=False, found={}, error="HTTP 503")
    last = account_repo.last_completed_report(db)
    assert last is not None and (last.id, last.ok, last.halted, last.differences) == (first, False, True,
                                                                                      found["differences"])
    assert [(r.trigger, r.error) for r in account_repo.reports(db)] == [("start", None), ("periodic", "HTTP 503")]

    assert account_repo.pending_request(db) is None
    account_repo.request_reconciliation(db, command_id=7, by="cli:me")
    request = account_repo.pending_request(db)
    assert request == {"id": 7, "by": "cli:me"}
    account_repo.request_reconciliation(db, command_id=8, by="cli:me")  # a newer request replaces it
    assert not account_repo.clear_request(db, request, by="account")  # so answering the old one keeps it
    assert account_repo.pending_request(db) == {"id": 8, "by": "cli:me"}
    assert account_repo.clear_request(db, {"id": 8, "by": "cli:me"}, by="account")
    assert account_repo.pending_request(db) is None and account_repo.flag(db, "reconcile_request") is False

    account_repo.record_event(db, at=T0, kind="reconcile_difference", detail={"report": first, "value": D("1.5")})
    assert db.execute("SELECT at, kind, detail FROM execution_events").fetchall() == [
        (T0, "reconcile_difference", {"report": first, "value": "1.5"})]
