"""execution.risk: each limit alone blocks at its boundary, the KRW budget, sell sizing."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta, timezone
from decimal import Decimal as D

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from config.settings import RiskSettings
from execution.risk import KrwBudget, below_venue_minimum, check_entry, check_exit, daily_loss_breached, sell_volume
from model.risk import RiskState, utc_day_start

NOW = datetime(2025, 9, 1, 12, 0, tzinfo=UTC)
LIMITS = RiskSettings(max_order_krw=D(1_000_000), daily_loss_krw=D(100_000), max_positions=2,
                      rebuy_cooldown_s=300.0, live_markets=("KRW-BTC", "KRW-ETH"))
STATE = RiskState(open_markets=frozenset({"KRW-XRP"}), last_sell_at={"KRW-BTC": NOW - timedelta(hours=1)},
                  realized_today_krw=D(-50_000))


def violations(*, market: str = "KRW-BTC", amount: D = D(100_000), now: datetime = NOW,
               state: RiskState = STATE, limits: RiskSettings = LIMITS, live: bool = True) -> tuple[str, ...]:
    return check_entry(market=market, amount_krw=amount, now=now, state=state, limits=limits, live=live)


# ---- check_entry: a passing base case, then one limit at a time ------------------------------

def test_base_case_passes() -> None:
    assert violations() == ()
    assert violations(live=False) == ()


@pytest.mark.parametrize(("case", "setting"), [
    ({"amount": D("1000000.01")}, "RISK_MAX_ORDER_KRW=1,000,000"),
    ({"state": replace(STATE, open_markets=frozenset({"KRW-XRP", "KRW-SOL"}))}, "RISK_MAX_POSITIONS=2"),
    ({"now": NOW - timedelta(minutes=56)}, "RISK_REBUY_COOLDOWN_S=300"),  # 4 min after the sell
    ({"market": "KRW-DOGE"}, "LIVE_MARKETS"),
    ({"state": replace(STATE, realized_today_krw=D(-100_000))}, "RISK_DAILY_LOSS_KRW=100,000"),
])
def test_each_limit_blocks_alone(case: dict[str, object], setting: str) -> None:
    found = violations(**case)  # type: ignore[arg-type]
    assert len(found) == 1, found
    assert setting in found[0]


@pytest.mark.parametrize("case", [
    {"amount": D(1_000_000)},  # equal to the maximum
    {"state": replace(STATE, open_markets=frozenset({"KRW-XRP", "KRW-BTC"}))},  # full, but adding to one held
    {"state": replace(STATE, open_markets=frozenset())},
    {"now": NOW - timedelta(minutes=55)},  # exactly RISK_REBUY_COOLDOWN_S after the sell
    {"market": "KRW-ETH"},
    {"market": "KRW-DOGE", "live": False},  # LIVE_MARKETS only binds live orders
    {"state": replace(STATE, realized_today_krw=D("-99999.99"))},  # just short of the daily loss
    {"state": replace(STATE, realized_today_krw=D(-10**9)), "limits": replace(LIMITS, daily_loss_krw=D(0))},
    {"now": NOW - timedelta(minutes=59), "limits": replace(LIMITS, rebuy_cooldown_s=0.0)},
])
def test_boundaries_pass(case: dict[str, object]) -> None:
    assert violations(**case) == ()  # type: ignore[arg-type]


def test_messages_name_the_setting_and_the_numbers() -> None:
    assert violations(amount=D(1_200_000)) == (
        "order total 1,200,000 KRW above RISK_MAX_ORDER_KRW=1,000,000",)
    (cooldown,) = violations(now=NOW - timedelta(minutes=59, seconds=30))
    assert cooldown == "KRW-BTC sold 30 s ago, within RISK_REBUY_COOLDOWN_S=300"
    (no_live,) = violations(limits=replace(LIMITS, live_markets=()))
    assert no_live == "KRW-BTC not in LIVE_MARKETS (empty: no market may trade live)"
    (loss,) = violations(state=replace(STATE, realized_today_krw=D("-123456.5")))
    assert loss == "realised loss today 123,456.5 KRW reached RISK_DAILY_LOSS_KRW=100,000"


def test_all_violations_are_listed_together() -> None:
    state = RiskState(open_markets=frozenset({"KRW-A", "KRW-B"}), last_sell_at={"KRW-Z": NOW},
                      realized_today_krw=D(-200_000))
    found = violations(market="KRW-Z", amount=D(2_000_000), state=state)
    settings_named = ("RISK_MAX_ORDER_KRW", "RISK_MAX_POSITIONS", "RISK_REBUY_COOLDOWN_S", "LIVE_MARKETS",
                      "RISK_DAILY_LOSS_KRW")
    assert len(found) == len(settings_named)
    for violation, setting in zip(found, settings_named, strict=True):
        assert setting in violation


def test_max_positions_zero_blocks_every_new_market() -> None:
    empty = replace(STATE, open_markets=frozenset())
    assert len(violations(state=empty, limits=replace(LIMITS, max_positions=0))) == 1


def test_naive_times_are_refused() -> None:
    with pytest.raises(ValueError, match="aware"):
        violations(now=NOW.replace(tzinfo=None))


def test_daily_loss_breached() -> None:
    assert not daily_loss_breached(D(-99_999), LIMITS)
    assert daily_loss_breached(D(-100_000), LIMITS)
    assert not daily_loss_breached(D(500_000), LIMITS)
    assert not daily_loss_breached(D(-10**9), replace(LIMITS, daily_loss_krw=D(0)))


def test_utc_day_start() -> None:
    assert utc_day_start(NOW) == datetime(2025, 9, 1, tzinfo=UTC)
    kst = timezone(timedelta(hours=9))
    assert utc_day_start(datetime(2025, 9, 2, 8, 59, tzinfo=kst)) == datetime(2025, 9, 1, tzinfo=UTC)
    assert utc_day_start(datetime(2025, 9, 2, 9, 0, tzinfo=kst)) == datetime(2025, 9, 2, tzinfo=UTC)
    assert utc_day_start(NOW).tzinfo is UTC
    with pytest.raises(ValueError, match="aware"):
        utc_day_start(datetime(2025, 9, 1))  # noqa: DTZ001


# ---- KrwBudget --------------------------------------------------------------------------------

def at(seconds: float) -> datetime:
    return NOW + timedelta(seconds=seconds)


def test_unknown_balance_reserves_nothing() -> None:
    budget = KrwBudget()
    assert budget.available is None
    assert not budget.reserve("a", D(5000), at(0))
    assert budget.reserved == {}


def test_two_concurrent_reservations_cannot_exceed_free_krw() -> None:
    budget = KrwBudget()
    budget.observe(D(150_000), at(0))
    assert budget.reserve("a", D(100_000), at(1))
    assert not budget.reserve("b", D(100_000), at(2))
    assert budget.available == D(50_000)
    assert budget.reserve("c", D(50_000), at(3))
    assert budget.available == 0
    assert budget.reserved == {"a": D(100_000), "c": D(50_000)}


def test_an_observation_after_placement_does_not_subtract_twice() -> None:
    budget = KrwBudget()
    budget.observe(D(150_000), at(0))
    assert budget.reserve("a", D(100_000), at(1))
    budget.observe(D(50_000), at(2))  # the exchange locked a's 100,000
    assert budget.available == D(50_000)
    assert budget.reserve("b", D(50_000), at(3))  # not refused as if only -50,000 were left
    assert budget.available == 0
    budget.release("a")  # a filled: the won were spent, the read at 2 already excludes them
    assert budget.available == 0
    budget.release("b", spent=False)  # b was cancelled unfilled
    assert budget.available == D(50_000)


def test_a_fill_stays_subtracted_until_a_read_shows_it() -> None:
    budget = KrwBudget()
    budget.observe(D(100_000), at(0))
    assert budget.reserve("a", D(70_000), at(1))
    budget.release("a")  # filled: the read at 0 still shows those won as free
    assert budget.reserved == {}
    assert budget.available == D(30_000)
    assert not budget.reserve("b", D(70_000), at(2))
    budget.observe(D(30_000), at(3))
    assert budget.available == D(30_000)
    budget.observe(D(80_000), at(4))  # a deposit
    assert budget.available == D(80_000)


def test_a_reservation_at_the_observation_instant_still_counts() -> None:
    budget = KrwBudget()
    budget.observe(D(100_000), at(0))
    assert budget.reserve("a", D(60_000), at(0))
    assert budget.available == D(40_000)


def test_release_frees_and_is_idempotent() -> None:
    budget = KrwBudget()
    budget.observe(D(100_000), at(0))
    assert budget.reserve("a", D(80_000), at(1))
    assert not budget.reserve("b", D(80_000), at(2))
    budget.release("a", spent=False)
    budget.release("a")
    budget.release("never-reserved")
    assert budget.available == D(100_000)
    assert budget.reserve("b", D(80_000), at(3))


def test_reserving_the_same_key_twice_is_idempotent() -> None:
    budget = KrwBudget()
    budget.observe(D(100_000), at(0))
    assert budget.reserve("a", D(60_000), at(1))
    assert budget.reserve("a", D(60_000), at(2))
    assert budget.available == D(40_000)


def test_a_stale_observation_is_ignored() -> None:
    budget = KrwBudget()
    budget.observe(D(100_000), at(10))
    budget.observe(D(999_999), at(5))
    assert budget.available == D(100_000)


def test_placed_closes_the_gap_between_reserving_and_placing() -> None:
    budget = KrwBudget()
    budget.observe(D(100_000), at(0))
    assert budget.reserve("a", D(70_000), at(1))
    budget.placed("a", at(3))  # the exchange confirmed the order at 3
    budget.observe(D(100_000), at(2))  # read before the lock: a still counts
    assert budget.available == D(30_000)
    budget.observe(D(30_000), at(4))  # read after the lock
    assert budget.available == D(30_000)
    budget.placed("a", at(1))  # never moves back
    assert budget.available == D(30_000)


def test_overcommitted_reports_zero() -> None:
    budget = KrwBudget()
    budget.observe(D(100_000), at(0))
    assert budget.reserve("a", D(100_000), at(2))
    budget.observe(D(40_000), at(1))  # 60,000 left the account before the order was placed
    assert budget.available == 0


@pytest.mark.parametrize("amount", [D(0), D(-1), D("NaN")])
def test_reservations_are_positive(amount: D) -> None:
    budget = KrwBudget()
    budget.observe(D(100_000), at(0))
    with pytest.raises(ValueError, match="positive"):
        budget.reserve("a", amount, at(1))


def test_observations_are_non_negative() -> None:
    with pytest.raises(ValueError, match=">= 0"):
        KrwBudget().observe(D(-1), at(0))


# A model exchange: free KRW, orders that lock on placement and are filled or cancelled later.
OPS = st.lists(st.one_of(
    st.tuples(st.just("buy"), st.integers(min_value=1, max_value=120_000)),
    st.tuples(st.just("final"), st.integers(min_value=0, max_value=20), st.booleans()),
    st.tuples(st.just("observe")),
    st.tuples(st.just("deposit"), st.integers(min_value=0, max_value=100_000)),
), max_size=60)


@settings(max_examples=300, deadline=None)
@given(start=st.integers(min_value=0, max_value=300_000), ops=OPS)
def test_budget_never_spends_a_won_twice(start: int, ops: list[tuple[object, ...]]) -> None:
    free = D(start)  # the exchange's free KRW
    budget = KrwBudget()
    budget.observe(free, at(0))
    live: dict[str, D] = {}  # orders the exchange holds, KRW locked
    clock = 0
    for op in ops:
        clock += 1
        if op[0] == "buy":
            key, amount = f"k{clock}", D(op[1])  # type: ignore[arg-type]
            if budget.reserve(key, amount, at(clock)):
                free -= amount  # placed: the exchange locks it
                live[key] = amount
        elif op[0] == "final" and live:
            key = sorted(live)[op[1] % len(live)]  # type: ignore[operator]
            amount = live.pop(key)
            filled = bool(op[2])
            if not filled:  # cancelled: the lock is returned; filled: it is spent
                free += amount
            budget.release(key, spent=filled)
        elif op[0] == "observe":
            budget.observe(free, at(clock))
        elif op[0] == "deposit":
            free += D(op[1])  # type: ignore[arg-type]
        assert free >= 0, "a reservation was granted that the exchange could not cover"
        available = budget.available
        assert available is not None
        assert D(0) <= available <= free
        if op[0] == "observe":
            assert available == free


# ---- sell_volume ------------------------------------------------------------------------------

@pytest.mark.parametrize(("requested", "held", "volume"), [
    ("0.5", "1", "0.5"),  # a partial exit
    ("1", "0.5", "0.5"),  # never more than held
    ("0.995", "1", "1"),  # nearly all of it: all of it, no dust left
    ("1", "0.999999999", "0.99999999"),
    ("1", "0", "0"),  # nothing of ours: nothing, never the paper volume
    ("1", "0.000000009", "0"),  # dust below the precision
])
def test_sell_volume(requested: str, held: str, volume: str) -> None:
    assert sell_volume(D(requested), D(held), "KRW-BTC") == D(volume)


def test_sell_volume_refuses_nonsense() -> None:
    with pytest.raises(ValueError, match="market"):
        sell_volume(D(1), D(1), "BTC")
    with pytest.raises(ValueError, match="held"):
        sell_volume(D(1), D(-1), "KRW-BTC")
    with pytest.raises(ValueError, match="requested"):
        sell_volume(D("NaN"), D(1), "KRW-BTC")
    with pytest.raises(ValueError, match="held"):
        sell_volume(D(1), D("Infinity"), "KRW-BTC")


@given(requested=st.decimals(min_value=0, max_value=10**6, places=12),
       held=st.decimals(min_value=0, max_value=10**6, places=12))
def test_sell_volume_never_exceeds_what_is_held(requested: D, held: D) -> None:
    volume = sell_volume(requested, held, "KRW-ETH")
    assert D(0) <= volume <= held
    assert volume == volume.quantize(D("0.00000001"))
    if requested < held * D("0.99"):
        assert volume <= requested and requested - volume < D("0.00000001")
    else:
        assert held - volume < D("0.00000001")


def test_below_venue_minimum() -> None:
    assert below_venue_minimum(D("0.00005"), D(100_000_000), "KRW-BTC") is False  # 5,000 KRW exactly
    assert below_venue_minimum(D("0.00004999"), D(100_000_000), "KRW-BTC") is True
    assert below_venue_minimum(D(0), D(100_000_000), "KRW-BTC") is True


# ---- check_exit -------------------------------------------------------------------------------

def test_exits_obey_live_markets_and_the_order_cap() -> None:
    assert check_exit(market="KRW-BTC", volume=D("0.01"), price=D(100_000_000), limits=LIMITS, live=True) == ()
    assert check_exit(market="KRW-XRP", volume=D(1), price=D(1000), limits=LIMITS, live=True) == (
        "KRW-XRP not in LIVE_MARKETS (KRW-BTC,KRW-ETH)",)
    assert check_exit(market="KRW-XRP", volume=D(1), price=D(1000), limits=LIMITS, live=False) == ()
    assert check_exit(market="KRW-BTC", volume=D("0.02"), price=D(100_000_000), limits=LIMITS, live=False) == (
        "sell total about 2,000,000 KRW above RISK_MAX_ORDER_KRW=1,000,000",)
    empty = RiskSettings(live_markets=())
    assert check_exit(market="KRW-BTC", volume=D("0.001"), price=D(1000), limits=empty, live=True) == (
        "KRW-BTC not in LIVE_MARKETS (empty: no market may trade live)",)
