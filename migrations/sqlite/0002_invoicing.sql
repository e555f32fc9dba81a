-- Invoicing: invoice dates and packets on loads, claim leases for the invoice job, and one
-- invoice number sequence per subsidiary. Kept in lockstep with migrations/postgres.

ALTER TABLE loads ADD COLUMN invoice_date TEXT;
ALTER TABLE loads ADD COLUMN packet_path TEXT;
-- A lease (RELIABILITY rule 3): the job that set claim_token owns the load until
-- claimed_until, measured on the database's clock (UTC, '%Y-%m-%dT%H:%M:%fZ').
ALTER TABLE loads ADD COLUMN claim_token TEXT;
ALTER TABLE loads ADD COLUMN claimed_until TEXT;
CREATE INDEX loads_by_status_claim ON loads (status, claimed_until);

-- The last invoice number handed out per subsidiary. Taking a number and writing it on the
-- load happen in one transaction, so a number is never lost or given twice.
CREATE TABLE invoice_sequences (
    subsidiary   TEXT PRIMARY KEY,
    last_number  BIGINT NOT NULL
);
