"""Benchmarks of the trading system against the machine's own ceiling (``python -m bench``).

Every benchmark runs the real system — the CLI, its node processes, PostgreSQL — and sets each
throughput beside a ceiling measured in the same run on the same machine, so figures from
different (noisy, 2-core) machines stay comparable as ratios. Each figure is the median of
several runs with their min and max; the issue's targets are shown next to the figures and never
asserted (performance is not a test).

=========================  ====================================================================
``db_write_rate``          :mod:`bench.writes` — ``save_bars`` vs ``COPY`` of the same bars
``replay_throughput``      :mod:`bench.replay` — trades/s through Feed → Bar → Strategy → Paper
                           at ``--speed max``, vs a bare bar-aggregation loop and orjson decoding
``tick_to_intent_latency`` :mod:`bench.latency` — trade into the FeedActor → shadow order
                           attempt committed by the execution node (paced candle replay)
``tick_to_order_latency``  :mod:`bench.order_latency` — WebSocket frame printed by the simulated
                           Upbit → its ``orders/test`` request arriving there, quiet and with a
                           market-data burst in flight; floor: a bare client
``memory_idle``            :mod:`bench.footprint` — RSS of root + nodes with 1 and 20 markets
                           on the live feed; CPU at 1× real time over 20 markets
``recovery``               :mod:`bench.recovery` — SIGKILL a node → its actors process again;
                           floor: spawning a bare node process
=========================  ====================================================================

Each module's docstring says exactly how its figures are measured. ``--quick`` runs each once on
a small slice (CI's smoke test: the JSON has every figure; nothing about speed is asserted).
"""
