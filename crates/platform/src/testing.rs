//! Test support shared by every crate's integration tests: development keys in a temporary
//! folder, tokens of any shape (good and deliberately bad), and a real server on a random
//! port. Tests speak to the server only over gRPC.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use tonic::transport::Channel;

use crate::auth::keys::{self, DEVELOPMENT_DEPARTMENT_KID, KeyRing};
use crate::auth::token::{Claims, TokenSigner, UserIdentity, unix_now};
use crate::auth::verify::{Revocations, Verifier};
use crate::auth::{Department, MethodRule, RegionScope, Role};
use crate::config::ServerConfig;
use crate::diagnostics::Diagnostics;
use crate::server::{ServeError, ServerHost, Shutdown};

/// Development keys in a temporary folder, removed when dropped.
pub struct TestKeys {
    dir: tempfile::TempDir,
}

impl TestKeys {
    pub fn new() -> Self {
        let dir = tempfile::tempdir().expect("temporary folder");
        keys::ensure_development_keys(&dir.path().join("keys")).expect("development keys");
        Self { dir }
    }

    pub fn keys_dir(&self) -> PathBuf {
        self.dir.path().join("keys")
    }

    pub fn revocation_file(&self) -> PathBuf {
        self.keys_dir().join("revoked.json")
    }

    /// A verifier over these keys that re-reads the revocation file on every call.
    pub fn verifier(&self) -> Verifier {
        let ring = KeyRing::load(&self.keys_dir(), keys::DevelopmentKeys::Allow).expect("key ring");
        Verifier::new(
            ring,
            "bangfu",
            Duration::from_secs(30),
            Revocations::from_file(Some(self.revocation_file()), Duration::ZERO),
        )
    }

    pub fn department_signer(&self) -> TokenSigner {
        TokenSigner::load(&keys::signing_key_path(&self.keys_dir(), DEVELOPMENT_DEPARTMENT_KID))
            .expect("department key")
    }

    pub fn service_signer(&self, service: &str) -> TokenSigner {
        TokenSigner::load(&keys::signing_key_path(
            &self.keys_dir(),
            &format!("dev-service-{service}"),
        ))
        .expect("service key")
    }

    /// Claims of a valid user token, for a test to spoil one field of.
    pub fn user_claims(&self, department: Department, roles: &[Role], scope: &str) -> Claims {
        let user = UserIdentity {
            subject: "test-user".into(),
            department,
            roles: roles.to_vec(),
            scope: RegionScope::parse(scope).expect("scope"),
        };
        self.department_signer()
            .user_claims(&user, "bangfu", unix_now(), Duration::from_secs(3600))
    }

    /// A valid user token.
    pub fn user_token(&self, department: Department, roles: &[Role], scope: &str) -> String {
        self.department_signer()
            .sign(&self.user_claims(department, roles, scope))
            .expect("sign")
    }

    /// A valid user token for a named subject.
    pub fn user_token_for(&self, subject: &str, department: Department, roles: &[Role], scope: &str) -> String {
        let mut claims = self.user_claims(department, roles, scope);
        claims.sub = subject.to_string();
        self.department_signer().sign(&claims).expect("sign")
    }

    /// A valid token of a service acting on its own.
    pub fn service_token(&self, service: &str, scope: &str) -> String {
        let signer = self.service_signer(service);
        let scope = RegionScope::parse(scope).expect("scope");
        signer
            .sign(&signer.service_claims(service, &scope, "bangfu", unix_now(), Duration::from_secs(300)))
            .expect("sign")
    }

    /// Writes the revocation file.
    pub fn revoke(&self, token_ids: &[&str], subjects: &[&str]) {
        let body = serde_json::json!({ "token_ids": token_ids, "subjects": subjects });
        std::fs::write(self.revocation_file(), body.to_string()).expect("revocation file");
    }
}

impl Default for TestKeys {
    fn default() -> Self {
        Self::new()
    }
}

/// Server settings for tests: a random loopback port and a short grace period.
pub fn server_config() -> ServerConfig {
    ServerConfig {
        health_listen: None,
        listen: SocketAddr::from(([127, 0, 0, 1], 0)),
        unary_timeout: Duration::from_secs(10),
        stream_idle_timeout: Duration::from_secs(30),
        concurrency_limit: 64,
        max_receive_bytes: 64 * 1024,
        max_send_bytes: 1024 * 1024,
        keepalive_interval: Duration::from_secs(30),
        keepalive_timeout: Duration::from_secs(10),
        shutdown_grace: Duration::from_secs(5),
        handshake_timeout: Duration::from_secs(1),
        tls: None,
    }
}

/// A server running in this process on a random port.
pub struct TestServer {
    pub addr: SocketAddr,
    pub keys: TestKeys,
    pub shutdown: Shutdown,
    task: tokio::task::JoinHandle<Result<(), ServeError>>,
}

impl TestServer {
    /// A server with the suite's permission table and the diagnostics service.
    pub async fn start() -> Self {
        Self::start_with(server_config(), crate::auth::permissions::PLATFORM_METHODS, |host| {
            let diagnostics = Diagnostics::new(host.config(), host.service_names()).into_server(host.config());
            host.add_service(diagnostics);
        })
        .await
    }

    /// A server with a given configuration and method table, hosting what `add` adds.
    pub async fn start_with(config: ServerConfig, methods: &[MethodRule], add: impl FnOnce(&mut ServerHost)) -> Self {
        Self::start_calling_itself(config, methods, |host, _, _| add(host)).await
    }

    /// As `start_with`, for services that call each other on this one server (as `bangfu up`
    /// hosts them): `add` gets the keys, to sign the callers' service tokens, and the address.
    pub async fn start_calling_itself(
        config: ServerConfig,
        methods: &[MethodRule],
        add: impl FnOnce(&mut ServerHost, &TestKeys, SocketAddr),
    ) -> Self {
        let keys = TestKeys::new();
        let listener = crate::server::bind(config.listen).await.expect("bind");
        let addr = listener.local_addr().expect("address");
        let mut host = ServerHost::with_methods(config, Arc::new(keys.verifier()), methods);
        add(&mut host, &keys, addr);
        let shutdown = host.shutdown();
        let task = tokio::spawn(host.serve(listener));
        Self {
            addr,
            keys,
            shutdown,
            task,
        }
    }

    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// A new connection to the server.
    pub async fn channel(&self) -> Channel {
        Channel::from_shared(self.url())
            .expect("url")
            .connect()
            .await
            .expect("connect")
    }

    /// Triggers the shutdown and waits for the server to stop.
    pub async fn stop(self) -> Result<(), ServeError> {
        self.shutdown.trigger();
        self.task.await.expect("server task")
    }

    /// Waits for the server task after a shutdown triggered elsewhere.
    pub async fn stopped(self) -> Result<(), ServeError> {
        self.task.await.expect("server task")
    }
}

/// A request carrying `authorization: Bearer <token>`.
pub fn with_token<T>(message: T, token: &str) -> tonic::Request<T> {
    let mut request = tonic::Request::new(message);
    request
        .metadata_mut()
        .insert("authorization", format!("Bearer {token}").parse().expect("ascii token"));
    request
}

/// A new version of a subsidy policy (`parent`, "policies/{code}"), created by `author` and
/// published by `publisher`, as finance makes one: two people.
pub async fn publish_policy_version(
    channel: Channel,
    parent: &str,
    version: bangfu_proto::subsidy::v1::PolicyVersion,
    author: &str,
    publisher: &str,
) -> bangfu_proto::subsidy::v1::PolicyVersion {
    use bangfu_proto::subsidy::v1 as sub;
    let mut subsidy = sub::subsidy_service_client::SubsidyServiceClient::new(channel);
    let created = subsidy
        .create_policy_version(with_token(
            sub::CreatePolicyVersionRequest {
                parent: parent.into(),
                version: Some(version),
                request_id: String::new(),
                validate_only: false,
            },
            author,
        ))
        .await
        .expect("version created")
        .into_inner()
        .version
        .expect("version");
    subsidy
        .publish_policy_version(with_token(
            sub::PublishPolicyVersionRequest {
                name: created.name,
                note: "已核对文件与示例".into(),
            },
            publisher,
        ))
        .await
        .expect("version published")
        .into_inner()
        .version
        .expect("version")
}

/// A payment batch as the bank paid it: the batch after its notice was published, and how many
/// lines the bank's results paid.
pub struct PaidBatch {
    pub noticed: bangfu_proto::subsidy::v1::PaymentBatch,
    pub paid_count: i64,
}

/// Finance pays what `fund` holds for claims under `region_prefix`, as a county does: a batch
/// made and noticed by `clerk`; `after_notice` moves the suite's clock past the notice (nothing
/// when the batch has none); approval by `approver`, a second subject; the disbursement file
/// (UTF-8 CSV); the bank's results, every line paid on `paid_on` ("2025-04-21").
pub async fn pay_through_the_bank(
    channel: Channel,
    fund: &str,
    region_prefix: &str,
    clerk: &str,
    approver: &str,
    after_notice: impl FnOnce(&bangfu_proto::subsidy::v1::PaymentBatch),
    paid_on: &str,
) -> PaidBatch {
    use bangfu_proto::common::v1 as common;
    use bangfu_proto::subsidy::v1 as sub;
    let mut subsidy = sub::subsidy_service_client::SubsidyServiceClient::new(channel);
    let batch = subsidy
        .create_payment_batch(with_token(
            sub::CreatePaymentBatchRequest {
                payment_batch: Some(sub::PaymentBatch {
                    display_name: format!("{region_prefix} 补贴发放批次"),
                    selection: Some(sub::ClaimSelection {
                        fund: fund.into(),
                        region_prefix: region_prefix.into(),
                        ..Default::default()
                    }),
                    ..Default::default()
                }),
                request_id: String::new(),
            },
            clerk,
        ))
        .await
        .expect("batch")
        .into_inner()
        .payment_batch
        .expect("batch");
    let noticed = subsidy
        .publish_batch_notice(with_token(
            sub::PublishBatchNoticeRequest {
                issuer: "枣庄市市中区财政局".into(),
                name: batch.name.clone(),
                first_day: None,
                objection_contact: "市中区财政局 0632-7654321".into(),
                etag: batch.etag.clone(),
            },
            clerk,
        ))
        .await
        .expect("noticed")
        .into_inner()
        .payment_batch
        .expect("batch");
    after_notice(&noticed);
    subsidy
        .approve_payment_batch(with_token(
            sub::ApprovePaymentBatchRequest {
                name: batch.name.clone(),
                note: "公示期满无异议".into(),
                etag: noticed.etag.clone(),
            },
            approver,
        ))
        .await
        .expect("approved");
    let mut export = subsidy
        .export_payment_batch(with_token(
            sub::ExportPaymentBatchRequest {
                name: batch.name.clone(),
                format: sub::DisbursementFileFormat::Csv as i32,
                encoding: sub::FileEncoding::Utf8 as i32,
                purpose: Some(common::AccessPurpose {
                    code: common::AccessPurposeCode::Payment as i32,
                    reference: "市中财支〔2025〕30号".into(),
                }),
            },
            clerk,
        ))
        .await
        .expect("exported")
        .into_inner();
    let mut bytes = Vec::new();
    while let Some(message) = export.message().await.expect("chunk") {
        if let Some(sub::export_payment_batch_response::Item::Chunk(chunk)) = message.item {
            bytes.extend(chunk);
        }
    }
    let text = String::from_utf8(bytes).expect("UTF-8");
    let rows: Vec<&str> = text.lines().collect();
    // The header, the lines, the control-total trailer.
    let mut results = String::from("明细编号,金额（元）,结果,付款日期,银行流水号,失败原因\n");
    for (i, row) in rows[1..rows.len() - 1].iter().enumerate() {
        let cells: Vec<&str> = row.split(',').collect();
        results.push_str(&format!("{},{},成功,{paid_on},R{i:03},\n", cells[1], cells[7]));
    }
    let messages = vec![
        sub::ImportBankResultsRequest {
            item: Some(sub::import_bank_results_request::Item::Header(sub::BankResultsHeader {
                payment_batch: batch.name.clone(),
                format: sub::BankResultFileFormat::Csv as i32,
                encoding: sub::FileEncoding::Utf8 as i32,
                file_name: "回盘文件.csv".into(),
                bank_name: "中国农业银行枣庄分行".into(),
                request_id: String::new(),
            })),
        },
        sub::ImportBankResultsRequest {
            item: Some(sub::import_bank_results_request::Item::Chunk(results.into_bytes())),
        },
    ];
    let mut answers = subsidy
        .import_bank_results(with_token(tokio_stream::iter(messages), clerk))
        .await
        .expect("imported")
        .into_inner();
    let mut paid_count = 0;
    while let Some(message) = answers.message().await.expect("answer") {
        if let Some(sub::import_bank_results_response::Item::Report(report)) = message.item {
            paid_count = report.paid_count;
        }
    }
    PaidBatch { noticed, paid_count }
}

/// A valid citizen ID (GB 11643) from its first 17 digits: the check character appended.
pub fn citizen_id(first17: &str) -> String {
    let check = crate::pii::check_character(first17.as_bytes());
    format!("{first17}{}", char::from(check))
}

pub fn postgres_admin_url() -> String {
    std::env::var("BANGFU_TEST_POSTGRES_URL").unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/postgres".into())
}

/// The database a test runs on: each integration scenario runs once on each
/// ([`on_both_backends!`](crate::on_both_backends)).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

impl TestDatabase {
    /// A fresh database of `backend`.
    pub async fn on(backend: Backend, migrations: &crate::db::Migrations) -> Self {
        match backend {
            Backend::Sqlite => Self::sqlite(migrations).await,
            Backend::Postgres => Self::postgres(migrations).await,
        }
    }
}

/// The reason code a refusal carries ("NOT_FOUND", "ETAG_MISMATCH").
pub fn reason(status: &tonic::Status) -> String {
    crate::error::reason_of(status).unwrap_or_default()
}

/// The fields a refusal's BadRequest names.
pub fn fields(status: &tonic::Status) -> Vec<String> {
    use tonic_types::StatusExt;
    status
        .get_error_details()
        .bad_request()
        .map(|b| b.field_violations.iter().map(|v| v.field.clone()).collect())
        .unwrap_or_default()
}

/// A wire date.
pub fn wire_date(year: i32, month: i32, day: i32) -> bangfu_proto::common::v1::Date {
    bangfu_proto::common::v1::Date { year, month, day }
}

/// Runs each listed `async fn(Backend)` once on SQLite and once on PostgreSQL, as tests named
/// `on_sqlite::…` and `on_postgres::…` (the PostgreSQL ones fail, never skip, without a server).
#[macro_export]
macro_rules! on_both_backends {
    ($($test:ident),+ $(,)?) => {
        mod on_sqlite {
            $(
                #[tokio::test]
                async fn $test() {
                    super::$test($crate::testing::Backend::Sqlite).await;
                }
            )+
        }
        mod on_postgres {
            $(
                #[tokio::test]
                async fn $test() {
                    super::$test($crate::testing::Backend::Postgres).await;
                }
            )+
        }
    };
}

/// A fresh, migrated database for one test, on either backend, removed when dropped.
pub struct TestDatabase {
    pub db: crate::db::Database,
    pub url: String,
    cleanup: Cleanup,
}

enum Cleanup {
    Sqlite(#[allow(dead_code)] tempfile::TempDir),
    Postgres { admin_url: String, name: String },
}

impl TestDatabase {
    /// A SQLite file in a temporary folder.
    pub async fn sqlite(migrations: &crate::db::Migrations) -> Self {
        let (url, cleanup) = new_sqlite_file();
        let db = crate::db::Database::open(&url, crate::db::PoolSettings::default(), migrations)
            .await
            .expect("open sqlite");
        Self { db, url, cleanup }
    }

    /// A PostgreSQL database copied from a template migrated once per set of migrations, so a
    /// test pays for `CREATE DATABASE … TEMPLATE`, not for the migrations.
    pub async fn postgres(migrations: &crate::db::Migrations) -> Self {
        let template = ensure_template(&postgres_admin_url(), migrations).await;
        let (url, cleanup) = new_postgres_database(Some(&template)).await;
        let db = crate::db::Database::open(&url, crate::db::PoolSettings::default(), migrations)
            .await
            .expect("open test database");
        Self { db, url, cleanup }
    }

    /// An empty database, no migration applied: for tests of a migration over data written
    /// under the schema before it.
    pub async fn unmigrated(backend: crate::db::Backend) -> Self {
        let (url, cleanup) = match backend {
            crate::db::Backend::Sqlite => new_sqlite_file(),
            crate::db::Backend::Postgres => new_postgres_database(None).await,
        };
        let db = crate::db::Database::connect(&url, crate::db::PoolSettings::default())
            .await
            .expect("open test database");
        Self { db, url, cleanup }
    }
}

/// The URL of a SQLite file in a new temporary folder, removed with the folder.
fn new_sqlite_file() -> (String, Cleanup) {
    let dir = tempfile::tempdir().expect("temporary folder");
    (crate::db::sqlite_url(&dir.path().join("test.db")), Cleanup::Sqlite(dir))
}

/// A new PostgreSQL database, a copy of `template` or empty, dropped with the test.
async fn new_postgres_database(template: Option<&str>) -> (String, Cleanup) {
    let admin_url = postgres_admin_url();
    let name = format!("bangfu_test_{}", crate::auth::token::new_token_id());
    let admin = crate::db::Database::connect(&admin_url, crate::db::PoolSettings::default())
        .await
        .expect("PostgreSQL for the _on_postgres tests (BANGFU_TEST_POSTGRES_URL)");
    let from = template
        .map(|template| format!(" TEMPLATE {template}"))
        .unwrap_or_default();
    sqlx::query(sqlx::AssertSqlSafe(format!("CREATE DATABASE {name}{from}")))
        .execute(admin.pool())
        .await
        .expect("create test database");
    admin.close().await;
    (database_url(&admin_url, &name), Cleanup::Postgres { admin_url, name })
}

impl Drop for TestDatabase {
    fn drop(&mut self) {
        if let Cleanup::Postgres { admin_url, name } = &self.cleanup {
            let (admin_url, name) = (admin_url.clone(), name.clone());
            // Drop runs outside async; a short-lived runtime on its own thread removes the database.
            let _ = std::thread::spawn(move || {
                let Ok(runtime) = tokio::runtime::Builder::new_current_thread().enable_all().build() else {
                    return;
                };
                runtime.block_on(async move {
                    if let Ok(admin) =
                        crate::db::Database::connect(&admin_url, crate::db::PoolSettings::default()).await
                    {
                        let _ = sqlx::query(sqlx::AssertSqlSafe(format!(
                            "DROP DATABASE IF EXISTS {name} WITH (FORCE)"
                        )))
                        .execute(admin.pool())
                        .await;
                        admin.close().await;
                    }
                });
            })
            .join();
        }
    }
}

fn database_url(admin_url: &str, name: &str) -> String {
    crate::db::with_database(admin_url, name)
}

/// The collation test databases are made with (part of the template's name).
const TEMPLATE_COLLATION: &str = "icu:en-US";

/// Creates (once, under an advisory lock shared by every test process) a template database
/// holding these migrations.
async fn ensure_template(admin_url: &str, migrations: &crate::db::Migrations) -> String {
    use sha2::{Digest, Sha256};
    let mut hasher = Sha256::new();
    for file in crate::db::PLATFORM_MIGRATIONS
        .postgres
        .iter()
        .chain(migrations.postgres)
    {
        hasher.update(file.version.to_be_bytes());
        hasher.update(file.sql.as_bytes());
    }
    hasher.update(TEMPLATE_COLLATION.as_bytes());
    let digest = hasher.finalize();
    let hex: String = digest[..8].iter().map(|b| format!("{b:02x}")).collect();
    let template = format!("bangfu_tpl_{hex}");
    let lock_key = i64::from_be_bytes(digest[..8].try_into().expect("8 bytes"));

    let admin = crate::db::Database::connect(admin_url, crate::db::PoolSettings::default())
        .await
        .expect("PostgreSQL for the _on_postgres tests (BANGFU_TEST_POSTGRES_URL)");
    let mut connection = admin.pool().acquire().await.expect("connection");
    sqlx::query("SELECT pg_advisory_lock($1)")
        .bind(lock_key)
        .execute(&mut *connection)
        .await
        .expect("lock");
    let exists: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM pg_database WHERE datname = $1")
        .bind(&template)
        .fetch_one(&mut *connection)
        .await
        .expect("look up template");
    if exists == 0 {
        let building = format!("{template}_building");
        let _ = sqlx::query(sqlx::AssertSqlSafe(format!(
            "DROP DATABASE IF EXISTS {building} WITH (FORCE)"
        )))
        .execute(&mut *connection)
        .await;
        // An en-US (ICU) collation, as `bangfu db init` gets on a server initialized in en_US
        // (the compose image): code that only works under the C collation fails here.
        sqlx::query(sqlx::AssertSqlSafe(format!(
            "CREATE DATABASE {building} TEMPLATE template0 LOCALE_PROVIDER icu ICU_LOCALE 'en-US'"
        )))
        .execute(&mut *connection)
        .await
        .expect("create template");
        let db = crate::db::Database::open(
            &database_url(admin_url, &building),
            crate::db::PoolSettings::default(),
            migrations,
        )
        .await
        .expect("migrate template");
        db.close().await;
        sqlx::query(sqlx::AssertSqlSafe(format!(
            "ALTER DATABASE {building} RENAME TO {template}"
        )))
        .execute(&mut *connection)
        .await
        .expect("publish template");
    }
    sqlx::query("SELECT pg_advisory_unlock($1)")
        .bind(lock_key)
        .execute(&mut *connection)
        .await
        .expect("unlock");
    drop(connection);
    admin.close().await;
    template
}

/// A TCP proxy between a service and its database (or a peer), to cut the connection and
/// restore it without ever stopping the shared server.
pub struct TcpProxy {
    pub addr: SocketAddr,
    state: Arc<std::sync::Mutex<ProxyState>>,
    accept: tokio::task::JoinHandle<()>,
}

#[derive(Default)]
struct ProxyState {
    cut: bool,
    target: Option<SocketAddr>,
    links: Vec<tokio::task::JoinHandle<()>>,
}

impl TcpProxy {
    pub async fn start(target: SocketAddr) -> Self {
        let proxy = Self::unbound().await;
        proxy.point_to(target);
        proxy
    }

    /// A proxy listening already whose target is known only later (a test server calling
    /// itself through it learns its own address once bound); it refuses connections until then.
    pub async fn unbound() -> Self {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind proxy");
        let addr = listener.local_addr().expect("address");
        let state = Arc::new(std::sync::Mutex::new(ProxyState::default()));
        let accept = tokio::spawn({
            let state = state.clone();
            async move {
                while let Ok((mut inbound, _)) = listener.accept().await {
                    let mut guard = state.lock().expect("proxy state");
                    let Some(target) = guard.target.filter(|_| !guard.cut) else {
                        drop(inbound);
                        continue;
                    };
                    guard.links.push(tokio::spawn(async move {
                        if let Ok(mut outbound) = tokio::net::TcpStream::connect(target).await {
                            let _ = tokio::io::copy_bidirectional(&mut inbound, &mut outbound).await;
                        }
                    }));
                }
            }
        });
        Self { addr, state, accept }
    }

    /// Sends new connections to `target`.
    pub fn point_to(&self, target: SocketAddr) {
        self.state.lock().expect("proxy state").target = Some(target);
    }

    /// Drops every open connection and refuses new ones, as a failed database would.
    pub fn cut(&self) {
        let mut state = self.state.lock().expect("proxy state");
        state.cut = true;
        for link in state.links.drain(..) {
            link.abort();
        }
    }

    /// Lets connections through again.
    pub fn restore(&self) {
        self.state.lock().expect("proxy state").cut = false;
    }
}

impl Drop for TcpProxy {
    fn drop(&mut self) {
        self.accept.abort();
        self.cut();
    }
}

/// Seals the audit log until at least `expected` rows are sealed. On PostgreSQL a transaction
/// open anywhere in the cluster (another test's) holds sealing back for a moment, by design.
pub async fn seal_audit(db: &crate::db::Database, expected: i64) {
    for _ in 0..200 {
        crate::audit::seal(db).await.expect("seal");
        let sealed: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM audit_seals")
            .fetch_one(db.pool())
            .await
            .expect("count");
        if sealed >= expected {
            return;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("fewer than {expected} audit rows sealed within 10 s");
}
