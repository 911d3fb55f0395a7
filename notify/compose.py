"""Alerts → Telegram messages: bursts of one kind grouped, long texts split at the limit.

Pure functions. A run of consecutive alerts of the same kind becomes one message (so a burst
of 200 paper fills is a handful of messages, not 200), as long as it fits Telegram's text
limit; a single alert longer than the limit is split on line boundaries (or hard, inside a
line longer than the limit).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from notify.telegram import TEXT_LIMIT
from model.alerts import Alert

_ICON = {"info": "ℹ️", "warning": "⚠️", "error": "❗", "critical": "🚨"}


@dataclass(frozen=True, slots=True, kw_only=True)
class Outgoing:
    """What to send for a group of alerts: one or more message parts."""

    alert_ids: tuple[int, ...]
    parts: tuple[str, ...]


def line(alert: Alert) -> str:
    return f"{_ICON.get(alert.level, '')} {alert.kind}: {alert.text}".strip()


def compose(alerts: Sequence[Alert], limit: int = TEXT_LIMIT) -> list[Outgoing]:
    """Group consecutive alerts of one kind into messages of at most ``limit`` characters."""
    out: list[Outgoing] = []
    ids: list[int] = []
    lines: list[str] = []
    kind = None

    def flush() -> None:
        if ids:
            header = f"{len(ids)}× {kind}\n" if len(ids) > 1 else ""
            out.append(Outgoing(alert_ids=tuple(ids), parts=tuple(split(header + "\n".join(lines), limit))))

    for alert in alerts:
        text = line(alert)
        header_room = len(f"{len(ids) + 1}× {alert.kind}\n")
        fits = sum(len(x) + 1 for x in lines) + len(text) + header_room <= limit
        if alert.kind != kind or not fits:
            flush()
            ids, lines, kind = [], [], alert.kind
        ids.append(alert.id)
        lines.append(text)
    flush()
    return out


def split(text: str, limit: int = TEXT_LIMIT) -> list[str]:
    """Cut ``text`` into parts of at most ``limit`` characters, on line ends where possible."""
    if limit < 1:
        raise ValueError("limit must be positive")
    parts: list[str] = []
    current = ""
    for raw in text.split("\n"):
        pieces = [raw[i:i + limit] for i in range(0, len(raw), limit)] or [""]
        for piece in pieces:
            candidate = piece if not current else f"{current}\n{piece}"
            if len(candidate) <= limit:
                current = candidate
            else:
                parts.append(current)
                current = piece
    if current or not parts:
        parts.append(current)
    return parts
