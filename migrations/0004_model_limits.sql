-- Per-model rate limits (issue 6): requests and tokens per minute across the
-- whole cluster for one model, whoever calls it; 0 = unlimited. Workers each
-- enforce their share, like the key, team and tenant limits.
ALTER TABLE models ADD COLUMN rpm INTEGER NOT NULL DEFAULT 0 CHECK (rpm >= 0);
ALTER TABLE models ADD COLUMN tpm INTEGER NOT NULL DEFAULT 0 CHECK (tpm >= 0);
