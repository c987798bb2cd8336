//! `bangfu serve --check-config` as a deployment runs it before rolling out: it connects with
//! DATABASE_URL (a database that is not there or a server out of reach is a usage error naming
//! DATABASE_URL, its password redacted) and compares the database's data key check value with
//! BANGFU_DATA_KEYS, without writing.

use std::path::Path;
use std::process::{Command, Output};

use bangfu_platform::db::{Database, PoolSettings};
use bangfu_platform::pii::DataKeyFile;

use crate::replicas::fresh_database;
use crate::replicas::{admin_url, bangfu};
use crate::up::free_port;

const BANGFU: &str = env!("CARGO_BIN_EXE_bangfu");

/// `bangfu serve identity --check-config` with `keys` (from `keys init`) and these data keys.
fn check_config(keys: &Path, data_keys: &Path, database_url: &str) -> Output {
    Command::new(BANGFU)
        .env_clear()
        .args(["serve", "identity", "--check-config"])
        .env("DATABASE_URL", database_url)
        .env("BANGFU_KEYS_DIR", keys.join("public"))
        .env("BANGFU_SIGNING_KEY", keys.join("identity/signing.json"))
        .env("BANGFU_DATA_KEYS", data_keys)
        .env("BANGFU_LOG", "warn")
        .output()
        .expect("run bangfu serve --check-config")
}

/// `postgres://USER:s3cret-pw@HOST:PORT/DATABASE` on the test server, or on `port` of its host.
fn url_with_password(database: &str, port: Option<u16>) -> String {
    let admin = admin_url();
    let rest = admin.split_once("://").map_or(admin.as_str(), |(_, rest)| rest);
    let (user, rest) = rest.split_once('@').unwrap_or(("postgres", rest));
    let user = user.split(':').next().unwrap_or(user);
    let authority = rest.split('/').next().unwrap_or(rest);
    let authority = match port {
        Some(port) => format!(
            "{}:{port}",
            authority.rsplit_once(':').map_or(authority, |(host, _)| host)
        ),
        None => authority.to_string(),
    };
    format!("postgres://{user}:s3cret-pw@{authority}/{database}")
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

#[tokio::test]
async fn check_config_connects_and_compares_the_data_keys_on_postgres() {
    let dir = tempfile::tempdir().expect("tmp");
    let (keys, other) = (dir.path().join("keys"), dir.path().join("other"));
    for out in [&keys, &other] {
        bangfu(
            &[
                "keys",
                "init",
                "--out",
                out.to_str().expect("path"),
                "--services",
                "identity",
            ],
            &[],
        );
    }
    let (ours, theirs) = (keys.join("data-keys.json"), other.join("data-keys.json"));
    let url = fresh_database("bangfu_check_config").await;

    let fresh = check_config(&keys, &ours, &url);
    assert!(fresh.status.success(), "{}", text(&fresh.stderr));
    assert!(
        text(&fresh.stdout).contains("no key check value yet"),
        "{}",
        text(&fresh.stdout)
    );
    assert!(text(&fresh.stdout).contains("is usable"), "{}", text(&fresh.stdout));

    // The database as the service's first start leaves it: migrated, with its check value.
    let db = Database::open(&url, PoolSettings::default(), &bangfu_identity::DESCRIPTOR.migrations)
        .await
        .expect("open");
    let loaded = DataKeyFile::load(&ours).expect("our keys");
    bangfu_platform::data_key_check::ensure(&db, &loaded, 0)
        .await
        .expect("record");
    db.close().await;
    let our_id = loaded.active_encryption_key_id().to_string();
    let their_id = DataKeyFile::load(&theirs)
        .expect("their keys")
        .active_encryption_key_id()
        .to_string();

    let matched = check_config(&keys, &ours, &url);
    assert!(matched.status.success(), "{}", text(&matched.stderr));
    assert!(
        text(&matched.stdout).contains(&format!("made with encryption key {our_id}")),
        "{}",
        text(&matched.stdout)
    );

    let refused = check_config(&keys, &theirs, &url);
    assert_eq!(refused.status.code(), Some(2), "{}", text(&refused.stdout));
    let stderr = text(&refused.stderr);
    assert!(stderr.contains("refusing to serve"), "{stderr}");
    assert!(stderr.contains(&our_id) && stderr.contains(&their_id), "{stderr}");
    assert!(!text(&refused.stdout).contains("is usable"));

    // The password stays out of the message; the variable to fix is named.
    for url in [
        url_with_password("bangfu_no_such_database", None),
        url_with_password("bangfu_identity", Some(free_port())),
    ] {
        let out = check_config(&keys, &ours, &url);
        let stderr = text(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{url}: {stderr}");
        assert!(stderr.contains("DATABASE_URL"), "{stderr}");
        assert!(stderr.contains(":***@"), "{stderr}");
        assert!(!stderr.contains("s3cret-pw"), "{stderr}");
        assert!(!text(&out.stdout).contains("is usable"));
    }
}
