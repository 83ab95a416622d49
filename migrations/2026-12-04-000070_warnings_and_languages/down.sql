DELETE FROM import_errors WHERE severity = 'warning';
ALTER TABLE import_errors DROP COLUMN severity, DROP COLUMN message_en;
ALTER TABLE import_jobs DROP COLUMN warning_rows, DROP COLUMN last_error_en;
