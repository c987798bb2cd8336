//! Subsidy payment (`bangfu.subsidy.v1`, 补贴发放), owned by finance: the policy catalog as
//! data, funds and their journal, and claims decided at once from identity's facts (即申即享)
//! with review by amount band. A request goes one way: `grpc` parses the wire message into
//! `domain` values, `app` runs the use case in one transaction, `store` is the SQL; `identity`
//! is the one place identity's contract is read.

pub mod app;
pub mod domain;
pub mod grpc;
pub mod identity;
pub mod methods;
pub mod store;

pub use methods::METHODS;

use std::sync::Arc;
use std::time::Duration;

use bangfu_platform::clock::Clock;
use bangfu_platform::db::{Database, MigrationFile, Migrations};
use bangfu_platform::error::Problem;
use bangfu_platform::follow::{Follower, PersonChanges};
use bangfu_platform::jobs::Job;
use bangfu_platform::parameters::Parameters;
use bangfu_platform::peers::Peer;
use bangfu_platform::pii::DataKeys;
use bangfu_platform::service::{ServiceContext, ServiceDescriptor, StartError, StartFuture, Started};

/// The service's name in tokens, parameters and logs.
pub const SERVICE: &str = "subsidy";

/// The gRPC path prefix of the service's methods.
pub const PATH_PREFIX: &str = "/bangfu.subsidy.v1.";

/// Subsidy payment as the platform hosts it (`bangfu up`, `bangfu serve subsidy`).
pub const DESCRIPTOR: ServiceDescriptor = ServiceDescriptor {
    name: SERVICE,
    path_prefix: PATH_PREFIX,
    methods: METHODS,
    migrations: MIGRATIONS,
    personal_data: true,
    calls: &["identity"],
    start: start_hosted,
};

fn start_hosted(context: ServiceContext) -> StartFuture {
    Box::pin(async move {
        let identity = context
            .peers
            .get("identity")
            .map_err(|e| StartError::Configuration(format!("subsidy decides claims from identity's facts: {e}")))?
            .clone();
        let keys = context.data_keys.ok_or_else(|| {
            StartError::Configuration(
                "subsidy keeps payee account numbers and holders' citizen IDs and needs its data keys (BANGFU_DATA_KEYS)"
                    .into(),
            )
        })?;
        let follower = recovery_follower(context.db.clone(), identity.clone(), context.clock.clone());
        let subsidy = Arc::new(
            start(context.db.clone(), context.clock, Some(identity), Some(keys))
                .await?
                .with_shutdown(context.shutdown),
        );
        let checker = subsidy.clone();
        let recoveries = Job::new(
            "subsidy-recovery-checks",
            RECOVERY_CHECK_INTERVAL,
            context.db.clone(),
            move || {
                let subsidy = checker.clone();
                async move {
                    let opened = subsidy.process_recovery_checks().await?;
                    if opened > 0 {
                        tracing::info!(opened, "recoveries opened from identity's corrections");
                    }
                    Ok(())
                }
            },
        );
        let proposer = subsidy.clone();
        let proposals = Job::new(
            "subsidy-proposal-checks",
            RECOVERY_CHECK_INTERVAL,
            context.db,
            move || {
                let subsidy = proposer.clone();
                async move {
                    let proposed = subsidy.process_proposal_checks().await?;
                    if proposed > 0 {
                        tracing::info!(proposed, "claims proposed from identity's changes (免申即享)");
                    }
                    Ok(())
                }
            },
        );
        Ok(Started::serving(grpc::SubsidyServer::shared(subsidy, &context.server))
            .with_follower(follower.hosted())
            .with_job(recoveries)
            .with_job(proposals))
    })
}

/// How often noted identity changes are checked for payments to recover and claims to propose.
const RECOVERY_CHECK_INTERVAL: Duration = Duration::from_secs(30);

/// The follower of identity's person feed that notes changes which may undo a payment.
pub fn recovery_follower(
    db: Database,
    identity: Peer,
    clock: Clock,
) -> Follower<PersonChanges, identity::RecoveryFollower> {
    Follower::new(
        "subsidy/identity-persons",
        db,
        PersonChanges::of_kinds(identity, &app::followed_kinds()),
        identity::RecoveryFollower { clock },
    )
}

/// The service over its (migrated) database, with the shipped policy files loaded.
pub async fn start(
    db: Database,
    clock: Clock,
    identity: Option<Peer>,
    keys: Option<Arc<DataKeys>>,
) -> Result<app::Subsidy, StartError> {
    let parameters = Arc::new(
        Parameters::open(db.clone(), SERVICE, Duration::from_secs(30))
            .await
            .map_err(|e| StartError::Configuration(format!("subsidy parameters: {e}")))?,
    );
    let files = grpc::policy_files::shipped().map_err(StartError::Configuration)?;
    let loaded = app::load_policy_files(&db, &files, clock.now())
        .await
        .map_err(|e: Problem| StartError::Configuration(format!("loading the policy files: {}", e.message)))?;
    if !loaded.is_empty() {
        tracing::info!(policies = ?loaded, "policy files loaded into the catalog");
    }
    Ok(app::Subsidy::new(
        db,
        parameters,
        clock,
        identity.map(identity::IdentityFacts::new),
        keys,
    ))
}

/// Subsidy payment's tables, after the platform's.
pub const MIGRATIONS: Migrations = Migrations {
    sqlite: &[
        MigrationFile {
            version: 200,
            description: "policies, funds and claims",
            sql: include_str!("../migrations/sqlite/0200_policies_funds_claims.sql"),
        },
        MigrationFile {
            version: 201,
            description: "payee accounts",
            sql: include_str!("../migrations/sqlite/0201_payee_accounts.sql"),
        },
        MigrationFile {
            version: 202,
            description: "payment batches",
            sql: include_str!("../migrations/sqlite/0202_payment_batches.sql"),
        },
        MigrationFile {
            version: 203,
            description: "recoveries",
            sql: include_str!("../migrations/sqlite/0203_recoveries.sql"),
        },
        MigrationFile {
            version: 204,
            description: "payee accounts by owner, proposal checks",
            sql: include_str!("../migrations/sqlite/0204_account_owners_and_proposals.sql"),
        },
        MigrationFile {
            version: 205,
            description: "claim subjects",
            sql: include_str!("../migrations/sqlite/0205_claim_subjects.sql"),
        },
        MigrationFile {
            version: 206,
            description: "fund balances apart from funds",
            sql: include_str!("../migrations/sqlite/0206_fund_balances.sql"),
        },
        MigrationFile {
            version: 207,
            description: "noted changes in the order the proposal job takes them",
            sql: include_str!("../migrations/sqlite/0207_proposal_check_order.sql"),
        },
    ],
    postgres: &[
        MigrationFile {
            version: 200,
            description: "policies, funds and claims",
            sql: include_str!("../migrations/postgres/0200_policies_funds_claims.sql"),
        },
        MigrationFile {
            version: 201,
            description: "payee accounts",
            sql: include_str!("../migrations/postgres/0201_payee_accounts.sql"),
        },
        MigrationFile {
            version: 202,
            description: "payment batches",
            sql: include_str!("../migrations/postgres/0202_payment_batches.sql"),
        },
        MigrationFile {
            version: 203,
            description: "recoveries",
            sql: include_str!("../migrations/postgres/0203_recoveries.sql"),
        },
        MigrationFile {
            version: 204,
            description: "payee accounts by owner, proposal checks",
            sql: include_str!("../migrations/postgres/0204_account_owners_and_proposals.sql"),
        },
        MigrationFile {
            version: 205,
            description: "claim subjects",
            sql: include_str!("../migrations/postgres/0205_claim_subjects.sql"),
        },
        MigrationFile {
            version: 206,
            description: "fund balances apart from funds",
            sql: include_str!("../migrations/postgres/0206_fund_balances.sql"),
        },
        MigrationFile {
            version: 207,
            description: "noted changes in the order the proposal job takes them",
            sql: include_str!("../migrations/postgres/0207_proposal_check_order.sql"),
        },
    ],
};
