"""A simulated Upbit: REST and WebSocket on loopback, fed by recorded trades.

For tests of our client, for the sandbox, and standalone (``python -m upbit_sim`` /
``python -m supervisor sim``)::

    from upbit_sim import SimServer, SimConfig

    sim = SimServer(SimConfig(keys={"ACCESS": "SECRET"},
                              balances={"ACCESS": {"KRW": Decimal("1000000")}},
                              recording=None,        # or a market.recording.Recording
                              speed=None)).start()   # None: as fast as possible
    sim.rest_url    # "http://127.0.0.1:<port>"   (paths /v1/...)
    sim.ws_url      # "ws://127.0.0.1:<port>/websocket/v1"
    sim.faults      # fail_next, delay, drop_after_accept, lookup_lag, malformed_next,
                    # ws_drop, ws_stall, ws_corrupt_next (see upbit_sim.faults)
    sim.stop()

Beyond that contract: ``sim.feed(trade)`` / ``sim.print_trade(market, price, volume, side)``
print a trade now; ``SimConfig(autoplay=False)`` with ``sim.advance(n)`` replays step by step;
``sim.deposit``/``sim.holding`` read and top up balances; ``/_sim/…`` admin endpoints do the same
from another process (:mod:`upbit_sim.admin`); ``…/websocket/v1/private`` serves myOrder/myAsset;
``SimServer(config, on_request=f)`` calls ``f(arrived_at, request)`` for every REST request as it
arrives (``time.time()``; a probe for benchmarks, see :mod:`upbit_sim.rest`).

Modules, one concept each: ``config`` (settings), ``server`` (wiring, lifecycle), ``rest``
(HTTP pipeline), ``auth`` (JWT, query hash, nonces), ``ratelimit`` (groups, 429/418),
``faults``, ``params`` (request parameters), ``quotation`` (public endpoints), ``exchange_api``
(private endpoints), ``venue`` (orders and balances), ``orders`` (order rules), ``matching``
(fills), ``ledger`` (balances), ``render`` (exchange JSON), ``tape`` (market state), ``markets``
(market list), ``replay``, ``ws`` (WebSocket server), ``subscription``, ``wire`` (WS messages),
``admin`` (``/_sim`` endpoints), ``cli`` (``sim_main``).

Facts follow ``docs/upbit-api.md``. What the docs leave open is marked
UNCONFIRMED where it is decided; in short: the error names for a duplicate identifier, a missing
token, an unlisted market and a form-encoded POST; the 418 block thresholds and the 429/418 body
(JSON here); 201 for POST /v1/orders; that order-test burns no identifier; cancel of an ended
order (``order_not_found``); post_only that would take (cancelled, not refused); market buys
ending ``cancel`` when dust is left; ``avg_buy_price`` without fees; the WS idle close code, that
a bad subscription closes the connection, that a new subscription replaces the old one, and the
SIMPLE keys marked unconfirmed there (§5.5). Fills against recorded trades are the simulator's
own model (:mod:`upbit_sim.matching`), as is the synthetic order book (:mod:`upbit_sim.tape`).
"""

from upbit_sim.cli import sim_main
from upbit_sim.config import SimConfig
from upbit_sim.server import SimServer

__all__ = ["SimConfig", "SimServer", "sim_main"]
