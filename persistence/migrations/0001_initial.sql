-- Walking skeleton schema. Money and quantities are numeric (exact); times are timestamptz (UTC).

-- 1-second OHLCV bars. A late trade amends its bar (high/low/volume/count; open/close kept).
CREATE TABLE market_1s (
    market       text        NOT NULL,
    ts           timestamptz NOT NULL,           -- bar open (second boundary, UTC)
    open         numeric     NOT NULL,
    high         numeric     NOT NULL,
    low          numeric     NOT NULL,
    close        numeric     NOT NULL,
    volume       numeric     NOT NULL,
    trade_count  integer     NOT NULL CHECK (trade_count >= 0),
    late_trades  integer     NOT NULL DEFAULT 0 CHECK (late_trades >= 0),
    source       text        NOT NULL,           -- live | capture | candles-derived
    PRIMARY KEY (market, ts),
    CHECK (low <= high)
);

-- How far each market of a feed has been applied to market_1s (committed with the bars).
CREATE TABLE feed_offsets (
    feed            text        NOT NULL,        -- e.g. replay:candles
    market          text        NOT NULL,
    applied_offset  bigint      NOT NULL,           -- every trade up to here is in market_1s
    closed_through  bigint,                         -- epoch second of the market's last closed bar
    updated_at      timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (feed, market)
);

-- Paper fills: each one is an intent the execution node turns into exactly one order attempt.
-- Written by a single writer (the market node's PaperActor), so ids commit in order and the
-- execution node may read them by cursor.
CREATE TABLE paper_trades (
    id            bigserial   PRIMARY KEY,
    market        text        NOT NULL,
    side          text        NOT NULL CHECK (side IN ('buy', 'sell')),
    price         numeric     NOT NULL CHECK (price > 0),
    volume        numeric     NOT NULL CHECK (volume > 0),
    amount_krw    numeric     NOT NULL,          -- price * volume
    fee_krw       numeric     NOT NULL,
    realized_pnl  numeric     NOT NULL DEFAULT 0, -- net of both fees, on sells
    reason        text        NOT NULL,
    bar_ts        timestamptz NOT NULL,
    source        text        NOT NULL,
    created_at    timestamptz NOT NULL DEFAULT now()
);

-- Paper book per market; last_bar_ts is how far the strategy/paper stage has processed bars.
CREATE TABLE paper_positions (
    market        text        PRIMARY KEY,
    volume        numeric     NOT NULL DEFAULT 0,
    avg_price     numeric     NOT NULL DEFAULT 0,
    entry_fee_krw numeric     NOT NULL DEFAULT 0, -- fee paid to open the current position
    max_price     numeric     NOT NULL DEFAULT 0, -- highest close since entry
    realized_pnl  numeric     NOT NULL DEFAULT 0,
    fees_krw      numeric     NOT NULL DEFAULT 0,
    trades        integer     NOT NULL DEFAULT 0,
    last_price    numeric,
    last_bar_ts   timestamptz,
    updated_at    timestamptz NOT NULL DEFAULT now()
);

-- Every order attempt for a paper trade (intent). Exactly one per intent in shadow mode.
CREATE TABLE order_attempts (
    id               bigserial   PRIMARY KEY,
    paper_trade_id   bigint      NOT NULL REFERENCES paper_trades (id),
    attempt          integer     NOT NULL CHECK (attempt >= 1),
    identifier       text        NOT NULL UNIQUE,  -- {bot}-{intent}-{attempt}
    mode             text        NOT NULL CHECK (mode IN ('shadow', 'test', 'live')),
    status           text        NOT NULL CHECK (status IN ('logged', 'blocked', 'throttled', 'test_ok',
                                  'submitted', 'done', 'cancelled', 'unknown', 'error')),
    market           text        NOT NULL,
    side             text        NOT NULL,
    request          jsonb       NOT NULL,
    response         jsonb,
    blocked_reasons  jsonb       NOT NULL DEFAULT '[]'::jsonb,
    error            text,
    created_at       timestamptz NOT NULL DEFAULT now(),
    updated_at       timestamptz NOT NULL DEFAULT now(),
    UNIQUE (paper_trade_id, attempt)
);

-- Read positions of table consumers, moved in the same transaction as their effects.
CREATE TABLE consumer_cursors (
    consumer    text        PRIMARY KEY,
    position    bigint      NOT NULL,
    updated_at  timestamptz NOT NULL DEFAULT now()
);

-- Every start, exit (with reason), restart, escalation of every supervisor.
CREATE TABLE supervisor_events (
    id           bigserial   PRIMARY KEY,
    at           timestamptz NOT NULL DEFAULT now(),
    node         text        NOT NULL,           -- root, market, execution, ops
    supervisor   text        NOT NULL,
    kind         text        NOT NULL,
    child_id     text,
    incarnation  integer,
    reason       text,
    detail       jsonb       NOT NULL DEFAULT '{}'::jsonb
);
CREATE INDEX supervisor_events_at ON supervisor_events (at);

-- Alert outbox: persisted first, marked sent only once delivered.
CREATE TABLE alerts (
    id          bigserial   PRIMARY KEY,
    created_at  timestamptz NOT NULL DEFAULT now(),
    kind        text        NOT NULL,
    level       text        NOT NULL CHECK (level IN ('info', 'warning', 'error', 'critical')),
    text        text        NOT NULL,
    sent_at     timestamptz,
    channel     text,                             -- log | telegram
    attempts    integer     NOT NULL DEFAULT 0,
    last_error  text
);
CREATE INDEX alerts_unsent ON alerts (id) WHERE sent_at IS NULL;

-- What is running now (written by the root for nodes and by each node for its actors).
CREATE TABLE runtime_nodes (
    node          text        PRIMARY KEY,
    pid           integer,
    state         text        NOT NULL,
    incarnation   integer     NOT NULL DEFAULT 0,
    restarts      integer     NOT NULL DEFAULT 0,
    started_at    timestamptz,
    heartbeat_at  timestamptz NOT NULL DEFAULT now(),
    detail        jsonb       NOT NULL DEFAULT '{}'::jsonb
);

CREATE TABLE runtime_actors (
    node             text        NOT NULL,
    actor            text        NOT NULL,
    state            text        NOT NULL,
    incarnation      integer     NOT NULL DEFAULT 0,
    mailbox          integer     NOT NULL DEFAULT 0,
    processed        bigint      NOT NULL DEFAULT 0,
    last_message_at  timestamptz,
    counters         jsonb       NOT NULL DEFAULT '{}'::jsonb,
    updated_at       timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (node, actor)
);
