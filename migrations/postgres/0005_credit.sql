-- Broker credit checks: one row per answer a factor gave about a customer, kept forever (the
-- latest per customer and provider is the one that counts). Kept in lockstep with
-- migrations/sqlite/0005_credit.sql.

CREATE TABLE credit_checks (
    id           BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    customer_id  TEXT NOT NULL REFERENCES customers (id),
    provider     TEXT NOT NULL,
    -- Whose credentials asked: the subsidiary does not change what the factor says.
    subsidiary   TEXT NOT NULL,
    result       TEXT NOT NULL CHECK (result IN ('approved', 'declined', 'unknown')),
    -- The factor's own words ("APPROVED", "CALL OFFICE", "NOT APPROVED: ...").
    factor_text  TEXT NOT NULL,
    checked_at   TIMESTAMPTZ NOT NULL,
    -- What asked: `invoice <load>`, `refresh`, `submit`, `command`.
    cause        TEXT NOT NULL
);
CREATE INDEX credit_checks_latest ON credit_checks (customer_id, provider, id);

CREATE FUNCTION credit_checks_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'credit_checks is append-only';
END;
$$;
CREATE TRIGGER credit_checks_no_change BEFORE UPDATE OR DELETE ON credit_checks
    FOR EACH ROW EXECUTE FUNCTION credit_checks_append_only();
