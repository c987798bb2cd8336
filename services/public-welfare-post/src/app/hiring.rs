//! Hiring per post (以岗聘任): applications, eligibility, proposals under public notice (公示),
//! objections, confirmation, contracts and their renewal.

use bangfu_platform::audit::AuditEntry;
use bangfu_platform::auth::Principal;
use bangfu_platform::error::{ErrorReason, Problem};
use bangfu_platform::idempotency::RequestKey;
use bangfu_platform::identity_reader::PersonFacts;
use bangfu_platform::parameters::date_text;
use bangfu_platform::peers::CallContext;
use bangfu_platform::write::{self, Begun};
use time::{Date, Duration};
use tonic::Code;

use super::months::claim_facts;
use super::{Posts, invalid, method};
use crate::domain::{
    AgeLimits, ApplicationState, AssignmentState, CadreLink, EligibilityInput, ObjectionState, PostState,
    check_eligibility, month_days, rank_key, required_days, within_contract_cap,
};
use crate::peers::ClaimLine;
use crate::store::{
    self, AssignmentFilter, Checked, NewAssignment, StoredApplication, StoredAssignment, StoredNotice, StoredObjection,
    StoredPost,
};

/// Whom CheckEligibility checks.
pub enum CheckSubject {
    Application(String),
    PersonAndPost { person_id: String, post_id: String },
}

/// A check's result.
#[derive(Debug, Clone)]
pub struct Eligibility {
    pub checked: Checked,
    pub eligible: bool,
}

/// One proposed hire, its contract and insurance.
#[derive(Debug, Clone)]
pub struct HireRequest {
    pub application_id: String,
    pub start: Date,
    pub end: Date,
    pub insurer: String,
    pub insurance_number: String,
    pub insurance_first: Date,
    pub insurance_last: Date,
}

/// What RaiseObjection asks for.
pub struct ObjectionRequest {
    pub assignment_id: String,
    pub content: String,
    pub received_from: String,
}

/// A hire notice as posted: its proposals with the post's title and village.
pub struct NoticeView {
    pub notice: StoredNotice,
    pub post: StoredPost,
    pub assignments: Vec<StoredAssignment>,
}

fn not_found(resource: String) -> Problem {
    Problem::not_found(&resource)
}

/// The contract checks every signing passes: the cap per signing and insurance from day one.
fn check_contract(field: &str, hire: &HireRequest, cap_months: i64) -> Result<(), Problem> {
    if hire.end < hire.start {
        return Err(invalid(
            &format!("{field}.contract_term.last_day"),
            "the contract ends before it starts",
            "合同结束日期早于开始日期",
        ));
    }
    if !within_contract_cap(hire.start, hire.end, cap_months) {
        return Err(Problem::invalid_field(
            ErrorReason::ContractTooLong,
            format!("{field}.contract_term"),
            format!("a contract may run at most {cap_months} months per signing here"),
            format!("每次签订的聘用期限不得超过 {cap_months} 个月"),
        )
        .with_metadata("max_months", cap_months.to_string()));
    }
    if !(hire.insurance_first <= hire.start && hire.start <= hire.insurance_last) {
        return Err(invalid(
            &format!("{field}.insurance.coverage"),
            "the accident insurance must be in force on the contract's first day",
            "意外伤害保险应在聘用首日前生效",
        ));
    }
    Ok(())
}

impl Posts {
    pub async fn submit_application(
        &self,
        caller: &Principal,
        call: &CallContext,
        key: Option<RequestKey>,
        announcement_id: &str,
        person_id: &str,
        declared_fit: bool,
    ) -> Result<StoredApplication, Problem> {
        let announcement = self
            .get_announcement(caller, "SubmitApplication", announcement_id)
            .await?;
        let today = self.today();
        let period = &announcement.announcement;
        if today < period.first_day || today > period.last_day {
            return Err(Problem::new(
                Code::FailedPrecondition,
                ErrorReason::AnnouncementClosed,
                format!(
                    "{} takes applications from {} to {}",
                    announcement.name(),
                    period.first_day,
                    period.last_day
                ),
                format!(
                    "该招聘公告的报名时间为 {} 至 {}，当前不在报名期内",
                    period.first_day, period.last_day
                ),
            )
            .with_metadata("resource", announcement.name()));
        }
        let person = self.person(caller, call, "SubmitApplication", person_id, today).await?;
        let mut unit = match write::begin(self.db(), key, self.now()).await? {
            Begun::Replay { resource } => {
                return self
                    .application(
                        caller,
                        "SubmitApplication",
                        resource.trim_start_matches("applications/"),
                    )
                    .await;
            }
            Begun::Fresh(unit) => unit,
        };
        let now = unit.now();
        let id = store::new_id();
        if let Some(existing) = store::insert_application(
            unit.tx(),
            &id,
            &announcement.id,
            person_id,
            &person.display_name,
            declared_fit,
            &caller.subject,
            now,
        )
        .await?
        {
            return Err(Problem::new(
                Code::AlreadyExists,
                ErrorReason::AlreadyExists,
                format!("the person applied to {} already", announcement.name()),
                "该人员已报名此岗位",
            )
            .with_metadata("resource", format!("applications/{existing}")));
        }
        let stored = store::get_application(unit.tx(), &id)
            .await?
            .ok_or_else(Problem::internal)?;
        unit.commit(
            AuditEntry::by(caller, &method("SubmitApplication"), stored.name(), now).in_region(&announcement.village),
        )
        .await?;
        Ok(stored)
    }

    async fn application(&self, caller: &Principal, method_name: &str, id: &str) -> Result<StoredApplication, Problem> {
        let mut conn = self.db().acquire().await?;
        let application = store::get_application(&mut conn, id)
            .await?
            .ok_or_else(|| not_found(format!("applications/{id}")))?;
        self.ensure_sees(caller, method_name, &application.name(), &application.village)?;
        Ok(application)
    }

    pub async fn list_applications(
        &self,
        caller: &Principal,
        announcement_id: &str,
        state: Option<ApplicationState>,
        after: Option<(i64, i64, String)>,
        limit: u32,
    ) -> Result<Vec<StoredApplication>, Problem> {
        self.get_announcement(caller, "ListApplications", announcement_id)
            .await?;
        let mut conn = self.db().acquire().await?;
        Ok(store::list_applications(&mut conn, announcement_id, state, after, i64::from(limit) + 1).await?)
    }

    /// The person as identity gives them to the caller on `day`; NOT_FOUND (audited) when
    /// identity does not know them or the caller may not see them.
    async fn person(
        &self,
        caller: &Principal,
        call: &CallContext,
        method_name: &str,
        person_id: &str,
        day: Date,
    ) -> Result<PersonFacts, Problem> {
        let resource = format!("persons/{person_id}");
        self.peers()?
            .identity
            .person(call, person_id, (day, day))
            .await?
            .ok_or_else(|| self.refuse(caller, method_name, &resource, Problem::not_found(&resource)))
    }

    /// Checks a person against a post for a signing over [first, last]: every rule, with
    /// subsidy payment's dry run of the first month. `renewal` continues a placement rather
    /// than starting one; `except` is a signing of the person not to count as a clash.
    #[allow(clippy::too_many_arguments)]
    async fn assess(
        &self,
        call: &CallContext,
        post: &StoredPost,
        person: &PersonFacts,
        declared_fit: bool,
        first: Date,
        last: Date,
        renewal: bool,
        except: &str,
    ) -> Result<Eligibility, Problem> {
        let village = &post.post.village;
        let ages = AgeLimits {
            min: self.parameter("welfare_post.min_age", village, first).await?,
            max: self.parameter("welfare_post.max_hire_age", village, first).await?,
            max_fit: self.parameter("welfare_post.max_hire_age_fit", village, first).await?,
        };
        let max_placements = self.parameter("welfare_post.max_placements", village, first).await?;
        let (other, mut placements, cadres, first_hire) = {
            let mut conn = self.db().acquire().await?;
            let other = store::slot_holder(&mut conn, &person.person_id, first, last, except).await?;
            let placements = store::placements(&mut conn, &person.person_id).await?;
            let cadres = store::cadres_for(&mut conn, &person.person_id, &person.household, first).await?;
            let first_hire = store::first_hire(&mut conn, &person.person_id).await?;
            (other, placements, cadres, first_hire)
        };
        if renewal {
            placements = placements.saturating_sub(1);
        }
        let cadres: Vec<CadreLink> = cadres
            .into_iter()
            .map(|(id, office, is_the_cadre)| CadreLink {
                registration: format!("villageCadres/{id}"),
                office,
                is_the_cadre,
            })
            .collect();
        let other = other.map(|id| format!("assignments/{id}"));
        let refusals = self
            .first_month_refusals(call, post, &person.person_id, first, first_hire.unwrap_or(first))
            .await?;
        let findings = check_eligibility(&EligibilityInput {
            hire_date: first,
            person,
            village,
            village_residents_only: post.post.village_only,
            funding: post.post.funding_source,
            declared_fit,
            ages,
            max_placements,
            placements,
            cadres: &cadres,
            other_slot: other.as_deref(),
            subsidy_refusals: &refusals,
        });
        Ok(Eligibility {
            eligible: findings.is_empty(),
            checked: Checked {
                hire_date: date_text(first),
                findings,
                labor_capacity: person.labor_capacity.clone(),
                checked_us: bangfu_platform::db::to_micros(self.now()),
            },
        })
    }

    /// Subsidy payment's reasons against the hire month's claim, as CloseMonth would send it
    /// for a holder on post the days required.
    async fn first_month_refusals(
        &self,
        call: &CallContext,
        post: &StoredPost,
        person_id: &str,
        first: Date,
        first_hire: Date,
    ) -> Result<Vec<String>, Problem> {
        let peers = self.peers()?;
        let Some((month_first, month_last)) = month_days(first.year(), u8::from(first.month())) else {
            return Err(Problem::internal());
        };
        let Some(names) = peers
            .claim_fact_names(call, &post.post.subsidy_policy, month_first)
            .await?
        else {
            return Ok(vec![format!(
                "POLICY_NOT_IN_FORCE: 补贴政策 {} 在 {month_first} 所在月份无有效版本",
                post.post.subsidy_policy
            )]);
        };
        let month_len = (month_last - month_first).whole_days() + 1;
        let covered = (month_last - first).whole_days() + 1;
        let required = required_days(post.post.days_per_month, covered, month_len);
        let claim = ClaimLine {
            line_reference: String::new(),
            policy: post.post.subsidy_policy.clone(),
            person_id: person_id.to_string(),
            first: month_first,
            last: month_last,
            facts: claim_facts(
                &names,
                required,
                required,
                0,
                true,
                post.post.monthly_standard,
                first_hire,
            ),
            organization: None,
            reference: String::new(),
        };
        peers.evaluate(call, &claim).await
    }

    pub async fn check_eligibility(
        &self,
        caller: &Principal,
        call: &CallContext,
        subject: CheckSubject,
        hire_date: Date,
    ) -> Result<Eligibility, Problem> {
        match subject {
            CheckSubject::PersonAndPost { person_id, post_id } => {
                let post = self.get_post(caller, &post_id).await?;
                let person = self
                    .person(caller, call, "CheckEligibility", &person_id, hire_date)
                    .await?;
                self.assess(call, &post, &person, false, hire_date, hire_date, false, "")
                    .await
            }
            CheckSubject::Application(id) => {
                let application = self.application(caller, "CheckEligibility", &id).await?;
                let post = self.get_post(caller, &application.post_id).await?;
                let person = self
                    .person(caller, call, "CheckEligibility", &application.person_id, hire_date)
                    .await?;
                let result = self
                    .assess(
                        call,
                        &post,
                        &person,
                        application.declared_fit,
                        hire_date,
                        hire_date,
                        false,
                        "",
                    )
                    .await?;
                let mut unit = write::begin_unkeyed(self.db(), self.now()).await?;
                let rank = rank_key(Some(result.eligible), &result.checked.labor_capacity);
                store::set_eligibility(unit.tx(), &application.id, &result.checked, rank).await?;
                let now = unit.now();
                unit.commit(
                    AuditEntry::by(caller, &method("CheckEligibility"), application.name(), now)
                        .in_region(&application.village),
                )
                .await?;
                Ok(result)
            }
        }
    }

    pub async fn propose_hires(
        &self,
        caller: &Principal,
        call: &CallContext,
        key: Option<RequestKey>,
        announcement_id: &str,
        hires: Vec<HireRequest>,
        notice_first: Option<Date>,
    ) -> Result<NoticeView, Problem> {
        let announcement = self.get_announcement(caller, "ProposeHires", announcement_id).await?;
        if let Begun::Replay { resource } = write::begin(self.db(), key.clone(), self.now()).await? {
            return self
                .notice(caller, "ProposeHires", resource.trim_start_matches("hireNotices/"))
                .await;
        }
        let post = self.get_post(caller, &announcement.announcement.post_id).await?;
        if post.state == PostState::Closed {
            return Err(Problem::state_conflict(
                &post.name(),
                "the post is closed",
                "该岗位已撤销，不能拟聘",
            ));
        }
        let free = post.post.places - post.places_taken;
        if hires.len() as i64 > free {
            return Err(invalid(
                "hires",
                format!("the post has {free} free places"),
                format!("该岗位仅剩 {free} 个空缺名额"),
            ));
        }
        let today = self.today();
        let first = notice_first.unwrap_or(today);
        if first < today {
            return Err(invalid(
                "notice_first_day",
                "the notice cannot start in the past",
                "公示开始日期不能早于今天",
            ));
        }
        let days = self
            .parameter("welfare_post.public_notice_days", &post.post.village, first)
            .await?;
        let last = first + Duration::days(days.max(1) - 1);
        let mut checked = Vec::with_capacity(hires.len());
        for (i, hire) in hires.iter().enumerate() {
            let field = format!("hires[{i}]");
            if hires[..i].iter().any(|h| h.application_id == hire.application_id) {
                return Err(invalid(
                    &format!("{field}.application"),
                    "is proposed twice",
                    "同一报名重复拟聘",
                ));
            }
            let application = self.application(caller, "ProposeHires", &hire.application_id).await?;
            if application.announcement_id != announcement.id {
                return Err(invalid(
                    &format!("{field}.application"),
                    format!("is not an application to {}", announcement.name()),
                    "该报名不属于本招聘公告",
                ));
            }
            if application.state != ApplicationState::Submitted {
                return Err(Problem::state_conflict(
                    &application.name(),
                    format!("the application is {}", application.state.as_str()),
                    "该报名已拟聘或已处理",
                ));
            }
            if hire.start <= last {
                return Err(invalid(
                    &format!("{field}.contract_term.first_day"),
                    format!("the contract must start after the notice's last day {last}"),
                    format!("聘用开始日期应在公示期结束（{last}）之后"),
                ));
            }
            let cap = self
                .parameter("welfare_post.contract_max_months", &post.post.village, hire.start)
                .await?;
            check_contract(&field, hire, cap)?;
            let person = self
                .person(caller, call, "ProposeHires", &application.person_id, hire.start)
                .await?;
            let result = self
                .assess(
                    call,
                    &post,
                    &person,
                    application.declared_fit,
                    hire.start,
                    hire.end,
                    false,
                    "",
                )
                .await?;
            if !result.eligible {
                return Err(not_eligible(
                    &result,
                    &format!("{field}.application"),
                    &application.name(),
                    &person.display_name,
                ));
            }
            let first_hire = {
                let mut conn = self.db().acquire().await?;
                store::first_hire(&mut conn, &application.person_id).await?
            };
            checked.push((application, result, first_hire.unwrap_or(hire.start), person.household));
        }
        let mut unit = match write::begin(self.db(), key, self.now()).await? {
            Begun::Replay { resource } => {
                return self
                    .notice(caller, "ProposeHires", resource.trim_start_matches("hireNotices/"))
                    .await;
            }
            Begun::Fresh(unit) => unit,
        };
        let now = unit.now();
        let notice_id = store::new_id();
        // The free places again, under the post's lock: the count read before may have moved.
        match store::lock_free_places(unit.tx(), &post.id, now).await? {
            None => {
                return Err(Problem::state_conflict(
                    &post.name(),
                    "the post is closed",
                    "该岗位已撤销，不能拟聘",
                ));
            }
            Some(free) if free < hires.len() as i64 => {
                return Err(invalid(
                    "hires",
                    format!("the post has {free} free places"),
                    format!("该岗位仅剩 {free} 个空缺名额"),
                ));
            }
            Some(_) => {}
        }
        store::insert_notice(
            unit.tx(),
            &notice_id,
            &announcement.id,
            first,
            last,
            &caller.subject,
            now,
        )
        .await?;
        let mut audits = Vec::new();
        for (i, ((application, result, first_hire, household), hire)) in checked.iter().zip(&hires).enumerate() {
            let id = store::new_id();
            let new = NewAssignment {
                post_id: post.id.clone(),
                village: post.post.village.clone(),
                person_id: application.person_id.clone(),
                display_name: application.display_name.clone(),
                household: household.clone(),
                application_id: Some(application.id.clone()),
                notice_id: Some(notice_id.clone()),
                renews: None,
                state: AssignmentState::Proposed,
                start: hire.start,
                end: hire.end,
                insurer: hire.insurer.clone(),
                insurance_number: hire.insurance_number.clone(),
                insurance_first: hire.insurance_first,
                insurance_last: hire.insurance_last,
                first_hire_date: *first_hire,
            };
            if let Err(error) = store::insert_assignment(unit.tx(), &id, &new, &caller.subject, now).await {
                return Err(if store::is_slot_taken(&error) {
                    slot_taken(&format!("hires[{i}]"))
                } else {
                    error.into()
                });
            }
            let rank = rank_key(Some(true), &result.checked.labor_capacity);
            store::set_eligibility(unit.tx(), &application.id, &result.checked, rank).await?;
            if !store::move_application(
                unit.tx(),
                &application.id,
                ApplicationState::Submitted,
                ApplicationState::Proposed,
            )
            .await?
            {
                return Err(Problem::state_conflict(
                    &application.name(),
                    "the application was proposed meanwhile",
                    "该报名已被拟聘",
                ));
            }
            audits.push(
                AuditEntry::by(caller, &method("ProposeHires"), format!("assignments/{id}"), now)
                    .in_region(&post.post.village),
            );
        }
        audits.push(
            AuditEntry::by(caller, &method("ProposeHires"), format!("hireNotices/{notice_id}"), now)
                .in_region(&post.post.village),
        );
        unit.audit_many(audits).await?;
        unit.commit_audited().await?;
        self.notice(caller, "ProposeHires", &notice_id).await
    }

    pub async fn notice(&self, caller: &Principal, method_name: &str, id: &str) -> Result<NoticeView, Problem> {
        let mut conn = self.db().acquire().await?;
        let notice = store::get_notice(&mut conn, id)
            .await?
            .ok_or_else(|| not_found(format!("hireNotices/{id}")))?;
        let announcement = store::get_announcement(&mut conn, &notice.announcement_id)
            .await?
            .ok_or_else(Problem::internal)?;
        self.ensure_sees(caller, method_name, &notice.name(), &announcement.village)?;
        let post = store::get_post(&mut conn, &announcement.announcement.post_id)
            .await?
            .ok_or_else(Problem::internal)?;
        let assignments = store::notice_assignments(&mut conn, id).await?;
        Ok(NoticeView {
            notice,
            post,
            assignments,
        })
    }

    pub async fn raise_objection(
        &self,
        caller: &Principal,
        key: Option<RequestKey>,
        request: ObjectionRequest,
    ) -> Result<StoredObjection, Problem> {
        let assignment = self
            .assignment(caller, "RaiseObjection", &request.assignment_id)
            .await?;
        let mut unit = match write::begin(self.db(), key, self.now()).await? {
            Begun::Replay { resource } => {
                let mut conn = self.db().acquire().await?;
                return store::get_objection(&mut conn, resource.trim_start_matches("objections/"))
                    .await?
                    .ok_or_else(|| not_found(resource));
            }
            Begun::Fresh(unit) => unit,
        };
        let (Some(notice_id), AssignmentState::Proposed) = (&assignment.new.notice_id, assignment.state) else {
            return Err(Problem::state_conflict(
                &assignment.name(),
                "only a proposal under public notice can be objected to",
                "只能对公示中的拟聘人员提出异议",
            ));
        };
        let notice = store::get_notice(unit.tx(), notice_id)
            .await?
            .ok_or_else(Problem::internal)?;
        let today = self.today();
        if today < notice.first_day || today > notice.last_day {
            return Err(Problem::state_conflict(
                &notice.name(),
                format!("objections are taken from {} to {}", notice.first_day, notice.last_day),
                format!("异议受理期为 {} 至 {}", notice.first_day, notice.last_day),
            ));
        }
        let now = unit.now();
        let id = store::new_id();
        store::insert_objection(
            unit.tx(),
            &id,
            notice_id,
            &assignment.id,
            &request.content,
            &request.received_from,
            &caller.subject,
            now,
        )
        .await?;
        let stored = store::get_objection(unit.tx(), &id)
            .await?
            .ok_or_else(Problem::internal)?;
        unit.commit(
            AuditEntry::by(caller, &method("RaiseObjection"), stored.name(), now).in_region(&assignment.new.village),
        )
        .await?;
        Ok(stored)
    }

    pub async fn resolve_objection(
        &self,
        caller: &Principal,
        id: &str,
        upheld: bool,
        resolution: &str,
    ) -> Result<StoredObjection, Problem> {
        let mut unit = write::begin_unkeyed(self.db(), self.now()).await?;
        let objection = store::get_objection(unit.tx(), id)
            .await?
            .ok_or_else(|| not_found(format!("objections/{id}")))?;
        let assignment = store::get_assignment(unit.tx(), &objection.assignment_id)
            .await?
            .ok_or_else(Problem::internal)?;
        self.ensure_sees(caller, "ResolveObjection", &objection.name(), &assignment.new.village)?;
        caller
            .ensure_not_maker(&objection.raise_subject)
            .map_err(|refusal| self.refuse(caller, "ResolveObjection", &objection.name(), refusal))?;
        let to = if upheld {
            ObjectionState::Upheld
        } else {
            ObjectionState::Dismissed
        };
        let now = unit.now();
        if !store::resolve_objection(unit.tx(), id, to, resolution, &caller.subject, now).await? {
            return Err(Problem::state_conflict(
                &objection.name(),
                "the objection is resolved already",
                "该异议已处理",
            ));
        }
        if upheld {
            // The proposal is withdrawn and its slot freed; a confirmed hire cannot be undone here.
            if !store::move_assignment(
                unit.tx(),
                &assignment.id,
                AssignmentState::Proposed,
                AssignmentState::Withdrawn,
                None,
                now,
            )
            .await?
                && assignment.state != AssignmentState::Withdrawn
            {
                return Err(Problem::state_conflict(
                    &assignment.name(),
                    "the proposal is no longer under notice",
                    "拟聘人员已确认聘用或已撤回，异议成立请按退岗办理",
                ));
            }
            if let Some(application) = &assignment.new.application_id {
                store::move_application(
                    unit.tx(),
                    application,
                    ApplicationState::Proposed,
                    ApplicationState::NotHired,
                )
                .await?;
            }
        }
        let stored = store::get_objection(unit.tx(), id)
            .await?
            .ok_or_else(Problem::internal)?;
        unit.commit(
            AuditEntry::by(caller, &method("ResolveObjection"), stored.name(), now).in_region(&assignment.new.village),
        )
        .await?;
        Ok(stored)
    }

    /// Confirms a notice's hires after it ended: each proposal without an upheld objection
    /// becomes active; identity then records the employment (retried by a job when it is down).
    pub async fn confirm_hires(
        &self,
        caller: &Principal,
        call: &CallContext,
        notice_id: &str,
    ) -> Result<(NoticeView, Vec<StoredAssignment>), Problem> {
        let view = self.notice(caller, "ConfirmHires", notice_id).await?;
        let notice = &view.notice;
        if self.today() <= notice.last_day {
            return Err(Problem::new(
                Code::FailedPrecondition,
                ErrorReason::NoticeNotEnded,
                format!("the notice runs until {}", notice.last_day),
                format!("公示期至 {} 结束，公示期满后方可确认聘用", notice.last_day),
            )
            .with_metadata("notice_last_day", date_text(notice.last_day)));
        }
        let mut unit = write::begin_unkeyed(self.db(), self.now()).await?;
        let now = unit.now();
        let open = store::get_notice(unit.tx(), notice_id)
            .await?
            .ok_or_else(Problem::internal)?
            .open_objections;
        if open > 0 {
            return Err(Problem::new(
                Code::FailedPrecondition,
                ErrorReason::ObjectionOpen,
                format!("{open} objections to the notice are not resolved"),
                format!("尚有 {open} 条异议未处理，处理完毕后方可确认聘用"),
            )
            .with_metadata("resource", notice.name()));
        }
        if !store::confirm_notice(unit.tx(), notice_id, &caller.subject, now).await? {
            // Confirmed by an earlier (or a concurrent) call: its answer stands.
            drop(unit);
            let view = self.notice(caller, "ConfirmHires", notice_id).await?;
            let active = view
                .assignments
                .iter()
                .filter(|a| a.state != AssignmentState::Withdrawn)
                .cloned()
                .collect();
            return Ok((view, active));
        }
        let upheld = store::upheld_assignments(unit.tx(), notice_id).await?;
        let mut confirmed = Vec::new();
        let mut audits = Vec::new();
        for assignment in store::notice_assignments(unit.tx(), notice_id).await? {
            if assignment.state != AssignmentState::Proposed || upheld.contains(&assignment.id) {
                continue;
            }
            if !store::move_assignment(
                unit.tx(),
                &assignment.id,
                AssignmentState::Proposed,
                AssignmentState::Active,
                None,
                now,
            )
            .await?
            {
                return Err(Problem::etag_mismatch(&assignment.name()));
            }
            if let Some(application) = &assignment.new.application_id {
                store::move_application(
                    unit.tx(),
                    application,
                    ApplicationState::Proposed,
                    ApplicationState::Hired,
                )
                .await?;
            }
            audits.push(
                AuditEntry::by(caller, &method("ConfirmHires"), assignment.name(), now)
                    .in_region(&assignment.new.village),
            );
            confirmed.push(assignment.id.clone());
        }
        audits.push(
            AuditEntry::by(caller, &method("ConfirmHires"), notice.name(), now).in_region(&view.post.post.village),
        );
        unit.audit_many(audits).await?;
        unit.commit_audited().await?;
        let mut active = Vec::new();
        for id in confirmed {
            self.record_employment(call, &id).await;
            let mut conn = self.db().acquire().await?;
            active.push(
                store::get_assignment(&mut conn, &id)
                    .await?
                    .ok_or_else(Problem::internal)?,
            );
        }
        Ok((self.notice(caller, "ConfirmHires", notice_id).await?, active))
    }

    /// Records an active signing's employment in identity once it has begun; until then, or on
    /// failure, it stays unrecorded and the job tries again.
    pub(crate) async fn record_employment(&self, call: &CallContext, assignment_id: &str) {
        let result: Result<(), Problem> = async {
            let peers = self.peers()?;
            let mut conn = self.db().acquire().await?;
            let Some(assignment) = store::get_assignment(&mut conn, assignment_id).await? else {
                return Ok(());
            };
            // Identity takes no employment that has not begun; the job records it on the day.
            if assignment.new.start > self.today() {
                return Ok(());
            }
            drop(conn);
            peers
                .record_post_employment(
                    call,
                    &assignment.new.person_id,
                    &assignment.new.village,
                    assignment.new.start,
                    assignment.new.end,
                    &format!("post-employment-{assignment_id}"),
                )
                .await?;
            let mut unit = write::begin_unkeyed(self.db(), self.now()).await?;
            store::mark_employment_recorded(unit.tx(), assignment_id).await?;
            let now = unit.now();
            unit.commit(
                AuditEntry::by_service(crate::SERVICE, &method("ConfirmHires"), assignment.name(), now)
                    .in_region(&assignment.new.village),
            )
            .await
        }
        .await;
        if let Err(problem) = result {
            tracing::warn!(assignment = assignment_id, error = %problem.message, "employment not recorded in identity yet; the job retries");
        }
    }

    /// Records the employment of signings identity missed; the job's work.
    pub async fn record_missing_employment(&self) -> Result<usize, Problem> {
        let pending = {
            let mut conn = self.db().acquire().await?;
            store::unrecorded_employment(&mut conn, self.today(), 500).await?
        };
        for assignment in &pending {
            self.record_employment(&CallContext::own(), &assignment.id).await;
        }
        Ok(pending.len())
    }

    pub(crate) async fn assignment(
        &self,
        caller: &Principal,
        method_name: &str,
        id: &str,
    ) -> Result<StoredAssignment, Problem> {
        let mut conn = self.db().acquire().await?;
        let assignment = store::get_assignment(&mut conn, id)
            .await?
            .ok_or_else(|| not_found(format!("assignments/{id}")))?;
        self.ensure_sees(caller, method_name, &assignment.name(), &assignment.new.village)?;
        Ok(assignment)
    }

    pub async fn get_assignment(&self, caller: &Principal, id: &str) -> Result<StoredAssignment, Problem> {
        self.assignment(caller, "GetAssignment", id).await
    }

    pub async fn list_assignments(
        &self,
        caller: &Principal,
        mut filter: AssignmentFilter,
        after: &str,
        limit: u32,
    ) -> Result<Vec<StoredAssignment>, Problem> {
        let Some(prefix) = caller.scope.narrowed(&filter.region_prefix) else {
            return Ok(Vec::new());
        };
        filter.region_prefix = prefix;
        let mut conn = self.db().acquire().await?;
        Ok(store::list_assignments(&mut conn, &filter, after, i64::from(limit) + 1).await?)
    }

    /// Renews an active contract as a new signing from the day after it ends.
    #[allow(clippy::too_many_arguments)]
    pub async fn renew_contract(
        &self,
        caller: &Principal,
        call: &CallContext,
        key: Option<RequestKey>,
        id: &str,
        etag: &str,
        last_day: Date,
        insurance: (String, String, Date, Date),
    ) -> Result<StoredAssignment, Problem> {
        let current = self.assignment(caller, "RenewContract", id).await?;
        if let Begun::Replay { resource } = write::begin(self.db(), key.clone(), self.now()).await? {
            return self
                .assignment(caller, "RenewContract", resource.trim_start_matches("assignments/"))
                .await;
        }
        if current.state != AssignmentState::Active {
            return Err(Problem::state_conflict(
                &current.name(),
                "only an active contract can be renewed",
                "只有在岗人员可以续聘",
            ));
        }
        if etag != current.etag() {
            return Err(Problem::etag_mismatch(&current.name()));
        }
        let start = current.new.end + Duration::days(1);
        let hire = HireRequest {
            application_id: String::new(),
            start,
            end: last_day,
            insurer: insurance.0,
            insurance_number: insurance.1,
            insurance_first: insurance.2,
            insurance_last: insurance.3,
        };
        let post = self.get_post(caller, &current.new.post_id).await?;
        let cap = self
            .parameter("welfare_post.contract_max_months", &post.post.village, start)
            .await?;
        check_contract("renewal", &hire, cap)?;
        let person = self
            .person(caller, call, "RenewContract", &current.new.person_id, start)
            .await?;
        let result = self
            .assess(call, &post, &person, false, start, last_day, true, "")
            .await?;
        if !result.eligible {
            return Err(not_eligible(
                &result,
                "last_day",
                &current.name(),
                &current.new.display_name,
            ));
        }
        let mut unit = match write::begin(self.db(), key, self.now()).await? {
            Begun::Replay { resource } => {
                return self
                    .assignment(caller, "RenewContract", resource.trim_start_matches("assignments/"))
                    .await;
            }
            Begun::Fresh(unit) => unit,
        };
        let now = unit.now();
        // The current signing must still be the one read: an exit meanwhile refuses the renewal.
        if !store::move_assignment(
            unit.tx(),
            &current.id,
            AssignmentState::Active,
            AssignmentState::Active,
            Some(current.revision),
            now,
        )
        .await?
        {
            return Err(Problem::etag_mismatch(&current.name()));
        }
        let new_id = store::new_id();
        let new = NewAssignment {
            post_id: current.new.post_id.clone(),
            village: current.new.village.clone(),
            person_id: current.new.person_id.clone(),
            display_name: current.new.display_name.clone(),
            household: person.household.clone(),
            application_id: None,
            notice_id: None,
            renews: Some(current.id.clone()),
            state: AssignmentState::Active,
            start,
            end: last_day,
            insurer: hire.insurer.clone(),
            insurance_number: hire.insurance_number.clone(),
            insurance_first: hire.insurance_first,
            insurance_last: hire.insurance_last,
            first_hire_date: current.new.first_hire_date,
        };
        if let Err(error) = store::insert_assignment(unit.tx(), &new_id, &new, &caller.subject, now).await {
            return Err(if store::is_slot_taken(&error) {
                slot_taken("last_day")
            } else {
                error.into()
            });
        }
        unit.commit(
            AuditEntry::by(caller, &method("RenewContract"), format!("assignments/{new_id}"), now)
                .in_region(&current.new.village),
        )
        .await?;
        self.record_employment(call, &new_id).await;
        self.assignment(caller, "RenewContract", &new_id).await
    }
}

/// NOT_ELIGIBLE for a hire at `field` of `resource`, with every reason the check found.
fn not_eligible(result: &Eligibility, field: &str, resource: &str, display_name: &str) -> Problem {
    let findings = &result.checked.findings;
    let reasons: Vec<String> = findings.iter().map(|f| f.reason.to_ascii_uppercase()).collect();
    let messages: Vec<String> = findings.iter().map(|f| f.message.clone()).collect();
    Problem::new(
        Code::FailedPrecondition,
        ErrorReason::NotEligible,
        format!("{field}: {resource} is not eligible: {}", reasons.join(", ")),
        format!("{display_name}不符合聘用条件：{}", messages.join("；")),
    )
    .with_metadata("resource", resource)
    .with_metadata("reasons", reasons.join(","))
    .with_violation(field, reasons.join(", "))
}

/// POST_SLOT_TAKEN: the person holds, or is proposed for, another post over those days.
fn slot_taken(field: &str) -> Problem {
    Problem::new(
        Code::FailedPrecondition,
        ErrorReason::PostSlotTaken,
        format!("{field}: the person holds or is proposed for another post in an overlapping period"),
        "该人员同一时期已在岗或已拟聘其他公益性岗位（一人一岗）",
    )
    .with_violation(field, "one person, one post")
}
