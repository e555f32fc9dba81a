-- The money ledger (docs/design.md §11, docs/money.md). Kept in lockstep with
-- migrations/postgres/0018_ledger.sql.
-- 1. `ledger_events`: the money events that purchases and payments do not already hold —
--    reserve released, chargeback (the factor sells the invoice back), an extra fee deducted,
--    an adjustment — each with its source. Written only for the report rows that carry one.
-- 2. the view `ledger`: purchases, payments and ledger_events as one list of events per load,
--    each with its date and source (report file + row, status sync, command).
-- 3. two new exception kinds: `ledger_mismatch` (amount ≠ advance + fee + reserve held) and
--    `charged_back`. SQLite cannot change a CHECK constraint in place, so load_exceptions is
--    rebuilt with every row kept (ids included).

CREATE TABLE ledger_events (
    id              INTEGER PRIMARY KEY AUTOINCREMENT,
    load_id         BIGINT NOT NULL,
    kind            TEXT NOT NULL CHECK (kind IN ('reserve_released', 'chargeback', 'fee', 'adjustment')),
    amount_cents    BIGINT NOT NULL,
    event_date      TEXT NOT NULL DEFAULT '',
    source          TEXT NOT NULL,
    report_file_id  BIGINT,
    row_number      BIGINT,
    recorded_at     TEXT NOT NULL
);
-- The same event reported again (a cumulative report, another file) is recorded once.
CREATE UNIQUE INDEX ledger_events_once ON ledger_events (load_id, kind, amount_cents, event_date);

CREATE VIEW ledger AS
SELECT p.load_id AS load_id, 'purchase' AS kind,
       COALESCE(NULLIF(p.purchase_date, ''), substr(CAST(p.recorded_at AS TEXT), 1, 10)) AS event_date,
       p.amount_cents AS amount_cents, p.advance_cents AS advance_cents, p.fee_cents AS fee_cents,
       p.reserve_cents AS reserve_cents, p.schedule_number AS reference,
       'purchase report ' || f.file_name || ' row ' || CAST(p.row_number AS TEXT) AS source
FROM purchases p JOIN report_files f ON f.id = p.report_file_id
UNION ALL
SELECT y.load_id, 'payment',
       COALESCE(NULLIF(y.payment_date, ''), substr(CAST(y.recorded_at AS TEXT), 1, 10)),
       y.paid_cents, NULL, NULL, NULL, y.payment_reference,
       'payment report ' || f.file_name || ' row ' || CAST(y.row_number AS TEXT)
FROM payments y JOIN report_files f ON f.id = y.report_file_id
UNION ALL
SELECT e.load_id, e.kind,
       COALESCE(NULLIF(e.event_date, ''), substr(CAST(e.recorded_at AS TEXT), 1, 10)),
       e.amount_cents, NULL, NULL, NULL, NULL, e.source
FROM ledger_events e;

CREATE TABLE load_exceptions_new (
    id          INTEGER PRIMARY KEY AUTOINCREMENT,
    load_id     INTEGER NOT NULL REFERENCES loads (id),
    kind        TEXT NOT NULL CHECK (kind IN ('held', 'rejected', 'short_paid', 'credit_declined', 'unrecognised_status',
                                              'ledger_mismatch', 'charged_back')),
    detail      TEXT NOT NULL,
    raised_at   TEXT NOT NULL,
    cleared_at  TEXT
);
INSERT INTO load_exceptions_new (id, load_id, kind, detail, raised_at, cleared_at)
    SELECT id, load_id, kind, detail, raised_at, cleared_at FROM load_exceptions ORDER BY id;
DROP TABLE load_exceptions;
ALTER TABLE load_exceptions_new RENAME TO load_exceptions;
CREATE UNIQUE INDEX load_exceptions_one_open ON load_exceptions (load_id, kind) WHERE cleared_at IS NULL;
