-- Every job ends (docs/reliability.md, "The final-state rule").

-- Takeovers of an expired lease: each one is a worker that died holding the
-- job. Past the limit the job ends `error` with `worker_lost` instead of
-- crash-looping until the broker drops its message.
ALTER TABLE import_jobs ADD COLUMN lost_workers integer NOT NULL DEFAULT 0;
-- Time spent running, summed over attempts at every checkpoint: the soft
-- time limit counts this, not time spent waiting in a queue.
ALTER TABLE import_jobs ADD COLUMN run_ms bigint NOT NULL DEFAULT 0;

-- The AI task claim takes a lease too, so a duplicate delivery of a task
-- being generated waits instead of calling the provider a second time.
ALTER TABLE ai_tasks ADD COLUMN lease_owner text;
ALTER TABLE ai_tasks ADD COLUMN lease_expires_at timestamptz;
ALTER TABLE ai_tasks ADD COLUMN lost_workers integer NOT NULL DEFAULT 0;

-- A row the broker refuses (unroutable) is set aside with its reason so the
-- rows behind it flow; sent rows are deleted by the cleanup.
ALTER TABLE outbox ADD COLUMN failed_at timestamptz;
DROP INDEX outbox_unsent_idx;
CREATE INDEX outbox_unsent_idx ON outbox (id) WHERE sent_at IS NULL AND failed_at IS NULL;
CREATE INDEX outbox_sent_at_idx ON outbox (sent_at) WHERE sent_at IS NOT NULL;
-- The set-aside count, sampled every 15 s by each relay.
CREATE INDEX outbox_failed_idx ON outbox (id) WHERE failed_at IS NOT NULL;
