//! Work relief (`bangfu.work_relief.v1`, 以工代赈), owned by development and reform (发改):
//! public works in villages that hire local low-income workers and pay them labor remuneration,
//! as large a share of the money as possible, on time and in full. A request goes one way:
//! `grpc` parses the wire message into domain values, `app` runs the use case, `store` is the
//! SQL; `peers` is the one place the other services' contracts are read.

pub mod app;
pub mod domain;
pub mod grpc;
pub mod methods;
pub mod peers;
pub mod store;

pub use methods::METHODS;

use std::sync::Arc;
use std::time::Duration;

use bangfu_platform::clock::Clock;
use bangfu_platform::db::{Database, MigrationFile, Migrations};
use bangfu_platform::follow::Follower;
use bangfu_platform::jobs::Job;
use bangfu_platform::parameters::Parameters;
use bangfu_platform::peers::{CallContext, Peer};
use bangfu_platform::service::{ServiceContext, ServiceDescriptor, StartError, StartFuture, Started};
use bangfu_platform::subsidy_claims::{ClaimChanges, OutcomeFollower, outcome_follower};

/// The service's name in tokens, parameters and logs.
pub const SERVICE: &str = "work_relief";

/// The gRPC path prefix of the service's methods.
pub const PATH_PREFIX: &str = "/bangfu.work_relief.v1.";

/// The service as the platform hosts it (`bangfu up`, `bangfu serve work_relief`).
pub const DESCRIPTOR: ServiceDescriptor = ServiceDescriptor {
    name: SERVICE,
    path_prefix: PATH_PREFIX,
    methods: METHODS,
    migrations: MIGRATIONS,
    personal_data: false,
    calls: &["identity", "subsidy"],
    start: start_hosted,
};

/// How often lines left pending (subsidy payment was down) and employment identity missed are
/// sent again.
const RETRY_INTERVAL: Duration = Duration::from_secs(15);

fn start_hosted(context: ServiceContext) -> StartFuture {
    Box::pin(async move {
        let peer = |name: &str| {
            context
                .peers
                .get(name)
                .cloned()
                .map_err(|e| StartError::Configuration(format!("work_relief calls {name}: {e}")))
        };
        let (identity, subsidy) = (peer("identity")?, peer("subsidy")?);
        let follower = receipt_follower(context.db.clone(), subsidy.clone(), context.clock.clone());
        let relief = Arc::new(
            start(
                context.db.clone(),
                context.clock,
                Some(peers::Peers::new(identity, subsidy)),
            )
            .await?,
        );
        let retrier = relief.clone();
        let retries = Job::new("work-relief-retries", RETRY_INTERVAL, context.db, move || {
            let relief = retrier.clone();
            async move {
                // Each on its own: lines subsidy payment cannot take now do not hold back the
                // employment records identity is waiting for, nor the other way round.
                let sent = relief.send_pending(&CallContext::own(), "", None).await;
                let recorded = relief.record_missing_employment().await;
                match (&sent, &recorded) {
                    (Ok(sent), Ok(recorded)) if sent + recorded > 0 => {
                        tracing::info!(sent, recorded, "pending payroll lines and employment records retried");
                    }
                    _ => {}
                }
                sent.and(recorded).map(|_| ())
            }
        });
        Ok(Started::serving(grpc::ReliefServer::shared(relief, &context.server))
            .with_follower(follower.hosted())
            .with_job(retries))
    })
}

/// The follower of subsidy payment's claim feed (this service's claims only) that moves each
/// payroll line on: claimed, refused, paid with the bank's receipt, failed.
pub fn receipt_follower(db: Database, subsidy: Peer, clock: Clock) -> Follower<ClaimChanges, OutcomeFollower> {
    outcome_follower(
        "work_relief/subsidy-claims",
        db,
        subsidy,
        peers::CLAIM_SYSTEM,
        clock,
        |tx, outcomes, now| {
            Box::pin(async move {
                for outcome in outcomes {
                    app::apply_claim_outcome(tx, outcome, now).await?;
                }
                Ok(())
            })
        },
    )
}

/// The service over its (migrated) database.
pub async fn start(db: Database, clock: Clock, peers: Option<peers::Peers>) -> Result<app::Relief, StartError> {
    let parameters = Arc::new(
        Parameters::open(db.clone(), SERVICE, Duration::from_secs(30))
            .await
            .map_err(|e| StartError::Configuration(format!("work_relief parameters: {e}")))?,
    );
    Ok(app::Relief::new(db, parameters, clock, peers))
}

/// The service's tables, after the platform's.
pub const MIGRATIONS: Migrations = Migrations {
    sqlite: &[
        MigrationFile {
            version: 400,
            description: "work-relief projects, allocations, roster, attendance, payrolls",
            sql: include_str!("../migrations/sqlite/0400_work_relief.sql"),
        },
        MigrationFile {
            version: 401,
            description: "pending payroll lines by a partial index",
            sql: include_str!("../migrations/sqlite/0401_pending_lines_index.sql"),
        },
    ],
    postgres: &[
        MigrationFile {
            version: 400,
            description: "work-relief projects, allocations, roster, attendance, payrolls",
            sql: include_str!("../migrations/postgres/0400_work_relief.sql"),
        },
        MigrationFile {
            version: 401,
            description: "pending payroll lines by a partial index",
            sql: include_str!("../migrations/postgres/0401_pending_lines_index.sql"),
        },
    ],
};
