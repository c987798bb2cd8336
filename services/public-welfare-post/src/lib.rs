//! Rural public-welfare posts (`bangfu.welfare_post.v1`, 乡村公益性岗位), owned by agriculture
//! and rural affairs / rural revitalization: posts by need, hiring per post under public notice,
//! subsidy while on post (each month a claim of facts to subsidy payment), orderly exit. A
//! request goes one way: `grpc` parses the wire message into domain values, `app` runs the use
//! case, `store` is the SQL; `peers` is the one place the other services' contracts are read.

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
pub const SERVICE: &str = "welfare_post";

/// The gRPC path prefix of the service's methods.
pub const PATH_PREFIX: &str = "/bangfu.welfare_post.v1.";

/// The service as the platform hosts it (`bangfu up`, `bangfu serve welfare_post`).
pub const DESCRIPTOR: ServiceDescriptor = ServiceDescriptor {
    name: SERVICE,
    path_prefix: PATH_PREFIX,
    methods: METHODS,
    migrations: MIGRATIONS,
    personal_data: false,
    calls: &["identity", "subsidy"],
    start: start_hosted,
};

/// How often months left pending (subsidy payment was down) and employment identity missed
/// are sent again.
const RETRY_INTERVAL: Duration = Duration::from_secs(15);

fn start_hosted(context: ServiceContext) -> StartFuture {
    Box::pin(async move {
        let peer = |name: &str| {
            context
                .peers
                .get(name)
                .cloned()
                .map_err(|e| StartError::Configuration(format!("welfare_post calls {name}: {e}")))
        };
        let (identity, subsidy) = (peer("identity")?, peer("subsidy")?);
        let follower = exit_follower(context.db.clone(), identity.clone(), context.clock.clone());
        let claims = claim_follower(context.db.clone(), subsidy.clone(), context.clock.clone());
        let posts = Arc::new(
            start(
                context.db.clone(),
                context.clock,
                Some(peers::Peers::new(identity, subsidy)),
            )
            .await?,
        );
        let retrier = posts.clone();
        let retries = Job::new("welfare-post-retries", RETRY_INTERVAL, context.db, move || {
            let posts = retrier.clone();
            async move {
                let sent = posts
                    .send_pending(&CallContext::own(), None, "", "", false, None)
                    .await?;
                let recorded = posts.record_missing_employment().await?;
                if sent + recorded > 0 {
                    tracing::info!(sent, recorded, "pending months and employment records retried");
                }
                Ok(())
            }
        })
        .woken_by(posts.sender_job());
        Ok(Started::serving(grpc::PostsServer::shared(posts, &context.server))
            .with_follower(follower.hosted())
            .with_follower(claims.hosted())
            .with_job(retries))
    })
}

/// The follower of identity's person feed that opens exit proposals.
pub fn exit_follower(db: Database, identity: Peer, clock: Clock) -> Follower<PersonChanges, ExitFollower> {
    Follower::new(
        "welfare_post/identity-persons",
        db,
        PersonChanges::of_kinds(identity, &app::FOLLOWED_KINDS),
        ExitFollower { clock },
    )
}

/// The follower's effect: identity's change, read off the wire, handed to the application.
pub struct ExitFollower {
    pub clock: Clock,
}

impl Apply<id::PersonChange> for ExitFollower {
    async fn apply(&self, tx: &mut sqlx::AnyConnection, change: &id::PersonChange) -> Result<(), Problem> {
        let strip = |name: &'static str, prefix: &str| name.strip_prefix(prefix).unwrap_or(name).to_string();
        let category = if change.category == 0 {
            String::new()
        } else {
            strip(change.category().as_str_name(), "PERSON_CATEGORY_")
        };
        app::note_person_change(
            tx,
            change.person.trim_start_matches("persons/"),
            &strip(change.kind().as_str_name(), "CHANGE_KIND_"),
            &category,
            bangfu_platform::identity_reader::date(change.effective_date.as_ref()),
            &change.cursor,
            self.clock.now(),
        )
        .await
    }
}

/// The follower of subsidy payment's claim feed (this service's claims only): each month line
/// shows how its claim was decided and paid, and a holder past the subsidy's months or their
/// retirement month gets an exit proposal.
pub fn claim_follower(db: Database, subsidy: Peer, clock: Clock) -> Follower<ClaimChanges, OutcomeFollower> {
    outcome_follower(
        "welfare_post/subsidy-claims",
        db,
        subsidy,
        peers::CLAIM_SYSTEM,
        clock,
        |tx, outcomes, now| Box::pin(app::note_claim_outcomes(tx, outcomes, now)),
    )
}

/// The service over its (migrated) database.
pub async fn start(db: Database, clock: Clock, peers: Option<peers::Peers>) -> Result<app::Posts, StartError> {
    let parameters = Arc::new(
        Parameters::open(db.clone(), SERVICE, Duration::from_secs(30))
            .await
            .map_err(|e| StartError::Configuration(format!("welfare_post parameters: {e}")))?,
    );
    Ok(app::Posts::new(db, parameters, clock, peers))
}

/// The service's tables, after the platform's.
pub const MIGRATIONS: Migrations = Migrations {
    sqlite: &[
        MigrationFile {
            version: 300,
            description: "posts, hiring, contracts, months, exits",
            sql: include_str!("../migrations/sqlite/0300_posts.sql"),
        },
        MigrationFile {
            version: 301,
            description: "month lines in sending order",
            sql: include_str!("../migrations/sqlite/0301_sending_index.sql"),
        },
        MigrationFile {
            version: 302,
            description: "signings whose employment is still to record",
            sql: include_str!("../migrations/sqlite/0302_unrecorded_employment.sql"),
        },
    ],
    postgres: &[
        MigrationFile {
            version: 300,
            description: "posts, hiring, contracts, months, exits",
            sql: include_str!("../migrations/postgres/0300_posts.sql"),
        },
        MigrationFile {
            version: 301,
            description: "month lines in sending order",
            sql: include_str!("../migrations/postgres/0301_sending_index.sql"),
        },
        MigrationFile {
            version: 302,
            description: "signings whose employment is still to record",
            sql: include_str!("../migrations/postgres/0302_unrecorded_employment.sql"),
        },
    ],
};
