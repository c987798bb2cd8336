//! `bangfu exchange …`: the labor-cooperation desk (鲁渝劳务协作) from the command line — the
//! partners and their state, asking a partner whether one of its persons is a target person,
//! the partners' postings as received, the message log with signatures and receipts, the
//! confirmations received for persons we do not know, and the year's cooperation counts. The
//! same path as every command: parse, connect with the token, call, print the answer whole.

use bangfu_proto::exchange::v1 as pb;
use bangfu_proto::exchange::v1::exchange_service_client::ExchangeServiceClient;
use clap::{Args, Subcommand};

use crate::Failure;
use crate::client::{Authorized, ClientArgs, PageArgs, authorized, call, list_pages};
use crate::format::{optional_date, print_table, resource_name};
use crate::print::{Columns, show};

const PARTNER: Columns = Columns {
    message: "bangfu.exchange.v1.Partner",
    columns: &[
        ("partner", "name"),
        ("region", "region_prefix"),
        ("waiting", "waiting_messages"),
        ("last contact", "last_contact_time"),
        ("address", "url"),
        ("last error", "last_error"),
    ],
};

const PARTNER_POSTING: Columns = Columns {
    message: "bangfu.exchange.v1.PartnerPosting",
    columns: &[
        ("partner", "partner"),
        ("posting", "posting.posting_id"),
        ("withdrawn", "withdrawn"),
        ("here", "local_posting"),
        ("where", "posting.work_region"),
        ("from", "posting.wage_min"),
        ("to", "posting.wage_max"),
        ("title", "posting.title"),
        ("employer", "posting.employer"),
        ("error", "last_error"),
    ],
};

const MESSAGE: Columns = Columns {
    message: "bangfu.exchange.v1.ExchangeMessage",
    columns: &[
        ("message", "name"),
        ("direction", "direction"),
        ("partner", "partner"),
        ("method", "method"),
        ("items", "item_count"),
        ("result", "result"),
        ("sent", "send_time"),
        ("chain", "sequence"),
    ],
};

const CONFIRMATION: Columns = Columns {
    message: "bangfu.exchange.v1.ReceivedConfirmation",
    columns: &[
        ("partner", "partner"),
        ("confirmation", "confirmation_id"),
        ("outcome", "outcome"),
        ("person", "person"),
        ("from", "start_date"),
        ("where", "work_region"),
        ("employer", "employer"),
    ],
};

type Exchange = ExchangeServiceClient<Authorized>;

async fn connect(client: &ClientArgs) -> Result<Exchange, Failure> {
    Ok(ExchangeServiceClient::new(authorized(client).await?))
}

#[derive(Debug, Subcommand)]
pub enum ExchangeCommand {
    /// The partner provinces configured, with their state: last contact, messages waiting.
    Partners(PartnersArgs),
    /// Asks a partner whether one of its persons is a target person on a day (minimized answer).
    Verify(VerifyArgs),
    /// The partners' shared postings as received, and the postings they became here.
    Postings(PostingsArgs),
    /// The message log, newest first; or one message with its signature and receipt.
    Messages(MessagesArgs),
    /// Confirmations received from partners (UNMATCHED: persons we do not know, for a clerk).
    Confirmations(ConfirmationsArgs),
    /// The year's cooperation: partner workers employed here, ours employed there, the targets.
    Stats(StatsArgs),
    /// The service's parameters (rules by region and date): list them, or set one value.
    #[command(subcommand)]
    Parameter(crate::parameters_cli::ParameterCommand),
}

pub async fn run(command: ExchangeCommand) -> Result<(), Failure> {
    match command {
        ExchangeCommand::Parameter(command) => {
            crate::parameters_cli::run(crate::parameters_cli::Service::Exchange, command).await
        }
        ExchangeCommand::Partners(args) => partners(args).await,
        ExchangeCommand::Verify(args) => verify(args).await,
        ExchangeCommand::Postings(args) => postings(args).await,
        ExchangeCommand::Messages(args) => messages(args).await,
        ExchangeCommand::Confirmations(args) => confirmations(args).await,
        ExchangeCommand::Stats(args) => stats(args).await,
    }
}

#[derive(Debug, Args)]
pub struct PartnersArgs {
    #[command(flatten)]
    client: ClientArgs,
}

async fn partners(args: PartnersArgs) -> Result<(), Failure> {
    let mut exchange = connect(&args.client).await?;
    let answer = call(exchange.list_partners(pb::ListPartnersRequest {})).await?;
    crate::print::table(&PARTNER.rows(&answer.partners)?, PARTNER.columns, args.client.output())?;
    Ok(())
}

#[derive(Debug, Args)]
pub struct VerifyArgs {
    #[command(flatten)]
    client: ClientArgs,
    /// The citizen ID to ask about (the partner's person).
    citizen_id: String,
    /// The partner to ask, e.g. chongqing.
    #[arg(long)]
    partner: String,
    /// The day the answer is for, YYYY-MM-DD (default: today).
    #[arg(long)]
    on: Option<String>,
    /// A name to compare with the registered one; only whether it matched is answered.
    #[arg(long, default_value = "")]
    name: String,
}

async fn verify(args: VerifyArgs) -> Result<(), Failure> {
    let on_date = optional_date("--on", args.on.as_deref())?;
    let mut exchange = connect(&args.client).await?;
    let answer = call(exchange.verify_partner_person(pb::VerifyPartnerPersonRequest {
        partner: resource_name("partners", &args.partner),
        citizen_id: args.citizen_id.trim().to_string(),
        on_date,
        display_name: args.name.trim().to_string(),
    }))
    .await?;
    show(
        "bangfu.exchange.v1.VerifyPartnerPersonResponse",
        &answer,
        args.client.json,
    )
}

#[derive(Debug, Args)]
pub struct PostingsArgs {
    #[command(flatten)]
    client: ClientArgs,
    /// Only this partner's, e.g. chongqing.
    #[arg(long)]
    partner: Option<String>,
    /// Also the postings the partner withdrew.
    #[arg(long)]
    withdrawn: bool,
    #[command(flatten)]
    page: PageArgs,
}

async fn postings(args: PostingsArgs) -> Result<(), Failure> {
    let mut exchange = connect(&args.client).await?;
    let partner = args
        .partner
        .as_deref()
        .map(|p| resource_name("partners", p))
        .unwrap_or_default();
    let withdrawn = args.withdrawn;
    list_pages(
        &mut exchange,
        args.client.output(),
        &args.page,
        &PARTNER_POSTING,
        |exchange, page_size, page_token| {
            let request = pb::ListPartnerPostingsRequest {
                partner: partner.clone(),
                show_withdrawn: withdrawn,
                page_size,
                page_token,
            };
            Box::pin(async move {
                let page = call(exchange.list_partner_postings(request)).await?;
                Ok((page.postings, page.next_page_token))
            })
        },
    )
    .await
}

#[derive(Debug, Args)]
pub struct MessagesArgs {
    #[command(flatten)]
    client: ClientArgs,
    /// Show this message whole (its number or "messages/N").
    message: Option<String>,
    /// Only this partner's, e.g. chongqing.
    #[arg(long)]
    partner: Option<String>,
    /// Only this direction: outgoing or incoming.
    #[arg(long)]
    direction: Option<String>,
    /// Only this method, e.g. VerifyPerson.
    #[arg(long, default_value = "")]
    method: String,
    #[command(flatten)]
    page: PageArgs,
}

async fn messages(args: MessagesArgs) -> Result<(), Failure> {
    let mut exchange = connect(&args.client).await?;
    if let Some(message) = &args.message {
        let answer = call(exchange.get_message(pb::GetMessageRequest {
            name: resource_name("messages", message),
        }))
        .await?;
        return show("bangfu.exchange.v1.GetMessageResponse", &answer, args.client.json);
    }
    let direction = match args.direction.as_deref() {
        None => pb::MessageDirection::Unspecified,
        Some("outgoing") => pb::MessageDirection::Outgoing,
        Some("incoming") => pb::MessageDirection::Incoming,
        Some(other) => {
            return Err(Failure::usage(format!(
                "--direction {other:?} must be outgoing or incoming"
            )));
        }
    } as i32;
    let partner = args
        .partner
        .as_deref()
        .map(|p| resource_name("partners", p))
        .unwrap_or_default();
    let method = args.method.trim().to_string();
    list_pages(
        &mut exchange,
        args.client.output(),
        &args.page,
        &MESSAGE,
        |exchange, page_size, page_token| {
            let request = pb::ListExchangeMessagesRequest {
                partner: partner.clone(),
                direction,
                method: method.clone(),
                page_size,
                page_token,
            };
            Box::pin(async move {
                let page = call(exchange.list_exchange_messages(request)).await?;
                Ok((page.messages, page.next_page_token))
            })
        },
    )
    .await
}

#[derive(Debug, Args)]
pub struct ConfirmationsArgs {
    #[command(flatten)]
    client: ClientArgs,
    /// Only this outcome: recorded, unmatched or pending.
    #[arg(long)]
    outcome: Option<String>,
    #[command(flatten)]
    page: PageArgs,
}

async fn confirmations(args: ConfirmationsArgs) -> Result<(), Failure> {
    let outcome = match args.outcome.as_deref() {
        None => pb::ConfirmationOutcome::Unspecified,
        Some("recorded") => pb::ConfirmationOutcome::Recorded,
        Some("unmatched") => pb::ConfirmationOutcome::Unmatched,
        Some("pending") => pb::ConfirmationOutcome::Pending,
        Some(other) => {
            return Err(Failure::usage(format!(
                "--outcome {other:?} must be recorded, unmatched or pending"
            )));
        }
    } as i32;
    let mut exchange = connect(&args.client).await?;
    list_pages(
        &mut exchange,
        args.client.output(),
        &args.page,
        &CONFIRMATION,
        |exchange, page_size, page_token| {
            let request = pb::ListReceivedConfirmationsRequest {
                outcome,
                page_size,
                page_token,
            };
            Box::pin(async move {
                let page = call(exchange.list_received_confirmations(request)).await?;
                Ok((page.confirmations, page.next_page_token))
            })
        },
    )
    .await
}

#[derive(Debug, Args)]
pub struct StatsArgs {
    #[command(flatten)]
    client: ClientArgs,
    /// The year, e.g. 2026 (default: this year).
    #[arg(long)]
    year: Option<i32>,
}

async fn stats(args: StatsArgs) -> Result<(), Failure> {
    let year = args.year.unwrap_or_else(|| {
        time::OffsetDateTime::now_utc()
            .to_offset(time::macros::offset!(+8))
            .year()
    });
    let mut exchange = connect(&args.client).await?;
    let answer = call(exchange.get_cooperation_stats(pb::GetCooperationStatsRequest { year })).await?;
    if args.client.json {
        return show("bangfu.exchange.v1.GetCooperationStatsResponse", &answer, true);
    }
    if let Some(period) = &answer.period {
        say!(
            "统计期间 {} 至 {}",
            crate::format::date_or_dash(period.first_day.as_ref()),
            crate::format::date_or_dash(period.last_day.as_ref())
        );
    }
    let mut rows: Vec<Vec<String>> = answer
        .partners
        .iter()
        .map(|p| {
            vec![
                p.partner.clone(),
                p.partner_workers_employed_here.to_string(),
                p.partner_target_workers_employed_here.to_string(),
                p.partner_workers_unverified.to_string(),
                p.our_workers_employed_there.to_string(),
                p.our_postings_shared.to_string(),
                p.partner_postings_open.to_string(),
            ]
        })
        .collect();
    rows.push(vec![
        "合计".into(),
        answer.partner_workers_employed_here.to_string(),
        answer.partner_target_workers_employed_here.to_string(),
        String::new(),
        String::new(),
        String::new(),
        String::new(),
    ]);
    rows.push(vec![
        "目标".into(),
        answer.target_partner_workers.to_string(),
        answer.target_partner_target_workers.to_string(),
        String::new(),
        String::new(),
        String::new(),
        String::new(),
    ]);
    let header: Vec<String> = [
        "partner",
        "their workers here",
        "of them target",
        "not yet verified",
        "ours there",
        "our postings shared",
        "their postings open",
    ]
    .map(String::from)
    .to_vec();
    print_table(&header, &rows);
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_column_names_a_field_of_its_message() {
        for layout in [&PARTNER, &PARTNER_POSTING, &MESSAGE, &CONFIRMATION] {
            layout.check().unwrap_or_else(|e| panic!("{}: {e}", layout.message));
        }
    }
}
