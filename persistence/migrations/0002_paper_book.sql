-- The paper book grows up: fills at the next trade, queued orders, exit plans, partial sells,
-- re-buy cooldown, unrealised PnL and exposure, an equity curve. Additive: no column of 0001 changes
-- meaning for its readers; new tables reference paper_positions/paper_trades so that the sandbox's
-- TRUNCATE ... CASCADE of those tables (--reset) clears them too.

-- Position state that must survive a restart (trading/paper.py Position).
ALTER TABLE paper_positions
    ADD COLUMN cost_krw        numeric     NOT NULL DEFAULT 0,     -- cost of the volume held
    ADD COLUMN entered_ts      timestamptz,                        -- bar time of the entry fill
    ADD COLUMN partial_taken   boolean     NOT NULL DEFAULT false, -- a partial exit was filled since entry
    ADD COLUMN cooldown_until  timestamptz,                        -- no entry fills before this bar time
    ADD COLUMN exit_plan       jsonb,                              -- the entry's ExitPlan (bps levels as strings)
    ADD COLUMN unrealized_pnl  numeric     NOT NULL DEFAULT 0,     -- last_price * volume - cost_krw - entry_fee_krw
    ADD COLUMN exposure_krw    numeric     NOT NULL DEFAULT 0;     -- last_price * volume
UPDATE paper_positions SET cost_krw = avg_price * volume,
                           unrealized_pnl = CASE WHEN volume > 0 AND last_price IS NOT NULL
                                                 THEN (last_price - avg_price) * volume - entry_fee_krw ELSE 0 END,
                           exposure_krw = coalesce(last_price, 0) * volume;
COMMENT ON COLUMN paper_positions.max_price IS
    'highest traded price (1-second bar highs) since entry; never lowered while the position is held';
COMMENT ON COLUMN paper_positions.realized_pnl IS 'sum of the sales'' realised PnL, net of fees';

-- What each paper trade was: the intent, the bar that filled it, the price before slippage.
ALTER TABLE paper_trades
    ADD COLUMN intent           text CHECK (intent IN ('enter_long', 'exit', 'partial_exit')),
    ADD COLUMN origin           text CHECK (origin IN ('strategy', 'exit_plan')),
    ADD COLUMN fill_ts          timestamptz,                       -- the 1-second bar whose open filled it
    ADD COLUMN signal_price     numeric,                           -- close of the deciding bar (bar_ts)
    ADD COLUMN market_price     numeric,                           -- the trade price before slippage
    ADD COLUMN position_volume  numeric;                           -- volume held after the fill
COMMENT ON COLUMN paper_trades.bar_ts IS 'open of the bar (in the strategy''s timeframe) that decided the trade';

-- Paper orders: queued ('pending') until the next 1-second bar, then 'filled' or 'rejected'.
-- Pending rows are rewritten with the position in the same transaction; resolved rows are history.
CREATE TABLE paper_orders (
    id              bigserial   PRIMARY KEY,
    market          text        NOT NULL REFERENCES paper_positions (market) ON DELETE CASCADE,
    intent          text        NOT NULL CHECK (intent IN ('enter_long', 'exit', 'partial_exit')),
    origin          text        NOT NULL CHECK (origin IN ('strategy', 'exit_plan')),
    status          text        NOT NULL CHECK (status IN ('pending', 'filled', 'rejected')),
    reason          text        NOT NULL,
    bar_ts          timestamptz NOT NULL,            -- open of the deciding bar
    timeframe_s     integer     NOT NULL CHECK (timeframe_s >= 1),
    signal_price    numeric     NOT NULL,
    decided_ts      timestamptz NOT NULL,            -- fills at the first 1-second bar at or after it
    amount_krw      numeric,                         -- enter_long: KRW to spend (NULL: the order size)
    fraction        numeric,                         -- partial_exit
    once            boolean     NOT NULL DEFAULT true,
    exit_plan       jsonb,
    resolved_ts     timestamptz,                     -- the 1-second bar that filled or rejected it
    note            text,                            -- why it was rejected (or how it was filled)
    paper_trade_id  bigint      REFERENCES paper_trades (id),
    created_at      timestamptz NOT NULL DEFAULT now(),
    CHECK ((status = 'pending') = (resolved_ts IS NULL)),
    CHECK ((status = 'filled') = (paper_trade_id IS NOT NULL))
);
CREATE INDEX paper_orders_pending ON paper_orders (market, id) WHERE status = 'pending';
CREATE INDEX paper_orders_market ON paper_orders (market, bar_ts);

-- The equity curve: each market's book at the end of every mark interval (default 1 minute).
CREATE TABLE paper_marks (
    market          text        NOT NULL REFERENCES paper_positions (market) ON DELETE CASCADE,
    ts              timestamptz NOT NULL,            -- interval start
    price           numeric     NOT NULL,            -- last close in the interval
    volume          numeric     NOT NULL,
    realized_pnl    numeric     NOT NULL,
    unrealized_pnl  numeric     NOT NULL,
    fees_krw        numeric     NOT NULL,
    exposure_krw    numeric     NOT NULL,
    PRIMARY KEY (market, ts)
);

-- The paper account: starting capital (one row, written by the paper stage on start).
CREATE TABLE paper_account (
    id           boolean     PRIMARY KEY DEFAULT true CHECK (id),
    capital_krw  numeric     NOT NULL CHECK (capital_krw >= 0),
    updated_at   timestamptz NOT NULL DEFAULT now()
);

-- Totals over markets. equity = capital + realised + unrealised; cash = equity - exposure.
CREATE VIEW paper_totals AS
SELECT coalesce(sum(p.realized_pnl), 0)                          AS realized_pnl,
       coalesce(sum(p.unrealized_pnl), 0)                        AS unrealized_pnl,
       coalesce(sum(p.fees_krw), 0)                              AS fees_krw,
       coalesce(sum(p.exposure_krw), 0)                          AS exposure_krw,
       coalesce(sum(p.trades), 0)                                AS trades,
       count(*) FILTER (WHERE p.volume > 0)                      AS open_positions,
       a.capital_krw,
       a.capital_krw + coalesce(sum(p.realized_pnl + p.unrealized_pnl), 0) AS equity_krw,
       a.capital_krw + coalesce(sum(p.realized_pnl + p.unrealized_pnl - p.exposure_krw), 0) AS cash_krw
FROM (SELECT coalesce((SELECT capital_krw FROM paper_account), 0) AS capital_krw) a
LEFT JOIN paper_positions p ON true
GROUP BY a.capital_krw;
