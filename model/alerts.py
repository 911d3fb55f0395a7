"""Alerts: what the system tells its operator, at one of four levels.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

LEVELS = ("info", "warning", "error", "critical")

@dataclass(frozen=True, slots=True, kw_only=True)
class Alert:
    """One outbox row."""

    id: int
    created_at: datetime
    kind: str
    level: str
    text: str
    attempts: int
