"""Parsers that turn one raw configuration string into a typed value, or say what is wrong.

Every parser takes the raw text (already stripped, never empty) and either returns the typed
value or raises :class:`InvalidValueError` whose message says what is wrong *and* what is allowed.
Parsers never put the raw value into their message: the loader decides whether the value may be
shown (it is never shown for secrets).

Nothing here reads the environment or a file; these are pure functions.
"""

from __future__ import annotations

import ipaddress
import json
import keyword
import math
import re
from collections.abc import Callable, Iterator, Mapping
from datetime import UTC, datetime
from decimal import Decimal, InvalidOperation
from enum import StrEnum
from pathlib import Path
from typing import TypeVar
from urllib.parse import unquote, urlsplit

from config.secret import DatabaseUrl, Secret

E = TypeVar("E", bound=StrEnum)

JsonValue = str | int | float | bool | None | tuple["JsonValue", ...] | Mapping[str, "JsonValue"]
"""A deep-frozen JSON value: objects are :class:`FrozenMap`, arrays are tuples."""


class FrozenMap(Mapping[str, "JsonValue"]):
    """A read-only, hashable, picklable mapping (``MappingProxyType`` cannot be pickled)."""

    __slots__ = ("_data",)
    _data: dict[str, JsonValue]

    def __init__(self, data: Mapping[str, JsonValue] | None = None) -> None:
        """Copy ``data``; later changes to it do not show through."""
        object.__setattr__(self, "_data", dict(data or {}))

    def __getitem__(self, key: str) -> JsonValue:
        """The value stored under ``key``."""
        return self._data[key]

    def __iter__(self) -> Iterator[str]:
        """The keys, in insertion order."""
        return iter(self._data)

    def __len__(self) -> int:
        """The number of keys."""
        return len(self._data)

    def __hash__(self) -> int:
        """Hash of the items (the values are frozen JSON, hence hashable)."""
        return hash(frozenset(self._data.items()))

    def __repr__(self) -> str:
        """``FrozenMap({...})``."""
        return f"FrozenMap({self._data!r})"

    def __setattr__(self, name: str, value: object) -> None:
        """Read-only."""
        msg = "FrozenMap is read-only"
        raise AttributeError(msg)

    def __reduce__(self) -> tuple[type[FrozenMap], tuple[dict[str, JsonValue]]]:
        """Pickle by value."""
        return (FrozenMap, (self._data,))


class InvalidValueError(ValueError):
    """Raised by a parser: the message says what is wrong and what is allowed."""


# --- placeholders -------------------------------------------------------------------------

_PLACEHOLDERS: tuple[tuple[re.Pattern[str], str], ...] = (
    (
        re.compile(r"\$\{[^}]*\}"),
        "a '${...}' variable reference (.env files are read without interpolation)",
    ),
    (re.compile(r"(?i)(?<![a-z0-9])your[_-]"), "a 'your_...' template value"),
    (re.compile(r"<[A-Za-z][A-Za-z0-9_ .\-]*>"), "a '<...>' template value"),
    (re.compile(r"(?i)change[_-]?me|replace[_-]?me"), "a 'changeme' template value"),
    (re.compile(r"(?i)^x{3,}(?:[-_.]x+)*$"), "an 'xxx...' template value"),
    (re.compile(r"…|\*{4}"), "a masked value copied from a log ('…' or '****')"),
)


def placeholder_reason(value: str) -> str | None:
    """Say which placeholder pattern ``value`` matches, or ``None`` if it looks like real data."""
    for pattern, description in _PLACEHOLDERS:
        if pattern.search(value):
            return (
                f"looks like a placeholder ({description}); put in the real value or leave it empty"
            )
    return None


# --- scalars ------------------------------------------------------------------------------

_NUMBER = re.compile(r"[+-]?(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+)(?:[eE][+-]?[0-9]+)?")
_INTEGER = re.compile(r"[+-]?[0-9]+")


def _number_text(raw: str, allowed: str) -> str:
    if not _NUMBER.fullmatch(raw):
        msg = f"not a number; allowed: {allowed}"
        raise InvalidValueError(msg)
    return raw


MAX_SECONDS = 10_000_000
"""The longest duration a setting may give, in seconds (about 116 days): long enough for any
interval, short enough for every timer and ``threading`` wait (``threading.TIMEOUT_MAX``)."""

MAX_COUNT = 1_000_000
"""The largest whole-number setting (restarts, positions, answers): anything above is a typo."""

MAX_DECIMAL = Decimal(10) ** 15
"""The ceiling of a decimal setting whose own maximum is not given (see :func:`decimal_in_range`)."""

MAX_DECIMAL_PLACES = 18
"""A decimal setting has at most this many places after the point (``1E-400000`` is not a fee)."""


def positive_float(raw: str) -> float:
    """A duration in seconds: a finite float ``> 0`` and ``<= MAX_SECONDS`` (``5``, ``0.25``, ``1e3``).

    ``nan``, ``inf`` and ``1e400`` (which a float reads as infinity) are refused, each with a
    message that says so.
    """
    allowed = f"a number of seconds > 0 and <= {MAX_SECONDS} (e.g. 5 or 0.5)"
    value = float(_number_text(raw, allowed))
    if not math.isfinite(value):
        msg = f"too large to be a number of seconds (not finite); allowed: {allowed}"
        raise InvalidValueError(msg)
    if value <= 0:
        msg = f"must be > 0; allowed: {allowed}"
        raise InvalidValueError(msg)
    if value > MAX_SECONDS:
        msg = f"too large; allowed: {allowed}"
        raise InvalidValueError(msg)
    return value


def non_negative_int(raw: str) -> int:
    """A whole number ``>= 0`` and ``<= MAX_COUNT`` written in plain ASCII digits."""
    allowed = f"a whole number from 0 to {MAX_COUNT} (e.g. 3)"
    if not _INTEGER.fullmatch(raw):
        msg = f"not a whole number; allowed: {allowed}"
        raise InvalidValueError(msg)
    if len(raw.lstrip("+-0")) > len(str(MAX_COUNT)):  # before int(): 5,000 digits would not even parse
        msg = f"too large; allowed: {allowed}"
        raise InvalidValueError(msg)
    value = int(raw)
    if value < 0:
        msg = f"must be >= 0; allowed: {allowed}"
        raise InvalidValueError(msg)
    if value > MAX_COUNT:
        msg = f"too large; allowed: {allowed}"
        raise InvalidValueError(msg)
    return value


N = TypeVar("N", int, float)


def at_least(parse: Callable[[str], N], floor: N, problem: str) -> Callable[[str], N]:
    """``parse``, then refuse a value below ``floor``; ``problem`` is formatted with ``value`` and ``floor``."""

    def parse_at_least(raw: str) -> N:
        value = parse(raw)
        if value < floor:
            raise InvalidValueError(problem.format(value=value, floor=floor))
        return value

    return parse_at_least


def positive_int(raw: str) -> int:
    """A whole number ``>= 1`` and ``<= MAX_COUNT`` written in plain digits."""
    value = non_negative_int(raw)
    if value < 1:
        msg = f"must be >= 1; allowed: a whole number from 1 to {MAX_COUNT} (e.g. 3)"
        raise InvalidValueError(msg)
    return value


_TRUE = frozenset({"true", "yes", "on", "1"})
_FALSE = frozenset({"false", "no", "off", "0"})


def boolean(raw: str) -> bool:
    """``true``/``false`` (also yes/no, on/off, 1/0), case-insensitive."""
    lowered = raw.lower()
    if lowered in _TRUE:
        return True
    if lowered in _FALSE:
        return False
    msg = "not a boolean; allowed: true or false"
    raise InvalidValueError(msg)


_CHAT_ID_LIMIT = 2**53  # Telegram: "at most 52 significant bits", so a double holds it exactly


def chat_id(raw: str) -> int:
    """A Telegram chat id: a non-zero whole number, negative for groups (``-1001234567890``)."""
    allowed = "a Telegram chat id such as 123456789 or -1001234567890"
    if not _INTEGER.fullmatch(raw):
        msg = f"not a whole number; allowed: {allowed}"
        raise InvalidValueError(msg)
    if len(raw.lstrip("+-0")) > len(str(_CHAT_ID_LIMIT)):
        msg = f"too large to be a chat id; allowed: {allowed}"
        raise InvalidValueError(msg)
    value = int(raw)
    if value == 0:
        msg = f"0 is no chat (Telegram chat ids are never 0); allowed: {allowed}"
        raise InvalidValueError(msg)
    if abs(value) >= _CHAT_ID_LIMIT:
        msg = f"too large to be a chat id; allowed: {allowed}"
        raise InvalidValueError(msg)
    return value


_SHARED_SENDERS = {
    777000: "Telegram's service account (it forwards a linked channel's posts)",
    1087968824: "GroupAnonymousBot (every anonymous group admin sends as it)",
    136817688: "Channel_Bot (every message sent on behalf of a channel comes from it)",
}
"""User ids that stand for many people at once: never one operator."""


def telegram_user_ids(raw: str) -> tuple[int, ...]:
    """Comma-separated Telegram *user* ids (``123456789,987654321``): positive, distinct.

    A negative id is a group or channel, never a person; 0 is nobody. The ids Telegram uses for
    anonymous admins, channels and its own service account are refused, since each of them
    stands for anyone who can post that way.
    """
    allowed = "comma-separated numeric Telegram user ids (> 0), e.g. 123456789,987654321"
    items = [item.strip() for item in raw.split(",")]
    ids: list[int] = []
    for position, item in enumerate(items, start=1):
        where = f"entry {position}" if len(items) > 1 else "the value"
        if not item:
            raise InvalidValueError(f"{where} is empty (stray comma); allowed: {allowed}")
        if not _INTEGER.fullmatch(item) or len(item.lstrip("+-0")) > len(str(_CHAT_ID_LIMIT)):
            raise InvalidValueError(f"{where} is not a user id; allowed: {allowed}")
        value = int(item)
        if value <= 0:
            what = "0 is nobody" if value == 0 else "a negative id is a group or channel chat, not a user"
            raise InvalidValueError(f"{where}: {what}; allowed: {allowed}")
        if value >= _CHAT_ID_LIMIT:
            raise InvalidValueError(f"{where} is too large to be a user id; allowed: {allowed}")
        if value in _SHARED_SENDERS:
            raise InvalidValueError(f"{where} is {_SHARED_SENDERS[value]}, not one person; allowed: {allowed}")
        if value in ids:
            raise InvalidValueError(f"{where} repeats an earlier id; allowed: {allowed}")
        ids.append(value)
    return tuple(ids)


def decimal_in_range(
    minimum: Decimal, maximum: Decimal | None, allowed: str
) -> Callable[[str], Decimal]:
    """A parser for a finite ``Decimal`` with ``minimum <= value <= maximum``.

    ``maximum=None`` means :data:`MAX_DECIMAL`: no decimal setting is unbounded, since an absurd
    but finite value such as ``1e400`` fails later, far from the setting, when it is quantized or
    stored. At most :data:`MAX_DECIMAL_PLACES` places after the point.
    """
    ceiling = MAX_DECIMAL if maximum is None else maximum

    def parse(raw: str) -> Decimal:
        try:
            value = Decimal(_number_text(raw, allowed))
        except InvalidOperation as exc:  # pragma: no cover - the regex admits only numbers
            msg = f"not a number; allowed: {allowed}"
            raise InvalidValueError(msg) from exc
        if value > ceiling:
            msg = f"out of range (more than {ceiling:,f}); allowed: {allowed}"
            raise InvalidValueError(msg)
        if value < minimum:
            msg = f"out of range (less than {minimum:,f}); allowed: {allowed}"
            raise InvalidValueError(msg)
        if value and value.normalize().as_tuple().exponent < -MAX_DECIMAL_PLACES:  # type: ignore[operator]  # finite: an int
            msg = f"more than {MAX_DECIMAL_PLACES} decimal places; allowed: {allowed}"
            raise InvalidValueError(msg)
        return value

    return parse


def matching(pattern: str, allowed: str) -> Callable[[str], str]:
    """A parser accepting strings that fully match ``pattern``."""
    compiled = re.compile(pattern)

    def parse(raw: str) -> str:
        if not compiled.fullmatch(raw):
            msg = f"does not match {pattern}; allowed: {allowed}"
            raise InvalidValueError(msg)
        return raw

    return parse


def choice(enum_type: type[E]) -> Callable[[str], E]:
    """A parser accepting one of ``enum_type``'s values, case-insensitively."""
    allowed = " | ".join(member.value for member in enum_type)

    def parse(raw: str) -> E:
        try:
            return enum_type(raw.lower())
        except ValueError as exc:
            msg = f"not a known choice; allowed: {allowed}"
            raise InvalidValueError(msg) from exc

    return parse


def path(raw: str) -> Path:
    """A filesystem path (relative paths are relative to the working directory)."""
    if "\x00" in raw:
        msg = "contains a NUL character; allowed: a filesystem path such as var/pgdata"
        raise InvalidValueError(msg)
    return Path(raw)


def existing_file(raw: str) -> Path:
    """A path to a readable file that exists now."""
    candidate = path(raw)
    allowed = "allowed: the path of an existing recording file"
    try:
        exists = candidate.is_file()
    except OSError as exc:  # e.g. a name too long for the filesystem
        raise InvalidValueError(f"cannot be looked up ({exc.strerror}); {allowed}") from exc
    if not exists:
        raise InvalidValueError(f"no such file: {candidate}; {allowed}")
    return candidate


def utc_timestamp(raw: str) -> datetime:
    """An ISO-8601 timestamp as an aware UTC datetime (naive means UTC; offsets are converted)."""
    try:
        value = datetime.fromisoformat(raw)
    except ValueError as exc:
        msg = (
            "not an ISO-8601 timestamp; allowed: e.g. 2024-01-31T09:00:00Z, "
            "2024-01-31T18:00:00+09:00 or 2024-01-31 (naive times are UTC)"
        )
        raise InvalidValueError(msg) from exc
    if value.tzinfo is None:
        return value.replace(tzinfo=UTC)
    try:
        return value.astimezone(UTC)
    except OverflowError as exc:  # 9999-12-31T23:00-05:00 is in year 10000 in UTC
        msg = "out of range once converted to UTC; allowed: a time between 0001-01-01 and 9999-12-31 UTC"
        raise InvalidValueError(msg) from exc


MAX_SPEED = 1_000_000
"""The fastest finite replay speed; ``max`` is the way to say "as fast as possible"."""


def replay_speed(raw: str) -> float | None:
    """``max`` (as fast as possible, returned as ``None``) or a speed-up factor > 0."""
    if raw.lower() == "max":
        return None
    allowed = (f"a speed-up factor > 0 and <= {MAX_SPEED} (1 = real time, 60 = a minute per second)"
               " or 'max' (as fast as possible)")
    if not _NUMBER.fullmatch(raw):
        msg = f"not a number or 'max'; allowed: {allowed}"
        raise InvalidValueError(msg)
    value = float(raw)
    if value <= 0:
        msg = f"must be > 0; allowed: {allowed}"
        raise InvalidValueError(msg)
    if not math.isfinite(value) or value > MAX_SPEED:
        msg = f"too large; allowed: {allowed}"
        raise InvalidValueError(msg)
    return value


# --- structured values --------------------------------------------------------------------

MARKET_PATTERN = r"[A-Z]{2,5}-[A-Z0-9]{1,10}"
_MARKET = re.compile(MARKET_PATTERN)


def markets(raw: str) -> tuple[str, ...]:
    """A comma-separated list of distinct Upbit market codes (``KRW-BTC,KRW-ETH``)."""
    allowed = f"comma-separated market codes matching ^{MARKET_PATTERN}$, e.g. KRW-BTC,KRW-ETH"
    items = [item.strip() for item in raw.split(",")]
    if any(not item for item in items):
        msg = f"has an empty entry (stray comma); allowed: {allowed}"
        raise InvalidValueError(msg)
    bad = [item for item in items if not _MARKET.fullmatch(item)]
    if bad:
        verb = "is not a market code" if len(bad) == 1 else "are not market codes"
        msg = f"{', '.join(repr(b) for b in bad)} {verb}; allowed: {allowed}"
        raise InvalidValueError(msg)
    duplicates = sorted({item for item in items if items.count(item) > 1})
    if duplicates:
        msg = f"{', '.join(duplicates)} listed more than once; allowed: {allowed}"
        raise InvalidValueError(msg)
    return tuple(items)


def alert_kinds(raw: str) -> tuple[str, ...]:
    """A comma-separated list of alert kinds (lower-case words with underscores)."""
    kinds = tuple(k.strip() for k in raw.split(",") if k.strip())
    bad = [k for k in kinds if not re.fullmatch(r"[a-z][a-z0-9_]{0,40}", k)]
    if bad:
        raise InvalidValueError(f"not alert kinds: {', '.join(bad)}; allowed: e.g. paper_fill,control,node_exit")
    return kinds


def port(raw: str) -> int:
    """A TCP port, 0 to 65535 (0 = off, where the setting says so)."""
    value = non_negative_int(raw)
    if value > 65535:
        raise InvalidValueError("out of range; allowed: a port from 0 to 65535")
    return value


def host(raw: str) -> str:
    """A bind address: an IP address or a host name."""
    try:
        ipaddress.ip_address(raw)
    except ValueError:
        if not re.fullmatch(r"[A-Za-z0-9](?:[A-Za-z0-9.-]{0,252}[A-Za-z0-9])?", raw):
            raise InvalidValueError("not an address; allowed: an IP address such as 127.0.0.1, or a host name") \
                from None
    return raw


def is_loopback_host(name: str) -> bool:
    """True when ``name`` is this machine's loopback: ``localhost``, a 127.0.0.0/8 or ``::1`` literal.

    Exact names and parsed IP literals only (``[::1]`` brackets allowed): ``127.attacker.example``
    is a host name like any other, not a loopback address.
    """
    text = name.strip().lower()
    if text == "localhost":
        return True
    if text.startswith("[") and text.endswith("]"):
        text = text[1:-1]
    try:
        return ipaddress.ip_address(text).is_loopback
    except ValueError:
        return False


DASHBOARD_TOKEN_MIN_CHARS = 16
_DASHBOARD_TOKEN = re.compile(r"[\x21-\x7e]+")  # printable ASCII, no space: fits a header, a cookie, a URL


def dashboard_token(raw: str) -> Secret:
    """The dashboard's access token: at least 16 printable ASCII characters, no whitespace."""
    allowed = (f"at least {DASHBOARD_TOKEN_MIN_CHARS} printable ASCII characters without spaces, e.g. the output"
               " of: python -c 'import secrets; print(secrets.token_urlsafe(32))'")
    if not _DASHBOARD_TOKEN.fullmatch(raw):
        msg = f"has a space or a non-ASCII character; allowed: {allowed}"
        raise InvalidValueError(msg)
    if len(raw) < DASHBOARD_TOKEN_MIN_CHARS:
        msg = f"too short to resist guessing; allowed: {allowed}"
        raise InvalidValueError(msg)
    return Secret(raw)


def _url(raw: str, schemes: set[str], kind: str, example: str) -> str:
    prefixes = " or ".join(f"{scheme}://" for scheme in sorted(schemes))
    allowed = f"{prefixes} URL such as {example}"
    try:
        parts = urlsplit(raw)
        _ = parts.port  # raises ValueError on a malformed port
    except ValueError as exc:
        msg = f"not a valid URL; allowed: a {allowed}"
        raise InvalidValueError(msg) from exc
    if parts.scheme not in schemes or not parts.hostname:
        msg = f"not {kind} URL; allowed: a {allowed}"
        raise InvalidValueError(msg)
    return raw


def http_url(raw: str) -> str:
    """An ``http://`` or ``https://`` base URL with a host (a trailing slash is dropped)."""
    return _url(raw, {"http", "https"}, "an HTTP", "https://api.telegram.org").rstrip("/")


def websocket_url(raw: str) -> str:
    """A ``ws://`` or ``wss://`` URL with a host."""
    return _url(raw, {"ws", "wss"}, "a WebSocket", "wss://api.upbit.com/websocket/v1")


def database_url(raw: str) -> DatabaseUrl:
    """A PostgreSQL connection URL (``postgresql://`` or ``postgres://``)."""
    allowed = "empty (embedded PostgreSQL) or postgresql://user:password@host:5432/dbname"
    if not raw.startswith(("postgresql://", "postgres://")):
        msg = f"must start with postgresql:// or postgres://; allowed: {allowed}"
        raise InvalidValueError(msg)
    try:
        parts = urlsplit(raw)
        _ = parts.port  # raises ValueError on a malformed port
    except ValueError as exc:
        msg = f"not a valid URL (check the port); allowed: {allowed}"
        raise InvalidValueError(msg) from exc
    for label, component in (("user name", parts.username), ("password", parts.password)):
        reason = placeholder_reason(unquote(component or ""))
        if reason is not None:
            msg = f"the {label} {reason}"
            raise InvalidValueError(msg)
    if any(ch.isspace() for ch in raw):
        msg = f"contains whitespace (percent-encode it as %20); allowed: {allowed}"
        raise InvalidValueError(msg)
    return DatabaseUrl(raw)


def api_key(raw: str) -> Secret:
    """An opaque credential: any non-empty string without whitespace."""
    if any(ch.isspace() for ch in raw):
        msg = "contains whitespace; allowed: the key exactly as the Upbit Open API page shows it"
        raise InvalidValueError(msg)
    return Secret(raw)


_TELEGRAM_TOKEN = re.compile(r"[0-9]+:[A-Za-z0-9_-]+")


def telegram_token(raw: str) -> Secret:
    """A Telegram bot token as issued by @BotFather (``123456789:AA...``)."""
    if not _TELEGRAM_TOKEN.fullmatch(raw):
        msg = (
            "not a bot token; allowed: the token from @BotFather, "
            "'<digits>:<letters, digits, _ or ->'"
        )
        raise InvalidValueError(msg)
    return Secret(raw)


def _is_identifier(name: str) -> bool:
    return name.isidentifier() and not keyword.iskeyword(name)


def strategy_ref(raw: str) -> tuple[str, str]:
    """A ``package.module:ClassName`` reference, split into ``(module, class_name)``.

    Only the syntax is checked here; whether it imports is checked where it is imported.
    """
    allowed = "module:Class, e.g. trading.builtin:SmaMomentum"
    module, colon, class_name = raw.partition(":")
    if (
        not colon
        or not all(_is_identifier(part) for part in module.split("."))
        or not _is_identifier(class_name)
    ):
        msg = f"not a module:Class reference; allowed: {allowed}"
        raise InvalidValueError(msg)
    return module, class_name


def strategy_spec(raw: str) -> str:
    """A ``package.module:ClassName`` reference, checked by :func:`strategy_ref` and kept as written."""
    strategy_ref(raw)
    return raw


def _reject_constant(name: str) -> float:
    msg = f"{name} is not valid JSON"
    raise ValueError(msg)


def _unique_object(pairs: list[tuple[str, JsonValue]]) -> Mapping[str, JsonValue]:
    result: dict[str, JsonValue] = {}
    for key, value in pairs:
        if key in result:
            msg = f"duplicate key {key!r}"
            raise ValueError(msg)
        result[key] = value
    return FrozenMap(result)


def _freeze(value: object) -> JsonValue:
    if isinstance(value, list):
        return tuple(_freeze(item) for item in value)  # pyright: ignore[reportUnknownVariableType]
    return value  # type: ignore[return-value]  # objects are frozen by _unique_object


def json_object(raw: str) -> Mapping[str, JsonValue]:
    """A JSON object without duplicate keys, deep-frozen (FrozenMap objects, tuple arrays)."""
    allowed = 'a JSON object, e.g. {"fast": 10, "slow": 60}'
    try:
        value = json.loads(
            raw,
            object_pairs_hook=lambda pairs: _unique_object([(k, _freeze(v)) for k, v in pairs]),
            parse_constant=_reject_constant,
        )
    except ValueError as exc:  # json.JSONDecodeError is a ValueError
        msg = f"not valid JSON ({exc}); allowed: {allowed}"
        raise InvalidValueError(msg) from exc
    except RecursionError as exc:  # arrays or objects nested thousands deep
        msg = f"nested too deeply; allowed: {allowed}"
        raise InvalidValueError(msg) from exc
    if not isinstance(value, Mapping):
        msg = f"JSON but not an object; allowed: {allowed}"
        raise InvalidValueError(msg)
    return value  # pyright: ignore[reportUnknownVariableType]


def failpoints(raw: str) -> str:
    """``name%N`` or ``name@N`` items, comma-separated (checked here, interpreted by execution)."""
    for item in raw.split(","):
        name, sep, count = item.strip().replace("@", "%").partition("%")
        if not sep or not name or not (count.isascii() and count.isdigit()) or int(count) < 1:
            msg = f"{item.strip()!r} is not a failpoint; allowed: name%N (every Nth pass) or name@N (the Nth pass)"
            raise InvalidValueError(msg)
    return raw
