"""``python -m supervisor smoke``: paper trades and attempts written straight into a fresh database,
the command run in-process through the CLI's ``main`` with the settings pointing at it."""

from __future__ import annotations

import io
import json
import socket
from collections.abc import Iterator
from pathlib import Path

import orjson
import psycopg
import pytest

from config.settings import SETTINGS_SPEC
from model.reasons import Reason
from supervisor import cli
from tools.smoke import HINTS


@pytest.fixture(autouse=True)
def _isolated_settings(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """No setting from the developer's environment or ./.env reaches the command."""
    for spec in SETTINGS_SPEC:
        monkeypatch.delenv(spec.name, raising=False)
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("EMBEDDED_PG_DIR", str(tmp_path / "pgdata"))  # never running: smoke must not start it


@pytest.fixture
def closed_port() -> Iterator[int]:
    """A loopback port bound but not listening: connecting is refused at once."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        yield sock.getsockname()[1]


def smoke(monkeypatch: pytest.MonkeyPatch, db_url: str | None, *args: str, **env: str) -> tuple[int, str]:
    if db_url is not None:
        monkeypatch.setenv("DATABASE_URL", db_url)
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    out = io.StringIO()
    code = cli.main(["smoke", *args], out=out)
    return code, out.getvalue()


def paper_trade(db: psycopg.Connection, *, age_s: float = 1, side: str = "buy") -> int:
    row = db.execute(
        "INSERT INTO paper_trades (market, side, price, volume, amount_krw, fee_krw, reason, bar_ts, source,"
        " created_at) VALUES ('KRW-BTC', %s, 100000000, 0.001, 100000, 50, 'test', now(), 'test',"
        " now() - make_interval(secs => %s)) RETURNING id", (side, float(age_s))).fetchone()
    assert row is not None
    return int(row[0])


def attempt(db: psycopg.Connection, trade_id: int, *, mode: str = "shadow", status: str = "logged",
            reasons: tuple[str, ...] = ()) -> None:
    db.execute(
        "INSERT INTO order_attempts (paper_trade_id, attempt, identifier, mode, status, market, side, request,"
        " blocked_reasons) VALUES (%s, 1, %s, %s, %s, 'KRW-BTC', 'bid', '{}'::jsonb, %s::jsonb)",
        (trade_id, f"sbx-{trade_id}-1", mode, status, orjson.dumps(list(reasons)).decode()))


def test_every_paper_trade_has_its_attempt_exits_0_with_the_table(monkeypatch: pytest.MonkeyPatch, db_url: str,
                                                                   db: psycopg.Connection) -> None:
    for status in ("logged", "logged", "test_ok"):
        attempt(db, paper_trade(db), mode="test" if status == "test_ok" else "shadow", status=status)
    old = paper_trade(db, age_s=7200)  # outside the window, and without an attempt: not counted
    code, text = smoke(monkeypatch, db_url, "--window", "600")
    assert code == 0, text
    assert "paper trades: 3" in text
    assert any(line.split() == ["shadow", "logged", "2"] for line in text.splitlines())
    assert any(line.split() == ["test", "test_ok", "1"] for line in text.splitlines())
    assert "OK: every one of the 3 paper trades has its order attempt" in text
    assert str(old) not in text.split("paper trades:")[1]


def test_a_paper_trade_without_an_attempt_exits_1_and_is_listed(monkeypatch: pytest.MonkeyPatch, db_url: str,
                                                                  db: psycopg.Connection) -> None:
    attempt(db, paper_trade(db))
    missing = paper_trade(db)
    attempt(db, paper_trade(db))
    code, text = smoke(monkeypatch, db_url, "--window", "60")
    assert code == 1, text
    assert f"FAIL: 1 of 3 paper trades have no order attempt (ids {missing})" in text


def test_only_the_first_few_missing_ids_are_listed(monkeypatch: pytest.MonkeyPatch, db_url: str,
                                                    db: psycopg.Connection) -> None:
    ids = [paper_trade(db) for _ in range(7)]
    code, text = smoke(monkeypatch, db_url, "--window", "60")
    assert code == 1
    assert f"(ids {', '.join(map(str, ids[:5]))}, …)" in text and str(ids[6]) not in text.split("ids")[1]


def test_the_most_common_blocked_reason_gets_its_hint(monkeypatch: pytest.MonkeyPatch, db_url: str,
                                                      db: psycopg.Connection) -> None:
    attempt(db, paper_trade(db), status="blocked", reasons=("KILL_SWITCH", "PAUSED"))
    attempt(db, paper_trade(db), status="blocked", reasons=("PAUSED",))
    attempt(db, paper_trade(db), mode="shadow", status="logged", reasons=("KEYS_MISSING",))
    code, text = smoke(monkeypatch, db_url, "--window", "60")
    assert code == 0, text
    assert "blocked reasons: PAUSED 2, KEYS_MISSING 1, KILL_SWITCH 1" in text
    assert f"hint (PAUSED): {HINTS[Reason.PAUSED]}" in text
    assert "ctl resume" in HINTS[Reason.PAUSED]


def test_json_carries_the_same_facts(monkeypatch: pytest.MonkeyPatch, db_url: str, db: psycopg.Connection) -> None:
    attempt(db, paper_trade(db), status="blocked", reasons=("KEYS_MISSING",))
    missing = paper_trade(db)
    code, text = smoke(monkeypatch, db_url, "--window", "60", "--json")
    assert code == 1
    facts = json.loads(text)
    assert facts["ok"] is False and facts["skipped"] is False
    assert facts["paper_trades"] == 2 and facts["window_s"] == 60
    assert facts["attempts"] == [{"mode": "shadow", "status": "blocked", "count": 1}]
    assert facts["without_attempt"] == 1 and facts["without_attempt_ids"] == [missing]
    assert facts["blocked_reasons"] == [{"reason": "KEYS_MISSING", "count": 1}]
    assert facts["hint"] == {"reason": "KEYS_MISSING", "text": HINTS[Reason.KEYS_MISSING]}
    assert "UPBIT_ACCESS_KEY" in facts["hint"]["text"] and "preflight" in facts["hint"]["text"]


def test_an_empty_window_has_nothing_to_check_and_exits_0(monkeypatch: pytest.MonkeyPatch, db_url: str,
                                                           db: psycopg.Connection) -> None:
    paper_trade(db, age_s=3600)  # too old for the window
    code, text = smoke(monkeypatch, db_url, "--window", "30")
    assert code == 0, text
    assert "nothing to check: no paper trades in the last 30 s" in text


@pytest.mark.parametrize("mode", ["test", "live"])
def test_test_or_live_without_keys_is_skipped(monkeypatch: pytest.MonkeyPatch, closed_port: int, mode: str) -> None:
    unreachable = f"postgresql://smoke@127.0.0.1:{closed_port}/nowhere"  # proves nothing is read
    code, text = smoke(monkeypatch, unreachable, "--window", "60", TRADE_MODE=mode)
    assert code == 0, text
    assert text.startswith(f"SKIP: TRADE_MODE={mode} cannot run without exchange keys")
    code, text = smoke(monkeypatch, unreachable, "--window", "60", "--json")
    assert code == 0 and json.loads(text)["skipped"] is True


def test_test_mode_with_keys_is_checked(monkeypatch: pytest.MonkeyPatch, db_url: str) -> None:
    code, text = smoke(monkeypatch, db_url, "--window", "60", TRADE_MODE="test",
                       UPBIT_ACCESS_KEY="SMOKE-ACCESS-0123456789abcdef", UPBIT_SECRET_KEY="SMOKE-SECRET-0123456789ab")
    assert code == 0 and "SKIP" not in text and "nothing to check" in text


@pytest.mark.parametrize("window", ["0", "-5", "abc", "nan", "inf", ""])
def test_a_bad_window_is_a_usage_error_naming_the_argument(monkeypatch: pytest.MonkeyPatch,
                                                            capsys: pytest.CaptureFixture[str], window: str) -> None:
    with pytest.raises(SystemExit) as exited:
        smoke(monkeypatch, None, "--window", window)
    assert exited.value.code == 2
    err = capsys.readouterr().err
    assert "usage:" in err and "argument --window: must be a positive number of seconds" in err


def test_the_window_is_required(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exited:
        smoke(monkeypatch, None)
    assert exited.value.code == 2 and "--window" in capsys.readouterr().err


def test_an_unreachable_database_is_a_clear_error_and_exits_1(monkeypatch: pytest.MonkeyPatch,
                                                               closed_port: int) -> None:
    code, text = smoke(monkeypatch, f"postgresql://smoke@127.0.0.1:{closed_port}/nowhere", "--window", "60")
    assert code == 1
    assert text.startswith("error: the database is not reachable:")
    monkeypatch.delenv("DATABASE_URL")
    code, text = smoke(monkeypatch, None, "--window", "60", "--json")  # embedded, not running: never started
    assert code == 1 and "is not running" in json.loads(text)["error"]
    assert not (Path.cwd() / "pgdata").exists()


def test_settings_come_from_the_env_file_given_to_the_subcommand(monkeypatch: pytest.MonkeyPatch, db_url: str,
                                                                 db: psycopg.Connection, tmp_path: Path) -> None:
    attempt(db, paper_trade(db))
    env_file = tmp_path / "smoke.env"
    env_file.write_text(f"DATABASE_URL={db_url}\n")
    code, text = smoke(monkeypatch, None, "--window", "60", "--env-file", str(env_file))
    assert code == 0 and "paper trades: 1" in text, text
    code, _text = smoke(monkeypatch, None, "--window", "60", "--env-file", str(tmp_path / "absent.env"))
    assert code == 2


def test_every_reason_has_a_hint() -> None:
    assert set(HINTS) == set(Reason)
    assert all(text.strip() and "\n" not in text for text in HINTS.values())
