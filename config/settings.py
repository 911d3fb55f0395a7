"""The settings tree and :func:`load_settings`, the only code that reads configuration.

Configuration is loaded **once**, at process start, into a frozen :class:`Settings` tree that is
passed down by constructor. No other module reads environment variables or ``.env`` files.

Sources, highest precedence first:

1. ``overrides`` -- command-line flags, as ``{"REPLAY_SPEED": "max"}``;
2. the process environment (or the ``env`` mapping given instead of it);
3. the ``.env`` file (``./.env`` if it exists, or ``env_file``), parsed by python-dotenv
   **without** ``${VAR}`` interpolation, so an unexpanded reference is caught as a placeholder;
4. the defaults in :data:`SETTINGS_SPEC` (also listed in ``.env.example``).

An empty (or all-whitespace) value counts as *not given* at that level, so the next level down
applies. Values are stripped of surrounding whitespace. A key in the ``.env`` file or in
``overrides`` that is not a known setting is an error (typo protection); environment variables
that are not settings are ignored, since the environment holds many unrelated variables.

Validation collects **every** problem and raises one :class:`~config.errors.ConfigError` listing
them all. Values that look like template placeholders (``${...}``, ``your_...``, ``<...>``,
``changeme``, ``xxx``) are rejected. Secrets are wrapped in :class:`~config.secret.Secret`, so
``repr(settings)`` and :meth:`Settings.masked_summary` never contain them.
"""

from __future__ import annotations

import difflib
import io
import json
import os
from collections import Counter
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from enum import StrEnum
from pathlib import Path
from typing import TypeVar

from dotenv import dotenv_values
from dotenv.parser import parse_stream

from config import parsing
from config.errors import ConfigError
from config.parsing import InvalidValueError, JsonValue
from config.secret import DatabaseUrl, Secret

T = TypeVar("T")

UPBIT_MIN_ORDER_KRW = Decimal(5000)
"""Upbit's minimum order total on KRW markets."""

MAX_FEE_RATE = Decimal("0.01")

MAX_KRW = Decimal(10) ** 12
"""The ceiling of every KRW amount setting (orders, capital, loss limit, tolerance): one trillion KRW.

Far above any real order, yet small enough that sums, products and 8-decimal quantizing stay
exact in a 28-digit decimal context and fit every ``numeric`` column; ``1e400`` is refused."""

_KRW_CAP = f"{MAX_KRW:,f}"
_SHOWN_CHARS = 60  # a bad value is echoed in its error up to this long
_MAX_SECONDS = Decimal(parsing.MAX_SECONDS)
_SECONDS = f"seconds >= 0 and <= {parsing.MAX_SECONDS}"


class FeedSource(StrEnum):
    """Where market data comes from."""

    REPLAY = "replay"  # a recording replayed through the loopback server: the sandbox
    UPBIT = "upbit"  # the live public Upbit WebSocket


class ReplaySource(StrEnum):
    """Which recording the replay feed plays."""

    CANDLES = "candles"  # a year of real KRW-BTC 1-minute candles expanded into trades
    CAPTURE = "capture"  # 30 s of real Upbit WebSocket frames
    CAPTURE_LONG = "capture-long"  # 2 min of real Upbit WebSocket frames


class TradeMode(StrEnum):
    """How signals turn into orders (the requested mode; guards may downgrade it)."""

    SHADOW = "shadow"  # record the order that would be sent; nothing is sent to the exchange
    TEST = "test"  # Upbit's orders/test: validated by the exchange, nothing is created
    LIVE = "live"  # real orders, only when every live guard agrees


class PaperProfile(StrEnum):
    """The paper policy profile: ``test`` (tiny, busy settings for smoke tests) never goes live."""

    DEFAULT = "default"
    TEST = "test"


LIVE_CONFIRM_PHRASE = "I ACCEPT REAL ORDERS WITH REAL MONEY"
"""What ``LIVE_CONFIRM`` must say, exactly, for live orders to be possible."""


class LogLevel(StrEnum):
    """Allowed ``LOG_LEVEL`` values (names understood by :mod:`logging`)."""

    DEBUG = "DEBUG"
    INFO = "INFO"
    WARNING = "WARNING"
    ERROR = "ERROR"


# --- the specification: every setting, its default and meaning -----------------------------


@dataclass(frozen=True, slots=True, kw_only=True)
class SettingSpec:
    """One known setting: its environment name, raw default ("" = unset) and meaning."""

    name: str
    default: str
    help: str
    secret: bool = False


SETTINGS_SPEC: tuple[SettingSpec, ...] = (
    SettingSpec(
        name="BOT_ID", default="sbx", help="namespace for order identifiers, ^[a-z0-9]{1,12}$"
    ),
    SettingSpec(
        name="TRADE_MODE", default="shadow",
        help="shadow (record only) | test (Upbit orders/test) | live (real orders, every guard must agree)",
    ),
    SettingSpec(name="LOG_LEVEL", default="INFO", help="DEBUG | INFO | WARNING | ERROR"),
    SettingSpec(name="STATUS_INTERVAL_S", default="5", help="seconds between status log lines"),
    SettingSpec(name="DASHBOARD_PORT", default="8765", help="status dashboard port, 0 = no dashboard"),
    SettingSpec(
        name="DASHBOARD_HOST",
        default="127.0.0.1",
        help="dashboard bind address; anything but loopback (127.0.0.1, ::1, localhost) needs DASHBOARD_TOKEN",
    ),
    SettingSpec(
        name="DASHBOARD_TOKEN",
        default="",
        secret=True,
        help="dashboard access token (>= 16 characters); with it every request but /healthz must present it",
    ),
    SettingSpec(
        name="DATABASE_URL",
        default="",
        secret=True,
        help="PostgreSQL URL; empty = embedded PostgreSQL",
    ),
    SettingSpec(
        name="EMBEDDED_PG_DIR",
        default="var/pgdata",
        help="data directory of the embedded PostgreSQL",
    ),
    SettingSpec(
        name="FEED_SOURCE",
        default="replay",
        help="replay (sandbox recording) | upbit (live public WebSocket)",
    ),
    SettingSpec(
        name="UPBIT_WS_URL",
        default="wss://api.upbit.com/websocket/v1",
        help="Upbit public WebSocket URL",
    ),
    SettingSpec(
        name="UPBIT_REST_URL",
        default="https://api.upbit.com",
        help="Upbit REST base URL (the live feed backfills missed trades from it)",
    ),
    SettingSpec(
        name="MARKETS",
        default="",
        help="comma-separated markets; empty = all in the recording; required for upbit",
    ),
    SettingSpec(name="REPLAY_SOURCE", default="candles", help="candles | capture | capture-long"),
    SettingSpec(
        name="REPLAY_FILE",
        default="",
        help="a recording of your own to replay instead of REPLAY_SOURCE; empty = the shipped one",
    ),
    SettingSpec(name="REPLAY_SPEED", default="60", help="replay speed-up factor > 0, or max"),
    SettingSpec(
        name="REPLAY_FROM",
        default="",
        help="ISO-8601 UTC start of the replay window; empty = start",
    ),
    SettingSpec(
        name="REPLAY_UNTIL", default="", help="ISO-8601 UTC end of the replay window; empty = end"
    ),
    SettingSpec(
        name="REPLAY_MAX_GAP_S",
        default="5",
        help="longest recording gap replayed in real time, seconds",
    ),
    SettingSpec(
        name="STRATEGY",
        default="trading.builtin:SmaMomentum",
        help="strategy class as module:Class",
    ),
    SettingSpec(name="STRATEGY_PARAMS", default="{}", help="JSON object passed to the strategy"),
    SettingSpec(name="PAPER_ORDER_KRW", default="100000", help="paper order size in KRW, >= 5000"),
    SettingSpec(name="PAPER_FEE_RATE", default="0.0005", help="paper fee rate, 0 to 0.01"),
    SettingSpec(
        name="PAPER_SLIPPAGE_BPS",
        default="0",
        help="paper fills move this many basis points against us (then onto the tick grid), 0 to 1000",
    ),
    SettingSpec(name="PAPER_COOLDOWN_S", default="0", help="no re-buy of a market for this long after an exit, s"),
    SettingSpec(name="PAPER_CAPITAL_KRW", default="10000000", help="paper starting capital in KRW"),
    SettingSpec(name="PAPER_PROFILE", default="default", help="default | test (a test profile never trades live)"),
    SettingSpec(name="LIVE_TRADING", default="false", help="live guard: true to allow live orders at all"),
    SettingSpec(name="LIVE_CONFIRM", default="", help=f"live guard: exactly '{LIVE_CONFIRM_PHRASE}'"),
    SettingSpec(name="READ_ONLY", default="false", help="true: nothing is ever sent to the exchange"),
    SettingSpec(name="TEST_ORDERS", default="true", help="false: test mode is refused (downgraded to shadow)"),
    SettingSpec(name="AUTO_TEST", default="false",
                help="true: a live request some guard refuses runs in test mode instead of shadow"),
    SettingSpec(name="EXEC_THROTTLE_REMAINING", default="1",
                help="an order waits (THROTTLED) when this many or fewer requests remain in the second"),
    SettingSpec(name="EXEC_MAX_DATA_LAG_S", default="30",
                help="an intent older than this, or a live bar this stale, is not sent (DATA_LAG), s"),
    SettingSpec(name="EXEC_LOOKUP_ANSWERS", default="3",
                help="an unknown order is absent only after this many not-found answers, >= 2"),
    SettingSpec(name="EXEC_LOOKUP_WINDOW_S", default="3",
                help="... spread over at least this many seconds, >= 1 (exchanges list new orders late)"),
    SettingSpec(name="EXEC_FOLLOW_TIMEOUT_S", default="60",
                help="a live order is polled to a final state for this long, then less often, s"),
    SettingSpec(name="EXEC_REVIEW_AFTER_S", default="300",
                help="an order whose outcome no lookup could settle this long goes to the needs-review queue, s"),
    SettingSpec(name="RISK_MAX_ORDER_KRW", default="1000000", help="largest order total in KRW (RISK_LIMIT)"),
    SettingSpec(name="RISK_DAILY_LOSS_KRW", default="100000",
                help="realised loss in one UTC day that trips the kill switch, KRW"),
    SettingSpec(name="RISK_MAX_POSITIONS", default="3", help="most markets held at once"),
    SettingSpec(name="RISK_REBUY_COOLDOWN_S", default="0", help="no re-buy of a market this long after a sell, s"),
    SettingSpec(name="LIVE_MARKETS", default="",
                help="comma-separated markets live orders may trade; empty = none (every live order is RISK_LIMIT)"),
    SettingSpec(name="ACCOUNT_POLL_S", default="10", help="seconds between balance polls (with keys)"),
    SettingSpec(name="RECONCILE_INTERVAL_S", default="60", help="seconds between reconciliations with the exchange"),
    SettingSpec(name="RECONCILE_TOLERANCE_KRW", default="1",
                help="a balance difference worth more than this many KRW is reported"),
    SettingSpec(name="RECONCILE_HALT", default="true", help="true: a reconciliation difference halts entries"),
    SettingSpec(name="RECONCILE_CANCEL_UNKNOWN", default="false",
                help="true: cancel open exchange orders that are not ours (default: report only)"),
    SettingSpec(name="UPBIT_ACCESS_KEY", default="", secret=True, help="Upbit Open API access key"),
    SettingSpec(name="UPBIT_SECRET_KEY", default="", secret=True, help="Upbit Open API secret key"),
    SettingSpec(
        name="TELEGRAM_BOT_TOKEN",
        default="",
        secret=True,
        help="Telegram bot token from @BotFather",
    ),
    SettingSpec(
        name="TELEGRAM_CHAT_ID", default="", help="Telegram chat id; required with the token"
    ),
    SettingSpec(
        name="TELEGRAM_OPERATOR_IDS",
        default="",
        help="comma-separated numeric Telegram user ids allowed to send commands; unset: every command "
        "is refused (alerts are still sent)",
    ),
    SettingSpec(
        name="ALERT_MIN_LEVEL",
        default="info",
        help="alerts below this level are recorded but not sent: info | warning | error | critical",
    ),
    SettingSpec(
        name="ALERTS_DISABLED",
        default="",
        help="comma-separated alert kinds recorded but not sent, e.g. paper_fill,control",
    ),
    SettingSpec(
        name="TELEGRAM_API_URL",
        default="https://api.telegram.org",
        help="Telegram Bot API base URL (change only for a local Bot API server or tests)",
    ),
    SettingSpec(
        name="ROOT_INTENSITY", default="3", help="root supervisor: max restarts per period"
    ),
    SettingSpec(
        name="ROOT_PERIOD_S", default="30", help="root supervisor: restart period, seconds"
    ),
    SettingSpec(
        name="NODE_INTENSITY", default="5", help="node supervisor: max restarts per period"
    ),
    SettingSpec(
        name="NODE_PERIOD_S", default="10", help="node supervisor: restart period, seconds"
    ),
    SettingSpec(name="SHUTDOWN_TIMEOUT_S", default="5", help="seconds a child gets to stop"),
    SettingSpec(name="NODE_START_TIMEOUT_S", default="30", help="seconds a node gets to start"),
    SettingSpec(name="FAILPOINTS", default="",
                help="resilience drills only: name%N kills the process at every Nth pass of a named point"),
)
"""Every known setting, in the order of ``.env.example`` and :meth:`Settings.masked_summary`."""

_SPECS: dict[str, SettingSpec] = {spec.name: spec for spec in SETTINGS_SPEC}
SETTING_NAMES: frozenset[str] = frozenset(_SPECS)
"""The environment names of all known settings (for CLI flag mapping and typo checks)."""


# --- the settings tree ---------------------------------------------------------------------


@dataclass(frozen=True, slots=True, kw_only=True)
class DatabaseSettings:
    """Where the ledger lives: an external PostgreSQL, or the embedded one."""

    url: DatabaseUrl | None  # DATABASE_URL; None -> embedded PostgreSQL
    embedded_pg_dir: Path  # EMBEDDED_PG_DIR

    @property
    def uses_embedded(self) -> bool:
        """True when no ``DATABASE_URL`` is set and the embedded PostgreSQL is used."""
        return self.url is None


@dataclass(frozen=True, slots=True, kw_only=True)
class FeedSettings:
    """Where market data comes from and for which markets."""

    source: FeedSource  # FEED_SOURCE
    upbit_ws_url: str  # UPBIT_WS_URL
    upbit_rest_url: str = "https://api.upbit.com"  # UPBIT_REST_URL
    markets: tuple[str, ...]  # MARKETS; () = every market in the recording (replay only)

    def __post_init__(self) -> None:
        """The live feed needs an explicit market list."""
        if self.source is FeedSource.UPBIT and not self.markets:
            problem = (
                "required when FEED_SOURCE=upbit; allowed: comma-separated market codes, "
                "e.g. KRW-BTC,KRW-ETH"
            )
            raise ConfigError.for_setting("MARKETS", problem)


@dataclass(frozen=True, slots=True, kw_only=True)
class ReplaySettings:
    """How the recording is replayed (used when the feed source is ``replay``)."""

    source: ReplaySource  # REPLAY_SOURCE
    file: Path | None  # REPLAY_FILE; None = the shipped recording named by REPLAY_SOURCE
    speed: float | None  # REPLAY_SPEED; None = as fast as possible ("max")
    start: datetime | None  # REPLAY_FROM, aware UTC; None = from the beginning
    until: datetime | None  # REPLAY_UNTIL, aware UTC; None = to the end
    max_gap_s: float  # REPLAY_MAX_GAP_S

    def __post_init__(self) -> None:
        """The replay window must not be empty."""
        if self.start is not None and self.until is not None and self.start >= self.until:
            problem = (
                f"{_iso(self.until)} is not after REPLAY_FROM={_iso(self.start)}; "
                "allowed: a timestamp later than REPLAY_FROM"
            )
            raise ConfigError.for_setting("REPLAY_UNTIL", problem)


@dataclass(frozen=True, slots=True, kw_only=True)
class StrategySettings:
    """Which strategy runs and with which parameters (the import is checked by its loader)."""

    module: str  # STRATEGY, before the colon
    class_name: str  # STRATEGY, after the colon
    params: Mapping[str, JsonValue]  # STRATEGY_PARAMS, read-only

    @property
    def spec(self) -> str:
        """The ``module:Class`` reference as configured."""
        return f"{self.module}:{self.class_name}"


@dataclass(frozen=True, slots=True, kw_only=True)
class PaperSettings:
    """Paper execution: order size and simulated fee."""

    order_krw: Decimal  # PAPER_ORDER_KRW
    fee_rate: Decimal  # PAPER_FEE_RATE
    slippage_bps: Decimal = Decimal(0)  # PAPER_SLIPPAGE_BPS
    cooldown_s: Decimal = Decimal(0)  # PAPER_COOLDOWN_S
    capital_krw: Decimal = Decimal(10_000_000)  # PAPER_CAPITAL_KRW


@dataclass(frozen=True, slots=True, kw_only=True)
class ExecutionSettings:
    """The live guards and how execution sends, waits and resolves (see ``execution/``)."""

    paper_profile: PaperProfile = PaperProfile.DEFAULT  # PAPER_PROFILE
    live_trading: bool = False  # LIVE_TRADING
    live_confirm: str | None = None  # LIVE_CONFIRM
    read_only: bool = False  # READ_ONLY
    test_orders: bool = True  # TEST_ORDERS
    auto_test: bool = False  # AUTO_TEST
    throttle_remaining: int = 1  # EXEC_THROTTLE_REMAINING
    max_data_lag_s: float = 30.0  # EXEC_MAX_DATA_LAG_S
    lookup_answers: int = 3  # EXEC_LOOKUP_ANSWERS
    lookup_window_s: float = 3.0  # EXEC_LOOKUP_WINDOW_S
    follow_timeout_s: float = 60.0  # EXEC_FOLLOW_TIMEOUT_S
    review_after_s: float = 300.0  # EXEC_REVIEW_AFTER_S

    @property
    def live_confirmed(self) -> bool:
        """True when ``LIVE_CONFIRM`` is exactly the phrase."""
        return self.live_confirm == LIVE_CONFIRM_PHRASE


@dataclass(frozen=True, slots=True, kw_only=True)
class RiskSettings:
    """Limits every test/live order is checked against (see ``execution/risk.py``)."""

    max_order_krw: Decimal = Decimal(1_000_000)  # RISK_MAX_ORDER_KRW
    daily_loss_krw: Decimal = Decimal(100_000)  # RISK_DAILY_LOSS_KRW
    max_positions: int = 3  # RISK_MAX_POSITIONS
    rebuy_cooldown_s: float = 0.0  # RISK_REBUY_COOLDOWN_S
    live_markets: tuple[str, ...] = ()  # LIVE_MARKETS


@dataclass(frozen=True, slots=True, kw_only=True)
class AccountSettings:
    """Balance polling and reconciliation with the exchange (see ``actors/account.py``)."""

    poll_s: float = 10.0  # ACCOUNT_POLL_S
    reconcile_interval_s: float = 60.0  # RECONCILE_INTERVAL_S
    tolerance_krw: Decimal = Decimal(1)  # RECONCILE_TOLERANCE_KRW
    halt_on_difference: bool = True  # RECONCILE_HALT
    cancel_unknown: bool = False  # RECONCILE_CANCEL_UNKNOWN


@dataclass(frozen=True, slots=True, kw_only=True)
class ExchangeCredentials:
    """Upbit Open API keys: both or neither."""

    access_key: Secret | None  # UPBIT_ACCESS_KEY
    secret_key: Secret | None  # UPBIT_SECRET_KEY

    def __post_init__(self) -> None:
        """One key without the other is a mistake, never a mode."""
        if (self.access_key is None) != (self.secret_key is None):
            present, missing = (
                ("UPBIT_ACCESS_KEY", "UPBIT_SECRET_KEY")
                if self.secret_key is None
                else ("UPBIT_SECRET_KEY", "UPBIT_ACCESS_KEY")
            )
            problem = f"required because {present} is set; allowed: set both keys or neither"
            raise ConfigError.for_setting(missing, problem)

    @property
    def configured(self) -> bool:
        """True when both keys are set."""
        return self.access_key is not None


@dataclass(frozen=True, slots=True, kw_only=True)
class TelegramSettings:
    """Telegram: a bot token and the chat to post to (both or neither), and who may command.

    Commands are accepted only from ``operator_ids`` (users, not chats: in a group every member
    writes in the operator chat). Without any, every command is refused with a reply naming
    ``TELEGRAM_OPERATOR_IDS`` — not a configuration error, so that a bot set up for alerts only
    keeps sending them, and never open to whoever is in the chat.
    """

    bot_token: Secret | None  # TELEGRAM_BOT_TOKEN
    chat_id: int | None  # TELEGRAM_CHAT_ID
    operator_ids: tuple[int, ...] = ()  # TELEGRAM_OPERATOR_IDS: () = no one may command
    api_url: str = "https://api.telegram.org"  # TELEGRAM_API_URL
    min_level: str = "info"  # ALERT_MIN_LEVEL
    disabled_kinds: tuple[str, ...] = ()  # ALERTS_DISABLED

    def __post_init__(self) -> None:
        """A token needs a chat; a chat or operators without a token would be silently ignored."""
        if self.bot_token is None and self.operator_ids:
            problem = (
                "set but TELEGRAM_BOT_TOKEN is not, so no command would ever be read; "
                "allowed: set it with TELEGRAM_BOT_TOKEN and TELEGRAM_CHAT_ID, or leave it unset"
            )
            raise ConfigError.for_setting("TELEGRAM_OPERATOR_IDS", problem)
        if self.bot_token is not None and self.chat_id is None:
            problem = (
                "required because TELEGRAM_BOT_TOKEN is set; allowed: the numeric chat id, "
                "e.g. 123456789 or -1001234567890"
            )
            raise ConfigError.for_setting("TELEGRAM_CHAT_ID", problem)
        if self.bot_token is None and self.chat_id is not None:
            problem = (
                "set but TELEGRAM_BOT_TOKEN is not, so nothing would be sent; "
                "allowed: set both or neither"
            )
            raise ConfigError.for_setting("TELEGRAM_CHAT_ID", problem)

    @property
    def enabled(self) -> bool:
        """True when notifications can be sent."""
        return self.bot_token is not None


@dataclass(frozen=True, slots=True, kw_only=True)
class SupervisionSettings:
    """Restart intensity and timeouts for the supervision tree (see ``supervisor/``)."""

    root_intensity: int  # ROOT_INTENSITY: max restarts within root_period_s
    root_period_s: float  # ROOT_PERIOD_S
    node_intensity: int  # NODE_INTENSITY: max restarts within node_period_s
    node_period_s: float  # NODE_PERIOD_S
    shutdown_timeout_s: float  # SHUTDOWN_TIMEOUT_S
    node_start_timeout_s: float  # NODE_START_TIMEOUT_S


@dataclass(frozen=True, slots=True, kw_only=True)
class Settings:
    """The whole configuration: loaded once by :func:`load_settings`, then passed down.

    ``repr`` is safe to log: secrets show only their masks. For a flat ``NAME -> value`` view of
    the effective configuration use :meth:`masked_summary`.
    """

    bot_id: str  # BOT_ID
    trade_mode: TradeMode  # TRADE_MODE
    log_level: LogLevel  # LOG_LEVEL
    status_interval_s: float  # STATUS_INTERVAL_S
    dashboard_port: int = 8765  # DASHBOARD_PORT; 0 = no dashboard
    dashboard_host: str = "127.0.0.1"  # DASHBOARD_HOST
    dashboard_token: Secret | None = None  # DASHBOARD_TOKEN; required when DASHBOARD_HOST is not loopback
    database: DatabaseSettings
    feed: FeedSettings
    replay: ReplaySettings
    strategy: StrategySettings
    paper: PaperSettings
    exchange: ExchangeCredentials
    telegram: TelegramSettings
    supervision: SupervisionSettings
    execution: ExecutionSettings = field(default_factory=ExecutionSettings)
    risk: RiskSettings = field(default_factory=RiskSettings)
    account: AccountSettings = field(default_factory=AccountSettings)
    failpoints: str = ""  # FAILPOINTS (resilience drills; see execution/failpoints.py)

    @property
    def has_exchange_keys(self) -> bool:
        """True when both Upbit API keys are configured."""
        return self.exchange.configured

    @property
    def has_telegram(self) -> bool:
        """True when Telegram notifications are configured (token and chat id)."""
        return self.telegram.enabled

    @property
    def uses_embedded_db(self) -> bool:
        """True when the embedded PostgreSQL is used (no ``DATABASE_URL``)."""
        return self.database.uses_embedded

    @property
    def replay_speed(self) -> float | None:
        """The replay speed-up factor, or ``None`` for as fast as possible (``max``)."""
        return self.replay.speed

    def secrets(self) -> tuple[Secret, ...]:
        """Every configured secret (for log redaction); unset ones are left out."""
        candidates = (
            self.database.url,
            self.exchange.access_key,
            self.exchange.secret_key,
            self.telegram.bot_token,
            self.dashboard_token,
        )
        return tuple(secret for secret in candidates if secret is not None)

    def masked_summary(self) -> dict[str, str]:
        """Every setting by environment name, as text safe to log (secrets masked).

        Keys are in :data:`SETTINGS_SPEC` order; unset optional settings show ``(unset)``.
        """
        values: dict[str, object] = {
            "BOT_ID": self.bot_id,
            "TRADE_MODE": self.trade_mode,
            "LOG_LEVEL": self.log_level,
            "STATUS_INTERVAL_S": self.status_interval_s,
            "DASHBOARD_PORT": self.dashboard_port,
            "DASHBOARD_HOST": self.dashboard_host,
            "DASHBOARD_TOKEN": self.dashboard_token,
            "DATABASE_URL": self.database.url,
            "EMBEDDED_PG_DIR": self.database.embedded_pg_dir,
            "FEED_SOURCE": self.feed.source,
            "UPBIT_WS_URL": self.feed.upbit_ws_url,
            "UPBIT_REST_URL": self.feed.upbit_rest_url,
            "MARKETS": self.feed.markets,
            "REPLAY_SOURCE": self.replay.source,
            "REPLAY_FILE": self.replay.file,
            "REPLAY_SPEED": "max" if self.replay.speed is None else self.replay.speed,
            "REPLAY_FROM": self.replay.start,
            "REPLAY_UNTIL": self.replay.until,
            "REPLAY_MAX_GAP_S": self.replay.max_gap_s,
            "STRATEGY": self.strategy.spec,
            "STRATEGY_PARAMS": self.strategy.params,
            "PAPER_ORDER_KRW": self.paper.order_krw,
            "PAPER_FEE_RATE": self.paper.fee_rate,
            "PAPER_SLIPPAGE_BPS": self.paper.slippage_bps,
            "PAPER_COOLDOWN_S": self.paper.cooldown_s,
            "PAPER_CAPITAL_KRW": self.paper.capital_krw,
            "PAPER_PROFILE": self.execution.paper_profile,
            "LIVE_TRADING": self.execution.live_trading,
            "LIVE_CONFIRM": self.execution.live_confirm,
            "READ_ONLY": self.execution.read_only,
            "TEST_ORDERS": self.execution.test_orders,
            "AUTO_TEST": self.execution.auto_test,
            "EXEC_THROTTLE_REMAINING": self.execution.throttle_remaining,
            "EXEC_MAX_DATA_LAG_S": self.execution.max_data_lag_s,
            "EXEC_LOOKUP_ANSWERS": self.execution.lookup_answers,
            "EXEC_LOOKUP_WINDOW_S": self.execution.lookup_window_s,
            "EXEC_FOLLOW_TIMEOUT_S": self.execution.follow_timeout_s,
            "EXEC_REVIEW_AFTER_S": self.execution.review_after_s,
            "RISK_MAX_ORDER_KRW": self.risk.max_order_krw,
            "RISK_DAILY_LOSS_KRW": self.risk.daily_loss_krw,
            "RISK_MAX_POSITIONS": self.risk.max_positions,
            "RISK_REBUY_COOLDOWN_S": self.risk.rebuy_cooldown_s,
            "LIVE_MARKETS": self.risk.live_markets,
            "ACCOUNT_POLL_S": self.account.poll_s,
            "RECONCILE_INTERVAL_S": self.account.reconcile_interval_s,
            "RECONCILE_TOLERANCE_KRW": self.account.tolerance_krw,
            "RECONCILE_HALT": self.account.halt_on_difference,
            "RECONCILE_CANCEL_UNKNOWN": self.account.cancel_unknown,
            "UPBIT_ACCESS_KEY": self.exchange.access_key,
            "UPBIT_SECRET_KEY": self.exchange.secret_key,
            "TELEGRAM_BOT_TOKEN": self.telegram.bot_token,
            "TELEGRAM_CHAT_ID": self.telegram.chat_id,
            "TELEGRAM_OPERATOR_IDS": self.telegram.operator_ids,
            "TELEGRAM_API_URL": self.telegram.api_url,
            "ALERT_MIN_LEVEL": self.telegram.min_level,
            "ALERTS_DISABLED": self.telegram.disabled_kinds,
            "ROOT_INTENSITY": self.supervision.root_intensity,
            "ROOT_PERIOD_S": self.supervision.root_period_s,
            "NODE_INTENSITY": self.supervision.node_intensity,
            "NODE_PERIOD_S": self.supervision.node_period_s,
            "SHUTDOWN_TIMEOUT_S": self.supervision.shutdown_timeout_s,
            "NODE_START_TIMEOUT_S": self.supervision.node_start_timeout_s,
            "FAILPOINTS": self.failpoints or None,
        }
        return {spec.name: _display(values[spec.name]) for spec in SETTINGS_SPEC}


def _iso(moment: datetime) -> str:
    return moment.isoformat().replace("+00:00", "Z")


def _json_default(value: object) -> object:
    if isinstance(value, Mapping):
        return dict(value)  # pyright: ignore[reportUnknownArgumentType]
    msg = f"not JSON serialisable: {type(value).__name__}"
    raise TypeError(msg)


def _display(value: object) -> str:  # noqa: PLR0911 - one return per value kind reads best
    """Render one setting value for :meth:`Settings.masked_summary`."""
    if value is None:
        return "(unset)"
    if isinstance(value, Secret):
        return value.masked
    if isinstance(value, StrEnum):
        return value.value
    if isinstance(value, datetime):
        return _iso(value)
    if value == ():
        return "(unset)"
    if isinstance(value, tuple):
        return ",".join(str(item) for item in value)  # pyright: ignore[reportUnknownVariableType]
    if isinstance(value, Mapping):
        return json.dumps(value, default=_json_default, sort_keys=True, separators=(",", ":"))
    return str(value)


# --- loading -------------------------------------------------------------------------------

_OVERRIDE = "command-line override"
_ENVIRONMENT = "the environment"
_DEFAULT = "default"
_KNOWN_NAMES = "allowed: the names in .env.example"


@dataclass(frozen=True, slots=True, kw_only=True)
class _Raw:
    """The effective raw text of one setting and where it came from."""

    text: str | None  # stripped; None = unset everywhere and no default
    source: str


class _Collector:
    """Parses raw values one setting at a time, collecting problems instead of stopping."""

    def __init__(self, raw: Mapping[str, _Raw]) -> None:
        self._raw = raw
        self.problems: list[tuple[str, str]] = []
        self.bad: set[str] = set()

    def _report(self, name: str, problem: str) -> None:
        self.problems.append((name, problem))
        self.bad.add(name)

    def _parse(self, name: str, parse: Callable[[str], T]) -> tuple[bool, T | None]:
        raw = self._raw[name]
        if raw.text is None:
            return False, None
        spec = _SPECS[name]
        where = f"from {raw.source}"
        text = raw.text if len(raw.text) <= _SHOWN_CHARS else f"{raw.text[:_SHOWN_CHARS]}… ({len(raw.text)} characters)"
        shown = f"the value ({where})" if spec.secret else f"got {text!r} ({where})"
        reason = parsing.placeholder_reason(raw.text)
        if reason is not None:
            self._report(name, f"{shown} {reason}")
            return False, None
        try:
            return True, parse(raw.text)
        except InvalidValueError as exc:
            self._report(name, f"{shown}: {exc}")
            return False, None

    def optional(self, name: str, parse: Callable[[str], T]) -> T | None:
        """The parsed value, or ``None`` when unset or invalid (invalid ones are reported)."""
        _, value = self._parse(name, parse)
        return value

    def required(self, name: str, parse: Callable[[str], T]) -> T:
        """The parsed value, falling back to the parsed default when unset or invalid."""
        ok, value = self._parse(name, parse)
        if ok:
            return value  # type: ignore[return-value]  # ok means parse() returned a T
        return parse(_SPECS[name].default)

    def group(self, involved: tuple[str, ...], build: Callable[[], T]) -> T | None:
        """Build a settings group, reporting the problems its ``__post_init__`` invariant finds.

        ``involved`` names the settings the group's cross-field invariant reads. If one of them
        is already reported as invalid, the invariant is not checked (its verdict would be
        about a stand-in value); other invalid settings of the group are built from their
        defaults, so an unrelated bad value does not hide an invariant violation.
        """
        if self.bad.intersection(involved):
            return None
        try:
            return build()
        except ConfigError as exc:
            for name, problem in exc.problems:
                self._report(name, problem)
            return None


def _suggest(key: str) -> str:
    matches = difflib.get_close_matches(key.upper(), SETTING_NAMES, n=1, cutoff=0.6)
    return f"did you mean {matches[0]}? " if matches else ""


def _read_env_file(path: Path) -> tuple[dict[str, str | None], list[tuple[str, str]]]:
    """Parse a ``.env`` file with python-dotenv; report syntax errors and duplicate keys."""
    label = f".env file {path}"
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        return {}, [(str(path), f"cannot read the {label}: {exc}")]
    problems: list[tuple[str, str]] = []
    bindings = list(parse_stream(io.StringIO(text)))
    syntax = "allowed: NAME=value, NAME='value', NAME=\"value\", comments starting with #"
    problems.extend(
        (
            f"{path.name}:{binding.original.line}",
            f"line {binding.original.line} of the {label} cannot be parsed; {syntax}",
        )
        for binding in bindings
        if binding.error
    )
    counts = Counter(binding.key for binding in bindings if binding.key is not None)
    problems.extend(
        (key, f"set {count} times in the {label}; allowed: each setting once")
        for key, count in counts.items()
        if count > 1
    )
    values = dotenv_values(stream=io.StringIO(text), interpolate=False)
    return dict(values), problems


def _layers(
    env: Mapping[str, str], env_file: Path | None, overrides: Mapping[str, str]
) -> tuple[list[tuple[str, Mapping[str, str | None]]], list[tuple[str, str]]]:
    """The value layers, highest precedence first, and problems with unknown or bad keys."""
    problems: list[tuple[str, str]] = [
        (key, f"unknown setting ({_OVERRIDE}); {_suggest(key)}{_KNOWN_NAMES}")
        for key in overrides
        if key not in SETTING_NAMES
    ]
    layers: list[tuple[str, Mapping[str, str | None]]] = [
        (_OVERRIDE, overrides),
        (_ENVIRONMENT, env),
    ]
    if env_file is not None:
        file_values, file_problems = _read_env_file(env_file)
        problems.extend(file_problems)
        label = f".env file {env_file}"
        for key, value in file_values.items():
            if key not in SETTING_NAMES:
                problem = f"unknown setting in the {label}; {_suggest(key)}{_KNOWN_NAMES}"
                problems.append((key, problem))
            elif value is None:
                problem = f"has no '=' in the {label}; allowed: {key}=value, or {key}= to unset it"
                problems.append((key, problem))
        layers.append((label, file_values))
    return layers, problems


def _resolve(layers: list[tuple[str, Mapping[str, str | None]]]) -> dict[str, _Raw]:
    """For every setting, the first non-empty value by precedence, else its default."""
    resolved: dict[str, _Raw] = {}
    for spec in SETTINGS_SPEC:
        raw = _Raw(text=spec.default or None, source=_DEFAULT)
        for source, values in layers:
            text = (values.get(spec.name) or "").strip()
            if text:
                raw = _Raw(text=text, source=source)
                break
        resolved[spec.name] = raw
    return resolved


def parse_failpoints(raw: str) -> str:
    """``name%N`` or ``name@N`` items, comma-separated (checked here, interpreted by execution)."""
    for item in raw.split(","):
        name, sep, count = item.strip().replace("@", "%").partition("%")
        if not sep or not name or not (count.isascii() and count.isdigit()) or int(count) < 1:
            msg = f"{item.strip()!r} is not a failpoint; allowed: name%N (every Nth pass) or name@N (the Nth pass)"
            raise InvalidValueError(msg)
    return raw


LOOKUP_ANSWERS_MIN = 2
LOOKUP_WINDOW_MIN_S = 1.0
"""The floor under the "absent" rule (docs/live-trading-safety.md, "The lookup window").

An unknown outcome is declared absent, and a new attempt with a new identifier may follow, only
after ``EXEC_LOOKUP_ANSWERS`` "not found" answers spread over ``EXEC_LOOKUP_WINDOW_S``. An order
the exchange accepted but does not list yet answers "not found" too; if the window is shorter
than that listing lag, one intent gets two exchange orders (seen with 0.001 s and one answer).
Upbit does not publish the lag (UNCONFIRMED); it is a replica delay, observed well under a
second. One answer is never enough, and a window under a second is refused: the default (3
answers over 3 s) keeps a margin of several times the lag we assume.
"""


def _lookup_answers(raw: str) -> int:
    value = parsing.positive_int(raw)
    if value < LOOKUP_ANSWERS_MIN:
        msg = (f"{value} answer is not enough to call an order absent (one 'not found' may only be the exchange "
               f"listing it late); allowed: a whole number >= {LOOKUP_ANSWERS_MIN} (default 3)")
        raise InvalidValueError(msg)
    return value


def _lookup_window(raw: str) -> float:
    value = parsing.positive_float(raw)
    if value < LOOKUP_WINDOW_MIN_S:
        msg = (f"{value:g} s is shorter than the exchange may take to list a new order, so one intent could get "
               f"two orders; allowed: seconds >= {LOOKUP_WINDOW_MIN_S:g} (default 3)")
        raise InvalidValueError(msg)
    return value


def _trade_mode(raw: str) -> TradeMode:
    return parsing.choice(TradeMode)(raw)


def _level(raw: str) -> LogLevel:
    try:
        return LogLevel(raw.upper())
    except ValueError as exc:
        msg = f"not a log level; allowed: {' | '.join(LogLevel)}"
        raise InvalidValueError(msg) from exc


def _build(raw: Mapping[str, _Raw]) -> Settings:
    """Parse and validate everything, raising one ConfigError with all problems."""
    c = _Collector(raw)
    bot_id = c.required(
        "BOT_ID", parsing.matching(r"[a-z0-9]{1,12}", "1-12 lower-case letters or digits, e.g. sbx")
    )
    trade_mode = c.required("TRADE_MODE", _trade_mode)
    log_level = c.required("LOG_LEVEL", _level)
    status_interval_s = c.required("STATUS_INTERVAL_S", parsing.positive_float)
    dashboard_port = c.required("DASHBOARD_PORT", parsing.port)
    dashboard_host = c.required("DASHBOARD_HOST", parsing.host)
    dashboard_token = c.optional("DASHBOARD_TOKEN", parsing.dashboard_token)
    c.group(("DASHBOARD_PORT", "DASHBOARD_HOST", "DASHBOARD_TOKEN"),
            lambda: _check_dashboard_exposure(dashboard_host, dashboard_port, dashboard_token))

    db_url = c.optional("DATABASE_URL", parsing.database_url)
    pg_dir = c.required("EMBEDDED_PG_DIR", parsing.path)

    feed_source = c.required("FEED_SOURCE", parsing.choice(FeedSource))
    ws_url = c.required("UPBIT_WS_URL", parsing.websocket_url)
    rest_url = c.required("UPBIT_REST_URL", parsing.http_url)
    markets = c.optional("MARKETS", parsing.markets) or ()

    replay_source = c.required("REPLAY_SOURCE", parsing.choice(ReplaySource))
    replay_file = c.optional("REPLAY_FILE", parsing.existing_file)
    speed = c.required("REPLAY_SPEED", parsing.replay_speed)
    start = c.optional("REPLAY_FROM", parsing.utc_timestamp)
    until = c.optional("REPLAY_UNTIL", parsing.utc_timestamp)
    max_gap_s = c.required("REPLAY_MAX_GAP_S", parsing.positive_float)

    module, class_name = c.required("STRATEGY", parsing.strategy_ref)
    params = c.required("STRATEGY_PARAMS", parsing.json_object)

    order_krw = c.required(
        "PAPER_ORDER_KRW",
        parsing.decimal_in_range(
            UPBIT_MIN_ORDER_KRW, MAX_KRW, f"an amount in KRW >= 5000 (Upbit's minimum order) and <= {_KRW_CAP}"
        ),
    )
    fee_rate = c.required(
        "PAPER_FEE_RATE",
        parsing.decimal_in_range(
            Decimal(0), MAX_FEE_RATE, "a fraction from 0 to 0.01 (Upbit KRW: 0.0005)"
        ),
    )

    slippage_bps = c.required(
        "PAPER_SLIPPAGE_BPS", parsing.decimal_in_range(Decimal(0), Decimal(1000), "basis points from 0 to 1000")
    )
    cooldown_s = c.required(
        "PAPER_COOLDOWN_S", parsing.decimal_in_range(Decimal(0), _MAX_SECONDS, _SECONDS)
    )
    capital_krw = c.required(
        "PAPER_CAPITAL_KRW", parsing.decimal_in_range(UPBIT_MIN_ORDER_KRW, MAX_KRW,
                                                      f"an amount in KRW >= 5000 and <= {_KRW_CAP}")
    )

    execution = ExecutionSettings(
        paper_profile=c.required("PAPER_PROFILE", parsing.choice(PaperProfile)),
        live_trading=c.required("LIVE_TRADING", parsing.boolean),
        live_confirm=c.optional("LIVE_CONFIRM", str),
        read_only=c.required("READ_ONLY", parsing.boolean),
        test_orders=c.required("TEST_ORDERS", parsing.boolean),
        auto_test=c.required("AUTO_TEST", parsing.boolean),
        throttle_remaining=c.required("EXEC_THROTTLE_REMAINING", parsing.non_negative_int),
        max_data_lag_s=c.required("EXEC_MAX_DATA_LAG_S", parsing.positive_float),
        lookup_answers=c.required("EXEC_LOOKUP_ANSWERS", _lookup_answers),
        lookup_window_s=c.required("EXEC_LOOKUP_WINDOW_S", _lookup_window),
        follow_timeout_s=c.required("EXEC_FOLLOW_TIMEOUT_S", parsing.positive_float),
        review_after_s=c.required("EXEC_REVIEW_AFTER_S", parsing.positive_float),
    )
    risk = RiskSettings(
        max_order_krw=c.required("RISK_MAX_ORDER_KRW", parsing.decimal_in_range(
            UPBIT_MIN_ORDER_KRW, MAX_KRW, f"an amount in KRW >= 5000 and <= {_KRW_CAP}")),
        daily_loss_krw=c.required("RISK_DAILY_LOSS_KRW", parsing.decimal_in_range(
            Decimal(0), MAX_KRW, f"an amount in KRW >= 0 and <= {_KRW_CAP}")),
        max_positions=c.required("RISK_MAX_POSITIONS", parsing.non_negative_int),
        rebuy_cooldown_s=float(c.required("RISK_REBUY_COOLDOWN_S", parsing.decimal_in_range(
            Decimal(0), _MAX_SECONDS, _SECONDS))),
        live_markets=c.optional("LIVE_MARKETS", parsing.markets) or (),
    )
    account = AccountSettings(
        poll_s=c.required("ACCOUNT_POLL_S", parsing.positive_float),
        reconcile_interval_s=c.required("RECONCILE_INTERVAL_S", parsing.positive_float),
        tolerance_krw=c.required("RECONCILE_TOLERANCE_KRW", parsing.decimal_in_range(
            Decimal(0), MAX_KRW, f"an amount in KRW >= 0 and <= {_KRW_CAP}")),
        halt_on_difference=c.required("RECONCILE_HALT", parsing.boolean),
        cancel_unknown=c.required("RECONCILE_CANCEL_UNKNOWN", parsing.boolean),
    )

    access_key = c.optional("UPBIT_ACCESS_KEY", parsing.api_key)
    secret_key = c.optional("UPBIT_SECRET_KEY", parsing.api_key)
    bot_token = c.optional("TELEGRAM_BOT_TOKEN", parsing.telegram_token)
    telegram_api_url = c.required("TELEGRAM_API_URL", parsing.http_url)
    alert_min_level = c.required(
        "ALERT_MIN_LEVEL", parsing.matching(r"info|warning|error|critical", "info, warning, error or critical")
    )
    alerts_disabled = c.optional("ALERTS_DISABLED", parsing.alert_kinds) or ()
    chat_id = c.optional("TELEGRAM_CHAT_ID", parsing.chat_id)
    operator_ids = c.optional("TELEGRAM_OPERATOR_IDS", parsing.telegram_user_ids) or ()

    root_intensity = c.required("ROOT_INTENSITY", parsing.non_negative_int)
    root_period_s = c.required("ROOT_PERIOD_S", parsing.positive_float)
    node_intensity = c.required("NODE_INTENSITY", parsing.non_negative_int)
    node_period_s = c.required("NODE_PERIOD_S", parsing.positive_float)
    shutdown_timeout_s = c.required("SHUTDOWN_TIMEOUT_S", parsing.positive_float)
    node_start_timeout_s = c.required("NODE_START_TIMEOUT_S", parsing.positive_float)

    feed = c.group(
        ("FEED_SOURCE", "MARKETS"),
        lambda: FeedSettings(source=feed_source, upbit_ws_url=ws_url, upbit_rest_url=rest_url, markets=markets),
    )
    replay = c.group(
        ("REPLAY_FROM", "REPLAY_UNTIL"),
        lambda: ReplaySettings(
            source=replay_source, file=replay_file, speed=speed, start=start, until=until,
            max_gap_s=max_gap_s,
        ),
    )
    exchange = c.group(
        ("UPBIT_ACCESS_KEY", "UPBIT_SECRET_KEY"),
        lambda: ExchangeCredentials(access_key=access_key, secret_key=secret_key),
    )
    telegram = c.group(
        ("TELEGRAM_BOT_TOKEN", "TELEGRAM_CHAT_ID", "TELEGRAM_OPERATOR_IDS"),
        lambda: TelegramSettings(bot_token=bot_token, chat_id=chat_id, operator_ids=operator_ids,
                                 api_url=telegram_api_url, min_level=alert_min_level,
                                 disabled_kinds=alerts_disabled),
    )
    failpoints = c.optional("FAILPOINTS", parse_failpoints) or ""
    if c.problems or feed is None or replay is None or exchange is None or telegram is None:
        raise ConfigError(_in_spec_order(c.problems))
    return Settings(
        bot_id=bot_id,
        trade_mode=trade_mode,
        log_level=log_level,
        status_interval_s=status_interval_s,
        dashboard_port=dashboard_port,
        dashboard_host=dashboard_host,
        dashboard_token=dashboard_token,
        database=DatabaseSettings(url=db_url, embedded_pg_dir=pg_dir),
        feed=feed,
        replay=replay,
        strategy=StrategySettings(module=module, class_name=class_name, params=params),
        paper=PaperSettings(order_krw=order_krw, fee_rate=fee_rate, slippage_bps=slippage_bps, cooldown_s=cooldown_s,
                            capital_krw=capital_krw),
        exchange=exchange,
        telegram=telegram,
        supervision=SupervisionSettings(
            root_intensity=root_intensity,
            root_period_s=root_period_s,
            node_intensity=node_intensity,
            node_period_s=node_period_s,
            shutdown_timeout_s=shutdown_timeout_s,
            node_start_timeout_s=node_start_timeout_s,
        ),
        execution=execution,
        risk=risk,
        account=account,
        failpoints=failpoints,
    )


def _check_dashboard_exposure(host: str, port: int, token: Secret | None) -> None:
    """A dashboard other machines can reach shows balances and orders: it needs a token."""
    if port and token is None and not parsing.is_loopback_host(host):
        problem = (f"required because DASHBOARD_HOST={host} is not a loopback address, so anyone who can reach"
                   f" port {port} could read the balances, positions and orders; allowed: a token of at least"
                   f" {parsing.DASHBOARD_TOKEN_MIN_CHARS} characters, or DASHBOARD_HOST=127.0.0.1 (and an SSH tunnel)")
        raise ConfigError.for_setting("DASHBOARD_TOKEN", problem)


def _in_spec_order(problems: list[tuple[str, str]]) -> list[tuple[str, str]]:
    order = {spec.name: index for index, spec in enumerate(SETTINGS_SPEC)}
    return sorted(problems, key=lambda item: order.get(item[0], -1))


def load_settings(
    env: Mapping[str, str] | None = None,
    env_file: Path | None = None,
    overrides: Mapping[str, str] | None = None,
) -> Settings:
    """Load, validate and freeze the configuration. Call once at start and pass the result down.

    Args:
        env: The environment to read; ``None`` reads the process environment (``os.environ``).
            Tests pass ``{}`` for isolation.
        env_file: The ``.env`` file to read. ``None`` reads ``./.env`` if it exists and no file
            otherwise; an explicitly given file must exist.
        overrides: Values from command-line flags, by setting name; they win over everything.

    Returns:
        The validated, frozen settings.

    Raises:
        ConfigError: listing every invalid, unknown or placeholder value at once.

    """
    if env_file is None:
        default_file = Path(".env")
        env_file = default_file if default_file.is_file() else None
    elif not env_file.is_file():
        raise ConfigError([(str(env_file), "the given .env file does not exist or is not a file")])
    layers, problems = _layers(os.environ if env is None else env, env_file, overrides or {})
    try:
        settings = _build(_resolve(layers))
    except ConfigError as exc:
        raise ConfigError([*problems, *exc.problems]) from None
    if problems:
        raise ConfigError(problems)
    return settings
