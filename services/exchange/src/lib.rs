//! The Shandong–Chongqing exchange (`bangfu.exchange.v1`, 鲁渝劳务协作), owned by HR (人社) as
//! the labor-cooperation desk: the only door between two provinces' suites. A partner calls its
//! own port over mutual TLS with its own token; every message either way is signed, answered
//! with a signed receipt, and kept in a hash-chained message log; answers about persons are
//! minimized. `grpc` parses the wire, `app` runs the use case, `store` is the SQL; `signing`,
//! `pki` and `config` are the exchange's own rules.

pub mod app;
pub mod config;
pub mod grpc;
pub mod methods;
pub mod pki;
pub mod postings;
pub mod signing;
pub mod store;

pub use methods::{METHODS, PARTNER_METHODS};

use std::sync::Arc;
use std::time::Duration;

use bangfu_platform::auth::keys::{KeyRing, Signer, TrustedKey};
use bangfu_platform::auth::verify::{Revocations, Verifier};
use bangfu_platform::clock::Clock;
use bangfu_platform::config::{ServerConfig, TlsFiles};
use bangfu_platform::db::{Database, MigrationFile, Migrations};
use bangfu_platform::identity_reader::IdentityReader;
use bangfu_platform::jobs::Job;
use bangfu_platform::parameters::Parameters;
use bangfu_platform::pii::DataKeys;
use bangfu_platform::server::{ServerHost, Shutdown};
use bangfu_platform::service::{ServiceContext, ServiceDescriptor, StartError, StartFuture, Started};

use crate::app::Exchange;
use crate::config::ExchangeConfig;

/// The service's name in tokens, parameters and logs.
pub const SERVICE: &str = "exchange";

/// The gRPC path prefix of the service's methods.
pub const PATH_PREFIX: &str = "/bangfu.exchange.v1.";

/// The service as the platform hosts it (`bangfu up`, `bangfu serve exchange`).
pub const DESCRIPTOR: ServiceDescriptor = ServiceDescriptor {
    name: SERVICE,
    path_prefix: PATH_PREFIX,
    methods: METHODS,
    migrations: MIGRATIONS,
    personal_data: true,
    calls: &["identity", "jobs"],
    start: start_hosted,
};

/// How often the message log is chained, and confirmations are recorded in identity (received)
/// and queued and sent (ours).
const SEAL_INTERVAL: Duration = Duration::from_secs(10);
const RECORD_INTERVAL: Duration = Duration::from_secs(5);

fn start_hosted(context: ServiceContext) -> StartFuture {
    Box::pin(async move {
        let identity = context
            .peers
            .get("identity")
            .cloned()
            .map_err(|e| StartError::Configuration(format!("exchange calls identity: {e}")))?;
        let identity_peer = identity.clone();
        let jobs = context
            .peers
            .get("jobs")
            .cloned()
            .map_err(|e| StartError::Configuration(format!("exchange calls jobs: {e}")))?;
        let postings = bangfu_platform::follow::Follower::new(
            "exchange/jobs-postings",
            context.db.clone(),
            postings::PostingChanges::new(jobs.clone()),
            postings::PostingFollower {
                clock: context.clock.clone(),
            },
        );
        let keys = context
            .data_keys
            .clone()
            .ok_or_else(|| StartError::Configuration("the exchange needs the data keys".into()))?;
        let config = match std::env::var(config::CONFIG_VARIABLE)
            .ok()
            .filter(|v| !v.trim().is_empty())
        {
            None => None,
            Some(path) => Some(Arc::new(
                ExchangeConfig::load(std::path::Path::new(path.trim()))
                    .map_err(|e| StartError::Configuration(format!("exchange: {e}")))?,
            )),
        };
        let exchange = Arc::new(
            start(
                context.db.clone(),
                context.clock.clone(),
                keys,
                config.clone(),
                Some(IdentityReader::new(identity)),
            )
            .await?
            .with_jobs(jobs),
        );
        if let Some(config) = &config {
            serve_partners(
                exchange.clone(),
                config,
                &context.server,
                context.db.clone(),
                context.shutdown.clone(),
            )
            .await?;
        }
        let sealing = context.db.clone();
        let sealer = Job::new("exchange-message-seal", SEAL_INTERVAL, context.db.clone(), move || {
            let db = sealing.clone();
            async move {
                store::seal(&db).await?;
                Ok(())
            }
        });
        let follower = bangfu_platform::follow::Follower::new(
            "exchange/identity-persons",
            context.db.clone(),
            // Only employment changes are sent on to the partner province.
            bangfu_platform::follow::PersonChanges::of_kinds(identity_peer, &["EMPLOYMENT_CHANGED"]),
            EmploymentFollower {
                clock: context.clock.clone(),
            },
        );
        let recorder = exchange.clone();
        let recording = Job::new("exchange-confirmations", RECORD_INTERVAL, context.db, move || {
            let exchange = recorder.clone();
            async move {
                if exchange.config().is_none() {
                    return Ok(());
                }
                // Each on its own: a partner that does not answer does not hold back what
                // identity is to record, nor the other way round.
                let recorded = exchange.record_pending_confirmations(None, 500).await;
                let sent = exchange.send_confirmations().await;
                let shared = exchange.share_noted_postings().await;
                let pulled = exchange.pull_partner_postings().await;
                if let Ok(recorded) = &recorded
                    && !recorded.is_empty()
                {
                    tracing::info!(count = recorded.len(), "confirmations from partners recorded");
                }
                if let Ok(round) = &sent
                    && round.queued + round.delivered > 0
                {
                    tracing::info!(
                        queued = round.queued,
                        delivered = round.delivered,
                        "confirmations to partners"
                    );
                }
                if let (Ok(shared), Ok(pulled)) = (&shared, &pulled)
                    && shared + pulled > 0
                {
                    tracing::info!(shared, pulled, "postings shared with partners and received from them");
                }
                recorded
                    .map(|_| ())
                    .and(sent.map(|_| ()))
                    .and(shared.map(|_| ()))
                    .and(pulled.map(|_| ()))
            }
        });
        let started = Started::serving(grpc::LocalDesk::shared(exchange, &context.server))
            .with_job(sealer)
            .with_job(recording);
        // Without partners nobody is to be told of employment: nothing is followed.
        Ok(if config.is_some() {
            started
                .with_follower(follower.hosted())
                .with_follower(postings.hosted())
        } else {
            started
        })
    })
}

/// The follower's effect: a person whose employment changed is noted for a confirmation.
pub struct EmploymentFollower {
    pub clock: Clock,
}

impl bangfu_platform::follow::Apply<bangfu_proto::identity::v1::PersonChange> for EmploymentFollower {
    async fn apply(
        &self,
        tx: &mut sqlx::AnyConnection,
        change: &bangfu_proto::identity::v1::PersonChange,
    ) -> Result<(), bangfu_platform::error::Problem> {
        if change.kind() != bangfu_proto::identity::v1::ChangeKind::EmploymentChanged {
            return Ok(());
        }
        app::note_person(tx, change.person.trim_start_matches("persons/"), self.clock.now()).await
    }
}

/// The desk over its (migrated) database.
pub async fn start(
    db: Database,
    clock: Clock,
    keys: Arc<DataKeys>,
    config: Option<Arc<ExchangeConfig>>,
    identity: Option<IdentityReader>,
) -> Result<Exchange, StartError> {
    let parameters = Arc::new(
        Parameters::open(db.clone(), SERVICE, Duration::from_secs(30))
            .await
            .map_err(|e| StartError::Configuration(format!("exchange parameters: {e}")))?,
    );
    Exchange::new(db, parameters, clock, keys, config, identity).map_err(StartError::Configuration)
}

/// The verifier of the partner port: the partners' exchange keys only, each bound to its
/// partner as issuer and able to sign nothing but partner tokens.
pub fn partner_verifier(config: &ExchangeConfig) -> Verifier {
    let keys = config
        .partners
        .iter()
        .flat_map(|partner| {
            partner.keys.iter().map(|(kid, key)| TrustedKey {
                kid: kid.clone(),
                issuer: partner.id.clone(),
                signer: Signer::Partner,
                development: false,
                key: key.clone(),
            })
        })
        .collect();
    Verifier::new(
        KeyRing::new(keys),
        &config.audience(),
        Duration::from_secs(60),
        Revocations::none(),
    )
}

/// Serves the partner-facing methods on the configured partner port: TLS with a client
/// certificate from a partner's CA required, partner tokens only, refusals audited; it drains
/// with the main server.
pub async fn serve_partners(
    exchange: Arc<Exchange>,
    config: &ExchangeConfig,
    server: &ServerConfig,
    db: Database,
    shutdown: Shutdown,
) -> Result<std::net::SocketAddr, StartError> {
    let mut partner_server = server.clone();
    partner_server.tls = Some(TlsFiles {
        cert: config.tls_cert_path.clone(),
        key: config.tls_key_path.clone(),
        client_ca: None,
    });
    let methods = [
        bangfu_platform::auth::permissions::PLATFORM_METHODS
            .iter()
            .filter(|m| m.access == bangfu_platform::auth::Access::Public)
            .copied()
            .collect::<Vec<_>>(),
        PARTNER_METHODS.to_vec(),
    ]
    .concat();
    let mut host =
        ServerHost::with_methods(partner_server, Arc::new(partner_verifier(config)), &methods).with_shutdown(shutdown);
    host.require_client_certificates_from(config.partner_cas_pem());
    host.audit_denials(PATH_PREFIX, db);
    host.add_service(grpc::PartnerDesk::shared(exchange, server));
    let listener = bangfu_platform::server::bind(config.listen)
        .await
        .map_err(|e| StartError::Configuration(format!("exchange partner port: {e}")))?;
    let addr = listener
        .local_addr()
        .map_err(|e| StartError::Configuration(format!("exchange partner port: {e}")))?;
    tokio::spawn(async move {
        if let Err(error) = host.serve(listener).await {
            tracing::error!(%error, "the exchange's partner port stopped");
        }
    });
    tracing::info!(%addr, partners = config.partners.len(), "exchange partner port serving");
    Ok(addr)
}

/// The service's tables, after the platform's.
pub const MIGRATIONS: Migrations = Migrations {
    sqlite: &[
        MigrationFile {
            version: 600,
            description: "exchange: message log, seen message ids, partner state, outbox, received confirmations",
            sql: include_str!("../migrations/sqlite/0600_exchange.sql"),
        },
        MigrationFile {
            version: 601,
            description: "exchange: persons whose employment changed, noted for confirmations",
            sql: include_str!("../migrations/sqlite/0601_noted_persons.sql"),
        },
        MigrationFile {
            version: 602,
            description: "exchange: shared postings, ours by cursor and the partner's as received",
            sql: include_str!("../migrations/sqlite/0602_shared_postings.sql"),
        },
        MigrationFile {
            version: 603,
            description: "exchange: the last day of the work each confirmation is for",
            sql: include_str!("../migrations/sqlite/0603_outbox_end.sql"),
        },
    ],
    postgres: &[
        MigrationFile {
            version: 600,
            description: "exchange: message log, seen message ids, partner state, outbox, received confirmations",
            sql: include_str!("../migrations/postgres/0600_exchange.sql"),
        },
        MigrationFile {
            version: 601,
            description: "exchange: persons whose employment changed, noted for confirmations",
            sql: include_str!("../migrations/postgres/0601_noted_persons.sql"),
        },
        MigrationFile {
            version: 602,
            description: "exchange: shared postings, ours by cursor and the partner's as received",
            sql: include_str!("../migrations/postgres/0602_shared_postings.sql"),
        },
        MigrationFile {
            version: 603,
            description: "exchange: the last day of the work each confirmation is for",
            sql: include_str!("../migrations/postgres/0603_outbox_end.sql"),
        },
    ],
};
