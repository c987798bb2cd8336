//! The identity service (`bangfu.identity.v1`): the person registry every department shares
//! (一人一档). A request goes one way: `grpc` parses the wire message into `domain` values (or
//! answers INVALID_ARGUMENT naming the field), applies the rules, and `store` persists them in
//! one transaction with their audit rows and change-feed events.

pub mod app;
pub mod domain;
pub mod grpc;
pub mod methods;
pub mod store;

pub use methods::METHODS;

use bangfu_platform::db::{MigrationFile, Migrations};
use bangfu_platform::jobs::Job;
use bangfu_platform::service::{ServiceContext, ServiceDescriptor, StartError, StartFuture, Started};

/// The service's name in tokens, parameters and logs.
pub const SERVICE: &str = "identity";

/// The gRPC path prefix of the service's methods.
pub const PATH_PREFIX: &str = "/bangfu.identity.v1.";

/// Identity as the platform hosts it (`bangfu up`, `bangfu serve identity`).
pub const DESCRIPTOR: ServiceDescriptor = ServiceDescriptor {
    name: SERVICE,
    path_prefix: PATH_PREFIX,
    methods: METHODS,
    migrations: MIGRATIONS,
    personal_data: true,
    calls: &[],
    start: start_hosted,
};

/// How often the month-end employment check runs: within a day of each month's end, and a
/// rerun costs two counts per county.
const MONTH_END_CHECK_INTERVAL: Duration = Duration::from_secs(24 * 3600);

fn start_hosted(context: ServiceContext) -> StartFuture {
    Box::pin(async move {
        let keys = context.data_keys.ok_or_else(|| {
            StartError::Configuration("identity keeps citizen IDs and needs its data keys (BANGFU_DATA_KEYS)".into())
        })?;
        let identity = Arc::new(
            start(context.db.clone(), keys, context.clock)
                .await?
                .with_shutdown(context.shutdown),
        );
        let checker = identity.clone();
        let month_end = Job::new(
            "identity-month-end-employment",
            MONTH_END_CHECK_INTERVAL,
            context.db,
            move || {
                let identity = checker.clone();
                async move {
                    let raised = identity.check_month_end_employment().await?;
                    if raised > 0 {
                        tracing::info!(raised, "month-end employment check raised county alerts");
                    }
                    Ok(())
                }
            },
        );
        Ok(Started::serving(grpc::Identity::shared_server(identity, &context.server)).with_job(month_end))
    })
}

/// Identity's tables, after the platform's.
pub const MIGRATIONS: Migrations = Migrations {
    sqlite: &[
        MigrationFile {
            version: 100,
            description: "persons",
            sql: include_str!("../migrations/sqlite/0100_persons.sql"),
        },
        MigrationFile {
            version: 101,
            description: "certifications",
            sql: include_str!("../migrations/sqlite/0101_certifications.sql"),
        },
        MigrationFile {
            version: 102,
            description: "citizen ID corrections",
            sql: include_str!("../migrations/sqlite/0102_citizen_id_corrections.sql"),
        },
        MigrationFile {
            version: 103,
            description: "households",
            sql: include_str!("../migrations/sqlite/0103_households.sql"),
        },
        MigrationFile {
            version: 104,
            description: "employment, income and alerts",
            sql: include_str!("../migrations/sqlite/0104_monitoring.sql"),
        },
        MigrationFile {
            version: 105,
            description: "imports and pending certifications",
            sql: include_str!("../migrations/sqlite/0105_imports.sql"),
        },
        MigrationFile {
            version: 106,
            description: "one head per household",
            sql: include_str!("../migrations/sqlite/0106_one_head_per_household.sql"),
        },
        MigrationFile {
            version: 107,
            description: "masked citizen IDs keep less",
            sql: include_str!("../migrations/sqlite/0107_masked_citizen_id_keeps_less.sql"),
        },
        MigrationFile {
            version: 108,
            description: "person regions by region",
            sql: include_str!("../migrations/sqlite/0108_person_regions_by_region.sql"),
        },
        MigrationFile {
            version: 109,
            description: "current columns are the latest history",
            sql: include_str!("../migrations/sqlite/0109_current_columns_are_the_latest_history.sql"),
        },
    ],
    postgres: &[
        MigrationFile {
            version: 100,
            description: "persons",
            sql: include_str!("../migrations/postgres/0100_persons.sql"),
        },
        MigrationFile {
            version: 101,
            description: "certifications",
            sql: include_str!("../migrations/postgres/0101_certifications.sql"),
        },
        MigrationFile {
            version: 102,
            description: "citizen ID corrections",
            sql: include_str!("../migrations/postgres/0102_citizen_id_corrections.sql"),
        },
        MigrationFile {
            version: 103,
            description: "households",
            sql: include_str!("../migrations/postgres/0103_households.sql"),
        },
        MigrationFile {
            version: 104,
            description: "employment, income and alerts",
            sql: include_str!("../migrations/postgres/0104_monitoring.sql"),
        },
        MigrationFile {
            version: 105,
            description: "imports and pending certifications",
            sql: include_str!("../migrations/postgres/0105_imports.sql"),
        },
        MigrationFile {
            version: 106,
            description: "one head per household",
            sql: include_str!("../migrations/postgres/0106_one_head_per_household.sql"),
        },
        MigrationFile {
            version: 107,
            description: "masked citizen IDs keep less",
            sql: include_str!("../migrations/postgres/0107_masked_citizen_id_keeps_less.sql"),
        },
        MigrationFile {
            version: 108,
            description: "person regions by region",
            sql: include_str!("../migrations/postgres/0108_person_regions_by_region.sql"),
        },
        MigrationFile {
            version: 109,
            description: "current columns are the latest history",
            sql: include_str!("../migrations/postgres/0109_current_columns_are_the_latest_history.sql"),
        },
    ],
};

use std::sync::Arc;
use std::time::Duration;

use bangfu_platform::clock::Clock;
use bangfu_platform::db::{Database, DbError};
use bangfu_platform::parameters::Parameters;
use bangfu_platform::pii::DataKeys;
use bangfu_platform::regions::DivisionTable;

/// The service over its (migrated) database: parameters with their defaults installed, the
/// data keys for personal data, the clock and the division table shipped in the binary.
pub async fn start(db: Database, keys: Arc<DataKeys>, clock: Clock) -> Result<grpc::Identity, DbError> {
    // Parameter lookups are cached briefly: a change reaches every replica within this time.
    let parameters = Arc::new(Parameters::open(db.clone(), SERVICE, Duration::from_secs(30)).await?);
    let regions = DivisionTable::embedded();
    Ok(grpc::Identity::new(
        store::Store::new(db, keys),
        parameters,
        clock,
        regions,
    ))
}
