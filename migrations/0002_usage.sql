-- Usage accounting: rollups per minute, hour and day, the ids of the usage
-- reports already applied (exactly-once), and the cluster's persistent state.
--
-- A rollup row is keyed by (bucket, tenant, team, key, route, provider, model);
-- bucket is the unix second at which the minute, hour or UTC day starts.
-- Empty strings stand for "none" so the key columns can be NOT NULL and part
-- of the primary key. cost_usd is computed by the control plane from the
-- tokens and the price valid at the row's minute (controlplane/reports.c).

CREATE TABLE usage_minute (
    bucket INTEGER NOT NULL,
    tenant_id TEXT NOT NULL,
    team_id TEXT NOT NULL DEFAULT '',
    key_id TEXT NOT NULL DEFAULT '',
    route TEXT NOT NULL DEFAULT '',
    provider_id TEXT NOT NULL DEFAULT '',
    model_id TEXT NOT NULL DEFAULT '',
    requests INTEGER NOT NULL DEFAULT 0,
    errors INTEGER NOT NULL DEFAULT 0,
    prompt_tokens INTEGER NOT NULL DEFAULT 0,
    completion_tokens INTEGER NOT NULL DEFAULT 0,
    cached_tokens INTEGER NOT NULL DEFAULT 0,
    cache_write_tokens INTEGER NOT NULL DEFAULT 0,
    estimated_requests INTEGER NOT NULL DEFAULT 0,
    cost_usd REAL NOT NULL DEFAULT 0,
    PRIMARY KEY (bucket, tenant_id, team_id, key_id, route, provider_id, model_id)
) WITHOUT ROWID;

CREATE TABLE usage_hour (
    bucket INTEGER NOT NULL,
    tenant_id TEXT NOT NULL,
    team_id TEXT NOT NULL DEFAULT '',
    key_id TEXT NOT NULL DEFAULT '',
    route TEXT NOT NULL DEFAULT '',
    provider_id TEXT NOT NULL DEFAULT '',
    model_id TEXT NOT NULL DEFAULT '',
    requests INTEGER NOT NULL DEFAULT 0,
    errors INTEGER NOT NULL DEFAULT 0,
    prompt_tokens INTEGER NOT NULL DEFAULT 0,
    completion_tokens INTEGER NOT NULL DEFAULT 0,
    cached_tokens INTEGER NOT NULL DEFAULT 0,
    cache_write_tokens INTEGER NOT NULL DEFAULT 0,
    estimated_requests INTEGER NOT NULL DEFAULT 0,
    cost_usd REAL NOT NULL DEFAULT 0,
    PRIMARY KEY (bucket, tenant_id, team_id, key_id, route, provider_id, model_id)
) WITHOUT ROWID;

CREATE TABLE usage_day (
    bucket INTEGER NOT NULL,
    tenant_id TEXT NOT NULL,
    team_id TEXT NOT NULL DEFAULT '',
    key_id TEXT NOT NULL DEFAULT '',
    route TEXT NOT NULL DEFAULT '',
    provider_id TEXT NOT NULL DEFAULT '',
    model_id TEXT NOT NULL DEFAULT '',
    requests INTEGER NOT NULL DEFAULT 0,
    errors INTEGER NOT NULL DEFAULT 0,
    prompt_tokens INTEGER NOT NULL DEFAULT 0,
    completion_tokens INTEGER NOT NULL DEFAULT 0,
    cached_tokens INTEGER NOT NULL DEFAULT 0,
    cache_write_tokens INTEGER NOT NULL DEFAULT 0,
    estimated_requests INTEGER NOT NULL DEFAULT 0,
    cost_usd REAL NOT NULL DEFAULT 0,
    PRIMARY KEY (bucket, tenant_id, team_id, key_id, route, provider_id, model_id)
) WITHOUT ROWID;

-- Lookups by tenant over a period (the usage API and budget spend).
CREATE INDEX usage_minute_tenant ON usage_minute (tenant_id, bucket);
CREATE INDEX usage_hour_tenant ON usage_hour (tenant_id, bucket);
CREATE INDEX usage_day_tenant ON usage_day (tenant_id, bucket);

-- One row per applied UsageReport, written in the transaction that applies
-- it; a report whose (boot_id, seq) is here is acknowledged, not applied.
CREATE TABLE applied_reports (
    boot_id TEXT NOT NULL,
    seq INTEGER NOT NULL,
    worker_id TEXT NOT NULL,
    applied_at INTEGER NOT NULL,
    row_count INTEGER NOT NULL,
    PRIMARY KEY (boot_id, seq)
) WITHOUT ROWID;

-- Small persistent key/value state of the cluster channels (the last
-- snapshot version, so versions keep increasing across restarts).
CREATE TABLE cluster_state (
    name TEXT PRIMARY KEY,
    value INTEGER NOT NULL
) WITHOUT ROWID;
