//! Switchyard's HTTP service: the v1 API over the tenant-scoped store (docs/architecture.md).

use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::extract::DefaultBodyLimit;
use axum::http::header::CONTENT_TYPE;
use axum::http::{HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use tower_http::catch_panic::CatchPanicLayer;
use utoipa::OpenApi as _;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

pub mod api;
mod app;
pub mod auth;
mod checks;
pub mod config;
mod console;
mod error;
mod extract;
mod limits;
mod metrics;
mod openapi;
pub mod retention;
mod routes;
mod routing;
pub mod serve;
mod shared;
pub mod telemetry;
mod traces;
mod turn;
pub mod validate;

pub use app::{App, AppState};
pub use config::Config;
pub use routing::{lab, offline};

use crate::error::ApiError;
use crate::routes::{
    agents, analytics, api_keys, auth as login, chat, conversations, health, openai_compat,
    routing as routing_lab, tenants, users,
};

/// Every documented route, with its handler and OpenAPI description.
pub fn api_router() -> OpenApiRouter<AppState> {
    OpenApiRouter::with_openapi(openapi::ApiDoc::openapi())
        .routes(routes!(health::get_healthz))
        .routes(routes!(health::get_readyz))
        .routes(routes!(login::create_token))
        .routes(routes!(login::revoke_tokens))
        .routes(routes!(login::get_me))
        .routes(routes!(tenants::create_tenant, tenants::list_tenants))
        .routes(routes!(
            tenants::get_tenant,
            tenants::update_tenant,
            tenants::delete_tenant
        ))
        .routes(routes!(users::create_user, users::list_users))
        .routes(routes!(
            users::get_user,
            users::update_user,
            users::delete_user
        ))
        .routes(routes!(api_keys::create_api_key, api_keys::list_api_keys))
        .routes(routes!(api_keys::delete_api_key))
        .routes(routes!(agents::create_agent, agents::list_agents))
        .routes(routes!(agents::import_agent))
        .routes(routes!(agents::test_agent))
        .routes(routes!(
            agents::get_agent,
            agents::update_agent,
            agents::delete_agent
        ))
        .routes(routes!(conversations::list_conversations))
        .routes(routes!(
            conversations::get_conversation,
            conversations::delete_conversation
        ))
        .routes(routes!(conversations::list_messages))
        .routes(routes!(chat::create_chat))
        .routes(routes!(chat::create_route))
        .routes(routes!(routing_lab::evaluate_routing))
        .routes(routes!(routing_lab::replay_routing))
        .routes(routes!(analytics::get_routing_analytics))
        .routes(routes!(health::get_metrics))
        .routes(routes!(openai_compat::list_models))
        .routes(routes!(openai_compat::get_model))
        .routes(routes!(openai_compat::create_chat_completion))
}

/// The OpenAPI document.
pub fn openapi() -> utoipa::openapi::OpenApi {
    let mut doc = api_router().split_for_parts().1;
    openapi::describe_responses(&mut doc);
    doc
}

async fn unknown_route(uri: axum::http::Uri) -> Response {
    openai_compat::error_for(uri.path(), ApiError::not_found())
}

async fn wrong_method(uri: axum::http::Uri) -> Response {
    openai_compat::error_for(
        uri.path(),
        ApiError::custom(
            StatusCode::METHOD_NOT_ALLOWED,
            "method-not-allowed",
            "Method not allowed",
            "this resource does not support that method",
        ),
    )
}

fn panic_response(_: Box<dyn std::any::Any + Send + 'static>) -> Response {
    ApiError::internal("a handler panicked").into_response()
}

/// The whole service: the API, `/openapi.json`, and the middleware every request passes
/// (request span and log line, time limit, body limit, panic guard).
pub fn router(state: AppState) -> Router {
    let (api, mut openapi) = api_router().split_for_parts();
    openapi::describe_responses(&mut openapi);
    let spec: Arc<str> = openapi.to_json().unwrap_or_default().into();
    let timeout = Duration::from_millis(state.config.request_timeout_ms);
    let body_limit = state.config.max_body_bytes;
    api.route(
        "/openapi.json",
        get(move || {
            let spec = spec.clone();
            async move {
                (
                    [(CONTENT_TYPE, HeaderValue::from_static("application/json"))],
                    spec.to_string(),
                )
            }
        }),
    )
    .merge(console::router())
    .fallback(unknown_route)
    .method_not_allowed_fallback(wrong_method)
    .route_layer(axum::middleware::from_fn(telemetry::record_route))
    .layer(DefaultBodyLimit::max(body_limit))
    .layer(CatchPanicLayer::custom(panic_response))
    .layer(axum::middleware::from_fn(move |req, next| {
        telemetry::request_span(timeout, req, next)
    }))
    .with_state(state)
}

/// Runs the server as `switchyard serve` does: opens (and migrates) the store, binds,
/// prints `listening on http://HOST:PORT`, serves until SIGTERM or SIGINT.
pub async fn run(config: Config) -> Result<(), String> {
    // The model first: one that cannot be used stops the start before the database is
    // touched.
    let encoder = routing::encoder::InProcessEncoder::load(&config).map_err(|e| e.to_string())?;
    let opened = switchyard_store::connect(&config.store_config())
        .await
        .map_err(|e| format!("{}: {e}", config::redacted_url(&config.database_url)))?;
    serve_app(config, opened, encoder, announce_setup).await
}

/// What `switchyard serve` says after its `listening on` line: where the console is, the
/// database (without its password), whether the operator's token is set, and how routing
/// analyses messages.
fn announce_setup(addr: std::net::SocketAddr, app: &App) {
    use std::io::Write as _;
    let config = &app.config;
    let token = if config.admin_token.is_some() {
        "set (SWITCHYARD_ADMIN_TOKEN)"
    } else {
        "not set: the operator's routes (/v1/tenants) are closed; set SWITCHYARD_ADMIN_TOKEN"
    };
    let encoder = match &app.encoder {
        Some(e) => format!("lexical and the in-process encoder {}", e.describe()),
        None => "lexical only (no SWITCHYARD_ENCODER_DIR)".to_owned(),
    };
    let cascade = match config.analyzer.as_str() {
        "llm" | "embedding" => format!("; the {} analyzer in the ambiguous band", config.analyzer),
        _ => String::new(),
    };
    let text = format!(
        "console: http://{addr}/\ndatabase: {}\noperator token: {token}\nanalyzer: {encoder}{cascade}\n",
        config::redacted_url(&config.database_url)
    );
    // Whoever started the server may read only its first line and close the pipe: these
    // lines are for a person, and a closed pipe must not stop the server.
    let mut out = std::io::stdout().lock();
    let _ = out.write_all(text.as_bytes());
    let _ = out.flush();
}

/// Runs the server on an open store; `ready` is called with the address and the app once
/// the `listening on` line is printed (the demo prints its tokens there).
pub async fn run_with_store(
    config: Config,
    opened: switchyard_store::Opened,
    ready: impl FnOnce(std::net::SocketAddr, &App),
) -> Result<(), String> {
    let encoder = routing::encoder::InProcessEncoder::load(&config).map_err(|e| e.to_string())?;
    serve_app(config, opened, encoder, ready).await
}

async fn serve_app(
    config: Config,
    opened: switchyard_store::Opened,
    encoder: Option<Arc<routing::encoder::InProcessEncoder>>,
    ready: impl FnOnce(std::net::SocketAddr, &App),
) -> Result<(), String> {
    crate::metrics::install(Duration::from_secs(config.metrics_idle_seconds));
    let listener = serve::bind(&config.bind).await?;
    let limits = serve::ConnectionLimits {
        header_read_timeout: Duration::from_millis(config.header_read_timeout_ms),
        write_timeout: Duration::from_millis(config.write_timeout_ms),
        max_connections: config.max_connections,
    };
    let grace = Duration::from_secs(config.shutdown_grace_seconds);
    let metrics_listener = match &config.metrics_bind {
        Some(addr) => Some(serve::bind(addr).await?),
        None => None,
    };
    let retention = (config.retention_interval_seconds > 0).then(|| {
        retention::spawn(
            opened.store.clone(),
            opened.operator.clone(),
            config.clone(),
            Duration::from_secs(config.retention_interval_seconds),
        )
    });
    let upkeep = crate::metrics::spawn_upkeep(Duration::from_secs(1));
    let app = Arc::new(
        App::with_encoder(config, opened, encoder)
            .await
            .map_err(|e| e.to_string())?,
    );
    let router = router(AppState(app.clone()));
    let addr = serve::announce(&listener)?;
    if let Some(listener) = metrics_listener {
        // The private metrics address: no authentication, nothing else served.
        let metrics = Router::new()
            .route("/metrics", get(routes::health::private_metrics))
            .with_state(AppState(app.clone()));
        tokio::spawn(serve::serve(
            listener,
            metrics,
            limits,
            std::future::pending(),
            grace,
            std::future::ready(()),
        ));
    }
    ready(addr, &app);
    let turns = app.turns.clone();
    let drain = async move {
        turns.close();
        turns.wait().await;
    };
    serve::serve(listener, router, limits, serve::stop_signal(), grace, drain).await;
    if let Some(task) = retention {
        task.abort();
    }
    upkeep.abort();
    Ok(())
}
