//! Logs: one line per request at `info`, every line of a request carrying its request id,
//! route, tenant and user.

use std::time::Instant;

use axum::extract::{MatchedPath, Request};
use axum::http::{HeaderName, HeaderValue};
use axum::middleware::Next;
use axum::response::Response;
use tracing::Instrument;
use tracing_subscriber::filter::filter_fn;
use tracing_subscriber::layer::SubscriberExt as _;
use tracing_subscriber::util::SubscriberInitExt as _;
use tracing_subscriber::{EnvFilter, Layer as _};

pub use crate::traces::Traces;

use crate::error::{ApiError, ErrorLog};

/// The header that carries the request id, in and out.
pub static REQUEST_ID: HeaderName = HeaderName::from_static("x-request-id");

/// Sets up logging to standard error (standard output is kept for the `listening on`
/// line), at the level `RUST_LOG` names (default `info`); and, when `traces` is asked for
/// and the `OTEL_*` variables name an endpoint, OpenTelemetry traces
/// ([`crate::traces`]). Call it within the runtime that will carry the exports; the
/// returned pipeline is shut down (its last spans sent) with [`Traces::shutdown`].
pub fn init(traces: bool) -> Option<Traces> {
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info"));
    let fmt = tracing_subscriber::fmt::layer()
        .with_writer(std::io::stderr)
        .with_target(false)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .with_filter(filter);
    let (pipeline, otel) = match traces.then(crate::traces::wanted) {
        Some(true) => match crate::traces::start() {
            Ok((pipeline, tracer)) => {
                // Only this project's spans, never events (log lines may quote a request).
                let ours = filter_fn(|m| m.is_span() && m.target().starts_with("switchyard"));
                let layer = tracing_opentelemetry::layer()
                    .with_tracer(tracer)
                    .with_filter(ours);
                (Some(pipeline), Some(layer))
            }
            Err(e) => {
                eprintln!("warning: traces are off: {e}");
                (None, None)
            }
        },
        _ => (None, None),
    };
    let _ = tracing_subscriber::registry()
        .with(fmt)
        .with(otel)
        .try_init();
    if pipeline.is_some() {
        tracing::info!("traces: exported over OTLP (OTEL_EXPORTER_OTLP_ENDPOINT)");
    }
    pipeline
}

fn request_id(req: &Request) -> String {
    req.headers()
        .get(&REQUEST_ID)
        .and_then(|v| v.to_str().ok())
        .filter(|v| !v.is_empty() && v.len() <= 128 && v.bytes().all(|b| b.is_ascii_graphic()))
        .map(str::to_string)
        .unwrap_or_else(|| uuid::Uuid::now_v7().to_string())
}

/// The outermost middleware: opens the request's span, bounds its time, logs its outcome
/// (and the internal detail of an error, once) and returns the request id.
pub async fn request_span(timeout: std::time::Duration, req: Request, next: Next) -> Response {
    let id = request_id(&req);
    let span = tracing::info_span!(
        "request",
        request_id = %id,
        http.method = %req.method(),
        http.route = tracing::field::Empty,
        tenant.id = tracing::field::Empty,
        user.id = tracing::field::Empty,
        conversation.id = tracing::field::Empty,
    );
    crate::traces::adopt_parent(&span, req.headers());
    let path = req.uri().path().to_string();
    let method = req.method().as_str().to_string();
    let started = Instant::now();
    let mut response = async move {
        let response = match tokio::time::timeout(timeout, next.run(req)).await {
            Ok(response) => response,
            Err(_) => crate::routes::openai_compat::error_for(
                &path,
                ApiError::custom(
                    axum::http::StatusCode::SERVICE_UNAVAILABLE,
                    "timeout",
                    "Request timed out",
                    "the request took longer than the server allows",
                ),
            ),
        };
        let status = response.status().as_u16();
        let duration_ms = started.elapsed().as_secs_f64() * 1000.0;
        let route = response
            .extensions()
            .get::<Route>()
            .map_or("unmatched", |r| r.0.as_str());
        crate::metrics::http_request(&method, route, status, started.elapsed());
        match response.extensions().get::<ErrorLog>() {
            Some(ErrorLog(error)) if status >= 500 => {
                tracing::error!(status, duration_ms, path, error, "request failed")
            }
            Some(ErrorLog(error)) => {
                tracing::warn!(status, duration_ms, path, error, "request refused")
            }
            None => tracing::info!(status, duration_ms, path, "request"),
        }
        response
    }
    .instrument(span)
    .await;
    if let Ok(value) = HeaderValue::from_str(&id) {
        response.headers_mut().insert(REQUEST_ID.clone(), value);
    }
    response
}

/// The matched route of a request, carried on its response for the request log.
#[derive(Clone, Debug)]
struct Route(String);

/// Records the matched route (low cardinality: `/v1/agents/{id}`) in the request's span,
/// and on the response for the metrics.
pub async fn record_route(req: Request, next: Next) -> Response {
    let route = req
        .extensions()
        .get::<MatchedPath>()
        .map(|p| p.as_str().to_string());
    if let Some(route) = &route {
        tracing::Span::current().record("http.route", route.as_str());
    }
    let mut response = next.run(req).await;
    if let Some(route) = route {
        response.extensions_mut().insert(Route(route));
    }
    response
}
