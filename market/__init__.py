"""Market data: Upbit trade frames, recorded data sources, replay pacing and 1-second bars.

Each module holds one concept and, apart from :mod:`market.upbit_ws` (the live-feed seam), does
no I/O beyond reading the recording it is given:

- :mod:`market.frames`: decode Upbit WebSocket trade frames; build the subscription message.
- :mod:`market.capture`: read cryptofeed raw WebSocket captures (real recorded frames).
- :mod:`market.candles`: expand real 1-minute candles into a deterministic synthetic trade sequence.
- :mod:`market.trades_file`: read a trade file of the user's own (CSV or JSON Lines).
- :mod:`market.recording`: one streaming, resumable, sliceable view over all of them, and the
  replay pacer.
- :mod:`market.gaps`: what a live feed must backfill after a reconnect, and the gap policy.
- :mod:`market.recorder`: write the live stream to a replayable capture file.
- :mod:`market.bars`: the 1-second OHLCV bar aggregator (late trades, exactly-once resume).
- :mod:`market.upbit_ws`: the blocking live WebSocket client with reconnect.
"""
