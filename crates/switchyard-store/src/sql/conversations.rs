//! Conversations and their turns (members their own, admins any of the tenant's), failed
//! agent calls, and the idempotency records of chat turns.

use chrono::{DateTime, Utc};
use sqlx::types::Json;
use switchyard_core::ConversationId;
use switchyard_core::model::{AgentCallError, Conversation, HistoryTurn, IdempotencyStart, Turn};
use switchyard_core::page::{Page, PageRequest};

use super::{asc_after, desc_after, require_admin, statements};
use crate::backend::{Args, SqlBackend, Tx};
use crate::rows::{ConversationHistoryRow, ConversationRow, ConversationTurnRow};
use crate::{
    ConversationFilter, IDEMPOTENCY_STALE, IDEMPOTENCY_TTL, StoreError, StoreResult, TenantScope,
};

/// The statement's parameters `$1`–`$4` for a conversation the scope may see.
fn visible(scope: &TenantScope, id: ConversationId) -> Args {
    Args::new()
        .bind(scope.tenant_id())
        .bind(id)
        .bind(scope.is_admin())
        .bind(scope.user_id())
}

/// Reads a conversation: members their own, admins any of the tenant's.
pub(crate) async fn get<B: SqlBackend>(
    db: &B,
    scope: &TenantScope,
    id: ConversationId,
) -> StoreResult<Conversation> {
    let mut tx = db.read(scope.tenant_id()).await?;
    let row: ConversationRow = tx
        .fetch_one(statements::VISIBLE_CONVERSATION, visible(scope, id))
        .await?;
    tx.commit().await?;
    Ok(row.into())
}

/// Lists conversations, latest activity first; only admins see others' conversations.
pub(crate) async fn list<B: SqlBackend>(
    db: &B,
    scope: &TenantScope,
    filter: ConversationFilter,
    page: PageRequest,
) -> StoreResult<Page<Conversation>> {
    let user = match filter {
        ConversationFilter::Own => Some(scope.user_id()),
        ConversationFilter::User(user) => {
            require_admin(scope)?;
            Some(user)
        }
        ConversationFilter::All => {
            require_admin(scope)?;
            None
        }
    };
    let (at, after) = desc_after(&page);
    let rows = db
        .fetch_conversations(scope, user, at, after, page.fetch_limit())
        .await?;
    Ok(ConversationRow::page(rows, &page))
}

/// Deletes a conversation and its turns: members their own, admins any of the tenant's.
pub(crate) async fn delete<B: SqlBackend>(
    db: &B,
    scope: &TenantScope,
    id: ConversationId,
) -> StoreResult<()> {
    let mut tx = db.write(scope.tenant_id()).await?;
    let done = tx
        .execute(
            "DELETE FROM conversations WHERE tenant_id = $1 AND id = $2 AND ($3 OR user_id = $4)",
            visible(scope, id),
        )
        .await?;
    if done == 0 {
        return Err(StoreError::NotFound);
    }
    // A recorded answer of a turn of it would replay the deleted messages to a retried
    // request for a day: it goes too. (Records hold the answer, which names the
    // conversation; they live a day, so the tenant's are few.)
    tx.execute(
        "DELETE FROM idempotency_keys WHERE tenant_id = $1 AND CAST(response AS TEXT) LIKE $2",
        Args::new()
            .bind(scope.tenant_id())
            .bind(format!("%\"conversation_id\":%\"{id}\"%")),
    )
    .await?;
    tx.commit().await
}

/// A conversation the scope may see and a page of its turns, oldest first.
pub(crate) async fn list_turns<B: SqlBackend>(
    db: &B,
    scope: &TenantScope,
    id: ConversationId,
    page: PageRequest,
) -> StoreResult<(Conversation, Page<Turn>)> {
    let (at, after) = asc_after(&page);
    let rows = db
        .fetch_conversation_with_turns(scope, id, at, after, page.fetch_limit())
        .await?;
    ConversationTurnRow::page(rows, &page)
}

/// The scope's own conversation whose thread has the hash `key` (the OpenAI door).
pub(crate) async fn find_thread<B: SqlBackend>(
    db: &B,
    scope: &TenantScope,
    key: &str,
) -> StoreResult<Option<ConversationId>> {
    let mut tx = db.read(scope.tenant_id()).await?;
    let found: Vec<(uuid::Uuid,)> = tx
        .fetch_all(
            statements::FIND_THREAD,
            Args::new()
                .bind(scope.tenant_id())
                .bind(scope.user_id())
                .bind(key),
        )
        .await?;
    tx.commit().await?;
    Ok(found.first().map(|(id,)| ConversationId::from_uuid(*id)))
}

/// Sets the hash of the scope's own conversation's thread (the OpenAI door).
pub(crate) async fn set_thread_key<B: SqlBackend>(
    db: &B,
    scope: &TenantScope,
    id: ConversationId,
    key: &str,
) -> StoreResult<()> {
    let mut tx = db.write(scope.tenant_id()).await?;
    tx.execute(
        statements::SET_THREAD_KEY,
        Args::new()
            .bind(scope.tenant_id())
            .bind(id)
            .bind(scope.user_id())
            .bind(key),
    )
    .await?;
    tx.commit().await
}

/// The scope's own conversation and its last `history` turns, oldest first.
pub(crate) async fn chat_context<B: SqlBackend>(
    db: &B,
    scope: &TenantScope,
    id: ConversationId,
    history: u32,
) -> StoreResult<(Conversation, Vec<HistoryTurn>)> {
    let rows = db.fetch_chat_context(scope, id, i64::from(history)).await?;
    ConversationHistoryRow::collect(rows)
}

/// Records a failed agent call.
pub(crate) async fn record_agent_error<B: SqlBackend>(
    db: &B,
    scope: &TenantScope,
    error: AgentCallError,
) -> StoreResult<()> {
    let mut tx = db.write(scope.tenant_id()).await?;
    tx.execute(
        "INSERT INTO agent_call_errors (tenant_id, id, agent_id, agent_name, kind, created_at) \
         VALUES ($1, $2, $3, $4, $5, $6)",
        Args::new()
            .bind(scope.tenant_id())
            .bind(uuid::Uuid::now_v7())
            .bind(error.agent_id)
            .bind(error.agent_name)
            .bind(error.kind)
            .bind(error.at),
    )
    .await?;
    tx.commit().await
}

/// The statement's parameters `$1`–`$3` naming the scope's user's key.
fn key_args(scope: &TenantScope, key: &str) -> Args {
    Args::new()
        .bind(scope.tenant_id())
        .bind(scope.user_id())
        .bind(key)
}

/// Claims an idempotency key of the scope's user for a request with this hash; a record
/// past its time, or a claim whose request never answered, is taken over.
pub(crate) async fn idempotency_start<B: SqlBackend>(
    db: &B,
    scope: &TenantScope,
    key: &str,
    request_hash: &[u8],
    now: DateTime<Utc>,
) -> StoreResult<IdempotencyStart> {
    let mut tx = db.write(scope.tenant_id()).await?;
    let inserted = tx
        .execute(
            "INSERT INTO idempotency_keys (tenant_id, user_id, key, request_hash, response, created_at) \
             VALUES ($1, $2, $3, $4, NULL, $5) ON CONFLICT (tenant_id, user_id, key) DO NOTHING",
            key_args(scope, key).bind(request_hash).bind(now),
        )
        .await?;
    let outcome = if inserted == 1 {
        IdempotencyStart::Started
    } else {
        claim_existing(&mut tx, scope, key, request_hash, now).await?
    };
    tx.commit().await?;
    Ok(outcome)
}

async fn claim_existing<T: Tx>(
    tx: &mut T,
    scope: &TenantScope,
    key: &str,
    request_hash: &[u8],
    now: DateTime<Utc>,
) -> StoreResult<IdempotencyStart> {
    let (hash, response, created_at): (Vec<u8>, Option<Json<serde_json::Value>>, crate::rows::Ts) =
        tx.fetch_one(
            "SELECT request_hash, response, created_at FROM idempotency_keys \
             WHERE tenant_id = $1 AND user_id = $2 AND key = $3",
            key_args(scope, key),
        )
        .await?;
    let age = now - created_at.0;
    let abandoned = response.is_none() && age > IDEMPOTENCY_STALE;
    Ok(if age > IDEMPOTENCY_TTL || abandoned {
        tx.execute(
            "UPDATE idempotency_keys SET request_hash = $4, response = NULL, created_at = $5 \
             WHERE tenant_id = $1 AND user_id = $2 AND key = $3",
            key_args(scope, key).bind(request_hash).bind(now),
        )
        .await?;
        IdempotencyStart::Started
    } else if hash != request_hash {
        IdempotencyStart::Mismatch
    } else {
        match response {
            Some(Json(answer)) => IdempotencyStart::Completed(answer),
            None => IdempotencyStart::InFlight,
        }
    })
}

/// Records the answer of a claimed key.
pub(crate) async fn idempotency_complete<B: SqlBackend>(
    db: &B,
    scope: &TenantScope,
    key: &str,
    response: &serde_json::Value,
) -> StoreResult<()> {
    let mut tx = db.write(scope.tenant_id()).await?;
    tx.execute(
        "UPDATE idempotency_keys SET response = $4 WHERE tenant_id = $1 AND user_id = $2 AND key = $3",
        key_args(scope, key).json(response),
    )
    .await?;
    tx.commit().await
}

/// Releases a claimed key whose request failed, so that a retry runs again.
pub(crate) async fn idempotency_release<B: SqlBackend>(
    db: &B,
    scope: &TenantScope,
    key: &str,
) -> StoreResult<()> {
    let mut tx = db.write(scope.tenant_id()).await?;
    tx.execute(
        "DELETE FROM idempotency_keys WHERE tenant_id = $1 AND user_id = $2 AND key = $3 \
         AND response IS NULL",
        key_args(scope, key),
    )
    .await?;
    tx.commit().await
}
