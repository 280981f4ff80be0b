-- Projection leases (ADR 0015): with several instances on one database, one instance at a time
-- (the owner) applies a projection's events; the others stand by. A lease lasts until
-- lease_until and is renewed by its owner's batches; a standby takes an expired one, which bumps
-- epoch. Every batch checks owner and epoch with the checkpoint row locked, in the transaction
-- that moves the checkpoint, so an instance that was frozen past its lease cannot write.
ALTER TABLE projections
    ADD COLUMN owner       TEXT,
    ADD COLUMN epoch       BIGINT NOT NULL DEFAULT 0,
    ADD COLUMN lease_until TIMESTAMPTZ;
