//! Wire messages to domain values and back. Each parse names the field it failed on; each
//! answer carries masked names only.

use bangfu_platform::error::{ErrorReason, Problem};
use bangfu_platform::parameters::parse_date_text;
use bangfu_platform::regions::DivisionTable;
use bangfu_platform::wire::{date_to_wire, timestamp_to_wire};
pub use bangfu_platform::wire::{
    id_of, optional, optional_text, region_prefix, region_to_wire as region, text, within,
};
use bangfu_platform::{enum_mapping, to_wire};
use bangfu_proto::common::v1 as common;
use bangfu_proto::welfare_post::v1 as pb;

use crate::app::{NoticeView, PostStats, Signal, SignalKind};
use crate::domain::{self as d};
use crate::store::{
    MonthLine, NewPost, StoredAnnouncement, StoredApplication, StoredAssignment, StoredCadre, StoredEvaluation,
    StoredExitProposal, StoredObjection, StoredPost,
};

enum_mapping!(
    post_type,
    post_type_to_wire,
    d::PostType,
    pb::PostType,
    "POST_TYPE_",
    "岗位类型"
);
enum_mapping!(
    post_class,
    post_class_to_wire,
    d::PostClass,
    pb::PostClass,
    "POST_CLASS_",
    "岗位类别"
);
enum_mapping!(
    funding_source,
    funding_source_to_wire,
    d::FundingSource,
    pb::FundingSource,
    "FUNDING_SOURCE_",
    "资金来源"
);
enum_mapping!(
    work_time,
    work_time_to_wire,
    d::WorkTime,
    pb::WorkTime,
    "WORK_TIME_",
    "全职或兼职"
);
enum_mapping!(
    post_state,
    post_state_to_wire,
    d::PostState,
    pb::PostState,
    "POST_STATE_",
    "岗位状态"
);
enum_mapping!(
    application_state,
    application_state_to_wire,
    d::ApplicationState,
    pb::ApplicationState,
    "APPLICATION_STATE_",
    "报名状态"
);
enum_mapping!(
    assignment_state,
    assignment_state_to_wire,
    d::AssignmentState,
    pb::AssignmentState,
    "ASSIGNMENT_STATE_",
    "聘用状态"
);
enum_mapping!(
    exit_reason,
    exit_reason_to_wire,
    d::ExitReason,
    pb::ExitReason,
    "EXIT_REASON_",
    "退岗原因"
);
to_wire!(
    ineligibility_to_wire,
    d::Ineligibility,
    pb::IneligibilityReason,
    "INELIGIBILITY_REASON_"
);
to_wire!(
    month_outcome_to_wire,
    d::MonthOutcome,
    pb::MonthOutcome,
    "MONTH_OUTCOME_"
);
to_wire!(
    objection_state_to_wire,
    d::ObjectionState,
    pb::ObjectionState,
    "OBJECTION_STATE_"
);

/// A village code of the division table (12 digits).
pub fn village(field: &str, value: Option<&common::RegionCode>) -> Result<String, Problem> {
    let code = value.map(|r| r.code.trim()).unwrap_or_default();
    if code.is_empty() {
        return Err(Problem::required(field, "村（社区）代码"));
    }
    if !DivisionTable::embedded().is_village(code) {
        return Err(Problem::invalid_field(
            ErrorReason::RegionUnknown,
            field,
            format!("{code} is not a village-level division code"),
            "村（社区）代码不存在，请填写12位村级行政区划代码",
        ));
    }
    Ok(code.to_string())
}

pub fn new_post(post: &pb::Post) -> Result<NewPost, Problem> {
    let standard = post.monthly_standard.as_ref().map(|m| m.fen);
    if let Some(fen) = standard {
        within("post.monthly_standard", fen, 0, 10_000_000, "岗位月补贴标准（分）")?;
    }
    Ok(NewPost {
        village: village("post.village", post.village.as_ref())?,
        title: text("post.title", &post.title, 60, "岗位名称")?,
        post_type: post_type("post.post_type", post.post_type)?,
        post_class: post_class("post.post_class", post.post_class)?,
        funding_source: funding_source("post.funding_source", post.funding_source)?,
        subsidy_policy: text("post.subsidy_policy", &post.subsidy_policy, 64, "补贴政策代码")?,
        monthly_standard: standard,
        hours_per_month: within(
            "post.hours_per_month",
            i64::from(post.hours_per_month),
            1,
            300,
            "每月工作时长",
        )?,
        days_per_month: within(
            "post.days_per_month",
            i64::from(post.days_per_month),
            1,
            31,
            "每月在岗天数",
        )?,
        work_time: work_time("post.work_time", post.work_time)?,
        places: within("post.places", i64::from(post.places), 1, 100, "岗位数")?,
        village_only: post.village_residents_only,
    })
}

pub fn post_to_wire(post: &StoredPost, village_need: i64) -> pb::Post {
    pb::Post {
        name: post.name(),
        village: Some(region(&post.post.village)),
        title: post.post.title.clone(),
        post_type: post_type_to_wire(post.post.post_type),
        post_class: post_class_to_wire(post.post.post_class),
        funding_source: funding_source_to_wire(post.post.funding_source),
        subsidy_policy: post.post.subsidy_policy.clone(),
        monthly_standard: post.post.monthly_standard.map(|fen| common::Money { fen }),
        hours_per_month: i32::try_from(post.post.hours_per_month).unwrap_or(0),
        days_per_month: i32::try_from(post.post.days_per_month).unwrap_or(0),
        work_time: work_time_to_wire(post.post.work_time),
        places: i32::try_from(post.post.places).unwrap_or(0),
        places_taken: i32::try_from(post.places_taken).unwrap_or(0),
        village_need: i32::try_from(village_need).unwrap_or(0),
        state: post_state_to_wire(post.state),
        etag: post.etag(),
        create_time: Some(timestamp_to_wire(post.created)),
        update_time: Some(timestamp_to_wire(post.updated)),
        village_residents_only: post.post.village_only,
    }
}

pub fn announcement_to_wire(announcement: &StoredAnnouncement, today: time::Date) -> pb::Announcement {
    let a = &announcement.announcement;
    pb::Announcement {
        name: announcement.name(),
        post: format!("posts/{}", a.post_id),
        duties: a.duties.clone(),
        requirements: a.requirements.clone(),
        pay: a.pay.clone(),
        hours: a.hours.clone(),
        place: a.place.clone(),
        application_period: Some(common::Period {
            first_day: Some(date_to_wire(a.first_day)),
            last_day: Some(date_to_wire(a.last_day)),
        }),
        state: if today > a.last_day {
            pb::AnnouncementState::Ended as i32
        } else {
            pb::AnnouncementState::Published as i32
        },
        application_count: i32::try_from(announcement.application_count).unwrap_or(0),
        create_time: Some(timestamp_to_wire(announcement.created)),
    }
}

pub fn eligibility_to_wire(checked: &crate::store::Checked, eligible: bool) -> pb::Eligibility {
    pb::Eligibility {
        eligible,
        reasons: checked
            .findings
            .iter()
            .map(|f| pb::IneligibilityDetail {
                reason: f.reason().map(ineligibility_to_wire).unwrap_or(0),
                message: f.message.clone(),
                resource: f.resource.clone(),
            })
            .collect(),
        hire_date: parse_date_text(&checked.hire_date).map(date_to_wire),
        labor_capacity: common::LaborCapacity::from_str_name(&format!("LABOR_CAPACITY_{}", checked.labor_capacity))
            .map(|c| c as i32)
            .unwrap_or(0),
        check_time: bangfu_platform::db::from_micros(checked.checked_us).map(timestamp_to_wire),
    }
}

pub fn application_to_wire(application: &StoredApplication) -> pb::Application {
    pb::Application {
        name: application.name(),
        announcement: format!("announcements/{}", application.announcement_id),
        person: format!("persons/{}", application.person_id),
        display_name: application.display_name.clone(),
        state: application_state_to_wire(application.state),
        rank: 0,
        eligibility: application
            .eligibility
            .as_ref()
            .map(|c| eligibility_to_wire(c, c.findings.is_empty())),
        create_time: Some(timestamp_to_wire(application.created)),
        declared_fit: application.declared_fit,
    }
}

pub fn assignment_to_wire(assignment: &StoredAssignment) -> pb::Assignment {
    let a = &assignment.new;
    pb::Assignment {
        name: assignment.name(),
        post: format!("posts/{}", a.post_id),
        person: format!("persons/{}", a.person_id),
        display_name: a.display_name.clone(),
        application: a
            .application_id
            .as_ref()
            .map(|id| format!("applications/{id}"))
            .unwrap_or_default(),
        hire_notice: a
            .notice_id
            .as_ref()
            .map(|id| format!("hireNotices/{id}"))
            .unwrap_or_default(),
        state: assignment_state_to_wire(assignment.state),
        contract_term: Some(common::Period {
            first_day: Some(date_to_wire(a.start)),
            last_day: Some(date_to_wire(a.end)),
        }),
        insurance: Some(pb::AccidentInsurance {
            insurer: a.insurer.clone(),
            policy_number: a.insurance_number.clone(),
            coverage: Some(common::Period {
                first_day: Some(date_to_wire(a.insurance_first)),
                last_day: Some(date_to_wire(a.insurance_last)),
            }),
        }),
        first_hire_date: Some(date_to_wire(a.first_hire_date)),
        renews: a
            .renews
            .as_ref()
            .map(|id| format!("assignments/{id}"))
            .unwrap_or_default(),
        last_day: Some(date_to_wire(assignment.last_day)),
        exit_reason: assignment.exit_reason.map(exit_reason_to_wire).unwrap_or(0),
        exit_note: assignment.exit_note.clone(),
        employment_recorded: assignment.employment_recorded,
        etag: assignment.etag(),
        create_time: Some(timestamp_to_wire(assignment.created)),
        update_time: Some(timestamp_to_wire(assignment.updated)),
    }
}

pub fn notice_to_wire(view: &NoticeView, today: time::Date) -> pb::HireNotice {
    let notice = &view.notice;
    pb::HireNotice {
        name: notice.name(),
        announcement: format!("announcements/{}", notice.announcement_id),
        notice_period: Some(common::Period {
            first_day: Some(date_to_wire(notice.first_day)),
            last_day: Some(date_to_wire(notice.last_day)),
        }),
        state: if notice.confirmed {
            pb::HireNoticeState::Confirmed as i32
        } else if today > notice.last_day {
            pb::HireNoticeState::Ended as i32
        } else {
            pb::HireNoticeState::Running as i32
        },
        // The notice as posted: masked names, the post and the village; nothing else.
        lines: view
            .assignments
            .iter()
            .map(|a| pb::HireNoticeLine {
                assignment: a.name(),
                display_name: a.new.display_name.clone(),
                post_title: view.post.post.title.clone(),
                village: Some(region(&a.new.village)),
            })
            .collect(),
        objection_count: i32::try_from(notice.objections).unwrap_or(0),
        open_objection_count: i32::try_from(notice.open_objections).unwrap_or(0),
        create_time: Some(timestamp_to_wire(notice.created)),
    }
}

pub fn objection_to_wire(objection: &StoredObjection) -> pb::Objection {
    pb::Objection {
        name: objection.name(),
        hire_notice: format!("hireNotices/{}", objection.notice_id),
        assignment: format!("assignments/{}", objection.assignment_id),
        content: objection.content.clone(),
        received_from: objection.received_from.clone(),
        state: objection_state_to_wire(objection.state),
        resolution: objection.resolution.clone(),
        resolved_by: objection.resolve_subject.clone().unwrap_or_default(),
        create_time: Some(timestamp_to_wire(objection.created)),
    }
}

pub fn evaluation_to_wire(evaluation: &StoredEvaluation) -> pb::Evaluation {
    let (year, month) = evaluation
        .month
        .split_once('-')
        .map(|(y, m)| (y.parse().unwrap_or(0), m.parse().unwrap_or(0)))
        .unwrap_or((0, 0));
    pb::Evaluation {
        name: evaluation.name(),
        month: Some(common::YearMonth { year, month }),
        days_on_post: i32::try_from(evaluation.days_on_post).unwrap_or(0),
        hours_on_post: i32::try_from(evaluation.hours_on_post).unwrap_or(0),
        score: i32::try_from(evaluation.score).unwrap_or(0),
        passed: evaluation.passed,
        remark: evaluation.remark.clone(),
        etag: evaluation.etag(),
        update_time: Some(timestamp_to_wire(evaluation.updated)),
    }
}

pub fn month_line_to_wire(line: &MonthLine) -> pb::MonthLine {
    pb::MonthLine {
        assignment: format!("assignments/{}", line.assignment_id),
        display_name: line.display_name.clone(),
        outcome: month_outcome_to_wire(line.outcome),
        claim: line.claim.clone(),
        message: line.message.clone(),
    }
}

pub fn exit_proposal_to_wire(proposal: &StoredExitProposal) -> pb::ExitProposal {
    pb::ExitProposal {
        name: proposal.name(),
        assignment: format!("assignments/{}", proposal.assignment_id),
        display_name: proposal.display_name.clone(),
        reason: exit_reason_to_wire(proposal.reason),
        effective_date: proposal.effective_date.map(date_to_wire),
        source: proposal.source.clone(),
        state: if proposal.done {
            pb::ExitProposalState::Done as i32
        } else {
            pb::ExitProposalState::Open as i32
        },
        create_time: Some(timestamp_to_wire(proposal.created)),
    }
}

pub fn cadre_to_wire(cadre: &StoredCadre) -> pb::VillageCadre {
    pb::VillageCadre {
        name: format!("villageCadres/{}", cadre.id),
        village: Some(region(&cadre.village)),
        person: format!("persons/{}", cadre.person_id),
        office: cadre.office.clone(),
        term_start: Some(date_to_wire(cadre.term_start)),
        term_end: cadre.term_end.map(date_to_wire),
        create_time: Some(timestamp_to_wire(cadre.created)),
    }
}

pub fn signal_kind(value: i32) -> Result<Option<SignalKind>, Problem> {
    Ok(match pb::FraudSignalKind::try_from(value) {
        Ok(pb::FraudSignalKind::Unspecified) => None,
        Ok(pb::FraudSignalKind::TwoPosts) => Some(SignalKind::TwoPosts),
        Ok(pb::FraudSignalKind::CadreRelative) => Some(SignalKind::CadreRelative),
        Ok(pb::FraudSignalKind::Rotation) => Some(SignalKind::Rotation),
        Ok(pb::FraudSignalKind::OverNeed) => Some(SignalKind::OverNeed),
        Ok(pb::FraudSignalKind::UnevenPay) => Some(SignalKind::UnevenPay),
        Ok(pb::FraudSignalKind::PaidWithoutEvaluation) => Some(SignalKind::PaidWithoutEvaluation),
        Err(_) => {
            return Err(Problem::invalid_field(
                ErrorReason::FieldInvalid,
                "kind",
                format!("{value} is not a known signal kind"),
                "风险线索类型无效",
            ));
        }
    })
}

pub fn signal_to_wire(signal: &Signal) -> pb::FraudSignal {
    let kind = match signal.kind {
        SignalKind::TwoPosts => pb::FraudSignalKind::TwoPosts,
        SignalKind::CadreRelative => pb::FraudSignalKind::CadreRelative,
        SignalKind::Rotation => pb::FraudSignalKind::Rotation,
        SignalKind::OverNeed => pb::FraudSignalKind::OverNeed,
        SignalKind::UnevenPay => pb::FraudSignalKind::UnevenPay,
        SignalKind::PaidWithoutEvaluation => pb::FraudSignalKind::PaidWithoutEvaluation,
    };
    pb::FraudSignal {
        kind: kind as i32,
        region: Some(region(&signal.region)),
        message: signal.message.clone(),
        resources: signal.resources.clone(),
    }
}

pub fn stats_to_wire(prefix: &str, stats: &PostStats) -> pb::GetPostStatsResponse {
    let mut total = pb::PostCount::default();
    let mut rows = Vec::new();
    for row in &stats.rows {
        let count = pb::PostCount {
            post_type: d::PostType::parse(&row.post_type).map(post_type_to_wire).unwrap_or(0),
            funding_source: d::FundingSource::parse(&row.funding_source)
                .map(funding_source_to_wire)
                .unwrap_or(0),
            post_count: i32::try_from(row.posts).unwrap_or(0),
            holder_count: i32::try_from(row.holders).unwrap_or(0),
        };
        total.post_count += count.post_count;
        total.holder_count += count.holder_count;
        rows.push(count);
    }
    let mut counts = vec![total];
    counts.extend(rows);
    pb::GetPostStatsResponse {
        region: Some(region(prefix)),
        as_of: Some(date_to_wire(stats.as_of)),
        counts,
        persons_placed: i32::try_from(stats.persons_placed).unwrap_or(0),
        persons_on_post: i32::try_from(stats.persons_on_post).unwrap_or(0),
    }
}
