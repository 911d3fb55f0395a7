"""execution.reconcile: balance differences, tolerance boundaries, unknown and missing orders, settling."""

from __future__ import annotations

from dataclasses import replace
from decimal import Decimal as D

import pytest

from execution.reconcile import MISSING_AFTER_S, Difference, Report, compare_balances, confirm, find_missing, find_unknown, match_open, raw_deltas, reconcile, signature_of, unsettled
from model.reconciliation import ExchangeOrder, OurOrder

BTC_PRICE = {"BTC": D(100_000_000)}


def _order(uuid: str, identifier: str | None = None, *, state: str = "wait", executed: str = "0",
           fee: str = "0") -> ExchangeOrder:
    return ExchangeOrder(uuid=uuid, identifier=identifier, market="KRW-BTC", side="bid", ord_type="limit",
                         state=state, price=D(90_000_000), volume=D("0.001"), executed_volume=D(executed),
                         paid_fee=D(fee))


def _ours(attempt_id: int, *, status: str = "submitted", uuid: str | None = None, executed: str = "0",
          fee: str = "0") -> OurOrder:
    return OurOrder(attempt_id=attempt_id, identifier=f"bot-{attempt_id}-1", status=status, market="KRW-BTC",
                    uuid=uuid, executed_volume=D(executed), paid_fee=D(fee))


# ---- balances ------------------------------------------------------------------------------


def test_equal_balances_have_no_difference_whatever_the_trailing_zeros() -> None:
    actual = {"KRW": D("9899950.00000000"), "BTC": D("1.00100000")}
    expected = {"KRW": D("9899950"), "BTC": D("1.001")}
    assert compare_balances(actual, expected, prices=BTC_PRICE, tolerance_krw=D(1)) == ()
    assert raw_deltas(actual, expected) == {}


@pytest.mark.parametrize(("delta", "reported"), [
    (D(1), False), (D(-1), False),              # exactly the tolerance: fine
    (D("1.0001"), True), (D("-1.0001"), True),  # just above it, either way
    (D(50_000), True),
])
def test_krw_is_compared_directly_against_the_tolerance(delta: D, reported: bool) -> None:
    found = compare_balances({"KRW": D(1_000_000) + delta}, {"KRW": D(1_000_000)}, prices={}, tolerance_krw=D(1))
    if reported:
        assert found == (Difference(currency="KRW", expected=D(1_000_000), actual=D(1_000_000) + delta,
                                    value_krw=abs(delta)),)
        assert found[0].delta == delta
    else:
        assert found == ()


def test_a_coin_difference_is_valued_at_the_given_price() -> None:
    expected = {"BTC": D(1)}
    # 1e-8 BTC at 100,000,000 KRW = exactly 1 KRW: within a 1 KRW tolerance
    assert compare_balances({"BTC": D("1.00000001")}, expected, prices=BTC_PRICE, tolerance_krw=D(1)) == ()
    # 2e-8 BTC = 2 KRW: reported, with its value
    (diff,) = compare_balances({"BTC": D("0.99999998")}, expected, prices=BTC_PRICE, tolerance_krw=D(1))
    assert (diff.currency, diff.delta, diff.value_krw) == ("BTC", D("-0.00000002"), D(2))
    # a larger tolerance swallows it
    assert compare_balances({"BTC": D("0.99999998")}, expected, prices=BTC_PRICE, tolerance_krw=D(2)) == ()


def test_a_coin_difference_without_a_price_is_always_reported() -> None:
    for prices in ({}, {"XRP": D(0)}):
        (diff,) = compare_balances({"XRP": D("0.1")}, {}, prices=prices, tolerance_krw=D(1_000_000))
        assert (diff.currency, diff.expected, diff.actual, diff.value_krw) == ("XRP", D(0), D("0.1"), None)
        assert "no price to value it" in diff.text()


def test_a_currency_known_to_one_side_only_counts_as_zero_on_the_other() -> None:
    found = compare_balances({"KRW": D(100)}, {"KRW": D(100), "ETH": D(2)}, prices={"ETH": D(4_000_000)},
                             tolerance_krw=D(1))
    assert found == (Difference(currency="ETH", expected=D(2), actual=D(0), value_krw=D(8_000_000)),)


def test_a_negative_tolerance_is_refused() -> None:
    with pytest.raises(ValueError, match="tolerance"):
        compare_balances({}, {}, prices={}, tolerance_krw=D(-1))


# ---- orders --------------------------------------------------------------------------------


def test_an_open_order_is_unknown_only_when_neither_its_uuid_nor_its_identifier_is_ours() -> None:
    orders = [_order("u-ours"), _order("u-2", "bot-7-1"), _order("u-3", "manual-1"), _order("u-4"),
              _order("u-5", "bot-99-1")]
    unknown = find_unknown(orders, known_uuids={"u-ours"}, known_identifiers={"bot-7-1"}, prefix="bot-")
    assert [(o.uuid, o.ours_by_prefix) for o in unknown] == [("u-3", False), ("u-4", False), ("u-5", True)]
    assert "carries our prefix" in unknown[2].text()


def test_a_submitted_attempt_is_missing_only_when_its_lookup_answered_not_found() -> None:
    ours = [_ours(1, uuid="u-1"), _ours(2, uuid="u-2"), _ours(3, uuid="u-3"), _ours(4, status="unknown")]
    seen = {1: None, 2: _order("u-2"), 4: None}  # 3 was not looked up; 4 is not submitted
    assert [a.attempt_id for a in find_missing(ours, seen)] == [1]


def test_match_open_finds_our_orders_by_uuid_or_identifier() -> None:
    ours = [_ours(1, uuid="u-1"), _ours(2), _ours(3, uuid="u-3")]
    seen = match_open(ours, [_order("u-1"), _order("u-x", "bot-2-1")])
    assert {k: v.uuid for k, v in seen.items()} == {1: "u-1", 2: "u-x"}


def test_unsettled_names_every_reason_to_wait() -> None:
    ours = [_ours(1, status="unknown"), _ours(2, uuid="u-2"), _ours(3, uuid="u-3", executed="0.001", fee="50"),
            _ours(4, uuid="u-4", executed="0.001"), _ours(5, uuid="u-5"), _ours(6, uuid="u-6")]
    seen = {2: _order("u-2", state="done", executed="0.001"),    # finished there, not recorded here
            3: _order("u-3", executed="0.001", fee="50"),        # resting, every fill recorded: settled
            4: _order("u-4", executed="0.002"),                  # a fill in flight
            5: None}                                             # missing: reported, settles nothing
    why = unsettled(ours, seen)
    assert [w.split(" (")[0] for w in why] == ["attempt 1", "attempt 2", "attempt 4", "attempt 6"]
    assert "outcome unknown" in why[0] and "done on the exchange" in why[1]
    assert "fills not yet recorded" in why[2] and "not looked up" in why[3]
    assert unsettled([ours[2]], seen) == ()


# ---- the report ----------------------------------------------------------------------------


def test_reconcile_puts_everything_in_one_report_with_a_summary() -> None:
    ours = [_ours(9, uuid="gone")]
    report = reconcile(actual={"KRW": D(10_050_000), "BTC": D(1)}, expected={"KRW": D(10_000_000), "BTC": D(1)},
                       prices=BTC_PRICE, tolerance_krw=D(1), open_orders=[_order("u-3", "manual-1")],
                       known_uuids=frozenset(), known_identifiers=frozenset(), ours=ours, seen={9: None},
                       prefix="bot-")
    assert not report.ok
    assert [d.currency for d in report.differences] == ["KRW"]
    assert [o.uuid for o in report.unknown_orders] == ["u-3"]
    assert [o.attempt_id for o in report.missing_orders] == [9]
    summary = report.summary()
    assert summary.startswith("reconciliation found 3 problems: ")
    assert "KRW: expected 10,000,000, exchange has 10,050,000 (+50,000, 50,000 KRW)" in summary
    assert "unknown open order u-3 (KRW-BTC bid limit 0.001 @ 90,000,000, identifier 'manual-1')" in summary
    assert "attempt 9 (bot-9-1, KRW-BTC, uuid gone) is submitted but unknown to the exchange" in summary
    assert report.signature() == (("KRW",), ("u-3",), (9,))
    stored = report.to_json()
    assert stored["differences"] == [{"currency": "KRW", "expected": "10000000", "actual": "10050000",
                                      "delta": "50000", "value_krw": "50000"}]
    assert signature_of(stored) == report.signature()


def test_an_empty_report_is_ok() -> None:
    report = Report()
    assert report.ok and report.summary().startswith("reconciliation ok")
    assert report.signature() == ((), (), ())


def test_confirm_keeps_only_what_both_observations_found() -> None:
    first = Report(differences=(Difference(currency="KRW", expected=D(1), actual=D(5), value_krw=D(4)),
                                Difference(currency="BTC", expected=D(1), actual=D(2), value_krw=None)),
                   unknown_orders=(_order("u-1"),), missing_orders=(_ours(1), _ours(2)))
    second = Report(differences=(Difference(currency="KRW", expected=D(1), actual=D(6), value_krw=D(5)),
                                 Difference(currency="ETH", expected=D(0), actual=D(1), value_krw=None)),
                    unknown_orders=(_order("u-2"),), missing_orders=(_ours(2),))
    confirmed = confirm(first, second)
    assert [(d.currency, d.actual) for d in confirmed.differences] == [("KRW", D(6))]  # the fresh values
    assert confirmed.unknown_orders == ()
    assert [o.attempt_id for o in confirmed.missing_orders] == [2]
    assert confirm(first, Report()).ok


def test_a_just_placed_order_not_found_is_not_yet_missing() -> None:
    """The exchange lists new orders late: a "not found" for a young submitted attempt waits, an old one is missing."""
    young = replace(_ours(1, uuid="u-1"), age_s=0.02)
    old = replace(_ours(2, uuid="u-2"), age_s=MISSING_AFTER_S)
    why = unsettled([young, old], {1: None, 2: None})
    assert len(why) == 1 and "not listed by the exchange yet" in why[0] and "attempt 1" in why[0]
    assert find_missing([young, old], {1: None, 2: None}) == (old,)
