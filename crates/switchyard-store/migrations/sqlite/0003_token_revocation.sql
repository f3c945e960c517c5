-- Revoking a user's tokens (see the PostgreSQL migration of the same name): when the
-- user's tokens were last revoked; a token issued before it is refused.

ALTER TABLE users ADD COLUMN tokens_valid_after INTEGER;
