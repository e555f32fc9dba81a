-- Rework (docs/design.md §2): documents added with `factord loads docs`, and retried submissions.
-- Kept in lockstep with migrations/postgres/0015_load_documents.sql.
--
-- 1. `load_documents`: the documents of a load beyond its POD and rate confirmation (which stay
--    in loads.pod and loads.rate_confirmation): bill of lading, lumper receipt, other documents.
--    Paths are relative to documents/. A new BOL or lumper receipt replaces the one before
--    (`replaced_at` set, the row kept); other documents add up.
-- 2. `batch_items.retried_at`: an item the factor had accepted whose invoice the factor later
--    rejected, and which ops sent back to Queued with `factord loads retry`. Such an item no longer
--    holds its load in the batch, so the next batch may take the load (same invoice number).

CREATE TABLE load_documents (
    id           INTEGER PRIMARY KEY AUTOINCREMENT,
    load_id      INTEGER NOT NULL REFERENCES loads (id),
    kind         TEXT NOT NULL CHECK (kind IN ('bol', 'lumper', 'other')),
    path         TEXT NOT NULL,
    added_at     TEXT NOT NULL,
    reason       TEXT NOT NULL,
    replaced_at  TEXT
);
CREATE INDEX load_documents_by_load ON load_documents (load_id, id);
CREATE UNIQUE INDEX load_documents_one_current ON load_documents (load_id, kind)
    WHERE replaced_at IS NULL AND kind IN ('bol', 'lumper');

ALTER TABLE batch_items ADD COLUMN retried_at TEXT;
DROP INDEX batch_items_one_live;
CREATE UNIQUE INDEX batch_items_one_live ON batch_items (load_id)
    WHERE outcome IN ('pending', 'accepted') AND retried_at IS NULL;
