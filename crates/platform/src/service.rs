//! A service as the platform hosts it: one descriptor a service crate gives (its name, method
//! rules, migrations, the peers it calls, and how it starts), which `bangfu up` and `bangfu
//! serve` host alike. Starting gives the routes to serve, the feed followers to run and the
//! background jobs to schedule; the host adds what every service gets (readiness on its
//! database, audited denials, the audit sealer). A new service lands by writing its descriptor
//! and adding it to the suite's one list.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

use crate::auth::MethodRule;
use crate::clock::Clock;
use crate::config::ServerConfig;
use crate::db::{Database, DbError, Migrations};
use crate::follow::HostedFollower;
use crate::jobs::Job;
use crate::peers::Peers;
use crate::pii::DataKeys;
use crate::server::{ServerHost, Shutdown};

/// What a service crate tells the platform about itself.
#[derive(Clone, Copy)]
pub struct ServiceDescriptor {
    /// The name in tokens, databases, parameters and logs (`identity`, `subsidy`).
    pub name: &'static str,
    /// The gRPC path prefix of its methods (`/bangfu.identity.v1.`): their refusals are
    /// audited in its database.
    pub path_prefix: &'static str,
    /// Every RPC it serves with the permission it needs (the permissions and who holds them
    /// are the platform's one table, `auth::permissions`).
    pub methods: &'static [MethodRule],
    /// Its tables, after the platform's.
    pub migrations: Migrations,
    /// Whether it keeps personal data and so needs the data keys (`BANGFU_DATA_KEYS`).
    pub personal_data: bool,
    /// The services it calls; `bangfu serve` refuses to start without their addresses.
    pub calls: &'static [&'static str],
    /// Builds the service over its migrated database.
    pub start: fn(ServiceContext) -> StartFuture,
}

impl std::fmt::Debug for ServiceDescriptor {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ServiceDescriptor")
            .field("name", &self.name)
            .field("calls", &self.calls)
            .finish_non_exhaustive()
    }
}

/// What `start` returns.
pub type StartFuture = Pin<Box<dyn Future<Output = Result<Started, StartError>> + Send>>;

/// What a service is started with.
pub struct ServiceContext {
    pub db: Database,
    /// Present when the descriptor says `personal_data`.
    pub data_keys: Option<Arc<DataKeys>>,
    pub clock: Clock,
    /// The services it calls, as the wiring (`bangfu up` loopback, or `BANGFU_PEER_*`) gives them.
    pub peers: Peers,
    pub server: ServerConfig,
    /// The server's shutdown: streams end on it.
    pub shutdown: Shutdown,
}

/// Why a service could not start.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error(transparent)]
    Database(#[from] DbError),
    #[error("{0}")]
    Configuration(String),
}

/// A started service: its routes, followers and jobs, for the host to run.
pub struct Started {
    pub(crate) mount: Box<dyn FnOnce(&mut ServerHost) + Send>,
    pub(crate) followers: Vec<HostedFollower>,
    pub(crate) jobs: Vec<Job>,
}

impl Started {
    /// A service serving the gRPC service `server` (a generated `…ServiceServer`).
    pub fn serving<S>(server: S) -> Self
    where
        S: tower::Service<
                http::Request<tonic::body::Body>,
                Response = http::Response<tonic::body::Body>,
                Error = std::convert::Infallible,
            > + tonic::server::NamedService
            + Clone
            + Send
            + Sync
            + 'static,
        S::Future: Send + 'static,
    {
        Self {
            mount: Box::new(move |host: &mut ServerHost| {
                host.add_service(server);
            }),
            followers: Vec::new(),
            jobs: Vec::new(),
        }
    }

    /// Also runs this feed follower while the server runs.
    pub fn with_follower(mut self, follower: HostedFollower) -> Self {
        self.followers.push(follower);
        self
    }

    /// Also runs this job on its schedule while the server runs.
    pub fn with_job(mut self, job: Job) -> Self {
        self.jobs.push(job);
        self
    }
}
