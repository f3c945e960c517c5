//! Rows as both backends return them, and their conversion to the domain types.
//!
//! One set of row structs serves both databases: ids are UUIDs on both, JSON columns go
//! through [`Json`], and timestamps through [`Ts`], which is `timestamptz` on PostgreSQL
//! and integer microseconds on SQLite (so that they sort and compare as numbers there).

use chrono::{DateTime, Utc};
use sqlx::encode::IsNull;
use sqlx::error::BoxDynError;
use sqlx::types::Json;
use sqlx::{Decode, Encode, Postgres, Sqlite, Type};
use switchyard_core::Role;
use switchyard_core::model::{
    Agent, AgentKind, ApiKey, Conversation, HistoryTurn, Tenant, TenantStatus, Turn, User,
    UserStatus,
};
use switchyard_core::page::{Cursor, Page, PageRequest};
use switchyard_core::settings::TenantSettings;
use uuid::Uuid;

use crate::{StoreError, StoreResult};

/// A timestamp column.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) struct Ts(pub DateTime<Utc>);

impl From<DateTime<Utc>> for Ts {
    fn from(t: DateTime<Utc>) -> Self {
        Ts(t)
    }
}

impl Type<Postgres> for Ts {
    fn type_info() -> sqlx::postgres::PgTypeInfo {
        <DateTime<Utc> as Type<Postgres>>::type_info()
    }
}

impl Encode<'_, Postgres> for Ts {
    fn encode_by_ref(
        &self,
        buf: &mut sqlx::postgres::PgArgumentBuffer,
    ) -> Result<IsNull, BoxDynError> {
        <DateTime<Utc> as Encode<Postgres>>::encode_by_ref(&self.0, buf)
    }
}

impl<'r> Decode<'r, Postgres> for Ts {
    fn decode(value: sqlx::postgres::PgValueRef<'r>) -> Result<Self, BoxDynError> {
        <DateTime<Utc> as Decode<Postgres>>::decode(value).map(Ts)
    }
}

impl Type<Sqlite> for Ts {
    fn type_info() -> sqlx::sqlite::SqliteTypeInfo {
        <i64 as Type<Sqlite>>::type_info()
    }
}

impl Encode<'_, Sqlite> for Ts {
    fn encode_by_ref(
        &self,
        buf: &mut <Sqlite as sqlx::Database>::ArgumentBuffer,
    ) -> Result<IsNull, BoxDynError> {
        <i64 as Encode<Sqlite>>::encode(self.0.timestamp_micros(), buf)
    }
}

impl<'r> Decode<'r, Sqlite> for Ts {
    fn decode(value: sqlx::sqlite::SqliteValueRef<'r>) -> Result<Self, BoxDynError> {
        let micros = <i64 as Decode<Sqlite>>::decode(value)?;
        DateTime::from_timestamp_micros(micros)
            .map(Ts)
            .ok_or_else(|| format!("timestamp out of range: {micros}").into())
    }
}

fn corrupt(what: &str, value: &str) -> StoreError {
    StoreError::Other(format!("unexpected {what} in the database: {value:?}"))
}

#[derive(sqlx::FromRow)]
pub(crate) struct TenantRow {
    pub id: Uuid,
    pub slug: String,
    pub name: String,
    pub status: String,
    pub settings: Json<TenantSettings>,
    pub agents_version: i64,
    pub created_at: Ts,
}

impl TryFrom<TenantRow> for Tenant {
    type Error = StoreError;

    fn try_from(r: TenantRow) -> StoreResult<Self> {
        Ok(Tenant {
            id: r.id.into(),
            status: TenantStatus::parse(&r.status)
                .ok_or_else(|| corrupt("tenant status", &r.status))?,
            slug: r.slug,
            name: r.name,
            settings: r.settings.0,
            agents_version: r.agents_version,
            created_at: r.created_at.0,
        })
    }
}

#[derive(sqlx::FromRow)]
pub(crate) struct UserRow {
    pub tenant_id: Uuid,
    pub id: Uuid,
    pub email: String,
    pub display_name: Option<String>,
    pub role: String,
    pub status: String,
    pub created_at: Ts,
}

impl TryFrom<UserRow> for User {
    type Error = StoreError;

    fn try_from(r: UserRow) -> StoreResult<Self> {
        Ok(User {
            id: r.id.into(),
            tenant_id: r.tenant_id.into(),
            role: Role::parse(&r.role).ok_or_else(|| corrupt("role", &r.role))?,
            status: UserStatus::parse(&r.status)
                .ok_or_else(|| corrupt("user status", &r.status))?,
            email: r.email,
            display_name: r.display_name,
            created_at: r.created_at.0,
        })
    }
}

/// A tenant and one of its users, read together by the authentication look-ups.
#[derive(sqlx::FromRow)]
pub(crate) struct PrincipalRow {
    #[sqlx(flatten)]
    pub user: UserRow,
    pub t_slug: String,
    pub t_name: String,
    pub t_status: String,
    pub t_settings: Json<TenantSettings>,
    pub t_agents_version: i64,
    pub t_created_at: Ts,
    pub tokens_valid_after: Option<Ts>,
    pub password_hash: Option<String>,
}

impl PrincipalRow {
    pub fn into_parts(self) -> StoreResult<(crate::PrincipalRecord, Option<String>)> {
        let tenant = TenantRow {
            id: self.user.tenant_id,
            slug: self.t_slug,
            name: self.t_name,
            status: self.t_status,
            settings: self.t_settings,
            agents_version: self.t_agents_version,
            created_at: self.t_created_at,
        }
        .try_into()?;
        let user = self.user.try_into()?;
        Ok((
            crate::PrincipalRecord::new(tenant, user, self.tokens_valid_after.map(|t| t.0)),
            self.password_hash,
        ))
    }
}

#[derive(sqlx::FromRow)]
pub(crate) struct ApiKeyRow {
    pub id: Uuid,
    pub user_id: Uuid,
    pub name: String,
    pub prefix: String,
    pub created_at: Ts,
    pub last_used_at: Option<Ts>,
    pub revoked_at: Option<Ts>,
}

impl From<ApiKeyRow> for ApiKey {
    fn from(r: ApiKeyRow) -> Self {
        ApiKey {
            id: r.id.into(),
            user_id: r.user_id.into(),
            name: r.name,
            prefix: r.prefix,
            created_at: r.created_at.0,
            last_used_at: r.last_used_at.map(|t| t.0),
            revoked_at: r.revoked_at.map(|t| t.0),
        }
    }
}

#[derive(sqlx::FromRow)]
pub(crate) struct AgentRow {
    pub tenant_id: Uuid,
    pub id: Uuid,
    pub name: String,
    pub description: String,
    pub kind: String,
    pub config: Json<serde_json::Value>,
    pub intents: Json<Vec<String>>,
    pub keywords: Json<Vec<String>>,
    pub examples: Json<Vec<String>>,
    pub enabled: bool,
    pub priority: i32,
    pub is_fallback: bool,
    pub created_at: Ts,
    pub updated_at: Ts,
}

/// A tenant's agents-version beside one of its enabled agents (none: a tenant without one).
pub(crate) struct RoutableAgentRow {
    pub version: i64,
    pub agent: Option<AgentRow>,
}

impl<'r, R: sqlx::Row> sqlx::FromRow<'r, R> for RoutableAgentRow
where
    AgentRow: sqlx::FromRow<'r, R>,
    &'r str: sqlx::ColumnIndex<R>,
    i64: sqlx::Decode<'r, R::Database> + sqlx::Type<R::Database>,
    Option<Uuid>: sqlx::Decode<'r, R::Database> + sqlx::Type<R::Database>,
{
    fn from_row(row: &'r R) -> Result<Self, sqlx::Error> {
        let version = row.try_get("t_agents_version")?;
        let id: Option<Uuid> = row.try_get("id")?;
        let agent = match id {
            Some(_) => Some(AgentRow::from_row(row)?),
            None => None,
        };
        Ok(Self { version, agent })
    }
}

impl TryFrom<AgentRow> for Agent {
    type Error = StoreError;

    fn try_from(r: AgentRow) -> StoreResult<Self> {
        Ok(Agent {
            id: r.id.into(),
            tenant_id: r.tenant_id.into(),
            kind: AgentKind::parse(&r.kind).ok_or_else(|| corrupt("agent kind", &r.kind))?,
            name: r.name,
            description: r.description,
            config: r.config.0,
            intents: r.intents.0,
            keywords: r.keywords.0,
            examples: r.examples.0,
            enabled: r.enabled,
            priority: r.priority,
            is_fallback: r.is_fallback,
            created_at: r.created_at.0,
            updated_at: r.updated_at.0,
        })
    }
}

#[derive(Clone, sqlx::FromRow)]
pub(crate) struct ConversationRow {
    pub tenant_id: Uuid,
    pub id: Uuid,
    pub user_id: Uuid,
    pub title: Option<String>,
    pub primary_intent: Option<String>,
    pub last_agent_id: Option<Uuid>,
    pub message_count: i64,
    pub created_at: Ts,
    pub last_activity: Ts,
}

impl ConversationRow {
    /// A page of a conversation list (latest activity first) from its rows, fetched with
    /// [`PageRequest::fetch_limit`].
    pub fn page(rows: Vec<Self>, page: &PageRequest) -> Page<Conversation> {
        let conversations: Vec<Conversation> = rows.into_iter().map(Into::into).collect();
        Page::from_rows(conversations, page, |c| {
            Cursor::after(c.last_activity, c.id)
        })
    }
}

impl From<ConversationRow> for Conversation {
    fn from(r: ConversationRow) -> Self {
        Conversation {
            id: r.id.into(),
            tenant_id: r.tenant_id.into(),
            user_id: r.user_id.into(),
            title: r.title,
            primary_intent: r.primary_intent,
            last_agent_id: r.last_agent_id.map(Into::into),
            message_count: r.message_count,
            created_at: r.created_at.0,
            last_activity: r.last_activity.0,
        }
    }
}

#[derive(sqlx::FromRow)]
pub(crate) struct TurnRow {
    pub tenant_id: Uuid,
    pub id: Uuid,
    pub conversation_id: Uuid,
    pub user_message: String,
    pub agent_response: Option<String>,
    pub intent_category: Option<String>,
    pub intent_confidence: Option<f64>,
    pub selected_agent_id: Option<Uuid>,
    pub routing: Json<Box<serde_json::value::RawValue>>,
    pub latency_ms: Option<f64>,
    pub created_at: Ts,
}

impl From<TurnRow> for Turn {
    fn from(r: TurnRow) -> Self {
        Turn {
            id: r.id.into(),
            tenant_id: r.tenant_id.into(),
            conversation_id: r.conversation_id.into(),
            user_message: r.user_message,
            agent_response: r.agent_response,
            intent_category: r.intent_category,
            intent_confidence: r.intent_confidence,
            selected_agent_id: r.selected_agent_id.map(Into::into),
            routing: r.routing.0,
            latency_ms: r.latency_ms,
            created_at: r.created_at.0,
        }
    }
}

/// Converts every row of a list.
pub(crate) fn convert_all<R, T>(rows: Vec<R>) -> StoreResult<Vec<T>>
where
    T: TryFrom<R, Error = StoreError>,
{
    rows.into_iter().map(T::try_from).collect()
}

/// A conversation and (through a left join) one of its turns, with the turn's columns
/// named `t_…`; a conversation without turns comes as one row with no turn.
#[derive(sqlx::FromRow)]
pub(crate) struct ConversationTurnRow {
    #[sqlx(flatten)]
    pub conversation: ConversationRow,
    pub t_id: Option<Uuid>,
    pub t_user_message: Option<String>,
    pub t_agent_response: Option<String>,
    pub t_intent_category: Option<String>,
    pub t_intent_confidence: Option<f64>,
    pub t_selected_agent_id: Option<Uuid>,
    pub t_routing: Option<Json<Box<serde_json::value::RawValue>>>,
    pub t_latency_ms: Option<f64>,
    pub t_created_at: Option<Ts>,
}

impl ConversationTurnRow {
    fn turn(self) -> Option<Turn> {
        Some(Turn {
            id: self.t_id?.into(),
            tenant_id: self.conversation.tenant_id.into(),
            conversation_id: self.conversation.id.into(),
            user_message: self.t_user_message?,
            agent_response: self.t_agent_response,
            intent_category: self.t_intent_category,
            intent_confidence: self.t_intent_confidence,
            selected_agent_id: self.t_selected_agent_id.map(Into::into),
            routing: self.t_routing.map_or_else(null_json, |j| j.0),
            latency_ms: self.t_latency_ms,
            created_at: self.t_created_at?.0,
        })
    }

    /// The conversation and a page of its turns (oldest first) from the rows, fetched with
    /// [`PageRequest::fetch_limit`]; no rows means no conversation.
    pub fn page(rows: Vec<Self>, page: &PageRequest) -> StoreResult<(Conversation, Page<Turn>)> {
        let (conversation, turns) = Self::collect(rows)?;
        let turns = Page::from_rows(turns, page, |t| Cursor::after(t.created_at, t.id));
        Ok((conversation, turns))
    }

    /// The conversation and its turns, in the rows' order; no rows means no conversation.
    fn collect(rows: Vec<Self>) -> StoreResult<(Conversation, Vec<Turn>)> {
        let mut rows = rows.into_iter();
        let first = rows.next().ok_or(StoreError::NotFound)?;
        let conversation: Conversation = first.conversation.clone().into();
        let mut turns: Vec<Turn> = first.turn().into_iter().collect();
        turns.extend(rows.filter_map(ConversationTurnRow::turn));
        Ok((conversation, turns))
    }
}

/// A conversation and (through a left join) one message of its history, named `h_…`.
#[derive(sqlx::FromRow)]
pub(crate) struct ConversationHistoryRow {
    #[sqlx(flatten)]
    pub conversation: ConversationRow,
    pub h_id: Option<Uuid>,
    pub h_user_message: Option<String>,
    pub h_agent_response: Option<String>,
    pub h_created_at: Option<Ts>,
}

impl ConversationHistoryRow {
    /// The conversation and its history, in the rows' order; no rows means no conversation.
    pub fn collect(rows: Vec<Self>) -> StoreResult<(Conversation, Vec<HistoryTurn>)> {
        let mut rows = rows.into_iter().peekable();
        let conversation: Conversation = rows
            .peek()
            .ok_or(StoreError::NotFound)?
            .conversation
            .clone()
            .into();
        let history = rows
            .filter_map(|r| {
                Some(HistoryTurn {
                    id: r.h_id?.into(),
                    user_message: r.h_user_message?,
                    agent_response: r.h_agent_response,
                    created_at: r.h_created_at?.0,
                })
            })
            .collect();
        Ok((conversation, history))
    }
}

/// The result of a turn write: the updated conversation and the new turn's id.
#[derive(sqlx::FromRow)]
pub(crate) struct WrittenTurnRow {
    #[sqlx(flatten)]
    pub conversation: ConversationRow,
    pub t_id: Uuid,
}

impl WrittenTurnRow {
    /// The conversation as updated, and the turn as written.
    pub fn into_written(self, turn: &switchyard_core::model::NewTurn) -> (Conversation, Turn) {
        let conversation: Conversation = self.conversation.into();
        let written = Turn {
            id: self.t_id.into(),
            tenant_id: conversation.tenant_id,
            conversation_id: conversation.id,
            user_message: turn.user_message.clone(),
            agent_response: Some(turn.agent_response.clone()),
            intent_category: turn.intent_category.clone(),
            intent_confidence: turn.intent_confidence,
            selected_agent_id: turn.selected_agent_id,
            routing: serde_json::value::to_raw_value(&turn.routing).unwrap_or_else(|_| null_json()),
            latency_ms: turn.latency_ms,
            // As stored: both databases keep microseconds.
            created_at: chrono::SubsecRound::trunc_subsecs(turn.created_at, 6),
        };
        (conversation, written)
    }
}

/// JSON `null`, where a routing record is missing.
pub(crate) fn null_json() -> Box<serde_json::value::RawValue> {
    serde_json::value::RawValue::from_string("null".into())
        .unwrap_or_else(|_| unreachable!("null is JSON"))
}

/// A row of an authenticated read (PostgreSQL's `switchyard_authed_…` functions, migration
/// 7): the principal, in the `p_…` columns, or a row of the read itself.
pub(crate) enum AuthedRow<T> {
    /// The token's user and tenant.
    Principal(Box<PrincipalRow>),
    /// A row of the read.
    Item(T),
}

impl<'r, T> sqlx::FromRow<'r, sqlx::postgres::PgRow> for AuthedRow<T>
where
    T: sqlx::FromRow<'r, sqlx::postgres::PgRow>,
{
    fn from_row(row: &'r sqlx::postgres::PgRow) -> Result<Self, sqlx::Error> {
        use sqlx::Row as _;
        let Some(id) = row.try_get::<Option<Uuid>, _>("p_id")? else {
            return T::from_row(row).map(Self::Item);
        };
        Ok(Self::Principal(Box::new(PrincipalRow {
            user: UserRow {
                tenant_id: row.try_get("p_tenant_id")?,
                id,
                email: row.try_get("p_email")?,
                display_name: row.try_get("p_display_name")?,
                role: row.try_get("p_role")?,
                status: row.try_get("p_status")?,
                created_at: row.try_get("p_created_at")?,
            },
            t_slug: row.try_get("p_t_slug")?,
            t_name: row.try_get("p_t_name")?,
            t_status: row.try_get("p_t_status")?,
            t_settings: row.try_get("p_t_settings")?,
            t_agents_version: row.try_get("p_t_agents_version")?,
            t_created_at: row.try_get("p_t_created_at")?,
            tokens_valid_after: row.try_get("p_tokens_valid_after")?,
            password_hash: None,
        })))
    }
}

impl<T> AuthedRow<T> {
    /// The principal (the first row; no rows: no such user in the tenant) and the read's
    /// rows, or `None` for them when the function did not run the read (the user or the
    /// tenant is not active).
    pub fn split(rows: Vec<Self>) -> StoreResult<(crate::PrincipalRecord, Option<Vec<T>>)> {
        let mut rows = rows.into_iter();
        let Some(Self::Principal(principal)) = rows.next() else {
            return Err(StoreError::NotFound);
        };
        let (record, _) = principal.into_parts()?;
        if !record.is_active() {
            return Ok((record, None));
        }
        let items = rows
            .map(|row| match row {
                Self::Item(item) => Ok(item),
                Self::Principal(_) => Err(StoreError::Other(
                    "an authenticated read returned a second principal".into(),
                )),
            })
            .collect::<StoreResult<Vec<T>>>()?;
        Ok((record, Some(items)))
    }
}
