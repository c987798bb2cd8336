//! `bangfu identity …`: the person registry from the command line, for administrators and
//! clerks, and for trying the suite. Reads the address and token like every client command.
//!
//! Every command takes the same path: parse its flags (a usage error before anything is
//! sent), [`connect_identity`], make its calls through [`crate::client::call`], print with
//! [`crate::format`]. The modules follow the service's areas.

mod audit;
mod certifications;
mod corrections;
mod feed;
mod households;
mod monitoring;
mod persons;

use bangfu_proto::identity::v1::identity_service_client::IdentityServiceClient;
use clap::Subcommand;

use crate::Failure;
use crate::client::{Authorized, ClientArgs, authorized};

#[derive(Debug, Subcommand)]
pub enum IdentityCommand {
    /// Register a person.
    Create(persons::CreateArgs),
    /// Show a person's whole record: masked, or in clear with --unmasked --purpose (audited).
    Get(persons::GetArgs),
    /// Change what changes in a life: name, phone, regions, labor capacity, skills, death,
    /// moving away. Refused, changing nothing, when someone else changed the person meanwhile.
    Update(persons::UpdateArgs),
    /// Find a person by citizen ID (audited); with --name, say whether it matches. Exits 4
    /// when no person in your scope holds the ID.
    Find(persons::FindArgs),
    /// Look up a whole file of citizen IDs (CSV or workbook) in batches of 1,000 and write
    /// a result file: found or not, name match, person.
    Lookup(persons::LookupArgs),
    /// Households: create, show, add or remove a member, change the head.
    #[command(subcommand)]
    Household(households::HouseholdCommand),
    /// List the persons in your scope, masked: one line each with resource name, citizen ID,
    /// registered region and name, then the token of the next page.
    List(persons::ListArgs),
    /// Propose correcting a mistyped citizen ID (PERSON --citizen-id --reason); another
    /// reviewer applies it with --approve CORRECTION_NAME, or refuses it adding --reject.
    CorrectId(corrections::CorrectIdArgs),
    /// Certify a person into a category for a period, on a document.
    Certify(certifications::CertifyArgs),
    /// End a certification on a date (which may lie in the past), or annul one made in error.
    Revoke(certifications::RevokeArgs),
    /// List the certifications imports proposed for your department to confirm; give their
    /// names, or --all, to confirm them.
    Confirm(certifications::ConfirmArgs),
    /// Record a change of a person's employment status.
    Employment(monitoring::EmploymentArgs),
    /// Record a person's income from work for a month; prints the alerts it raised.
    Income(monitoring::IncomeArgs),
    /// List monitoring alerts (open ones unless asked); --acknowledge one with a note of what
    /// was done.
    Alerts(monitoring::AlertsArgs),
    /// Follow changes to the persons in your scope as they happen, until Ctrl-C (or --limit);
    /// prints on stderr the cursor to resume from with --after.
    Watch(feed::WatchArgs),
    /// The registry's audit log, for auditors: who called what on which record, and how it
    /// ended.
    Audit(audit::AuditArgs),
    /// Count persons by region, category and employment status.
    Stats(monitoring::StatsArgs),
    /// The service's parameters (rules by region and date): list them, or set one value.
    #[command(subcommand)]
    Parameter(crate::parameters_cli::ParameterCommand),
    /// Import a CSV export of the national monitoring system (UTF-8 or GBK/GB18030), streaming;
    /// rejected rows go to a file to fix and re-import.
    Import(crate::identity_import::ImportArgs),
}

/// The identity service over one connection that sends the token on every call; a command
/// that makes several calls (pages, `parameter set`) makes them all on it.
type Identity = IdentityServiceClient<Authorized>;

/// Connects to the identity service as `client` says: address, TLS and token.
async fn connect_identity(client: &ClientArgs) -> Result<Identity, Failure> {
    Ok(IdentityServiceClient::new(authorized(client).await?))
}

pub async fn run(command: IdentityCommand) -> Result<(), Failure> {
    match command {
        IdentityCommand::Create(args) => persons::create(args).await,
        IdentityCommand::Get(args) => persons::get(args).await,
        IdentityCommand::Update(args) => persons::update(args).await,
        IdentityCommand::Find(args) => persons::find(args).await,
        IdentityCommand::Lookup(args) => persons::lookup(args).await,
        IdentityCommand::Household(command) => households::run(command).await,
        IdentityCommand::List(args) => persons::list(args).await,
        IdentityCommand::CorrectId(args) => corrections::correct_id(args).await,
        IdentityCommand::Certify(args) => certifications::certify(args).await,
        IdentityCommand::Revoke(args) => certifications::revoke(args).await,
        IdentityCommand::Confirm(args) => certifications::confirm(args).await,
        IdentityCommand::Employment(args) => monitoring::employment(args).await,
        IdentityCommand::Income(args) => monitoring::income(args).await,
        IdentityCommand::Alerts(args) => monitoring::alerts(args).await,
        IdentityCommand::Watch(args) => feed::watch(args).await,
        IdentityCommand::Audit(args) => audit::audit(args).await,
        IdentityCommand::Stats(args) => monitoring::stats(args).await,
        IdentityCommand::Parameter(command) => {
            crate::parameters_cli::run(crate::parameters_cli::Service::Identity, command).await
        }
        IdentityCommand::Import(args) => crate::identity_import::run(args).await,
    }
}
