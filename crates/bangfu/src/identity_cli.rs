//! `bangfu identity …`: the person registry from the command line, for administrators and
//! clerks, and for trying the suite. Reads the address and token like every client command.

use std::collections::BTreeSet;

use bangfu_proto::common::v1 as common;
use bangfu_proto::identity::v1 as pb;
use bangfu_proto::identity::v1::identity_service_client::IdentityServiceClient;
use clap::{Args, Subcommand};
use serde_json::Value;

use crate::Failure;
use crate::client::{ClientArgs, authorized, call_failed, print_rows};

/// ConfirmCertifications takes at most this many names a call.
const CONFIRM_BATCH: usize = 1000;

/// China Standard Time (UTC+8), the zone every business date and shown time is in.
const CHINA_OFFSET_SECONDS: i64 = 8 * 3600;

#[derive(Debug, Subcommand)]
pub enum IdentityCommand {
    /// Register a person.
    Create {
        #[command(flatten)]
        client: ClientArgs,
        /// Name.
        #[arg(long)]
        name: String,
        /// Citizen ID (18 characters).
        #[arg(long)]
        citizen_id: String,
        /// Registered region: a 12-digit village code.
        #[arg(long)]
        region: String,
        /// A unique id making a retry safe.
        #[arg(long, default_value = "")]
        request_id: String,
    },
    /// Show a person, masked.
    Get {
        #[command(flatten)]
        client: ClientArgs,
        /// The person: persons/… or the bare id.
        person: String,
    },
    /// Find a person by citizen ID (audited); with --name, say whether it matches.
    Find {
        #[command(flatten)]
        client: ClientArgs,
        /// Citizen ID.
        citizen_id: String,
        /// A name to compare.
        #[arg(long, default_value = "")]
        name: String,
    },
    /// List the persons in your scope, masked: one line each with resource name, citizen ID,
    /// registered region and name, then the token of the next page.
    List(ListArgs),
    /// Propose correcting a mistyped citizen ID (PERSON --citizen-id --reason); another
    /// reviewer applies it with --approve CORRECTION_NAME, or refuses it adding --reject.
    CorrectId(CorrectIdArgs),
    /// Certify a person into a category for a period, on a document.
    Certify(CertifyArgs),
    /// End a certification on a date (which may lie in the past), or annul one made in error.
    Revoke(RevokeArgs),
    /// List the certifications imports proposed for your department to confirm; give their
    /// names, or --all, to confirm them.
    Confirm(ConfirmArgs),
    /// Record a change of a person's employment status.
    Employment(EmploymentArgs),
    /// Record a person's income from work for a month; prints the alerts it raised.
    Income(IncomeArgs),
    /// List monitoring alerts (open ones unless asked); --acknowledge one with a note of what
    /// was done.
    Alerts(AlertsArgs),
    /// Follow changes to the persons in your scope as they happen, until Ctrl-C (or --limit);
    /// prints on stderr the cursor to resume from with --after.
    Watch(WatchArgs),
    /// The registry's audit log, for auditors: who called what on which record, and how it
    /// ended.
    Audit(AuditArgs),
    /// Count persons by region, category and employment status.
    Stats(StatsArgs),
    /// The service's parameters (rules by region and date): list them, or set one value.
    #[command(subcommand)]
    Parameter(ParameterCommand),
    /// Import a CSV export of the national monitoring system (UTF-8 or GBK/GB18030), streaming;
    /// rejected rows go to a file to fix and re-import.
    Import(crate::identity_import::ImportArgs),
}

// Which page of a list to show; shared by the listing commands.
#[derive(Debug, Args)]
pub struct PageArgs {
    /// How many a page, up to 1000 (0: the server's default, 100).
    #[arg(long, default_value_t = 0)]
    page_size: i32,
    /// Start at this page: the next-page token a previous call printed.
    #[arg(long, default_value = "")]
    page_token: String,
    /// Every page to the end, not only one.
    #[arg(long)]
    all: bool,
}

#[derive(Debug, Args)]
pub struct ListArgs {
    #[command(flatten)]
    client: ClientArgs,
    /// Only persons registered or residing under this division-code prefix, e.g. 370402.
    #[arg(long, default_value = "")]
    region: String,
    /// Only persons holding this category today: poverty-alleviated, monitored-at-risk,
    /// rural-low-income, relocated, yellow-river-resettled, employment-difficulty, disabled.
    #[arg(long)]
    category: Option<String>,
    /// Only persons with this employment status today (the values `employment --status` takes).
    #[arg(long)]
    status: Option<String>,
    #[command(flatten)]
    page: PageArgs,
}

#[derive(Debug, Args)]
pub struct CorrectIdArgs {
    #[command(flatten)]
    client: ClientArgs,
    /// The person whose citizen ID is wrong: persons/… or the bare id.
    #[arg(required_unless_present = "approve", conflicts_with = "approve")]
    person: Option<String>,
    /// The right citizen ID (18 characters), as the document shows it.
    #[arg(long, required_unless_present = "approve", conflicts_with = "approve")]
    citizen_id: Option<String>,
    /// Review a proposed correction instead (persons/…/citizenIdCorrections/…) and apply it.
    /// The reviewer needs identity.pii.read and must not be the proposer.
    #[arg(long, value_name = "CORRECTION_NAME")]
    approve: Option<String>,
    /// With --approve: refuse the correction instead of applying it.
    #[arg(long, requires = "approve")]
    reject: bool,
    /// Why, 1 to 500 characters: for a proposal, why the ID is wrong and which document shows
    /// the right one; for a review, the reviewer's reason.
    #[arg(long)]
    reason: String,
    /// A unique id making a retry of a proposal safe.
    #[arg(long, default_value = "")]
    request_id: String,
}

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

#[derive(Debug, Args)]
pub struct EmploymentArgs {
    #[command(flatten)]
    client: ClientArgs,
    /// The person: persons/… or the bare id.
    person: String,
    /// The status: unemployed, employed-in-county, employed-out-of-county,
    /// employed-out-of-province, self-employed, public-welfare-post, work-relief, in-training,
    /// not-in-labor-force.
    #[arg(long)]
    status: String,
    /// The employer, when employed (up to 100 characters).
    #[arg(long, default_value = "")]
    employer: String,
    /// Where the person works: a division code or prefix.
    #[arg(long, default_value = "")]
    work_region: String,
    /// The first day of the status, YYYY-MM-DD.
    #[arg(long)]
    from: String,
    /// The last day, YYYY-MM-DD; leave it out while it lasts.
    #[arg(long)]
    to: Option<String>,
    /// The system that reported it, e.g. 就业信息平台.
    #[arg(long)]
    reporting_system: String,
    /// A unique id making a retry safe.
    #[arg(long, default_value = "")]
    request_id: String,
}

#[derive(Debug, Args)]
pub struct IncomeArgs {
    #[command(flatten)]
    client: ClientArgs,
    /// The person: persons/… or the bare id.
    person: String,
    /// The month, YYYY-MM.
    #[arg(long)]
    month: String,
    /// Income from work that month in yuan, e.g. 2350 or 2350.50: not negative, at most two
    /// decimals (fen).
    #[arg(long, allow_hyphen_values = true)]
    yuan: String,
    /// The system or survey that reported it.
    #[arg(long)]
    reporting_system: String,
    /// A unique id making a retry safe.
    #[arg(long, default_value = "")]
    request_id: String,
}

#[derive(Debug, Args)]
pub struct AlertsArgs {
    #[command(flatten)]
    client: ClientArgs,
    /// Only alerts under this division-code prefix, e.g. 370402.
    #[arg(long, default_value = "")]
    region: String,
    /// Only alerts of this kind: income-drop-year-on-year, income-drop-month-on-month,
    /// employment-lost, region-employment-drop.
    #[arg(long)]
    kind: Option<String>,
    /// Include alerts already acknowledged.
    #[arg(long)]
    include_acknowledged: bool,
    #[command(flatten)]
    page: PageArgs,
    /// Acknowledge this alert instead of listing: alerts/… or the bare id; give --note.
    #[arg(long, value_name = "ALERT_NAME", requires = "note")]
    acknowledge: Option<String>,
    /// With --acknowledge: what was done (guidance given, referral made), 1 to 500 characters.
    #[arg(long, requires = "acknowledge")]
    note: Option<String>,
}

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

#[derive(Debug, Args)]
pub struct StatsArgs {
    #[command(flatten)]
    client: ClientArgs,
    /// Count persons registered or residing under this division-code prefix, e.g. 3704.
    #[arg(long)]
    region: String,
    /// The period's first day, YYYY-MM-DD: categories count when valid in the period.
    /// Default: today.
    #[arg(long, requires = "to")]
    from: Option<String>,
    /// The period's last day, YYYY-MM-DD: employment statuses are counted on it.
    #[arg(long, requires = "from")]
    to: Option<String>,
    /// Break the counts down to regions of this many digits: 2, 4, 6, 9 or 12.
    #[arg(long, default_value_t = 6)]
    group_by: i32,
}

#[derive(Debug, Subcommand)]
pub enum ParameterCommand {
    /// The rows of a key (or of every key), with their regions, dates and documents.
    List {
        #[command(flatten)]
        client: ClientArgs,
        /// Only this key, e.g. identity.income_drop_alert_bp.
        #[arg(long, default_value = "")]
        key: String,
    },
    /// Set the value of the row (key, region, first day), creating it when missing. An
    /// administrator with the parameter permission; the change is audited and reaches every
    /// replica within its cache time (30 s).
    Set {
        #[command(flatten)]
        client: ClientArgs,
        /// The key, e.g. identity.lookups_per_minute.
        key: String,
        /// The region prefix the row applies to, or `*` for the whole country.
        #[arg(long)]
        region: String,
        /// The row's first day, YYYY-MM-DD.
        #[arg(long)]
        from: String,
        /// The value, an integer in the key's unit.
        #[arg(long, allow_negative_numbers = true)]
        value: i64,
        /// The policy document the value comes from.
        #[arg(long)]
        document: String,
    },
}

pub async fn run(command: IdentityCommand) -> Result<(), Failure> {
    match command {
        IdentityCommand::Create {
            client,
            name,
            citizen_id,
            region,
            request_id,
        } => {
            let mut identity = IdentityServiceClient::new(authorized(&client).await?);
            let person = pb::Person {
                display_name: name,
                citizen_id,
                registered_region: Some(common::RegionCode {
                    code: region,
                    display_name: String::new(),
                }),
                ..Default::default()
            };
            let created = identity
                .create_person(pb::CreatePersonRequest {
                    person: Some(person),
                    request_id,
                })
                .await
                .map_err(|s| call_failed(&s))?
                .into_inner()
                .person
                .unwrap_or_default();
            show(&created, client.json);
            Ok(())
        }
        IdentityCommand::Get { client, person } => {
            let mut identity = IdentityServiceClient::new(authorized(&client).await?);
            let read = identity
                .get_person(pb::GetPersonRequest {
                    name: resource_name("persons", &person),
                    ..Default::default()
                })
                .await
                .map_err(|s| call_failed(&s))?
                .into_inner()
                .person
                .unwrap_or_default();
            show(&read, client.json);
            Ok(())
        }
        IdentityCommand::Find {
            client,
            citizen_id,
            name,
        } => {
            let mut identity = IdentityServiceClient::new(authorized(&client).await?);
            let found = identity
                .lookup_person(pb::LookupPersonRequest {
                    citizen_id,
                    display_name: name,
                })
                .await
                .map_err(|s| call_failed(&s))?
                .into_inner();
            let matched = pb::NameMatch::try_from(found.name_match).unwrap_or(pb::NameMatch::Unspecified);
            if client.json {
                say!(
                    "{}",
                    serde_json::json!({ "person": found.person, "name_match": matched.as_str_name() })
                );
            } else if found.person.is_empty() {
                say!("not found (or outside your scope)");
            } else {
                print_rows(&[("person", found.person), ("name", matched.as_str_name().to_string())]);
            }
            Ok(())
        }
        IdentityCommand::List(args) => list(args).await,
        IdentityCommand::CorrectId(args) => correct_id(args).await,
        IdentityCommand::Certify(args) => certify(args).await,
        IdentityCommand::Revoke(args) => revoke(args).await,
        IdentityCommand::Confirm(args) => confirm(args).await,
        IdentityCommand::Employment(args) => employment(args).await,
        IdentityCommand::Income(args) => income(args).await,
        IdentityCommand::Alerts(args) => alerts(args).await,
        IdentityCommand::Watch(args) => watch(args).await,
        IdentityCommand::Audit(args) => audit(args).await,
        IdentityCommand::Stats(args) => stats(args).await,
        IdentityCommand::Parameter(command) => parameter(command).await,
        IdentityCommand::Import(args) => crate::identity_import::run(args).await,
    }
}

async fn parameter(command: ParameterCommand) -> Result<(), Failure> {
    let date_text = |d: &Option<common::Date>| d.as_ref().map(date_text).unwrap_or_default();
    match command {
        ParameterCommand::List { client, key } => {
            let mut identity = IdentityServiceClient::new(authorized(&client).await?);
            let mut page_token = String::new();
            loop {
                let page = identity
                    .list_parameters(pb::ListParametersRequest {
                        filter: Some(common::ParameterFilter {
                            key: key.clone(),
                            ..Default::default()
                        }),
                        page_size: 1000,
                        page_token,
                    })
                    .await
                    .map_err(|s| call_failed(&s))?
                    .into_inner();
                for row in &page.parameters {
                    if client.json {
                        say!(
                            "{}",
                            serde_json::json!({
                                "key": row.key, "region_prefix": row.region_prefix, "valid_from": date_text(&row.valid_from),
                                "valid_to": date_text(&row.valid_to), "value": row.value, "source_document": row.source_document,
                            })
                        );
                    } else {
                        say!(
                            "{}  {}  {} .. {}  {}  ({})",
                            row.key,
                            row.region_prefix,
                            date_text(&row.valid_from),
                            date_text(&row.valid_to),
                            row.value,
                            row.source_document
                        );
                    }
                }
                if page.next_page_token.is_empty() {
                    return Ok(());
                }
                page_token = page.next_page_token;
            }
        }
        ParameterCommand::Set {
            client,
            key,
            region,
            from,
            value,
            document,
        } => {
            let valid_from = parse_date("--from", &from)?;
            let mut identity = IdentityServiceClient::new(authorized(&client).await?);
            // The row's etag, when it exists, so a change made meanwhile is not overwritten.
            let existing = identity
                .list_parameters(pb::ListParametersRequest {
                    filter: Some(common::ParameterFilter {
                        key: key.clone(),
                        ..Default::default()
                    }),
                    page_size: 1000,
                    page_token: String::new(),
                })
                .await
                .map_err(|s| call_failed(&s))?
                .into_inner()
                .parameters
                .into_iter()
                .find(|row| row.region_prefix == region && row.valid_from == Some(valid_from));
            let mut request = pb::UpdateParameterRequest {
                parameter: Some(common::Parameter {
                    key: key.clone(),
                    region_prefix: region.clone(),
                    valid_from: Some(valid_from),
                    valid_to: existing.as_ref().and_then(|row| row.valid_to),
                    value,
                    source_document: document,
                    etag: existing.as_ref().map(|row| row.etag.clone()).unwrap_or_default(),
                    ..Default::default()
                }),
                update_mask: None,
                allow_missing: existing.is_none(),
            };
            request.update_mask.get_or_insert_with(Default::default).paths =
                vec!["value".to_string(), "source_document".to_string()];
            let updated = identity
                .update_parameter(request)
                .await
                .map_err(|s| call_failed(&s))?
                .into_inner()
                .parameter
                .unwrap_or_default();
            say!(
                "{} {} from {}: {}",
                updated.key,
                updated.region_prefix,
                date_text(&updated.valid_from),
                updated.value
            );
            Ok(())
        }
    }
}

async fn list(args: ListArgs) -> Result<(), Failure> {
    let category = enum_filter::<common::PersonCategory>("--category", args.category.as_deref())?;
    let employment_status = enum_filter::<common::EmploymentStatus>("--status", args.status.as_deref())?;
    let mut pages = Pages::new(args.page.page_size, args.page.page_token, args.page.all)?;
    let json = args.client.json;
    let mut identity = IdentityServiceClient::new(authorized(&args.client).await?);
    while let Some(page_token) = pages.next_token() {
        let page = identity
            .list_persons(pb::ListPersonsRequest {
                region_prefix: args.region.clone(),
                category,
                employment_status,
                page_size: pages.size,
                page_token,
            })
            .await
            .map_err(|s| call_failed(&s))?
            .into_inner();
        for person in &page.persons {
            let region = person.registered_region.as_ref().map(|r| r.code.as_str());
            if json {
                say!(
                    "{}",
                    serde_json::json!({
                        "name": person.name,
                        "display_name": person.display_name,
                        "citizen_id": person.citizen_id,
                        "registered_region": region,
                    })
                );
            } else {
                say!(
                    "{}  {}  {}  {}",
                    person.name,
                    or_dash(&person.citizen_id),
                    region.unwrap_or("-"),
                    person.display_name
                );
            }
        }
        pages.fetched(page.next_page_token);
    }
    pages.finish(json);
    Ok(())
}

async fn correct_id(args: CorrectIdArgs) -> Result<(), Failure> {
    let mut identity = IdentityServiceClient::new(authorized(&args.client).await?);
    let correction = match (args.approve, args.person, args.citizen_id) {
        (Some(name), _, _) => {
            identity
                .approve_citizen_id_correction(pb::ApproveCitizenIdCorrectionRequest {
                    name,
                    approve: !args.reject,
                    reason: args.reason,
                })
                .await
                .map_err(|s| call_failed(&s))?
                .into_inner()
                .correction
        }
        (None, Some(person), Some(new_citizen_id)) => {
            identity
                .correct_citizen_id(pb::CorrectCitizenIdRequest {
                    person: resource_name("persons", &person),
                    correction: Some(pb::CitizenIdCorrection {
                        new_citizen_id,
                        reason: args.reason,
                        ..Default::default()
                    }),
                    request_id: args.request_id,
                })
                .await
                .map_err(|s| call_failed(&s))?
                .into_inner()
                .correction
        }
        _ => {
            return Err(Failure::usage(
                "give PERSON and --citizen-id to propose a correction, or --approve CORRECTION_NAME to review one",
            ));
        }
    };
    let correction = correction.unwrap_or_default();
    if args.client.json {
        say!(
            "{}",
            serde_json::json!({
                "name": correction.name,
                "new_citizen_id": correction.new_citizen_id,
                "reason": correction.reason,
                "state": enum_wire::<pb::CorrectionState>(correction.state),
                "propose_subject": correction.propose_subject,
                "propose_time": stamp_json(correction.propose_time.as_ref().map(|t| t.seconds)),
                "review_subject": correction.review_subject,
                "review_time": stamp_json(correction.review_time.as_ref().map(|t| t.seconds)),
            })
        );
    } else {
        print_rows(&[
            ("correction", correction.name.clone()),
            ("new citizen id", correction.new_citizen_id.clone()),
            ("state", enum_label::<pb::CorrectionState>(correction.state)),
            ("reason", correction.reason.clone()),
            ("proposed by", correction.propose_subject.clone()),
            (
                "proposed at",
                stamp_text(correction.propose_time.as_ref().map(|t| t.seconds)),
            ),
            ("reviewed by", or_dash(&correction.review_subject).to_string()),
            (
                "reviewed at",
                stamp_text(correction.review_time.as_ref().map(|t| t.seconds)),
            ),
        ]);
    }
    Ok(())
}

async fn certify(args: CertifyArgs) -> Result<(), Failure> {
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
    let mut identity = IdentityServiceClient::new(authorized(&args.client).await?);
    let certification = identity
        .certify_category(pb::CertifyCategoryRequest {
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
        })
        .await
        .map_err(|s| call_failed(&s))?
        .into_inner()
        .certification
        .unwrap_or_default();
    show_certification(&certification, args.client.json);
    Ok(())
}

async fn revoke(args: RevokeArgs) -> Result<(), Failure> {
    let valid_to = optional_date("--to", args.to.as_deref())?;
    let mut identity = IdentityServiceClient::new(authorized(&args.client).await?);
    let certification = identity
        .revoke_category(pb::RevokeCategoryRequest {
            name: args.certification,
            valid_to,
            annul: args.annul,
            document_reference: args.document,
            request_id: args.request_id,
        })
        .await
        .map_err(|s| call_failed(&s))?
        .into_inner()
        .certification
        .unwrap_or_default();
    show_certification(&certification, args.client.json);
    Ok(())
}

async fn confirm(args: ConfirmArgs) -> Result<(), Failure> {
    let json = args.client.json;
    let mut names: Vec<String> = args
        .names
        .iter()
        .map(|name| resource_name("pendingCertifications", name))
        .collect();
    let mut pages = Pages::new(args.page_size, args.page_token, args.all)?;
    let mut identity = IdentityServiceClient::new(authorized(&args.client).await?);
    if names.is_empty() {
        // List what is pending; with --all, gather every name first (confirming changes the
        // list being paged through) and confirm them below.
        while let Some(page_token) = pages.next_token() {
            let page = identity
                .list_pending_certifications(pb::ListPendingCertificationsRequest {
                    region_prefix: args.region.clone(),
                    page_size: pages.size,
                    page_token,
                })
                .await
                .map_err(|s| call_failed(&s))?
                .into_inner();
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
        let confirmed = identity
            .confirm_certifications(pb::ConfirmCertificationsRequest { names: batch.to_vec() })
            .await
            .map_err(|s| {
                let failure = call_failed(&s);
                Failure::failed(format!("{} ({certified} certified before this batch)", failure.message))
            })?
            .into_inner();
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

async fn employment(args: EmploymentArgs) -> Result<(), Failure> {
    let status = enum_value::<common::EmploymentStatus>("--status", &args.status)?;
    let start_date = parse_date("--from", &args.from)?;
    let end_date = optional_date("--to", args.to.as_deref())?;
    check_order(&start_date, end_date.as_ref())?;
    let mut identity = IdentityServiceClient::new(authorized(&args.client).await?);
    let recorded = identity
        .record_employment(pb::RecordEmploymentRequest {
            person: resource_name("persons", &args.person),
            record: Some(pb::EmploymentRecord {
                name: String::new(),
                status,
                employer: args.employer,
                work_region: args.work_region,
                start_date: Some(start_date),
                end_date,
                reporting_system: args.reporting_system,
            }),
            request_id: args.request_id,
        })
        .await
        .map_err(|s| call_failed(&s))?
        .into_inner();
    let record = recorded.record.unwrap_or_default();
    if args.client.json {
        say!(
            "{}",
            serde_json::json!({
                "name": record.name,
                "status": enum_wire::<common::EmploymentStatus>(record.status),
                "employer": record.employer,
                "work_region": record.work_region,
                "start_date": record.start_date.as_ref().map(date_text),
                "end_date": record.end_date.as_ref().map(date_text),
                "reporting_system": record.reporting_system,
                "current_status": enum_wire::<common::EmploymentStatus>(recorded.current_status),
            })
        );
    } else {
        print_rows(&[
            ("record", record.name.clone()),
            ("status", enum_label::<common::EmploymentStatus>(record.status)),
            ("employer", record.employer.clone()),
            ("work region", record.work_region.clone()),
            ("from", date_or_dash(record.start_date.as_ref())),
            ("to", date_or_dash(record.end_date.as_ref())),
            ("reported by", record.reporting_system.clone()),
            (
                "current status",
                enum_label::<common::EmploymentStatus>(recorded.current_status),
            ),
        ]);
    }
    Ok(())
}

async fn income(args: IncomeArgs) -> Result<(), Failure> {
    let month = parse_month("--month", &args.month)?;
    let month_text = format!("{:04}-{:02}", month.year, month.month);
    let fen = parse_yuan("--yuan", &args.yuan)?;
    let person = resource_name("persons", &args.person);
    let mut identity = IdentityServiceClient::new(authorized(&args.client).await?);
    let alerts = identity
        .record_income(pb::RecordIncomeRequest {
            person: person.clone(),
            month: Some(month),
            income: Some(common::Money { fen }),
            reporting_system: args.reporting_system,
            request_id: args.request_id,
        })
        .await
        .map_err(|s| call_failed(&s))?
        .into_inner()
        .alerts;
    if args.client.json {
        let alerts: Vec<Value> = alerts.iter().map(alert_json).collect();
        say!(
            "{}",
            serde_json::json!({ "person": person, "month": month_text, "fen": fen, "alerts": alerts })
        );
    } else {
        print_rows(&[
            ("person", person),
            ("month", month_text),
            ("income", format!("{} yuan", yuan_text(fen))),
            ("alerts", alerts.len().to_string()),
        ]);
        for alert in &alerts {
            say!("{}", alert_line(alert));
        }
    }
    Ok(())
}

async fn alerts(args: AlertsArgs) -> Result<(), Failure> {
    let json = args.client.json;
    if let Some(alert) = args.acknowledge {
        // clap makes --note come with --acknowledge; an empty note is the server's to refuse.
        let note = args.note.unwrap_or_default();
        let mut identity = IdentityServiceClient::new(authorized(&args.client).await?);
        let alert = identity
            .acknowledge_alert(pb::AcknowledgeAlertRequest {
                name: resource_name("alerts", &alert),
                note,
            })
            .await
            .map_err(|s| call_failed(&s))?
            .into_inner()
            .alert
            .unwrap_or_default();
        if json {
            say!("{}", alert_json(&alert));
        } else {
            print_rows(&[
                ("alert", alert.name.clone()),
                ("kind", enum_label::<pb::AlertKind>(alert.kind)),
                ("person", or_dash(&alert.person).to_string()),
                ("region", or_dash(&alert.region).to_string()),
                ("date", date_or_dash(alert.effective_date.as_ref())),
                ("drop", percent(alert.drop_basis_points)),
                (
                    "acknowledged",
                    stamp_text(alert.acknowledge_time.as_ref().map(|t| t.seconds)),
                ),
                ("by", alert.acknowledge_subject.clone()),
                ("note", alert.acknowledge_note.clone()),
            ]);
        }
        return Ok(());
    }
    let kind = enum_filter::<pb::AlertKind>("--kind", args.kind.as_deref())?;
    let mut pages = Pages::new(args.page.page_size, args.page.page_token, args.page.all)?;
    let mut identity = IdentityServiceClient::new(authorized(&args.client).await?);
    while let Some(page_token) = pages.next_token() {
        let page = identity
            .list_alerts(pb::ListAlertsRequest {
                region_prefix: args.region.clone(),
                kind,
                include_acknowledged: args.include_acknowledged,
                page_size: pages.size,
                page_token,
            })
            .await
            .map_err(|s| call_failed(&s))?
            .into_inner();
        for alert in &page.alerts {
            if json {
                say!("{}", alert_json(alert));
            } else {
                say!("{}", alert_line(alert));
            }
        }
        pages.fetched(page.next_page_token);
    }
    pages.finish(json);
    Ok(())
}

async fn watch(args: WatchArgs) -> Result<(), Failure> {
    use pb::watch_person_changes_response::Item;
    let json = args.client.json;
    let mut identity = IdentityServiceClient::new(authorized(&args.client).await?);
    let mut stream = identity
        .watch_person_changes(pb::WatchPersonChangesRequest {
            after_cursor: args.after.clone(),
            start_at_head: args.from_head,
        })
        .await
        .map_err(|s| call_failed(&s))?
        .into_inner();
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

async fn audit(args: AuditArgs) -> Result<(), Failure> {
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
    let mut identity = IdentityServiceClient::new(authorized(&args.client).await?);
    while let Some(page_token) = pages.next_token() {
        let page = identity
            .list_audit_events(pb::ListAuditEventsRequest {
                filter: Some(filter.clone()),
                page_size: pages.size,
                page_token,
            })
            .await
            .map_err(|s| call_failed(&s))?
            .into_inner();
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

async fn stats(args: StatsArgs) -> Result<(), Failure> {
    if ![2, 4, 6, 9, 12].contains(&args.group_by) {
        return Err(Failure::usage(format!(
            "--group-by {} is not one of 2, 4, 6, 9, 12 (digits of a division code)",
            args.group_by
        )));
    }
    let period = match (args.from.as_deref(), args.to.as_deref()) {
        (Some(from), Some(to)) => {
            let first_day = parse_date("--from", from)?;
            let last_day = parse_date("--to", to)?;
            check_order(&first_day, Some(&last_day))?;
            Some(common::Period {
                first_day: Some(first_day),
                last_day: Some(last_day),
            })
        }
        // clap gives --from and --to together or not at all.
        _ => None,
    };
    let mut identity = IdentityServiceClient::new(authorized(&args.client).await?);
    let regions = identity
        .get_monitoring_stats(pb::GetMonitoringStatsRequest {
            region_prefix: args.region,
            period,
            group_by_digits: args.group_by,
        })
        .await
        .map_err(|s| call_failed(&s))?
        .into_inner()
        .regions;
    if args.client.json {
        let regions: Vec<Value> = regions
            .iter()
            .map(|r| {
                serde_json::json!({
                    "region": r.region.as_ref().map(|c| c.code.as_str()),
                    "display_name": r.region.as_ref().map(|c| c.display_name.as_str()),
                    "target_persons": r.target_persons,
                    "persons_by_category": r.persons_by_category,
                    "persons_by_employment_status": r.persons_by_employment_status,
                })
            })
            .collect();
        say!("{}", serde_json::json!({ "regions": regions }));
        return Ok(());
    }
    let categories =
        stat_columns::<common::PersonCategory>(regions.iter().flat_map(|r| r.persons_by_category.keys().cloned()));
    let statuses = stat_columns::<common::EmploymentStatus>(
        regions
            .iter()
            .flat_map(|r| r.persons_by_employment_status.keys().cloned()),
    );
    let mut header = vec!["region".to_string(), "target".to_string()];
    header.extend(categories.iter().chain(&statuses).map(|(_, label)| label.clone()));
    header.push("name".to_string());
    let rows: Vec<Vec<String>> = regions
        .iter()
        .map(|r| {
            let (code, name) = r
                .region
                .as_ref()
                .map_or(("-", ""), |c| (c.code.as_str(), c.display_name.as_str()));
            let mut row = vec![code.to_string(), r.target_persons.to_string()];
            row.extend(categories.iter().map(|(key, _)| count(&r.persons_by_category, key)));
            row.extend(
                statuses
                    .iter()
                    .map(|(key, _)| count(&r.persons_by_employment_status, key)),
            );
            row.push(name.to_string());
            row
        })
        .collect();
    print_table(&header, &rows);
    Ok(())
}

fn show(person: &pb::Person, json: bool) {
    let region = |r: &Option<common::RegionCode>| {
        r.as_ref()
            .map(|r| format!("{} {}", r.code, r.display_name))
            .unwrap_or_default()
    };
    let retirement = person
        .retirement_month
        .as_ref()
        .map(|m| format!("{:04}-{:02}", m.year, m.month))
        .unwrap_or_default();
    if json {
        say!(
            "{}",
            serde_json::json!({
                "name": person.name,
                "display_name": person.display_name,
                "citizen_id": person.citizen_id,
                "registered_region": person.registered_region.as_ref().map(|r| r.code.clone()),
                "residence_region": person.residence_region.as_ref().map(|r| r.code.clone()),
                "retirement_month": retirement,
                "etag": person.etag,
            })
        );
    } else {
        print_rows(&[
            ("person", person.name.clone()),
            ("name", person.display_name.clone()),
            ("citizen id", person.citizen_id.clone()),
            ("registered", region(&person.registered_region)),
            ("residence", region(&person.residence_region)),
            ("retirement", retirement),
            ("certifications", person.certifications.len().to_string()),
            ("etag", person.etag.clone()),
        ]);
    }
}

fn show_certification(certification: &pb::Certification, json: bool) {
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

fn alert_json(alert: &pb::Alert) -> Value {
    serde_json::json!({
        "name": alert.name,
        "kind": enum_wire::<pb::AlertKind>(alert.kind),
        "person": alert.person,
        "region": alert.region,
        "effective_date": alert.effective_date.as_ref().map(date_text),
        "drop_basis_points": alert.drop_basis_points,
        "create_time": stamp_json(alert.create_time.as_ref().map(|t| t.seconds)),
        "acknowledge_time": stamp_json(alert.acknowledge_time.as_ref().map(|t| t.seconds)),
        "acknowledge_subject": alert.acknowledge_subject,
        "acknowledge_note": alert.acknowledge_note,
    })
}

/// One alert as a line: name, kind, person, region, date, drop, open or acknowledged.
fn alert_line(alert: &pb::Alert) -> String {
    let state = if alert.acknowledge_time.is_some() {
        "acknowledged"
    } else {
        "open"
    };
    format!(
        "{}  {}  {}  {}  {}  {}  {state}",
        alert.name,
        enum_label::<pb::AlertKind>(alert.kind),
        or_dash(&alert.person),
        or_dash(&alert.region),
        date_or_dash(alert.effective_date.as_ref()),
        percent(alert.drop_basis_points)
    )
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

/// Walks a list paged with next-page tokens: one page from the token given, or with `all`
/// every page to the end.
struct Pages {
    size: i32,
    next: Option<String>,
    all: bool,
    last: String,
}

impl Pages {
    fn new(size: i32, page_token: String, all: bool) -> Result<Self, Failure> {
        if !(0..=1000).contains(&size) {
            return Err(Failure::usage(format!(
                "--page-size {size} must be 0 (the server's default, 100) to 1000"
            )));
        }
        Ok(Self {
            size,
            next: Some(page_token),
            all,
            last: String::new(),
        })
    }

    /// The token of the page to fetch next; `None` when done.
    fn next_token(&mut self) -> Option<String> {
        self.next.take()
    }

    /// Takes note of a page's next-page token.
    fn fetched(&mut self, next_page_token: String) {
        if self.all && !next_page_token.is_empty() {
            self.next = Some(next_page_token.clone());
        }
        self.last = next_page_token;
    }

    /// Says where the next page starts, unless the list has ended.
    fn finish(&self, json: bool) {
        if self.last.is_empty() {
            return;
        }
        if json {
            say!("{}", serde_json::json!({ "next_page_token": self.last }));
        } else {
            say!("next page: --page-token {}", self.last);
        }
    }
}

/// A resource name from an argument that may be the bare id: `ab12` is `persons/ab12`.
fn resource_name(collection: &str, text: &str) -> String {
    let text = text.trim();
    if text.contains('/') {
        text.to_string()
    } else {
        format!("{collection}/{text}")
    }
}

fn or_dash(text: &str) -> &str {
    if text.is_empty() { "-" } else { text }
}

/// A proto enum as flags and tables spell it: `poverty-alleviated` for
/// `PERSON_CATEGORY_POVERTY_ALLEVIATED`.
trait ProtoEnum: Copy {
    /// What every value's name starts with, without the joining underscore.
    const PREFIX: &'static str;
    fn from_number(number: i32) -> Option<Self>;
    fn from_wire_name(name: &str) -> Option<Self>;
    fn number(self) -> i32;
    fn wire_name(self) -> &'static str;
}

macro_rules! proto_enums {
    ($($enum:ty => $prefix:literal,)*) => {$(
        impl ProtoEnum for $enum {
            const PREFIX: &'static str = $prefix;
            fn from_number(number: i32) -> Option<Self> {
                Self::try_from(number).ok()
            }
            fn from_wire_name(name: &str) -> Option<Self> {
                Self::from_str_name(name)
            }
            fn number(self) -> i32 {
                self as i32
            }
            fn wire_name(self) -> &'static str {
                self.as_str_name()
            }
        }
    )*};
}

proto_enums! {
    common::PersonCategory => "PERSON_CATEGORY",
    common::MonitoredHouseholdType => "MONITORED_HOUSEHOLD_TYPE",
    common::EmploymentStatus => "EMPLOYMENT_STATUS",
    common::AuditOutcome => "AUDIT_OUTCOME",
    common::AccessPurposeCode => "ACCESS_PURPOSE_CODE",
    pb::AlertKind => "ALERT_KIND",
    pb::ChangeKind => "CHANGE_KIND",
    pb::CorrectionState => "CORRECTION_STATE",
}

/// `PERSON_CATEGORY_POVERTY_ALLEVIATED` as `poverty-alleviated`.
fn kebab(prefix: &str, name: &str) -> String {
    name.strip_prefix(prefix)
        .and_then(|rest| rest.strip_prefix('_'))
        .unwrap_or(name)
        .to_ascii_lowercase()
        .replace('_', "-")
}

fn flag_name<E: ProtoEnum>(value: E) -> String {
    kebab(E::PREFIX, value.wire_name())
}

/// An enum flag's value (`poverty-alleviated`, `poverty_alleviated`, any case, or the full
/// name) as its number on the wire; anything else is a usage error listing the valid ones.
fn enum_value<E: ProtoEnum>(flag: &str, text: &str) -> Result<i32, Failure> {
    let upper = text.trim().replace('-', "_").to_ascii_uppercase();
    let value = E::from_wire_name(&upper).or_else(|| E::from_wire_name(&format!("{}_{upper}", E::PREFIX)));
    match value {
        Some(value) if value.number() != 0 => Ok(value.number()),
        _ => {
            let valid: Vec<String> = (1..=255).filter_map(E::from_number).map(flag_name::<E>).collect();
            Err(Failure::usage(format!(
                "{flag} {text:?} is not one of {}",
                valid.join(", ")
            )))
        }
    }
}

/// An optional enum flag: 0 (unspecified, no filter) when not given.
fn enum_filter<E: ProtoEnum>(flag: &str, text: Option<&str>) -> Result<i32, Failure> {
    text.map_or(Ok(0), |text| enum_value::<E>(flag, text))
}

/// An enum field in a table: its flag spelling, `-` when unspecified, the number if unknown.
fn enum_label<E: ProtoEnum>(number: i32) -> String {
    if number == 0 {
        return "-".to_string();
    }
    E::from_number(number).map_or_else(|| number.to_string(), flag_name::<E>)
}

/// An enum field in JSON: its name in the contract, the number if unknown.
fn enum_wire<E: ProtoEnum>(number: i32) -> String {
    E::from_number(number).map_or_else(|| number.to_string(), |value| value.wire_name().to_string())
}

/// The keys a stats map uses across regions, in the enum's order, each with its column label.
fn stat_columns<E: ProtoEnum>(keys: impl Iterator<Item = String>) -> Vec<(String, String)> {
    let keys: BTreeSet<String> = keys.collect();
    let mut columns: Vec<(i32, String, String)> = keys
        .into_iter()
        .map(|key| {
            let value = E::from_wire_name(&key);
            let order = value.map_or(i32::MAX, E::number);
            let label = value.map_or_else(|| kebab(E::PREFIX, &key), flag_name::<E>);
            (order, key, label)
        })
        .collect();
    columns.sort();
    columns.into_iter().map(|(_, key, label)| (key, label)).collect()
}

fn count(counts: &std::collections::HashMap<String, i64>, key: &str) -> String {
    counts.get(key).copied().unwrap_or(0).to_string()
}

/// Prints a table: the first column left-aligned, the last as it is, the others right-aligned.
fn print_table(header: &[String], rows: &[Vec<String>]) {
    let mut widths: Vec<usize> = header.iter().map(|cell| cell.chars().count()).collect();
    for row in rows {
        for (width, cell) in widths.iter_mut().zip(row) {
            *width = (*width).max(cell.chars().count());
        }
    }
    for row in std::iter::once(header).chain(rows.iter().map(Vec::as_slice)) {
        let last = row.len().saturating_sub(1);
        let cells: Vec<String> = row
            .iter()
            .zip(widths.iter().copied())
            .enumerate()
            .map(|(column, (cell, width))| {
                if column == 0 {
                    format!("{cell:<width$}")
                } else if column == last {
                    cell.clone()
                } else {
                    format!("{cell:>width$}")
                }
            })
            .collect();
        say!("{}", cells.join("  "));
    }
}

/// The numbers of `YYYY-MM` or `YYYY-MM-DD`: a 4-digit year, then 1- or 2-digit parts.
fn date_numbers(text: &str) -> Option<Vec<i32>> {
    let mut numbers = Vec::new();
    for (index, part) in text.trim().split('-').enumerate() {
        let width = if index == 0 { 4..=4 } else { 1..=2 };
        if !width.contains(&part.len()) || !part.bytes().all(|b| b.is_ascii_digit()) {
            return None;
        }
        numbers.push(part.parse::<i32>().ok()?);
    }
    Some(numbers)
}

fn calendar_date(year: i32, month: i32, day: i32) -> Option<time::Date> {
    if !(1900..=9999).contains(&year) {
        return None;
    }
    let month = time::Month::try_from(u8::try_from(month).ok()?).ok()?;
    time::Date::from_calendar_date(year, month, u8::try_from(day).ok()?).ok()
}

/// A `YYYY-MM-DD` flag as a business date.
fn parse_date(flag: &str, text: &str) -> Result<common::Date, Failure> {
    match date_numbers(text).as_deref() {
        Some(&[year, month, day]) if calendar_date(year, month, day).is_some() => Ok(common::Date { year, month, day }),
        _ => Err(Failure::usage(format!(
            "{flag} {text:?} is not a date: give YYYY-MM-DD, e.g. 2025-03-31"
        ))),
    }
}

fn optional_date(flag: &str, text: Option<&str>) -> Result<Option<common::Date>, Failure> {
    text.map(|text| parse_date(flag, text)).transpose()
}

/// A `YYYY-MM` flag as a month.
fn parse_month(flag: &str, text: &str) -> Result<common::YearMonth, Failure> {
    match date_numbers(text).as_deref() {
        Some(&[year, month]) if calendar_date(year, month, 1).is_some() => Ok(common::YearMonth { year, month }),
        _ => Err(Failure::usage(format!(
            "{flag} {text:?} is not a month: give YYYY-MM, e.g. 2025-03"
        ))),
    }
}

/// Refuses a last day before the first.
fn check_order(from: &common::Date, to: Option<&common::Date>) -> Result<(), Failure> {
    match to {
        Some(to) if (to.year, to.month, to.day) < (from.year, from.month, from.day) => Err(Failure::usage(format!(
            "--to {} is before --from {}",
            date_text(to),
            date_text(from)
        ))),
        _ => Ok(()),
    }
}

/// `2026-03-02`, or `1971-04` for a date given to the month (a masked birth date).
fn date_text(date: &common::Date) -> String {
    if date.day == 0 {
        format!("{:04}-{:02}", date.year, date.month)
    } else {
        format!("{:04}-{:02}-{:02}", date.year, date.month, date.day)
    }
}

fn date_or_dash(date: Option<&common::Date>) -> String {
    date.map_or_else(|| "-".to_string(), date_text)
}

/// A time flag, `YYYY-MM-DD` (midnight in UTC+8) or RFC 3339, as Unix seconds and nanoseconds.
fn parse_instant(flag: &str, text: &str) -> Result<(i64, i32), Failure> {
    if let Ok(at) = time::OffsetDateTime::parse(text.trim(), &time::format_description::well_known::Rfc3339) {
        return Ok((at.unix_timestamp(), i32::try_from(at.nanosecond()).unwrap_or(0)));
    }
    let bad = || {
        Failure::usage(format!(
            "{flag} {text:?} is neither a date (YYYY-MM-DD, from midnight in UTC+8) nor a time like 2025-03-01T08:30:00+08:00"
        ))
    };
    let date = parse_date(flag, text).map_err(|_| bad())?;
    let day = calendar_date(date.year, date.month, date.day).ok_or_else(bad)?;
    Ok((day.midnight().assume_utc().unix_timestamp() - CHINA_OFFSET_SECONDS, 0))
}

/// Unix seconds as an RFC 3339 time in UTC+8.
fn stamp_json(seconds: Option<i64>) -> Option<String> {
    let seconds = seconds?;
    let text = seconds
        .checked_add(CHINA_OFFSET_SECONDS)
        .and_then(|local| time::OffsetDateTime::from_unix_timestamp(local).ok())
        .and_then(|local| {
            local
                .format(time::macros::format_description!(
                    "[year]-[month]-[day]T[hour]:[minute]:[second]+08:00"
                ))
                .ok()
        })
        .unwrap_or_else(|| seconds.to_string());
    Some(text)
}

fn stamp_text(seconds: Option<i64>) -> String {
    stamp_json(seconds).unwrap_or_else(|| "-".to_string())
}

/// Decimal yuan (`2350`, `2350.5`, `2350.50`) as fen, read as text so nothing is rounded: no
/// sign, at most two decimals.
fn parse_yuan(flag: &str, text: &str) -> Result<i64, Failure> {
    let amount = text.trim();
    let (whole, fraction) = amount.split_once('.').unwrap_or((amount, ""));
    let digits = |part: &str| part.bytes().all(|b| b.is_ascii_digit());
    if whole.is_empty() || !digits(whole) || !digits(fraction) || (amount.contains('.') && fraction.is_empty()) {
        return Err(Failure::usage(format!(
            "{flag} {text:?} is not an amount in yuan like 2350 or 2350.50 (no sign: income is not negative)"
        )));
    }
    if fraction.len() > 2 {
        return Err(Failure::usage(format!(
            "{flag} {text:?} has more than two decimals: the smallest unit is the fen (0.01 yuan)"
        )));
    }
    let fen = whole
        .parse::<i64>()
        .ok()
        .zip(format!("{fraction:0<2}").parse::<i64>().ok())
        .and_then(|(yuan, fen)| yuan.checked_mul(100)?.checked_add(fen));
    fen.ok_or_else(|| Failure::usage(format!("{flag} {text:?} is too large")))
}

/// Fen as yuan with two decimals.
fn yuan_text(fen: i64) -> String {
    let sign = if fen < 0 { "-" } else { "" };
    let fen = fen.unsigned_abs();
    let (yuan, cents) = (fen / 100, fen % 100);
    format!("{sign}{yuan}.{cents:02}")
}

/// Basis points as a percentage; `-` for none.
fn percent(basis_points: i64) -> String {
    if basis_points == 0 {
        return "-".to_string();
    }
    let sign = if basis_points < 0 { "-" } else { "" };
    let points = basis_points.unsigned_abs();
    let (whole, hundredths) = (points / 100, points % 100);
    format!("{sign}{whole}.{hundredths:02}%")
}
