//! Monthly payrolls (工资表): prepared from the muster roll, publicly noticed (公示) with masked
//! names, objections, approval by a second subject, each line a remuneration claim in subsidy
//! payment, receipts (签字确认) from the bank's result or the paper ledger, and arrears (拖欠).

use bangfu_platform::audit::{self, AuditEntry};
use bangfu_platform::auth::Principal;
use bangfu_platform::error::{ErrorReason, Problem};
use bangfu_platform::idempotency::RequestKey;
use bangfu_platform::peers::CallContext;
use bangfu_platform::subsidy_claims::{ClaimLine, ClaimOutcome, ClaimOutcomeKind, FactValue, LineAnswer};
use bangfu_platform::write::{self, Begun};
use sqlx::AnyConnection;
use time::{Date, OffsetDateTime};
use tonic::Code;

use super::{Relief, invalid, method};
use crate::domain::{self, LineState, ObjectionState, PayrollState, ReceiptSource, YearMonth};
use crate::store::{
    self, NewLine, OwedCursor, PayrollFilter, StoredLine, StoredObjection, StoredPayroll, StoredProject,
};

/// What the audit names the claim feed's effects by: the follower, not an RPC, moved the line.
const CLAIM_FEED: &str = "follower:work_relief/subsidy-claims";

/// Lines sent to subsidy payment per SubmitClaims call.
const LINES_PER_CALL: i64 = 1000;

/// A payroll with its lines and the day it is read on.
#[derive(Debug, Clone)]
pub struct PayrollView {
    pub payroll: StoredPayroll,
    pub state: PayrollState,
    pub lines: Vec<StoredLine>,
    pub project: StoredProject,
}

/// What PublishPayrollNotice asks for.
pub struct NoticeRequest {
    pub first_day: Option<Date>,
    pub objection_contact: String,
}

/// What RaiseObjection asks for.
pub struct ObjectionRequest {
    pub line_number: i64,
    pub content: String,
    pub channel: String,
    pub received: Date,
}

/// What ConfirmReceipt asks for: the line and the signed paper ledger.
pub struct ReceiptRequest {
    pub line_number: i64,
    pub ledger_reference: String,
    pub paid_date: Date,
}

/// A line owed past its due date and the allowed days.
#[derive(Debug, Clone)]
pub struct Arrear {
    pub line: StoredLine,
    pub project_name: String,
    pub region: String,
    pub due_date: Date,
    pub days_overdue: i64,
}

fn payroll_not_found(project_id: &str, month: YearMonth) -> Problem {
    Problem::not_found(&store::payroll_name(project_id, month))
}

impl Relief {
    async fn payroll_view(
        &self,
        conn: &mut AnyConnection,
        project: StoredProject,
        month: YearMonth,
        with_lines: bool,
    ) -> Result<PayrollView, Problem> {
        let payroll = store::get_payroll(conn, &project.id, month)
            .await?
            .ok_or_else(|| payroll_not_found(&project.id, month))?;
        let lines = if with_lines {
            store::lines_of(conn, &project.id, month).await?
        } else {
            Vec::new()
        };
        Ok(PayrollView {
            state: domain::effective_state(payroll.state, payroll.notice.map(|n| n.1), self.today()),
            payroll,
            lines,
            project,
        })
    }

    /// PreparePayroll: each worker with attendance in the month becomes a line (days × daily
    /// wage, or pieces × piece rate); a DRAFT is computed again from the roll as it is now.
    pub async fn prepare_payroll(
        &self,
        caller: &Principal,
        project_id: &str,
        month: YearMonth,
    ) -> Result<PayrollView, Problem> {
        if month.first_day() > self.today() {
            return Err(invalid("month", "is in the future", "工资表月份不能晚于本月"));
        }
        let mut unit = write::begin_unkeyed(self.db(), self.now()).await?;
        let now = unit.now();
        let project = self
            .project_for(unit.tx(), caller, "PreparePayroll", project_id)
            .await?;
        if !store::lock_active_project(unit.tx(), &project.id).await? {
            return Err(Problem::state_conflict(
                &project.name(),
                "the project is closed",
                "项目已竣工关闭",
            ));
        }
        let lines = draft_lines(unit.tx(), &project, month).await?;
        let due = domain::due_date(month, u8::try_from(project.data.pay_day).unwrap_or(28));
        if !store::replace_draft_payroll(unit.tx(), &project.id, month, due, &lines, &caller.subject, now).await? {
            return Err(Problem::state_conflict(
                &store::payroll_name(&project.id, month),
                "the month's payroll is past DRAFT",
                "该月工资表已公示或审批，不能重新生成",
            ));
        }
        let view = self.payroll_view(unit.tx(), project, month, true).await?;
        unit.commit(
            AuditEntry::by(caller, &method("PreparePayroll"), view.payroll.name(), now)
                .in_region(&view.project.data.region),
        )
        .await?;
        Ok(view)
    }

    pub async fn get_payroll(
        &self,
        caller: &Principal,
        project_id: &str,
        month: YearMonth,
    ) -> Result<PayrollView, Problem> {
        let mut conn = self.db().acquire().await?;
        let project = self.project_for(&mut conn, caller, "GetPayroll", project_id).await?;
        self.payroll_view(&mut conn, project, month, true).await
    }

    pub async fn list_payrolls(
        &self,
        caller: &Principal,
        mut filter: PayrollFilter,
        after: (&str, &str),
        limit: u32,
    ) -> Result<Vec<(StoredPayroll, PayrollState)>, Problem> {
        let mut conn = self.db().acquire().await?;
        if !filter.project_id.is_empty() {
            let project = self
                .project_for(&mut conn, caller, "ListPayrolls", &filter.project_id)
                .await?;
            filter.region_prefix = project.data.region;
        } else {
            let Some(prefix) = caller.scope.narrowed(&filter.region_prefix) else {
                return Ok(Vec::new());
            };
            filter.region_prefix = prefix;
        }
        let today = self.today();
        let rows = store::list_payrolls(&mut conn, &filter, today, after, i64::from(limit) + 1).await?;
        Ok(rows
            .into_iter()
            .map(|p| {
                let state = domain::effective_state(p.state, p.notice.map(|n| n.1), today);
                (p, state)
            })
            .collect())
    }

    pub async fn publish_payroll_notice(
        &self,
        caller: &Principal,
        project_id: &str,
        month: YearMonth,
        etag: &str,
        request: NoticeRequest,
    ) -> Result<PayrollView, Problem> {
        let today = self.today();
        let first = request.first_day.unwrap_or(today);
        if first < today {
            return Err(invalid(
                "first_day",
                "the notice cannot start in the past",
                "公示开始日期不能早于今天",
            ));
        }
        let mut unit = write::begin_unkeyed(self.db(), self.now()).await?;
        let now = unit.now();
        let project = self
            .project_for(unit.tx(), caller, "PublishPayrollNotice", project_id)
            .await?;
        let mut view = self.payroll_view(unit.tx(), project, month, false).await?;
        let name = view.payroll.name();
        if etag != view.payroll.etag() {
            return Err(Problem::etag_mismatch(&name));
        }
        if view.payroll.state != PayrollState::Draft {
            return Err(Problem::state_conflict(
                &name,
                "only a DRAFT payroll is noticed",
                "只有未公示的工资表可以公示",
            ));
        }
        if view.payroll.line_count == 0 {
            return Err(Problem::state_conflict(
                &name,
                "the payroll has no lines",
                "工资表没有发放明细，无需公示",
            ));
        }
        let days = self
            .parameters()
            .require_on(
                unit.tx(),
                "work_relief.public_notice_days",
                &view.project.data.region,
                first,
            )
            .await?;
        let last = first + time::Duration::days(days.max(1) - 1);
        let read = view.payroll.revision;
        view.payroll.state = PayrollState::Notice;
        view.payroll.notice = Some((first, last));
        view.payroll.objection_contact = request.objection_contact;
        if !store::move_payroll(unit.tx(), &view.payroll, PayrollState::Draft, read).await? {
            return Err(Problem::etag_mismatch(&name));
        }
        let view = self.payroll_view(unit.tx(), view.project, month, true).await?;
        unit.commit(
            AuditEntry::by(caller, &method("PublishPayrollNotice"), name, now).in_region(&view.project.data.region),
        )
        .await?;
        Ok(view)
    }

    /// The notice as posted: only a payroll that has been noticed has one.
    pub async fn payroll_notice(
        &self,
        caller: &Principal,
        project_id: &str,
        month: YearMonth,
    ) -> Result<PayrollView, Problem> {
        let view = self.get_payroll(caller, project_id, month).await?;
        if view.payroll.notice.is_none() {
            return Err(Problem::not_found(&format!("{}/notice", view.payroll.name())));
        }
        Ok(view)
    }

    pub async fn raise_objection(
        &self,
        caller: &Principal,
        key: Option<RequestKey>,
        project_id: &str,
        month: YearMonth,
        request: ObjectionRequest,
    ) -> Result<StoredObjection, Problem> {
        let mut unit = match write::begin(self.db(), key, self.now()).await? {
            Begun::Replay { resource } => {
                let id = resource.rsplit('/').next().unwrap_or_default().to_string();
                let mut conn = self.db().acquire().await?;
                return store::get_objection(&mut conn, &id)
                    .await?
                    .ok_or_else(Problem::internal);
            }
            Begun::Fresh(unit) => unit,
        };
        let now = unit.now();
        let project = self
            .project_for(unit.tx(), caller, "RaiseObjection", project_id)
            .await?;
        let view = self.payroll_view(unit.tx(), project, month, false).await?;
        let name = view.payroll.name();
        // Until approved, an objection received within the notice is taken even when entered
        // after its last day.
        let Some((first, last)) = view
            .payroll
            .notice
            .filter(|_| view.payroll.state == PayrollState::Notice)
        else {
            return Err(Problem::state_conflict(
                &name,
                "the payroll is not in notice",
                "工资表不在公示期内，不能受理异议",
            ));
        };
        if request.received < first || request.received > last || request.received > self.today() {
            return Err(invalid(
                "objection.received_date",
                format!("must lie within the notice {first}..{last}, not after today"),
                format!("异议受理日期应在公示期 {first} 至 {last} 之内，且不晚于今天"),
            ));
        }
        if request.line_number < 0 || request.line_number > view.payroll.line_count {
            return Err(invalid(
                "objection.line_number",
                format!("the payroll has lines 1 to {}", view.payroll.line_count),
                format!("工资表只有第1至{}行", view.payroll.line_count),
            ));
        }
        let objection = StoredObjection {
            id: store::new_id(),
            project_id: view.project.id.clone(),
            month,
            line_number: request.line_number,
            content: request.content,
            channel: request.channel,
            received: request.received,
            state: ObjectionState::Open,
            resolution: String::new(),
            raise_subject: caller.subject.clone(),
            resolve_subject: String::new(),
        };
        // The payroll moves with it, so an approval read before it fails its etag.
        if !store::touch_noticed_payroll(unit.tx(), &view.project.id, month).await? {
            return Err(Problem::state_conflict(
                &name,
                "the payroll was approved meanwhile",
                "工资表已审批，不能再受理异议",
            ));
        }
        store::insert_objection(unit.tx(), &objection, now).await?;
        unit.commit(
            AuditEntry::by(caller, &method("RaiseObjection"), objection.name(), now)
                .in_region(&view.project.data.region),
        )
        .await?;
        Ok(objection)
    }

    pub async fn resolve_objection(
        &self,
        caller: &Principal,
        project_id: &str,
        month: YearMonth,
        objection_id: &str,
        upheld: bool,
        resolution: &str,
    ) -> Result<StoredObjection, Problem> {
        let mut unit = write::begin_unkeyed(self.db(), self.now()).await?;
        let now = unit.now();
        let project = self
            .project_for(unit.tx(), caller, "ResolveObjection", project_id)
            .await?;
        let objection = store::get_objection(unit.tx(), objection_id)
            .await?
            .filter(|o| o.project_id == project.id && o.month == month)
            .ok_or_else(|| {
                Problem::not_found(&format!(
                    "{}/objections/{objection_id}",
                    store::payroll_name(project_id, month)
                ))
            })?;
        let name = objection.name();
        if let Err(refusal) = caller.ensure_not_maker(&objection.raise_subject) {
            return Err(self.refuse(caller, "ResolveObjection", &name, refusal));
        }
        let state = if upheld {
            ObjectionState::Upheld
        } else {
            ObjectionState::Dismissed
        };
        if !store::resolve_objection(unit.tx(), &objection.id, state, resolution, &caller.subject).await? {
            return Err(Problem::state_conflict(
                &name,
                "the objection is resolved",
                "该异议已处理",
            ));
        }
        // Upheld: the payroll goes back to DRAFT, to be corrected and noticed again.
        if upheld && !store::payroll_back_to_draft(unit.tx(), &project.id, month).await? {
            return Err(Problem::state_conflict(
                &name,
                "the payroll is past its notice; an objection upheld now cannot stop it",
                "工资表已审批，异议成立须另行处理（更正或追回），不能退回工资表",
            ));
        }
        let stored = store::get_objection(unit.tx(), objection_id)
            .await?
            .ok_or_else(Problem::internal)?;
        unit.commit(AuditEntry::by(caller, &method("ResolveObjection"), name, now).in_region(&project.data.region))
            .await?;
        Ok(stored)
    }

    /// ApprovePayroll: checked and moved in one transaction; the lines are then sent as claims,
    /// acting for the approver. Lines subsidy payment did not take stay PENDING for the job.
    pub async fn approve_payroll(
        &self,
        caller: &Principal,
        call: &CallContext,
        project_id: &str,
        month: YearMonth,
        etag: &str,
    ) -> Result<PayrollView, Problem> {
        let mut unit = write::begin_unkeyed(self.db(), self.now()).await?;
        let now = unit.now();
        let project = self
            .project_for(unit.tx(), caller, "ApprovePayroll", project_id)
            .await?;
        let mut view = self.payroll_view(unit.tx(), project, month, false).await?;
        let name = view.payroll.name();
        if etag != view.payroll.etag() {
            return Err(Problem::etag_mismatch(&name));
        }
        match view.state {
            PayrollState::AwaitingApproval => {}
            PayrollState::Notice => {
                let last = view.payroll.notice.map(|n| n.1.to_string()).unwrap_or_default();
                return Err(Problem::new(
                    Code::FailedPrecondition,
                    ErrorReason::NoticeNotEnded,
                    format!("{name}'s notice runs until {last}"),
                    format!("公示期至 {last} 结束，期满后才能审批"),
                ));
            }
            _ => {
                return Err(Problem::state_conflict(
                    &name,
                    format!(
                        "{name} is {}; only a payroll whose notice ended is approved",
                        view.state.as_str()
                    ),
                    "只有公示期满的工资表可以审批",
                ));
            }
        }
        if view.payroll.open_objections > 0 {
            return Err(Problem::new(
                Code::FailedPrecondition,
                ErrorReason::ObjectionOpen,
                format!("{name} has {} open objection(s)", view.payroll.open_objections),
                "工资表尚有未处理的异议，请先处理",
            ));
        }
        if let Err(refusal) = caller.ensure_not_maker(&view.payroll.prepare_subject) {
            return Err(self.refuse(caller, "ApprovePayroll", &name, refusal));
        }
        let read = view.payroll.revision;
        view.payroll.state = PayrollState::Approved;
        view.payroll.approve_subject = Some(caller.subject.clone());
        view.payroll.approved = Some(now);
        if !store::lock_active_project(unit.tx(), &view.project.id).await? {
            return Err(Problem::state_conflict(
                &view.project.name(),
                "the project is closed",
                "项目已竣工关闭",
            ));
        }
        if !store::move_payroll(unit.tx(), &view.payroll, PayrollState::Notice, read).await? {
            return Err(Problem::etag_mismatch(&name));
        }
        store::lines_to_pending(unit.tx(), &view.project.id, month, now).await?;
        unit.commit(AuditEntry::by(caller, &method("ApprovePayroll"), name, now).in_region(&view.project.data.region))
            .await?;
        if let Err(problem) = self.send_pending(call, &view.project.id, Some(month)).await {
            // Approved is approved: the lines wait for subsidy payment and go with the job.
            tracing::warn!(payroll = %view.payroll.name(), reason = ?problem.reason, "payroll lines left pending");
        }
        let mut conn = self.db().acquire().await?;
        self.payroll_view(&mut conn, view.project, month, true).await
    }

    /// Sends pending lines (of one payroll, or all when `project_id` is empty) to subsidy
    /// payment; answers how many it took or refused for good.
    pub async fn send_pending(
        &self,
        call: &CallContext,
        project_id: &str,
        month: Option<YearMonth>,
    ) -> Result<usize, Problem> {
        let peers = self.peers()?;
        let mut settled = 0;
        let mut skip = std::collections::HashSet::new();
        loop {
            let lines = {
                let mut conn = self.db().acquire().await?;
                store::pending_lines(
                    &mut conn,
                    project_id,
                    month,
                    LINES_PER_CALL + i64::try_from(skip.len()).unwrap_or(0),
                )
                .await?
            };
            let lines: Vec<StoredLine> = lines
                .into_iter()
                .filter(|l| !skip.contains(&(l.project_id.clone(), l.month, l.line_number)))
                .collect();
            if lines.is_empty() {
                return Ok(settled);
            }
            // Each project's policy and the facts it takes; a project whose policy cannot be
            // read now (or is not in force) waits, and the others go.
            let mut policies: std::collections::HashMap<String, Option<(StoredProject, Vec<String>)>> =
                std::collections::HashMap::new();
            for line in &lines {
                if policies.contains_key(&line.project_id) {
                    continue;
                }
                let project = {
                    let mut conn = self.db().acquire().await?;
                    store::get_project(&mut conn, &line.project_id)
                        .await?
                        .ok_or_else(Problem::internal)?
                };
                let names = peers
                    .subsidy
                    .claim_fact_names(call, &project.data.remuneration_policy, line.month.first_day())
                    .await;
                let ready = match names {
                    Ok(Some(names)) => Some((project, names)),
                    Ok(None) => {
                        tracing::warn!(project = %project.name(), policy = %project.data.remuneration_policy, month = %line.month.text(), "no version of the remuneration policy covers the month; its lines wait");
                        None
                    }
                    Err(problem) => {
                        tracing::warn!(project = %project.name(), reason = ?problem.reason, "the remuneration policy could not be read; its lines wait");
                        None
                    }
                };
                policies.insert(line.project_id.clone(), ready);
            }
            let (lines, claims): (Vec<&StoredLine>, Vec<ClaimLine>) = lines
                .iter()
                .filter_map(|line| match &policies[&line.project_id] {
                    Some((project, names)) => Some((line, claim_of(project, line, names))),
                    None => {
                        skip.insert((line.project_id.clone(), line.month, line.line_number));
                        None
                    }
                })
                .unzip();
            if claims.is_empty() {
                continue;
            }
            let answers = peers.subsidy.submit(call, &claims).await?;
            let answered = answers.len();
            let mut sent: Vec<(&StoredLine, LineState, String, String)> = Vec::with_capacity(answered);
            for (line, answer) in lines.iter().copied().zip(answers) {
                match answer {
                    LineAnswer::Claim(outcome) => sent.push((line, LineState::Claimed, outcome.claim, String::new())),
                    LineAnswer::Refused { retryable: true, .. } => {
                        skip.insert((line.project_id.clone(), line.month, line.line_number));
                    }
                    LineAnswer::Refused { message, .. } => {
                        sent.push((line, LineState::ClaimRefused, String::new(), message))
                    }
                }
            }
            let answers: Vec<(&StoredLine, LineState, &str, &str)> = sent
                .iter()
                .map(|(line, state, claim, detail)| (*line, *state, claim.as_str(), detail.as_str()))
                .collect();
            let mut conn = self.db().acquire().await?;
            store::lines_sent(&mut conn, &answers, self.now()).await?;
            settled += answers.len();
            if answered < lines.len() {
                return Ok(settled);
            }
        }
    }

    /// ConfirmReceipt from the signed paper ledger: for a line whose claim subsidy payment has
    /// sent to the bank (its batch approved and exported) when the bank's result file does not
    /// come back. A claim not yet sent could still be paid by the bank after a cash payment, so
    /// it is refused; one the bank answered is confirmed by that answer.
    pub async fn confirm_receipt(
        &self,
        caller: &Principal,
        call: &CallContext,
        project_id: &str,
        month: YearMonth,
        receipt: ReceiptRequest,
    ) -> Result<StoredLine, Problem> {
        let ReceiptRequest {
            line_number,
            ledger_reference,
            paid_date,
        } = receipt;
        let ledger_reference = ledger_reference.as_str();
        if paid_date > self.today() {
            return Err(invalid("paid_date", "is in the future", "发放日期不能晚于今天"));
        }
        let claim = {
            let mut conn = self.db().acquire().await?;
            let project = self
                .project_for(&mut conn, caller, "ConfirmReceipt", project_id)
                .await?;
            store::get_line(&mut conn, &project.id, month, line_number)
                .await?
                .map(|line| line.claim)
                .unwrap_or_default()
        };
        if !claim.is_empty() {
            let state = self.peers()?.subsidy.claim_state(call, &claim).await?;
            if state.as_deref() != Some("BATCHED") {
                return Err(Problem::state_conflict(
                    &claim,
                    format!(
                        "{claim} is {}; a paper ledger confirms only a claim sent to the bank",
                        state.as_deref().unwrap_or("not visible")
                    ),
                    "该笔报酬尚未随发放批次交银行发放（或银行已回盘），不能凭纸质签字表确认",
                ));
            }
        }
        let mut unit = write::begin_unkeyed(self.db(), self.now()).await?;
        let now = unit.now();
        let project = self
            .project_for(unit.tx(), caller, "ConfirmReceipt", project_id)
            .await?;
        let line = store::get_line(unit.tx(), &project.id, month, line_number)
            .await?
            .ok_or_else(|| {
                Problem::not_found(&format!(
                    "{}/lines/{line_number}",
                    store::payroll_name(project_id, month)
                ))
            })?;
        let resource = format!("{}/lines/{line_number}", store::payroll_name(&project.id, month));
        // Only money on its way through subsidy payment is confirmed here: a line not claimed
        // (or refused, or failed at the bank) was not paid, whatever a ledger says.
        if line.state != LineState::Claimed {
            return Err(Problem::state_conflict(
                &resource,
                format!(
                    "the line is {}; only a claimed line's receipt is confirmed",
                    line.state.as_str()
                ),
                "只有已提交发放的明细可以确认签收",
            ));
        }
        let receipt = Some((ReceiptSource::PaperLedger, paid_date, ledger_reference));
        if !store::confirm_line(unit.tx(), &line, receipt, now).await? {
            return Err(Problem::state_conflict(
                &resource,
                "the line changed meanwhile",
                "该明细已被更新，请刷新后重试",
            ));
        }
        store::settle_payroll(unit.tx(), &project.id, &month.text()).await?;
        let stored = store::get_line(unit.tx(), &project.id, month, line_number)
            .await?
            .ok_or_else(Problem::internal)?;
        unit.commit(AuditEntry::by(caller, &method("ConfirmReceipt"), resource, now).in_region(&project.data.region))
            .await?;
        Ok(stored)
    }

    /// ResubmitLine, acting for the caller: a claim subsidy payment stored and rejected is
    /// decided again there (ReevaluateClaim); a line it refused without storing goes back to
    /// PENDING (guarded on its being refused) and is sent under the same source key.
    pub async fn resubmit_line(
        &self,
        caller: &Principal,
        call: &CallContext,
        project_id: &str,
        month: YearMonth,
        line_number: i64,
        reason: &str,
    ) -> Result<StoredLine, Problem> {
        let mut unit = write::begin_unkeyed(self.db(), self.now()).await?;
        let now = unit.now();
        let project = self.project_for(unit.tx(), caller, "ResubmitLine", project_id).await?;
        let resource = format!("{}/lines/{line_number}", store::payroll_name(&project.id, month));
        let line = store::get_line(unit.tx(), &project.id, month, line_number)
            .await?
            .ok_or_else(|| Problem::not_found(&resource))?;
        if line.state != LineState::ClaimRefused {
            return Err(Problem::state_conflict(
                &resource,
                format!("the line is {}; only a refused line is sent again", line.state.as_str()),
                "只有被补贴发放系统拒绝的明细可以重新提交",
            ));
        }
        if !store::lock_active_project(unit.tx(), &project.id).await? {
            return Err(Problem::state_conflict(
                &project.name(),
                "the project is closed",
                "项目已竣工关闭",
            ));
        }
        let entry = AuditEntry::by(caller, &method("ResubmitLine"), resource.clone(), now)
            .in_region(&project.data.region)
            .with_outcome(audit::Outcome::Succeeded, reason);
        if line.claim.is_empty() {
            if !store::resubmit_line(unit.tx(), &line, now).await? {
                return Err(Problem::state_conflict(
                    &resource,
                    "the line changed meanwhile",
                    "该明细已被更新，请刷新后重试",
                ));
            }
            unit.commit(entry).await?;
            if let Err(problem) = self.send_pending(call, &project.id, Some(month)).await {
                tracing::warn!(line = %line.reference(), reason = ?problem.reason, "the line resubmitted waits for subsidy payment");
            }
        } else {
            // The claim is subsidy payment's: decided again there; the feed brings the outcome,
            // and the answer is applied here at once under the same guard.
            unit.commit(entry).await?;
            let reasons = self.peers()?.subsidy.reevaluate(call, &line.claim, reason).await?;
            let mut conn = self.db().acquire().await?;
            if reasons.is_empty() {
                store::line_outcome(&mut conn, &line, LineState::Claimed, &line.claim, "", None, self.now()).await?;
            } else {
                store::line_outcome(
                    &mut conn,
                    &line,
                    LineState::ClaimRefused,
                    &line.claim,
                    &reasons.join(", "),
                    None,
                    self.now(),
                )
                .await?;
            }
        }
        let mut conn = self.db().acquire().await?;
        store::get_line(&mut conn, &project.id, month, line_number)
            .await?
            .ok_or_else(Problem::internal)
    }

    /// Lines owed past due plus the region's allowed days, oldest first.
    pub async fn list_arrears(
        &self,
        caller: &Principal,
        region_prefix: &str,
        after: &OwedCursor,
        limit: u32,
    ) -> Result<(Vec<Arrear>, Option<OwedCursor>), Problem> {
        let Some(prefix) = caller.scope.narrowed(region_prefix) else {
            return Ok((Vec::new(), None));
        };
        let today = self.today();
        let mut conn = self.db().acquire().await?;
        let rows = store::owed_lines(&mut conn, &prefix, "", today, after, i64::from(limit) + 1).await?;
        let more = rows.len() > limit as usize;
        let mut arrears = Vec::new();
        let mut next = None;
        for owed in rows.into_iter().take(limit as usize) {
            next = Some(OwedCursor {
                due_date: bangfu_platform::parameters::date_text(owed.due_date),
                project_id: owed.line.project_id.clone(),
                month: owed.line.month.text(),
                line_number: owed.line.line_number,
            });
            let allowed = self
                .parameters()
                .lookup_on(&mut conn, "work_relief.arrears_allowed_days", &owed.region, today)
                .await?
                .unwrap_or(0);
            let days_overdue = domain::days_overdue(owed.due_date, allowed, today);
            if days_overdue > 0 {
                arrears.push(Arrear {
                    line: owed.line,
                    project_name: owed.project_name,
                    region: owed.region,
                    due_date: owed.due_date,
                    days_overdue,
                });
            }
        }
        Ok((arrears, next.filter(|_| more)))
    }
}

/// A month's lines from the muster roll as it is now: each worker with attendance, days ×
/// daily wage or pieces × piece rate, in roster order.
pub(crate) async fn draft_lines(
    tx: &mut AnyConnection,
    project: &StoredProject,
    month: YearMonth,
) -> Result<Vec<NewLine>, Problem> {
    let workers = store::workers_in_month(tx, &project.id, month).await?;
    let attendance = store::attendance_of(tx, &project.id, month).await?;
    let mut lines = Vec::new();
    for worker in workers {
        let Some(&(days, pieces)) = attendance.get(&worker.id) else {
            continue;
        };
        // An enrolment ended after its month was recorded: the roll must be corrected first.
        let enrolled = domain::days_enrolled(worker.worker.start, worker.worker.end, month);
        if days > enrolled {
            return Err(Problem::state_conflict(
                &worker.name(),
                format!(
                    "{} has {days} days recorded in {} but is enrolled {enrolled} of them",
                    worker.name(),
                    month.text()
                ),
                format!(
                    "{} 本月考勤 {days} 天，超过其登记期内的 {enrolled} 天，请先更正考勤",
                    worker.display_name
                ),
            ));
        }
        let amount =
            domain::line_amount(worker.worker.pay_basis, worker.worker.rate_fen, days, pieces).ok_or_else(|| {
                invalid(
                    "month",
                    format!("{}'s amount overflows", worker.name()),
                    "劳务报酬金额超出范围，请核对考勤与单价",
                )
            })?;
        if amount == 0 {
            continue;
        }
        lines.push(NewLine {
            worker_id: worker.id.clone(),
            person_id: worker.worker.person_id.clone(),
            display_name: worker.display_name.clone(),
            role: worker.worker.role,
            days,
            pieces,
            rate_fen: worker.worker.rate_fen,
            amount_fen: amount,
        });
    }
    Ok(lines)
}

/// A line as a claim of facts: the attested amount, and the days and wage (or pieces and rate)
/// it comes from, under the names the policy's version declares.
fn claim_of(project: &StoredProject, line: &StoredLine, declared: &[String]) -> ClaimLine {
    let daily = line.line.pieces == 0 && line.line.days > 0;
    let candidates = [
        ("attested_amount_fen", FactValue::Money(line.line.amount_fen)),
        ("days_worked", FactValue::Integer(line.line.days)),
        ("pieces_done", FactValue::Integer(line.line.pieces)),
        (
            "daily_wage_fen",
            FactValue::Money(if daily { line.line.rate_fen } else { 0 }),
        ),
        (
            "piece_rate_fen",
            FactValue::Money(if daily { 0 } else { line.line.rate_fen }),
        ),
        ("counts_in_labor_share", FactValue::Boolean(line.counts_in_share)),
    ];
    ClaimLine {
        line_reference: format!("{}:{}", line.month.text(), line.line_number),
        policy: project.data.remuneration_policy.clone(),
        person_id: line.line.person_id.clone(),
        first: line.month.first_day(),
        last: line.month.last_day(),
        facts: candidates
            .into_iter()
            .filter(|(name, _)| declared.iter().any(|d| d == name))
            .map(|(name, value)| (name.to_string(), value))
            .collect(),
        organization: None,
        reference: line.reference(),
    }
}

/// What the claim feed's change does to the line it names (the follower's effect, on its
/// transaction): granted → claimed; rejected → refused with the reasons; paid → PAID with the
/// bank's receipt; failed → PAYMENT_FAILED. A paid line never moves back.
pub async fn apply_claim_outcome(
    tx: &mut AnyConnection,
    outcome: &ClaimOutcome,
    now: OffsetDateTime,
) -> Result<(), Problem> {
    let Some(line) = store::line_by_reference(tx, &outcome.reference).await? else {
        return Ok(());
    };
    let (state, detail, receipt) = match outcome.kind {
        ClaimOutcomeKind::Granted => (LineState::Claimed, String::new(), None),
        ClaimOutcomeKind::Rejected => (LineState::ClaimRefused, outcome.rejection_reasons.join(", "), None),
        ClaimOutcomeKind::Paid => (
            LineState::Paid,
            String::new(),
            Some((ReceiptSource::Bank, outcome.effective_date.unwrap_or(now.date()), "")),
        ),
        ClaimOutcomeKind::PaymentFailed => (LineState::PaymentFailed, "银行发放失败".to_string(), None),
        ClaimOutcomeKind::Other => return Ok(()),
    };
    if store::line_outcome(tx, &line, state, &outcome.claim, &detail, receipt, now).await? {
        store::settle_payroll(tx, &line.project_id, &line.month.text()).await?;
        let entry = AuditEntry::by_service(
            crate::SERVICE,
            CLAIM_FEED,
            format!(
                "{}/lines/{}",
                store::payroll_name(&line.project_id, line.month),
                line.line_number
            ),
            now,
        );
        audit::append(tx, &entry).await?;
    }
    Ok(())
}
