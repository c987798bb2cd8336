//! Subsidy payment's application layer: one use case per method, each taking the caller and
//! domain values, running its work in one `write::Unit` transaction or one read, and answering
//! with store values or a `Problem`.

mod batches;
mod claims;
mod feed;
mod funds;
mod objections;
mod payees;
mod payments;
mod policies;
mod proposals;
mod recoveries;
mod statements;

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use bangfu_platform::auth::Principal;
use bangfu_platform::auth::layer::DenialAudit;
use bangfu_platform::clock::Clock;
use bangfu_platform::db::Database;
use bangfu_platform::error::{ErrorReason, Problem};
use bangfu_platform::outbox::WatchSettings;
use bangfu_platform::parameters::Parameters;
use bangfu_platform::pii::DataKeys;
use bangfu_platform::server::Shutdown;
use time::{Date, OffsetDateTime};
use tonic::Code;

pub use batches::{BatchListing, NoticeIssue, NoticeLine, PublicNotice, effective_state, state as batch_state};
pub use claims::{ClaimListing, Dry, Submission, Submitted};
pub use feed::{ClaimChangeKind, ClaimEvent};
pub use funds::{FundListing, NewFundRequest};
pub use objections::{NewObjection, Resolution};
pub use payees::{AccountList, AccountListing, AccountQuery, AccountRow, NewAccount, RowHolder, RowRegistered};
pub use payments::{EXPORT_LINES_PER_CHUNK, Export, IssueKind, Reconciliation, ResultFile, RowOutcome, RowResult};
pub use policies::{CreatedVersion, PolicyListing, PolicyQuery, load_policy_files};
pub use proposals::PROPOSING_SYSTEM;
pub use recoveries::{RecoveryListing, Settlement, followed_kinds, note_person_change};
pub use statements::{Statement, StatementLine};

use crate::domain::{CompiledRules, FieldError, StoredVersion};
use crate::identity::IdentityFacts;

/// The subsidy payment service: what every use case needs, shared by the gRPC edge.
pub struct Subsidy {
    db: Database,
    parameters: Arc<Parameters>,
    clock: Clock,
    identity: Option<IdentityFacts>,
    /// Encrypt payee accounts' numbers, holder names and citizen IDs.
    keys: Option<Arc<DataKeys>>,
    refusals: DenialAudit,
    /// Published versions never change, so their compiled rules are kept.
    rules: Mutex<HashMap<(String, i32), Arc<CompiledRules>>>,
    shutdown: Shutdown,
    feed: WatchSettings,
}

/// The method's full gRPC path, as audit rows and request ids name it.
pub fn method(name: &str) -> String {
    format!("/bangfu.subsidy.v1.SubsidyService/{name}")
}

impl Subsidy {
    /// Starts the writer of refused calls' audit rows, so call it inside the runtime.
    pub fn new(
        db: Database,
        parameters: Arc<Parameters>,
        clock: Clock,
        identity: Option<IdentityFacts>,
        keys: Option<Arc<DataKeys>>,
    ) -> Self {
        Self {
            keys,
            refusals: DenialAudit::start(crate::PATH_PREFIX, db.clone()),
            db,
            parameters,
            clock,
            identity,
            rules: Mutex::new(HashMap::new()),
            shutdown: Shutdown::new(),
            feed: WatchSettings::default(),
        }
    }

    /// Ends claim-feed streams when this server drains.
    pub fn with_shutdown(mut self, shutdown: Shutdown) -> Self {
        self.shutdown = shutdown;
        self
    }

    /// How the claim feed polls and how often idle streams get a heartbeat.
    pub fn with_feed_settings(mut self, feed: WatchSettings) -> Self {
        self.feed = feed;
        self
    }

    /// The same service reading persons from `identity` (a server that hosts both learns the
    /// address only once it is bound).
    pub fn with_identity(mut self, identity: IdentityFacts) -> Self {
        self.identity = Some(identity);
        self
    }

    pub fn shutdown(&self) -> &Shutdown {
        &self.shutdown
    }

    pub(crate) fn db(&self) -> &Database {
        &self.db
    }

    pub(crate) fn parameters(&self) -> &Parameters {
        &self.parameters
    }

    pub(crate) fn now(&self) -> OffsetDateTime {
        self.clock.now()
    }

    pub(crate) fn today(&self) -> Date {
        self.clock.today()
    }

    /// Audits a refusal made here and hands it back.
    pub(crate) fn refuse(&self, caller: &Principal, method_name: &str, resource: &str, refusal: Problem) -> Problem {
        self.refusals.refused(caller, &method(method_name), resource, refusal)
    }

    /// NOT_FOUND, audited, when `region` lies outside the caller's scope.
    pub(crate) fn ensure_sees(
        &self,
        caller: &Principal,
        method_name: &str,
        resource: &str,
        region: &str,
    ) -> Result<(), Problem> {
        caller
            .ensure_sees(resource, [region])
            .map_err(|refusal| self.refuse(caller, method_name, resource, refusal))
    }

    /// The compiled rules of a stored version (cached when published).
    pub(crate) fn compiled(&self, version: &StoredVersion) -> Result<Arc<CompiledRules>, Problem> {
        let key = (version.policy_code.clone(), version.version);
        if let Ok(cache) = self.rules.lock()
            && let Some(rules) = cache.get(&key)
        {
            return Ok(rules.clone());
        }
        let rules = Arc::new(CompiledRules::compile(Arc::new(version.rules.clone())).map_err(|e| {
            tracing::error!(version = %version.name(), error = %e.message, "a stored version does not compile");
            Problem::internal()
        })?);
        if version.state == crate::domain::VersionState::Published
            && let Ok(mut cache) = self.rules.lock()
        {
            cache.insert(key, rules.clone());
        }
        Ok(rules)
    }

    pub(crate) fn data_keys(&self) -> Result<&DataKeys, Problem> {
        self.keys.as_deref().ok_or_else(|| {
            tracing::error!("subsidy payment runs without data keys (BANGFU_DATA_KEYS)");
            Problem::internal()
        })
    }

    pub(crate) fn identity(&self) -> Result<&IdentityFacts, Problem> {
        self.identity.as_ref().ok_or_else(|| {
            Problem::new(
                Code::Unavailable,
                ErrorReason::PeerUnavailable,
                "identity is not configured for this server (BANGFU_PEER_IDENTITY)",
                "未配置身份服务地址，暂时无法核对人员信息",
            )
        })
    }
}

/// A domain refusal of a field as INVALID_ARGUMENT.
pub fn invalid(error: FieldError) -> Problem {
    Problem::invalid_field(ErrorReason::FieldInvalid, error.field, error.message, error.message_zh)
}
