-- Routing analytics computed in the database: each turn's decision as columns (method,
-- confidence, whether the fallback answered), and a record of every failed agent call —
-- including those of turns that failed entirely and were never stored.

ALTER TABLE conversation_messages
    ADD COLUMN routing_method TEXT,
    ADD COLUMN routing_confidence DOUBLE PRECISION,
    ADD COLUMN fallback_used BOOLEAN;

CREATE TABLE agent_call_errors (
    tenant_id       UUID NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
    id              UUID NOT NULL,
    agent_id        UUID NOT NULL,
    agent_name      TEXT NOT NULL,
    kind            TEXT NOT NULL,
    created_at      TIMESTAMPTZ NOT NULL,
    PRIMARY KEY (tenant_id, id)
);
CREATE INDEX agent_call_errors_created ON agent_call_errors (tenant_id, created_at);

ALTER TABLE agent_call_errors ENABLE ROW LEVEL SECURITY;
ALTER TABLE agent_call_errors FORCE ROW LEVEL SECURITY;
CREATE POLICY tenant_isolation ON agent_call_errors
    USING (tenant_id = (SELECT NULLIF(current_setting('app.tenant_id', true), '')::uuid))
    WITH CHECK (tenant_id = (SELECT NULLIF(current_setting('app.tenant_id', true), '')::uuid));
