//! The change feed and request ids on both databases: events in commit order behind a cursor,
//! nothing lost or repeated on resume, late commits never skipped on PostgreSQL, scope-filtered
//! watches with heartbeats, and retried requests answered once.

use std::sync::Arc;
use std::time::Duration;

use bangfu_platform::audit::AuditEntry;
use bangfu_platform::db::Database;
use bangfu_platform::error::ErrorReason;
use bangfu_platform::idempotency::RequestKey;
use bangfu_platform::outbox::{self, FeedEvent, FeedItem, NewEvent, Position, WatchSettings};
use bangfu_platform::server::Shutdown;
use bangfu_platform::testing::TestDatabase;
use bangfu_platform::write::{self, Begun};
use time::macros::{date, datetime};
use tokio_stream::StreamExt;

on_both_backends!(
    events_are_read_in_commit_order_and_resume_from_a_cursor,
    a_watch_from_the_head_sees_only_new_events,
    a_watch_shows_only_events_in_scope_and_heartbeats_when_idle,
    a_rolled_back_change_leaves_no_event,
    a_retried_request_is_answered_once_and_a_reused_id_refused,
    a_watch_behind_its_feed_says_about_how_far,
);

async fn publish(db: &Database, resource: &str, regions: &[&str]) {
    let mut tx = db.begin().await.expect("begin");
    let event = NewEvent {
        kind: "person_updated",
        resource,
        regions,
        effective_date: Some(date!(2026 - 03 - 01)),
        detail: r#"{"changed":["labor_capacity"]}"#,
    };
    outbox::append(&mut tx, &event, datetime!(2026-03-01 02:00 UTC))
        .await
        .expect("append");
    tx.commit().await.expect("commit");
}

/// Reads from `after` until `expected` events arrived: on PostgreSQL a transaction open
/// anywhere in the cluster (another test's) holds the horizon back for a moment, by design.
async fn read_until(db: &Database, after: Position, expected: usize) -> Vec<FeedEvent> {
    for _ in 0..200 {
        let events = outbox::read_after(db, after, 100).await.expect("read");
        if events.len() >= expected {
            return events;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("fewer than {expected} events became readable within 10 s");
}

fn resources(events: &[FeedEvent]) -> Vec<&str> {
    events.iter().map(|e| e.resource.as_str()).collect()
}

async fn events_are_read_in_commit_order_and_resume_from_a_cursor(test: TestDatabase) {
    for name in ["persons/a", "persons/b", "persons/c"] {
        publish(&test.db, name, &["370402001001"]).await;
    }
    let all = read_until(&test.db, Position::START, 3).await;
    assert_eq!(resources(&all), ["persons/a", "persons/b", "persons/c"]);
    assert_eq!(all[0].effective_date, Some(date!(2026 - 03 - 01)));
    assert_eq!(all[0].regions, ["370402001001"]);
    // A consumer that stored the second cursor resumes with the third, and only the third.
    let cursor = all[1].position.encode();
    let resumed = outbox::read_after(&test.db, Position::decode(&cursor).expect("cursor"), 100)
        .await
        .expect("read");
    assert_eq!(resources(&resumed), ["persons/c"]);
    assert!(Position::decode("bm90IGEgY3Vyc29y").is_err());
    assert_eq!(Position::decode("").expect("empty"), Position::START);
}

async fn a_watch_from_the_head_sees_only_new_events(test: TestDatabase) {
    publish(&test.db, "persons/old", &["370402001001"]).await;
    read_until(&test.db, Position::START, 1).await;
    let head = outbox::head(&test.db).await.expect("head");
    publish(&test.db, "persons/new", &["370402001001"]).await;
    let after_head = read_until(&test.db, head, 1).await;
    assert_eq!(resources(&after_head), ["persons/new"]);
}

async fn a_watch_shows_only_events_in_scope_and_heartbeats_when_idle(test: TestDatabase) {
    publish(&test.db, "persons/in-county", &["370402001001"]).await;
    publish(&test.db, "persons/chongqing", &["500101001001"]).await;
    // A person moving out of the county: the county still sees the move.
    publish(&test.db, "persons/moved-away", &["370402001001", "370403001001"]).await;
    read_until(&test.db, Position::START, 3).await;
    let shutdown = Shutdown::new();
    let visible: Arc<dyn Fn(&FeedEvent) -> bool + Send + Sync> =
        Arc::new(|event: &FeedEvent| event.regions.iter().any(|r| r.starts_with("370402")));
    let settings = WatchSettings {
        poll: Duration::from_millis(20),
        heartbeat: Duration::from_millis(200),
        batch: 2,
    };
    let mut stream = Box::pin(
        outbox::watch(
            test.db.clone(),
            outbox::Start::After(Position::START),
            visible,
            settings,
            shutdown.clone(),
        )
        .await
        .expect("watch"),
    );
    let mut seen = Vec::new();
    let mut heartbeat = None;
    while heartbeat.is_none() {
        let item = tokio::time::timeout(Duration::from_secs(10), stream.next())
            .await
            .expect("an item in time")
            .expect("stream open")
            .expect("no error");
        match item {
            FeedItem::Event(event) => seen.push(event.resource),
            FeedItem::Heartbeat(position) => heartbeat = Some(position),
        }
    }
    assert_eq!(seen, ["persons/in-county", "persons/moved-away"]);
    // The heartbeat's cursor is past every event, the unseen one too.
    let rest = outbox::read_after(&test.db, heartbeat.expect("heartbeat"), 100)
        .await
        .expect("read");
    assert!(rest.is_empty());
    shutdown.trigger();
    let end = tokio::time::timeout(Duration::from_secs(5), async {
        while let Some(item) = stream.next().await {
            assert!(!matches!(item, Ok(FeedItem::Event(_))), "no events after the drain");
        }
    })
    .await;
    assert!(end.is_ok(), "the watch ends when the server drains");
}

async fn a_rolled_back_change_leaves_no_event(test: TestDatabase) {
    let mut tx = test.db.begin().await.expect("begin");
    let event = NewEvent {
        kind: "person_created",
        resource: "persons/never",
        regions: &["370402001001"],
        effective_date: None,
        detail: "{}",
    };
    outbox::append(&mut tx, &event, datetime!(2026-03-01 02:00 UTC))
        .await
        .expect("append");
    tx.rollback().await.expect("rollback");
    publish(&test.db, "persons/real", &["370402001001"]).await;
    assert_eq!(
        resources(&read_until(&test.db, Position::START, 1).await),
        ["persons/real"]
    );
}

fn key(subject: &str, request: &[u8]) -> RequestKey {
    RequestKey::new(
        subject,
        "/bangfu.identity.v1.IdentityService/CreatePerson",
        "req-1",
        &[request],
    )
    .expect("key")
    .expect("some")
}

async fn a_retried_request_is_answered_once_and_a_reused_id_refused(test: TestDatabase) {
    let now = datetime!(2026-03-01 02:00 UTC);
    let Begun::Fresh(unit) = write::begin(&test.db, Some(key("clerk-li", b"person A")), now)
        .await
        .expect("begin")
    else {
        panic!("a first attempt is fresh");
    };
    let entry = AuditEntry::anonymous("CreatePerson", now);
    unit.commit(AuditEntry {
        resource: "persons/p1".into(),
        ..entry
    })
    .await
    .expect("commit");
    match write::begin(&test.db, Some(key("clerk-li", b"person A")), now).await {
        Ok(Begun::Replay { resource }) => assert_eq!(resource, "persons/p1"),
        _ => panic!("the retry replays the first answer"),
    }
    let Err(refused) = write::begin(&test.db, Some(key("clerk-li", b"person B")), now).await else {
        panic!("another request under the id is refused");
    };
    assert_eq!(refused.reason, ErrorReason::RequestIdReused);
    // Another subject's identical id is theirs alone.
    assert!(matches!(
        write::begin(&test.db, Some(key("clerk-wang", b"person B")), now).await,
        Ok(Begun::Fresh(_))
    ));
    // A first attempt that fails leaves no claim behind: the retry is a first attempt again.
    let Begun::Fresh(failed) = write::begin(&test.db, Some(key("clerk-zhao", b"person C")), now)
        .await
        .expect("begin")
    else {
        panic!("fresh");
    };
    drop(failed);
    assert!(matches!(
        write::begin(&test.db, Some(key("clerk-zhao", b"person C")), now).await,
        Ok(Begun::Fresh(_))
    ));
}

/// Two first attempts with one request id on PostgreSQL: the second waits on the first's
/// claim and, when the first commits, replays its answer instead of failing on the key.
#[tokio::test]
async fn a_second_first_attempt_waits_for_the_first_and_replays_it_on_postgres() {
    let test = TestDatabase::postgres(&bangfu_platform::db::Migrations::NONE).await;
    let now = datetime!(2026-03-01 02:00 UTC);
    let Begun::Fresh(first) = write::begin(&test.db, Some(key("clerk-li", b"person A")), now)
        .await
        .expect("begin")
    else {
        panic!("fresh");
    };
    let db = test.db.clone();
    let second = tokio::spawn(async move { write::begin(&db, Some(key("clerk-li", b"person A")), now).await });
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert!(
        !second.is_finished(),
        "the second attempt waits while the first is open"
    );
    first
        .commit(AuditEntry {
            resource: "persons/p1".into(),
            ..AuditEntry::anonymous("CreatePerson", now)
        })
        .await
        .expect("commit");
    match second.await.expect("joined") {
        Ok(Begun::Replay { resource }) => assert_eq!(resource, "persons/p1"),
        Ok(Begun::Fresh(_)) => panic!("the second attempt must not write again"),
        Err(problem) => panic!("the second attempt failed: {problem}"),
    }
}

#[tokio::test]
async fn a_late_commit_is_never_skipped_on_postgres() {
    let test = TestDatabase::postgres(&bangfu_platform::db::Migrations::NONE).await;
    let mut early = test.db.begin().await.expect("begin");
    let event = NewEvent {
        kind: "person_updated",
        resource: "persons/early",
        regions: &["370402001001"],
        effective_date: None,
        detail: "{}",
    };
    outbox::append(&mut early, &event, datetime!(2026-03-01 02:00 UTC))
        .await
        .expect("append");
    publish(&test.db, "persons/late", &["370402001001"]).await;
    // The later transaction committed first; a reader must not move its cursor past the
    // earlier one while it is still open.
    let while_open = outbox::read_after(&test.db, Position::START, 100).await.expect("read");
    assert!(
        while_open.is_empty(),
        "read {:?} while an earlier transaction was open",
        resources(&while_open)
    );
    early.commit().await.expect("commit");
    let all = read_until(&test.db, Position::START, 2).await;
    assert_eq!(resources(&all), ["persons/early", "persons/late"]);
    publish(&test.db, "persons/next", &["370402001001"]).await;
    let next = read_until(&test.db, all[1].position, 1).await;
    assert_eq!(resources(&next), ["persons/next"]);
}

/// Events of transactions whose ids differ in their number of digits ("998" and "1003") come in
/// numeric order, page after page: sorted as text, the newer transaction's events came first and
/// the cursor, compared as a number, then stepped over the older one for good.
#[tokio::test]
async fn events_whose_transaction_ids_cross_a_power_of_ten_are_read_in_order_on_postgres() {
    let test = TestDatabase::postgres(&bangfu_platform::db::Migrations::NONE).await;
    let current: String = sqlx::query_scalar("SELECT pg_current_xact_id()::text")
        .fetch_one(test.db.pool())
        .await
        .expect("current transaction id");
    let current: u64 = current.parse().expect("a number");
    // The largest power of ten with room below the horizon for the later transaction.
    let mut power = 100u64;
    while power * 10 + 10 < current {
        power *= 10;
    }
    assert!(power + 10 < current, "the cluster has run {current} transactions");
    let (older, newer) = (power - 2, power + 3);
    // Rows as two finished transactions left them: the outbox row records its writer's id.
    let mut tx = test.db.begin().await.expect("begin");
    for (xid, resource) in [
        (older, "persons/a"),
        (newer, "persons/b1"),
        (newer, "persons/b2"),
        (newer, "persons/b3"),
        (newer, "persons/b4"),
    ] {
        sqlx::query(
            "INSERT INTO outbox_events (xid, kind, resource, regions, effective_date, detail, recorded_us) \
             VALUES ($1::text::xid8, 'person_created', $2, '370402001001', NULL, '{}', 0)",
        )
        .bind(xid.to_string())
        .bind(resource)
        .execute(&mut *tx)
        .await
        .expect("insert");
    }
    tx.commit().await.expect("commit");
    let mut seen = Vec::new();
    let mut after = Position::START;
    for _ in 0..10 {
        let page = outbox::read_after(&test.db, after, 2).await.expect("read");
        let Some(last) = page.last() else { break };
        after = last.position;
        seen.extend(page.iter().map(|e| (e.position.xid, e.resource.clone())));
    }
    let expected: Vec<(u64, String)> = [
        (older, "persons/a"),
        (newer, "persons/b1"),
        (newer, "persons/b2"),
        (newer, "persons/b3"),
        (newer, "persons/b4"),
    ]
    .into_iter()
    .map(|(xid, r)| (xid, r.to_string()))
    .collect();
    assert_eq!(seen, expected);
}

/// A watch from the head skips what had committed when it began, even while another
/// transaction, open from before, holds the horizon below it; and it still sees that open
/// transaction's event when it commits.
#[tokio::test]
async fn a_watch_from_the_head_skips_what_committed_before_it_behind_an_open_transaction_on_postgres() {
    let test = TestDatabase::postgres(&bangfu_platform::db::Migrations::NONE).await;
    let mut open = test.db.begin().await.expect("begin");
    let event = NewEvent {
        kind: "person_updated",
        resource: "persons/open-before",
        regions: &["370402001001"],
        effective_date: None,
        detail: "{}",
    };
    outbox::append(&mut open, &event, datetime!(2026-03-01 02:00 UTC))
        .await
        .expect("append");
    publish(&test.db, "persons/committed-before", &["370402001001"]).await;
    let everything: Arc<dyn Fn(&FeedEvent) -> bool + Send + Sync> = Arc::new(|_: &FeedEvent| true);
    let settings = WatchSettings {
        poll: Duration::from_millis(20),
        heartbeat: Duration::from_secs(60),
        batch: 100,
    };
    let shutdown = Shutdown::new();
    let mut stream = Box::pin(
        outbox::watch(
            test.db.clone(),
            outbox::Start::Head,
            everything,
            settings,
            shutdown.clone(),
        )
        .await
        .expect("watch"),
    );
    publish(&test.db, "persons/after", &["370402001001"]).await;
    open.commit().await.expect("commit");
    let mut seen = Vec::new();
    while seen.len() < 2 {
        let item = tokio::time::timeout(Duration::from_secs(10), stream.next())
            .await
            .expect("an item in time")
            .expect("stream open")
            .expect("no error");
        if let FeedItem::Event(event) = item {
            seen.push(event.resource);
        }
    }
    seen.sort();
    assert_eq!(seen, ["persons/after", "persons/open-before"]);
    shutdown.trigger();
}

async fn a_watch_behind_its_feed_says_about_how_far(test: TestDatabase) {
    for n in 0..25 {
        publish(&test.db, &format!("persons/{n}"), &["370402001001"]).await;
    }
    read_until(&test.db, Position::START, 25).await;
    let settings = WatchSettings {
        poll: Duration::from_millis(20),
        heartbeat: Duration::from_secs(60),
        batch: 10,
    };
    let mut stream = Box::pin(
        outbox::watch(
            test.db.clone(),
            outbox::Start::After(Position::START),
            Arc::new(|_: &FeedEvent| true),
            settings,
            Shutdown::new(),
        )
        .await
        .expect("watch"),
    );
    let mut behind = Vec::new();
    while behind.len() < 25 {
        match stream.next().await.expect("an item").expect("no error") {
            FeedItem::Event(event) => behind.push(event.behind),
            FeedItem::Heartbeat(_) => {}
        }
    }
    // Pages of 10: the first two are full and say how much is left; the last caught up.
    assert_eq!(behind[0], 24, "{behind:?}");
    assert_eq!(behind[10], 14, "{behind:?}");
    assert!(behind[20..].iter().all(|b| *b == 0), "{behind:?}");
}
