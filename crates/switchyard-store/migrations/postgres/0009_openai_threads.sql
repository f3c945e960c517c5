-- Conversations of the OpenAI door (docs/integrations.md): `thread_key` is a hash of the
-- thread's messages as the client holds them after a turn (the user's, with the answer), by
-- which a client that resends the growing history continues the same conversation. A
-- conversation with a thread key was made through the door and counts toward no
-- conversation limit: COUNT_FOR_LIMITS counts the others only, through partial indexes, so
-- that a script's thousand calls through the door never lock its user out of /v1/chat.
--
-- The column comes without a default (no table rewrite); the indexes are built once, holding
-- the table's write lock meanwhile (docs/operations.md has the time it takes).
-- switchyard_count_for_limits is made again with the new statement, word for word the
-- store's (a test checks it); switchyard_write_new_turn calls it by name and is unchanged.

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
