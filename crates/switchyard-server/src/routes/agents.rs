//! The tenant's agents: admins manage them, members read them.

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use switchyard_agents::{AgentError, AgentInvoker as _, AgentRequest, Names};
use switchyard_core::agent_config::AgentConfig;
use switchyard_core::model::{Agent, AgentFields, AgentKind};
use switchyard_core::{AgentId, ConversationId, MessageId};
use uuid::Uuid;

use crate::api::{AgentOut, AgentTestOut, CreateAgent, ImportAgent, List, PageParams, PatchAgent};
use crate::app::AppState;
use crate::auth::{Admin, Principal};
use crate::error::{ApiError, ApiResult, Problem};
use crate::extract::{ApiJson, ApiPath, ApiQuery, page_request};
use crate::validate::name_problem;

fn check_list(field: &str, items: &[String], max_items: usize, max_chars: usize) -> ApiResult<()> {
    if items.len() > max_items {
        return Err(ApiError::unprocessable(format!(
            "`{field}` has at most {max_items} entries"
        )));
    }
    for item in items {
        if let Some(problem) = name_problem(field, item, max_chars) {
            return Err(ApiError::unprocessable(problem));
        }
    }
    Ok(())
}

/// Checks an agent's fields as a whole, the config against its kind and the API key
/// variables the operator granted the tenant (`allowed_key_envs`).
pub(crate) fn check_fields(allowed_key_envs: &[&str], fields: &AgentFields) -> ApiResult<()> {
    if let Some(problem) = name_problem("name", &fields.name, 64) {
        return Err(ApiError::unprocessable(problem));
    }
    if fields.name != fields.name.trim() {
        return Err(ApiError::unprocessable(
            "`name` must not start or end with spaces",
        ));
    }
    if fields.description.chars().count() > 2000 {
        return Err(ApiError::unprocessable(
            "`description` has at most 2000 characters",
        ));
    }
    check_list("intents", &fields.intents, 100, 100)?;
    check_list("keywords", &fields.keywords, 200, 100)?;
    check_list("examples", &fields.examples, 2000, 1000)?;
    if !(-1000..=1000).contains(&fields.priority) {
        return Err(ApiError::unprocessable(
            "`priority` must be between -1000 and 1000",
        ));
    }
    let config =
        AgentConfig::parse(fields.kind, &fields.config).map_err(ApiError::unprocessable)?;
    if let AgentConfig::Openai(c) = &config
        && let Some(var) = &c.api_key_env
        && !allowed_key_envs.contains(&var.as_str())
    {
        return Err(ApiError::unprocessable(format!(
            "`api_key_env`: {var} is not granted to this tenant; the operator grants \
             variables with the tenant setting `agent_key_envs` or SWITCHYARD_AGENT_KEY_ENVS"
        )));
    }
    Ok(())
}

/// Registers an agent.
#[utoipa::path(
    post,
    path = "/v1/agents",
    tag = "agents",
    security(("bearer" = [])),
    request_body = CreateAgent,
    responses(
        (status = 201, body = AgentOut),
        (status = 403, body = Problem, content_type = "application/problem+json"),
        (status = 409, body = Problem, content_type = "application/problem+json"),
        (status = 422, body = Problem, content_type = "application/problem+json"),
    )
)]
pub async fn create_agent(
    Admin(admin): Admin,
    State(state): State<AppState>,
    ApiJson(body): ApiJson<CreateAgent>,
) -> ApiResult<(StatusCode, Json<AgentOut>)> {
    let fields = AgentFields::from(body);
    check_fields(&state.key_envs_for(&admin.tenant), &fields)?;
    super::check_quota(&state, &admin, switchyard_store::Owned::Agents).await?;
    let agent = state.store.create_agent(&admin.scope, fields).await?;
    Ok((StatusCode::CREATED, Json(agent.into())))
}

/// Lists the tenant's agents, oldest first.
#[utoipa::path(
    get,
    path = "/v1/agents",
    tag = "agents",
    security(("bearer" = [])),
    params(PageParams),
    responses((status = 200, body = List<AgentOut>))
)]
pub async fn list_agents(
    principal: Principal,
    State(state): State<AppState>,
    ApiQuery(params): ApiQuery<PageParams>,
) -> ApiResult<Json<List<AgentOut>>> {
    let page = page_request(params.limit.as_deref(), params.cursor.as_deref())?;
    let agents = state.store.list_agents(&principal.scope, page).await?;
    let tenant = principal.scope.tenant_id();
    state
        .shared
        .sync_circuits(&state.breakers, tenant, |id| {
            agents.items.iter().find(|a| a.id == id).map(|a| Names {
                tenant: &principal.tenant.slug,
                agent: &a.name,
            })
        })
        .await;
    Ok(Json(List::from_page(agents, |a| {
        let health = state.breakers.health(tenant, a.id);
        shown_to(&principal, AgentOut::new(a, health))
    })))
}

/// Reads an agent.
#[utoipa::path(
    get,
    path = "/v1/agents/{id}",
    tag = "agents",
    security(("bearer" = [])),
    params(("id" = Uuid, Path, description = "The agent's id")),
    responses((status = 200, body = AgentOut), (status = 404, body = Problem, content_type = "application/problem+json"))
)]
pub async fn get_agent(
    principal: Principal,
    State(state): State<AppState>,
    ApiPath(id): ApiPath<Uuid>,
) -> ApiResult<Json<AgentOut>> {
    let id = AgentId::from(id);
    let agent = state.store.get_agent(&principal.scope, id).await?;
    state
        .shared
        .sync_circuits(&state.breakers, principal.scope.tenant_id(), |other| {
            (other == id).then_some(Names {
                tenant: &principal.tenant.slug,
                agent: &agent.name,
            })
        })
        .await;
    let health = state.breakers.health(principal.scope.tenant_id(), id);
    Ok(Json(shown_to(&principal, AgentOut::new(agent, health))))
}

/// An agent as `principal` may see it: a member does not get the last error's text, which
/// may name addresses and ports the server reached.
fn shown_to(principal: &Principal, mut agent: AgentOut) -> AgentOut {
    if !principal.scope.is_admin() {
        agent.health.last_error = None;
    }
    agent
}

/// Changes an agent: the fields given replace the current ones.
#[utoipa::path(
    patch,
    path = "/v1/agents/{id}",
    tag = "agents",
    security(("bearer" = [])),
    params(("id" = Uuid, Path, description = "The agent's id")),
    request_body = PatchAgent,
    responses(
        (status = 200, body = AgentOut),
        (status = 404, body = Problem, content_type = "application/problem+json"),
        (status = 409, body = Problem, content_type = "application/problem+json"),
        (status = 422, body = Problem, content_type = "application/problem+json"),
    )
)]
pub async fn update_agent(
    Admin(admin): Admin,
    State(state): State<AppState>,
    ApiPath(id): ApiPath<Uuid>,
    ApiJson(body): ApiJson<PatchAgent>,
) -> ApiResult<Json<AgentOut>> {
    let id = AgentId::from(id);
    let current = state.store.get_agent(&admin.scope, id).await?;
    let fields = patched(current, body)?;
    check_fields(&state.key_envs_for(&admin.tenant), &fields)?;
    let agent = state.store.update_agent(&admin.scope, id, fields).await?;
    // A changed agent (a new address, say) starts with a closed circuit.
    state.breakers.forget(admin.scope.tenant_id(), id);
    state
        .shared
        .circuit_closed(admin.scope.tenant_id(), id)
        .await;
    Ok(Json(agent.into()))
}

/// An agent's fields with `body`'s changes (secrets shown as `***` kept), not yet checked.
pub(crate) fn patched(current: Agent, body: PatchAgent) -> ApiResult<AgentFields> {
    let config = match body.config {
        Some(update) => AgentConfig::keep_redacted(&update, &current.config),
        None if body
            .kind
            .is_some_and(|k| AgentKind::from(k) != current.kind) =>
        {
            return Err(ApiError::unprocessable(
                "changing `kind` needs a `config` for the new kind",
            ));
        }
        None => current.config.clone(),
    };
    Ok(AgentFields {
        name: body.name.unwrap_or(current.name),
        description: body.description.unwrap_or(current.description),
        kind: body.kind.map_or(current.kind, AgentKind::from),
        config,
        intents: body.intents.unwrap_or(current.intents),
        keywords: body.keywords.unwrap_or(current.keywords),
        examples: body.examples.unwrap_or(current.examples),
        enabled: body.enabled.unwrap_or(current.enabled),
        priority: body.priority.unwrap_or(current.priority),
        is_fallback: body.is_fallback.unwrap_or(current.is_fallback),
    })
}

/// Deletes an agent. Turns it answered keep their record of it.
#[utoipa::path(
    delete,
    path = "/v1/agents/{id}",
    tag = "agents",
    security(("bearer" = [])),
    params(("id" = Uuid, Path, description = "The agent's id")),
    responses((status = 204), (status = 404, body = Problem, content_type = "application/problem+json"))
)]
pub async fn delete_agent(
    Admin(admin): Admin,
    State(state): State<AppState>,
    ApiPath(id): ApiPath<Uuid>,
) -> ApiResult<StatusCode> {
    let id = AgentId::from(id);
    state.store.delete_agent(&admin.scope, id).await?;
    if let Some(labels) = state.breakers.forget(admin.scope.tenant_id(), id) {
        crate::metrics::forget_circuit(&labels);
    }
    state
        .shared
        .circuit_closed(admin.scope.tenant_id(), id)
        .await;
    Ok(super::no_content())
}

/// The message a test call sends.
pub const TEST_MESSAGE: &str = "Switchyard test call: please answer briefly.";

/// Sends one test call to the agent as a turn would (signed like one, with a new
/// conversation and message id and `metadata: {"switchyard_test": true}`) and says how it
/// went. Nothing is stored and no conversation is counted; the outcome counts in the agent's
/// health like a call's.
#[utoipa::path(
    post,
    path = "/v1/agents/{id}/test",
    tag = "agents",
    security(("bearer" = [])),
    params(("id" = Uuid, Path, description = "The agent's id")),
    responses(
        (status = 200, body = AgentTestOut, description = "The call was made; `ok` says whether the agent answered"),
        (status = 403, body = Problem, content_type = "application/problem+json"),
        (status = 404, body = Problem, content_type = "application/problem+json", description = "No such agent, or it is disabled"),
    )
)]
pub async fn test_agent(
    Admin(admin): Admin,
    State(state): State<AppState>,
    ApiPath(id): ApiPath<Uuid>,
) -> ApiResult<Json<AgentTestOut>> {
    let id = AgentId::from(id);
    let agent = state.store.get_agent(&admin.scope, id).await?;
    if !agent.enabled {
        return Err(ApiError::custom(
            StatusCode::NOT_FOUND,
            "agent-disabled",
            "Not found",
            "the agent is disabled; enable it to test it",
        ));
    }
    let allowed = state.key_envs_for(&admin.tenant);
    let metadata = serde_json::json!({"switchyard_test": true});
    let request = AgentRequest {
        conversation_id: ConversationId::new(),
        message_id: MessageId::new(),
        message: TEST_MESSAGE,
        history: &[],
        intent: agent.intents.first().map(String::as_str),
        metadata: Some(&metadata),
        allowed_key_envs: &allowed,
        usage: None,
        traceparent: None,
    };
    let timeout = std::time::Duration::from_millis(state.config.request_timeout_ms);
    let started = std::time::Instant::now();
    let outcome = tokio::time::timeout(timeout, state.agents.invoke(&agent, &request, None))
        .await
        .unwrap_or_else(|_| {
            let spent = u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX);
            Err(AgentError::Timeout(spent))
        });
    let latency_ms = started.elapsed().as_secs_f64() * 1000.0;
    let names = Names {
        tenant: &admin.tenant.slug,
        agent: &agent.name,
    };
    let error = outcome.as_ref().err().map(ToString::to_string);
    state.breakers.tested(
        admin.scope.tenant_id(),
        id,
        names,
        error.as_deref().map_or(Ok(()), Err),
    );
    let shared = match error {
        None => crate::shared::Outcome::Answered { cleared: true },
        Some(_) => crate::shared::Outcome::Failed { trial: false },
    };
    state
        .shared
        .share_outcome(&state.breakers, admin.scope.tenant_id(), id, names, shared)
        .await;
    let over_http = agent.kind != AgentKind::Echo;
    let status = match &outcome {
        Ok(_) => over_http.then_some(200),
        Err(AgentError::Status { status, .. }) => Some(*status),
        Err(_) => None,
    };
    Ok(Json(AgentTestOut {
        ok: outcome.is_ok(),
        status,
        latency_ms,
        error,
    }))
}

/// Registers an A2A agent from its Agent Card: the card's skills become the agent's intents,
/// their tags its keywords and their examples its examples.
#[utoipa::path(
    post,
    path = "/v1/agents/import",
    tag = "agents",
    security(("bearer" = [])),
    request_body = ImportAgent,
    responses(
        (status = 201, body = AgentOut),
        (status = 409, body = Problem, content_type = "application/problem+json"),
        (status = 422, body = Problem, content_type = "application/problem+json", description = "The card cannot be fetched or read"),
    )
)]
pub async fn import_agent(
    Admin(admin): Admin,
    State(state): State<AppState>,
    ApiJson(body): ApiJson<ImportAgent>,
) -> ApiResult<(StatusCode, Json<AgentOut>)> {
    let card = state
        .agents
        .fetch_agent_card(&body.card_url)
        .await
        .map_err(ApiError::unprocessable)?;
    fn unique(items: impl IntoIterator<Item = String>, max: usize) -> Vec<String> {
        let mut out: Vec<String> = Vec::new();
        for item in items {
            let item = item.trim().to_string();
            if !item.is_empty() && !out.contains(&item) && out.len() < max {
                out.push(item);
            }
        }
        out
    }
    let fields = AgentFields {
        name: body
            .name
            .unwrap_or_else(|| card.name.trim().chars().take(64).collect()),
        description: card.description.chars().take(2000).collect(),
        kind: AgentKind::A2a,
        config: serde_json::json!({"url": card.url, "streaming": card.capabilities.streaming}),
        intents: unique(card.skills.iter().map(|s| s.id.clone()), 100),
        keywords: unique(card.skills.iter().flat_map(|s| s.tags.iter().cloned()), 200),
        examples: unique(
            card.skills
                .iter()
                .flat_map(|s| s.examples.iter().map(|e| e.chars().take(1000).collect())),
            2000,
        ),
        enabled: body.enabled,
        priority: body.priority,
        is_fallback: body.is_fallback,
    };
    check_fields(&state.key_envs_for(&admin.tenant), &fields)?;
    super::check_quota(&state, &admin, switchyard_store::Owned::Agents).await?;
    let agent = state.store.create_agent(&admin.scope, fields).await?;
    Ok((StatusCode::CREATED, Json(agent.into())))
}
