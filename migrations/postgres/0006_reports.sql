-- Purchase and payment reports (DESIGN §8): the record of every report file processed (or
-- refused), the purchases and payments its rows applied. Kept in lockstep with
-- migrations/sqlite/0006_reports.sql.

-- One row per report file. `outcomes` is the result file (every row with its outcome and
-- reason) stored with the file's record, in the same transaction as the rows it applied.
CREATE TABLE report_files (
    id            BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    provider      TEXT NOT NULL,
    kind          TEXT CHECK (kind IN ('purchase', 'payment')),
    sha256        TEXT NOT NULL,
    file_name     TEXT NOT NULL,
    processed_at  TIMESTAMPTZ NOT NULL,
    rows_total    BIGINT NOT NULL DEFAULT 0,
    applied       BIGINT NOT NULL DEFAULT 0,
    skipped       BIGINT NOT NULL DEFAULT 0,
    rejected      BIGINT NOT NULL DEFAULT 0,
    -- Set when the file was refused whole (nothing applied): the reason.
    refused       TEXT,
    outcomes      TEXT NOT NULL DEFAULT ''
);
-- One ingest per file content and provider: a re-dropped or renamed file is never applied twice.
CREATE UNIQUE INDEX report_files_once ON report_files (provider, sha256) WHERE refused IS NULL;
CREATE INDEX report_files_by_provider ON report_files (provider, id);

-- What the factor reported buying: one per load.
-- purchases and payments carry no foreign keys: a report writes up to a million rows at once,
-- set-based, and a per-row key check would double that cost. Their ids come from the same
-- transaction that read the loads and created the file's record, and neither loads nor report
-- files are ever deleted.
CREATE TABLE purchases (
    load_id          BIGINT PRIMARY KEY,
    report_file_id   BIGINT NOT NULL,
    row_number       BIGINT NOT NULL,
    amount_cents     BIGINT,
    advance_cents    BIGINT,
    fee_cents        BIGINT,
    reserve_cents    BIGINT,
    purchase_date    TEXT,
    schedule_number  TEXT,
    factor_status    TEXT,
    recorded_at      TIMESTAMPTZ NOT NULL
);

-- What the factor reported collected; a load is Completed once these reach its amount.
CREATE TABLE payments (
    id                 BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    load_id            BIGINT NOT NULL,
    report_file_id     BIGINT NOT NULL,
    row_number         BIGINT NOT NULL,
    paid_cents         BIGINT NOT NULL,
    payment_date       TEXT NOT NULL DEFAULT '',
    payment_reference  TEXT NOT NULL DEFAULT '',
    recorded_at        TIMESTAMPTZ NOT NULL
);
-- The same payment reported again (a cumulative report, another file) is recognised.
CREATE UNIQUE INDEX payments_once ON payments (load_id, paid_cents, payment_date, payment_reference);
