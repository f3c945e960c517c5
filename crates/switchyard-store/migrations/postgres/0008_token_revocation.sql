-- Revoking a user's tokens: `users.tokens_valid_after` is when the user's tokens were last
-- revoked (a password change, a logout); a token issued before it is refused. The
-- authentication look-ups return it with the principal, so the check costs no round trip:
-- FIND_PRINCIPAL (through `principal_cols!`) as `tokens_valid_after`, the authenticated
-- reads of migration 7 as `p_tokens_valid_after`. Their return types change, so they are
-- dropped and made again, otherwise word for word as before (tests check the statements).

ALTER TABLE users ADD COLUMN tokens_valid_after timestamptz;

DROP FUNCTION switchyard_find_principal(uuid, uuid);
DROP FUNCTION switchyard_authed_conversation_with_turns(uuid, uuid, boolean, uuid, timestamptz, uuid, bigint);
DROP FUNCTION switchyard_authed_list_user_conversations(uuid, uuid, timestamptz, uuid, bigint);
DROP FUNCTION switchyard_authed_chat_context(uuid, uuid, uuid, bigint);

-- FIND_PRINCIPAL
CREATE FUNCTION switchyard_find_principal(uuid, uuid)
RETURNS TABLE (tenant_id uuid, id uuid, email text, display_name text, role text, status text, created_at timestamptz, t_slug text, t_name text, t_status text, t_settings jsonb, t_agents_version bigint, t_created_at timestamptz, tokens_valid_after timestamptz, password_hash text)
LANGUAGE plpgsql VOLATILE AS $fn$
#variable_conflict use_column
BEGIN
    PERFORM set_config('app.tenant_id', $1::text, true);
    RETURN QUERY SELECT u.tenant_id, u.id, u.email, u.display_name, u.role, u.status, u.created_at, t.slug AS t_slug, t.name AS t_name, t.status AS t_status, t.settings AS t_settings, t.agents_version AS t_agents_version, t.created_at AS t_created_at, u.tokens_valid_after, CAST(NULL AS TEXT) AS password_hash FROM users u JOIN tenants t ON t.id = u.tenant_id WHERE u.tenant_id = $1 AND u.id = $2;
END
$fn$;

-- AUTHED_CONVERSATION_WITH_TURNS: $1 tenant, $2 conversation, $3 (set from the role),
-- $4 user, ($5, $6) the keyset position, $7 how many turns.
CREATE FUNCTION switchyard_authed_conversation_with_turns(uuid, uuid, boolean, uuid, timestamptz, uuid, bigint)
RETURNS TABLE (tenant_id uuid, id uuid, user_id uuid, title text, primary_intent text, last_agent_id uuid, message_count bigint, created_at timestamptz, last_activity timestamptz, t_id uuid, t_user_message text, t_agent_response text, t_intent_category text, t_intent_confidence double precision, t_selected_agent_id uuid, t_routing json, t_latency_ms double precision, t_created_at timestamptz, p_tenant_id uuid, p_id uuid, p_email text, p_display_name text, p_role text, p_status text, p_created_at timestamptz, p_t_slug text, p_t_name text, p_t_status text, p_t_settings jsonb, p_t_agents_version bigint, p_t_created_at timestamptz, p_tokens_valid_after timestamptz)
LANGUAGE plpgsql VOLATILE AS $fn$
#variable_conflict use_column
DECLARE
    is_admin ALIAS FOR $3;
BEGIN
    PERFORM set_config('app.tenant_id', $1::text, true);
    SELECT u.tenant_id, u.id, u.email, u.display_name, u.role, u.status, u.created_at, t.slug, t.name, t.status, t.settings, t.agents_version, t.created_at, u.tokens_valid_after
        INTO p_tenant_id, p_id, p_email, p_display_name, p_role, p_status, p_created_at, p_t_slug, p_t_name, p_t_status, p_t_settings, p_t_agents_version, p_t_created_at, p_tokens_valid_after
        FROM users u JOIN tenants t ON t.id = u.tenant_id WHERE u.tenant_id = $1 AND u.id = $4;
    IF NOT FOUND THEN
        RETURN;
    END IF;
    RETURN NEXT;
    IF p_status <> 'active' OR p_t_status <> 'active' THEN
        RETURN;
    END IF;
    is_admin := p_role = 'admin';
    RETURN QUERY SELECT q.*, NULL::uuid, NULL::uuid, NULL::text, NULL::text, NULL::text, NULL::text, NULL::timestamptz, NULL::text, NULL::text, NULL::text, NULL::jsonb, NULL::bigint, NULL::timestamptz, NULL::timestamptz FROM (
-- statement CONVERSATION_WITH_TURNS
SELECT c.tenant_id, c.id, c.user_id, c.title, c.primary_intent, c.last_agent_id, c.message_count, c.created_at, c.last_activity, t.id AS t_id, t.user_message AS t_user_message, t.agent_response AS t_agent_response, t.intent_category AS t_intent_category, t.intent_confidence AS t_intent_confidence, t.selected_agent_id AS t_selected_agent_id, t.routing AS t_routing, t.latency_ms AS t_latency_ms, t.created_at AS t_created_at FROM conversations c LEFT JOIN (SELECT tenant_id, id, conversation_id, user_message, agent_response, intent_category, intent_confidence, selected_agent_id, routing, latency_ms, created_at FROM conversation_messages WHERE tenant_id = $1 AND conversation_id = $2 AND (created_at, id) > ($5, $6) ORDER BY created_at, id LIMIT $7) t ON 1 = 1 WHERE c.tenant_id = $1 AND c.id = $2 AND ($3 OR c.user_id = $4) ORDER BY t.created_at, t.id
    ) q;
END
$fn$;

-- AUTHED_LIST_USER_CONVERSATIONS: $1 tenant, $2 user (the caller's own list), ($3, $4) the
-- keyset position, $5 the row count.
CREATE FUNCTION switchyard_authed_list_user_conversations(uuid, uuid, timestamptz, uuid, bigint)
RETURNS TABLE (tenant_id uuid, id uuid, user_id uuid, title text, primary_intent text, last_agent_id uuid, message_count bigint, created_at timestamptz, last_activity timestamptz, p_tenant_id uuid, p_id uuid, p_email text, p_display_name text, p_role text, p_status text, p_created_at timestamptz, p_t_slug text, p_t_name text, p_t_status text, p_t_settings jsonb, p_t_agents_version bigint, p_t_created_at timestamptz, p_tokens_valid_after timestamptz)
LANGUAGE plpgsql VOLATILE AS $fn$
#variable_conflict use_column
BEGIN
    PERFORM set_config('app.tenant_id', $1::text, true);
    SELECT u.tenant_id, u.id, u.email, u.display_name, u.role, u.status, u.created_at, t.slug, t.name, t.status, t.settings, t.agents_version, t.created_at, u.tokens_valid_after
        INTO p_tenant_id, p_id, p_email, p_display_name, p_role, p_status, p_created_at, p_t_slug, p_t_name, p_t_status, p_t_settings, p_t_agents_version, p_t_created_at, p_tokens_valid_after
        FROM users u JOIN tenants t ON t.id = u.tenant_id WHERE u.tenant_id = $1 AND u.id = $2;
    IF NOT FOUND THEN
        RETURN;
    END IF;
    RETURN NEXT;
    IF p_status <> 'active' OR p_t_status <> 'active' THEN
        RETURN;
    END IF;
    RETURN QUERY SELECT q.*, NULL::uuid, NULL::uuid, NULL::text, NULL::text, NULL::text, NULL::text, NULL::timestamptz, NULL::text, NULL::text, NULL::text, NULL::jsonb, NULL::bigint, NULL::timestamptz, NULL::timestamptz FROM (
-- statement LIST_USER_CONVERSATIONS
SELECT tenant_id, id, user_id, title, primary_intent, last_agent_id, message_count, created_at, last_activity FROM conversations WHERE tenant_id = $1 AND user_id = $2 AND (last_activity, id) < ($3, $4) ORDER BY last_activity DESC, id DESC LIMIT $5
    ) q;
END
$fn$;

-- AUTHED_CHAT_CONTEXT: $1 tenant, $2 conversation, $3 user, $4 how many turns of history.
CREATE FUNCTION switchyard_authed_chat_context(uuid, uuid, uuid, bigint)
RETURNS TABLE (tenant_id uuid, id uuid, user_id uuid, title text, primary_intent text, last_agent_id uuid, message_count bigint, created_at timestamptz, last_activity timestamptz, h_id uuid, h_user_message text, h_agent_response text, h_created_at timestamptz, p_tenant_id uuid, p_id uuid, p_email text, p_display_name text, p_role text, p_status text, p_created_at timestamptz, p_t_slug text, p_t_name text, p_t_status text, p_t_settings jsonb, p_t_agents_version bigint, p_t_created_at timestamptz, p_tokens_valid_after timestamptz)
LANGUAGE plpgsql VOLATILE AS $fn$
#variable_conflict use_column
BEGIN
    PERFORM set_config('app.tenant_id', $1::text, true);
    SELECT u.tenant_id, u.id, u.email, u.display_name, u.role, u.status, u.created_at, t.slug, t.name, t.status, t.settings, t.agents_version, t.created_at, u.tokens_valid_after
        INTO p_tenant_id, p_id, p_email, p_display_name, p_role, p_status, p_created_at, p_t_slug, p_t_name, p_t_status, p_t_settings, p_t_agents_version, p_t_created_at, p_tokens_valid_after
        FROM users u JOIN tenants t ON t.id = u.tenant_id WHERE u.tenant_id = $1 AND u.id = $3;
    IF NOT FOUND THEN
        RETURN;
    END IF;
    RETURN NEXT;
    IF p_status <> 'active' OR p_t_status <> 'active' THEN
        RETURN;
    END IF;
    RETURN QUERY SELECT q.*, NULL::uuid, NULL::uuid, NULL::text, NULL::text, NULL::text, NULL::text, NULL::timestamptz, NULL::text, NULL::text, NULL::text, NULL::jsonb, NULL::bigint, NULL::timestamptz, NULL::timestamptz FROM (
-- statement CHAT_CONTEXT
SELECT c.tenant_id, c.id, c.user_id, c.title, c.primary_intent, c.last_agent_id, c.message_count, c.created_at, c.last_activity, t.id AS h_id, t.user_message AS h_user_message, t.agent_response AS h_agent_response, t.created_at AS h_created_at FROM conversations c LEFT JOIN (SELECT id, user_message, agent_response, created_at FROM conversation_messages WHERE tenant_id = $1 AND conversation_id = $2 ORDER BY created_at DESC, id DESC LIMIT $4) t ON 1 = 1 WHERE c.tenant_id = $1 AND c.id = $2 AND c.user_id = $3 ORDER BY t.created_at, t.id
    ) q;
END
$fn$;
