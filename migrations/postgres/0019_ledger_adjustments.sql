-- Ledger adjustments and status-sync events (docs/design.md §11, docs/money.md). Kept in
-- lockstep with migrations/sqlite/0019_ledger_adjustments.sql.
-- 1. `ledger_events.field`: for an adjustment (`factord loads adjust`), the figure it corrects:
--    advance, fee, reserve, reserve_released, paid or chargeback (signed amount).
-- 2. two kinds written by status sync when an API factor's words alone move a load:
--    `status_purchased` (→ Financed) and `status_paid` (→ Completed). The words carry no
--    amount, so `amount_cents` may now be NULL (only for these two kinds).
-- 3. the once-only index covers reported events; adjustments are each ops' own entry, and the
--    same adjustment entered twice is two entries.
-- 4. `ledger_events.invoice_number`: the invoice an adjustment or a status-sync event belongs
--    to (a load voided and invoiced again does not carry them to its new invoice); the view
--    `ledger` gains `field` and `invoice_number` (NULL for reported events).
-- (5. below: void_invoices keeps amount and date.)

DROP VIEW ledger;
ALTER TABLE ledger_events DROP CONSTRAINT ledger_events_kind_check;
ALTER TABLE ledger_events ADD CONSTRAINT ledger_events_kind_check
    CHECK (kind IN ('reserve_released', 'chargeback', 'fee', 'adjustment', 'status_purchased', 'status_paid'));
ALTER TABLE ledger_events ALTER COLUMN amount_cents DROP NOT NULL;
ALTER TABLE ledger_events ADD COLUMN invoice_number TEXT;
ALTER TABLE ledger_events ADD COLUMN field TEXT
    CHECK (field IN ('advance', 'fee', 'reserve', 'reserve_released', 'paid', 'chargeback'));
ALTER TABLE ledger_events ADD CONSTRAINT ledger_events_amount_check
    CHECK ((amount_cents IS NULL) = (kind IN ('status_purchased', 'status_paid')));
ALTER TABLE ledger_events ADD CONSTRAINT ledger_events_adjustment_field
    CHECK ((field IS NOT NULL) = (kind = 'adjustment'));
DROP INDEX ledger_events_once;
CREATE UNIQUE INDEX ledger_events_once ON ledger_events (load_id, kind, amount_cents, event_date)
    WHERE kind IN ('reserve_released', 'chargeback', 'fee');
CREATE UNIQUE INDEX ledger_events_status_once ON ledger_events (load_id, kind)
    WHERE kind IN ('status_purchased', 'status_paid');
CREATE INDEX ledger_events_load ON ledger_events (load_id);
-- Ops' adjustments, read per file by the report apply's check of the sums.
CREATE INDEX ledger_events_adjustments ON ledger_events (load_id) WHERE kind = 'adjustment';

CREATE VIEW ledger AS
SELECT p.load_id AS load_id, 'purchase' AS kind,
       COALESCE(NULLIF(p.purchase_date, ''), to_char(p.recorded_at AT TIME ZONE 'UTC', 'YYYY-MM-DD')) AS event_date,
       p.amount_cents AS amount_cents, p.advance_cents AS advance_cents, p.fee_cents AS fee_cents,
       p.reserve_cents AS reserve_cents, p.schedule_number AS reference,
       'purchase report ' || f.file_name || ' row ' || CAST(p.row_number AS TEXT) AS source,
       CAST(NULL AS TEXT) AS field, CAST(NULL AS TEXT) AS invoice_number
FROM purchases p JOIN report_files f ON f.id = p.report_file_id
UNION ALL
SELECT y.load_id, 'payment',
       COALESCE(NULLIF(y.payment_date, ''), to_char(y.recorded_at AT TIME ZONE 'UTC', 'YYYY-MM-DD')),
       y.paid_cents, NULL, NULL, NULL, y.payment_reference,
       'payment report ' || f.file_name || ' row ' || CAST(y.row_number AS TEXT), NULL, NULL
FROM payments y JOIN report_files f ON f.id = y.report_file_id
UNION ALL
SELECT e.load_id, e.kind,
       COALESCE(NULLIF(e.event_date, ''), to_char(e.recorded_at AT TIME ZONE 'UTC', 'YYYY-MM-DD')),
       e.amount_cents, NULL, NULL, NULL, NULL, e.source, e.field, e.invoice_number
FROM ledger_events e;

-- 5. `void_invoices` keeps the voided invoice's amount and date, so that the journal can book
--    the invoice and its reversal (rows voided before this migration have neither: their
--    invoices were never in a journal export that can be told apart now).
ALTER TABLE void_invoices ADD COLUMN amount_cents BIGINT;
ALTER TABLE void_invoices ADD COLUMN invoice_date TEXT;
