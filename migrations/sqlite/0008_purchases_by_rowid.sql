-- A purchase is keyed by its load as SQLite's rowid. `load_id BIGINT PRIMARY KEY` (0006) is not a
-- rowid alias in SQLite: the table kept a hidden rowid and a second index of every load_id,
-- written for each purchase a report records. `INTEGER PRIMARY KEY` is the key itself. Kept in
-- lockstep with migrations/postgres/0008_purchases_by_rowid.sql, which has nothing to change.
CREATE TABLE purchases_by_rowid (
    load_id          INTEGER PRIMARY KEY,
    report_file_id   BIGINT NOT NULL,
    row_number       BIGINT NOT NULL,
    amount_cents     BIGINT,
    advance_cents    BIGINT,
    fee_cents        BIGINT,
    reserve_cents    BIGINT,
    purchase_date    TEXT,
    schedule_number  TEXT,
    factor_status    TEXT,
    recorded_at      TEXT NOT NULL
);
INSERT INTO purchases_by_rowid (load_id, report_file_id, row_number, amount_cents, advance_cents, fee_cents,
    reserve_cents, purchase_date, schedule_number, factor_status, recorded_at)
SELECT load_id, report_file_id, row_number, amount_cents, advance_cents, fee_cents, reserve_cents, purchase_date,
    schedule_number, factor_status, recorded_at
FROM purchases;
DROP TABLE purchases;
ALTER TABLE purchases_by_rowid RENAME TO purchases;
