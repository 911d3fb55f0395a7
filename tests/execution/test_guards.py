"""execution.guards: every guard combination against an independent oracle, and the gate table."""

from __future__ import annotations

import itertools
import math
from pathlib import Path

import pytest

from config.settings import LIVE_CONFIRM_PHRASE, PaperProfile, TradeMode, load_settings
from execution.guards import GuardConfig, IntentFacts, ModeDecision, Verdict, decide_mode, gate
from model.reasons import Reason, Status

SHADOW, TEST, LIVE = TradeMode.SHADOW, TradeMode.TEST, TradeMode.LIVE
R = Reason


def config(**changes: object) -> GuardConfig:
    """Everything allows live trading; ``changes`` turn guards off."""
    values: dict[str, object] = {
        "has_keys": True, "live_trading": True, "live_confirmed": True,
        "paper_profile": PaperProfile.DEFAULT, "read_only": False, "test_orders": True, "auto_test": False,
        "feed_live": True,
    }
    values.update(changes)
    return GuardConfig(**values)  # type: ignore[arg-type]


# ---- decide_mode: exhaustive, against an oracle -----------------------------------------------

def in_reason_order(reasons: set[Reason]) -> tuple[Reason, ...]:
    return tuple(reason for reason in Reason if reason in reasons)


def oracle(requested: TradeMode, c: GuardConfig) -> tuple[TradeMode, tuple[Reason, ...]]:
    """The rules of the brief, written out once more without looking at the module."""
    test_ok = c.has_keys and c.test_orders and not c.read_only
    test_problems = set()
    if not c.has_keys:
        test_problems.add(R.KEYS_MISSING)
    if not c.test_orders:
        test_problems.add(R.TEST_DISABLED)
    if c.read_only:
        test_problems.add(R.READ_ONLY)

    if requested == SHADOW:
        return SHADOW, ()
    if requested == TEST:
        return (TEST, ()) if test_ok else (SHADOW, in_reason_order(test_problems))

    live_problems = set()
    if not c.live_trading:
        live_problems.add(R.LIVE_DISABLED)
    if not c.live_confirmed:
        live_problems.add(R.LIVE_UNCONFIRMED)
    if c.paper_profile == PaperProfile.TEST:
        live_problems.add(R.PAPER_PROFILE_MISMATCH)
    if not c.has_keys:
        live_problems.add(R.KEYS_MISSING)
    if c.read_only:
        live_problems.add(R.READ_ONLY)
    if not c.feed_live and not c.exchange_simulated:  # a replay drives live orders only on the simulator
        live_problems.add(R.FEED_NOT_LIVE)
    if not live_problems:
        return LIVE, ()
    if c.auto_test and test_ok:
        return TEST, in_reason_order(live_problems)
    if not c.auto_test:
        live_problems.add(R.AUTO_TEST_DISABLED)
    if c.auto_test and not c.test_orders:
        live_problems.add(R.TEST_DISABLED)
    return SHADOW, in_reason_order(live_problems)


BOOLS = (False, True)
ALL_CONFIGS = [
    GuardConfig(has_keys=k, live_trading=lt, live_confirmed=lc, paper_profile=pp, read_only=ro,
                test_orders=to, auto_test=at, feed_live=fl, exchange_simulated=sim)
    for k, lt, lc, pp, ro, to, at, fl, sim in itertools.product(
        BOOLS, BOOLS, BOOLS, tuple(PaperProfile), BOOLS, BOOLS, BOOLS, BOOLS, BOOLS)
]


def test_every_combination_matches_the_oracle() -> None:
    checked = 0
    for requested, c in itertools.product(tuple(TradeMode), ALL_CONFIGS):
        decision = decide_mode(requested, c)
        assert (decision.effective, decision.reasons) == oracle(requested, c), (requested, c)
        assert decision.requested == requested
        assert decision.downgraded == (decision.effective != requested)
        assert bool(decision.reasons) == decision.downgraded
        assert len(set(decision.reasons)) == len(decision.reasons)
        checked += 1
    assert checked == 3 * 2**9


def test_live_needs_every_guard() -> None:
    lives = [c for c in ALL_CONFIGS if decide_mode(LIVE, c).effective == LIVE]
    assert lives == [c for c in ALL_CONFIGS if c == config(auto_test=c.auto_test, test_orders=c.test_orders,
                                                           feed_live=c.feed_live,
                                                           exchange_simulated=c.exchange_simulated)
                     and (c.feed_live or c.exchange_simulated)]
    assert len(lives) == 12  # test_orders and auto_test are free; live data, or a simulated exchange, or both


def test_a_downgrade_never_raises_the_mode() -> None:
    rank = {SHADOW: 0, TEST: 1, LIVE: 2}
    for requested, c in itertools.product(tuple(TradeMode), ALL_CONFIGS):
        assert rank[decide_mode(requested, c).effective] <= rank[requested]


@pytest.mark.parametrize(("requested", "changes", "effective", "reasons"), [
    (SHADOW, {"has_keys": False, "read_only": True}, SHADOW, ()),
    (TEST, {}, TEST, ()),
    (TEST, {"has_keys": False}, SHADOW, (R.KEYS_MISSING,)),
    (TEST, {"read_only": True, "test_orders": False}, SHADOW, (R.TEST_DISABLED, R.READ_ONLY)),
    (TEST, {"live_trading": False, "live_confirmed": False}, TEST, ()),  # live guards don't matter
    (LIVE, {}, LIVE, ()),
    (LIVE, {"test_orders": False}, LIVE, ()),  # TEST_ORDERS only governs test mode
    (LIVE, {"live_confirmed": False}, SHADOW, (R.AUTO_TEST_DISABLED, R.LIVE_UNCONFIRMED)),
    (LIVE, {"live_confirmed": False, "auto_test": True}, TEST, (R.LIVE_UNCONFIRMED,)),
    (LIVE, {"paper_profile": PaperProfile.TEST, "auto_test": True}, TEST, (R.PAPER_PROFILE_MISMATCH,)),
    (LIVE, {"live_trading": False, "auto_test": True, "test_orders": False}, SHADOW,
     (R.TEST_DISABLED, R.LIVE_DISABLED)),
    (LIVE, {"has_keys": False, "auto_test": True}, SHADOW, (R.KEYS_MISSING,)),
    (LIVE, {"read_only": True, "auto_test": True}, SHADOW, (R.READ_ONLY,)),
    (LIVE, {"has_keys": False, "read_only": True}, SHADOW, (R.KEYS_MISSING, R.AUTO_TEST_DISABLED, R.READ_ONLY)),
    # every other guard agrees, but the market data is a replay: never live
    (LIVE, {"feed_live": False}, SHADOW, (R.AUTO_TEST_DISABLED, R.FEED_NOT_LIVE)),
    (LIVE, {"feed_live": False, "auto_test": True}, TEST, (R.FEED_NOT_LIVE,)),
    (LIVE, {"feed_live": False, "exchange_simulated": True}, LIVE, ()),  # a replay on the simulator
])
def test_examples(requested: TradeMode, changes: dict[str, object], effective: TradeMode,
                  reasons: tuple[Reason, ...]) -> None:
    decision = decide_mode(requested, config(**changes))
    assert (decision.effective, decision.reasons) == (effective, reasons)


def test_describe_and_string_requests() -> None:
    decision = decide_mode(LIVE, config(live_confirmed=False, auto_test=True))
    assert decision.describe() == "live requested, running test: LIVE_UNCONFIRMED"
    assert decide_mode(LIVE, config()).describe() == "live requested, running live"
    assert decide_mode("test", config(has_keys=False)).effective == SHADOW  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="real"):
        decide_mode("real", config())  # type: ignore[arg-type]


@pytest.mark.parametrize(("requested", "effective", "reasons"), [
    (TEST, LIVE, ()),  # raised
    (LIVE, TEST, ()),  # downgraded without a reason
    (LIVE, LIVE, (R.READ_ONLY,)),  # a reason without a downgrade
    (LIVE, SHADOW, (R.READ_ONLY, R.KEYS_MISSING)),  # out of order
    (LIVE, SHADOW, (R.READ_ONLY, R.READ_ONLY)),  # duplicated
])
def test_mode_decision_invariants(requested: TradeMode, effective: TradeMode,
                                  reasons: tuple[Reason, ...]) -> None:
    with pytest.raises(ValueError):
        ModeDecision(requested=requested, effective=effective, reasons=reasons)


def test_from_settings(tmp_path: Path) -> None:
    env_file = tmp_path / ".env"
    env_file.write_text("")
    defaults = GuardConfig.from_settings(load_settings(env={}, env_file=env_file))
    assert defaults == GuardConfig(has_keys=False, live_trading=False, live_confirmed=False,
                                   paper_profile=PaperProfile.DEFAULT, read_only=False, test_orders=True,
                                   auto_test=False)
    armed = GuardConfig.from_settings(load_settings(env={
        "UPBIT_ACCESS_KEY": "a1", "UPBIT_SECRET_KEY": "s1", "LIVE_TRADING": "true",
        "LIVE_CONFIRM": LIVE_CONFIRM_PHRASE, "PAPER_PROFILE": "test", "READ_ONLY": "true",
        "TEST_ORDERS": "false", "AUTO_TEST": "true",
    }, env_file=env_file))
    assert armed == GuardConfig(has_keys=True, live_trading=True, live_confirmed=True,
                                paper_profile=PaperProfile.TEST, read_only=True, test_orders=False,
                                auto_test=True, feed_live=False)
    live_feed = load_settings(env={"FEED_SOURCE": "upbit", "MARKETS": "KRW-BTC"}, env_file=env_file)
    assert GuardConfig.from_settings(live_feed).feed_live
    almost = load_settings(env={"LIVE_CONFIRM": LIVE_CONFIRM_PHRASE.lower()}, env_file=env_file)
    assert not GuardConfig.from_settings(almost).live_confirmed


# ---- gate: the table ---------------------------------------------------------------------------

MAX_LAG = 30.0
THROTTLE = 1
ENTRY_ONLY = {R.KILL_SWITCH, R.PAUSED, R.RECONCILE_HALT, R.DATA_LAG, R.NOT_RECONCILED}
SWITCH_BLOCKS = {R.KILL_SWITCH, R.PAUSED, R.RECONCILE_HALT}

DECISIONS = (
    ModeDecision(requested=SHADOW, effective=SHADOW, reasons=()),
    ModeDecision(requested=TEST, effective=TEST, reasons=()),
    ModeDecision(requested=LIVE, effective=LIVE, reasons=()),
    ModeDecision(requested=LIVE, effective=TEST, reasons=(R.LIVE_UNCONFIRMED,)),
    ModeDecision(requested=LIVE, effective=SHADOW, reasons=(R.AUTO_TEST_DISABLED, R.LIVE_DISABLED)),
)
SWITCHES = [
    {"killswitch": kill, "paused": paused, "reconcile_halt": halt}
    for kill, paused, halt in itertools.product(BOOLS, BOOLS, (False, {"at": "2025-01-01T00:00:00Z", "why": "diff"}))
]
# (intent age, bar age): fresh, exactly at the limit, old intent, stale bar, NaN
AGES = ((1.0, None), (MAX_LAG, MAX_LAG), (MAX_LAG + 0.001, None), (1.0, MAX_LAG + 0.001), (math.nan, None))
REMAINING = (None, 0, THROTTLE, THROTTLE + 1, 8)
RISKS = ((), ("order total 2,000,000 KRW above RISK_MAX_ORDER_KRW=1,000,000", "KRW-X not in LIVE_MARKETS (x)"))


def expected(decision: ModeDecision, facts: IntentFacts) -> tuple[Status | None, set[Reason]]:
    """The brief's gate rules, written out without looking at the module."""
    mode = decision.effective
    buy = facts.side == "buy"
    sending_mode = mode in (TEST, LIVE)
    blocks: set[Reason] = set()
    if buy and facts.switches.get("killswitch") is True:
        blocks.add(R.KILL_SWITCH)
    if buy and facts.switches.get("paused") is True:
        blocks.add(R.PAUSED)
    if buy and facts.switches.get("reconcile_halt") not in (False, None):
        blocks.add(R.RECONCILE_HALT)
    if buy and sending_mode:
        old_intent = not facts.intent_age_s <= MAX_LAG  # NaN counts as old
        stale_bar = facts.bar_age_s is not None and facts.bar_age_s > MAX_LAG
        if old_intent or stale_bar:
            blocks.add(R.DATA_LAG)
        if mode == LIVE and not facts.reconciled:
            blocks.add(R.NOT_RECONCILED)
    if sending_mode and facts.breaker_open:
        blocks.add(R.BREAKER_OPEN)
    if sending_mode and facts.risk:
        blocks.add(R.RISK_LIMIT)
    if mode == LIVE and not buy and facts.nothing_held:
        blocks.add(R.NOTHING_HELD)
    if blocks:
        return Status.BLOCKED, set(decision.reasons) | blocks
    if mode == SHADOW:
        return Status.LOGGED, set(decision.reasons)
    if facts.remaining is not None and facts.remaining <= THROTTLE:
        return Status.THROTTLED, set(decision.reasons) | {R.THROTTLED}
    return None, set(decision.reasons)


@pytest.mark.parametrize("decision", DECISIONS, ids=ModeDecision.describe)
def test_gate_table(decision: ModeDecision) -> None:
    seen: set[Status | None] = set()
    for switches, side, (intent_age, bar_age), breaker, remaining, reconciled, risk, held in itertools.product(
        SWITCHES, ("buy", "sell"), AGES, BOOLS, REMAINING, BOOLS, RISKS, BOOLS,
    ):
        facts = IntentFacts(side=side, switches=switches, intent_age_s=intent_age, bar_age_s=bar_age,
                            breaker_open=breaker, remaining=remaining, reconciled=reconciled, risk=risk,
                            nothing_held=not held)
        verdict = gate(decision, facts, max_data_lag_s=MAX_LAG, throttle_remaining=THROTTLE)
        status, reasons = expected(decision, facts)
        where = (decision.describe(), facts)
        assert verdict.mode == decision.effective, where
        assert verdict.status == status, where
        assert verdict.reasons == in_reason_order(reasons), where
        assert set(decision.reasons) <= set(verdict.reasons), where
        assert verdict.detail == ("; ".join(risk) if R.RISK_LIMIT in reasons else None), where
        # the invariants the brief names, stated directly
        if side == "sell":
            assert not ENTRY_ONLY & set(verdict.reasons), where
        if decision.effective == SHADOW:
            assert verdict.status in (Status.LOGGED, Status.BLOCKED), where
            if verdict.status == Status.BLOCKED:
                assert set(verdict.reasons) - set(decision.reasons) <= SWITCH_BLOCKS, where
        if verdict.status == Status.THROTTLED:
            assert set(verdict.reasons) - set(decision.reasons) == {R.THROTTLED}, where
        assert verdict.send == (verdict.status is None), where
        seen.add(verdict.status)
    if decision.effective == SHADOW:
        assert seen == {Status.LOGGED, Status.BLOCKED}
    else:
        assert seen == {None, Status.BLOCKED, Status.THROTTLED}


def facts(**changes: object) -> IntentFacts:
    """A buy that may go out: fresh, reconciled, breaker closed, budget left, no risk."""
    values: dict[str, object] = {
        "side": "buy", "switches": {"killswitch": False, "paused": False, "reconcile_halt": False},
        "intent_age_s": 0.5, "bar_age_s": 2.0, "breaker_open": False, "remaining": 7, "reconciled": True,
    }
    values.update(changes)
    return IntentFacts(**values)  # type: ignore[arg-type]


def verdict(decision: ModeDecision, **changes: object) -> Verdict:
    return gate(decision, facts(**changes), max_data_lag_s=MAX_LAG, throttle_remaining=THROTTLE)


SHADOW_D, TEST_D, LIVE_D, LIVE_AS_TEST, LIVE_AS_SHADOW = DECISIONS


@pytest.mark.parametrize(("decision", "changes", "status", "reasons"), [
    (LIVE_D, {}, None, ()),
    (TEST_D, {}, None, ()),
    (SHADOW_D, {}, Status.LOGGED, ()),
    (LIVE_AS_TEST, {}, None, (R.LIVE_UNCONFIRMED,)),
    (LIVE_AS_SHADOW, {}, Status.LOGGED, (R.AUTO_TEST_DISABLED, R.LIVE_DISABLED)),
    (SHADOW_D, {"switches": {"killswitch": True}}, Status.BLOCKED, (R.KILL_SWITCH,)),
    (SHADOW_D, {"switches": {"killswitch": True}, "side": "sell"}, Status.LOGGED, ()),
    (LIVE_D, {"switches": {"paused": True, "reconcile_halt": {"why": "x"}}}, Status.BLOCKED,
     (R.PAUSED, R.RECONCILE_HALT)),
    (LIVE_D, {"switches": {}}, None, ()),  # flags not set yet: nothing is on
    (LIVE_D, {"switches": {"killswitch": "true"}}, None, ()),  # only JSON true is "on"
    (LIVE_D, {"intent_age_s": 31.0}, Status.BLOCKED, (R.DATA_LAG,)),
    (LIVE_D, {"intent_age_s": 31.0, "side": "sell"}, None, ()),
    (LIVE_D, {"bar_age_s": 30.5}, Status.BLOCKED, (R.DATA_LAG,)),
    (LIVE_D, {"bar_age_s": None, "intent_age_s": 30.0}, None, ()),
    (SHADOW_D, {"intent_age_s": 3600.0}, Status.LOGGED, ()),
    (LIVE_D, {"reconciled": False}, Status.BLOCKED, (R.NOT_RECONCILED,)),
    (TEST_D, {"reconciled": False}, None, ()),
    (LIVE_AS_TEST, {"reconciled": False}, None, (R.LIVE_UNCONFIRMED,)),  # effective mode counts
    (LIVE_D, {"breaker_open": True, "side": "sell"}, Status.BLOCKED, (R.BREAKER_OPEN,)),
    (SHADOW_D, {"breaker_open": True}, Status.LOGGED, ()),
    (LIVE_D, {"risk": ("a", "b"), "side": "sell"}, Status.BLOCKED, (R.RISK_LIMIT,)),
    (LIVE_D, {"nothing_held": True, "side": "sell"}, Status.BLOCKED, (R.NOTHING_HELD,)),
    (LIVE_D, {"nothing_held": True}, None, ()),  # a buy holds nothing yet
    (TEST_D, {"nothing_held": True, "side": "sell"}, None, ()),  # test orders sell nothing real
    (LIVE_AS_TEST, {"nothing_held": True, "side": "sell"}, None, (R.LIVE_UNCONFIRMED,)),
    (LIVE_D, {"remaining": 1}, Status.THROTTLED, (R.THROTTLED,)),
    (LIVE_D, {"remaining": 0, "side": "sell"}, Status.THROTTLED, (R.THROTTLED,)),
    (LIVE_D, {"remaining": 2}, None, ()),
    (LIVE_D, {"remaining": None}, None, ()),
    (LIVE_D, {"remaining": 0, "breaker_open": True}, Status.BLOCKED, (R.BREAKER_OPEN,)),
    (LIVE_AS_TEST, {"remaining": 0}, Status.THROTTLED, (R.LIVE_UNCONFIRMED, R.THROTTLED)),
    (LIVE_AS_SHADOW, {"switches": {"killswitch": True}}, Status.BLOCKED,
     (R.AUTO_TEST_DISABLED, R.LIVE_DISABLED, R.KILL_SWITCH)),
])
def test_gate_examples(decision: ModeDecision, changes: dict[str, object], status: Status | None,
                       reasons: tuple[Reason, ...]) -> None:
    result = verdict(decision, **changes)
    assert (result.status, result.reasons) == (status, reasons)


def test_risk_detail_is_recorded() -> None:
    result = verdict(LIVE_D, risk=("order total too big", "market not allowed"))
    assert result.detail == "order total too big; market not allowed"
    assert verdict(LIVE_D).detail is None
    assert verdict(SHADOW_D, risk=("ignored in shadow",)).detail is None


def test_facts_and_verdict_invariants() -> None:
    with pytest.raises(ValueError, match="side"):
        facts(side="bid")
    with pytest.raises(ValueError, match="shadow"):
        Verdict(mode=SHADOW, status=None, reasons=())
    with pytest.raises(ValueError, match="order"):
        Verdict(mode=LIVE, status=Status.BLOCKED, reasons=(R.PAUSED, R.KILL_SWITCH))
