//! The posting feed: shared postings created, changed and closed, in commit order, resumable by
//! cursor; postings never shared are not on it.

use std::time::Duration;

use bangfu_platform::testing::Backend;
use bangfu_proto::jobs::v1 as pb;
use tokio_stream::StreamExt;

use crate::support::*;

/// The changes on the feed after `cursor` until a heartbeat says it caught up.
async fn changes_after(suite: &Suite, cursor: &str) -> (Vec<(String, i32)>, String) {
    let mut stream = suite
        .jobs()
        .await
        .watch_posting_changes(with_token(
            pb::WatchPostingChangesRequest {
                after_cursor: cursor.into(),
                start_at_head: false,
            },
            &suite.city_clerk(),
        ))
        .await
        .expect("watching")
        .into_inner();
    let mut changes = Vec::new();
    loop {
        let item = tokio::time::timeout(Duration::from_secs(10), stream.next())
            .await
            .expect("an item in time")
            .expect("the stream goes on")
            .expect("an item");
        match item.item.expect("item") {
            pb::watch_posting_changes_response::Item::Change(change) => changes.push((change.posting, change.kind)),
            pb::watch_posting_changes_response::Item::Heartbeat(beat) => return (changes, beat.cursor),
        }
    }
}

async fn shared_postings_are_on_the_feed_in_order(backend: Backend) {
    let suite = Suite::start(backend).await;
    let clerk = suite.clerk();
    let carrier = suite.carrier(pb::CarrierKind::HrAgency, 0).await;
    let local = suite
        .create_posting(posting_draft(&carrier.name, VILLAGE), &clerk)
        .await
        .expect("posting");
    let shared = suite
        .create_posting(
            pb::Posting {
                shared_across_regions: true,
                ..posting_draft(&carrier.name, VILLAGE)
            },
            &clerk,
        )
        .await
        .expect("posting");
    let mut jobs = suite.jobs().await;
    let shared = jobs
        .update_posting(with_token(
            pb::UpdatePostingRequest {
                posting: Some(pb::Posting {
                    headcount: 10,
                    ..shared.clone()
                }),
                update_mask: Some(prost_types::FieldMask {
                    paths: vec!["headcount".into()],
                }),
            },
            &clerk,
        ))
        .await
        .expect("updated")
        .into_inner()
        .posting
        .expect("posting");
    assert_eq!(shared.headcount, 10);
    let (changes, cursor) = changes_after(&suite, "").await;
    assert_eq!(
        changes,
        vec![
            (shared.name.clone(), pb::PostingChangeKind::Created as i32),
            (shared.name.clone(), pb::PostingChangeKind::Updated as i32),
        ]
    );

    // The local posting becomes shared; the shared one closes: a watcher resuming from its
    // cursor sees exactly these.
    jobs.update_posting(with_token(
        pb::UpdatePostingRequest {
            posting: Some(pb::Posting {
                shared_across_regions: true,
                ..local.clone()
            }),
            update_mask: Some(prost_types::FieldMask {
                paths: vec!["shared_across_regions".into()],
            }),
        },
        &clerk,
    ))
    .await
    .expect("shared");
    jobs.close_posting(with_token(
        pb::ClosePostingRequest {
            name: shared.name.clone(),
            reason: "已招满".into(),
            etag: shared.etag.clone(),
        },
        &clerk,
    ))
    .await
    .expect("closed");
    let (changes, _) = changes_after(&suite, &cursor).await;
    assert_eq!(
        changes,
        vec![
            (local.name.clone(), pb::PostingChangeKind::Created as i32),
            (shared.name.clone(), pb::PostingChangeKind::Closed as i32),
        ]
    );
}

bangfu_platform::on_both_backends!(shared_postings_are_on_the_feed_in_order);
