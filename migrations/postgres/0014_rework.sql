-- Rework (docs/design.md §2): voided invoice numbers, and batch items whose invoice was voided.
-- Kept in lockstep with migrations/sqlite/0014_rework.sql.
--
-- 1. `void_invoices`: every invoice number voided by `factord loads void`, with its load, the
--    reason, when, and the factor that held it (the provider its batch went to), if any. The
--    number stays here for good: the unique key keeps it from being voided (or issued) twice,
--    and the subsidiary's sequence only goes up, so it is never handed out again.
-- 2. `batch_items.outcome` gains `void`: the item of an invoice a factor accepted and ops then
--    voided. It no longer holds the load in that batch, so the load's new invoice can go in a
--    later one.

CREATE TABLE void_invoices (
    id              BIGSERIAL PRIMARY KEY,
    invoice_number  TEXT NOT NULL UNIQUE,
    load_id         BIGINT NOT NULL REFERENCES loads (id),
    subsidiary      TEXT NOT NULL,
    -- The load's status when it was voided (Queued or Invoiced).
    status          TEXT NOT NULL,
    -- The provider id of the batch that delivered the invoice; NULL when no factor held it.
    factor          TEXT,
    batch_id        TEXT,
    reason          TEXT NOT NULL,
    voided_at       TIMESTAMPTZ NOT NULL
);
CREATE INDEX void_invoices_by_load ON void_invoices (load_id, id);

CREATE FUNCTION void_invoices_append_only() RETURNS trigger AS $$
BEGIN
    RAISE EXCEPTION 'void_invoices is append-only';
END;
$$ LANGUAGE plpgsql;
CREATE TRIGGER void_invoices_no_change BEFORE UPDATE OR DELETE ON void_invoices
    FOR EACH ROW EXECUTE FUNCTION void_invoices_append_only();

ALTER TABLE batch_items DROP CONSTRAINT batch_items_outcome_check;
ALTER TABLE batch_items ADD CONSTRAINT batch_items_outcome_check
    CHECK (outcome IN ('pending', 'accepted', 'rejected', 'transient', 'void'));
