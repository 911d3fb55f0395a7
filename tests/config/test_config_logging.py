"""Tests for config/logging_setup.py: secrets never reach log output."""

from __future__ import annotations

import logging
import re
from typing import TYPE_CHECKING

import pytest

from config import (
    SecretFilter,
    Settings,
    configure_logging,
    install_secret_filter,
    load_settings,
)

ACCESS_KEY = "AkZ1q2w3e4r5t6y7u8i9o0pLmNbVcXzQ9876"
SECRET_KEY = "Sk9a8s7d6f5g4h3j2k1l0QwErTyUiOpZx5432"
TELEGRAM_TOKEN = "123456789:AAHdqTcvCH1vGWJxfSeofSAs0K5PALDsaw"
DB_PASSWORD = "s3cr3t-Pa55word"
DATABASE_URL = f"postgresql://trader:{DB_PASSWORD}@db.internal:5432/ledger"
RAW_SECRETS = (ACCESS_KEY, SECRET_KEY, TELEGRAM_TOKEN, DB_PASSWORD)

if TYPE_CHECKING:
    from collections.abc import Iterator
    from pathlib import Path

log = logging.getLogger("tests.config.logging")


@pytest.fixture(autouse=True)
def _isolated_cwd(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Run every test in an empty directory, so no stray ./.env is picked up."""
    monkeypatch.chdir(tmp_path)


@pytest.fixture(autouse=True)
def _restore_root_logger() -> Iterator[None]:
    """Undo whatever a test did to the root logger's handlers, filters and level."""
    root = logging.getLogger()
    handlers = list(root.handlers)
    filters = {h: list(h.filters) for h in handlers}
    level = root.level
    yield
    for handler in list(root.handlers):
        if handler not in handlers:
            root.removeHandler(handler)
    for handler, saved in filters.items():
        handler.filters[:] = saved
    root.setLevel(level)


@pytest.fixture
def settings() -> Settings:
    return load_settings(
        env={
            "UPBIT_ACCESS_KEY": ACCESS_KEY,
            "UPBIT_SECRET_KEY": SECRET_KEY,
            "TELEGRAM_BOT_TOKEN": TELEGRAM_TOKEN,
            "TELEGRAM_CHAT_ID": "42",
            "DATABASE_URL": DATABASE_URL,
            "LOG_LEVEL": "INFO",
        }
    )


def assert_no_raw_secret(text: str) -> None:
    for raw in RAW_SECRETS:
        assert raw not in text


def test_secrets_in_messages_and_args_are_masked_on_stderr(
    settings: Settings, capsys: pytest.CaptureFixture[str]
) -> None:
    configure_logging(settings)

    log.info("signing with access key %s", ACCESS_KEY)
    log.warning(f"telegram token is {TELEGRAM_TOKEN}")  # noqa: G004 - an f-string must be caught too
    log.info("connecting to %s", DATABASE_URL)

    err = capsys.readouterr().err
    assert_no_raw_secret(err)
    assert "signing with access key AkZ1…9876" in err
    assert "telegram token is 1234…Dsaw" in err
    assert "connecting to postgresql://trader:****@db.internal:5432/ledger" in err


def test_secrets_in_exception_text_are_masked(
    settings: Settings, capsys: pytest.CaptureFixture[str]
) -> None:
    configure_logging(settings)

    def fail() -> None:
        msg = f"401 for key {ACCESS_KEY} and secret {SECRET_KEY}"
        raise RuntimeError(msg)

    try:
        fail()
    except RuntimeError:
        log.exception("order submission failed")

    err = capsys.readouterr().err
    assert_no_raw_secret(err)
    assert "order submission failed" in err
    assert "Traceback (most recent call last)" in err
    assert "RuntimeError: 401 for key AkZ1…9876 and secret Sk9a…5432" in err


def test_caplog_sees_only_masked_text(settings: Settings, caplog: pytest.LogCaptureFixture) -> None:
    configure_logging(settings)  # also filters the caplog handler already on the root logger

    def fail() -> None:
        raise ValueError(TELEGRAM_TOKEN)

    log.error("db password is %s", DB_PASSWORD)
    try:
        fail()
    except ValueError:
        log.exception("telegram send failed")

    assert_no_raw_secret(caplog.text)
    assert "db password is ****" in caplog.text
    assert "ValueError: 1234…Dsaw" in caplog.text
    assert caplog.records[0].getMessage() == "db password is ****"


def test_timestamps_are_utc_iso_and_level_comes_from_settings(
    settings: Settings, capsys: pytest.CaptureFixture[str]
) -> None:
    configure_logging(settings)

    log.debug("hidden at INFO")
    log.info("shown")

    lines = capsys.readouterr().err.splitlines()
    assert len(lines) == 1
    assert re.match(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z INFO ", lines[0]), lines[0]
    assert lines[0].endswith("tests.config.logging: shown")
    assert logging.getLogger().level == logging.INFO


def test_configure_logging_twice_keeps_one_handler_and_one_filter(
    settings: Settings, capsys: pytest.CaptureFixture[str]
) -> None:
    first = configure_logging(settings)
    second = configure_logging(settings)

    root = logging.getLogger()
    assert first not in root.handlers
    assert second in root.handlers
    assert sum(isinstance(f, SecretFilter) for f in second.filters) == 1
    log.info("once")
    assert capsys.readouterr().err.count("once") == 1


def test_install_secret_filter_covers_existing_handlers_and_needs_one() -> None:
    settings = load_settings(env={"UPBIT_ACCESS_KEY": ACCESS_KEY, "UPBIT_SECRET_KEY": SECRET_KEY})
    logger = logging.getLogger("tests.config.isolated")
    logger.propagate = False
    with pytest.raises(ValueError, match="no handlers"):
        install_secret_filter(settings, logger)

    records: list[logging.LogRecord] = []

    class Collect(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            records.append(record)

    handler = Collect()
    logger.addHandler(handler)
    try:
        install_secret_filter(settings, logger)
        install_secret_filter(settings, logger)  # idempotent
        logger.warning("key=%s secret=%s", ACCESS_KEY, SECRET_KEY)
    finally:
        logger.removeHandler(handler)
        logger.propagate = True

    assert sum(isinstance(f, SecretFilter) for f in handler.filters) == 1
    assert records[0].getMessage() == "key=AkZ1…9876 secret=Sk9a…5432"


def test_bad_log_arguments_do_not_raise_and_are_still_redacted(settings: Settings) -> None:
    secret_filter = SecretFilter(settings)
    record = logging.LogRecord(
        "x", logging.INFO, __file__, 1, "%d items for %s", (ACCESS_KEY,), None
    )

    assert secret_filter.filter(record) is True
    assert ACCESS_KEY not in record.getMessage()
    assert "AkZ1…9876" in record.getMessage()


def test_without_secrets_messages_pass_unchanged() -> None:
    secret_filter = SecretFilter(load_settings(env={}))
    record = logging.LogRecord("x", logging.INFO, __file__, 1, "%s trades", (3,), None)

    assert secret_filter.filter(record) is True
    assert record.getMessage() == "3 trades"
