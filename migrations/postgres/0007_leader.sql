-- Leader leases: one row per role (the scheduler) naming the daemon that holds it and until
-- when, on the database clock. A lease saves duplicate work only; the unique constraints of
-- schedule_fires, batch_items and report_files stay the guarantee (RELIABILITY rule 4).
-- Kept in lockstep with migrations/sqlite/0007_leader.sql.
CREATE TABLE leader_leases (
    role         TEXT PRIMARY KEY,
    holder       TEXT NOT NULL,
    acquired_at  TIMESTAMPTZ NOT NULL,
    until        TIMESTAMPTZ NOT NULL
);
