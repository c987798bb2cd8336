//! Work relief's application layer: one use case per method, each taking the caller and domain
//! values, reading what it needs from identity and subsidy payment before its transaction, and
//! running its writes in one `write::Unit`.

mod payrolls;
mod projects;
pub mod roster;

use std::sync::Arc;

use bangfu_platform::auth::Principal;
use bangfu_platform::auth::layer::DenialAudit;
use bangfu_platform::clock::Clock;
use bangfu_platform::db::Database;
use bangfu_platform::error::{ErrorReason, Problem};
use bangfu_platform::parameters::Parameters;
use time::{Date, OffsetDateTime};
use tonic::Code;

pub use payrolls::{Arrear, NoticeRequest, ObjectionRequest, PayrollView, apply_claim_outcome};
pub use projects::{LaborShare, ProjectChange, ProjectStats, ProjectView};
pub use roster::{AttendanceProblem, RosterCounts};

use crate::peers::Peers;

/// The work-relief service: what every use case needs, shared by the gRPC edge.
pub struct Relief {
    db: Database,
    parameters: Arc<Parameters>,
    clock: Clock,
    peers: Option<Peers>,
    refusals: DenialAudit,
}

/// The method's full gRPC path, as audit rows and request ids name it.
pub fn method(name: &str) -> String {
    format!("/bangfu.work_relief.v1.WorkReliefService/{name}")
}

impl Relief {
    /// Starts the writer of refused calls' audit rows, so call it inside the runtime.
    pub fn new(db: Database, parameters: Arc<Parameters>, clock: Clock, peers: Option<Peers>) -> Self {
        Self {
            refusals: DenialAudit::start(crate::PATH_PREFIX, db.clone()),
            db,
            parameters,
            clock,
            peers,
        }
    }

    /// The same service calling identity and subsidy payment at `peers` (a server hosting all
    /// three learns its own address only once bound).
    pub fn with_peers(mut self, peers: Peers) -> Self {
        self.peers = Some(peers);
        self
    }

    pub fn db(&self) -> &Database {
        &self.db
    }

    pub fn parameters(&self) -> &Parameters {
        &self.parameters
    }

    pub fn now(&self) -> OffsetDateTime {
        self.clock.now()
    }

    pub fn today(&self) -> Date {
        self.clock.today()
    }

    pub(crate) fn peers(&self) -> Result<&Peers, Problem> {
        self.peers.as_ref().ok_or_else(|| {
            Problem::new(
                Code::Unavailable,
                ErrorReason::PeerUnavailable,
                "identity and subsidy payment are not configured for this server (BANGFU_PEER_IDENTITY, BANGFU_PEER_SUBSIDY)",
                "未配置身份服务或补贴发放服务地址，暂时无法办理",
            )
        })
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
}

/// FAILED_PRECONDITION, STATE_CONFLICT: the record is not in a state that allows the change.
pub(crate) fn state_conflict(resource: &str, message: impl Into<String>, message_zh: impl Into<String>) -> Problem {
    Problem::new(
        Code::FailedPrecondition,
        ErrorReason::StateConflict,
        message,
        message_zh,
    )
    .with_metadata("resource", resource)
}

/// INVALID_ARGUMENT on one field.
pub(crate) fn invalid(field: &str, message: impl Into<String>, message_zh: impl Into<String>) -> Problem {
    Problem::invalid_field(ErrorReason::FieldInvalid, field, message, message_zh)
}
