"""Tests for config/settings.py: sources, precedence, validation and the settings tree."""

from __future__ import annotations

import dataclasses
import pickle
import re
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path

import pytest

from config import (
    SETTINGS_SPEC,
    ConfigError,
    FeedSource,
    LogLevel,
    ReplaySource,
    Settings,
    TradeMode,
    load_settings,
)

REPO_ROOT = Path(__file__).resolve().parents[2]

ACCESS_KEY = "AkZ1q2w3e4r5t6y7u8i9o0pLmNbVcXzQ9876"
SECRET_KEY = "Sk9a8s7d6f5g4h3j2k1l0QwErTyUiOpZx5432"
TELEGRAM_TOKEN = "123456789:AAHdqTcvCH1vGWJxfSeofSAs0K5PALDsaw"
DB_PASSWORD = "s3cr3t-Pa55word"
DATABASE_URL = f"postgresql://trader:{DB_PASSWORD}@db.internal:5432/ledger"


@pytest.fixture(autouse=True)
def _isolated_cwd(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Run every test in an empty directory, so no stray ./.env is picked up."""
    monkeypatch.chdir(tmp_path)


def write_env(tmp_path: Path, text: str, name: str = "test.env") -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


def problems_of(excinfo: pytest.ExceptionInfo[ConfigError]) -> dict[str, str]:
    return dict(excinfo.value.problems)


def load_error(**env: str) -> ConfigError:
    with pytest.raises(ConfigError) as excinfo:
        load_settings(env=env)
    return excinfo.value


# --- defaults and sources -------------------------------------------------------------------


def test_defaults_load_with_empty_env_and_no_file(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("BOT_ID", "leaked")  # an explicit env mapping replaces os.environ

    settings = load_settings(env={})

    assert settings.bot_id == "sbx"
    assert settings.trade_mode is TradeMode.SHADOW
    assert settings.log_level is LogLevel.INFO
    assert settings.status_interval_s == 5.0
    assert settings.database.url is None
    assert settings.database.embedded_pg_dir == Path("var/pgdata")
    assert settings.feed.source is FeedSource.REPLAY
    assert settings.feed.upbit_ws_url == "wss://api.upbit.com/websocket/v1"
    assert settings.feed.markets == ()
    assert settings.replay.source is ReplaySource.CANDLES
    assert settings.replay.speed == 60.0
    assert settings.replay.start is None
    assert settings.replay.until is None
    assert settings.replay.max_gap_s == 5.0
    assert settings.strategy.spec == "trading.builtin:SmaMomentum"
    assert settings.strategy.module == "trading.builtin"
    assert settings.strategy.class_name == "SmaMomentum"
    assert dict(settings.strategy.params) == {}
    assert settings.paper.order_krw == Decimal(100000)
    assert settings.paper.fee_rate == Decimal("0.0005")
    assert isinstance(settings.paper.fee_rate, Decimal)
    assert settings.exchange.access_key is None
    assert settings.exchange.secret_key is None
    assert settings.telegram.bot_token is None
    assert settings.telegram.chat_id is None
    sup = settings.supervision
    assert (sup.root_intensity, sup.root_period_s) == (3, 30.0)
    assert (sup.node_intensity, sup.node_period_s) == (5, 10.0)
    assert (sup.shutdown_timeout_s, sup.node_start_timeout_s) == (5.0, 30.0)
    assert settings.uses_embedded_db is True
    assert settings.has_exchange_keys is False
    assert settings.has_telegram is False
    assert settings.replay_speed == 60.0


def test_dot_env_in_working_directory_is_read_by_default(tmp_path: Path) -> None:
    (tmp_path / ".env").write_text("BOT_ID=fromfile\n", encoding="utf-8")

    assert load_settings(env={}).bot_id == "fromfile"


def test_process_environment_is_read_when_env_is_not_given(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("BOT_ID", "procenv")
    monkeypatch.setenv("SOME_UNRELATED_VARIABLE", "whatever")  # unknown env vars are ignored

    assert load_settings().bot_id == "procenv"


def test_precedence_overrides_then_env_then_file_then_default(tmp_path: Path) -> None:
    env_file = write_env(tmp_path, "BOT_ID=file\nREPLAY_SPEED=10\nLOG_LEVEL=DEBUG\n")

    settings = load_settings(
        env={"BOT_ID": "env", "REPLAY_SPEED": "20"},
        env_file=env_file,
        overrides={"BOT_ID": "cli"},
    )

    assert settings.bot_id == "cli"  # override beats env and file
    assert settings.replay_speed == 20.0  # env beats file
    assert settings.log_level is LogLevel.DEBUG  # file beats default
    assert settings.status_interval_s == 5.0  # default


def test_empty_value_counts_as_unset_and_falls_through(tmp_path: Path) -> None:
    env_file = write_env(tmp_path, "BOT_ID=file\nMARKETS=\n")

    settings = load_settings(
        env={"BOT_ID": "   ", "REPLAY_SPEED": ""}, env_file=env_file, overrides={"LOG_LEVEL": ""}
    )

    assert settings.bot_id == "file"
    assert settings.replay_speed == 60.0
    assert settings.log_level is LogLevel.INFO
    assert settings.feed.markets == ()


def test_env_file_quoting_comments_and_export_are_parsed(tmp_path: Path) -> None:
    env_file = write_env(
        tmp_path,
        "# a full-line comment\n"
        "export BOT_ID=abc   # an inline comment\n"
        'MARKETS="KRW-BTC, KRW-ETH"\n'
        'STRATEGY_PARAMS=\'{"fast": 5, "slow": 30, "note": "# not a comment"}\'\n'
        "\n"
        "TELEGRAM_CHAT_ID='-1001234567890'\n"
        f'TELEGRAM_BOT_TOKEN="{TELEGRAM_TOKEN}"\n',
    )

    settings = load_settings(env={}, env_file=env_file)

    assert settings.bot_id == "abc"
    assert settings.feed.markets == ("KRW-BTC", "KRW-ETH")
    assert dict(settings.strategy.params) == {"fast": 5, "slow": 30, "note": "# not a comment"}
    assert settings.telegram.chat_id == -1001234567890
    assert settings.has_telegram is True


def test_env_file_variable_references_are_not_expanded(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PGPASSWORD_FOR_TEST", "expanded-if-interpolated")
    env_file = write_env(tmp_path, "DATABASE_URL=postgresql://u:${PGPASSWORD_FOR_TEST}@h/db\n")

    with pytest.raises(ConfigError) as excinfo:
        load_settings(env={}, env_file=env_file)

    assert "placeholder" in problems_of(excinfo)["DATABASE_URL"]


def test_unknown_key_in_env_file_is_rejected_with_a_suggestion(tmp_path: Path) -> None:
    env_file = write_env(tmp_path, "MARKET=KRW-BTC\nBOT_ID=ok\n")

    with pytest.raises(ConfigError) as excinfo:
        load_settings(env={}, env_file=env_file)

    problems = problems_of(excinfo)
    assert set(problems) == {"MARKET"}
    assert "unknown setting" in problems["MARKET"]
    assert "did you mean MARKETS?" in problems["MARKET"]


def test_unknown_override_key_is_rejected() -> None:
    with pytest.raises(ConfigError) as excinfo:
        load_settings(env={}, overrides={"REPLAY_SPEEED": "max"})

    problems = problems_of(excinfo)
    assert "did you mean REPLAY_SPEED?" in problems["REPLAY_SPEEED"]


def test_env_file_syntax_errors_duplicates_and_bare_keys_are_reported(tmp_path: Path) -> None:
    env_file = write_env(
        tmp_path,
        "BOT_ID=one\nBOT_ID=two\nLOG_LEVEL\nTHIS IS NOT VALID\n",
        name="bad.env",
    )

    with pytest.raises(ConfigError) as excinfo:
        load_settings(env={}, env_file=env_file)

    problems = problems_of(excinfo)
    assert "set 2 times" in problems["BOT_ID"]
    assert "has no '='" in problems["LOG_LEVEL"]
    assert "cannot be parsed" in problems["bad.env:4"]


def test_explicit_env_file_must_exist(tmp_path: Path) -> None:
    missing = tmp_path / "missing.env"

    with pytest.raises(ConfigError) as excinfo:
        load_settings(env={}, env_file=missing)

    assert excinfo.value.setting_names == (str(missing),)


def test_env_example_lists_every_setting_with_its_default() -> None:
    example = REPO_ROOT / ".env.example"
    text = example.read_text(encoding="utf-8")

    for spec in SETTINGS_SPEC:
        if spec.default == "":  # optional settings (all secrets are) may be commented out
            assert re.search(rf"^(# )?{spec.name}=$", text, re.MULTILINE), spec.name
        else:
            assert re.search(rf"^{spec.name}={re.escape(spec.default)}$", text, re.MULTILINE), (
                spec.name
            )
    # loading the example verbatim yields exactly the defaults and has no unknown keys
    assert load_settings(env={}, env_file=example) == load_settings(env={})


# --- validation -------------------------------------------------------------------------------


def test_several_bad_values_are_reported_together() -> None:
    with pytest.raises(ConfigError) as excinfo:
        load_settings(
            env={
                "BOT_ID": "Not-Valid",
                "REPLAY_SPEED": "fast",
                "PAPER_ORDER_KRW": "1000",
                "LOG_LEVEL": "VERBOSE",
                "ROOT_INTENSITY": "-1",
            }
        )

    error = excinfo.value
    assert set(error.setting_names) == {
        "BOT_ID",
        "REPLAY_SPEED",
        "PAPER_ORDER_KRW",
        "LOG_LEVEL",
        "ROOT_INTENSITY",
    }
    lines = str(error).splitlines()
    assert lines[0] == "invalid configuration (5 problems):"
    assert len(lines) == 6
    for name in error.setting_names:
        (line,) = [line for line in lines if line.strip().startswith(f"{name}:")]
        assert "allowed:" in line
    assert "'fast'" in str(error)  # non-secret values are echoed to help the operator
    assert "from the environment" in str(error)


@pytest.mark.parametrize(
    ("name", "value", "expected"),
    [
        ("BOT_ID", "abcdefghijklm", "does not match"),
        ("BOT_ID", "sbx!", "does not match"),
        ("TRADE_MODE", "paper", "allowed: shadow"),
        ("LOG_LEVEL", "WARN", "not a log level"),
        ("STATUS_INTERVAL_S", "0", "must be > 0"),
        ("STATUS_INTERVAL_S", "nan", "not a number"),
        ("STATUS_INTERVAL_S", "5s", "not a number"),
        ("DATABASE_URL", "mysql://u:p@h/db", "must start with postgresql://"),
        ("DATABASE_URL", "postgresql://u:p@h:notaport/db", "check the port"),
        ("FEED_SOURCE", "kafka", "allowed: replay | upbit"),
        ("UPBIT_WS_URL", "https://api.upbit.com/websocket/v1", "not a WebSocket URL"),
        ("MARKETS", "KRW-BTC,krw-eth", "'krw-eth' is not a market code"),
        ("MARKETS", "KRW-BTC,,KRW-ETH", "empty entry"),
        ("MARKETS", "KRW-BTC,KRW-BTC", "more than once"),
        ("REPLAY_SOURCE", "capture_long", "candles | capture | capture-long"),
        ("REPLAY_SPEED", "-2", "must be > 0"),
        ("REPLAY_SPEED", "inf", "not a number or 'max'"),
        ("REPLAY_FROM", "yesterday", "not an ISO-8601 timestamp"),
        ("REPLAY_UNTIL", "2024-13-01", "not an ISO-8601 timestamp"),
        ("REPLAY_MAX_GAP_S", "0", "must be > 0"),
        ("STRATEGY", "trading.builtin.SmaMomentum", "not a module:Class"),
        ("STRATEGY", "trading.class:Sma", "not a module:Class"),
        ("STRATEGY_PARAMS", "[1, 2]", "not an object"),
        ("STRATEGY_PARAMS", "{fast: 1}", "not valid JSON"),
        ("STRATEGY_PARAMS", '{"x": NaN}', "not valid JSON"),
        ("STRATEGY_PARAMS", '{"a": 1, "a": 2}', "duplicate key"),
        ("PAPER_ORDER_KRW", "4999.99", "out of range"),
        ("PAPER_ORDER_KRW", "1_000_000", "not a number"),
        ("PAPER_FEE_RATE", "0.0101", "out of range"),
        ("PAPER_FEE_RATE", "-0.0001", "out of range"),
        ("TELEGRAM_CHAT_ID", "12.5", "not a whole number"),
        ("ROOT_INTENSITY", "2.5", "not a whole number"),
        ("NODE_INTENSITY", "-1", "must be >= 0"),
        ("ROOT_PERIOD_S", "-30", "must be > 0"),
        ("NODE_PERIOD_S", "ten", "not a number"),
        ("SHUTDOWN_TIMEOUT_S", "0", "must be > 0"),
        ("NODE_START_TIMEOUT_S", "0.0", "must be > 0"),
    ],
)
def test_invalid_value_is_named_and_explained(name: str, value: str, expected: str) -> None:
    error = load_error(**{name: value})

    assert error.setting_names == (name,)
    assert expected in error.problems[0][1]


@pytest.mark.parametrize("mode", ["shadow", "test", "live", "LIVE"])
def test_every_trade_mode_parses(mode: str) -> None:
    assert load_settings(env={"TRADE_MODE": mode}).trade_mode.value == mode.lower()


def test_execution_guard_settings_parse_and_reject_nonsense() -> None:
    settings = load_settings(env={"LIVE_TRADING": "yes", "READ_ONLY": "0", "LIVE_MARKETS": "KRW-BTC,KRW-ETH",
                                  "LIVE_CONFIRM": "I ACCEPT REAL ORDERS WITH REAL MONEY", "PAPER_PROFILE": "test"})
    assert settings.execution.live_trading is True
    assert settings.execution.read_only is False
    assert settings.execution.live_confirmed
    assert settings.execution.paper_profile.value == "test"
    assert settings.risk.live_markets == ("KRW-BTC", "KRW-ETH")
    assert not load_settings(env={"LIVE_CONFIRM": "i accept real orders with real money"}).execution.live_confirmed

    error = load_error(LIVE_TRADING="maybe", EXEC_LOOKUP_ANSWERS="0", RISK_MAX_ORDER_KRW="100")
    problems = dict(error.problems)
    assert "allowed: true or false" in problems["LIVE_TRADING"]
    assert ">= 1" in problems["EXEC_LOOKUP_ANSWERS"]
    assert ">= 5000" in problems["RISK_MAX_ORDER_KRW"]


def test_failpoints_are_checked_not_ignored() -> None:
    assert load_settings(env={"FAILPOINTS": "execution.after_send%3,execution.after_intent_commit@2"}).failpoints
    assert "is not a failpoint" in dict(load_error(FAILPOINTS="execution.after_send").problems)["FAILPOINTS"]


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("UPBIT_ACCESS_KEY", "${UPBIT_ACCESS_KEY}"),
        ("UPBIT_ACCESS_KEY", "your_access_key"),
        ("UPBIT_SECRET_KEY", "YOUR-SECRET-KEY"),
        ("TELEGRAM_BOT_TOKEN", "<telegram bot token>"),
        ("DATABASE_URL", "postgresql://trader:changeme@localhost/ledger"),
        ("DATABASE_URL", "postgresql://trader:<password>@localhost/ledger"),
        ("DATABASE_URL", "postgresql://trader:xxxx@localhost/ledger"),
        ("UPBIT_SECRET_KEY", "xxxxxxxxxxxxxxxx"),
        ("UPBIT_ACCESS_KEY", "XXXX-XXXX-XXXX"),
        ("UPBIT_ACCESS_KEY", "AkZ1…9876"),  # a mask pasted back from a log
        ("MARKETS", "<markets>"),
        ("STRATEGY", "your_module:YourStrategy"),
    ],
)
def test_placeholders_are_rejected(name: str, value: str) -> None:
    env = {name: value}
    if name == "UPBIT_ACCESS_KEY":
        env["UPBIT_SECRET_KEY"] = SECRET_KEY
    elif name == "UPBIT_SECRET_KEY":
        env["UPBIT_ACCESS_KEY"] = ACCESS_KEY
    elif name == "TELEGRAM_BOT_TOKEN":
        env["TELEGRAM_CHAT_ID"] = "42"

    with pytest.raises(ConfigError) as excinfo:
        load_settings(env=env)

    problems = problems_of(excinfo)
    assert set(problems) == {name}
    assert "looks like a placeholder" in problems[name]


def test_secret_values_are_never_echoed_in_config_errors() -> None:
    bad_key = "AkZ1q2w3 e4r5t6y7u8i9o0pLmNbVcXzQ9876"  # whitespace: invalid
    error = load_error(
        UPBIT_ACCESS_KEY=bad_key,
        UPBIT_SECRET_KEY=SECRET_KEY,
        DATABASE_URL=f"mysql://trader:{DB_PASSWORD}@h/db",
    )

    assert set(error.setting_names) == {"UPBIT_ACCESS_KEY", "DATABASE_URL"}
    text = str(error) + repr(error)
    assert bad_key not in text
    assert DB_PASSWORD not in text
    assert "contains whitespace" in text


def test_live_feed_requires_markets() -> None:
    error = load_error(FEED_SOURCE="upbit")

    assert error.setting_names == ("MARKETS",)
    assert "required when FEED_SOURCE=upbit" in str(error)
    settings = load_settings(env={"FEED_SOURCE": "UPBIT", "MARKETS": "KRW-BTC"})
    assert settings.feed.source is FeedSource.UPBIT
    assert settings.feed.markets == ("KRW-BTC",)


@pytest.mark.parametrize(
    ("start", "until"),
    [("2024-02-01T00:00:00Z", "2024-01-01T00:00:00Z"), ("2024-01-01T09:00:00+09:00", "2024-01-01")],
)
def test_replay_window_must_not_be_empty(start: str, until: str) -> None:
    error = load_error(REPLAY_FROM=start, REPLAY_UNTIL=until)

    assert error.setting_names == ("REPLAY_UNTIL",)
    assert "is not after REPLAY_FROM" in str(error)


def test_an_unrelated_bad_value_does_not_hide_a_cross_field_problem() -> None:
    error = load_error(
        REPLAY_SPEED="fast",
        REPLAY_FROM="2024-02-01",
        REPLAY_UNTIL="2024-01-01",
        UPBIT_WS_URL="http://x",
        FEED_SOURCE="upbit",
    )

    assert set(error.setting_names) == {"REPLAY_SPEED", "REPLAY_UNTIL", "UPBIT_WS_URL", "MARKETS"}


def test_replay_timestamps_are_aware_utc() -> None:
    settings = load_settings(
        env={"REPLAY_FROM": "2024-01-01T09:00:00+09:00", "REPLAY_UNTIL": "2024-01-02 12:30"}
    )

    assert settings.replay.start == datetime(2024, 1, 1, 0, 0, tzinfo=UTC)
    assert settings.replay.start is not None
    assert settings.replay.start.utcoffset() is not None
    assert settings.replay.until == datetime(2024, 1, 2, 12, 30, tzinfo=UTC)


@pytest.mark.parametrize(
    ("raw", "expected"), [("max", None), ("MAX", None), ("1", 1.0), ("0.5", 0.5)]
)
def test_replay_speed(raw: str, expected: float | None) -> None:
    assert load_settings(env={"REPLAY_SPEED": raw}).replay_speed == expected


@pytest.mark.parametrize(
    ("env", "missing"),
    [
        ({"UPBIT_ACCESS_KEY": ACCESS_KEY}, "UPBIT_SECRET_KEY"),
        ({"UPBIT_SECRET_KEY": SECRET_KEY}, "UPBIT_ACCESS_KEY"),
        ({"TELEGRAM_BOT_TOKEN": TELEGRAM_TOKEN}, "TELEGRAM_CHAT_ID"),
        ({"TELEGRAM_CHAT_ID": "-100123"}, "TELEGRAM_CHAT_ID"),
    ],
)
def test_paired_settings_must_be_set_together(env: dict[str, str], missing: str) -> None:
    error = load_error(**env)

    assert error.setting_names == (missing,)


def test_full_credentials_enable_the_derived_helpers() -> None:
    settings = load_settings(
        env={
            "UPBIT_ACCESS_KEY": ACCESS_KEY,
            "UPBIT_SECRET_KEY": SECRET_KEY,
            "TELEGRAM_BOT_TOKEN": TELEGRAM_TOKEN,
            "TELEGRAM_CHAT_ID": "-1001234567890",
            "DATABASE_URL": DATABASE_URL,
        }
    )

    assert settings.has_exchange_keys is True
    assert settings.has_telegram is True
    assert settings.uses_embedded_db is False
    assert settings.exchange.access_key is not None
    assert settings.exchange.access_key.reveal() == ACCESS_KEY
    assert settings.database.url is not None
    assert settings.database.url.reveal() == DATABASE_URL
    assert settings.telegram.chat_id == -1001234567890
    assert len(settings.secrets()) == 4


def test_telegram_token_format_is_checked() -> None:
    error = load_error(TELEGRAM_BOT_TOKEN="not-a-token", TELEGRAM_CHAT_ID="1")

    assert error.setting_names == ("TELEGRAM_BOT_TOKEN",)
    assert "not-a-token" not in str(error)


# --- the settings tree --------------------------------------------------------------------


def test_settings_are_frozen_slotted_and_keyword_only() -> None:
    settings = load_settings(env={})

    with pytest.raises(dataclasses.FrozenInstanceError):
        settings.bot_id = "other"  # type: ignore[misc]
    with pytest.raises(dataclasses.FrozenInstanceError):
        settings.replay.speed = 1.0  # type: ignore[misc]
    assert not hasattr(settings, "__dict__")
    fields = [f.name for f in dataclasses.fields(Settings)]
    with pytest.raises(TypeError):
        Settings(*[getattr(settings, name) for name in fields])  # type: ignore[call-arg]


def test_strategy_params_are_read_only_all_the_way_down() -> None:
    settings = load_settings(env={"STRATEGY_PARAMS": '{"windows": [5, 20], "opt": {"k": 1.5}}'})
    params = settings.strategy.params

    assert params["windows"] == (5, 20)
    with pytest.raises(TypeError):
        params["new"] = 1  # type: ignore[index]
    nested = params["opt"]
    assert isinstance(nested, dict) is False
    with pytest.raises(TypeError):
        nested["k"] = 2  # type: ignore[index]


def test_settings_survive_pickling_for_child_processes() -> None:
    settings = load_settings(
        env={
            "UPBIT_ACCESS_KEY": ACCESS_KEY,
            "UPBIT_SECRET_KEY": SECRET_KEY,
            "MARKETS": "KRW-BTC",
            "STRATEGY_PARAMS": '{"fast": 5, "nested": {"w": [1, 2]}}',
        }
    )

    clone = pickle.loads(pickle.dumps(settings))  # noqa: S301 - our own data

    assert clone == settings
    assert clone.exchange.access_key is not None
    assert clone.exchange.access_key.reveal() == ACCESS_KEY


def test_repr_and_str_of_settings_never_contain_secrets() -> None:
    settings = load_settings(
        env={
            "UPBIT_ACCESS_KEY": ACCESS_KEY,
            "UPBIT_SECRET_KEY": SECRET_KEY,
            "TELEGRAM_BOT_TOKEN": TELEGRAM_TOKEN,
            "TELEGRAM_CHAT_ID": "42",
            "DATABASE_URL": DATABASE_URL,
        }
    )

    for text in (repr(settings), str(settings), f"{settings}", repr(settings.exchange)):
        for raw in (ACCESS_KEY, SECRET_KEY, TELEGRAM_TOKEN, DB_PASSWORD):
            assert raw not in text
    text = repr(settings)
    assert "AkZ1…9876" in text
    assert "postgresql://trader:****@db.internal:5432/ledger" in text


def test_masked_summary_lists_every_setting_with_secrets_masked() -> None:
    settings = load_settings(
        env={
            "UPBIT_ACCESS_KEY": ACCESS_KEY,
            "UPBIT_SECRET_KEY": SECRET_KEY,
            "TELEGRAM_BOT_TOKEN": TELEGRAM_TOKEN,
            "TELEGRAM_CHAT_ID": "42",
            "DATABASE_URL": DATABASE_URL,
            "MARKETS": "KRW-BTC,KRW-ETH",
            "REPLAY_SPEED": "max",
            "REPLAY_FROM": "2024-01-01T09:00:00+09:00",
        }
    )

    summary = settings.masked_summary()

    assert list(summary) == [spec.name for spec in SETTINGS_SPEC]
    assert all(isinstance(value, str) for value in summary.values())
    joined = "\n".join(summary.values())
    for raw in (ACCESS_KEY, SECRET_KEY, TELEGRAM_TOKEN, DB_PASSWORD):
        assert raw not in joined
    assert summary["UPBIT_ACCESS_KEY"] == "AkZ1…9876"
    assert summary["UPBIT_SECRET_KEY"] == "Sk9a…5432"
    assert summary["TELEGRAM_BOT_TOKEN"] == "1234…Dsaw"
    assert summary["DATABASE_URL"] == "postgresql://trader:****@db.internal:5432/ledger"
    assert summary["MARKETS"] == "KRW-BTC,KRW-ETH"
    assert summary["REPLAY_SPEED"] == "max"
    assert summary["REPLAY_FROM"] == "2024-01-01T00:00:00Z"
    assert summary["REPLAY_UNTIL"] == "(unset)"
    assert summary["TELEGRAM_CHAT_ID"] == "42"
    assert summary["PAPER_FEE_RATE"] == "0.0005"


# --- who may command over Telegram (security review, issue 15, finding 6) ----------------------------


def test_telegram_operator_ids_are_user_ids_in_order_and_shown_in_the_summary() -> None:
    settings = load_settings(env={"TELEGRAM_BOT_TOKEN": TELEGRAM_TOKEN, "TELEGRAM_CHAT_ID": "-1001234567890",
                                  "TELEGRAM_OPERATOR_IDS": " 123456789 , 42"})

    assert settings.telegram.operator_ids == (123456789, 42)
    assert settings.masked_summary()["TELEGRAM_OPERATOR_IDS"] == "123456789,42"


def test_alerts_work_without_operators_and_then_no_one_may_command() -> None:
    settings = load_settings(env={"TELEGRAM_BOT_TOKEN": TELEGRAM_TOKEN, "TELEGRAM_CHAT_ID": "-1001234567890"})

    assert settings.has_telegram and settings.telegram.operator_ids == ()
    assert settings.masked_summary()["TELEGRAM_OPERATOR_IDS"] == "(unset)"


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("-1001234567890", "a negative id is a group or channel chat, not a user"),
        ("0", "0 is nobody"),
        ("42,-7", "entry 2: a negative id"),
        ("alice", "not a user id"),
        ("12.5", "not a user id"),
        ("1,,2", "entry 2 is empty"),
        ("42,", "entry 2 is empty"),
        ("42,42", "entry 2 repeats an earlier id"),
        ("99999999999999999999", "not a user id"),
        ("9007199254740993", "too large to be a user id"),
        ("1087968824", "GroupAnonymousBot"),
        ("777000", "service account"),
        ("136817688", "Channel_Bot"),
    ],
)
def test_bad_telegram_operator_ids_are_named_and_explained(value: str, expected: str) -> None:
    error = load_error(TELEGRAM_BOT_TOKEN=TELEGRAM_TOKEN, TELEGRAM_CHAT_ID="42", TELEGRAM_OPERATOR_IDS=value)

    assert error.setting_names == ("TELEGRAM_OPERATOR_IDS",)
    assert expected in error.problems[0][1]


def test_telegram_operator_ids_without_a_token_are_an_error() -> None:
    error = load_error(TELEGRAM_OPERATOR_IDS="42")

    assert error.setting_names == ("TELEGRAM_OPERATOR_IDS",)
    assert "TELEGRAM_BOT_TOKEN is not" in error.problems[0][1]


@pytest.mark.parametrize(("name", "value", "words"), [
    ("EXEC_LOOKUP_WINDOW_S", "0.001", "shorter than the exchange may take to list a new order"),
    ("EXEC_LOOKUP_WINDOW_S", "0.999", ">= 1"),
    ("EXEC_LOOKUP_ANSWERS", "1", "not enough to call an order absent"),
])
def test_the_lookup_window_has_a_floor(name: str, value: str, words: str) -> None:
    """0.001 s with one answer produced two exchange orders for one intent under a listing lag."""
    with pytest.raises(ConfigError) as excinfo:
        load_settings(env={name: value})
    ((setting, problem),) = excinfo.value.problems
    assert setting == name and words in problem


def test_the_lookup_floor_itself_is_accepted() -> None:
    settings = load_settings(env={"EXEC_LOOKUP_WINDOW_S": "1", "EXEC_LOOKUP_ANSWERS": "2", "EXEC_REVIEW_AFTER_S": "60"})
    assert (settings.execution.lookup_window_s, settings.execution.lookup_answers) == (1.0, 2)
    assert settings.execution.review_after_s == 60.0
