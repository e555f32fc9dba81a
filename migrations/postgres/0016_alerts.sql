-- Alerts (docs/operations.md, Alerts): one row per event and channel, claimed once whichever
-- daemon sees the event first. An event's key is derived from the database state it comes from
-- (`exception:<id>`, `batch:<id>:failed`, `stuck:<load id>:<history id>`, …), so a restart or a
-- second daemon on the same database finds the row and does not alert again: the unique
-- constraint is the guarantee (docs/reliability.md rule 4). The sender takes due rows with a
-- short lease, sends, and records the outcome; a failed send is tried again at next_attempt.
-- Kept in lockstep with migrations/sqlite/0016_alerts.sql.
CREATE TABLE alerts (
    id            BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    event_key     TEXT NOT NULL,
    -- 'webhook' or 'email'.
    channel       TEXT NOT NULL CHECK (channel IN ('webhook', 'email')),
    kind          TEXT NOT NULL,
    subsidiary    TEXT,
    load_number   TEXT,
    detail        TEXT NOT NULL,
    -- When the event happened (the row it comes from), and when it was claimed and by whom.
    event_at      TIMESTAMPTZ NOT NULL,
    claimed_at    TIMESTAMPTZ NOT NULL,
    claimed_by    TEXT NOT NULL,
    -- Delivery: sent once sent_at is set; given up (a 4xx answer) once given_up_at is set.
    sent_at       TIMESTAMPTZ,
    given_up_at   TIMESTAMPTZ,
    attempts      BIGINT NOT NULL DEFAULT 0,
    next_attempt  TIMESTAMPTZ NOT NULL,
    last_error    TEXT,
    -- The lease of the sender working on it (database clock), and its token.
    lease_until   TIMESTAMPTZ,
    lease_token   TEXT,
    UNIQUE (event_key, channel)
);
CREATE INDEX alerts_due ON alerts (channel, next_attempt) WHERE sent_at IS NULL AND given_up_at IS NULL;
