"""``ctl status``'s execution lines, against a database holding what the actors would have written."""

from __future__ import annotations

import argparse
import io
import signal
from collections.abc import Iterator

import orjson
import psycopg
import pytest

from config import Settings, load_settings
from persistence import control, runtime
from tools import ctl
from supervisor.cli import build_parser


@pytest.fixture
def running(db_url: str) -> Iterator[Settings]:
    """Settings for the test's database, on which a (pretend) root holds the system lock."""
    with psycopg.connect(db_url, autocommit=True) as root:
        assert runtime.try_lock_system(root)
        yield load_settings(env={"DATABASE_URL": db_url}, env_file=None)


def status(settings: Settings) -> str:
    out = io.StringIO()
    assert ctl.status(settings, out) == ctl.EXIT_OK, out.getvalue()
    return out.getvalue()


def execution_counters(db: psycopg.Connection, counters: dict[str, object]) -> None:
    db.execute("INSERT INTO runtime_actors (node, actor, state, counters) VALUES ('execution', 'execution',"
               " 'running', %s::jsonb)", (orjson.dumps(counters).decode(),))


def test_nothing_reported_yet_shows_unknown_and_na(running: Settings) -> None:
    text = status(running)
    assert "execution: requested shadow (TRADE_MODE); effective unknown" in text
    assert "exchange breakers: n/a" in text
    assert "reconciliation: none yet" in text
    assert "entries: not halted by reconciliation" in text
    assert "live positions: 0" in text


def test_requested_effective_breakers_reconciliation_halt_and_positions(running: Settings,
                                                                        db: psycopg.Connection) -> None:
    control.set_flag(db, "mode", "live", "cli:op@host")
    halt = {"at": "2025-01-01T00:00:00Z", "report": 7, "why": "KRW differs"}
    control.set_flag(db, "reconcile_halt", halt, "account")
    execution_counters(db, {"mode": "shadow", "mode_reasons": ["KEYS_MISSING", "LIVE_DISABLED"],
                            "breakers": {"orders": "open", "exchange": "closed"}})
    db.execute("INSERT INTO reconciliation_reports (trigger, ok, differences, unknown_orders, halted) VALUES"
               " ('periodic', true, '[]', '[]', false),"
               " ('command', false, %s::jsonb, '[{\"uuid\": \"x\"}]', true)",
               (orjson.dumps([{"currency": "KRW", "expected": "1000", "actual": "900"}]).decode(),))
    db.execute("INSERT INTO live_positions (market, volume, locked, avg_buy_price) VALUES"
               " ('KRW-BTC', 0.001, 0, 90000000), ('KRW-ETH', 0, 0.5, 3000000), ('KRW-XRP', 0, 0, 0)")
    text = status(running)
    assert ("execution: requested live (set by ctl/Telegram); effective shadow, downgraded: KEYS_MISSING, "
            "LIVE_DISABLED") in text
    assert "exchange breakers: exchange closed, orders open" in text
    line = next(x for x in text.splitlines() if x.startswith("reconciliation #"))
    assert "(command)" in line and "DIFFERENCES" in line
    assert "1 difference: actual=900 currency=KRW expected=1000" in line  # jsonb's key order
    assert "1 open exchange order we do not know" in line
    assert "entries: HALTED by report #7: KRW differs" in text
    assert "live positions: 2" in text


def test_an_effective_mode_without_downgrade(running: Settings, db: psycopg.Connection) -> None:
    execution_counters(db, {"mode": "test", "mode_reasons": [], "breakers": {}})
    text = status(running)
    assert "effective test (every guard agrees)" in text and "exchange breakers: n/a" in text


# --- the command line: --timeout (security review, issue 15, finding 7) ----------------------------


@pytest.mark.parametrize("text", ["-5", "0", "-0.0", "nan", "NaN", "inf", "1e400", "3600.5", "soon", ""])
def test_timeout_must_be_a_positive_finite_number_of_seconds(text: str) -> None:
    with pytest.raises(argparse.ArgumentTypeError, match=r"^--timeout must be"):
        ctl.timeout_seconds(text)


@pytest.mark.parametrize(("text", "seconds"), [("15", 15.0), ("0.5", 0.5), ("3600", 3600.0)])
def test_good_timeouts_parse(text: str, seconds: float) -> None:
    assert ctl.timeout_seconds(text) == seconds


def test_a_bad_timeout_is_a_usage_error_naming_it(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exited:
        build_parser().parse_args(["ctl", "killswitch", "off", "--timeout", "nan"])
    assert exited.value.code == 2
    assert "argument --timeout: --timeout must be seconds > 0 and <= 3600" in capsys.readouterr().err


def test_an_interrupt_after_the_root_acted_reports_what_it_did(db: psycopg.Connection) -> None:
    command_id = control.issue(db, issuer="cli:op@host", command="pause", timeout_s=15.0)
    with db.transaction(), db.cursor() as cur:  # the root handled it just before the Ctrl-C
        assert control.take_pending(cur) is not None
        control.set_flag(cur, "paused", True, "cli:op@host")
        control.finish(cur, command_id, ok=True, result="new entries paused", handled_by="root")
    out = io.StringIO()
    assert ctl._withdraw(db, command_id, "pause", signal.SIGINT, out) == 130
    assert out.getvalue() == (f"ctl: SIGINT: too late to withdraw command #{command_id} (pause): the system had"
                              " already handled it — done: new entries paused\n")
    assert (row := control.get(db, command_id)) is not None and row.status == "done"


def test_pending_exits_and_the_needs_review_queue_are_shown(running: Settings, db: psycopg.Connection) -> None:
    text = status(running)
    assert "exits pending: none" in text and "needs review: none" in text
    trade = db.execute("INSERT INTO paper_trades (market, side, price, volume, amount_krw, fee_krw, reason, bar_ts,"
                       " source) VALUES ('KRW-BTC', 'sell', 100, 1, 100, 0, 't', now(), 't') RETURNING id").fetchone()[0]
    db.execute("INSERT INTO pending_exits (paper_trade_id, market, mode, reason, tries, next_at)"
               " VALUES (%s, 'KRW-BTC', 'live', 'blocked (BREAKER_OPEN)', 3, now())", (trade,))
    attempt = db.execute(
        "INSERT INTO order_attempts (paper_trade_id, attempt, identifier, mode, status, market, side, request,"
        " review_since) VALUES (%s, 1, 'sbx-9-1-abcdefgh', 'live', 'unknown', 'KRW-BTC', 'ask', '{}', now())"
        " RETURNING id", (trade,)).fetchone()[0]
    text = status(running)
    assert "exits pending: 1 (retried with backoff until they execute)" in text
    assert f"paper trade {trade}: KRW-BTC live exit since " in text and "3 tries: blocked (BREAKER_OPEN)" in text
    assert f"ctl abandon-exit {trade}" in text
    assert "needs review: 1" in text and f"attempt {attempt}: sbx-9-1-abcdefgh (KRW-BTC ask)" in text
    assert f"ctl review {attempt} placed|absent" in text


@pytest.mark.parametrize("argv", [["ctl", "review", "x", "placed"], ["ctl", "review", "0", "placed"],
                                  ["ctl", "review", "5", "maybe"], ["ctl", "abandon-exit", "-3"]])
def test_review_and_abandon_exit_arguments_are_checked(argv: list[str]) -> None:
    with pytest.raises(SystemExit) as exc:
        build_parser().parse_args(argv)
    assert exc.value.code == 2
