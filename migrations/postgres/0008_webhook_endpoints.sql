-- Webhook endpoints (docs/adr/0024-webhook-delivery.md). An endpoint's delivery checkpoint and
-- its lease are its row in `projections`, named `webhook:<endpoint_id>`: the same fenced leases
-- the read models use, so one instance at a time delivers to it. The signing secret is wrapped
-- under the master key, as the customers' data keys are; a rotation keeps the previous one valid
-- until previous_until, and deliveries carry both signatures until then.
CREATE TABLE webhook_endpoints (
    endpoint_id     UUID        PRIMARY KEY,
    url             TEXT        NOT NULL,
    description     TEXT        NOT NULL DEFAULT '',
    event_types     JSONB,       -- NULL: every event type
    customer_id     UUID,        -- NULL: every customer's orders
    state           TEXT        NOT NULL CHECK (state IN ('active', 'paused', 'failing')),
    secret          BYTEA       NOT NULL,
    previous_secret BYTEA,
    previous_until  TIMESTAMPTZ,
    master_key_id   TEXT        NOT NULL,
    created_at      TIMESTAMPTZ NOT NULL,
    created_by      TEXT        NOT NULL,
    delivered       BIGINT      NOT NULL DEFAULT 0,
    last_success_at TIMESTAMPTZ,
    failing_since   TIMESTAMPTZ, -- first failed attempt at the event it is stuck on
    attempts        BIGINT      NOT NULL DEFAULT 0,
    next_attempt_at TIMESTAMPTZ,
    last_attempt_at TIMESTAMPTZ,
    last_status     INTEGER,
    last_error      TEXT
);
