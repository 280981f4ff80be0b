-- Projection leases (see the PostgreSQL migration and ADR 0015).
ALTER TABLE projections ADD COLUMN owner TEXT;
ALTER TABLE projections ADD COLUMN epoch INTEGER NOT NULL DEFAULT 0;
ALTER TABLE projections ADD COLUMN lease_until TEXT;
