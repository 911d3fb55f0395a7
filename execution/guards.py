"""The live-guard contract: which mode an order runs in, and whether it may go out now.

Two pure steps, values in and values out (no clock, no database, no network):

1. :func:`decide_mode` turns the *requested* mode and the static configuration
   (:class:`GuardConfig`) into the *effective* mode and the reasons for any downgrade
   (:class:`ModeDecision`). It is decided once per requested mode, not per order.
2. :func:`gate` looks at one intent about to go out (:class:`IntentFacts`) and returns the
   :class:`Verdict`: send it, or the final status to record instead.

Modes, from safest to most dangerous: ``shadow`` (record only) < ``test`` (Upbit's orders/test)
< ``live`` (real orders). A guard can only ever *lower* the mode, never raise it.

**decide_mode**

* ``shadow`` runs as shadow, with no reasons.
* ``test`` runs as test unless a test guard fails, and then as shadow with every failed guard:
  no API keys (``KEYS_MISSING``), ``TEST_ORDERS=false`` (``TEST_DISABLED``), ``READ_ONLY=true``
  (``READ_ONLY``).
* ``live`` runs as live only when **every** live guard agrees:

  ====================================  ==========================
  guard                                 reason when it fails
  ====================================  ==========================
  ``LIVE_TRADING=true``                 ``LIVE_DISABLED``
  ``LIVE_CONFIRM`` is the exact phrase  ``LIVE_UNCONFIRMED``
  ``PAPER_PROFILE`` is not ``test``     ``PAPER_PROFILE_MISMATCH``
  both API keys are set                 ``KEYS_MISSING``
  ``READ_ONLY`` is not true             ``READ_ONLY``
  the feed is live (``FEED_SOURCE``)    ``FEED_NOT_LIVE``
  ====================================  ==========================

  Live orders follow live market data only: a replayed recording (the sandbox's default) never
  drives a real order, however the other guards are set. The one exception spends no money: the
  exchange is the simulated Upbit (it says so at ``GET /_sim/status``, which the real exchange,
  or a proxy in front of it, answers 404), so drills and tests can run live orders end to end.

  When any fails, the order is downgraded. It runs as **test** when ``AUTO_TEST=true`` and test
  mode is itself possible (keys set, ``TEST_ORDERS=true``, not read-only); the reasons are the
  failed live guards. Otherwise it runs as **shadow**; the reasons are the failed guards, plus
  ``AUTO_TEST_DISABLED`` when ``AUTO_TEST=false``, plus ``TEST_DISABLED`` when ``AUTO_TEST=true``
  but ``TEST_ORDERS=false`` (missing keys and read-only are already among the failed guards).

A decision's reasons are empty exactly when the mode was not downgraded.

**gate**

An *entry* is a buy; an *exit* is a sell. Exits are never stopped by an entry-only guard: a
position must always be closable.

=================  =========  ==============  ===========================================
reason             sides      modes           when
=================  =========  ==============  ===========================================
``KILL_SWITCH``    buy        all             ``switches["killswitch"] is True``
``PAUSED``         buy        all             ``switches["paused"] is True``
``RECONCILE_HALT`` buy        all             ``switches["reconcile_halt"]`` is truthy
``DATA_LAG``       buy        test, live      intent age, or live bar age, > the maximum
``NOT_RECONCILED`` buy        live            the start-up reconciliation has not succeeded
``BREAKER_OPEN``   both       test, live      the order endpoint group's breaker is open
``RISK_LIMIT``     both       test, live      ``execution.risk`` found a violation
``NOTHING_HELD``   sell       live            our ledger holds less of the market than
                                              the venue's minimum order (the caller
                                              alerts; never an order)
=================  =========  ==============  ===========================================

(Modes are the *effective* mode.) Any of these → status ``BLOCKED``, nothing is sent. Otherwise
shadow → ``LOGGED``. Otherwise, when the order group's requests left in this second are known and
``<= EXEC_THROTTLE_REMAINING`` → ``THROTTLED`` with reason ``THROTTLED`` (the caller waits for the
next second and asks again; only a persistent throttle is recorded). Otherwise the status is
``None``: send it. An age that cannot be compared (NaN) counts as lagging. The verdict's reasons
always include the decision's downgrade reasons; all reasons are listed once each, in the
declaration order of :class:`~model.reasons.Reason`, so the same situation is always
recorded the same way.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from config.settings import FeedSource, PaperProfile, Settings, TradeMode
from model.reasons import Flag, Reason, Status

__all__ = ["GuardConfig", "IntentFacts", "ModeDecision", "Verdict", "decide_mode", "gate"]

_RANK = {TradeMode.SHADOW: 0, TradeMode.TEST: 1, TradeMode.LIVE: 2}
_ORDER = {reason: index for index, reason in enumerate(Reason)}
_SIDES = frozenset({"buy", "sell"})


def _ordered(reasons: Iterable[Reason]) -> tuple[Reason, ...]:
    """``reasons`` once each, in :class:`Reason` declaration order."""
    return tuple(sorted(set(reasons), key=_ORDER.__getitem__))


def _check_ordered(reasons: tuple[Reason, ...]) -> None:
    if reasons != _ordered(reasons):
        raise ValueError(f"reasons must be unique and in Reason order, got {reasons}")


@dataclass(frozen=True, slots=True, kw_only=True)
class GuardConfig:
    """The static inputs of the mode guards, read once from the settings."""

    has_keys: bool  # both UPBIT_ACCESS_KEY and UPBIT_SECRET_KEY are set
    live_trading: bool  # LIVE_TRADING
    live_confirmed: bool  # LIVE_CONFIRM is exactly LIVE_CONFIRM_PHRASE
    paper_profile: PaperProfile  # PAPER_PROFILE
    read_only: bool  # READ_ONLY
    test_orders: bool  # TEST_ORDERS
    auto_test: bool  # AUTO_TEST
    feed_live: bool = False  # FEED_SOURCE is the live exchange feed (not a replay)
    exchange_simulated: bool = False  # the exchange answered as the simulated Upbit (asked at start)

    @classmethod
    def from_settings(cls, settings: Settings) -> GuardConfig:
        """The guard inputs of a loaded configuration."""
        execution = settings.execution
        return cls(
            has_keys=settings.has_exchange_keys,
            live_trading=execution.live_trading,
            live_confirmed=execution.live_confirmed,
            paper_profile=execution.paper_profile,
            read_only=execution.read_only,
            test_orders=execution.test_orders,
            auto_test=execution.auto_test,
            feed_live=settings.feed.source is FeedSource.UPBIT,
        )


@dataclass(frozen=True, slots=True, kw_only=True)
class ModeDecision:
    """The mode an order runs in, and why it is lower than the one requested."""

    requested: TradeMode
    effective: TradeMode
    reasons: tuple[Reason, ...]  # empty exactly when not downgraded; Reason order

    def __post_init__(self) -> None:
        """A guard only lowers the mode, and a downgrade always says why."""
        if self.requested not in _RANK or self.effective not in _RANK:
            raise ValueError(f"unknown trade mode in {self.requested!r} -> {self.effective!r}")
        if _RANK[self.effective] > _RANK[self.requested]:
            raise ValueError(f"{self.effective} is above the requested {self.requested}")
        _check_ordered(self.reasons)
        if bool(self.reasons) != self.downgraded:
            raise ValueError("reasons must be given exactly when the mode is downgraded")

    @property
    def downgraded(self) -> bool:
        """True when the order runs in a lower mode than requested."""
        return self.effective != self.requested

    def describe(self) -> str:
        """One line for logs, e.g. ``live requested, running test: LIVE_UNCONFIRMED``."""
        line = f"{self.requested} requested, running {self.effective}"
        if self.reasons:
            line += ": " + ", ".join(self.reasons)
        return line


def decide_mode(requested: TradeMode, config: GuardConfig) -> ModeDecision:
    """The effective mode for ``requested`` under ``config`` (rules: the module docstring)."""
    test_failed = [
        *([Reason.KEYS_MISSING] if not config.has_keys else []),
        *([Reason.TEST_DISABLED] if not config.test_orders else []),
        *([Reason.READ_ONLY] if config.read_only else []),
    ]
    requested = TradeMode(requested)  # a plain "live" string is the same request
    if requested == TradeMode.SHADOW:
        return ModeDecision(requested=requested, effective=TradeMode.SHADOW, reasons=())
    if requested == TradeMode.TEST:
        effective = TradeMode.SHADOW if test_failed else TradeMode.TEST
        return ModeDecision(requested=requested, effective=effective, reasons=_ordered(test_failed))
    live_failed = [
        *([Reason.LIVE_DISABLED] if not config.live_trading else []),
        *([Reason.LIVE_UNCONFIRMED] if not config.live_confirmed else []),
        *([Reason.PAPER_PROFILE_MISMATCH] if config.paper_profile == PaperProfile.TEST else []),
        *([Reason.KEYS_MISSING] if not config.has_keys else []),
        *([Reason.READ_ONLY] if config.read_only else []),
        *([Reason.FEED_NOT_LIVE] if not (config.feed_live or config.exchange_simulated) else []),
    ]
    if not live_failed:
        return ModeDecision(requested=requested, effective=TradeMode.LIVE, reasons=())
    if config.auto_test and not test_failed:
        return ModeDecision(requested=requested, effective=TradeMode.TEST, reasons=_ordered(live_failed))
    if not config.auto_test:
        live_failed.append(Reason.AUTO_TEST_DISABLED)
    elif not config.test_orders:
        live_failed.append(Reason.TEST_DISABLED)
    return ModeDecision(requested=requested, effective=TradeMode.SHADOW, reasons=_ordered(live_failed))


@dataclass(frozen=True, slots=True, kw_only=True)
class IntentFacts:
    """What is known about one intent at the moment it is about to go out."""

    side: str  # "buy" (an entry) | "sell" (an exit)
    switches: Mapping[str, object]  # system_flags name -> JSON value (see Flag)
    intent_age_s: float  # wall seconds since the paper trade was committed
    bar_age_s: float | None  # live feed only: wall seconds since the latest bar; None for replays
    breaker_open: bool  # the exchange "order" endpoint group's breaker is open
    remaining: int | None  # requests left in the current second for the order group; None = unknown
    reconciled: bool  # the start-up reconciliation with the exchange has succeeded
    risk: tuple[str, ...] = ()  # risk violations found by execution.risk (human-readable)
    nothing_held: bool = False  # a live sell: our ledger holds less than the venue's minimum order

    def __post_init__(self) -> None:
        """Only the two sides exist."""
        if self.side not in _SIDES:
            raise ValueError(f"side must be 'buy' or 'sell', got {self.side!r}")


@dataclass(frozen=True, slots=True, kw_only=True)
class Verdict:
    """What to do with one attempt: send it (``status is None``) or record ``status``."""

    mode: TradeMode  # the effective mode recorded on the attempt
    status: Status | None  # None = send it (test/live); else the final status to record
    reasons: tuple[Reason, ...]  # downgrade reasons + blocking reasons, Reason order
    detail: str | None = None  # human text (risk violations), recorded as the attempt's error

    def __post_init__(self) -> None:
        """Shadow never sends; reasons are canonical."""
        _check_ordered(self.reasons)
        if self.status is None and self.mode == TradeMode.SHADOW:
            raise ValueError("a shadow attempt is never sent")

    @property
    def send(self) -> bool:
        """True when the order goes to the exchange now."""
        return self.status is None


def _lagging(age_s: float | None, max_s: float) -> bool:
    """Older than ``max_s``; a NaN age is not provably fresh, so it lags too."""
    return age_s is not None and not age_s <= max_s


def gate(decision: ModeDecision, facts: IntentFacts, *, max_data_lag_s: float,
         throttle_remaining: int) -> Verdict:
    """The verdict for one intent in ``decision.effective`` mode (rules: the module docstring)."""
    mode = decision.effective
    sends = mode != TradeMode.SHADOW
    entry = facts.side == "buy"
    blocks: list[Reason] = []
    if entry:
        if facts.switches.get(Flag.KILLSWITCH) is True:
            blocks.append(Reason.KILL_SWITCH)
        if facts.switches.get(Flag.PAUSED) is True:
            blocks.append(Reason.PAUSED)
        if facts.switches.get(Flag.RECONCILE_HALT):
            blocks.append(Reason.RECONCILE_HALT)
        if sends and (_lagging(facts.intent_age_s, max_data_lag_s)
                      or _lagging(facts.bar_age_s, max_data_lag_s)):
            blocks.append(Reason.DATA_LAG)
        if mode == TradeMode.LIVE and not facts.reconciled:
            blocks.append(Reason.NOT_RECONCILED)
    if sends and facts.breaker_open:
        blocks.append(Reason.BREAKER_OPEN)
    detail = None
    if sends and facts.risk:
        blocks.append(Reason.RISK_LIMIT)
        detail = "; ".join(facts.risk)
    if mode == TradeMode.LIVE and not entry and facts.nothing_held:
        blocks.append(Reason.NOTHING_HELD)

    if blocks:
        return Verdict(mode=mode, status=Status.BLOCKED, reasons=_ordered([*decision.reasons, *blocks]),
                       detail=detail)
    if not sends:
        return Verdict(mode=mode, status=Status.LOGGED, reasons=decision.reasons)
    if facts.remaining is not None and facts.remaining <= throttle_remaining:
        return Verdict(mode=mode, status=Status.THROTTLED,
                       reasons=_ordered([*decision.reasons, Reason.THROTTLED]))
    return Verdict(mode=mode, status=None, reasons=decision.reasons)
