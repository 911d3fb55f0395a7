"""The simulator's settings: one frozen, keyword-only, validated object.

Every field has a default, so ``SimConfig()`` is a working simulator with no keys (public
endpoints only) and no recording: KRW-BTC then holds one real candle's trades (``seed``) and
nothing else trades until :meth:`SimServer.feed` prints a trade.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from typing import Any

from market.recording import Recording
from model.clock import Clock, SystemClock

__all__ = ["SimConfig"]


@dataclass(frozen=True, slots=True, kw_only=True)
class SimConfig:
    """How one simulated Upbit behaves.

    Attributes:
        keys: access key → secret key of the simulated users.
        balances: access key → currency → starting free balance (``Decimal``).
        expired_keys: access keys answered with ``expired_access_key``.
        recording: the recorded trades to replay (``None``: only trades fed by hand).
        seed: with no recording, print the trades of the first real KRW-BTC candle of the
            shipped data (``candles-derived``) at start, so the quotation endpoints have a price.
        speed: replay speed, ``1.0`` = real time; ``None`` = as fast as possible.
        autoplay: replay in a background thread from :meth:`SimServer.start`; ``False`` replays
            only on :meth:`SimServer.advance` (deterministic tests).
        max_gap_s: the longest stretch of recording time replayed at full length
            (``ReplayPacer``): holes in the recording cost at most this much.
        host: the interface to bind (loopback by default).
        port / ws_port: the REST / WebSocket ports; 0 picks free ports.
        markets: extra market ids to list besides the recorded 2021 list, KRW-BTC and the
            recording's markets.
        rules_at: the instant whose exchange rules (tick table, minimums) apply; ``None`` = now.
        rate_limits: ``True`` to enforce Upbit's request budgets (429 / 418), ``False`` to only
            report them in ``Remaining-Req``.
        limits: per-group overrides of the request budget, e.g. ``{"order": 12}``.
        block_after: 429 answers within a minute after which a client is blocked (418).
        block_seconds: the first block's length (doubled for each repeat offence).
        ws_idle_timeout_s: close a WebSocket connection after this long with no traffic.
        ws_status_interval_s: how often ``{"status":"UP"}`` repeats after a client's PING.
        clock: time for order timestamps, rate-limit windows, lookup lag and nonce-free logic.

    """

    keys: Mapping[str, str] = field(default_factory=dict)
    balances: Mapping[str, Mapping[str, Decimal]] = field(default_factory=dict)
    expired_keys: frozenset[str] = frozenset()
    recording: Recording | None = None
    seed: bool = True
    speed: float | None = None
    autoplay: bool = True
    max_gap_s: float = 10.0
    host: str = "127.0.0.1"
    port: int = 0
    ws_port: int = 0
    markets: tuple[str, ...] = ()
    rules_at: datetime | None = None
    rate_limits: bool = True
    limits: Mapping[str, int] = field(default_factory=dict)
    block_after: int = 5
    block_seconds: float = 30.0
    ws_idle_timeout_s: float = 120.0
    ws_status_interval_s: float = 10.0
    clock: Clock = field(default_factory=SystemClock)

    def __post_init__(self) -> None:
        problems: list[str] = []
        for user in self.balances:
            if user not in self.keys:
                problems.append(f"balances: access key {user!r} is not in keys")
            for currency, amount in self.balances[user].items():
                if not isinstance(amount, Decimal) or not amount.is_finite() or amount < 0:
                    problems.append(f"balances[{user!r}][{currency!r}] must be a Decimal >= 0, got {amount!r}")
        if self.speed is not None and not (math.isfinite(self.speed) and self.speed > 0):
            problems.append(f"speed must be a positive number or None (max), got {self.speed!r}")
        for name in ("port", "ws_port"):
            value: Any = getattr(self, name)
            if not isinstance(value, int) or not 0 <= value <= 65535:
                problems.append(f"{name} must be 0..65535, got {value!r}")
        for name in ("ws_idle_timeout_s", "ws_status_interval_s", "block_seconds", "max_gap_s"):
            value = getattr(self, name)
            if not (isinstance(value, (int, float)) and math.isfinite(value) and value > 0):
                problems.append(f"{name} must be a positive number, got {value!r}")
        if self.rules_at is not None and self.rules_at.tzinfo is None:
            problems.append("rules_at must be timezone-aware")
        if problems:
            raise ValueError("invalid SimConfig: " + "; ".join(problems))
