"""Which published frame caused which order request, and how long it took (pure: values in, samples out).

A paper trade filled at the open of its market's 1-second bar ``fill_ts``; the paper stage sees
that bar when it closes, i.e. when the first trade of a later second of that market arrives. So
the frame that caused the paper trade — and the order the execution node sent for it — is the
first published signal frame of that market whose trade second is after ``fill_ts``.

Every paper trade falls in exactly one category (:data:`CATEGORIES`):

- ``measured``: attributed, and its order request arrived at the exchange after the frame;
- ``warmup``: attributed to a frame published before measuring started;
- ``after_stream``: no later frame of its market was published (its bar closed by the feed's
  clock tick after the stream ended): nothing to attribute it to;
- ``before_frame``: the paper trade was committed, or its request arrived, before the frame that
  should have caused it was published — its bar was closed by something else (the clock tick):
  attribution impossible, reported and left out, never clipped to zero;
- ``not_sent``: no request with any of its attempts' identifiers reached the exchange;
- ``shared_frame``: an earlier paper trade was already attributed to the same frame (the stream is
  built so that this cannot happen: one frame closes one bar, one bar fills one order).
"""

from __future__ import annotations

import bisect
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field

from bench.tick_stream import Published

__all__ = ["CATEGORIES", "Attribution", "PaperTrade", "Sample", "attribute"]

CATEGORIES = ("measured", "warmup", "after_stream", "before_frame", "not_sent", "shared_frame")


@dataclass(frozen=True, slots=True, kw_only=True)
class PaperTrade:
    """A paper trade (intent) as the database has it, with its order attempts' identifiers."""

    paper_trade_id: int
    market: str
    fill_s: int  # epoch second of the bar that filled it
    committed_at: float  # pg_xact_commit_timestamp of its row (epoch seconds)
    identifiers: tuple[str, ...]  # of its order attempts


@dataclass(frozen=True, slots=True, kw_only=True)
class Sample:
    """One attributed order, in seconds: frame → request arrival, split at the paper trade's commit."""

    burst: bool
    total_s: float  # request arrival − frame published
    market_node_s: float  # paper trade committed − frame published
    handoff_s: float  # request arrival − paper trade committed


@dataclass(slots=True)
class Attribution:
    """The samples of both phases and the count of every category."""

    quiet: list[Sample] = field(default_factory=list)
    burst: list[Sample] = field(default_factory=list)
    counts: dict[str, int] = field(default_factory=lambda: dict.fromkeys(CATEGORIES, 0))


def attribute(frames: Iterable[Published], trades: Iterable[PaperTrade], arrivals: Mapping[str, float]) -> Attribution:
    """Attribute every paper trade to its closing frame; ``arrivals``: identifier → first arrival time."""
    by_market: dict[str, list[Published]] = {}
    for frame in sorted(frames, key=lambda f: f.ts_ms):
        by_market.setdefault(frame.market, []).append(frame)
    stamps = {market: [f.ts_ms for f in published] for market, published in by_market.items()}
    out = Attribution()
    used: set[tuple[str, int]] = set()
    for trade in sorted(trades, key=lambda t: t.paper_trade_id):
        category, closing, sample = _one(trade, by_market.get(trade.market, []), stamps.get(trade.market, []),
                                         arrivals)
        if closing is not None:
            if (closing.market, closing.ts_ms) in used:
                category, sample = "shared_frame", None
            used.add((closing.market, closing.ts_ms))
        out.counts[category] += 1
        if sample is not None:
            (out.burst if sample.burst else out.quiet).append(sample)
    return out


def _one(trade: PaperTrade, frames: Sequence[Published], stamps: Sequence[int],
         arrivals: Mapping[str, float]) -> tuple[str, Published | None, Sample | None]:
    """The category of one paper trade, the frame it is attributed to (if any) and its sample."""
    pos = bisect.bisect_left(stamps, (trade.fill_s + 1) * 1000)  # the first trade of a later second
    if pos == len(stamps):
        return "after_stream", None, None
    frame = frames[pos]
    seen = [arrivals[i] for i in trade.identifiers if i in arrivals]
    if not seen:
        return "not_sent", frame, None
    arrived = min(seen)  # the first request sent for this intent
    if trade.committed_at < frame.published_at or arrived < frame.published_at:
        return "before_frame", None, None
    if frame.warmup:
        return "warmup", frame, None
    return "measured", frame, Sample(burst=frame.burst, total_s=arrived - frame.published_at,
                                     market_node_s=trade.committed_at - frame.published_at,
                                     handoff_s=arrived - trade.committed_at)
