//! Subsidy payment's domain: policies and their rules, facts, decisions and claims, as plain
//! Rust. Nothing here knows gRPC or SQL; the rules are evaluated here, from facts the
//! application layer gathers.

pub mod claim;
pub mod files;
pub mod payee;
pub mod policy;
pub mod rules;

use serde::{Deserialize, Serialize};
use time::Date;

pub use claim::*;
pub use payee::*;
pub use policy::*;
pub use rules::*;

/// A business day as "YYYY-MM-DD", the form dates take in stored JSON and in rules.
pub fn day_text(date: Date) -> String {
    format!("{:04}-{:02}-{:02}", date.year(), u8::from(date.month()), date.day())
}

/// Parses "YYYY-MM-DD".
pub fn parse_day(text: &str) -> Option<Date> {
    let mut parts = text.splitn(3, '-');
    let year: i32 = parts.next()?.parse().ok()?;
    let month: u8 = parts.next()?.parse().ok()?;
    let day: u8 = parts.next()?.parse().ok()?;
    if text.len() != 10 {
        return None;
    }
    Date::from_calendar_date(year, time::Month::try_from(month).ok()?, day).ok()
}

/// A calendar month as "YYYY-MM".
pub fn month_text(date: Date) -> String {
    format!("{:04}-{:02}", date.year(), u8::from(date.month()))
}

/// A claim's period: first and last day, both inclusive.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Period {
    #[serde(with = "day_serde")]
    pub first: Date,
    #[serde(with = "day_serde")]
    pub last: Date,
}

impl Period {
    /// Days in the period, both ends counted.
    pub fn days(&self) -> i64 {
        (self.last - self.first).whole_days() + 1
    }

    /// Whether the period is exactly one calendar month, first to last day.
    pub fn is_calendar_month(&self) -> bool {
        self.first.day() == 1
            && self.first.year() == self.last.year()
            && self.first.month() == self.last.month()
            && self.last.day() == self.last.month().length(self.last.year())
    }

    /// The months the period touches, "YYYY-MM", in order.
    pub fn months(&self) -> Vec<String> {
        let mut months = Vec::new();
        let mut year = self.first.year();
        let mut month = self.first.month();
        loop {
            months.push(format!("{year:04}-{:02}", u8::from(month)));
            if year == self.last.year() && month == self.last.month() {
                return months;
            }
            if month == time::Month::December {
                year += 1;
            }
            month = month.next();
        }
    }

    /// Every day of the period, "YYYY-MM-DD".
    pub fn day_texts(&self) -> Vec<String> {
        let mut days = Vec::new();
        let mut day = self.first;
        while day <= self.last {
            days.push(day_text(day));
            match day.next_day() {
                Some(next) => day = next,
                None => break,
            }
        }
        days
    }

    pub fn overlaps(&self, other: &Period) -> bool {
        self.first <= other.last && other.first <= self.last
    }
}

/// Serde for a `Date` as "YYYY-MM-DD".
pub mod day_serde {
    use serde::{Deserialize, Deserializer, Serializer};
    use time::Date;

    pub fn serialize<S: Serializer>(date: &Date, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&super::day_text(*date))
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Date, D::Error> {
        let text = String::deserialize(deserializer)?;
        super::parse_day(&text).ok_or_else(|| serde::de::Error::custom(format!("not a day: {text}")))
    }
}

/// Serde for an optional `Date` as "YYYY-MM-DD" or null.
pub mod optional_day_serde {
    use serde::{Deserialize, Deserializer, Serializer};
    use time::Date;

    pub fn serialize<S: Serializer>(date: &Option<Date>, serializer: S) -> Result<S::Ok, S::Error> {
        match date {
            Some(date) => serializer.serialize_some(&super::day_text(*date)),
            None => serializer.serialize_none(),
        }
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Option<Date>, D::Error> {
        match Option::<String>::deserialize(deserializer)? {
            None => Ok(None),
            Some(text) => super::parse_day(&text)
                .map(Some)
                .ok_or_else(|| serde::de::Error::custom(format!("not a day: {text}"))),
        }
    }
}

/// Which resource a domain refusal is about, for the edge to name in its error.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FieldError {
    /// The request field at fault, as a path ("version.conditions[1].expression").
    pub field: String,
    /// What is wrong, in English (logs, API).
    pub message: String,
    /// The same for a clerk, in zh-CN.
    pub message_zh: String,
}

impl FieldError {
    pub fn new(field: impl Into<String>, message: impl Into<String>, message_zh: impl Into<String>) -> Self {
        Self {
            field: field.into(),
            message: message.into(),
            message_zh: message_zh.into(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use time::macros::date;

    #[test]
    fn a_calendar_month_is_first_to_last_day() {
        let march = Period {
            first: date!(2026 - 03 - 01),
            last: date!(2026 - 03 - 31),
        };
        assert!(march.is_calendar_month());
        assert_eq!(march.days(), 31);
        let february_leap = Period {
            first: date!(2024 - 02 - 01),
            last: date!(2024 - 02 - 29),
        };
        assert!(february_leap.is_calendar_month());
        let short = Period {
            first: date!(2026 - 03 - 01),
            last: date!(2026 - 03 - 30),
        };
        assert!(!short.is_calendar_month());
    }

    #[test]
    fn months_and_days_of_a_period() {
        let period = Period {
            first: date!(2025 - 12 - 30),
            last: date!(2026 - 01 - 02),
        };
        assert_eq!(period.months(), vec!["2025-12", "2026-01"]);
        assert_eq!(
            period.day_texts(),
            vec!["2025-12-30", "2025-12-31", "2026-01-01", "2026-01-02"]
        );
    }

    #[test]
    fn days_parse_strictly() {
        assert_eq!(parse_day("2026-02-28"), Some(date!(2026 - 02 - 28)));
        assert_eq!(parse_day("2026-02-29"), None);
        assert_eq!(parse_day("2026-2-28"), None);
    }
}
