-- Nothing on SQLite, which does not compress values: migrations/postgres/0020_report_outcomes_lz4.sql
-- has PostgreSQL compress a report's row outcomes with lz4. Kept to keep the numbers in lockstep.
SELECT 1;
