DROP INDEX outbox_sent_at_idx;
DROP INDEX outbox_unsent_idx;
CREATE INDEX outbox_unsent_idx ON outbox (id) WHERE sent_at IS NULL;
ALTER TABLE outbox DROP COLUMN failed_at;
ALTER TABLE ai_tasks DROP COLUMN lost_workers;
ALTER TABLE ai_tasks DROP COLUMN lease_expires_at;
ALTER TABLE ai_tasks DROP COLUMN lease_owner;
ALTER TABLE import_jobs DROP COLUMN run_ms;
ALTER TABLE import_jobs DROP COLUMN lost_workers;
