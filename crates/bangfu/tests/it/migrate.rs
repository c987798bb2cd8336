//! Migrations as a step of their own: `bangfu migrate identity` brings the schema up to date
//! and is safe to repeat; `serve` refuses a schema older than its own and says what to run,
//! serves on a newer one (a binary one release behind), and migrates by itself only when told.

use std::process::{Command, Output};

use sqlx::Connection as _;

use crate::replicas::{Replica, bangfu, deployment_keys, empty_database, migrate_identity, serve_identity, text};
use crate::up::free_port;

const BANGFU: &str = env!("CARGO_BIN_EXE_bangfu");

/// `bangfu serve identity` until it exits (it only does so here when it refuses to start).
fn serve_refused(keys: &std::path::Path, database_url: &str) -> Output {
    serve_identity(keys, database_url)
        .env("BANGFU_LISTEN", format!("127.0.0.1:{}", free_port()))
        .output()
        .expect("run bangfu serve")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn serve_checks_the_schema_that_migrate_brings_up_to_date() {
    let dir = tempfile::tempdir().expect("tmp");
    let keys = deployment_keys(dir.path());
    let url = empty_database("bangfu_migrate_test").await;

    let refused = serve_refused(&keys, &url);
    assert_eq!(refused.status.code(), Some(3), "{}", text(&refused));
    assert!(text(&refused).contains("older than this build's"), "{}", text(&refused));
    assert!(text(&refused).contains("bangfu migrate identity"), "{}", text(&refused));

    let first = migrate_identity(&url);
    assert!(first.contains("applied 1, 2, 3"), "{first}");
    let again = migrate_identity(&url);
    assert!(again.contains("already up to date"), "{again}");
    let mut replica = Replica::start_with(&keys, &url, &[]);
    replica.wait_serving();
    drop(replica);

    // A newer release migrated the database: this binary still serves it, but does not migrate it.
    let mut db = sqlx::PgConnection::connect(&url).await.expect("connect");
    sqlx::raw_sql(
        "INSERT INTO _sqlx_migrations (version, description, success, checksum, execution_time) \
         VALUES (9999, 'from a newer release', true, '\\x00'::bytea, 0)",
    )
    .execute(&mut db)
    .await
    .expect("a newer migration");
    let older_binary = Command::new(BANGFU)
        .args(["migrate", "identity"])
        .env("DATABASE_URL", &url)
        .output()
        .expect("run bangfu migrate");
    assert_eq!(older_binary.status.code(), Some(3), "{}", text(&older_binary));
    assert!(text(&older_binary).contains("9999"), "{}", text(&older_binary));
    let mut behind = Replica::start_with(&keys, &url, &[]);
    behind.wait_serving();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn serve_migrates_by_itself_only_when_told() {
    let dir = tempfile::tempdir().expect("tmp");
    let keys = deployment_keys(dir.path());
    let url = empty_database("bangfu_migrate_on_start_test").await;
    let mut replica = Replica::start_with(&keys, &url, &[("BANGFU_MIGRATE_ON_START", "true")]);
    replica.wait_serving();
    let done = bangfu(&["migrate", "identity"], &[("DATABASE_URL", url.as_str())]);
    assert!(text(&done).contains("already up to date"), "{}", text(&done));
}
