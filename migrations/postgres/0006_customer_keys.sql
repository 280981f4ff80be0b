-- Each customer's data key, wrapped under the master key (docs/adr/0016). Forgetting a customer
-- destroys its key (wrapped_key NULL) and records when and by whom. IF NOT EXISTS: before this
-- migration `serve` created the table itself.
CREATE TABLE IF NOT EXISTS customer_keys (
    customer_id   UUID PRIMARY KEY,
    wrapped_key   BYTEA,
    master_key_id TEXT,
    created_at    TIMESTAMPTZ NOT NULL DEFAULT now(),
    forgotten_at  TIMESTAMPTZ,
    forgotten_by  TEXT
);

-- Keeps "forgotten since" (every instance polls it to drop cached keys) an index range scan.
CREATE INDEX IF NOT EXISTS customer_keys_forgotten
    ON customer_keys (forgotten_at) WHERE forgotten_at IS NOT NULL;
