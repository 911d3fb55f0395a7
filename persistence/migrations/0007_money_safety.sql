-- Money safety: exits that could not go out stay pending, unknown outcomes that lookups cannot
-- settle wait for an operator, and the reasons of both are auditable.

-- An exit (a sell intent) whose attempt ended without executing: blocked (breaker open, a risk
-- limit, a persistent throttle), refused by the venue, failed MAX_ATTEMPTS times, or cancelled
-- with nothing filled. It is never final until an attempt executes it (resolution 'executed'),
-- nothing is left to sell ('nothing held') or an operator decides ('abandoned by …'). Execution
-- retries it with backoff once the cause clears, in the mode it was pending in.
CREATE TABLE pending_exits (
    paper_trade_id  bigint      PRIMARY KEY REFERENCES paper_trades (id),
    market          text        NOT NULL,
    mode            text        NOT NULL CHECK (mode IN ('test', 'live')),
    since           timestamptz NOT NULL DEFAULT now(),
    reason          text        NOT NULL,                -- why it is still pending (latest)
    tries           integer     NOT NULL DEFAULT 1,      -- attempts and re-checks so far
    next_at         timestamptz NOT NULL,                -- not re-checked before this
    updated_at      timestamptz NOT NULL DEFAULT now(),
    resolved_at     timestamptz,
    resolution      text,
    CHECK ((resolved_at IS NULL) = (resolution IS NULL))
);
CREATE INDEX pending_exits_open ON pending_exits (next_at) WHERE resolved_at IS NULL;

-- The needs-review queue: a live attempt whose outcome stayed unknown after every lookup for
-- EXEC_REVIEW_AFTER_S. It stays 'unknown' (not final: no second attempt of its intent can go out)
-- and execution keeps looking it up; `ctl review <attempt> placed|absent` settles it, audited.
ALTER TABLE order_attempts
    ADD COLUMN review_since timestamptz,
    ADD COLUMN reviewed     jsonb;         -- {"by", "at", "verdict"} once an operator decided
CREATE INDEX order_attempts_review ON order_attempts (id) WHERE review_since IS NOT NULL AND NOT final;
