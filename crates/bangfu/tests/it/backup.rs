//! `bangfu backup`, `backup verify` and `restore` as the README's drill runs them: a
//! consistent copy of the SQLite databases and the keys with a manifest of checksums, checked
//! before it is trusted, restored into a data folder `bangfu up` then serves — and refused when
//! a byte changed, when the keys beside the databases are another deployment's, or when the
//! target folder is not empty.

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

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
    // Each service's own database (identity, subsidy payment, posts, work relief, job matching,
    // the exchange, reports) and the sample one.
    assert!(stdout.contains("8 database(s)"), "{stdout}");
    assert!(
        stdout.contains("losing the keys") || stdout.contains("Losing the keys"),
        "{stdout}"
    );
    source.close().await;

    let copy = only_backup(&backups);
    let folder = copy.file_name().and_then(|n| n.to_str()).expect("name");
    assert!(folder.starts_with("bangfu-") && folder.ends_with("UTC"), "{folder}");
    for (path, mode) in [
        (copy.clone(), 0o700),
        (copy.join("keys"), 0o700),
        (copy.join("sample.db"), 0o600),
        (copy.join("identity.db"), 0o600),
        (copy.join("MANIFEST.sha256"), 0o600),
    ] {
        let actual = std::fs::metadata(&path).expect("meta").permissions().mode() & 0o777;
        assert_eq!(actual, mode, "{}", path.display());
    }
    let manifest = std::fs::read_to_string(copy.join("MANIFEST.sha256")).expect("manifest");
    for listed in [
        "  identity.db\n",
        "  sample.db\n",
        "  keys/data-keys.json\n",
        "  keys/trust.json\n",
    ] {
        assert!(manifest.contains(listed), "{listed:?} in {manifest}");
    }
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

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

fn run(args: &[&str]) -> Output {
    Command::new(BANGFU).args(args).output().expect("run bangfu")
}

fn path(path: &Path) -> &str {
    path.to_str().expect("utf-8 path")
}

/// The one backup folder `bangfu backup --to DIR` made in `dir`.
fn only_backup(dir: &Path) -> PathBuf {
    let mut folders: Vec<PathBuf> = std::fs::read_dir(dir)
        .expect("backups")
        .map(|entry| entry.expect("entry").path())
        .collect();
    assert_eq!(folders.len(), 1, "{folders:?}");
    folders.remove(0)
}

/// `bangfu up` on `data` with one person registered, backed up into `backups` while it runs.
fn backed_up_suite(data: &Path, backups: &Path) -> PathBuf {
    let up = super::up::Up::start(data);
    let token = data.join("admin.jwt");
    let created = run(&[
        "identity",
        "create",
        "--addr",
        &up.addr,
        "--token-file",
        path(&token),
        "--name",
        "王秀英",
        "--citizen-id",
        CITIZEN_ID,
        "--region",
        "370402001013",
    ]);
    assert!(created.status.success(), "{}", text(&created.stderr));
    let out = run(&["backup", "--to", path(backups), "--data", path(data)]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    drop(up);
    only_backup(backups)
}

const CITIZEN_ID: &str = "11010519491231002X";

fn verify(backup: &Path) -> Output {
    run(&["backup", "verify", path(backup)])
}

#[test]
fn a_backup_with_one_changed_byte_fails_verify_naming_the_file() {
    let dir = tempfile::tempdir().expect("tmp");
    let backup = backed_up_suite(&dir.path().join("data"), &dir.path().join("backups"));
    let ok = verify(&backup);
    assert!(ok.status.success(), "{}", text(&ok.stderr));
    assert!(
        text(&ok.stdout).contains("identity.db: made with encryption key dk-"),
        "{}",
        text(&ok.stdout)
    );
    // Verifying reads the databases without changing them: a second run agrees.
    assert!(verify(&backup).status.success());

    let database = backup.join("identity.db");
    let mut bytes = std::fs::read(&database).expect("read");
    let middle = bytes.len() / 2;
    bytes[middle] ^= 0x01;
    std::fs::write(&database, &bytes).expect("write");
    let out = verify(&backup);
    assert_eq!(out.status.code(), Some(1));
    let stderr = text(&out.stderr);
    assert!(stderr.contains("identity.db") && stderr.contains("SHA-256"), "{stderr}");

    let restore = run(&[
        "restore",
        "--from",
        path(&backup),
        "--data",
        path(&dir.path().join("restored")),
    ]);
    assert_eq!(restore.status.code(), Some(1), "a damaged backup is not restored");
    assert!(!dir.path().join("restored/identity.db").exists());
}

#[test]
fn restore_into_a_folder_that_is_not_empty_is_refused_without_force() {
    let dir = tempfile::tempdir().expect("tmp");
    let backup = backed_up_suite(&dir.path().join("data"), &dir.path().join("backups"));
    let target = dir.path().join("target");
    std::fs::create_dir(&target).expect("dir");
    std::fs::write(target.join("notes.txt"), b"someone's file").expect("file");

    let refused = run(&["restore", "--from", path(&backup), "--data", path(&target)]);
    assert_eq!(refused.status.code(), Some(2));
    let stderr = text(&refused.stderr);
    assert!(stderr.contains("not empty") && stderr.contains("--force"), "{stderr}");
    assert!(!target.join("identity.db").exists());

    let forced = run(&["restore", "--from", path(&backup), "--data", path(&target), "--force"]);
    assert!(forced.status.success(), "{}", text(&forced.stderr));
    assert!(target.join("identity.db").exists());
    assert!(
        target.join("notes.txt").exists(),
        "--force replaces what the backup holds, nothing else"
    );
}

#[test]
fn a_restored_backup_serves_its_persons_with_its_keys_and_refuses_another_deployments() {
    let dir = tempfile::tempdir().expect("tmp");
    let backup = backed_up_suite(&dir.path().join("data"), &dir.path().join("backups"));
    // Another deployment's keys folder.
    let elsewhere = dir.path().join("elsewhere");
    super::up::Up::start(&elsewhere).terminate();
    let (our_id, _) = super::up::data_key_id_and_material(&dir.path().join("data"));
    let (their_id, _) = super::up::data_key_id_and_material(&elsewhere);

    // The backup's keys swapped for theirs, the manifest made to agree: verify still refuses,
    // because the database's key check value does not match.
    let swapped = dir.path().join("swapped");
    let copied = run(&["restore", "--from", path(&backup), "--data", path(&swapped)]);
    assert!(copied.status.success(), "{}", text(&copied.stderr));
    let out = run(&[
        "backup",
        "--to",
        path(&dir.path().join("swapped-backups")),
        "--data",
        path(&swapped),
    ]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let swapped_backup = only_backup(&dir.path().join("swapped-backups"));
    std::fs::copy(
        elsewhere.join("keys/data-keys.json"),
        swapped_backup.join("keys/data-keys.json"),
    )
    .expect("swap");
    let sums = Command::new("sha256sum")
        .current_dir(&swapped_backup)
        .args(["identity.db", "keys/data-keys.json"])
        .output()
        .expect("sha256sum");
    let manifest = std::fs::read_to_string(swapped_backup.join("MANIFEST.sha256")).expect("manifest");
    let mut lines: Vec<String> = manifest
        .lines()
        .filter(|line| !line.ends_with("  identity.db") && !line.ends_with("  keys/data-keys.json"))
        .map(str::to_string)
        .collect();
    lines.extend(text(&sums.stdout).lines().map(str::to_string));
    std::fs::write(swapped_backup.join("MANIFEST.sha256"), lines.join("\n") + "\n").expect("manifest");
    let out = verify(&swapped_backup);
    assert_eq!(out.status.code(), Some(1));
    let stderr = text(&out.stderr);
    // Identity's, subsidy's and the exchange's databases are bound to the keys; verify names
    // one of them.
    assert!(
        stderr.contains("identity.db") || stderr.contains("subsidy.db") || stderr.contains("exchange.db"),
        "{stderr}"
    );
    assert!(stderr.contains(&our_id) && stderr.contains(&their_id), "{stderr}");

    // Restored beside the wrong keys folder: the server refuses to start, naming the key ids.
    let restored = dir.path().join("restored");
    let out = run(&["restore", "--from", path(&backup), "--data", path(&restored)]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let keys = restored.join("keys/data-keys.json");
    std::fs::copy(elsewhere.join("keys/data-keys.json"), &keys).expect("wrong keys");
    super::up::assert_refused_naming_the_keys(&restored, &our_id, &their_id);

    // With the backup's own keys, the restored person is found.
    std::fs::copy(backup.join("keys/data-keys.json"), &keys).expect("right keys");
    let up = super::up::Up::start(&restored);
    let token = restored.join("admin.jwt");
    let found = run(&[
        "identity",
        "find",
        "--addr",
        &up.addr,
        "--token-file",
        path(&token),
        "--json",
        CITIZEN_ID,
        "--name",
        "王秀英",
    ]);
    assert!(found.status.success(), "{}", text(&found.stderr));
    let found: serde_json::Value = serde_json::from_slice(&found.stdout).expect("json");
    assert_eq!(found["nameMatch"], "NAME_MATCH_MATCHED", "{found}");
    assert!(
        found["person"].as_str().is_some_and(|p| p.starts_with("persons/")),
        "{found}"
    );
}
