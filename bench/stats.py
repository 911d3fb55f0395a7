"""Figures: a value measured several times, summarised as median, min and max (pure, no I/O)."""

from __future__ import annotations

import math
import statistics
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True, slots=True, kw_only=True)
class Target:
    """What the issue asks of a figure: ``op`` is ``>=`` or ``<=``."""

    op: str
    value: float

    def __post_init__(self) -> None:
        if self.op not in {">=", "<="}:
            raise ValueError(f"target op must be '>=' or '<=', got {self.op!r}")

    def met_by(self, value: float) -> bool:
        return value >= self.value if self.op == ">=" else value <= self.value


@dataclass(frozen=True, slots=True, kw_only=True)
class Figure:
    """One measured quantity: every sample kept, summarised by median, min and max."""

    name: str
    unit: str
    samples: tuple[float, ...]
    what: str = ""  # one line: what exactly was measured
    target: Target | None = None
    decimals: int = 1
    extra: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if not self.samples:
            raise ValueError(f"figure {self.name!r} has no samples")
        if any(not math.isfinite(s) for s in self.samples):
            raise ValueError(f"figure {self.name!r} has a non-finite sample: {self.samples}")

    @property
    def median(self) -> float:
        return float(statistics.median(self.samples))

    @property
    def min(self) -> float:
        return float(min(self.samples))

    @property
    def max(self) -> float:
        return float(max(self.samples))

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "median": _round(self.median, self.decimals + 2),
            "min": _round(self.min, self.decimals + 2),
            "max": _round(self.max, self.decimals + 2),
            "n": len(self.samples),
            "unit": self.unit,
            "samples": [_round(s, self.decimals + 2) for s in self.samples],
        }
        if self.what:
            out["what"] = self.what
        if self.target is not None:
            out["target"] = {"op": self.target.op, "value": self.target.value,
                             "met_by_median": self.target.met_by(self.median)}
        out.update(self.extra)
        return out


def ratios(values: Sequence[float], ceilings: Sequence[float]) -> tuple[float, ...]:
    """Pairwise ``value / ceiling`` (run i of the system against the ceiling measured next to it)."""
    if len(values) != len(ceilings):
        raise ValueError(f"{len(values)} values but {len(ceilings)} ceilings")
    return tuple(v / c for v, c in zip(values, ceilings, strict=True))


def percentile(values: Sequence[float], q: float) -> float:
    """The ``q`` quantile (0..1) by linear interpolation between closest ranks (numpy's default)."""
    if not values:
        raise ValueError("percentile of no values")
    if not 0 <= q <= 1:
        raise ValueError(f"q must be within [0, 1], got {q}")
    ordered = sorted(values)
    pos = (len(ordered) - 1) * q
    lo = math.floor(pos)
    hi = min(lo + 1, len(ordered) - 1)
    return ordered[lo] + (ordered[hi] - ordered[lo]) * (pos - lo)


def _round(value: float, digits: int) -> float:
    return round(value, max(digits, 0))
