"""The floor of the tick-to-order measurement: frame → request with no system in between.

A bare child process does what the system's first and last hops do and nothing else: it holds a
``websockets`` sync connection subscribed to one market (as ``market.upbit_ws`` does), decodes
each trade frame (``market.frames.decode_trade``), notes ``time.time()`` as the frame comes out of
``recv()``, and at once sends ``POST /v1/orders/test`` through our own ``exchange.rest.UpbitClient``
(JWT signing, ``requests`` session) with the identifier ``floor-<sequential_id>``. The bench
publishes frames into the same kind of in-process simulator and times them exactly as
:mod:`bench.order_latency` does: ``time.time()`` before the print → ``time.time()`` as the request
reaches the simulator's REST pipeline.

So the floor is what the measurement itself and the two hops cost on this machine with the
libraries the system uses — the simulator's print, loopback WebSocket, decode, signing, HTTP —
with no pipeline in between. Its first part (publish → the bare client's ``recv()`` returned the
frame) is also how much earlier the bench's clock starts than the issue's "frame arriving at
FeedActor". The child's client gets a raised order-test budget (its pacing is not what is
measured). Frames are published as in the system's stream, one every 1/7 s, and every other one
is followed by the same burst of other markets' trades, to which the bare client is subscribed
too (it receives and decodes them, and orders only on its own market): the floor of each phase,
i.e. what the rig itself and the transport cost while a burst is printed and in flight.
"""

from __future__ import annotations

import multiprocessing
import time
from collections.abc import Sequence
from dataclasses import dataclass
from decimal import Decimal
from multiprocessing.connection import Connection

import orjson

from model.market import Side, Trade, TradeSource
from bench.system import BenchError
from bench.tick_stream import burst_trades, switch_interval
from upbit_sim import SimConfig, SimServer
from upbit_sim.rest import RestRequest

__all__ = ["FloorSample", "measure_floor"]

MARKET = "KRW-ETH"
GAP_S = 1 / 7  # as the system's stream: 7 frames a second
READY_TIMEOUT_S = 30.0
SETTLE_S = 5.0


@dataclass(frozen=True, slots=True, kw_only=True)
class FloorSample:
    """One frame through the bare client, in seconds from its publication."""

    burst: bool  # a burst followed the frame
    received_s: float  # the bare client's recv() returned it
    total_s: float  # its request reached the simulator


def _echo(ws_url: str, rest_url: str, access: str, secret: str, markets: list[str], frames: int,
          conn: Connection) -> None:
    """The bare client (child process): each trade frame of MARKET → one orders/test request."""
    from websockets.sync.client import connect

    from exchange.rate_limit import RateLimiter
    from exchange.rest import UpbitClient
    from market.frames import decode_trade, subscription_message

    client = UpbitClient(rest_url, access_key=access, secret_key=secret,
                         rate_limiter=RateLimiter(limits={"order-test": 1000.0}))
    received: dict[int, float] = {}
    with connect(ws_url, proxy=None, max_queue=None) as ws:
        ws.send(subscription_message(markets, "bench-floor").decode("utf-8"))
        conn.send("subscribed")
        while len(received) < frames:
            try:
                frame = ws.recv(timeout=5)
            except TimeoutError:
                break
            at = time.time()
            trade = decode_trade(frame)
            if trade is None or trade.market != MARKET:
                continue
            client.test_order(market=MARKET, side="bid", ord_type="price", price=Decimal(10_000),
                              identifier=f"floor-{trade.seq}")
            received[trade.seq] = at
    conn.send(received)


def measure_floor(config: SimConfig, access: str, secret: str, *, frames: int, burst_markets: Sequence[str],
                  burst_size: int, switch_s: float) -> list[FloorSample]:
    """Each of ``frames`` frames through the bare client (those whose request arrived)."""
    arrivals: dict[str, float] = {}

    def observe(arrived_at: float, request: RestRequest) -> None:
        if request.path == "/v1/orders/test":
            arrivals.setdefault(str(orjson.loads(request.body).get("identifier")), arrived_at)

    published: dict[int, tuple[float, bool]] = {}
    received: dict[int, float] = {}
    mp = multiprocessing.get_context("spawn")
    with SimServer(config, on_request=observe) as sim:
        ours, theirs = mp.Pipe(duplex=False)
        child = mp.Process(target=_echo, name="bench-order-floor",
                           args=(sim.ws_url, sim.rest_url, access, secret, [MARKET, *burst_markets], frames, theirs))
        child.start()
        theirs.close()
        try:
            _wait_subscribed(ours, child)
            with switch_interval(switch_s):
                published = _publish(sim, frames, burst_markets, burst_size)
            if ours.poll(SETTLE_S):
                received = ours.recv()
        finally:
            if child.is_alive():
                child.kill()
            child.join(5)
            ours.close()
    return [FloorSample(burst=burst, received_s=received[seq] - at, total_s=arrivals[f"floor-{seq}"] - at)
            for seq, (at, burst) in published.items() if f"floor-{seq}" in arrivals and seq in received]


def _wait_subscribed(conn: Connection, child: multiprocessing.process.BaseProcess) -> None:
    try:
        if not conn.poll(READY_TIMEOUT_S):
            raise BenchError(f"the floor client did not subscribe within {READY_TIMEOUT_S:.0f} s")
        conn.recv()
    except EOFError:
        raise BenchError(f"the floor client exited before subscribing (exit code {child.exitcode})") from None
    time.sleep(0.2)  # the simulator applies the subscription in its own thread


def _publish(sim: SimServer, frames: int, burst_markets: Sequence[str], burst_size: int) -> dict[int, tuple[float, bool]]:
    """Print the floor frames (our own sequential ids) GAP_S apart, a burst after every other one."""
    published: dict[int, tuple[float, bool]] = {}
    next_at = time.time()
    for seq in range(1, frames + 1):
        ts_ms = int(next_at * 1000)
        trade = Trade(market=MARKET, ts_ms=ts_ms, price=Decimal(10_000_000), volume=Decimal("0.001"), side=Side.BID,
                      seq=seq, source=TradeSource.LIVE)
        burst = burst_trades(burst_markets=burst_markets, size=burst_size, ts_ms=ts_ms, price=Decimal(5_000_000)) \
            if seq % 2 == 0 else []
        time.sleep(max(0.0, next_at - time.time()))
        published[seq] = (time.time(), bool(burst))
        sim.feed(trade)
        for extra in burst:
            sim.feed(extra)
        next_at += GAP_S
    return published
