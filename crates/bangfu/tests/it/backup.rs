//! `bangfu backup`: a consistent copy of the SQLite databases and the keys a user can restore.

use std::os::unix::fs::PermissionsExt;
use std::process::Command;

use bangfu_platform::db::{Database, Migrations, PoolSettings, sqlite_url};

const BANGFU: &str = env!("CARGO_BIN_EXE_bangfu");

#[tokio::test]
async fn a_backup_holds_every_database_and_the_keys_readable_by_the_owner_only() {
    let dir = tempfile::tempdir().expect("tmp");
    let data = dir.path().join("data");
    let mut up = super::up::Up::start(&data);
    up.terminate();
    let data_keys = data.join("keys/data-keys.json");
    assert_eq!(
        std::fs::metadata(&data_keys).expect("data keys").permissions().mode() & 0o777,
        0o600
    );

    // A service database with one parameter row, as a service would leave it.
    let source = Database::open(
        &sqlite_url(&data.join("sample.db")),
        PoolSettings::default(),
        &Migrations::NONE,
    )
    .await
    .expect("open");
    sqlx::query(
        "INSERT INTO parameters (key, region_prefix, valid_from, valid_to, value, source_document, update_subject, \
         update_time_us, revision) VALUES ('audit.retention_months', '*', '2026-01-01', NULL, 7, 'doc', 'tester', 0, 1)",
    )
    .execute(source.pool())
    .await
    .expect("row");

    let backups = dir.path().join("backups");
    let out = Command::new(BANGFU)
        .args(["backup", "--to"])
        .arg(&backups)
        .arg("--data")
        .arg(&data)
        .output()
        .expect("run backup");
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let stdout = String::from_utf8_lossy(&out.stdout);
    // The identity service's own database and the sample one.
    assert!(stdout.contains("2 database(s)"), "{stdout}");
    assert!(
        stdout.contains("losing the keys") || stdout.contains("Losing the keys"),
        "{stdout}"
    );
    source.close().await;

    let copy = std::fs::read_dir(&backups)
        .expect("backups")
        .next()
        .expect("one backup")
        .expect("entry")
        .path();
    let restored = Database::connect(&sqlite_url(&copy.join("sample.db")), PoolSettings::default())
        .await
        .expect("open copy");
    let value: i64 = sqlx::query_scalar("SELECT value FROM parameters WHERE key = 'audit.retention_months'")
        .fetch_one(restored.pool())
        .await
        .expect("row in the copy");
    assert_eq!(value, 7);
    let copied_keys = copy.join("keys/data-keys.json");
    assert_eq!(
        std::fs::read(&copied_keys).expect("copied"),
        std::fs::read(&data_keys).expect("original")
    );
    assert_eq!(
        std::fs::metadata(&copied_keys).expect("meta").permissions().mode() & 0o777,
        0o600
    );
    assert!(copy.join("keys/trust.json").exists());
    assert!(copy.join("identity.db").exists());
}

#[test]
fn a_missing_data_folder_is_named() {
    let dir = tempfile::tempdir().expect("tmp");
    let out = Command::new(BANGFU)
        .args(["backup", "--to"])
        .arg(dir.path())
        .arg("--data")
        .arg(dir.path().join("nowhere"))
        .output()
        .expect("run backup");
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("nowhere"));
}
