//! Logs for every process, metrics for every process (read by Prometheus from `/metrics` on the
//! probe port, see [`PrometheusEndpoint`]), and with an OTLP endpoint traces and the same metrics
//! exported over gRPC as well. [`RpcTelemetryLayer`] gives each RPC a span that continues the
//! caller's W3C trace, a status, a duration, a count and an in-flight gauge. Bodies and metadata
//! values never reach a log, span or metric.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::task::{Context, Poll, ready};
use std::time::{Duration, Instant};

use http::HeaderMap;
use http_body::{Body as HttpBody, Frame, SizeHint};
use opentelemetry::metrics::{Counter, Histogram, ObservableGauge, UpDownCounter};
use opentelemetry::propagation::{Extractor, Injector};
use opentelemetry::trace::{TraceContextExt as _, TracerProvider as _};
use opentelemetry::{KeyValue, StringValue, global};
use opentelemetry_otlp::WithExportConfig as _;
use opentelemetry_sdk::Resource;
use opentelemetry_sdk::metrics::SdkMeterProvider;
use opentelemetry_sdk::propagation::TraceContextPropagator;
use opentelemetry_sdk::trace::SdkTracerProvider;
use tonic::body::Body;
use tonic::metadata::{MetadataKey, MetadataMap, MetadataValue};
use tower::{Layer, Service};
use tracing::Instrument as _;
use tracing_opentelemetry::OpenTelemetrySpanExt as _;
use tracing_subscriber::filter::{LevelFilter, Targets};
use tracing_subscriber::layer::SubscriberExt as _;
use tracing_subscriber::util::SubscriberInitExt as _;
use tracing_subscriber::{EnvFilter, Layer as _, Registry};

use crate::config::TelemetryConfig;

/// The service name exported when the caller names none and `OTEL_SERVICE_NAME` is unset.
const DEFAULT_SERVICE_NAME: &str = "bangfu";

/// Instrumentation scope of bangfu's own spans and instruments.
pub(crate) const SCOPE: &str = "bangfu";

/// Targets whose spans and events are never exported: the exporter's own gRPC calls run through
/// them, so exporting them would trace the export, and that export again. Prefixes: `hyper`
/// covers `hyper_util`, `opentelemetry` covers the SDK's and the exporter's internal logs.
const NOT_EXPORTED: &[&str] = &["h2", "hyper", "tonic", "tower", "opentelemetry"];

/// A provider's shutdown waits at most this long for its last export.
const SHUTDOWN_TIMEOUT: Duration = Duration::from_secs(5);

/// Bucket bounds in seconds: the SDK's defaults are sized for milliseconds.
const DURATION_BUCKETS: &[f64] = &[
    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.075, 0.1, 0.25, 0.5, 0.75, 1.0, 2.5, 5.0, 7.5, 10.0, 30.0, 60.0,
];

static INSTALLED: AtomicBool = AtomicBool::new(false);

/// Whether spans are recorded (an OTLP exporter is on): only then can a span carry a trace id.
static RECORDING: AtomicBool = AtomicBool::new(false);

/// The registry the Prometheus reader fills at each scrape; set once by [`init_service`].
static PROMETHEUS: std::sync::OnceLock<prometheus::Registry> = std::sync::OnceLock::new();

/// This build's version.
pub const VERSION: &str = env!("CARGO_PKG_VERSION");

/// The git commit this build was made from (the build script's `BANGFU_GIT_COMMIT`), or
/// "unknown" for a build outside git that was not told.
pub const COMMIT: &str = match option_env!("BANGFU_GIT_COMMIT") {
    Some(commit) => commit,
    None => "unknown",
};

/// Installs the global subscriber as [`init_service`] does, under the service name `bangfu`.
pub fn init(config: &TelemetryConfig) -> TelemetryGuard {
    init_service(config, DEFAULT_SERVICE_NAME)
}

/// Installs the global subscriber: logs as text or JSON through `config.log_filter`; a meter
/// provider whose metrics [`prometheus_text`] renders; and, when `config.otlp_endpoint` is set,
/// spans and the same metrics exported over OTLP/gRPC as `service_name` (`OTEL_SERVICE_NAME`
/// wins when set). Installs the W3C trace-context propagator either way.
///
/// Only the first call does anything (tests start many servers); later calls return a guard with
/// nothing to shut down. Must be called inside a tokio runtime: the exporters' channels spawn
/// their connection task on it (outside one, or with an endpoint the exporter refuses, it logs a
/// warning and runs without export). Nothing waits for the collector: the channels connect on
/// first export, and export runs on the SDK's background threads.
///
/// Create [`RpcTelemetryLayer`] after this call: its instruments come from the meter provider
/// installed here.
pub fn init_service(config: &TelemetryConfig, service_name: &str) -> TelemetryGuard {
    if INSTALLED.swap(true, Ordering::SeqCst) {
        return TelemetryGuard::default();
    }
    global::set_text_map_propagator(TraceContextPropagator::new());

    let filter = EnvFilter::try_new(&config.log_filter).unwrap_or_else(|_| EnvFilter::new("info"));
    // Colour codes only for a person at a terminal: a file, a pipe or a container's log
    // collector would store them as text. NO_COLOR (no-color.org) turns them off there too.
    let ansi = std::io::IsTerminal::is_terminal(&std::io::stdout()) && std::env::var_os("NO_COLOR").is_none();
    let fmt = tracing_subscriber::fmt::layer().with_target(false).with_ansi(ansi);
    let mut layers: Vec<Box<dyn tracing_subscriber::Layer<Registry> + Send + Sync>> = vec![if config.json {
        fmt.json().with_filter(filter).boxed()
    } else {
        fmt.with_filter(filter).boxed()
    }];

    let mut refused = None;
    let otlp = match config.otlp_endpoint.as_deref() {
        None => None,
        // The exporters' channels would panic; a process without export is better than none.
        Some(_) if tokio::runtime::Handle::try_current().is_err() => {
            refused = Some("telemetry::init was called outside a tokio runtime".to_owned());
            None
        }
        Some(endpoint) => match otlp_exporters(endpoint) {
            Ok(exporters) => Some(exporters),
            Err(error) => {
                refused = Some(error.to_string());
                None
            }
        },
    };
    let resource = resource(service_name);
    // One meter provider, two readers: Prometheus pulls at each scrape, OTLP pushes
    // periodically; every instrument reaches both.
    let mut meter = SdkMeterProvider::builder().with_resource(resource.clone());
    let registry = prometheus::Registry::new();
    let prometheus_refused = match opentelemetry_prometheus::exporter()
        .with_registry(registry.clone())
        // One scope (bangfu) for every instrument: its labels on each series would be noise.
        .scope_info_enabled(false)
        .build()
    {
        Ok(reader) => {
            meter = meter.with_reader(reader);
            let _ = PROMETHEUS.set(registry);
            None
        }
        Err(error) => Some(error.to_string()),
    };
    let tracer = match otlp {
        Some((spans, metrics)) => {
            meter = meter.with_periodic_exporter(metrics);
            Some(
                SdkTracerProvider::builder()
                    .with_batch_exporter(spans)
                    .with_resource(resource)
                    .build(),
            )
        }
        None => None,
    };
    let meter = meter.build();
    global::set_meter_provider(meter.clone());
    if let Some(tracer) = &tracer {
        RECORDING.store(true, Ordering::Relaxed);
        global::set_tracer_provider(tracer.clone());
        layers.push(
            tracing_opentelemetry::layer()
                .with_tracer(tracer.tracer(SCOPE))
                .with_filter(export_filter())
                .boxed(),
        );
    }
    // Fails only when something else installed a global subscriber first; that one stays.
    let _ = Registry::default().with(layers).try_init();
    if let Some(error) = refused {
        tracing::warn!(%error, "OTLP export is off");
    }
    if let Some(error) = prometheus_refused {
        tracing::warn!(%error, "/metrics is off");
    }
    TelemetryGuard {
        tracer,
        meter: Some(meter),
        _build_info: Some(build_info()),
    }
}

fn otlp_exporters(
    endpoint: &str,
) -> Result<
    (opentelemetry_otlp::SpanExporter, opentelemetry_otlp::MetricExporter),
    opentelemetry_otlp::ExporterBuildError,
> {
    let spans = opentelemetry_otlp::SpanExporter::builder()
        .with_tonic()
        .with_endpoint(endpoint)
        .build()?;
    let metrics = opentelemetry_otlp::MetricExporter::builder()
        .with_tonic()
        .with_endpoint(endpoint)
        .build()?;
    Ok((spans, metrics))
}

/// `bangfu_build_info{version, commit} 1`: which build a process runs, for dashboards that
/// compare replicas during a rollout.
fn build_info() -> ObservableGauge<u64> {
    global::meter(SCOPE)
        .u64_observable_gauge("bangfu.build.info")
        .with_description("always 1; the labels name the version and the git commit of this build")
        .with_callback(|observer| {
            observer.observe(1, &[KeyValue::new("version", VERSION), KeyValue::new("commit", COMMIT)]);
        })
        .build()
}

/// The metrics in the Prometheus text format, as of now; `None` when [`init_service`] has not
/// run in this process (or the Prometheus reader could not be made).
pub fn prometheus_text() -> Option<Result<String, prometheus::Error>> {
    use prometheus::Encoder as _;
    let registry = PROMETHEUS.get()?;
    let mut text = Vec::new();
    Some(
        prometheus::TextEncoder::new()
            .encode(&registry.gather(), &mut text)
            .map(|()| String::from_utf8_lossy(&text).into_owned()),
    )
}

fn resource(service_name: &str) -> Resource {
    let builder = Resource::builder();
    // The default detectors read OTEL_SERVICE_NAME; an operator's choice there beats the built-in name.
    if std::env::var_os("OTEL_SERVICE_NAME").is_some() {
        builder.build()
    } else {
        builder.with_service_name(service_name.to_owned()).build()
    }
}

/// What the OpenTelemetry layer sees: info and above, never the transport's or its own.
fn export_filter() -> Targets {
    NOT_EXPORTED
        .iter()
        .fold(Targets::new().with_default(LevelFilter::INFO), |targets, target| {
            targets.with_target(*target, LevelFilter::OFF)
        })
}

/// Keeps the providers of [`init`]; [`TelemetryGuard::shutdown`] sends what is still buffered.
/// Dropping it without calling `shutdown` loses the spans and metrics not yet exported.
#[derive(Debug, Default)]
pub struct TelemetryGuard {
    /// Only when exporting over OTLP.
    tracer: Option<SdkTracerProvider>,
    meter: Option<SdkMeterProvider>,
    _build_info: Option<ObservableGauge<u64>>,
}

impl TelemetryGuard {
    /// Whether spans and metrics are being exported over OTLP.
    pub fn is_exporting(&self) -> bool {
        self.tracer.is_some()
    }

    /// Exports what is buffered and stops the exporters, waiting at most about five seconds for
    /// an unreachable collector. Call it last, after the server has stopped.
    pub async fn shutdown(self) {
        // Both block until their background thread has exported, which needs this runtime's
        // workers free to drive the gRPC channel: never block a worker with them.
        let spans = self
            .tracer
            .map(|tracer| tokio::task::spawn_blocking(move || tracer.shutdown_with_timeout(SHUTDOWN_TIMEOUT)));
        let metrics = self
            .meter
            .map(|meter| tokio::task::spawn_blocking(move || meter.shutdown_with_timeout(SHUTDOWN_TIMEOUT)));
        for (signal, task) in [("spans", spans), ("metrics", metrics)] {
            let Some(task) = task else { continue };
            match task.await {
                Ok(Ok(())) => {}
                Ok(Err(error)) => tracing::warn!(signal, %error, "telemetry exporter did not shut down cleanly"),
                Err(error) => tracing::warn!(signal, %error, "telemetry exporter shutdown panicked"),
            }
        }
    }
}

/// Answers `GET /metrics` with [`prometheus_text`] and hands every other request to the
/// service it wraps: on the plaintext probe listener, beside gRPC health, so a cluster that
/// scrapes pods reads the metrics from the port its probes already use. The answer never touches
/// a database: gauges are read from memory, so a scrape during an outage still answers (and
/// shows it).
#[derive(Debug, Clone)]
pub struct PrometheusEndpoint<S> {
    inner: S,
}

impl<S> PrometheusEndpoint<S> {
    pub fn layer() -> impl Layer<S, Service = Self> + Clone {
        tower::layer::layer_fn(|inner| Self { inner })
    }
}

/// The path Prometheus scrapes.
pub const METRICS_PATH: &str = "/metrics";

impl<S, B> Service<http::Request<B>> for PrometheusEndpoint<S>
where
    S: Service<http::Request<B>, Response = http::Response<Body>>,
    S::Future: Send + 'static,
    S::Error: Send + 'static,
{
    type Response = http::Response<Body>;
    type Error = S::Error;
    type Future = BoxFuture<Self::Response, Self::Error>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: http::Request<B>) -> Self::Future {
        if request.uri().path() != METRICS_PATH {
            return Box::pin(self.inner.call(request));
        }
        let response = metrics_response(request.method());
        Box::pin(async move { Ok(response) })
    }
}

fn metrics_response(method: &http::Method) -> http::Response<Body> {
    let plain = |status: http::StatusCode, text: String| {
        let mut response = http::Response::new(Body::new(http_body_util::Full::new(bytes::Bytes::from(text))));
        *response.status_mut() = status;
        response.headers_mut().insert(
            http::header::CONTENT_TYPE,
            http::HeaderValue::from_static("text/plain; version=0.0.4; charset=utf-8"),
        );
        response
    };
    if method != http::Method::GET && method != http::Method::HEAD {
        return plain(http::StatusCode::METHOD_NOT_ALLOWED, "GET /metrics\n".into());
    }
    match prometheus_text() {
        Some(Ok(text)) => plain(http::StatusCode::OK, text),
        Some(Err(error)) => {
            tracing::warn!(%error, "the metrics could not be rendered");
            plain(http::StatusCode::INTERNAL_SERVER_ERROR, format!("{error}\n"))
        }
        None => plain(
            http::StatusCode::NOT_FOUND,
            "metrics are not set up in this process\n".into(),
        ),
    }
}

/// The current call's trace id (32 hex digits), when a trace is being recorded: audit rows and
/// INTERNAL errors carry it, so an operator finds the call's spans and logs from either.
pub fn current_trace_id() -> Option<String> {
    let mut context = tracing::Span::current().context();
    if !context.span().span_context().is_valid() {
        context = opentelemetry::Context::current();
    }
    let span = context.span();
    let span_context = span.span_context();
    if span_context.is_valid() {
        return Some(span_context.trace_id().to_string());
    }
    CALL_TRACE_ID.try_with(|id| id.to_string()).ok()
}

/// Injects the current span's trace context (W3C `traceparent`, `tracestate`) into an outgoing
/// call's metadata, so the called service continues this trace. Call it from a client
/// interceptor; it does nothing when no trace is being recorded.
pub fn inject_trace_context(metadata: &mut MetadataMap) {
    let mut context = tracing::Span::current().context();
    if !context.span().span_context().is_valid() {
        // The current span may be one the exporter filters out (a debug span, a library's);
        // the innermost exported span entered around it is then the active context.
        context = opentelemetry::Context::current();
    }
    global::get_text_map_propagator(|propagator| propagator.inject_context(&context, &mut MetadataInjector(metadata)));
}

struct MetadataInjector<'a>(&'a mut MetadataMap);

impl Injector for MetadataInjector<'_> {
    fn set(&mut self, key: &str, value: String) {
        // Propagators write ASCII; anything else is dropped, as a lost trace link beats a failed call.
        if let (Ok(key), Ok(value)) = (MetadataKey::from_bytes(key.as_bytes()), MetadataValue::try_from(value)) {
            self.0.insert(key, value);
        }
    }
}

struct HeaderExtractor<'a>(&'a HeaderMap);

impl Extractor for HeaderExtractor<'_> {
    fn get(&self, key: &str) -> Option<&str> {
        self.0.get(key).and_then(|value| value.to_str().ok())
    }

    fn keys(&self) -> Vec<&str> {
        self.0.keys().map(http::HeaderName::as_str).collect()
    }
}

#[derive(Debug)]
struct Instruments {
    requests: Counter<u64>,
    duration: Histogram<f64>,
    in_flight: UpDownCounter<i64>,
}

/// Per-RPC telemetry, to sit outermost on the server so that it sees every call, refused ones
/// included. See the module comment; the time a call waits for a concurrency permit before
/// reaching this layer's `call` is not part of its duration.
#[derive(Debug, Clone)]
pub struct RpcTelemetryLayer {
    instruments: Arc<Instruments>,
    /// The label value of each known method, made once: a call clones it instead of copying
    /// its path.
    known: Option<Arc<std::collections::HashMap<&'static str, StringValue>>>,
}

impl Default for RpcTelemetryLayer {
    fn default() -> Self {
        Self::new()
    }
}

impl RpcTelemetryLayer {
    /// Creates the instruments on the global meter provider as it is now (a no-op one before
    /// [`init`] installed an exporting one), so create the layer after `init`.
    pub fn new() -> Self {
        let meter = global::meter(SCOPE);
        Self {
            instruments: Arc::new(Instruments {
                requests: meter
                    .u64_counter("rpc.server.requests")
                    .with_description("RPCs served, by method and gRPC status code")
                    .with_unit("{request}")
                    .build(),
                duration: meter
                    .f64_histogram("rpc.server.duration")
                    .with_description("time from receiving an RPC to sending its status")
                    .with_unit("s")
                    .with_boundaries(DURATION_BUCKETS.to_vec())
                    .build(),
                in_flight: meter
                    .i64_up_down_counter("rpc.server.active_requests")
                    .with_description("RPCs being served now, by method")
                    .with_unit("{request}")
                    .build(),
            }),
            known: None,
        }
    }

    /// Labels calls of any other path `rpc.method="unknown"`: the path comes from the client,
    /// and every distinct label value is a series kept for the life of the process.
    pub fn with_known_methods(mut self, paths: impl IntoIterator<Item = &'static str>) -> Self {
        self.known = Some(Arc::new(
            paths.into_iter().map(|path| (path, StringValue::from(path))).collect(),
        ));
        self
    }
}

/// The label of a call's method: its path, when it is one the server knows.
const UNKNOWN_METHOD: &str = "unknown";

impl<S> Layer<S> for RpcTelemetryLayer {
    type Service = RpcTelemetryService<S>;

    fn layer(&self, inner: S) -> Self::Service {
        RpcTelemetryService {
            inner,
            instruments: self.instruments.clone(),
            known: self.known.clone(),
        }
    }
}

/// The service [`RpcTelemetryLayer`] wraps around the rest of the server.
#[derive(Debug, Clone)]
pub struct RpcTelemetryService<S> {
    inner: S,
    instruments: Arc<Instruments>,
    known: Option<Arc<std::collections::HashMap<&'static str, StringValue>>>,
}

type BoxFuture<T, E> = Pin<Box<dyn Future<Output = Result<T, E>> + Send>>;

impl<S, B> Service<http::Request<B>> for RpcTelemetryService<S>
where
    S: Service<http::Request<B>, Response = http::Response<Body>>,
    S::Future: Send + 'static,
    S::Error: Send + 'static,
{
    type Response = http::Response<Body>;
    type Error = S::Error;
    type Future = BoxFuture<Self::Response, Self::Error>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: http::Request<B>) -> Self::Future {
        let path = request.uri().path();
        let span = rpc_span(path);
        let parent =
            global::get_text_map_propagator(|propagator| propagator.extract(&HeaderExtractor(request.headers())));
        // Fails only when no OpenTelemetry layer is installed; there is then no trace to continue.
        let _ = span.set_parent(parent.clone());
        // After the parent is set: the span's context is then the caller's trace, continued.
        let trace_id = call_trace_id(&span, &parent);
        span.record("trace_id", &*trace_id);
        let method = match &self.known {
            Some(known) => known
                .get(path)
                .cloned()
                .unwrap_or_else(|| StringValue::from(UNKNOWN_METHOD)),
            None => StringValue::from(Arc::<str>::from(path)),
        };
        self.instruments
            .in_flight
            .add(1, &[KeyValue::new("rpc.method", method.clone())]);
        let call = Call {
            instruments: self.instruments.clone(),
            method,
            span: span.clone(),
            started: Instant::now(),
            finished: false,
        };
        // Entered while the inner layers run their synchronous part, so a refusal they log carries the trace.
        let response = span.in_scope(|| CALL_TRACE_ID.sync_scope(trace_id.clone(), || self.inner.call(request)));
        Box::pin(async move {
            match CALL_TRACE_ID.scope(trace_id.clone(), response.instrument(span)).await {
                Ok(mut response) => {
                    // Every answer names its trace: a clerk quotes it, an operator finds the
                    // call's log lines (the rpc span's trace_id) and audit rows under it. On an
                    // error's trailers-only response this header is the trailer.
                    if let Ok(mut value) = http::HeaderValue::from_str(&trace_id) {
                        // Never indexed: each call's id is new, so a copy in HPACK's table on
                        // both ends is never used again and only pushes out entries that are.
                        value.set_sensitive(true);
                        response.headers_mut().insert(TRACE_ID, value);
                    }
                    Ok(call.observe(response))
                }
                Err(error) => {
                    let mut call = call;
                    call.finish(tonic::Code::Unknown.into());
                    Err(error)
                }
            }
        })
    }
}

fn rpc_span(path: &str) -> tracing::Span {
    let name = path.strip_prefix('/').unwrap_or(path);
    let (service, method) = name.split_once('/').unwrap_or((name, ""));
    tracing::info_span!(
        "rpc",
        otel.name = name,
        otel.kind = "server",
        rpc.system = "grpc",
        rpc.service = service,
        rpc.method = method,
        rpc.grpc.status_code = tracing::field::Empty,
        otel.status_code = tracing::field::Empty,
        trace_id = tracing::field::Empty,
    )
}

/// The response header that names the call's trace.
pub const TRACE_ID_HEADER: &str = "x-bangfu-trace-id";
const TRACE_ID: http::HeaderName = http::HeaderName::from_static(TRACE_ID_HEADER);

tokio::task_local! {
    /// The trace id of the call being served, for code that runs inside it without a span
    /// context (no OpenTelemetry export): errors and audit rows name it all the same.
    static CALL_TRACE_ID: Arc<str>;
}

/// The call's trace id: the recorded span's, else the caller's (a `traceparent` it sent), else
/// a new random one, so every call has one even when nothing is exported.
fn call_trace_id(span: &tracing::Span, parent: &opentelemetry::Context) -> Arc<str> {
    // Asking a span for its context costs a walk through the subscriber on every call: only
    // worth it when spans are recorded at all.
    if RECORDING.load(Ordering::Relaxed) {
        let own = span.context();
        let own = own.span().span_context().clone();
        if own.is_valid() {
            return Arc::from(own.trace_id().to_string());
        }
    }
    let remote = parent.span().span_context().clone();
    if remote.is_valid() {
        return Arc::from(remote.trace_id().to_string());
    }
    Arc::from(format!("{:032x}", rand::random::<u128>()))
}

/// The `grpc-status` of response headers (a trailers-only response) or trailers.
fn grpc_status(headers: &HeaderMap) -> Option<i32> {
    headers.get("grpc-status")?.to_str().ok()?.trim().parse().ok()
}

/// The codes that mark a server span as failed, per the OpenTelemetry gRPC conventions; the
/// others are the caller's doing (a bad argument, a missing permission) and leave it unset.
fn is_server_error(code: i32) -> bool {
    matches!(
        tonic::Code::from(code),
        tonic::Code::Unknown
            | tonic::Code::DeadlineExceeded
            | tonic::Code::Unimplemented
            | tonic::Code::Internal
            | tonic::Code::Unavailable
            | tonic::Code::DataLoss
    )
}

/// One RPC in flight. Recorded once: when its status is known, or as CANCELLED when it is
/// dropped before (the client went away and hyper dropped the future or the body).
struct Call {
    instruments: Arc<Instruments>,
    method: StringValue,
    span: tracing::Span,
    started: Instant,
    finished: bool,
}

impl Call {
    /// Records a trailers-only response now; otherwise the status comes in the trailers, so the
    /// body is wrapped to record it when the last frame passes.
    fn observe(mut self, response: http::Response<Body>) -> http::Response<Body> {
        if let Some(code) = grpc_status(response.headers()) {
            self.finish(code);
            return response;
        }
        let (parts, body) = response.into_parts();
        if body.is_end_stream() {
            // No status in the headers and no trailers to come: the client will see none either.
            self.finish(tonic::Code::Unknown.into());
            return http::Response::from_parts(parts, body);
        }
        http::Response::from_parts(
            parts,
            Body::new(ObservedBody {
                inner: body,
                call: self,
            }),
        )
    }

    fn finish(&mut self, code: i32) {
        if std::mem::replace(&mut self.finished, true) {
            return;
        }
        let elapsed = self.started.elapsed();
        self.span.record("rpc.grpc.status_code", code);
        if is_server_error(code) {
            self.span.record("otel.status_code", "ERROR");
        }
        let attributes = [
            KeyValue::new("rpc.method", self.method.clone()),
            KeyValue::new("rpc.grpc.status_code", i64::from(code)),
        ];
        self.instruments.requests.add(1, &attributes);
        self.instruments.in_flight.add(-1, &attributes[..1]);
        self.instruments.duration.record(elapsed.as_secs_f64(), &attributes);
        tracing::debug!(
            parent: &self.span,
            method = self.method.as_str(),
            grpc_status = code,
            latency_ms = (elapsed.as_secs_f64() * 1e6).round() / 1e3,
            "call ended"
        );
    }
}

impl Drop for Call {
    fn drop(&mut self) {
        self.finish(tonic::Code::Cancelled.into());
    }
}

/// A response body that records the call when its trailers, an error or its end pass by.
struct ObservedBody {
    inner: Body,
    call: Call,
}

impl HttpBody for ObservedBody {
    type Data = <Body as HttpBody>::Data;
    type Error = <Body as HttpBody>::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Self::Data>, Self::Error>>> {
        let this = &mut *self;
        // A streaming handler's stream runs here, outside the handler's future: entering the
        // span gives its logs the call's trace too.
        let frame = ready!(this.call.span.in_scope(|| Pin::new(&mut this.inner).poll_frame(cx)));
        match &frame {
            Some(Ok(frame)) => {
                if let Some(trailers) = frame.trailers_ref() {
                    this.call
                        .finish(grpc_status(trailers).unwrap_or(tonic::Code::Unknown.into()));
                }
            }
            Some(Err(status)) => this.call.finish(status.code().into()),
            // Ended without trailers: no status was sent.
            None => this.call.finish(tonic::Code::Unknown.into()),
        }
        Poll::Ready(frame)
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

#[cfg(test)]
mod tests {
    use std::collections::VecDeque;
    use std::convert::Infallible;
    use std::sync::Mutex;

    use opentelemetry::trace::{SpanId, TraceId};
    use opentelemetry_proto::tonic::collector::metrics::v1::metrics_service_server::{
        MetricsService, MetricsServiceServer,
    };
    use opentelemetry_proto::tonic::collector::metrics::v1::{
        ExportMetricsServiceRequest, ExportMetricsServiceResponse,
    };
    use opentelemetry_proto::tonic::collector::trace::v1::trace_service_server::{TraceService, TraceServiceServer};
    use opentelemetry_proto::tonic::collector::trace::v1::{ExportTraceServiceRequest, ExportTraceServiceResponse};
    use opentelemetry_proto::tonic::common::v1::{KeyValue as ProtoKeyValue, any_value};
    use tower::ServiceExt as _;
    use tracing::field::{Field, Visit};

    use super::*;

    const TRACE_ID: &str = "4bf92f3577b34da6a3ce929d0e0e4736";
    const SPAN_ID: &str = "00f067aa0ba902b7";
    const TRACEPARENT: &str = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";

    /// Every event's fields as text, and the codes of the "call ended" lines.
    #[derive(Clone, Default)]
    struct Captured {
        lines: Arc<Mutex<Vec<String>>>,
        codes: Arc<Mutex<Vec<i64>>>,
    }

    impl Captured {
        fn codes(&self) -> Vec<i64> {
            self.codes.lock().unwrap().clone()
        }
    }

    struct Fields {
        text: String,
        code: Option<i64>,
    }

    impl Visit for Fields {
        fn record_i64(&mut self, field: &Field, value: i64) {
            if field.name() == "grpc_status" {
                self.code = Some(value);
            }
            self.record_debug(field, &value);
        }

        fn record_debug(&mut self, field: &Field, value: &dyn std::fmt::Debug) {
            self.text.push_str(&format!("{}={value:?} ", field.name()));
        }
    }

    impl<S: tracing::Subscriber> tracing_subscriber::Layer<S> for Captured {
        fn on_event(&self, event: &tracing::Event<'_>, _: tracing_subscriber::layer::Context<'_, S>) {
            let mut fields = Fields {
                text: String::new(),
                code: None,
            };
            event.record(&mut fields);
            if let Some(code) = fields.code {
                self.codes.lock().unwrap().push(code);
            }
            self.lines.lock().unwrap().push(fields.text);
        }

        fn on_new_span(
            &self,
            attrs: &tracing::span::Attributes<'_>,
            _: &tracing::span::Id,
            _: tracing_subscriber::layer::Context<'_, S>,
        ) {
            let mut fields = Fields {
                text: String::new(),
                code: None,
            };
            attrs.record(&mut fields);
            self.lines.lock().unwrap().push(fields.text);
        }
    }

    /// A subscriber with the production export filter and an SDK tracer that exports nowhere.
    fn subscriber(captured: &Captured) -> impl tracing::Subscriber + Send + Sync {
        global::set_text_map_propagator(TraceContextPropagator::new());
        let tracer = SdkTracerProvider::builder().build().tracer("test");
        Registry::default()
            .with(
                tracing_opentelemetry::layer()
                    .with_tracer(tracer)
                    .with_filter(export_filter()),
            )
            .with(captured.clone())
    }

    fn request(path: &str) -> http::Request<()> {
        http::Request::builder()
            .uri(path)
            .header("traceparent", TRACEPARENT)
            .body(())
            .unwrap()
    }

    /// A body that sends only trailers, as a unary success's body ends.
    struct TrailersBody(VecDeque<HeaderMap>);

    impl HttpBody for TrailersBody {
        type Data = <Body as HttpBody>::Data;
        type Error = tonic::Status;

        fn poll_frame(
            mut self: Pin<&mut Self>,
            _: &mut Context<'_>,
        ) -> Poll<Option<Result<Frame<Self::Data>, Self::Error>>> {
            Poll::Ready(self.0.pop_front().map(|trailers| Ok(Frame::trailers(trailers))))
        }
    }

    fn with_status_in_trailers(code: &'static str) -> http::Response<Body> {
        let mut trailers = HeaderMap::new();
        trailers.insert("grpc-status", http::HeaderValue::from_static(code));
        http::Response::new(Body::new(TrailersBody(VecDeque::from([trailers]))))
    }

    async fn drain(mut body: Body) {
        while let Some(frame) = std::future::poll_fn(|cx| Pin::new(&mut body).poll_frame(cx)).await {
            frame.unwrap();
        }
    }

    #[tokio::test]
    async fn an_incoming_traceparent_becomes_the_parent_of_the_call() {
        let _default = tracing::subscriber::set_default(subscriber(&Captured::default()));
        let seen = Arc::new(Mutex::new(None));
        let handler = {
            let seen = seen.clone();
            tower::service_fn(move |_: http::Request<()>| {
                let seen = seen.clone();
                async move {
                    let context = tracing::Span::current().context();
                    let span_context = context.span().span_context().clone();
                    *seen.lock().unwrap() = Some((span_context.trace_id(), span_context.span_id()));
                    Ok::<_, Infallible>(tonic::Status::ok("").into_http())
                }
            })
        };
        let service = RpcTelemetryLayer::new().layer(handler);
        service.oneshot(request("/bangfu.test.v1.Echo/Say")).await.unwrap();

        let (trace_id, span_id) = seen.lock().unwrap().expect("the handler ran");
        assert_eq!(trace_id, TraceId::from_hex(TRACE_ID).unwrap());
        // The handler runs in the call's own span, a child of the caller's.
        assert_ne!(span_id, SpanId::from_hex(SPAN_ID).unwrap());
        assert_ne!(span_id, SpanId::INVALID);
    }

    #[test]
    fn inject_writes_the_current_trace_into_outgoing_metadata() {
        let _default = tracing::subscriber::set_default(subscriber(&Captured::default()));
        let span = rpc_span("/bangfu.test.v1.Echo/Say");
        let parent = global::get_text_map_propagator(|propagator| {
            let mut headers = HeaderMap::new();
            headers.insert("traceparent", http::HeaderValue::from_static(TRACEPARENT));
            propagator.extract(&HeaderExtractor(&headers))
        });
        span.set_parent(parent).unwrap();

        let mut metadata = MetadataMap::new();
        span.in_scope(|| inject_trace_context(&mut metadata));

        let traceparent = metadata
            .get("traceparent")
            .expect("traceparent injected")
            .to_str()
            .unwrap();
        let parts: Vec<&str> = traceparent.split('-').collect();
        assert_eq!(parts.len(), 4, "{traceparent}");
        assert_eq!(parts[1], TRACE_ID);
        // The called service's parent is this call's span, not the one that called us.
        assert_ne!(parts[2], SPAN_ID);
        assert_eq!(parts[3], "01");
    }

    #[test]
    fn inject_adds_nothing_outside_a_trace() {
        let _default = tracing::subscriber::set_default(subscriber(&Captured::default()));
        let mut metadata = MetadataMap::new();
        inject_trace_context(&mut metadata);
        assert!(metadata.get("traceparent").is_none());
    }

    #[test]
    fn grpc_status_is_read_from_a_trailers_only_error() {
        let response: http::Response<Body> = tonic::Status::permission_denied("no").into_http();
        assert_eq!(grpc_status(response.headers()), Some(7));
        assert_eq!(grpc_status(&HeaderMap::new()), None);
        assert!(is_server_error(13));
        assert!(!is_server_error(7));
        assert!(!is_server_error(0));
    }

    #[tokio::test]
    async fn a_trailers_only_error_is_recorded_with_its_code() {
        let captured = Captured::default();
        let _default = tracing::subscriber::set_default(subscriber(&captured));
        let handler = tower::service_fn(|_: http::Request<()>| async {
            Ok::<_, Infallible>(tonic::Status::permission_denied("no").into_http())
        });
        let response = RpcTelemetryLayer::new()
            .layer(handler)
            .oneshot(request("/bangfu.test.v1.Echo/Say"))
            .await
            .unwrap();
        assert_eq!(captured.codes(), vec![7]);
        drain(response.into_body()).await;
        assert_eq!(captured.codes(), vec![7], "recorded once");
    }

    #[tokio::test]
    async fn a_status_in_trailers_is_recorded_when_the_body_ends() {
        let captured = Captured::default();
        let _default = tracing::subscriber::set_default(subscriber(&captured));
        let handler =
            tower::service_fn(|_: http::Request<()>| async { Ok::<_, Infallible>(with_status_in_trailers("5")) });
        let response = RpcTelemetryLayer::new()
            .layer(handler)
            .oneshot(request("/bangfu.test.v1.Echo/Say"))
            .await
            .unwrap();
        assert!(
            captured.codes().is_empty(),
            "the status is not known before the trailers"
        );
        drain(response.into_body()).await;
        assert_eq!(captured.codes(), vec![5]);
    }

    #[tokio::test]
    async fn a_body_dropped_before_its_end_is_recorded_as_cancelled() {
        let captured = Captured::default();
        let _default = tracing::subscriber::set_default(subscriber(&captured));
        let handler =
            tower::service_fn(|_: http::Request<()>| async { Ok::<_, Infallible>(with_status_in_trailers("0")) });
        let response = RpcTelemetryLayer::new()
            .layer(handler)
            .oneshot(request("/bangfu.test.v1.Echo/Say"))
            .await
            .unwrap();
        drop(response);
        assert_eq!(captured.codes(), vec![1]);
    }

    #[tokio::test]
    async fn metadata_values_never_reach_logs_or_spans() {
        let captured = Captured::default();
        let _default = tracing::subscriber::set_default(subscriber(&captured));
        let handler = tower::service_fn(|_: http::Request<()>| async {
            tracing::info!("handled");
            Ok::<_, Infallible>(tonic::Status::ok("").into_http())
        });
        let mut request = request("/bangfu.test.v1.Echo/Say");
        let headers = request.headers_mut();
        headers.insert("authorization", http::HeaderValue::from_static("Bearer secret-token"));
        headers.insert("x-bangfu-on-behalf-of", http::HeaderValue::from_static("user-secret"));
        RpcTelemetryLayer::new().layer(handler).oneshot(request).await.unwrap();

        let lines = captured.lines.lock().unwrap().join("\n");
        assert!(lines.contains("grpc_status=0"), "{lines}");
        assert!(!lines.contains("secret"), "{lines}");
    }

    /// The layer as `ServerHost::serve` stacks it, on a real server and client: the client's
    /// interceptor carries the trace over the wire, and a unary success's status comes from the
    /// trailers.
    #[tokio::test]
    async fn a_trace_crosses_a_real_grpc_call() {
        use tonic_health::pb::HealthCheckRequest;
        use tonic_health::pb::health_client::HealthClient;

        let captured = Captured::default();
        let _default = tracing::subscriber::set_default(subscriber(&captured));
        let seen = Arc::new(Mutex::new(Vec::new()));
        let record_trace = {
            let seen = seen.clone();
            tower::util::MapRequestLayer::new(move |request: http::Request<Body>| {
                let context = tracing::Span::current().context();
                seen.lock().unwrap().push(context.span().span_context().trace_id());
                request
            })
        };
        let (_reporter, health) = tonic_health::server::health_reporter();
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let endpoint = format!("http://{}", listener.local_addr().unwrap());
        let server = tonic::transport::Server::builder()
            .layer(RpcTelemetryLayer::new())
            .layer(tower::limit::GlobalConcurrencyLimitLayer::new(4))
            .layer(record_trace)
            .add_service(health)
            .serve_with_incoming(tonic::transport::server::TcpIncoming::from(listener));
        tokio::spawn(server);

        let channel = tonic::transport::Endpoint::from_shared(endpoint)
            .unwrap()
            .connect()
            .await
            .unwrap();
        let mut client = HealthClient::with_interceptor(channel, |mut request: tonic::Request<()>| {
            inject_trace_context(request.metadata_mut());
            Ok(request)
        });
        let caller = tracing::info_span!("caller");
        let mut headers = HeaderMap::new();
        headers.insert("traceparent", http::HeaderValue::from_static(TRACEPARENT));
        caller
            .set_parent(global::get_text_map_propagator(|p| {
                p.extract(&HeaderExtractor(&headers))
            }))
            .unwrap();
        let serving = client
            .check(HealthCheckRequest { service: String::new() })
            .instrument(caller.clone())
            .await;
        assert!(serving.is_ok(), "{serving:?}");
        let unknown = client
            .check(HealthCheckRequest { service: "nope".into() })
            .instrument(caller)
            .await;
        assert_eq!(unknown.unwrap_err().code(), tonic::Code::NotFound);

        let trace_id = TraceId::from_hex(TRACE_ID).unwrap();
        assert_eq!(*seen.lock().unwrap(), vec![trace_id, trace_id]);
        // hyper may poll the trailers after the client already has its answer.
        for _ in 0..100 {
            if captured.codes().len() == 2 {
                break;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        assert_eq!(captured.codes(), vec![0, 5]);
    }

    /// A received span with its resource's attributes.
    type ReceivedSpan = (Vec<ProtoKeyValue>, opentelemetry_proto::tonic::trace::v1::Span);

    /// An OTLP collector on loopback that keeps what it receives.
    #[derive(Clone, Default)]
    struct Collector {
        spans: Arc<Mutex<Vec<ReceivedSpan>>>,
        metrics: Arc<Mutex<Vec<String>>>,
    }

    #[tonic::async_trait]
    impl TraceService for Collector {
        async fn export(
            &self,
            request: tonic::Request<ExportTraceServiceRequest>,
        ) -> Result<tonic::Response<ExportTraceServiceResponse>, tonic::Status> {
            let mut spans = self.spans.lock().unwrap();
            for resource_spans in request.into_inner().resource_spans {
                let resource = resource_spans.resource.map(|r| r.attributes).unwrap_or_default();
                for scope_spans in resource_spans.scope_spans {
                    spans.extend(scope_spans.spans.into_iter().map(|span| (resource.clone(), span)));
                }
            }
            Ok(tonic::Response::new(ExportTraceServiceResponse {
                partial_success: None,
            }))
        }
    }

    #[tonic::async_trait]
    impl MetricsService for Collector {
        async fn export(
            &self,
            request: tonic::Request<ExportMetricsServiceRequest>,
        ) -> Result<tonic::Response<ExportMetricsServiceResponse>, tonic::Status> {
            let mut metrics = self.metrics.lock().unwrap();
            for resource_metrics in request.into_inner().resource_metrics {
                for scope_metrics in resource_metrics.scope_metrics {
                    metrics.extend(scope_metrics.metrics.into_iter().map(|metric| metric.name));
                }
            }
            Ok(tonic::Response::new(ExportMetricsServiceResponse {
                partial_success: None,
            }))
        }
    }

    fn text(attributes: &[ProtoKeyValue], key: &str) -> Option<String> {
        attributes
            .iter()
            .find(|kv| kv.key == key)
            .and_then(|kv| match kv.value.as_ref()?.value.as_ref()? {
                any_value::Value::StringValue(text) => Some(text.clone()),
                _ => None,
            })
    }

    /// The one test that installs the process-wide subscriber: `init` works once per process.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn init_exports_calls_to_the_collector_and_shutdown_flushes_them() {
        let collector = Collector::default();
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let endpoint = format!("http://{}", listener.local_addr().unwrap());
        tokio::spawn(
            tonic::transport::Server::builder()
                .add_service(TraceServiceServer::new(collector.clone()))
                .add_service(MetricsServiceServer::new(collector.clone()))
                .serve_with_incoming(tonic::transport::server::TcpIncoming::from(listener)),
        );
        let config = TelemetryConfig {
            log_filter: "warn".into(),
            json: false,
            otlp_endpoint: Some(endpoint),
        };
        let started = Instant::now();
        let guard = init_service(&config, "bangfu-test");
        assert!(started.elapsed() < Duration::from_secs(1), "init waited");
        assert!(guard.is_exporting());
        assert!(!init(&config).is_exporting(), "a second init does nothing");

        let handler = tower::service_fn(|_: http::Request<()>| async {
            Ok::<_, Infallible>(tonic::Status::not_found("no such person").into_http())
        });
        RpcTelemetryLayer::new()
            .layer(handler)
            .oneshot(request("/bangfu.test.v1.Export/Send"))
            .await
            .unwrap();
        // A first export, so that spans the transport made during it would be in the second.
        let tracer = guard.tracer.clone().unwrap();
        tokio::task::spawn_blocking(move || tracer.force_flush())
            .await
            .unwrap()
            .unwrap();
        tokio::time::timeout(Duration::from_secs(30), guard.shutdown())
            .await
            .expect("shutdown is bounded");

        let spans = collector.spans.lock().unwrap();
        let (resource, span) = spans
            .iter()
            .find(|(_, span)| span.name == "bangfu.test.v1.Export/Send")
            .expect("the call's span was exported");
        assert_eq!(span.trace_id, TraceId::from_hex(TRACE_ID).unwrap().to_bytes().to_vec());
        assert_eq!(
            span.parent_span_id,
            SpanId::from_hex(SPAN_ID).unwrap().to_bytes().to_vec()
        );
        assert_eq!(text(&span.attributes, "rpc.method").as_deref(), Some("Send"));
        let code = span.attributes.iter().find(|kv| kv.key == "rpc.grpc.status_code");
        let code = code.and_then(|kv| kv.value.as_ref()?.value.clone());
        assert_eq!(code, Some(any_value::Value::IntValue(5)), "{:?}", span.attributes);
        // NOT_FOUND is the caller's doing: the span is not marked failed.
        assert_eq!(span.status.as_ref().map_or(0, |status| status.code), 0);
        if std::env::var_os("OTEL_SERVICE_NAME").is_none() {
            assert_eq!(text(resource, "service.name").as_deref(), Some("bangfu-test"));
        }
        for (_, span) in spans.iter() {
            let target = text(&span.attributes, "target").unwrap_or_default();
            assert!(
                !NOT_EXPORTED.iter().any(|prefix| target.starts_with(prefix)),
                "exported a span of {target}"
            );
        }
        let metrics = collector.metrics.lock().unwrap();
        assert!(metrics.iter().any(|name| name == "rpc.server.requests"), "{metrics:?}");
        assert!(metrics.iter().any(|name| name == "rpc.server.duration"), "{metrics:?}");
    }
}
