"""What a benchmark hands back: its figures, how they were measured, and what to keep in mind."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from bench.stats import Figure


@dataclass(slots=True, kw_only=True)
class Result:
    """One benchmark's outcome (figures in table order)."""

    key: str
    title: str
    method: str
    figures: list[Figure] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    details: dict[str, Any] = field(default_factory=dict)
    seconds: float = 0.0
    error: str | None = None

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "title": self.title,
            "method": self.method,
            "figures": {f.name: f.to_json() for f in self.figures},
            "notes": self.notes,
            "details": self.details,
            "seconds": round(self.seconds, 1),
        }
        if self.error is not None:
            out["error"] = self.error
        return out
