//! Configuration from the environment, read once at start and passed down. Every setting has
//! a documented default (the README's table is this file's `SETTINGS`), and the effective
//! configuration is printed at start with secrets redacted.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

/// One documented setting: its variable, its default and what it does.
#[derive(Debug, Clone, Copy)]
pub struct Setting {
    pub variable: &'static str,
    pub default: &'static str,
    pub meaning: &'static str,
}

/// Every variable bangfu reads, in the order the README lists them.
pub const SETTINGS: &[Setting] = &[
    Setting {
        variable: "BANGFU_LISTEN",
        default: "127.0.0.1:50051",
        meaning: "address the gRPC server listens on",
    },
    Setting {
        variable: "BANGFU_HEALTH_LISTEN",
        default: "(none)",
        meaning: "a second, plaintext address serving grpc.health.v1 (for probes that cannot present a client certificate) and GET /metrics (Prometheus)",
    },
    Setting {
        variable: "DATABASE_URL",
        default: "(bangfu up: sqlite files in the data folder)",
        meaning: "sqlite://PATH or postgres://… (sslmode=verify-full for a remote server)",
    },
    Setting {
        variable: "DATABASE_URL_FILE",
        default: "(none)",
        meaning: "a file holding the whole DATABASE_URL (a mounted secret), instead of DATABASE_URL",
    },
    Setting {
        variable: "DATABASE_PASSWORD_FILE",
        default: "(none)",
        meaning: "a file holding the database password, put into DATABASE_URL escaped: it may hold any character, and stays out of the environment",
    },
    Setting {
        variable: "BANGFU_MIGRATE_ON_START",
        default: "false",
        meaning: "true: `serve` migrates its database itself (one replica, a role with DDL rights); false: run `bangfu migrate <service>` first, `serve` checks the schema",
    },
    Setting {
        variable: "BANGFU_KEYS_DIR",
        default: "DATA/keys",
        meaning: "trusted public keys (trust.json), signing keys and data keys; must not be writable by group or others",
    },
    Setting {
        variable: "BANGFU_DATA_KEYS",
        default: "KEYS/data-keys.json",
        meaning: "the keys that encrypt and index citizen IDs at rest (mode 0600); losing them loses every ID",
    },
    Setting {
        variable: "BANGFU_SIGNING_KEY",
        default: "(none)",
        meaning: "this service's own signing key (PEM), for the service tokens it sends",
    },
    Setting {
        variable: "BANGFU_SERVICE_SCOPE",
        default: "*",
        meaning: "region scope of this service's own tokens",
    },
    Setting {
        variable: "BANGFU_TOKEN_AUDIENCE",
        default: "bangfu",
        meaning: "the audience every accepted token must name",
    },
    Setting {
        variable: "BANGFU_TOKEN_LEEWAY_SECONDS",
        default: "30",
        meaning: "clock skew allowed on exp and nbf",
    },
    Setting {
        variable: "BANGFU_REVOCATION_FILE",
        default: "KEYS/revoked.json",
        meaning: "revoked token ids and subjects, re-read when it changes",
    },
    Setting {
        variable: "BANGFU_UNARY_TIMEOUT_MS",
        default: "30000",
        meaning: "time limit of a unary call (streams are bounded by idle time)",
    },
    Setting {
        variable: "BANGFU_STREAM_IDLE_TIMEOUT_SECONDS",
        default: "300",
        meaning: "a stream with no message for this long is ended",
    },
    Setting {
        variable: "BANGFU_CONCURRENCY_LIMIT",
        default: "512",
        meaning: "calls served at once; more wait",
    },
    Setting {
        variable: "BANGFU_MAX_RECEIVE_BYTES",
        default: "4194304",
        meaning: "largest request message",
    },
    Setting {
        variable: "BANGFU_MAX_SEND_BYTES",
        default: "16777216",
        meaning: "largest response message",
    },
    Setting {
        variable: "BANGFU_KEEPALIVE_INTERVAL_SECONDS",
        default: "30",
        meaning: "HTTP/2 keepalive ping interval",
    },
    Setting {
        variable: "BANGFU_KEEPALIVE_TIMEOUT_SECONDS",
        default: "10",
        meaning: "a peer that does not answer a ping for this long is dropped",
    },
    Setting {
        variable: "BANGFU_SHUTDOWN_GRACE_SECONDS",
        default: "30",
        meaning: "how long in-flight calls may finish after SIGTERM",
    },
    Setting {
        variable: "BANGFU_HANDSHAKE_TIMEOUT_SECONDS",
        default: "10",
        meaning: "a connection that sends nothing (no HTTP/2 preface, no TLS hello) for this long is closed",
    },
    Setting {
        variable: "BANGFU_DB_ACQUIRE_TIMEOUT_MS",
        default: "5000",
        meaning: "longest wait for a database connection; a call waits at most 80 % of the time it has left, then answers UNAVAILABLE / DATABASE_UNAVAILABLE",
    },
    Setting {
        variable: "BANGFU_TLS_CERT",
        default: "(none: plaintext)",
        meaning: "server certificate chain (PEM); with BANGFU_TLS_KEY turns TLS on",
    },
    Setting {
        variable: "BANGFU_TLS_KEY",
        default: "(none)",
        meaning: "server private key (PEM)",
    },
    Setting {
        variable: "BANGFU_TLS_CLIENT_CA",
        default: "(none)",
        meaning: "CA (PEM) whose client certificates are required (mutual TLS)",
    },
    Setting {
        variable: "BANGFU_EXCHANGE_CONFIG",
        default: "(none: no partners)",
        meaning: "the exchange's partner file: its own id, signing key, partner port and certificate, and each partner province's address, pinned CA, keys and what it may ask",
    },
    Setting {
        variable: "BANGFU_LOG",
        default: "info",
        meaning: "log filter (tracing EnvFilter syntax)",
    },
    Setting {
        variable: "BANGFU_LOG_FORMAT",
        default: "text",
        meaning: "text or json",
    },
    Setting {
        variable: "OTEL_EXPORTER_OTLP_ENDPOINT",
        default: "(none: no export)",
        meaning: "OTLP/gRPC collector for traces and metrics",
    },
];

/// A setting that could not be used, naming the variable.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum ConfigError {
    #[error("{variable}={value:?} is not valid: {expected}")]
    Invalid {
        variable: &'static str,
        value: String,
        expected: &'static str,
    },
    #[error("{variable} must be set: {why}")]
    Missing { variable: &'static str, why: &'static str },
}

/// The database URL: `DATABASE_URL`, or the whole URL read from `DATABASE_URL_FILE`; with
/// `DATABASE_PASSWORD_FILE` the password read from that file is put into it, percent-escaped, so
/// a password may hold `@`, `/` or `%` and never sits in the environment.
fn database_url(env: &Env) -> Result<Option<String>, ConfigError> {
    let read = |variable: &'static str, path: String| {
        std::fs::read_to_string(&path)
            .map(|text| text.trim_end_matches(['\r', '\n']).to_string())
            .map_err(|_| ConfigError::Invalid {
                variable,
                value: path,
                expected: "a file this process can read",
            })
    };
    let url = match (env.text("DATABASE_URL"), env.text("DATABASE_URL_FILE")) {
        (Some(_), Some(path)) => {
            return Err(ConfigError::Invalid {
                variable: "DATABASE_URL_FILE",
                value: path,
                expected: "unset while DATABASE_URL is set (give one of the two)",
            });
        }
        (Some(url), None) => Some(url),
        (None, Some(path)) => Some(read("DATABASE_URL_FILE", path)?.trim().to_string()),
        (None, None) => None,
    };
    let Some(path) = env.text("DATABASE_PASSWORD_FILE") else {
        return Ok(url);
    };
    let Some(url) = url else {
        return Err(ConfigError::Missing {
            variable: "DATABASE_URL",
            why: "DATABASE_PASSWORD_FILE gives the password of the URL DATABASE_URL names",
        });
    };
    let password = read("DATABASE_PASSWORD_FILE", path)?;
    let mut parsed = url::Url::parse(&url).map_err(|_| ConfigError::Invalid {
        variable: "DATABASE_URL",
        value: redact_url(&url),
        expected: "a URL like postgres://user@host:5432/database",
    })?;
    parsed
        .set_password(Some(&escape_userinfo(&password)))
        .map_err(|()| ConfigError::Invalid {
            variable: "DATABASE_URL",
            value: redact_url(&url),
            expected: "a URL with a user and host to give the password to",
        })?;
    Ok(Some(parsed.to_string()))
}

/// `text` percent-escaped for the userinfo of a URL: everything but the unreserved characters,
/// `%` included (which `Url::set_password` would leave as it is, for the driver to misread).
fn escape_userinfo(text: &str) -> String {
    text.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'~' => (b as char).to_string(),
            _ => format!("%{b:02X}"),
        })
        .collect()
}

/// Limits and transport settings of a gRPC server.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServerConfig {
    pub listen: SocketAddr,
    /// Where the health-only plaintext server listens, when one is wanted.
    pub health_listen: Option<SocketAddr>,
    pub unary_timeout: Duration,
    pub stream_idle_timeout: Duration,
    pub concurrency_limit: usize,
    pub max_receive_bytes: usize,
    pub max_send_bytes: usize,
    pub keepalive_interval: Duration,
    pub keepalive_timeout: Duration,
    pub shutdown_grace: Duration,
    /// A connection that has sent nothing (no HTTP/2 preface, no TLS hello) by then is closed.
    pub handshake_timeout: Duration,
    pub tls: Option<TlsFiles>,
}

/// Where the server's TLS material is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TlsFiles {
    pub cert: PathBuf,
    pub key: PathBuf,
    /// When set, clients must present a certificate signed by this CA.
    pub client_ca: Option<PathBuf>,
}

/// Token verification settings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuthConfig {
    pub keys_dir: Option<PathBuf>,
    pub signing_key: Option<PathBuf>,
    pub service_scope: String,
    pub audience: String,
    pub leeway: Duration,
    pub revocation_file: Option<PathBuf>,
}

/// Logging and export settings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TelemetryConfig {
    pub log_filter: String,
    pub json: bool,
    pub otlp_endpoint: Option<String>,
}

/// The whole configuration of one bangfu process.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Config {
    pub server: ServerConfig,
    pub auth: AuthConfig,
    pub telemetry: TelemetryConfig,
    pub database_url: Option<String>,
    /// Connections each service's database pool holds, and how long a call waits for one.
    pub database_pool: crate::db::PoolSettings,
    /// The data keys file (encryption and blind index of personal data).
    pub data_keys: Option<PathBuf>,
    /// The CA that signed the peers' server certificates (BANGFU_PEER_CA, default
    /// BANGFU_TLS_CLIENT_CA): with BANGFU_TLS_CERT and _KEY it makes calls to https peers.
    pub peer_ca: Option<PathBuf>,
    /// Whether `serve` migrates its database at start instead of only checking its schema.
    pub migrate_on_start: bool,
}

impl Config {
    /// Reads the process environment.
    pub fn from_env() -> Result<Self, ConfigError> {
        Self::from_lookup(|name| std::env::var(name).ok())
    }

    /// Reads settings through `lookup`, so tests need not touch the process environment.
    pub fn from_lookup(lookup: impl Fn(&str) -> Option<String>) -> Result<Self, ConfigError> {
        let env = Env(&lookup);
        let tls = match (env.path("BANGFU_TLS_CERT"), env.path("BANGFU_TLS_KEY")) {
            (Some(cert), Some(key)) => Some(TlsFiles {
                cert,
                key,
                client_ca: env.path("BANGFU_TLS_CLIENT_CA"),
            }),
            (None, None) => {
                if env.path("BANGFU_TLS_CLIENT_CA").is_some() {
                    return Err(ConfigError::Missing {
                        variable: "BANGFU_TLS_CERT",
                        why: "BANGFU_TLS_CLIENT_CA needs the server's own certificate and key",
                    });
                }
                None
            }
            (Some(_), None) => {
                return Err(ConfigError::Missing {
                    variable: "BANGFU_TLS_KEY",
                    why: "BANGFU_TLS_CERT is set, and TLS needs the private key too",
                });
            }
            (None, Some(_)) => {
                return Err(ConfigError::Missing {
                    variable: "BANGFU_TLS_CERT",
                    why: "BANGFU_TLS_KEY is set, and TLS needs the certificate too",
                });
            }
        };
        let listen = env.text("BANGFU_LISTEN").unwrap_or_else(|| "127.0.0.1:50051".into());
        let listen = listen.parse().map_err(|_| ConfigError::Invalid {
            variable: "BANGFU_LISTEN",
            value: listen.clone(),
            expected: "an address with a port, e.g. 0.0.0.0:50051",
        })?;
        let health_listen = match env.text("BANGFU_HEALTH_LISTEN") {
            None => None,
            Some(text) => Some(text.parse().map_err(|_| ConfigError::Invalid {
                variable: "BANGFU_HEALTH_LISTEN",
                value: text.clone(),
                expected: "an address with a port, e.g. 0.0.0.0:8081",
            })?),
        };
        let server = ServerConfig {
            listen,
            health_listen,
            unary_timeout: Duration::from_millis(env.number("BANGFU_UNARY_TIMEOUT_MS", 30_000, 1)?),
            stream_idle_timeout: Duration::from_secs(env.number("BANGFU_STREAM_IDLE_TIMEOUT_SECONDS", 300, 1)?),
            concurrency_limit: env.number("BANGFU_CONCURRENCY_LIMIT", 512, 1)? as usize,
            max_receive_bytes: env.number("BANGFU_MAX_RECEIVE_BYTES", 4 * 1024 * 1024, 1024)? as usize,
            max_send_bytes: env.number("BANGFU_MAX_SEND_BYTES", 16 * 1024 * 1024, 1024)? as usize,
            keepalive_interval: Duration::from_secs(env.number("BANGFU_KEEPALIVE_INTERVAL_SECONDS", 30, 1)?),
            keepalive_timeout: Duration::from_secs(env.number("BANGFU_KEEPALIVE_TIMEOUT_SECONDS", 10, 1)?),
            shutdown_grace: Duration::from_secs(env.number("BANGFU_SHUTDOWN_GRACE_SECONDS", 30, 0)?),
            handshake_timeout: Duration::from_secs(env.number("BANGFU_HANDSHAKE_TIMEOUT_SECONDS", 10, 1)?),
            tls,
        };
        let keys_dir = env.path("BANGFU_KEYS_DIR");
        let data_keys = env
            .path("BANGFU_DATA_KEYS")
            .or_else(|| keys_dir.as_ref().map(|dir| dir.join("data-keys.json")));
        let auth = AuthConfig {
            revocation_file: env
                .path("BANGFU_REVOCATION_FILE")
                .or_else(|| keys_dir.as_ref().map(|dir| dir.join("revoked.json"))),
            keys_dir,
            signing_key: env.path("BANGFU_SIGNING_KEY"),
            service_scope: env.text("BANGFU_SERVICE_SCOPE").unwrap_or_else(|| "*".into()),
            audience: env.text("BANGFU_TOKEN_AUDIENCE").unwrap_or_else(|| "bangfu".into()),
            leeway: Duration::from_secs(env.number("BANGFU_TOKEN_LEEWAY_SECONDS", 30, 0)?),
        };
        let format = env.text("BANGFU_LOG_FORMAT").unwrap_or_else(|| "text".into());
        let json = match format.as_str() {
            "text" => false,
            "json" => true,
            _ => {
                return Err(ConfigError::Invalid {
                    variable: "BANGFU_LOG_FORMAT",
                    value: format,
                    expected: "text or json",
                });
            }
        };
        let telemetry = TelemetryConfig {
            log_filter: env.text("BANGFU_LOG").unwrap_or_else(|| "info".into()),
            json,
            otlp_endpoint: env.text("OTEL_EXPORTER_OTLP_ENDPOINT"),
        };
        // A use case holds one connection for its whole transaction and reads on it, so a call
        // never needs two; calls beyond the pool wait their turn, up to the acquire timeout.
        let pool_size = env.number("BANGFU_DB_POOL_SIZE", 16, 1)?;
        if pool_size as usize > server.concurrency_limit {
            return Err(ConfigError::Invalid {
                variable: "BANGFU_DB_POOL_SIZE",
                value: pool_size.to_string(),
                expected: "at most BANGFU_CONCURRENCY_LIMIT: connections beyond the calls served at once stay idle",
            });
        }
        let database_pool = crate::db::PoolSettings {
            max_connections: pool_size as u32,
            acquire_timeout: Duration::from_millis(env.number("BANGFU_DB_ACQUIRE_TIMEOUT_MS", 5_000, 1)?),
            ..crate::db::PoolSettings::default()
        };
        let peer_ca = env
            .path("BANGFU_PEER_CA")
            .or_else(|| server.tls.as_ref().and_then(|t| t.client_ca.clone()));
        Ok(Self {
            server,
            auth,
            telemetry,
            database_pool,
            peer_ca,
            database_url: database_url(&env)?,
            data_keys,
            migrate_on_start: env.flag("BANGFU_MIGRATE_ON_START")?,
        })
    }

    /// The configuration as printed at start: one `name = value` line each, secrets redacted.
    pub fn redacted_lines(&self) -> Vec<String> {
        let s = &self.server;
        let path = |p: &Option<PathBuf>| p.as_ref().map_or("(none)".to_string(), |p| p.display().to_string());
        vec![
            format!("listen = {}", s.listen),
            format!(
                "health_listen = {}",
                s.health_listen.map_or("(none)".to_string(), |a| a.to_string())
            ),
            format!(
                "database_url = {}",
                self.database_url.as_deref().map_or("(none)".into(), redact_url)
            ),
            format!("migrate_on_start = {}", self.migrate_on_start),
            format!(
                "database_pool = {} connections, {}ms acquire timeout",
                self.database_pool.max_connections,
                self.database_pool.acquire_timeout.as_millis()
            ),
            format!("keys_dir = {}", path(&self.auth.keys_dir)),
            format!("data_keys = {}", path(&self.data_keys)),
            format!("signing_key = {}", path(&self.auth.signing_key)),
            format!("service_scope = {}", self.auth.service_scope),
            format!("token_audience = {}", self.auth.audience),
            format!("token_leeway = {}s", self.auth.leeway.as_secs()),
            format!("revocation_file = {}", path(&self.auth.revocation_file)),
            format!("unary_timeout = {}ms", s.unary_timeout.as_millis()),
            format!("stream_idle_timeout = {}s", s.stream_idle_timeout.as_secs()),
            format!("concurrency_limit = {}", s.concurrency_limit),
            format!("max_receive_bytes = {}", s.max_receive_bytes),
            format!("max_send_bytes = {}", s.max_send_bytes),
            format!(
                "keepalive = {}s / {}s",
                s.keepalive_interval.as_secs(),
                s.keepalive_timeout.as_secs()
            ),
            format!("shutdown_grace = {}s", s.shutdown_grace.as_secs()),
            format!("handshake_timeout = {}s", s.handshake_timeout.as_secs()),
            format!(
                "tls = {}",
                match &s.tls {
                    None => "off (plaintext)".to_string(),
                    Some(t) if t.client_ca.is_some() => "on, client certificates required".to_string(),
                    Some(_) => "on".to_string(),
                }
            ),
            format!(
                "log = {} ({})",
                self.telemetry.log_filter,
                if self.telemetry.json { "json" } else { "text" }
            ),
            format!(
                "otlp_endpoint = {}",
                self.telemetry.otlp_endpoint.as_deref().unwrap_or("(none)")
            ),
        ]
    }
}

/// Hides the password of a database URL: `postgres://bangfu:secret@db/identity` →
/// `postgres://bangfu:***@db/identity`.
pub fn redact_url(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else {
        return url.to_string();
    };
    let (authority, tail) = match rest.find('/') {
        Some(i) => rest.split_at(i),
        None => (rest, ""),
    };
    let Some((userinfo, host)) = authority.rsplit_once('@') else {
        return redact_query_password(url);
    };
    let user = userinfo.split_once(':').map_or(userinfo, |(user, _)| user);
    let redacted = if userinfo.contains(':') {
        format!("{scheme}://{user}:***@{host}{tail}")
    } else {
        format!("{scheme}://{user}@{host}{tail}")
    };
    redact_query_password(&redacted)
}

fn redact_query_password(url: &str) -> String {
    let Some((base, query)) = url.split_once('?') else {
        return url.to_string();
    };
    let query: Vec<String> = query
        .split('&')
        .map(|pair| match pair.split_once('=') {
            Some((key, _)) if key.eq_ignore_ascii_case("password") => format!("{key}=***"),
            _ => pair.to_string(),
        })
        .collect();
    format!("{base}?{}", query.join("&"))
}

struct Env<'a>(&'a dyn Fn(&str) -> Option<String>);

impl Env<'_> {
    fn text(&self, name: &str) -> Option<String> {
        (self.0)(name).map(|v| v.trim().to_string()).filter(|v| !v.is_empty())
    }

    fn path(&self, name: &str) -> Option<PathBuf> {
        self.text(name).map(PathBuf::from)
    }

    /// `true` or `false` (default false).
    fn flag(&self, name: &'static str) -> Result<bool, ConfigError> {
        match self.text(name).as_deref() {
            None | Some("false") => Ok(false),
            Some("true") => Ok(true),
            Some(other) => Err(ConfigError::Invalid {
                variable: name,
                value: other.to_string(),
                expected: "true or false",
            }),
        }
    }

    fn number(&self, name: &'static str, default: u64, min: u64) -> Result<u64, ConfigError> {
        let Some(raw) = self.text(name) else {
            return Ok(default);
        };
        match raw.parse::<u64>() {
            Ok(value) if value >= min => Ok(value),
            _ => Err(ConfigError::Invalid {
                variable: name,
                value: raw,
                expected: if min == 0 {
                    "a whole number, 0 or more"
                } else {
                    "a whole number, at least the minimum"
                },
            }),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn config(vars: &[(&str, &str)]) -> Result<Config, ConfigError> {
        let map: HashMap<String, String> = vars.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
        Config::from_lookup(|name| map.get(name).cloned())
    }

    #[test]
    fn defaults_apply_when_nothing_is_set() {
        let config = config(&[]).expect("defaults");
        assert_eq!(config.server.listen.to_string(), "127.0.0.1:50051");
        assert_eq!(config.server.unary_timeout, Duration::from_secs(30));
        assert_eq!(config.server.max_receive_bytes, 4 * 1024 * 1024);
        assert_eq!(config.auth.audience, "bangfu");
        assert!(config.server.tls.is_none());
    }

    #[test]
    fn the_database_password_comes_from_a_file_escaped_into_the_url() {
        let dir = std::env::temp_dir().join(format!("bangfu-config-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("dir");
        let password = dir.join("password");
        std::fs::write(&password, "p@ss/w%rd:1\n").expect("write");
        let url_file = dir.join("url");
        std::fs::write(&url_file, "postgres://bangfu_identity@postgres:5432/bangfu_identity\n").expect("write");
        let with_password = config(&[
            (
                "DATABASE_URL",
                "postgres://bangfu_identity@postgres:5432/bangfu_identity?sslmode=disable",
            ),
            ("DATABASE_PASSWORD_FILE", password.to_str().expect("path")),
        ])
        .expect("config");
        let url = with_password.database_url.expect("url");
        assert_eq!(
            url,
            "postgres://bangfu_identity:p%40ss%2Fw%25rd%3A1@postgres:5432/bangfu_identity?sslmode=disable"
        );
        let parsed = url::Url::parse(&url).expect("a URL");
        assert_eq!(
            parsed.host_str(),
            Some("postgres"),
            "the password did not break the URL"
        );
        let from_file = config(&[("DATABASE_URL_FILE", url_file.to_str().expect("path"))]).expect("config");
        assert_eq!(
            from_file.database_url.as_deref(),
            Some("postgres://bangfu_identity@postgres:5432/bangfu_identity")
        );
        let both = config(&[
            ("DATABASE_URL", "postgres://a@b/c"),
            ("DATABASE_URL_FILE", url_file.to_str().expect("path")),
        ])
        .expect_err("two sources");
        assert!(both.to_string().contains("DATABASE_URL_FILE"), "{both}");
        let unreadable = config(&[
            ("DATABASE_PASSWORD_FILE", "/nonexistent/password"),
            ("DATABASE_URL", "postgres://a@b/c"),
        ])
        .expect_err("no such file");
        assert!(
            unreadable.to_string().contains("DATABASE_PASSWORD_FILE"),
            "{unreadable}"
        );
        std::fs::remove_dir_all(&dir).expect("clean up");
    }

    #[test]
    fn a_bad_value_names_its_variable() {
        let err = config(&[("BANGFU_CONCURRENCY_LIMIT", "-3")]).expect_err("negative limit");
        assert!(err.to_string().contains("BANGFU_CONCURRENCY_LIMIT"), "{err}");
        let err = config(&[("BANGFU_LISTEN", "localhost")]).expect_err("no port");
        assert!(err.to_string().contains("BANGFU_LISTEN"), "{err}");
    }

    #[test]
    fn a_certificate_without_its_key_is_refused() {
        let err = config(&[("BANGFU_TLS_CERT", "/etc/tls/cert.pem")]).expect_err("no key");
        assert_eq!(
            err,
            ConfigError::Missing {
                variable: "BANGFU_TLS_KEY",
                why: "BANGFU_TLS_CERT is set, and TLS needs the private key too"
            }
        );
    }

    #[test]
    fn printed_configuration_hides_the_database_password() {
        let config = config(&[(
            "DATABASE_URL",
            "postgres://identity:s3cret@db:5432/identity?sslmode=verify-full",
        )])
        .expect("config");
        let printed = config.redacted_lines().join("\n");
        assert!(!printed.contains("s3cret"), "{printed}");
        assert!(
            printed.contains("postgres://identity:***@db:5432/identity?sslmode=verify-full"),
            "{printed}"
        );
        assert_eq!(
            redact_url("postgres://db/x?user=a&password=b"),
            "postgres://db/x?user=a&password=***"
        );
    }
}
