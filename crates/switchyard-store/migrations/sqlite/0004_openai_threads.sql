-- Conversations of the OpenAI door (see the PostgreSQL migration of the same name): the
-- hash of the thread as the client holds it (empty until the first answer), set only on the
-- door's own conversations, which count toward no conversation limit.

ALTER TABLE conversations ADD COLUMN thread_key TEXT;
CREATE INDEX conversations_thread ON conversations (tenant_id, user_id, thread_key) WHERE thread_key IS NOT NULL;
CREATE INDEX conversations_chat_user ON conversations (tenant_id, user_id) WHERE thread_key IS NULL;
CREATE INDEX conversations_chat ON conversations (tenant_id) WHERE thread_key IS NULL;
