//! `bangfu up`: the whole suite in one process for a new user — every service built so far on
//! one port, each on its own SQLite file in the data folder, with development keys and an
//! administrator token made on the first run and reused after.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use bangfu_platform::auth::keys::{self, DEVELOPMENT_DEPARTMENT_KID, DevelopmentKeys};
use bangfu_platform::auth::token::{TokenSigner, UserIdentity, unix_now};
use bangfu_platform::auth::verify::Verifier;
use bangfu_platform::auth::{Department, RegionScope, Role};
use bangfu_platform::clock::Clock;
use bangfu_platform::config::Config;
use bangfu_platform::pii::{DATA_KEYS_FILE, DataKeyFile};
use clap::Args;

use crate::{Failure, suite};

/// How long the development administrator token lasts; a run with less than a day left
/// issues a new one.
const ADMIN_TOKEN_TTL: Duration = Duration::from_secs(30 * 86_400);

#[derive(Debug, Args)]
pub struct UpArgs {
    /// Folder for the databases, keys and the administrator token.
    #[arg(long, default_value = "data")]
    pub data: PathBuf,
    /// Address to listen on. Plaintext is allowed on loopback only.
    #[arg(long, default_value = "127.0.0.1:50051")]
    pub listen: SocketAddr,
    /// A PostgreSQL server to use instead of SQLite files (one database per service).
    #[arg(long, env = "DATABASE_URL")]
    pub database_url: Option<String>,
    /// With --database-url: the databases are named <prefix>_<service>, so two suites (two
    /// provinces trying the exchange) can share one server.
    #[arg(long, env = "BANGFU_DATABASE_PREFIX", default_value = "bangfu", value_parser = database_prefix)]
    pub database_prefix: String,
}

pub async fn run(args: UpArgs) -> Result<(), Failure> {
    let mut config = Config::from_env().map_err(|e| Failure::usage(e.to_string()))?;
    let telemetry = bangfu_platform::telemetry::init_service(&config.telemetry, "bangfu");
    config.server.listen = args.listen;
    config.database_url = args.database_url.clone();
    let keys_dir = args.data.join("keys");
    config.auth.revocation_file = Some(keys_dir.join("revoked.json"));
    config.auth.keys_dir = Some(keys_dir.clone());
    if !args.listen.ip().is_loopback() && config.server.tls.is_none() {
        return Err(Failure::usage(format!(
            "--listen {} is not a loopback address: plaintext is allowed on loopback only; set BANGFU_TLS_CERT and BANGFU_TLS_KEY, or listen on 127.0.0.1",
            args.listen
        )));
    }

    prepare_data_dir(&args.data)?;
    let created = keys::ensure_development_keys(&keys_dir).map_err(|e| Failure::failed(e.to_string()))?;
    // The keys that encrypt and index citizen IDs at rest; services load them as they land.
    DataKeyFile::ensure(&keys_dir.join(DATA_KEYS_FILE)).map_err(|e| Failure::failed(e.to_string()))?;
    let verifier =
        Verifier::from_config(&config.auth, DevelopmentKeys::Allow).map_err(|e| Failure::usage(e.to_string()))?;
    let token_path = args.data.join("admin.jwt");
    ensure_admin_token(&keys_dir, &token_path, &verifier)?;

    let listener = bangfu_platform::server::bind(args.listen).await.map_err(|e| {
        Failure::usage(format!(
            "{e}\nIs another bangfu already running? Stop it, or choose another port with --listen."
        ))
    })?;
    config.data_keys = Some(keys_dir.join(DATA_KEYS_FILE));
    let databases = match &args.database_url {
        Some(url) => suite::Databases::PostgresServer {
            url: url.clone(),
            prefix: args.database_prefix.clone(),
        },
        None => suite::Databases::SqliteFolder(args.data.clone()),
    };
    let wiring = suite::PeerWiring::Loopback {
        url: format!("http://{}", args.listen),
        keys_dir: keys_dir.clone(),
    };
    let (mut host, schemas) =
        suite::host(&config, verifier, &suite::built(), &databases, &wiring, Clock::system()).await?;
    suite::listen_for_probes(&config, &mut host).await?;
    for line in config.redacted_lines() {
        tracing::info!("config: {line}");
    }
    host.shutdown().trigger_on_signals();

    let addr = args.listen;
    let token = token_path.display();
    say!("bangfu is serving on {addr} (plaintext, loopback only)");
    if created {
        say!(
            "  development keys created in {} (not for deployment)",
            keys_dir.display()
        );
    }
    say!("  administrator token: {token} (every permission, whole country; for trying the suite only)");
    say!(
        "  services: diagnostics, health, reflection{}",
        suite::built().iter().map(|s| format!(", {s}")).collect::<String>()
    );
    say!("  try:  bangfu whoami --addr http://{addr} --token-file {token}");
    say!(
        "  or:   grpcurl -plaintext -H \"authorization: Bearer $(cat {token})\" {addr} bangfu.diagnostics.v1.DiagnosticsService/WhoAmI"
    );
    say!("  stop: Ctrl-C");
    suite::log_ready(&config, args.listen, &schemas);
    let served = host.serve(listener).await.map_err(|e| Failure::failed(e.to_string()));
    telemetry.shutdown().await;
    served
}

/// A database-name prefix PostgreSQL takes without quoting: lower-case letters, digits and
/// underscores, starting with a letter, short enough to leave room for the service's name.
fn database_prefix(text: &str) -> Result<String, String> {
    let valid = text.len() <= 40
        && text.starts_with(|c: char| c.is_ascii_lowercase())
        && text
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_');
    if valid {
        Ok(text.to_string())
    } else {
        Err("use lower-case letters, digits and _, starting with a letter, at most 40 (e.g. shandong)".into())
    }
}

/// Creates the data folder and proves it writable before anything else is done.
fn prepare_data_dir(dir: &Path) -> Result<(), Failure> {
    let unwritable = |e: std::io::Error| {
        Failure::usage(format!(
            "the data folder {} is not writable: {e}; choose another with --data",
            dir.display()
        ))
    };
    std::fs::create_dir_all(dir).map_err(unwritable)?;
    let probe = dir.join(".write-check");
    std::fs::write(&probe, b"ok").map_err(unwritable)?;
    std::fs::remove_file(&probe).map_err(unwritable)
}

/// Writes `admin.jwt` (mode 0600) unless the one there still verifies for more than a day.
fn ensure_admin_token(keys_dir: &Path, path: &Path, verifier: &Verifier) -> Result<(), Failure> {
    if let Ok(existing) = std::fs::read_to_string(path)
        && let Ok(token) = verifier.verify(existing.trim())
        && token.expires_at - unix_now() > 86_400
    {
        return Ok(());
    }
    let signer = TokenSigner::load(&keys::signing_key_path(keys_dir, DEVELOPMENT_DEPARTMENT_KID))
        .map_err(|e| Failure::failed(e.to_string()))?;
    let admin = UserIdentity {
        subject: "dev-admin".into(),
        department: Department::Hr,
        roles: vec![Role::Admin],
        scope: RegionScope::Country,
    };
    let claims = signer.user_claims(&admin, verifier.audience(), unix_now(), ADMIN_TOKEN_TTL);
    let token = signer.sign(&claims).map_err(|e| Failure::failed(e.to_string()))?;
    keys::write_file(path, format!("{token}\n").as_bytes(), 0o600).map_err(|e| Failure::failed(e.to_string()))
}
