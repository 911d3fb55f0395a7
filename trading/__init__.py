"""Trading logic with no I/O: the strategy plugin interface, built-in strategies, the paper book."""
