//! The gRPC server every bangfu process runs: the services it hosts behind the auth layer,
//! gRPC health per service (NOT_SERVING while draining), reflection v1 and v1alpha, limits from
//! the configuration, optional TLS with client certificates, and a graceful shutdown that lets
//! in-flight calls finish, ends open streams and refuses new calls.
//!
//! A service backed by a database reports NOT_SERVING while the database does not answer, so a
//! load balancer or a readiness probe stops sending it calls; the server as a whole (the empty
//! service name, what liveness probes ask) stays SERVING, because restarting a process does not
//! bring a database back. A second, plaintext listener can serve only the health service, for
//! probes that cannot present a client certificate, and `GET /metrics` for Prometheus.

use std::sync::Arc;
use std::time::Duration;

use tokio::net::TcpListener;
use tokio::sync::watch;
use tonic::server::NamedService;
use tonic::service::RoutesBuilder;
use tonic::transport::server::TcpIncoming;
use tonic::transport::{Certificate, Identity, Server, ServerTlsConfig};
use tonic_health::ServingStatus;
use tonic_health::pb::health_server::HealthServer;
use tonic_health::server::{HealthReporter, HealthService};

use crate::auth::MethodRule;
use crate::auth::layer::{AuthLayer, DenialAudit};
use crate::auth::verify::Verifier;
use crate::config::ServerConfig;

/// Why the server could not start or stopped with an error.
#[derive(Debug, thiserror::Error)]
pub enum ServeError {
    #[error("cannot read TLS file {path}: {source}")]
    TlsFile {
        path: std::path::PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("TLS configuration is not usable: {0}")]
    Tls(#[source] tonic::transport::Error),
    #[error("the server failed: {0}")]
    Transport(#[source] tonic::transport::Error),
    #[error("cannot listen on {addr}: {source}")]
    Listen {
        addr: std::net::SocketAddr,
        #[source]
        source: std::io::Error,
    },
}

/// A shutdown that can be triggered by a signal or by a test, and awaited by anything that
/// must stop: the server's accept loop and every open stream.
#[derive(Debug, Clone)]
pub struct Shutdown {
    sender: Arc<watch::Sender<bool>>,
}

impl Default for Shutdown {
    fn default() -> Self {
        Self::new()
    }
}

impl Shutdown {
    pub fn new() -> Self {
        Self {
            sender: Arc::new(watch::channel(false).0),
        }
    }

    /// Starts the shutdown; calling it again does nothing more.
    pub fn trigger(&self) {
        self.sender.send_replace(true);
    }

    pub fn is_triggered(&self) -> bool {
        *self.sender.borrow()
    }

    /// Resolves once the shutdown has been triggered.
    pub async fn triggered(&self) {
        let mut receiver = self.sender.subscribe();
        // An error means the sender is gone, which only happens once nothing can trigger it.
        let _ = receiver.wait_for(|triggered| *triggered).await;
    }

    /// Triggers the shutdown on SIGTERM or Ctrl-C.
    ///
    /// The handlers are installed before this returns, so a caller that announces readiness
    /// after it cannot lose a signal sent at once: a signal that arrived before a spawned task
    /// had installed them was lost (when the parent had SIGTERM ignored, as a supervisor may)
    /// and the server never stopped.
    pub fn trigger_on_signals(&self) {
        let shutdown = self.clone();
        #[cfg(unix)]
        {
            use tokio::signal::unix::{SignalKind, signal};
            let term = signal(SignalKind::terminate());
            let interrupt = signal(SignalKind::interrupt());
            tokio::spawn(async move {
                tokio::select! {
                    () = delivered(interrupt, "Ctrl-C") => tracing::info!("Ctrl-C received; shutting down"),
                    () = delivered(term, "SIGTERM") => tracing::info!("SIGTERM received; shutting down"),
                }
                shutdown.trigger();
            });
        }
        #[cfg(not(unix))]
        tokio::spawn(async move {
            let _ = tokio::signal::ctrl_c().await;
            shutdown.trigger();
        });
    }
}

/// Resolves when `signal` is delivered; never, with a warning, when it could not be listened for
/// (the other signal still stops the server).
#[cfg(unix)]
async fn delivered(signal: std::io::Result<tokio::signal::unix::Signal>, name: &str) {
    match signal {
        Ok(mut signal) => {
            signal.recv().await;
        }
        Err(error) => {
            tracing::warn!(%error, "cannot listen for {name}; only the other signal will stop the server");
            std::future::pending::<()>().await;
        }
    }
}

/// The services one server process hosts, and how it serves them.
pub struct ServerHost {
    config: ServerConfig,
    verifier: Arc<Verifier>,
    methods: Vec<MethodRule>,
    routes: RoutesBuilder,
    services: Vec<&'static str>,
    health: HealthReporter,
    health_service: HealthServer<HealthService>,
    health_listener: Option<TcpListener>,
    databases: Vec<(&'static str, crate::db::Database)>,
    database_check_interval: Duration,
    shutdown: Shutdown,
    denials: Vec<DenialAudit>,
    followers: Vec<crate::follow::HostedFollower>,
    jobs: Vec<crate::jobs::Job>,
    /// Services whose database's pool and audit lag are measured, by short name.
    measured: Vec<(&'static str, crate::db::Database)>,
    /// CA certificates (PEM) a client certificate must chain to, given in memory rather than
    /// as the configuration's file: the exchange's partner port pins each partner's CA.
    client_ca_pem: Option<Vec<u8>>,
}

/// The largest header block a call may send: room for the tokens and trace headers, well
/// above `MAX_TOKEN_BYTES` twice (a service's token and the user's).
const MAX_HEADER_LIST_BYTES: u32 = 256 * 1024;

/// How often the audit rows committed since are chained into the log.
const AUDIT_SEAL_INTERVAL: Duration = Duration::from_secs(10);

/// How often a service's database is asked whether it answers, and how long it may take.
const DATABASE_CHECK_INTERVAL: Duration = Duration::from_secs(5);
const DATABASE_CHECK_TIMEOUT: Duration = Duration::from_secs(1);

/// Tasks that end with their owner.
struct AbortOnDrop(Vec<tokio::task::JoinHandle<()>>);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        for task in &self.0 {
            task.abort();
        }
    }
}

impl ServerHost {
    /// A host with health, reflection and nothing else yet, authorizing by the suite's table.
    pub fn new(config: ServerConfig, verifier: Arc<Verifier>) -> Self {
        Self::with_methods(config, verifier, crate::auth::permissions::PLATFORM_METHODS)
    }

    /// A host authorizing by another method table (for tests of the mechanism itself).
    pub fn with_methods(config: ServerConfig, verifier: Arc<Verifier>, methods: &[MethodRule]) -> Self {
        let health = HealthReporter::new();
        let health_service = HealthServer::new(HealthService::from_health_reporter(health.clone()));
        let mut routes = RoutesBuilder::default();
        routes.add_service(
            health_service
                .clone()
                .max_decoding_message_size(config.max_receive_bytes)
                .max_encoding_message_size(config.max_send_bytes),
        );
        // Both reflection versions: grpcurl and Postman speak v1, older tools v1alpha.
        if let Ok(v1) = reflection_builder().build_v1() {
            routes.add_service(v1);
        }
        if let Ok(v1alpha) = reflection_builder().build_v1alpha() {
            routes.add_service(v1alpha);
        }
        Self {
            config,
            verifier,
            methods: methods.to_vec(),
            routes,
            services: Vec::new(),
            health,
            health_service,
            health_listener: None,
            databases: Vec::new(),
            database_check_interval: DATABASE_CHECK_INTERVAL,
            shutdown: Shutdown::new(),
            denials: Vec::new(),
            followers: Vec::new(),
            jobs: Vec::new(),
            measured: Vec::new(),
            client_ca_pem: None,
        }
    }

    /// Stops with `shutdown` instead of a shutdown of its own: a second listener of one process
    /// (the exchange's partner-facing port) drains with the first.
    pub fn with_shutdown(mut self, shutdown: Shutdown) -> Self {
        self.shutdown = shutdown;
        self
    }

    /// Requires every client to present a certificate chaining to one of `pem`'s CA
    /// certificates (with TLS configured), instead of the configuration's client CA file.
    pub fn require_client_certificates_from(&mut self, pem: Vec<u8>) -> &mut Self {
        self.client_ca_pem = Some(pem);
        self
    }

    pub fn config(&self) -> &ServerConfig {
        &self.config
    }

    /// The shutdown that stops this server; streams select on it to end when the server drains.
    pub fn shutdown(&self) -> Shutdown {
        self.shutdown.clone()
    }

    /// The fully qualified names of the services added so far.
    pub fn service_names(&self) -> &[&'static str] {
        &self.services
    }

    /// Audits the refused calls of methods under `path_prefix` (`/bangfu.identity.v1.`) in that
    /// service's database.
    pub fn audit_denials(&mut self, path_prefix: &'static str, db: crate::db::Database) -> &mut Self {
        self.denials.push(DenialAudit::start(path_prefix, db));
        self
    }

    /// Also serves the health service, alone and in plaintext, on `listener`: for kubelet gRPC
    /// probes and container health checks, which cannot present a client certificate; and
    /// `GET /metrics` (HTTP/1.1 or 2) for Prometheus. It answers until the main server has
    /// stopped, so a draining server reads NOT_SERVING.
    pub fn health_listener(&mut self, listener: TcpListener) -> &mut Self {
        self.health_listener = Some(listener);
        self
    }

    /// Reports `service` (its fully qualified name) NOT_SERVING while `db` does not answer.
    pub fn ready_while_database_answers(&mut self, service: &'static str, db: crate::db::Database) -> &mut Self {
        self.databases.push((service, db));
        self
    }

    /// How often the databases are asked whether they answer (default 5 s).
    pub fn check_databases_every(&mut self, interval: Duration) -> &mut Self {
        self.database_check_interval = interval;
        self
    }

    /// Chains the audit rows of `db` every few seconds while the server runs. Safe with several
    /// replicas: on PostgreSQL the sealer takes an advisory lock, on SQLite the write lock.
    pub fn seal_audit_periodically(&mut self, db: crate::db::Database) -> &mut Self {
        let job = crate::jobs::Job::new("audit-seal", AUDIT_SEAL_INTERVAL, db.clone(), move || {
            let db = db.clone();
            async move {
                crate::audit::seal(&db).await?;
                Ok(())
            }
        });
        self.jobs.push(job);
        self
    }

    /// Hosts a started service the way every service is hosted: its method rules join the
    /// authorization table, its routes are served, it reads NOT_SERVING while its database does
    /// not answer, refusals of its methods and its audit log are kept in its database (sealed,
    /// and trimmed to the retention the parameters set), and its followers and jobs run while
    /// the server does.
    pub fn host_service(
        &mut self,
        descriptor: &crate::service::ServiceDescriptor,
        db: crate::db::Database,
        clock: crate::clock::Clock,
        started: crate::service::Started,
    ) -> &mut Self {
        self.methods.extend_from_slice(descriptor.methods);
        let before = self.services.len();
        (started.mount)(self);
        let added: Vec<&'static str> = self.services[before..].to_vec();
        for name in added {
            self.ready_while_database_answers(name, db.clone());
        }
        self.audit_denials(descriptor.path_prefix, db.clone());
        self.measured.push((descriptor.name, db.clone()));
        self.seal_audit_periodically(db.clone());
        self.jobs.push(crate::audit::retention_job(db, descriptor.name, clock));
        self.followers.extend(started.followers);
        self.jobs.extend(started.jobs);
        self
    }

    /// The status of every hosted feed follower, for diagnostics.
    pub fn follower_statuses(&self) -> Vec<std::sync::Arc<crate::follow::FollowerStatus>> {
        self.followers.iter().map(|f| f.status.clone()).collect()
    }

    /// Adds a service; its health status becomes SERVING when the server starts.
    pub fn add_service<S>(&mut self, service: S) -> &mut Self
    where
        S: tower::Service<
                http::Request<tonic::body::Body>,
                Response = http::Response<tonic::body::Body>,
                Error = std::convert::Infallible,
            > + NamedService
            + Clone
            + Send
            + Sync
            + 'static,
        S::Future: Send + 'static,
    {
        self.services.push(S::NAME);
        self.routes.add_service(service);
        self
    }

    /// Serves until the shutdown is triggered, then lets in-flight calls finish for at most the
    /// configured grace period.
    pub async fn serve(self, listener: TcpListener) -> Result<(), ServeError> {
        let Self {
            config,
            verifier,
            methods,
            routes,
            services,
            health,
            health_service,
            health_listener,
            databases,
            database_check_interval,
            shutdown,
            denials,
            followers,
            jobs,
            measured,
            client_ca_pem,
        } = self;
        crate::request_text::prepare();
        // Kept until the server stops: the gauges report while they live.
        let _gauges: Vec<_> = measured
            .into_iter()
            .map(|(service, db)| crate::metrics::watch_database(service, db, shutdown.clone()))
            .collect();
        for name in &services {
            health.set_service_status(*name, ServingStatus::Serving).await;
        }
        health.set_service_status("", ServingStatus::Serving).await;
        let watcher = tokio::spawn(watch_databases(
            databases,
            database_check_interval,
            health.clone(),
            shutdown.clone(),
        ));
        let background: Vec<_> = jobs
            .into_iter()
            .map(|job| job.spawn(shutdown.clone()))
            .chain(followers.into_iter().map(|follower| follower.spawn(shutdown.clone())))
            .collect();
        let health_only = health_listener.map(|listener| {
            let incoming = TcpIncoming::from(listener).with_nodelay(Some(true));
            tokio::spawn(
                Server::builder()
                    // Prometheus scrapes over HTTP/1.1; probes speak gRPC over HTTP/2.
                    .accept_http1(true)
                    .layer(crate::telemetry::PrometheusEndpoint::layer())
                    .add_service(health_service)
                    .serve_with_incoming(incoming),
            )
        });

        let mut builder = Server::builder()
            // Above the largest token the layer accepts, so an oversized one is refused on its
            // own stream (TOKEN_TOO_LARGE) instead of by the transport: HTTP 431, which
            // clients show as UNKNOWN, or a GOAWAY that also drops every other call sharing
            // the connection — behind a gateway, other users' calls.
            .http2_max_header_list_size(MAX_HEADER_LIST_BYTES)
            .http2_keepalive_interval(Some(config.keepalive_interval))
            .http2_keepalive_timeout(Some(config.keepalive_timeout))
            .tcp_nodelay(true);
        if let Some(tls) = &config.tls {
            let read = |path: &std::path::Path| {
                std::fs::read(path).map_err(|source| ServeError::TlsFile {
                    path: path.to_path_buf(),
                    source,
                })
            };
            let mut tls_config = ServerTlsConfig::new().identity(Identity::from_pem(read(&tls.cert)?, read(&tls.key)?));
            if let Some(pem) = client_ca_pem {
                tls_config = tls_config.client_ca_root(Certificate::from_pem(pem));
            } else if let Some(ca) = &tls.client_ca {
                tls_config = tls_config.client_ca_root(Certificate::from_pem(read(ca)?));
            }
            builder = builder.tls_config(tls_config).map_err(ServeError::Tls)?;
        }
        let router = builder
            .layer(crate::telemetry::RpcTelemetryLayer::new().with_known_methods(methods.iter().map(|m| m.path)))
            .layer(tower::limit::GlobalConcurrencyLimitLayer::new(config.concurrency_limit))
            .layer(AuthLayer::with_methods(
                verifier,
                &methods,
                config.unary_timeout,
                denials,
            ))
            .add_routes(routes.routes());

        let draining = {
            let shutdown = shutdown.clone();
            let health = health.clone();
            let services = services.clone();
            async move {
                shutdown.triggered().await;
                // Load balancers stop sending before the listener closes.
                for name in &services {
                    health.set_service_status(*name, ServingStatus::NotServing).await;
                }
                health.set_service_status("", ServingStatus::NotServing).await;
                tracing::info!("draining: finishing in-flight calls, refusing new ones");
            }
        };
        let incoming = speaking_within(listener, config.handshake_timeout);
        let serving = router.serve_with_incoming_shutdown(incoming, draining);
        tokio::pin!(serving);
        let grace = config.shutdown_grace;
        let outcome = tokio::select! {
            outcome = &mut serving => outcome.map_err(ServeError::Transport),
            () = grace_expired(&shutdown, grace) => {
                tracing::warn!(grace_seconds = grace.as_secs(), "calls still running after the grace period; stopping anyway");
                Ok(())
            }
        };
        watcher.abort();
        for task in background {
            task.abort();
        }
        if let Some(task) = health_only {
            task.abort();
        }
        tracing::info!("server stopped");
        outcome
    }
}

/// Asks each database whether it answers, every few seconds until the shutdown, and sets its
/// service's health to match, logging each change once.
async fn watch_databases(
    databases: Vec<(&'static str, crate::db::Database)>,
    interval: Duration,
    health: HealthReporter,
    shutdown: Shutdown,
) {
    if databases.is_empty() {
        return;
    }
    let mut answering: Vec<bool> = vec![true; databases.len()];
    // A call that cannot get a connection checks at once: health turns within about a second
    // of failing calls, not at the next round.
    let troubled = Arc::new(tokio::sync::Notify::new());
    let relays: Vec<_> = databases
        .iter()
        .map(|(_, db)| {
            let (db, troubled) = (db.clone(), troubled.clone());
            tokio::spawn(async move {
                loop {
                    db.troubled().await;
                    troubled.notify_one();
                }
            })
        })
        .collect();
    let _relays = AbortOnDrop(relays);
    loop {
        tokio::select! {
            () = tokio::time::sleep(interval) => {}
            () = troubled.notified() => {}
            () = shutdown.triggered() => return,
        }
        for ((service, db), was) in databases.iter().zip(answering.iter_mut()) {
            let ping = sqlx::query("SELECT 1").execute(db.pool());
            let now = matches!(tokio::time::timeout(DATABASE_CHECK_TIMEOUT, ping).await, Ok(Ok(_)));
            // Draining has set NOT_SERVING for good; a late check must not undo it.
            if now == *was || shutdown.is_triggered() {
                continue;
            }
            *was = now;
            if now {
                tracing::info!(service, "the database answers again; serving");
                health.set_service_status(*service, ServingStatus::Serving).await;
            } else {
                tracing::warn!(
                    service,
                    "the database does not answer; reporting NOT_SERVING until it does"
                );
                health.set_service_status(*service, ServingStatus::NotServing).await;
            }
        }
    }
}

fn reflection_builder() -> tonic_reflection::server::Builder<'static> {
    tonic_reflection::server::Builder::configure()
        .register_encoded_file_descriptor_set(bangfu_proto::FILE_DESCRIPTOR_SET)
        .register_encoded_file_descriptor_set(tonic_health::pb::FILE_DESCRIPTOR_SET)
}

impl ServerHost {
    /// Serves the same routes with no platform layers at all: no token check, no limits, no
    /// telemetry. Only the platform benchmark uses it, to measure what the layers cost; it
    /// refuses any address but loopback.
    pub async fn serve_without_layers_for_benchmark(self, listener: TcpListener) -> Result<(), ServeError> {
        let addr = listener.local_addr().map_err(|source| ServeError::Listen {
            addr: std::net::SocketAddr::from(([0, 0, 0, 0], 0)),
            source,
        })?;
        if !addr.ip().is_loopback() {
            return Err(ServeError::Listen {
                addr,
                source: std::io::Error::other("an unprotected benchmark server listens on loopback only"),
            });
        }
        let shutdown = self.shutdown.clone();
        let incoming = TcpIncoming::from(listener).with_nodelay(Some(true));
        Server::builder()
            .add_routes(self.routes.routes())
            .serve_with_incoming_shutdown(incoming, async move { shutdown.triggered().await })
            .await
            .map_err(ServeError::Transport)
    }
}

async fn grace_expired(shutdown: &Shutdown, grace: Duration) {
    shutdown.triggered().await;
    tokio::time::sleep(grace).await;
}

/// The accepted connections that send their first bytes (the HTTP/2 preface, or a TLS hello)
/// within `timeout`. A client that connects and says nothing is closed then, instead of
/// holding a descriptor for good; a flood of them cannot exhaust the server's.
fn speaking_within(
    listener: TcpListener,
    timeout: Duration,
) -> tokio_stream::wrappers::ReceiverStream<Result<tokio::net::TcpStream, std::io::Error>> {
    let (ready, incoming) = tokio::sync::mpsc::channel(256);
    tokio::spawn(async move {
        while !ready.is_closed() {
            let stream = match listener.accept().await {
                Ok((stream, _)) => stream,
                Err(error) => {
                    // Out of descriptors, or a connection reset before it was accepted: the
                    // listener itself is fine; wait a moment rather than spin.
                    tracing::warn!(%error, "accepting a connection failed");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                    continue;
                }
            };
            let _ = stream.set_nodelay(true);
            let ready = ready.clone();
            tokio::spawn(async move {
                let mut first = [0u8; 1];
                match tokio::time::timeout(timeout, stream.peek(&mut first)).await {
                    Ok(Ok(read)) if read > 0 => {
                        let _ = ready.send(Ok(stream)).await;
                    }
                    Ok(_) => {}
                    Err(_) => tracing::debug!("closing a connection that sent nothing"),
                }
            });
        }
    });
    tokio_stream::wrappers::ReceiverStream::new(incoming)
}

/// Binds the listening socket, with an error that says what to do when the port is taken.
pub async fn bind(addr: std::net::SocketAddr) -> Result<TcpListener, ServeError> {
    TcpListener::bind(addr)
        .await
        .map_err(|source| ServeError::Listen { addr, source })
}

#[cfg(all(test, unix))]
mod tests {
    use super::*;

    /// On a current-thread runtime nothing spawned runs before the first await, so the signal
    /// below arrives before any spawned task could install a handler: only handlers installed
    /// by `trigger_on_signals` itself catch it. (Without one, SIGTERM ends this test process.)
    #[tokio::test]
    async fn a_sigterm_sent_as_soon_as_the_handlers_are_asked_for_stops_the_server() {
        let shutdown = Shutdown::new();
        shutdown.trigger_on_signals();
        let sent = std::process::Command::new("kill")
            .args(["-TERM", &std::process::id().to_string()])
            .status()
            .expect("kill");
        assert!(sent.success());
        tokio::time::timeout(Duration::from_secs(30), shutdown.triggered())
            .await
            .expect("the shutdown is triggered by the SIGTERM");
    }
}
