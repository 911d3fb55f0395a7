"""Numeric settings are finite and sane, the chat id is a chat, and an exposed dashboard needs a token.

Each case here was accepted before (review finding 11: ``TELEGRAM_CHAT_ID=0``,
``RISK_MAX_ORDER_KRW=1e400``; finding 9: ``DASHBOARD_HOST=0.0.0.0`` with no token).
"""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from config import SETTINGS_SPEC, ConfigError, Secret, load_settings

TOKEN = "dAsh-B0ard_t0ken-Of-24chars"

SECONDS = ("STATUS_INTERVAL_S", "REPLAY_MAX_GAP_S", "EXEC_MAX_DATA_LAG_S", "EXEC_LOOKUP_WINDOW_S",
           "EXEC_FOLLOW_TIMEOUT_S", "ACCOUNT_POLL_S", "RECONCILE_INTERVAL_S", "ROOT_PERIOD_S", "NODE_PERIOD_S",
           "SHUTDOWN_TIMEOUT_S", "NODE_START_TIMEOUT_S", "PAPER_COOLDOWN_S", "RISK_REBUY_COOLDOWN_S")
KRW = ("PAPER_ORDER_KRW", "PAPER_CAPITAL_KRW", "RISK_MAX_ORDER_KRW", "RISK_DAILY_LOSS_KRW", "RECONCILE_TOLERANCE_KRW")
COUNTS = ("EXEC_THROTTLE_REMAINING", "EXEC_LOOKUP_ANSWERS", "RISK_MAX_POSITIONS", "ROOT_INTENSITY", "NODE_INTENSITY",
          "DASHBOARD_PORT")
NUMERIC = (*SECONDS, *KRW, *COUNTS, "PAPER_FEE_RATE", "PAPER_SLIPPAGE_BPS", "REPLAY_SPEED", "TELEGRAM_CHAT_ID")


@pytest.fixture(autouse=True)
def _isolated_cwd(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)  # no stray ./.env


def _problem(**env: str) -> dict[str, str]:
    with pytest.raises(ConfigError) as caught:
        load_settings(env=env)
    return dict(caught.value.problems)


@pytest.mark.parametrize("name", NUMERIC)
@pytest.mark.parametrize("value", ["nan", "inf", "-inf", "1e400", "1E+400000", "9" * 5000, "²"])
def test_absurd_numbers_are_refused_by_name_for_every_numeric_setting(name: str, value: str) -> None:
    env = {name: value}
    if name == "TELEGRAM_CHAT_ID":
        env["TELEGRAM_BOT_TOKEN"] = "123456789:AAHdqTcvCH1vGWJxfSeofSAs0K5PALDsaw"
    problems = _problem(**env)
    assert list(problems) == [name]
    assert "allowed:" in problems[name]
    assert len(problems[name]) < 400, "a 5,000-digit value is not echoed whole"


@pytest.mark.parametrize("name", KRW)
def test_every_krw_amount_is_capped_at_a_trillion(name: str) -> None:
    assert "out of range (more than 1,000,000,000,000)" in _problem(**{name: "1000000000001"})[name]
    assert "out of range" in _problem(**{name: "1e400"})[name]
    at_cap = load_settings(env={name: "1000000000000"}).masked_summary()[name]
    assert Decimal(at_cap) == Decimal(10) ** 12


@pytest.mark.parametrize("name", SECONDS)
def test_durations_stop_at_ten_million_seconds(name: str) -> None:
    assert "10000000" in _problem(**{name: "10000001"})[name]
    load_settings(env={name: "10000000"})


def test_a_float_that_reads_as_infinity_is_called_too_large_not_non_positive() -> None:
    problem = _problem(STATUS_INTERVAL_S="1e400")["STATUS_INTERVAL_S"]
    assert "too large" in problem and "must be > 0" not in problem
    assert "too large" in _problem(REPLAY_SPEED="1e400")["REPLAY_SPEED"]
    assert "too large" in _problem(REPLAY_SPEED="1000001")["REPLAY_SPEED"]


def test_decimals_with_absurd_precision_are_refused() -> None:
    assert "more than 18 decimal places" in _problem(PAPER_FEE_RATE="1e-400000")["PAPER_FEE_RATE"]
    assert load_settings(env={"PAPER_FEE_RATE": "0.000500000000000000000"}).paper.fee_rate == Decimal("0.0005")


@pytest.mark.parametrize("value", ["0", "-0", "+0", "000"])
def test_telegram_chat_id_zero_is_no_chat(value: str) -> None:
    problem = _problem(TELEGRAM_BOT_TOKEN="123456789:AAHdqTcvCH1vGWJxfSeofSAs0K5PALDsaw",
                       TELEGRAM_CHAT_ID=value)["TELEGRAM_CHAT_ID"]
    assert "never 0" in problem


def test_real_chat_ids_still_load() -> None:
    token = "123456789:AAHdqTcvCH1vGWJxfSeofSAs0K5PALDsaw"
    assert load_settings(env={"TELEGRAM_BOT_TOKEN": token, "TELEGRAM_CHAT_ID": "-1001234567890"}).telegram.chat_id \
        == -1001234567890
    assert "too large" in _problem(TELEGRAM_BOT_TOKEN=token, TELEGRAM_CHAT_ID=str(2**53))["TELEGRAM_CHAT_ID"]


_numeric_text = st.one_of(
    st.from_regex(r"\A[+-]?[0-9]{0,30}(\.[0-9]{0,30})?([eE][+-]?[0-9]{1,7})?\Z"),
    st.sampled_from(["nan", "NaN", "inf", "Infinity", "1e400", "-0", "0x10", "1_000", "١٢", "²", "1e-400000"]),
    st.text(max_size=12),
)


@settings(max_examples=300, deadline=None)
@given(name=st.sampled_from(NUMERIC), value=_numeric_text)
def test_any_text_in_a_numeric_setting_loads_or_is_a_config_error(name: str, value: str) -> None:
    try:
        loaded = load_settings(env={name: value})
    except ConfigError as exc:
        assert {n for n, _ in exc.problems} <= {name, "TELEGRAM_CHAT_ID"}
        return
    summary = loaded.masked_summary()
    if name != "REPLAY_SPEED" or summary[name] != "max":
        number = Decimal(summary[name]) if summary[name] != "(unset)" else Decimal(0)
        assert number.is_finite() and abs(number) <= Decimal(10) ** 15


# --- the dashboard's exposure ----------------------------------------------------------------


@pytest.mark.parametrize("host", ["0.0.0.0", "::", "192.168.1.5", "dashboard.lan", "127.attacker.example"])
def test_a_dashboard_others_can_reach_needs_a_token(host: str) -> None:
    problem = _problem(DASHBOARD_HOST=host)["DASHBOARD_TOKEN"]
    assert f"DASHBOARD_HOST={host}" in problem and "not a loopback address" in problem
    settings_ = load_settings(env={"DASHBOARD_HOST": host, "DASHBOARD_TOKEN": TOKEN})
    assert settings_.dashboard_token == Secret(TOKEN)


@pytest.mark.parametrize("host", ["127.0.0.1", "127.0.0.2", "::1", "localhost"])
def test_a_loopback_dashboard_needs_no_token(host: str) -> None:
    assert load_settings(env={"DASHBOARD_HOST": host}).dashboard_token is None


def test_no_dashboard_needs_no_token() -> None:
    assert load_settings(env={"DASHBOARD_HOST": "0.0.0.0", "DASHBOARD_PORT": "0"}).dashboard_port == 0


@pytest.mark.parametrize(("token", "problem"), [("short-token", "too short"), ("a token with spaces ok", "space"),
                                                ("tökentökentökentöken", "non-ASCII")])
def test_a_weak_token_is_refused_without_being_echoed(token: str, problem: str) -> None:
    found = _problem(DASHBOARD_TOKEN=token)["DASHBOARD_TOKEN"]
    assert problem in found and token not in found


def test_the_token_is_a_secret_everywhere() -> None:
    loaded = load_settings(env={"DASHBOARD_HOST": "0.0.0.0", "DASHBOARD_TOKEN": TOKEN})
    assert next(s for s in SETTINGS_SPEC if s.name == "DASHBOARD_TOKEN").secret
    assert Secret(TOKEN) in loaded.secrets()  # so the log filter and the dashboard's redaction mask it
    assert TOKEN not in repr(loaded) and TOKEN not in str(loaded.masked_summary())


def test_failpoint_counts_are_ascii_digits() -> None:
    assert "is not a failpoint" in _problem(FAILPOINTS="send%²")["FAILPOINTS"]  # int('²') raised past the loader
    assert load_settings(env={"FAILPOINTS": "send%2"}).failpoints == "send%2"
