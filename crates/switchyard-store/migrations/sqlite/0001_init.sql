-- Switchyard's schema on SQLite: the same tables, keys and indexes as on PostgreSQL.
-- Ids are 16-byte BLOBs (UUID v7, so byte order is time order), timestamps are INTEGER
-- microseconds since the Unix epoch, JSON is TEXT. SQLite has no row-level security: the
-- store adds the tenant filter to every statement, and `tenant_id` leads every key, as on
-- PostgreSQL.

CREATE TABLE tenants (
    id              BLOB PRIMARY KEY,
    slug            TEXT NOT NULL UNIQUE,
    name            TEXT NOT NULL,
    status          TEXT NOT NULL DEFAULT 'active' CHECK (status IN ('active', 'suspended')),
    settings        TEXT NOT NULL DEFAULT '{}',
    agents_version  INTEGER NOT NULL DEFAULT 0,
    created_at      INTEGER NOT NULL
) STRICT;

CREATE TABLE server_secrets (
    name        TEXT PRIMARY KEY,
    value       TEXT NOT NULL,
    created_at  INTEGER NOT NULL
) STRICT;

CREATE TABLE users (
    tenant_id       BLOB NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
    id              BLOB NOT NULL,
    email           TEXT NOT NULL,
    display_name    TEXT,
    role            TEXT NOT NULL CHECK (role IN ('member', 'admin')),
    password_hash   TEXT,
    status          TEXT NOT NULL DEFAULT 'active' CHECK (status IN ('active', 'disabled')),
    created_at      INTEGER NOT NULL,
    PRIMARY KEY (tenant_id, id),
    UNIQUE (tenant_id, email)
) STRICT;

CREATE TABLE api_keys (
    tenant_id       BLOB NOT NULL,
    id              BLOB NOT NULL,
    user_id         BLOB NOT NULL,
    name            TEXT NOT NULL,
    prefix          TEXT NOT NULL,
    secret_hash     BLOB NOT NULL,
    created_at      INTEGER NOT NULL,
    last_used_at    INTEGER,
    revoked_at      INTEGER,
    PRIMARY KEY (tenant_id, id),
    UNIQUE (tenant_id, secret_hash),
    FOREIGN KEY (tenant_id, user_id) REFERENCES users (tenant_id, id) ON DELETE CASCADE
) STRICT;
CREATE INDEX api_keys_user ON api_keys (tenant_id, user_id);

CREATE TABLE agents (
    tenant_id       BLOB NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
    id              BLOB NOT NULL,
    name            TEXT NOT NULL,
    description     TEXT NOT NULL DEFAULT '',
    kind            TEXT NOT NULL CHECK (kind IN ('echo', 'http', 'openai', 'a2a')),
    config          TEXT NOT NULL DEFAULT '{}',
    intents         TEXT NOT NULL DEFAULT '[]',
    keywords        TEXT NOT NULL DEFAULT '[]',
    examples        TEXT NOT NULL DEFAULT '[]',
    enabled         INTEGER NOT NULL DEFAULT 1,
    priority        INTEGER NOT NULL DEFAULT 0,
    is_fallback     INTEGER NOT NULL DEFAULT 0,
    created_at      INTEGER NOT NULL,
    updated_at      INTEGER NOT NULL,
    PRIMARY KEY (tenant_id, id),
    UNIQUE (tenant_id, name)
) STRICT;
CREATE UNIQUE INDEX agents_one_fallback ON agents (tenant_id) WHERE is_fallback AND enabled;

CREATE TABLE conversations (
    tenant_id       BLOB NOT NULL,
    id              BLOB NOT NULL,
    user_id         BLOB NOT NULL,
    title           TEXT,
    primary_intent  TEXT,
    last_agent_id   BLOB,
    message_count   INTEGER NOT NULL DEFAULT 0,
    created_at      INTEGER NOT NULL,
    last_activity   INTEGER NOT NULL,
    PRIMARY KEY (tenant_id, id),
    FOREIGN KEY (tenant_id, user_id) REFERENCES users (tenant_id, id) ON DELETE CASCADE
) STRICT;
CREATE INDEX conversations_user_activity ON conversations (tenant_id, user_id, last_activity DESC, id DESC);
CREATE INDEX conversations_activity ON conversations (tenant_id, last_activity DESC, id DESC);
CREATE INDEX conversations_primary_intent ON conversations (tenant_id, primary_intent);

CREATE TABLE conversation_messages (
    tenant_id           BLOB NOT NULL,
    id                  BLOB NOT NULL,
    conversation_id     BLOB NOT NULL,
    user_message        TEXT NOT NULL,
    agent_response      TEXT,
    intent_category     TEXT,
    intent_confidence   REAL,
    selected_agent_id   BLOB,
    routing             TEXT NOT NULL DEFAULT '{}',
    latency_ms          REAL,
    created_at          INTEGER NOT NULL,
    PRIMARY KEY (tenant_id, id),
    FOREIGN KEY (tenant_id, conversation_id) REFERENCES conversations (tenant_id, id) ON DELETE CASCADE
) STRICT;
CREATE INDEX conversation_messages_conversation ON conversation_messages (tenant_id, conversation_id, created_at, id);
CREATE INDEX conversation_messages_agent ON conversation_messages (tenant_id, selected_agent_id);
CREATE INDEX conversation_messages_intent ON conversation_messages (tenant_id, intent_category);
CREATE INDEX conversation_messages_created ON conversation_messages (tenant_id, created_at);

CREATE TABLE idempotency_keys (
    tenant_id       BLOB NOT NULL,
    user_id         BLOB NOT NULL,
    key             TEXT NOT NULL,
    request_hash    BLOB NOT NULL,
    response        TEXT,
    created_at      INTEGER NOT NULL,
    PRIMARY KEY (tenant_id, user_id, key),
    FOREIGN KEY (tenant_id, user_id) REFERENCES users (tenant_id, id) ON DELETE CASCADE
) STRICT;
CREATE INDEX idempotency_keys_created ON idempotency_keys (tenant_id, created_at);
