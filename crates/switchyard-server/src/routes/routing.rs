//! The routing lab (admins): routing measured on the tenant's labelled messages, and a
//! proposed change to its agents replayed on its stored turns — in memory, nothing stored.

use axum::Json;
use axum::extract::State;

use std::sync::Arc;

use crate::api::{AgentDraft, EvaluateRouting, Evaluation, Replay, ReplayRouting};
use crate::app::AppState;
use crate::auth::{Admin, Principal};
use crate::error::{ApiError, ApiResult, Problem};
use crate::extract::ApiJson;
use crate::routing::TenantRouting;
use crate::routing::lab::{self, Lab};

fn lab<'a>(state: &'a AppState, admin: &'a Principal) -> Lab<'a> {
    Lab {
        store: state.store.as_ref(),
        scope: &admin.scope,
        tenant: &admin.tenant,
        config: &state.config,
        encoder: state.encoder.as_ref(),
        matcher: state.analyzers.matcher.as_ref(),
    }
}

/// How long a lab request waits for its turn before it is refused.
const LAB_QUEUE: std::time::Duration = std::time::Duration::from_secs(30);

/// The lab's turn on this replica: one request at a time, so that an admin's 5,000
/// messages cannot hold every core the tenants' chat needs; the others wait their turn, and
/// one that waited [`LAB_QUEUE`] in vain is a `429`.
async fn turn(state: &AppState) -> ApiResult<tokio::sync::SemaphorePermit<'_>> {
    match tokio::time::timeout(LAB_QUEUE, state.lab_permits.acquire()).await {
        Ok(Ok(permit)) => Ok(permit),
        _ => Err(ApiError::too_many_requests(
            "the routing lab is measuring for other requests on this server; try again shortly",
            5,
        )),
    }
}

/// The server's cached routing of the live agents, where no draft replaces them.
async fn live(
    state: &AppState,
    admin: &Principal,
    draft: Option<&AgentDraft>,
) -> ApiResult<Option<Arc<TenantRouting>>> {
    if draft.is_some_and(|d| !d.is_empty()) {
        return Ok(None);
    }
    // Just after a change the cache completes the new index in the background: wait for it
    // (for a while) rather than complete a second copy.
    let mut routing = state.tenant_routing(admin).await?;
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    while !routing.index.is_complete() && std::time::Instant::now() < deadline {
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        routing = state.tenant_routing(admin).await?;
    }
    Ok(Some(routing))
}

/// Routes labelled messages (`examples`, or `csv` text) over the tenant's agents — or over
/// a proposed change to them (`agents`) — as chat would, and scores where each went.
#[utoipa::path(
    post,
    path = "/v1/routing/evaluate",
    tag = "routing",
    security(("bearer" = [])),
    request_body = EvaluateRouting,
    responses(
        (status = 200, body = Evaluation),
        (status = 403, body = Problem, content_type = "application/problem+json"),
        (status = 422, body = Problem, content_type = "application/problem+json"),
        (status = 429, body = Problem, content_type = "application/problem+json"),
    )
)]
pub async fn evaluate_routing(
    Admin(admin): Admin,
    State(state): State<AppState>,
    ApiJson(body): ApiJson<EvaluateRouting>,
) -> ApiResult<Json<Evaluation>> {
    let rows = lab::checked(lab::labeled(body.examples, body.csv)?)?;
    let _one_at_a_time = turn(&state).await?;
    let live = live(&state, &admin, body.agents.as_ref()).await?;
    let lab = lab(&state, &admin);
    let routing = lab.routing(live, body.agents).await?;
    Ok(Json(lab.evaluate(&routing, rows).await?))
}

/// Re-routes the tenant's most recent stored turns over a proposed change to its agents
/// (`agents`; none: the live agents) and tells which would now go elsewhere.
#[utoipa::path(
    post,
    path = "/v1/routing/replay",
    tag = "routing",
    security(("bearer" = [])),
    request_body = ReplayRouting,
    responses(
        (status = 200, body = Replay),
        (status = 403, body = Problem, content_type = "application/problem+json"),
        (status = 422, body = Problem, content_type = "application/problem+json"),
        (status = 429, body = Problem, content_type = "application/problem+json"),
    )
)]
pub async fn replay_routing(
    Admin(admin): Admin,
    State(state): State<AppState>,
    ApiJson(body): ApiJson<ReplayRouting>,
) -> ApiResult<Json<Replay>> {
    if let Some(last) = body.last {
        lab::check_last(last)?;
    }
    let _one_at_a_time = turn(&state).await?;
    let live = live(&state, &admin, Some(&body.agents)).await?;
    let lab = lab(&state, &admin);
    let routing = lab.routing(live, Some(body.agents)).await?;
    Ok(Json(lab.replay(&routing, body.last).await?))
}
