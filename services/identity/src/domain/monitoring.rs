//! Employment and income monitoring (就业和收入监测): the status timeline, and the drops that
//! raise an alert early enough for a village cadre to act (Shandong §三(二)).

use time::Date;

/// A person's employment status for a period (就业状态).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EmploymentStatus {
    Unemployed,
    EmployedInCounty,
    EmployedOutOfCounty,
    EmployedOutOfProvince,
    SelfEmployed,
    PublicWelfarePost,
    WorkRelief,
    InTraining,
    NotInLaborForce,
}

impl EmploymentStatus {
    pub const ALL: [EmploymentStatus; 9] = [
        Self::Unemployed,
        Self::EmployedInCounty,
        Self::EmployedOutOfCounty,
        Self::EmployedOutOfProvince,
        Self::SelfEmployed,
        Self::PublicWelfarePost,
        Self::WorkRelief,
        Self::InTraining,
        Self::NotInLaborForce,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Unemployed => "unemployed",
            Self::EmployedInCounty => "employed_in_county",
            Self::EmployedOutOfCounty => "employed_out_of_county",
            Self::EmployedOutOfProvince => "employed_out_of_province",
            Self::SelfEmployed => "self_employed",
            Self::PublicWelfarePost => "public_welfare_post",
            Self::WorkRelief => "work_relief",
            Self::InTraining => "in_training",
            Self::NotInLaborForce => "not_in_labor_force",
        }
    }

    pub fn parse(text: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|s| s.as_str() == text)
    }

    /// Whether the person works (any form of employment counts for the employed total).
    pub fn is_employed(self) -> bool {
        !matches!(self, Self::Unemployed | Self::InTraining | Self::NotInLaborForce)
    }
}

/// What an alert is about.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AlertKind {
    IncomeDropYearOnYear,
    IncomeDropMonthOnMonth,
    EmploymentLost,
    RegionEmploymentDrop,
}

impl AlertKind {
    pub const ALL: [AlertKind; 4] = [
        Self::IncomeDropYearOnYear,
        Self::IncomeDropMonthOnMonth,
        Self::EmploymentLost,
        Self::RegionEmploymentDrop,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::IncomeDropYearOnYear => "income_drop_year_on_year",
            Self::IncomeDropMonthOnMonth => "income_drop_month_on_month",
            Self::EmploymentLost => "employment_lost",
            Self::RegionEmploymentDrop => "region_employment_drop",
        }
    }

    pub fn parse(text: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|k| k.as_str() == text)
    }
}

/// A calendar month.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct Month {
    pub year: i32,
    pub month: u8,
}

impl Month {
    pub fn new(year: i32, month: i32) -> Option<Month> {
        ((1..=12).contains(&month) && (1900..=9999).contains(&year)).then_some(Month {
            year,
            month: month as u8,
        })
    }

    /// `YYYY-MM`, which sorts like the months.
    pub fn text(self) -> String {
        format!("{:04}-{:02}", self.year, self.month)
    }

    pub fn previous(self) -> Month {
        if self.month == 1 {
            Month {
                year: self.year - 1,
                month: 12,
            }
        } else {
            Month {
                year: self.year,
                month: self.month - 1,
            }
        }
    }

    pub fn a_year_before(self) -> Month {
        Month {
            year: self.year - 1,
            month: self.month,
        }
    }

    pub fn first_day(self) -> Date {
        let month = time::Month::try_from(self.month).unwrap_or(time::Month::January);
        Date::from_calendar_date(self.year, month, 1).unwrap_or(Date::MIN)
    }

    pub fn last_day(self) -> Date {
        let month = time::Month::try_from(self.month).unwrap_or(time::Month::January);
        Date::from_calendar_date(self.year, month, month.length(self.year)).unwrap_or(Date::MAX)
    }

    pub fn of(day: Date) -> Month {
        Month {
            year: day.year(),
            month: u8::from(day.month()),
        }
    }
}

/// How far `now` fell below `before`, in basis points, when it fell beyond `threshold_bp`
/// (strictly more, as "超过" reads). Nothing before (or zero) is no base to fall from.
pub fn drop_beyond(before: i64, now: i64, threshold_bp: i64) -> Option<i64> {
    if before <= 0 || now >= before {
        return None;
    }
    // i128: a year's income in fen times 10,000 does not fit comfortably in i64 at the extremes.
    let fell = i128::from(before - now) * 10_000;
    let beyond = fell > i128::from(threshold_bp) * i128::from(before);
    beyond.then(|| (fell / i128::from(before)) as i64)
}

#[cfg(test)]
mod tests {
    use super::*;
    use time::macros::date;

    #[test]
    fn a_drop_alerts_only_beyond_the_threshold() {
        // 20% threshold (2000 bp): 3000 → 2400 is exactly 20%, not beyond it.
        assert_eq!(drop_beyond(300_000, 240_000, 2000), None);
        assert_eq!(drop_beyond(300_000, 239_999, 2000), Some(2000));
        assert_eq!(drop_beyond(300_000, 150_000, 2000), Some(5000));
        assert_eq!(drop_beyond(0, 0, 2000), None);
        assert_eq!(drop_beyond(100, 200, 2000), None);
        assert_eq!(drop_beyond(100, 0, 2000), Some(10_000));
    }

    #[test]
    fn months_step_across_years() {
        let january = Month::new(2026, 1).unwrap();
        assert_eq!(january.previous(), Month::new(2025, 12).unwrap());
        assert_eq!(january.a_year_before().text(), "2025-01");
        assert_eq!(Month::new(2024, 2).unwrap().last_day(), date!(2024 - 02 - 29));
        assert_eq!(Month::new(2026, 13), None);
        assert_eq!(Month::of(date!(2026 - 11 - 23)).text(), "2026-11");
    }

    #[test]
    fn training_and_unemployment_are_not_employment() {
        assert!(!EmploymentStatus::Unemployed.is_employed());
        assert!(!EmploymentStatus::InTraining.is_employed());
        assert!(EmploymentStatus::PublicWelfarePost.is_employed());
    }
}
