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
use bangfu_platform::error::Problem;
use bangfu_platform::follow::{Apply, Follower, PersonChanges};
use bangfu_platform::jobs::Job;
use bangfu_platform::parameters::Parameters;
use bangfu_platform::peers::{CallContext, Peer};
use bangfu_platform::service::{ServiceContext, ServiceDescriptor, StartError, StartFuture, Started};
use bangfu_platform::subsidy_claims::{ClaimChanges, OutcomeFollower, outcome_follower};
use bangfu_proto::identity::v1 as id;

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
    calls: &["identity", "subsidy"],
    start: start_hosted,
};

/// How often employment and income identity could not take, and claims subsidy payment could
/// not (or whose day had not come), are sent again.
const RETRY_INTERVAL: Duration = Duration::from_secs(15);

fn start_hosted(context: ServiceContext) -> StartFuture {
    Box::pin(async move {
        let peer = |name: &str| {
            context
                .peers
                .get(name)
                .cloned()
                .map_err(|e| StartError::Configuration(format!("jobs calls {name}: {e}")))
        };
        let (identity, subsidy) = (peer("identity")?, peer("subsidy")?);
        let follower = claim_follower(context.db.clone(), subsidy.clone(), context.clock.clone());
        let persons = person_follower(context.db.clone(), identity.clone(), context.clock.clone());
        let jobs = Arc::new(
            start(
                context.db.clone(),
                context.clock,
                Some(peers::Peers::new(identity, subsidy)),
            )
            .await?
            .with_shutdown(context.shutdown.clone()),
        );
        let retrier = jobs.clone();
        let retries = Job::new("jobs-identity-retries", RETRY_INTERVAL, context.db, move || {
            let jobs = retrier.clone();
            async move {
                // Each on its own: claims subsidy payment cannot take now do not hold back the
                // employment identity is waiting for, nor the other way round.
                let recorded = jobs.record_missing_in_identity().await;
                let sent = jobs.send_pending_claims(&CallContext::own(), None).await;
                let refreshed = jobs.refresh_stale_seekers().await;
                match (&recorded, &sent, &refreshed) {
                    (Ok(recorded), Ok(sent), Ok(refreshed)) if recorded + sent + refreshed > 0 => {
                        tracing::info!(
                            recorded,
                            sent,
                            refreshed,
                            "identity records, subsidy claims and seekers' facts caught up"
                        );
                    }
                    _ => {}
                }
                recorded.and(sent).and(refreshed).map(|_| ())
            }
        });
        Ok(Started::serving(grpc::JobsServer::shared(jobs, &context.server))
            .with_follower(follower.hosted())
            .with_follower(persons.hosted())
            .with_job(retries))
    })
}

/// The follower of subsidy payment's claim feed (this service's claims only) that shows each
/// claim's outcome on the traveller, placement, carrier or course it was sent for.
pub fn claim_follower(db: Database, subsidy: Peer, clock: Clock) -> Follower<ClaimChanges, OutcomeFollower> {
    outcome_follower(
        "jobs/subsidy-claims",
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

/// The follower of identity's person feed that keeps seekers true: one who died or moved away
/// is withdrawn, and one whose categories or region changed is read again (by the job).
pub fn person_follower(db: Database, identity: Peer, clock: Clock) -> Follower<PersonChanges, SeekerFollower> {
    Follower::new(
        "jobs/identity-persons",
        db,
        PersonChanges::of_kinds(identity, &app::followed_kinds()),
        SeekerFollower { clock },
    )
}

/// The follower's effect: identity's change on the person's seeker.
pub struct SeekerFollower {
    pub clock: Clock,
}

impl Apply<id::PersonChange> for SeekerFollower {
    async fn apply(&self, tx: &mut sqlx::AnyConnection, change: &id::PersonChange) -> Result<(), Problem> {
        let kind = change.kind().as_str_name();
        app::note_person_change(
            tx,
            change.person.trim_start_matches("persons/"),
            kind.strip_prefix("CHANGE_KIND_").unwrap_or(kind),
            self.clock.now(),
        )
        .await
    }
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
    sqlite: &[
        MigrationFile {
            version: 500,
            description: "job matching: carriers, postings, seekers, applications, placements, follow-ups",
            sql: include_str!("../migrations/sqlite/0500_jobs.sql"),
        },
        MigrationFile {
            version: 501,
            description: "organized labor export batches; the subsidy claims the service sends",
            sql: include_str!("../migrations/sqlite/0501_export_batches.sql"),
        },
        MigrationFile {
            version: 502,
            description: "training courses and trainees, recruitment events",
            sql: include_str!("../migrations/sqlite/0502_training_events.sql"),
        },
        MigrationFile {
            version: 503,
            description: "training subsidy policies on courses; a claim's payee as a resource name",
            sql: include_str!("../migrations/sqlite/0503_training_claims.sql"),
        },
    ],
    postgres: &[
        MigrationFile {
            version: 500,
            description: "job matching: carriers, postings, seekers, applications, placements, follow-ups",
            sql: include_str!("../migrations/postgres/0500_jobs.sql"),
        },
        MigrationFile {
            version: 501,
            description: "organized labor export batches; the subsidy claims the service sends",
            sql: include_str!("../migrations/postgres/0501_export_batches.sql"),
        },
        MigrationFile {
            version: 502,
            description: "training courses and trainees, recruitment events",
            sql: include_str!("../migrations/postgres/0502_training_events.sql"),
        },
        MigrationFile {
            version: 503,
            description: "training subsidy policies on courses; a claim's payee as a resource name",
            sql: include_str!("../migrations/postgres/0503_training_claims.sql"),
        },
    ],
};
