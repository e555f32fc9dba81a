-- A lease on a batch being sent: the sender renews it while the transport works; only a
-- batch whose lease expired (its sender died) is reconciled, so a batch another process is
-- sending right now is never taken for a crashed one. Measured on the database clock.
ALTER TABLE batches ADD COLUMN lease_until TIMESTAMPTZ;
