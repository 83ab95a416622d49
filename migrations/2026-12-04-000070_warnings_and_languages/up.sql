-- Warnings are kept beside errors (issue 19): a row whose value was
-- normalised with a loss is imported and keeps a `warning` line. Messages are
-- stored in French (`message`, the default) and English (`message_en`); rows
-- written before this migration have only `message`, read for both.
ALTER TABLE import_errors
    ADD COLUMN severity text NOT NULL DEFAULT 'error' CHECK (severity IN ('error', 'warning')),
    ADD COLUMN message_en text;

ALTER TABLE import_jobs
    ADD COLUMN warning_rows bigint NOT NULL DEFAULT 0,
    ADD COLUMN last_error_en text;
