//! Recovery (追回): identity's corrections followed. A change that can undo a payment — a category
//! revoked, annulled or cut short, a death, a move away — is noted by the follower in the same
//! transaction as its cursor (nothing lost, nothing twice); the job then re-evaluates the
//! person's paid claims under the version that decided them, with the corrected facts, and
//! opens a recovery for what they no longer support, with the money asked back moved from PAID
//! to RECOVERABLE in the fund's journal.

use bangfu_platform::audit::AuditEntry;
use bangfu_platform::auth::Principal;
use bangfu_platform::db::to_micros;
use bangfu_platform::error::Problem;
use bangfu_platform::peers::CallContext;
use bangfu_platform::write;

use super::Subsidy;
use super::feed::{ClaimChangeKind, publish_claims};
use super::funds::account;
use crate::domain::{Decision, Fact, FactSource, Outcome};
use crate::identity::{PersonEvent, PolicyFacts};
use crate::store::{self, LedgerEntry, StoredRecovery};

/// Every kind of identity change this service reads: those that may propose a claim and those
/// that may undo a payment. The feed is asked for these alone.
pub fn followed_kinds() -> Vec<&'static str> {
    crate::domain::policy::TRIGGER_KINDS
        .iter()
        .chain(UNDOING.iter())
        .copied()
        .collect()
}

/// Identity changes that may undo a payment.
const UNDOING: [&str; 5] = [
    "CATEGORY_REVOKED",
    "CATEGORY_ANNULLED",
    "CATEGORY_DATES_CHANGED",
    "DIED",
    "MOVED_AWAY",
];

/// The follower's effect, in its transaction: a change to check for recoveries (a person with
/// paid claims) and for proposals (a change a policy may be triggered by).
pub async fn note_person_change(
    tx: &mut sqlx::AnyConnection,
    event: &PersonEvent,
    now: time::OffsetDateTime,
) -> Result<(), Problem> {
    super::proposals::note_change(tx, event, now).await?;
    if !UNDOING.contains(&event.kind.as_str()) || !store::has_paid_claims(tx, &event.person_id).await? {
        return Ok(());
    }
    store::note_recovery_check(
        tx,
        &event.cursor,
        &event.person_id,
        &event.kind,
        event.effective_date,
        now,
    )
    .await?;
    Ok(())
}

/// Why money is asked back, by the change that showed it.
fn reason_of(kind: &str) -> &'static str {
    match kind {
        "CATEGORY_REVOKED" | "CATEGORY_DATES_CHANGED" => "category_revoked",
        "CATEGORY_ANNULLED" => "category_annulled",
        "DIED" => "person_deceased",
        _ => "facts_corrected",
    }
}

/// A page of recoveries.
pub struct RecoveryListing {
    pub recoveries: Vec<StoredRecovery>,
    pub more: bool,
}

impl Subsidy {
    /// The job's body: every noted change, checked; returns the recoveries opened. A change whose
    /// facts cannot be read now (identity unreachable) stays noted for the next run.
    pub async fn process_recovery_checks(&self) -> Result<usize, Problem> {
        let checks = {
            let mut conn = self.db().acquire().await?;
            store::pending_recovery_checks(&mut conn, 100).await?
        };
        let mut opened = 0;
        for check in checks {
            // An annulment voids the category from its start: every paid claim is checked.
            let from = if check.change_kind == "CATEGORY_ANNULLED" {
                None
            } else {
                check.effective_date
            };
            let claims = {
                let mut conn = self.db().acquire().await?;
                store::paid_claims_from(&mut conn, &check.person_id, from).await?
            };
            let own = CallContext::new(None, None);
            let mut found = Vec::new();
            for claim in claims {
                let period = claim.payload.period;
                let Some(person) = self.identity()?.person(&own, &check.person_id, &period).await? else {
                    continue;
                };
                let version = {
                    let mut conn = self.db().acquire().await?;
                    store::get_version(&mut conn, &claim.payload.policy_code, claim.decision.policy_version)
                        .await?
                        .ok_or_else(Problem::internal)?
                };
                let rules = self.compiled(&version)?;
                // The decision's own facts, with identity's replaced by today's reading of the period.
                let facts: Vec<Fact> = claim
                    .decision
                    .frozen_facts
                    .iter()
                    .filter(|f| f.source != FactSource::Identity)
                    .map(|f| f.fact.clone())
                    .chain(
                        version
                            .rules
                            .facts
                            .iter()
                            .filter(|d| d.source == FactSource::Identity)
                            .filter_map(|d| {
                                person
                                    .fact(&d.name, &period, version.rules.category_as_of)
                                    .map(|value| Fact {
                                        name: d.name.clone(),
                                        value,
                                    })
                            }),
                    )
                    .collect();
                let evaluation = rules.evaluate(&period, &claim.region, &facts).map_err(|error| {
                    tracing::error!(claim = %claim.name(), %error, "a published rule fails on re-evaluation");
                    Problem::internal()
                })?;
                let supported = if evaluation.outcome == Outcome::Eligible {
                    evaluation.amount
                } else {
                    0
                };
                let paid = {
                    let mut conn = self.db().acquire().await?;
                    store::paid_line(&mut conn, &claim.id)
                        .await?
                        .map(|p| p.0)
                        .unwrap_or(claim.amount)
                };
                if supported < paid {
                    let message = if evaluation.rejections.is_empty() {
                        format!("按更正后的信息，应发 {supported} 分，已发 {paid} 分")
                    } else {
                        evaluation
                            .rejections
                            .iter()
                            .map(|r| r.message.clone())
                            .collect::<Vec<_>>()
                            .join("；")
                    };
                    let reevaluation = Decision {
                        outcome: evaluation.outcome,
                        amount: supported,
                        computed_amount: evaluation.computed_amount,
                        policy_version: version.version,
                        rejections: evaluation.rejections.clone(),
                        months_granted: evaluation.months_granted,
                        months_limit: evaluation.months_limit,
                        frozen_facts: Vec::new(),
                        decided_us: to_micros(self.now()),
                    };
                    found.push((claim, paid - supported, reevaluation, message));
                }
            }
            let mut unit = write::begin_unkeyed(self.db(), self.now()).await?;
            let now = unit.now();
            let mut recovered_claims = Vec::new();
            for (claim, amount, reevaluation, message) in found {
                let fund_id = claim.fund_id.clone().ok_or_else(Problem::internal)?;
                let recovery = StoredRecovery {
                    id: store::new_id(),
                    claim_id: claim.id.clone(),
                    policy_code: claim.payload.policy_code.clone(),
                    person_id: check.person_id.clone(),
                    person_display_name: claim.person_display_name.clone(),
                    fund_id: fund_id.clone(),
                    region: claim.region.clone(),
                    reason: reason_of(&check.change_kind).to_string(),
                    trigger_cursor: check.cursor.clone(),
                    amount,
                    returned: 0,
                    reevaluation,
                    message,
                    state: "open".into(),
                    created: now,
                    closed: None,
                    revision: 1,
                };
                if !store::insert_recovery(unit.tx(), &recovery).await? {
                    continue;
                }
                if !store::open_claim_recovery(unit.tx(), &claim.id, now).await?
                    || !store::mark_recoverable(unit.tx(), &fund_id, amount).await?
                {
                    return Err(Problem::internal());
                }
                store::append_entry(
                    unit.tx(),
                    &LedgerEntry {
                        fund_id,
                        seq: 0,
                        kind: "recovery_opened".into(),
                        debit: account::RECOVERABLE.into(),
                        credit: account::PAID.into(),
                        amount,
                        claim_id: Some(claim.id.clone()),
                        batch_id: None,
                        document: recovery.name(),
                        entry_date: self.today(),
                        subject: crate::SERVICE.into(),
                        recorded: now,
                    },
                )
                .await?;
                unit.audit(
                    AuditEntry::by_service(crate::SERVICE, &super::method("OpenRecovery"), recovery.name(), now)
                        .in_region(&recovery.region),
                )
                .await?;
                recovered_claims.push(claim.id.clone());
                opened += 1;
            }
            let claims = store::claims_by_ids(unit.tx(), &recovered_claims).await?;
            publish_claims(unit.tx(), ClaimChangeKind::RecoveryOpened, &claims, now).await?;
            store::finish_recovery_check(unit.tx(), &check.cursor).await?;
            unit.audit(AuditEntry::by_service(
                crate::SERVICE,
                &super::method("CheckRecovery"),
                format!("persons/{}", check.person_id),
                now,
            ))
            .await?;
            unit.commit_audited().await?;
        }
        Ok(opened)
    }

    pub async fn get_recovery(&self, caller: &Principal, id: &str) -> Result<StoredRecovery, Problem> {
        let mut conn = self.db().acquire().await?;
        let recovery = store::get_recovery(&mut conn, id)
            .await?
            .ok_or_else(|| Problem::not_found(&format!("recoveries/{id}")))?;
        self.ensure_sees(caller, "GetRecovery", &recovery.name(), &recovery.region)?;
        Ok(recovery)
    }

    #[allow(clippy::too_many_arguments)]
    pub async fn list_recoveries(
        &self,
        caller: &Principal,
        region_prefix: &str,
        filter: &store::RecoveryFilter,
        after: Option<(String, String)>,
        limit: u32,
    ) -> Result<RecoveryListing, Problem> {
        let Some(prefix) = caller.scope.narrowed(region_prefix) else {
            return Ok(RecoveryListing {
                recoveries: Vec::new(),
                more: false,
            });
        };
        let mut conn = self.db().acquire().await?;
        let mut recoveries = store::list_recoveries(&mut conn, &prefix, filter, after, i64::from(limit) + 1).await?;
        let more = recoveries.len() > limit as usize;
        recoveries.truncate(limit as usize);
        Ok(RecoveryListing { recoveries, more })
    }
}

/// How a recovery is settled.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Settlement {
    /// Money received: this much.
    Returned(i64),
    /// The rest will not be asked (the payee cannot pay, a decision of the department).
    WrittenOff,
    /// The recovery was wrong (the facts were restored): the payment stands.
    Cancelled,
}

impl Subsidy {
    /// SettleRecovery: money returned goes back to the fund (RECOVERABLE → AVAILABLE); a write-off
    /// or cancellation closes what is left (RECOVERABLE → PAID). One journal entry each.
    pub async fn settle_recovery(
        &self,
        caller: &Principal,
        key: Option<bangfu_platform::idempotency::RequestKey>,
        id: &str,
        settlement: Settlement,
        document: &str,
        etag: &str,
    ) -> Result<(StoredRecovery, store::LedgerEntry), Problem> {
        let mut unit = match write::begin(self.db(), key, self.now()).await? {
            write::Begun::Replay { .. } => {
                let mut conn = self.db().acquire().await?;
                let recovery = store::get_recovery(&mut conn, id)
                    .await?
                    .ok_or_else(|| Problem::not_found(&format!("recoveries/{id}")))?;
                let entry = store::list_entries(
                    &mut conn,
                    &recovery.fund_id,
                    &store::EntryFilter::default(),
                    0,
                    i64::MAX,
                )
                .await?
                .into_iter()
                .rev()
                .find(|e| e.document.ends_with(&recovery.name()) || e.claim_id.as_deref() == Some(&recovery.claim_id))
                .ok_or_else(Problem::internal)?;
                return Ok((recovery, entry));
            }
            write::Begun::Fresh(unit) => unit,
        };
        let now = unit.now();
        let recovery = store::get_recovery(unit.tx(), id)
            .await?
            .ok_or_else(|| Problem::not_found(&format!("recoveries/{id}")))?;
        let name = recovery.name();
        self.ensure_sees(caller, "SettleRecovery", &name, &recovery.region)?;
        if recovery.etag() != etag {
            return Err(super::Problem::etag_mismatch(&name));
        }
        if recovery.state != "open" {
            return Err(Problem::new(
                tonic::Code::FailedPrecondition,
                bangfu_platform::error::ErrorReason::StateConflict,
                format!("{name} is {}", recovery.state),
                "该追回事项已办结",
            ));
        }
        let due = recovery.amount - recovery.returned;
        let (returned, closed, state, kind, (debit, credit)) = match settlement {
            Settlement::Returned(amount) => {
                if amount <= 0 || amount > due {
                    return Err(Problem::invalid_field(
                        bangfu_platform::error::ErrorReason::AmountOutOfRange,
                        "returned_amount",
                        format!("must be more than zero and at most the {due} fen still due"),
                        format!("缴回金额应大于零且不超过尚欠的 {due} 分"),
                    ));
                }
                let state = if amount == due { "returned" } else { "open" };
                (
                    amount,
                    0,
                    state,
                    "recovery_received",
                    (account::AVAILABLE, account::RECOVERABLE),
                )
            }
            Settlement::WrittenOff => (
                0,
                due,
                "written_off",
                "recovery_closed",
                (account::PAID, account::RECOVERABLE),
            ),
            Settlement::Cancelled => {
                if recovery.returned > 0 {
                    // Money already received cannot be undone by cancelling: write the rest off.
                    return Err(Problem::new(
                        tonic::Code::FailedPrecondition,
                        bangfu_platform::error::ErrorReason::StateConflict,
                        format!("{name} has money returned; write off the rest instead of cancelling"),
                        "该追回事项已有缴回款项，不能撤销，请核销剩余部分",
                    ));
                }
                (
                    0,
                    due,
                    "cancelled",
                    "recovery_closed",
                    (account::PAID, account::RECOVERABLE),
                )
            }
        };
        if !store::settle_recovery(unit.tx(), id, returned, state, recovery.revision, now).await? {
            return Err(super::Problem::etag_mismatch(&name));
        }
        if !store::settle_recoverable(unit.tx(), &recovery.fund_id, returned, closed).await? {
            tracing::error!(recovery = %name, "a recovery's fund lacks the recoverable money");
            return Err(Problem::internal());
        }
        let claim_state = match state {
            "returned" | "written_off" => Some("recovered"),
            "cancelled" => Some("paid"),
            _ => None,
        };
        if let Some(claim_state) = claim_state
            && !store::close_claim_recovery(unit.tx(), &recovery.claim_id, claim_state, now).await?
        {
            return Err(super::Problem::etag_mismatch(&name));
        }
        let mut entry = store::LedgerEntry {
            fund_id: recovery.fund_id.clone(),
            seq: 0,
            kind: kind.into(),
            debit: debit.into(),
            credit: credit.into(),
            amount: returned + closed,
            claim_id: Some(recovery.claim_id.clone()),
            batch_id: None,
            document: format!("{document} {name}"),
            entry_date: self.today(),
            subject: caller.subject.clone(),
            recorded: now,
        };
        entry.seq = store::append_entry(unit.tx(), &entry).await?;
        let settled = store::get_recovery(unit.tx(), id)
            .await?
            .ok_or_else(Problem::internal)?;
        unit.commit(AuditEntry::by(caller, &super::method("SettleRecovery"), name, now).in_region(&settled.region))
            .await?;
        Ok((settled, entry))
    }
}
