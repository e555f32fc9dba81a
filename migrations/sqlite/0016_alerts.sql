-- Alerts (docs/operations.md, Alerts): one row per event and channel, claimed once whichever
-- daemon sees the event first. An event's key is derived from the database state it comes from
-- (`exception:<id>`, `batch:<id>:failed`, `stuck:<load id>:<history id>`, …), so a restart finds
-- the row and does not alert again: the unique constraint is the guarantee (docs/reliability.md
-- rule 4). The sender takes due rows with a short lease, sends, and records the outcome; a failed
-- send is tried again at next_attempt. Kept in lockstep with migrations/postgres/0016_alerts.sql.
CREATE TABLE alerts (
    id            INTEGER PRIMARY KEY AUTOINCREMENT,
    event_key     TEXT NOT NULL,
    channel       TEXT NOT NULL CHECK (channel IN ('webhook', 'email')),
    kind          TEXT NOT NULL,
    subsidiary    TEXT,
    load_number   TEXT,
    detail        TEXT NOT NULL,
    event_at      TEXT NOT NULL,
    claimed_at    TEXT NOT NULL,
    claimed_by    TEXT NOT NULL,
    sent_at       TEXT,
    given_up_at   TEXT,
    attempts      INTEGER NOT NULL DEFAULT 0,
    -- Database clock: strftime('%Y-%m-%dT%H:%M:%fZ', ...), like lease_until.
    next_attempt  TEXT NOT NULL,
    last_error    TEXT,
    lease_until   TEXT,
    lease_token   TEXT,
    UNIQUE (event_key, channel)
);
CREATE INDEX alerts_due ON alerts (channel, next_attempt) WHERE sent_at IS NULL AND given_up_at IS NULL;
