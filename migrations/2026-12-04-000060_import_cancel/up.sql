-- Cancelling an import (docs/imports.md, "Cancel").

-- `cancelled` is a final status: a job cancelled while pending never starts;
-- a running one ends so at its next batch commit, its committed rows kept.
ALTER TABLE import_jobs DROP CONSTRAINT import_jobs_status_check;
ALTER TABLE import_jobs ADD CONSTRAINT import_jobs_status_check
    CHECK (status IN ('pending', 'processing', 'success', 'partial', 'error', 'cancelled'));

-- Who asked to cancel (the user's name then); null when nobody did. On a job
-- a worker is running, the request itself: the worker reads it in the
-- transaction of each batch commit and stops there. One column, not a
-- timestamp beside it: diesel's table! takes 32 columns and this is the 32nd.
ALTER TABLE import_jobs ADD COLUMN cancel_requested_by text;
