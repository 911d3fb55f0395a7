-- Live-feed gaps that could not be backfilled, and the bars they leave incomplete.

ALTER TABLE market_1s ADD COLUMN incomplete boolean NOT NULL DEFAULT false;

CREATE TABLE feed_gaps (
    id          bigserial   PRIMARY KEY,
    market      text        NOT NULL,
    from_ts     timestamptz NOT NULL,   -- the last trade seen before the gap
    until_ts    timestamptz NOT NULL,   -- the oldest trade the backfill could reach
    reason      text        NOT NULL,
    detected_at timestamptz NOT NULL DEFAULT now(),
    CHECK (from_ts <= until_ts)
);
CREATE INDEX feed_gaps_market ON feed_gaps (market, from_ts);
