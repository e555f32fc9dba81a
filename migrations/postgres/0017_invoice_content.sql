-- Invoice content (docs/design.md §7): the fields a customer's AP clerk needs on an invoice, its
-- line items, and documents named by the load import.
-- Kept in lockstep with migrations/sqlite/0017_invoice_content.sql.
--
-- 1. New columns on loads, all optional (NULL for loads imported before): the bill-to block,
--    the pickup date, shipper and consignee, the BOL number, and the payment terms in days (set at
--    import from the row or the subsidiary's `terms_days`; NULL reads as the subsidiary's).
-- 2. `load_lines`: the invoice's line items, in order. A load without lines is billed as one line
--    "Freight charges" of its amount; with lines, the amount is their sum.
-- 3. `load_documents.source`: who recorded the document, `loads docs` or `import`. A re-import
--    that carries `other_documents` replaces the other documents an import recorded; those added
--    with `factord loads docs` stay.

ALTER TABLE loads ADD COLUMN bill_to_name TEXT;
ALTER TABLE loads ADD COLUMN bill_to_address TEXT;
ALTER TABLE loads ADD COLUMN pickup_date TEXT;
ALTER TABLE loads ADD COLUMN shipper_name TEXT;
ALTER TABLE loads ADD COLUMN consignee_name TEXT;
ALTER TABLE loads ADD COLUMN bol_number TEXT;
ALTER TABLE loads ADD COLUMN terms_days INTEGER;

CREATE TABLE load_lines (
    id            BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    load_id       BIGINT NOT NULL REFERENCES loads (id),
    position      INTEGER NOT NULL,
    description   TEXT NOT NULL,
    amount_cents  BIGINT NOT NULL,
    UNIQUE (load_id, position)
);

ALTER TABLE load_documents ADD COLUMN source TEXT NOT NULL DEFAULT 'loads docs'
    CHECK (source IN ('loads docs', 'import'));
