-- The hot paths in one round trip each. Every scoped operation must run with
-- app.tenant_id set in its transaction; for a single statement, these functions do exactly
-- that inside the statement's own (implicit) transaction: the first thing each does is
-- set_config('app.tenant_id', $1, true) -- transaction-local, gone when the statement ends --
-- then it runs the statement the store would otherwise run after a separate BEGIN and
-- set_config. Row-level security applies as always: the functions run as their caller (the
-- application role), not as their owner.
--
-- Each body is, word for word, the statement of the same name in the store's `statements`
-- module (a test checks it), so the query-plan tests of those statements cover these too.
-- `#variable_conflict use_column`: the output columns share names with table columns; the
-- statements mean the table columns.

-- FIND_PRINCIPAL
CREATE FUNCTION switchyard_find_principal(uuid, uuid)
RETURNS TABLE (tenant_id uuid, id uuid, email text, display_name text, role text, status text, created_at timestamptz, t_slug text, t_name text, t_status text, t_settings jsonb, t_agents_version bigint, t_created_at timestamptz, password_hash text)
LANGUAGE plpgsql VOLATILE AS $fn$
#variable_conflict use_column
BEGIN
    PERFORM set_config('app.tenant_id', $1::text, true);
    RETURN QUERY SELECT u.tenant_id, u.id, u.email, u.display_name, u.role, u.status, u.created_at, t.slug AS t_slug, t.name AS t_name, t.status AS t_status, t.settings AS t_settings, t.agents_version AS t_agents_version, t.created_at AS t_created_at, CAST(NULL AS TEXT) AS password_hash FROM users u JOIN tenants t ON t.id = u.tenant_id WHERE u.tenant_id = $1 AND u.id = $2;
END
$fn$;

-- LIST_USER_CONVERSATIONS
CREATE FUNCTION switchyard_list_user_conversations(uuid, uuid, timestamptz, uuid, bigint)
RETURNS TABLE (tenant_id uuid, id uuid, user_id uuid, title text, primary_intent text, last_agent_id uuid, message_count bigint, created_at timestamptz, last_activity timestamptz)
LANGUAGE plpgsql VOLATILE AS $fn$
#variable_conflict use_column
BEGIN
    PERFORM set_config('app.tenant_id', $1::text, true);
    RETURN QUERY SELECT tenant_id, id, user_id, title, primary_intent, last_agent_id, message_count, created_at, last_activity FROM conversations WHERE tenant_id = $1 AND user_id = $2 AND (last_activity, id) < ($3, $4) ORDER BY last_activity DESC, id DESC LIMIT $5;
END
$fn$;

-- LIST_ALL_CONVERSATIONS
CREATE FUNCTION switchyard_list_all_conversations(uuid, timestamptz, uuid, bigint)
RETURNS TABLE (tenant_id uuid, id uuid, user_id uuid, title text, primary_intent text, last_agent_id uuid, message_count bigint, created_at timestamptz, last_activity timestamptz)
LANGUAGE plpgsql VOLATILE AS $fn$
#variable_conflict use_column
BEGIN
    PERFORM set_config('app.tenant_id', $1::text, true);
    RETURN QUERY SELECT tenant_id, id, user_id, title, primary_intent, last_agent_id, message_count, created_at, last_activity FROM conversations WHERE tenant_id = $1 AND (last_activity, id) < ($2, $3) ORDER BY last_activity DESC, id DESC LIMIT $4;
END
$fn$;

-- CONVERSATION_WITH_TURNS
CREATE FUNCTION switchyard_conversation_with_turns(uuid, uuid, boolean, uuid, timestamptz, uuid, bigint)
RETURNS TABLE (tenant_id uuid, id uuid, user_id uuid, title text, primary_intent text, last_agent_id uuid, message_count bigint, created_at timestamptz, last_activity timestamptz, t_id uuid, t_user_message text, t_agent_response text, t_intent_category text, t_intent_confidence double precision, t_selected_agent_id uuid, t_routing jsonb, t_latency_ms double precision, t_created_at timestamptz)
LANGUAGE plpgsql VOLATILE AS $fn$
#variable_conflict use_column
BEGIN
    PERFORM set_config('app.tenant_id', $1::text, true);
    RETURN QUERY SELECT c.tenant_id, c.id, c.user_id, c.title, c.primary_intent, c.last_agent_id, c.message_count, c.created_at, c.last_activity, t.id AS t_id, t.user_message AS t_user_message, t.agent_response AS t_agent_response, t.intent_category AS t_intent_category, t.intent_confidence AS t_intent_confidence, t.selected_agent_id AS t_selected_agent_id, t.routing AS t_routing, t.latency_ms AS t_latency_ms, t.created_at AS t_created_at FROM conversations c LEFT JOIN (SELECT tenant_id, id, conversation_id, user_message, agent_response, intent_category, intent_confidence, selected_agent_id, routing, latency_ms, created_at FROM conversation_messages WHERE tenant_id = $1 AND conversation_id = $2 AND (created_at, id) > ($5, $6) ORDER BY created_at, id LIMIT $7) t ON 1 = 1 WHERE c.tenant_id = $1 AND c.id = $2 AND ($3 OR c.user_id = $4) ORDER BY t.created_at, t.id;
END
$fn$;

-- CHAT_CONTEXT
CREATE FUNCTION switchyard_chat_context(uuid, uuid, uuid, bigint)
RETURNS TABLE (tenant_id uuid, id uuid, user_id uuid, title text, primary_intent text, last_agent_id uuid, message_count bigint, created_at timestamptz, last_activity timestamptz, h_id uuid, h_user_message text, h_agent_response text, h_created_at timestamptz)
LANGUAGE plpgsql VOLATILE AS $fn$
#variable_conflict use_column
BEGIN
    PERFORM set_config('app.tenant_id', $1::text, true);
    RETURN QUERY SELECT c.tenant_id, c.id, c.user_id, c.title, c.primary_intent, c.last_agent_id, c.message_count, c.created_at, c.last_activity, t.id AS h_id, t.user_message AS h_user_message, t.agent_response AS h_agent_response, t.created_at AS h_created_at FROM conversations c LEFT JOIN (SELECT id, user_message, agent_response, created_at FROM conversation_messages WHERE tenant_id = $1 AND conversation_id = $2 ORDER BY created_at DESC, id DESC LIMIT $4) t ON 1 = 1 WHERE c.tenant_id = $1 AND c.id = $2 AND c.user_id = $3 ORDER BY t.created_at, t.id;
END
$fn$;

-- WRITE_TURN
CREATE FUNCTION switchyard_write_turn(uuid, uuid, uuid, timestamptz, text, uuid, uuid, text, text, double precision, jsonb, double precision, text, double precision, boolean)
RETURNS TABLE (tenant_id uuid, id uuid, user_id uuid, title text, primary_intent text, last_agent_id uuid, message_count bigint, created_at timestamptz, last_activity timestamptz, t_id uuid)
LANGUAGE plpgsql VOLATILE AS $fn$
#variable_conflict use_column
BEGIN
    PERFORM set_config('app.tenant_id', $1::text, true);
    RETURN QUERY WITH c AS (UPDATE conversations SET last_activity = CASE WHEN last_activity > $4 THEN last_activity ELSE $4 END, message_count = message_count + 1, primary_intent = COALESCE(primary_intent, $5), last_agent_id = COALESCE($6, last_agent_id) WHERE tenant_id = $1 AND id = $2 AND user_id = $3 RETURNING tenant_id, id, user_id, title, primary_intent, last_agent_id, message_count, created_at, last_activity), t AS (INSERT INTO conversation_messages (tenant_id, id, conversation_id, user_message, agent_response, intent_category, intent_confidence, selected_agent_id, routing, latency_ms, created_at, routing_method, routing_confidence, fallback_used) SELECT c.tenant_id, $7, c.id, $8, $9, $5, $10, $6, $11, $12, $4, $13, $14, $15 FROM c RETURNING id) SELECT c.tenant_id, c.id, c.user_id, c.title, c.primary_intent, c.last_agent_id, c.message_count, c.created_at, c.last_activity, t.id AS t_id FROM c CROSS JOIN t;
END
$fn$;
