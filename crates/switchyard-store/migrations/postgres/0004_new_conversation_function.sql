-- A new conversation and its first turn in one round trip. Conversation limits are checked
-- under a per-tenant advisory lock held until commit; run as separate statements, the lock
-- was held across five round trips, which serialised a tenant's new conversations behind the
-- network and the scheduler. Here it is held only while this function runs and commits.
--
-- As in migration 3, the functions set the transaction-local app.tenant_id first and run as
-- their caller, so row-level security applies as always; their statements are, word for
-- word, the store's COUNT_FOR_LIMITS, INSERT_CONVERSATION and WRITE_TURN (a test checks it).

-- COUNT_FOR_LIMITS
-- The user's and the tenant's conversations, each counted only up to its limit ($3 per
-- user, $4 per tenant): the check before a new conversation's agent call.
CREATE FUNCTION switchyard_count_for_limits(uuid, uuid, bigint, bigint)
RETURNS TABLE (per_user bigint, per_tenant bigint)
LANGUAGE plpgsql VOLATILE AS $fn$
BEGIN
    PERFORM set_config('app.tenant_id', $1::text, true);
    RETURN QUERY SELECT (SELECT count(*) FROM (SELECT 1 FROM conversations WHERE tenant_id = $1 AND user_id = $2 LIMIT $3) u), (SELECT count(*) FROM (SELECT 1 FROM conversations WHERE tenant_id = $1 LIMIT $4) t);
END
$fn$;

-- At a limit it raises SQLSTATE SYL01 with the message per_user or per_tenant.
-- $1-$15 as switchyard_write_turn, $16 title, $17 per-user limit, $18 per-tenant limit,
-- $19 the tenant's advisory lock key.
-- WRITE_NEW_TURN
CREATE FUNCTION switchyard_write_new_turn(uuid, uuid, uuid, timestamptz, text, uuid, uuid, text, text, double precision, jsonb, double precision, text, double precision, boolean, text, bigint, bigint, bigint)
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
