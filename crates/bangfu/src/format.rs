//! The shared spelling of flags and output: resource names, enum flags, dates and months,
//! times in UTC+8, yuan and fen, percentages, tables. Parsing errors are usage errors that
//! name the flag.

use std::collections::BTreeSet;

use bangfu_proto::common::v1 as common;
use bangfu_proto::identity::v1 as pb;
use bangfu_proto::jobs::v1 as jobs;
use bangfu_proto::subsidy::v1 as subsidy;
use bangfu_proto::welfare_post::v1 as posts;
use bangfu_proto::work_relief::v1 as relief;

use crate::Failure;

/// China Standard Time (UTC+8), the zone every business date and shown time is in.
const CHINA_OFFSET_SECONDS: i64 = 8 * 3600;

/// A resource name from an argument that may be the bare id: `ab12` is `persons/ab12`.
pub(crate) fn resource_name(collection: &str, text: &str) -> String {
    let text = text.trim();
    if text.contains('/') {
        text.to_string()
    } else {
        format!("{collection}/{text}")
    }
}

/// A proto enum as flags and tables spell it: `poverty-alleviated` for
/// `PERSON_CATEGORY_POVERTY_ALLEVIATED`.
pub(crate) trait ProtoEnum: Copy {
    /// What every value's name starts with, without the joining underscore.
    const PREFIX: &'static str;
    /// The enum's full name in the contract, `bangfu.common.v1.PersonCategory`.
    const FULL_NAME: &'static str;
    fn from_number(number: i32) -> Option<Self>;
    fn from_wire_name(name: &str) -> Option<Self>;
    fn number(self) -> i32;
    fn wire_name(self) -> &'static str;
}

macro_rules! proto_enums {
    ($($enum:ty => $prefix:literal in $full_name:literal,)*) => {$(
        impl ProtoEnum for $enum {
            const PREFIX: &'static str = $prefix;
            const FULL_NAME: &'static str = $full_name;
            fn from_number(number: i32) -> Option<Self> {
                Self::try_from(number).ok()
            }
            fn from_wire_name(name: &str) -> Option<Self> {
                Self::from_str_name(name)
            }
            fn number(self) -> i32 {
                self as i32
            }
            fn wire_name(self) -> &'static str {
                self.as_str_name()
            }
        }
    )*
        /// Every enum above, by its full name in the contract (a test checks each is there).
        #[cfg(test)]
        const ENUM_FULL_NAMES: &[&str] = &[$($full_name),*];
    };
}

proto_enums! {
    common::PersonCategory => "PERSON_CATEGORY" in "bangfu.common.v1.PersonCategory",
    common::MonitoredHouseholdType => "MONITORED_HOUSEHOLD_TYPE" in "bangfu.common.v1.MonitoredHouseholdType",
    common::EmploymentStatus => "EMPLOYMENT_STATUS" in "bangfu.common.v1.EmploymentStatus",
    common::AuditOutcome => "AUDIT_OUTCOME" in "bangfu.common.v1.AuditOutcome",
    common::AccessPurposeCode => "ACCESS_PURPOSE_CODE" in "bangfu.common.v1.AccessPurposeCode",
    pb::AlertKind => "ALERT_KIND" in "bangfu.identity.v1.AlertKind",
    pb::ChangeKind => "CHANGE_KIND" in "bangfu.identity.v1.ChangeKind",
    pb::CorrectionState => "CORRECTION_STATE" in "bangfu.identity.v1.CorrectionState",
    pb::HouseholdRelation => "HOUSEHOLD_RELATION" in "bangfu.identity.v1.HouseholdRelation",
    pb::RetirementTrack => "RETIREMENT_TRACK" in "bangfu.identity.v1.RetirementTrack",
    subsidy::ClaimState => "CLAIM_STATE" in "bangfu.subsidy.v1.ClaimState",
    subsidy::PaymentBatchState => "PAYMENT_BATCH_STATE" in "bangfu.subsidy.v1.PaymentBatchState",
    subsidy::PaymentLineState => "PAYMENT_LINE_STATE" in "bangfu.subsidy.v1.PaymentLineState",
    subsidy::RecoveryState => "RECOVERY_STATE" in "bangfu.subsidy.v1.RecoveryState",
    subsidy::ObjectionChannel => "OBJECTION_CHANNEL" in "bangfu.subsidy.v1.ObjectionChannel",
    subsidy::PayeeAccountKind => "PAYEE_ACCOUNT_KIND" in "bangfu.subsidy.v1.PayeeAccountKind",
    posts::PostType => "POST_TYPE" in "bangfu.welfare_post.v1.PostType",
    posts::PostClass => "POST_CLASS" in "bangfu.welfare_post.v1.PostClass",
    posts::FundingSource => "FUNDING_SOURCE" in "bangfu.welfare_post.v1.FundingSource",
    posts::WorkTime => "WORK_TIME" in "bangfu.welfare_post.v1.WorkTime",
    posts::PostState => "POST_STATE" in "bangfu.welfare_post.v1.PostState",
    posts::ApplicationState => "APPLICATION_STATE" in "bangfu.welfare_post.v1.ApplicationState",
    posts::AssignmentState => "ASSIGNMENT_STATE" in "bangfu.welfare_post.v1.AssignmentState",
    posts::ExitReason => "EXIT_REASON" in "bangfu.welfare_post.v1.ExitReason",
    posts::FraudSignalKind => "FRAUD_SIGNAL_KIND" in "bangfu.welfare_post.v1.FraudSignalKind",
    relief::ProjectChannel => "PROJECT_CHANNEL" in "bangfu.work_relief.v1.ProjectChannel",
    relief::ProjectState => "PROJECT_STATE" in "bangfu.work_relief.v1.ProjectState",
    relief::FundSource => "FUND_SOURCE" in "bangfu.work_relief.v1.FundSource",
    relief::WorkerRole => "WORKER_ROLE" in "bangfu.work_relief.v1.WorkerRole",
    relief::EnrolmentState => "ENROLMENT_STATE" in "bangfu.work_relief.v1.EnrolmentState",
    relief::PayrollState => "PAYROLL_STATE" in "bangfu.work_relief.v1.PayrollState",
    relief::LineState => "LINE_STATE" in "bangfu.work_relief.v1.LineState",
    common::LaborCapacity => "LABOR_CAPACITY" in "bangfu.common.v1.LaborCapacity",
    jobs::CarrierKind => "CARRIER_KIND" in "bangfu.jobs.v1.CarrierKind",
    jobs::PostingState => "POSTING_STATE" in "bangfu.jobs.v1.PostingState",
    jobs::WorkIntention => "WORK_INTENTION" in "bangfu.jobs.v1.WorkIntention",
    jobs::TargetPriority => "TARGET_PRIORITY" in "bangfu.jobs.v1.TargetPriority",
    jobs::SeekerState => "SEEKER_STATE" in "bangfu.jobs.v1.SeekerState",
    jobs::MatchFactor => "MATCH_FACTOR" in "bangfu.jobs.v1.MatchFactor",
    jobs::ApplicationState => "APPLICATION_STATE" in "bangfu.jobs.v1.ApplicationState",
    jobs::PlacementEndReason => "PLACEMENT_END_REASON" in "bangfu.jobs.v1.PlacementEndReason",
    jobs::PlacementState => "PLACEMENT_STATE" in "bangfu.jobs.v1.PlacementState",
    jobs::TravelMode => "TRAVEL_MODE" in "bangfu.jobs.v1.TravelMode",
    jobs::ExportBatchState => "EXPORT_BATCH_STATE" in "bangfu.jobs.v1.ExportBatchState",
    jobs::RecruitmentEventKind => "RECRUITMENT_EVENT_KIND" in "bangfu.jobs.v1.RecruitmentEventKind",
    jobs::EnrolmentState => "ENROLMENT_STATE" in "bangfu.jobs.v1.EnrolmentState",
}

/// `PERSON_CATEGORY_POVERTY_ALLEVIATED` as `poverty-alleviated`.
pub(crate) fn kebab(prefix: &str, name: &str) -> String {
    name.strip_prefix(prefix)
        .and_then(|rest| rest.strip_prefix('_'))
        .unwrap_or(name)
        .to_ascii_lowercase()
        .replace('_', "-")
}

pub(crate) fn flag_name<E: ProtoEnum>(value: E) -> String {
    kebab(E::PREFIX, value.wire_name())
}

/// An enum flag's value (`poverty-alleviated`, `poverty_alleviated`, any case, the full name,
/// or a Chinese term the contract gives it, `脱贫户`) as its number on the wire; anything else
/// is a usage error listing the valid ones.
pub(crate) fn enum_value<E: ProtoEnum>(flag: &str, text: &str) -> Result<i32, Failure> {
    let upper = text.trim().replace('-', "_").to_ascii_uppercase();
    let value = E::from_wire_name(&upper)
        .or_else(|| E::from_wire_name(&format!("{}_{upper}", E::PREFIX)))
        .or_else(|| {
            let descriptor = crate::print::pool().ok()?.get_enum_by_name(E::FULL_NAME)?;
            E::from_number(crate::terms::value_of_term(&descriptor, text)?)
        });
    match value {
        Some(value) if value.number() != 0 => Ok(value.number()),
        _ => {
            let descriptor = crate::print::pool()
                .ok()
                .and_then(|pool| pool.get_enum_by_name(E::FULL_NAME));
            let valid: Vec<String> = (1..=255)
                .filter_map(E::from_number)
                .map(|value| {
                    let term = descriptor
                        .as_ref()
                        .and_then(|d| d.get_value(value.number()))
                        .and_then(|v| crate::terms::terms(&v).into_iter().next());
                    match term {
                        Some(term) => format!("{} ({term})", flag_name(value)),
                        None => flag_name(value),
                    }
                })
                .collect();
            Err(Failure::usage(format!(
                "{flag} {text:?} is not one of {}",
                valid.join(", ")
            )))
        }
    }
}

/// An optional enum flag: 0 (unspecified, no filter) when not given.
pub(crate) fn enum_filter<E: ProtoEnum>(flag: &str, text: Option<&str>) -> Result<i32, Failure> {
    text.map_or(Ok(0), |text| enum_value::<E>(flag, text))
}

/// An enum field in a table: its flag spelling, `-` when unspecified, the number if unknown.
pub(crate) fn enum_label<E: ProtoEnum>(number: i32) -> String {
    if number == 0 {
        return "-".to_string();
    }
    let described = crate::print::pool()
        .ok()
        .and_then(|pool| pool.get_enum_by_name(E::FULL_NAME))
        .and_then(|descriptor| descriptor.get_value(number));
    match described {
        Some(value) => crate::print::enum_text(&value),
        None => E::from_number(number).map_or_else(|| number.to_string(), flag_name::<E>),
    }
}

/// The keys a stats map uses across regions, in the enum's order, each with its column label.
pub(crate) fn stat_columns<E: ProtoEnum>(keys: impl Iterator<Item = String>) -> Vec<(String, String)> {
    let keys: BTreeSet<String> = keys.collect();
    let mut columns: Vec<(i32, String, String)> = keys
        .into_iter()
        .map(|key| {
            let value = E::from_wire_name(&key);
            let order = value.map_or(i32::MAX, E::number);
            let label = match value {
                // Counted but never recorded: a person whose status no system has reported.
                Some(value) if value.number() == 0 => "not recorded".to_string(),
                Some(value) => enum_label::<E>(value.number()),
                None => kebab(E::PREFIX, &key),
            };
            (order, key, label)
        })
        .collect();
    columns.sort();
    columns.into_iter().map(|(_, key, label)| (key, label)).collect()
}

/// Prints a table under its header: columns of numbers right-aligned, the others left-aligned,
/// the last as it is.
pub(crate) fn print_table(header: &[String], rows: &[Vec<String>]) {
    let numeric: Vec<bool> = (0..header.len())
        .map(|column| {
            rows.iter().filter_map(|row| row.get(column)).all(|cell| {
                cell == "-" || (!cell.is_empty() && cell.chars().all(|c| c.is_ascii_digit() || "-.,% 元".contains(c)))
            })
        })
        .collect();
    // Columns line up on a terminal: a Chinese character takes two cells.
    let cells = |text: &str| unicode_width::UnicodeWidthStr::width(text);
    let mut widths: Vec<usize> = header.iter().map(|cell| cells(cell)).collect();
    for row in rows {
        for (width, cell) in widths.iter_mut().zip(row) {
            *width = (*width).max(cells(cell));
        }
    }
    for row in std::iter::once(header).chain(rows.iter().map(Vec::as_slice)) {
        let last = row.len().saturating_sub(1);
        let cells: Vec<String> = row
            .iter()
            .zip(widths.iter().copied())
            .enumerate()
            .map(|(column, (cell, width))| {
                let padding = " ".repeat(width.saturating_sub(cells(cell)));
                if column == last {
                    cell.clone()
                } else if numeric[column] {
                    format!("{padding}{cell}")
                } else {
                    format!("{cell}{padding}")
                }
            })
            .collect();
        say!("{}", cells.join("  "));
    }
}

/// The numbers of a date or a month as clerks and exports write them: `2026-01-31`,
/// `2026/1/31`, `2026.01.31`, `20260131` (`2026-01`, `2026/1`, `202601` for a month); a time
/// after a date is ignored. A 4-digit year, then 1- or 2-digit parts.
pub(crate) fn date_numbers(text: &str) -> Option<Vec<i32>> {
    let text = text.split_whitespace().next()?;
    let text = text.split_once('T').map_or(text, |(day, _)| day);
    if text.bytes().all(|b| b.is_ascii_digit()) && matches!(text.len(), 6 | 8) {
        let part = |range: std::ops::Range<usize>| text.get(range)?.parse::<i32>().ok();
        return match text.len() {
            8 => Some(vec![part(0..4)?, part(4..6)?, part(6..8)?]),
            _ => Some(vec![part(0..4)?, part(4..6)?]),
        };
    }
    let mut numbers = Vec::new();
    for (index, part) in text.split(['-', '/', '.']).enumerate() {
        let width = if index == 0 { 4..=4 } else { 1..=2 };
        if !width.contains(&part.len()) || !part.bytes().all(|b| b.is_ascii_digit()) {
            return None;
        }
        numbers.push(part.parse::<i32>().ok()?);
    }
    Some(numbers)
}

pub(crate) fn calendar_date(year: i32, month: i32, day: i32) -> Option<time::Date> {
    if !(1900..=9999).contains(&year) {
        return None;
    }
    let month = time::Month::try_from(u8::try_from(month).ok()?).ok()?;
    time::Date::from_calendar_date(year, month, u8::try_from(day).ok()?).ok()
}

/// A day as clerks and exports write it (see [`date_numbers`]): the one date parser of every
/// flag and of the dates in imported files.
pub(crate) fn day_of(text: &str) -> Option<time::Date> {
    match date_numbers(text).as_deref() {
        Some(&[year, month, day]) => calendar_date(year, month, day),
        _ => None,
    }
}

/// A date flag as a calendar day.
fn parse_day(flag: &str, text: &str) -> Result<time::Date, Failure> {
    day_of(text).ok_or_else(|| {
        Failure::usage(format!(
            "{flag} {text:?} is not a date: give YYYY-MM-DD, e.g. 2025-03-31 (2025/3/31 and 20250331 are read too)"
        ))
    })
}

/// A date flag as a business date.
pub(crate) fn parse_date(flag: &str, text: &str) -> Result<common::Date, Failure> {
    parse_day(flag, text).map(wire_date)
}

/// A date flag for something that has happened (a death, an export made): a day after today
/// (UTC+8) is refused before any work is done.
pub(crate) fn parse_past_date(flag: &str, text: &str) -> Result<common::Date, Failure> {
    parse_past_day(flag, text).map(wire_date)
}

/// [`parse_past_date`] as a calendar day.
pub(crate) fn parse_past_day(flag: &str, text: &str) -> Result<time::Date, Failure> {
    let day = parse_day(flag, text)?;
    if day > today() {
        return Err(Failure::usage(format!(
            "{flag} {} is in the future: it records what has happened",
            date_text(&wire_date(day))
        )));
    }
    Ok(day)
}

/// Today in UTC+8, the business calendar.
fn today() -> time::Date {
    let offset = time::UtcOffset::from_whole_seconds(CHINA_OFFSET_SECONDS as i32).unwrap_or(time::UtcOffset::UTC);
    time::OffsetDateTime::now_utc().to_offset(offset).date()
}

pub(crate) fn wire_date(day: time::Date) -> common::Date {
    common::Date {
        year: day.year(),
        month: i32::from(u8::from(day.month())),
        day: i32::from(day.day()),
    }
}

pub(crate) fn optional_date(flag: &str, text: Option<&str>) -> Result<Option<common::Date>, Failure> {
    text.map(|text| parse_date(flag, text)).transpose()
}

/// A `YYYY-MM` flag as a month.
pub(crate) fn parse_month(flag: &str, text: &str) -> Result<common::YearMonth, Failure> {
    match date_numbers(text).as_deref() {
        Some(&[year, month]) if calendar_date(year, month, 1).is_some() => Ok(common::YearMonth { year, month }),
        _ => Err(Failure::usage(format!(
            "{flag} {text:?} is not a month: give YYYY-MM, e.g. 2025-03"
        ))),
    }
}

/// A month flag for something that has happened (a month's income): a month after this one
/// is refused before any work is done.
pub(crate) fn parse_past_month(flag: &str, text: &str) -> Result<common::YearMonth, Failure> {
    let month = parse_month(flag, text)?;
    let today = today();
    if (month.year, month.month) > (today.year(), i32::from(u8::from(today.month()))) {
        return Err(Failure::usage(format!(
            "{flag} {:04}-{:02} is in the future: it records what has happened",
            month.year, month.month
        )));
    }
    Ok(month)
}

/// Refuses a last day before the first.
pub(crate) fn check_order(from: &common::Date, to: Option<&common::Date>) -> Result<(), Failure> {
    match to {
        Some(to) if (to.year, to.month, to.day) < (from.year, from.month, from.day) => Err(Failure::usage(format!(
            "--to {} is before --from {}",
            date_text(to),
            date_text(from)
        ))),
        _ => Ok(()),
    }
}

/// `2026-03-02`, or `1971-04` for a date given to the month (a masked birth date).
pub(crate) fn date_text(date: &common::Date) -> String {
    if date.day == 0 {
        format!("{:04}-{:02}", date.year, date.month)
    } else {
        format!("{:04}-{:02}-{:02}", date.year, date.month, date.day)
    }
}

pub(crate) fn date_or_dash(date: Option<&common::Date>) -> String {
    date.map_or_else(|| "-".to_string(), date_text)
}

/// A time flag, `YYYY-MM-DD` (midnight in UTC+8) or RFC 3339, as Unix seconds and nanoseconds.
pub(crate) fn parse_instant(flag: &str, text: &str) -> Result<(i64, i32), Failure> {
    if let Ok(at) = time::OffsetDateTime::parse(text.trim(), &time::format_description::well_known::Rfc3339) {
        return Ok((at.unix_timestamp(), i32::try_from(at.nanosecond()).unwrap_or(0)));
    }
    let bad = || {
        Failure::usage(format!(
            "{flag} {text:?} is neither a date (YYYY-MM-DD, from midnight in UTC+8) nor a time like 2025-03-01T08:30:00+08:00"
        ))
    };
    let date = parse_date(flag, text).map_err(|_| bad())?;
    let day = calendar_date(date.year, date.month, date.day).ok_or_else(bad)?;
    Ok((day.midnight().assume_utc().unix_timestamp() - CHINA_OFFSET_SECONDS, 0))
}

/// Unix seconds as an RFC 3339 time in UTC+8.
pub(crate) fn stamp_json(seconds: Option<i64>) -> Option<String> {
    let seconds = seconds?;
    let text = seconds
        .checked_add(CHINA_OFFSET_SECONDS)
        .and_then(|local| time::OffsetDateTime::from_unix_timestamp(local).ok())
        .and_then(|local| {
            local
                .format(time::macros::format_description!(
                    "[year]-[month]-[day]T[hour]:[minute]:[second]+08:00"
                ))
                .ok()
        })
        .unwrap_or_else(|| seconds.to_string());
    Some(text)
}

pub(crate) fn stamp_text(seconds: Option<i64>) -> String {
    stamp_json(seconds).unwrap_or_else(|| "-".to_string())
}

/// Decimal yuan (`2350`, `2350.5`, `2350.50`) as fen, read as text so nothing is rounded: no
/// sign, at most two decimals.
pub(crate) fn parse_yuan(flag: &str, text: &str) -> Result<i64, Failure> {
    let amount = text.trim();
    let (whole, fraction) = amount.split_once('.').unwrap_or((amount, ""));
    let digits = |part: &str| part.bytes().all(|b| b.is_ascii_digit());
    if whole.is_empty() || !digits(whole) || !digits(fraction) || (amount.contains('.') && fraction.is_empty()) {
        return Err(Failure::usage(format!(
            "{flag} {text:?} is not an amount in yuan like 2350 or 2350.50 (no sign: income is not negative)"
        )));
    }
    if fraction.len() > 2 {
        return Err(Failure::usage(format!(
            "{flag} {text:?} has more than two decimals: the smallest unit is the fen (0.01 yuan)"
        )));
    }
    let fen = whole
        .parse::<i64>()
        .ok()
        .zip(format!("{fraction:0<2}").parse::<i64>().ok())
        .and_then(|(yuan, fen)| yuan.checked_mul(100)?.checked_add(fen));
    fen.ok_or_else(|| Failure::usage(format!("{flag} {text:?} is too large")))
}

/// Fen as yuan with two decimals.
pub(crate) fn yuan_text(fen: i64) -> String {
    let sign = if fen < 0 { "-" } else { "" };
    let fen = fen.unsigned_abs();
    let (yuan, cents) = (fen / 100, fen % 100);
    format!("{sign}{yuan}.{cents:02}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_date_flag_reads_the_forms_clerks_write_and_refuses_the_future_where_it_must() {
        for text in [
            "2026-01-31",
            "2026/1/31",
            "2026.01.31",
            "20260131",
            "2026-01-31 08:00:00",
        ] {
            assert_eq!(
                parse_date("--from", text).ok(),
                Some(common::Date {
                    year: 2026,
                    month: 1,
                    day: 31
                }),
                "{text}"
            );
        }
        for text in ["2026-02-30", "26-01-31", "2026-1-1-1", "", "tomorrow"] {
            assert!(parse_date("--from", text).is_err(), "{text}");
        }
        assert!(parse_past_date("--export-date", "2020-01-01").is_ok());
        let refused = parse_past_date("--export-date", "2999-01-01").expect_err("in the future");
        assert!(refused.message.contains("future"), "{}", refused.message);
        assert!(parse_past_month("--month", "2999-01").is_err());
        assert_eq!(
            parse_month("--month", "2026/3").ok(),
            Some(common::YearMonth { year: 2026, month: 3 })
        );
    }

    #[test]
    fn every_enum_the_flags_take_is_named_as_the_contract_names_it() {
        let pool = crate::print::pool().expect("pool");
        for name in ENUM_FULL_NAMES {
            assert!(pool.get_enum_by_name(name).is_some(), "{name} is not in the contract");
        }
    }

    #[test]
    fn an_enum_flag_takes_the_chinese_term_and_lists_the_terms_when_refused() {
        assert_eq!(
            enum_value::<pb::HouseholdRelation>("--relation", "配偶").ok(),
            Some(pb::HouseholdRelation::Spouse as i32)
        );
        assert_eq!(
            enum_value::<common::PersonCategory>("--category", "脱贫户").ok(),
            Some(common::PersonCategory::PovertyAlleviated as i32)
        );
        assert_eq!(
            enum_value::<common::PersonCategory>("--category", "poverty-alleviated").ok(),
            Some(common::PersonCategory::PovertyAlleviated as i32)
        );
        let refused = enum_value::<pb::HouseholdRelation>("--relation", "表亲").expect_err("refused");
        assert!(refused.message.contains("spouse (配偶)"), "{}", refused.message);
    }
}
