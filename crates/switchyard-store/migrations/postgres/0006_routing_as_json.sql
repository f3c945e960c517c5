-- Routing records stored as `json` (their text, as written) instead of `jsonb`. A record is
-- written once and read back whole -- never queried inside: the analytics read the columns
-- of migration 2 -- so the binary form bought nothing, while every conversation read turned
-- each record back into text (about a sixth of PostgreSQL's time per read of 20 turns) and
-- every turn write parsed one into the binary form. `json` keeps the text as the server
-- wrote it, still checked to be JSON on the way in.
--
-- The column's type change rewrites conversation_messages and its indexes once, holding
-- the table's lock meanwhile (docs/operations.md has the time it takes); nothing in a
-- record changes but its white space (a record converted from `jsonb` keeps jsonb's
-- spacing and key order).
--
-- The functions that take or return a routing record are made again with the new type;
-- their bodies are, word for word, the store's statements of the same name, as before (a
-- test checks it).

DROP FUNCTION switchyard_conversation_with_turns(uuid, uuid, boolean, uuid, timestamptz, uuid, bigint);
DROP FUNCTION switchyard_write_turn(uuid, uuid, uuid, timestamptz, text, uuid, uuid, text, text, double precision, jsonb, double precision, text, double precision, boolean);
DROP FUNCTION switchyard_write_new_turn(uuid, uuid, uuid, timestamptz, text, uuid, uuid, text, text, double precision, jsonb, double precision, text, double precision, boolean, text, bigint, bigint, bigint);

ALTER TABLE conversation_messages
    ALTER COLUMN routing DROP DEFAULT,
    ALTER COLUMN routing TYPE json USING routing::json,
    ALTER COLUMN routing SET DEFAULT '{}'::json;

-- CONVERSATION_WITH_TURNS
CREATE FUNCTION switchyard_conversation_with_turns(uuid, uuid, boolean, uuid, timestamptz, uuid, bigint)
RETURNS TABLE (tenant_id uuid, id uuid, user_id uuid, title text, primary_intent text, last_agent_id uuid, message_count bigint, created_at timestamptz, last_activity timestamptz, t_id uuid, t_user_message text, t_agent_response text, t_intent_category text, t_intent_confidence double precision, t_selected_agent_id uuid, t_routing json, t_latency_ms double precision, t_created_at timestamptz)
LANGUAGE plpgsql VOLATILE AS $fn$
#variable_conflict use_column
BEGIN
    PERFORM set_config('app.tenant_id', $1::text, true);
    RETURN QUERY SELECT c.tenant_id, c.id, c.user_id, c.title, c.primary_intent, c.last_agent_id, c.message_count, c.created_at, c.last_activity, t.id AS t_id, t.user_message AS t_user_message, t.agent_response AS t_agent_response, t.intent_category AS t_intent_category, t.intent_confidence AS t_intent_confidence, t.selected_agent_id AS t_selected_agent_id, t.routing AS t_routing, t.latency_ms AS t_latency_ms, t.created_at AS t_created_at FROM conversations c LEFT JOIN (SELECT tenant_id, id, conversation_id, user_message, agent_response, intent_category, intent_confidence, selected_agent_id, routing, latency_ms, created_at FROM conversation_messages WHERE tenant_id = $1 AND conversation_id = $2 AND (created_at, id) > ($5, $6) ORDER BY created_at, id LIMIT $7) t ON 1 = 1 WHERE c.tenant_id = $1 AND c.id = $2 AND ($3 OR c.user_id = $4) ORDER BY t.created_at, t.id;
END
$fn$;

-- WRITE_TURN
CREATE FUNCTION switchyard_write_turn(uuid, uuid, uuid, timestamptz, text, uuid, uuid, text, text, double precision, json, double precision, text, double precision, boolean)
RETURNS TABLE (tenant_id uuid, id uuid, user_id uuid, title text, primary_intent text, last_agent_id uuid, message_count bigint, created_at timestamptz, last_activity timestamptz, t_id uuid)
LANGUAGE plpgsql VOLATILE AS $fn$
#variable_conflict use_column
BEGIN
    PERFORM set_config('app.tenant_id', $1::text, true);
    RETURN QUERY WITH c AS (UPDATE conversations SET last_activity = CASE WHEN last_activity > $4 THEN last_activity ELSE $4 END, message_count = message_count + 1, primary_intent = COALESCE(primary_intent, $5), last_agent_id = COALESCE($6, last_agent_id) WHERE tenant_id = $1 AND id = $2 AND user_id = $3 RETURNING tenant_id, id, user_id, title, primary_intent, last_agent_id, message_count, created_at, last_activity), t AS (INSERT INTO conversation_messages (tenant_id, id, conversation_id, user_message, agent_response, intent_category, intent_confidence, selected_agent_id, routing, latency_ms, created_at, routing_method, routing_confidence, fallback_used) SELECT c.tenant_id, $7, c.id, $8, $9, $5, $10, $6, $11, $12, $4, $13, $14, $15 FROM c RETURNING id) SELECT c.tenant_id, c.id, c.user_id, c.title, c.primary_intent, c.last_agent_id, c.message_count, c.created_at, c.last_activity, t.id AS t_id FROM c CROSS JOIN t;
END
$fn$;

-- WRITE_NEW_TURN
CREATE FUNCTION switchyard_write_new_turn(uuid, uuid, uuid, timestamptz, text, uuid, uuid, text, text, double precision, json, double precision, text, double precision, boolean, text, bigint, bigint, bigint)
RETURNS TABLE (tenant_id uuid, id uuid, user_id uuid, title text, primary_intent text, last_agent_id uuid, message_count bigint, created_at timestamptz, last_activity timestamptz, t_id uuid)
LANGUAGE plpgsql VOLATILE AS $fn$
#variable_conflict use_column
DECLARE
    per_user bigint;
    per_tenant bigint;
BEGIN
    PERFORM set_config('app.tenant_id', $1::text, true);
    PERFORM pg_advisory_xact_lock($19);
    SELECT l.per_user, l.per_tenant INTO per_user, per_tenant FROM switchyard_count_for_limits($1, $3, $17, $18) l;
    IF per_user >= $17 THEN
        RAISE EXCEPTION 'per_user' USING ERRCODE = 'SYL01';
    END IF;
    IF per_tenant >= $18 THEN
        RAISE EXCEPTION 'per_tenant' USING ERRCODE = 'SYL01';
    END IF;
    -- INSERT_CONVERSATION
    INSERT INTO conversations (tenant_id, id, user_id, title, primary_intent, last_agent_id, message_count, created_at, last_activity) VALUES ($1, $2, $3, $16, NULL, NULL, 0, $4, $4);
    -- WRITE_TURN
    RETURN QUERY WITH c AS (UPDATE conversations SET last_activity = CASE WHEN last_activity > $4 THEN last_activity ELSE $4 END, message_count = message_count + 1, primary_intent = COALESCE(primary_intent, $5), last_agent_id = COALESCE($6, last_agent_id) WHERE tenant_id = $1 AND id = $2 AND user_id = $3 RETURNING tenant_id, id, user_id, title, primary_intent, last_agent_id, message_count, created_at, last_activity), t AS (INSERT INTO conversation_messages (tenant_id, id, conversation_id, user_message, agent_response, intent_category, intent_confidence, selected_agent_id, routing, latency_ms, created_at, routing_method, routing_confidence, fallback_used) SELECT c.tenant_id, $7, c.id, $8, $9, $5, $10, $6, $11, $12, $4, $13, $14, $15 FROM c RETURNING id) SELECT c.tenant_id, c.id, c.user_id, c.title, c.primary_intent, c.last_agent_id, c.message_count, c.created_at, c.last_activity, t.id AS t_id FROM c CROSS JOIN t;
END
$fn$;
