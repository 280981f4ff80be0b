-- The sequencer's queue is tiny but churns (every event is inserted and deleted once): vacuum it
-- after a fixed number of dead rows rather than a fraction of its size, so it stays small and its
-- statistics stay true.
ALTER TABLE feed_queue SET (autovacuum_vacuum_scale_factor = 0, autovacuum_vacuum_threshold = 1000,
                            autovacuum_analyze_scale_factor = 0, autovacuum_analyze_threshold = 1000);
