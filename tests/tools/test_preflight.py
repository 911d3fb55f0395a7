"""``python -m supervisor preflight``: every check against the simulated Upbit, the fake Telegram and a
real PostgreSQL on loopback; one test per failure class; the read-only guard; no secret in any output.
"""

from __future__ import annotations

import io
import json
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from urllib.parse import quote, urlsplit, urlunsplit

import psycopg
import pytest
from config.secret import Secret
from exchange.errors import ErrorKind
from exchange.rest import UpbitClient
from persistence.db import with_database
from persistence.migrate import available
from supervisor import cli
from model.clock import FakeClock
from tools.preflight.guard import Answer, ReadOnlyViolation, read_only_upbit
from tools.preflight.report import CheckResult, Redactor, Status
from tools.preflight.remote import offset_bounds
from tools.preflight.runner import CHECK_ORDER, Collaborators, run
from tests.e2e.harness import base_env
from tests.fakes.scripted_upbit import Answer as Scripted
from tests.fakes.scripted_upbit import ScriptedUpbit
from tests.fakes.telegram_server import FakeTelegram
from upbit_sim import SimConfig, SimServer

ACCESS = "PFLT-ACCESS-KEY-0123456789abcdef"
SECRET = "PFLT-SECRET-KEY-0123456789abcdef0123456789"
TOKEN = "123456789:PFLT-bot-token-abcdefghijklmnop"
DB_PASSWORD = "pflt-db-Passw0rd-42"
CHAT = 4242
START_KRW = Decimal(1_000_000)


# --- fixtures ---------------------------------------------------------------------------------


@pytest.fixture
def sim() -> Iterator[SimServer]:
    server = SimServer(SimConfig(keys={ACCESS: SECRET}, balances={ACCESS: {"KRW": START_KRW}})).start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def telegram() -> Iterator[FakeTelegram]:
    with FakeTelegram(token=TOKEN, chats={CHAT}) as fake:
        yield fake


@pytest.fixture
def live_db(db_url: str) -> str:
    """The test's migrated database, its URL carrying a password (the server trusts loopback)."""
    parts = urlsplit(db_url)
    if parts.password:
        return db_url
    user, _, host = parts.netloc.rpartition("@")
    return urlunsplit(parts._replace(netloc=f"{user or 'postgres'}:{quote(DB_PASSWORD)}@{host}"))


@pytest.fixture
def empty_db(pg_server_url: str) -> Iterator[str]:
    """A fresh database with no migration applied."""
    name = f"preflight_empty_{time.monotonic_ns()}"
    with psycopg.connect(pg_server_url, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    yield with_database(pg_server_url, name)
    with psycopg.connect(pg_server_url, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture
def closed_port() -> Iterator[int]:
    """A loopback port bound but not listening: connecting is refused at once, deterministically."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        yield sock.getsockname()[1]


# --- running it -------------------------------------------------------------------------------


@dataclass
class Outcome:
    code: int
    out: str
    err: str
    evidence_path: Path
    evidence: dict

    def check(self, name: str) -> dict:
        return next(c for c in self.evidence["checks"] if c["name"] == name)

    def status(self, name: str) -> str:
        return self.check(name)["status"]

    def failed(self) -> set[str]:
        return {c["name"] for c in self.evidence["checks"] if c["status"] == "fail"}


def settings_for(sim_url: str, tg_url: str, db: str, **changes: str | None) -> dict[str, str]:
    values: dict[str, str | None] = {
        "UPBIT_ACCESS_KEY": ACCESS, "UPBIT_SECRET_KEY": SECRET, "UPBIT_REST_URL": sim_url,
        "TELEGRAM_BOT_TOKEN": TOKEN, "TELEGRAM_CHAT_ID": str(CHAT), "TELEGRAM_API_URL": tg_url,
        "DATABASE_URL": db,
    }
    values.update(changes)
    return {k: v for k, v in values.items() if v is not None}


def write_env(path: Path, values: dict[str, str]) -> Path:
    path.write_text("".join(f"{k}={v}\n" for k, v in values.items()))
    return path


def preflight(tmp_path: Path, values: dict[str, str], *, wall: Callable[[], float] = time.time,
              env_file: Path | None = None) -> Outcome:
    """Run the preflight in-process with ``values`` in an env file and an empty process environment."""
    env_file = env_file or write_env(tmp_path / "live.env", values)
    evidence = tmp_path / "evidence.json"
    out, err = io.StringIO(), io.StringIO()
    slept: list[float] = []
    deps = Collaborators(env={"EMBEDDED_PG_DIR": str(tmp_path / "pgdata")}, wall=wall, sleep=slept.append)
    code = run(env_file=env_file, evidence=evidence, out=out, err=err, deps=deps)
    document = json.loads(evidence.read_text()) if evidence.exists() else {}
    return Outcome(code, out.getvalue(), err.getvalue(), evidence, document)


def assert_no_secret(*texts: str) -> None:
    for text in texts:
        for secret in (ACCESS, SECRET, TOKEN, DB_PASSWORD, quote(DB_PASSWORD)):
            assert secret not in text


def assert_only_failed(outcome: Outcome, *names: str) -> None:
    assert outcome.code == 1, outcome.out
    assert outcome.failed() == set(names), outcome.out
    assert_no_secret(outcome.out, outcome.err, outcome.evidence_path.read_text())


# --- everything passes ------------------------------------------------------------------------


def test_all_checks_pass_and_no_secret_reaches_any_output(tmp_path: Path, sim: SimServer, telegram: FakeTelegram,
                                                          live_db: str) -> None:
    outcome = preflight(tmp_path, settings_for(sim.rest_url, telegram.url, live_db))

    assert outcome.code == 0, outcome.out
    assert [c["name"] for c in outcome.evidence["checks"]] == list(CHECK_ORDER)
    assert {c["status"] for c in outcome.evidence["checks"]} == {"pass"}, outcome.out
    assert outcome.evidence["result"] == "pass" and outcome.evidence["exit_code"] == 0
    assert all(c["duration_ms"] >= 0 for c in outcome.evidence["checks"])
    assert_no_secret(outcome.out, outcome.err, outcome.evidence_path.read_text())
    # masked, not merely absent: the masks are there
    assert f"{ACCESS[:4]}…{ACCESS[-4:]}" in outcome.out
    assert ":****@" in outcome.evidence["settings"]["DATABASE_URL"]
    assert outcome.check("database")["data"]["applied"] == [m.version for m in available()]
    assert outcome.check("rate_limit")["data"]["remaining"] == {"default": 28}
    assert outcome.check("telegram")["detail"].startswith(f"bot @fake_bot can reach chat {CHAT}")
    assert telegram.calls == ["getMe", "getChat"] and telegram.messages == []
    # read-only: only GETs reached Upbit, and the account is untouched
    assert [(a["method"], a["path"]) for a in outcome.evidence["upbit_answers"]] == [
        ("GET", "/v1/accounts"), ("GET", "/v1/orders/chance")]
    holding = sim.holding(ACCESS, "KRW")
    assert (holding.balance, holding.locked) == (START_KRW, 0)
    assert "result: PASS" in outcome.out and str(outcome.evidence_path) in outcome.out


def test_the_command_line_writes_default_evidence_and_leaks_nothing(tmp_path: Path, sim: SimServer,
                                                                    telegram: FakeTelegram, live_db: str) -> None:
    env_file = write_env(tmp_path / "prod.env", settings_for(sim.rest_url, telegram.url, live_db))
    env = base_env(None, tmp_path, LOG_LEVEL="DEBUG")  # urllib3 logs every URL, the bot token in it
    done = subprocess.run([sys.executable, "-m", "supervisor", "preflight", "--env-file", str(env_file)],
                          cwd=tmp_path, env=env, capture_output=True, text=True, timeout=120, check=False)

    assert done.returncode == 0, done.stdout + done.stderr
    written = sorted((tmp_path / "var").glob("preflight-*.json"))
    assert len(written) == 1
    assert f"evidence: {written[0].relative_to(tmp_path)}" in done.stdout
    evidence = json.loads(written[0].read_text())
    assert evidence["result"] == "pass" and len(evidence["checks"]) == len(CHECK_ORDER)
    assert_no_secret(done.stdout, done.stderr, written[0].read_text())
    assert written[0].stat().st_mode & 0o077 == 0  # evidence readable by its owner only


def test_a_secret_turning_up_in_a_check_is_masked_and_reported(tmp_path: Path, sim: SimServer,
                                                                telegram: FakeTelegram, db_url: str) -> None:
    # "migrations" as the database password: the database check's own text says "migrations".
    parts = urlsplit(db_url)
    if parts.password:
        pytest.skip("needs a test server that does not check passwords (the embedded one)")
    user, _, host = parts.netloc.rpartition("@")
    weak = urlunsplit(parts._replace(netloc=f"{(user or 'postgres').split(':')[0]}:migrations@{host}"))
    outcome = preflight(tmp_path, settings_for(sim.rest_url, telegram.url, weak))

    assert outcome.code == 0, outcome.out
    secrets = outcome.check("secrets")
    assert secrets["status"] == "warn" and secrets["data"]["caught_in"] == ["database"]
    assert "migrations" not in outcome.check("database")["detail"]
    assert "****" in outcome.check("database")["detail"]
    assert "migrations" not in outcome.evidence_path.read_text()


def test_bad_usage_exits_2(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as info:
        cli.main(["preflight", "--no-such-flag"])
    assert info.value.code == 2
    assert "unrecognized arguments: --no-such-flag" in capsys.readouterr().err
    assert cli.main(["preflight", "--env-file", str(tmp_path / "missing.env")]) == 2
    assert "no such file" in capsys.readouterr().err
    assert not (tmp_path / "var").exists()


def test_warnings_still_exit_0_telegram_unset_is_a_warning(tmp_path: Path, sim: SimServer, live_db: str) -> None:
    outcome = preflight(tmp_path, settings_for(sim.rest_url, "", live_db, TELEGRAM_BOT_TOKEN=None,
                                               TELEGRAM_CHAT_ID=None, TELEGRAM_API_URL=None))
    assert outcome.code == 0, outcome.out
    assert outcome.check("telegram")["status"] == "warn"
    assert outcome.check("telegram")["classification"] == "config"
    assert "fix: set TELEGRAM_BOT_TOKEN" in outcome.out


# --- configuration and credentials --------------------------------------------------------------


def test_bad_configuration_names_every_bad_setting(tmp_path: Path, telegram: FakeTelegram, live_db: str) -> None:
    with ScriptedUpbit(secret=SECRET) as upbit:
        values = settings_for(upbit.url, telegram.url, live_db, BOT_ID="Not Valid!", REPLAY_SPEED="fast",
                              UPBIT_ACCESS_KEY="your_access_key")
        outcome = preflight(tmp_path, values)
        assert upbit.received == []  # nothing was contacted

    assert outcome.code == 1
    config = outcome.check("config")
    assert config["status"] == "fail" and config["classification"] == "config"
    assert set(config["data"]["bad_settings"]) == {"BOT_ID", "REPLAY_SPEED", "UPBIT_ACCESS_KEY"}
    credentials = outcome.check("credentials")
    assert credentials["status"] == "fail" and "placeholder" in credentials["detail"]
    for name in ("database", "upbit_accounts", "clock_skew", "rate_limit", "telegram"):
        assert outcome.check(name)["classification"] == "not_run"
    assert outcome.status("env_file_git") == "pass"  # still checked
    assert telegram.calls == []
    assert_no_secret(outcome.out, outcome.err, outcome.evidence_path.read_text())


def test_missing_upbit_keys_fail_going_live(tmp_path: Path, sim: SimServer, telegram: FakeTelegram,
                                            live_db: str) -> None:
    outcome = preflight(tmp_path, settings_for(sim.rest_url, telegram.url, live_db, UPBIT_ACCESS_KEY=None,
                                               UPBIT_SECRET_KEY=None))
    assert_only_failed(outcome, "credentials", "upbit_accounts", "upbit_order_chance", "clock_skew", "rate_limit")
    assert outcome.check("credentials")["classification"] == "config"
    assert "UPBIT_ACCESS_KEY" in outcome.check("credentials")["fix"]


# --- Upbit failure classes --------------------------------------------------------------------


@pytest.mark.parametrize("case", ["unknown", "expired"])
def test_invalid_key(case: str, tmp_path: Path, telegram: FakeTelegram, live_db: str) -> None:
    other = "PFLT-OTHER-KEY-0000000000000000"
    keys = {ACCESS: SECRET} if case == "expired" else {other: SECRET}
    expired = frozenset({ACCESS}) if case == "expired" else frozenset()
    with SimServer(SimConfig(keys=keys, expired_keys=expired)) as sim:
        outcome = preflight(tmp_path, settings_for(sim.rest_url, telegram.url, live_db))

    assert_only_failed(outcome, "upbit_accounts", "upbit_order_chance")
    accounts = outcome.check("upbit_accounts")
    assert accounts["classification"] == "invalid_key"
    name = "expired_access_key" if case == "expired" else "invalid_access_key"
    assert accounts["data"]["error_name"] == name and accounts["data"]["status"] == 401
    assert ("issue a new" in accounts["fix"]) and "UPBIT_ACCESS_KEY" in accounts["fix"]
    assert outcome.status("clock_skew") == "pass"  # measured from the 401 answers' Date header


def scripted_settings(upbit: ScriptedUpbit, telegram: FakeTelegram, db: str) -> dict[str, str]:
    return settings_for(upbit.url, telegram.url, db)


def test_ip_restriction(tmp_path: Path, telegram: FakeTelegram, live_db: str) -> None:
    refused = Scripted(401, {"error": {"name": "no_authorization_i_p", "message": "인증된 IP가 아닙니다."}})
    with ScriptedUpbit(secret=SECRET) as upbit:
        upbit.default("GET /v1/accounts", refused)
        upbit.default("GET /v1/orders/chance", refused)
        outcome = preflight(tmp_path, scripted_settings(upbit, telegram, live_db))
        assert upbit.requests_to("GET /v1/accounts")[0].claims["access_key"] == ACCESS  # signed with our key

    assert_only_failed(outcome, "upbit_accounts", "upbit_order_chance")
    assert outcome.check("upbit_accounts")["classification"] == "ip_not_allowed"
    assert "public IP" in outcome.check("upbit_accounts")["fix"]


def test_permission(tmp_path: Path, telegram: FakeTelegram, live_db: str) -> None:
    with ScriptedUpbit(secret=SECRET) as upbit:
        upbit.default("GET /v1/accounts", Scripted(200, [{"currency": "KRW", "balance": "1000", "locked": "0",
                                                          "avg_buy_price": "0", "unit_currency": "KRW"}]))
        upbit.default("GET /v1/orders/chance",
                      Scripted(401, {"error": {"name": "out_of_scope", "message": "권한이 부족합니다."}}))
        outcome = preflight(tmp_path, scripted_settings(upbit, telegram, live_db))

    assert_only_failed(outcome, "upbit_order_chance")
    chance = outcome.check("upbit_order_chance")
    assert chance["classification"] == "permission" and "permission" in chance["fix"]


def test_clock_skew(tmp_path: Path, sim: SimServer, telegram: FakeTelegram, live_db: str) -> None:
    outcome = preflight(tmp_path, settings_for(sim.rest_url, telegram.url, live_db), wall=lambda: time.time() + 5.0)

    assert_only_failed(outcome, "clock_skew")
    skew = outcome.check("clock_skew")
    assert skew["classification"] == "clock_skew" and "NTP" in skew["fix"]
    assert "ahead of" in skew["detail"]
    assert skew["data"]["offset_low_s"] > 1.0


def test_rate_limited_answer_stops_sending(tmp_path: Path, sim: SimServer, telegram: FakeTelegram,
                                           live_db: str) -> None:
    sim.faults.fail_next(1, 429, path="/v1/accounts")
    outcome = preflight(tmp_path, settings_for(sim.rest_url, telegram.url, live_db))

    assert_only_failed(outcome, "upbit_accounts", "upbit_order_chance", "rate_limit")
    assert outcome.check("upbit_accounts")["classification"] == "rate_limited"
    assert outcome.check("rate_limit")["classification"] == "rate_limited"
    assert outcome.check("upbit_order_chance")["classification"] == "not_run"
    assert [a["path"] for a in outcome.evidence["upbit_answers"]] == ["/v1/accounts"]  # nothing sent after a 429


@pytest.mark.parametrize(("budget", "status", "code"), [(2, "fail", 1), (5, "warn", 0)])
def test_rate_limit_headroom(budget: int, status: str, code: int, tmp_path: Path, telegram: FakeTelegram,
                             live_db: str) -> None:
    # A frozen simulator clock keeps both requests in one rate-limit window.
    config = SimConfig(keys={ACCESS: SECRET}, limits={"default": budget}, clock=FakeClock())
    with SimServer(config) as sim:
        outcome = preflight(tmp_path, settings_for(sim.rest_url, telegram.url, live_db))

    assert outcome.code == code, outcome.out
    check = outcome.check("rate_limit")
    assert check["status"] == status and check["classification"] == "rate_limited"
    assert check["data"]["remaining"] == {"default": budget - 2}
    assert outcome.status("upbit_accounts") == outcome.status("upbit_order_chance") == "pass"


def test_network(tmp_path: Path, telegram: FakeTelegram, live_db: str, closed_port: int) -> None:
    outcome = preflight(tmp_path, settings_for(f"http://127.0.0.1:{closed_port}", telegram.url, live_db))

    assert_only_failed(outcome, "upbit_accounts", "upbit_order_chance", "clock_skew", "rate_limit")
    for name in ("upbit_accounts", "upbit_order_chance", "clock_skew", "rate_limit"):
        assert outcome.check(name)["classification"] == "network", name
    assert "UPBIT_REST_URL" in outcome.check("upbit_accounts")["fix"]


# --- Telegram ---------------------------------------------------------------------------------


@pytest.mark.parametrize(("case", "kind", "fix_names"), [
    ("unreachable", "network", "TELEGRAM_API_URL"),
    ("bad token", "invalid_key", "TELEGRAM_BOT_TOKEN"),
    ("unknown chat", "permission", "TELEGRAM_CHAT_ID"),
])
def test_telegram_failures(case: str, kind: str, fix_names: str, tmp_path: Path, sim: SimServer,
                           telegram: FakeTelegram, live_db: str, closed_port: int) -> None:
    changes = {"unreachable": {"TELEGRAM_API_URL": f"http://127.0.0.1:{closed_port}"},
               "bad token": {"TELEGRAM_BOT_TOKEN": "987654321:PFLT-revoked-token-zyxwvut"},
               "unknown chat": {"TELEGRAM_CHAT_ID": "-100999"}}[case]
    outcome = preflight(tmp_path, settings_for(sim.rest_url, telegram.url, live_db, **changes))

    assert_only_failed(outcome, "telegram")
    check = outcome.check("telegram")
    assert check["classification"] == kind and fix_names in check["fix"]
    assert "987654321:PFLT-revoked-token-zyxwvut" not in outcome.out + outcome.evidence_path.read_text()
    assert telegram.messages == []


# --- database ---------------------------------------------------------------------------------


def test_database_not_migrated(tmp_path: Path, sim: SimServer, telegram: FakeTelegram, empty_db: str) -> None:
    outcome = preflight(tmp_path, settings_for(sim.rest_url, telegram.url, empty_db))

    assert_only_failed(outcome, "database")
    check = outcome.check("database")
    assert check["classification"] == "not_migrated"
    assert check["data"]["missing"] == [f"{m.version:04d}_{m.name}" for m in available()]
    with psycopg.connect(empty_db) as conn:  # read-only: the preflight created nothing
        assert conn.execute("SELECT to_regclass('schema_migrations')").fetchone() == (None,)


@pytest.mark.parametrize("case", ["refused", "embedded not running"])
def test_database_unreachable_and_never_started(case: str, tmp_path: Path, sim: SimServer, telegram: FakeTelegram,
                                                closed_port: int) -> None:
    db = f"postgresql://u:{DB_PASSWORD}@127.0.0.1:{closed_port}/x" if case == "refused" else None
    outcome = preflight(tmp_path, settings_for(sim.rest_url, telegram.url, db or "", DATABASE_URL=db))

    assert_only_failed(outcome, "database")
    assert outcome.check("database")["classification"] == "database_unreachable"
    assert not (tmp_path / "pgdata").exists()  # the embedded server is never started


# --- git --------------------------------------------------------------------------------------


def git(repo: Path, *args: str) -> None:
    subprocess.run(["git", *args], cwd=repo, check=True, capture_output=True)


@pytest.mark.parametrize(("case", "status", "words"), [
    ("tracked", "fail", "is tracked by git"),
    ("ignored", "pass", "is ignored by git"),
    ("untracked", "warn", "not ignored"),
    ("no checkout", "pass", "is not in a git checkout"),
])
def test_env_file_and_git(case: str, status: str, words: str, tmp_path: Path, sim: SimServer,
                          telegram: FakeTelegram, live_db: str) -> None:
    repo = tmp_path / "deploy"
    repo.mkdir()
    env_file = write_env(repo / "live.env", settings_for(sim.rest_url, telegram.url, live_db))
    if case != "no checkout":
        git(repo, "init", "-q")
    if case == "tracked":
        git(repo, "add", "live.env")
    if case == "ignored":
        (repo / ".gitignore").write_text("*.env\n")
    outcome = preflight(tmp_path, {}, env_file=env_file)

    check = outcome.check("env_file_git")
    assert check["status"] == status and words in check["detail"], outcome.out
    assert outcome.code == (1 if status == "fail" else 0)
    if case == "tracked":
        assert check["classification"] == "secret_exposed"
        assert "git rm --cached live.env" in check["fix"] and "rotate" in check["fix"]
        assert check["data"]["holds"] == ["DATABASE_URL", "TELEGRAM_BOT_TOKEN", "UPBIT_ACCESS_KEY",
                                          "UPBIT_SECRET_KEY"]
    assert_no_secret(outcome.out, outcome.evidence_path.read_text())


# --- the read-only guard ----------------------------------------------------------------------


def _attempt_writes(client: UpbitClient) -> None:
    attempts = [
        lambda: client.create_order(market="KRW-BTC", side="bid", ord_type="price", price=Decimal(10000),
                                    identifier="preflight-must-not-send"),
        lambda: client.test_order(market="KRW-BTC", side="bid", ord_type="price", price=Decimal(10000)),
        lambda: client.cancel_order(uuid="00000000-0000-0000-0000-000000000000"),
    ]
    for attempt in attempts:
        with pytest.raises(ReadOnlyViolation):
            attempt()


def test_read_only_guard_refuses_non_get_before_anything_is_sent() -> None:
    with ScriptedUpbit(secret=SECRET) as upbit:
        client, session = read_only_upbit(upbit.url, access_key=ACCESS, secret_key=SECRET)
        try:
            _attempt_writes(client)
        finally:
            session.close()
        assert upbit.received == []  # not a byte reached the server
    assert session.refused == ["POST /v1/orders", "POST /v1/orders/test", "DELETE /v1/order"]


def test_read_only_guard_against_the_sim_places_no_order(sim: SimServer) -> None:
    client, session = read_only_upbit(sim.rest_url, access_key=ACCESS, secret_key=SECRET)
    try:
        _attempt_writes(client)
        assert client.accounts()  # GET still works through the same guard
    finally:
        session.close()
    with UpbitClient(sim.rest_url, access_key=ACCESS, secret_key=SECRET) as plain:
        assert plain.find_order("preflight-must-not-send") is None
        assert plain.open_orders(market="KRW-BTC") == ()
    holding = sim.holding(ACCESS, "KRW")
    assert (holding.balance, holding.locked) == (START_KRW, 0)
    with pytest.raises(ReadOnlyViolation):
        session.post(f"{sim.rest_url}/v1/orders", json={})


# --- the pure parts ---------------------------------------------------------------------------


def _answer(sent: float, received: float, date: str) -> Answer:
    return Answer(method="GET", path="/v1/accounts", status=200, date=date, remaining_req=None, sent_at=sent,
                  received_at=received)


def test_offset_bounds_from_date_headers() -> None:
    date = "Mon, 01 Jan 2024 00:00:10 GMT"  # 1704067210
    assert offset_bounds([_answer(1704067210.4, 1704067210.5, date)]) == pytest.approx((-0.6, 0.5))
    # a second answer in the next second narrows the interval by intersection
    both = offset_bounds([_answer(1704067210.4, 1704067210.5, date),
                          _answer(1704067211.2, 1704067211.3, "Mon, 01 Jan 2024 00:00:11 GMT")])
    assert both == pytest.approx((-0.6, 0.3))
    assert offset_bounds([_answer(1704067215.0, 1704067215.1, date)]) == pytest.approx((4.0, 5.1))
    assert offset_bounds([_answer(1.0, 2.0, "not a date")]) is None


def test_redactor_masks_what_a_check_let_slip() -> None:
    redactor = Redactor([Secret(ACCESS), Secret(TOKEN)])
    leaky = CheckResult.failed("x", "x", ErrorKind.UNKNOWN, f"echoed {ACCESS}", f"token {TOKEN}", raw=[TOKEN])
    clean = redactor.check(leaky)
    assert_no_secret(clean.detail, clean.fix or "", json.dumps(clean.data))
    assert redactor.caught == 3 and clean.status is Status.FAIL

