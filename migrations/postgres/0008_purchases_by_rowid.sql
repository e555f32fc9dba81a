-- Kept in lockstep with migrations/sqlite/0008_purchases_by_rowid.sql, which makes a purchase's
-- load_id SQLite's rowid. PostgreSQL's `load_id BIGINT PRIMARY KEY` (0006) is already the
-- table's one key: nothing to change.
SELECT 1;
