"""Configuration: one frozen, validated settings tree, loaded once and passed down.

Typical start-up::

    from config import ConfigError, configure_logging, load_settings

    try:
        settings = load_settings(overrides=cli_overrides)
    except ConfigError as exc:
        sys.exit(str(exc))          # lists every bad setting at once
    configure_logging(settings)     # stderr, UTC timestamps, secrets masked
    log.info("effective config: %s", settings.masked_summary())

No other module reads environment variables or ``.env`` files; they receive ``settings`` (or
the part of it they need, e.g. ``settings.supervision``) through their constructor.
"""

from config.declare import SettingSpec
from config.errors import ConfigError
from config.logging_setup import (
    SecretFilter,
    UtcIsoFormatter,
    configure_logging,
    install_secret_filter,
)
from config.parsing import FrozenMap, JsonValue
from config.secret import DatabaseUrl, Secret, mask_database_url, mask_secret
from config.settings import (
    LIVE_CONFIRM_PHRASE,
    SETTING_NAMES,
    SETTINGS_SPEC,
    UPBIT_MIN_ORDER_KRW,
    AccountSettings,
    DatabaseSettings,
    ExchangeCredentials,
    ExecutionSettings,
    FeedSettings,
    FeedSource,
    LogLevel,
    PaperProfile,
    PaperSettings,
    ReplaySettings,
    ReplaySource,
    RiskSettings,
    Settings,
    StrategySettings,
    SupervisionSettings,
    TelegramSettings,
    TradeMode,
    load_settings,
)

__all__ = [
    "LIVE_CONFIRM_PHRASE",
    "SETTINGS_SPEC",
    "SETTING_NAMES",
    "UPBIT_MIN_ORDER_KRW",
    "AccountSettings",
    "ConfigError",
    "DatabaseSettings",
    "DatabaseUrl",
    "ExchangeCredentials",
    "ExecutionSettings",
    "FeedSettings",
    "FeedSource",
    "FrozenMap",
    "JsonValue",
    "LogLevel",
    "PaperProfile",
    "PaperSettings",
    "ReplaySettings",
    "ReplaySource",
    "RiskSettings",
    "Secret",
    "SecretFilter",
    "SettingSpec",
    "Settings",
    "StrategySettings",
    "SupervisionSettings",
    "TelegramSettings",
    "TradeMode",
    "UtcIsoFormatter",
    "configure_logging",
    "install_secret_filter",
    "load_settings",
    "mask_database_url",
    "mask_secret",
]
