-- Projections: checkpoint and table generation per projection (see the PostgreSQL migration).
CREATE TABLE projections (
    name       TEXT PRIMARY KEY,
    generation INTEGER NOT NULL DEFAULT 1,
    position   INTEGER NOT NULL DEFAULT 0,
    updated_at TEXT    NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now'))
) STRICT;

CREATE TABLE parked_events (
    projection TEXT    NOT NULL,
    position   INTEGER NOT NULL,
    event_id   TEXT    NOT NULL,
    error      TEXT    NOT NULL,
    parked_at  TEXT    NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now')),
    PRIMARY KEY (projection, position)
) STRICT;
