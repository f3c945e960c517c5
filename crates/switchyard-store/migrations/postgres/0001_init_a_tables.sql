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

