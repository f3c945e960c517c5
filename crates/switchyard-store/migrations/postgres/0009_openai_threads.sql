-- Conversations of the OpenAI door (docs/integrations.md): `thread_key` is a hash of the
-- thread's messages as the client holds them after a turn (the user's, with the answer), by
-- which a client that resends the growing history continues the same conversation. A
-- conversation with a thread key was made through the door and counts toward no
-- conversation limit: COUNT_FOR_LIMITS counts the others only, through partial indexes, so
-- that a script's thousand calls through the door never lock its user out of /v1/chat.
--
-- A conversation of the door has a thread key from its first row (an empty one until its
-- first answer's hash is set), so it is never counted, not even for a moment; a conversation
-- of /v1/chat never gets one, even when the door continues it by its header, so it cannot be
-- taken out of the count.
--
-- The column comes without a default (no table rewrite); the indexes are built once, holding
-- the table's write lock meanwhile (docs/operations.md has the time it takes).
-- switchyard_count_for_limits and switchyard_write_new_turn are made again with the new
-- statements, word for word the store's (a test checks it): limits below zero are the door's
-- conversation, which takes no lock, counts nothing and is inserted with its empty key.

ALTER TABLE conversations ADD COLUMN thread_key TEXT;
CREATE INDEX conversations_thread ON conversations (tenant_id, user_id, thread_key) WHERE thread_key IS NOT NULL;
CREATE INDEX conversations_chat_user ON conversations (tenant_id, user_id) WHERE thread_key IS NULL;
CREATE INDEX conversations_chat ON conversations (tenant_id) WHERE thread_key IS NULL;

-- COUNT_FOR_LIMITS
-- The user's and the tenant's conversations made through /v1/chat, each counted only up to
-- its limit ($3 per user, $4 per tenant).
CREATE OR REPLACE FUNCTION switchyard_count_for_limits(uuid, uuid, bigint, bigint)
RETURNS TABLE (per_user bigint, per_tenant bigint)
LANGUAGE plpgsql VOLATILE AS $fn$
BEGIN
    PERFORM set_config('app.tenant_id', $1::text, true);
    RETURN QUERY SELECT (SELECT count(*) FROM (SELECT 1 FROM conversations WHERE tenant_id = $1 AND user_id = $2 AND thread_key IS NULL LIMIT $3) u), (SELECT count(*) FROM (SELECT 1 FROM conversations WHERE tenant_id = $1 AND thread_key IS NULL LIMIT $4) t);
END
$fn$;

-- WRITE_NEW_TURN
CREATE OR REPLACE FUNCTION switchyard_write_new_turn(uuid, uuid, uuid, timestamptz, text, uuid, uuid, text, text, double precision, json, double precision, text, double precision, boolean, text, bigint, bigint, bigint)
RETURNS TABLE (tenant_id uuid, id uuid, user_id uuid, title text, primary_intent text, last_agent_id uuid, message_count bigint, created_at timestamptz, last_activity timestamptz, t_id uuid)
LANGUAGE plpgsql VOLATILE AS $fn$
#variable_conflict use_column
DECLARE
    per_user bigint;
    per_tenant bigint;
BEGIN
    PERFORM set_config('app.tenant_id', $1::text, true);
    IF $17 >= 0 THEN
        PERFORM pg_advisory_xact_lock($19);
        SELECT l.per_user, l.per_tenant INTO per_user, per_tenant FROM switchyard_count_for_limits($1, $3, $17, $18) l;
        IF per_user >= $17 THEN
            RAISE EXCEPTION 'per_user' USING ERRCODE = 'SYL01';
        END IF;
        IF per_tenant >= $18 THEN
            RAISE EXCEPTION 'per_tenant' USING ERRCODE = 'SYL01';
        END IF;
    END IF;
    -- INSERT_CONVERSATION
    INSERT INTO conversations (tenant_id, id, user_id, title, primary_intent, last_agent_id, message_count, created_at, last_activity, thread_key) VALUES ($1, $2, $3, $16, NULL, NULL, 0, $4, $4, CASE WHEN $17 < 0 THEN '' END);
    -- WRITE_TURN
    RETURN QUERY WITH c AS (UPDATE conversations SET last_activity = CASE WHEN last_activity > $4 THEN last_activity ELSE $4 END, message_count = message_count + 1, primary_intent = COALESCE(primary_intent, $5), last_agent_id = COALESCE($6, last_agent_id) WHERE tenant_id = $1 AND id = $2 AND user_id = $3 RETURNING tenant_id, id, user_id, title, primary_intent, last_agent_id, message_count, created_at, last_activity), t AS (INSERT INTO conversation_messages (tenant_id, id, conversation_id, user_message, agent_response, intent_category, intent_confidence, selected_agent_id, routing, latency_ms, created_at, routing_method, routing_confidence, fallback_used) SELECT c.tenant_id, $7, c.id, $8, $9, $5, $10, $6, $11, $12, $4, $13, $14, $15 FROM c RETURNING id) SELECT c.tenant_id, c.id, c.user_id, c.title, c.primary_intent, c.last_agent_id, c.message_count, c.created_at, c.last_activity, t.id AS t_id FROM c CROSS JOIN t;
END
$fn$;
