-- Load files refused whole (unreadable, too large, not CSV or JSON, no header): recorded so that
-- `status`, the dashboard and `/metrics` show them with their reason, whether they were dropped
-- into inbox/loads/ or given to `factord loads import`. A refused file is not deduplicated: the
-- same name or content dropped again after a fix is tried again. (Report files keep their
-- refusals in report_files.refused.) Kept in lockstep with migrations/sqlite/0012_refused_files.sql.
CREATE TABLE refused_files (
    id          BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    channel     TEXT NOT NULL,
    file_name   TEXT NOT NULL,
    sha256      TEXT,
    refused_at  TIMESTAMPTZ NOT NULL,
    reason      TEXT NOT NULL
);
CREATE INDEX refused_files_by_channel ON refused_files (channel, id);
