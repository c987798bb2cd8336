//! `watch`: the change feed of the persons in a scope, followed until Ctrl-C or a limit; the
//! cursor to resume from goes to stderr so stdout stays the changes alone.

use bangfu_proto::common::v1 as common;
use bangfu_proto::identity::v1 as pb;
use clap::Args;

use super::connect_identity;
use crate::Failure;
use crate::client::{ClientArgs, call, call_failed};
use crate::format::{date_or_dash, date_text, enum_label, enum_wire, stamp_json};

#[derive(Debug, Args)]
pub struct WatchArgs {
    #[command(flatten)]
    client: ClientArgs,
    /// Resume after this cursor: the one a previous watch printed when it ended. Without it,
    /// from the beginning of the feed.
    #[arg(long, default_value = "", conflicts_with = "from_head")]
    after: String,
    /// Only changes made from now on.
    #[arg(long)]
    from_head: bool,
    /// Stop after this many changes.
    #[arg(long)]
    limit: Option<u64>,
}

pub(super) async fn watch(args: WatchArgs) -> Result<(), Failure> {
    use pb::watch_person_changes_response::Item;
    let json = args.client.json;
    let mut identity = connect_identity(&args.client).await?;
    let mut stream = call(identity.watch_person_changes(pb::WatchPersonChangesRequest {
        after_cursor: args.after.clone(),
        start_at_head: args.from_head,
    }))
    .await?;
    let mut cursor = if args.from_head { String::new() } else { args.after };
    let mut changes: u64 = 0;
    let mut interrupted = std::pin::pin!(tokio::signal::ctrl_c());
    let outcome = loop {
        if args.limit.is_some_and(|limit| changes >= limit) {
            break Ok(());
        }
        let message = tokio::select! {
            signal = interrupted.as_mut() => match signal {
                Ok(()) => break Ok(()),
                Err(error) => break Err(Failure::failed(format!("cannot listen for Ctrl-C: {error}"))),
            },
            message = stream.message() => message,
        };
        match message {
            Err(status) => break Err(call_failed(&status)),
            Ok(None) => break Ok(()),
            Ok(Some(response)) => match response.item {
                Some(Item::Change(change)) => {
                    changes += 1;
                    show_change(&change, json);
                    cursor = change.cursor;
                }
                Some(Item::Heartbeat(heartbeat)) => {
                    if json {
                        say!("{}", serde_json::json!({ "heartbeat": heartbeat.cursor }));
                    }
                    cursor = heartbeat.cursor;
                }
                None => {}
            },
        }
    };
    if cursor.is_empty() {
        eprintln!("no cursor yet ({changes} changes): run the same command again to resume");
    } else {
        eprintln!("last cursor: {cursor} ({changes} changes; resume with --after {cursor})");
    }
    outcome
}

fn show_change(change: &pb::PersonChange, json: bool) {
    if json {
        say!(
            "{}",
            serde_json::json!({
                "cursor": change.cursor,
                "person": change.person,
                "kind": enum_wire::<pb::ChangeKind>(change.kind),
                "effective_date": change.effective_date.as_ref().map(date_text),
                "category": (change.category != 0).then(|| enum_wire::<common::PersonCategory>(change.category)),
                "changed_fields": change.changed_fields,
                "record_time": stamp_json(change.record_time.as_ref().map(|t| t.seconds)),
            })
        );
    } else {
        let fields = if change.changed_fields.is_empty() {
            "-".to_string()
        } else {
            change.changed_fields.join(",")
        };
        say!(
            "{}  {}  {}  {}  {}  {fields}",
            change.cursor,
            change.person,
            enum_label::<pb::ChangeKind>(change.kind),
            date_or_dash(change.effective_date.as_ref()),
            enum_label::<common::PersonCategory>(change.category)
        );
    }
}
