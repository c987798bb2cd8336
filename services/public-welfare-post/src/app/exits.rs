//! Orderly exit (有序退岗): a clerk ends a holder's signing for a reason; identity's feed opens
//! exit proposals for holders who died, moved away or lost their category.

use bangfu_platform::audit::AuditEntry;
use bangfu_platform::auth::Principal;
use bangfu_platform::error::Problem;
use bangfu_platform::peers::CallContext;
use bangfu_platform::write;
use sqlx::AnyConnection;
use time::{Date, Duration, OffsetDateTime};

use super::{Posts, invalid, method};
use crate::domain::{AssignmentState, ExitReason, TARGET_CATEGORIES};
use crate::store::{self, StoredAssignment, StoredExitProposal};

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
    let opened = store::propose_exits(tx, person_id, reason, effective_date, &source, now).await?;
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
