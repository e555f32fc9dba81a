-- A report's row outcomes (report_file_outcomes.text, some 700 kB per chunk of 20,000 rows) are
-- compressed with lz4 where the server has it: pglz, the default, took PostgreSQL about 15 ms a
-- piece, lz4 about 5 ms, in the one transaction that applies the file (docs/benchmarks.md).
-- Pieces stored before keep pglz; both read back the same. A server built without lz4 (or one
-- older than PostgreSQL 14) keeps pglz. SQLite has no such compression: its
-- migrations/sqlite/0020_report_outcomes_lz4.sql does nothing, to keep the numbers in lockstep.
DO $$
BEGIN
    ALTER TABLE report_file_outcomes ALTER COLUMN text SET COMPRESSION lz4;
EXCEPTION WHEN feature_not_supported OR syntax_error THEN
    RAISE NOTICE 'report_file_outcomes.text keeps pglz: %', SQLERRM;
END
$$;
