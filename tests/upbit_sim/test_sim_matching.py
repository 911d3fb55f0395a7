"""upbit_sim.matching over HTTP: how printed trades fill each order type, with fees and locked funds."""

from __future__ import annotations

from decimal import Decimal as D

from tests.upbit_sim.conftest import ACCESS
from tests.upbit_sim.sim_client import SignedClient
from upbit_sim import SimServer


def _krw(sim: SimServer) -> tuple[D, D]:
    holding = sim.holding(ACCESS, "KRW")
    return holding.balance, holding.locked


def test_resting_limit_bid_fills_at_its_price_when_a_trade_prints_at_or_below(
    sim: SimServer, client: SignedClient
) -> None:
    order = client.order(market="KRW-BTC", side="bid", ord_type="limit", price="99000000", volume="0.01")
    sim.print_trade("KRW-BTC", "99500000", "5")  # above the bid: nothing
    assert client.fetch(order["uuid"])["state"] == "wait"
    sim.print_trade("KRW-BTC", "98000000", "5")  # at or below: fills at the bid's own price
    filled = client.fetch(order["uuid"])
    assert filled["state"] == "done" and filled["executed_volume"] == "0.01" and filled["remaining_volume"] == "0"
    assert filled["paid_fee"] == "495" and filled["locked"] == "0" and filled["trades_count"] == 1
    (trade,) = filled["trades"]
    assert trade["price"] == "99000000" and trade["volume"] == "0.01" and trade["funds"] == "990000"
    assert trade["side"] == "bid" and trade["created_at"].endswith("+09:00")
    assert _krw(sim) == (D(10_000_000) - D(990_000) - D(495), D(0))
    btc = sim.holding(ACCESS, "BTC")
    assert btc.balance == D("1.01")
    assert btc.avg_buy_price == (D(0) * 1 + D("990000")) / D("1.01")  # the starting coin had no price


def test_partial_fills_share_the_trade_volume_in_price_then_time_priority(
    sim: SimServer, client: SignedClient
) -> None:
    low = client.order(market="KRW-BTC", side="bid", ord_type="limit", price="98000000", volume="0.02")
    high = client.order(market="KRW-BTC", side="bid", ord_type="limit", price="99000000", volume="0.02")
    sim.print_trade("KRW-BTC", "97000000", "0.03")
    high_now, low_now = client.fetch(high["uuid"]), client.fetch(low["uuid"])
    assert high_now["state"] == "done" and high_now["executed_volume"] == "0.02"
    assert low_now["state"] == "wait" and low_now["executed_volume"] == "0.01"
    assert low_now["remaining_volume"] == "0.01" and low_now["paid_fee"] == "490"
    assert low_now["locked"] == "980490"  # what is left of 0.02 x 98,000,000 x 1.0005
    sim.print_trade("KRW-BTC", "97000000", "0.03")
    assert client.fetch(low["uuid"])["state"] == "done"
    assert _krw(sim)[1] == 0


def test_limit_ask_fills_when_a_trade_prints_at_or_above(sim: SimServer, client: SignedClient) -> None:
    order = client.order(market="KRW-BTC", side="ask", ord_type="limit", price="101000000", volume="0.1")
    sim.print_trade("KRW-BTC", "100500000", "1")
    assert client.fetch(order["uuid"])["state"] == "wait"
    sim.print_trade("KRW-BTC", "101000000", "1")
    filled = client.fetch(order["uuid"])
    assert filled["state"] == "done" and filled["executed_funds"] == "10100000" and filled["paid_fee"] == "5050"
    assert _krw(sim) == (D(10_000_000) + D(10_100_000) - D(5050), D(0))
    assert sim.holding(ACCESS, "BTC").balance == D("0.9")


def test_a_marketable_limit_takes_the_trade_price(sim: SimServer, client: SignedClient) -> None:
    # the book's best ask is 100,001,000 after the 100,000,000 print: a bid at 102,000,000 takes
    order = client.order(market="KRW-BTC", side="bid", ord_type="limit", price="102000000", volume="0.01")
    sim.print_trade("KRW-BTC", "100500000", "1")
    filled = client.fetch(order["uuid"])
    assert filled["trades"][0]["price"] == "100500000"
    assert _krw(sim) == (D(10_000_000) - D(1_005_000) - D("502.5"), D(0))  # the unused reserve is unlocked


def test_market_buy_by_total_fills_at_the_next_trade_and_ends_cancel_with_dust(
    sim: SimServer, client: SignedClient
) -> None:
    order = client.order(market="KRW-BTC", side="bid", ord_type="price", price="10000")
    assert client.fetch(order["uuid"])["state"] == "wait"
    sim.print_trade("KRW-BTC", "30000000", "1")
    done = client.fetch(order["uuid"])
    # 10,000 / 30,000,000 = 0.000333333…: 0.00033333 bought for 9,999.9 KRW, 0.1 KRW of dust left
    assert done["executed_volume"] == "0.00033333" and done["executed_funds"] == "9999.9"
    assert done["paid_fee"] == "4.99995" and done["state"] == "cancel" and done["locked"] == "0"
    assert _krw(sim) == (D(10_000_000) - D("9999.9") - D("4.99995"), D(0))


def test_market_buy_spending_everything_ends_done(sim: SimServer, client: SignedClient) -> None:
    order = client.order(market="KRW-BTC", side="bid", ord_type="price", price="10000")
    sim.print_trade("KRW-BTC", "100000000", "1")
    done = client.fetch(order["uuid"])
    assert (done["state"], done["executed_volume"], done["paid_fee"]) == ("done", "0.0001", "5")


def test_market_sell_by_volume_fills_over_several_trades(sim: SimServer, client: SignedClient) -> None:
    order = client.order(market="KRW-BTC", side="ask", ord_type="market", volume="0.5")
    assert order["price"] is None and order["locked"] == "0.5"
    sim.print_trade("KRW-BTC", "100000000", "0.2")
    assert client.fetch(order["uuid"])["executed_volume"] == "0.2"
    sim.print_trade("KRW-BTC", "99000000", "1")
    done = client.fetch(order["uuid"])
    assert done["state"] == "done" and [t["price"] for t in done["trades"]] == ["100000000", "99000000"]
    assert done["executed_funds"] == "49700000" and done["paid_fee"] == "24850"
    assert _krw(sim) == (D(10_000_000) + D(49_700_000) - D(24_850), D(0))


def test_best_ioc_fills_what_the_next_trade_allows_and_cancels_the_rest(
    sim: SimServer, client: SignedClient
) -> None:
    order = client.order(market="KRW-BTC", side="ask", ord_type="best", volume="0.5", time_in_force="ioc")
    sim.print_trade("KRW-BTC", "100000000", "0.2")
    done = client.fetch(order["uuid"])
    assert (done["state"], done["executed_volume"], done["locked"]) == ("cancel", "0.2", "0")
    assert sim.holding(ACCESS, "BTC").balance == D("0.8") and sim.holding(ACCESS, "BTC").locked == 0


def test_best_fok_is_all_or_nothing(sim: SimServer, client: SignedClient) -> None:
    partial = client.order(market="KRW-BTC", side="bid", ord_type="best", price="100000", time_in_force="fok")
    sim.print_trade("KRW-BTC", "100000000", "0.0005")  # 0.001 wanted, 0.0005 printed
    nothing = client.fetch(partial["uuid"])
    assert (nothing["state"], nothing["executed_volume"], nothing["trades_count"]) == ("cancel", "0", 0)
    whole = client.order(market="KRW-BTC", side="bid", ord_type="best", price="100000", time_in_force="fok")
    sim.print_trade("KRW-BTC", "100000000", "1")
    assert client.fetch(whole["uuid"])["executed_volume"] == "0.001"
    assert _krw(sim)[1] == 0


def test_limit_ioc_that_does_not_cross_is_cancelled_at_the_next_trade(sim: SimServer, client: SignedClient) -> None:
    order = client.order(market="KRW-BTC", side="bid", ord_type="limit", price="90000000", volume="0.01",
                         time_in_force="ioc")
    sim.print_trade("KRW-ETH", "3000000", "1")  # another market's trade does not count
    assert client.fetch(order["uuid"])["state"] == "wait"
    sim.print_trade("KRW-BTC", "95000000", "1")
    assert client.fetch(order["uuid"])["state"] == "cancel"
    assert _krw(sim) == (D(10_000_000), D(0))


def test_post_only_that_would_take_is_cancelled(sim: SimServer, client: SignedClient) -> None:
    taker = client.order(market="KRW-BTC", side="bid", ord_type="limit", price="101000000", volume="0.01",
                         time_in_force="post_only")
    assert client.fetch(taker["uuid"])["state"] == "cancel"
    maker = client.order(market="KRW-BTC", side="bid", ord_type="limit", price="99000000", volume="0.01",
                         time_in_force="post_only")
    assert client.fetch(maker["uuid"])["state"] == "wait"
    assert _krw(sim)[1] == D("990495")


def test_fills_use_exact_decimals_for_altcoin_prices(sim: SimServer, client: SignedClient) -> None:
    sim.print_trade("KRW-LAMB", "126", "1000")
    order = client.order(market="KRW-LAMB", side="bid", ord_type="limit", price="126", volume="123.45678901")
    sim.print_trade("KRW-LAMB", "126", "1000")
    done = client.fetch(order["uuid"])
    assert done["executed_funds"] == "15555.55541526" and done["paid_fee"] == "7.77777770763"
    assert sim.holding(ACCESS, "LAMB").balance == D("123.45678901")
