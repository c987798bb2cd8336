//! The change feed and request ids on both databases: events in commit order behind a cursor,
//! nothing lost or repeated on resume, late commits never skipped on PostgreSQL, scope-filtered
//! watches with heartbeats, and retried requests answered once.

use std::sync::Arc;
use std::time::Duration;

use bangfu_platform::db::Database;
use bangfu_platform::error::ErrorReason;
use bangfu_platform::idempotency::{self, Previous, RequestKey};
use bangfu_platform::outbox::{self, FeedEvent, FeedItem, NewEvent, Position, WatchSettings};
use bangfu_platform::server::Shutdown;
use bangfu_platform::testing::TestDatabase;
use time::macros::{date, datetime};
use tokio_stream::StreamExt;

on_both_backends!(
    events_are_read_in_commit_order_and_resume_from_a_cursor,
    a_watch_from_the_head_sees_only_new_events,
    a_watch_shows_only_events_in_scope_and_heartbeats_when_idle,
    a_rolled_back_change_leaves_no_event,
    a_retried_request_is_answered_once_and_a_reused_id_refused,
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
    let mut stream = Box::pin(outbox::watch(
        test.db.clone(),
        Position::START,
        visible,
        settings,
        shutdown.clone(),
    ));
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

async fn a_retried_request_is_answered_once_and_a_reused_id_refused(test: TestDatabase) {
    let key = RequestKey::new(
        "clerk-li",
        "/bangfu.identity.v1.IdentityService/CreatePerson",
        "req-1",
        &[b"person A"],
    )
    .expect("key")
    .expect("some");
    let mut tx = test.db.begin().await.expect("begin");
    assert_eq!(
        idempotency::previous(&mut tx, &key).await.expect("lookup"),
        Previous::None
    );
    idempotency::remember(&mut tx, &key, "persons/p1", datetime!(2026-03-01 02:00 UTC))
        .await
        .expect("remember");
    tx.commit().await.expect("commit");

    let mut tx = test.db.begin().await.expect("begin");
    assert_eq!(
        idempotency::previous(&mut tx, &key).await.expect("lookup"),
        Previous::Done {
            resource: "persons/p1".into()
        }
    );
    let other = RequestKey::new(
        "clerk-li",
        "/bangfu.identity.v1.IdentityService/CreatePerson",
        "req-1",
        &[b"person B"],
    )
    .expect("key")
    .expect("some");
    let refused = idempotency::previous(&mut tx, &other).await.expect_err("reused id");
    assert_eq!(refused.reason, ErrorReason::RequestIdReused);
    // Another subject's identical id is theirs alone.
    let theirs = RequestKey::new(
        "clerk-wang",
        "/bangfu.identity.v1.IdentityService/CreatePerson",
        "req-1",
        &[b"person B"],
    )
    .expect("key")
    .expect("some");
    assert_eq!(
        idempotency::previous(&mut tx, &theirs).await.expect("lookup"),
        Previous::None
    );
    tx.rollback().await.expect("rollback");
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
