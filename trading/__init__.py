"""Trading logic with no I/O: the strategy plugin interface (``strategy``) and how one instance is
driven (``runner``), bar timeframes and the 1-second roll-up (``timeframe``), incremental indicators
(``indicators``), the built-in strategies (``builtin``), the paper book (``paper``) and its exit plans (``exits``), order
identifiers (``orders``)."""
