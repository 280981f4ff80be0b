-- The event log. See docs/adr/0002-event-schema-and-global-feed.md for why each column and index exists.
CREATE TABLE events (
    -- Insertion order. Assigned at insert, so it has holes (rollbacks) and commits out of order:
    -- internal only, never shown to readers.
    seq            BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    -- Dense, gap-free place in the global feed, assigned after commit by the sequencer
    -- (orders_sequence_events). NULL until then.
    position       BIGINT,
    event_id       UUID        NOT NULL,
    aggregate_id   UUID        NOT NULL,
    aggregate_type TEXT        NOT NULL,
    version        BIGINT      NOT NULL CHECK (version > 0),
    event_type     TEXT        NOT NULL,
    schema_version INTEGER     NOT NULL CHECK (schema_version > 0),
    payload        JSONB       NOT NULL,
    metadata       JSONB       NOT NULL,
    recorded_at    TIMESTAMPTZ NOT NULL DEFAULT now(),
    -- Optimistic concurrency: one event per stream version. Also serves every stream load.
    CONSTRAINT events_stream_version_key UNIQUE (aggregate_id, version),
    -- Idempotent appends: an event id is stored once.
    CONSTRAINT events_event_id_key UNIQUE (event_id)
);

-- The feed: read by position. Partial, so an insert (position NULL) does not touch it.
CREATE UNIQUE INDEX events_position_key ON events (position) WHERE position IS NOT NULL;

-- The sequencer's work queue: only rows not yet numbered, so it stays tiny.
CREATE INDEX events_unsequenced_idx ON events (seq) WHERE position IS NULL;

-- Numbers committed events in a stable order. Only one sequencer runs at a time (advisory lock),
-- and each statement below sees everything committed before the lock was granted, so positions are
-- handed out in one place, densely, after commit: a reader of "position > n" can never pass an event
-- that becomes visible later. Returns how many events it numbered.
CREATE FUNCTION orders_sequence_events(batch_size INTEGER) RETURNS BIGINT
LANGUAGE plpgsql AS $$
DECLARE
    numbered BIGINT;
BEGIN
    PERFORM pg_advisory_xact_lock(7308733150613716273); -- hash of 'orders.sequencer'
    WITH head AS (
        SELECT COALESCE(MAX(position), 0) AS last FROM events WHERE position IS NOT NULL
    ), pending AS (
        SELECT seq, row_number() OVER (ORDER BY seq) AS rn
        FROM (SELECT seq FROM events WHERE position IS NULL ORDER BY seq LIMIT batch_size) p
    )
    UPDATE events e
    SET position = head.last + pending.rn
    FROM pending, head
    WHERE e.seq = pending.seq;
    GET DIAGNOSTICS numbered = ROW_COUNT;
    RETURN numbered;
END;
$$;

CREATE TABLE snapshots (
    aggregate_id   UUID PRIMARY KEY,
    aggregate_type TEXT        NOT NULL,
    version        BIGINT      NOT NULL CHECK (version > 0),
    schema_version INTEGER     NOT NULL,
    state          JSONB       NOT NULL,
    taken_at       TIMESTAMPTZ NOT NULL DEFAULT now()
);

-- Responses to requests made with an Idempotency-Key, written in the same statement as the events.
CREATE TABLE idempotency_keys (
    scope        TEXT        NOT NULL,
    key          TEXT        NOT NULL,
    request_hash TEXT        NOT NULL,
    response     JSONB       NOT NULL,
    created_at   TIMESTAMPTZ NOT NULL DEFAULT now(),
    PRIMARY KEY (scope, key)
);
