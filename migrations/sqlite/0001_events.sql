-- The event log (SQLite). SQLite has one writer at a time, so a position taken inside the write
-- transaction is already in commit order: it is assigned at insert, dense, with no sequencer.
-- UUIDs are stored as hyphenated text so the file reads well in the sqlite3 shell.
CREATE TABLE events (
    position       INTEGER PRIMARY KEY AUTOINCREMENT,
    event_id       TEXT    NOT NULL UNIQUE,
    aggregate_id   TEXT    NOT NULL,
    aggregate_type TEXT    NOT NULL,
    version        INTEGER NOT NULL CHECK (version > 0),
    event_type     TEXT    NOT NULL,
    schema_version INTEGER NOT NULL CHECK (schema_version > 0),
    payload        TEXT    NOT NULL,
    metadata       TEXT    NOT NULL,
    recorded_at    TEXT    NOT NULL,
    UNIQUE (aggregate_id, version)
) STRICT;

CREATE TABLE snapshots (
    aggregate_id   TEXT PRIMARY KEY,
    aggregate_type TEXT    NOT NULL,
    version        INTEGER NOT NULL CHECK (version > 0),
    schema_version INTEGER NOT NULL,
    state          TEXT    NOT NULL,
    taken_at       TEXT    NOT NULL
) STRICT;

CREATE TABLE idempotency_keys (
    scope        TEXT NOT NULL,
    key          TEXT NOT NULL,
    request_hash TEXT NOT NULL,
    response     TEXT NOT NULL,
    created_at   TEXT NOT NULL,
    PRIMARY KEY (scope, key)
) STRICT;
