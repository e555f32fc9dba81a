-- The result file of a report (every row with its outcome and reason, then notes and totals),
-- stored with the file's record in pieces of a few thousand rows, as the file is applied chunk
-- by chunk in its one transaction: no piece, and no statement, grows with the file. Read back
-- in order after report_files.outcomes (which holds the whole text of files recorded before).
-- Kept in lockstep with migrations/postgres/0013_report_outcome_chunks.sql.
CREATE TABLE report_file_outcomes (
    report_file_id  BIGINT NOT NULL,
    chunk           BIGINT NOT NULL,
    text            TEXT NOT NULL,
    PRIMARY KEY (report_file_id, chunk)
);
