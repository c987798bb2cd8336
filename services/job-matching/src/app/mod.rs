//! Job matching's application layer: one use case per method, each taking the caller and
//! domain values, reading what it needs from identity before its transaction, and running its
//! writes in one `write::Unit`.

mod activities;
mod carriers;
mod claims;
mod exports;
mod matching;
mod placements;
pub mod postings;
mod seekers;

use std::sync::Arc;

use bangfu_platform::clock::Clock;
use bangfu_platform::db::Database;
use bangfu_platform::error::{ErrorReason, Problem};
use bangfu_platform::outbox::WatchSettings;
use bangfu_platform::parameters::Parameters;
use bangfu_platform::server::Shutdown;
use bangfu_platform::service_base::ServiceBase;
use tonic::Code;

pub use activities::JobStats;
pub use carriers::{CarrierChange, CarrierView};
pub use claims::{ClaimView, apply_claim_outcome};
pub use exports::{ExportBatchView, TravellerView};
pub use matching::{PostingMatch, SeekerMatch};
pub use placements::{Ending, NewPlacement, PlacementView};
pub use postings::PostingChange;
pub use seekers::{SeekerChange, followed_kinds, note_person_change};

use crate::domain::{Factor, Weights};
use crate::peers::Peers;

/// The job-matching service: what every use case needs, shared by the gRPC edge.
pub struct Jobs {
    base: ServiceBase,
    peers: Option<Peers>,
    shutdown: Shutdown,
    feed: WatchSettings,
}

impl std::ops::Deref for Jobs {
    type Target = ServiceBase;

    fn deref(&self) -> &ServiceBase {
        &self.base
    }
}

/// The service's gRPC path; a method's name appended makes the method's.
const SERVICE_PATH: &str = "/bangfu.jobs.v1.JobMatchingService/";

/// The method's full gRPC path, as audit rows and request ids name it.
pub fn method(name: &str) -> String {
    format!("{SERVICE_PATH}{name}")
}

impl Jobs {
    /// Starts the writer of refused calls' audit rows, so call it inside the runtime.
    pub fn new(db: Database, parameters: Arc<Parameters>, clock: Clock, peers: Option<Peers>) -> Self {
        Self {
            base: ServiceBase::new(db, parameters, clock, crate::PATH_PREFIX, SERVICE_PATH),
            peers,
            shutdown: Shutdown::new(),
            feed: WatchSettings::default(),
        }
    }

    /// The same service calling identity and subsidy payment at `peers` (a server hosting them
    /// all learns its own address only once bound).
    pub fn with_peers(mut self, peers: Peers) -> Self {
        self.peers = Some(peers);
        self
    }

    /// Posting-feed streams end on this shutdown.
    pub fn with_shutdown(mut self, shutdown: Shutdown) -> Self {
        self.shutdown = shutdown;
        self
    }

    /// How the posting feed polls (tests shorten the heartbeat).
    pub fn with_feed_settings(mut self, feed: WatchSettings) -> Self {
        self.feed = feed;
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

    /// The matching weights in force for `region` today.
    pub(crate) async fn weights(&self, region: &str) -> Result<Weights, Problem> {
        let today = self.today();
        let weight = |factor: Factor| self.parameter(factor.weight_key(), region, today);
        Ok(Weights {
            distance: weight(Factor::Distance).await?,
            intention: weight(Factor::Intention).await?,
            skills: weight(Factor::Skills).await?,
            wage: weight(Factor::Wage).await?,
            labor_capacity: weight(Factor::LaborCapacity).await?,
            priority: weight(Factor::TargetPriority).await?,
        })
    }
}

/// INVALID_ARGUMENT on one field.
pub(crate) fn invalid(field: &str, message: impl Into<String>, message_zh: impl Into<String>) -> Problem {
    Problem::invalid_field(ErrorReason::FieldInvalid, field, message, message_zh)
}

/// The etag sent must be the record's.
pub(crate) fn check_etag(resource: &str, sent: &str, current: &str) -> Result<(), Problem> {
    if sent != current {
        return Err(Problem::etag_mismatch(resource));
    }
    Ok(())
}
