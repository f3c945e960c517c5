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
//! (the same address rules as agents) with none of the operator's exporter headers or
//! resource attributes. Each tenant's export runs on its own, one batch at a time per
//! endpoint (a batch that finds the last still going is dropped), so a slow or dead tenant
//! collector holds up neither the operator's export nor another tenant's.
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
use switchyard_agents::AddressPolicy;
use switchyard_core::model::Tenant;
use tracing_opentelemetry::OpenTelemetrySpanExt as _;

/// How long one export may take.
const EXPORT_TIMEOUT: Duration = Duration::from_secs(10);
/// How long one export to a tenant's endpoint may take.
const TENANT_EXPORT_TIMEOUT: Duration = Duration::from_secs(5);
/// The most of a collector's answer read (it says only whether the spans were taken).
const MAX_ANSWER_BYTES: usize = 64 * 1024;
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
    let client = ReqwestClient::new(plain_client()?, handle.clone(), false, EXPORT_TIMEOUT);
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
/// client and its address rules. Until then, and without traces, nothing is sent to tenants.
pub(crate) fn set_tenant_client(client: reqwest::Client, addresses: AddressPolicy) {
    if let Some(routes) = PIPELINE.get() {
        let _ = routes.client.set((client, addresses));
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
    client: OnceLock<(reqwest::Client, AddressPolicy)>,
    /// Tenant id → the URL its spans are posted to.
    endpoints: RwLock<HashMap<String, String>>,
    /// URL → exporter, oldest first.
    exporters: Mutex<Vec<(String, Arc<TenantExporter>)>>,
}

/// A tenant endpoint's exporter, and whether an export to it is running.
#[derive(Debug)]
struct TenantExporter {
    exporter: opentelemetry_otlp::SpanExporter,
    busy: std::sync::atomic::AtomicBool,
}

impl TenantRoutes {
    fn exporter(&self, url: &str) -> Option<Arc<TenantExporter>> {
        let mut exporters = self.exporters.lock().unwrap_or_else(|p| p.into_inner());
        if let Some((_, exporter)) = exporters.iter().find(|(u, _)| u == url) {
            return Some(exporter.clone());
        }
        let (client, addresses) = self.client.get()?;
        // Names are checked as they resolve (the guarded client); an address written in the
        // URL is checked here, as the agents' invokers do.
        let parsed = reqwest::Url::parse(url).ok()?;
        if let Err(why) = addresses.check_url(&parsed) {
            tracing::debug!(error = %why, "traces: a tenant's endpoint is refused");
            return None;
        }
        let client = ReqwestClient::new(
            client.clone(),
            self.handle.clone(),
            true,
            TENANT_EXPORT_TIMEOUT,
        );
        let mut exporter = opentelemetry_otlp::SpanExporter::builder()
            .with_http()
            .with_protocol(Protocol::HttpBinary)
            .with_http_client(client)
            .with_endpoint(url)
            .with_timeout(TENANT_EXPORT_TIMEOUT)
            .build()
            .ok()?;
        // The tenant learns which service sent its spans, nothing of the operator's setup.
        exporter.set_resource(
            &Resource::builder_empty()
                .with_service_name("switchyard")
                .build(),
        );
        let exporter = Arc::new(TenantExporter {
            exporter,
            busy: std::sync::atomic::AtomicBool::new(false),
        });
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
            // On their own: a slow or dead tenant collector holds up no one. One export per
            // endpoint at a time; a batch that finds one running is dropped.
            let Some(tenant) = self.routes.exporter(&url) else {
                continue;
            };
            if tenant.busy.swap(true, std::sync::atomic::Ordering::AcqRel) {
                continue;
            }
            self.routes.handle.spawn(async move {
                if let Err(e) = tenant.exporter.export(spans).await {
                    tracing::debug!(error = %e, "traces: a tenant's endpoint refused its spans");
                }
                tenant
                    .busy
                    .store(false, std::sync::atomic::Ordering::Release);
            });
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
    timeout: Duration,
}

impl ReqwestClient {
    fn new(
        client: reqwest::Client,
        handle: tokio::runtime::Handle,
        bare: bool,
        timeout: Duration,
    ) -> Self {
        Self {
            client,
            handle,
            bare,
            timeout,
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
        let (client, timeout) = (self.client.clone(), self.timeout);
        self.handle
            .spawn(async move {
                let request: reqwest::Request = request.try_into()?;
                let work = async {
                    let mut response = client.execute(request).await?;
                    let (status, headers) = (response.status(), response.headers().clone());
                    // The answer says whether the spans were taken: a little of it is
                    // enough, and a collector cannot make the server hold more.
                    let mut body = Vec::new();
                    while let Some(chunk) = response.chunk().await? {
                        let room = MAX_ANSWER_BYTES.saturating_sub(body.len());
                        body.extend_from_slice(&chunk[..chunk.len().min(room)]);
                        if body.len() >= MAX_ANSWER_BYTES {
                            break;
                        }
                    }
                    let mut out = http::Response::builder()
                        .status(status)
                        .body(Bytes::from(body))?;
                    *out.headers_mut() = headers;
                    Ok::<_, HttpError>(out)
                };
                tokio::time::timeout(timeout, work)
                    .await
                    .map_err(|_| "the OTLP endpoint did not answer in time")?
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
