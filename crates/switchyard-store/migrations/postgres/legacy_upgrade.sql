-- In-place upgrade of a database of the earlier single-tenant layout (tenants, users,
-- conversations and conversation_messages, the last two without tenant_id) to the state
-- of migration 1. Run by `switchyard migrate` in one transaction with migration 1's
-- record, when it finds that layout. `:default_tenant` is replaced by the tenant for users
-- who have none (DEFAULT_TENANT_SLUG, created if missing).
--
-- The plan: add tenant_id nullable, fill it from the conversation's user (users without a
-- tenant go to the default tenant), messages from their conversation, then NOT NULL, then
-- the keys, indexes and row-level security. Nothing is lost:
-- - ids are kept: the legacy string ids are UUIDs (str(uuid4())) and become UUID columns
--   with the same value (a non-UUID id stops the upgrade, with the transaction rolled back);
-- - users become members without a password; `is_active` becomes `status`;
--   `full_name` becomes `display_name`;
-- - `routing_metadata` becomes `routing`; a legacy `selected_agent_id` (an agent's name, not
--   an id) is kept in the turn's `routing` as `legacy_agent`, and `selected_agent_id` is
--   left null;
-- - `message_count` is counted, `last_agent_id` stays null (legacy agents have no ids).

-- Tenants: the one global table gains its new columns; the default tenant exists.
ALTER TABLE tenants
    ALTER COLUMN slug TYPE TEXT,
    ALTER COLUMN name TYPE TEXT,
    ADD COLUMN status TEXT NOT NULL DEFAULT 'active' CHECK (status IN ('active', 'suspended')),
    ADD COLUMN settings JSONB NOT NULL DEFAULT '{}'::jsonb,
    ADD COLUMN agents_version BIGINT NOT NULL DEFAULT 0;
ALTER TABLE tenants ALTER COLUMN created_at DROP DEFAULT;
INSERT INTO tenants (id, slug, name, created_at)
    SELECT gen_random_uuid(), :default_tenant, :default_tenant, now()
    WHERE NOT EXISTS (SELECT 1 FROM tenants WHERE slug = :default_tenant);

-- Users: every user in a tenant.
UPDATE users SET tenant_id = (SELECT id FROM tenants WHERE slug = :default_tenant) WHERE tenant_id IS NULL;
ALTER TABLE users DROP CONSTRAINT users_tenant_id_fkey;
ALTER TABLE users DROP CONSTRAINT users_email_key;
ALTER TABLE users DROP CONSTRAINT users_pkey CASCADE;
ALTER TABLE users
    ALTER COLUMN tenant_id SET NOT NULL,
    ALTER COLUMN email TYPE TEXT,
    ALTER COLUMN full_name TYPE TEXT,
    ADD COLUMN role TEXT NOT NULL DEFAULT 'member' CHECK (role IN ('member', 'admin')),
    ADD COLUMN password_hash TEXT,
    ADD COLUMN status TEXT NOT NULL DEFAULT 'active' CHECK (status IN ('active', 'disabled'));
ALTER TABLE users RENAME COLUMN full_name TO display_name;
UPDATE users SET status = CASE WHEN is_active THEN 'active' ELSE 'disabled' END, email = lower(email);
ALTER TABLE users DROP COLUMN is_active;
ALTER TABLE users ALTER COLUMN role DROP DEFAULT, ALTER COLUMN created_at DROP DEFAULT;
ALTER TABLE users ADD CONSTRAINT users_pkey PRIMARY KEY (tenant_id, id);
ALTER TABLE users ADD CONSTRAINT users_tenant_id_email_key UNIQUE (tenant_id, email);
ALTER TABLE users ADD CONSTRAINT users_tenant_id_fkey FOREIGN KEY (tenant_id) REFERENCES tenants (id) ON DELETE CASCADE;

-- Conversations: tenant from their user; ids become UUIDs.
ALTER TABLE conversation_messages DROP CONSTRAINT conversation_messages_conversation_id_fkey;
ALTER TABLE conversations DROP CONSTRAINT conversations_pkey;
DROP INDEX idx_conversations_user;
ALTER TABLE conversations ADD COLUMN tenant_id UUID;
UPDATE conversations c SET tenant_id = u.tenant_id FROM users u WHERE u.id = c.user_id;
ALTER TABLE conversations
    ALTER COLUMN tenant_id SET NOT NULL,
    ALTER COLUMN id TYPE UUID USING id::uuid,
    ALTER COLUMN title TYPE TEXT,
    ALTER COLUMN primary_intent TYPE TEXT,
    ALTER COLUMN created_at DROP DEFAULT,
    ALTER COLUMN last_activity DROP DEFAULT,
    ADD COLUMN last_agent_id UUID,
    ADD COLUMN message_count BIGINT NOT NULL DEFAULT 0;
ALTER TABLE conversations ADD CONSTRAINT conversations_pkey PRIMARY KEY (tenant_id, id);
ALTER TABLE conversations ADD CONSTRAINT conversations_tenant_id_user_id_fkey
    FOREIGN KEY (tenant_id, user_id) REFERENCES users (tenant_id, id) ON DELETE CASCADE;

-- Messages: tenant from their conversation; the routing record keeps the legacy agent name.
ALTER TABLE conversation_messages DROP CONSTRAINT conversation_messages_pkey;
DROP INDEX idx_conv_messages_conv;
ALTER TABLE conversation_messages ADD COLUMN tenant_id UUID;
ALTER TABLE conversation_messages
    ALTER COLUMN id TYPE UUID USING id::uuid,
    ALTER COLUMN conversation_id TYPE UUID USING conversation_id::uuid;
UPDATE conversation_messages m SET tenant_id = c.tenant_id FROM conversations c WHERE c.id = m.conversation_id;
ALTER TABLE conversation_messages RENAME COLUMN routing_metadata TO routing;
UPDATE conversation_messages SET routing = CASE
    WHEN selected_agent_id IS NULL THEN COALESCE(routing, '{}'::jsonb)
    ELSE COALESCE(routing, '{}'::jsonb) || jsonb_build_object('legacy_agent', selected_agent_id)
END;
ALTER TABLE conversation_messages RENAME COLUMN selected_agent_id TO legacy_selected_agent;
ALTER TABLE conversation_messages
    ALTER COLUMN tenant_id SET NOT NULL,
    ALTER COLUMN intent_category TYPE TEXT,
    ALTER COLUMN routing SET DEFAULT '{}'::jsonb,
    ALTER COLUMN routing SET NOT NULL,
    ALTER COLUMN created_at DROP DEFAULT,
    ADD COLUMN selected_agent_id UUID,
    ADD COLUMN latency_ms DOUBLE PRECISION;
ALTER TABLE conversation_messages DROP COLUMN legacy_selected_agent;
ALTER TABLE conversation_messages ADD CONSTRAINT conversation_messages_pkey PRIMARY KEY (tenant_id, id);
ALTER TABLE conversation_messages ADD CONSTRAINT conversation_messages_tenant_id_conversation_id_fkey
    FOREIGN KEY (tenant_id, conversation_id) REFERENCES conversations (tenant_id, id) ON DELETE CASCADE;

-- The derived columns.
UPDATE conversations c SET message_count = (
    SELECT count(*) FROM conversation_messages m WHERE m.tenant_id = c.tenant_id AND m.conversation_id = c.id
);

-- The indexes of migration 1.
CREATE INDEX conversations_user_activity ON conversations (tenant_id, user_id, last_activity DESC, id DESC);
CREATE INDEX conversations_activity ON conversations (tenant_id, last_activity DESC, id DESC);
CREATE INDEX conversations_primary_intent ON conversations (tenant_id, primary_intent);
CREATE INDEX conversation_messages_conversation ON conversation_messages (tenant_id, conversation_id, created_at, id);
CREATE INDEX conversation_messages_agent ON conversation_messages (tenant_id, selected_agent_id);
CREATE INDEX conversation_messages_intent ON conversation_messages (tenant_id, intent_category);
CREATE INDEX conversation_messages_created ON conversation_messages (tenant_id, created_at);
