"""The drill's fault schedule: a pure function of the seed and the options."""

from __future__ import annotations

from collections import Counter

import pytest

from tools.drill.plan import ACTORS, DB_OUTAGE_S, DISRUPTIVE, KINDS, NODES, PlanError, default_kinds, make_plan, parse_kinds

ALL = ("kill", "crash", "hang", "db", "ws", "exchange", "telegram")


def test_the_same_seed_gives_the_same_plan() -> None:
    first = make_plan(seed=42, count=8, kinds=ALL, orders="live")
    again = make_plan(seed=42, count=8, kinds=ALL, orders="live")
    assert first == again
    assert first.as_dict() == again.as_dict()


def test_different_seeds_give_different_plans() -> None:
    plans = {make_plan(seed=seed, count=6, kinds=ALL).faults for seed in range(20)}
    assert len(plans) == 20


def test_exactly_n_faults_in_order_inside_the_window() -> None:
    for count in (0, 1, 5, 13):
        plan = make_plan(seed=7, count=count, kinds=ALL, start=0.2, end=0.9)
        assert len(plan.faults) == count
        assert [f.index for f in plan.faults] == list(range(1, count + 1))
        points = [f.at for f in plan.faults]
        assert points == sorted(points)
        assert all(0.2 < at < 0.9 for at in points)


def test_faults_are_kept_apart_by_part_of_a_slot() -> None:
    plan = make_plan(seed=3, count=10, kinds=ALL, start=0.1, end=0.85)
    slot = 0.75 / 10
    gaps = [b.at - a.at for a, b in zip(plan.faults, plan.faults[1:])]
    assert min(gaps) >= 0.3 * slot - 1e-3


def test_only_the_requested_kinds_and_each_at_least_once() -> None:
    for seed in range(30):
        plan = make_plan(seed=seed, count=5, kinds=("kill", "crash", "db", "telegram"))
        kinds = Counter(f.kind for f in plan.faults)
        assert set(kinds) == {"kill", "crash", "db", "telegram"}
        assert sum(kinds.values()) == 5


def test_kinds_spread_over_rounds() -> None:
    plan = make_plan(seed=11, count=14, kinds=ALL)
    kinds = Counter(f.kind for f in plan.faults)
    assert kinds == {k: 2 for k in ALL}


def test_disruptive_faults_are_not_neighbours_when_the_mix_allows() -> None:
    for seed in range(50):
        plan = make_plan(seed=seed, count=4, kinds=("kill", "crash", "db", "telegram"))
        kinds = [f.kind for f in plan.faults]
        assert not any(a in DISRUPTIVE and b in DISRUPTIVE for a, b in zip(kinds, kinds[1:])), kinds


def test_targets_and_parameters_are_valid() -> None:
    plan = make_plan(seed=5, count=40, kinds=ALL, orders="test")
    for fault in plan.faults:
        if fault.kind in ("kill", "hang"):
            assert fault.target in NODES
        elif fault.kind == "crash":
            assert fault.target in ACTORS
        elif fault.kind == "db":
            assert DB_OUTAGE_S[0] <= fault.duration_s <= DB_OUTAGE_S[1]
        elif fault.kind == "telegram":
            assert 2.0 <= fault.duration_s <= 4.0
        elif fault.kind == "exchange":
            assert fault.target in ("fail_500", "fail_429", "drop_after_accept", "lookup_lag")
            assert fault.count >= 1 or fault.duration_s > 0


def test_failpoints_armed_only_for_orders_that_reach_an_exchange_and_only_with_kill() -> None:
    assert make_plan(seed=1, count=3, kinds=("kill", "crash")).failpoints == ""
    assert make_plan(seed=1, count=3, kinds=("crash", "exchange"), orders="live").failpoints == ""
    armed = make_plan(seed=1, count=3, kinds=("kill", "crash"), orders="test").failpoints
    assert armed.startswith("execution.after_intent_commit@") and ",execution.after_send@" in armed
    assert armed == make_plan(seed=1, count=3, kinds=("kill", "crash"), orders="test").failpoints
    assert armed != make_plan(seed=2, count=3, kinds=("kill", "crash"), orders="test").failpoints


def test_default_kinds_depend_on_the_order_mode() -> None:
    assert "exchange" not in default_kinds("shadow")
    assert "exchange" in default_kinds("live")
    assert "ws" not in default_kinds("test")
    assert set(default_kinds("test")) <= set(KINDS)


def test_parse_kinds_and_bad_options() -> None:
    assert parse_kinds("kill, crash,db") == ("kill", "crash", "db")
    for bad in ("kill,explode", "kill,kill", " , "):
        with pytest.raises(PlanError):
            parse_kinds(bad)
    with pytest.raises(PlanError):
        make_plan(seed=1, count=-1, kinds=ALL)
    with pytest.raises(PlanError):
        make_plan(seed=1, count=2, kinds=("kill",), start=0.9, end=0.1)
    with pytest.raises(PlanError):
        make_plan(seed=1, count=2, kinds=("kill",), orders="paper")


def test_describe_names_kind_target_and_point() -> None:
    plan = make_plan(seed=9, count=7, kinds=ALL)
    for fault in plan.faults:
        text = fault.describe()
        assert text.startswith(f"#{fault.index} {fault.kind}")
        assert text.endswith(f"at {fault.at:.0%}")


def test_live_drills_have_the_money_safety_kinds() -> None:
    assert {"outage", "foreign", "mode"} <= set(default_kinds("live"))
    assert "mode" in default_kinds("test") and "outage" not in default_kinds("test")
    plan = make_plan(seed=3, count=3, kinds=("outage", "foreign", "mode"), orders="live")
    by_kind = {f.kind: f for f in plan.faults}
    assert by_kind["outage"].target == "orders" and by_kind["outage"].duration_s >= 3.0
    assert by_kind["foreign"].target == "identifier" and by_kind["foreign"].count == 1
    assert by_kind["mode"].target in ("shadow", "test") and by_kind["mode"].duration_s >= 3.0
    assert make_plan(seed=3, count=3, kinds=("outage", "foreign", "mode"), orders="live") == plan
