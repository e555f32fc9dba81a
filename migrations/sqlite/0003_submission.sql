-- Submission: schedule fires, batches and their items (one per invoice), written ahead of
-- every call to a factor (RELIABILITY rules 4 and 5). Kept in lockstep with the other backend.

-- One row per (subsidiary, scheduled instant): a restart, a clock stepping back or a second
-- daemon cannot fire the same schedule time twice.
CREATE TABLE schedule_fires (
    subsidiary  TEXT NOT NULL,
    fire_time   TEXT NOT NULL,
    fired_at    TEXT NOT NULL,
    PRIMARY KEY (subsidiary, fire_time)
);

-- The last batch number handed out per subsidiary (numbers go into file names).
CREATE TABLE batch_sequences (
    subsidiary   TEXT PRIMARY KEY,
    last_number  BIGINT NOT NULL
);

CREATE TABLE batches (
    id              TEXT PRIMARY KEY,
    subsidiary      TEXT NOT NULL,
    provider        TEXT NOT NULL,
    number          BIGINT NOT NULL,
    batch_date      TEXT NOT NULL,
    -- sending: written ahead, outcome unknown until recorded; sent: the factor answered;
    -- failed: nothing was delivered (the loads stay Queued and go in a later batch).
    status          TEXT NOT NULL CHECK (status IN ('sending', 'sent', 'failed')),
    invoice_count   BIGINT NOT NULL,
    total_cents     BIGINT NOT NULL,
    reference       TEXT,
    error           TEXT,
    cause           TEXT NOT NULL,
    created_at      TEXT NOT NULL,
    finished_at     TEXT,
    UNIQUE (subsidiary, number)
);
CREATE INDEX batches_by_status ON batches (status);

CREATE TABLE batch_items (
    batch_id          TEXT NOT NULL REFERENCES batches (id),
    load_id           BIGINT NOT NULL REFERENCES loads (id),
    invoice_number    TEXT NOT NULL,
    idempotency_key   TEXT NOT NULL UNIQUE,
    payload_sha256    TEXT NOT NULL,
    outcome           TEXT NOT NULL CHECK (outcome IN ('pending', 'accepted', 'rejected', 'transient')),
    factor_reference  TEXT,
    message           TEXT,
    PRIMARY KEY (batch_id, load_id)
);
-- One live batch per load: the guarantee that an invoice is never in two batches at once.
CREATE UNIQUE INDEX batch_items_one_live ON batch_items (load_id) WHERE outcome IN ('pending', 'accepted');

-- The factor's reference for the invoice, once it accepted it.
ALTER TABLE loads ADD COLUMN submission_reference TEXT;
