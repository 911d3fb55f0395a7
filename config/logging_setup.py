"""Process logging: UTC ISO-8601 timestamps and a filter that masks configured secrets.

Call :func:`configure_logging` once at start, right after :func:`~config.load_settings`. It puts
one stream handler on the root logger and then calls :func:`install_secret_filter`.

How the redaction works, and its limits:

* :class:`SecretFilter` is attached to **handlers**, not loggers: a logger's own filters do not
  see records propagated from child loggers, a handler's filters see every record it emits.
* It is attached to the handlers that exist when :func:`install_secret_filter` runs. A handler
  added later is **not** covered, so install the filter after all handlers are configured (or
  call it again; it replaces its earlier instances). Loggers with ``propagate=False`` and their
  own handlers need their own call with ``logger=`` that logger.
* It rewrites the record in place: ``msg`` becomes the final, redacted message and ``args`` is
  cleared; the traceback text (``exc_text``) and ``stack_info`` are rendered and redacted too.
  Every handler that sees the record afterwards sees the redacted text. Formatters that render
  ``exc_info`` themselves instead of using the standard ``exc_text`` cache, and custom fields
  passed with ``extra=``, are not redacted.
"""

from __future__ import annotations

import logging
import re
import sys
from datetime import UTC, datetime
from typing import TYPE_CHECKING, TextIO

if TYPE_CHECKING:
    from config.settings import Settings

LOG_FORMAT = "%(asctime)s %(levelname)-7s %(processName)s/%(threadName)s %(name)s: %(message)s"
"""The line format used by :func:`configure_logging`."""


class UtcIsoFormatter(logging.Formatter):
    """A formatter whose ``%(asctime)s`` is ISO-8601 UTC with milliseconds (``…T09:00:00.123Z``)."""

    def formatTime(self, record: logging.LogRecord, datefmt: str | None = None) -> str:  # noqa: N802 - logging API
        """Render the record's creation time in UTC (``datefmt`` is ignored)."""
        del datefmt
        moment = datetime.fromtimestamp(record.created, tz=UTC)
        return moment.isoformat(timespec="milliseconds").replace("+00:00", "Z")


class SecretFilter(logging.Filter):
    """Replaces every configured secret in a record's final text with the secret's mask."""

    def __init__(self, settings: Settings) -> None:
        """Collect the secrets of ``settings`` into one pattern (longest value first)."""
        super().__init__()
        replacements: dict[str, str] = {}
        for secret in settings.secrets():
            for raw, masked in secret.redactions():
                replacements.setdefault(raw, masked)
        self._replacements = replacements
        ordered = sorted(replacements, key=len, reverse=True)
        self._pattern = re.compile("|".join(map(re.escape, ordered))) if ordered else None

    def redact(self, text: str) -> str:
        """Return ``text`` with every secret value replaced by its mask, in a single pass."""
        if self._pattern is None:
            return text
        return self._pattern.sub(lambda match: self._replacements[match.group(0)], text)

    def filter(self, record: logging.LogRecord) -> bool:
        """Redact the record in place; never drops a record."""
        if self._pattern is None:
            return True
        try:
            message = record.getMessage()
        except Exception:  # noqa: BLE001 - a bad format call must not crash the caller; keep the text
            message = f"{record.msg!s} (log arguments did not match the format: {record.args!r})"
        record.msg = self.redact(message)
        record.args = None
        if record.exc_info and not record.exc_text:
            record.exc_text = logging.Formatter().formatException(record.exc_info)
        if record.exc_text:
            record.exc_text = self.redact(record.exc_text)
        if record.stack_info:
            record.stack_info = self.redact(record.stack_info)
        return True


def install_secret_filter(settings: Settings, logger: logging.Logger | None = None) -> SecretFilter:
    """Attach a :class:`SecretFilter` for ``settings`` to every handler of ``logger``.

    ``logger`` defaults to the root logger. Call it **after** the handlers are configured:
    handlers added later are not covered. Earlier ``SecretFilter`` instances on those handlers
    are replaced, so calling it again (e.g. after adding a handler) is safe.

    Raises:
        ValueError: if the logger has no handlers, since nothing would be protected.

    """
    target = logging.getLogger() if logger is None else logger
    if not target.handlers:
        msg = (
            f"logger {target.name!r} has no handlers; configure handlers first, "
            "then install the secret filter"
        )
        raise ValueError(msg)
    secret_filter = SecretFilter(settings)
    for handler in target.handlers:
        for old in [f for f in handler.filters if isinstance(f, SecretFilter)]:
            handler.removeFilter(old)
        handler.addFilter(secret_filter)
    return secret_filter


class _ConfiguredHandler(logging.StreamHandler[TextIO]):
    """The handler :func:`configure_logging` owns (so a second call replaces it)."""


def configure_logging(settings: Settings, *, stream: TextIO | None = None) -> logging.Handler:
    """Log to ``stream`` (stderr by default) at ``settings.log_level`` with UTC timestamps.

    Replaces a handler installed by an earlier call, leaves other handlers alone, sets the root
    level, then installs the secret filter on every root handler. Returns the new handler.
    """
    root = logging.getLogger()
    for handler in [h for h in root.handlers if isinstance(h, _ConfiguredHandler)]:
        root.removeHandler(handler)
        handler.close()
    handler = _ConfiguredHandler(sys.stderr if stream is None else stream)
    handler.setFormatter(UtcIsoFormatter(LOG_FORMAT))
    root.addHandler(handler)
    root.setLevel(settings.log_level.value)
    install_secret_filter(settings, root)
    return handler
