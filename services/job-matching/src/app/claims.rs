//! Sending the service's subsidy claims to subsidy payment and following their outcomes, for
//! every kind alike: a claim row is written when it falls due (a batch departs, a workshop's
//! month is attested, an agency's year of follow-up is done); this sends each with the facts
//! its policy version declares, keyed by its reference so subsidy payment takes it once, and
//! the claim feed moves it on.

use bangfu_platform::audit::{self, AuditEntry};
use bangfu_platform::auth::Principal;
use bangfu_platform::error::Problem;
use bangfu_platform::parameters::date_text;
use bangfu_platform::peers::CallContext;
use bangfu_platform::subsidy_claims::{
    ClaimLine, ClaimOutcome, ClaimOutcomeKind, FactValue, LineAnswer, OrganizationPayee,
};
use bangfu_platform::write;
use sqlx::AnyConnection;
use time::OffsetDateTime;

use super::{Jobs, invalid, method};
use crate::domain::{ClaimProgress, padded_code};
use crate::store::claims::{self as store_claims, NewClaim, StoredClaim};
use crate::store::{self, ClaimRecord};

/// Claims sent per round.
const CLAIMS_PER_ROUND: i64 = 500;

/// The method name outcome audit rows carry (the feed, not a caller).
const CLAIM_FEED: &str = "subsidy-claim-feed";

fn pending(detail: String) -> ClaimRecord {
    ClaimRecord {
        state: ClaimProgress::Pending,
        claim: String::new(),
        amount_fen: 0,
        detail,
    }
}

impl Jobs {
    /// Sends the claims still to send whose day has come (all, or those shown on `owner`);
    /// returns how many subsidy payment took. A claim that cannot go now — no policy version in
    /// force on its day, subsidy payment away or refusing it for the time being — stays pending
    /// with the reason shown, and is tried again after the others.
    pub async fn send_pending_claims(&self, call: &CallContext, owner: Option<&str>) -> Result<usize, Problem> {
        let claims = {
            let mut conn = self.db().acquire().await?;
            store_claims::pending_claims(&mut conn, owner, self.today(), CLAIMS_PER_ROUND).await?
        };
        if claims.is_empty() {
            return Ok(0);
        }
        let peers = self.peers()?;
        let mut lines = Vec::new();
        let mut sent: Vec<&StoredClaim> = Vec::new();
        let mut waiting: Vec<(&StoredClaim, String)> = Vec::new();
        for (number, stored) in claims.iter().enumerate() {
            let claim = &stored.claim;
            let declared = match peers.subsidy.claim_fact_names(call, &claim.policy, claim.first).await {
                Ok(Some(declared)) => declared,
                Ok(None) => {
                    waiting.push((
                        stored,
                        format!(
                            "{} 在 {} 无有效政策版本，发布新版本后将重新申报",
                            claim.policy, claim.first
                        ),
                    ));
                    continue;
                }
                Err(problem) => {
                    waiting.push((stored, format!("补贴发放服务暂不可用：{}", problem.message)));
                    continue;
                }
            };
            let organization = {
                let mut conn = self.db().acquire().await?;
                organization_payee(&mut conn, &claim.payee).await?
            };
            lines.push(ClaimLine {
                line_reference: number.to_string(),
                policy: claim.policy.clone(),
                person_id: claim.person_id.clone(),
                first: claim.first,
                last: claim.last,
                facts: claim
                    .facts
                    .iter()
                    .filter(|(name, _)| declared.contains(name))
                    .cloned()
                    .collect(),
                organization,
                reference: claim.reference.clone(),
            });
            sent.push(stored);
        }
        let mut conn = self.db().acquire().await?;
        let tried: Vec<String> = claims.iter().map(|c| c.claim.reference.clone()).collect();
        store_claims::claims_attempted(&mut conn, &tried, self.now()).await?;
        let answers = if lines.is_empty() {
            Vec::new()
        } else {
            match peers.subsidy.submit(call, &lines).await {
                Ok(answers) => answers,
                Err(problem) => {
                    // Nothing recorded as sent: the same lines go again next round, and their
                    // references make subsidy payment take each once.
                    tracing::warn!(reason = ?problem.reason, "subsidy payment did not take the claims; the job retries");
                    Vec::new()
                }
            }
        };
        let mut taken = 0;
        for (stored, answer) in sent.iter().zip(answers) {
            let record = match answer {
                LineAnswer::Claim(outcome) => {
                    taken += 1;
                    ClaimRecord {
                        state: ClaimProgress::Submitted,
                        claim: outcome.claim,
                        amount_fen: 0,
                        detail: String::new(),
                    }
                }
                // The same line may pass later unchanged: it stays pending, with the reason.
                LineAnswer::Refused {
                    message,
                    retryable: true,
                } => pending(message),
                LineAnswer::Refused { message, .. } => ClaimRecord {
                    state: ClaimProgress::Refused,
                    claim: String::new(),
                    amount_fen: 0,
                    detail: message,
                },
            };
            store_claims::set_claim(
                &mut conn,
                &stored.claim.reference,
                &record,
                Some(ClaimProgress::Pending),
            )
            .await?;
        }
        for (stored, detail) in waiting {
            store_claims::set_claim(
                &mut conn,
                &stored.claim.reference,
                &pending(detail),
                Some(ClaimProgress::Pending),
            )
            .await?;
        }
        Ok(taken)
    }
}

/// The organization a claim pays, from its payee's resource name; None when the person is paid.
async fn organization_payee(conn: &mut AnyConnection, payee: &str) -> Result<Option<OrganizationPayee>, Problem> {
    if let Some(id) = payee.strip_prefix("carriers/") {
        let carrier = store::get_carrier(conn, id).await?.ok_or_else(Problem::internal)?;
        return Ok(Some(OrganizationPayee {
            credit_code: carrier.data.credit_code,
            display_name: carrier.data.display_name,
            region: padded_code(&carrier.data.region),
        }));
    }
    if let Some(id) = payee.strip_prefix("trainingCourses/") {
        let course = store::get_course(conn, id).await?.ok_or_else(Problem::internal)?;
        return Ok(Some(OrganizationPayee {
            credit_code: course.data.provider_credit_code,
            display_name: course.data.provider,
            region: padded_code(&course.data.region),
        }));
    }
    Ok(None)
}

/// A claim's outcome from subsidy payment's feed, on the claim it was sent as.
pub async fn apply_claim_outcome(
    tx: &mut AnyConnection,
    outcome: &ClaimOutcome,
    now: OffsetDateTime,
) -> Result<(), Problem> {
    if store_claims::get_claim(tx, &outcome.reference).await?.is_none() {
        return Ok(());
    }
    let (state, detail) = match outcome.kind {
        ClaimOutcomeKind::Granted => (ClaimProgress::Granted, String::new()),
        ClaimOutcomeKind::Rejected => (ClaimProgress::Refused, outcome.rejection_reasons.join(", ")),
        ClaimOutcomeKind::Paid => (ClaimProgress::Paid, String::new()),
        ClaimOutcomeKind::PaymentFailed => (ClaimProgress::PaymentFailed, "银行发放失败".to_string()),
        ClaimOutcomeKind::Other => return Ok(()),
    };
    let record = ClaimRecord {
        state,
        claim: outcome.claim.clone(),
        amount_fen: outcome.amount_fen,
        detail,
    };
    if store_claims::set_claim(tx, &outcome.reference, &record, None).await? {
        let entry = AuditEntry::by_service(crate::SERVICE, CLAIM_FEED, outcome.reference.clone(), now);
        audit::append(tx, &entry).await?;
    }
    Ok(())
}

/// A claim as the clerk sees it.
pub type ClaimView = StoredClaim;

/// The last day of a month.
fn month_last(year: i32, month: u8) -> Option<time::Date> {
    let month = time::Month::try_from(month).ok()?;
    time::Date::from_calendar_date(year, month, time::util::days_in_month(month, year)).ok()
}

impl Jobs {
    /// The policy must be one subsidy payment has in force on the day: a claim under any other
    /// could never be paid.
    pub(crate) async fn policy_in_force(
        &self,
        call: &CallContext,
        field: &str,
        code: &str,
        day: time::Date,
    ) -> Result<(), Problem> {
        if self.peers()?.subsidy.claim_fact_names(call, code, day).await?.is_none() {
            return Err(invalid(
                field,
                format!("{code} is not a policy in force in subsidy payment's catalog on {day}"),
                format!("补贴政策 {code} 不在补贴发放政策目录中或 {day} 不在有效期内"),
            ));
        }
        Ok(())
    }

    /// A month's on-the-job training claims (以工代训) for the target persons working with the
    /// carrier that month (or those named), sent at once.
    #[allow(clippy::too_many_arguments)]
    pub async fn claim_on_job_training(
        &self,
        caller: &Principal,
        call: &CallContext,
        carrier_id: &str,
        month: (i32, u8),
        policy: &str,
        monthly_standard_fen: i64,
        named: &[String],
    ) -> Result<Vec<ClaimView>, Problem> {
        let today = self.today();
        if month > (today.year(), u8::from(today.month())) {
            return Err(invalid(
                "month",
                "claim a month once it is over or under way",
                "不能申报未到的月份",
            ));
        }
        let first = time::Date::from_calendar_date(
            month.0,
            time::Month::try_from(month.1).map_err(|_| Problem::internal())?,
            1,
        )
        .map_err(|_| Problem::internal())?;
        let last = month_last(month.0, month.1).ok_or_else(Problem::internal)?;
        self.policy_in_force(call, "policy", policy, first).await?;
        let mut unit = write::begin_unkeyed(self.db(), self.now()).await?;
        let carrier = self
            .carrier_for(unit.tx(), caller, "ClaimOnJobTraining", carrier_id)
            .await?;
        let owner = carrier.name();
        let mut placements = store::target_placements_with(unit.tx(), carrier_id, first, last).await?;
        if !named.is_empty() {
            for (i, id) in named.iter().enumerate() {
                if !placements.iter().any(|p| &p.id == id) {
                    return Err(invalid(
                        &format!("placements[{i}]"),
                        format!("placements/{id} is not a target person working with {owner} in the month"),
                        "该人员当月不在该单位就业或不是帮扶对象",
                    ));
                }
            }
            placements.retain(|p| named.contains(&p.id));
        }
        placements.retain(|p| caller.scope.contains(&p.data.home_region));
        if placements.is_empty() {
            return Err(Problem::state_conflict(
                &owner,
                "no target person the caller may see worked there that month",
                "当月该单位没有可申报的帮扶对象",
            ));
        }
        let month_text = format!("{:04}-{:02}", month.0, month.1);
        let due: Vec<NewClaim> = placements
            .iter()
            .map(|p| NewClaim {
                reference: format!("{owner}/onJobTraining/{}/{month_text}", p.id),
                policy: policy.to_string(),
                person_id: p.data.person_id.clone(),
                payee: carrier.name(),
                first: p.data.start.max(first),
                last: p.end_date.map_or(last, |end| end.min(last)),
                facts: vec![
                    ("on_job_training_conducted".into(), FactValue::Boolean(true)),
                    ("monthly_standard_fen".into(), FactValue::Money(monthly_standard_fen)),
                ],
                owner: owner.clone(),
                region: p.data.home_region.clone(),
            })
            .collect();
        let references: Vec<String> = due.iter().map(|c| c.reference.clone()).collect();
        let now = unit.now();
        store_claims::insert_claims(unit.tx(), &due, now).await?;
        unit.commit(
            AuditEntry::by(
                caller,
                &method("ClaimOnJobTraining"),
                format!("{owner}/onJobTraining/{month_text}"),
                now,
            )
            .in_region(&carrier.data.region),
        )
        .await?;
        if let Err(problem) = self.send_pending_claims(call, Some(&owner)).await {
            tracing::warn!(carrier = %carrier_id, reason = ?problem.reason, "the month's claims wait for the job");
        }
        let mut conn = self.db().acquire().await?;
        Ok(store_claims::claims_of(&mut conn, &owner)
            .await?
            .into_iter()
            .filter(|c| references.contains(&c.claim.reference))
            .collect())
    }

    /// An agency's service subsidy for a placement after its follow-up (once per placement and
    /// policy), sent at once.
    pub async fn claim_agency_subsidy(
        &self,
        caller: &Principal,
        call: &CallContext,
        placement_id: &str,
        agency_id: &str,
        policy: &str,
        insured_region: &str,
    ) -> Result<ClaimView, Problem> {
        let mut unit = write::begin_unkeyed(self.db(), self.now()).await?;
        let placement = self
            .placement_for(unit.tx(), caller, "ClaimAgencySubsidy", placement_id)
            .await?;
        let agency = self
            .carrier_for(unit.tx(), caller, "ClaimAgencySubsidy", agency_id)
            .await
            .map_err(|_| {
                invalid(
                    "agency",
                    format!("carriers/{agency_id} is not a carrier you may see"),
                    "组织机构未登记或不在您的管辖范围内",
                )
            })?;
        if !agency.data.kind.organizes_export() {
            return Err(invalid(
                "agency",
                format!("a {} is not an agency", agency.data.kind.as_str()),
                "申领机构应为人力资源服务机构、劳务合作社、劳务工作站或劳务协作联盟",
            ));
        }
        // Judged as of the first day of work: who the person was when placed.
        let day = placement.data.start;
        self.policy_in_force(call, "policy", policy, day).await?;
        let owner = placement.name();
        let followed = store::months_followed_at_work(unit.tx(), placement_id).await?;
        let data = &placement.data;
        let claim = NewClaim {
            reference: format!("{owner}/agencySubsidy/{policy}"),
            policy: policy.to_string(),
            person_id: data.person_id.clone(),
            payee: agency.name(),
            first: day,
            last: day,
            facts: vec![
                ("contract_months".into(), FactValue::Integer(data.contract_months)),
                (
                    "social_insurance_enrolled".into(),
                    FactValue::Boolean(data.social_insurance),
                ),
                ("insured_region".into(), FactValue::Region(padded_code(insured_region))),
                ("follow_up_months".into(), FactValue::Integer(followed)),
                ("work_region".into(), FactValue::Region(padded_code(&data.work_region))),
            ],
            owner: owner.clone(),
            region: data.home_region.clone(),
        };
        self.claim_at_once(unit, caller, call, "ClaimAgencySubsidy", claim)
            .await
    }

    /// A certified carrier's one-time award (奖补): a claim about the carrier alone, paid to it,
    /// judged on today. The facts are what job matching knows today; the policy holds the
    /// county's threshold and amount and grants once. The source is keyed by the day, so a claim
    /// refused for too few absorbed persons can be made again later, and a retry the same day
    /// answers the same claim.
    pub async fn claim_carrier_award(
        &self,
        caller: &Principal,
        call: &CallContext,
        carrier_id: &str,
        policy: &str,
    ) -> Result<ClaimView, Problem> {
        let day = self.today();
        self.policy_in_force(call, "policy", policy, day).await?;
        let mut unit = write::begin_unkeyed(self.db(), self.now()).await?;
        let carrier = self
            .carrier_for(unit.tx(), caller, "ClaimCarrierAward", carrier_id)
            .await?;
        // Counted in the transaction that writes the claim, so the facts are one moment's.
        let view = self.carrier_view(unit.tx(), carrier).await?;
        let owner = view.carrier.name();
        let claim = NewClaim {
            reference: format!("{owner}/award/{policy}/{}", date_text(day)),
            policy: policy.to_string(),
            person_id: String::new(),
            payee: owner.clone(),
            first: day,
            last: day,
            facts: vec![
                (
                    "carrier_kind".into(),
                    FactValue::Text(view.carrier.data.kind.as_str().to_string()),
                ),
                ("certified".into(), FactValue::Boolean(view.certified)),
                (
                    "absorbed_target_persons".into(),
                    FactValue::Integer(view.absorbed_target_persons),
                ),
            ],
            region: view.carrier.data.region.clone(),
            owner,
        };
        self.claim_at_once(unit, caller, call, "ClaimCarrierAward", claim).await
    }

    /// Writes one claim with the call's audit row, sends it at once (a claim subsidy payment
    /// cannot take now waits for the job) and answers it as it stands.
    async fn claim_at_once(
        &self,
        mut unit: write::Unit,
        caller: &Principal,
        call: &CallContext,
        method_name: &str,
        claim: NewClaim,
    ) -> Result<ClaimView, Problem> {
        let (reference, owner) = (claim.reference.clone(), claim.owner.clone());
        let now = unit.now();
        store_claims::insert_claims(unit.tx(), std::slice::from_ref(&claim), now).await?;
        unit.commit(AuditEntry::by(caller, &method(method_name), reference.clone(), now).in_region(&claim.region))
            .await?;
        if let Err(problem) = self.send_pending_claims(call, Some(&owner)).await {
            tracing::warn!(%owner, reason = ?problem.reason, "the claim waits for the job");
        }
        let mut conn = self.db().acquire().await?;
        store_claims::get_claim(&mut conn, &reference)
            .await?
            .ok_or_else(Problem::internal)
    }

    /// The claims shown on a carrier, placement or batch that the caller may see.
    pub async fn list_subsidy_claims(&self, caller: &Principal, owner: &str) -> Result<Vec<ClaimView>, Problem> {
        let mut conn = self.db().acquire().await?;
        let (collection, id) = owner.split_once('/').unwrap_or_default();
        match collection {
            "carriers" => {
                self.carrier_for(&mut conn, caller, "ListSubsidyClaims", id).await?;
            }
            "placements" => {
                self.placement_for(&mut conn, caller, "ListSubsidyClaims", id).await?;
            }
            "exportBatches" => {
                self.batch_for(&mut conn, caller, "ListSubsidyClaims", id).await?;
            }
            "trainingCourses" => {
                self.course_for(&mut conn, caller, "ListSubsidyClaims", id).await?;
            }
            _ => {
                return Err(invalid(
                    "owner",
                    "must be carriers/{id}, placements/{id}, exportBatches/{id} or trainingCourses/{id}",
                    "应为 carriers/、placements/、exportBatches/ 或 trainingCourses/ 资源名称",
                ));
            }
        }
        Ok(store_claims::claims_of(&mut conn, owner)
            .await?
            .into_iter()
            .filter(|c| caller.scope.contains(&c.claim.region))
            .collect())
    }
}
