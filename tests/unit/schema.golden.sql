-- table admin_tokens
CREATE TABLE admin_tokens (
    id          TEXT PRIMARY KEY,
    user_id     TEXT NOT NULL REFERENCES admin_users(id) ON DELETE CASCADE,
    sha256      BLOB NOT NULL UNIQUE CHECK (length(sha256) = 32),
    prefix      TEXT NOT NULL,
    created_at  INTEGER NOT NULL,
    expires_at  INTEGER NOT NULL DEFAULT 0,
    revoked_at  INTEGER NOT NULL DEFAULT 0
, last_used_at INTEGER NOT NULL DEFAULT 0);

-- table admin_users
CREATE TABLE admin_users (
    id          TEXT PRIMARY KEY,
    name        TEXT NOT NULL UNIQUE,
    role        TEXT NOT NULL CHECK (role IN ('platform_admin', 'tenant_admin', 'tenant_viewer')),
    tenant_id   TEXT REFERENCES tenants(id) ON DELETE CASCADE,
    disabled    INTEGER NOT NULL DEFAULT 0 CHECK (disabled IN (0, 1)),
    created_at  INTEGER NOT NULL, updated_at INTEGER NOT NULL DEFAULT 0,
    CHECK ((role = 'platform_admin') = (tenant_id IS NULL))
);

-- table api_keys
CREATE TABLE api_keys (
    id              TEXT PRIMARY KEY,
    tenant_id       TEXT NOT NULL REFERENCES tenants(id) ON DELETE CASCADE,
    team_id         TEXT REFERENCES teams(id) ON DELETE CASCADE,
    name            TEXT NOT NULL,
    sha256          BLOB NOT NULL UNIQUE CHECK (length(sha256) = 32),
    prefix          TEXT NOT NULL,
    created_at      INTEGER NOT NULL,
    updated_at      INTEGER NOT NULL,
    expires_at      INTEGER NOT NULL DEFAULT 0,
    revoked_at      INTEGER NOT NULL DEFAULT 0,
    allowed_models  TEXT NOT NULL DEFAULT '[]',  -- JSON array of model ids / aliases
    rpm             INTEGER NOT NULL DEFAULT 0 CHECK (rpm >= 0),
    tpm             INTEGER NOT NULL DEFAULT 0 CHECK (tpm >= 0),
    budget_usd      REAL NOT NULL DEFAULT 0 CHECK (budget_usd >= 0)  -- 0 = none
);

-- table applied_reports
CREATE TABLE applied_reports (
    boot_id TEXT NOT NULL,
    seq INTEGER NOT NULL,
    worker_id TEXT NOT NULL,
    applied_at INTEGER NOT NULL,
    row_count INTEGER NOT NULL,
    PRIMARY KEY (boot_id, seq)
) WITHOUT ROWID;

-- table audit_log
CREATE TABLE audit_log (
    id          INTEGER PRIMARY KEY AUTOINCREMENT,
    ts_ms       INTEGER NOT NULL,
    actor_id    TEXT NOT NULL,
    actor_role  TEXT NOT NULL,
    tenant_id   TEXT,
    action      TEXT NOT NULL,     -- create, update, delete, revoke
    object_type TEXT NOT NULL,
    object_id   TEXT NOT NULL,
    before      TEXT,
    after       TEXT
);

-- table budgets
CREATE TABLE budgets (
    id              TEXT PRIMARY KEY,
    tenant_id       TEXT NOT NULL REFERENCES tenants(id) ON DELETE CASCADE,
    scope           TEXT NOT NULL CHECK (scope IN ('tenant', 'team', 'key')),
    scope_id        TEXT NOT NULL,
    period          TEXT NOT NULL CHECK (period IN ('daily', 'monthly')),
    amount_usd      REAL NOT NULL CHECK (amount_usd >= 0),
    soft_threshold  REAL NOT NULL DEFAULT 0.8 CHECK (soft_threshold >= 0 AND soft_threshold <= 1),
    hard            INTEGER NOT NULL DEFAULT 1 CHECK (hard IN (0, 1)),
    created_at      INTEGER NOT NULL,
    updated_at      INTEGER NOT NULL,
    UNIQUE (scope, scope_id, period)
);

-- table cluster_state
CREATE TABLE cluster_state (
    name TEXT PRIMARY KEY,
    value INTEGER NOT NULL
) WITHOUT ROWID;

-- table model_prices
CREATE TABLE model_prices (
    model_id                TEXT NOT NULL REFERENCES models(id) ON DELETE CASCADE,
    valid_from              INTEGER NOT NULL,
    input_per_mtok          REAL NOT NULL DEFAULT 0 CHECK (input_per_mtok >= 0),
    output_per_mtok         REAL NOT NULL DEFAULT 0 CHECK (output_per_mtok >= 0),
    cached_input_per_mtok   REAL NOT NULL DEFAULT 0 CHECK (cached_input_per_mtok >= 0),
    cache_write_per_mtok    REAL NOT NULL DEFAULT 0 CHECK (cache_write_per_mtok >= 0),
    PRIMARY KEY (model_id, valid_from)
) WITHOUT ROWID;

-- table models
CREATE TABLE models (
    id                  TEXT PRIMARY KEY,
    provider_id         TEXT NOT NULL REFERENCES providers(id) ON DELETE CASCADE,
    upstream_name       TEXT NOT NULL,
    context_window      INTEGER NOT NULL DEFAULT 0,
    default_max_tokens  INTEGER NOT NULL DEFAULT 0,
    capabilities        TEXT NOT NULL DEFAULT '["chat"]',  -- JSON array
    created_at          INTEGER NOT NULL,
    updated_at          INTEGER NOT NULL
, rpm INTEGER NOT NULL DEFAULT 0 CHECK (rpm >= 0), tpm INTEGER NOT NULL DEFAULT 0 CHECK (tpm >= 0));

-- table providers
CREATE TABLE providers (
    id                      TEXT PRIMARY KEY,
    name                    TEXT NOT NULL UNIQUE,
    kind                    TEXT NOT NULL
                            CHECK (kind IN ('openai', 'anthropic', 'gemini', 'openai-compatible')),
    base_url                TEXT NOT NULL,
    credential              BLOB,                    -- sealed (controlplane/secrets.h), NULL = none
    headers                 TEXT NOT NULL DEFAULT '{}',  -- JSON object of extra headers
    connect_timeout_ms      INTEGER NOT NULL DEFAULT 0,
    first_byte_timeout_ms   INTEGER NOT NULL DEFAULT 0,
    total_timeout_ms        INTEGER NOT NULL DEFAULT 0,
    created_at              INTEGER NOT NULL,
    updated_at              INTEGER NOT NULL
);

-- table route_rules
CREATE TABLE route_rules (
    route_id                        TEXT NOT NULL REFERENCES routes(id) ON DELETE CASCADE,
    position                        INTEGER NOT NULL,
    name                            TEXT NOT NULL DEFAULT '',
    task                            TEXT NOT NULL DEFAULT '',
    min_prompt_tokens               INTEGER NOT NULL DEFAULT 0,
    tenant_tier                     TEXT NOT NULL DEFAULT '',
    latency_class                   TEXT NOT NULL DEFAULT '',
    max_budget_remaining_fraction   REAL NOT NULL DEFAULT 0,
    strategy                        TEXT NOT NULL DEFAULT 'priority'
                                    CHECK (strategy IN ('priority', 'weighted', 'lowest-latency',
                                                        'lowest-cost', 'least-busy')),
    PRIMARY KEY (route_id, position)
) WITHOUT ROWID;

-- table route_targets
CREATE TABLE route_targets (
    route_id      TEXT NOT NULL,
    rule_position INTEGER NOT NULL,
    position      INTEGER NOT NULL,
    provider_id   TEXT NOT NULL REFERENCES providers(id) ON DELETE CASCADE,
    model_id      TEXT NOT NULL REFERENCES models(id) ON DELETE CASCADE,
    weight        INTEGER NOT NULL DEFAULT 1 CHECK (weight >= 0),
    PRIMARY KEY (route_id, rule_position, position),
    FOREIGN KEY (route_id, rule_position) REFERENCES route_rules(route_id, position)
        ON DELETE CASCADE
) WITHOUT ROWID;

-- table routes
CREATE TABLE routes (
    id            TEXT PRIMARY KEY,
    alias         TEXT NOT NULL,
    tenant_id     TEXT REFERENCES tenants(id) ON DELETE CASCADE,
    max_attempts  INTEGER NOT NULL DEFAULT 3,
    deadline_ms   INTEGER NOT NULL DEFAULT 0,
    created_at    INTEGER NOT NULL,
    updated_at    INTEGER NOT NULL
);

-- table schema_migrations
CREATE TABLE schema_migrations (version INTEGER PRIMARY KEY, name TEXT NOT NULL, checksum TEXT NOT NULL, applied_at INTEGER NOT NULL);

-- table teams
CREATE TABLE teams (
    id          TEXT PRIMARY KEY,
    tenant_id   TEXT NOT NULL REFERENCES tenants(id) ON DELETE CASCADE,
    name        TEXT NOT NULL,
    blocked     INTEGER NOT NULL DEFAULT 0 CHECK (blocked IN (0, 1)),
    rpm         INTEGER NOT NULL DEFAULT 0 CHECK (rpm >= 0),
    tpm         INTEGER NOT NULL DEFAULT 0 CHECK (tpm >= 0),
    created_at  INTEGER NOT NULL,
    updated_at  INTEGER NOT NULL,
    UNIQUE (tenant_id, name)
);

-- table tenants
CREATE TABLE tenants (
    id          TEXT PRIMARY KEY,
    name        TEXT NOT NULL UNIQUE,
    tier        TEXT NOT NULL DEFAULT 'standard',
    time_zone   TEXT NOT NULL DEFAULT 'UTC',
    blocked     INTEGER NOT NULL DEFAULT 0 CHECK (blocked IN (0, 1)),
    rpm         INTEGER NOT NULL DEFAULT 0 CHECK (rpm >= 0),
    tpm         INTEGER NOT NULL DEFAULT 0 CHECK (tpm >= 0),
    created_at  INTEGER NOT NULL,
    updated_at  INTEGER NOT NULL
);

-- table usage_day
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

-- table usage_hour
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

-- table usage_minute
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

-- index admin_tokens_user
CREATE INDEX admin_tokens_user ON admin_tokens(user_id);

-- index admin_users_tenant
CREATE INDEX admin_users_tenant ON admin_users(tenant_id, id);

-- index api_keys_team
CREATE INDEX api_keys_team ON api_keys(team_id);

-- index api_keys_tenant
CREATE INDEX api_keys_tenant ON api_keys(tenant_id, id);

-- index audit_log_tenant
CREATE INDEX audit_log_tenant ON audit_log(tenant_id, id);

-- index budgets_tenant
CREATE INDEX budgets_tenant ON budgets(tenant_id, id);

-- index models_provider
CREATE INDEX models_provider ON models(provider_id);

-- index routes_alias
CREATE UNIQUE INDEX routes_alias ON routes(alias, ifnull(tenant_id, ''));

-- index routes_tenant
CREATE INDEX routes_tenant ON routes(tenant_id, id);

-- index teams_tenant
CREATE INDEX teams_tenant ON teams(tenant_id, id);

-- index usage_day_tenant
CREATE INDEX usage_day_tenant ON usage_day (tenant_id, bucket);

-- index usage_hour_tenant
CREATE INDEX usage_hour_tenant ON usage_hour (tenant_id, bucket);

-- index usage_minute_tenant
CREATE INDEX usage_minute_tenant ON usage_minute (tenant_id, bucket);

