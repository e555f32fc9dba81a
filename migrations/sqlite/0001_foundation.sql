-- Foundation schema: customers, loads, their status history and exceptions, and the record of
-- inbox files already processed. Kept in lockstep with migrations/postgres/0001_foundation.sql.

CREATE TABLE customers (
    id          TEXT PRIMARY KEY,
    name        TEXT NOT NULL,
    mc          TEXT,
    dot         TEXT,
    created_at  TEXT NOT NULL,
    updated_at  TEXT NOT NULL
);

CREATE TABLE loads (
    id                 INTEGER PRIMARY KEY AUTOINCREMENT,
    load_number        TEXT NOT NULL UNIQUE,
    subsidiary         TEXT NOT NULL,
    customer_id        TEXT NOT NULL REFERENCES customers (id),
    amount_cents       BIGINT NOT NULL,
    status             TEXT NOT NULL CHECK (status IN ('Delivered', 'Released', 'Queued', 'Invoiced', 'Financed', 'Completed')),
    delivered_at       TEXT,
    pod                TEXT,
    rate_confirmation  TEXT,
    po_number          TEXT,
    factor_reference   TEXT,
    truck              TEXT,
    pickup_city        TEXT,
    pickup_state       TEXT,
    delivery_city      TEXT,
    delivery_state     TEXT,
    invoice_number     TEXT UNIQUE,
    batch_id           TEXT,
    waiting_reason     TEXT,
    created_at         TEXT NOT NULL,
    updated_at         TEXT NOT NULL
);
CREATE INDEX loads_by_subsidiary_status ON loads (subsidiary, status);

-- Append-only: every status move, with its cause, written in the same transaction as the move.
CREATE TABLE load_history (
    id           INTEGER PRIMARY KEY AUTOINCREMENT,
    load_id      INTEGER NOT NULL REFERENCES loads (id),
    from_status  TEXT,
    to_status    TEXT NOT NULL,
    at           TEXT NOT NULL,
    cause        TEXT NOT NULL
);
CREATE INDEX load_history_by_load ON load_history (load_id, id);

CREATE TRIGGER load_history_no_update BEFORE UPDATE ON load_history
BEGIN
    SELECT RAISE(ABORT, 'load_history is append-only');
END;
CREATE TRIGGER load_history_no_delete BEFORE DELETE ON load_history
BEGIN
    SELECT RAISE(ABORT, 'load_history is append-only');
END;

-- Flags beside the status; at most one open flag of each kind per load.
CREATE TABLE load_exceptions (
    id          INTEGER PRIMARY KEY AUTOINCREMENT,
    load_id     INTEGER NOT NULL REFERENCES loads (id),
    kind        TEXT NOT NULL CHECK (kind IN ('held', 'rejected', 'short_paid', 'credit_declined')),
    detail      TEXT NOT NULL,
    raised_at   TEXT NOT NULL,
    cleared_at  TEXT
);
CREATE UNIQUE INDEX load_exceptions_one_open ON load_exceptions (load_id, kind) WHERE cleared_at IS NULL;

-- One row per inbox file content processed, per channel ('loads' or a provider id): the
-- unique constraint is what keeps a re-dropped file from being applied twice.
CREATE TABLE inbox_files (
    id            INTEGER PRIMARY KEY AUTOINCREMENT,
    channel       TEXT NOT NULL,
    sha256        TEXT NOT NULL,
    file_name     TEXT NOT NULL,
    processed_at  TEXT NOT NULL,
    summary       TEXT NOT NULL,
    UNIQUE (channel, sha256)
);
