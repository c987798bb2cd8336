//! The real-name roster (实名制花名册) and the monthly muster roll (考勤表). An enrolment is
//! recorded in identity as work-relief employment; when identity cannot be reached the
//! enrolment stands and the service's job records it later.

use bangfu_platform::audit::AuditEntry;
use bangfu_platform::auth::Principal;
use bangfu_platform::error::{ErrorReason, Problem};
use bangfu_platform::idempotency::RequestKey;
use bangfu_platform::peers::CallContext;
use bangfu_platform::write::{self, Begun};
use time::Date;
use tonic::Code;

use super::{Relief, invalid, method};
use crate::domain::{self, EnrolmentState, PayBasis, PayrollState, ProjectState, YearMonth};
use crate::store::{self, AttendanceRow, NewWorker, StoredWorker, WorkerFlags};

/// The roster's composition today, with the relocation reserve.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct RosterCounts {
    pub workers: i64,
    pub target_persons: i64,
    pub relocated: i64,
    pub local: i64,
    pub relocated_reserved: i64,
}

/// A muster roll line that cannot be recorded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AttendanceProblem {
    pub entry_number: i64,
    pub worker: String,
    pub reason: ErrorReason,
    pub field: String,
    pub message_zh: String,
}

/// One entry of a muster roll, as parsed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AttendanceEntry {
    pub entry_number: i64,
    pub worker_id: String,
    pub days: i64,
    pub pieces: i64,
}

fn worker_not_found(project_id: &str, id: &str) -> Problem {
    Problem::not_found(&format!("projects/{project_id}/workers/{id}"))
}

impl Relief {
    pub async fn enrol_worker(
        &self,
        caller: &Principal,
        call: &CallContext,
        key: Option<RequestKey>,
        project_id: &str,
        worker: NewWorker,
    ) -> Result<StoredWorker, Problem> {
        let project = {
            let mut conn = self.db().acquire().await?;
            self.project_for(&mut conn, caller, "EnrolWorker", project_id).await?
        };
        if project.state == ProjectState::Closed {
            return Err(Problem::state_conflict(
                &project.name(),
                "the project is closed",
                "项目已竣工关闭，不能再登记务工人员",
            ));
        }
        let (first, last) = (project.data.start, project.data.end);
        if worker.start < first || worker.start > last {
            return Err(invalid(
                "worker.start_date",
                format!("must lie within the project's schedule {first}..{last}"),
                format!("务工开始日期应在项目建设期 {first} 至 {last} 之内"),
            ));
        }
        if let Some(end) = worker.end
            && (end < worker.start || end > last)
        {
            return Err(invalid(
                "worker.end_date",
                format!("must lie between the start and the project's end {last}"),
                format!("务工结束日期应在开始日期与项目完工日期 {last} 之间"),
            ));
        }
        if worker.pay_basis == PayBasis::Daily {
            let guideline = self
                .parameters()
                .require(
                    "work_relief.wage_guideline_daily_fen",
                    &project.data.region,
                    worker.start,
                )
                .await?;
            if worker.rate_fen < guideline {
                return Err(Problem::invalid_field(
                    ErrorReason::WageBelowGuideline,
                    "worker.daily_wage",
                    format!(
                        "{} fen a day is below the region's wage guideline of {guideline} fen",
                        worker.rate_fen
                    ),
                    format!(
                        "日工资 {} 元低于本地以工代赈劳务报酬指导标准 {} 元",
                        super::projects::yuan(worker.rate_fen),
                        super::projects::yuan(guideline)
                    ),
                )
                .with_metadata("guideline_fen", guideline.to_string()));
            }
        }
        let peers = self.peers()?;
        let person = peers
            .identity
            .person(call, &worker.person_id, (worker.start, worker.start))
            .await?
            .ok_or_else(|| {
                self.refuse(
                    caller,
                    "EnrolWorker",
                    &format!("persons/{}", worker.person_id),
                    Problem::not_found(&format!("persons/{}", worker.person_id)),
                )
            })?;
        let categories = person.categories_on(worker.start);
        let flags = WorkerFlags {
            local: domain::county_of(&person.registered_region) == domain::county_of(&project.data.region),
            target_person: categories.iter().any(|c| domain::is_target_category(c)),
            relocated: categories.iter().any(|c| c == "RELOCATED"),
        };
        let mut unit = match write::begin(self.db(), key, self.now()).await? {
            Begun::Replay { resource } => {
                let id = resource.rsplit('/').next().unwrap_or_default().to_string();
                let mut conn = self.db().acquire().await?;
                return store::get_worker(&mut conn, project_id, &id)
                    .await?
                    .ok_or_else(|| worker_not_found(project_id, &id));
            }
            Begun::Fresh(unit) => unit,
        };
        let now = unit.now();
        // One enrolment at a time per project: the overlap check below sees every earlier one.
        if !store::lock_active_project(unit.tx(), &project.id).await? {
            return Err(Problem::state_conflict(
                &project.name(),
                "the project is closed",
                "项目已竣工关闭，不能再登记务工人员",
            ));
        }
        if let Some(existing) =
            store::enrolment_in_months(unit.tx(), &worker.person_id, worker.start, worker.end).await?
        {
            return Err(Problem::new(
                Code::FailedPrecondition,
                ErrorReason::EnrolmentOverlap,
                "the person is already on a work-relief roster in a month this enrolment touches \
                 (remuneration is claimed once a person a month)",
                "该人员在本项目或其他以工代赈项目已有同月份的务工登记（劳务报酬按人按月发放）",
            )
            .with_metadata("resource", existing));
        }
        let id = store::new_id();
        store::insert_worker(
            unit.tx(),
            &id,
            &project.id,
            &worker,
            &person.display_name,
            flags,
            &caller.subject,
            now,
        )
        .await?;
        let stored = store::get_worker(unit.tx(), &project.id, &id)
            .await?
            .ok_or_else(Problem::internal)?;
        unit.commit(AuditEntry::by(caller, &method("EnrolWorker"), stored.name(), now).in_region(&project.data.region))
            .await?;
        self.record_in_identity(call, &stored, &project.data.display_name, &project.data.region)
            .await;
        store::get_worker(&mut *self.db().acquire().await?, &project.id, &id)
            .await?
            .ok_or_else(Problem::internal)
    }

    /// Tells identity what the enrolment's pending record says (an enrolment not yet recorded
    /// is sent with its end, which says it ended); a failure is logged and left for the job (the
    /// enrolment itself stands). True when identity recorded it.
    async fn record_in_identity(
        &self,
        call: &CallContext,
        worker: &StoredWorker,
        project_name: &str,
        region: &str,
    ) -> bool {
        let Ok(peers) = self.peers() else { return false };
        // Identity records what has begun: an enrolment starting (or ending) later waits here
        // for its day, and the job records it then.
        let begins = match worker.identity_pending.as_str() {
            "enrol" => Some(worker.worker.start),
            "end" => worker.worker.end.and_then(|end| end.next_day()),
            _ => None,
        };
        if begins.is_none_or(|day| day > self.today()) {
            return false;
        }
        let request_id = format!("work-relief-{}-{}", worker.id, worker.identity_pending);
        let result = match worker.identity_pending.as_str() {
            "enrol" => {
                peers
                    .record_enrolment(
                        call,
                        &worker.worker.person_id,
                        project_name,
                        region,
                        (worker.worker.start, worker.worker.end),
                        &request_id,
                    )
                    .await
            }
            "end" => match worker.worker.end {
                Some(end) => {
                    peers
                        .record_enrolment_end(call, &worker.worker.person_id, end, &request_id)
                        .await
                }
                None => return false,
            },
            _ => return false,
        };
        match result {
            Ok(()) => {
                let marked = match self.db().acquire().await {
                    Ok(mut conn) => store::identity_recorded(&mut conn, &worker.id, &worker.identity_pending)
                        .await
                        .map_err(|e| e.to_string()),
                    Err(e) => Err(e.to_string()),
                };
                if let Err(error) = marked {
                    tracing::warn!(worker = %worker.name(), %error, "identity recorded the employment; marking it failed");
                }
                true
            }
            Err(problem) => {
                tracing::warn!(worker = %worker.name(), reason = ?problem.reason, message = %problem.message, "identity did not record the employment; retried later");
                false
            }
        }
    }

    /// Records in identity what earlier calls could not (the job, on the service's own account).
    pub async fn record_missing_employment(&self) -> Result<usize, Problem> {
        let pending = {
            let mut conn = self.db().acquire().await?;
            store::identity_pending(&mut conn, self.today(), 200).await?
        };
        let mut recorded = 0;
        for worker in &pending {
            let project = {
                let mut conn = self.db().acquire().await?;
                store::get_project(&mut conn, &worker.project_id).await?
            };
            let Some(project) = project else { continue };
            if self
                .record_in_identity(
                    &CallContext::own(),
                    worker,
                    &project.data.display_name,
                    &project.data.region,
                )
                .await
            {
                recorded += 1;
            }
        }
        Ok(recorded)
    }

    pub async fn list_workers(
        &self,
        caller: &Principal,
        project_id: &str,
        state: Option<EnrolmentState>,
        after: &str,
        limit: u32,
    ) -> Result<(Vec<StoredWorker>, RosterCounts), Problem> {
        let mut conn = self.db().acquire().await?;
        let project = self.project_for(&mut conn, caller, "ListWorkers", project_id).await?;
        let workers = store::list_workers(&mut conn, &project.id, state, after, i64::from(limit) + 1).await?;
        let today = self.today();
        let (count, target_persons, relocated, local) = store::roster_counts(&mut conn, &project.id, today).await?;
        let relocated_reserved = if project.data.relocation_site {
            let bp = self
                .parameters()
                .lookup_on(
                    &mut conn,
                    "work_relief.relocation_reserved_share_bp",
                    &project.data.region,
                    today,
                )
                .await?
                .unwrap_or(0);
            domain::relocated_reserved(count, bp)
        } else {
            0
        };
        Ok((
            workers,
            RosterCounts {
                workers: count,
                target_persons,
                relocated,
                local,
                relocated_reserved,
            },
        ))
    }

    pub async fn end_enrolment(
        &self,
        caller: &Principal,
        call: &CallContext,
        project_id: &str,
        worker_id: &str,
        end: Date,
        reason: &str,
    ) -> Result<StoredWorker, Problem> {
        let mut unit = write::begin_unkeyed(self.db(), self.now()).await?;
        let now = unit.now();
        let project = self.project_for(unit.tx(), caller, "EndEnrolment", project_id).await?;
        let worker = store::get_worker(unit.tx(), &project.id, worker_id)
            .await?
            .ok_or_else(|| worker_not_found(project_id, worker_id))?;
        if end < worker.worker.start {
            return Err(invalid(
                "end_date",
                "must be on or after the enrolment's start",
                "结束日期不能早于务工开始日期",
            ));
        }
        // Ending only shortens an enrolment: a later end could reach months another roster holds.
        let latest = worker.worker.end.unwrap_or(project.data.end).min(project.data.end);
        if end > latest {
            return Err(invalid(
                "end_date",
                format!("must be on or before {latest}, the enrolment's planned end or the project's"),
                format!("结束日期不能晚于 {latest}（原定结束日期或项目完工日期）"),
            ));
        }
        if !store::lock_active_project(unit.tx(), &project.id).await? {
            return Err(Problem::state_conflict(
                &project.name(),
                "the project is closed",
                "项目已竣工关闭",
            ));
        }
        if !store::end_worker(unit.tx(), &worker.id, end, reason).await? {
            return Err(Problem::state_conflict(
                &worker.name(),
                "the enrolment has ended",
                "该务工登记已结束",
            ));
        }
        let stored = store::get_worker(unit.tx(), &project.id, worker_id)
            .await?
            .ok_or_else(Problem::internal)?;
        unit.commit(
            AuditEntry::by(caller, &method("EndEnrolment"), stored.name(), now).in_region(&project.data.region),
        )
        .await?;
        self.record_in_identity(call, &stored, &project.data.display_name, &project.data.region)
            .await;
        Ok(stored)
    }

    /// A month's muster roll: every entry checked first; any problem records nothing and every
    /// problem is reported. A worker's month sent again replaces it while the month's payroll is
    /// a DRAFT or not made.
    pub async fn record_attendance(
        &self,
        caller: &Principal,
        key: Option<RequestKey>,
        project_id: &str,
        month: YearMonth,
        entries: Vec<AttendanceEntry>,
    ) -> Result<(i64, Vec<AttendanceProblem>), Problem> {
        if month.first_day() > self.today() {
            return Err(invalid("month", "is in the future", "考勤月份不能晚于本月"));
        }
        if entries.is_empty() {
            return Err(Problem::required("entries", "考勤记录"));
        }
        let mut unit = match write::begin(self.db(), key, self.now()).await? {
            Begun::Replay { .. } => {
                return Ok((i64::try_from(entries.len()).unwrap_or(i64::MAX), Vec::new()));
            }
            Begun::Fresh(unit) => unit,
        };
        let now = unit.now();
        let project = self
            .project_for(unit.tx(), caller, "RecordAttendance", project_id)
            .await?;
        if !store::lock_active_project(unit.tx(), &project.id).await? {
            return Err(Problem::state_conflict(
                &project.name(),
                "the project is closed",
                "项目已竣工关闭，不能再录入考勤",
            ));
        }
        if let Some(payroll) = store::get_payroll(unit.tx(), &project.id, month).await?
            && payroll.state != PayrollState::Draft
        {
            return Err(Problem::state_conflict(
                &payroll.name(),
                format!(
                    "the month's payroll is {}; its muster roll is fixed",
                    payroll.state.as_str()
                ),
                "该月工资表已公示或审批，考勤不能再修改；如有错误请先处理异议退回",
            ));
        }
        let workers: std::collections::HashMap<String, StoredWorker> =
            store::workers_in_month(unit.tx(), &project.id, month)
                .await?
                .into_iter()
                .map(|w| (w.id.clone(), w))
                .collect();
        let mut problems = Vec::new();
        let mut seen = std::collections::HashSet::new();
        for entry in &entries {
            let worker_name = format!("projects/{}/workers/{}", project.id, entry.worker_id);
            let mut problem = |reason, field: &str, message_zh: String| {
                problems.push(AttendanceProblem {
                    entry_number: entry.entry_number,
                    worker: worker_name.clone(),
                    reason,
                    field: field.to_string(),
                    message_zh,
                })
            };
            if !seen.insert(entry.worker_id.clone()) {
                problem(
                    ErrorReason::DuplicateInImport,
                    "worker",
                    "同一务工人员在本月考勤表中出现两次".into(),
                );
                continue;
            }
            let Some(worker) = workers.get(&entry.worker_id) else {
                problem(
                    ErrorReason::FieldInvalid,
                    "worker",
                    format!("该人员 {} 月不在本项目花名册的登记期内", month.text()),
                );
                continue;
            };
            let enrolled = domain::days_enrolled(worker.worker.start, worker.worker.end, month);
            if entry.days < 0 || entry.days > enrolled {
                problem(
                    ErrorReason::FieldInvalid,
                    "days",
                    format!(
                        "出勤 {} 天超出该人员本月登记期内的 {enrolled} 天（本月共 {} 天）",
                        entry.days,
                        month.days()
                    ),
                );
            }
            match worker.worker.pay_basis {
                PayBasis::Piece if !(0..=1_000_000).contains(&entry.pieces) => problem(
                    ErrorReason::FieldInvalid,
                    "pieces",
                    format!("计件数量 {} 应在0至1000000之间", entry.pieces),
                ),
                PayBasis::Daily if entry.pieces != 0 => problem(
                    ErrorReason::FieldInvalid,
                    "pieces",
                    "该人员按日计酬，不应填写计件数量".into(),
                ),
                _ => {}
            }
        }
        if !problems.is_empty() {
            return Ok((0, problems));
        }
        let rows: Vec<AttendanceRow> = entries
            .iter()
            .map(|entry| AttendanceRow {
                worker_id: entry.worker_id.clone(),
                days: entry.days,
                pieces: entry.pieces,
            })
            .collect();
        store::upsert_attendance(unit.tx(), &project.id, month, &rows, &caller.subject, now).await?;
        // A draft payroll follows its roll: computed again here, so what is noticed is the roll
        // as it is (a notice opened meanwhile makes this roll a conflict, nothing written).
        if store::get_payroll(unit.tx(), &project.id, month).await?.is_some() {
            let lines = super::payrolls::draft_lines(unit.tx(), &project, month).await?;
            let due = domain::due_date(month, u8::try_from(project.data.pay_day).unwrap_or(28));
            if !store::replace_draft_payroll(unit.tx(), &project.id, month, due, &lines, &caller.subject, now).await? {
                return Err(Problem::state_conflict(
                    &store::payroll_name(&project.id, month),
                    "the month's payroll was noticed meanwhile; its muster roll is fixed",
                    "该月工资表已公示，考勤不能再修改",
                ));
            }
        }
        unit.commit(
            AuditEntry::by(
                caller,
                &method("RecordAttendance"),
                format!("{}/attendance/{}", project.name(), month.text()),
                now,
            )
            .in_region(&project.data.region),
        )
        .await?;
        Ok((i64::try_from(entries.len()).unwrap_or(i64::MAX), Vec::new()))
    }
}
