//! Training courses (技能培训) with their trainees, shown in identity as in training while
//! enrolled; recruitment events (招聘活动); and the counts Shandong's quarterly form (附件1)
//! asks of job matching.

use std::collections::BTreeMap;

use bangfu_platform::audit::AuditEntry;
use bangfu_platform::auth::Principal;
use bangfu_platform::error::{ErrorReason, Problem};
use bangfu_platform::idempotency::RequestKey;
use bangfu_platform::identity_reader::Employment;
use bangfu_platform::peers::CallContext;
use bangfu_platform::subsidy_claims::FactValue;
use bangfu_platform::write::{self, Begun};
use bangfu_proto::common::v1::EmploymentStatus;
use sqlx::AnyConnection;
use time::Date;
use tonic::Code;

use super::{Jobs, invalid, method};
use crate::domain::{EnrolmentState, RecruitmentEventKind};
use crate::peers::REPORTING_SYSTEM;
use crate::store::claims::{self as store_claims, NewClaim};
use crate::store::{self, CourseData, EventData, JobCounts, StoredCourse, StoredEnrolment, StoredEvent};

/// A region's counts for a period, with a row per county under it.
#[derive(Debug, Clone)]
pub struct JobStats {
    pub region_prefix: String,
    pub first: Date,
    pub last: Date,
    pub total: JobCounts,
    pub rows: BTreeMap<String, JobCounts>,
}

/// What a trainee's completion claims under the course's policies: the training subsidy, to the
/// provider, and the living allowance, to the person; each judged on the course's last day and
/// keyed by the enrolment, so a completion is claimed once.
fn completion_claims(course: &StoredCourse, enrolment: &StoredEnrolment) -> Vec<NewClaim> {
    let data = &course.data;
    let facts = vec![
        ("training_completed".to_string(), FactValue::Boolean(true)),
        ("training_days".to_string(), FactValue::Integer(data.days)),
        (
            "per_trainee_standard_fen".to_string(),
            FactValue::Money(data.training_subsidy_fen),
        ),
    ];
    [
        (&data.training_subsidy_policy, "trainingSubsidy", course.name()),
        (&data.living_allowance_policy, "livingAllowance", String::new()),
    ]
    .into_iter()
    .filter(|(policy, _, _)| !policy.is_empty())
    .map(|(policy, kind, payee)| NewClaim {
        reference: format!("{}/{kind}", enrolment.name()),
        policy: policy.clone(),
        person_id: enrolment.person_id.clone(),
        payee,
        first: data.end,
        last: data.end,
        facts: facts.clone(),
        owner: course.name(),
        region: enrolment.home_region.clone(),
    })
    .collect()
}

impl Jobs {
    pub(crate) async fn course_for(
        &self,
        conn: &mut AnyConnection,
        caller: &Principal,
        method_name: &str,
        id: &str,
    ) -> Result<StoredCourse, Problem> {
        let course = store::get_course(conn, id)
            .await?
            .ok_or_else(|| Problem::not_found(&format!("trainingCourses/{id}")))?;
        self.ensure_sees(caller, method_name, &course.name(), &course.data.region)?;
        Ok(course)
    }

    pub async fn create_training_course(
        &self,
        caller: &Principal,
        call: &CallContext,
        key: Option<RequestKey>,
        course: CourseData,
    ) -> Result<StoredCourse, Problem> {
        let span = (course.end - course.start).whole_days() + 1;
        if course.days > span {
            return Err(invalid(
                "training_course.days",
                format!("the schedule has {span} days"),
                format!("培训天数不能超过起止日期之间的 {span} 天"),
            ));
        }
        self.ensure_sees(
            caller,
            "CreateTrainingCourse",
            &format!("trainingCourses in {}", course.region),
            &course.region,
        )?;
        // Completions are claimed as of the course's last day, so the policies must be in force
        // then: a claim under any other could never be paid.
        for (field, policy) in [
            (
                "training_course.training_subsidy_policy",
                &course.training_subsidy_policy,
            ),
            (
                "training_course.living_allowance_policy",
                &course.living_allowance_policy,
            ),
        ] {
            if !policy.is_empty() {
                self.policy_in_force(call, field, policy, course.end).await?;
            }
        }
        let mut unit = match write::begin(self.db(), key, self.now()).await? {
            Begun::Replay { resource } => {
                let mut conn = self.db().acquire().await?;
                let id = resource.trim_start_matches("trainingCourses/");
                return self.course_for(&mut conn, caller, "CreateTrainingCourse", id).await;
            }
            Begun::Fresh(unit) => unit,
        };
        let now = unit.now();
        let id = store::new_id();
        store::insert_course(unit.tx(), &id, &course, &caller.subject, now).await?;
        let stored = store::get_course(unit.tx(), &id).await?.ok_or_else(Problem::internal)?;
        unit.commit(
            AuditEntry::by(caller, &method("CreateTrainingCourse"), stored.name(), now).in_region(&course.region),
        )
        .await?;
        Ok(stored)
    }

    pub async fn enrol_trainee(
        &self,
        caller: &Principal,
        call: &CallContext,
        key: Option<RequestKey>,
        course_id: &str,
        person_id: &str,
    ) -> Result<StoredEnrolment, Problem> {
        let person = self.person_snapshot(call, "enrolment.person", person_id).await?;
        self.ensure_sees(
            caller,
            "EnrolTrainee",
            &format!("persons/{person_id}"),
            &person.registered_region,
        )?;
        let mut unit = match write::begin(self.db(), key, self.now()).await? {
            Begun::Replay { resource } => {
                let mut conn = self.db().acquire().await?;
                let id = resource.rsplit('/').next().unwrap_or_default();
                return store::get_enrolment(&mut conn, id)
                    .await?
                    .ok_or_else(|| Problem::not_found(&resource));
            }
            Begun::Fresh(unit) => unit,
        };
        let course = self.course_for(unit.tx(), caller, "EnrolTrainee", course_id).await?;
        if course.data.end < self.today() {
            return Err(Problem::state_conflict(
                &course.name(),
                "the course has ended",
                "培训班已结束，不能再报名",
            ));
        }
        let now = unit.now();
        let id = store::new_id();
        if let Err(error) =
            store::insert_enrolment(unit.tx(), &id, course_id, (person_id, &person), &caller.subject, now).await
        {
            if store::is_duplicate(&error) {
                return Err(Problem::new(
                    Code::AlreadyExists,
                    ErrorReason::AlreadyExists,
                    "the person is enrolled on this course already",
                    "此人已报名该培训班",
                )
                .with_violation("enrolment.person", "already enrolled"));
            }
            return Err(error.into());
        }
        let stored = store::get_enrolment(unit.tx(), &id)
            .await?
            .ok_or_else(Problem::internal)?;
        unit.commit(
            AuditEntry::by(caller, &method("EnrolTrainee"), stored.name(), now).in_region(&person.registered_region),
        )
        .await?;
        Ok(self.tell_training(call, stored, &course).await)
    }

    pub async fn record_training_completion(
        &self,
        caller: &Principal,
        call: &CallContext,
        course_id: &str,
        id: &str,
        outcome: EnrolmentState,
        certificate: &str,
    ) -> Result<StoredEnrolment, Problem> {
        if outcome == EnrolmentState::Enrolled {
            return Err(invalid("outcome", "must be COMPLETED or DROPPED", "结果应为结业或退出"));
        }
        if outcome == EnrolmentState::Completed && certificate.trim().is_empty() {
            return Err(Problem::required("certificate", "证书编号"));
        }
        let mut unit = write::begin_unkeyed(self.db(), self.now()).await?;
        let course = self
            .course_for(unit.tx(), caller, "RecordTrainingCompletion", course_id)
            .await?;
        let enrolment = store::get_enrolment(unit.tx(), id)
            .await?
            .filter(|e| e.course_id == course.id)
            .ok_or_else(|| Problem::not_found(&format!("{}/enrolments/{id}", course.name())))?;
        let name = enrolment.name();
        self.ensure_sees(caller, "RecordTrainingCompletion", &name, &enrolment.home_region)?;
        let now = unit.now();
        if !store::finish_enrolment(unit.tx(), id, outcome, certificate, now).await? {
            return Err(Problem::state_conflict(
                &name,
                format!("the enrolment is {} already", enrolment.state.as_str()),
                "该学员已结业或已退出",
            ));
        }
        let stored = store::get_enrolment(unit.tx(), id)
            .await?
            .ok_or_else(Problem::internal)?;
        let due = if outcome == EnrolmentState::Completed {
            completion_claims(&course, &stored)
        } else {
            Vec::new()
        };
        store_claims::insert_claims(unit.tx(), &due, now).await?;
        unit.commit(
            AuditEntry::by(caller, &method("RecordTrainingCompletion"), name, now).in_region(&enrolment.home_region),
        )
        .await?;
        if !due.is_empty()
            && let Err(problem) = self.send_pending_claims(call, Some(&course.name())).await
        {
            tracing::warn!(course = %course.id, reason = ?problem.reason, "the trainee's claims wait for the job");
        }
        Ok(self.tell_training(call, stored, &course).await)
    }

    /// Tells identity the trainee's period in training (from the course's start, on its day),
    /// or its end on a drop-out; the job sends what identity misses.
    async fn tell_training(
        &self,
        call: &CallContext,
        mut enrolment: StoredEnrolment,
        course: &StoredCourse,
    ) -> StoredEnrolment {
        if enrolment.identity_recorded || course.data.start > self.today() {
            return enrolment;
        }
        let Ok(peers) = self.peers() else {
            return enrolment;
        };
        let (employment, fact) = match enrolment.state {
            EnrolmentState::Dropped => (
                Employment::ended(
                    &enrolment.person_id,
                    self.today().max(course.data.start),
                    REPORTING_SYSTEM,
                ),
                "dropped",
            ),
            _ => (
                Employment {
                    person_id: enrolment.person_id.clone(),
                    status: EmploymentStatus::InTraining,
                    employer: course.data.provider.clone(),
                    work_region: course.data.region.clone(),
                    first: course.data.start,
                    last: Some(course.data.end),
                    reporting_system: REPORTING_SYSTEM.to_string(),
                },
                "enrolled",
            ),
        };
        let request_id = format!("jobs-enrolment-{}-{fact}", enrolment.id);
        match peers.identity.record_employment(call, &employment, &request_id).await {
            Ok(()) => {
                if let Ok(mut conn) = self.db().acquire().await
                    && store::mark_enrolment_recorded(&mut conn, &enrolment.id, enrolment.state)
                        .await
                        .is_ok()
                {
                    enrolment.identity_recorded = true;
                }
            }
            Err(problem) => {
                tracing::warn!(enrolment = %enrolment.id, reason = ?problem.reason, "identity did not take the training; the job retries");
            }
        }
        enrolment
    }

    /// Sends identity the training periods it has not taken yet; returns how many it took.
    pub(crate) async fn record_missing_training(&self) -> Result<usize, Problem> {
        let pending = {
            let mut conn = self.db().acquire().await?;
            store::unrecorded_enrolments(&mut conn, self.today(), 200).await?
        };
        let call = CallContext::own();
        let mut recorded = 0;
        for (enrolment, _, _) in pending {
            let course = {
                let mut conn = self.db().acquire().await?;
                store::get_course(&mut conn, &enrolment.course_id).await?
            };
            let Some(course) = course else { continue };
            if self.tell_training(&call, enrolment, &course).await.identity_recorded {
                recorded += 1;
            }
        }
        Ok(recorded)
    }

    pub async fn create_recruitment_event(
        &self,
        caller: &Principal,
        key: Option<RequestKey>,
        event: EventData,
    ) -> Result<StoredEvent, Problem> {
        if event.date > self.today() {
            return Err(invalid(
                "recruitment_event.event_date",
                "record an event once it is held",
                "招聘活动举办后再登记，日期不能晚于今天",
            ));
        }
        if event.persons_placed > event.persons_reached {
            return Err(invalid(
                "recruitment_event.persons_placed",
                "more placed than reached",
                "达成意向人数不能多于参会人数",
            ));
        }
        self.ensure_sees(
            caller,
            "CreateRecruitmentEvent",
            &format!("recruitmentEvents in {}", event.region),
            &event.region,
        )?;
        let mut unit = match write::begin(self.db(), key, self.now()).await? {
            Begun::Replay { resource } => {
                let mut conn = self.db().acquire().await?;
                return store::get_event(&mut conn, resource.trim_start_matches("recruitmentEvents/"))
                    .await?
                    .ok_or_else(|| Problem::not_found(&resource));
            }
            Begun::Fresh(unit) => unit,
        };
        for (i, carrier) in event.carriers.iter().enumerate() {
            if store::get_carrier(unit.tx(), carrier).await?.is_none() {
                return Err(invalid(
                    &format!("recruitment_event.carriers[{i}]"),
                    format!("carriers/{carrier} is not recorded"),
                    "参会单位未登记",
                ));
            }
        }
        for (i, posting) in event.postings.iter().enumerate() {
            if store::get_posting(unit.tx(), posting).await?.is_none() {
                return Err(invalid(
                    &format!("recruitment_event.postings[{i}]"),
                    format!("postings/{posting} is not recorded"),
                    "岗位未登记",
                ));
            }
        }
        let now = unit.now();
        let id = store::new_id();
        store::insert_event(unit.tx(), &id, &event, &caller.subject, now).await?;
        let stored = store::get_event(unit.tx(), &id).await?.ok_or_else(Problem::internal)?;
        unit.commit(
            AuditEntry::by(caller, &method("CreateRecruitmentEvent"), stored.name(), now).in_region(&event.region),
        )
        .await?;
        Ok(stored)
    }

    pub async fn list_recruitment_events(
        &self,
        caller: &Principal,
        region_prefix: &str,
        kind: Option<RecruitmentEventKind>,
        year: Option<i32>,
        after: &str,
        limit: u32,
    ) -> Result<Vec<StoredEvent>, Problem> {
        let Some(prefix) = caller.scope.narrowed(region_prefix) else {
            return Ok(Vec::new());
        };
        let mut conn = self.db().acquire().await?;
        Ok(store::list_events(&mut conn, &prefix, kind, year, after, i64::from(limit) + 1).await?)
    }

    /// 附件1's counts for a region from January 1 to `as_of`; a region outside the caller's
    /// scope is refused (and audited), not answered with zeros.
    pub async fn job_stats(
        &self,
        caller: &Principal,
        region_prefix: &str,
        as_of: Option<Date>,
    ) -> Result<JobStats, Problem> {
        self.ensure_sees(
            caller,
            "GetJobStats",
            &format!("stats of {region_prefix}"),
            region_prefix,
        )?;
        let last = as_of.unwrap_or_else(|| self.today());
        let first = Date::from_calendar_date(last.year(), time::Month::January, 1).map_err(|_| Problem::internal())?;
        let mut conn = self.db().acquire().await?;
        let rows = store::job_counts(&mut conn, region_prefix, 6, first, last).await?;
        // The total is counted over the whole region, not summed from the counties: a person
        // trained or placed in two counties is one person in the region.
        let total = store::job_counts(&mut conn, region_prefix, 0, first, last)
            .await?
            .remove("")
            .unwrap_or_default();
        Ok(JobStats {
            region_prefix: region_prefix.to_string(),
            first,
            last,
            total,
            rows,
        })
    }
}
