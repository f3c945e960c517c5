-- A tenant's routing index is built from its agents-version and its enabled agents, on
-- every miss of a server's index cache (a tenant seen for the first time, after its agents
-- changed, or after it was evicted). Read as two statements in a transaction that took four
-- round trips; this function reads them in one. As in migration 3, it sets the
-- transaction-local app.tenant_id first and runs as its caller, so row-level security
-- applies; its body is, word for word, the store's ROUTABLE_AGENTS (a test checks it).

-- ROUTABLE_AGENTS
CREATE FUNCTION switchyard_routable_agents(uuid)
RETURNS TABLE (t_agents_version bigint, tenant_id uuid, id uuid, name text, description text, kind text, config jsonb, intents jsonb, keywords jsonb, examples jsonb, enabled boolean, priority integer, is_fallback boolean, created_at timestamptz, updated_at timestamptz)
LANGUAGE plpgsql VOLATILE ROWS 10 AS $fn$
#variable_conflict use_column
BEGIN
    PERFORM set_config('app.tenant_id', $1::text, true);
    RETURN QUERY SELECT t.agents_version AS t_agents_version, a.tenant_id, a.id, a.name, a.description, a.kind, a.config, a.intents, a.keywords, a.examples, a.enabled, a.priority, a.is_fallback, a.created_at, a.updated_at FROM tenants t LEFT JOIN agents a ON a.tenant_id = $1 AND a.tenant_id = t.id AND a.enabled WHERE t.id = $1 ORDER BY a.id;
END
$fn$;
