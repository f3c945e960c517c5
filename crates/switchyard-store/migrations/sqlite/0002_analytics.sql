-- Routing analytics computed in the database (see the PostgreSQL migration of the same
-- number).

ALTER TABLE conversation_messages ADD COLUMN routing_method TEXT;
ALTER TABLE conversation_messages ADD COLUMN routing_confidence REAL;
ALTER TABLE conversation_messages ADD COLUMN fallback_used INTEGER;

CREATE TABLE agent_call_errors (
    tenant_id       BLOB NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
    id              BLOB NOT NULL,
    agent_id        BLOB NOT NULL,
    agent_name      TEXT NOT NULL,
    kind            TEXT NOT NULL,
    created_at      INTEGER NOT NULL,
    PRIMARY KEY (tenant_id, id)
) STRICT;
CREATE INDEX agent_call_errors_created ON agent_call_errors (tenant_id, created_at);
