-- A batch's unique id: 16 hex digits from the OS random generator, drawn when the batch is
-- written ahead. Batch numbers start again when the database is replaced (a reset, a restore,
-- a second installation on the same outbox or FTP directory); the uid does not, so batch file
-- names carry it and the outbox manifest names it. Batches written before this migration have
-- none (their files keep the names they were given). Kept in lockstep with the other backend.
ALTER TABLE batches ADD COLUMN uid TEXT;
CREATE UNIQUE INDEX batches_by_uid ON batches (uid);
