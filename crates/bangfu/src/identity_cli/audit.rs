//! `audit`: the registry's audit log for auditors, filtered by time, subject, resource and
//! outcome.

use bangfu_proto::common::v1 as common;
use bangfu_proto::identity::v1 as pb;
use clap::Args;

use super::connect_identity;
use crate::Failure;
use crate::client::{ClientArgs, call};
use crate::client::{PageArgs, Pages};
use crate::format::{enum_filter, enum_label, enum_wire, or_dash, parse_instant, stamp_json, stamp_text};

#[derive(Debug, Args)]
pub struct AuditArgs {
    #[command(flatten)]
    client: ClientArgs,
    /// Only events at or after this time: YYYY-MM-DD (from midnight, UTC+8) or a time like
    /// 2025-03-01T08:30:00+08:00.
    #[arg(long)]
    since: Option<String>,
    /// Only events before this time, in the same forms.
    #[arg(long)]
    before: Option<String>,
    /// Only events of this subject (the user a token names).
    #[arg(long, default_value = "")]
    subject: String,
    /// Only events that touched this resource, e.g. persons/….
    #[arg(long, default_value = "")]
    resource: String,
    /// Only events that ended so: succeeded, denied, failed.
    #[arg(long)]
    outcome: Option<String>,
    #[command(flatten)]
    page: PageArgs,
}

pub(super) async fn audit(args: AuditArgs) -> Result<(), Failure> {
    let mut filter = common::AuditEventFilter {
        subject: args.subject,
        resource: args.resource,
        outcome: enum_filter::<common::AuditOutcome>("--outcome", args.outcome.as_deref())?,
        ..Default::default()
    };
    if let Some(text) = &args.since {
        let (seconds, nanos) = parse_instant("--since", text)?;
        let start = filter.start_time.get_or_insert_with(Default::default);
        start.seconds = seconds;
        start.nanos = nanos;
    }
    if let Some(text) = &args.before {
        let (seconds, nanos) = parse_instant("--before", text)?;
        let end = filter.end_time.get_or_insert_with(Default::default);
        end.seconds = seconds;
        end.nanos = nanos;
    }
    let mut pages = Pages::new(args.page.page_size, args.page.page_token, args.page.all)?;
    let json = args.client.json;
    let mut identity = connect_identity(&args.client).await?;
    while let Some(page_token) = pages.next_token() {
        let page = call(identity.list_audit_events(pb::ListAuditEventsRequest {
            filter: Some(filter.clone()),
            page_size: pages.size,
            page_token,
        }))
        .await?;
        for event in &page.audit_events {
            let event_time = event.event_time.as_ref().map(|t| t.seconds);
            if json {
                say!(
                    "{}",
                    serde_json::json!({
                        "name": event.name,
                        "sequence": event.sequence,
                        "event_time": stamp_json(event_time),
                        "subject": event.subject,
                        "department": event.department,
                        "acting_service": event.acting_service,
                        "method": event.method,
                        "resource": event.resource,
                        "outcome": enum_wire::<common::AuditOutcome>(event.outcome),
                        "reason": event.reason,
                        "purpose": event.purpose.as_ref().map(|p| serde_json::json!({
                            "code": enum_wire::<common::AccessPurposeCode>(p.code),
                            "reference": p.reference,
                        })),
                        "hash": event.hash,
                        "trace_id": event.trace_id,
                    })
                );
            } else {
                let method = event.method.rsplit('/').next().unwrap_or_default();
                say!(
                    "{}  {}  {}  {}  {}  {}  {}",
                    event.sequence,
                    stamp_text(event_time),
                    enum_label::<common::AuditOutcome>(event.outcome),
                    or_dash(&event.subject),
                    or_dash(method),
                    or_dash(&event.resource),
                    event.reason
                );
            }
        }
        pages.fetched(page.next_page_token);
    }
    pages.finish(json);
    Ok(())
}
