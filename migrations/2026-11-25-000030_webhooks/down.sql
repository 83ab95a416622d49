DROP TABLE IF EXISTS webhook_deliveries;
DROP INDEX IF EXISTS webhooks_events_idx;
ALTER TABLE webhooks DROP CONSTRAINT IF EXISTS webhooks_events_check;
ALTER TABLE webhooks DROP CONSTRAINT IF EXISTS webhooks_url_check;
ALTER TABLE webhooks DROP COLUMN IF EXISTS owner_id;
