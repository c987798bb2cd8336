//! Orderly exit (有序退岗): a clerk ends a holder's signing for a reason; identity's feed opens
//! exit proposals for holders who died, moved away or lost their category, and subsidy payment's
//! claim feed for holders past the subsidy's months or their retirement month.

use bangfu_platform::audit::AuditEntry;
use bangfu_platform::auth::Principal;
use bangfu_platform::error::Problem;
use bangfu_platform::peers::CallContext;
use bangfu_platform::subsidy_claims::{ClaimOutcome, ClaimOutcomeKind};
use bangfu_platform::write;
use sqlx::AnyConnection;
use time::{Date, Duration, OffsetDateTime};

use super::{Posts, invalid, method};
use crate::domain::{AssignmentState, ExitReason, MonthOutcome, TARGET_CATEGORIES};
use crate::store::{self, ExitOf, StoredAssignment, StoredExitProposal};

/// What ExitHolder asks for.
pub struct ExitRequest {
    pub assignment_id: String,
    pub etag: String,
    pub reason: ExitReason,
    pub last_day: Date,
    pub note: String,
    pub exit_proposal: Option<String>,
}

impl Posts {
    pub async fn exit_holder(
        &self,
        caller: &Principal,
        call: &CallContext,
        request: ExitRequest,
    ) -> Result<StoredAssignment, Problem> {
        let assignment = self.assignment(caller, "ExitHolder", &request.assignment_id).await?;
        if assignment.state != AssignmentState::Active {
            return Err(Problem::state_conflict(
                &assignment.name(),
                format!("the assignment is {}", assignment.state.as_str()),
                "只有在岗人员可以办理退岗",
            ));
        }
        if request.etag != assignment.etag() {
            return Err(Problem::etag_mismatch(&assignment.name()));
        }
        if request.last_day < assignment.new.start || request.last_day > assignment.new.end {
            return Err(invalid(
                "last_day",
                format!(
                    "must lie within the contract {} to {}",
                    assignment.new.start, assignment.new.end
                ),
                format!(
                    "退岗日期应在聘用期 {} 至 {} 内",
                    assignment.new.start, assignment.new.end
                ),
            ));
        }
        let mut unit = write::begin_unkeyed(self.db(), self.now()).await?;
        let now = unit.now();
        if !store::end_assignment(
            unit.tx(),
            &assignment.id,
            assignment.revision,
            request.last_day,
            request.reason,
            &request.note,
            now,
        )
        .await?
        {
            return Err(Problem::etag_mismatch(&assignment.name()));
        }
        store::withdraw_renewals(unit.tx(), &assignment.id, request.last_day, now).await?;
        if let Some(proposal) = &request.exit_proposal
            && !store::close_exit_proposal(unit.tx(), proposal, &assignment.id).await?
        {
            return Err(invalid(
                "exit_proposal",
                format!(
                    "exitProposals/{proposal} is not an open proposal for {}",
                    assignment.name()
                ),
                "该退岗建议不存在、已办结或不属于该人员",
            ));
        }
        unit.commit(
            AuditEntry::by(caller, &method("ExitHolder"), assignment.name(), now).in_region(&assignment.new.village),
        )
        .await?;
        // Identity counts the holder on the post until the contract's end unless told otherwise;
        // another job (found other work) or a death is recorded there by whoever knows it.
        let off_post = request.last_day + Duration::days(1);
        if assignment.employment_recorded
            && off_post <= assignment.new.end
            && !matches!(request.reason, ExitReason::FoundOtherWork | ExitReason::Death)
            && let Err(problem) = self
                .peers()?
                .record_post_exit(
                    call,
                    &assignment.new.person_id,
                    off_post,
                    assignment.new.end,
                    &format!("post-exit-{}", assignment.id),
                )
                .await
        {
            tracing::warn!(assignment = %assignment.id, error = %problem.message, "the exit is not recorded in identity");
        }
        self.assignment(caller, "ExitHolder", &assignment.id).await
    }

    pub async fn list_exit_proposals(
        &self,
        caller: &Principal,
        region_prefix: &str,
        open_only: Option<bool>,
        after: &str,
        limit: u32,
    ) -> Result<Vec<StoredExitProposal>, Problem> {
        let Some(prefix) = caller.scope.narrowed(region_prefix) else {
            return Ok(Vec::new());
        };
        let mut conn = self.db().acquire().await?;
        Ok(store::list_exit_proposals(&mut conn, &prefix, open_only, after, i64::from(limit) + 1).await?)
    }
}

/// Every kind of identity change that may end a right to a post (`note_person_change`); the
/// feed is asked for these alone.
pub const FOLLOWED_KINDS: [&str; 4] = ["DIED", "MOVED_AWAY", "CATEGORY_REVOKED", "CATEGORY_ANNULLED"];

/// Identity's change as the exit follower needs it: opens exit proposals for the person's
/// active signings when the change ends their right to a post.
pub async fn note_person_change(
    tx: &mut AnyConnection,
    person_id: &str,
    kind: &str,
    category: &str,
    effective_date: Option<Date>,
    cursor: &str,
    now: OffsetDateTime,
) -> Result<(), Problem> {
    let reason = match kind {
        "DIED" => ExitReason::Death,
        "MOVED_AWAY" => ExitReason::MovedAway,
        "CATEGORY_REVOKED" | "CATEGORY_ANNULLED" if TARGET_CATEGORIES.contains(&category) => {
            ExitReason::CategoryRevoked
        }
        _ => return Ok(()),
    };
    let source = format!("identity persons feed {cursor} {kind}");
    let opened = store::propose_exits(tx, ExitOf::Person(person_id), reason, effective_date, &source, now).await?;
    if opened > 0 {
        tracing::info!(
            person = person_id,
            reason = reason.as_str(),
            opened,
            "exit proposed from identity's feed"
        );
    }
    Ok(())
}

/// A page of month claims' outcomes from subsidy payment's claim feed: each month line shows
/// how its claim was decided or paid; a claim refused because the cap or the legal retirement
/// month is reached (CAP_REACHED) opens an exit proposal for the signing, effective the day
/// before that month.
///
/// The page's lines are read in one statement first, and a line that already shows what its
/// outcome says is not written again. Most decisions reach a line first through the call that
/// sent its claim, so in a city's month nearly every decision in the feed is already shown:
/// written one statement each, they were 105,803 updates of no row (9.2 s of the database's time).
pub async fn note_claim_outcomes(
    tx: &mut AnyConnection,
    outcomes: &[&ClaimOutcome],
    now: OffsetDateTime,
) -> Result<(), Problem> {
    let noted: Vec<(&ClaimOutcome, &str, &str, String)> = outcomes
        .iter()
        .filter_map(|outcome| {
            let (assignment_id, month) = month_of_reference(&outcome.reference)?;
            Some((*outcome, assignment_id, month, outcome_message(outcome)?))
        })
        .collect();
    let keys: Vec<(&str, &str)> = noted.iter().map(|(_, a, m, _)| (*a, *m)).collect();
    let mut shown = store::month_line_claims(tx, &keys).await?;
    for (outcome, assignment_id, month, message) in noted {
        let key = (assignment_id.to_string(), month.to_string());
        let writes = shown
            .get(&key)
            .is_some_and(|line| line.takes_claim(&outcome.claim, &message));
        if writes {
            store::note_month_claim(tx, assignment_id, month, &outcome.claim, &message, now).await?;
            // A later outcome of the same claim in this page compares with what is now written.
            shown.insert(
                key,
                store::LineClaim {
                    outcome: MonthOutcome::ClaimSubmitted,
                    claim: outcome.claim.clone(),
                    message: message.clone(),
                },
            );
        }
        propose_exit_on_cap(tx, outcome, assignment_id, month, now).await?;
    }
    Ok(())
}

/// A claim refused because the cap or the legal retirement month is reached opens an exit
/// proposal for the signing.
async fn propose_exit_on_cap(
    tx: &mut AnyConnection,
    outcome: &ClaimOutcome,
    assignment_id: &str,
    month: &str,
    now: OffsetDateTime,
) -> Result<(), Problem> {
    if outcome.kind != ClaimOutcomeKind::Rejected || !outcome.rejection_reasons.iter().any(|r| r == CAP_REACHED) {
        return Ok(());
    }
    let effective_date = month_first_day(month).and_then(Date::previous_day);
    let source = format!("subsidy payment claim feed {} {CAP_REACHED}", outcome.claim);
    let opened = store::propose_exits(
        tx,
        ExitOf::Assignment(assignment_id),
        ExitReason::CapOrRetirement,
        effective_date,
        &source,
        now,
    )
    .await?;
    if opened > 0 {
        tracing::info!(
            assignment = assignment_id,
            month,
            "exit proposed: the subsidy cap or retirement is reached"
        );
    }
    Ok(())
}

/// What a month line says of its claim's outcome; None for outcomes it does not show.
pub(super) fn outcome_message(outcome: &ClaimOutcome) -> Option<String> {
    Some(match outcome.kind {
        ClaimOutcomeKind::Granted => format!("已核定补贴 {} 分", outcome.amount_fen),
        ClaimOutcomeKind::Rejected => format!("不予核发：{}", outcome.rejection_reasons.join(", ")),
        ClaimOutcomeKind::Paid => format!("已发放 {} 分", outcome.amount_fen),
        ClaimOutcomeKind::PaymentFailed => "银行发放失败".to_string(),
        ClaimOutcomeKind::Other => return None,
    })
}

/// Subsidy payment's reason for a month past the policy group's months or the retirement month.
const CAP_REACHED: &str = "CAP_REACHED";

/// The signing and month of a month line's claim reference ("assignments/{a}/months/{yyyy-mm}").
fn month_of_reference(reference: &str) -> Option<(&str, &str)> {
    let rest = reference.strip_prefix("assignments/")?;
    let (assignment_id, month) = rest.split_once("/months/")?;
    (!assignment_id.is_empty() && month.len() == 7).then_some((assignment_id, month))
}

/// The first day of a "yyyy-mm" month.
fn month_first_day(month: &str) -> Option<Date> {
    let (year, month) = month.split_once('-')?;
    crate::domain::month_days(year.parse().ok()?, month.parse().ok()?).map(|(first, _)| first)
}
