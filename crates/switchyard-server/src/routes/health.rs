//! Liveness and readiness.

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;

use crate::api::Health;
use crate::app::AppState;

/// Liveness: the process answers.
#[utoipa::path(get, path = "/healthz", tag = "health", responses((status = 200, body = Health)))]
pub async fn get_healthz() -> Json<Health> {
    Json(Health { status: "ok" })
}

/// Readiness: the database answers.
#[utoipa::path(
    get,
    path = "/readyz",
    tag = "health",
    responses((status = 200, body = Health), (status = 503, body = Health))
)]
pub async fn get_readyz(State(state): State<AppState>) -> (StatusCode, Json<Health>) {
    match tokio::time::timeout(std::time::Duration::from_secs(2), state.store.ping()).await {
        Ok(Ok(())) => (StatusCode::OK, Json(Health { status: "ok" })),
        _ => (
            StatusCode::SERVICE_UNAVAILABLE,
            Json(Health {
                status: "database unavailable",
            }),
        ),
    }
}

/// Prometheus metrics (text format), for the platform operator: they name tenants.
#[utoipa::path(
    get,
    path = "/metrics",
    tag = "health",
    security(("bearer" = [])),
    responses((status = 200, description = "Prometheus text format", content_type = "text/plain"), (status = 403, body = crate::error::Problem, content_type = "application/problem+json"))
)]
pub async fn get_metrics(
    _: crate::auth::Operator,
    State(state): State<AppState>,
) -> impl axum::response::IntoResponse {
    metrics_text(&state)
}

/// `/metrics` on the private metrics address (no authentication: the address is private).
pub async fn private_metrics(State(state): State<AppState>) -> impl axum::response::IntoResponse {
    metrics_text(&state)
}

/// The metrics in Prometheus' text format, the agents' circuit states as of now.
fn metrics_text(state: &AppState) -> axum::response::Response {
    use axum::response::IntoResponse as _;
    crate::metrics::circuits(&state.breakers);
    if state.shared.is_configured() {
        crate::metrics::redis_up(state.shared.is_up());
    }
    (
        [(
            axum::http::header::CONTENT_TYPE,
            "text/plain; version=0.0.4",
        )],
        crate::metrics::handle().render(),
    )
        .into_response()
}
