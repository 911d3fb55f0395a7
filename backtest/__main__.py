"""``python -m backtest`` — the same as ``python -m supervisor backtest`` (see :mod:`backtest.command`)."""

import sys

from backtest.command import backtest_main

if __name__ == "__main__":
    sys.exit(backtest_main())
