//! Public-welfare posts' application layer: one use case per method, each taking the caller and
//! domain values, reading what it needs from identity and subsidy payment before its
//! transaction, and running its writes in one `write::Unit`.

mod exits;
mod hiring;
mod months;
mod posts;
mod signals;

use std::sync::Arc;

use bangfu_platform::clock::Clock;
use bangfu_platform::db::Database;
use bangfu_platform::error::{ErrorReason, Problem};
use bangfu_platform::jobs::JobWaker;
use bangfu_platform::parameters::Parameters;
use bangfu_platform::service_base::ServiceBase;
use tonic::Code;

pub use exits::{ExitRequest, FOLLOWED_KINDS, note_claim_outcomes, note_person_change};
pub use hiring::{CheckSubject, Eligibility, HireRequest, NoticeView, ObjectionRequest};
pub use months::{ClosedMonth, EvaluationRequest};
pub use posts::{AnnouncementRequest, CadreRequest, PostChange};
pub use signals::{PostStats, Signal, SignalKind, StatsRow};

use crate::peers::Peers;

/// The public-welfare post service: what every use case needs, shared by the gRPC edge.
pub struct Posts {
    base: ServiceBase,
    peers: Option<Peers>,
    /// Held by whoever sends month lines to subsidy payment in this process (see
    /// `months::Posts::take_sender`).
    sender: tokio::sync::Mutex<()>,
    /// Wakes the job that sends pending lines, when CloseMonth leaves some at its budget's end.
    sender_job: JobWaker,
}

impl std::ops::Deref for Posts {
    type Target = ServiceBase;

    fn deref(&self) -> &ServiceBase {
        &self.base
    }
}

/// The service's gRPC path; a method's name appended makes the method's.
const SERVICE_PATH: &str = "/bangfu.welfare_post.v1.WelfarePostService/";

/// The method's full gRPC path, as audit rows and request ids name it.
pub fn method(name: &str) -> String {
    format!("{SERVICE_PATH}{name}")
}

impl Posts {
    /// Starts the writer of refused calls' audit rows, so call it inside the runtime.
    pub fn new(db: Database, parameters: Arc<Parameters>, clock: Clock, peers: Option<Peers>) -> Self {
        Self {
            base: ServiceBase::new(db, parameters, clock, crate::PATH_PREFIX, SERVICE_PATH),
            peers,
            sender: tokio::sync::Mutex::new(()),
            sender_job: JobWaker::default(),
        }
    }

    /// What wakes the job that sends pending month lines (the hosted service's retry job).
    pub fn sender_job(&self) -> &JobWaker {
        &self.sender_job
    }

    /// The same service calling identity and subsidy payment at `peers` (a server hosting all
    /// three learns its own address only once bound).
    pub fn with_peers(mut self, peers: Peers) -> Self {
        self.peers = Some(peers);
        self
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
}

/// INVALID_ARGUMENT on one field.
pub(crate) fn invalid(field: &str, message: impl Into<String>, message_zh: impl Into<String>) -> Problem {
    Problem::invalid_field(ErrorReason::FieldInvalid, field, message, message_zh)
}
