-- Factor statuses and safe provider switching (kept in lockstep with
-- migrations/postgres/0009_factor_statuses_and_packet_noa.sql):
-- 1. a new exception kind, `unrecognised_status`: the factor said something its status map does
--    not know. SQLite cannot change a CHECK constraint in place, so the table is rebuilt with
--    every row kept (ids included).
-- 2. `loads.packet_noa`: which provider and which NOA text (sha256) a load's packet was built
--    with. A Queued packet whose mark differs from the subsidiary's current provider and NOA is
--    rebuilt before any batch may take it.

CREATE TABLE load_exceptions_new (
    id          INTEGER PRIMARY KEY AUTOINCREMENT,
    load_id     INTEGER NOT NULL REFERENCES loads (id),
    kind        TEXT NOT NULL CHECK (kind IN ('held', 'rejected', 'short_paid', 'credit_declined', 'unrecognised_status')),
    detail      TEXT NOT NULL,
    raised_at   TEXT NOT NULL,
    cleared_at  TEXT
);
INSERT INTO load_exceptions_new (id, load_id, kind, detail, raised_at, cleared_at)
    SELECT id, load_id, kind, detail, raised_at, cleared_at FROM load_exceptions ORDER BY id;
DROP TABLE load_exceptions;
ALTER TABLE load_exceptions_new RENAME TO load_exceptions;
CREATE UNIQUE INDEX load_exceptions_one_open ON load_exceptions (load_id, kind) WHERE cleared_at IS NULL;

ALTER TABLE loads ADD COLUMN packet_noa TEXT;
