//! `switchyard export` and `switchyard import`: a tenant's users, agents, conversations and
//! turns as JSON Lines, one record per line, the first a header. Secrets stay behind:
//! users come without password hashes (an admin sets passwords or issues tokens after an
//! import), agents without their `secret` and `headers` (set them again after an import),
//! and API keys and idempotency records are not exported.

use std::io::{BufRead, Write};

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use switchyard_core::model::{Agent, AgentKind, Conversation, NewTenant, Turn, User, UserStatus};
use switchyard_core::page::PageRequest;
use switchyard_core::settings::TenantSettings;
use switchyard_core::{AgentId, ConversationId, MessageId, Role, UserId};
use switchyard_store::{ConversationFilter, Opened, StoreError, TenantData};
use uuid::Uuid;

/// The format's version, in the header.
const FORMAT: &str = "switchyard-tenant-export";
const VERSION: u32 = 1;

/// One line of an export.
#[derive(Debug, Serialize, Deserialize)]
#[serde(tag = "record", rename_all = "snake_case", deny_unknown_fields)]
#[expect(
    clippy::large_enum_variant,
    reason = "records are read and written one at a time"
)]
enum Record {
    Header {
        format: String,
        version: u32,
        slug: String,
        name: String,
        settings: TenantSettings,
        exported_at: DateTime<Utc>,
    },
    User {
        id: Uuid,
        email: String,
        display_name: Option<String>,
        role: Role,
        status: UserStatus,
        created_at: DateTime<Utc>,
    },
    Agent {
        id: Uuid,
        name: String,
        description: String,
        kind: AgentKind,
        config: serde_json::Value,
        intents: Vec<String>,
        keywords: Vec<String>,
        examples: Vec<String>,
        enabled: bool,
        priority: i32,
        is_fallback: bool,
        created_at: DateTime<Utc>,
        updated_at: DateTime<Utc>,
        /// What the export left out of `config` (`secret`, `headers.NAME`): set again
        /// after an import.
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        left_out: Vec<String>,
    },
    Conversation {
        id: Uuid,
        user_id: Uuid,
        title: Option<String>,
        primary_intent: Option<String>,
        last_agent_id: Option<Uuid>,
        message_count: i64,
        created_at: DateTime<Utc>,
        last_activity: DateTime<Utc>,
    },
    Turn {
        id: Uuid,
        conversation_id: Uuid,
        user_message: String,
        agent_response: Option<String>,
        intent_category: Option<String>,
        intent_confidence: Option<f64>,
        selected_agent_id: Option<Uuid>,
        routing: serde_json::Value,
        latency_ms: Option<f64>,
        created_at: DateTime<Utc>,
    },
}

/// What [`without_secrets`] leaves out of an agent's config: `secret`, `headers.NAME`.
fn secrets_in(config: &serde_json::Value) -> Vec<String> {
    let mut left_out = Vec::new();
    if config.get("secret").is_some_and(|s| !s.is_null()) {
        left_out.push("secret".to_owned());
    }
    if let Some(headers) = config.get("headers").and_then(|h| h.as_object()) {
        left_out.extend(headers.keys().map(|name| format!("headers.{name}")));
    }
    left_out
}

/// An agent's config without what may be secret.
fn without_secrets(config: &serde_json::Value) -> serde_json::Value {
    let mut config = config.clone();
    if let Some(obj) = config.as_object_mut() {
        obj.remove("secret");
        obj.remove("headers");
    }
    config
}

fn write(out: &mut dyn Write, record: &Record) -> Result<(), String> {
    let line = serde_json::to_string(record).map_err(|e| e.to_string())?;
    writeln!(out, "{line}").map_err(|e| format!("writing the export: {e}"))
}

/// Counts of what an export or import carried.
#[derive(Debug, Default)]
pub struct Counts {
    pub users: usize,
    pub agents: usize,
    pub conversations: usize,
    pub turns: usize,
    /// Per agent (name, id), the secrets of its config an export left out.
    pub left_out: Vec<(String, Uuid, Vec<String>)>,
}

/// Writes the tenant's data to `out`.
pub async fn export(
    Opened { store, operator }: &Opened,
    slug: &str,
    out: &mut dyn Write,
) -> Result<Counts, String> {
    let tenant = store
        .find_tenant_by_slug(operator, slug)
        .await
        .map_err(|e| format!("tenant {slug:?}: {e}"))?;
    let scope = operator.admin_of(tenant.id);
    let mut counts = Counts::default();
    write(
        out,
        &Record::Header {
            format: FORMAT.into(),
            version: VERSION,
            slug: tenant.slug.clone(),
            name: tenant.name.clone(),
            settings: tenant.settings.clone(),
            exported_at: Utc::now(),
        },
    )?;
    let fail = |e: StoreError| e.to_string();
    let mut page = PageRequest::first(100);
    loop {
        let users = store.list_users(&scope, page).await.map_err(fail)?;
        for u in users.items {
            counts.users += 1;
            write(
                out,
                &Record::User {
                    id: u.id.as_uuid(),
                    email: u.email,
                    display_name: u.display_name,
                    role: u.role,
                    status: u.status,
                    created_at: u.created_at,
                },
            )?;
        }
        match users.next {
            Some(c) => page = PageRequest::after(100, c),
            None => break,
        }
    }
    let mut page = PageRequest::first(100);
    loop {
        let agents = store.list_agents(&scope, page).await.map_err(fail)?;
        for a in agents.items {
            counts.agents += 1;
            write(
                out,
                &Record::Agent {
                    id: a.id.as_uuid(),
                    left_out: secrets_in(&a.config),
                    config: without_secrets(&a.config),
                    name: a.name,
                    description: a.description,
                    kind: a.kind,
                    intents: a.intents,
                    keywords: a.keywords,
                    examples: a.examples,
                    enabled: a.enabled,
                    priority: a.priority,
                    is_fallback: a.is_fallback,
                    created_at: a.created_at,
                    updated_at: a.updated_at,
                },
            )?;
        }
        match agents.next {
            Some(c) => page = PageRequest::after(100, c),
            None => break,
        }
    }
    let mut page = PageRequest::first(100);
    loop {
        let conversations = store
            .list_conversations(&scope, ConversationFilter::All, page)
            .await
            .map_err(fail)?;
        for c in conversations.items {
            counts.conversations += 1;
            write(
                out,
                &Record::Conversation {
                    id: c.id.as_uuid(),
                    user_id: c.user_id.as_uuid(),
                    title: c.title.clone(),
                    primary_intent: c.primary_intent.clone(),
                    last_agent_id: c.last_agent_id.map(|a| a.as_uuid()),
                    message_count: c.message_count,
                    created_at: c.created_at,
                    last_activity: c.last_activity,
                },
            )?;
            let mut turns_page = PageRequest::first(100);
            loop {
                let (_, turns) = store
                    .list_turns(&scope, c.id, turns_page)
                    .await
                    .map_err(fail)?;
                for t in turns.items {
                    counts.turns += 1;
                    write(
                        out,
                        &Record::Turn {
                            id: t.id.as_uuid(),
                            conversation_id: t.conversation_id.as_uuid(),
                            user_message: t.user_message,
                            agent_response: t.agent_response,
                            intent_category: t.intent_category,
                            intent_confidence: t.intent_confidence,
                            selected_agent_id: t.selected_agent_id.map(|a| a.as_uuid()),
                            routing: serde_json::from_str(t.routing.get()).unwrap_or_default(),
                            latency_ms: t.latency_ms,
                            created_at: t.created_at,
                        },
                    )?;
                }
                match turns.next {
                    Some(cursor) => turns_page = PageRequest::after(100, cursor),
                    None => break,
                }
            }
        }
        match conversations.next {
            Some(cursor) => page = PageRequest::after(100, cursor),
            None => break,
        }
    }
    Ok(counts)
}

/// Reads an export from `input` into the tenant `slug` (created if missing), in one
/// transaction: ids that already exist there refuse the whole import.
pub async fn import(
    Opened { store, operator }: &Opened,
    slug: &str,
    input: &mut dyn BufRead,
) -> Result<Counts, String> {
    let mut data = TenantData::default();
    let mut header = None;
    let mut counts_left_out = Vec::new();
    for (n, line) in input.lines().enumerate() {
        let line = line.map_err(|e| format!("reading the export: {e}"))?;
        if line.trim().is_empty() {
            continue;
        }
        let record: Record =
            serde_json::from_str(&line).map_err(|e| format!("line {}: {e}", n + 1))?;
        let placeholder_tenant = Default::default();
        match record {
            Record::Header {
                format,
                version,
                name,
                settings,
                ..
            } => {
                if format != FORMAT || version != VERSION {
                    return Err(format!(
                        "line {}: not a {FORMAT} version {VERSION} file",
                        n + 1
                    ));
                }
                header = Some((name, settings));
            }
            _ if header.is_none() => return Err("the file does not start with its header".into()),
            Record::User {
                id,
                email,
                display_name,
                role,
                status,
                created_at,
            } => data.users.push(User {
                id: UserId::from(id),
                tenant_id: placeholder_tenant,
                email,
                display_name,
                role,
                status,
                created_at,
            }),
            Record::Agent {
                id,
                name,
                description,
                kind,
                config,
                intents,
                keywords,
                examples,
                enabled,
                priority,
                is_fallback,
                created_at,
                updated_at,
                left_out,
            } => {
                if !left_out.is_empty() {
                    counts_left_out.push((name.clone(), id, left_out));
                }
                data.agents.push(Agent {
                    id: AgentId::from(id),
                    tenant_id: placeholder_tenant,
                    name,
                    description,
                    kind,
                    config,
                    intents,
                    keywords,
                    examples,
                    enabled,
                    priority,
                    is_fallback,
                    created_at,
                    updated_at,
                });
            }
            Record::Conversation {
                id,
                user_id,
                title,
                primary_intent,
                last_agent_id,
                message_count,
                created_at,
                last_activity,
            } => data.conversations.push(Conversation {
                id: ConversationId::from(id),
                tenant_id: placeholder_tenant,
                user_id: UserId::from(user_id),
                title,
                primary_intent,
                last_agent_id: last_agent_id.map(AgentId::from),
                message_count,
                created_at,
                last_activity,
            }),
            Record::Turn {
                id,
                conversation_id,
                user_message,
                agent_response,
                intent_category,
                intent_confidence,
                selected_agent_id,
                routing,
                latency_ms,
                created_at,
            } => data.turns.push(Turn {
                id: MessageId::from(id),
                tenant_id: placeholder_tenant,
                conversation_id: ConversationId::from(conversation_id),
                user_message,
                agent_response,
                intent_category,
                intent_confidence,
                selected_agent_id: selected_agent_id.map(AgentId::from),
                routing: serde_json::value::to_raw_value(&routing)
                    .map_err(|e| format!("line {}: {e}", n + 1))?,
                latency_ms,
                created_at,
            }),
        }
    }
    let (name, settings) = header.ok_or("the file is empty")?;
    let (tenant, created) = match store.find_tenant_by_slug(operator, slug).await {
        Ok(t) => (t, false),
        Err(StoreError::NotFound) => {
            let (t, _) = store
                .create_tenant(
                    operator,
                    NewTenant {
                        slug: slug.into(),
                        name,
                        settings,
                    },
                    None,
                )
                .await
                .map_err(|e| e.to_string())?;
            (t, true)
        }
        Err(e) => return Err(e.to_string()),
    };
    let scope = operator.admin_of(tenant.id);
    if let Err(e) = store.import_tenant_data(&scope, &data).await {
        // The import is one transaction, so nothing of it is left; nor is the tenant made
        // for it.
        if created && let Err(cleanup) = store.delete_tenant(operator, tenant.id).await {
            return Err(format!(
                "nothing was imported ({e}), but the tenant {slug:?} made for it could not be removed: {cleanup}"
            ));
        }
        return Err(match e {
            StoreError::Conflict { constraint } => format!(
                "nothing was imported: the file clashes with what tenant {slug:?} already has ({constraint}); import into a new tenant"
            ),
            StoreError::NotFound => "nothing was imported: a record refers to a user or conversation the file does not have".into(),
            other => format!("nothing was imported: {other}"),
        });
    }
    Ok(Counts {
        users: data.users.len(),
        agents: data.agents.len(),
        conversations: data.conversations.len(),
        turns: data.turns.len(),
        left_out: counts_left_out,
    })
}
