"""The settings tree and :func:`load_settings`, the only code that reads configuration.

Configuration is loaded **once**, at process start, into a frozen :class:`Settings` tree that is
passed down by constructor. No other module reads environment variables or ``.env`` files.

Every setting is declared exactly once, as a field of its group below (:mod:`config.declare`):
environment name, default, parser (type and bounds), help text, secret-ness, and whether its
group's ``__post_init__`` invariant reads it. Everything else is derived from those declarations:
loading and validation (:mod:`config.loader`: overrides > environment > ``.env`` > defaults,
every problem at once), :data:`SETTINGS_SPEC`, :meth:`Settings.masked_summary`,
:meth:`Settings.secrets`, the dataclass defaults (``RiskSettings()`` has the declared defaults)
and ``.env.example`` (``python -m config.example > .env.example``; a test holds them equal).
Secrets are wrapped in :class:`~config.secret.Secret`, so ``repr(settings)`` and
:meth:`Settings.masked_summary` never contain them.
"""

from __future__ import annotations

# ruff: noqa: RUF009 - setting(), optional() and group() return dataclasses.field()s: no default is shared state
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from pathlib import Path

from config import choices, declare, loader, parsing
from config.choices import (
    LIVE_CONFIRM_PHRASE,
    FeedSource,
    LogLevel,
    PaperProfile,
    ReplaySource,
    TradeMode,
)
from config.declare import SettingSpec, group, optional, problem, setting
from config.parsing import JsonValue
from config.secret import DatabaseUrl, Secret

__all__ = ["LIVE_CONFIRM_PHRASE", "LOOKUP_ANSWERS_MIN", "LOOKUP_WINDOW_MIN_S", "MAX_FEE_RATE", "MAX_KRW",
           "SETTINGS_SPEC", "SETTING_NAMES", "UPBIT_MIN_ORDER_KRW", "AccountSettings", "DatabaseSettings",
           "ExchangeCredentials", "ExecutionSettings", "FeedSettings", "FeedSource", "LogLevel", "PaperProfile",
           "PaperSettings", "ReplaySettings", "ReplaySource", "RiskSettings", "SettingSpec", "Settings",
           "StrategySettings", "SupervisionSettings", "TelegramSettings", "TradeMode", "load_settings"]

UPBIT_MIN_ORDER_KRW = Decimal(5000)
"""Upbit's minimum order total on KRW markets."""

MAX_FEE_RATE = Decimal("0.01")

MAX_KRW = Decimal(10) ** 12
"""The ceiling of every KRW amount setting (orders, capital, loss limit, tolerance): one trillion KRW.

Far above any real order, yet small enough that sums, products and 8-decimal quantizing stay
exact in a 28-digit decimal context and fit every ``numeric`` column; ``1e400`` is refused."""

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

# --- parsers with this module's bounds -----------------------------------------------------------

_KRW_CAP = f"{MAX_KRW:,f}"
_COOLDOWN = parsing.decimal_in_range(Decimal(0), Decimal(parsing.MAX_SECONDS),
                                     f"seconds >= 0 and <= {parsing.MAX_SECONDS}")
_LOOKUP_ANSWERS = parsing.at_least(parsing.positive_int, LOOKUP_ANSWERS_MIN, (
    "{value} answer is not enough to call an order absent (one 'not found' may only be the exchange listing it"
    " late); allowed: a whole number >= {floor}"))
_LOOKUP_WINDOW = parsing.at_least(parsing.positive_float, LOOKUP_WINDOW_MIN_S, (
    "{value:g} s is shorter than the exchange may take to list a new order, so one intent could get two orders;"
    " allowed: seconds >= {floor:g}"))


def _krw(minimum: Decimal, note: str = "") -> Callable[[str], Decimal]:
    """An amount in KRW from ``minimum`` to :data:`MAX_KRW`."""
    return parsing.decimal_in_range(minimum, MAX_KRW, f"an amount in KRW >= {minimum}{note} and <= {_KRW_CAP}")


def _float_cooldown(raw: str) -> float:
    return float(_COOLDOWN(raw))


# --- the settings tree: each field declares one setting ------------------------------------------


@dataclass(frozen=True, slots=True, kw_only=True)
class DatabaseSettings:
    """Where the ledger lives: an external PostgreSQL, or the embedded one."""

    url: DatabaseUrl | None = optional(
        "DATABASE_URL", parsing.database_url, "PostgreSQL URL (postgresql://user:password@host:5432/dbname);"
        " empty = embedded PostgreSQL.", secret=True, section="database")
    embedded_pg_dir: Path = setting("EMBEDDED_PG_DIR", "var/pgdata", parsing.path,
                                    "Data directory of the embedded PostgreSQL (relative to the working directory).")

    @property
    def uses_embedded(self) -> bool:
        """True when no ``DATABASE_URL`` is set and the embedded PostgreSQL is used."""
        return self.url is None


@dataclass(frozen=True, slots=True, kw_only=True)
class FeedSettings:
    """Where market data comes from and for which markets."""

    source: FeedSource = setting(
        "FEED_SOURCE", FeedSource.REPLAY, parsing.choice(FeedSource), "replay = the sandbox (a real recording"
        " replayed locally) | upbit = the live public WebSocket.", invariant=True, section="market data feed")
    upbit_ws_url: str = setting("UPBIT_WS_URL", "wss://api.upbit.com/websocket/v1", parsing.websocket_url,
                                "Upbit public WebSocket URL (ws:// or wss://); used when FEED_SOURCE=upbit.")
    upbit_rest_url: str = setting("UPBIT_REST_URL", "https://api.upbit.com", parsing.http_url, "Upbit REST base URL:"
                                  " orders and balances go there, and the live feed backfills missed trades from it.")
    markets: tuple[str, ...] = optional(
        "MARKETS", parsing.markets, "Comma-separated markets, e.g. KRW-BTC,KRW-ETH. Empty = every market in the"
        " recording (replay only); required when FEED_SOURCE=upbit.", unset=(), invariant=True)

    def __post_init__(self) -> None:
        """The live feed needs an explicit market list."""
        if self.source is FeedSource.UPBIT and not self.markets:
            raise problem(self, "markets", "required when FEED_SOURCE=upbit; allowed: comma-separated market codes,"
                                           " e.g. KRW-BTC,KRW-ETH")

    @property
    def is_live(self) -> bool:
        """True when market data comes from the live exchange feed (not a replay)."""
        return self.source is FeedSource.UPBIT


@dataclass(frozen=True, slots=True, kw_only=True)
class ReplaySettings:
    """How the recording is replayed (used when the feed source is ``replay``)."""

    source: ReplaySource = setting(
        "REPLAY_SOURCE", ReplaySource.CANDLES, parsing.choice(ReplaySource), "candles = a year of real KRW-BTC"
        " 1-minute candles expanded into trades | capture = 30 s of real WebSocket frames | capture-long = 2 min of"
        " them.", section="replay (FEED_SOURCE=replay)")
    file: Path | None = optional(
        "REPLAY_FILE", parsing.existing_file, "A recording of your own to replay instead (a capture, candle CSV or"
        " trade file); empty = the shipped one. It is read whole at start: a bad row is named (file, line, problem)"
        " and nothing starts (exit 2).")
    speed: float | None = setting(
        "REPLAY_SPEED", "60", parsing.replay_speed, "Speed-up factor > 0 (1 = real time, 60 = one minute per"
        " second) or max.", show=lambda speed: "max" if speed is None else str(speed))
    start: datetime | None = optional(
        "REPLAY_FROM", parsing.utc_timestamp, "Start of the replay window, ISO-8601 (naive = UTC; offsets are"
        " converted); empty = the recording's start.", invariant=True)
    until: datetime | None = optional("REPLAY_UNTIL", parsing.utc_timestamp, "End of the replay window, after"
                                      " REPLAY_FROM; empty = the recording's end.", invariant=True)
    max_gap_s: float = setting("REPLAY_MAX_GAP_S", "5", parsing.positive_float,
                               "Longest gap in the recording replayed in (scaled) real time, seconds (> 0).")

    def __post_init__(self) -> None:
        """The replay window must not be empty."""
        if self.start is not None and self.until is not None and self.start >= self.until:
            text = f"{declare.iso(self.until)} is not after REPLAY_FROM={declare.iso(self.start)}"
            raise problem(self, "until", f"{text}; allowed: a timestamp later than REPLAY_FROM")


@dataclass(frozen=True, slots=True, kw_only=True)
class StrategySettings:
    """Which strategy runs and with which parameters (the import is checked by its loader)."""

    spec: str = setting("STRATEGY", "trading.builtin:SmaMomentum", parsing.strategy_spec,
                        "Strategy class as module:Class.", section="strategy")
    params: Mapping[str, JsonValue] = setting(
        "STRATEGY_PARAMS", "{}", parsing.json_object, 'JSON object of strategy parameters, e.g. {"fast": 10,'
        ' "slow": 60}.')

    @property
    def module(self) -> str:
        """The module of the ``module:Class`` reference."""
        return self.spec.partition(":")[0]

    @property
    def class_name(self) -> str:
        """The class of the ``module:Class`` reference."""
        return self.spec.partition(":")[2]


@dataclass(frozen=True, slots=True, kw_only=True)
class PaperSettings:
    """Paper execution: order size, simulated fee and slippage, cooldown and capital."""

    order_krw: Decimal = setting(
        "PAPER_ORDER_KRW", "100000", _krw(UPBIT_MIN_ORDER_KRW, " (Upbit's minimum order)"), "Paper order size in KRW"
        " (>= 5000, Upbit's minimum order total; at most 10^12, like every KRW amount).", section="paper execution")
    fee_rate: Decimal = setting(
        "PAPER_FEE_RATE", "0.0005", parsing.decimal_in_range(Decimal(0), MAX_FEE_RATE, "a fraction from 0 to 0.01"
        " (Upbit KRW: 0.0005)"), "Paper fee rate, 0 to 0.01 (Upbit's KRW market fee is 0.05 %).")
    slippage_bps: Decimal = setting(
        "PAPER_SLIPPAGE_BPS", "0", parsing.decimal_in_range(Decimal(0), Decimal(1000), "basis points from 0 to 1000"),
        "Paper fills move this many basis points against us, then onto Upbit's tick grid (0 to 1000).")
    cooldown_s: Decimal = setting("PAPER_COOLDOWN_S", "0", _COOLDOWN,
                                  "No re-buy of a market for this many seconds after a full exit (>= 0).")
    capital_krw: Decimal = setting("PAPER_CAPITAL_KRW", "10000000", _krw(UPBIT_MIN_ORDER_KRW),
                                   "Paper starting capital in KRW (>= 5000); the equity curve starts here.")


@dataclass(frozen=True, slots=True, kw_only=True)
class ExecutionSettings:
    """The live guards and how execution sends, waits and resolves (see ``execution/``)."""

    paper_profile: PaperProfile = setting(
        "PAPER_PROFILE", PaperProfile.DEFAULT, parsing.choice(PaperProfile),
        "default | test. A test profile (tiny, busy settings for smoke runs) never trades live.")
    live_trading: bool = setting(
        "LIVE_TRADING", "false", parsing.boolean, "true to allow live orders at all.",
        section="live guards: live orders need ALL of them (else test where AUTO_TEST=true, else shadow)")
    live_confirm: str | None = optional("LIVE_CONFIRM", str, f"Must read exactly: {LIVE_CONFIRM_PHRASE}")
    read_only: bool = setting("READ_ONLY", "false", parsing.boolean,
                              "true: nothing is ever sent to the exchange (READ_ONLY), whatever the mode.")
    test_orders: bool = setting("TEST_ORDERS", "true", parsing.boolean,
                                "false: test mode is refused and runs as shadow (TEST_DISABLED).")
    auto_test: bool = setting("AUTO_TEST", "false", parsing.boolean,
                              "true: a live request that a guard refuses runs as test orders instead of shadow.")
    throttle_remaining: int = setting(
        "EXEC_THROTTLE_REMAINING", "1", parsing.non_negative_int, "An order waits (THROTTLED) when this many or fewer"
        " requests remain in Upbit's current second.", section="execution")
    max_data_lag_s: float = setting("EXEC_MAX_DATA_LAG_S", "30", parsing.positive_float, "An intent older than this"
                                    " (or a live feed's bar this stale), seconds, is not sent (DATA_LAG).")
    lookup_answers: int = setting(
        "EXEC_LOOKUP_ANSWERS", "3", _LOOKUP_ANSWERS, "An order whose outcome is unknown counts as never placed only"
        f" after this many not-found lookups of its identifier (at least {LOOKUP_ANSWERS_MIN}), spread over"
        " EXEC_LOOKUP_WINDOW_S.")
    lookup_window_s: float = setting(
        "EXEC_LOOKUP_WINDOW_S", "3", _LOOKUP_WINDOW, "The not-found lookups of EXEC_LOOKUP_ANSWERS span at least this"
        f" many seconds (at least {LOOKUP_WINDOW_MIN_S:g}: Upbit lists new orders late, and a shorter window could"
        " place one intent twice).")
    follow_timeout_s: float = setting("EXEC_FOLLOW_TIMEOUT_S", "60", parsing.positive_float,
                                      "A live order is polled to a final state for this long (seconds), then less"
                                      " often.")
    review_after_s: float = setting(
        "EXEC_REVIEW_AFTER_S", "300", parsing.positive_float, "An order whose outcome no lookup could settle for this"
        " long (seconds) goes to the needs-review queue (a critical alert; ctl review <attempt> placed|absent"
        " settles it).")

    @property
    def live_confirmed(self) -> bool:
        """True when ``LIVE_CONFIRM`` is exactly the phrase."""
        return self.live_confirm == LIVE_CONFIRM_PHRASE


@dataclass(frozen=True, slots=True, kw_only=True)
class RiskSettings:
    """Limits every test/live order is checked against (see ``execution/risk.py``)."""

    max_order_krw: Decimal = setting("RISK_MAX_ORDER_KRW", "1000000", _krw(UPBIT_MIN_ORDER_KRW), "Largest order total"
                                     " in KRW (5000 to 10^12).", section="risk (test and live orders)")
    daily_loss_krw: Decimal = setting("RISK_DAILY_LOSS_KRW", "100000", _krw(Decimal(0)),
                                      "Realised loss within one UTC day that trips the kill switch, KRW.")
    max_positions: int = setting("RISK_MAX_POSITIONS", "3", parsing.non_negative_int, "Most markets held at once.")
    rebuy_cooldown_s: float = setting("RISK_REBUY_COOLDOWN_S", "0", _float_cooldown,
                                      "No re-buy of a market this many seconds after selling it.")
    live_markets: tuple[str, ...] = optional(
        "LIVE_MARKETS", parsing.markets, "Markets live orders may trade, comma-separated. Empty = none: every live"
        " order is refused (RISK_LIMIT).", unset=())


@dataclass(frozen=True, slots=True, kw_only=True)
class AccountSettings:
    """Balance polling and reconciliation with the exchange (see ``actors/account.py``)."""

    poll_s: float = setting("ACCOUNT_POLL_S", "10", parsing.positive_float, "Seconds between balance polls.",
                            section="account and reconciliation (with API keys)")
    reconcile_interval_s: float = setting(
        "RECONCILE_INTERVAL_S", "60", parsing.positive_float,
        "Seconds between reconciliations of balances and open orders with the exchange.")
    tolerance_krw: Decimal = setting("RECONCILE_TOLERANCE_KRW", "1", _krw(Decimal(0)),
                                     "A balance difference worth more than this many KRW is reported.")
    halt_on_difference: bool = setting("RECONCILE_HALT", "true", parsing.boolean,
                                       "true: a reconciliation difference halts new entries until resolved.")
    cancel_unknown: bool = setting("RECONCILE_CANCEL_UNKNOWN", "false", parsing.boolean,
                                   "true: cancel open exchange orders that are not ours; false: report them only.")


@dataclass(frozen=True, slots=True, kw_only=True)
class ExchangeCredentials:
    """Upbit Open API keys: both or neither."""

    access_key: Secret | None = optional("UPBIT_ACCESS_KEY", parsing.api_key, "Upbit Open API access key.",
                                         secret=True, invariant=True,
                                         section="Upbit API keys (optional, both or neither)")
    secret_key: Secret | None = optional("UPBIT_SECRET_KEY", parsing.api_key, "Upbit Open API secret key.",
                                         secret=True, invariant=True)

    def __post_init__(self) -> None:
        """One key without the other is a mistake, never a mode."""
        if (self.access_key is None) != (self.secret_key is None):
            present, missing = ("access_key", "secret_key") if self.secret_key is None else ("secret_key", "access_key")
            given = declare.name_of(self, present)
            raise problem(self, missing, f"required because {given} is set; allowed: set both keys or neither")

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

    bot_token: Secret | None = optional("TELEGRAM_BOT_TOKEN", parsing.telegram_token, "Bot token from @BotFather.",
                                        secret=True, invariant=True, section="Telegram notifications (optional)")
    chat_id: int | None = optional("TELEGRAM_CHAT_ID", parsing.chat_id, "Chat id to post to (non-zero; negative for"
                                   " groups); required when the token is set.", invariant=True)
    operator_ids: tuple[int, ...] = optional(
        "TELEGRAM_OPERATOR_IDS", parsing.telegram_user_ids, "Telegram *user* ids (numeric, comma-separated, e.g."
        " 123456789,987654321) allowed to send commands, only in TELEGRAM_CHAT_ID; a destructive command needs"
        " /confirm from the same user. Unset: every command is refused (alerts are still sent). Find your id with"
        " @userinfobot.", unset=(), invariant=True)
    min_level: str = setting(
        "ALERT_MIN_LEVEL", "info", parsing.matching(r"info|warning|error|critical", "info, warning, error or critical"),
        "Alerts below this level are recorded but not sent: info | warning | error | critical.")
    disabled_kinds: tuple[str, ...] = optional(
        "ALERTS_DISABLED", parsing.alert_kinds, "Alert kinds recorded but not sent (comma-separated), e.g."
        " paper_fill,control. Kinds: system, paper_fill, node_exit, escalation, control, feed_gap, breaker,"
        " dashboard, daily_summary.", unset=())
    api_url: str = setting("TELEGRAM_API_URL", "https://api.telegram.org", parsing.http_url,
                           "Telegram Bot API base URL; change only for a local Bot API server or tests.")

    def __post_init__(self) -> None:
        """A token needs a chat; a chat or operators without a token would be silently ignored."""
        if self.bot_token is None and self.operator_ids:
            raise problem(self, "operator_ids", "set but TELEGRAM_BOT_TOKEN is not, so no command would ever be read;"
                          " allowed: set it with TELEGRAM_BOT_TOKEN and TELEGRAM_CHAT_ID, or leave it unset")
        if self.bot_token is not None and self.chat_id is None:
            raise problem(self, "chat_id", "required because TELEGRAM_BOT_TOKEN is set; allowed: the numeric chat id,"
                                           " e.g. 123456789 or -1001234567890")
        if self.bot_token is None and self.chat_id is not None:
            raise problem(self, "chat_id", "set but TELEGRAM_BOT_TOKEN is not, so nothing would be sent;"
                                           " allowed: set both or neither")

    @property
    def enabled(self) -> bool:
        """True when notifications can be sent."""
        return self.bot_token is not None


@dataclass(frozen=True, slots=True, kw_only=True)
class SupervisionSettings:
    """Restart intensity and timeouts for the supervision tree (see ``supervisor/``)."""

    root_intensity: int = setting(
        "ROOT_INTENSITY", "3", parsing.non_negative_int, "Root supervisor: at most this many restarts (>= 0) within"
        " ROOT_PERIOD_S; more stops everything.", section="supervision")
    root_period_s: float = setting("ROOT_PERIOD_S", "30", parsing.positive_float,
                                   "Root supervisor: the restart period, seconds.")
    node_intensity: int = setting(
        "NODE_INTENSITY", "5", parsing.non_negative_int, "Node supervisor: at most this many restarts (>= 0) within"
        " NODE_PERIOD_S; more escalates to the root supervisor.")
    node_period_s: float = setting("NODE_PERIOD_S", "10", parsing.positive_float,
                                   "Node supervisor: the restart period, seconds.")
    shutdown_timeout_s: float = setting("SHUTDOWN_TIMEOUT_S", "5", parsing.positive_float,
                                        "Seconds a child gets to stop on shutdown.")
    node_start_timeout_s: float = setting("NODE_START_TIMEOUT_S", "30", parsing.positive_float,
                                          "Seconds a node gets to finish starting.")


@dataclass(frozen=True, slots=True, kw_only=True)
class Settings:
    """The whole configuration: loaded once by :func:`load_settings`, then passed down.

    ``repr`` is safe to log: secrets show only their masks. For a flat ``NAME -> value`` view of
    the effective configuration use :meth:`masked_summary`.
    """

    bot_id: str = setting("BOT_ID", "sbx", parsing.matching(r"[a-z0-9]{1,12}", "1-12 lower-case letters or digits,"
                          " e.g. sbx"), "Namespace for order identifiers: 1-12 lower-case letters or digits.",
                          section="identity and mode")
    trade_mode: TradeMode = setting(
        "TRADE_MODE", TradeMode.SHADOW, parsing.choice(TradeMode), "shadow = record the order that would be sent,"
        " send nothing | test = Upbit's orders/test (validated, nothing created) | live = real orders, only when"
        " every live guard below agrees (else downgraded).")
    log_level: LogLevel = setting("LOG_LEVEL", LogLevel.INFO, choices.log_level, "DEBUG | INFO | WARNING | ERROR")
    status_interval_s: float = setting("STATUS_INTERVAL_S", "5", parsing.positive_float,
                                       "Seconds between status log lines (> 0).")
    dashboard_port: int = setting("DASHBOARD_PORT", "8765", parsing.port, "Status dashboard (read-only page,"
                                  " /healthz, /metrics) port; 0 = no dashboard.", invariant=True)
    dashboard_host: str = setting(
        "DASHBOARD_HOST", "127.0.0.1", parsing.host, "Dashboard bind address. Anything but loopback (127.0.0.1, ::1,"
        " localhost) needs DASHBOARD_TOKEN: the page shows balances, positions and orders.", invariant=True)
    dashboard_token: Secret | None = optional(
        "DASHBOARD_TOKEN", parsing.dashboard_token, "The dashboard's access token (>= 16 printable characters, no"
        " spaces), e.g. from python -c 'import secrets; print(secrets.token_urlsafe(32))'. When set, every request"
        ' but /healthz must present it: open /?token=TOKEN once in the browser, or send "Authorization: Bearer'
        ' TOKEN".', secret=True, invariant=True)
    database: DatabaseSettings = group(DatabaseSettings)
    feed: FeedSettings = group(FeedSettings)
    replay: ReplaySettings = group(ReplaySettings)
    strategy: StrategySettings = group(StrategySettings)
    paper: PaperSettings = group(PaperSettings)
    execution: ExecutionSettings = group(ExecutionSettings)
    risk: RiskSettings = group(RiskSettings)
    account: AccountSettings = group(AccountSettings)
    exchange: ExchangeCredentials = group(ExchangeCredentials)
    telegram: TelegramSettings = group(TelegramSettings)
    supervision: SupervisionSettings = group(SupervisionSettings)
    failpoints: str = optional(
        "FAILPOINTS", parsing.failpoints, "name%N kills the process at every Nth pass of a named point, name@N at the"
        " Nth pass only (execution.after_intent_commit, execution.after_send). Never set this in production.",
        unset="", section="resilience drills only")

    def __post_init__(self) -> None:
        """A dashboard other machines can reach shows balances and orders: it needs a token."""
        host, port = self.dashboard_host, self.dashboard_port
        if port and self.dashboard_token is None and not parsing.is_loopback_host(host):
            raise problem(self, "dashboard_token", f"required because DASHBOARD_HOST={host} is not a loopback address,"
                          f" so anyone who can reach port {port} could read the balances, positions and orders;"
                          f" allowed: a token of at least {parsing.DASHBOARD_TOKEN_MIN_CHARS} characters, or"
                          " DASHBOARD_HOST=127.0.0.1 (and an SSH tunnel)")

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
        """Every configured secret (for log redaction), in declaration order; unset ones are left out."""
        return tuple(value for spec, value in declare.values(self) if spec.secret and isinstance(value, Secret))

    def masked_summary(self) -> dict[str, str]:
        """Every setting by environment name, as text safe to log (secrets masked).

        Keys are in :data:`SETTINGS_SPEC` order; unset optional settings show ``(unset)``.
        """
        return {spec.name: declare.shown(spec, value) for spec, value in declare.values(self)}


SETTINGS_SPEC: tuple[SettingSpec, ...] = tuple(declare.specs(Settings))
"""Every known setting, in the order of ``.env.example`` and :meth:`Settings.masked_summary`."""

SETTING_NAMES: frozenset[str] = frozenset(spec.name for spec in SETTINGS_SPEC)
"""The environment names of all known settings (for CLI flag mapping and typo checks)."""


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
    if env_file is None and Path(".env").is_file():
        env_file = Path(".env")
    return loader.load(Settings, env, env_file, overrides)

