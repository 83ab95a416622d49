-- Webhooks (issue 10): operators register a URL for `import.completed` and
-- `ai_batch.completed`; each event becomes one delivery row per matching hook,
-- written in the transaction that makes the job or batch final, and a
-- delivery loop POSTs it (signed, retried with backoff, every attempt counted).

-- The init schema reserved `webhooks (id, url, events, secret, created_at)`;
-- `secret` is the HMAC-SHA256 key, shown once at creation and kept in clear
-- because every delivery is signed with it (a hash could not sign).

-- The admin who registered it.
ALTER TABLE webhooks ADD COLUMN owner_id uuid REFERENCES users (id) ON DELETE SET NULL;
ALTER TABLE webhooks ADD CONSTRAINT webhooks_url_check CHECK (url ~* '^https?://');
ALTER TABLE webhooks ADD CONSTRAINT webhooks_events_check CHECK (cardinality(events) > 0);
-- The fan-out asks "which hooks want this event?" with `events @> ARRAY[event]`.
CREATE INDEX webhooks_events_idx ON webhooks USING gin (events);

CREATE TABLE webhook_deliveries (
    id               uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    webhook_id       uuid NOT NULL REFERENCES webhooks (id) ON DELETE CASCADE,
    event            text NOT NULL,
    -- The body POSTed, the same bytes at every attempt.
    payload          jsonb NOT NULL,
    status           text NOT NULL DEFAULT 'pending' CHECK (status IN ('pending', 'delivered', 'failed')),
    attempts         integer NOT NULL DEFAULT 0,
    -- When a pending delivery is due; while an attempt runs, the end of its
    -- lease (a crashed sender's delivery is picked up again after it).
    next_attempt_at  timestamptz NOT NULL DEFAULT now(),
    last_status_code integer,
    last_error       text,
    created_at       timestamptz NOT NULL DEFAULT now(),
    delivered_at     timestamptz
);
CREATE INDEX webhook_deliveries_due_idx ON webhook_deliveries (next_attempt_at) WHERE status = 'pending';
CREATE INDEX webhook_deliveries_hook_idx ON webhook_deliveries (webhook_id, created_at DESC);
