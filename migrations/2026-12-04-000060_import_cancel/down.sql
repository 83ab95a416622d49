ALTER TABLE import_jobs DROP COLUMN cancel_requested_by;
-- A cancelled job has no status before this migration: it reads as failed.
UPDATE import_jobs SET status = 'error' WHERE status = 'cancelled';
ALTER TABLE import_jobs DROP CONSTRAINT import_jobs_status_check;
ALTER TABLE import_jobs ADD CONSTRAINT import_jobs_status_check
    CHECK (status IN ('pending', 'processing', 'success', 'partial', 'error'));
