//! Conversions between the common wire messages (`bangfu.common.v1`) and the platform's
//! domain values, written once for every service's `grpc` edge: dates and periods, timestamps,
//! parameters, audit events and the personal-data view with its stated purpose. Each parse
//! names the field it failed on.

use bangfu_proto::common::v1 as pb;
use time::{Date, Month, OffsetDateTime};

use crate::audit::{AuditQuery, Outcome, SealedEvent};
use crate::auth::{Permission, Principal};
use crate::error::{ErrorReason, Problem};
use crate::parameters::{ParameterQuery, ParameterRow, Unit};

/// A business date from the wire; `field` names it in the error.
pub fn date(field: &str, value: Option<&pb::Date>) -> Result<Date, Problem> {
    let value = value.ok_or_else(|| Problem::required(field, "日期"))?;
    optional_date(field, Some(value))?.ok_or_else(|| Problem::required(field, "日期"))
}

/// An optional business date; an all-zero date counts as absent.
pub fn optional_date(field: &str, value: Option<&pb::Date>) -> Result<Option<Date>, Problem> {
    let Some(value) = value else { return Ok(None) };
    if value.year == 0 && value.month == 0 && value.day == 0 {
        return Ok(None);
    }
    let invalid = || {
        Problem::invalid_field(
            ErrorReason::FieldInvalid,
            field,
            format!(
                "{:04}-{:02}-{:02} is not a calendar date",
                value.year, value.month, value.day
            ),
            "日期不存在，请核对年月日",
        )
    };
    if !(1900..=9999).contains(&value.year) {
        return Err(invalid());
    }
    let month = u8::try_from(value.month)
        .ok()
        .and_then(|m| Month::try_from(m).ok())
        .ok_or_else(invalid)?;
    let day = u8::try_from(value.day).map_err(|_| invalid())?;
    Date::from_calendar_date(value.year, month, day)
        .map(Some)
        .map_err(|_| invalid())
}

/// Text a clerk must give, trimmed, at most `max` characters; `what_zh` names it in the message.
pub fn text(field: &str, value: &str, max: usize, what_zh: &str) -> Result<String, Problem> {
    let value = value.trim();
    if value.is_empty() {
        return Err(Problem::required(field, what_zh));
    }
    optional_text(field, value, max, what_zh)
}

/// An office phone as printed on a list or notice: 5 to 20 digits, hyphens or spaces.
pub fn phone(field: &str, value: &str) -> Result<String, Problem> {
    let value = value.trim();
    if value.is_empty() {
        return Err(Problem::required(field, "联系电话"));
    }
    let digits = value.chars().filter(char::is_ascii_digit).count();
    if !(5..=20).contains(&value.chars().count())
        || digits < 5
        || !value.chars().all(|c| c.is_ascii_digit() || c == '-' || c == ' ')
    {
        return Err(Problem::invalid_field(
            ErrorReason::FieldInvalid,
            field,
            "must be 5 to 20 digits, hyphens or spaces",
            "联系电话应为5至20位数字（可含连字符）",
        ));
    }
    Ok(value.to_string())
}

/// The etag a change must carry, as the caller read it.
pub fn etag(value: &str) -> Result<&str, Problem> {
    if value.trim().is_empty() {
        return Err(Problem::required("etag", "版本标记（etag）"));
    }
    Ok(value)
}

/// Text that may be empty, trimmed, at most `max` characters.
pub fn optional_text(field: &str, value: &str, max: usize, what_zh: &str) -> Result<String, Problem> {
    let value = value.trim();
    if value.chars().count() > max {
        return Err(Problem::invalid_field(
            ErrorReason::FieldTooLong,
            field,
            format!("at most {max} characters"),
            format!("{what_zh}不能超过{max}个字符"),
        ));
    }
    Ok(value.to_string())
}

pub fn date_to_wire(date: Date) -> pb::Date {
    pb::Date {
        year: date.year(),
        month: i32::from(u8::from(date.month())),
        day: i32::from(date.day()),
    }
}

/// An inclusive period; a missing period is the one day `today`.
pub fn period(field: &str, value: Option<&pb::Period>, today: Date) -> Result<(Date, Date), Problem> {
    let Some(value) = value else { return Ok((today, today)) };
    let first = date(&format!("{field}.first_day"), value.first_day.as_ref())?;
    let last = date(&format!("{field}.last_day"), value.last_day.as_ref())?;
    if last < first {
        return Err(Problem::invalid_field(
            ErrorReason::FieldInvalid,
            format!("{field}.last_day"),
            "must not be before first_day",
            "结束日期不能早于开始日期",
        ));
    }
    Ok((first, last))
}

pub fn timestamp_to_wire(instant: OffsetDateTime) -> prost_types::Timestamp {
    prost_types::Timestamp {
        seconds: instant.unix_timestamp(),
        nanos: instant.nanosecond() as i32,
    }
}

pub fn timestamp(field: &str, value: Option<&prost_types::Timestamp>) -> Result<Option<OffsetDateTime>, Problem> {
    let Some(value) = value else { return Ok(None) };
    let nanos = i128::from(value.seconds) * 1_000_000_000 + i128::from(value.nanos);
    OffsetDateTime::from_unix_timestamp_nanos(nanos).map(Some).map_err(|_| {
        Problem::invalid_field(
            ErrorReason::FieldInvalid,
            field,
            "is not a valid timestamp",
            "时间格式不正确",
        )
    })
}

fn unit_to_wire(unit: Unit) -> pb::ParameterUnit {
    match unit {
        Unit::Count => pb::ParameterUnit::Count,
        Unit::Fen => pb::ParameterUnit::Fen,
        Unit::BasisPoints => pb::ParameterUnit::BasisPoints,
        Unit::Days => pb::ParameterUnit::Days,
        Unit::Months => pb::ParameterUnit::Months,
        Unit::Years => pb::ParameterUnit::Years,
    }
}

pub fn parameter_to_wire(row: &ParameterRow) -> pb::Parameter {
    pb::Parameter {
        name: row.name(),
        key: row.key.clone(),
        region_prefix: row.region_prefix.clone(),
        valid_from: Some(date_to_wire(row.valid_from)),
        valid_to: row.valid_to.map(date_to_wire),
        value: row.value,
        unit: unit_to_wire(row.unit) as i32,
        source_document: row.source_document.clone(),
        update_subject: row.update_subject.clone(),
        update_time: Some(timestamp_to_wire(row.update_time)),
        etag: row.etag(),
    }
}

pub fn parameter_query(filter: Option<&pb::ParameterFilter>) -> Result<ParameterQuery, Problem> {
    let Some(filter) = filter else {
        return Ok(ParameterQuery::default());
    };
    let text = |s: &str| (!s.trim().is_empty()).then(|| s.trim().to_string());
    let region_code = text(&filter.region_code);
    if let Some(code) = &region_code
        && (code.len() > 12 || !code.bytes().all(|b| b.is_ascii_digit()))
    {
        return Err(Problem::invalid_field(
            ErrorReason::FieldInvalid,
            "filter.region_code",
            format!(
                "{} is not a division code (up to 12 digits)",
                crate::error::quoted(code)
            ),
            "行政区划代码应为不超过12位的数字",
        ));
    }
    Ok(ParameterQuery {
        key: text(&filter.key),
        region_code,
        effective_date: optional_date("filter.effective_date", filter.effective_date.as_ref())?,
    })
}

pub fn audit_event_to_wire(event: &SealedEvent) -> pb::AuditEvent {
    let entry = &event.entry;
    let outcome = match entry.outcome {
        Outcome::Succeeded => pb::AuditOutcome::Succeeded,
        Outcome::Denied => pb::AuditOutcome::Denied,
        Outcome::Failed => pb::AuditOutcome::Failed,
    };
    let purpose = (!entry.purpose_code.is_empty()).then(|| pb::AccessPurpose {
        code: pb::AccessPurposeCode::from_str_name(&format!("ACCESS_PURPOSE_CODE_{}", entry.purpose_code))
            .map_or(0, |c| c as i32),
        reference: entry.purpose_reference.clone(),
    });
    pb::AuditEvent {
        name: format!("auditEvents/{}", event.sequence),
        sequence: event.sequence,
        event_time: Some(timestamp_to_wire(entry.time)),
        subject: entry.subject.clone(),
        department: entry.department.clone(),
        acting_service: entry.acting_service.clone(),
        method: entry.method.clone(),
        resource: entry.resource.clone(),
        outcome: outcome as i32,
        reason: entry.reason.clone(),
        purpose,
        hash: event.hash.clone(),
        trace_id: entry.trace_id.clone(),
        region: entry.region.clone(),
    }
}

pub fn audit_query(filter: Option<&pb::AuditEventFilter>) -> Result<AuditQuery, Problem> {
    let Some(filter) = filter else {
        return Ok(AuditQuery::default());
    };
    let outcome = match pb::AuditOutcome::try_from(filter.outcome) {
        Ok(pb::AuditOutcome::Unspecified) => None,
        Ok(pb::AuditOutcome::Succeeded) => Some(Outcome::Succeeded),
        Ok(pb::AuditOutcome::Denied) => Some(Outcome::Denied),
        Ok(pb::AuditOutcome::Failed) => Some(Outcome::Failed),
        Err(_) => return Err(unknown_enum("filter.outcome")),
    };
    let text = |s: &str| (!s.trim().is_empty()).then(|| s.trim().to_string());
    Ok(AuditQuery {
        start: timestamp("filter.start_time", filter.start_time.as_ref())?,
        end: timestamp("filter.end_time", filter.end_time.as_ref())?,
        subject: text(&filter.subject),
        resource: text(&filter.resource),
        outcome,
        region_prefix: String::new(),
        after_sequence: 0,
        limit: 0,
    })
}

fn unknown_enum(field: &str) -> Problem {
    Problem::invalid_field(
        ErrorReason::FieldInvalid,
        field,
        "is not one of the values the contract lists",
        "选项取值无效",
    )
}

/// A purpose stated for reading personal data in clear, as the audit records it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StatedPurpose {
    /// The purpose code without its enum prefix, e.g. `PAYMENT`.
    pub code: String,
    pub reference: String,
}

/// How personal data appears in a response.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Disclosure {
    Masked,
    /// In clear, for this purpose; the read must be audited.
    Unmasked(StatedPurpose),
}

/// Decides the view of a request: masked unless it asks for the unmasked view, which needs
/// `permission` (PERMISSION_DENIED without it) and a stated purpose (INVALID_ARGUMENT without).
pub fn disclosure(
    principal: &Principal,
    permission: Permission,
    view: i32,
    purpose: Option<&pb::AccessPurpose>,
) -> Result<Disclosure, Problem> {
    match pb::PersonalDataView::try_from(view) {
        Ok(pb::PersonalDataView::Unspecified | pb::PersonalDataView::Masked) => Ok(Disclosure::Masked),
        Err(_) => Err(unknown_enum("view")),
        Ok(pb::PersonalDataView::Unmasked) => {
            if !principal.has(permission) {
                return Err(Problem::new(
                    tonic::Code::PermissionDenied,
                    ErrorReason::PermissionMissing,
                    format!("the unmasked view needs the permission {}", permission.as_str()),
                    "您没有查看完整个人信息的权限",
                )
                .with_metadata("permission", permission.as_str()));
            }
            let missing = || {
                Problem::invalid_field(
                    ErrorReason::AccessPurposeRequired,
                    "purpose",
                    "the unmasked view needs a purpose code and a reference",
                    "查看完整个人信息须说明用途并填写文书编号",
                )
            };
            let purpose = purpose.ok_or_else(missing)?;
            let code = match pb::AccessPurposeCode::try_from(purpose.code) {
                Ok(pb::AccessPurposeCode::Unspecified) => return Err(missing()),
                Ok(code) => code,
                Err(_) => return Err(unknown_enum("purpose.code")),
            };
            let reference = purpose.reference.trim();
            if reference.is_empty() {
                return Err(missing());
            }
            if reference.chars().count() > 128 || reference.chars().any(char::is_control) {
                return Err(Problem::invalid_field(
                    ErrorReason::FieldTooLong,
                    "purpose.reference",
                    "must be 1 to 128 characters without control characters",
                    "文书编号不能超过128个字，且不能含控制字符",
                ));
            }
            let name = code.as_str_name();
            Ok(Disclosure::Unmasked(StatedPurpose {
                code: name.strip_prefix("ACCESS_PURPOSE_CODE_").unwrap_or(name).to_string(),
                reference: reference.to_string(),
            }))
        }
    }
}

/// Maps a domain kind to its wire enum by name: `cleaning` → `POST_TYPE_CLEANING`.
#[macro_export]
macro_rules! to_wire {
    ($to_wire:ident, $domain:ty, $wire:ty, $prefix:literal) => {
        pub fn $to_wire(value: $domain) -> i32 {
            <$wire>::from_str_name(&format!("{}{}", $prefix, value.as_str().to_ascii_uppercase()))
                .map(|wire| wire as i32)
                .unwrap_or(0)
        }
    };
}

/// Maps a domain kind to its wire enum and back by name.
#[macro_export]
macro_rules! enum_mapping {
    ($to_domain:ident, $to_wire:ident, $domain:ty, $wire:ty, $prefix:literal, $what_zh:literal) => {
        pub fn $to_domain(field: &str, value: i32) -> Result<$domain, $crate::error::Problem> {
            <$wire>::try_from(value)
                .ok()
                .and_then(|wire| {
                    wire.as_str_name()
                        .strip_prefix($prefix)
                        .map(str::to_ascii_lowercase)
                })
                .and_then(|text| <$domain>::parse(&text))
                .ok_or_else(|| {
                    if value == 0 {
                        $crate::error::Problem::required(field, $what_zh)
                    } else {
                        $crate::error::Problem::invalid_field(
                            $crate::error::ErrorReason::FieldInvalid,
                            field,
                            format!("{value} is not a known value"),
                            concat!($what_zh, "取值无效"),
                        )
                    }
                })
        }

        $crate::to_wire!($to_wire, $domain, $wire, $prefix);
    };
}

/// An optional enum filter: 0 is "any".
pub fn optional<T>(
    value: i32,
    parse: impl Fn(&str, i32) -> Result<T, Problem>,
    field: &str,
) -> Result<Option<T>, Problem> {
    if value == 0 {
        Ok(None)
    } else {
        parse(field, value).map(Some)
    }
}

/// Whether `text` can be an id: 1 to 64 characters of [A-Za-z0-9_-] (resource ids, request
/// ids, message ids).
pub fn is_id(text: &str) -> bool {
    !text.is_empty()
        && text.len() <= 64
        && text
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
}

/// A resource name's id: "posts/abc" → "abc"; the collection must match.
pub fn id_of(field: &str, name: &str, collection: &str) -> Result<String, Problem> {
    let id = name
        .trim()
        .strip_prefix(collection)
        .and_then(|rest| rest.strip_prefix('/'))
        .filter(|id| is_id(id));
    match id {
        Some(id) => Ok(id.to_string()),
        None if name.trim().is_empty() => Err(Problem::required(field, "资源名称")),
        None => Err(Problem::invalid_field(
            ErrorReason::FieldInvalid,
            field,
            format!("must be \"{collection}/{{id}}\""),
            format!("资源名称应为 {collection}/编号"),
        )),
    }
}

/// A region prefix of 2, 4, 6, 9 or 12 digits.
pub fn region_prefix(field: &str, value: &str, required: bool) -> Result<String, Problem> {
    let value = value.trim();
    if value.is_empty() && !required {
        return Ok(String::new());
    }
    if value.is_empty() {
        return Err(Problem::required(field, "地区代码"));
    }
    match crate::auth::RegionScope::parse(value) {
        Some(crate::auth::RegionScope::Prefix(prefix)) => Ok(prefix),
        _ => Err(Problem::invalid_field(
            ErrorReason::FieldInvalid,
            field,
            "must be a division-code prefix of 2, 4, 6, 9 or 12 digits",
            "地区应为2、4、6、9或12位行政区划代码前缀",
        )),
    }
}

/// An integer within [low, high].
pub fn within(field: &str, value: i64, low: i64, high: i64, what_zh: &str) -> Result<i64, Problem> {
    if value < low || value > high {
        return Err(Problem::invalid_field(
            ErrorReason::FieldInvalid,
            field,
            format!("must be between {low} and {high}"),
            format!("{what_zh}应在{low}至{high}之间"),
        ));
    }
    Ok(value)
}

/// A division code with its full name from the embedded table.
pub fn region_to_wire(code: &str) -> pb::RegionCode {
    pb::RegionCode {
        code: code.to_string(),
        display_name: crate::regions::DivisionTable::embedded()
            .full_name(code)
            .unwrap_or_default(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::auth::{Department, RegionScope, Role, permissions};
    use time::macros::date;

    fn clerk(role: Role) -> Principal {
        Principal {
            subject: "s".into(),
            issuer: "i".into(),
            department: Some(Department::Hr),
            roles: vec![role],
            scope: RegionScope::Country,
            acting_service: None,
            token_id: "t".into(),
            permissions: permissions::user_permissions(Some(Department::Hr), &[role]),
        }
    }

    #[test]
    fn an_impossible_date_names_its_field() {
        let bad = pb::Date {
            year: 2026,
            month: 2,
            day: 30,
        };
        let err = date("contract.start_date", Some(&bad)).expect_err("30 February");
        assert_eq!(err.violations[0].field, "contract.start_date");
        assert_eq!(
            date(
                "d",
                Some(&pb::Date {
                    year: 2024,
                    month: 2,
                    day: 29
                })
            )
            .ok(),
            Some(date!(2024 - 02 - 29))
        );
    }

    #[test]
    fn a_missing_period_is_today_and_a_backwards_one_is_refused() {
        let today = date!(2026 - 03 - 31);
        assert_eq!(period("period", None, today).ok(), Some((today, today)));
        let backwards = pb::Period {
            first_day: Some(date_to_wire(date!(2026 - 03 - 31))),
            last_day: Some(date_to_wire(date!(2026 - 03 - 01))),
        };
        let err = period("period", Some(&backwards), today).expect_err("backwards");
        assert_eq!(err.violations[0].field, "period.last_day");
    }

    #[test]
    fn the_unmasked_view_needs_the_permission_and_a_purpose() {
        let unmasked = pb::PersonalDataView::Unmasked as i32;
        let purpose = pb::AccessPurpose {
            code: pb::AccessPurposeCode::Payment as i32,
            reference: "渝人社发〔2026〕3号".into(),
        };
        let err = disclosure(
            &clerk(Role::Clerk),
            Permission::IdentityPiiRead,
            unmasked,
            Some(&purpose),
        )
        .expect_err("clerk");
        assert_eq!(err.code, tonic::Code::PermissionDenied);
        let err =
            disclosure(&clerk(Role::Reviewer), Permission::IdentityPiiRead, unmasked, None).expect_err("no purpose");
        assert_eq!(
            (err.code, err.reason),
            (tonic::Code::InvalidArgument, ErrorReason::AccessPurposeRequired)
        );
        let granted = disclosure(
            &clerk(Role::Reviewer),
            Permission::IdentityPiiRead,
            unmasked,
            Some(&purpose),
        )
        .expect("granted");
        assert_eq!(
            granted,
            Disclosure::Unmasked(StatedPurpose {
                code: "PAYMENT".into(),
                reference: "渝人社发〔2026〕3号".into()
            })
        );
        assert_eq!(
            disclosure(&clerk(Role::Clerk), Permission::IdentityPiiRead, 0, None).ok(),
            Some(Disclosure::Masked)
        );
        assert!(disclosure(&clerk(Role::Clerk), Permission::IdentityPiiRead, 7, None).is_err());
    }
}
