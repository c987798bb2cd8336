//! The claim feed (`WatchClaimChanges`): every change of a claim, gap-free, so the submitting
//! service (posts, job matching, work relief) learns the outcome without polling. Events are
//! written by the change's own transaction ([`publish`]); a watcher sees those in its scope,
//! and a service acting on its own sees only its own system's claims.

use std::sync::Arc;

use bangfu_platform::auth::Principal;
use bangfu_platform::error::Problem;
use bangfu_platform::outbox::{self, FeedEvent, FeedItem, NewEvent, Start};
use bangfu_platform::write;
use serde::{Deserialize, Serialize};
use tokio_stream::Stream;

use super::Subsidy;
use crate::domain::{ClaimState, Outcome, RejectionReason};
use crate::store::StoredClaim;

/// What a claim event carries besides its resource, region and date: enough for the submitter
/// to update its own record without reading the claim. No personal data beyond the person's id.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ClaimEvent {
    pub source_system: String,
    pub source_reference: String,
    pub person_id: String,
    pub state: ClaimState,
    pub outcome: Outcome,
    pub amount: i64,
    pub reasons: Vec<RejectionReason>,
}

/// What happened to a claim, as the feed's event kinds name it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ClaimChangeKind {
    Decided,
    Reviewed,
    Withdrawn,
    Batched,
    Unbatched,
    Paid,
    PaymentFailed,
    RecoveryOpened,
    Reevaluated,
    Proposed,
    Declined,
}

const KINDS: [(ClaimChangeKind, &str); 11] = [
    (ClaimChangeKind::Decided, "claim_decided"),
    (ClaimChangeKind::Reviewed, "claim_reviewed"),
    (ClaimChangeKind::Withdrawn, "claim_withdrawn"),
    (ClaimChangeKind::Batched, "claim_batched"),
    (ClaimChangeKind::Unbatched, "claim_unbatched"),
    (ClaimChangeKind::Paid, "claim_paid"),
    (ClaimChangeKind::PaymentFailed, "claim_payment_failed"),
    (ClaimChangeKind::RecoveryOpened, "claim_recovery_opened"),
    (ClaimChangeKind::Reevaluated, "claim_reevaluated"),
    (ClaimChangeKind::Proposed, "claim_proposed"),
    (ClaimChangeKind::Declined, "claim_declined"),
];

impl ClaimChangeKind {
    pub fn as_str(self) -> &'static str {
        KINDS
            .iter()
            .find(|(k, _)| *k == self)
            .map(|(_, text)| *text)
            .unwrap_or_default()
    }

    pub fn parse(kind: &str) -> Option<Self> {
        KINDS.iter().find(|(_, text)| *text == kind).map(|(k, _)| *k)
    }
}

fn detail(claim: &StoredClaim) -> String {
    crate::store::to_json(&ClaimEvent {
        source_system: claim.source_system.clone(),
        source_reference: claim.source_reference.clone(),
        person_id: claim.payload.person_id.clone(),
        state: claim.state,
        outcome: claim.decision.outcome,
        amount: claim.amount,
        reasons: claim.decision.rejections.iter().map(|r| r.reason).collect(),
    })
}

/// Appends the claim's event in the change's transaction.
pub(crate) async fn publish(unit: &mut write::Unit, kind: ClaimChangeKind, claim: &StoredClaim) -> Result<(), Problem> {
    let resource = claim.name();
    let detail = detail(claim);
    unit.publish(&NewEvent {
        kind: kind.as_str(),
        resource: &resource,
        regions: &[claim.region.as_str()],
        effective_date: Some(claim.payload.period.first),
        detail: &detail,
    })
    .await
}

/// Appends one event per claim (a batch's lines, a result file's) in the step's transaction.
pub(crate) async fn publish_claims(
    tx: &mut sqlx::AnyConnection,
    kind: ClaimChangeKind,
    claims: &[StoredClaim],
    now: time::OffsetDateTime,
) -> Result<(), Problem> {
    publish_claims_dated(tx, kind, claims, &std::collections::HashMap::new(), now).await
}

/// `publish_claims` with each claim's business date where `dates` has one (the bank's paid
/// date, for PAID), its period's first day otherwise.
pub(crate) async fn publish_claims_dated(
    tx: &mut sqlx::AnyConnection,
    kind: ClaimChangeKind,
    claims: &[StoredClaim],
    dates: &std::collections::HashMap<String, time::Date>,
    now: time::OffsetDateTime,
) -> Result<(), Problem> {
    let texts: Vec<(String, String)> = claims.iter().map(|c| (c.name(), detail(c))).collect();
    let regions: Vec<[&str; 1]> = claims.iter().map(|c| [c.region.as_str()]).collect();
    let events: Vec<NewEvent<'_>> = claims
        .iter()
        .zip(&texts)
        .zip(&regions)
        .map(|((claim, (resource, detail)), regions)| NewEvent {
            kind: kind.as_str(),
            resource,
            regions,
            effective_date: Some(dates.get(&claim.id).copied().unwrap_or(claim.payload.period.first)),
            detail,
        })
        .collect();
    outbox::append_many(tx, &events, now).await?;
    Ok(())
}

/// A service's name in tokens ("welfare_post") as the source system its claims carry
/// ("welfare-post").
fn source_system_of(service: &str) -> String {
    service.replace('_', "-")
}

impl Subsidy {
    /// The claim feed for `caller`, from `start`, optionally narrowed to one source system.
    pub async fn watch_claim_changes(
        &self,
        caller: &Principal,
        start: Start,
        source_system: &str,
    ) -> Result<impl Stream<Item = Result<FeedItem, Problem>> + use<>, Problem> {
        let scope = caller.scope.clone();
        // A service on its own account sees its own claims only; acting for a user it sees what
        // the user's scope holds, like the user.
        let own_system = match (&caller.acting_service, caller.department) {
            (Some(service), None) => Some(source_system_of(service)),
            _ => None,
        };
        let asked = (!source_system.is_empty()).then(|| source_system.to_string());
        let visible: Arc<dyn Fn(&FeedEvent) -> bool + Send + Sync> = Arc::new(move |event: &FeedEvent| {
            if !event.regions.iter().any(|region| scope.contains(region)) {
                return false;
            }
            let system = serde_json::from_str::<ClaimEvent>(&event.detail)
                .map(|e| e.source_system)
                .unwrap_or_default();
            own_system.as_ref().is_none_or(|own| *own == system) && asked.as_ref().is_none_or(|a| *a == system)
        });
        outbox::watch(self.db().clone(), start, visible, self.feed, self.shutdown.clone()).await
    }
}
