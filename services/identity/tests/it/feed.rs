//! The person change feed through gRPC: a watcher sees the changes of persons in its scope in
//! order, resumes from its last cursor missing nothing and seeing nothing twice, can start at
//! the head, and gets heartbeats carrying the cursor when nothing happens.

use std::time::Duration;

use bangfu_proto::common::v1 as common;
use bangfu_proto::identity::v1 as pb;
use bangfu_proto::identity::v1::watch_person_changes_response::Item;
use tonic::Streaming;

use crate::on_both_backends;
use crate::support::{
    Backend, Identity, SHIZHONG_OTHER_VILLAGE, SHIZHONG_VILLAGE, YUZHONG_VILLAGE, citizen_id, move_person, register,
    request,
};

on_both_backends!(
    a_watcher_sees_its_scopes_changes_in_order_and_resumes_without_gaps_or_repeats,
    a_watch_from_the_head_sees_only_what_comes_after,
    a_watch_of_some_kinds_sees_only_those_and_its_heartbeats_move_past_the_rest,
);

async fn watch(
    identity: &Identity,
    token: &str,
    after_cursor: &str,
    start_at_head: bool,
) -> Streaming<pb::WatchPersonChangesResponse> {
    watch_kinds(identity, token, after_cursor, start_at_head, &[])
        .await
        .expect("watch")
}

async fn watch_kinds(
    identity: &Identity,
    token: &str,
    after_cursor: &str,
    start_at_head: bool,
    kinds: &[i32],
) -> Result<Streaming<pb::WatchPersonChangesResponse>, tonic::Status> {
    let mut client = identity.client().await;
    client
        .watch_person_changes(request(
            pb::WatchPersonChangesRequest {
                after_cursor: after_cursor.into(),
                start_at_head,
                kinds: kinds.to_vec(),
            },
            token,
        ))
        .await
        .map(tonic::Response::into_inner)
}

/// The next change, skipping heartbeats.
async fn next_change(stream: &mut Streaming<pb::WatchPersonChangesResponse>) -> pb::PersonChange {
    loop {
        let item = tokio::time::timeout(Duration::from_secs(10), stream.message())
            .await
            .expect("a change in time")
            .expect("stream healthy")
            .expect("stream open");
        if let Some(Item::Change(change)) = item.item {
            return change;
        }
    }
}

/// The next heartbeat, failing on a change.
async fn next_heartbeat(stream: &mut Streaming<pb::WatchPersonChangesResponse>) -> String {
    let item = tokio::time::timeout(Duration::from_secs(10), stream.message())
        .await
        .expect("a heartbeat in time")
        .expect("stream healthy")
        .expect("stream open");
    match item.item {
        Some(Item::Heartbeat(heartbeat)) => heartbeat.cursor,
        other => panic!("expected a heartbeat, got {other:?}"),
    }
}

async fn a_watcher_sees_its_scopes_changes_in_order_and_resumes_without_gaps_or_repeats(backend: Backend) {
    let identity = Identity::start(backend).await;
    let clerk = identity.shizhong_clerk();
    let chongqing = identity.token(
        "clerk-chen",
        bangfu_platform::auth::Department::Hr,
        bangfu_platform::auth::Role::Clerk,
        "50",
    );
    let first = register(
        &identity,
        &clerk,
        "甲",
        &citizen_id("370402", "19800101", "011"),
        SHIZHONG_VILLAGE,
    )
    .await;
    register(
        &identity,
        &chongqing,
        "乙",
        &citizen_id("500101", "19800101", "013"),
        YUZHONG_VILLAGE,
    )
    .await;
    let second = register(
        &identity,
        &clerk,
        "丙",
        &citizen_id("370402", "19800101", "015"),
        SHIZHONG_VILLAGE,
    )
    .await;

    let watcher = identity.token(
        "feed-reader",
        bangfu_platform::auth::Department::Hr,
        bangfu_platform::auth::Role::Admin,
        "370402",
    );
    let mut stream = watch(&identity, &watcher, "", false).await;
    let a = next_change(&mut stream).await;
    let b = next_change(&mut stream).await;
    assert_eq!(
        (a.person.as_str(), b.person.as_str()),
        (first.as_str(), second.as_str())
    );
    assert_eq!(a.kind, pb::ChangeKind::Created as i32);
    assert_eq!(
        a.effective_date,
        Some(common::Date {
            year: 2026,
            month: 3,
            day: 2
        })
    );
    // Nothing more in scope: a heartbeat carries the cursor past the Chongqing change too.
    let resume_at = next_heartbeat(&mut stream).await;
    drop(stream);

    let third = register(
        &identity,
        &clerk,
        "丁",
        &citizen_id("370402", "19800101", "017"),
        SHIZHONG_VILLAGE,
    )
    .await;
    let mut resumed = watch(&identity, &watcher, &resume_at, false).await;
    let c = next_change(&mut resumed).await;
    assert_eq!(
        c.person, third,
        "resuming from the heartbeat sees the next change and nothing before it"
    );
    // Resuming from an event's cursor sees what followed it, once.
    let mut replay = watch(&identity, &watcher, &a.cursor, false).await;
    assert_eq!(next_change(&mut replay).await.person, second);
    assert_eq!(next_change(&mut replay).await.person, third);
}

async fn a_watch_from_the_head_sees_only_what_comes_after(backend: Backend) {
    let identity = Identity::start(backend).await;
    let clerk = identity.shizhong_clerk();
    register(
        &identity,
        &clerk,
        "旧",
        &citizen_id("370402", "19800101", "021"),
        SHIZHONG_VILLAGE,
    )
    .await;
    let watcher = identity.token(
        "feed-reader",
        bangfu_platform::auth::Department::Hr,
        bangfu_platform::auth::Role::Admin,
        "37",
    );
    let mut stream = watch(&identity, &watcher, "", true).await;
    // Let the watch take its place before the next change commits.
    tokio::time::sleep(Duration::from_millis(200)).await;
    let new = register(
        &identity,
        &clerk,
        "新",
        &citizen_id("370402", "19800101", "023"),
        SHIZHONG_VILLAGE,
    )
    .await;
    assert_eq!(next_change(&mut stream).await.person, new);
}

async fn a_watch_of_some_kinds_sees_only_those_and_its_heartbeats_move_past_the_rest(backend: Backend) {
    let identity = Identity::start(backend).await;
    let clerk = identity.shizhong_clerk();
    let watcher = identity.token(
        "feed-reader",
        bangfu_platform::auth::Department::Hr,
        bangfu_platform::auth::Role::Admin,
        "370402",
    );
    let moved = register(
        &identity,
        &clerk,
        "甲",
        &citizen_id("370402", "19800101", "031"),
        SHIZHONG_VILLAGE,
    )
    .await;
    register(
        &identity,
        &clerk,
        "乙",
        &citizen_id("370402", "19800101", "033"),
        SHIZHONG_VILLAGE,
    )
    .await;
    move_person(&identity, &clerk, &moved, (None, Some(SHIZHONG_OTHER_VILLAGE)), None).await;
    register(
        &identity,
        &clerk,
        "丙",
        &citizen_id("370402", "19800101", "035"),
        SHIZHONG_VILLAGE,
    )
    .await;

    let mut moves = watch_kinds(&identity, &watcher, "", false, &[pb::ChangeKind::ResidenceMoved as i32])
        .await
        .expect("watch");
    let change = next_change(&mut moves).await;
    assert_eq!(
        (change.person.as_str(), change.kind),
        (moved.as_str(), pb::ChangeKind::ResidenceMoved as i32),
        "the three registrations are left out"
    );
    // The third registration came after the move: the heartbeat's cursor is past it, so a
    // watch of every kind resumed there sees nothing of what was before.
    let resume_at = next_heartbeat(&mut moves).await;
    drop(moves);
    let fourth = register(
        &identity,
        &clerk,
        "丁",
        &citizen_id("370402", "19800101", "037"),
        SHIZHONG_VILLAGE,
    )
    .await;
    let mut everything = watch(&identity, &watcher, &resume_at, false).await;
    assert_eq!(next_change(&mut everything).await.person, fourth);

    let refused = watch_kinds(
        &identity,
        &watcher,
        "",
        false,
        &[pb::ChangeKind::Unspecified as i32, 99],
    )
    .await
    .expect_err("an unlisted kind");
    assert_eq!(refused.code(), tonic::Code::InvalidArgument);
    let details = tonic_types::StatusExt::get_error_details(&refused);
    assert_eq!(details.bad_request().expect("field").field_violations[0].field, "kinds");
}
