//! Two `bangfu serve identity` processes on one PostgreSQL database, set up the way a deployment
//! sets them up (`keys init`, `db init`): they start together, take writes at the same time,
//! each answers every read, the change feed read through either has every event once and in
//! the same order, the audit chain verifies, and a SIGTERM to one loses no accepted write while
//! the other keeps serving.

use std::collections::HashSet;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use bangfu_proto::common::v1 as common;
use bangfu_proto::identity::v1 as pb;
use bangfu_proto::identity::v1::identity_service_client::IdentityServiceClient;
use tonic::transport::Channel;

use crate::up::free_port;

const BANGFU: &str = env!("CARGO_BIN_EXE_bangfu");
const IDENTITY: &str = "bangfu.identity.v1.IdentityService";

pub fn admin_url() -> String {
    std::env::var("BANGFU_TEST_POSTGRES_URL").unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/postgres".into())
}

/// A deployment's keys for identity (`keys init`) in `dir`/keys.
pub fn deployment_keys(dir: &Path) -> std::path::PathBuf {
    let keys = dir.join("keys");
    bangfu(
        &[
            "keys",
            "init",
            "--out",
            keys.to_str().expect("path"),
            "--services",
            "identity",
        ],
        &[],
    );
    keys
}

/// `bangfu migrate identity` on `database_url`, as a deployment runs it before `serve`.
pub fn migrate_identity(database_url: &str) -> String {
    let output = bangfu(&["migrate", "identity"], &[("DATABASE_URL", database_url)]);
    String::from_utf8_lossy(&output.stdout).into_owned()
}

/// The URL of database `name`, new and migrated for identity, on the test server (as its
/// superuser).
pub async fn fresh_database(name: &str) -> String {
    let url = empty_database(name).await;
    migrate_identity(&url);
    url
}

/// The URL of database `name`, new and empty, on the test server (as its superuser).
pub async fn empty_database(name: &str) -> String {
    use sqlx::Connection;
    let admin = admin_url();
    let mut connection = sqlx::PgConnection::connect(&admin).await.expect("admin connection");
    sqlx::raw_sql(sqlx::AssertSqlSafe(format!(
        "DROP DATABASE IF EXISTS {name} WITH (FORCE)"
    )))
    .execute(&mut connection)
    .await
    .expect("drop an earlier run's database");
    bangfu_platform::db::ensure_postgres_database(&admin, name)
        .await
        .expect("database")
}

/// A command's standard output and error, for assertion messages.
pub fn text(output: &std::process::Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    )
}

/// `bangfu serve identity` with a deployment's keys and `database_url`, nothing else from the
/// test's environment.
pub fn serve_identity(keys: &Path, database_url: &str) -> Command {
    let mut command = Command::new(BANGFU);
    command
        .env_clear()
        .args(["serve", "identity"])
        .env("DATABASE_URL", database_url)
        .env("BANGFU_KEYS_DIR", keys.join("public"))
        .env("BANGFU_SIGNING_KEY", keys.join("identity/signing.json"))
        .env("BANGFU_DATA_KEYS", keys.join("data-keys.json"));
    command
}

/// Runs `bangfu` and asserts it succeeded.
pub fn bangfu(args: &[&str], env: &[(&str, &str)]) -> std::process::Output {
    let output = Command::new(BANGFU)
        .args(args)
        .envs(env.iter().copied())
        .output()
        .expect("run bangfu");
    assert!(
        output.status.success(),
        "bangfu {args:?}: {}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    output
}

/// One `bangfu serve identity` process.
pub struct Replica {
    child: Child,
    /// The gRPC address, http://127.0.0.1:port (the port takes TLS when the files are given).
    pub addr: String,
    health: String,
}

impl Replica {
    /// A replica; `peer` is the identity it calls (BANGFU_PEER_IDENTITY), when given.
    fn start(keys: &Path, database_url: &str, peer: Option<&str>) -> Self {
        let peer: Vec<(&str, &str)> = peer.map(|peer| ("BANGFU_PEER_IDENTITY", peer)).into_iter().collect();
        Self::start_with(keys, database_url, &peer)
    }

    /// A replica with more of the environment than keys and database (TLS files, peers).
    pub fn start_with(keys: &Path, database_url: &str, env: &[(&str, &str)]) -> Self {
        let (port, health) = (free_port(), free_port());
        let child = serve_identity(keys, database_url)
            .envs(env.iter().copied())
            .env("BANGFU_LISTEN", format!("127.0.0.1:{port}"))
            .env("BANGFU_HEALTH_LISTEN", format!("127.0.0.1:{health}"))
            .env("BANGFU_SHUTDOWN_GRACE_SECONDS", "10")
            .env("BANGFU_LOG", "warn")
            .stdout(Stdio::null())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("spawn bangfu serve");
        Self {
            child,
            addr: format!("http://127.0.0.1:{port}"),
            health: format!("http://127.0.0.1:{health}"),
        }
    }

    /// The plaintext probe port (health and /metrics), http://127.0.0.1:port.
    pub fn health(&self) -> &str {
        &self.health
    }

    /// Waits until the health port (plaintext, also beside TLS) says the identity service is
    /// SERVING.
    pub fn wait_serving(&mut self) {
        // A readiness wait, not a timing check (alone, a replica serves within seconds): the
        // suite starts dozens of servers at once on two cores.
        let deadline = Instant::now() + Duration::from_secs(120);
        loop {
            // A replica that refused to start says why on stderr (inherited): fail now, not
            // after the whole wait.
            if let Ok(Some(status)) = self.child.try_wait() {
                panic!(
                    "the replica at {} exited before serving ({status}); its log is above",
                    self.addr
                );
            }
            let checked = Command::new(BANGFU)
                .args(["health", "--addr", &self.health, "--service", IDENTITY])
                .output()
                .expect("bangfu health");
            if checked.status.success() {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "the replica at {} never became SERVING",
                self.addr
            );
            std::thread::sleep(Duration::from_millis(200));
        }
    }

    fn terminate(&mut self) {
        let pid = self.child.id().to_string();
        assert!(
            Command::new("kill")
                .args(["-TERM", &pid])
                .status()
                .expect("kill")
                .success()
        );
    }

    fn wait(&mut self) -> std::process::ExitStatus {
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            if let Some(status) = self.child.try_wait().expect("wait") {
                return status;
            }
            assert!(
                Instant::now() < deadline,
                "the replica did not stop within 30 s of SIGTERM"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

impl Drop for Replica {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A token the deployment's operator key (`keys init`) signs, for `dept-role` in region 3704.
pub fn operator_token(keys: &Path, dept: &str, role: &str) -> String {
    let output = bangfu(
        &[
            "token",
            "issue",
            "--key",
            keys.join("operator/signing.json").to_str().expect("path"),
            "--dept",
            dept,
            "--role",
            role,
            "--region",
            "3704",
            "--subject",
            &format!("{dept}-{role}"),
        ],
        &[],
    );
    String::from_utf8_lossy(&output.stdout).trim().to_string()
}

use bangfu_platform::testing::citizen_id;

pub fn authorized<T>(message: T, token: &str) -> tonic::Request<T> {
    let mut request = tonic::Request::new(message);
    request
        .metadata_mut()
        .insert("authorization", format!("Bearer {token}").parse().expect("header"));
    request
}

pub async fn client(addr: &str) -> IdentityServiceClient<Channel> {
    IdentityServiceClient::new(
        Channel::from_shared(addr.to_string())
            .expect("url")
            .connect()
            .await
            .expect("connect"),
    )
}

pub fn create_request(n: u32, request_id: &str) -> pb::CreatePersonRequest {
    pb::CreatePersonRequest {
        person: Some(pb::Person {
            display_name: format!("副本{n}"),
            citizen_id: citizen_id(&format!("37040219900101{n:03}")),
            registered_region: Some(common::RegionCode {
                code: "370402001013".into(),
                display_name: String::new(),
            }),
            ..Default::default()
        }),
        request_id: request_id.into(),
    }
}

/// Every change from the start of the feed through `addr`, until `expected` have come.
async fn feed(addr: &str, token: &str, expected: usize) -> Vec<(String, String, i32)> {
    let mut identity = client(addr).await;
    let mut stream = identity
        .watch_person_changes(authorized(pb::WatchPersonChangesRequest::default(), token))
        .await
        .expect("watch")
        .into_inner();
    let mut changes = Vec::new();
    while changes.len() < expected {
        let item = tokio::time::timeout(Duration::from_secs(20), stream.message())
            .await
            .expect("the feed keeps coming")
            .expect("stream")
            .expect("item");
        if let Some(pb::watch_person_changes_response::Item::Change(change)) = item.item {
            changes.push((change.cursor, change.person, change.kind));
        }
    }
    changes
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_replicas_on_postgres_share_writes_reads_the_feed_and_the_audit_chain_and_drain_without_loss() {
    let dir = tempfile::tempdir().expect("tmp");
    let keys = deployment_keys(dir.path());

    // The service's own database and roles, as a deployment makes them (and again: idempotent).
    let admin = admin_url();
    let server = admin.rsplit_once('/').expect("a database in the URL").0;
    let server = server.split_once("://").map(|(_, rest)| rest).unwrap_or(server);
    let host = server.rsplit('@').next().unwrap_or(server);
    let database_url = format!("postgres://bangfu_identity:replica-test-password@{host}/bangfu_identity");
    let owner_url = format!("postgres://bangfu_identity_owner:replica-owner-password@{host}/bangfu_identity");
    {
        use sqlx::Connection;
        let mut connection = sqlx::PgConnection::connect(&admin).await.expect("admin connection");
        // An earlier run's database and roles, so that this one starts from nothing.
        // One statement at a time: DROP DATABASE may not share a transaction.
        for statement in [
            "DROP DATABASE IF EXISTS bangfu_identity WITH (FORCE)",
            "DROP ROLE IF EXISTS bangfu_identity",
            "DROP ROLE IF EXISTS bangfu_identity_owner",
        ] {
            sqlx::raw_sql(statement)
                .execute(&mut connection)
                .await
                .expect("drop an earlier run's database and roles");
        }
        // Made by hand under the superuser, as an operator might have: db init must hand it to
        // the owner role, or migrate would fail without rights on its schema.
        sqlx::raw_sql("CREATE DATABASE bangfu_identity")
            .execute(&mut connection)
            .await
            .expect("a database owned by another role");
    }
    let passwords = dir.path().join("passwords");
    std::fs::create_dir(&passwords).expect("dir");
    std::fs::write(passwords.join("identity"), "replica-test-password\n").expect("password");
    std::fs::write(passwords.join("identity-owner"), "replica-owner-password\n").expect("password");
    // The superuser's password from a file, as Compose's db-init gives it (the test server
    // trusts local connections, so this checks that the file is read and used, not refused).
    let admin_password = dir.path().join("postgres-password");
    std::fs::write(&admin_password, "any p@ss/w%rd:\n").expect("password");
    let init_env = [
        ("BANGFU_ADMIN_DATABASE_URL", admin.as_str()),
        ("BANGFU_ADMIN_PASSWORD_FILE", admin_password.to_str().expect("path")),
        ("BANGFU_DB_PASSWORDS_DIR", passwords.to_str().expect("path")),
    ];
    let first = bangfu(&["db", "init", "--services", "identity"], &init_env);
    let said = String::from_utf8_lossy(&first.stdout);
    assert!(
        said.contains("database bangfu_identity kept (its owner was postgres; now bangfu_identity_owner)"),
        "{said}"
    );

    // The layout before the owner role: bangfu_identity owns the database, its schema and
    // every table (it ran the migrations). db init moves all of it to the owner role.
    {
        use sqlx::Connection;
        let mut connection = sqlx::PgConnection::connect(&admin).await.expect("admin connection");
        sqlx::raw_sql("ALTER DATABASE bangfu_identity OWNER TO bangfu_identity")
            .execute(&mut connection)
            .await
            .expect("the earlier owner");
        let inside = format!("{}/bangfu_identity", admin.rsplit_once('/').expect("a database").0);
        let mut connection = sqlx::PgConnection::connect(&inside).await.expect("admin connection");
        sqlx::raw_sql(
            "ALTER SCHEMA public OWNER TO bangfu_identity; \
             ALTER DEFAULT PRIVILEGES FOR ROLE bangfu_identity_owner IN SCHEMA public \
                 REVOKE ALL ON TABLES FROM bangfu_identity",
        )
        .execute(&mut connection)
        .await
        .expect("the earlier schema owner");
    }
    assert!(migrate_identity(&database_url).contains("identity: schema at version"));
    let moved = bangfu(&["db", "init", "--services", "identity"], &init_env);
    let said = String::from_utf8_lossy(&moved.stdout);
    assert!(
        said.contains("its owner was bangfu_identity; now bangfu_identity_owner")
            && said.contains("now belong to bangfu_identity_owner; bangfu_identity keeps data rights only"),
        "{said}"
    );
    let again = bangfu(&["db", "init", "--services", "identity"], &init_env);
    let said = String::from_utf8_lossy(&again.stdout);
    assert!(
        said.contains("database bangfu_identity kept") && !said.contains("owner was") && !said.contains("belong"),
        "{said}"
    );
    // The migration step the chart's hook runs, as the database's owner; then the replicas,
    // as the runtime role.
    assert!(migrate_identity(&owner_url).contains("identity: schema at version"));
    {
        use sqlx::Connection;
        let mut runtime = sqlx::PgConnection::connect(&database_url)
            .await
            .expect("runtime connection");
        let owned: i64 = sqlx::query_scalar(
            "SELECT count(*) FROM pg_class WHERE relowner = current_user::regrole \
             AND relnamespace = 'public'::regnamespace",
        )
        .fetch_one(&mut runtime)
        .await
        .expect("owned");
        assert_eq!(owned, 0, "the runtime role owns no table");
        let refused = sqlx::raw_sql("CREATE TABLE intruder (x int)")
            .execute(&mut runtime)
            .await
            .expect_err("the runtime role may not create a table");
        assert!(
            refused.to_string().contains("permission denied for schema public"),
            "{refused}"
        );
        let refused = sqlx::raw_sql("ALTER TABLE persons ADD COLUMN intruder int")
            .execute(&mut runtime)
            .await
            .expect_err("the runtime role may not change a table");
        assert!(refused.to_string().contains("must be owner"), "{refused}");
        // A temporary table stays possible (TEMPORARY on the database).
        sqlx::raw_sql("CREATE TEMP TABLE scratch (x int)")
            .execute(&mut runtime)
            .await
            .expect("a temporary table");
    }
    // A bulk import's statistics refresh, as the runtime role: ANALYZE is the owner's, so it
    // analyzes what it may (nothing before PostgreSQL 17) and leaves the rest to autovacuum,
    // without an error.
    {
        let db = bangfu_platform::db::Database::connect(&database_url, Default::default())
            .await
            .expect("runtime pool");
        let data_keys = bangfu_platform::pii::DataKeyFile::load(&keys.join("data-keys.json")).expect("data keys");
        let store = bangfu_identity::store::Store::new(db, std::sync::Arc::new(data_keys));
        let analyzed = store.analyze_after_import().await.expect("analyze as the runtime role");
        let version: i32 = {
            use sqlx::Connection;
            let mut connection = sqlx::PgConnection::connect(&admin).await.expect("admin connection");
            sqlx::query_scalar("SELECT current_setting('server_version_num')::int")
                .fetch_one(&mut connection)
                .await
                .expect("version")
        };
        // Before PostgreSQL 17 the runtime role may analyze nothing; from 17 (MAINTAIN) it may,
        // but a fresh database's tables are all empty, and an empty table is left alone.
        assert!(analyzed.is_empty(), "PostgreSQL {version}: {analyzed:?}");
    }

    // Both start at once on the migrated schema.
    let mut one = Replica::start(&keys, &database_url, None);
    let mut two = Replica::start(&keys, &database_url, Some(&one.addr));
    one.wait_serving();
    two.wait_serving();

    let clerk = operator_token(&keys, "hr", "clerk");
    let reviewer = operator_token(&keys, "agri", "reviewer");
    let watcher = operator_token(&keys, "hr", "admin");

    // The second replica calls the first by the address it was given, signing as identity
    // with its deployment key, for the administrator.
    let peers = bangfu(
        &["check-peers", "--addr", &two.addr, "--token", &watcher, "--json"],
        &[],
    );
    assert!(
        peers.status.success(),
        "{}{}",
        String::from_utf8_lossy(&peers.stdout),
        String::from_utf8_lossy(&peers.stderr)
    );
    let checks: serde_json::Value = serde_json::from_slice(&peers.stdout).expect("json");
    assert_eq!(checks[0]["address"], one.addr.as_str());
    assert_eq!(checks[0]["seenSubject"], "hr-admin");
    assert_eq!(checks[0]["seenActingService"], "identity");

    // Writes through both at once: creations on each, certifications on the second.
    let write = |addr: String, range: std::ops::Range<u32>, clerk: String| async move {
        let mut identity = client(&addr).await;
        let mut names = Vec::new();
        for n in range {
            let created = identity
                .create_person(authorized(create_request(n, &format!("create-{n}")), &clerk))
                .await
                .expect("created")
                .into_inner()
                .person
                .expect("person");
            names.push(created.name);
        }
        names
    };
    let (first_half, second_half) = tokio::join!(
        write(one.addr.clone(), 0..30, clerk.clone()),
        write(two.addr.clone(), 30..60, clerk.clone())
    );
    let mut names: Vec<String> = first_half.into_iter().chain(second_half).collect();
    let mut certifier = client(&two.addr).await;
    for name in names.iter().take(10) {
        certifier
            .certify_category(authorized(
                pb::CertifyCategoryRequest {
                    person: name.clone(),
                    certification: Some(common::CategoryCertification {
                        category: common::PersonCategory::PovertyAlleviated as i32,
                        certifying_body: "枣庄市乡村振兴局".into(),
                        document_reference: "枣振发〔2021〕1号".into(),
                        valid_from: Some(common::Date {
                            year: 2021,
                            month: 1,
                            day: 1,
                        }),
                        ..Default::default()
                    }),
                    request_id: format!("certify-{name}").replace('/', "-"),
                },
                &reviewer,
            ))
            .await
            .expect("certified");
    }

    // Creations keep going to the second replica while it is told to stop; a call it refuses
    // while draining is retried on the first with the same request id.
    let draining = {
        let (addr_two, addr_one, clerk) = (two.addr.clone(), one.addr.clone(), clerk.clone());
        tokio::spawn(async move {
            let mut on_two = client(&addr_two).await;
            let mut on_one = client(&addr_one).await;
            let mut names = Vec::new();
            let mut retried = 0;
            for n in 60..140 {
                let request_id = format!("create-{n}");
                let name = match on_two
                    .create_person(authorized(create_request(n, &request_id), &clerk))
                    .await
                {
                    Ok(response) => response.into_inner().person.expect("person").name,
                    Err(_) => {
                        retried += 1;
                        on_one
                            .create_person(authorized(create_request(n, &request_id), &clerk))
                            .await
                            .expect("the other replica takes the write")
                            .into_inner()
                            .person
                            .expect("person")
                            .name
                    }
                };
                names.push(name);
            }
            (names, retried)
        })
    };
    tokio::time::sleep(Duration::from_millis(150)).await;
    two.terminate();
    let (more, retried) = draining.await.expect("writer");
    assert!(two.wait().success(), "the draining replica exits cleanly");
    names.extend(more);
    eprintln!("{retried} creations were retried on the first replica after the second stopped");

    // Every accepted write is there, once, and the surviving replica answers every read.
    let unique: HashSet<&String> = names.iter().collect();
    assert_eq!(unique.len(), 140, "one person per creation, retries included");
    let mut reader = client(&one.addr).await;
    for name in &names {
        reader
            .get_person(authorized(
                pb::GetPersonRequest {
                    name: name.clone(),
                    ..Default::default()
                },
                &clerk,
            ))
            .await
            .unwrap_or_else(|status| panic!("{name} readable after the drain: {status}"));
    }

    // The feed: 140 creations and 10 certifications, once each, in one order.
    let expected = 150;
    let through_one = feed(&one.addr, &watcher, expected).await;
    let cursors: HashSet<&String> = through_one.iter().map(|(cursor, ..)| cursor).collect();
    assert_eq!(cursors.len(), expected, "no event twice");
    let created: HashSet<&String> = through_one
        .iter()
        .filter(|(_, _, kind)| *kind == pb::ChangeKind::Created as i32)
        .map(|(_, person, _)| person)
        .collect();
    assert_eq!(created, unique, "every creation is in the feed");

    // A replica started after the others reads the same feed in the same order.
    let mut three = Replica::start(&keys, &database_url, None);
    three.wait_serving();
    assert_eq!(feed(&three.addr, &watcher, expected).await, through_one);

    let db = bangfu_platform::db::Database::connect(&database_url, Default::default())
        .await
        .expect("database");
    let stored: i64 = sqlx::query_scalar("SELECT count(*) FROM persons")
        .fetch_one(db.pool())
        .await
        .expect("count");
    assert_eq!(stored, 140, "no creation stored twice, retries included");

    // The replicas' periodic sealers chain the audit rows (every 10 s), one at a time.
    let deadline = Instant::now() + Duration::from_secs(30);
    let verified = loop {
        let verified = bangfu_platform::audit::verify(&db).await.expect("verify");
        if verified.checked >= 150 || Instant::now() > deadline {
            break verified;
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    };
    assert_eq!(verified.first_broken, None, "the audit chain verifies");
    assert!(
        verified.checked >= 150,
        "every write was audited and sealed: {verified:?}"
    );
}
