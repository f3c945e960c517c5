-- The tables the earlier single-tenant layout did not have, and row-level security.

-- Secrets the server makes for itself (the JWT signing secret when none is configured).
CREATE TABLE server_secrets (
    name        TEXT PRIMARY KEY,
    value       TEXT NOT NULL,
    created_at  TIMESTAMPTZ NOT NULL
);

CREATE TABLE api_keys (
    tenant_id       UUID NOT NULL,
    id              UUID NOT NULL,
    user_id         UUID NOT NULL,
    name            TEXT NOT NULL,
    prefix          TEXT NOT NULL,
    secret_hash     BYTEA NOT NULL,
    created_at      TIMESTAMPTZ NOT NULL,
    last_used_at    TIMESTAMPTZ,
    revoked_at      TIMESTAMPTZ,
    PRIMARY KEY (tenant_id, id),
    UNIQUE (tenant_id, secret_hash),
    FOREIGN KEY (tenant_id, user_id) REFERENCES users (tenant_id, id) ON DELETE CASCADE
);
CREATE INDEX api_keys_user ON api_keys (tenant_id, user_id);

CREATE TABLE agents (
    tenant_id       UUID NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
    id              UUID NOT NULL,
    name            TEXT NOT NULL,
    description     TEXT NOT NULL DEFAULT '',
    kind            TEXT NOT NULL CHECK (kind IN ('echo', 'http', 'openai', 'a2a')),
    config          JSONB NOT NULL DEFAULT '{}'::jsonb,
    intents         JSONB NOT NULL DEFAULT '[]'::jsonb,
    keywords        JSONB NOT NULL DEFAULT '[]'::jsonb,
    examples        JSONB NOT NULL DEFAULT '[]'::jsonb,
    enabled         BOOLEAN NOT NULL DEFAULT TRUE,
    priority        INTEGER NOT NULL DEFAULT 0,
    is_fallback     BOOLEAN NOT NULL DEFAULT FALSE,
    created_at      TIMESTAMPTZ NOT NULL,
    updated_at      TIMESTAMPTZ NOT NULL,
    PRIMARY KEY (tenant_id, id),
    UNIQUE (tenant_id, name)
);
-- At most one enabled fallback agent per tenant.
CREATE UNIQUE INDEX agents_one_fallback ON agents (tenant_id) WHERE is_fallback AND enabled;

CREATE TABLE idempotency_keys (
    tenant_id       UUID NOT NULL,
    user_id         UUID NOT NULL,
    key             TEXT NOT NULL,
    request_hash    BYTEA NOT NULL,
    response        JSONB,
    created_at      TIMESTAMPTZ NOT NULL,
    PRIMARY KEY (tenant_id, user_id, key),
    FOREIGN KEY (tenant_id, user_id) REFERENCES users (tenant_id, id) ON DELETE CASCADE
);
CREATE INDEX idempotency_keys_created ON idempotency_keys (tenant_id, created_at);

-- Row-level security: the same policy on every tenant-owned table. With no tenant set the
-- setting is NULL or '' and no row matches. FORCE applies it to the table owner too.
DO $$
DECLARE
    t TEXT;
BEGIN
    FOREACH t IN ARRAY ARRAY['users', 'api_keys', 'agents', 'conversations',
                             'conversation_messages', 'idempotency_keys']
    LOOP
        EXECUTE format('ALTER TABLE %I ENABLE ROW LEVEL SECURITY', t);
        EXECUTE format('ALTER TABLE %I FORCE ROW LEVEL SECURITY', t);
        EXECUTE format(
            'CREATE POLICY tenant_isolation ON %I '
            'USING (tenant_id = (SELECT NULLIF(current_setting(''app.tenant_id'', true), '''')::uuid)) '
            'WITH CHECK (tenant_id = (SELECT NULLIF(current_setting(''app.tenant_id'', true), '''')::uuid))',
            t);
    END LOOP;
END
$$;
