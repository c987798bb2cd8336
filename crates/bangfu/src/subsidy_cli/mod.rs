//! `bangfu subsidy …`: subsidy payment from the command line, for finance clerks, reviewers and
//! auditors. Every command takes the identity commands' path — parse the flags (a usage error
//! before anything is sent), connect with the token, call, print — and prints the server's
//! answer whole through [`crate::print`]: every field as rows, or `--json` for scripts.
//!
//! The modules follow a payroll's course: `reads` (catalog, funds, claims, accounts,
//! batches, statements, recoveries), `actions` (review, confirm, register, batch steps), and
//! `files` (an account list in, the disbursement file out, the bank's results in).

mod actions;
mod files;
mod reads;

use bangfu_proto::subsidy::v1::subsidy_service_client::SubsidyServiceClient;
use clap::Subcommand;

use crate::Failure;
use crate::client::{Authorized, ClientArgs, authorized};
use crate::format::resource_name;

#[derive(Debug, Subcommand)]
pub enum SubsidyCommand {
    /// The policy catalog: every policy with its version in force, or one policy whole.
    Policies(reads::PoliciesArgs),
    /// Funds with their budget, reserved, paid and available amounts, or one fund whole.
    Funds(reads::FundsArgs),
    /// Claims in your scope, filtered, or one claim whole with its decision and frozen facts.
    Claims(reads::ClaimsArgs),
    /// Review a claim waiting for review (--approve or --reject, with a note).
    Review(actions::ReviewArgs),
    /// Decide a claim again with the facts and policy versions as they are now (a correction
    /// made, a region's standard entered); the earlier decision is kept.
    Reevaluate(actions::ReevaluateArgs),
    /// Confirm a proposed claim (免申即享) with the facts checked with the person, or decline it.
    Confirm(actions::ConfirmArgs),
    /// Payee accounts: list, show, register one, or import a bank's or a county's list.
    #[command(subcommand)]
    Accounts(AccountsCommand),
    /// Payment batches: create, list, show, list their lines, cancel.
    #[command(subcommand)]
    Batch(BatchCommand),
    /// A batch's public notice (公示): publish it, or show it for printing or posting.
    Notice(actions::NoticeArgs),
    /// Record an objection to a batch's line during the notice, or resolve one.
    Object(actions::ObjectArgs),
    /// Approve a batch after its notice (a second person from its creator).
    Approve(actions::ApproveArgs),
    /// Write an approved batch's disbursement file for the 一卡通 system (audited).
    Export(files::ExportArgs),
    /// Read the bank's result file for a batch and print the reconciliation.
    ImportResults(files::ImportResultsArgs),
    /// What a person was granted, paid and asked to return.
    Statement(reads::StatementArgs),
    /// Recoveries (追回): money asked back after identity's corrections.
    Recoveries(reads::RecoveriesArgs),
    /// Enter a region's figure in a policy's standards table (e.g. the local rural
    /// minimum-living standard): a new draft version for a second reviewer to publish.
    SetStandard(actions::SetStandardArgs),
    /// Publish a draft policy version (a finance reviewer other than its author).
    PublishVersion(actions::PublishVersionArgs),
    /// The service's parameters (rules by region and date): list them, or set one value.
    #[command(subcommand)]
    Parameter(crate::parameters_cli::ParameterCommand),
}

#[derive(Debug, Subcommand)]
pub enum AccountsCommand {
    /// Accounts in your scope, of a person or an organization, masked.
    List(reads::AccountsArgs),
    /// One account, masked.
    Get(reads::AccountArgs),
    /// Register a person's account, checked against identity by name and citizen ID.
    Register(actions::RegisterAccountArgs),
    /// Register a bank's or a county's account list (CSV, UTF-8 or GBK), streaming; prints
    /// each refused row.
    Import(files::AccountsImportArgs),
}

#[derive(Debug, Subcommand)]
pub enum BatchCommand {
    /// Take the approved, unpaid claims of a fund and region into a new batch.
    Create(actions::CreateBatchArgs),
    /// Batches in your scope.
    List(reads::BatchesArgs),
    /// One batch whole, with its control totals and reconciliation.
    Get(reads::BatchArgs),
    /// A batch's lines (masked).
    Lines(reads::LinesArgs),
    /// Cancel a batch before export; its claims go back to the pool.
    Cancel(actions::CancelBatchArgs),
}

/// The subsidy service over one connection that sends the token on every call.
type Subsidy = SubsidyServiceClient<Authorized>;

async fn connect(client: &ClientArgs) -> Result<Subsidy, Failure> {
    Ok(SubsidyServiceClient::new(authorized(client).await?))
}

pub async fn run(command: SubsidyCommand) -> Result<(), Failure> {
    match command {
        SubsidyCommand::Parameter(command) => {
            crate::parameters_cli::run(crate::parameters_cli::Service::Subsidy, command).await
        }
        SubsidyCommand::Policies(args) => reads::policies(args).await,
        SubsidyCommand::Funds(args) => reads::funds(args).await,
        SubsidyCommand::Claims(args) => reads::claims(args).await,
        SubsidyCommand::Review(args) => actions::review(args).await,
        SubsidyCommand::Reevaluate(args) => actions::reevaluate(args).await,
        SubsidyCommand::Confirm(args) => actions::confirm(args).await,
        SubsidyCommand::Accounts(AccountsCommand::List(args)) => reads::accounts(args).await,
        SubsidyCommand::Accounts(AccountsCommand::Get(args)) => reads::account(args).await,
        SubsidyCommand::Accounts(AccountsCommand::Register(args)) => actions::register_account(args).await,
        SubsidyCommand::Accounts(AccountsCommand::Import(args)) => files::import_accounts(args).await,
        SubsidyCommand::Batch(BatchCommand::Create(args)) => actions::create_batch(args).await,
        SubsidyCommand::Batch(BatchCommand::List(args)) => reads::batches(args).await,
        SubsidyCommand::Batch(BatchCommand::Get(args)) => reads::batch(args).await,
        SubsidyCommand::Batch(BatchCommand::Lines(args)) => reads::lines(args).await,
        SubsidyCommand::Batch(BatchCommand::Cancel(args)) => actions::cancel_batch(args).await,
        SubsidyCommand::Notice(args) => actions::notice(args).await,
        SubsidyCommand::Object(args) => actions::object(args).await,
        SubsidyCommand::Approve(args) => actions::approve(args).await,
        SubsidyCommand::Export(args) => files::export(args).await,
        SubsidyCommand::ImportResults(args) => files::import_results(args).await,
        SubsidyCommand::Statement(args) => reads::statement(args).await,
        SubsidyCommand::Recoveries(args) => reads::recoveries(args).await,
        SubsidyCommand::SetStandard(args) => actions::set_standard(args).await,
        SubsidyCommand::PublishVersion(args) => actions::publish_version(args).await,
    }
}

/// A batch's resource name from its id or name.
fn batch_name(text: &str) -> String {
    resource_name("paymentBatches", text)
}

#[cfg(test)]
mod tests {
    #[test]
    fn every_table_column_names_a_field_of_its_message() {
        for layout in [
            &super::reads::POLICY,
            &super::reads::FUND,
            &super::reads::CLAIM,
            &super::reads::PAYEE_ACCOUNT,
            &super::reads::PAYMENT_BATCH,
            &super::reads::PAYMENT_LINE,
            &super::reads::RECOVERY,
            &super::reads::STATEMENT_LINE,
            &super::actions::NOTICE_LINE,
            &super::files::ACCOUNT_ROW,
            &super::files::BANK_LINE,
        ] {
            layout.check().unwrap_or_else(|e| panic!("{}: {e}", layout.message));
        }
    }
}
