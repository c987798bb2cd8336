//! Proactive claims (免申即享): a policy may name an identity change that entitles a person
//! without an application — Chongqing's transport subsidy when a Chongqing-registered target
//! person's employment turns to out-of-province. The follower notes such changes in the same
//! transaction as its cursor; a job reads the person's facts after the change, matches the
//! policies' triggers and proposes a claim (PROPOSED, no decision, no money held). A clerk then
//! confirms it with the facts only they have (the ticket's fare) — it is decided like any
//! claim — or declines it with a reason.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use bangfu_platform::audit::AuditEntry;
use bangfu_platform::auth::Principal;
use bangfu_platform::error::{ErrorReason, Problem};
use bangfu_platform::peers::CallContext;
use bangfu_platform::write;
use time::Date;
use tonic::Code;

use super::feed::{ClaimChangeKind, publish};
use super::{Subsidy, method};
use crate::domain::{
    ClaimPayload, ClaimState, Decision, Fact, Payee, PayeeKind, Period, ProactiveTrigger, RegionBasis, Review,
    ReviewVerdict, StoredVersion, TRIGGER_KINDS, TriggeringChange, day_text,
};
use crate::identity::{PersonEvent, PersonFacts, PolicyFacts};
use crate::store::{self, ProposalCheck, StoredClaim, StoredPolicy};

/// The source system proposals are stored under; with the reference built from the policy,
/// the person and the change, a replayed feed proposes nothing twice.
pub const PROPOSING_SYSTEM: &str = "subsidy-payment";

/// Notes the change when a policy may be triggered by its kind.
pub(super) async fn note_change(
    tx: &mut sqlx::AnyConnection,
    event: &PersonEvent,
    now: time::OffsetDateTime,
) -> Result<(), Problem> {
    if !TRIGGER_KINDS.contains(&event.kind.as_str()) {
        return Ok(());
    }
    // A change without a business date takes the day it was noted, fixed now: the proposal's
    // reference is built from it, so a replay on a later day proposes nothing twice.
    let noted_on = bangfu_platform::clock::business_date(now);
    let check = ProposalCheck {
        cursor: event.cursor.clone(),
        person_id: event.person_id.clone(),
        change_kind: event.kind.clone(),
        category: event.category.clone(),
        effective_date: Some(event.effective_date.unwrap_or(noted_on)),
    };
    store::note_proposal_check(tx, &check, now).await?;
    Ok(())
}

/// Noted changes taken per page, and how long one round of the job keeps taking pages: an
/// import of a province's persons notes hundreds of thousands of changes, which a hundred a
/// round every 30 s would take days to work through.
const CHECKS_PER_PAGE: i64 = 500;
const CHECK_ROUND: Duration = Duration::from_secs(10);

/// A policy a change may trigger, with the version and the period a proposal would carry.
struct Candidate {
    policy: StoredPolicy,
    version: StoredVersion,
    trigger: ProactiveTrigger,
    period: Period,
}

/// The audit row of a noted change matched against the policies.
fn checked(check: &ProposalCheck, now: time::OffsetDateTime) -> AuditEntry {
    AuditEntry::by_service(
        crate::SERVICE,
        &method("CheckProposal"),
        format!("persons/{}", check.person_id),
        now,
    )
}

/// A claim to propose, with what it was decided from.
struct Proposal {
    policy: StoredPolicy,
    version: StoredVersion,
    period: Period,
    person: PersonFacts,
    region: String,
}

fn not_proposed(claim: &StoredClaim) -> Problem {
    Problem::new(
        Code::FailedPrecondition,
        ErrorReason::StateConflict,
        format!(
            "{} is {}; only a proposed claim is confirmed or declined",
            claim.name(),
            claim.state.as_str()
        ),
        "该申请不是待确认的免申即享申请",
    )
}

impl Subsidy {
    /// The job's body: every noted change matched against the triggers of the versions in
    /// force on its day; returns the claims proposed. A change whose person cannot be read now
    /// (identity unreachable) stays noted for the next run.
    pub async fn process_proposal_checks(&self) -> Result<usize, Problem> {
        let until = Instant::now() + CHECK_ROUND;
        let mut proposed = 0;
        loop {
            let checks = {
                let mut conn = self.db().acquire().await?;
                store::pending_proposal_checks(&mut conn, CHECKS_PER_PAGE).await?
            };
            let full = checks.len() == usize::try_from(CHECKS_PER_PAGE).unwrap_or(usize::MAX);
            proposed += self.check_page(checks).await?;
            if !full || Instant::now() >= until {
                return Ok(proposed);
            }
        }
    }

    /// One page of noted changes. Most propose nothing (no trigger names their kind, or the
    /// person does not match): those are finished together in one transaction, each audited;
    /// a change that proposes a claim gets a transaction of its own.
    async fn check_page(&self, checks: Vec<ProposalCheck>) -> Result<usize, Problem> {
        let own = CallContext::new(None, None);
        let mut candidates: HashMap<(Date, String), Vec<Candidate>> = HashMap::new();
        let mut quiet: Vec<ProposalCheck> = Vec::new();
        let mut proposed = 0;
        let mut unreachable = None;
        for check in checks {
            let day = check.effective_date.unwrap_or_else(|| self.today());
            let key = (day, check.change_kind.clone());
            if !candidates.contains_key(&key) {
                let found = self.candidates(day, &check.change_kind).await?;
                candidates.insert(key.clone(), found);
            }
            let triggered = candidates.get(&key).map(Vec::as_slice).unwrap_or_default();
            if triggered.is_empty() {
                quiet.push(check);
                continue;
            }
            let proposals = match self.proposals_for(&own, &check, triggered).await {
                Ok(proposals) => proposals,
                // Identity or the database unreachable: this change and those after it stay
                // noted for the next run; the quiet ones before it are finished below.
                Err(problem) if problem.code == Code::Unavailable => {
                    unreachable = Some(problem);
                    break;
                }
                // Anything else would stop every later change behind this one: it is logged
                // with its cursor for an operator, and set aside.
                Err(problem) => {
                    tracing::error!(
                        cursor = %check.cursor,
                        person = %check.person_id,
                        error = %problem.message,
                        "a noted identity change could not be matched against the policies; set aside"
                    );
                    Vec::new()
                }
            };
            if proposals.is_empty() {
                quiet.push(check);
                continue;
            }
            let mut unit = write::begin_unkeyed(self.db(), self.now()).await?;
            let now = unit.now();
            for Proposal {
                policy,
                version,
                period,
                person,
                region,
            } in proposals
            {
                let code = policy.policy.code.clone();
                let reference = format!("{code}/{}/{}/{}", check.person_id, check.change_kind, day_text(day));
                if store::claim_by_source(unit.tx(), PROPOSING_SYSTEM, &reference)
                    .await?
                    .is_some()
                {
                    continue;
                }
                let claim = StoredClaim {
                    id: store::new_id(),
                    policy_group: policy.policy.policy_group.clone(),
                    source_system: PROPOSING_SYSTEM.into(),
                    source_reference: reference,
                    payload: ClaimPayload {
                        policy_code: code,
                        person_id: check.person_id.clone(),
                        payee: Payee::Person(check.person_id.clone()),
                        period,
                        facts: Vec::new(),
                        note: format!("免申即享：{}", policy.policy.title),
                    },
                    state: ClaimState::Proposed,
                    region,
                    person_display_name: person.display_name.clone(),
                    amount: 0,
                    fund_id: None,
                    payment_batch_id: None,
                    decision: Decision::pending(version.version),
                    earlier_decisions: Vec::new(),
                    review_cause: None,
                    required_reviews: 0,
                    reviews: Vec::new(),
                    submit_subject: crate::SERVICE.into(),
                    acting_service: String::new(),
                    created: now,
                    updated: now,
                    revision: 1,
                };
                store::insert_claim(unit.tx(), &claim, None).await?;
                publish(&mut unit, ClaimChangeKind::Proposed, &claim).await?;
                unit.audit(
                    AuditEntry::by_service(crate::SERVICE, &method("ProposeClaim"), claim.name(), now)
                        .in_region(&claim.region),
                )
                .await?;
                proposed += 1;
            }
            store::finish_proposal_checks(unit.tx(), &[check.cursor.as_str()]).await?;
            unit.audit(checked(&check, now)).await?;
            unit.commit_audited().await?;
        }
        if !quiet.is_empty() {
            let mut unit = write::begin_unkeyed(self.db(), self.now()).await?;
            let now = unit.now();
            let cursors: Vec<&str> = quiet.iter().map(|c| c.cursor.as_str()).collect();
            store::finish_proposal_checks(unit.tx(), &cursors).await?;
            unit.audit_many(quiet.iter().map(|check| checked(check, now)).collect())
                .await?;
            unit.commit_audited().await?;
        }
        match unreachable {
            Some(problem) => Err(problem),
            None => Ok(proposed),
        }
    }

    /// The policies a change of `kind` on `day` may trigger: each version in force that day
    /// whose trigger names the kind, paid to a person, with the version deciding the claim's
    /// own period (for a monthly policy) and that period.
    async fn candidates(&self, day: Date, kind: &str) -> Result<Vec<Candidate>, Problem> {
        let mut conn = self.db().acquire().await?;
        let mut candidates = Vec::new();
        for version in store::versions_in_force_on(&mut conn, day).await? {
            if version
                .rules
                .proactive_trigger
                .as_ref()
                .is_none_or(|t| t.change_kind != kind)
            {
                continue;
            }
            let policy = store::get_policy(&mut conn, &version.policy_code)
                .await?
                .ok_or_else(Problem::internal)?;
            if policy.policy.payee_kind != PayeeKind::Person {
                continue;
            }
            let period = ProactiveTrigger::period(policy.policy.period_kind, day);
            let Some(version) = store::version_in_force(&mut conn, &policy.policy.code, period.first).await? else {
                continue;
            };
            let Some(trigger) = version.rules.proactive_trigger.clone() else {
                continue;
            };
            candidates.push(Candidate {
                policy,
                version,
                trigger,
                period,
            });
        }
        Ok(candidates)
    }

    /// The claims a noted change proposes among `candidates` (what its kind and day may
    /// trigger): the person's facts for the period after the change, matched against each
    /// trigger and the version's target categories.
    async fn proposals_for(
        &self,
        own: &CallContext,
        check: &ProposalCheck,
        candidates: &[Candidate],
    ) -> Result<Vec<Proposal>, Problem> {
        let mut proposals = Vec::new();
        for Candidate {
            policy,
            version,
            trigger,
            period,
        } in candidates
        {
            let Some(person) = self.identity()?.person(own, &check.person_id, period).await? else {
                continue;
            };
            let change = TriggeringChange {
                change_kind: &check.change_kind,
                category: &check.category,
                employment_status: &person.employment_status,
                registered_region: &person.registered_region,
            };
            let categories = person.categories(period, version.rules.category_as_of);
            let targeted = version.rules.target_categories.is_empty()
                || version.rules.target_categories.iter().any(|c| categories.contains(c));
            if !trigger.matches(&change) || !targeted {
                continue;
            }
            // Filed where a submitted claim of the policy would be, so its clerks confirm it.
            let region = match version.rules.region_basis {
                RegionBasis::Residence => person.residence_region.clone(),
                _ => person.registered_region.clone(),
            };
            proposals.push(Proposal {
                policy: policy.clone(),
                version: version.clone(),
                period: *period,
                person,
                region,
            });
        }
        Ok(proposals)
    }

    /// ConfirmProposedClaim: the clerk's facts added, the claim decided as SubmitClaim decides
    /// one, by the confirming clerk (who therefore cannot review it); or declined with a reason.
    #[allow(clippy::too_many_arguments)]
    pub async fn confirm_proposed_claim(
        &self,
        caller: &Principal,
        call: &CallContext,
        id: &str,
        facts: Vec<Fact>,
        decline: bool,
        note: &str,
        etag: &str,
    ) -> Result<StoredClaim, Problem> {
        let read = {
            let mut conn = self.db().acquire().await?;
            store::get_claim(&mut conn, id)
                .await?
                .ok_or_else(|| Problem::not_found(&format!("claims/{id}")))?
        };
        self.ensure_sees(caller, "ConfirmProposedClaim", &read.name(), &read.region)?;
        if read.state != ClaimState::Proposed {
            return Err(not_proposed(&read));
        }
        let mut payload = read.payload.clone();
        let gathered = if decline {
            None
        } else {
            payload.facts = facts;
            Some(
                self.gather_for_decision(caller, call, "ConfirmProposedClaim", &payload)
                    .await?,
            )
        };
        let mut unit = write::begin_unkeyed(self.db(), self.now()).await?;
        let now = unit.now();
        store::lock_subject(unit.tx(), self.db().backend(), &read.payload.subject_key()).await?;
        let mut claim = store::get_claim(unit.tx(), id)
            .await?
            .ok_or_else(|| Problem::not_found(&format!("claims/{id}")))?;
        let name = claim.name();
        if claim.etag() != etag {
            return Err(Problem::etag_mismatch(&name));
        }
        if claim.state != ClaimState::Proposed {
            return Err(not_proposed(&claim));
        }
        let read_revision = claim.revision;
        claim.updated = now;
        let kind = match &gathered {
            None => {
                claim.state = ClaimState::Declined;
                claim.reviews.push(Review {
                    subject: caller.subject.clone(),
                    verdict: ReviewVerdict::Reject,
                    note: note.to_string(),
                    reviewed_us: bangfu_platform::db::to_micros(now),
                });
                if !store::update_claim(unit.tx(), &claim, ClaimState::Proposed, read_revision, None).await? {
                    return Err(Problem::etag_mismatch(&name));
                }
                ClaimChangeKind::Declined
            }
            Some(gathered) => {
                claim.payload = payload;
                claim.payload.note = note.to_string();
                let approved_month = self
                    .decide_into(unit.tx(), gathered, &mut claim, &mut super::claims::Reads::default())
                    .await?;
                if !store::update_claim(
                    unit.tx(),
                    &claim,
                    ClaimState::Proposed,
                    read_revision,
                    approved_month.as_deref(),
                )
                .await?
                {
                    return Err(Problem::etag_mismatch(&name));
                }
                if !store::confirm_claim(unit.tx(), &claim.id, &claim.payload, &caller.subject, read_revision + 1)
                    .await?
                {
                    return Err(Problem::etag_mismatch(&name));
                }
                if claim.state == ClaimState::Approved
                    && let Some(fund_id) = claim.fund_id.clone()
                {
                    self.reserve(unit.tx(), &fund_id, &claim, &caller.subject, now).await?;
                }
                ClaimChangeKind::Decided
            }
        };
        let claim = store::get_claim(unit.tx(), id).await?.ok_or_else(Problem::internal)?;
        publish(&mut unit, kind, &claim).await?;
        unit.commit(AuditEntry::by(caller, &method("ConfirmProposedClaim"), name, now).in_region(&claim.region))
            .await?;
        Ok(claim)
    }
}
