-- Factor statuses and safe provider switching (kept in lockstep with
-- migrations/sqlite/0009_factor_statuses_and_packet_noa.sql):
-- 1. a new exception kind, `unrecognised_status`: the factor said something its status map does
--    not know.
-- 2. `loads.packet_noa`: which provider and which NOA text (sha256) a load's packet was built
--    with. A Queued packet whose mark differs from the subsidiary's current provider and NOA is
--    rebuilt before any batch may take it.

ALTER TABLE load_exceptions DROP CONSTRAINT load_exceptions_kind_check;
ALTER TABLE load_exceptions ADD CONSTRAINT load_exceptions_kind_check
    CHECK (kind IN ('held', 'rejected', 'short_paid', 'credit_declined', 'unrecognised_status'));

ALTER TABLE loads ADD COLUMN packet_noa TEXT;
