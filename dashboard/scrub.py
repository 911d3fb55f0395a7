"""What the dashboard does to free-form values (``jsonb`` details, flag values) before showing them.

The tables hold no secrets by design, and the server masks the configured secrets in every body
it sends; this is the line in between: a key whose name suggests a credential is never shown,
whatever the value, and long values are cut.
"""

from __future__ import annotations

from decimal import Decimal

SECRET_WORDS = ("secret", "token", "password", "passwd", "access_key", "api_key", "credential", "jwt")
HIDDEN = "(hidden)"
TEXT_CHARS = 300


def is_secret_name(name: str) -> bool:
    """True for a column or key name that suggests a credential."""
    lowered = name.lower()
    return any(word in lowered for word in SECRET_WORDS)


def scrub(value: object) -> object:
    """``value`` with every credential-like key's value replaced by ``HIDDEN`` (recursively)."""
    if isinstance(value, dict):
        return {str(k): HIDDEN if is_secret_name(str(k)) else scrub(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [scrub(v) for v in value]
    if isinstance(value, Decimal):
        return float(value)
    return value


def detail_text(detail: object) -> str:
    """A one-line ``key value · key value`` text of a (scrubbed) detail, empty values left out."""
    scrubbed = scrub(detail)
    if isinstance(scrubbed, dict):
        parts = [f"{k} {_plain(v)}" for k, v in scrubbed.items() if v not in (None, "", [], {})]
        text = " · ".join(parts)
    else:
        text = "" if detail in (None, "", [], {}) else _plain(scrub(detail))
    return text if len(text) <= TEXT_CHARS else text[: TEXT_CHARS - 1] + "…"


def _plain(value: object) -> str:
    if isinstance(value, list):
        return ", ".join(_plain(v) for v in value)
    if isinstance(value, dict):
        return "{" + ", ".join(f"{k}: {_plain(v)}" for k, v in value.items()) + "}"
    if isinstance(value, bool):
        return "yes" if value else "no"
    return str(value)
