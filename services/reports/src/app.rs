//! The use cases of reports: generate a form from the services, read and list it, and sign it
//! off county → city → province. Each state change is checked and made in one transaction (a
//! guarded UPDATE on state and revision); the services are read outside any transaction.

use std::ops::Deref;
use std::sync::Arc;

use bangfu_platform::audit::AuditEntry;
use bangfu_platform::auth::Principal;
use bangfu_platform::clock::Clock;
use bangfu_platform::db::{Database, to_micros};
use bangfu_platform::error::{ErrorReason, Problem};
use bangfu_platform::paging;
use bangfu_platform::parameters::Parameters;
use bangfu_platform::peers::CallContext;
use bangfu_platform::regions::DivisionTable;
use bangfu_platform::service_base::ServiceBase;
use bangfu_platform::write;
use time::Date;
use tonic::Code;

use crate::domain::{self, Content, Difference, Form, Level, Period, PeriodError, State};
use crate::sources::{self, Reading, StatsPeers};
use crate::store::{self, ReportFilter, SignOff, StoredReport};

/// The gRPC service's path, which audit rows name methods under.
const SERVICE_PATH: &str = "/bangfu.reports.v1.ReportService/";

/// A method's full gRPC path.
pub fn method(name: &str) -> String {
    format!("{SERVICE_PATH}{name}")
}

/// The reports service's use cases.
pub struct Reports {
    base: ServiceBase,
    peers: Option<StatsPeers>,
    clock: Clock,
}

impl Deref for Reports {
    type Target = ServiceBase;

    fn deref(&self) -> &ServiceBase {
        &self.base
    }
}

/// A report as a clerk reads it: the stored report with its sign-off, deadline and, when frozen
/// and generated again, its differences from the live numbers.
#[derive(Debug, Clone)]
pub struct ReportView {
    pub report: StoredReport,
    pub sign_off: Vec<SignOff>,
    pub due: Option<Date>,
    pub overdue: bool,
    pub differences: Vec<Difference>,
}

/// A period's deadline and where each region stands.
#[derive(Debug, Clone)]
pub struct PeriodStatus {
    pub form: Form,
    pub period: Period,
    pub due: Option<Date>,
    /// (region, report id if any, state if any, overdue).
    pub regions: Vec<(String, String, Option<State>, bool)>,
}

impl Reports {
    pub fn new(db: Database, parameters: Arc<Parameters>, clock: Clock, peers: Option<StatsPeers>) -> Self {
        Self {
            base: ServiceBase::new(db, parameters, clock.clone(), crate::PATH_PREFIX, SERVICE_PATH),
            peers,
            clock,
        }
    }

    /// The service reading `peers` (a test wires them after its server has an address).
    pub fn with_peers(mut self, peers: StatsPeers) -> Self {
        self.peers = Some(peers);
        self
    }

    /// Fills `form` for `region` and `period` from the services, acting for `caller`.
    pub async fn generate(
        self: &Arc<Self>,
        caller: Arc<Principal>,
        call: CallContext,
        form: Form,
        region: &str,
        period: Period,
    ) -> Result<ReportView, Problem> {
        let id = domain::report_id(form, region, period);
        let name = format!("reports/{id}");
        self.ensure_sees(&caller, "GenerateReport", &name, region)?;
        let today = self.today();
        domain::check_period(form, period, today).map_err(period_problem)?;
        let timeout_us = self
            .parameter("reports.generation_timeout_seconds", region, today)
            .await?
            .saturating_mul(1_000_000);
        let now_us = to_micros(self.now());
        // Claim the report: one generation at a time, committed before the services are read
        // so an export or a second generation meanwhile sees it is under way.
        let mut tx = self.db().begin().await?;
        let frozen = match store::get(&mut tx, &id).await? {
            None => {
                if !store::insert_generating(&mut tx, &id, form, region, period, &caller.subject, now_us).await? {
                    return Err(being_generated(&name));
                }
                false
            }
            Some(report) if report.state.is_frozen() => true,
            Some(report) => {
                if report.state == State::Generating && now_us - report.generation_started_us < timeout_us {
                    return Err(being_generated(&name));
                }
                let prior = if report.state == State::Generating {
                    report.prior_state
                } else {
                    report.state
                };
                if !store::claim_generation(&mut tx, &id, report.revision, prior, now_us).await? {
                    return Err(being_generated(&name));
                }
                false
            }
        };
        tx.commit().await.map_err(bangfu_platform::db::DbError::from)?;

        // The reading and writing go on in their own task: a caller who hangs up does not leave
        // the report generating.
        let this = self.clone();
        let region_text = region.to_string();
        let task_id = id.clone();
        let task = tokio::spawn(async move {
            let region_name = DivisionTable::embedded()
                .name(&region_text)
                .unwrap_or_default()
                .to_string();
            let reading = Reading {
                region: &region_text,
                region_name: &region_name,
                year: period.year,
                as_of: period.as_of(this.today()),
                call: &call,
                clock: &this.clock,
            };
            let content = match form {
                Form::Progress => sources::read_progress(this.peers.as_ref(), &reading).await,
                Form::ProjectList => sources::read_project_list(this.peers.as_ref(), &reading).await,
            };
            this.write_generation(&caller, &task_id, &region_text, frozen, now_us, &content)
                .await
        });
        match task.await {
            Ok(result) => result?,
            Err(_) => {
                let mut conn = self.db().acquire().await?;
                store::abandon_generation(&mut conn, &id, now_us, to_micros(self.now())).await?;
                return Err(Problem::internal());
            }
        }
        self.view(&id).await
    }

    async fn write_generation(
        &self,
        caller: &Principal,
        id: &str,
        region: &str,
        frozen: bool,
        started_us: i64,
        content: &Content,
    ) -> Result<(), Problem> {
        let now = self.now();
        let text = bangfu_platform::rows::to_json(content);
        let mut unit = write::begin_unkeyed(self.db(), now).await?;
        let name = format!("reports/{id}");
        let written = if frozen {
            store::store_live(unit.tx(), id, &text, to_micros(now)).await?
        } else {
            let state = if content.is_complete() {
                State::Draft
            } else {
                State::Incomplete
            };
            store::finish_generation(unit.tx(), id, started_us, state, &text, &caller.subject, to_micros(now)).await?
        };
        if !written {
            // Another generation took the report over after the timeout, or it was submitted
            // meanwhile: this reading is dropped rather than written over theirs.
            return Err(being_generated(&name));
        }
        let mut entry = AuditEntry::by(caller, &method("GenerateReport"), name, now).in_region(region);
        if !content.is_complete() {
            let missing: Vec<String> = content
                .missing
                .iter()
                .map(|m| format!("{}.{} {}", m.service, m.method, m.region_prefix))
                .collect();
            entry = entry.with_outcome(
                bangfu_platform::audit::Outcome::Failed,
                &format!("incomplete: {}", missing.join("; ")),
            );
        }
        unit.commit(entry).await
    }

    /// The report as a clerk reads it.
    pub async fn view(&self, id: &str) -> Result<ReportView, Problem> {
        let name = format!("reports/{id}");
        let mut conn = self.db().acquire().await?;
        let report = store::get(&mut conn, id)
            .await?
            .ok_or_else(|| Problem::not_found(&name))?;
        let sign_off = store::sign_offs(&mut conn, id).await?;
        drop(conn);
        let due = self.due_date(report.form, &report.region, report.period).await?;
        let overdue = due.is_some_and(|due| self.today() > due) && !report.state.is_frozen();
        let differences = match (&report.live, report.state.is_frozen()) {
            (Some((live, _)), true) => domain::differences(&report.content, live),
            _ => Vec::new(),
        };
        Ok(ReportView {
            report,
            sign_off,
            due,
            overdue,
            differences,
        })
    }

    /// A report the caller may see.
    pub async fn get(&self, caller: &Principal, id: &str) -> Result<ReportView, Problem> {
        let view = self.view(id).await?;
        self.ensure_sees(caller, "GetReport", &format!("reports/{id}"), &view.report.region)?;
        Ok(view)
    }

    /// A report ready to be exported: not being generated.
    pub async fn exportable(&self, caller: &Principal, id: &str) -> Result<ReportView, Problem> {
        let view = self.view(id).await?;
        let name = format!("reports/{id}");
        self.ensure_sees(caller, "ExportReport", &name, &view.report.region)?;
        if view.report.state == State::Generating {
            return Err(being_generated(&name));
        }
        Ok(view)
    }

    /// When a form for `period` is due in `region`, from the deadline parameters in force on the
    /// period's first day.
    async fn due_date(&self, form: Form, region: &str, period: Period) -> Result<Option<Date>, Problem> {
        let on = period.first_day();
        let lookup = |key: &'static str| async move { self.parameters().lookup(key, region, on).await };
        let progress = lookup("reports.progress_due_day").await?;
        let project_list = match (
            lookup("reports.project_list_due_month").await?,
            lookup("reports.project_list_due_day").await?,
        ) {
            (Some(month), Some(day)) => Some((month, day)),
            _ => None,
        };
        Ok(domain::due_date(form, period, progress, project_list))
    }

    /// Submits a complete draft to the level above: its numbers are frozen from now on.
    pub async fn submit(&self, caller: &Principal, id: &str, etag: &str) -> Result<ReportView, Problem> {
        let name = format!("reports/{id}");
        let now = self.now();
        let mut unit = write::begin_unkeyed(self.db(), now).await?;
        let report = store::get(unit.tx(), id)
            .await?
            .ok_or_else(|| Problem::not_found(&name))?;
        self.ensure_sees(caller, "SubmitReport", &name, &report.region)?;
        if report.etag() != etag {
            return Err(Problem::etag_mismatch(&name));
        }
        match report.state {
            State::Draft => {}
            State::Generating => return Err(being_generated(&name)),
            State::Incomplete => return Err(incomplete(&name, &report.content)),
            State::Returned => {
                return Err(Problem::state_conflict(
                    &name,
                    "the report was returned: generate it again once the numbers are corrected, then submit",
                    "报表已被退回，请更正数据后重新生成再报送",
                ));
            }
            State::Submitted | State::Approved => {
                return Err(Problem::state_conflict(
                    &name,
                    "the report is already submitted",
                    "报表已报送，不能重复报送",
                ));
            }
        }
        let children = children(&report.region);
        if !children.is_empty() {
            let states = store::states_of(unit.tx(), report.form, report.period, &children).await?;
            let pending: Vec<&String> = children
                .iter()
                .filter(|child| !matches!(states.get(*child), Some((_, State::Approved))))
                .collect();
            if !pending.is_empty() {
                let list: Vec<&str> = pending.iter().take(20).map(|s| s.as_str()).collect();
                return Err(Problem::new(
                    Code::FailedPrecondition,
                    ErrorReason::ReportLowerLevelsPending,
                    format!(
                        "{} of the {} regions under {} have no approved report for the period: {}",
                        pending.len(),
                        children.len(),
                        report.region,
                        list.join(", ")
                    ),
                    format!(
                        "下级地区尚有{}个报表未审核通过，请待下级报表全部审核通过后再报送",
                        pending.len()
                    ),
                )
                .with_metadata("pending", list.join(",")));
            }
        }
        let subject = caller.subject.as_str();
        if !store::change_state(
            unit.tx(),
            id,
            (State::Draft, State::Submitted),
            report.revision,
            Some(subject),
            to_micros(now),
        )
        .await?
        {
            return Err(Problem::etag_mismatch(&name));
        }
        self.sign(unit, caller, &report, "submitted", "", "SubmitReport")
            .await?;
        self.view(id).await
    }

    /// Approves (`approve`) or returns a submitted report, as the level directly above and
    /// another subject than the submitter.
    pub async fn decide(
        &self,
        caller: &Principal,
        id: &str,
        etag: &str,
        approve: bool,
        note: &str,
    ) -> Result<ReportView, Problem> {
        let method_name = if approve { "ApproveReport" } else { "ReturnReport" };
        let name = format!("reports/{id}");
        let now = self.now();
        let mut unit = write::begin_unkeyed(self.db(), now).await?;
        let report = store::get(unit.tx(), id)
            .await?
            .ok_or_else(|| Problem::not_found(&name))?;
        self.ensure_sees(caller, method_name, &name, &report.region)?;
        let approver = domain::approver_scope(&report.region);
        if caller.scope.to_string() != approver {
            return Err(self.refuse(
                caller,
                method_name,
                &name,
                Problem::new(
                    Code::PermissionDenied,
                    ErrorReason::ReportWrongLevel,
                    format!(
                        "a report of {} is approved or returned by the level directly above it (scope {approver}), not by scope {}",
                        report.region, caller.scope
                    ),
                    "报表应由上一级审核（同级或越级不能审核）",
                )
                .with_metadata("approver_level", approver),
            ));
        }
        if report.state == State::Submitted {
            caller
                .ensure_not_maker(&report.submitted_by)
                .map_err(|refusal| self.refuse(caller, method_name, &name, refusal))?;
        }
        if report.etag() != etag {
            return Err(Problem::etag_mismatch(&name));
        }
        if report.state != State::Submitted {
            return Err(Problem::state_conflict(
                &name,
                format!(
                    "only a submitted report can be decided; this one is {}",
                    report.state.as_str()
                ),
                "只有已报送的报表才能审核或退回",
            ));
        }
        let to = if approve { State::Approved } else { State::Returned };
        if !store::change_state(
            unit.tx(),
            id,
            (State::Submitted, to),
            report.revision,
            None,
            to_micros(now),
        )
        .await?
        {
            return Err(Problem::etag_mismatch(&name));
        }
        let action = if approve { "approved" } else { "returned" };
        self.sign(unit, caller, &report, action, note, method_name).await?;
        self.view(id).await
    }

    async fn sign(
        &self,
        mut unit: write::Unit,
        caller: &Principal,
        report: &StoredReport,
        action: &str,
        note: &str,
        method_name: &str,
    ) -> Result<(), Problem> {
        let now = unit.now();
        let step = SignOff {
            action: action.to_string(),
            subject: caller.subject.clone(),
            scope: caller.scope.to_string(),
            note: note.to_string(),
            at_us: to_micros(now),
        };
        store::add_sign_off(unit.tx(), &report.id, &step).await?;
        unit.commit(
            AuditEntry::by(caller, &method(method_name), format!("reports/{}", report.id), now)
                .in_region(&report.region),
        )
        .await
    }

    /// A page of reports in the caller's scope, by name.
    pub async fn list(
        &self,
        caller: &Principal,
        mut filter: ReportFilter,
        page_size: u32,
        page_token: &str,
    ) -> Result<(Vec<StoredReport>, String), Problem> {
        let fingerprint = paging::fingerprint(&[
            &filter.region_prefix,
            filter.form.map(Form::as_str).unwrap_or(""),
            &filter.year.unwrap_or(0).to_string(),
            filter.state.map(State::as_str).unwrap_or(""),
        ]);
        let after = paging::decode_token(page_token, &fingerprint)?
            .and_then(|cursor| cursor.into_iter().next())
            .unwrap_or_default();
        let Some(prefix) = caller.scope.narrowed(&filter.region_prefix) else {
            return Ok((Vec::new(), String::new()));
        };
        filter.region_prefix = prefix;
        let mut conn = self.db().acquire().await?;
        let mut rows = store::list(&mut conn, &filter, &after, i64::from(page_size) + 1).await?;
        let next = if rows.len() > page_size as usize {
            rows.truncate(page_size as usize);
            rows.last()
                .map(|r| paging::encode_token(&fingerprint, std::slice::from_ref(&r.id)))
                .unwrap_or_default()
        } else {
            String::new()
        };
        Ok((rows, next))
    }

    /// The year's periods that have begun, with their deadlines, and where `region` and each
    /// region directly under it stand.
    pub async fn periods(&self, caller: &Principal, region: &str, year: i32) -> Result<Vec<PeriodStatus>, Problem> {
        self.ensure_sees(caller, "ListReportingPeriods", &format!("regions/{region}"), region)?;
        let today = self.today();
        let mut regions = vec![region.to_string()];
        regions.extend(children(region));
        let candidates = (1..=4u8)
            .map(|quarter| (Form::Progress, Period { year, quarter }))
            .chain(std::iter::once((Form::ProjectList, Period { year, quarter: 0 })));
        let mut out = Vec::new();
        let mut conn = self.db().acquire().await?;
        for (form, period) in candidates {
            if period.first_day() > today {
                continue;
            }
            let due = self.due_date(form, region, period).await?;
            let states = store::states_of(&mut conn, form, period, &regions).await?;
            let rows = regions
                .iter()
                .map(|r| {
                    let (id, state) = states
                        .get(r)
                        .map(|(id, state)| (id.clone(), Some(*state)))
                        .unwrap_or_default();
                    let done = state.is_some_and(State::is_frozen);
                    let overdue = due.is_some_and(|due| today > due) && !done;
                    (r.clone(), id, state, overdue)
                })
                .collect();
            out.push(PeriodStatus {
                form,
                period,
                due,
                regions: rows,
            });
        }
        Ok(out)
    }
}

/// The regions directly under `region` whose reports it is made of: a city's counties, a
/// province's cities; none under a county.
pub fn children(region: &str) -> Vec<String> {
    match Level::of(region) {
        Some(Level::County) | None => Vec::new(),
        Some(Level::City) => sources::layout(region)
            .into_iter()
            .flat_map(|(_, counties)| counties.into_iter().map(|(code, _)| code))
            .collect(),
        Some(Level::Province) => sources::layout(region)
            .into_iter()
            .filter_map(|(city, _)| city.map(|(code, _)| code))
            .collect(),
    }
}

fn being_generated(name: &str) -> Problem {
    Problem::new(
        Code::FailedPrecondition,
        ErrorReason::ReportBeingGenerated,
        format!("{name} is being generated: wait until it is done, then try again"),
        "报表正在生成，请稍后再试",
    )
    .with_metadata("resource", name)
}

fn incomplete(name: &str, content: &Content) -> Problem {
    let missing: Vec<String> = content
        .missing
        .iter()
        .map(|m| format!("{}.{} ({})", m.service, m.method, m.region_prefix))
        .collect();
    Problem::new(
        Code::FailedPrecondition,
        ErrorReason::ReportIncomplete,
        format!(
            "{name} is incomplete: {} could not be read when it was generated; generate it again",
            missing.join(", ")
        ),
        "报表有部分数据未能读取，不能报送，请待相关服务恢复后重新生成",
    )
    .with_metadata("missing", missing.join(";"))
}

fn period_problem(error: PeriodError) -> Problem {
    match error {
        PeriodError::NotBegun(first) => Problem::invalid_field(
            ErrorReason::ReportPeriodNotBegun,
            "period",
            error.to_string(),
            "报告期尚未开始，不能生成报表",
        )
        .with_metadata("first_day", bangfu_platform::parameters::date_text(first)),
        PeriodError::YearOutOfRange => Problem::invalid_field(
            ErrorReason::FieldInvalid,
            "period.year",
            error.to_string(),
            "年度应在2000至2100之间",
        ),
        PeriodError::QuarterRequired | PeriodError::QuarterNotAllowed => Problem::invalid_field(
            ErrorReason::FieldInvalid,
            "period.quarter",
            error.to_string(),
            "推进情况表按季度填报（1至4），项目清单按年度填报（季度填0）",
        ),
    }
}
