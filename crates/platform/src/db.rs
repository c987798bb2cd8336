//! The database every service opens from one URL: a SQLite file (WAL, `synchronous=FULL`,
//! foreign keys on, a busy timeout, writes in `BEGIN IMMEDIATE` transactions) or PostgreSQL
//! (TLS with `sslmode=verify-full` for a managed server). Ordinary statements are one SQL text
//! for both, run through sqlx's Any driver with `$1` placeholders; the service's migrations for
//! the backend, with the platform's own tables (audit log, parameters), run at start under `bangfu up` and by `bangfu migrate` for a deployment.
//!
//! Why `BEGIN IMMEDIATE`: SQLite has one writer. A deferred transaction that reads and then
//! writes fails with SQLITE_BUSY_SNAPSHOT when another writer got in first; an immediate one
//! waits for the lock up front (busy timeout) and then cannot fail that way, and its rows are
//! numbered in commit order, which the audit chain and the change feeds rely on.

use std::borrow::Cow;
use std::str::FromStr;
use std::time::{Duration, Instant};

use sqlx::any::{AnyConnectOptions, AnyPoolOptions};
use sqlx::migrate::{Migration, MigrationType, Migrator};
use sqlx::{Any, AnyPool, Executor, SqlSafeStr, Transaction};

use crate::config::redact_url;
use crate::error::Problem;

/// Which database engine a URL names.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

impl Backend {
    pub fn of_url(url: &str) -> Option<Self> {
        if url.starts_with("sqlite:") {
            Some(Self::Sqlite)
        } else if url.starts_with("postgres://") || url.starts_with("postgresql://") {
            Some(Self::Postgres)
        } else {
            None
        }
    }
}

/// One migration file, embedded with `include_str!`.
#[derive(Debug, Clone, Copy)]
pub struct MigrationFile {
    pub version: i64,
    pub description: &'static str,
    pub sql: &'static str,
}

/// A service's migrations for both backends. Platform migrations use versions below 100; a
/// service's start at 100.
#[derive(Debug, Clone, Copy)]
pub struct Migrations {
    pub sqlite: &'static [MigrationFile],
    pub postgres: &'static [MigrationFile],
}

impl Migrations {
    pub const NONE: Migrations = Migrations {
        sqlite: &[],
        postgres: &[],
    };

    fn for_backend(&self, backend: Backend) -> &'static [MigrationFile] {
        match backend {
            Backend::Sqlite => self.sqlite,
            Backend::Postgres => self.postgres,
        }
    }
}

/// The platform's own tables, in every service's database.
pub const PLATFORM_MIGRATIONS: Migrations = Migrations {
    sqlite: &[
        MigrationFile {
            version: 1,
            description: "audit log",
            sql: include_str!("../migrations/sqlite/0001_audit.sql"),
        },
        MigrationFile {
            version: 2,
            description: "parameters",
            sql: include_str!("../migrations/sqlite/0002_parameters.sql"),
        },
        MigrationFile {
            version: 3,
            description: "request ids and outbox",
            sql: include_str!("../migrations/sqlite/0003_requests_and_outbox.sql"),
        },
        MigrationFile {
            version: 4,
            description: "feed followers",
            sql: include_str!("../migrations/sqlite/0004_followers.sql"),
        },
        MigrationFile {
            version: 5,
            description: "audit events by region",
            sql: include_str!("../migrations/sqlite/0005_audit_region.sql"),
        },
        MigrationFile {
            version: 6,
            description: "data key check",
            sql: include_str!("../migrations/sqlite/0006_data_key_check.sql"),
        },
        MigrationFile {
            version: 7,
            description: "audit seals",
            sql: include_str!("../migrations/sqlite/0007_audit_seals.sql"),
        },
    ],
    postgres: &[
        MigrationFile {
            version: 1,
            description: "audit log",
            sql: include_str!("../migrations/postgres/0001_audit.sql"),
        },
        MigrationFile {
            version: 2,
            description: "parameters",
            sql: include_str!("../migrations/postgres/0002_parameters.sql"),
        },
        MigrationFile {
            version: 3,
            description: "request ids and outbox",
            sql: include_str!("../migrations/postgres/0003_requests_and_outbox.sql"),
        },
        MigrationFile {
            version: 4,
            description: "feed followers",
            sql: include_str!("../migrations/postgres/0004_followers.sql"),
        },
        MigrationFile {
            version: 5,
            description: "audit events by region",
            sql: include_str!("../migrations/postgres/0005_audit_region.sql"),
        },
        MigrationFile {
            version: 6,
            description: "data key check",
            sql: include_str!("../migrations/postgres/0006_data_key_check.sql"),
        },
        MigrationFile {
            version: 7,
            description: "audit seals",
            sql: include_str!("../migrations/postgres/0007_audit_seals.sql"),
        },
    ],
};

/// What [`Database::migrate`] did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SchemaReport {
    /// The newest migration applied, now (0 for none).
    pub version: i64,
    /// The versions this run applied.
    pub applied_now: Vec<i64>,
}

/// A database's schema against the migrations a build knows ([`Database::schema`]).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SchemaCheck {
    /// The newest migration applied (0 for none).
    pub version: i64,
    /// Migrations this build has that the database lacks: the schema is older than the binary.
    pub missing: Vec<i64>,
    /// Migrations the database has that this build does not know: the binary is older.
    pub unknown: Vec<i64>,
}

/// Pool settings.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PoolSettings {
    pub max_connections: u32,
    /// How long a call waits for a connection before it is told the database is unavailable.
    pub acquire_timeout: Duration,
    /// SQLite's wait for the write lock.
    pub busy_timeout: Duration,
}

impl Default for PoolSettings {
    fn default() -> Self {
        Self {
            max_connections: 16,
            acquire_timeout: Duration::from_secs(5),
            busy_timeout: Duration::from_secs(5),
        }
    }
}

/// Why the database could not be opened or used.
#[derive(Debug, thiserror::Error)]
pub enum DbError {
    #[error("unsupported database URL {0}: use sqlite://PATH or postgres://…")]
    UnsupportedUrl(String),
    #[error("cannot open the database at {url}: {source}")]
    Connect {
        url: String,
        #[source]
        source: sqlx::Error,
    },
    #[error("migrating the database failed: {0}")]
    Migrate(#[from] sqlx::migrate::MigrateError),
    #[error("database error: {0}")]
    Query(#[from] sqlx::Error),
    /// No connection could be had: whatever sqlx reports (an I/O error, a TLS or protocol
    /// failure from a proxy that accepts and closes, a pool timeout), the database is out of
    /// reach.
    #[error("no database connection: {0}")]
    Acquire(#[source] sqlx::Error),
    /// No connection came within the time the call had left.
    #[error("no database connection within the call's deadline")]
    AcquireDeadline,
}

impl DbError {
    /// Whether the error means the database is out of reach (worth a retry), not a bug.
    pub fn is_unavailable(&self) -> bool {
        match self {
            Self::Connect { .. } | Self::Acquire(_) | Self::AcquireDeadline => true,
            Self::Query(error) => is_unavailable(error),
            Self::UnsupportedUrl(_) | Self::Migrate(_) => false,
        }
    }
}

/// Whether a sqlx error means the database is out of reach, not that a statement is wrong: the
/// transport failed (I/O, TLS, a protocol message that is not PostgreSQL's, as from a proxy that
/// accepts and closes), the pool gave up, or the server said it cannot serve now — connection
/// exceptions (SQLSTATE class 08), shutting down or starting (57P01–57P03), too many
/// connections (53300) — or SQLite's file is locked past the busy timeout.
pub fn is_unavailable(error: &sqlx::Error) -> bool {
    match error {
        sqlx::Error::Io(_)
        | sqlx::Error::Tls(_)
        | sqlx::Error::Protocol(_)
        | sqlx::Error::PoolTimedOut
        | sqlx::Error::PoolClosed
        | sqlx::Error::WorkerCrashed => true,
        sqlx::Error::Database(database) => database.code().is_some_and(|code| {
            code.starts_with("08") || matches!(code.as_ref(), "57P01" | "57P02" | "57P03" | "53300" | "5" | "6")
        }),
        _ => false,
    }
}

impl From<DbError> for Problem {
    fn from(error: DbError) -> Self {
        if error.is_unavailable() {
            tracing::warn!(%error, "database unavailable");
            Problem::database_unavailable()
        } else {
            tracing::error!(%error, "database error");
            Problem::internal()
        }
    }
}

impl From<sqlx::Error> for Problem {
    fn from(error: sqlx::Error) -> Self {
        if let Some(constraint) = unique_violation(&error) {
            // Two writers raced for one key (the second's check ran before the first
            // committed): the schema kept the rule, and the client can read again and retry.
            tracing::info!(constraint, "a write met a unique constraint");
            return Problem::new(
                tonic::Code::Aborted,
                crate::error::ErrorReason::StateConflict,
                "a conflicting record was written at the same time; read it again and retry",
                "同一记录正被他人同时办理，请刷新后重试",
            )
            .with_metadata("constraint", constraint);
        }
        if let Some(code) = transaction_conflict(&error) {
            // PostgreSQL gave up this transaction to let another go on (a deadlock, or a
            // serializable read another write made stale): nothing of it was kept, and the same
            // call sent again may well pass.
            tracing::info!(sqlstate = code, "a transaction was chosen to give way to another");
            return Problem::new(
                tonic::Code::Aborted,
                crate::error::ErrorReason::StateConflict,
                "this change met another one at the same moment and was undone; send it again",
                "该业务与他人同时办理的业务冲突，已撤销，请重新提交",
            )
            .with_metadata("sqlstate", code);
        }
        Problem::from(DbError::Query(error))
    }
}

/// The SQLSTATE of a transaction PostgreSQL aborted to let another proceed: deadlock detected
/// (40P01) or serialization failure (40001).
pub fn transaction_conflict(error: &sqlx::Error) -> Option<&'static str> {
    let sqlx::Error::Database(database) = error else {
        return None;
    };
    match database.code().as_deref() {
        Some("40P01") => Some("40P01"),
        Some("40001") => Some("40001"),
        _ => None,
    }
}

/// The unique constraint a write was refused by: PostgreSQL's constraint or index name, or
/// the `table.column` list SQLite names ("persons.household_id"). A service maps the ones that
/// mean a rule of its own (one head per household) to its own error before the generic one.
pub fn unique_violation(error: &sqlx::Error) -> Option<String> {
    let sqlx::Error::Database(database) = error else {
        return None;
    };
    if !matches!(database.kind(), sqlx::error::ErrorKind::UniqueViolation) {
        return None;
    }
    Some(match database.constraint() {
        Some(name) => name.to_string(),
        None => database.message().rsplit(": ").next().unwrap_or_default().to_string(),
    })
}

tokio::task_local! {
    /// When the call being served gives up: set by the authorization layer around the handler.
    static CALL_DEADLINE: Instant;
}

/// Runs `call` with its deadline known to the database code it reaches.
pub async fn with_call_deadline<F: std::future::Future>(deadline: Option<Instant>, call: F) -> F::Output {
    match deadline {
        Some(deadline) => CALL_DEADLINE.scope(deadline, call).await,
        None => call.await,
    }
}

/// How much of the call's remaining time a connection wait may take: the rest is left for the
/// statement and for the answer to reach the client before its deadline.
const DEADLINE_SHARE_PERCENT: u32 = 80;

/// `acquiring`, given up when the call's time (if it has a deadline) is nearly spent.
async fn within_call_deadline<T>(acquiring: impl std::future::Future<Output = T>) -> Result<T, DbError> {
    let Ok(deadline) = CALL_DEADLINE.try_with(|deadline| *deadline) else {
        return Ok(acquiring.await);
    };
    let left = deadline.saturating_duration_since(Instant::now()) * DEADLINE_SHARE_PERCENT / 100;
    tokio::time::timeout(left, acquiring)
        .await
        .map_err(|_| DbError::AcquireDeadline)
}

/// How long a pooled connection may sit idle before it is pinged on being handed out.
const IDLE_BEFORE_PING: Duration = Duration::from_secs(1);

/// A service's database.
#[derive(Debug, Clone)]
pub struct Database {
    pool: AnyPool,
    backend: Backend,
    /// Woken when a call fails to get a connection, so health is checked at once rather than
    /// at the next round.
    trouble: std::sync::Arc<tokio::sync::Notify>,
    /// Calls waiting for a connection now (a gauge: a pool too small for the load shows here
    /// before it shows as timeouts).
    waiting: std::sync::Arc<std::sync::atomic::AtomicI64>,
    /// The group commit of audit rows written outside a write (reads, refusals): started at
    /// the first such row (`audit::append_many_now`).
    audit_group: std::sync::Arc<std::sync::OnceLock<crate::audit::GroupCommit>>,
}

impl Database {
    /// The audit group commit of this database, once started.
    pub(crate) fn audit_group(&self) -> &std::sync::OnceLock<crate::audit::GroupCommit> {
        &self.audit_group
    }

    /// The same pool without the audit group commit: what the group's own writer holds, so
    /// the writer ends when the last handle of the service lets go of the database.
    pub(crate) fn without_audit_group(&self) -> Self {
        Self {
            pool: self.pool.clone(),
            backend: self.backend,
            trouble: self.trouble.clone(),
            waiting: self.waiting.clone(),
            audit_group: std::sync::Arc::default(),
        }
    }

    /// Connects and runs the platform's and the service's migrations.
    pub async fn open(url: &str, settings: PoolSettings, migrations: &Migrations) -> Result<Self, DbError> {
        let database = Self::connect(url, settings).await?;
        database.migrate(migrations).await?;
        Ok(database)
    }

    /// Connects without migrating.
    pub async fn connect(url: &str, settings: PoolSettings) -> Result<Self, DbError> {
        sqlx::any::install_default_drivers();
        let backend = Backend::of_url(url).ok_or_else(|| DbError::UnsupportedUrl(redact_url(url)))?;
        let connect_error = |source| DbError::Connect {
            url: redact_url(url),
            source,
        };
        let options = AnyConnectOptions::from_str(url).map_err(connect_error)?;
        let mut pool = AnyPoolOptions::new()
            .max_connections(settings.max_connections)
            .acquire_timeout(settings.acquire_timeout)
            // sqlx pings every idle connection before handing it out: a round trip per call
            // (a network exchange on PostgreSQL, a hop to the connection's thread on SQLite),
            // measured as a large share of a one-person read. A connection used within the
            // last second is live; one idle longer (a server restarted, a firewall's idle cut)
            // is still pinged, and a dead one is dropped for another.
            .test_before_acquire(false)
            .before_acquire(|connection, meta| {
                Box::pin(async move {
                    if meta.idle_for >= IDLE_BEFORE_PING {
                        sqlx::Connection::ping(connection).await?;
                    }
                    Ok(true)
                })
            });
        if backend == Backend::Sqlite {
            let busy_ms = settings.busy_timeout.as_millis();
            pool = pool.after_connect(move |connection, _| {
                Box::pin(async move {
                    connection.execute("PRAGMA journal_mode = WAL").await?;
                    connection.execute("PRAGMA synchronous = FULL").await?;
                    connection.execute("PRAGMA foreign_keys = ON").await?;
                    // A 2 MB page cache (the default) spills a bulk import's index pages to the
                    // file mid-transaction, and statement journals go to temporary files;
                    // measured, both together cost a third of an import's time.
                    connection.execute("PRAGMA cache_size = -32768").await?;
                    connection.execute("PRAGMA temp_store = MEMORY").await?;
                    // Reads through a memory map of the file instead of a read() per page: a
                    // statistic over a million persons walks most of a 700 MB file, and the
                    // copies were a third of its time (sqlite3 shell, 14.4 s → 11.2 s). Writes
                    // still go through the journal as before.
                    connection.execute("PRAGMA mmap_size = 4294967296").await?;
                    // A PRAGMA takes no bind parameters; the value is a number we formatted.
                    connection
                        .execute(sqlx::AssertSqlSafe(format!("PRAGMA busy_timeout = {busy_ms}")))
                        .await?;
                    Ok(())
                })
            });
        }
        let pool = pool.connect_with(options).await.map_err(connect_error)?;
        Ok(Self {
            pool,
            backend,
            trouble: std::sync::Arc::default(),
            waiting: std::sync::Arc::default(),
            audit_group: std::sync::Arc::default(),
        })
    }

    /// Opens a SQLite file for reading only and changes nothing in it: no journal-mode switch
    /// and no `-wal` or `-shm` files beside it (`immutable`), so a backup's checksums still
    /// hold after it was read. Only for files no one writes meanwhile (a backup).
    pub async fn open_sqlite_read_only(path: &std::path::Path) -> Result<Self, DbError> {
        sqlx::any::install_default_drivers();
        let url = format!("sqlite://{}?mode=ro&immutable=true", path.display());
        let connect_error = |source| DbError::Connect {
            url: url.clone(),
            source,
        };
        let options = AnyConnectOptions::from_str(&url).map_err(connect_error)?;
        let pool = AnyPoolOptions::new()
            .max_connections(1)
            .connect_with(options)
            .await
            .map_err(connect_error)?;
        Ok(Self {
            pool,
            backend: Backend::Sqlite,
            trouble: std::sync::Arc::default(),
            waiting: std::sync::Arc::default(),
            audit_group: std::sync::Arc::default(),
        })
    }

    /// Runs the platform's migrations, then the service's, and says which it applied. On
    /// PostgreSQL the migrator holds an advisory lock, so replicas starting together migrate once.
    pub async fn migrate(&self, service: &Migrations) -> Result<SchemaReport, DbError> {
        let before = self.applied_versions().await?;
        let mut migrations = Vec::new();
        for file in PLATFORM_MIGRATIONS
            .for_backend(self.backend)
            .iter()
            .chain(service.for_backend(self.backend))
        {
            migrations.push(Migration::new(
                file.version,
                Cow::Borrowed(file.description),
                MigrationType::Simple,
                sqlx::AssertSqlSafe(file.sql).into_sql_str(),
                false,
            ));
        }
        let migrator = Migrator::with_migrations(migrations);
        migrator.run(&self.pool).await?;
        let after = self.applied_versions().await?;
        Ok(SchemaReport {
            version: after.last().copied().unwrap_or(0),
            applied_now: after.into_iter().filter(|v| !before.contains(v)).collect(),
        })
    }

    /// The migration versions applied to this database, in order; none before the first migration.
    pub async fn applied_versions(&self) -> Result<Vec<i64>, DbError> {
        let exists_sql = match self.backend {
            Backend::Postgres => {
                "SELECT CAST(COUNT(*) AS BIGINT) FROM pg_tables WHERE tablename = '_sqlx_migrations' AND schemaname = current_schema()"
            }
            Backend::Sqlite => "SELECT COUNT(*) FROM sqlite_master WHERE type = 'table' AND name = '_sqlx_migrations'",
        };
        let exists: i64 = sqlx::query_scalar(exists_sql).fetch_one(&self.pool).await?;
        if exists == 0 {
            return Ok(Vec::new());
        }
        Ok(
            sqlx::query_scalar("SELECT version FROM _sqlx_migrations WHERE success ORDER BY version")
                .fetch_all(&self.pool)
                .await?,
        )
    }

    /// This database's schema against the migrations this build knows (the platform's and
    /// `service`'s), without changing anything.
    pub async fn schema(&self, service: &Migrations) -> Result<SchemaCheck, DbError> {
        let applied = self.applied_versions().await?;
        let known: Vec<i64> = PLATFORM_MIGRATIONS
            .for_backend(self.backend)
            .iter()
            .chain(service.for_backend(self.backend))
            .map(|file| file.version)
            .collect();
        Ok(SchemaCheck {
            missing: known.iter().copied().filter(|v| !applied.contains(v)).collect(),
            unknown: applied.iter().copied().filter(|v| !known.contains(v)).collect(),
            version: applied.last().copied().unwrap_or(0),
        })
    }

    pub fn backend(&self) -> Backend {
        self.backend
    }

    pub fn pool(&self) -> &AnyPool {
        &self.pool
    }

    /// A write transaction: `BEGIN IMMEDIATE` on SQLite, `BEGIN` on PostgreSQL. Waits for a
    /// connection no longer than the call has left (see [`acquire`](Self::acquire)).
    pub async fn begin(&self) -> Result<Transaction<'static, Any>, DbError> {
        let begin = async {
            match self.backend {
                Backend::Sqlite => self.pool.begin_with("BEGIN IMMEDIATE").await,
                Backend::Postgres => self.pool.begin().await,
            }
        };
        let transaction = self
            .waited(within_call_deadline(begin))
            .await
            .and_then(|begun| {
                begun.map_err(|error| match error {
                    // A busy SQLite writer lock is not an outage: the statement failed, not the link.
                    sqlx::Error::Database(_) => DbError::Query(error),
                    other => DbError::Acquire(other),
                })
            })
            .inspect_err(|error| self.report(error))?;
        Ok(transaction)
    }

    /// A connection for a read, waiting no longer than the call has left: a client with 3 s
    /// hears UNAVAILABLE from the database before its own deadline, not DEADLINE_EXCEEDED
    /// after the pool's longer acquire timeout.
    pub async fn acquire(&self) -> Result<sqlx::pool::PoolConnection<Any>, DbError> {
        self.waited(within_call_deadline(self.pool.acquire()))
            .await
            .and_then(|acquired| acquired.map_err(DbError::Acquire))
            .inspect_err(|error| self.report(error))
    }

    /// Runs a wait for a connection, counted in `waiting` and timed in
    /// `bangfu.db.acquire.duration`.
    async fn waited<T>(&self, acquiring: impl std::future::Future<Output = T>) -> T {
        use std::sync::atomic::Ordering;
        static DURATION: std::sync::OnceLock<opentelemetry::metrics::Histogram<f64>> = std::sync::OnceLock::new();
        /// Counts the wait down however it ends, a call dropped at its deadline included.
        struct Waiting<'a>(&'a std::sync::atomic::AtomicI64);
        impl Drop for Waiting<'_> {
            fn drop(&mut self) {
                self.0.fetch_sub(1, Ordering::Relaxed);
            }
        }
        self.waiting.fetch_add(1, Ordering::Relaxed);
        let waiting = Waiting(&self.waiting);
        let started = Instant::now();
        let outcome = acquiring.await;
        drop(waiting);
        DURATION
            .get_or_init(|| {
                opentelemetry::global::meter(crate::telemetry::SCOPE)
                    .f64_histogram("bangfu.db.acquire.duration")
                    .with_description("time a call waited for a database connection (BEGIN included for writes)")
                    .with_unit("s")
                    .with_boundaries(vec![0.0005, 0.001, 0.005, 0.01, 0.05, 0.1, 0.5, 1.0, 5.0])
                    .build()
            })
            .record(started.elapsed().as_secs_f64(), &[]);
        outcome
    }

    /// Calls waiting for a connection now.
    pub fn waiting(&self) -> u64 {
        u64::try_from(self.waiting.load(std::sync::atomic::Ordering::Relaxed)).unwrap_or(0)
    }

    /// Wakes the health check when `error` says the database is out of reach.
    fn report(&self, error: &DbError) {
        if error.is_unavailable() {
            self.trouble.notify_one();
        }
    }

    /// Resolves when a call has failed to reach the database since the last time.
    pub async fn troubled(&self) {
        self.trouble.notified().await;
    }

    /// Closes the pool, waiting for connections in use to be returned.
    pub async fn close(&self) {
        self.pool.close().await;
    }
}

/// The URL of another database on the same PostgreSQL server: `postgres://u@h/postgres?x` with
/// `identity` → `postgres://u@h/identity?x`.
pub fn with_database(server_url: &str, name: &str) -> String {
    let (base, query) = match server_url.split_once('?') {
        Some((base, query)) => (base, format!("?{query}")),
        None => (server_url, String::new()),
    };
    let scheme_end = base.find("://").map_or(0, |i| i + 3);
    let base = match base[scheme_end..].find('/') {
        Some(slash) => &base[..scheme_end + slash],
        None => base,
    };
    format!("{base}/{name}{query}")
}

/// Creates database `name` on the PostgreSQL server unless it exists (for `bangfu up` with a
/// server given: one database per service).
pub async fn ensure_postgres_database(server_url: &str, name: &str) -> Result<String, DbError> {
    let valid = !name.is_empty()
        && name
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_');
    if !valid {
        return Err(DbError::UnsupportedUrl(format!("database name {name:?}")));
    }
    let admin = Database::connect(server_url, PoolSettings::default()).await?;
    let exists: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM pg_database WHERE datname = $1")
        .bind(name)
        .fetch_one(admin.pool())
        .await?;
    if exists == 0 {
        // A name cannot be a bind parameter; it was checked to be [a-z0-9_] above.
        sqlx::query(sqlx::AssertSqlSafe(format!("CREATE DATABASE {name}")))
            .execute(admin.pool())
            .await?;
    }
    admin.close().await;
    Ok(with_database(server_url, name))
}

/// The SQLite URL of a file, created if missing.
/// The `VALUES` groups of a multi-row insert: `rows` groups of `width` parameters, numbered
/// `$1…` on PostgreSQL and anonymous `?` on SQLite. SQLite resolves a numbered parameter by a
/// linear search of the statement's names, which makes a statement of thousands of numbered
/// parameters quadratic (measured: 60% of a bulk import in `sqlite3_bind_parameter_name`);
/// anonymous ones bind in order. The statement must then have no other parameters.
pub fn values_groups(connection: &sqlx::AnyConnection, rows: usize, width: usize) -> String {
    placeholder_groups(connection.backend_name().eq_ignore_ascii_case("sqlite"), rows, width)
}

/// `$first, $first+1, …`: `count` numbered parameters, for an `IN` list or a `VALUES` group
/// bound in order. Both backends read numbered parameters; on SQLite keep such a list short
/// (see [`values_groups`]).
pub fn numbered_parameters(first: usize, count: usize) -> String {
    let mut list = String::with_capacity(count * 8);
    push_numbered(&mut list, first, count);
    list
}

fn push_numbered(buffer: &mut String, first: usize, count: usize) {
    use std::fmt::Write as _;
    for number in first..first + count {
        if number > first {
            buffer.push_str(", ");
        }
        let _ = write!(buffer, "${number}");
    }
}

fn placeholder_groups(sqlite: bool, rows: usize, width: usize) -> String {
    // Written into one buffer: a multi-row insert of claims has thousands of parameters, and a
    // string per number and per group made this a few per cent of a payroll's CPU.
    let mut groups = String::with_capacity(rows * width * if sqlite { 3 } else { 8 });
    for row in 0..rows {
        groups.push_str(if row == 0 { "(" } else { ", (" });
        if sqlite {
            for column in 0..width {
                groups.push_str(if column == 0 { "?" } else { ", ?" });
            }
        } else {
            push_numbered(&mut groups, 1 + row * width, width);
        }
        groups.push(')');
    }
    groups
}

/// Whether `table` holds a row. A bulk load's ANALYZE leaves empty tables alone by it: analyzed
/// empty, a table keeps no column statistics, and reads of it once it fills are planned without
/// them. A row is asked for rather than EXISTS, which SQLite answers with an integer that the Any
/// driver does not read as a bool. `table` goes into the text: callers pass fixed names only.
pub async fn holds_rows(connection: &mut sqlx::AnyConnection, table: &str) -> Result<bool, sqlx::Error> {
    Ok(
        sqlx::query(sqlx::AssertSqlSafe(format!("SELECT 1 FROM {table} LIMIT 1")))
            .fetch_optional(&mut *connection)
            .await?
            .is_some(),
    )
}

pub fn sqlite_url(path: &std::path::Path) -> String {
    format!("sqlite://{}?mode=rwc", path.display())
}

/// Microseconds since the Unix epoch, as timestamps are stored.
pub fn to_micros(instant: time::OffsetDateTime) -> i64 {
    (instant.unix_timestamp_nanos() / 1_000) as i64
}

/// The instant a stored microsecond count stands for.
pub fn from_micros(micros: i64) -> Option<time::OffsetDateTime> {
    time::OffsetDateTime::from_unix_timestamp_nanos(i128::from(micros) * 1_000).ok()
}

#[cfg(test)]
mod tests {
    use super::{numbered_parameters, placeholder_groups};

    #[test]
    fn placeholder_groups_number_every_parameter_once_on_postgres_and_leave_them_anonymous_on_sqlite() {
        assert_eq!(placeholder_groups(false, 2, 3), "($1, $2, $3), ($4, $5, $6)");
        assert_eq!(placeholder_groups(true, 2, 2), "(?, ?), (?, ?)");
        assert_eq!(placeholder_groups(false, 1, 1), "($1)");
        assert_eq!(placeholder_groups(false, 0, 4), "");
    }

    #[test]
    fn numbered_parameters_start_where_asked() {
        assert_eq!(numbered_parameters(4, 3), "$4, $5, $6");
        assert_eq!(numbered_parameters(1, 1), "$1");
        assert_eq!(numbered_parameters(2, 0), "");
    }
}
