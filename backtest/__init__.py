"""Backtests on the same actors: recorded data replayed at full speed through the real system.

- :mod:`backtest.command`: ``python -m supervisor backtest`` (and the importers' subcommands);
  it runs the system itself — root, node processes, actors — against a fresh database.
- :mod:`backtest.database`: that fresh database, and reading what the run left in it.
- :mod:`backtest.report`: the figures, pure functions of the paper trade list.
- :mod:`backtest.chart`: the equity-curve PNG and a small HTML page.
- :mod:`backtest.importers`: Upbit REST candle and trade responses → files the replay reads.
"""
