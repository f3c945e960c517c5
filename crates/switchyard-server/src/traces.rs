//! OpenTelemetry traces (docs/operations.md, *Traces*): on when the standard
//! `OTEL_EXPORTER_OTLP_ENDPOINT` (or `OTEL_EXPORTER_OTLP_TRACES_ENDPOINT`) is set, exported
//! over OTLP/HTTP with protobuf through a batch processor; the other `OTEL_*` variables
//! (service name, resource attributes, headers, timeout, batch sizes) are read as the
//! OpenTelemetry SDK reads them.
//!
//! One trace per request: the request's span (the root, or the child of an incoming
//! `traceparent`), and within it `authenticate`, `routing.analyze`, `routing.decide`, one
//! `agent.call` per agent called (a failover is a second one) and `store.write`. Spans carry
//! ids, names and outcomes — `tenant.id`, `conversation.id`, `routing.method`, `agent.name` —
//! never message text. Only spans go to the exporter, never log events, and only this
//! project's. An agent call carries `traceparent`, so an agent's own spans join the trace.
//!
//! A tenant whose settings name an `otlp_endpoint` also gets its own spans there, and only
//! its own: the spans that carry its `tenant.id`, sent through the agents' guarded client
//! (the same address rules as agents) with none of the operator's exporter headers.
//!
//! The new spans are at `debug` level: with traces off no layer wants them, so they cost
//! nothing, and the request log (at `info`) does not change.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, OnceLock, RwLock};
use std::time::Duration;

use opentelemetry::propagation::TextMapPropagator as _;
use opentelemetry::trace::TracerProvider as _;
use opentelemetry_http::{Bytes, HeaderExtractor, HeaderInjector, HttpClient, HttpError};
use opentelemetry_otlp::{Protocol, WithExportConfig as _, WithHttpConfig as _};
use opentelemetry_sdk::Resource;
use opentelemetry_sdk::error::OTelSdkResult;
use opentelemetry_sdk::propagation::TraceContextPropagator;
use opentelemetry_sdk::trace::{SdkTracerProvider, SpanData, SpanExporter};
use switchyard_core::model::Tenant;
use tracing_opentelemetry::OpenTelemetrySpanExt as _;

/// How long one export may take.
const EXPORT_TIMEOUT: Duration = Duration::from_secs(10);
/// Tenant endpoints kept at once (each an exporter); beyond it, the oldest is dropped.
const MAX_TENANT_ENDPOINTS: usize = 1000;

/// The running pipeline's tenant routing, once traces are on.
static PIPELINE: OnceLock<Arc<TenantRoutes>> = OnceLock::new();

/// Whether the environment asks for traces: an OTLP endpoint is set, and neither
/// `OTEL_SDK_DISABLED=true` nor `OTEL_TRACES_EXPORTER=none`.
pub fn wanted() -> bool {
    let var = |k: &str| std::env::var(k).unwrap_or_default();
    let off = var("OTEL_SDK_DISABLED").eq_ignore_ascii_case("true")
        || var("OTEL_TRACES_EXPORTER").eq_ignore_ascii_case("none");
    let endpoint = [
        "OTEL_EXPORTER_OTLP_ENDPOINT",
        "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT",
    ]
    .iter()
    .any(|k| !var(k).trim().is_empty());
    endpoint && !off
}

/// Whether traces are being exported.
pub(crate) fn enabled() -> bool {
    PIPELINE.get().is_some()
}

/// The running trace pipeline; [`Traces::shutdown`] sends what is left.
#[derive(Debug)]
pub struct Traces {
    provider: SdkTracerProvider,
}

impl Traces {
    /// Sends the spans not yet sent and stops. Call it from outside the runtime (it blocks
    /// while the exports run on the runtime's threads), before the runtime is dropped.
    pub fn shutdown(self) {
        if let Err(e) = self.provider.shutdown() {
            tracing::warn!(error = %e, "traces: the last spans could not be sent");
        }
    }
}

/// Starts the pipeline: the operator's exporter from the `OTEL_*` variables and the tenant
/// routing. Must be called within the Tokio runtime that will carry the exports.
pub fn start() -> Result<(Traces, opentelemetry_sdk::trace::Tracer), String> {
    let handle = tokio::runtime::Handle::try_current().map_err(|e| e.to_string())?;
    let client = ReqwestClient::new(plain_client()?, handle.clone(), false);
    let operator = opentelemetry_otlp::SpanExporter::builder()
        .with_http()
        .with_protocol(Protocol::HttpBinary)
        .with_http_client(client)
        .build()
        .map_err(|e| format!("OTLP exporter: {e}"))?;
    let routes = Arc::new(TenantRoutes {
        handle,
        client: OnceLock::new(),
        endpoints: RwLock::new(HashMap::new()),
        exporters: Mutex::new(Vec::new()),
        resource: RwLock::new(None),
    });
    let exporter = RoutingExporter {
        operator,
        routes: routes.clone(),
    };
    let provider = SdkTracerProvider::builder()
        .with_resource(Resource::builder().build())
        .with_batch_exporter(exporter)
        .build();
    let tracer = provider.tracer("switchyard");
    let _ = PIPELINE.set(routes);
    Ok((Traces { provider }, tracer))
}

fn plain_client() -> Result<reqwest::Client, String> {
    switchyard_agents::install_tls_provider();
    reqwest::Client::builder()
        .timeout(EXPORT_TIMEOUT)
        .build()
        .map_err(|e| e.to_string())
}

/// Gives the pipeline the client tenants' endpoints are called through: the agents' guarded
/// client (its address rules). Until then, and without traces, nothing is sent to tenants.
pub(crate) fn set_tenant_client(client: reqwest::Client) {
    if let Some(routes) = PIPELINE.get() {
        let _ = routes.client.set(client);
    }
}

/// Notes where the tenant's own traces go (its `otlp_endpoint` setting), as loaded for a
/// request; cheap when unchanged, nothing without traces.
pub(crate) fn note_tenant(tenant: &Tenant) {
    let Some(routes) = PIPELINE.get() else {
        return;
    };
    let id = tenant.id.to_string();
    let wanted = tenant.settings.otlp_endpoint.as_deref().map(traces_url);
    let current = routes
        .endpoints
        .read()
        .unwrap_or_else(|p| p.into_inner())
        .get(&id)
        .cloned();
    if current != wanted {
        let mut endpoints = routes.endpoints.write().unwrap_or_else(|p| p.into_inner());
        match wanted {
            Some(url) => endpoints.insert(id, url),
            None => endpoints.remove(&id),
        };
    }
}

/// A tenant's OTLP base URL as the URL spans are posted to.
fn traces_url(base: &str) -> String {
    let base = base.trim_end_matches('/');
    if base.ends_with("/v1/traces") {
        base.to_owned()
    } else {
        format!("{base}/v1/traces")
    }
}

/// Takes the caller's trace from a request's `traceparent` (and `tracestate`) as the parent
/// of `span`; nothing without traces or without the header.
pub(crate) fn adopt_parent(span: &tracing::Span, headers: &http::HeaderMap) {
    if !enabled() || !headers.contains_key("traceparent") {
        return;
    }
    let parent = TraceContextPropagator::new().extract(&HeaderExtractor(headers));
    let _ = span.set_parent(parent);
}

/// The `traceparent` an outgoing call made within `span` carries; `None` without traces.
pub(crate) fn traceparent(span: &tracing::Span) -> Option<String> {
    if !enabled() {
        return None;
    }
    let mut headers = http::HeaderMap::new();
    TraceContextPropagator::new()
        .inject_context(&span.context(), &mut HeaderInjector(&mut headers));
    headers
        .get("traceparent")
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned)
}

/// Which tenants send their spans where, and an exporter per endpoint.
#[derive(Debug)]
struct TenantRoutes {
    handle: tokio::runtime::Handle,
    client: OnceLock<reqwest::Client>,
    /// Tenant id → the URL its spans are posted to.
    endpoints: RwLock<HashMap<String, String>>,
    /// URL → exporter, oldest first.
    exporters: Mutex<Vec<(String, Arc<opentelemetry_otlp::SpanExporter>)>>,
    resource: RwLock<Option<Resource>>,
}

impl TenantRoutes {
    fn exporter(&self, url: &str) -> Option<Arc<opentelemetry_otlp::SpanExporter>> {
        let mut exporters = self.exporters.lock().unwrap_or_else(|p| p.into_inner());
        if let Some((_, exporter)) = exporters.iter().find(|(u, _)| u == url) {
            return Some(exporter.clone());
        }
        let client = ReqwestClient::new(self.client.get()?.clone(), self.handle.clone(), true);
        let mut exporter = opentelemetry_otlp::SpanExporter::builder()
            .with_http()
            .with_protocol(Protocol::HttpBinary)
            .with_http_client(client)
            .with_endpoint(url)
            .with_timeout(EXPORT_TIMEOUT)
            .build()
            .ok()?;
        if let Some(resource) = &*self.resource.read().unwrap_or_else(|p| p.into_inner()) {
            exporter.set_resource(resource);
        }
        let exporter = Arc::new(exporter);
        if exporters.len() >= MAX_TENANT_ENDPOINTS {
            exporters.remove(0);
        }
        exporters.push((url.to_owned(), exporter.clone()));
        Some(exporter)
    }
}

/// The operator's exporter, which gets every span, and each tenant's, which gets its own.
#[derive(Debug)]
struct RoutingExporter {
    operator: opentelemetry_otlp::SpanExporter,
    routes: Arc<TenantRoutes>,
}

fn tenant_of(span: &SpanData) -> Option<String> {
    span.attributes
        .iter()
        .find(|kv| kv.key.as_str() == "tenant.id")
        .map(|kv| kv.value.as_str().into_owned())
}

impl SpanExporter for RoutingExporter {
    async fn export(&self, batch: Vec<SpanData>) -> OTelSdkResult {
        let mut by_url: HashMap<String, Vec<SpanData>> = HashMap::new();
        {
            let endpoints = self
                .routes
                .endpoints
                .read()
                .unwrap_or_else(|p| p.into_inner());
            if !endpoints.is_empty() {
                for span in &batch {
                    if let Some(url) = tenant_of(span).and_then(|t| endpoints.get(&t)) {
                        by_url.entry(url.clone()).or_default().push(span.clone());
                    }
                }
            }
        }
        for (url, spans) in by_url {
            // A tenant's collector that fails costs the operator's export nothing.
            if let Some(exporter) = self.routes.exporter(&url)
                && let Err(e) = exporter.export(spans).await
            {
                tracing::debug!(error = %e, "traces: a tenant's endpoint refused its spans");
            }
        }
        self.operator.export(batch).await
    }

    fn shutdown_with_timeout(&self, timeout: Duration) -> OTelSdkResult {
        self.operator.shutdown_with_timeout(timeout)
    }

    fn force_flush(&self) -> OTelSdkResult {
        self.operator.force_flush()
    }

    fn set_resource(&mut self, resource: &Resource) {
        self.operator.set_resource(resource);
        *self
            .routes
            .resource
            .write()
            .unwrap_or_else(|p| p.into_inner()) = Some(resource.clone());
    }
}

/// OTLP over a reqwest client, on the server's runtime (the batch processor exports from a
/// thread of its own, which has none). For a tenant's endpoint (`bare`), only the body's
/// own headers go: none of the operator's `OTEL_EXPORTER_OTLP_HEADERS`.
#[derive(Debug, Clone)]
struct ReqwestClient {
    client: reqwest::Client,
    handle: tokio::runtime::Handle,
    bare: bool,
}

impl ReqwestClient {
    fn new(client: reqwest::Client, handle: tokio::runtime::Handle, bare: bool) -> Self {
        Self {
            client,
            handle,
            bare,
        }
    }
}

#[async_trait::async_trait]
impl HttpClient for ReqwestClient {
    async fn send_bytes(
        &self,
        mut request: http::Request<Bytes>,
    ) -> Result<http::Response<Bytes>, HttpError> {
        if self.bare {
            let kept = [
                http::header::CONTENT_TYPE,
                http::header::CONTENT_ENCODING,
                http::header::USER_AGENT,
            ];
            let headers = request.headers_mut();
            let dropped: Vec<http::HeaderName> = headers
                .keys()
                .filter(|name| !kept.contains(name))
                .cloned()
                .collect();
            for name in dropped {
                headers.remove(name);
            }
        }
        let client = self.client.clone();
        self.handle
            .spawn(async move {
                let request: reqwest::Request = request.try_into()?;
                let response = tokio::time::timeout(EXPORT_TIMEOUT, client.execute(request))
                    .await
                    .map_err(|_| "the OTLP endpoint did not answer in time")??;
                let (status, headers) = (response.status(), response.headers().clone());
                let body = response.bytes().await?;
                let mut out = http::Response::builder().status(status).body(body)?;
                *out.headers_mut() = headers;
                Ok::<_, HttpError>(out)
            })
            .await?
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_tenants_base_url_is_posted_to_at_v1_traces() {
        assert_eq!(
            traces_url("https://otel.acme.test:4318"),
            "https://otel.acme.test:4318/v1/traces"
        );
        assert_eq!(
            traces_url("https://otel.acme.test/otlp/"),
            "https://otel.acme.test/otlp/v1/traces"
        );
        assert_eq!(
            traces_url("https://otel.acme.test/v1/traces"),
            "https://otel.acme.test/v1/traces"
        );
    }
}
