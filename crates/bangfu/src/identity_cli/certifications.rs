//! Certifications: certify a person into a category on a document, revoke or annul one, and
//! confirm the ones an import proposed.

use bangfu_proto::common::v1 as common;
use bangfu_proto::identity::v1 as pb;
use clap::Args;
use serde_json::Value;

use super::connect_identity;
use crate::Failure;
use crate::client::Pages;
use crate::client::{ClientArgs, call, print_rows};
use crate::format::{
    ProtoEnum, check_order, date_or_dash, date_text, enum_filter, enum_label, enum_value, enum_wire, optional_date,
    parse_date, resource_name, stamp_json, stamp_text,
};

/// ConfirmCertifications takes at most this many names a call.
const CONFIRM_BATCH: usize = 1000;

#[derive(Debug, Args)]
pub struct CertifyArgs {
    #[command(flatten)]
    client: ClientArgs,
    /// The person: persons/… or the bare id.
    person: String,
    /// The category: poverty-alleviated, monitored-at-risk, rural-low-income, relocated,
    /// yellow-river-resettled, employment-difficulty, disabled.
    #[arg(long)]
    category: String,
    /// For monitored-at-risk, the kind of household: unstable-alleviated, marginal-at-risk,
    /// sudden-hardship.
    #[arg(long)]
    household_type: Option<String>,
    /// The certifying body, e.g. 枣庄市乡村振兴局.
    #[arg(long)]
    body: String,
    /// The document the certification rests on.
    #[arg(long)]
    document: String,
    /// The first day it is valid, YYYY-MM-DD.
    #[arg(long)]
    from: String,
    /// The last day it is valid, YYYY-MM-DD; leave it out for an open end.
    #[arg(long)]
    to: Option<String>,
    /// A unique id making a retry safe: the person is certified once.
    #[arg(long, default_value = "")]
    request_id: String,
}

#[derive(Debug, Args)]
pub struct RevokeArgs {
    #[command(flatten)]
    client: ClientArgs,
    /// The certification: persons/…/certifications/….
    certification: String,
    /// The last day it is valid, YYYY-MM-DD (may lie in the past).
    #[arg(long, required_unless_present = "annul", conflicts_with = "annul")]
    to: Option<String>,
    /// Annul it instead: it was made in error and is void from its start.
    #[arg(long)]
    annul: bool,
    /// The document the revocation rests on.
    #[arg(long)]
    document: String,
    /// A unique id making a retry safe.
    #[arg(long, default_value = "")]
    request_id: String,
}

#[derive(Debug, Args)]
pub struct ConfirmArgs {
    #[command(flatten)]
    client: ClientArgs,
    /// Only pending certifications of persons under this division-code prefix.
    #[arg(long, default_value = "")]
    region: String,
    /// Pending certifications to confirm: pendingCertifications/… or the bare id. Without any
    /// (and without --all), lists what is pending.
    names: Vec<String>,
    /// Confirm every pending certification you may confirm (under --region).
    #[arg(long, conflicts_with = "names")]
    all: bool,
    /// When listing: how many a page, up to 1000 (0: the server's default, 100).
    #[arg(long, default_value_t = 0)]
    page_size: i32,
    /// When listing: start at this page, the next-page token a previous call printed.
    #[arg(long, default_value = "")]
    page_token: String,
}

pub(super) async fn certify(args: CertifyArgs) -> Result<(), Failure> {
    let category = enum_value::<common::PersonCategory>("--category", &args.category)?;
    let household_type =
        enum_filter::<common::MonitoredHouseholdType>("--household-type", args.household_type.as_deref())?;
    if household_type != 0 && category != common::PersonCategory::MonitoredAtRisk.number() {
        return Err(Failure::usage(
            "--household-type applies only to --category monitored-at-risk",
        ));
    }
    let valid_from = parse_date("--from", &args.from)?;
    let valid_to = optional_date("--to", args.to.as_deref())?;
    check_order(&valid_from, valid_to.as_ref())?;
    let mut identity = connect_identity(&args.client).await?;
    let certified = call(identity.certify_category(pb::CertifyCategoryRequest {
        person: resource_name("persons", &args.person),
        certification: Some(common::CategoryCertification {
            category,
            household_type,
            certifying_body: args.body,
            document_reference: args.document,
            valid_from: Some(valid_from),
            valid_to,
            annulled: false,
        }),
        request_id: args.request_id,
    }))
    .await?;
    show_certification(certified.certification.as_ref(), args.client.json);
    Ok(())
}

pub(super) async fn revoke(args: RevokeArgs) -> Result<(), Failure> {
    let valid_to = optional_date("--to", args.to.as_deref())?;
    let mut identity = connect_identity(&args.client).await?;
    let revoked = call(identity.revoke_category(pb::RevokeCategoryRequest {
        name: args.certification,
        valid_to,
        annul: args.annul,
        document_reference: args.document,
        request_id: args.request_id,
    }))
    .await?;
    show_certification(revoked.certification.as_ref(), args.client.json);
    Ok(())
}

pub(super) async fn confirm(args: ConfirmArgs) -> Result<(), Failure> {
    let json = args.client.json;
    let mut names: Vec<String> = args
        .names
        .iter()
        .map(|name| resource_name("pendingCertifications", name))
        .collect();
    let mut pages = Pages::new(args.page_size, args.page_token, args.all)?;
    let mut identity = connect_identity(&args.client).await?;
    if names.is_empty() {
        // List what is pending; with --all, gather every name first (confirming changes the
        // list being paged through) and confirm them below.
        while let Some(page_token) = pages.next_token() {
            let page = call(
                identity.list_pending_certifications(pb::ListPendingCertificationsRequest {
                    region_prefix: args.region.clone(),
                    page_size: pages.size,
                    page_token,
                }),
            )
            .await?;
            for pending in page.pending_certifications {
                if args.all {
                    names.push(pending.name);
                } else {
                    show_pending(&pending, json);
                }
            }
            pages.fetched(page.next_page_token);
        }
        if !args.all {
            pages.finish(json);
            return Ok(());
        }
    }
    let mut certified = 0;
    let mut not_confirmed = Vec::new();
    for batch in names.chunks(CONFIRM_BATCH) {
        let confirmed =
            call(identity.confirm_certifications(pb::ConfirmCertificationsRequest { names: batch.to_vec() }))
                .await
                .map_err(|failure| {
                    Failure::failed(format!("{} ({certified} certified before this batch)", failure.message))
                })?;
        certified += confirmed.certifications.len();
        not_confirmed.extend(confirmed.not_confirmed);
    }
    if json {
        say!(
            "{}",
            serde_json::json!({ "certified": certified, "not_confirmed": not_confirmed })
        );
    } else {
        print_rows(&[
            ("certified", certified.to_string()),
            ("not confirmed", not_confirmed.join("\n")),
        ]);
    }
    Ok(())
}

/// Prints the certification a call answered with (an empty one if it answered none).
fn show_certification(certification: Option<&pb::Certification>, json: bool) {
    let unset = pb::Certification::default();
    let certification = certification.unwrap_or(&unset);
    if json {
        say!(
            "{}",
            serde_json::json!({
                "name": certification.name,
                "certification": category_json(certification.certification.as_ref()),
                "revoke_time": stamp_json(certification.revoke_time.as_ref().map(|t| t.seconds)),
                "annul_time": stamp_json(certification.annul_time.as_ref().map(|t| t.seconds)),
                "certify_subject": certification.certify_subject,
            })
        );
        return;
    }
    let unset = common::CategoryCertification::default();
    let c = certification.certification.as_ref().unwrap_or(&unset);
    print_rows(&[
        ("certification", certification.name.clone()),
        ("category", enum_label::<common::PersonCategory>(c.category)),
        (
            "household type",
            enum_label::<common::MonitoredHouseholdType>(c.household_type),
        ),
        ("body", c.certifying_body.clone()),
        ("document", c.document_reference.clone()),
        ("valid from", date_or_dash(c.valid_from.as_ref())),
        ("valid to", date_or_dash(c.valid_to.as_ref())),
        (
            "revoked at",
            stamp_text(certification.revoke_time.as_ref().map(|t| t.seconds)),
        ),
        (
            "annulled at",
            stamp_text(certification.annul_time.as_ref().map(|t| t.seconds)),
        ),
        ("certified by", certification.certify_subject.clone()),
    ]);
}

fn category_json(certification: Option<&common::CategoryCertification>) -> Value {
    certification.map_or(Value::Null, |c| {
        serde_json::json!({
            "category": enum_wire::<common::PersonCategory>(c.category),
            "household_type": enum_wire::<common::MonitoredHouseholdType>(c.household_type),
            "certifying_body": c.certifying_body,
            "document_reference": c.document_reference,
            "valid_from": c.valid_from.as_ref().map(date_text),
            "valid_to": c.valid_to.as_ref().map(date_text),
            "annulled": c.annulled,
        })
    })
}

fn show_pending(pending: &pb::PendingCertification, json: bool) {
    if json {
        say!(
            "{}",
            serde_json::json!({
                "name": pending.name,
                "person": pending.person,
                "certification": category_json(pending.certification.as_ref()),
                "import_subject": pending.import_subject,
            })
        );
        return;
    }
    let unset = common::CategoryCertification::default();
    let c = pending.certification.as_ref().unwrap_or(&unset);
    say!(
        "{}  {}  {}  {}  {}  {}  {}",
        pending.name,
        pending.person,
        enum_label::<common::PersonCategory>(c.category),
        enum_label::<common::MonitoredHouseholdType>(c.household_type),
        date_or_dash(c.valid_from.as_ref()),
        date_or_dash(c.valid_to.as_ref()),
        c.certifying_body
    );
}
