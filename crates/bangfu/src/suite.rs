//! The suite's services and how a server process hosts them. `bangfu up` hosts every service
//! built so far on one port; `bangfu serve <service>` hosts one. Both go through [`host`], so
//! the two ways of running differ only in configuration.

use std::sync::Arc;

use std::path::{Path, PathBuf};

use bangfu_platform::auth::RegionScope;
use bangfu_platform::auth::keys::{DevelopmentKeys, signing_key_path};
use bangfu_platform::auth::permissions::SERVICES;
use bangfu_platform::auth::token::{ServiceTokens, TokenSigner};
use bangfu_platform::auth::verify::Verifier;
use bangfu_platform::clock::Clock;
use bangfu_platform::config::Config;
use bangfu_platform::data_key_check::{self, KeyCheckError, KeyCheckOutcome, KeyIds};
use bangfu_platform::db::{Database, PoolSettings, SchemaReport, ensure_postgres_database, sqlite_url, to_micros};
use bangfu_platform::diagnostics::Diagnostics;
use bangfu_platform::peers::{PeerSettings, PeerTls, Peers};
use bangfu_platform::pii::{DataKeyFile, DataKeys};
use bangfu_platform::server::ServerHost;
use bangfu_platform::service::{ServiceContext, ServiceDescriptor};
use clap::Args;

use crate::Failure;

/// The services this build runs: the one list a new service's descriptor is added to.
pub const DESCRIPTORS: &[&ServiceDescriptor] = &[
    &bangfu_identity::DESCRIPTOR,
    &bangfu_subsidy_payment::DESCRIPTOR,
    &bangfu_public_welfare_post::DESCRIPTOR,
    &bangfu_work_relief::DESCRIPTOR,
    &bangfu_job_matching::DESCRIPTOR,
    &bangfu_exchange::DESCRIPTOR,
    &bangfu_reports::DESCRIPTOR,
];

/// The names of the services this build runs.
pub fn built() -> Vec<&'static str> {
    DESCRIPTORS.iter().map(|d| d.name).collect()
}

fn descriptor(service: &str) -> Option<&'static ServiceDescriptor> {
    DESCRIPTORS.iter().copied().find(|d| d.name == service)
}

/// Where each service's database is.
#[derive(Debug, Clone)]
pub enum Databases {
    /// `bangfu up`: one SQLite file per service in the data folder.
    SqliteFolder(PathBuf),
    /// `bangfu up --database-url`: one database per service (`<prefix>_<service>`) on this
    /// server, created when missing; two suites with two prefixes share one server.
    PostgresServer { url: String, prefix: String },
    /// `bangfu serve`: the one database the environment names, migrated by `bangfu migrate`
    /// beforehand (its schema is checked) or, with BANGFU_MIGRATE_ON_START, at start.
    Deployed { url: String, migrate: bool },
}

impl Databases {
    async fn open(
        &self,
        service: &str,
        migrations: &bangfu_platform::db::Migrations,
        pool: PoolSettings,
    ) -> Result<(Database, SchemaReport), Failure> {
        let failed = |e: bangfu_platform::db::DbError| Failure::cannot_start(format!("{service}: {e}"));
        let url = match self {
            Self::SqliteFolder(dir) => sqlite_url(&dir.join(format!("{service}.db"))),
            Self::PostgresServer { url, prefix } => ensure_postgres_database(url, &format!("{prefix}_{service}"))
                .await
                .map_err(failed)?,
            Self::Deployed { url, .. } => url.clone(),
        };
        let db = Database::connect(&url, pool).await.map_err(failed)?;
        if let Self::Deployed { migrate: false, .. } = self {
            let report = check_schema(service, &db, migrations).await?;
            return Ok((db, report));
        }
        let report = db.migrate(migrations).await.map_err(failed)?;
        Ok((db, report))
    }
}

/// Refuses a schema older than this build (naming the step that brings it up to date); serves,
/// with a warning, on a newer one, as a binary one release behind its schema does during a
/// rolling update or a rollback — migrations stay backward compatible for one release.
async fn check_schema(
    service: &str,
    db: &Database,
    migrations: &bangfu_platform::db::Migrations,
) -> Result<SchemaReport, Failure> {
    let check = db
        .schema(migrations)
        .await
        .map_err(|e| Failure::cannot_start(format!("{service}: cannot read the schema version: {e}")))?;
    let list = |versions: &[i64]| versions.iter().map(i64::to_string).collect::<Vec<_>>().join(", ");
    if !check.missing.is_empty() {
        return Err(Failure::cannot_start(format!(
            "{service}: the database schema (version {}) is older than this build's: it lacks migration(s) {}. Run `bangfu migrate {service}` with the database owner's DATABASE_URL, then start again (or set BANGFU_MIGRATE_ON_START=true on a single-replica install)",
            check.version,
            list(&check.missing)
        )));
    }
    if !check.unknown.is_empty() {
        tracing::warn!(
            service,
            schema = check.version,
            unknown = %list(&check.unknown),
            "the database schema is newer than this build knows: this binary is older than its schema (a rolling update or a rollback); migrations stay backward compatible for one release, so it serves, but roll forward"
        );
    }
    Ok(SchemaReport {
        version: check.version,
        applied_now: Vec::new(),
    })
}

#[derive(Debug, Args)]
pub struct MigrateArgs {
    /// The service whose database to migrate: identity, jobs, welfare_post, work_relief, subsidy,
    /// exchange or reports.
    pub service: String,
}

/// `bangfu migrate <service>`: applies the platform's and the service's migrations to the
/// database DATABASE_URL names (connect as the database's owner: the runtime role needs no DDL
/// rights) and exits. Safe to run again, and from several places at once (PostgreSQL's advisory
/// lock); a database with migrations this build does not know is refused (an older binary).
pub async fn migrate(args: MigrateArgs) -> Result<(), Failure> {
    let config = Config::from_env().map_err(|e| Failure::usage(e.to_string()))?;
    let descriptor = descriptor(&args.service).ok_or_else(|| not_built(&args.service))?;
    let url = config.database_url.clone().ok_or_else(|| {
        Failure::usage("DATABASE_URL is not set: migrate needs the URL of the service's database, as its owner")
    })?;
    let settings = PoolSettings {
        max_connections: 1,
        ..config.database_pool
    };
    let failed = |e: bangfu_platform::db::DbError| Failure::cannot_start(format!("{}: {e}", args.service));
    let db = Database::connect(&url, settings).await.map_err(failed)?;
    let report = db.migrate(&descriptor.migrations).await.map_err(failed)?;
    db.close().await;
    let applied: Vec<String> = report.applied_now.iter().map(i64::to_string).collect();
    if applied.is_empty() {
        say!(
            "{}: schema at version {}, already up to date",
            args.service,
            report.version
        );
    } else {
        say!(
            "{}: schema at version {}, applied {}",
            args.service,
            report.version,
            applied.join(", ")
        );
    }
    Ok(())
}

fn data_keys(path: Option<&Path>) -> Result<Arc<DataKeys>, Failure> {
    let path = path.ok_or_else(|| Failure::usage("BANGFU_DATA_KEYS is not set: the service needs its data keys"))?;
    DataKeyFile::load(path)
        .map(Arc::new)
        .map_err(|e| Failure::usage(e.to_string()))
}

/// A failed data key check, for `service` whose keys came from `path`: other keys than the
/// database was made with are a configuration error (exit 2) the message says how to fix.
fn key_check_failure(service: &str, path: Option<&Path>, error: KeyCheckError) -> Failure {
    let from = path.map(|p| format!(" in {}", p.display())).unwrap_or_default();
    match error {
        KeyCheckError::Mismatch(mismatch) => Failure::usage(format!(
            "{service}: refusing to serve with the data keys{from}: {mismatch}"
        )),
        other => Failure::cannot_start(format!("{service}: checking the data keys{from}: {other}")),
    }
}

/// Compares the database's key check value with `keys` (recording one when there is none, and
/// following a rotation) before a service with personal data serves from it.
async fn check_data_keys(
    service: &str,
    db: &Database,
    keys: &DataKeys,
    path: Option<&Path>,
    clock: &Clock,
) -> Result<(), Failure> {
    let outcome = data_key_check::ensure(db, keys, to_micros(clock.now()))
        .await
        .map_err(|e| key_check_failure(service, path, e))?;
    match outcome {
        KeyCheckOutcome::Matched(_) => tracing::debug!(service, "{outcome}"),
        KeyCheckOutcome::Recorded(_) | KeyCheckOutcome::Rotated { .. } => tracing::info!(service, "{outcome}"),
    }
    Ok(())
}

/// Where a hosted service finds the services it calls, and what it signs its calls with.
#[derive(Debug, Clone)]
pub enum PeerWiring {
    /// `bangfu up`: every service at this one address, each signing with its development key
    /// from the keys folder — the same channel, token and layers a deployment's calls take.
    Loopback { url: String, keys_dir: PathBuf },
    /// `bangfu serve`: the addresses `BANGFU_PEER_<SERVICE>` give, signed with
    /// `BANGFU_SIGNING_KEY`, mutual TLS with the server's own certificate for https peers.
    Environment,
}

impl PeerWiring {
    /// The peers `service` calls.
    pub fn peers(&self, config: &Config, service: &str) -> Result<Peers, Failure> {
        let scope = RegionScope::parse(&config.auth.service_scope)
            .ok_or_else(|| Failure::usage("BANGFU_SERVICE_SCOPE is not a region prefix or *"))?;
        let tokens = |path: &Path| -> Result<Arc<ServiceTokens>, Failure> {
            let signer = TokenSigner::load(path).map_err(|e| Failure::usage(format!("{}: {e}", path.display())))?;
            Ok(Arc::new(ServiceTokens::new(
                signer,
                service,
                scope.clone(),
                &config.auth.audience,
                SERVICE_TOKEN_TTL,
            )))
        };
        let settings = PeerSettings::default();
        match self {
            Self::Loopback { url, keys_dir } => {
                let key = signing_key_path(keys_dir, &format!("dev-service-{service}"));
                Peers::all_at(url, Some(tokens(&key)?), settings).map_err(|e| Failure::usage(e.to_string()))
            }
            Self::Environment => {
                let tokens = config.auth.signing_key.as_deref().map(tokens).transpose()?;
                let tls = match (&config.server.tls, &config.peer_ca) {
                    (Some(own), Some(ca)) => Some(PeerTls {
                        ca: ca.clone(),
                        cert: own.cert.clone(),
                        key: own.key.clone(),
                    }),
                    _ => None,
                };
                Peers::from_lookup(|name| std::env::var(name).ok(), tls.as_ref(), tokens, settings)
                    .map_err(|e| Failure::usage(e.to_string()))
            }
        }
    }
}

/// How long a service's own tokens for its calls last (minted again a minute before).
const SERVICE_TOKEN_TTL: std::time::Duration = std::time::Duration::from_secs(300);

/// A server hosting `services` (and diagnostics, health and reflection, always), each on its
/// own database and with the peers `wiring` gives it — every service the same way, from its
/// descriptor; and each service's schema, for the ready line.
pub async fn host(
    config: &Config,
    verifier: Verifier,
    services: &[&str],
    databases: &Databases,
    wiring: &PeerWiring,
    clock: Clock,
) -> Result<(ServerHost, Vec<(String, SchemaReport)>), Failure> {
    let mut host = ServerHost::new(config.server.clone(), Arc::new(verifier));
    let mut schemas = Vec::new();
    let mut callers = Vec::new();
    for service in services {
        let descriptor = descriptor(service).ok_or_else(|| not_built(service))?;
        let peers = wiring.peers(config, service)?;
        callers.push((service.to_string(), peers.clone()));
        let (db, schema) = databases
            .open(service, &descriptor.migrations, config.database_pool)
            .await?;
        schemas.push((service.to_string(), schema));
        let data_keys = if descriptor.personal_data {
            let keys = data_keys(config.data_keys.as_deref())?;
            check_data_keys(service, &db, &keys, config.data_keys.as_deref(), &clock).await?;
            Some(keys)
        } else {
            None
        };
        let context = ServiceContext {
            db: db.clone(),
            data_keys,
            clock: clock.clone(),
            peers,
            server: config.server.clone(),
            shutdown: host.shutdown(),
        };
        let started = (descriptor.start)(context)
            .await
            .map_err(|e| Failure::cannot_start(format!("{service}: {e}")))?;
        host.host_service(descriptor, db, clock.clone(), started);
    }
    let mut diagnostics =
        Diagnostics::new(&config.server, host.service_names()).with_followers(host.follower_statuses());
    for (service, peers) in callers {
        diagnostics = diagnostics.with_peers(&service, peers);
    }
    host.add_service(diagnostics.into_server(&config.server));
    Ok((host, schemas))
}

/// The one line that says a server is up: what it serves, which build, where, on which schema.
pub fn log_ready(config: &Config, listen: std::net::SocketAddr, schemas: &[(String, SchemaReport)]) {
    let services: Vec<&str> = schemas.iter().map(|(service, _)| service.as_str()).collect();
    let migrations: Vec<String> = schemas
        .iter()
        .map(|(service, schema)| {
            let now = if schema.applied_now.is_empty() {
                "none applied now".to_string()
            } else {
                let versions: Vec<String> = schema.applied_now.iter().map(i64::to_string).collect();
                format!("applied now {}", versions.join(","))
            };
            format!("{service} at {} ({now})", schema.version)
        })
        .collect();
    tracing::info!(
        services = %services.join(","),
        version = %bangfu_platform::telemetry::VERSION,
        commit = %bangfu_platform::telemetry::COMMIT,
        listen = %listen,
        tls = config.server.tls.is_some(),
        probes = %config.server.health_listen.map_or_else(|| "(none)".to_string(), |addr| addr.to_string()),
        migrations = %migrations.join("; "),
        "ready"
    );
}

fn not_built(service: &str) -> Failure {
    let built = built().join(", ");
    if SERVICES.contains(&service) {
        Failure::usage(format!(
            "the {service} service is not part of this build yet (built: {built})"
        ))
    } else {
        Failure::usage(format!(
            "unknown service {service:?}: the suite's services are {} (built: {built})",
            SERVICES.join(", ")
        ))
    }
}

#[derive(Debug, Args)]
#[command(after_help = serve_environment())]
pub struct ServeArgs {
    /// The service to run: identity, jobs, welfare_post, work_relief, subsidy, exchange or reports.
    pub service: String,
    /// Check the configuration and keys, connect to the database and compare its data-key
    /// check, print the settings (secrets redacted) and exit.
    #[arg(long)]
    pub check_config: bool,
    /// With --check-config: check the files and settings only, without connecting (to validate
    /// a deployment's configuration away from its database, as CI does).
    #[arg(long, requires = "check_config")]
    pub offline: bool,
}

/// The environment `serve` reads, listed under `serve --help`: the names are asked of the
/// configuration and peer readers themselves, so the list cannot drift from what they read.
fn serve_environment() -> String {
    let asked = std::cell::RefCell::new(std::collections::BTreeSet::new());
    let record = |name: &str| {
        asked.borrow_mut().insert(name.to_string());
        None
    };
    let _ = Config::from_lookup(record);
    let _ =
        bangfu_platform::peers::Peers::from_lookup(record, None, None, bangfu_platform::peers::PeerSettings::default());
    let mut names = asked.into_inner();
    // Read where the process starts, not by the readers above.
    names.extend(
        [
            "BANGFU_EXCHANGE_CONFIG",
            "OTEL_EXPORTER_OTLP_ENDPOINT",
            "OTEL_SERVICE_NAME",
            "NO_COLOR",
        ]
        .into_iter()
        .map(String::from),
    );
    let mut text = String::from("Environment (README, \"Configuration\", says what each does):\n");
    for name in names {
        text.push_str(&format!("  {name}\n"));
    }
    text
}

/// `bangfu serve <service>`: one service, configured from the environment, as containers run it.
pub async fn serve(args: ServeArgs) -> Result<(), Failure> {
    let config = Config::from_env().map_err(|e| Failure::usage(e.to_string()))?;
    let telemetry = bangfu_platform::telemetry::init_service(&config.telemetry, &format!("bangfu-{}", args.service));
    let descriptor = descriptor(&args.service).ok_or_else(|| not_built(&args.service))?;
    // A deployment never runs on the keys `bangfu up` made for trying the suite.
    let verifier =
        Verifier::from_config(&config.auth, DevelopmentKeys::Refuse).map_err(|e| Failure::usage(e.to_string()))?;
    for line in config.redacted_lines() {
        tracing::info!("config: {line}");
    }
    warn_if_plaintext(&config);
    let database_url = check_files(&config, descriptor)?;
    // A peer address that is not a URL, or https without the TLS files, or no address for a
    // service this one calls, stops the start here.
    let peers = PeerWiring::Environment.peers(&config, &args.service)?;
    if let Some(missing) = descriptor.calls.iter().find(|peer| peers.get(peer).is_err()) {
        return Err(Failure::usage(format!(
            "{} calls the {missing} service: set BANGFU_PEER_{} to its address (e.g. https://{missing}:50051)",
            args.service,
            missing.to_uppercase()
        )));
    }
    if args.check_config {
        for line in config.redacted_lines() {
            say!("{line}");
        }
        if args.offline {
            say!(
                "the files and settings of {} are usable (the database was not contacted)",
                args.service
            );
            return Ok(());
        }
        check_database(&config, descriptor, &database_url).await?;
        say!("the configuration of {} is usable", args.service);
        return Ok(());
    }
    let (mut host, schemas) = host(
        &config,
        verifier,
        &[args.service.as_str()],
        &Databases::Deployed {
            url: database_url,
            migrate: config.migrate_on_start,
        },
        &PeerWiring::Environment,
        Clock::system(),
    )
    .await?;
    let listener = bangfu_platform::server::bind(config.server.listen)
        .await
        .map_err(|e| Failure::usage(e.to_string()))?;
    listen_for_probes(&config, &mut host).await?;
    host.shutdown().trigger_on_signals();
    log_ready(&config, config.server.listen, &schemas);
    let served = host.serve(listener).await.map_err(|e| Failure::failed(e.to_string()));
    telemetry.shutdown().await;
    served
}

/// One loud line when the gRPC port takes plaintext beyond this machine: tokens and personal
/// data would cross the network readable (`bangfu up` refuses this; a deployment may have a
/// TLS-terminating proxy in front, so `serve` warns).
fn warn_if_plaintext(config: &Config) {
    let listen = config.server.listen;
    if config.server.tls.is_none() && !listen.ip().is_loopback() {
        tracing::warn!(
            %listen,
            "PLAINTEXT ON THE NETWORK: BANGFU_LISTEN={listen} is not a loopback address and BANGFU_TLS_CERT / BANGFU_TLS_KEY are not set, so tokens and personal data cross the network unencrypted; set both (and BANGFU_TLS_CLIENT_CA for mutual TLS), or listen on 127.0.0.1 behind a proxy that terminates TLS"
        );
    }
}

/// Binds the probe port (BANGFU_HEALTH_LISTEN: gRPC health and /metrics, plaintext) when set.
pub async fn listen_for_probes(config: &Config, host: &mut ServerHost) -> Result<(), Failure> {
    if let Some(addr) = config.server.health_listen {
        let health = bangfu_platform::server::bind(addr)
            .await
            .map_err(|e| Failure::usage(format!("BANGFU_HEALTH_LISTEN: {e}")))?;
        host.health_listener(health);
    }
    Ok(())
}

/// For `serve --check-config`: connects with the configured URL (a wrong password or a server
/// out of reach is a usage error naming DATABASE_URL) and, for a service with personal data,
/// compares the database's key check value with the data keys without writing anything.
async fn check_database(config: &Config, descriptor: &ServiceDescriptor, database_url: &str) -> Result<(), Failure> {
    let database = Database::connect(database_url, config.database_pool)
        .await
        .map_err(|e| {
            Failure::usage(format!(
                "DATABASE_URL: {e} (check its host, port, database name, user and password)"
            ))
        })?;
    say!(
        "database: connected to {}",
        bangfu_platform::config::redact_url(database_url)
    );
    if descriptor.personal_data {
        let path = config.data_keys.as_deref();
        let keys = data_keys(path)?;
        match data_key_check::inspect(&database, &keys).await {
            Ok(Some(ids)) => say!("data keys: the database was made with {ids}, which the keys given read"),
            Ok(None) => say!(
                "data keys: the database has no key check value yet; the first start records one for {}",
                KeyIds::current(&keys)
            ),
            Err(error) => {
                database.close().await;
                return Err(key_check_failure(descriptor.name, path, error));
            }
        }
    }
    database.close().await;
    Ok(())
}

/// Everything `serve` reads before it connects: the database URL, the files the settings name
/// and that they hold what they should. Errors name the variable to fix.
fn check_files(config: &Config, descriptor: &ServiceDescriptor) -> Result<String, Failure> {
    let database_url = config
        .database_url
        .clone()
        .ok_or_else(|| Failure::usage("DATABASE_URL is not set: the service needs its database"))?;
    sqlx::any::install_default_drivers();
    let options = <sqlx::any::AnyConnectOptions as std::str::FromStr>::from_str(&database_url).map_err(|e| {
        Failure::usage(format!(
            "DATABASE_URL {} is not usable: {e}",
            bangfu_platform::config::redact_url(&database_url)
        ))
    })?;
    if !options.database_url.scheme().starts_with("postgres") {
        return Err(Failure::usage(
            "DATABASE_URL must be a postgres:// URL: a deployed service keeps its data in PostgreSQL (SQLite is for bangfu up)",
        ));
    }
    if let Some((_, root)) = options.database_url.query_pairs().find(|(k, _)| k == "sslrootcert") {
        std::fs::metadata(root.as_ref()).map_err(|e| {
            Failure::usage(format!(
                "DATABASE_URL names sslrootcert={root}, which cannot be read: {e}"
            ))
        })?;
    }
    if let Some(path) = &config.auth.signing_key {
        bangfu_platform::auth::keys::SigningKeyFile::load(path)
            .map_err(|e| Failure::usage(format!("BANGFU_SIGNING_KEY: {e}")))?;
    }
    if descriptor.personal_data {
        data_keys(config.data_keys.as_deref())?;
    }
    if let Some(tls) = &config.server.tls {
        let pem = |variable: &str, path: &Path, label: &str| {
            let text = std::fs::read_to_string(path)
                .map_err(|e| Failure::usage(format!("{variable}: {}: {e}", path.display())))?;
            if text.contains(label) {
                Ok(())
            } else {
                Err(Failure::usage(format!(
                    "{variable}: {} holds no PEM {label}",
                    path.display()
                )))
            }
        };
        pem("BANGFU_TLS_CERT", &tls.cert, "CERTIFICATE")?;
        pem("BANGFU_TLS_KEY", &tls.key, "PRIVATE KEY")?;
        if let Some(ca) = &tls.client_ca {
            pem("BANGFU_TLS_CLIENT_CA", ca, "CERTIFICATE")?;
        }
    }
    Ok(database_url)
}
