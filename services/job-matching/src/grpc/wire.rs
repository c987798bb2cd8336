//! Wire messages to domain values and back. Each parse names the field it failed on; each
//! answer carries masked names only.

use bangfu_platform::error::{ErrorReason, Problem};
use bangfu_platform::regions::DivisionTable;
use bangfu_platform::wire::{date_to_wire, timestamp_to_wire};
pub use bangfu_platform::wire::{
    etag, id_of, optional, optional_text, phone, region_prefix, region_to_wire, text, within,
};
use bangfu_platform::{enum_mapping, to_wire};
use bangfu_proto::common::v1 as common;
use bangfu_proto::jobs::v1 as pb;
use tonic::Code;

use crate::app::{CarrierView, ClaimView, ExportBatchView, JobStats, PlacementView, PostingMatch, SeekerMatch};
use crate::domain::{self as d, LaborCapacity, Priority, Reason, WorkIntention, natural_code};
use crate::store::{
    CarrierData, ClaimRecord, CourseData, EventData, ExportBatchData, FollowUpData, JobCounts, PostingData, SeekerData,
    StoredApplication, StoredCourse, StoredEnrolment, StoredEvent, StoredFollowUp, StoredPosting, StoredSeeker,
};

enum_mapping!(
    carrier_kind,
    carrier_kind_to_wire,
    d::CarrierKind,
    pb::CarrierKind,
    "CARRIER_KIND_",
    "载体类型"
);
enum_mapping!(
    posting_state,
    posting_state_to_wire,
    d::PostingState,
    pb::PostingState,
    "POSTING_STATE_",
    "岗位状态"
);
enum_mapping!(
    seeker_state,
    seeker_state_to_wire,
    d::SeekerState,
    pb::SeekerState,
    "SEEKER_STATE_",
    "求职状态"
);
enum_mapping!(
    intention,
    intention_to_wire,
    d::WorkIntention,
    pb::WorkIntention,
    "WORK_INTENTION_",
    "就业意向"
);
enum_mapping!(
    labor_capacity,
    labor_capacity_to_wire,
    d::LaborCapacity,
    common::LaborCapacity,
    "LABOR_CAPACITY_",
    "劳动能力"
);
enum_mapping!(
    application_state,
    application_state_to_wire,
    d::ApplicationState,
    pb::ApplicationState,
    "APPLICATION_STATE_",
    "申请状态"
);
enum_mapping!(
    placement_state,
    placement_state_to_wire,
    d::PlacementState,
    pb::PlacementState,
    "PLACEMENT_STATE_",
    "安置状态"
);
enum_mapping!(
    end_reason,
    end_reason_to_wire,
    d::EndReason,
    pb::PlacementEndReason,
    "PLACEMENT_END_REASON_",
    "结束原因"
);
to_wire!(factor_to_wire, d::Factor, pb::MatchFactor, "MATCH_FACTOR_");
enum_mapping!(
    travel_mode,
    travel_mode_to_wire,
    d::TravelMode,
    pb::TravelMode,
    "TRAVEL_MODE_",
    "出行方式"
);
enum_mapping!(
    export_batch_state,
    export_batch_state_to_wire,
    d::ExportBatchState,
    pb::ExportBatchState,
    "EXPORT_BATCH_STATE_",
    "批次状态"
);
enum_mapping!(
    event_kind,
    event_kind_to_wire,
    d::RecruitmentEventKind,
    pb::RecruitmentEventKind,
    "RECRUITMENT_EVENT_KIND_",
    "活动类型"
);
enum_mapping!(
    enrolment_state,
    enrolment_state_to_wire,
    d::EnrolmentState,
    pb::EnrolmentState,
    "ENROLMENT_STATE_",
    "学员状态"
);
to_wire!(
    claim_progress_to_wire,
    d::ClaimProgress,
    pb::ClaimProgressState,
    "CLAIM_PROGRESS_STATE_"
);

fn money(fen: i64) -> Option<common::Money> {
    Some(common::Money { fen })
}

/// An amount in fen above zero.
pub fn positive_money(field: &str, value: Option<&common::Money>, what_zh: &str) -> Result<i64, Problem> {
    let fen = value.ok_or_else(|| Problem::required(field, what_zh))?.fen;
    if fen <= 0 {
        return Err(Problem::invalid_field(
            ErrorReason::FieldInvalid,
            field,
            "must be above zero",
            format!("{what_zh}应大于零"),
        ));
    }
    Ok(fen)
}

/// A division code of any level the table knows, at its own level ("370402000000" → "370402").
pub fn known_region(field: &str, value: Option<&common::RegionCode>, what_zh: &str) -> Result<String, Problem> {
    let code = value.map(|r| r.code.trim()).unwrap_or_default();
    if code.is_empty() {
        return Err(Problem::required(field, what_zh));
    }
    if !code.bytes().all(|b| b.is_ascii_digit()) || DivisionTable::embedded().full_name(code).is_none() {
        return Err(Problem::invalid_field(
            ErrorReason::RegionUnknown,
            field,
            format!("{code} is not a division of the table"),
            format!("{what_zh}不是有效的行政区划代码"),
        ));
    }
    Ok(natural_code(code).to_string())
}

/// A unified social credit code, upper-cased, with its check character verified.
pub fn credit_code(field: &str, value: &str) -> Result<String, Problem> {
    let code = value.trim().to_ascii_uppercase();
    if code.is_empty() {
        return Err(Problem::required(field, "统一社会信用代码"));
    }
    d::check_credit_code(&code).map_err(|error| {
        Problem::invalid_field(
            ErrorReason::CreditCodeInvalid,
            field,
            error.to_string(),
            "统一社会信用代码校验位不正确或含有无效字符，请核对营业执照",
        )
    })?;
    Ok(code)
}

/// Skills: trimmed, distinct, each 1 to 30 characters with none of the characters the store's
/// lists and patterns use, at most 20.
pub fn skills(field: &str, values: &[String]) -> Result<Vec<String>, Problem> {
    if values.len() > 20 {
        return Err(Problem::invalid_field(
            ErrorReason::FieldInvalid,
            field,
            "at most 20 skills",
            "技能最多20项",
        ));
    }
    let mut skills: Vec<String> = Vec::with_capacity(values.len());
    for (i, value) in values.iter().enumerate() {
        let item = format!("{field}[{i}]");
        let skill = text(&item, value, 30, "技能")?;
        if skill.contains(['|', '%', '_', ',', '\\']) {
            return Err(Problem::invalid_field(
                ErrorReason::FieldInvalid,
                item,
                "may not contain | % _ , or \\",
                "技能名称不能包含 | % _ , \\ 等符号",
            ));
        }
        let skill = d::skill_key(&skill);
        if !skills.contains(&skill) {
            skills.push(skill);
        }
    }
    Ok(skills)
}

/// An occupation code of the national classification: "6-05" up to "6-05-01-01".
pub fn occupation(field: &str, value: Option<&pb::Occupation>) -> Result<(String, String), Problem> {
    let value = value.ok_or_else(|| Problem::required(field, "职业"))?;
    let code = value.code.trim();
    let parts: Vec<&str> = code.split('-').collect();
    let shaped = (2..=4).contains(&parts.len())
        && parts[0].len() == 1
        && parts[1..].iter().all(|p| p.len() == 2)
        && parts.iter().all(|p| p.bytes().all(|b| b.is_ascii_digit()));
    if !shaped {
        return Err(Problem::invalid_field(
            ErrorReason::FieldInvalid,
            format!("{field}.code"),
            "must be a code of the national occupational classification, e.g. 6-05-01-01",
            "职业编码应为国家职业分类大典编码，如 6-05-01-01",
        ));
    }
    Ok((
        code.to_string(),
        text(&format!("{field}.display_name"), &value.display_name, 60, "职业名称")?,
    ))
}

pub fn new_carrier(carrier: &pb::Carrier) -> Result<CarrierData, Problem> {
    Ok(CarrierData {
        display_name: text("carrier.display_name", &carrier.display_name, 100, "载体名称")?,
        kind: carrier_kind("carrier.kind", carrier.kind)?,
        credit_code: credit_code("carrier.credit_code", &carrier.credit_code)?,
        region: known_region("carrier.region", carrier.region.as_ref(), "所在地")?,
        contact_name: text("carrier.contact_name", &carrier.contact_name, 40, "联系人")?,
        contact_phone: phone("carrier.contact_phone", &carrier.contact_phone)?,
        relocation_site: carrier.at_relocation_site,
    })
}

pub fn carrier_to_wire(view: &CarrierView) -> pb::Carrier {
    let carrier = &view.carrier;
    pb::Carrier {
        name: carrier.name(),
        display_name: carrier.data.display_name.clone(),
        kind: carrier_kind_to_wire(carrier.data.kind),
        credit_code: carrier.data.credit_code.clone(),
        region: Some(region_to_wire(&carrier.data.region)),
        contact_name: carrier.data.contact_name.clone(),
        contact_phone: carrier.data.contact_phone.clone(),
        at_relocation_site: carrier.data.relocation_site,
        certification: carrier.certification.as_ref().map(|c| pb::CarrierCertification {
            certifying_body: c.body.clone(),
            document: c.document.clone(),
            certify_date: Some(date_to_wire(c.date)),
            valid_until: c.valid_until.map(date_to_wire),
            recorded_by: c.subject.clone(),
        }),
        certified: view.certified,
        absorbed_target_persons: i32::try_from(view.absorbed_target_persons).unwrap_or(i32::MAX),
        active_placements: i32::try_from(view.active_placements).unwrap_or(i32::MAX),
        etag: carrier.etag(),
        create_time: Some(timestamp_to_wire(carrier.created)),
        update_time: Some(timestamp_to_wire(carrier.updated)),
    }
}

/// The labor capacities a posting takes; full labor only when none is named.
pub fn accepted(field: &str, values: &[i32]) -> Result<Vec<LaborCapacity>, Problem> {
    let mut accepted = Vec::new();
    for (i, value) in values.iter().enumerate() {
        let capacity = labor_capacity(&format!("{field}[{i}]"), *value)?;
        if capacity == LaborCapacity::None {
            return Err(Problem::invalid_field(
                ErrorReason::FieldInvalid,
                format!("{field}[{i}]"),
                "a job cannot take a person with no labor capacity",
                "岗位不能招用无劳动能力人员",
            ));
        }
        if !accepted.contains(&capacity) {
            accepted.push(capacity);
        }
    }
    Ok(d::accepted_or_default(&accepted))
}

pub fn new_posting(posting: &pb::Posting) -> Result<PostingData, Problem> {
    let carrier_id = id_of("posting.carrier", &posting.carrier, "carriers")?;
    let (occupation_code, occupation_name) = occupation("posting.occupation", posting.occupation.as_ref())?;
    let min_age = if posting.min_age == 0 {
        16
    } else {
        i64::from(posting.min_age)
    };
    let max_age = if posting.max_age == 0 {
        65
    } else {
        i64::from(posting.max_age)
    };
    Ok(PostingData {
        carrier_id,
        title: text("posting.title", &posting.title, 60, "岗位名称")?,
        occupation_code,
        occupation_name,
        work_region: known_region("posting.work_region", posting.work_region.as_ref(), "工作地点")?,
        wage_min_fen: positive_money("posting.wage_min", posting.wage_min.as_ref(), "最低月薪")?,
        wage_max_fen: positive_money("posting.wage_max", posting.wage_max.as_ref(), "最高月薪")?,
        headcount: within("posting.headcount", i64::from(posting.headcount), 1, 10_000, "招聘人数")?,
        contract_months: within(
            "posting.contract_months",
            i64::from(posting.contract_months),
            1,
            120,
            "合同期限（月）",
        )?,
        weekly_hours: within(
            "posting.weekly_hours",
            i64::from(posting.weekly_hours),
            1,
            84,
            "每周工时",
        )?,
        accepted: accepted("posting.accepted_labor_capacities", &posting.accepted_labor_capacities)?,
        min_age: within("posting.min_age", min_age, 16, 75, "年龄下限")?,
        max_age: within("posting.max_age", max_age, 16, 75, "年龄上限")?,
        skills: skills("posting.skills", &posting.skills)?,
        accommodation: posting.accommodation,
        meals: posting.meals,
        valid_until: bangfu_platform::wire::date("posting.valid_until", posting.valid_until.as_ref())?,
        shared: posting.shared_across_regions,
    })
}

pub fn posting_to_wire(posting: &StoredPosting, today: time::Date) -> pb::Posting {
    let data = &posting.data;
    pb::Posting {
        name: posting.name(),
        carrier: format!("carriers/{}", data.carrier_id),
        title: data.title.clone(),
        occupation: Some(pb::Occupation {
            code: data.occupation_code.clone(),
            display_name: data.occupation_name.clone(),
        }),
        work_region: Some(region_to_wire(&data.work_region)),
        wage_min: money(data.wage_min_fen),
        wage_max: money(data.wage_max_fen),
        headcount: i32::try_from(data.headcount).unwrap_or(i32::MAX),
        contract_months: i32::try_from(data.contract_months).unwrap_or(0),
        weekly_hours: i32::try_from(data.weekly_hours).unwrap_or(0),
        accepted_labor_capacities: data.accepted.iter().map(|c| labor_capacity_to_wire(*c)).collect(),
        min_age: i32::try_from(data.min_age).unwrap_or(0),
        max_age: i32::try_from(data.max_age).unwrap_or(0),
        skills: data.skills.clone(),
        accommodation: data.accommodation,
        meals: data.meals,
        valid_until: Some(date_to_wire(data.valid_until)),
        shared_across_regions: data.shared,
        open_date: Some(date_to_wire(posting.open_date)),
        state: posting_state_to_wire(posting.state_on(today)),
        placed: i32::try_from(posting.placed).unwrap_or(0),
        close_reason: posting.close_reason.clone(),
        etag: posting.etag(),
        create_time: Some(timestamp_to_wire(posting.created)),
        update_time: Some(timestamp_to_wire(posting.updated)),
    }
}

/// Intentions: at least one, each once.
pub fn intentions(field: &str, values: &[i32]) -> Result<Vec<WorkIntention>, Problem> {
    if values.is_empty() {
        return Err(Problem::required(field, "就业意向"));
    }
    let mut intentions = Vec::new();
    for (i, value) in values.iter().enumerate() {
        let item = intention(&format!("{field}[{i}]"), *value)?;
        if !intentions.contains(&item) {
            intentions.push(item);
        }
    }
    Ok(intentions)
}

/// Named destination regions: division-code prefixes, at most 10.
pub fn destinations(field: &str, values: &[String]) -> Result<Vec<String>, Problem> {
    if values.len() > 10 {
        return Err(Problem::invalid_field(
            ErrorReason::FieldInvalid,
            field,
            "at most 10 destinations",
            "意向地区最多10个",
        ));
    }
    let mut destinations = Vec::new();
    for (i, value) in values.iter().enumerate() {
        let item = format!("{field}[{i}]");
        // At its own level ("370400" is the city 3704), so matching compares like with like.
        let prefix = natural_code(&region_prefix(&item, value, true)?).to_string();
        if DivisionTable::embedded().full_name(&prefix).is_none() {
            return Err(Problem::invalid_field(
                ErrorReason::RegionUnknown,
                item,
                format!("{prefix} is not a division of the table"),
                "意向地区不是有效的行政区划代码",
            ));
        }
        if !destinations.contains(&prefix) {
            destinations.push(prefix);
        }
    }
    Ok(destinations)
}

/// A cooperation route: two provinces (2 digits each), or none.
pub fn route(field: &str, value: Option<&pb::CooperationRoute>) -> Result<(String, String), Problem> {
    let Some(value) = value else {
        return Ok((String::new(), String::new()));
    };
    let province = |part: &str, code: &str| -> Result<String, Problem> {
        let code = code.trim();
        if code.len() != 2 || DivisionTable::embedded().province_name(code).is_none() {
            return Err(Problem::invalid_field(
                ErrorReason::RegionUnknown,
                format!("{field}.{part}"),
                "must be a province's 2-digit code, e.g. 50",
                "应为2位省级行政区划代码，如 50（重庆）",
            ));
        }
        Ok(code.to_string())
    };
    let origin = province("origin_province", &value.origin_province)?;
    let destination = province("destination_province", &value.destination_province)?;
    if origin == destination {
        return Err(Problem::invalid_field(
            ErrorReason::FieldInvalid,
            format!("{field}.destination_province"),
            "a cooperation route joins two provinces",
            "劳务协作线路的输出地和输入地应为不同省份",
        ));
    }
    Ok((origin, destination))
}

pub fn new_seeker(seeker: &pb::Seeker) -> Result<SeekerData, Problem> {
    Ok(SeekerData {
        person_id: id_of("seeker.person", &seeker.person, "persons")?,
        skills: skills("seeker.skills", &seeker.skills)?,
        intentions: intentions("seeker.intentions", &seeker.intentions)?,
        destinations: destinations("seeker.destination_regions", &seeker.destination_regions)?,
        expected_wage_fen: positive_money("seeker.expected_wage", seeker.expected_wage.as_ref(), "期望月薪")?,
        available_from: bangfu_platform::wire::date("seeker.available_from", seeker.available_from.as_ref())?,
        route: route("seeker.route", seeker.route.as_ref())?,
    })
}

pub fn priority_to_wire(priority: Priority) -> i32 {
    match priority {
        Priority::None => pb::TargetPriority::Unspecified as i32,
        Priority::OtherTarget => pb::TargetPriority::OtherTarget as i32,
        Priority::PovertyAlleviated => pb::TargetPriority::PovertyAlleviated as i32,
        Priority::MonitoredAtRisk => pb::TargetPriority::MonitoredAtRisk as i32,
    }
}

pub fn priority(field: &str, value: i32) -> Result<Priority, Problem> {
    Priority::from_rank(i64::from(value)).ok_or_else(|| {
        Problem::invalid_field(
            ErrorReason::FieldInvalid,
            field,
            format!("{value} is not a known value"),
            "优先级取值无效",
        )
    })
}

pub fn seeker_to_wire(seeker: &StoredSeeker) -> pb::Seeker {
    let data = &seeker.data;
    pb::Seeker {
        name: seeker.name(),
        person: format!("persons/{}", data.person_id),
        display_name: seeker.person.display_name.clone(),
        registered_region: seeker.person.registered_region.clone(),
        labor_capacity: seeker.person.labor_capacity.map_or(0, labor_capacity_to_wire),
        skills: data.skills.clone(),
        intentions: data.intentions.iter().map(|i| intention_to_wire(*i)).collect(),
        destination_regions: data.destinations.clone(),
        expected_wage: money(data.expected_wage_fen),
        available_from: Some(date_to_wire(data.available_from)),
        route: (!data.route.0.is_empty()).then(|| pb::CooperationRoute {
            origin_province: data.route.0.clone(),
            destination_province: data.route.1.clone(),
        }),
        state: seeker_state_to_wire(seeker.state),
        priority: priority_to_wire(seeker.person.priority),
        etag: seeker.etag(),
        create_time: Some(timestamp_to_wire(seeker.created)),
        update_time: Some(timestamp_to_wire(seeker.updated)),
    }
}

fn reasons_to_wire(reasons: &[Reason]) -> Vec<pb::MatchReason> {
    let bp = |value: i64| i32::try_from(value).unwrap_or(0);
    reasons
        .iter()
        .map(|r| pb::MatchReason {
            factor: factor_to_wire(r.factor),
            weight_bp: bp(r.weight_bp),
            fit_bp: bp(r.fit_bp),
            points: bp(r.points),
            explanation: r.explanation.clone(),
        })
        .collect()
}

pub fn posting_match_to_wire(found: &PostingMatch, today: time::Date) -> pb::PostingRecommendation {
    pb::PostingRecommendation {
        posting: Some(posting_to_wire(&found.posting, today)),
        score: i32::try_from(found.scored.score).unwrap_or(0),
        reasons: reasons_to_wire(&found.scored.reasons),
    }
}

pub fn seeker_match_to_wire(found: &SeekerMatch) -> pb::SeekerRecommendation {
    pb::SeekerRecommendation {
        seeker: Some(seeker_to_wire(&found.seeker)),
        score: i32::try_from(found.scored.score).unwrap_or(0),
        reasons: reasons_to_wire(&found.scored.reasons),
    }
}

pub fn application_to_wire(application: &StoredApplication) -> pb::Application {
    pb::Application {
        name: application.name(),
        posting: format!("postings/{}", application.posting_id),
        seeker: format!("seekers/{}", application.seeker_id),
        display_name: application.display_name.clone(),
        state: application_state_to_wire(application.state),
        decision_note: application.decision_note.clone(),
        decided_by: application.decided_by.clone(),
        etag: application.etag(),
        create_time: Some(timestamp_to_wire(application.created)),
        decide_time: application.decided.map(timestamp_to_wire),
    }
}

/// A month from the wire, as (year, month).
pub fn month(field: &str, value: Option<&common::YearMonth>) -> Result<(i32, u8), Problem> {
    let value = value.ok_or_else(|| Problem::required(field, "月份"))?;
    match u8::try_from(value.month) {
        Ok(month @ 1..=12) if (2000..=2100).contains(&value.year) => Ok((value.year, month)),
        _ => Err(Problem::invalid_field(
            ErrorReason::FieldInvalid,
            field,
            "is not a month",
            "月份无效",
        )),
    }
}

pub fn new_follow_up(follow_up: &pb::FollowUp) -> Result<FollowUpData, Problem> {
    let income = follow_up
        .income
        .as_ref()
        .ok_or_else(|| Problem::required("follow_up.income", "当月收入"))?
        .fen;
    if income < 0 {
        return Err(Problem::invalid_field(
            ErrorReason::FieldInvalid,
            "follow_up.income",
            "cannot be negative",
            "收入不能为负数",
        ));
    }
    Ok(FollowUpData {
        month: month("follow_up.month", follow_up.month.as_ref())?,
        still_employed: follow_up.still_employed,
        income_fen: income,
        note: optional_text("follow_up.note", &follow_up.note, 500, "回访情况")?,
    })
}

pub fn follow_up_to_wire(follow_up: &StoredFollowUp) -> pb::FollowUp {
    pb::FollowUp {
        name: follow_up.name(),
        month: Some(common::YearMonth {
            year: follow_up.data.month.0,
            month: i32::from(follow_up.data.month.1),
        }),
        still_employed: follow_up.data.still_employed,
        income: money(follow_up.data.income_fen),
        note: follow_up.data.note.clone(),
        identity_recorded: follow_up.identity_recorded,
        create_time: Some(timestamp_to_wire(follow_up.created)),
    }
}

pub fn placement_to_wire(view: &PlacementView) -> pb::Placement {
    let placement = &view.placement;
    let data = &placement.data;
    pb::Placement {
        name: placement.name(),
        posting: format!("postings/{}", data.posting_id),
        seeker: format!("seekers/{}", data.seeker_id),
        application: if data.application_id.is_empty() {
            String::new()
        } else {
            format!("applications/{}", data.application_id)
        },
        person: format!("persons/{}", data.person_id),
        display_name: data.display_name.clone(),
        carrier: format!("carriers/{}", data.carrier_id),
        work_region: data.work_region.clone(),
        start_date: Some(date_to_wire(data.start)),
        contract_months: i32::try_from(data.contract_months).unwrap_or(0),
        monthly_wage: money(data.monthly_wage_fen),
        social_insurance: data.social_insurance,
        employment_status: match data.place {
            d::EmploymentPlace::InCounty => common::EmploymentStatus::EmployedInCounty as i32,
            d::EmploymentPlace::OutOfCounty => common::EmploymentStatus::EmployedOutOfCounty as i32,
            d::EmploymentPlace::OutOfProvince => common::EmploymentStatus::EmployedOutOfProvince as i32,
        },
        state: placement_state_to_wire(placement.state),
        end_date: placement.end_date.map(date_to_wire),
        end_reason: placement.end_reason.map_or(0, end_reason_to_wire),
        identity_recorded: placement.identity_recorded,
        last_follow_up: view.last_follow_up.as_ref().map(follow_up_to_wire),
        etag: placement.etag(),
        create_time: Some(timestamp_to_wire(placement.created)),
    }
}

/// An update mask's paths; empty is refused.
pub fn mask(mask: Option<&prost_types::FieldMask>) -> Result<Vec<String>, Problem> {
    mask.map(|m| m.paths.clone())
        .filter(|p| !p.is_empty())
        .ok_or_else(|| Problem::required("update_mask", "修改字段"))
}

pub fn unknown_path(path: &str) -> Problem {
    Problem::new(
        Code::InvalidArgument,
        ErrorReason::FieldInvalid,
        format!("update_mask: {path} cannot be changed"),
        format!("字段 {path} 不能修改"),
    )
    .with_violation("update_mask", format!("{path} cannot be changed"))
}

/// A policy code of subsidy payment's catalog, or empty.
fn policy_code(field: &str, value: &str) -> Result<String, Problem> {
    let code = value.trim();
    if !code.is_empty()
        && (code.len() > 64
            || !code
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-'))
    {
        return Err(Problem::invalid_field(
            ErrorReason::FieldInvalid,
            field,
            "must be a policy code: lower-case letters, digits and hyphens",
            "补贴政策编码格式不正确",
        ));
    }
    Ok(code.to_string())
}

pub fn new_export_batch(batch: &pb::ExportBatch) -> Result<ExportBatchData, Problem> {
    Ok(ExportBatchData {
        display_name: text("export_batch.display_name", &batch.display_name, 100, "批次名称")?,
        agency_id: id_of("export_batch.agency", &batch.agency, "carriers")?,
        mode: travel_mode("export_batch.mode", batch.mode)?,
        origin: known_region("export_batch.origin", batch.origin.as_ref(), "出发地")?,
        destination: known_region("export_batch.destination", batch.destination.as_ref(), "目的地")?,
        departure: bangfu_platform::wire::date("export_batch.departure_date", batch.departure_date.as_ref())?,
        transport_policy: policy_code("export_batch.transport_policy", &batch.transport_policy)?,
        agency_policy: policy_code("export_batch.agency_policy", &batch.agency_policy)?,
    })
}

/// Travellers to add: 1 to 500, each a placement and, where given, a fare of zero or more.
pub fn travellers(values: &[pb::Traveller]) -> Result<Vec<(String, Option<i64>)>, Problem> {
    if values.is_empty() || values.len() > 500 {
        return Err(Problem::invalid_field(
            ErrorReason::FieldInvalid,
            "travellers",
            "give 1 to 500 travellers",
            "每次添加1至500名输出人员",
        ));
    }
    values
        .iter()
        .enumerate()
        .map(|(i, t)| {
            let placement = id_of(&format!("travellers[{i}].placement"), &t.placement, "placements")?;
            let fare = match &t.fare {
                Some(money) if money.fen < 0 => {
                    return Err(Problem::invalid_field(
                        ErrorReason::FieldInvalid,
                        format!("travellers[{i}].fare"),
                        "cannot be negative",
                        "交通费用不能为负数",
                    ));
                }
                Some(money) => Some(money.fen),
                None => None,
            };
            Ok((placement, fare))
        })
        .collect()
}

fn claim_progress(record: &ClaimRecord) -> pb::ClaimProgress {
    pb::ClaimProgress {
        state: claim_progress_to_wire(record.state),
        claim: record.claim.clone(),
        amount: money(record.amount_fen),
        detail: record.detail.clone(),
    }
}

pub fn export_batch_to_wire(view: &ExportBatchView) -> pb::ExportBatch {
    let batch = &view.batch;
    pb::ExportBatch {
        name: batch.name(),
        display_name: batch.data.display_name.clone(),
        agency: format!("carriers/{}", batch.data.agency_id),
        mode: travel_mode_to_wire(batch.data.mode),
        origin: Some(region_to_wire(&batch.data.origin)),
        destination: Some(region_to_wire(&batch.data.destination)),
        departure_date: Some(date_to_wire(batch.data.departure)),
        transport_policy: batch.data.transport_policy.clone(),
        agency_policy: batch.data.agency_policy.clone(),
        travellers: view
            .travellers
            .iter()
            .map(|t| pb::Traveller {
                placement: t.traveller.placement.name(),
                display_name: t.traveller.placement.data.display_name.clone(),
                fare: money(t.traveller.fare_fen),
                transport_claim: Some(claim_progress(&t.transport)),
                agency_claim: Some(claim_progress(&t.agency)),
            })
            .collect(),
        state: export_batch_state_to_wire(batch.state),
        departed_date: batch.departed.map(date_to_wire),
        etag: batch.etag(),
        create_time: Some(timestamp_to_wire(batch.created)),
    }
}

pub fn new_course(course: &pb::TrainingCourse) -> Result<CourseData, Problem> {
    let (occupation_code, occupation_name) = occupation("training_course.occupation", course.occupation.as_ref())?;
    let schedule = course
        .schedule
        .as_ref()
        .ok_or_else(|| Problem::required("training_course.schedule", "培训起止日期"))?;
    let start = bangfu_platform::wire::date("training_course.schedule.first_day", schedule.first_day.as_ref())?;
    let end = bangfu_platform::wire::date("training_course.schedule.last_day", schedule.last_day.as_ref())?;
    if end < start {
        return Err(Problem::invalid_field(
            ErrorReason::FieldInvalid,
            "training_course.schedule.last_day",
            "the course cannot end before it starts",
            "结束日期不能早于开始日期",
        ));
    }
    let training_subsidy_policy = course.training_subsidy_policy.trim().to_string();
    // The training subsidy is paid to the provider, so it needs the provider's registration.
    let provider_credit_code = if training_subsidy_policy.is_empty() && course.provider_credit_code.trim().is_empty() {
        String::new()
    } else {
        credit_code("training_course.provider_credit_code", &course.provider_credit_code)?
    };
    let training_subsidy_fen = if training_subsidy_policy.is_empty() {
        0
    } else {
        positive_money(
            "training_course.training_subsidy_standard",
            course.training_subsidy_standard.as_ref(),
            "每人培训补贴标准",
        )?
    };
    Ok(CourseData {
        display_name: text("training_course.display_name", &course.display_name, 100, "培训班名称")?,
        provider: text("training_course.provider", &course.provider, 100, "培训机构")?,
        occupation_code,
        occupation_name,
        region: known_region("training_course.region", course.region.as_ref(), "培训地点")?,
        start,
        end,
        days: within("training_course.days", i64::from(course.days), 1, 366, "培训天数")?,
        place: text("training_course.place", &course.place, 100, "培训场所")?,
        provider_credit_code,
        training_subsidy_policy,
        training_subsidy_fen,
        living_allowance_policy: course.living_allowance_policy.trim().to_string(),
    })
}

pub fn course_to_wire(course: &StoredCourse) -> pb::TrainingCourse {
    pb::TrainingCourse {
        name: course.name(),
        display_name: course.data.display_name.clone(),
        provider: course.data.provider.clone(),
        occupation: Some(pb::Occupation {
            code: course.data.occupation_code.clone(),
            display_name: course.data.occupation_name.clone(),
        }),
        region: Some(region_to_wire(&course.data.region)),
        schedule: Some(common::Period {
            first_day: Some(date_to_wire(course.data.start)),
            last_day: Some(date_to_wire(course.data.end)),
        }),
        days: i32::try_from(course.data.days).unwrap_or(0),
        place: course.data.place.clone(),
        provider_credit_code: course.data.provider_credit_code.clone(),
        training_subsidy_policy: course.data.training_subsidy_policy.clone(),
        training_subsidy_standard: (course.data.training_subsidy_fen > 0)
            .then_some(course.data.training_subsidy_fen)
            .and_then(money),
        living_allowance_policy: course.data.living_allowance_policy.clone(),
        enrolled: i32::try_from(course.enrolled).unwrap_or(i32::MAX),
        completed: i32::try_from(course.completed).unwrap_or(i32::MAX),
        create_time: Some(timestamp_to_wire(course.created)),
    }
}

/// "trainingCourses/{course}/enrolments/{enrolment}" → (course, enrolment).
pub fn enrolment_name(field: &str, name: &str) -> Result<(String, String), Problem> {
    match name.trim().split('/').collect::<Vec<_>>().as_slice() {
        ["trainingCourses", course, "enrolments", enrolment] => Ok((
            id_of(field, &format!("trainingCourses/{course}"), "trainingCourses")?,
            id_of(field, &format!("enrolments/{enrolment}"), "enrolments")?,
        )),
        [] | [""] => Err(Problem::required(field, "学员名称")),
        _ => Err(Problem::invalid_field(
            ErrorReason::FieldInvalid,
            field,
            "must be \"trainingCourses/{course}/enrolments/{enrolment}\"",
            "名称应为 trainingCourses/培训班/enrolments/学员",
        )),
    }
}

pub fn enrolment_to_wire(enrolment: &StoredEnrolment) -> pb::TraineeEnrolment {
    pb::TraineeEnrolment {
        name: enrolment.name(),
        person: format!("persons/{}", enrolment.person_id),
        display_name: enrolment.display_name.clone(),
        target_person: enrolment.target_person,
        state: enrolment_state_to_wire(enrolment.state),
        certificate: enrolment.certificate.clone(),
        identity_recorded: enrolment.identity_recorded,
        create_time: Some(timestamp_to_wire(enrolment.created)),
    }
}

pub fn new_event(event: &pb::RecruitmentEvent) -> Result<EventData, Problem> {
    let ids = |field: &str, names: &[String], collection: &str| -> Result<Vec<String>, Problem> {
        names
            .iter()
            .enumerate()
            .map(|(i, name)| id_of(&format!("{field}[{i}]"), name, collection))
            .collect()
    };
    Ok(EventData {
        display_name: text("recruitment_event.display_name", &event.display_name, 100, "活动名称")?,
        kind: event_kind("recruitment_event.kind", event.kind)?,
        region: known_region("recruitment_event.region", event.region.as_ref(), "举办地")?,
        date: bangfu_platform::wire::date("recruitment_event.event_date", event.event_date.as_ref())?,
        carriers: ids("recruitment_event.carriers", &event.carriers, "carriers")?,
        postings: ids("recruitment_event.postings", &event.postings, "postings")?,
        persons_reached: within(
            "recruitment_event.persons_reached",
            i64::from(event.persons_reached),
            0,
            1_000_000,
            "参会人数",
        )?,
        persons_placed: within(
            "recruitment_event.persons_placed",
            i64::from(event.persons_placed),
            0,
            1_000_000,
            "达成意向人数",
        )?,
    })
}

pub fn event_to_wire(event: &StoredEvent) -> pb::RecruitmentEvent {
    pb::RecruitmentEvent {
        name: event.name(),
        display_name: event.data.display_name.clone(),
        kind: event_kind_to_wire(event.data.kind),
        region: Some(region_to_wire(&event.data.region)),
        event_date: Some(date_to_wire(event.data.date)),
        carriers: event.data.carriers.iter().map(|c| format!("carriers/{c}")).collect(),
        postings: event.data.postings.iter().map(|p| format!("postings/{p}")).collect(),
        persons_reached: i32::try_from(event.data.persons_reached).unwrap_or(i32::MAX),
        persons_placed: i32::try_from(event.data.persons_placed).unwrap_or(i32::MAX),
        create_time: Some(timestamp_to_wire(event.created)),
    }
}

fn counts_to_wire(counts: &JobCounts) -> pb::JobCounts {
    let n = |v: i64| i32::try_from(v).unwrap_or(i32::MAX);
    pb::JobCounts {
        labor_alliances: n(counts.labor_alliances),
        labor_brands: n(counts.labor_brands),
        labor_bases: n(counts.labor_bases),
        labor_base_target_persons: n(counts.labor_base_target_persons),
        labor_cooperatives: n(counts.labor_cooperatives),
        assistance_workshops: n(counts.assistance_workshops),
        workshop_target_persons: n(counts.workshop_target_persons),
        target_persons_in_training: n(counts.target_persons_in_training),
        relocation_site_target_persons: n(counts.relocation_site_target_persons),
        recruitment_events: n(counts.recruitment_events),
        relocation_site_events: n(counts.relocation_site_events),
        target_persons_placed: n(counts.target_persons_placed),
    }
}

pub fn stats_to_wire(stats: &JobStats) -> pb::GetJobStatsResponse {
    pb::GetJobStatsResponse {
        total: Some(pb::RegionJobCounts {
            region: Some(region_to_wire(&stats.region_prefix)),
            counts: Some(counts_to_wire(&stats.total)),
        }),
        rows: stats
            .rows
            .iter()
            .map(|(county, counts)| pb::RegionJobCounts {
                region: Some(region_to_wire(county)),
                counts: Some(counts_to_wire(counts)),
            })
            .collect(),
        period: Some(common::Period {
            first_day: Some(date_to_wire(stats.first)),
            last_day: Some(date_to_wire(stats.last)),
        }),
    }
}

pub fn subsidy_claim_to_wire(claim: &ClaimView) -> pb::SubsidyClaim {
    let data = &claim.claim;
    pb::SubsidyClaim {
        reference: data.reference.clone(),
        policy: data.policy.clone(),
        person: bangfu_platform::subsidy_claims::claim_person_name(&data.person_id),
        payee: if data.payee.is_empty() {
            format!("persons/{}", data.person_id)
        } else {
            data.payee.clone()
        },
        period: Some(common::Period {
            first_day: Some(date_to_wire(data.first)),
            last_day: Some(date_to_wire(data.last)),
        }),
        progress: Some(claim_progress(&claim.record)),
        create_time: Some(timestamp_to_wire(claim.created)),
    }
}
