//! The audit log on both databases: rows chain in commit order, a row changed or removed
//! behind the service's back is found, sealed rows cannot be changed through SQL, and
//! retention keeps the chain verifiable.

use bangfu_platform::audit::{self, AuditEntry, AuditQuery, Outcome};
use bangfu_platform::db::{Backend, Database};
use bangfu_platform::testing::{TestDatabase, seal_audit};
use time::OffsetDateTime;
use time::macros::datetime;

on_both_backends!(
    events_chain_in_commit_order_and_verify,
    verify_finds_a_row_changed_behind_its_back,
    verify_finds_a_row_removed_behind_its_back,
    sealed_events_cannot_be_changed_or_deleted_through_sql,
    a_seal_removed_with_its_event_breaks_the_chain,
    events_yet_to_seal_are_counted_until_sealed,
    a_rolled_back_change_leaves_no_audit_row,
    retention_removes_old_events_and_the_chain_still_verifies,
    retention_in_small_transactions_goes_on_where_the_last_run_ended,
    retention_stops_at_the_first_event_still_kept,
    the_retention_job_keeps_six_months_whatever_the_parameter_says,
    auditors_filter_by_subject_outcome_and_time,
    concurrent_reads_are_each_answered_after_their_own_row_is_committed,
);

fn entry(subject: &str, resource: &str, at: OffsetDateTime) -> AuditEntry {
    AuditEntry {
        time: at,
        subject: subject.into(),
        department: "hr".into(),
        acting_service: String::new(),
        method: "/bangfu.identity.v1.IdentityService/GetPerson".into(),
        resource: resource.into(),
        outcome: Outcome::Succeeded,
        reason: String::new(),
        purpose_code: String::new(),
        purpose_reference: String::new(),
        trace_id: String::new(),
        region: "370402001013".into(),
    }
}

/// Events on persons/0, persons/1, … at `times`, sealed.
async fn append_sealed_at(db: &Database, times: &[OffsetDateTime]) {
    for (i, at) in times.iter().enumerate() {
        audit::append_now(db, &entry("clerk-li", &format!("persons/{i}"), *at))
            .await
            .expect("append");
    }
    seal_audit(db, times.len() as i64).await;
}

async fn append_three(db: &Database) {
    for (i, subject) in ["clerk-li", "clerk-wang", "reviewer-zhao"].iter().enumerate() {
        let at = datetime!(2026-03-01 08:00 UTC) + time::Duration::minutes(i as i64);
        audit::append_now(db, &entry(subject, &format!("persons/{i}"), at))
            .await
            .expect("append");
    }
    seal_audit(db, 3).await;
}

/// The first ten sealed events matching `query`, in chain order.
async fn first_ten(db: &Database, query: AuditQuery) -> Vec<audit::SealedEvent> {
    audit::list(db, &AuditQuery { limit: 10, ..query }).await.expect("list")
}

/// The resources of the events still kept, in chain order.
async fn kept_resources(db: &Database) -> Vec<String> {
    sqlx::query_scalar(
        "SELECT e.resource FROM audit_events e JOIN audit_seals s ON s.event_id = e.id ORDER BY s.sequence",
    )
    .fetch_all(db.pool())
    .await
    .expect("kept")
}

async fn seal_count(db: &Database) -> i64 {
    sqlx::query_scalar("SELECT COUNT(*) FROM audit_seals")
        .fetch_one(db.pool())
        .await
        .expect("count")
}

/// Drops the guard that blocks changes, as someone with direct database access could.
async fn drop_guard(db: &Database) {
    let statements: &[&'static str] = match db.backend() {
        Backend::Sqlite => &[
            "DROP TRIGGER audit_events_no_update",
            "DROP TRIGGER audit_events_no_delete",
            "DROP TRIGGER audit_seals_no_update",
            "DROP TRIGGER audit_seals_no_delete",
        ],
        Backend::Postgres => &[
            "DROP TRIGGER audit_events_guard ON audit_events",
            "DROP TRIGGER audit_seals_guard ON audit_seals",
        ],
    };
    for statement in statements {
        sqlx::query(*statement).execute(db.pool()).await.expect("drop guard");
    }
}

async fn events_chain_in_commit_order_and_verify(test: TestDatabase) {
    append_three(&test.db).await;
    let events = first_ten(&test.db, AuditQuery::default()).await;
    let subjects: Vec<&str> = events.iter().map(|e| e.entry.subject.as_str()).collect();
    assert_eq!(subjects, ["clerk-li", "clerk-wang", "reviewer-zhao"]);
    assert_eq!(events.iter().map(|e| e.sequence).collect::<Vec<_>>(), [1, 2, 3]);
    assert_eq!(events[0].prev_hash, audit::GENESIS);
    assert_eq!(events[1].prev_hash, events[0].hash);
    let verification = audit::verify(&test.db).await.expect("verify");
    assert_eq!(verification.checked, 3);
    assert_eq!(verification.first_broken, None);
}

async fn verify_finds_a_row_changed_behind_its_back(test: TestDatabase) {
    append_three(&test.db).await;
    drop_guard(&test.db).await;
    sqlx::query("UPDATE audit_events SET subject = 'someone-else' WHERE id = (SELECT event_id FROM audit_seals WHERE sequence = 2)")
        .execute(test.db.pool())
        .await
        .expect("tamper");
    let verification = audit::verify(&test.db).await.expect("verify");
    assert_eq!(verification.first_broken, Some(2));
}

async fn verify_finds_a_row_removed_behind_its_back(test: TestDatabase) {
    append_three(&test.db).await;
    drop_guard(&test.db).await;
    sqlx::query("DELETE FROM audit_events WHERE id = (SELECT event_id FROM audit_seals WHERE sequence = 2)")
        .execute(test.db.pool())
        .await
        .expect("tamper");
    // The seal outlives its event and names it.
    assert_eq!(audit::verify(&test.db).await.expect("verify").first_broken, Some(2));

    // Removing the newest row is found too: the chain's head points past the last row.
    let test2 = test;
    sqlx::query("DELETE FROM audit_events WHERE id = (SELECT event_id FROM audit_seals WHERE sequence = 3)")
        .execute(test2.db.pool())
        .await
        .expect("tamper");
    assert!(audit::verify(&test2.db).await.expect("verify").first_broken.is_some());
}

async fn sealed_events_cannot_be_changed_or_deleted_through_sql(test: TestDatabase) {
    append_three(&test.db).await;
    let update = sqlx::query("UPDATE audit_events SET subject = 'someone-else' WHERE id = (SELECT event_id FROM audit_seals WHERE sequence = 2)")
        .execute(test.db.pool())
        .await;
    assert!(update.is_err(), "a sealed row was changed");
    let delete =
        sqlx::query("DELETE FROM audit_events WHERE id = (SELECT event_id FROM audit_seals WHERE sequence = 1)")
            .execute(test.db.pool())
            .await;
    assert!(delete.is_err(), "a row inside the retention period was deleted");
    let reseal = sqlx::query("UPDATE audit_seals SET hash = prev_hash WHERE sequence = 2")
        .execute(test.db.pool())
        .await;
    assert!(reseal.is_err(), "a seal was changed");
    let unseal = sqlx::query("DELETE FROM audit_seals WHERE sequence = 3")
        .execute(test.db.pool())
        .await;
    assert!(unseal.is_err(), "a seal was removed while its event is kept");
    assert_eq!(audit::verify(&test.db).await.expect("verify").first_broken, None);
}

async fn a_seal_removed_with_its_event_breaks_the_chain(test: TestDatabase) {
    append_three(&test.db).await;
    drop_guard(&test.db).await;
    for statement in [
        "DELETE FROM audit_events WHERE id = (SELECT event_id FROM audit_seals WHERE sequence = 2)",
        "DELETE FROM audit_seals WHERE sequence = 2",
    ] {
        sqlx::query(statement).execute(test.db.pool()).await.expect("tamper");
    }
    assert_eq!(audit::verify(&test.db).await.expect("verify").first_broken, Some(3));
}

async fn events_yet_to_seal_are_counted_until_sealed(test: TestDatabase) {
    append_three(&test.db).await;
    assert_eq!(audit::unsealed(&test.db).await.expect("count").0, 0);
    let at = datetime!(2026-03-02 08:00 UTC);
    audit::append_now(&test.db, &entry("clerk-li", "persons/9", at))
        .await
        .expect("append");
    assert_eq!(audit::unsealed(&test.db).await.expect("count"), (1, Some(at)));
    let delete = sqlx::query("DELETE FROM audit_events WHERE resource = 'persons/9'")
        .execute(test.db.pool())
        .await;
    assert!(delete.is_err(), "an event not yet sealed was deleted");
    seal_audit(&test.db, 4).await;
    assert_eq!(audit::unsealed(&test.db).await.expect("count").0, 0);
    assert_eq!(audit::verify(&test.db).await.expect("verify").checked, 4);
}

async fn a_rolled_back_change_leaves_no_audit_row(test: TestDatabase) {
    let mut tx = test.db.begin().await.expect("begin");
    audit::append(
        &mut tx,
        &entry("clerk-li", "persons/1", datetime!(2026-03-01 08:00 UTC)),
    )
    .await
    .expect("append");
    tx.rollback().await.expect("rollback");
    audit::seal(&test.db).await.expect("seal");
    let events = first_ten(&test.db, AuditQuery::default()).await;
    assert!(events.is_empty());
}

async fn retention_removes_old_events_and_the_chain_still_verifies(test: TestDatabase) {
    append_sealed_at(
        &test.db,
        &[
            datetime!(2025-01-01 00:00 UTC),
            datetime!(2025-02-01 00:00 UTC),
            datetime!(2026-03-01 00:00 UTC),
        ],
    )
    .await;
    let deleted = audit::apply_retention(&test.db, datetime!(2025-09-01 00:00 UTC))
        .await
        .expect("retention");
    assert_eq!(deleted, 2);
    assert_eq!(seal_count(&test.db).await, 1, "the removed events' seals go with them");
    let verification = audit::verify(&test.db).await.expect("verify");
    assert_eq!(verification.checked, 1);
    assert_eq!(verification.first_broken, None);
}

async fn retention_in_small_transactions_goes_on_where_the_last_run_ended(test: TestDatabase) {
    append_sealed_at(
        &test.db,
        &[
            datetime!(2025-01-01 00:00 UTC),
            datetime!(2025-02-01 00:00 UTC),
            datetime!(2025-03-01 00:00 UTC),
            datetime!(2025-04-01 00:00 UTC),
            datetime!(2025-05-01 00:00 UTC),
            datetime!(2026-03-01 00:00 UTC),
        ],
    )
    .await;
    // One seal per transaction: the first run removes January and February.
    let deleted = audit::apply_retention_in_batches(&test.db, datetime!(2025-02-15 00:00 UTC), 1)
        .await
        .expect("retention");
    assert_eq!(deleted, 2);
    assert_eq!(
        kept_resources(&test.db).await,
        ["persons/2", "persons/3", "persons/4", "persons/5"]
    );
    assert_eq!(audit::verify(&test.db).await.expect("verify").first_broken, None);
    // The next starts from the oldest kept seal, two at a time over three seals.
    let deleted = audit::apply_retention_in_batches(&test.db, datetime!(2025-09-01 00:00 UTC), 2)
        .await
        .expect("retention");
    assert_eq!(deleted, 3);
    assert_eq!(kept_resources(&test.db).await, ["persons/5"]);
    assert_eq!(seal_count(&test.db).await, 1, "the removed events' seals go with them");
    let verification = audit::verify(&test.db).await.expect("verify");
    assert_eq!((verification.checked, verification.first_broken), (1, None));
}

/// Near the cut-off a kept event can be sealed before an older one (its time is taken before
/// its transaction commits): the older one waits for the next run, so no gap breaks the chain.
async fn retention_stops_at_the_first_event_still_kept(test: TestDatabase) {
    append_sealed_at(
        &test.db,
        &[
            datetime!(2025-01-01 00:00 UTC),
            datetime!(2026-03-01 00:00 UTC),
            datetime!(2025-02-01 00:00 UTC),
        ],
    )
    .await;
    let deleted = audit::apply_retention(&test.db, datetime!(2025-09-01 00:00 UTC))
        .await
        .expect("retention");
    assert_eq!(deleted, 1);
    let verification = audit::verify(&test.db).await.expect("verify");
    assert_eq!((verification.checked, verification.first_broken), (2, None));
}

async fn the_retention_job_keeps_six_months_whatever_the_parameter_says(test: TestDatabase) {
    append_sealed_at(
        &test.db,
        &[
            datetime!(2026-05-01 00:00 UTC),
            datetime!(2026-07-01 00:00 UTC),
            datetime!(2026-12-01 00:00 UTC),
        ],
    )
    .await;
    let (clock, _) = bangfu_platform::clock::Clock::manual(datetime!(2026-12-05 02:00 UTC));
    let job = audit::retention_job(test.db.clone(), "identity", clock);
    // The default: six months before 2026-12-05 is 2026-06-05.
    assert!(job.run_once().await.expect("runs"), "no other replica holds the lease");
    assert_eq!(kept_resources(&test.db).await, ["persons/1", "persons/2"]);
    // Three months would let July go; the rules do not.
    sqlx::query("UPDATE parameters SET value = 3 WHERE key = 'audit.retention_months'")
        .execute(test.db.pool())
        .await
        .expect("parameter");
    job.run_once().await.expect("runs");
    assert_eq!(kept_resources(&test.db).await, ["persons/1", "persons/2"]);
    assert_eq!(audit::verify(&test.db).await.expect("verify").first_broken, None);
}

async fn auditors_filter_by_subject_outcome_and_time(test: TestDatabase) {
    append_three(&test.db).await;
    let denied = entry("stranger", "", datetime!(2026-03-02 08:00 UTC)).with_outcome(Outcome::Denied, "TOKEN_EXPIRED");
    audit::append_now(&test.db, &denied).await.expect("append");
    seal_audit(&test.db, 4).await;
    let by_subject = first_ten(
        &test.db,
        AuditQuery {
            subject: Some("clerk-wang".into()),
            ..Default::default()
        },
    )
    .await;
    assert_eq!(by_subject.len(), 1);
    assert_eq!(by_subject[0].entry.resource, "persons/1");
    let refused = first_ten(
        &test.db,
        AuditQuery {
            outcome: Some(Outcome::Denied),
            ..Default::default()
        },
    )
    .await;
    assert_eq!(refused.len(), 1);
    assert_eq!(refused[0].entry.reason, "TOKEN_EXPIRED");
    let window = first_ten(
        &test.db,
        AuditQuery {
            start: Some(datetime!(2026-03-01 08:01 UTC)),
            end: Some(datetime!(2026-03-02 00:00 UTC)),
            ..Default::default()
        },
    )
    .await;
    assert_eq!(
        window.iter().map(|e| e.entry.subject.as_str()).collect::<Vec<_>>(),
        ["clerk-wang", "reviewer-zhao"]
    );
    let page = audit::list(
        &test.db,
        &AuditQuery {
            after_sequence: 2,
            limit: 1,
            ..Default::default()
        },
    )
    .await
    .expect("list");
    assert_eq!(page.iter().map(|e| e.sequence).collect::<Vec<_>>(), [3]);
}

/// Many reads audited at once share commits (the group commit), yet none returns before its
/// own row can be read from another connection, and every row is there once.
async fn concurrent_reads_are_each_answered_after_their_own_row_is_committed(test: TestDatabase) {
    const CALLS: usize = 200;
    let mut calls = tokio::task::JoinSet::new();
    for i in 0..CALLS {
        let db = test.db.clone();
        calls.spawn(async move {
            let resource = format!("persons/{i}");
            audit::append_now(&db, &entry("clerk-li", &resource, datetime!(2026-03-01 08:00 UTC)))
                .await
                .expect("append");
            let rows: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM audit_events WHERE resource = $1")
                .bind(&resource)
                .fetch_one(db.pool())
                .await
                .expect("count");
            assert_eq!(rows, 1, "{resource} answered before its row was committed");
        });
    }
    while let Some(call) = calls.join_next().await {
        call.expect("a call");
    }
    seal_audit(&test.db, CALLS as i64).await;
    let verification = audit::verify(&test.db).await.expect("verify");
    assert_eq!(verification.checked, CALLS as u64);
    assert_eq!(verification.first_broken, None);
}

/// A group whose transaction fails (one call's row PostgreSQL refuses: a NUL in its text) is
/// written call by call: the others are kept and only that call learns of the error.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failed_group_commit_writes_each_call_alone_on_postgres() {
    let test = TestDatabase::postgres(&bangfu_platform::db::Migrations::NONE).await;
    let mut calls = tokio::task::JoinSet::new();
    for i in 0..50 {
        let db = test.db.clone();
        calls.spawn(async move {
            let resource = if i == 25 {
                "persons/\0".to_string()
            } else {
                format!("persons/{i}")
            };
            let outcome = audit::append_now(&db, &entry("clerk-li", &resource, datetime!(2026-03-01 08:00 UTC))).await;
            (i, outcome.is_ok())
        });
    }
    while let Some(call) = calls.join_next().await {
        let (i, ok) = call.expect("a call");
        assert_eq!(ok, i != 25, "call {i}");
    }
    let rows: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM audit_events")
        .fetch_one(test.db.pool())
        .await
        .expect("count");
    assert_eq!(rows, 49);
}

#[tokio::test]
async fn a_late_commit_is_chained_before_later_ones_on_postgres() {
    let test = TestDatabase::postgres(&bangfu_platform::db::Migrations::NONE).await;
    let mut early = test.db.begin().await.expect("begin");
    audit::append(
        &mut early,
        &entry("early", "persons/1", datetime!(2026-03-01 08:00 UTC)),
    )
    .await
    .expect("append");
    audit::append_now(&test.db, &entry("late", "persons/2", datetime!(2026-03-01 08:01 UTC)))
        .await
        .expect("append");
    // The early transaction is still open: nothing behind it may be sealed yet.
    audit::seal(&test.db).await.expect("seal");
    let sealed: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM audit_seals")
        .fetch_one(test.db.pool())
        .await
        .expect("count");
    assert_eq!(
        sealed, 0,
        "a row was sealed while an earlier transaction was still open"
    );
    early.commit().await.expect("commit");
    seal_audit(&test.db, 2).await;
    let events = first_ten(&test.db, AuditQuery::default()).await;
    assert_eq!(
        events.iter().map(|e| e.entry.subject.as_str()).collect::<Vec<_>>(),
        ["early", "late"]
    );
    assert_eq!(audit::verify(&test.db).await.expect("verify").first_broken, None);
}

#[tokio::test]
async fn a_chain_sealed_in_place_moves_to_seals_and_goes_on_on_sqlite() {
    a_chain_sealed_in_place_moves_to_seals_and_goes_on(Backend::Sqlite).await;
}

#[tokio::test]
async fn a_chain_sealed_in_place_moves_to_seals_and_goes_on_on_postgres() {
    a_chain_sealed_in_place_moves_to_seals_and_goes_on(Backend::Postgres).await;
}

/// Events sealed the way versions before migration 7 did (sequence and hashes on the event
/// itself) keep their chain when the seals move out, and sealing goes on from the same head.
async fn a_chain_sealed_in_place_moves_to_seals_and_goes_on(backend: Backend) {
    use sqlx::SqlSafeStr;
    use sqlx::migrate::{Migration, MigrationType, Migrator};
    let test = TestDatabase::unmigrated(backend).await;
    let files = match backend {
        Backend::Sqlite => bangfu_platform::db::PLATFORM_MIGRATIONS.sqlite,
        Backend::Postgres => bangfu_platform::db::PLATFORM_MIGRATIONS.postgres,
    };
    let before: Vec<Migration> = files
        .iter()
        .filter(|file| file.version < 7)
        .map(|file| {
            Migration::new(
                file.version,
                file.description.into(),
                MigrationType::Simple,
                sqlx::AssertSqlSafe(file.sql).into_sql_str(),
                false,
            )
        })
        .collect();
    Migrator::with_migrations(before)
        .run(test.db.pool())
        .await
        .expect("migrations 1 to 6");

    let entries: Vec<AuditEntry> = (0..3)
        .map(|i| {
            let at = datetime!(2026-03-01 08:00 UTC) + time::Duration::minutes(i);
            entry("clerk-li", &format!("persons/{i}"), at)
        })
        .collect();
    // One more, written and not yet sealed when the service stopped for the upgrade.
    let waiting = entry("clerk-wang", "persons/3", datetime!(2026-03-01 09:00 UTC));
    let mut connection = test.db.acquire().await.expect("connection");
    audit::append_many(&mut connection, &entries).await.expect("append");
    audit::append(&mut connection, &waiting).await.expect("append");
    let mut prev_hash = audit::GENESIS.to_string();
    for (i, entry) in entries.iter().enumerate() {
        let sequence = i as i64 + 1;
        let hash = audit::chain_hash(&prev_hash, sequence, entry);
        sqlx::query("UPDATE audit_events SET sequence = $1, prev_hash = $2, hash = $3 WHERE resource = $4")
            .bind(sequence)
            .bind(&prev_hash)
            .bind(&hash)
            .bind(&entry.resource)
            .execute(&mut *connection)
            .await
            .expect("seal in place");
        prev_hash = hash;
    }
    sqlx::query("UPDATE audit_chain SET last_sequence = 3, last_hash = $1 WHERE singleton = 1")
        .bind(&prev_hash)
        .execute(&mut *connection)
        .await
        .expect("head");
    drop(connection);

    let report = test
        .db
        .migrate(&bangfu_platform::db::Migrations::NONE)
        .await
        .expect("migration 7");
    assert_eq!(report.applied_now, [7]);
    let verification = audit::verify(&test.db).await.expect("verify");
    assert_eq!((verification.checked, verification.first_broken), (3, None));
    assert_eq!(
        audit::unsealed(&test.db).await.expect("count").0,
        1,
        "the waiting event"
    );

    seal_audit(&test.db, 4).await;
    let events = first_ten(&test.db, AuditQuery::default()).await;
    let listed: Vec<(i64, &str)> = events.iter().map(|e| (e.sequence, e.entry.resource.as_str())).collect();
    assert_eq!(
        listed,
        [(1, "persons/0"), (2, "persons/1"), (3, "persons/2"), (4, "persons/3")]
    );
    assert_eq!(events[3].prev_hash, prev_hash, "the chain goes on from the old head");
    let verification = audit::verify(&test.db).await.expect("verify");
    assert_eq!((verification.checked, verification.first_broken), (4, None));
}
