-- The console's one-time login links that were used (docs/adr/0018), so that each works once on
-- every instance. Times are seconds since the epoch, the links' own unit. IF NOT EXISTS: before
-- this migration `serve` created the table itself.
CREATE TABLE IF NOT EXISTS console_links (
    link_id    TEXT PRIMARY KEY,
    subject    TEXT NOT NULL,
    used_at    BIGINT NOT NULL,
    expires_at BIGINT NOT NULL
);
