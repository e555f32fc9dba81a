-- Rework (docs/design.md §2): voided invoice numbers, and batch items whose invoice was voided.
-- Kept in lockstep with migrations/postgres/0014_rework.sql.
--
-- 1. `void_invoices`: every invoice number voided by `factord loads void`, with its load, the
--    reason, when, and the factor that held it (the provider its batch went to), if any. The
--    number stays here for good: the unique key keeps it from being voided (or issued) twice,
--    and the subsidiary's sequence only goes up, so it is never handed out again.
-- 2. `batch_items.outcome` gains `void`: the item of an invoice a factor accepted and ops then
--    voided. It no longer holds the load in that batch, so the load's new invoice can go in a
--    later one. SQLite cannot change a CHECK constraint in place, so the table is rebuilt with
--    every row kept; nothing references batch_items.

CREATE TABLE void_invoices (
    id              INTEGER PRIMARY KEY AUTOINCREMENT,
    invoice_number  TEXT NOT NULL UNIQUE,
    load_id         INTEGER NOT NULL REFERENCES loads (id),
    subsidiary      TEXT NOT NULL,
    -- The load's status when it was voided (Queued or Invoiced).
    status          TEXT NOT NULL,
    -- The provider id of the batch that delivered the invoice; NULL when no factor held it.
    factor          TEXT,
    batch_id        TEXT,
    reason          TEXT NOT NULL,
    voided_at       TEXT NOT NULL
);
CREATE INDEX void_invoices_by_load ON void_invoices (load_id, id);

CREATE TRIGGER void_invoices_no_update BEFORE UPDATE ON void_invoices
BEGIN
    SELECT RAISE(ABORT, 'void_invoices is append-only');
END;
CREATE TRIGGER void_invoices_no_delete BEFORE DELETE ON void_invoices
BEGIN
    SELECT RAISE(ABORT, 'void_invoices is append-only');
END;

CREATE TABLE batch_items_new (
    batch_id          TEXT NOT NULL REFERENCES batches (id),
    load_id           BIGINT NOT NULL REFERENCES loads (id),
    invoice_number    TEXT NOT NULL,
    idempotency_key   TEXT NOT NULL UNIQUE,
    payload_sha256    TEXT NOT NULL,
    outcome           TEXT NOT NULL CHECK (outcome IN ('pending', 'accepted', 'rejected', 'transient', 'void')),
    factor_reference  TEXT,
    message           TEXT,
    PRIMARY KEY (batch_id, load_id)
);
INSERT INTO batch_items_new (batch_id, load_id, invoice_number, idempotency_key, payload_sha256, outcome,
    factor_reference, message)
SELECT batch_id, load_id, invoice_number, idempotency_key, payload_sha256, outcome, factor_reference, message
FROM batch_items;
DROP TABLE batch_items;
ALTER TABLE batch_items_new RENAME TO batch_items;
-- One live batch per load: the guarantee that an invoice is never in two batches at once.
CREATE UNIQUE INDEX batch_items_one_live ON batch_items (load_id) WHERE outcome IN ('pending', 'accepted');
