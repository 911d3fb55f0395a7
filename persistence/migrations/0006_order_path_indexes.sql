-- Indexes for what execution reads on the order path, so an entry's risk check costs the same
-- after a year of attempts as on the first day (without them, 48 ms at 38,000 attempts).
-- "Went out" is execution_state._WENT_OUT: the statuses of attempts that reached the exchange.

-- the latest attempt that went out, per market (open positions), found by a loose index scan
CREATE INDEX order_attempts_went_out ON order_attempts (mode, market, id)
    WHERE status IN ('test_ok', 'done', 'submitted', 'unknown');
-- the latest sell that went out, per market (the re-buy cooldown)
CREATE INDEX order_attempts_went_out_sells ON order_attempts (mode, market, created_at)
    WHERE side = 'ask' AND status IN ('test_ok', 'done', 'submitted', 'unknown');
-- the day's realised paper PnL (the daily loss limit)
CREATE INDEX paper_trades_sells ON paper_trades (bar_ts) WHERE side = 'sell';
-- what our live ledger holds of a market (a live sell's volume)
CREATE INDEX order_fills_market ON order_fills (market);
