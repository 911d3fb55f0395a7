"""Secret values that cannot be printed by accident.

A :class:`Secret` wraps a credential (API key, bot token, database URL). Its ``repr``, ``str``
and ``format`` all show a *mask* -- the first and last four characters around an ellipsis
(``AbCd…XyZ0``), or ``****`` for values shorter than 12 characters -- so a secret that ends up
in an f-string, a log call or a dataclass ``repr`` does not leak. Only :meth:`Secret.reveal`
returns the real value; call it at the single place that needs it (signing a request, opening a
connection) and nowhere else.

:class:`DatabaseUrl` is a secret whose mask is the URL with its password replaced by ``****``
(``postgresql://user:****@host/db``), because the rest of a database URL is useful in logs.
"""

from __future__ import annotations

import hmac
import re
from urllib.parse import unquote, urlsplit, urlunsplit

MASK = "****"
"""What a secret too short to be partly shown, or a URL password, is replaced with."""

_MIN_PARTIAL_MASK_LEN = 12
_SHOWN_CHARS = 4
_MIN_FRAGMENT_LEN = 4  # see DatabaseUrl.redactions
_QUERY_PASSWORD = re.compile(r"(?i)((?:^|&)password=)[^&]*")


def mask_secret(value: str) -> str:
    """Return the mask for ``value``: ``AbCd…XyZ0`` for 12+ characters, otherwise ``****``."""
    if len(value) < _MIN_PARTIAL_MASK_LEN:
        return MASK
    return f"{value[:_SHOWN_CHARS]}…{value[-_SHOWN_CHARS:]}"


def mask_database_url(url: str) -> str:
    """Return ``url`` with the password (in the user-info part or a ``password=`` query) masked.

    ``postgresql://user:pw@host:5432/db?sslmode=require`` becomes
    ``postgresql://user:****@host:5432/db?sslmode=require``. A URL that cannot be split is
    masked entirely, because the password cannot be located safely.
    """
    try:
        parts = urlsplit(url)
    except ValueError:
        return MASK
    netloc = parts.netloc
    userinfo, at, hostport = netloc.rpartition("@")
    if at and ":" in userinfo:
        user = userinfo.split(":", 1)[0]
        netloc = f"{user}:{MASK}@{hostport}"
    query = _QUERY_PASSWORD.sub(lambda m: f"{m.group(1)}{MASK}", parts.query)
    return urlunsplit((parts.scheme, netloc, parts.path, query, parts.fragment))


def _database_url_passwords(url: str) -> tuple[str, ...]:
    """Every password spelled in ``url`` (raw and percent-decoded); empty if none or unparsable."""
    try:
        parts = urlsplit(url)
    except ValueError:
        return ()
    found: list[str] = []
    userinfo, at, _ = parts.netloc.rpartition("@")
    if at and ":" in userinfo:
        found.append(userinfo.split(":", 1)[1])
    found.extend(m.group(0).split("=", 1)[1] for m in _QUERY_PASSWORD.finditer(parts.query))
    variants = {v for raw in found for v in (raw, unquote(raw)) if v}
    return tuple(sorted(variants, key=len, reverse=True))


class Secret:
    """A string that shows only its mask; :meth:`reveal` returns the real value.

    Immutable, hashable, and compared in constant time. Pickling keeps the value (settings are
    handed to child processes), so never pickle a secret to anywhere untrusted.
    """

    __slots__ = ("_value",)
    _value: str

    def __init__(self, value: str) -> None:
        """Wrap ``value``, which must be a non-empty string (an empty value means "unset")."""
        if not isinstance(value, str):  # pyright: ignore[reportUnnecessaryIsInstance]
            msg = f"a secret must be a str, got {type(value).__name__}"
            raise TypeError(msg)
        if not value:
            msg = "a secret must not be empty (an empty value means the setting is unset)"
            raise ValueError(msg)
        object.__setattr__(self, "_value", value)

    def reveal(self) -> str:
        """Return the real value. Call this only where the credential is actually used."""
        return self._value

    @property
    def masked(self) -> str:
        """The printable stand-in for this secret."""
        return mask_secret(self._value)

    def redactions(self) -> tuple[tuple[str, str], ...]:
        """``(raw, replacement)`` pairs a log filter substitutes, longest raw text first."""
        return ((self._value, self.masked),)

    def __repr__(self) -> str:
        """``Secret('AbCd…XyZ0')``: the mask, never the value."""
        return f"{type(self).__name__}({self.masked!r})"

    def __str__(self) -> str:
        """The mask, never the value."""
        return self.masked

    def __format__(self, format_spec: str) -> str:
        """The mask formatted with ``format_spec``, never the value."""
        return format(self.masked, format_spec)

    def __eq__(self, other: object) -> bool:
        """Equal to a secret of the same type holding the same value (constant-time compare)."""
        if not isinstance(other, Secret) or type(other) is not type(self):
            return NotImplemented
        return hmac.compare_digest(self._value.encode(), other._value.encode())

    def __hash__(self) -> int:
        """Hash of the value (a hash does not reveal it)."""
        return hash((type(self).__name__, self._value))

    def __setattr__(self, name: str, value: object) -> None:
        """Secrets are immutable."""
        msg = f"{type(self).__name__} is immutable"
        raise AttributeError(msg)

    def __delattr__(self, name: str) -> None:
        """Secrets are immutable."""
        msg = f"{type(self).__name__} is immutable"
        raise AttributeError(msg)

    def __reduce__(self) -> tuple[type[Secret], tuple[str]]:
        """Pickle by value so that settings can be handed to a child process."""
        return (type(self), (self._value,))


class DatabaseUrl(Secret):
    """A PostgreSQL URL whose mask keeps everything but the password (``user:****@host/db``)."""

    __slots__ = ()

    @property
    def masked(self) -> str:
        """The URL with its password replaced by ``****``."""
        return mask_database_url(self._value)

    def redactions(self) -> tuple[tuple[str, str], ...]:
        """The whole URL, then each password spelling of 4+ characters on its own.

        Shorter passwords are not redacted on their own because replacing every occurrence of,
        say, ``pw`` in every log line would make the logs unreadable; such a password protects
        nothing anyway. The full URL is always redacted.
        """
        pairs = [(self._value, self.masked)]
        pairs.extend(
            (password, MASK)
            for password in _database_url_passwords(self._value)
            if len(password) >= _MIN_FRAGMENT_LEN
        )
        return tuple(pairs)
