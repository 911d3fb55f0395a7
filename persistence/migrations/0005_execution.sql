-- Test and live execution: what the exchange said about each attempt, its fills, and the account.

-- The exchange's view of an attempt. A row is inserted (status 'unknown', nothing known yet) and
-- committed BEFORE its request is sent; the reply, or a lookup by identifier, fills these in.
ALTER TABLE order_attempts
    ADD COLUMN uuid             text UNIQUE,                   -- the exchange's order uuid once known
    ADD COLUMN state            text,                          -- wait | watch | done | cancel
    ADD COLUMN executed_volume  numeric NOT NULL DEFAULT 0,
    ADD COLUMN executed_funds   numeric NOT NULL DEFAULT 0,
    ADD COLUMN paid_fee         numeric NOT NULL DEFAULT 0,
    ADD COLUMN avg_price        numeric,
    ADD COLUMN lookups          jsonb   NOT NULL DEFAULT '[]'::jsonb,  -- [{at, found}] while unknown
    ADD COLUMN final            boolean GENERATED ALWAYS AS (status NOT IN ('submitted', 'unknown')) STORED;

-- Never two unresolved attempts of one intent: the database refuses the second.
CREATE UNIQUE INDEX order_attempts_one_unresolved ON order_attempts (paper_trade_id) WHERE NOT final;
CREATE INDEX order_attempts_mode_created ON order_attempts (mode, created_at);

-- Fills of live orders, one row per exchange trade (deduplicated by the trade's uuid).
CREATE TABLE order_fills (
    trade_uuid   text        PRIMARY KEY,
    attempt_id   bigint      NOT NULL REFERENCES order_attempts (id),
    market       text        NOT NULL,
    side         text        NOT NULL CHECK (side IN ('bid', 'ask')),
    price        numeric     NOT NULL,
    volume       numeric     NOT NULL,
    funds        numeric     NOT NULL,
    traded_at    timestamptz NOT NULL,
    recorded_at  timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX order_fills_attempt ON order_fills (attempt_id);

-- Every answer the exchange gave about an order (reply, lookups, polls), as received.
CREATE TABLE order_snapshots (
    id          bigserial   PRIMARY KEY,
    attempt_id  bigint      NOT NULL REFERENCES order_attempts (id),
    taken_at    timestamptz NOT NULL DEFAULT now(),
    source      text        NOT NULL,                -- reply | lookup | poll | reconcile
    state       text,
    body        jsonb       NOT NULL
);
CREATE INDEX order_snapshots_attempt ON order_snapshots (attempt_id);

-- Audited execution events: effective mode changes, kill switch trips, risk refusals worth a line.
CREATE TABLE execution_events (
    id      bigserial   PRIMARY KEY,
    at      timestamptz NOT NULL DEFAULT now(),
    kind    text        NOT NULL,
    detail  jsonb       NOT NULL DEFAULT '{}'::jsonb
);

-- Balances as the exchange reported them, one row per currency per poll.
CREATE TABLE account_snapshots (
    taken_at        timestamptz NOT NULL,
    currency        text        NOT NULL,
    balance         numeric     NOT NULL,
    locked          numeric     NOT NULL,
    avg_buy_price   numeric     NOT NULL,
    unit_currency   text        NOT NULL,
    PRIMARY KEY (taken_at, currency)
);

-- Positions held on the exchange now (from the latest poll), by market.
CREATE TABLE live_positions (
    market          text        PRIMARY KEY,
    volume          numeric     NOT NULL,
    locked          numeric     NOT NULL,
    avg_buy_price   numeric     NOT NULL,
    updated_at      timestamptz NOT NULL DEFAULT now()
);

-- Balances when our ledger started: expected = baseline + our fills since, minus fees.
CREATE TABLE account_baseline (
    currency    text        PRIMARY KEY,
    balance     numeric     NOT NULL,            -- balance + locked at taken_at
    taken_at    timestamptz NOT NULL
);

-- One row per reconciliation: what differed, which orders are unknown to us or missing there.
CREATE TABLE reconciliation_reports (
    id              bigserial   PRIMARY KEY,
    at              timestamptz NOT NULL DEFAULT now(),
    trigger         text        NOT NULL,        -- start | periodic | command
    ok              boolean     NOT NULL,
    differences     jsonb       NOT NULL DEFAULT '[]'::jsonb,
    unknown_orders  jsonb       NOT NULL DEFAULT '[]'::jsonb,
    missing_orders  jsonb       NOT NULL DEFAULT '[]'::jsonb,
    halted          boolean     NOT NULL DEFAULT false,
    error           text
);
