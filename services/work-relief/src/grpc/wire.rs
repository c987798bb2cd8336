//! Wire messages to domain values and back. Each parse names the field it failed on; each
//! answer carries masked names only.

use bangfu_platform::error::{ErrorReason, Problem};
use bangfu_platform::regions::DivisionTable;
use bangfu_platform::wire::{date_to_wire, timestamp_to_wire};
pub use bangfu_platform::wire::{
    id_of, optional, optional_text, phone, region_prefix, region_to_wire as region, text, within,
};
use bangfu_platform::{enum_mapping, to_wire};
use bangfu_proto::common::v1 as common;
use bangfu_proto::work_relief::v1 as pb;

use crate::app::{Arrear, LaborShare, PayrollView, ProjectStats, ProjectView, RosterCounts};
use crate::domain::{self as d, PayBasis, YearMonth};
use crate::store::{
    NewAllocation, ProjectData, StoredAllocation, StoredLine, StoredObjection, StoredPayroll, StoredWorker,
};

enum_mapping!(
    channel,
    channel_to_wire,
    d::Channel,
    pb::ProjectChannel,
    "PROJECT_CHANNEL_",
    "项目类别"
);
enum_mapping!(
    project_state,
    project_state_to_wire,
    d::ProjectState,
    pb::ProjectState,
    "PROJECT_STATE_",
    "项目状态"
);
enum_mapping!(
    fund_source,
    fund_source_to_wire,
    d::FundSource,
    pb::FundSource,
    "FUND_SOURCE_",
    "资金来源"
);
enum_mapping!(
    worker_role,
    worker_role_to_wire,
    d::WorkerRole,
    pb::WorkerRole,
    "WORKER_ROLE_",
    "人员类别"
);
enum_mapping!(
    enrolment_state,
    enrolment_state_to_wire,
    d::EnrolmentState,
    pb::EnrolmentState,
    "ENROLMENT_STATE_",
    "登记状态"
);
enum_mapping!(
    payroll_state,
    payroll_state_to_wire,
    d::PayrollState,
    pb::PayrollState,
    "PAYROLL_STATE_",
    "工资表状态"
);
to_wire!(line_state_to_wire, d::LineState, pb::LineState, "LINE_STATE_");
to_wire!(
    receipt_source_to_wire,
    d::ReceiptSource,
    pb::ReceiptSource,
    "RECEIPT_SOURCE_"
);
to_wire!(
    objection_state_to_wire,
    d::ObjectionState,
    pb::ObjectionState,
    "OBJECTION_STATE_"
);

fn money(fen: i64) -> Option<common::Money> {
    Some(common::Money { fen })
}

/// A month from the wire.
pub fn month(field: &str, value: Option<&common::YearMonth>) -> Result<YearMonth, Problem> {
    let value = value.ok_or_else(|| Problem::required(field, "月份"))?;
    u8::try_from(value.month)
        .ok()
        .and_then(|m| YearMonth::new(value.year, m))
        .ok_or_else(|| Problem::invalid_field(ErrorReason::FieldInvalid, field, "is not a month", "月份无效"))
}

pub fn month_to_wire(month: YearMonth) -> common::YearMonth {
    common::YearMonth {
        year: month.year,
        month: i32::from(u8::from(month.month)),
    }
}

/// A payroll's name: "projects/{project}/payrolls/{yyyy-mm}" → (project, month).
pub fn payroll_name(field: &str, name: &str) -> Result<(String, YearMonth), Problem> {
    let parts: Vec<&str> = name.trim().split('/').collect();
    match parts.as_slice() {
        ["projects", project, "payrolls", month] => {
            let project = id_of(field, &format!("projects/{project}"), "projects")?;
            let month = YearMonth::parse(month).ok_or_else(|| {
                Problem::invalid_field(
                    ErrorReason::FieldInvalid,
                    field,
                    "the month must be yyyy-mm",
                    "工资表名称中的月份应为 yyyy-mm",
                )
            })?;
            Ok((project, month))
        }
        [] | [""] => Err(Problem::required(field, "工资表名称")),
        _ => Err(Problem::invalid_field(
            ErrorReason::FieldInvalid,
            field,
            "must be \"projects/{project}/payrolls/{yyyy-mm}\"",
            "工资表名称应为 projects/项目编号/payrolls/年-月",
        )),
    }
}

/// A name under a project: "projects/{project}/{collection}/{id}" → (project, id).
pub fn child_name(field: &str, name: &str, collection: &str) -> Result<(String, String), Problem> {
    let parts: Vec<&str> = name.trim().split('/').collect();
    match parts.as_slice() {
        ["projects", project, kind, id] if *kind == collection => Ok((
            id_of(field, &format!("projects/{project}"), "projects")?,
            id_of(field, &format!("{collection}/{id}"), collection)?,
        )),
        [] | [""] => Err(Problem::required(field, "资源名称")),
        _ => Err(Problem::invalid_field(
            ErrorReason::FieldInvalid,
            field,
            format!("must be \"projects/{{project}}/{collection}/{{id}}\""),
            format!("名称应为 projects/项目编号/{collection}/编号"),
        )),
    }
}

/// A project's region: a county (6 digits) or a village (12 digits) of the division table.
pub fn project_region(field: &str, value: Option<&common::RegionCode>) -> Result<String, Problem> {
    let code = value.map(|r| r.code.trim()).unwrap_or_default();
    if code.is_empty() {
        return Err(Problem::required(field, "项目所在地"));
    }
    let table = DivisionTable::embedded();
    let known = match code.len() {
        12 => table.is_village(code),
        6 => table.full_name(code).is_some(),
        _ => false,
    };
    if !known {
        return Err(Problem::invalid_field(
            ErrorReason::RegionUnknown,
            field,
            format!("{code} is neither a county (6 digits) nor a village (12 digits) of the division table"),
            "项目所在地应为6位县级或12位村级行政区划代码",
        ));
    }
    Ok(code.to_string())
}

/// A schedule: start and end, the end on or after the start.
pub fn schedule(field: &str, value: Option<&common::Period>) -> Result<(time::Date, time::Date), Problem> {
    let value = value.ok_or_else(|| Problem::required(field, "建设期"))?;
    let first = bangfu_platform::wire::date(&format!("{field}.first_day"), value.first_day.as_ref())?;
    let last = bangfu_platform::wire::date(&format!("{field}.last_day"), value.last_day.as_ref())?;
    if last < first {
        return Err(Problem::invalid_field(
            ErrorReason::FieldInvalid,
            format!("{field}.last_day"),
            "the project cannot end before it starts",
            "项目完工日期不能早于开工日期",
        ));
    }
    Ok((first, last))
}

pub fn new_project(project: &pb::Project) -> Result<ProjectData, Problem> {
    let (start, end) = schedule("project.schedule", project.schedule.as_ref())?;
    Ok(ProjectData {
        project_number: text("project.project_number", &project.project_number, 40, "项目编号")?,
        display_name: text("project.display_name", &project.display_name, 100, "项目名称")?,
        summary: text("project.summary", &project.summary, 500, "建设内容")?,
        channel: channel("project.channel", project.channel)?,
        region: project_region("project.region", project.region.as_ref())?,
        start,
        end,
        owner_unit: text("project.owner_unit", &project.owner_unit, 100, "项目业主单位")?,
        contact_name: text("project.contact_name", &project.contact_name, 40, "联系人")?,
        contact_phone: phone("project.contact_phone", &project.contact_phone)?,
        key_assistance_county: project.in_key_assistance_county,
        relocation_site: project.at_relocation_site,
        flood_plain: project.in_flood_plain_resettlement,
        remarks: optional_text("project.remarks", &project.remarks, 500, "备注")?,
        remuneration_policy: text(
            "project.remuneration_policy",
            &project.remuneration_policy,
            64,
            "劳务报酬政策",
        )?,
        pay_day: within("project.pay_day", i64::from(project.pay_day), 1, 28, "发放日")?,
    })
}

pub fn labor_share_to_wire(share: &LaborShare) -> pb::LaborShare {
    pb::LaborShare {
        central_funds: money(share.central_fen),
        total_funds: money(share.total_fen),
        paid: money(share.paid_fen),
        planned: money(share.planned_fen),
        paid_share_bp: share.paid_bp(),
        planned_share_bp: share.planned_bp(),
        required: money(share.required_fen),
        gap: money(share.gap_fen()),
    }
}

pub fn project_to_wire(view: &ProjectView) -> pb::Project {
    let project = &view.project;
    let data = &project.data;
    pb::Project {
        name: project.name(),
        project_number: data.project_number.clone(),
        display_name: data.display_name.clone(),
        summary: data.summary.clone(),
        channel: channel_to_wire(data.channel),
        region: Some(region(&data.region)),
        schedule: Some(common::Period {
            first_day: Some(date_to_wire(data.start)),
            last_day: Some(date_to_wire(data.end)),
        }),
        owner_unit: data.owner_unit.clone(),
        contact_name: data.contact_name.clone(),
        contact_phone: data.contact_phone.clone(),
        in_key_assistance_county: data.key_assistance_county,
        at_relocation_site: data.relocation_site,
        in_flood_plain_resettlement: data.flood_plain,
        remarks: data.remarks.clone(),
        remuneration_policy: data.remuneration_policy.clone(),
        pay_day: i32::try_from(data.pay_day).unwrap_or(0),
        state: project_state_to_wire(project.state),
        labor_share: Some(labor_share_to_wire(&view.share)),
        active_workers: i32::try_from(view.active_workers).unwrap_or(i32::MAX),
        etag: project.etag(),
        create_time: Some(timestamp_to_wire(project.created)),
        update_time: Some(timestamp_to_wire(project.updated)),
        close_time: project.closed.map(timestamp_to_wire),
    }
}

pub fn new_allocation(allocation: &pb::FundAllocation) -> Result<NewAllocation, Problem> {
    Ok(NewAllocation {
        fund_source: fund_source("allocation.fund_source", allocation.fund_source)?,
        year: within("allocation.year", i64::from(allocation.year), 2000, 2100, "资金年度")?,
        amount_fen: within(
            "allocation.amount",
            allocation.amount.as_ref().map_or(0, |m| m.fen),
            1,
            1_000_000_000_000,
            "下达金额（分）",
        )?,
        document: text("allocation.document", &allocation.document, 128, "资金下达文号")?,
    })
}

pub fn allocation_to_wire(allocation: &StoredAllocation) -> pb::FundAllocation {
    pb::FundAllocation {
        name: allocation.name(),
        fund_source: fund_source_to_wire(allocation.allocation.fund_source),
        year: i32::try_from(allocation.allocation.year).unwrap_or(0),
        amount: money(allocation.allocation.amount_fen),
        document: allocation.allocation.document.clone(),
        create_subject: allocation.create_subject.clone(),
        create_time: Some(timestamp_to_wire(allocation.created)),
    }
}

pub fn worker_to_wire(worker: &StoredWorker) -> pb::Worker {
    let rate = money(worker.worker.rate_fen);
    pb::Worker {
        name: worker.name(),
        person: format!("persons/{}", worker.worker.person_id),
        display_name: worker.display_name.clone(),
        role: worker_role_to_wire(worker.worker.role),
        pay: Some(match worker.worker.pay_basis {
            PayBasis::Daily => pb::worker::Pay::DailyWage(rate.unwrap_or_default()),
            PayBasis::Piece => pb::worker::Pay::PieceRate(rate.unwrap_or_default()),
        }),
        piece_unit: worker.worker.piece_unit.clone(),
        start_date: Some(date_to_wire(worker.worker.start)),
        end_date: worker.worker.end.map(date_to_wire),
        local: worker.local,
        target_person: worker.target_person,
        relocated: worker.relocated,
        state: enrolment_state_to_wire(worker.state),
        end_reason: worker.end_reason.clone(),
        agreement_reference: worker.worker.agreement_reference.clone(),
        create_time: Some(timestamp_to_wire(worker.created)),
    }
}

pub fn counts_to_wire(counts: &RosterCounts) -> pb::RosterCounts {
    let n = |v: i64| i32::try_from(v).unwrap_or(i32::MAX);
    pb::RosterCounts {
        workers: n(counts.workers),
        target_persons: n(counts.target_persons),
        relocated: n(counts.relocated),
        local: n(counts.local),
        relocated_reserved: n(counts.relocated_reserved),
    }
}

pub fn line_to_wire(line: &StoredLine) -> pb::PayrollLine {
    pb::PayrollLine {
        line_number: i32::try_from(line.line_number).unwrap_or(0),
        worker: format!("projects/{}/workers/{}", line.project_id, line.line.worker_id),
        display_name: line.line.display_name.clone(),
        role: worker_role_to_wire(line.line.role),
        days: i32::try_from(line.line.days).unwrap_or(0),
        pieces: line.line.pieces,
        rate: money(line.line.rate_fen),
        amount: money(line.line.amount_fen),
        counts_in_share: line.counts_in_share,
        state: line_state_to_wire(line.state),
        claim: line.claim.clone(),
        status_detail: line.status_detail.clone(),
        receipt_source: line.receipt_source.map_or(0, receipt_source_to_wire),
        paid_date: line.paid_date.map(date_to_wire),
        ledger_reference: line.ledger_reference.clone(),
    }
}

pub fn payroll_to_wire(payroll: &StoredPayroll, state: d::PayrollState, lines: &[StoredLine]) -> pb::Payroll {
    pb::Payroll {
        name: payroll.name(),
        month: Some(month_to_wire(payroll.month)),
        state: payroll_state_to_wire(state),
        line_count: i32::try_from(payroll.line_count).unwrap_or(i32::MAX),
        total: money(payroll.total_fen),
        share_total: money(payroll.share_total_fen),
        paid_total: money(payroll.paid_total_fen),
        due_date: Some(date_to_wire(payroll.due_date)),
        notice_period: payroll.notice.map(|(first, last)| common::Period {
            first_day: Some(date_to_wire(first)),
            last_day: Some(date_to_wire(last)),
        }),
        objection_contact: payroll.objection_contact.clone(),
        open_objections: i32::try_from(payroll.open_objections).unwrap_or(i32::MAX),
        prepare_subject: payroll.prepare_subject.clone(),
        approve_subject: payroll.approve_subject.clone().unwrap_or_default(),
        approve_time: payroll.approved.map(timestamp_to_wire),
        lines: lines.iter().map(line_to_wire).collect(),
        etag: payroll.etag(),
        prepare_time: Some(timestamp_to_wire(payroll.prepared)),
    }
}

pub fn view_to_wire(view: &PayrollView) -> pb::Payroll {
    payroll_to_wire(&view.payroll, view.state, &view.lines)
}

/// The notice as posted: masked names, days or pieces and amounts, nothing else.
pub fn notice_to_wire(view: &PayrollView) -> pb::PayrollNotice {
    let payroll = &view.payroll;
    pb::PayrollNotice {
        name: format!("{}/notice", payroll.name()),
        project_display_name: view.project.data.display_name.clone(),
        project_number: view.project.data.project_number.clone(),
        month: Some(month_to_wire(payroll.month)),
        notice_period: payroll.notice.map(|(first, last)| common::Period {
            first_day: Some(date_to_wire(first)),
            last_day: Some(date_to_wire(last)),
        }),
        objection_contact: payroll.objection_contact.clone(),
        lines: view
            .lines
            .iter()
            .map(|line| pb::PayrollNoticeLine {
                line_number: i32::try_from(line.line_number).unwrap_or(0),
                display_name: line.line.display_name.clone(),
                days: i32::try_from(line.line.days).unwrap_or(0),
                pieces: line.line.pieces,
                amount: money(line.line.amount_fen),
            })
            .collect(),
        total: money(payroll.total_fen),
    }
}

pub fn objection_to_wire(objection: &StoredObjection) -> pb::Objection {
    pb::Objection {
        name: objection.name(),
        line_number: i32::try_from(objection.line_number).unwrap_or(0),
        content: objection.content.clone(),
        channel: objection.channel.clone(),
        received_date: Some(date_to_wire(objection.received)),
        state: objection_state_to_wire(objection.state),
        resolution: objection.resolution.clone(),
        raise_subject: objection.raise_subject.clone(),
        resolve_subject: objection.resolve_subject.clone(),
    }
}

pub fn arrear_to_wire(arrear: &Arrear) -> pb::Arrear {
    pb::Arrear {
        payroll: crate::store::payroll_name(&arrear.line.project_id, arrear.line.month),
        project_display_name: arrear.project_name.clone(),
        region: Some(region(&arrear.region)),
        line: Some(line_to_wire(&arrear.line)),
        due_date: Some(date_to_wire(arrear.due_date)),
        days_overdue: i32::try_from(arrear.days_overdue).unwrap_or(i32::MAX),
    }
}

pub fn stats_to_wire(stats: &ProjectStats) -> pb::GetProjectStatsResponse {
    let n = |v: i64| i32::try_from(v).unwrap_or(i32::MAX);
    let totals = &stats.totals;
    let central: i64 = totals
        .funds
        .iter()
        .filter(|(source, _)| *source == d::FundSource::Central)
        .map(|(_, amount)| amount)
        .sum();
    pb::GetProjectStatsResponse {
        region_prefix: stats.region_prefix.clone(),
        year: stats.year,
        projects: n(totals.projects),
        funds: totals
            .funds
            .iter()
            .map(|(source, amount)| pb::FundsBySource {
                fund_source: fund_source_to_wire(*source),
                amount: money(*amount),
            })
            .collect(),
        remuneration_paid: money(totals.remuneration_paid),
        share_paid: money(totals.share_paid),
        share_bp: d::share_bp(totals.share_paid, central),
        workers: n(totals.workers),
        target_persons: n(totals.target_persons),
        relocated: n(totals.relocated),
        project_list: stats
            .rows
            .iter()
            .map(|row| {
                let data = &row.project.data;
                pb::ProjectListRow {
                    project: row.project.name(),
                    project_number: data.project_number.clone(),
                    display_name: data.display_name.clone(),
                    summary: data.summary.clone(),
                    region: Some(region(&data.region)),
                    people_employed: n(row.people),
                    target_persons: n(row.target_persons),
                    in_key_assistance_county: data.key_assistance_county,
                    at_relocation_site: data.relocation_site,
                    in_flood_plain_resettlement: data.flood_plain,
                    contact_name: data.contact_name.clone(),
                    contact_phone: data.contact_phone.clone(),
                    remarks: data.remarks.clone(),
                    remuneration_paid: money(row.paid_fen),
                }
            })
            .collect(),
        as_of: Some(date_to_wire(stats.as_of)),
    }
}
