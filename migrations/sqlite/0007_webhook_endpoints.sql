-- Webhook endpoints (see the PostgreSQL migration and docs/adr/0024-webhook-delivery.md).
CREATE TABLE webhook_endpoints (
    endpoint_id     TEXT    PRIMARY KEY,
    url             TEXT    NOT NULL,
    description     TEXT    NOT NULL DEFAULT '',
    event_types     TEXT,
    customer_id     TEXT,
    state           TEXT    NOT NULL CHECK (state IN ('active', 'paused', 'failing')),
    secret          BLOB    NOT NULL,
    previous_secret BLOB,
    previous_until  TEXT,
    master_key_id   TEXT    NOT NULL,
    created_at      TEXT    NOT NULL,
    created_by      TEXT    NOT NULL,
    delivered       INTEGER NOT NULL DEFAULT 0,
    last_success_at TEXT,
    failing_since   TEXT,
    attempts        INTEGER NOT NULL DEFAULT 0,
    next_attempt_at TEXT,
    last_attempt_at TEXT,
    last_status     INTEGER,
    last_error      TEXT
) STRICT;
