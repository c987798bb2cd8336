//! Reports (`bangfu.reports.v1`), owned by HR (人社), which leads the employment campaign: the
//! quarterly progress form (附件1) and the project list (附件2) of Shandong's 2023 notice, filled
//! from the services' stats methods with the service's own token acting for the clerk, exported
//! as the notice prints them, and signed off county → city → province. A request goes one way:
//! `grpc` parses the wire message, `app` runs the use case, `store` is the SQL; `sources` is
//! the one place the other services are read, `export` the one place files are written, and
//! `domain` the forms' rules.

pub mod app;
pub mod domain;
pub mod export;
pub mod grpc;
pub mod methods;
pub mod sources;
pub mod store;

pub use methods::METHODS;

use std::sync::Arc;
use std::time::Duration;

use bangfu_platform::clock::Clock;
use bangfu_platform::db::{Database, MigrationFile, Migrations};
use bangfu_platform::parameters::Parameters;
use bangfu_platform::service::{ServiceContext, ServiceDescriptor, StartError, StartFuture, Started};

/// The service's name in tokens, parameters and logs.
pub const SERVICE: &str = "reports";

/// The gRPC path prefix of the service's methods.
pub const PATH_PREFIX: &str = "/bangfu.reports.v1.";

/// The service as the platform hosts it (`bangfu up`, `bangfu serve reports`).
pub const DESCRIPTOR: ServiceDescriptor = ServiceDescriptor {
    name: SERVICE,
    path_prefix: PATH_PREFIX,
    methods: METHODS,
    migrations: MIGRATIONS,
    personal_data: false,
    calls: &["identity", "jobs", "welfare_post", "work_relief", "exchange"],
    start: start_hosted,
};

fn start_hosted(context: ServiceContext) -> StartFuture {
    Box::pin(async move {
        let peers = sources::StatsPeers::from(&context.peers).map_err(StartError::Configuration)?;
        let reports = Arc::new(start(context.db, context.clock, Some(peers)).await?);
        Ok(Started::serving(grpc::ReportServer::shared(reports, &context.server)))
    })
}

/// The service over its (migrated) database.
pub async fn start(db: Database, clock: Clock, peers: Option<sources::StatsPeers>) -> Result<app::Reports, StartError> {
    let parameters = Arc::new(
        Parameters::open(db.clone(), SERVICE, Duration::from_secs(30))
            .await
            .map_err(|e| StartError::Configuration(format!("reports parameters: {e}")))?,
    );
    Ok(app::Reports::new(db, parameters, clock, peers))
}

/// The service's tables, after the platform's.
pub const MIGRATIONS: Migrations = Migrations {
    sqlite: &[MigrationFile {
        version: 700,
        description: "reports and their sign-off",
        sql: include_str!("../migrations/sqlite/0700_reports.sql"),
    }],
    postgres: &[MigrationFile {
        version: 700,
        description: "reports and their sign-off",
        sql: include_str!("../migrations/postgres/0700_reports.sql"),
    }],
};
