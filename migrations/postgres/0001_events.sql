-- The event log. See docs/adr/0002-event-schema-and-global-feed.md for why each column and index exists.
CREATE TABLE events (
    -- Insertion order. Assigned at insert, so it has holes (rollbacks) and commits out of order:
    -- internal only, never shown to readers.
    seq            BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
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

-- Committed events not yet numbered: the sequencer's work queue. The append inserts into it in the
-- same statement as the events; the sequencer deletes what it numbers. It stays tiny.
CREATE TABLE feed_queue (
    seq BIGINT PRIMARY KEY
);

-- The global feed: a dense, gap-free position for every committed event, assigned after commit by
-- the sequencer. A narrow insert-only table, so numbering never rewrites the (wide) event row.
CREATE TABLE event_positions (
    position BIGINT PRIMARY KEY,
    seq      BIGINT NOT NULL UNIQUE
);

-- Numbers committed events in a stable order. Only one sequencer runs at a time (advisory lock),
-- and each statement below sees everything committed before the lock was granted, so positions are
-- handed out in one place, densely, after commit: a reader of "position > n" can never pass an event
-- that becomes visible later. Feed readers are woken with NOTIFY orders_feed (they also poll).
-- Returns how many events it numbered.
CREATE FUNCTION orders_sequence_events(batch_size INTEGER) RETURNS BIGINT
LANGUAGE plpgsql AS $$
DECLARE
    numbered BIGINT;
BEGIN
    PERFORM pg_advisory_xact_lock(7308733150613716273); -- hash of 'orders.sequencer'
    WITH taken AS (
        DELETE FROM feed_queue
        WHERE seq IN (SELECT seq FROM feed_queue ORDER BY seq LIMIT batch_size)
        RETURNING seq
    ), head AS (
        SELECT COALESCE(MAX(position), 0) AS last FROM event_positions
    )
    INSERT INTO event_positions (position, seq)
    SELECT head.last + row_number() OVER (ORDER BY taken.seq), taken.seq
    FROM taken, head;
    GET DIAGNOSTICS numbered = ROW_COUNT;
    IF numbered > 0 THEN
        PERFORM pg_notify('orders_feed', '');
    END IF;
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
