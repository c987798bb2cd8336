//! Opening databases on both backends, transactions, and what a caller sees when the database
//! is down at start or goes away mid-run.

use std::time::Duration;

use bangfu_platform::db::{Backend, Database, DbError, Migrations, PoolSettings};
use bangfu_platform::error::Problem;
use bangfu_platform::testing::{TcpProxy, TestDatabase};
use sqlx::Row;

on_both_backends!(a_rolled_back_transaction_leaves_nothing, migrations_are_recorded_once);

async fn count_parameters(db: &Database) -> i64 {
    sqlx::query_scalar("SELECT COUNT(*) FROM parameters")
        .fetch_one(db.pool())
        .await
        .expect("count")
}

async fn a_rolled_back_transaction_leaves_nothing(test: TestDatabase) {
    let mut tx = test.db.begin().await.expect("begin");
    sqlx::query(
        "INSERT INTO parameters (key, region_prefix, valid_from, valid_to, value, source_document, update_subject, \
         update_time_us, revision) VALUES ('k', '*', '2026-01-01', NULL, 1, 'doc', 'tester', 0, 1)",
    )
    .execute(&mut *tx)
    .await
    .expect("insert");
    tx.rollback().await.expect("rollback");
    assert_eq!(count_parameters(&test.db).await, 0);
}

/// A service migration that leaves a mark each time it runs.
const COUNTED: Migrations = Migrations {
    sqlite: &[bangfu_platform::db::MigrationFile {
        version: 100,
        description: "counted",
        sql: "CREATE TABLE IF NOT EXISTS migration_runs (n INTEGER); INSERT INTO migration_runs VALUES (1);",
    }],
    postgres: &[bangfu_platform::db::MigrationFile {
        version: 100,
        description: "counted",
        sql: "CREATE TABLE IF NOT EXISTS migration_runs (n INTEGER); INSERT INTO migration_runs VALUES (1);",
    }],
};

async fn migrations_are_recorded_once(test: TestDatabase) {
    // Opening the same database again (a restart, a second replica) runs nothing twice.
    for _ in 0..2 {
        let again = Database::open(&test.url, PoolSettings::default(), &COUNTED)
            .await
            .expect("reopen");
        again.close().await;
    }
    let runs: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM migration_runs")
        .fetch_one(test.db.pool())
        .await
        .expect("the service migration ran");
    assert_eq!(runs, 1, "the service migration ran once");
    let applied: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM _sqlx_migrations")
        .fetch_one(test.db.pool())
        .await
        .expect("migrations table");
    assert_eq!(
        applied,
        bangfu_platform::db::PLATFORM_MIGRATIONS.sqlite.len() as i64 + 1
    );
}

#[tokio::test]
async fn sqlite_runs_in_wal_mode_with_full_sync_and_foreign_keys() {
    let test = TestDatabase::sqlite(&Migrations::NONE).await;
    assert_eq!(test.db.backend(), Backend::Sqlite);
    let mut connection = test.db.pool().acquire().await.expect("connection");
    let journal: String = sqlx::query("PRAGMA journal_mode")
        .fetch_one(&mut *connection)
        .await
        .expect("journal")
        .try_get(0)
        .expect("text");
    assert_eq!(journal, "wal");
    let synchronous: i64 = sqlx::query_scalar("PRAGMA synchronous")
        .fetch_one(&mut *connection)
        .await
        .expect("sync");
    assert_eq!(synchronous, 2, "FULL");
    let foreign_keys: i64 = sqlx::query_scalar("PRAGMA foreign_keys")
        .fetch_one(&mut *connection)
        .await
        .expect("fk");
    assert_eq!(foreign_keys, 1);
}

/// Two writers that each read before they write: with a deferred `BEGIN` the second reads an
/// old snapshot and its write fails (SQLITE_BUSY_SNAPSHOT) once the first commits; with
/// `BEGIN IMMEDIATE` it waits for the first and then reads what the first wrote.
#[tokio::test]
async fn sqlite_writers_wait_for_each_other_instead_of_failing() {
    let test = TestDatabase::sqlite(&Migrations::NONE).await;
    let mut first = test.db.begin().await.expect("first writer");
    let seen_first = count_on(&mut first).await;
    insert_parameter(&mut first, "a").await.expect("insert");
    let db = test.db.clone();
    let second = tokio::spawn(async move {
        let mut tx = db.begin().await.expect("second writer waits, then begins");
        let seen = count_on(&mut tx).await;
        insert_parameter(&mut tx, "b").await?;
        tx.commit().await?;
        Ok::<i64, sqlx::Error>(seen)
    });
    tokio::time::sleep(Duration::from_millis(200)).await;
    first.commit().await.expect("commit");
    let seen_second = second
        .await
        .expect("joined")
        .expect("the second writer's write succeeds");
    assert_eq!(seen_first, 0);
    assert_eq!(seen_second, 1, "the second writer read after the first committed");
    assert_eq!(count_parameters(&test.db).await, 2);
}

async fn count_on(tx: &mut sqlx::AnyConnection) -> i64 {
    sqlx::query_scalar("SELECT COUNT(*) FROM parameters")
        .fetch_one(&mut *tx)
        .await
        .expect("count")
}

async fn insert_parameter(tx: &mut sqlx::AnyConnection, key: &str) -> Result<(), sqlx::Error> {
    sqlx::query(
        "INSERT INTO parameters (key, region_prefix, valid_from, valid_to, value, source_document, update_subject, \
         update_time_us, revision) VALUES ($1, '*', '2026-01-01', NULL, 1, 'doc', 'tester', 0, 1)",
    )
    .bind(key)
    .execute(&mut *tx)
    .await?;
    Ok(())
}

#[tokio::test]
async fn a_database_down_at_start_is_a_clear_error_not_a_panic() {
    let settings = PoolSettings {
        acquire_timeout: Duration::from_secs(2),
        ..PoolSettings::default()
    };
    let err = Database::open(
        "postgres://bangfu:secret@127.0.0.1:1/identity",
        settings,
        &Migrations::NONE,
    )
    .await
    .expect_err("nothing listens on port 1");
    assert!(err.is_unavailable(), "{err}");
    let text = err.to_string();
    assert!(text.contains("cannot open the database"), "{text}");
    assert!(!text.contains("secret"), "the password leaked: {text}");
    let err = Database::open("mysql://localhost/x", PoolSettings::default(), &Migrations::NONE)
        .await
        .expect_err("unsupported");
    assert!(matches!(err, DbError::UnsupportedUrl(_)));
}

#[tokio::test]
async fn a_database_that_goes_away_is_unavailable_and_recovers_on_postgres() {
    let test = TestDatabase::postgres(&Migrations::NONE).await;
    let target = "127.0.0.1:5432".parse().expect("address");
    let proxy = TcpProxy::start(target).await;
    let url = test.url.replacen("127.0.0.1:5432", &proxy.addr.to_string(), 1);
    assert_ne!(url, test.url, "the test database URL goes through 127.0.0.1:5432");
    let settings = PoolSettings {
        acquire_timeout: Duration::from_secs(2),
        ..PoolSettings::default()
    };
    let db = Database::open(&url, settings, &Migrations::NONE)
        .await
        .expect("open through the proxy");
    assert_eq!(count_parameters(&db).await, 0);

    proxy.cut();
    let err = sqlx::query_scalar::<_, i64>("SELECT COUNT(*) FROM parameters")
        .fetch_one(db.pool())
        .await
        .expect_err("the database is gone");
    let status = tonic::Status::from(Problem::from(err));
    assert_eq!(status.code(), tonic::Code::Unavailable);
    assert_eq!(
        bangfu_platform::error::reason_of(&status).as_deref(),
        Some("DATABASE_UNAVAILABLE")
    );

    proxy.restore();
    let mut recovered = false;
    for _ in 0..50 {
        if sqlx::query_scalar::<_, i64>("SELECT COUNT(*) FROM parameters")
            .fetch_one(db.pool())
            .await
            .is_ok()
        {
            recovered = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(recovered, "queries work again once the database is back");
    db.close().await;
}

/// Two transactions that lock the same rows in opposite orders: PostgreSQL aborts one, and the
/// client hears ABORTED (send it again), not INTERNAL.
#[tokio::test]
async fn a_deadlock_on_postgres_is_aborted_and_retryable() {
    let test = TestDatabase::postgres(&Migrations::NONE).await;
    let mut setup = test.db.begin().await.expect("setup");
    insert_parameter(&mut setup, "a").await.expect("a");
    insert_parameter(&mut setup, "b").await.expect("b");
    setup.commit().await.expect("commit");
    let touch = |key: &'static str| sqlx::query("UPDATE parameters SET value = value + 1 WHERE key = $1").bind(key);
    let mut first = test.db.begin().await.expect("first");
    let mut second = test.db.begin().await.expect("second");
    touch("a").execute(&mut *first).await.expect("first takes a");
    touch("b").execute(&mut *second).await.expect("second takes b");
    let db_second = tokio::spawn(async move {
        let result = touch("a").execute(&mut *second).await;
        (result, second)
    });
    tokio::time::sleep(Duration::from_millis(100)).await;
    let first_result = touch("b").execute(&mut *first).await;
    let (second_result, _second) = db_second.await.expect("joined");
    let failed = match (first_result, second_result) {
        (Err(error), Ok(_)) | (Ok(_), Err(error)) => error,
        other => panic!("exactly one of the two gives way: {other:?}"),
    };
    let status = tonic::Status::from(Problem::from(failed));
    assert_eq!(status.code(), tonic::Code::Aborted);
    assert_eq!(
        bangfu_platform::error::reason_of(&status).as_deref(),
        Some("STATE_CONFLICT")
    );
}
