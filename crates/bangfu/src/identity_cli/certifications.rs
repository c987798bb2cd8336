//! Certifications: certify a person into a category on a document, revoke or annul one, and
//! confirm the ones an import proposed.

use bangfu_proto::common::v1 as common;
use bangfu_proto::identity::v1 as pb;
use clap::Args;

use super::connect_identity;
use crate::Failure;
use crate::client::Pages;
use crate::client::{ClientArgs, call, print_rows};
use crate::format::{ProtoEnum, check_order, enum_filter, enum_value, optional_date, parse_date, resource_name};
use crate::print::{Columns, Listing, Output, show};

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
    /// When listing: write the list to this file (.xlsx, or CSV with a byte-order mark).
    #[arg(long, value_name = "FILE")]
    output: Option<std::path::PathBuf>,
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
    show_certification(certified.certification, args.client.output().is_json())
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
    show_certification(revoked.certification, args.client.output().is_json())
}

pub(super) async fn confirm(args: ConfirmArgs) -> Result<(), Failure> {
    let output = args.client.output();
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
        let mut listing = Listing::to_file(output, args.output.clone());
        let mut listed = 0;
        while let Some(page_token) = pages.next_token() {
            let page = call(
                identity.list_pending_certifications(pb::ListPendingCertificationsRequest {
                    region_prefix: args.region.clone(),
                    page_size: pages.size,
                    page_token,
                }),
            )
            .await?;
            listed += page.pending_certifications.len();
            if args.all {
                names.extend(page.pending_certifications.into_iter().map(|p| p.name));
            } else {
                listing.page(&PENDING_ROW.rows(&page.pending_certifications)?, PENDING_ROW.columns);
            }
            pages.fetched(page.next_page_token);
        }
        if listed == 0 && output == Output::Text {
            // An empty list most often means the token's department certifies none of the
            // categories pending: say so rather than print nothing.
            eprintln!(
                "nothing pending that your department may confirm in your scope: each category is confirmed by \
                 the department that certifies it (a refused `identity certify` names it). `bangfu whoami` shows \
                 your token's department and scope"
            );
        }
        if !args.all {
            listing.finish()?;
            pages.finish(output);
            return Ok(());
        }
    }
    let mut certified = 0;
    let mut not_confirmed = Vec::new();
    for batch in names.chunks(CONFIRM_BATCH) {
        let confirmed =
            call(identity.confirm_certifications(pb::ConfirmCertificationsRequest { names: batch.to_vec() }))
                .await
                .map_err(|failure| Failure {
                    message: format!("{} ({certified} certified before this batch)", failure.message),
                    ..failure
                })?;
        certified += confirmed.certifications.len();
        not_confirmed.extend(confirmed.not_confirmed);
    }
    if output.is_json() {
        say!(
            "{:#}",
            serde_json::json!({ "certified": certified, "notConfirmed": not_confirmed })
        );
    } else {
        print_rows(&[
            ("certified", certified.to_string()),
            ("not confirmed", not_confirmed.join("\n")),
        ]);
    }
    Ok(())
}

/// `confirm` without names: one line a pending certification.
const PENDING_ROW: Columns = Columns {
    message: "bangfu.identity.v1.PendingCertification",
    columns: &[
        ("pending", "name"),
        ("person", "person"),
        ("category", "certification.category"),
        ("household type", "certification.household_type"),
        ("from", "certification.valid_from"),
        ("to", "certification.valid_to"),
        ("body", "certification.certifying_body"),
    ],
};

/// Prints the certification a call answered with.
fn show_certification(certification: Option<pb::Certification>, json: bool) -> Result<(), Failure> {
    show(
        "bangfu.identity.v1.Certification",
        &certification.unwrap_or_default(),
        json,
    )
}
