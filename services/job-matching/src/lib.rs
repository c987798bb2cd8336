//! Job matching and labor export (`bangfu.jobs.v1`, 就业帮扶), owned by HR (人社): the carriers
//! that employ or place target persons, their postings, the seekers a county helps, ranked
//! matching with its reasons, and placements recorded in identity and followed up. A request
//! goes one way: `grpc` parses the wire message into domain values, `app` runs the use case,
//! `store` is the SQL; `peers` is the one place the other services' contracts are read.

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
use bangfu_platform::jobs::Job;
use bangfu_platform::parameters::Parameters;
use bangfu_platform::service::{ServiceContext, ServiceDescriptor, StartError, StartFuture, Started};

/// The service's name in tokens, parameters and logs.
pub const SERVICE: &str = "jobs";

/// The gRPC path prefix of the service's methods.
pub const PATH_PREFIX: &str = "/bangfu.jobs.v1.";

/// The service as the platform hosts it (`bangfu up`, `bangfu serve jobs`).
pub const DESCRIPTOR: ServiceDescriptor = ServiceDescriptor {
    name: SERVICE,
    path_prefix: PATH_PREFIX,
    methods: METHODS,
    migrations: MIGRATIONS,
    personal_data: false,
    calls: &["identity"],
    start: start_hosted,
};

/// How often employment and income identity could not take are sent again.
const RETRY_INTERVAL: Duration = Duration::from_secs(15);

fn start_hosted(context: ServiceContext) -> StartFuture {
    Box::pin(async move {
        let identity = context
            .peers
            .get("identity")
            .cloned()
            .map_err(|e| StartError::Configuration(format!("jobs calls identity: {e}")))?;
        let jobs = Arc::new(
            start(context.db.clone(), context.clock, Some(peers::Peers::new(identity)))
                .await?
                .with_shutdown(context.shutdown.clone()),
        );
        let retrier = jobs.clone();
        let retries = Job::new("jobs-identity-retries", RETRY_INTERVAL, context.db, move || {
            let jobs = retrier.clone();
            async move {
                let recorded = jobs.record_missing_in_identity().await?;
                if recorded > 0 {
                    tracing::info!(recorded, "placements and follow-ups identity missed recorded");
                }
                Ok(())
            }
        });
        Ok(Started::serving(grpc::JobsServer::shared(jobs, &context.server)).with_job(retries))
    })
}

/// The service over its (migrated) database.
pub async fn start(db: Database, clock: Clock, peers: Option<peers::Peers>) -> Result<app::Jobs, StartError> {
    let parameters = Arc::new(
        Parameters::open(db.clone(), SERVICE, Duration::from_secs(30))
            .await
            .map_err(|e| StartError::Configuration(format!("jobs parameters: {e}")))?,
    );
    Ok(app::Jobs::new(db, parameters, clock, peers))
}

/// The service's tables, after the platform's.
pub const MIGRATIONS: Migrations = Migrations {
    sqlite: &[MigrationFile {
        version: 500,
        description: "job matching: carriers, postings, seekers, applications, placements, follow-ups",
        sql: include_str!("../migrations/sqlite/0500_jobs.sql"),
    }],
    postgres: &[MigrationFile {
        version: 500,
        description: "job matching: carriers, postings, seekers, applications, placements, follow-ups",
        sql: include_str!("../migrations/postgres/0500_jobs.sql"),
    }],
};
