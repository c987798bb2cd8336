//! `audit`: the registry's audit log for auditors, filtered by time, subject, resource and
//! outcome.

use bangfu_proto::common::v1 as common;
use bangfu_proto::identity::v1 as pb;
use clap::Args;

use super::connect_identity;
use crate::Failure;
use crate::client::{ClientArgs, PageArgs, call, list_pages};
use crate::format::{enum_filter, parse_instant};
use crate::print::Columns;

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
    let mut identity = connect_identity(&args.client).await?;
    list_pages(
        &mut identity,
        args.client.output(),
        &args.page,
        &AUDIT_ROW,
        |identity, page_size, page_token| {
            let request = pb::ListAuditEventsRequest {
                filter: Some(filter.clone()),
                page_size,
                page_token,
            };
            Box::pin(async move {
                let page = call(identity.list_audit_events(request)).await?;
                Ok((page.audit_events, page.next_page_token))
            })
        },
    )
    .await
}

/// One line an audit event.
const AUDIT_ROW: Columns = Columns {
    message: "bangfu.common.v1.AuditEvent",
    columns: &[
        ("seq", "sequence"),
        ("time", "event_time"),
        ("outcome", "outcome"),
        ("subject", "subject"),
        ("method", "method"),
        ("resource", "resource"),
        ("purpose", "purpose.code"),
        ("reason", "reason"),
    ],
};
