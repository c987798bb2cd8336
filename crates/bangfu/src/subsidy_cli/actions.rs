//! The commands that change something. Each reads the record first for its etag, so a
//! change made by someone else in between is refused (ABORTED) rather than overwritten, and
//! prints the record as the change left it.

use bangfu_proto::common::v1 as common;
use bangfu_proto::subsidy::v1 as pb;
use clap::Args;

use super::reads::show;
use super::{Subsidy, batch_name, connect};
use crate::Failure;
use crate::client::{ClientArgs, PageArgs, Pages, call};
use crate::format::{enum_value, optional_date, parse_date, parse_yuan, resource_name};
use crate::print::{Columns, Listing, record, reflect};

pub(super) const NOTICE_LINE: Columns = Columns {
    message: "bangfu.subsidy.v1.PublicNoticeLine",
    columns: &[
        ("line", "line_number"),
        ("name", "masked_name"),
        ("amount", "amount"),
        ("period", "period_label"),
        ("subsidy", "subsidy_item"),
    ],
};

async fn claim_etag(subsidy: &mut Subsidy, name: &str) -> Result<String, Failure> {
    let claim = call(subsidy.get_claim(pb::GetClaimRequest { name: name.to_string() }))
        .await?
        .claim
        .unwrap_or_default();
    Ok(claim.etag)
}

async fn batch_etag(subsidy: &mut Subsidy, name: &str) -> Result<String, Failure> {
    let batch = call(subsidy.get_payment_batch(pb::GetPaymentBatchRequest { name: name.to_string() }))
        .await?
        .payment_batch
        .unwrap_or_default();
    Ok(batch.etag)
}

#[derive(Debug, Args)]
pub struct ReviewArgs {
    #[command(flatten)]
    client: ClientArgs,
    /// The claim's id or name.
    claim: String,
    /// Approve it.
    #[arg(long, conflicts_with = "reject", required_unless_present = "reject")]
    approve: bool,
    /// Reject it.
    #[arg(long)]
    reject: bool,
    /// What was checked; for a rejection, why (1 to 500 characters).
    #[arg(long)]
    note: String,
}

pub async fn review(args: ReviewArgs) -> Result<(), Failure> {
    let name = resource_name("claims", &args.claim);
    let mut subsidy = connect(&args.client).await?;
    let etag = claim_etag(&mut subsidy, &name).await?;
    let verdict = if args.approve {
        pb::ReviewVerdict::Approve
    } else {
        pb::ReviewVerdict::Reject
    };
    let answer = call(subsidy.review_claim(pb::ReviewClaimRequest {
        name,
        verdict: verdict as i32,
        note: args.note,
        etag,
    }))
    .await?;
    show("bangfu.subsidy.v1.ReviewClaimResponse", &answer, args.client.json)
}

#[derive(Debug, Args)]
pub struct ReevaluateArgs {
    #[command(flatten)]
    client: ClientArgs,
    /// The claim's id or name: rejected, waiting for review or approved.
    claim: String,
    /// Why it is decided again: the correction made, the version published (1 to 500
    /// characters).
    #[arg(long)]
    note: String,
}

/// Decides a claim again with the facts and the policy version as they are now, e.g. after a
/// region's standard was entered; the earlier decision is kept.
pub async fn reevaluate(args: ReevaluateArgs) -> Result<(), Failure> {
    let name = resource_name("claims", &args.claim);
    let mut subsidy = connect(&args.client).await?;
    let etag = claim_etag(&mut subsidy, &name).await?;
    let answer = call(subsidy.reevaluate_claim(pb::ReevaluateClaimRequest {
        name,
        note: args.note,
        etag,
    }))
    .await?;
    show("bangfu.subsidy.v1.ReevaluateClaimResponse", &answer, args.client.json)
}

#[derive(Debug, Args)]
pub struct ConfirmArgs {
    #[command(flatten)]
    client: ClientArgs,
    /// The proposed claim's id or name.
    claim: String,
    /// A money fact the proposal lacks, NAME=YUAN (e.g. transport_fare_fen=325.50); repeat.
    #[arg(long = "money", value_name = "NAME=YUAN")]
    money: Vec<String>,
    /// A whole-number fact, NAME=N (e.g. contract_months=12); repeat.
    #[arg(long = "integer", value_name = "NAME=N")]
    integer: Vec<String>,
    /// A text fact, NAME=TEXT; repeat.
    #[arg(long = "text", value_name = "NAME=TEXT")]
    text: Vec<String>,
    /// A date fact, NAME=YYYY-MM-DD; repeat.
    #[arg(long = "date", value_name = "NAME=YYYY-MM-DD")]
    date: Vec<String>,
    /// A yes/no fact, NAME=true or NAME=false; repeat.
    #[arg(long = "boolean", value_name = "NAME=true|false")]
    boolean: Vec<String>,
    /// Decline the proposal instead (the person does not want it, the change was wrong).
    #[arg(long)]
    decline: bool,
    /// What was checked with the person; for a decline, why (1 to 500 characters).
    #[arg(long)]
    note: String,
}

fn split_fact<'a>(flag: &str, text: &'a str) -> Result<(&'a str, &'a str), Failure> {
    text.split_once('=')
        .filter(|(name, _)| !name.trim().is_empty())
        .map(|(name, value)| (name.trim(), value.trim()))
        .ok_or_else(|| Failure::usage(format!("{flag} {text:?} is not NAME=VALUE")))
}

fn fact(name: &str, value: pb::fact_value::Value) -> pb::Fact {
    pb::Fact {
        name: name.to_string(),
        value: Some(pb::FactValue { value: Some(value) }),
    }
}

/// The facts the flags give, each with the type its flag says.
fn facts(args: &ConfirmArgs) -> Result<Vec<pb::Fact>, Failure> {
    use pb::fact_value::Value;
    let mut facts = Vec::new();
    for text in &args.money {
        let (name, value) = split_fact("--money", text)?;
        let fen = parse_yuan("--money", value)?;
        facts.push(fact(name, Value::MoneyValue(common::Money { fen })));
    }
    for text in &args.integer {
        let (name, value) = split_fact("--integer", text)?;
        let number = value
            .parse::<i64>()
            .map_err(|_| Failure::usage(format!("--integer {text:?}: {value:?} is not a whole number")))?;
        facts.push(fact(name, Value::IntegerValue(number)));
    }
    for text in &args.text {
        let (name, value) = split_fact("--text", text)?;
        facts.push(fact(name, Value::TextValue(value.to_string())));
    }
    for text in &args.date {
        let (name, value) = split_fact("--date", text)?;
        facts.push(fact(name, Value::DateValue(parse_date("--date", value)?)));
    }
    for text in &args.boolean {
        let (name, value) = split_fact("--boolean", text)?;
        let yes = match value.to_ascii_lowercase().as_str() {
            "true" | "yes" | "1" => true,
            "false" | "no" | "0" => false,
            _ => return Err(Failure::usage(format!("--boolean {text:?}: give true or false"))),
        };
        facts.push(fact(name, Value::BooleanValue(yes)));
    }
    Ok(facts)
}

pub async fn confirm(args: ConfirmArgs) -> Result<(), Failure> {
    let facts = facts(&args)?;
    if args.decline && !facts.is_empty() {
        return Err(Failure::usage(
            "a declined proposal takes no facts: give --decline or the facts",
        ));
    }
    let name = resource_name("claims", &args.claim);
    let mut subsidy = connect(&args.client).await?;
    let etag = claim_etag(&mut subsidy, &name).await?;
    let answer = call(subsidy.confirm_proposed_claim(pb::ConfirmProposedClaimRequest {
        name,
        facts,
        decline: args.decline,
        note: args.note,
        etag,
    }))
    .await?;
    show(
        "bangfu.subsidy.v1.ConfirmProposedClaimResponse",
        &answer,
        args.client.json,
    )
}

#[derive(Debug, Args)]
pub struct RegisterAccountArgs {
    #[command(flatten)]
    client: ClientArgs,
    /// The person the account is for (id or persons/…).
    #[arg(long)]
    person: String,
    /// The holder's name as the bank has it.
    #[arg(long)]
    holder_name: String,
    /// The holder's citizen ID (checked against identity with the name; stored encrypted).
    #[arg(long)]
    citizen_id: String,
    /// The card or account number, digits only.
    #[arg(long)]
    account_number: String,
    /// The bank's name.
    #[arg(long)]
    bank_name: String,
    /// The branch's clearing code (联行号), 12 digits.
    #[arg(long, default_value = "")]
    bank_code: String,
    /// social-security-card (社保卡) or bank-account.
    #[arg(long, default_value = "social-security-card")]
    kind: String,
    /// A unique id for this registration, so a retry registers it once.
    #[arg(long, default_value = "")]
    request_id: String,
}

pub async fn register_account(args: RegisterAccountArgs) -> Result<(), Failure> {
    let kind = enum_value::<pb::PayeeAccountKind>("--kind", &args.kind)?;
    let mut subsidy = connect(&args.client).await?;
    let answer = call(subsidy.register_payee_account(pb::RegisterPayeeAccountRequest {
        payee_account: Some(pb::PayeeAccount {
            owner: Some(pb::Payee {
                payee: Some(pb::payee::Payee::Person(resource_name("persons", &args.person))),
            }),
            kind,
            account_number: args.account_number,
            holder_name: args.holder_name,
            holder_citizen_id: args.citizen_id,
            bank_name: args.bank_name,
            bank_code: args.bank_code,
            ..Default::default()
        }),
        request_id: args.request_id,
    }))
    .await?;
    show(
        "bangfu.subsidy.v1.RegisterPayeeAccountResponse",
        &answer,
        args.client.json,
    )
}

#[derive(Debug, Args)]
pub struct CreateBatchArgs {
    #[command(flatten)]
    client: ClientArgs,
    /// The batch's title, e.g. "2025年3月市中区公益性岗位补贴".
    #[arg(long)]
    display_name: String,
    /// The fund it pays from (id or funds/…).
    #[arg(long)]
    fund: String,
    /// The region whose claims it takes (a prefix inside the fund's).
    #[arg(long)]
    region_prefix: String,
    /// Only claims under these policies (code or name); repeat. All of the fund's otherwise.
    #[arg(long = "policy")]
    policies: Vec<String>,
    /// Only claims whose period ends on or before this day (YYYY-MM-DD).
    #[arg(long)]
    period_to: Option<String>,
    /// Take again the claims whose payment failed.
    #[arg(long)]
    include_failed_payments: bool,
    /// A unique id for this creation, so a retry creates one batch.
    #[arg(long, default_value = "")]
    request_id: String,
}

pub async fn create_batch(args: CreateBatchArgs) -> Result<(), Failure> {
    let period_last_day_on_or_before = optional_date("--period-to", args.period_to.as_deref())?;
    let mut subsidy = connect(&args.client).await?;
    let answer = call(subsidy.create_payment_batch(pb::CreatePaymentBatchRequest {
        payment_batch: Some(pb::PaymentBatch {
            display_name: args.display_name,
            selection: Some(pb::ClaimSelection {
                fund: resource_name("funds", &args.fund),
                region_prefix: args.region_prefix,
                policies: args.policies.iter().map(|p| resource_name("policies", p)).collect(),
                period_last_day_on_or_before,
                include_failed_payments: args.include_failed_payments,
            }),
            ..Default::default()
        }),
        request_id: args.request_id,
    }))
    .await?;
    show(
        "bangfu.subsidy.v1.CreatePaymentBatchResponse",
        &answer,
        args.client.json,
    )
}

#[derive(Debug, Args)]
pub struct CancelBatchArgs {
    #[command(flatten)]
    client: ClientArgs,
    /// The batch's id or name.
    batch: String,
    /// Why (1 to 500 characters).
    #[arg(long)]
    reason: String,
}

pub async fn cancel_batch(args: CancelBatchArgs) -> Result<(), Failure> {
    let name = batch_name(&args.batch);
    let mut subsidy = connect(&args.client).await?;
    let etag = batch_etag(&mut subsidy, &name).await?;
    let answer = call(subsidy.cancel_payment_batch(pb::CancelPaymentBatchRequest {
        name,
        reason: args.reason,
        etag,
    }))
    .await?;
    show(
        "bangfu.subsidy.v1.CancelPaymentBatchResponse",
        &answer,
        args.client.json,
    )
}

#[derive(Debug, Args)]
pub struct NoticeArgs {
    #[command(flatten)]
    client: ClientArgs,
    /// The batch's id or name.
    batch: String,
    /// Publish the notice first (the batch must be a draft).
    #[arg(long, requires_all = ["objection_contact", "issuer"])]
    publish: bool,
    /// With --publish: the office issuing the notice, as printed on it (e.g. 枣庄市市中区财政局).
    #[arg(long)]
    issuer: Option<String>,
    /// With --publish: the notice's first day (YYYY-MM-DD; default today).
    #[arg(long)]
    first_day: Option<String>,
    /// With --publish: where objections go (an office and a phone number), shown on the notice.
    #[arg(long)]
    objection_contact: Option<String>,
    /// Only the lines of regions under this prefix (one village's or township's sheet).
    #[arg(long, default_value = "")]
    region_prefix: String,
    #[command(flatten)]
    page: PageArgs,
}

pub async fn notice(args: NoticeArgs) -> Result<(), Failure> {
    let name = batch_name(&args.batch);
    let first_day = optional_date("--first-day", args.first_day.as_deref())?;
    let mut subsidy = connect(&args.client).await?;
    if args.publish {
        let etag = batch_etag(&mut subsidy, &name).await?;
        call(subsidy.publish_batch_notice(pb::PublishBatchNoticeRequest {
            name: name.clone(),
            first_day,
            objection_contact: args.objection_contact.clone().unwrap_or_default(),
            etag,
            issuer: args.issuer.clone().unwrap_or_default(),
        }))
        .await?;
    }
    let mut pages = Pages::new(args.page.page_size, args.page.page_token.clone(), args.page.all)?;
    let mut first = true;
    let mut listing = Listing::to_file(args.client.output(), args.page.output.clone());
    while let Some(page_token) = pages.next_token() {
        let answer = call(subsidy.get_public_notice(pb::GetPublicNoticeRequest {
            name: format!("{name}/publicNotice"),
            region_prefix: args.region_prefix.clone(),
            page_size: pages.size,
            page_token,
        }))
        .await?;
        let mut notice = answer.public_notice.unwrap_or_default();
        let lines = std::mem::take(&mut notice.lines);
        if first && !args.client.json {
            record(&reflect("bangfu.subsidy.v1.PublicNotice", &notice)?, false);
            say!("");
        }
        first = false;
        listing.page(&NOTICE_LINE.rows(&lines)?, NOTICE_LINE.columns);
        pages.fetched(answer.next_page_token);
    }
    listing.finish()?;
    pages.finish(args.client.output());
    Ok(())
}

#[derive(Debug, Args)]
pub struct ObjectArgs {
    #[command(flatten)]
    client: ClientArgs,
    /// The batch's id or name.
    batch: String,
    /// The notice line objected to.
    #[arg(long, required_unless_present = "resolve")]
    line: Option<i64>,
    /// How the objection came: phone, in-person, letter, online.
    #[arg(long, default_value = "in-person")]
    channel: String,
    /// What the objector says.
    #[arg(long, required_unless_present = "resolve")]
    content: Option<String>,
    /// How to reach the objector (stored encrypted, shown masked).
    #[arg(long, default_value = "")]
    contact: String,
    /// The day it was received (YYYY-MM-DD; default today).
    #[arg(long)]
    received: Option<String>,
    /// Resolve this objection (its id or name) instead, with --uphold or --dismiss.
    #[arg(long, conflicts_with_all = ["line", "content"])]
    resolve: Option<String>,
    /// Uphold it: the batch is cancelled and the contested claim goes back to review.
    #[arg(long, requires = "resolve", conflicts_with = "dismiss")]
    uphold: bool,
    /// Dismiss it.
    #[arg(long, requires = "resolve")]
    dismiss: bool,
    /// With --resolve: what was checked and found.
    #[arg(long, requires = "resolve")]
    finding: Option<String>,
}

pub async fn object(args: ObjectArgs) -> Result<(), Failure> {
    let batch = batch_name(&args.batch);
    let mut subsidy = connect(&args.client).await?;
    if let Some(objection) = &args.resolve {
        if args.uphold == args.dismiss {
            return Err(Failure::usage("--resolve needs --uphold or --dismiss"));
        }
        let finding = args
            .finding
            .clone()
            .ok_or_else(|| Failure::usage("--resolve needs --finding: what was checked and found"))?;
        let name = if objection.contains('/') {
            objection.clone()
        } else {
            format!("{batch}/objections/{objection}")
        };
        let etag = batch_etag(&mut subsidy, &batch).await?;
        let resolution = if args.uphold {
            pb::ObjectionState::Upheld
        } else {
            pb::ObjectionState::Dismissed
        };
        let answer = call(subsidy.resolve_objection(pb::ResolveObjectionRequest {
            name,
            resolution: resolution as i32,
            finding,
            etag,
        }))
        .await?;
        return show("bangfu.subsidy.v1.ResolveObjectionResponse", &answer, args.client.json);
    }
    let received_date = optional_date("--received", args.received.as_deref())?;
    let answer = call(subsidy.raise_objection(pb::RaiseObjectionRequest {
        parent: batch,
        objection: Some(pb::Objection {
            line_number: args.line.unwrap_or_default(),
            channel: enum_value::<pb::ObjectionChannel>("--channel", &args.channel)?,
            content: args.content.clone().unwrap_or_default(),
            objector_contact: args.contact.clone(),
            received_date,
            ..Default::default()
        }),
        request_id: String::new(),
    }))
    .await?;
    show("bangfu.subsidy.v1.RaiseObjectionResponse", &answer, args.client.json)
}

#[derive(Debug, Args)]
pub struct ApproveArgs {
    #[command(flatten)]
    client: ClientArgs,
    /// The batch's id or name.
    batch: String,
    /// What was checked (1 to 500 characters).
    #[arg(long)]
    note: String,
}

pub async fn approve(args: ApproveArgs) -> Result<(), Failure> {
    let name = batch_name(&args.batch);
    let mut subsidy = connect(&args.client).await?;
    let etag = batch_etag(&mut subsidy, &name).await?;
    let answer = call(subsidy.approve_payment_batch(pb::ApprovePaymentBatchRequest {
        name,
        note: args.note,
        etag,
    }))
    .await?;
    show(
        "bangfu.subsidy.v1.ApprovePaymentBatchResponse",
        &answer,
        args.client.json,
    )
}

#[derive(Debug, Args)]
pub struct SetStandardArgs {
    #[command(flatten)]
    client: ClientArgs,
    /// The policy's code or name, e.g. cy-training-living-2021.
    policy: String,
    /// The standards table's key, e.g. rural_min_living_monthly.
    #[arg(long)]
    table: String,
    /// The region prefix the figure applies to, e.g. 2113 (or * for everywhere).
    #[arg(long)]
    region: String,
    /// The calendar year it applies to.
    #[arg(long)]
    year: i32,
    /// The figure in yuan, e.g. 520 or 457.10.
    #[arg(long)]
    value: String,
    /// Where the figure comes from, e.g. 朝阳市民政局2024年农村低保标准通知.
    #[arg(long)]
    source: String,
}

/// Enters a region's figure in a standards table: a new draft version of the policy, the latest
/// version with the row added (or replaced for the same region and year). A finance reviewer
/// other than its author publishes it (`bangfu subsidy publish-version`); until then claims use
/// the version in force.
pub async fn set_standard(args: SetStandardArgs) -> Result<(), Failure> {
    let policy = resource_name("policies", &args.policy);
    let fen = parse_yuan("--value", &args.value)?;
    let mut subsidy = connect(&args.client).await?;
    let latest = call(subsidy.get_policy(pb::GetPolicyRequest { name: policy.clone() }))
        .await?
        .policy
        .unwrap_or_default()
        .latest_version;
    let mut version = call(subsidy.get_policy_version(pb::GetPolicyVersionRequest { name: latest }))
        .await?
        .version
        .unwrap_or_default();
    if version.state == pb::PolicyVersionState::Draft as i32 {
        return Err(Failure::usage(format!(
            "{} is a draft waiting to be published; publish it first, then enter the figure",
            version.name
        )));
    }
    let Some(table) = version.standards_tables.iter_mut().find(|t| t.key == args.table) else {
        let keys: Vec<&str> = version.standards_tables.iter().map(|t| t.key.as_str()).collect();
        return Err(Failure::usage(format!(
            "{policy} has no standards table {}; its tables: {}",
            args.table,
            keys.join(", ")
        )));
    };
    let region = args.region.trim().to_string();
    table
        .rows
        .retain(|row| !(row.region_prefix == region && row.year == args.year));
    table.rows.push(pb::StandardsRow {
        region_prefix: region.clone(),
        year: args.year,
        value: Some(common::Money { fen }),
        source: args.source,
    });
    let change_note = format!(
        "录入标准表 {} 地区 {region} {} 年：{} 元",
        args.table,
        args.year,
        args.value.trim()
    );
    let version = pb::PolicyVersion {
        name: String::new(),
        version: 0,
        state: 0,
        change_note,
        create_subject: String::new(),
        create_time: None,
        publish_subject: String::new(),
        publish_time: None,
        ..version
    };
    let answer = call(subsidy.create_policy_version(pb::CreatePolicyVersionRequest {
        parent: policy,
        version: Some(version),
        request_id: String::new(),
        validate_only: false,
    }))
    .await?;
    show(
        "bangfu.subsidy.v1.CreatePolicyVersionResponse",
        &answer,
        args.client.json,
    )
}

#[derive(Debug, Args)]
pub struct PublishVersionArgs {
    #[command(flatten)]
    client: ClientArgs,
    /// The draft version's name, e.g. policies/cy-training-living-2021/versions/2.
    version: String,
    /// What was checked (1 to 500 characters).
    #[arg(long)]
    note: String,
}

/// Publishes a draft policy version (a finance reviewer other than its author).
pub async fn publish_version(args: PublishVersionArgs) -> Result<(), Failure> {
    let mut subsidy = connect(&args.client).await?;
    let answer = call(subsidy.publish_policy_version(pb::PublishPolicyVersionRequest {
        name: args.version.trim().to_string(),
        note: args.note,
    }))
    .await?;
    show(
        "bangfu.subsidy.v1.PublishPolicyVersionResponse",
        &answer,
        args.client.json,
    )
}
