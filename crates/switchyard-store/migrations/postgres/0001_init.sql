-- Switchyard's schema. `tenants` is the one global table; every other table is owned by a
-- tenant: `tenant_id` leads its primary key, every unique constraint and every foreign key
-- (so a row can never point at another tenant's row, and the tables can be distributed
-- and co-located by tenant_id with Citus), and row-level security confines every query of
-- the application role to the tenant named by `app.tenant_id` (set per transaction).

CREATE TABLE tenants (
    id              UUID PRIMARY KEY,
    slug            TEXT NOT NULL UNIQUE,
    name            TEXT NOT NULL,
    status          TEXT NOT NULL DEFAULT 'active' CHECK (status IN ('active', 'suspended')),
    settings        JSONB NOT NULL DEFAULT '{}'::jsonb,
    agents_version  BIGINT NOT NULL DEFAULT 0,
    created_at      TIMESTAMPTZ NOT NULL
);

-- Secrets the server makes for itself (the JWT signing secret when none is configured).
CREATE TABLE server_secrets (
    name        TEXT PRIMARY KEY,
    value       TEXT NOT NULL,
    created_at  TIMESTAMPTZ NOT NULL
);

CREATE TABLE users (
    tenant_id       UUID NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
    id              UUID NOT NULL,
    email           TEXT NOT NULL,
    display_name    TEXT,
    role            TEXT NOT NULL CHECK (role IN ('member', 'admin')),
    password_hash   TEXT,
    status          TEXT NOT NULL DEFAULT 'active' CHECK (status IN ('active', 'disabled')),
    created_at      TIMESTAMPTZ NOT NULL,
    PRIMARY KEY (tenant_id, id),
    UNIQUE (tenant_id, email)
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

-- last_agent_id and selected_agent_id deliberately have no foreign key: a turn records
-- which agent answered, and that record outlives the agent (deleting an agent must neither
-- rewrite nor lose history).
CREATE TABLE conversations (
    tenant_id       UUID NOT NULL,
    id              UUID NOT NULL,
    user_id         UUID NOT NULL,
    title           TEXT,
    primary_intent  TEXT,
    last_agent_id   UUID,
    message_count   BIGINT NOT NULL DEFAULT 0,
    created_at      TIMESTAMPTZ NOT NULL,
    last_activity   TIMESTAMPTZ NOT NULL,
    PRIMARY KEY (tenant_id, id),
    FOREIGN KEY (tenant_id, user_id) REFERENCES users (tenant_id, id) ON DELETE CASCADE
);
-- The caller's list, latest activity first (also serves the original (tenant_id, user_id)).
CREATE INDEX conversations_user_activity ON conversations (tenant_id, user_id, last_activity DESC, id DESC);
-- An admin's list of the whole tenant (also serves the original (tenant_id, last_activity)).
CREATE INDEX conversations_activity ON conversations (tenant_id, last_activity DESC, id DESC);
CREATE INDEX conversations_primary_intent ON conversations (tenant_id, primary_intent);

CREATE TABLE conversation_messages (
    tenant_id           UUID NOT NULL,
    id                  UUID NOT NULL,
    conversation_id     UUID NOT NULL,
    user_message        TEXT NOT NULL,
    agent_response      TEXT,
    intent_category     TEXT,
    intent_confidence   DOUBLE PRECISION,
    selected_agent_id   UUID,
    routing             JSONB NOT NULL DEFAULT '{}'::jsonb,
    latency_ms          DOUBLE PRECISION,
    created_at          TIMESTAMPTZ NOT NULL,
    PRIMARY KEY (tenant_id, id),
    FOREIGN KEY (tenant_id, conversation_id) REFERENCES conversations (tenant_id, id) ON DELETE CASCADE
);
-- History loads and pages of one conversation, oldest first (also serves the original
-- (tenant_id, conversation_id) and the cascade from conversations).
CREATE INDEX conversation_messages_conversation ON conversation_messages (tenant_id, conversation_id, created_at, id);
CREATE INDEX conversation_messages_agent ON conversation_messages (tenant_id, selected_agent_id);
CREATE INDEX conversation_messages_intent ON conversation_messages (tenant_id, intent_category);
-- Retention and analytics by time.
CREATE INDEX conversation_messages_created ON conversation_messages (tenant_id, created_at);

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
