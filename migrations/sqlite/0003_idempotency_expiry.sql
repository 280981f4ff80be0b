-- Idempotency records expire (ORDERS_IDEMPOTENCY_RETENTION): the purge finds the oldest through
-- this index, in age order, instead of reading the whole table.
CREATE INDEX idempotency_keys_created_at ON idempotency_keys (created_at);
