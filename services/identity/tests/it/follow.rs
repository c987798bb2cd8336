//! The platform's feed follower on identity's person feed, as subsidy payment and posts will run
//! it: a follower in another process, SIGKILLed again and again while persons are registered,
//! still applies every event's effect exactly once, resuming each time from the cursor it
//! committed with its last effect. And a cursor the feed does not know stops it, loudly.

use std::collections::BTreeSet;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use bangfu_platform::auth::RegionScope;
use bangfu_platform::auth::keys::signing_key_path;
use bangfu_platform::auth::token::{ServiceTokens, TokenSigner};
use bangfu_platform::db::{Database, MigrationFile, Migrations, PoolSettings, sqlite_url};
use bangfu_platform::error::{ErrorReason, Problem};
use bangfu_platform::follow::{Apply, FollowSettings, Follower, FollowerState, PersonChanges};
use bangfu_platform::peers::{PeerSettings, Peers};
use bangfu_platform::server::Shutdown;
use bangfu_proto::identity::v1::PersonChange;
use sqlx::{AnyConnection, Row};

use crate::support::{Backend, Identity, SHIZHONG_VILLAGE, citizen_id, register};

/// The follower's own database: what it applied, one row per application, so applying an
/// event twice shows as two rows.
const EFFECTS: Migrations = Migrations {
    sqlite: &[MigrationFile {
        version: 100,
        description: "effects",
        sql: "CREATE TABLE effects (cursor TEXT NOT NULL, person TEXT NOT NULL, kind INTEGER NOT NULL);",
    }],
    postgres: &[MigrationFile {
        version: 100,
        description: "effects",
        sql: "CREATE TABLE effects (cursor TEXT NOT NULL, person TEXT NOT NULL, kind INTEGER NOT NULL);",
    }],
};

struct RecordEffect;

impl Apply<PersonChange> for RecordEffect {
    async fn apply(&self, tx: &mut AnyConnection, change: &PersonChange) -> Result<(), Problem> {
        sqlx::query("INSERT INTO effects (cursor, person, kind) VALUES ($1, $2, $3)")
            .bind(&change.cursor)
            .bind(&change.person)
            .bind(change.kind)
            .execute(&mut *tx)
            .await?;
        Ok(())
    }
}

/// Records every change but the one about `refused`, which it cannot apply (a rule it breaks).
struct RefuseOne {
    refused: String,
}

impl Apply<PersonChange> for RefuseOne {
    async fn apply(&self, tx: &mut AnyConnection, change: &PersonChange) -> Result<(), Problem> {
        if change.person == self.refused {
            return Err(Problem::new(
                tonic::Code::FailedPrecondition,
                ErrorReason::StateConflict,
                "this change breaks the follower's rule",
                "该变更不符合订阅方规则",
            ));
        }
        RecordEffect.apply(tx, change).await
    }
}

/// A follower of identity at `url`, as the subsidy service with its development key, writing
/// to the SQLite file `db_path`.
async fn follower(url: &str, keys_dir: &Path, db_path: &Path) -> Follower<PersonChanges, RecordEffect> {
    let db = Database::open(&sqlite_url(db_path), PoolSettings::default(), &EFFECTS)
        .await
        .expect("follower database");
    follower_on(url, keys_dir, db)
}

/// The same follower on a database the caller opened.
fn follower_on(url: &str, keys_dir: &Path, db: Database) -> Follower<PersonChanges, RecordEffect> {
    follower_applying(url, keys_dir, db, RecordEffect)
}

/// A follower of identity at `url` applying `effect`.
fn follower_applying<A: Apply<PersonChange>>(
    url: &str,
    keys_dir: &Path,
    db: Database,
    effect: A,
) -> Follower<PersonChanges, A> {
    let signer = TokenSigner::load(&signing_key_path(keys_dir, "dev-service-subsidy")).expect("subsidy key");
    let tokens = ServiceTokens::new(
        signer,
        "subsidy",
        RegionScope::Country,
        "bangfu",
        Duration::from_secs(300),
    );
    let peers = Peers::all_at(url, Some(std::sync::Arc::new(tokens)), PeerSettings::default()).expect("peers");
    let identity = peers.get("identity").expect("identity peer").clone();
    Follower::new("subsidy/identity-persons", db, PersonChanges::new(identity), effect).with_settings(FollowSettings {
        backoff: Duration::from_millis(50),
        max_backoff: Duration::from_millis(500),
        standby_poll: Duration::from_millis(100),
        batch: 50,
    })
}

const CHILD: &str = "BANGFU_TEST_FOLLOWER_CHILD";

/// The child process of the test below (it sets the variable): follows until killed.
#[tokio::test]
#[ignore = "the follower process that a_follower_killed_ten_times_applies_every_event_once runs and kills"]
async fn follower_child_process() {
    let spec = std::env::var(CHILD).expect("run by the kill test, which says what to follow");
    let mut parts = spec.split('|');
    let (url, keys, db) = (
        parts.next().expect("url"),
        parts.next().expect("keys"),
        parts.next().expect("db"),
    );
    follower(url, Path::new(keys), Path::new(db))
        .await
        .run(Shutdown::new())
        .await;
}

fn spawn_child(spec: &str) -> Child {
    Command::new(std::env::current_exe().expect("test binary"))
        .args(["follow::follower_child_process", "--exact", "--ignored", "--nocapture"])
        .env(CHILD, spec)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("follower process")
}

/// (rows, distinct cursors, persons with a CREATED effect) in the follower's database.
async fn applied(db: &Database) -> (i64, i64, BTreeSet<String>) {
    let rows: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM effects")
        .fetch_one(db.pool())
        .await
        .unwrap_or(0);
    let cursors: i64 = sqlx::query_scalar("SELECT COUNT(DISTINCT cursor) FROM effects")
        .fetch_one(db.pool())
        .await
        .unwrap_or(0);
    let persons = sqlx::query("SELECT person FROM effects WHERE kind = 1")
        .fetch_all(db.pool())
        .await
        .unwrap_or_default()
        .iter()
        .filter_map(|row| row.try_get::<String, _>("person").ok())
        .collect();
    (rows, cursors, persons)
}

#[tokio::test]
async fn a_follower_killed_ten_times_applies_every_event_once() {
    let identity = Identity::start(Backend::Sqlite).await;
    let clerk = identity.shizhong_clerk();
    let dir = tempfile::tempdir().expect("temporary folder");
    let db_path = dir.path().join("follower.db");
    let spec = format!(
        "{}|{}|{}",
        identity.server.url(),
        identity.server.keys.keys_dir().display(),
        db_path.display()
    );
    let mut child = spawn_child(&spec);
    let mut created = BTreeSet::new();
    let mut kills = 0;
    for n in 0..1_000u32 {
        let id = citizen_id("370402", &format!("19{:02}0101", 40 + n % 50), &format!("{n:03}"));
        let name = register(&identity, &clerk, &format!("跟随{n}"), &id, SHIZHONG_VILLAGE).await;
        created.insert(name);
        if n % 100 == 99 {
            child.kill().expect("SIGKILL");
            child.wait().expect("reaped");
            kills += 1;
            child = spawn_child(&spec);
        }
    }
    assert_eq!(created.len(), 1_000);
    assert_eq!(kills, 10);

    let db = Database::open(&sqlite_url(&db_path), PoolSettings::default(), &EFFECTS)
        .await
        .expect("follower database");
    let deadline = Instant::now() + Duration::from_secs(120);
    loop {
        let seen = applied(&db).await;
        if seen.2.len() >= created.len() || Instant::now() > deadline {
            break;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    child.kill().expect("SIGKILL");
    child.wait().expect("reaped");
    // Counted once the follower is gone: the three counts are separate reads, and a follower
    // still applying between them made them disagree (an event seemed applied twice).
    let (rows, cursors, persons) = applied(&db).await;
    assert_eq!(persons, created, "every registration's effect, and nothing else");
    assert_eq!(rows, cursors, "an event applied twice");
}

#[tokio::test]
async fn a_cursor_the_feed_never_issued_stops_the_follower_with_cursor_unknown() {
    let identity = Identity::start(Backend::Sqlite).await;
    let dir = tempfile::tempdir().expect("temporary folder");
    let db_path = dir.path().join("follower.db");
    let follower = follower(&identity.server.url(), &identity.server.keys.keys_dir(), &db_path).await;
    // As if the follower's database came from another deployment: a cursor at event 9000.
    let db = Database::open(&sqlite_url(&db_path), PoolSettings::default(), &EFFECTS)
        .await
        .expect("follower database");
    let foreign = bangfu_platform::outbox::Position { xid: 0, id: 9_000 }.encode();
    sqlx::query("INSERT INTO follower_cursors (follower, cursor, events_applied, updated_us) VALUES ($1, $2, 0, 0)")
        .bind("subsidy/identity-persons")
        .bind(&foreign)
        .execute(db.pool())
        .await
        .expect("cursor");
    let status = follower.status();
    tokio::time::timeout(Duration::from_secs(20), follower.run(Shutdown::new()))
        .await
        .expect("the follower stops by itself");
    let report = status.report();
    assert_eq!(report.state, FollowerState::Stopped);
    assert!(
        report
            .last_error
            .starts_with(Problem::new(tonic::Code::Ok, ErrorReason::CursorUnknown, "", "").reason_code()),
        "{}",
        report.last_error
    );
    let kept: String = sqlx::query_scalar("SELECT cursor FROM follower_cursors")
        .fetch_one(db.pool())
        .await
        .expect("cursor");
    assert_eq!(
        kept, foreign,
        "the stored cursor is left for an operator, not reset to the beginning"
    );
    let (rows, _, _) = applied(&db).await;
    assert_eq!(rows, 0);
}

/// Events waiting together are applied in one transaction. When one of them cannot be applied,
/// the follower takes them again one at a time: it applies those before it, stops at it and
/// names its cursor, and applies none after it.
#[tokio::test]
async fn an_event_that_cannot_be_applied_stops_the_follower_after_those_before_it() {
    let identity = Identity::start(Backend::Sqlite).await;
    let clerk = identity.shizhong_clerk();
    let mut names = Vec::new();
    for n in 0..6u32 {
        let id = citizen_id("370402", "19700101", &format!("{:03}", 100 + n));
        names.push(register(&identity, &clerk, &format!("批次{n}"), &id, SHIZHONG_VILLAGE).await);
    }
    let dir = tempfile::tempdir().expect("temporary folder");
    let db = Database::open(
        &sqlite_url(&dir.path().join("follower.db")),
        PoolSettings::default(),
        &EFFECTS,
    )
    .await
    .expect("follower database");
    // The six registrations are waiting when the follower starts: they come as one batch.
    let follower = follower_applying(
        &identity.server.url(),
        &identity.server.keys.keys_dir(),
        db.clone(),
        RefuseOne {
            refused: names[3].clone(),
        },
    );
    let status = follower.status();
    tokio::time::timeout(Duration::from_secs(20), follower.run(Shutdown::new()))
        .await
        .expect("the follower stops by itself");
    let report = status.report();
    assert_eq!(report.state, FollowerState::Stopped);
    assert!(
        report.last_error.contains("the event at cursor") && report.last_error.contains("breaks the follower's rule"),
        "{}",
        report.last_error
    );
    let (rows, cursors, persons) = applied(&db).await;
    assert_eq!(rows, cursors, "an event applied twice");
    assert_eq!(
        persons,
        names[..3].iter().cloned().collect::<BTreeSet<_>>(),
        "the registrations before it, and none after it"
    );
    let after: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM effects WHERE person IN ($1, $2)")
        .bind(&names[4])
        .bind(&names[5])
        .fetch_one(db.pool())
        .await
        .expect("effects");
    assert_eq!(after, 0, "nothing after the event that stopped it");
}

/// Waits up to 10 s for `done`.
async fn eventually(what: &str, mut done: impl AsyncFnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(10);
    while !done().await {
        assert!(Instant::now() < deadline, "{what} within 10 s");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test]
async fn one_replica_follows_while_another_stands_by_and_takes_over_when_it_stops_on_postgres() {
    let identity = Identity::start(Backend::Sqlite).await;
    let clerk = identity.shizhong_clerk();
    let store = bangfu_platform::testing::TestDatabase::postgres(&EFFECTS).await;
    let url = identity.server.url();
    let keys = identity.server.keys.keys_dir();
    let first = follower_on(&url, &keys, store.db.clone());
    let second = follower_on(&url, &keys, store.db.clone());
    let (first_status, second_status) = (first.status(), second.status());
    let (first_stop, second_stop) = (Shutdown::new(), Shutdown::new());
    let first_task = tokio::spawn(first.run(first_stop.clone()));
    eventually("the first replica follows", async || {
        first_status.report().state == FollowerState::Following
    })
    .await;
    let second_task = tokio::spawn(second.run(second_stop.clone()));
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(second_status.report().state, FollowerState::Standby);

    let a = register(
        &identity,
        &clerk,
        "甲",
        &citizen_id("370402", "19800101", "011"),
        SHIZHONG_VILLAGE,
    )
    .await;
    eventually("the first replica applies", async || {
        applied(&store.db).await.2.contains(&a)
    })
    .await;

    first_stop.trigger();
    first_task.await.expect("first replica stopped");
    eventually("the standby takes over", async || {
        second_status.report().state == FollowerState::Following
    })
    .await;
    let b = register(
        &identity,
        &clerk,
        "乙",
        &citizen_id("370402", "19800101", "013"),
        SHIZHONG_VILLAGE,
    )
    .await;
    eventually("the new holder applies", async || {
        applied(&store.db).await.2.contains(&b)
    })
    .await;
    second_stop.trigger();
    second_task.await.expect("second replica stopped");
    let (rows, cursors, persons) = applied(&store.db).await;
    assert_eq!(persons, BTreeSet::from([a, b]));
    assert_eq!(rows, cursors, "an event applied twice");
}
