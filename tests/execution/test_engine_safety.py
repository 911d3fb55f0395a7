"""Money safety of the live path: each test is a defect an independent review found, reproduced
against the simulated Upbit over loopback and a real PostgreSQL, and fixed.

1. a live exit sold coins the bot never bought (the paper volume went out with an empty ledger);
2. an exit could be dropped for good (breaker open, failed attempts, a persistent throttle);
3. a reused identifier adopted someone else's order without checking it;
10. the daily loss limit counted paper PnL, not our live fills;
and the needs-review queue for outcomes no lookup can settle.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import psycopg
import pytest

from config import ExecutionSettings, PaperProfile, RiskSettings, TradeMode
from exchange.rest import UpbitClient
from execution.engine import Engine, EngineConfig
from execution.failpoints import Failpoints
from execution.guards import GuardConfig
from persistence import control
from model.clock import FakeClock, SystemClock
from system.root import reset_sandbox
from tests.helpers import eventually
from upbit_sim import SimConfig, SimServer

ACCESS, SECRET = "ACCESS" * 4, "S3CRET" * 8
LIVE = GuardConfig(has_keys=True, live_trading=True, live_confirmed=True, paper_profile=PaperProfile.DEFAULT,
                   read_only=False, test_orders=True, auto_test=False, feed_live=True)
RISK = RiskSettings(live_markets=("KRW-BTC",), max_positions=5, daily_loss_krw=Decimal(10_000_000))
PRICE = Decimal(100_000_000)


@pytest.fixture
def sim() -> Iterator[SimServer]:
    """The account already holds 1 BTC of the user's own: the bot must never sell it."""
    server = SimServer(SimConfig(keys={ACCESS: SECRET}, balances={ACCESS: {"KRW": Decimal(10_000_000), "BTC": Decimal(1)}},
                                 seed=False, rate_limits=False)).start()
    server.print_trade("KRW-BTC", str(PRICE), "1")
    yield server
    server.stop()


@pytest.fixture
def conn(db_url: str) -> Iterator[psycopg.Connection]:
    with psycopg.connect(db_url) as c:
        yield c


@pytest.fixture
def client(sim: SimServer) -> Iterator[UpbitClient]:
    c = UpbitClient(sim.rest_url, access_key=ACCESS, secret_key=SECRET, retry_max_s=0.2)
    yield c
    c.close()


def _intent(conn: psycopg.Connection, side: str = "buy", *, amount: str = "100000", volume: str = "0.001",
            price: Decimal = PRICE, pnl: str = "0") -> int:
    created = datetime.now(UTC)
    row = conn.execute(
        "INSERT INTO paper_trades (market, side, price, volume, amount_krw, fee_krw, realized_pnl, reason, bar_ts,"
        " source, created_at) VALUES ('KRW-BTC', %s, %s, %s, %s, 50, %s, 'test', %s, 'test', %s) RETURNING id",
        (side, price, Decimal(volume), Decimal(amount), Decimal(pnl), created, created)).fetchone()
    conn.commit()
    return int(row[0])


def _reconciled(conn: psycopg.Connection) -> None:
    conn.execute("INSERT INTO account_snapshots (taken_at, currency, balance, locked, avg_buy_price, unit_currency)"
                 " VALUES (now(), 'KRW', 10000000, 0, 0, 'KRW')")
    control.set_flag(conn, "reconciled", {"at": datetime.now(UTC).isoformat(), "ok": True, "report": 1}, "test")
    conn.commit()


def _engine(conn: psycopg.Connection, client: UpbitClient, *, risk: RiskSettings = RISK, clock: Any = None,
            failpoints: Failpoints | None = None, **options: Any) -> Engine:
    clock = clock or SystemClock()
    sleep = clock.advance if isinstance(clock, FakeClock) else options.pop("sleep", None)
    config = EngineConfig(bot_id="t", requested=TradeMode.LIVE, guards=LIVE, risk=risk,
                          execution=ExecutionSettings(**{"lookup_answers": 3, "lookup_window_s": 0.4, **options}))
    kwargs: dict[str, Any] = {"failpoints": failpoints} if failpoints is not None else {}
    if sleep is not None:
        kwargs["sleep"] = sleep
    engine = Engine(conn, client, config, clock=clock, **kwargs)
    engine.started_at -= timedelta(seconds=5)  # the flag written by _reconciled counts as "since start"
    engine.prepare()
    return engine


def _attempts(conn: psycopg.Connection) -> list[tuple]:
    rows = conn.execute("SELECT paper_trade_id, attempt, status, blocked_reasons, request, error FROM order_attempts"
                        " ORDER BY id").fetchall()
    conn.commit()
    return rows


def _alerts(conn: psycopg.Connection, level: str) -> list[str]:
    rows = [r[0] for r in conn.execute("SELECT text FROM alerts WHERE level = %s ORDER BY id", (level,))]
    conn.commit()
    return rows


def _pending(conn: psycopg.Connection) -> list[tuple]:
    rows = conn.execute("SELECT paper_trade_id, mode, tries, resolution FROM pending_exits ORDER BY paper_trade_id"
                        ).fetchall()
    conn.commit()
    return rows


def _sim_orders(sim: SimServer) -> list[dict]:
    return sim.venue.orders(ACCESS)


def _step_until(engine: Engine, done: Any, what: str, timeout: float = 15) -> None:
    def stepped() -> bool:
        engine.step()
        return bool(done())
    eventually(stepped, timeout=timeout, interval=0.05, what=what)


def _hold(conn: psycopg.Connection, engine: Engine, sim: SimServer) -> Decimal:
    """Buy live for 100,000 KRW and let it fill: what our ledger then holds."""
    _intent(conn, "buy")
    engine.step()
    sim.print_trade("KRW-BTC", str(PRICE), "1")
    _step_until(engine, lambda: _attempts(conn)[-1][2] == "done", "the live buy filled")
    held = conn.execute("SELECT sum(volume) FROM order_fills WHERE side = 'bid'").fetchone()[0]
    conn.commit()
    return Decimal(held)


# ---- 1. a live exit sells only what our ledger holds ------------------------------------------------


def test_a_live_exit_with_an_empty_ledger_sells_nothing_of_the_users_own_coins(conn, client, sim) -> None:
    _reconciled(conn)
    intent = _intent(conn, "sell", volume="0.5")  # the paper book's exit; the account holds 1 BTC of the user's
    _engine(conn, client).step()
    ((trade, attempt, status, reasons, request, _error),) = _attempts(conn)
    assert (trade, attempt, status, reasons) == (intent, 1, "blocked", ["NOTHING_HELD"])
    assert request["volume"] == "0"
    assert _sim_orders(sim) == []  # never an order
    assert sim.holding(ACCESS, "BTC").balance == Decimal(1)
    (warning,) = _alerts(conn, "warning")[-1:]
    assert "NOTHING_HELD" in warning and f"paper trade {intent}" in warning
    assert _pending(conn) == []  # nothing of ours to sell: nothing is pending either


def test_a_live_exit_sells_what_our_ledger_holds_never_the_paper_volume(conn, client, sim) -> None:
    _reconciled(conn)
    engine = _engine(conn, client)
    held = _hold(conn, engine, sim)
    assert Decimal(0) < held < Decimal("0.0011")
    _intent(conn, "sell", volume="0.5")  # far more than we bought
    engine.step()
    sells = [o for o in _sim_orders(sim) if o["side"] == "ask"]
    assert [Decimal(o["volume"]) for o in sells] == [held]


def test_a_second_exit_while_the_first_is_on_the_book_sells_nothing_more(conn, client, sim) -> None:
    _reconciled(conn)
    engine = _engine(conn, client)
    held = _hold(conn, engine, sim)
    _intent(conn, "sell", volume=str(held))
    engine.step()  # the market sell rests until the next trade prints
    second = _intent(conn, "sell", volume=str(held))
    engine.step()
    sells = [o for o in _sim_orders(sim) if o["side"] == "ask"]
    assert [Decimal(o["volume"]) for o in sells] == [held]
    assert [r[2:4] for r in _attempts(conn) if r[0] == second] == [("blocked", ["NOTHING_HELD"])]


def test_live_markets_and_the_order_cap_apply_to_exits(conn, client, sim) -> None:
    _reconciled(conn)
    held = _hold(conn, _engine(conn, client), sim)
    # restarted with KRW-BTC no longer allowed live, and a cap below the holding's value
    narrowed = RiskSettings(live_markets=("KRW-ETH",), max_order_krw=Decimal(50_000), max_positions=5,
                            daily_loss_krw=Decimal(10_000_000))
    exit_id = _intent(conn, "sell", volume=str(held))
    _engine(conn, client, risk=narrowed).step()
    ((status, reasons, _req, error),) = [r[2:] for r in _attempts(conn) if r[0] == exit_id]
    assert (status, reasons) == ("blocked", ["RISK_LIMIT"])
    assert "not in LIVE_MARKETS" in error and "RISK_MAX_ORDER_KRW=50,000" in error
    assert not [o for o in _sim_orders(sim) if o["side"] == "ask"]
    # the exit is not dropped: it waits for an operator (or a configuration that allows it)
    assert _pending(conn) == [(exit_id, "live", 1, None)]
    assert any("EXIT PENDING" in t and "RISK_LIMIT" in t for t in _alerts(conn, "critical"))


# ---- 2. an exit is never dropped ---------------------------------------------------------------------


def test_an_exit_refused_by_an_open_breaker_stays_pending_and_executes_once_it_closes(conn, sim) -> None:
    client = UpbitClient(sim.rest_url, access_key=ACCESS, secret_key=SECRET, retry_max_s=0.2,
                         breaker_fail_max=2, breaker_reset_s=1.0)
    try:
        _reconciled(conn)
        engine = _engine(conn, client)
        held = _hold(conn, engine, sim)
        exit_id = _intent(conn, "sell", volume=str(held))
        sim.faults.fail_next(2, 500, path="/v1/orders", method="POST")  # an outage: the order breaker opens
        engine.step()
        statuses = [r[2:4] for r in _attempts(conn) if r[0] == exit_id]
        assert statuses[-1] == ("blocked", ["BREAKER_OPEN"]), statuses
        assert _pending(conn) == [(exit_id, "live", 1, None)]
        assert client.breaker_state("order") == "open"
        # retried with backoff once the breaker lets requests through again; one critical alert in all
        sim.print_trade("KRW-BTC", str(PRICE), "1")

        def sold() -> bool:
            sim.print_trade("KRW-BTC", str(PRICE), "1")
            return any(r[0] == exit_id and r[2] == "done" for r in _attempts(conn))

        _step_until(engine, sold, "the pending exit executed", timeout=20)
        assert [(p[0], p[3]) for p in _pending(conn)] == [(exit_id, "executed")]
        assert len([t for t in _alerts(conn, "critical") if "EXIT PENDING" in t]) == 1
        assert any("executed after" in t for t in _alerts(conn, "info"))
        assert sum(Decimal(o["executed_volume"]) for o in _sim_orders(sim) if o["side"] == "ask") == held
    finally:
        client.close()


def test_an_exit_that_fails_every_attempt_stays_pending_instead_of_ending_in_error(conn, client, sim) -> None:
    _reconciled(conn)
    engine = _engine(conn, client)
    held = _hold(conn, engine, sim)
    exit_id = _intent(conn, "sell", volume=str(held))
    sim.faults.fail_next(3, 500, path="/v1/orders", method="POST")  # refused before processing, three times
    engine.step()
    assert [r[2] for r in _attempts(conn) if r[0] == exit_id] == ["error", "error", "error"]
    assert _pending(conn) == [(exit_id, "live", 1, None)]

    def sold() -> bool:
        sim.print_trade("KRW-BTC", str(PRICE), "1")
        return any(r[0] == exit_id and r[2] == "done" for r in _attempts(conn))

    _step_until(engine, sold, "the pending exit executed on its 4th attempt")
    assert [r[1] for r in _attempts(conn) if r[0] == exit_id][-1] == 4
    assert [(p[0], p[3]) for p in _pending(conn)] == [(exit_id, "executed")]


def test_a_persistently_throttled_exit_stays_pending(conn, client, sim) -> None:
    _reconciled(conn)
    held = _hold(conn, _engine(conn, client), sim)
    exit_id = _intent(conn, "sell", volume=str(held))
    # every second looks exhausted to this engine: the exit is throttled past its waits
    throttled = _engine(conn, client, throttle_remaining=10**9, sleep=lambda _s: None)
    client.tickers(["KRW-BTC"])  # the client learns a Remaining-Req figure
    sim_requests = len(_sim_orders(sim))
    throttled.step()
    assert [r[2:4] for r in _attempts(conn) if r[0] == exit_id] == [("throttled", ["THROTTLED"])]
    assert _pending(conn) == [(exit_id, "live", 1, None)]
    assert len(_sim_orders(sim)) == sim_requests
    engine = _engine(conn, client)  # the next start, with a budget left

    def sold() -> bool:
        sim.print_trade("KRW-BTC", str(PRICE), "1")
        return any(r[0] == exit_id and r[2] == "done" for r in _attempts(conn))

    _step_until(engine, sold, "the throttled exit executed")


def test_an_entry_waits_while_an_exit_of_its_market_is_pending(conn, client, sim) -> None:
    _reconciled(conn)
    engine = _engine(conn, client)
    held = _hold(conn, engine, sim)
    narrowed = RiskSettings(live_markets=("KRW-BTC",), max_order_krw=Decimal(50_000), max_positions=5,
                            daily_loss_krw=Decimal(10_000_000))
    _intent(conn, "sell", volume=str(held))
    capped = _engine(conn, client, risk=narrowed)
    capped.step()
    entry = _intent(conn, "buy", amount="10000")
    capped.step()
    ((status, reasons, _req, error),) = [r[2:] for r in _attempts(conn) if r[0] == entry]
    assert (status, reasons) == ("blocked", ["RISK_LIMIT"]) and "exit of KRW-BTC is pending" in error


# ---- 3. identifiers and adoption ---------------------------------------------------------------------


def test_identifiers_stay_unique_after_a_reset_restarts_the_ids(conn, client, sim) -> None:
    _reconciled(conn)
    first = _intent(conn, "buy")
    _engine(conn, client).step()
    reset_sandbox(conn)  # TRUNCATE … RESTART IDENTITY: paper trade ids start again
    _reconciled(conn)
    again = _intent(conn, "buy")
    assert again == first
    _engine(conn, client).step()
    orders = _sim_orders(sim)
    assert len(orders) == 2 and len({o["identifier"] for o in orders}) == 2
    (row,) = conn.execute("SELECT status, uuid, identifier FROM order_attempts").fetchall()
    assert row[0] == "submitted"
    assert [o["identifier"] for o in orders if o["uuid"] == row[1]] == [row[2]]  # its own order, not the old one


def test_a_foreign_order_under_our_identifier_is_never_adopted(conn, client, sim, db_url) -> None:
    _reconciled(conn)
    engine = _engine(conn, client)
    held = _hold(conn, engine, sim)
    intruder = UpbitClient(sim.rest_url, access_key=ACCESS, secret_key=SECRET)

    def place_foreign_order() -> None:  # someone else's BUY, under the identifier our sell is about to use
        with psycopg.connect(db_url) as other:
            ident = other.execute("SELECT identifier FROM order_attempts ORDER BY id DESC LIMIT 1").fetchone()[0]
        intruder.create_order(market="KRW-BTC", side="bid", ord_type="price", price=Decimal(20_000), identifier=ident)

    exit_id = _intent(conn, "sell", volume=str(held))
    try:
        _engine(conn, client, failpoints=Failpoints("execution.after_intent_commit@1", action=place_foreign_order)
                ).step()
    finally:
        intruder.close()
    first = [r for r in _attempts(conn) if r[0] == exit_id][0]
    assert first[2] == "error" and "foreign order" in first[5]
    assert conn.execute("SELECT count(*) FROM order_fills WHERE side = 'bid'").fetchone()[0] == 1  # only ours
    flags = control.flags(conn)
    conn.commit()
    assert flags["killswitch"] is True  # entries halt
    assert any("FOREIGN ORDER" in t for t in _alerts(conn, "critical"))
    assert _pending(conn)[0][:2] == (exit_id, "live")  # and our exit is still to do


# ---- 10. the daily loss limit counts live fills ----------------------------------------------------------


def test_the_daily_loss_limit_counts_our_live_fills_not_the_paper_book(conn, client, sim) -> None:
    _reconciled(conn)
    tight = RiskSettings(live_markets=("KRW-BTC",), max_positions=5, daily_loss_krw=Decimal(10_000))
    engine = _engine(conn, client, risk=tight)
    held = _hold(conn, engine, sim)
    _intent(conn, "sell", volume=str(held), price=PRICE / 2, pnl="5000")  # the paper book thinks it made money
    engine.step()

    def sold_at_half() -> bool:
        sim.print_trade("KRW-BTC", str(PRICE / 2), "1")
        return any(r[2] == "done" for r in _attempts(conn)[1:])

    _step_until(engine, sold_at_half, "the live sell filled at half the price")
    entry = _intent(conn, "buy")
    engine.step()
    assert [r[2:4] for r in _attempts(conn) if r[0] == entry] == [("blocked", ["RISK_LIMIT", "KILL_SWITCH"])]
    assert any("realised loss today" in t for t in _alerts(conn, "critical"))


# ---- the needs-review queue ----------------------------------------------------------------------------


def test_an_outcome_no_lookup_can_settle_goes_to_review_then_resolves_by_itself(conn, sim) -> None:
    client = UpbitClient(sim.rest_url, access_key=ACCESS, secret_key=SECRET, retry_max_s=0.2, breaker_reset_s=0.5)
    _reconciled(conn)
    clock = FakeClock(now=datetime.now(UTC))
    engine = _engine(conn, client, clock=clock, review_after_s=5.0)
    intent = _intent(conn, "buy")
    sim.faults.drop_after_accept(1, path="/v1/orders", method="POST")  # placed, answer lost
    sim.faults.fail_next(10_000, 500, path="/v1/order", method="GET")  # and every lookup fails
    engine.step()
    ((_, _, status, _r, _q, _e),) = _attempts(conn)
    assert status == "unknown"
    review = conn.execute("SELECT review_since FROM order_attempts").fetchone()[0]
    conn.commit()
    assert review is not None
    assert any("NEEDS REVIEW" in t for t in _alerts(conn, "critical"))
    assert engine.in_review == 0  # counted on the next pass
    engine.step()
    assert engine.in_review == 1
    assert len(_sim_orders(sim)) == 1  # nothing else went out for this intent
    sim.faults.clear()

    def found() -> bool:
        clock.advance(31)  # the next lookup of a reviewed attempt (and the breaker's real half second)
        engine.step()
        return _attempts(conn)[0][2] == "submitted"

    eventually(found, interval=0.1, what="the reviewed attempt found and adopted")
    assert intent == _attempts(conn)[0][0]
    client.close()


def test_an_entry_that_would_grow_a_position_past_the_order_cap_is_refused(conn, client, sim) -> None:
    """Its exit could not go out as one order (exits obey the cap too): refuse the entry instead."""
    _reconciled(conn)
    capped = RiskSettings(live_markets=("KRW-BTC",), max_order_krw=Decimal(150_000), max_positions=5,
                          daily_loss_krw=Decimal(10_000_000))
    engine = _engine(conn, client, risk=capped)
    _hold(conn, engine, sim)  # 100,000 KRW of BTC
    second = _intent(conn, "buy", amount="100000")
    engine.step()
    ((status, reasons, _req, error),) = [r[2:] for r in _attempts(conn) if r[0] == second]
    assert (status, reasons) == ("blocked", ["RISK_LIMIT"])
    assert "its exit could not go out as one order" in error
    assert len([o for o in _sim_orders(sim) if o["side"] == "bid"]) == 1
