//! The reading commands: one record whole, or a list as a table (JSON lines with `--json`),
//! page by page.

use bangfu_proto::subsidy::v1 as pb;
use clap::Args;

use super::{Subsidy, batch_name, connect};
use crate::Failure;
use crate::client::{ClientArgs, Page, PageArgs, Pages, call, list_pages};
use crate::format::{enum_filter, optional_date, resource_name};
use crate::print::{Columns, Listing};

pub(super) const POLICY: Columns = Columns {
    message: "bangfu.subsidy.v1.Policy",
    columns: &[
        ("policy", "code"),
        ("group", "policy_group"),
        ("period", "period_kind"),
        ("in force", "in_force_version"),
        ("title", "title"),
    ],
};

pub(super) const FUND: Columns = Columns {
    message: "bangfu.subsidy.v1.Fund",
    columns: &[
        ("fund", "name"),
        ("region", "region_prefix"),
        ("year", "year"),
        ("budget", "budget"),
        ("reserved", "reserved"),
        ("paid", "consumed"),
        ("available", "available"),
        ("name", "display_name"),
    ],
};

pub(super) const CLAIM: Columns = Columns {
    message: "bangfu.subsidy.v1.Claim",
    columns: &[
        ("claim", "name"),
        ("state", "state"),
        ("period", "period"),
        ("amount", "decision.amount"),
        ("policy", "policy"),
        ("person", "person_display_name"),
    ],
};

pub(super) const PAYEE_ACCOUNT: Columns = Columns {
    message: "bangfu.subsidy.v1.PayeeAccount",
    columns: &[
        ("account", "name"),
        ("number", "masked_account_number"),
        ("holder", "holder_name"),
        ("check", "verification_state"),
        ("in use", "in_use"),
        ("bank", "bank_name"),
    ],
};

pub(super) const PAYMENT_BATCH: Columns = Columns {
    message: "bangfu.subsidy.v1.PaymentBatch",
    columns: &[
        ("batch", "name"),
        ("state", "state"),
        ("lines", "control_count"),
        ("amount", "control_amount"),
        ("name", "display_name"),
    ],
};

pub(super) const PAYMENT_LINE: Columns = Columns {
    message: "bangfu.subsidy.v1.PaymentLine",
    columns: &[
        ("line", "line_number"),
        ("state", "state"),
        ("amount", "amount"),
        ("account", "masked_account_number"),
        ("payee", "payee_display_name"),
    ],
};

pub(super) const RECOVERY: Columns = Columns {
    message: "bangfu.subsidy.v1.Recovery",
    columns: &[
        ("recovery", "name"),
        ("state", "state"),
        ("reason", "reason"),
        ("amount", "amount"),
        ("returned", "returned_amount"),
        ("claim", "claim"),
        ("person", "person_display_name"),
    ],
};

pub(super) const STATEMENT_LINE: Columns = Columns {
    message: "bangfu.subsidy.v1.StatementLine",
    columns: &[
        ("claim", "claim"),
        ("period", "period"),
        ("state", "state"),
        ("granted", "granted_amount"),
        ("paid", "paid_amount"),
        ("to return", "to_return_amount"),
        ("policy", "policy_title"),
    ],
};

/// Prints a list page by page as `page` says (see [`list_pages`]).
async fn list<M: prost::Message>(
    client: &ClientArgs,
    page: &PageArgs,
    layout: &Columns,
    fetch: impl for<'a> Fn(&'a mut Subsidy, i32, String) -> Page<'a, M>,
) -> Result<(), Failure> {
    let mut subsidy = connect(client).await?;
    list_pages(&mut subsidy, client.output(), page, layout, fetch).await
}

#[derive(Debug, Args)]
pub struct PoliciesArgs {
    #[command(flatten)]
    client: ClientArgs,
    /// Show this policy whole (its code or name), with the version in force.
    policy: Option<String>,
    /// Only policies issued for this region prefix.
    #[arg(long, default_value = "")]
    region_prefix: String,
    /// Only policies with a version in force on this day (YYYY-MM-DD).
    #[arg(long)]
    in_force_on: Option<String>,
    #[command(flatten)]
    page: PageArgs,
}

pub async fn policies(args: PoliciesArgs) -> Result<(), Failure> {
    if let Some(policy) = &args.policy {
        let mut subsidy = connect(&args.client).await?;
        let answer = call(subsidy.get_policy(pb::GetPolicyRequest {
            name: resource_name("policies", policy),
        }))
        .await?;
        show("bangfu.subsidy.v1.GetPolicyResponse", &answer, args.client.json)?;
        // No version in force today (the seed documents ended on 2025-12-31): the latest is
        // what a clerk needs to see, and what a new version would replace.
        let latest = answer.policy.map(|p| p.latest_version).unwrap_or_default();
        if answer.in_force_version.is_none() && !latest.is_empty() {
            let version = call(subsidy.get_policy_version(pb::GetPolicyVersionRequest { name: latest })).await?;
            if !args.client.json {
                say!("");
                say!("no version is in force today; the latest version:");
            }
            show("bangfu.subsidy.v1.GetPolicyVersionResponse", &version, args.client.json)?;
        }
        return Ok(());
    }
    let in_force_on = optional_date("--in-force-on", args.in_force_on.as_deref())?;
    let region_prefix = args.region_prefix.clone();
    list(&args.client, &args.page, &POLICY, |subsidy, page_size, page_token| {
        let request = pb::ListPoliciesRequest {
            region_prefix: region_prefix.clone(),
            in_force_on,
            page_size,
            page_token,
            ..Default::default()
        };
        Box::pin(async move {
            let page = call(subsidy.list_policies(request)).await?;
            Ok((page.policies, page.next_page_token))
        })
    })
    .await
}

#[derive(Debug, Args)]
pub struct FundsArgs {
    #[command(flatten)]
    client: ClientArgs,
    /// Show this fund whole (its id or name).
    fund: Option<String>,
    /// Only funds of regions under this prefix.
    #[arg(long, default_value = "")]
    region_prefix: String,
    /// Only funds of this budget year.
    #[arg(long, default_value_t = 0)]
    year: i32,
    #[command(flatten)]
    page: PageArgs,
}

pub async fn funds(args: FundsArgs) -> Result<(), Failure> {
    if let Some(fund) = &args.fund {
        let mut subsidy = connect(&args.client).await?;
        let answer = call(subsidy.get_fund(pb::GetFundRequest {
            name: resource_name("funds", fund),
        }))
        .await?;
        return show("bangfu.subsidy.v1.GetFundResponse", &answer, args.client.json);
    }
    let (region_prefix, year) = (args.region_prefix.clone(), args.year);
    list(&args.client, &args.page, &FUND, |subsidy, page_size, page_token| {
        let request = pb::ListFundsRequest {
            region_prefix: region_prefix.clone(),
            year,
            page_size,
            page_token,
            ..Default::default()
        };
        Box::pin(async move {
            let page = call(subsidy.list_funds(request)).await?;
            Ok((page.funds, page.next_page_token))
        })
    })
    .await
}

#[derive(Debug, Args)]
pub struct ClaimsArgs {
    #[command(flatten)]
    client: ClientArgs,
    /// Show this claim whole (its id or name): decision, frozen facts, reviews.
    claim: Option<String>,
    /// Only this person's claims (id or persons/…).
    #[arg(long)]
    person: Option<String>,
    /// Only claims in this state (proposed, pending-review, approved, in-batch, paid, …).
    #[arg(long)]
    state: Option<String>,
    /// Only claims under this policy (code or name).
    #[arg(long)]
    policy: Option<String>,
    /// Only claims submitted by this system (welfare-post, jobs, work-relief, subsidy-payment).
    #[arg(long, default_value = "")]
    source_system: String,
    /// Only the claims of this batch.
    #[arg(long)]
    payment_batch: Option<String>,
    #[command(flatten)]
    page: PageArgs,
}

pub async fn claims(args: ClaimsArgs) -> Result<(), Failure> {
    if let Some(claim) = &args.claim {
        let mut subsidy = connect(&args.client).await?;
        let answer = call(subsidy.get_claim(pb::GetClaimRequest {
            name: resource_name("claims", claim),
        }))
        .await?;
        return show("bangfu.subsidy.v1.GetClaimResponse", &answer, args.client.json);
    }
    let filter = pb::ListClaimsRequest {
        person: args
            .person
            .as_deref()
            .map(|p| resource_name("persons", p))
            .unwrap_or_default(),
        state: enum_filter::<pb::ClaimState>("--state", args.state.as_deref())?,
        policy: args
            .policy
            .as_deref()
            .map(|p| resource_name("policies", p))
            .unwrap_or_default(),
        source_system: args.source_system.clone(),
        payment_batch: args.payment_batch.as_deref().map(batch_name).unwrap_or_default(),
        ..Default::default()
    };
    list(&args.client, &args.page, &CLAIM, |subsidy, page_size, page_token| {
        let request = pb::ListClaimsRequest {
            page_size,
            page_token,
            ..filter.clone()
        };
        Box::pin(async move {
            let page = call(subsidy.list_claims(request)).await?;
            Ok((page.claims, page.next_page_token))
        })
    })
    .await
}

#[derive(Debug, Args)]
pub struct AccountsArgs {
    #[command(flatten)]
    client: ClientArgs,
    /// Only this person's accounts (id or persons/…).
    #[arg(long)]
    person: Option<String>,
    /// Only the accounts of the organization with this unified social credit code.
    #[arg(long, default_value = "")]
    credit_code: String,
    #[command(flatten)]
    page: PageArgs,
}

pub async fn accounts(args: AccountsArgs) -> Result<(), Failure> {
    let filter = pb::ListPayeeAccountsRequest {
        person: args
            .person
            .as_deref()
            .map(|p| resource_name("persons", p))
            .unwrap_or_default(),
        credit_code: args.credit_code.clone(),
        ..Default::default()
    };
    list(
        &args.client,
        &args.page,
        &PAYEE_ACCOUNT,
        |subsidy, page_size, page_token| {
            let request = pb::ListPayeeAccountsRequest {
                page_size,
                page_token,
                ..filter.clone()
            };
            Box::pin(async move {
                let page = call(subsidy.list_payee_accounts(request)).await?;
                Ok((page.payee_accounts, page.next_page_token))
            })
        },
    )
    .await
}

#[derive(Debug, Args)]
pub struct AccountArgs {
    #[command(flatten)]
    client: ClientArgs,
    /// The account's id or name.
    account: String,
}

pub async fn account(args: AccountArgs) -> Result<(), Failure> {
    let mut subsidy = connect(&args.client).await?;
    let answer = call(subsidy.get_payee_account(pb::GetPayeeAccountRequest {
        name: resource_name("payeeAccounts", &args.account),
    }))
    .await?;
    show("bangfu.subsidy.v1.GetPayeeAccountResponse", &answer, args.client.json)
}

#[derive(Debug, Args)]
pub struct BatchesArgs {
    #[command(flatten)]
    client: ClientArgs,
    /// Only the batches of this fund (id or funds/…).
    #[arg(long)]
    fund: Option<String>,
    /// Only batches in this state (draft, notice, awaiting-approval, approved, exported, …).
    #[arg(long)]
    state: Option<String>,
    /// Only batches of regions under this prefix.
    #[arg(long, default_value = "")]
    region_prefix: String,
    #[command(flatten)]
    page: PageArgs,
}

pub async fn batches(args: BatchesArgs) -> Result<(), Failure> {
    let filter = pb::ListPaymentBatchesRequest {
        fund: args
            .fund
            .as_deref()
            .map(|f| resource_name("funds", f))
            .unwrap_or_default(),
        region_prefix: args.region_prefix.clone(),
        state: enum_filter::<pb::PaymentBatchState>("--state", args.state.as_deref())?,
        ..Default::default()
    };
    list(
        &args.client,
        &args.page,
        &PAYMENT_BATCH,
        |subsidy, page_size, page_token| {
            let request = pb::ListPaymentBatchesRequest {
                page_size,
                page_token,
                ..filter.clone()
            };
            Box::pin(async move {
                let page = call(subsidy.list_payment_batches(request)).await?;
                Ok((page.payment_batches, page.next_page_token))
            })
        },
    )
    .await
}

#[derive(Debug, Args)]
pub struct BatchArgs {
    #[command(flatten)]
    client: ClientArgs,
    /// The batch's id or name.
    batch: String,
}

pub async fn batch(args: BatchArgs) -> Result<(), Failure> {
    let mut subsidy = connect(&args.client).await?;
    let answer = call(subsidy.get_payment_batch(pb::GetPaymentBatchRequest {
        name: batch_name(&args.batch),
    }))
    .await?;
    show("bangfu.subsidy.v1.GetPaymentBatchResponse", &answer, args.client.json)
}

#[derive(Debug, Args)]
pub struct LinesArgs {
    #[command(flatten)]
    client: ClientArgs,
    /// The batch's id or name.
    batch: String,
    /// Only lines in this state (pending, paid, failed, cancelled).
    #[arg(long)]
    state: Option<String>,
    #[command(flatten)]
    page: PageArgs,
}

pub async fn lines(args: LinesArgs) -> Result<(), Failure> {
    let filter = pb::ListPaymentLinesRequest {
        parent: batch_name(&args.batch),
        state: enum_filter::<pb::PaymentLineState>("--state", args.state.as_deref())?,
        ..Default::default()
    };
    list(
        &args.client,
        &args.page,
        &PAYMENT_LINE,
        |subsidy, page_size, page_token| {
            let request = pb::ListPaymentLinesRequest {
                page_size,
                page_token,
                ..filter.clone()
            };
            Box::pin(async move {
                let page = call(subsidy.list_payment_lines(request)).await?;
                Ok((page.lines, page.next_page_token))
            })
        },
    )
    .await
}

#[derive(Debug, Args)]
pub struct StatementArgs {
    #[command(flatten)]
    client: ClientArgs,
    /// The person's id or name.
    person: String,
    /// Only claims for periods from this day (YYYY-MM-DD); needs --to.
    #[arg(long, requires = "to")]
    from: Option<String>,
    /// Only claims for periods to this day (YYYY-MM-DD).
    #[arg(long, requires = "from")]
    to: Option<String>,
    #[command(flatten)]
    page: PageArgs,
}

pub async fn statement(args: StatementArgs) -> Result<(), Failure> {
    let period = match (
        optional_date("--from", args.from.as_deref())?,
        optional_date("--to", args.to.as_deref())?,
    ) {
        (Some(first_day), Some(last_day)) => {
            crate::format::check_order(&first_day, Some(&last_day))?;
            Some(bangfu_proto::common::v1::Period {
                first_day: Some(first_day),
                last_day: Some(last_day),
            })
        }
        _ => None,
    };
    let mut subsidy = connect(&args.client).await?;
    let mut pages = Pages::new(args.page.page_size, args.page.page_token.clone(), args.page.all)?;
    let mut listing = Listing::to_file(args.client.output(), args.page.output.clone());
    while let Some(page_token) = pages.next_token() {
        let answer = call(subsidy.get_person_statement(pb::GetPersonStatementRequest {
            person: resource_name("persons", &args.person),
            period,
            page_size: pages.size,
            page_token,
        }))
        .await?;
        let statement = answer.statement.unwrap_or_default();
        if !args.client.json {
            say!("{} {}", statement.person, statement.person_display_name);
        }
        listing.page(&STATEMENT_LINE.rows(&statement.lines)?, STATEMENT_LINE.columns);
        pages.fetched(answer.next_page_token);
    }
    listing.finish()?;
    pages.finish(args.client.output());
    Ok(())
}

#[derive(Debug, Args)]
pub struct RecoveriesArgs {
    #[command(flatten)]
    client: ClientArgs,
    /// Only this person's recoveries (id or persons/…).
    #[arg(long)]
    person: Option<String>,
    /// Only recoveries in this state (open, returned, written-off, cancelled).
    #[arg(long)]
    state: Option<String>,
    #[command(flatten)]
    page: PageArgs,
}

pub async fn recoveries(args: RecoveriesArgs) -> Result<(), Failure> {
    let filter = pb::ListRecoveriesRequest {
        person: args
            .person
            .as_deref()
            .map(|p| resource_name("persons", p))
            .unwrap_or_default(),
        state: enum_filter::<pb::RecoveryState>("--state", args.state.as_deref())?,
        ..Default::default()
    };
    list(&args.client, &args.page, &RECOVERY, |subsidy, page_size, page_token| {
        let request = pb::ListRecoveriesRequest {
            page_size,
            page_token,
            ..filter.clone()
        };
        Box::pin(async move {
            let page = call(subsidy.list_recoveries(request)).await?;
            Ok((page.recoveries, page.next_page_token))
        })
    })
    .await
}

/// Prints one answer whole.
pub(super) use crate::print::show;
