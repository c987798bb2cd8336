//! `watch`: the change feed of the persons in a scope, followed until Ctrl-C or a limit; the
//! cursor to resume from goes to stderr so stdout stays the changes alone.

use bangfu_proto::identity::v1 as pb;
use clap::Args;

use super::connect_identity;
use crate::Failure;
use crate::client::{ClientArgs, call, call_failed};
use crate::print::{at_path, reflect};

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
    // A stream has no end to close an array at: JSON comes a line a change.
    let json = args.client.output().is_json();
    let mut identity = connect_identity(&args.client).await?;
    let mut stream = call(identity.watch_person_changes(pb::WatchPersonChangesRequest {
        after_cursor: args.after.clone(),
        start_at_head: args.from_head,
        kinds: Vec::new(),
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
                    if let Err(failure) = show_change(&change, json, changes == 0) {
                        break Err(failure);
                    }
                    changes += 1;
                    cursor = change.cursor;
                }
                Some(Item::Heartbeat(heartbeat)) => {
                    if json {
                        say!("{}", serde_json::json!({ "heartbeat": { "cursor": heartbeat.cursor } }));
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

/// The columns a change prints in; the header is printed once, before the first change.
const CHANGE_COLUMNS: &[(&str, &str)] = &[
    ("cursor", "cursor"),
    ("person", "person"),
    ("kind", "kind"),
    ("effective", "effective_date"),
    ("category", "category"),
    ("fields", "changed_fields"),
];

fn show_change(change: &pb::PersonChange, json: bool, first: bool) -> Result<(), Failure> {
    let message = reflect("bangfu.identity.v1.PersonChange", change)?;
    if json {
        say!("{}", crate::print::json(&message));
        return Ok(());
    }
    if first {
        say!(
            "{}",
            CHANGE_COLUMNS
                .iter()
                .map(|(label, _)| *label)
                .collect::<Vec<_>>()
                .join("  ")
        );
    }
    let cells: Vec<String> = CHANGE_COLUMNS
        .iter()
        .map(|(_, path)| {
            at_path(&message, path)
                .filter(|t| !t.is_empty())
                .unwrap_or_else(|| "-".to_string())
        })
        .collect();
    say!("{}", cells.join("  "));
    Ok(())
}
