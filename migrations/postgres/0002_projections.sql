-- Projections: one row per projection with its durable checkpoint and the generation of tables it
-- writes. The runner locks the row (FOR UPDATE) for each batch, so several service instances never
-- apply the same events twice; a rebuild fills generation n+1 and then switches the row to it.
CREATE TABLE projections (
    name       TEXT PRIMARY KEY,
    generation INTEGER     NOT NULL DEFAULT 1,
    position   BIGINT      NOT NULL DEFAULT 0,
    updated_at TIMESTAMPTZ NOT NULL DEFAULT now()
);

-- Events a projection could not apply, with the error. Visible (CLI, metrics) and retryable.
CREATE TABLE parked_events (
    projection TEXT        NOT NULL,
    position   BIGINT      NOT NULL,
    event_id   UUID        NOT NULL,
    error      TEXT        NOT NULL,
    parked_at  TIMESTAMPTZ NOT NULL DEFAULT now(),
    PRIMARY KEY (projection, position)
);
