//! The statements of the hot paths — the conversation list, a conversation read, a history
//! load and a turn write — named so that the query-plan tests check exactly what runs, and
//! the analytics and retention statements both backends share.

use super::{conversation_cols, joined_turn_cols, principal_cols, turn_cols};

/// A tenant and one of its users, for authentication: `$1` tenant, `$2` user.
pub const FIND_PRINCIPAL: &str = concat!(
    "SELECT ",
    principal_cols!(),
    ", CAST(NULL AS TEXT) AS password_hash FROM users u JOIN tenants t ON t.id = u.tenant_id \
     WHERE u.tenant_id = $1 AND u.id = $2"
);

/// A user's conversations, latest activity first: `$1` tenant, `$2` user, `($3, $4)` the
/// keyset position, `$5` the row count.
pub const LIST_USER_CONVERSATIONS: &str = concat!(
    "SELECT ",
    conversation_cols!(),
    " FROM conversations WHERE tenant_id = $1 AND user_id = $2 \
     AND (last_activity, id) < ($3, $4) ORDER BY last_activity DESC, id DESC LIMIT $5"
);

/// A tenant's conversations, latest activity first: `$1` tenant, `($2, $3)` position,
/// `$4` count.
pub const LIST_ALL_CONVERSATIONS: &str = concat!(
    "SELECT ",
    conversation_cols!(),
    " FROM conversations WHERE tenant_id = $1 \
     AND (last_activity, id) < ($2, $3) ORDER BY last_activity DESC, id DESC LIMIT $4"
);

/// A conversation the scope may see: `$1` tenant, `$2` id, `$3` whether the scope is an
/// admin, `$4` the scope's user.
pub const VISIBLE_CONVERSATION: &str = concat!(
    "SELECT ",
    conversation_cols!(),
    " FROM conversations WHERE tenant_id = $1 AND id = $2 AND ($3 OR user_id = $4)"
);

/// The scope's own conversation with the last messages an agent needs as history (not
/// the whole turns: their routing records are not sent anywhere), for a chat turn, in
/// one statement: `$1` tenant, `$2` id, `$3` user, `$4` how many turns. One row per turn,
/// oldest first (one row without a turn when there is none); no row when the
/// conversation is not the user's.
pub const CHAT_CONTEXT: &str = "SELECT c.tenant_id, c.id, c.user_id, c.title, c.primary_intent, \
     c.last_agent_id, c.message_count, c.created_at, c.last_activity, t.id AS h_id, \
     t.user_message AS h_user_message, t.agent_response AS h_agent_response, t.created_at AS h_created_at \
     FROM conversations c LEFT JOIN (SELECT id, user_message, agent_response, created_at \
     FROM conversation_messages WHERE tenant_id = $1 AND conversation_id = $2 \
     ORDER BY created_at DESC, id DESC LIMIT $4) t ON 1 = 1 \
     WHERE c.tenant_id = $1 AND c.id = $2 AND c.user_id = $3 ORDER BY t.created_at, t.id";

/// A conversation the scope may see with a page of its turns, oldest first, in one
/// statement: `$1` tenant, `$2` id, `$3` whether the scope is an admin, `$4` the scope's
/// user, `($5, $6)` the keyset position, `$7` how many turns.
pub const CONVERSATION_WITH_TURNS: &str = concat!(
    "SELECT c.tenant_id, c.id, c.user_id, c.title, c.primary_intent, c.last_agent_id, c.message_count, \
     c.created_at, c.last_activity, ",
    joined_turn_cols!(),
    " FROM conversations c LEFT JOIN (SELECT ",
    turn_cols!(),
    " FROM conversation_messages WHERE tenant_id = $1 AND conversation_id = $2 \
     AND (created_at, id) > ($5, $6) ORDER BY created_at, id LIMIT $7) t ON 1 = 1 \
     WHERE c.tenant_id = $1 AND c.id = $2 AND ($3 OR c.user_id = $4) ORDER BY t.created_at, t.id"
);

/// The tenant's agents-version and its enabled agents, in one statement: `$1` tenant.
/// One row per agent, by id (one row with null agent columns when there is none): what a
/// routing index is built from, on every miss of the index cache.
pub const ROUTABLE_AGENTS: &str = "SELECT t.agents_version AS t_agents_version, a.tenant_id, a.id, \
     a.name, a.description, a.kind, a.config, a.intents, a.keywords, a.examples, a.enabled, a.priority, \
     a.is_fallback, a.created_at, a.updated_at FROM tenants t LEFT JOIN agents a \
     ON a.tenant_id = $1 AND a.tenant_id = t.id AND a.enabled WHERE t.id = $1 ORDER BY a.id";

/// The conversation update of a turn write: `$1` tenant, `$2` conversation, `$3` user,
/// `$4` the turn's time, `$5` its intent, `$6` its agent.
pub const UPDATE_CONVERSATION_FOR_TURN: &str = concat!(
    "UPDATE conversations SET \
     last_activity = CASE WHEN last_activity > $4 THEN last_activity ELSE $4 END, \
     message_count = message_count + 1, \
     primary_intent = COALESCE(primary_intent, $5), \
     last_agent_id = COALESCE($6, last_agent_id) \
     WHERE tenant_id = $1 AND id = $2 AND user_id = $3 RETURNING ",
    conversation_cols!()
);

/// PostgreSQL: the conversation update and the turn insert as one statement (one round
/// trip), answering the updated conversation and the turn's id (the rest of the turn is
/// what was written): `$1`–`$6` as [`UPDATE_CONVERSATION_FOR_TURN`], then `$7` the turn's id, `$8` the
/// message, `$9` the answer, `$10` the intent's confidence, `$11` the routing, `$12` the
/// latency, `$13` the method, `$14` the routing confidence, `$15` whether the fallback
/// answered. No row when the conversation is not the user's.
pub const WRITE_TURN: &str = concat!(
    "WITH c AS (UPDATE conversations SET \
     last_activity = CASE WHEN last_activity > $4 THEN last_activity ELSE $4 END, \
     message_count = message_count + 1, \
     primary_intent = COALESCE(primary_intent, $5), \
     last_agent_id = COALESCE($6, last_agent_id) \
     WHERE tenant_id = $1 AND id = $2 AND user_id = $3 RETURNING ",
    conversation_cols!(),
    "), t AS (INSERT INTO conversation_messages (tenant_id, id, conversation_id, user_message, agent_response, \
     intent_category, intent_confidence, selected_agent_id, routing, latency_ms, created_at, \
     routing_method, routing_confidence, fallback_used) \
     SELECT c.tenant_id, $7, c.id, $8, $9, $5, $10, $6, $11, $12, $4, $13, $14, $15 FROM c RETURNING id) \
     SELECT c.tenant_id, c.id, c.user_id, c.title, c.primary_intent, c.last_agent_id, c.message_count, \
     c.created_at, c.last_activity, t.id AS t_id FROM c CROSS JOIN t"
);

/// A new conversation's limits, each side counted only up to its limit: `$1` tenant,
/// `$2` user, `$3` the per-user and `$4` the per-tenant limit. Only conversations made
/// through `/v1/chat` count (those of the OpenAI door have a thread key). A limit check so
/// costs at most the limit's index entries, however many conversations a tenant with a
/// raised limit has. On PostgreSQL it is the body of `switchyard_count_for_limits`
/// (migration 9), which [`WRITE_NEW_TURN`]'s function calls under the tenant's lock.
pub const COUNT_FOR_LIMITS: &str = "SELECT \
     (SELECT count(*) FROM (SELECT 1 FROM conversations WHERE tenant_id = $1 AND user_id = $2 AND thread_key IS NULL LIMIT $3) u), \
     (SELECT count(*) FROM (SELECT 1 FROM conversations WHERE tenant_id = $1 AND thread_key IS NULL LIMIT $4) t)";

/// The OpenAI door: the user's (`$2`) conversation whose thread, as its client holds it, has
/// the hash `$3`.
pub const FIND_THREAD: &str = "SELECT id FROM conversations \
     WHERE tenant_id = $1 AND user_id = $2 AND thread_key = $3 ORDER BY last_activity DESC LIMIT 1";

/// The OpenAI door: the hash of the user's (`$3`) conversation's thread after a turn — only
/// a conversation the door made (one of `/v1/chat` stays one, and stays counted).
pub const SET_THREAD_KEY: &str = "UPDATE conversations SET thread_key = $4 \
     WHERE tenant_id = $1 AND id = $2 AND user_id = $3 AND thread_key IS NOT NULL";

/// A new conversation's row: `$1` tenant, `$2` id, `$3` user, `$4` its time (that of its
/// first turn), `$16` its title; `$17` (the per-user limit) below zero makes it the OpenAI
/// door's, with an empty thread key until its first answer's.
pub const INSERT_CONVERSATION: &str = "INSERT INTO conversations (tenant_id, id, user_id, title, \
     primary_intent, last_agent_id, message_count, created_at, last_activity, thread_key) \
     VALUES ($1, $2, $3, $16, NULL, NULL, 0, $4, $4, CASE WHEN $17 < 0 THEN '' END)";

/// PostgreSQL: a new conversation with its first turn in one round trip, the function
/// `switchyard_write_new_turn` (migration 4): `$1`–`$15` as [`WRITE_TURN`], `$16` the
/// title, `$17`/`$18` the per-user/per-tenant limits, `$19` the tenant's advisory lock
/// key. Under the lock it counts ([`COUNT_FOR_LIMITS`]), raises SQLSTATE `SYL01` with
/// the message `per_user` or `per_tenant` at a limit, inserts
/// ([`INSERT_CONVERSATION`]) and runs [`WRITE_TURN`]; the lock is held only while
/// the function runs and commits, not across round trips.
pub const WRITE_NEW_TURN: &str = "SELECT * FROM switchyard_write_new_turn(\
     $1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11::json, $12, $13, $14, $15, $16, $17, $18, $19)";

/// Analytics (`$1` tenant, `$2`..`$3` the period): turns, conversations, mean routing
/// confidence and fallback rate.
pub const ANALYTICS_TOTALS: &str = "SELECT count(*), count(DISTINCT conversation_id), avg(routing_confidence), \
     avg(CAST(CASE WHEN fallback_used THEN 1 WHEN fallback_used IS NULL THEN NULL ELSE 0 END AS DOUBLE PRECISION)) \
     FROM conversation_messages WHERE tenant_id = $1 AND created_at >= $2 AND created_at < $3";

/// Analytics: turns by intent.
pub const ANALYTICS_BY_INTENT: &str = "SELECT intent_category, count(*) AS n FROM conversation_messages \
     WHERE tenant_id = $1 AND created_at >= $2 AND created_at < $3 \
     GROUP BY intent_category ORDER BY n DESC, intent_category";

/// Analytics: turns by the agent that answered, with its name.
pub const ANALYTICS_BY_AGENT: &str = "SELECT m.selected_agent_id, max(a.name), count(*) FROM conversation_messages m \
     LEFT JOIN agents a ON a.tenant_id = m.tenant_id AND a.id = m.selected_agent_id \
     WHERE m.tenant_id = $1 AND m.created_at >= $2 AND m.created_at < $3 \
     AND m.selected_agent_id IS NOT NULL GROUP BY m.selected_agent_id";

/// Analytics: failed agent calls by agent.
pub const ANALYTICS_FAILED_CALLS: &str = "SELECT agent_id, max(agent_name), count(*) FROM agent_call_errors \
     WHERE tenant_id = $1 AND created_at >= $2 AND created_at < $3 GROUP BY agent_id";

/// Retention: deletes up to `$3` of the tenant's turns older than `$2`, oldest first,
/// answering their conversations.
pub const RETENTION_DELETE_TURNS: &str = "DELETE FROM conversation_messages WHERE tenant_id = $1 AND id IN \
     (SELECT id FROM conversation_messages WHERE tenant_id = $1 AND created_at < $2 \
      ORDER BY created_at LIMIT $3) RETURNING conversation_id";

/// The turn insert: the columns in order.
pub const INSERT_TURN: &str = concat!(
    "INSERT INTO conversation_messages (tenant_id, id, conversation_id, user_message, agent_response, \
     intent_category, intent_confidence, selected_agent_id, routing, latency_ms, created_at, \
     routing_method, routing_confidence, fallback_used) \
     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14) RETURNING ",
    turn_cols!()
);

/// The routing lab's replay: a page of the tenant's turns before (`$2` time, `$3` id),
/// newest first, `$4` of them, each with its routing record and the agent of the
/// conversation's turn before it.
pub const RECENT_DECISIONS: &str = "SELECT m.id, m.conversation_id, m.user_message, m.selected_agent_id, \
     m.routing_method, m.routing, m.created_at, (SELECT p.selected_agent_id FROM conversation_messages p \
     WHERE p.tenant_id = $1 AND p.conversation_id = m.conversation_id \
     AND (p.created_at, p.id) < (m.created_at, m.id) \
     ORDER BY p.created_at DESC, p.id DESC LIMIT 1) \
     FROM conversation_messages m WHERE m.tenant_id = $1 AND (m.created_at, m.id) < ($2, $3) \
     ORDER BY m.created_at DESC, m.id DESC LIMIT $4";
