-- Control plane: durable, audited operator commands (ctl, Telegram) and the flags they set.

CREATE TABLE control_commands (
    id          bigserial   PRIMARY KEY,
    issued_at   timestamptz NOT NULL DEFAULT now(),
    issuer      text        NOT NULL,            -- cli:user@host | telegram:username(chat)
    command     text        NOT NULL,
    args        jsonb       NOT NULL DEFAULT '{}'::jsonb,
    status      text        NOT NULL DEFAULT 'pending'
                            CHECK (status IN ('pending', 'done', 'failed', 'expired')),
    result      text,
    handled_at  timestamptz,
    handled_by  text
);
CREATE INDEX control_commands_pending ON control_commands (id) WHERE status = 'pending';

-- Operator switches that outlive restarts: paused (no new entries), killswitch (no orders), mode.
CREATE TABLE system_flags (
    name        text        PRIMARY KEY,
    value       jsonb       NOT NULL,
    updated_at  timestamptz NOT NULL DEFAULT now(),
    updated_by  text        NOT NULL
);
