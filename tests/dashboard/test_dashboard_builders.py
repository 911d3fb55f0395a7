"""The JSON builders against a database with the system's rows inserted, on a fake clock."""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta
from decimal import Decimal

import psycopg
import pytest

from dashboard.execution import STATUSES, read_alerts, read_events, read_execution
from dashboard.market import read_feed, read_portfolio, read_series
from dashboard.rates import RateTracker
from dashboard.sections import NOT_AVAILABLE, SECTIONS, read_sections, section_metrics
from dashboard.status import Limits, build_health, build_status
from dashboard.tree import read_tree
from persistence import runtime
from model.clock import FakeClock
from tests.dashboard import rows
from tests.dashboard.rows import NOW, ago

LIMITS = Limits(heartbeat_stale_s=5.0, feed_stale_s=30.0)
REPLAY = "replay:krw-btc-1m-candles-2024-08-to-2025-08.csv.gz"


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock(now=NOW)


def _tree(db: psycopg.Connection) -> dict:
    return read_tree(db, NOW, stale_s=LIMITS.heartbeat_stale_s)


def _node(tree: dict, name: str) -> dict:
    return next(n for n in tree["nodes"] if n["node"] == name)


# --- the supervisor tree -------------------------------------------------------------------------

def test_running_system_tree_in_start_order_with_actor_figures(db: psycopg.Connection,
                                                                system_lock: Callable[[], None]) -> None:
    system_lock()
    rows.running_system(db)
    rows.actor(db, "market", "bar", mailbox=7, processed=481, last_message=2.5, incarnation=3,
               counters={"bars": 470})
    tree = _tree(db)
    root = tree["root"]
    assert (root["state"], root["lock_held"], root["pid"]) == ("running", True, 100)
    assert root["mode"].startswith("sandbox replay")
    assert [n["node"] for n in tree["nodes"]] == ["ops", "execution", "market"]  # start order, not alphabetical
    assert {n["state"] for n in tree["nodes"]} == {"running"}
    market = _node(tree, "market")
    assert [a["actor"] for a in market["actors"]] == ["paper", "strategy", "bar", "feed"]
    bar = next(a for a in market["actors"] if a["actor"] == "bar")
    assert (bar["state"], bar["mailbox"], bar["processed"], bar["incarnation"], bar["restarts"]) == (
        "running", 7, 481, 3, 2)
    assert bar["last_message_age_s"] == pytest.approx(2.5)
    assert market["uptime_s"] == pytest.approx(59.8)


def test_without_the_system_lock_everything_is_stopped(db: psycopg.Connection) -> None:
    rows.running_system(db)  # rows of a run whose root is gone (killed: it never wrote "stopped")
    tree = _tree(db)
    assert tree["root"]["state"] == "stopped"
    assert "not running" in tree["root"]["why"]
    assert {n["state"] for n in tree["nodes"]} == {"stopped"}
    assert {a["state"] for n in tree["nodes"] for a in n["actors"]} == {"stopped"}


def test_lock_held_on_another_database_of_the_server_does_not_count(db: psycopg.Connection,
                                                                     pg_server_url: str) -> None:
    rows.running_system(db)
    with psycopg.connect(pg_server_url, autocommit=True) as other:
        assert runtime.try_lock_system(other)
        assert _tree(db)["root"]["state"] == "stopped"


def test_root_holding_the_lock_but_silent_is_unresponsive(db: psycopg.Connection,
                                                          system_lock: Callable[[], None]) -> None:
    system_lock()
    rows.running_system(db)
    rows.node(db, "root", pid=100, started=61, heartbeat=8.0)
    tree = _tree(db)
    assert tree["root"]["state"] == "unresponsive"
    assert "8.0 s" in tree["root"]["why"]
    assert {n["state"] for n in tree["nodes"]} == {"unknown"}


def test_node_whose_latest_event_is_an_exit_is_down_whatever_its_row_says(db: psycopg.Connection,
                                                                          system_lock: Callable[[], None]) -> None:
    system_lock()
    rows.running_system(db)
    rows.event(db, at=2.0, supervisor="root", kind="exited", child="execution", reason="killed(SIGKILL)")
    rows.event(db, at=1.99, supervisor="root", kind="restarting", child="execution", reason="killed(SIGKILL)")
    execution = _node(_tree(db), "execution")
    assert execution["state"] == "down"  # its row still says running, with the dead pid
    assert execution["why"] == "restarting after killed(SIGKILL)"
    assert execution["pid"] is None
    assert {a["state"] for a in execution["actors"]} == {"down"}

    rows.event(db, at=1.5, supervisor="root", kind="started", child="execution", incarnation=2)
    execution = _node(_tree(db), "execution")  # started, but the root has not rewritten its row yet
    assert (execution["state"], execution["pid"], execution["incarnation"], execution["restarts"]) == (
        "running", None, 2, 1)
    assert execution["uptime_s"] == pytest.approx(1.5)
    rows.node(db, "execution", pid=999, incarnation=2, restarts=1, started=1.5)
    execution = _node(_tree(db), "execution")
    assert (execution["state"], execution["pid"], execution["incarnation"], execution["restarts"]) == (
        "running", 999, 2, 1)
    assert execution["last_exit"]["reason"] == "killed(SIGKILL)"
    assert execution["last_exit"]["down_for_s"] == pytest.approx(0.5)
    assert execution["last_exit"]["age_s"] == pytest.approx(2.0)


def test_orderly_exits_are_not_outages(db: psycopg.Connection, system_lock: Callable[[], None]) -> None:
    system_lock()
    rows.running_system(db)
    rows.event(db, at=1.0, supervisor="market", kind="exited", child="feed", reason="shutdown(supervisor stopping)")
    rows.event(db, at=0.9, supervisor="market", kind="started", child="feed", incarnation=2)
    market = _node(_tree(db), "market")
    assert market["last_exit"] is None
    assert market["state"] == "running"


def test_node_whose_actors_stopped_reporting_is_unresponsive(db: psycopg.Connection,
                                                             system_lock: Callable[[], None]) -> None:
    system_lock()
    rows.running_system(db)
    for a in rows.ACTORS["market"]:
        rows.actor(db, "market", a, reported=9.0)
    market = _node(_tree(db), "market")
    assert market["state"] == "unresponsive"
    assert "last reported 9.0 s ago" in market["why"]
    assert {a["state"] for a in market["actors"]} == {"stale"}
    assert _node(_tree(db), "ops")["state"] == "running"


# --- the feed ------------------------------------------------------------------------------------

def _feed(db: psycopg.Connection, rates: RateTracker | None = None) -> dict:
    tree = _tree(db)
    actors = [a | {"node": n["node"]} for n in tree["nodes"] for a in n["actors"]]
    return read_feed(db, NOW, actors, rates, stale_s=LIMITS.feed_stale_s)


def test_feed_states_from_when_bars_were_stored(db: psycopg.Connection, system_lock: Callable[[], None]) -> None:
    system_lock()
    rows.running_system(db)
    feed = _feed(db)
    assert (feed["kind"], feed["state"], feed["last_write_age_s"]) == ("replay", "no data", None)

    bar_ts = NOW - timedelta(days=200)  # a replay's bars carry the recording's times
    rows.bar(db, "KRW-BTC", bar_ts, 85_000_000, late=2)
    rows.bar(db, "KRW-BTC", bar_ts - timedelta(seconds=15), 84_900_000)
    rows.offset(db, REPLAY, "KRW-BTC", 479, stored=0.4)
    feed = _feed(db)
    assert (feed["state"], feed["name"], feed["trades_total"], feed["bars_total"], feed["late_trades"]) == (
        "flowing", REPLAY, 480, 470, 3)
    assert feed["amended_bars_1h"] == 1
    (market,) = feed["markets"]
    assert (market["market"], market["last_close"], market["applied_offset"]) == ("KRW-BTC", 85_000_000, 479)
    assert market["lag_s"] == pytest.approx((NOW - bar_ts).total_seconds() - 1)
    assert market["stored_age_s"] == pytest.approx(0.4)

    rows.offset(db, REPLAY, "KRW-BTC", 479, stored=45.0)
    feed = _feed(db)
    assert (feed["state"], feed["why"]) == ("stale", "no bar stored for 45.0 s")

    rows.actor(db, "market", "feed", counters={"trades": 480, "offset": 479, "finished": True})
    feed = _feed(db)
    assert feed["state"] == "finished"
    assert "end of the recording" in feed["why"]


def test_trades_per_second_from_successive_feed_reports(db: psycopg.Connection,
                                                        system_lock: Callable[[], None]) -> None:
    system_lock()
    rows.running_system(db)
    rates = RateTracker()
    rows.actor(db, "market", "feed", reported=3.0, counters={"trades": 1000, "finished": False})
    assert _feed(db, rates)["trades_per_s"] is None  # one report is not a rate yet
    rows.actor(db, "market", "feed", reported=1.0, counters={"trades": 1500, "finished": False})
    assert _feed(db, rates)["trades_per_s"] == pytest.approx(250.0)


def test_rate_tracker_restarts_its_series_when_the_counter_does() -> None:
    rates = RateTracker(window_s=10)
    assert rates.observe("t", lifetime=1, at=ago(4), value=100) is None
    assert rates.observe("t", lifetime=1, at=ago(2), value=300) == pytest.approx(100)
    assert rates.observe("t", lifetime=1, at=ago(2), value=300) == pytest.approx(100)  # same report twice
    assert rates.observe("t", lifetime=2, at=ago(1), value=5) is None  # the actor restarted
    assert rates.observe("t", lifetime=2, at=ago(0), value=25) == pytest.approx(20)
    assert rates.observe("t", lifetime=2, at=NOW + timedelta(seconds=1), value=3) is None  # went down: reset
    for i in range(30):  # a long steady run: only the last window counts
        rates.observe("u", lifetime=1, at=ago(30 - i), value=(1000 if i < 15 else 1000 + (i - 14) * 10))
    assert rates.observe("u", lifetime=1, at=NOW, value=1160) == pytest.approx(10, rel=0.01)


# --- charts and money ------------------------------------------------------------------------------

def test_series_aligns_entries_and_exits_with_bars_and_builds_equity(db: psycopg.Connection) -> None:
    t0 = NOW - timedelta(days=100)
    for i in range(10):
        rows.bar(db, "KRW-BTC", t0 + timedelta(seconds=15 * i), 100 + i)
    rows.bar(db, "KRW-ETH", t0, 5)
    rows.offset(db, REPLAY, "KRW-BTC", 39, stored=0.2)
    rows.offset(db, REPLAY, "KRW-ETH", 1, stored=5.0)
    rows.paper_trade(db, "KRW-BTC", "buy", 101, t0 + timedelta(seconds=15))
    rows.paper_trade(db, "KRW-BTC", "sell", 104, t0 + timedelta(seconds=60), pnl=-120)
    rows.paper_trade(db, "KRW-BTC", "buy", 105, t0 + timedelta(seconds=75))
    rows.paper_trade(db, "KRW-BTC", "sell", 108, t0 + timedelta(seconds=120), pnl=350)
    rows.paper_trade(db, "KRW-BTC", "buy", 109, t0 + timedelta(seconds=135))
    db.execute("INSERT INTO paper_positions (market, volume, avg_price, entry_fee_krw, realized_pnl, fees_krw, trades,"
               " last_price, last_bar_ts) VALUES ('KRW-BTC', 2, 109, 1, 230, 4, 5, 109, %s)",
               (t0 + timedelta(seconds=135),))
    series = read_series(db, None, limit=8)  # the market with the freshest bars, its 8 newest bars
    assert series["market"] == "KRW-BTC"
    assert series["markets"] == ["KRW-BTC", "KRW-ETH"]
    t = series["bars"]["t"]
    assert len(t) == 8 and t[-1] == int((t0 + timedelta(seconds=135)).timestamp())
    assert [float(c) for c in series["bars"]["close"]] == [102.0 + i for i in range(8)]
    assert [i for i, v in enumerate(series["buys"]) if v is not None] == [3, 7]  # the first buy is before the window
    assert [i for i, v in enumerate(series["sells"]) if v is not None] == [2, 6]
    assert series["sells"][6] == 108.0
    equity = series["equity"]
    assert equity["realised"] == [-120.0, 230.0, 230.0]
    assert equity["marked"] == [None, None, 230.0 + 0 - 1]  # (109 - 109) * 2 - entry fee 1
    assert equity["t"][-1] == int((t0 + timedelta(seconds=135)).timestamp())
    assert read_series(db, "KRW-ETH", limit=8)["bars"]["t"] == [int(t0.timestamp())]
    assert read_series(db, "NOPE", limit=8)["market"] == "KRW-BTC"


def test_portfolio_pnl_is_net_of_the_entry_fee(db: psycopg.Connection) -> None:
    db.execute("INSERT INTO paper_positions (market, volume, avg_price, entry_fee_krw, realized_pnl, fees_krw, trades,"
               " last_price) VALUES ('KRW-BTC', 0.5, 100, 2, -10, 7, 3, 120), ('KRW-ETH', 0, 0, 0, 40, 3, 2, 9)")
    book = read_portfolio(db)
    assert (book["realised"], book["unrealised"], book["fees"], book["total"]) == (30, 8, 10, 38)
    btc = next(p for p in book["positions"] if p["market"] == "KRW-BTC")
    assert (btc["unrealised"], btc["value_krw"]) == (8, 60)


# --- execution, alerts, events ---------------------------------------------------------------------

def test_execution_counts_every_status_and_ranks_blocked_reasons(db: psycopg.Connection) -> None:
    t = NOW - timedelta(days=1)
    trades = [rows.paper_trade(db, "KRW-BTC", "buy", 100, t) for _ in range(7)]
    rows.attempt(db, trades[0], status="logged")
    rows.attempt(db, trades[1], status="blocked", reasons=["min_order_krw", "daily_loss_limit"])
    rows.attempt(db, trades[2], status="blocked", reasons=["daily_loss_limit"])
    rows.attempt(db, trades[3], status="blocked", reasons=[{"code": "breaker_open", "detail": "orders"}])
    rows.attempt(db, trades[4], status="error", mode="test", error="HTTP 500")
    rows.attempt(db, trades[5], status="blocked", reasons=["stale_price"], created=25 * 3600)  # older than a day
    rows.attempt(db, trades[6], status="throttled")
    x = read_execution(db, NOW)
    assert list(x["counts_24h"]) == list(STATUSES)
    assert x["counts_24h"] == dict.fromkeys(STATUSES, 0) | {"logged": 1, "blocked": 3, "error": 1, "throttled": 1}
    assert x["total_24h"] == 6
    assert x["modes_24h"] == {"shadow": 5, "test": 1}
    assert x["blocked_reasons_24h"] == [{"reason": "daily_loss_limit", "count": 2},
                                        {"reason": "breaker_open", "count": 1},
                                        {"reason": "min_order_krw", "count": 1}]
    latest = x["attempts"][0]
    assert (latest["paper_trade_id"], latest["status"], latest["identifier"]) == (trades[6], "throttled",
                                                                                   f"sbx-{trades[6]}-1")
    assert x["attempts"][3]["blocked_reasons"] == ["breaker_open"]
    assert x["attempts"][2]["error"] == "HTTP 500"
    assert (latest["ord_type"], latest["price"]) == ("price", "100000")


def test_execution_before_any_attempt(db: psycopg.Connection) -> None:
    x = read_execution(db, NOW)
    assert (x["mode"], x["attempts"], x["total_24h"], x["blocked_reasons_24h"]) == (None, [], 0, [])


def test_alerts_say_whether_they_were_delivered(db: psycopg.Connection) -> None:
    rows.alert(db, "system starting", sent=True, created=30)
    rows.alert(db, "node market exited", sent=False, created=12, level="warning", last_error="HTTP 502")
    rows.alert(db, "paper buy", sent=False, created=2)
    a = read_alerts(db, NOW)
    assert a["unsent"] == 2
    assert a["oldest_unsent_age_s"] == pytest.approx(12)
    assert [(x["text"], x["delivered"]) for x in a["recent"]] == [
        ("paper buy", False), ("node market exited", False), ("system starting", True)]
    assert a["recent"][1]["last_error"] == "HTTP 502"
    assert a["recent"][2]["channel"] == "log"


def test_events_newest_first(db: psycopg.Connection) -> None:
    rows.event(db, at=3, supervisor="root", kind="started", child="market")
    rows.event(db, at=2, supervisor="root", kind="exited", child="market", reason="killed(SIGKILL)")
    assert [(e["kind"], e["reason"]) for e in read_events(db)] == [("exited", "killed(SIGKILL)"), ("started", None)]


# --- execution and account sections --------------------------------------------------------------

BREAKERS = {"exchange-default": "half-open", "order": "open", "order-test": "closed"}


def _actors(db: psycopg.Connection) -> list[dict]:
    return [a | {"node": n["node"]} for n in _tree(db)["nodes"] for a in n["actors"]]


def _section(db: psycopg.Connection, key: str) -> dict:
    return next(s for s in read_sections(db, NOW, _actors(db)) if s["key"] == key)


def test_sections_in_page_order_all_available_in_a_migrated_database(db: psycopg.Connection) -> None:
    sections = read_sections(db, NOW, _actors(db))
    assert [s["key"] for s in sections] == [s.key for s in SECTIONS] == [
        "safety", "guards", "breakers", "throttling", "account", "reconciliation"]
    assert all(s["available"] for s in sections)
    assert section_metrics(db, [])["available"] == dict.fromkeys([s.key for s in SECTIONS], True)


def test_the_safety_section_lists_pending_exits_and_the_review_queue(db: psycopg.Connection) -> None:
    (quiet,) = [s for s in read_sections(db, NOW, []) if s["key"] == "safety"]
    assert quiet["pending"] == [] and quiet["review"] == [] and quiet["note"].startswith("nothing waiting")
    trade = db.execute("INSERT INTO paper_trades (market, side, price, volume, amount_krw, fee_krw, reason, bar_ts,"
                       " source) VALUES ('KRW-BTC', 'sell', 100, 1, 100, 0, 't', %s, 't') RETURNING id",
                       (ago(60),)).fetchone()[0]
    db.execute("INSERT INTO pending_exits (paper_trade_id, market, mode, since, reason, tries, next_at)"
               " VALUES (%s, 'KRW-BTC', 'live', %s, 'error: 3 attempts failed', 3, %s)", (trade, ago(90), NOW))
    attempt = db.execute("INSERT INTO order_attempts (paper_trade_id, attempt, identifier, mode, status, market, side,"
                         " request, created_at, review_since) VALUES (%s, 4, 'sbx-1-4-abcdefgh', 'live', 'unknown',"
                         " 'KRW-BTC', 'ask', '{}', %s, %s) RETURNING id", (trade, ago(600), ago(300))).fetchone()[0]
    (safety,) = [s for s in read_sections(db, NOW, []) if s["key"] == "safety"]
    ((pending,),) = [safety["pending"]]
    assert (pending["paper_trade_id"], pending["tries"], pending["age_s"]) == (trade, 3, 90.0)
    ((review,),) = [safety["review"]]
    assert (review["attempt_id"], review["identifier"], review["age_s"]) == (attempt, "sbx-1-4-abcdefgh", 600.0)
    assert "ctl review" in safety["note"]


def test_a_database_without_the_execution_tables_says_not_available(db: psycopg.Connection) -> None:
    db.execute("DROP TABLE reconciliation_reports, execution_events")
    by_key = {s["key"]: s for s in read_sections(db, NOW, [])}
    assert {k for k, s in by_key.items() if not s["available"]} == {"guards", "reconciliation"}
    assert by_key["reconciliation"]["note"] == by_key["guards"]["note"] == NOT_AVAILABLE
    assert by_key["account"]["available"] and by_key["throttling"]["available"]
    assert section_metrics(db, [])["reconciliation_differences"] is None


def test_breakers_are_the_execution_actors_report_while_it_runs(db: psycopg.Connection,
                                                               system_lock: Callable[[], None]) -> None:
    rows.running_system(db)
    rows.actor(db, "execution", "execution", counters={"mode": "test", "breakers": BREAKERS})
    stopped = _section(db, "breakers")  # nobody holds the lock: the counters are a dead run's last word
    assert (stopped["actor_state"], stopped["current"]) == ("stopped", False)
    assert [b["group"] for b in stopped["breakers"]] == ["exchange-default", "order", "order-test"]
    assert "stopped now: may be out of date" in stopped["note"]
    assert section_metrics(db, _actors(db))["breakers"] == []

    system_lock()
    breakers = _section(db, "breakers")
    assert (breakers["actor_state"], breakers["current"], breakers["note"]) == ("running", True, "")
    assert breakers["breakers"] == [{"group": g, "state": s} for g, s in sorted(BREAKERS.items())]
    assert breakers["open"] == ["exchange-default", "order"]
    assert breakers["report_age_s"] == pytest.approx(0.5)
    assert section_metrics(db, _actors(db))["breakers"] == sorted(BREAKERS.items())

    rows.actor(db, "execution", "execution", counters={"mode": "shadow", "breakers": {}})  # no API keys
    breakers = _section(db, "breakers")
    assert (breakers["breakers"], breakers["current"]) == ([], True)
    assert breakers["note"].startswith("no breaker reported: execution has no exchange client")


def test_guards_show_the_mode_the_switches_the_events_and_the_reasons(db: psycopg.Connection,
                                                                     system_lock: Callable[[], None]) -> None:
    system_lock()
    rows.running_system(db)
    rows.actor(db, "execution", "execution", counters={
        "mode": "shadow", "requested_mode": "live", "mode_reasons": ["LIVE_DISABLED", "AUTO_TEST_DISABLED"]})
    rows.flag(db, "paused", True, by="cli:ops@host", at=40)
    rows.flag(db, "killswitch", False)
    rows.flag(db, "reconcile_halt", {"at": "2025-03-04T05:00:00Z", "report": 7, "why": "BTC differs"}, by="account")
    rows.flag(db, "mode", "live", by="telegram:ops")
    rows.flag(db, "reconciled", {"ok": True})  # not a switch
    first = rows.execution_event(db, "mode_changed", {"requested": "live", "effective": "shadow",
                                                      "reasons": ["LIVE_DISABLED"], "previous": None}, at=50)
    second = rows.execution_event(db, "kill_switch", {"by": "risk", "realized_today_krw": "-51000",
                                                      "api_key": "hunter2-never-shown"}, at=5)
    t = NOW - timedelta(days=1)
    trades = [rows.paper_trade(db, "KRW-BTC", "buy", 100, t) for _ in range(4)]
    rows.attempt(db, trades[0], status="logged", reasons=["LIVE_DISABLED", "DATA_LAG"])
    rows.attempt(db, trades[1], status="logged", reasons=["LIVE_DISABLED"])
    rows.attempt(db, trades[2], status="blocked", reasons=[{"code": "CUSTOM_CHECK"}])
    rows.attempt(db, trades[3], status="logged")

    guards = _section(db, "guards")
    assert (guards["mode"], guards["requested_mode"], guards["downgraded"]) == ("shadow", "live", True)
    assert guards["mode_reasons"] == ["LIVE_DISABLED", "AUTO_TEST_DISABLED"]
    switches = {s["name"]: s for s in guards["switches"]}
    assert list(switches) == ["paused", "killswitch", "reconcile_halt", "mode"]
    assert {n: (s["active"], s["text"]) for n, s in switches.items()} == {
        "paused": (True, "ON"), "killswitch": (False, "off"),
        "reconcile_halt": (True, "HALTED by report #7: BTC differs"),
        "mode": (False, "live requested at run time")}
    assert (switches["paused"]["updated_by"], switches["paused"]["updated_at"]) == ("cli:ops@host", ago(40))
    assert [(e["id"], e["kind"]) for e in guards["events"]] == [(second, "kill_switch"), (first, "mode_changed")]
    assert guards["events"][0]["detail"]["api_key"] == "(hidden)"
    assert "hunter2" not in str(guards["events"])
    assert guards["events"][0]["text"] == "by risk · api_key (hidden) · realized_today_krw -51000"  # jsonb's order
    assert guards["events"][1]["text"] == "reasons LIVE_DISABLED · effective shadow · requested live"
    assert guards["attempts_considered"] == 4
    assert guards["blocked_reasons"] == [{"reason": "LIVE_DISABLED", "count": 2, "kind": "downgrade"},
                                         {"reason": "CUSTOM_CHECK", "count": 1, "kind": "other"},
                                         {"reason": "DATA_LAG", "count": 1, "kind": "stop"}]


def test_guards_before_anything_happened(db: psycopg.Connection) -> None:
    guards = _section(db, "guards")
    assert (guards["mode"], guards["downgraded"], guards["events"], guards["blocked_reasons"]) == (
        None, False, [], [])
    assert [(s["set"], s["active"]) for s in guards["switches"]] == [(False, False)] * 4
    assert guards["switches"][3]["text"] == "not set: the configured TRADE_MODE"


def test_throttling_lists_throttled_attempts_or_says_there_was_none(db: psycopg.Connection) -> None:
    assert _section(db, "throttling") | {"window_s": 0} == {
        "key": "throttling", "title": "Throttling", "available": True, "window_s": 0, "last_hour": 0,
        "last_24h": 0, "last_at": None, "recent": [], "note": "no throttling in the last 24 h"}
    t = NOW - timedelta(days=1)
    trades = [rows.paper_trade(db, "KRW-BTC", "buy", 100, t) for _ in range(5)]
    rows.attempt(db, trades[0], status="throttled", mode="test", created=30, error="refused by the rate limit: 429")
    rows.attempt(db, trades[1], status="blocked", reasons=["THROTTLED"], created=2 * 3600)
    rows.attempt(db, trades[2], status="logged", created=10)
    rows.attempt(db, trades[3], status="throttled", created=25 * 3600)  # older than the window
    rows.attempt(db, trades[4], status="blocked", reasons=[{"reason": "THROTTLED"}], created=20)
    throttling = _section(db, "throttling")
    assert (throttling["last_hour"], throttling["last_24h"], throttling["note"]) == (2, 3, "")
    assert throttling["last_at"] == ago(20)
    recent = throttling["recent"]
    assert [(a["identifier"], a["status"]) for a in recent] == [
        (f"sbx-{trades[4]}-1", "blocked"), (f"sbx-{trades[1]}-1", "blocked"), (f"sbx-{trades[0]}-1", "throttled")]
    assert recent[0]["blocked_reasons"] == ["THROTTLED"]
    assert (recent[2]["mode"], recent[2]["error"]) == ("test", "refused by the rate limit: 429")


def test_account_shows_the_latest_balance_of_each_currency_and_the_live_positions(
        db: psycopg.Connection, system_lock: Callable[[], None]) -> None:
    from actors.account import NO_KEYS

    system_lock()
    rows.running_system(db)
    rows.actor(db, "execution", "account", counters={"reason": NO_KEYS, "idle": True, "polls": 0})
    account = _section(db, "account")
    assert (account["balances"], account["positions"], account["taken_at"]) == ([], [], None)
    assert account["note"] == NO_KEYS

    rows.snapshot(db, 8 * 86400, {"XRP": ("10", "0", "700")})  # long gone: not read
    rows.snapshot(db, 700, {"KRW": ("1000000", "0", "0"), "BTC": ("0.01", "0", "90000000")})
    rows.snapshot(db, 100, {"KRW": ("900000", "50000", "0"), "ETH": ("1", "0.5", "3000000")})
    rows.live_position(db, "KRW-ETH", "1", "3000000", locked="0.5", updated=100)
    rows.actor(db, "execution", "account", counters={"reason": "", "polls": 12})
    account = _section(db, "account")
    assert account["taken_at"] == ago(100)
    assert account["age_s"] == pytest.approx(100)
    assert [(b["currency"], b["balance"], b["locked"], b["avg_buy_price"], b["in_latest"], b["taken_at"])
            for b in account["balances"]] == [
        ("BTC", Decimal("0.01"), 0, Decimal(90000000), False, ago(700)),
        ("ETH", 1, Decimal("0.5"), 3000000, True, ago(100)),
        ("KRW", 900000, 50000, 0, True, ago(100))]
    (eth,) = account["positions"]
    assert (eth["market"], eth["volume"], eth["locked"], eth["cost_krw"]) == ("KRW-ETH", 1, Decimal("0.5"), 4500000)
    assert (account["actor_state"], account["polls"], account["note"]) == ("running", 12, "")


def test_reconciliation_lists_the_latest_reports_and_counts_the_latest_differences(db: psycopg.Connection) -> None:
    empty = _section(db, "reconciliation")
    assert (empty["latest"], empty["reports"], empty["differences"], empty["note"]) == (
        None, [], None, "no reconciliation yet")
    assert section_metrics(db, [])["reconciliation_differences"] is None

    first = rows.report(db, at=900, trigger="start")
    diffs = [rows.difference("BTC", "0.5", "0.4", "9000000"), rows.difference("DOGE", "10", "12", None)]
    second = rows.report(db, at=600, differences=diffs, unknown=1, halted=True)
    third = rows.report(db, at=300, trigger="command", error="HTTP 503 from /v1/accounts")
    rows.flag(db, "reconcile_halt", {"report": second, "why": "2 differences"}, by="account")
    rec = _section(db, "reconciliation")
    assert [r["id"] for r in rec["reports"]] == [third, second, first]
    assert rec["latest"]["id"] == third
    assert [(r["trigger"], r["ok"], r["halted"], r["differences_count"], r["unknown_orders"], r["missing_orders"])
            for r in rec["reports"]] == [("command", False, False, 0, 0, 0), ("periodic", False, True, 2, 1, 0),
                                         ("start", True, False, 0, 0, 0)]
    assert rec["reports"][0]["error"] == "HTTP 503 from /v1/accounts"
    assert rec["reports"][1]["differences"] == diffs
    assert rec["reports"][1]["differences_text"] == (
        "BTC: expected 0.5, exchange has 0.4 (Δ -0.1, 9,000,000 KRW); "
        "DOGE: expected 10, exchange has 12 (Δ 2, no price to value it)")
    assert rec["reports"][1]["at"] == ago(600)
    assert rec["differences"] == 2  # the error report compared nothing: the latest completed one counts
    assert (rec["halt"]["active"], rec["halt"]["text"]) == (True, f"HALTED by report #{second}: 2 differences")
    assert section_metrics(db, [])["reconciliation_differences"] == 2

    rows.report(db, at=60)
    assert _section(db, "reconciliation")["differences"] == 0
    assert section_metrics(db, [])["reconciliation_differences"] == 0


# --- the whole document and health -----------------------------------------------------------------

def test_status_document_is_complete_and_healthy_for_a_flowing_system(db: psycopg.Connection, clock: FakeClock,
                                                                      system_lock: Callable[[], None]) -> None:
    system_lock()
    rows.running_system(db)
    rows.bar(db, "KRW-BTC", NOW - timedelta(days=1), 1)
    rows.offset(db, REPLAY, "KRW-BTC", 0, stored=1)
    status = build_status(db, clock, LIMITS, RateTracker())
    assert set(status) == {"generated_at", "database", "health", "system", "events", "feed", "portfolio",
                           "execution", "sections", "alerts"}
    assert status["health"]["ok"] is True and status["health"]["status"] == 200
    assert status["health"]["checks"]["nodes"] == dict.fromkeys(rows.NODES, "running")
    assert status["generated_at"] == NOW


def test_health_names_each_problem(db: psycopg.Connection, clock: FakeClock,
                                   system_lock: Callable[[], None]) -> None:
    rows.running_system(db)
    rows.offset(db, REPLAY, "KRW-BTC", 0, stored=1)
    verdict = build_health(db, clock, LIMITS)
    assert (verdict["status"], verdict["reasons"]) == (
        503, ["root stopped: no root holds the system lock: the system is not running"])

    system_lock()
    assert build_health(db, clock, LIMITS)["status"] == 200

    rows.node(db, "root", pid=100, started=61, heartbeat=6)
    assert build_health(db, clock, LIMITS)["reason"].startswith("root unresponsive: ")
    rows.node(db, "root", pid=100, started=61)

    rows.event(db, at=1, supervisor="root", kind="restarting", child="market", reason="error(exit code 3)")
    assert build_health(db, clock, LIMITS)["reason"] == "node market down: restarting after error(exit code 3)"
    rows.event(db, at=0.5, supervisor="root", kind="started", child="market", incarnation=2)
    assert build_health(db, clock, LIMITS)["status"] == 200

    for a in rows.ACTORS["ops"]:
        rows.actor(db, "ops", a, reported=7)
    assert build_health(db, clock, LIMITS)["reasons"] == [
        "node ops unresponsive: alive per the root, but its actors last reported 7.0 s ago"]
    rows.actor(db, "ops", "notifier")

    rows.node(db, "execution", pid=201, heartbeat=6)  # a row the root stopped refreshing
    assert build_health(db, clock, LIMITS)["reasons"] == [
        "node execution unknown: the root has not updated this node's row for 6.0 s"]
    rows.node(db, "execution", pid=201)

    rows.offset(db, REPLAY, "KRW-BTC", 0, stored=31)
    assert build_health(db, clock, LIMITS)["reasons"] == ["feed stale: no bar stored for 31.0 s"]
    rows.actor(db, "market", "feed", counters={"trades": 480, "finished": True})
    verdict = build_health(db, clock, LIMITS)
    assert verdict["status"] == 200
    assert verdict["reason"] == ("healthy; the replay has reached the end of the recording: "
                                 "no new bars are expected")
    assert verdict["checks"]["feed"]["state"] == "finished"

    db.execute("DELETE FROM runtime_nodes WHERE node <> 'root'")
    db.execute("DELETE FROM runtime_actors")
    assert build_health(db, clock, LIMITS)["reasons"] == ["no node is registered yet",
                                                         "feed stale: no bar stored for 31.0 s"]
