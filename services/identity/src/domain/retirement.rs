//! The legal retirement month under the 2025 reform (国发〔2024〕18号): the old ages (men 60,
//! women 55 or 50) rise by one month for every 4 months (men and women-55) or every 2 months
//! (women-50) that the old retirement month lies after December 2024, up to 3 years (men,
//! women-55) or 5 years (women-50). Every "within five years of retirement" rule reads this.

use time::{Date, Month};

/// Which legal retirement age applies.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RetirementTrack {
    /// Men: 60, rising to 63.
    Man,
    /// Women in cadre or managerial posts: 55, rising to 58.
    Woman55,
    /// Women workers: 50, rising to 55.
    Woman50,
}

impl RetirementTrack {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Man => "man",
            Self::Woman55 => "woman_55",
            Self::Woman50 => "woman_50",
        }
    }

    pub fn parse(text: &str) -> Option<Self> {
        [Self::Man, Self::Woman55, Self::Woman50]
            .into_iter()
            .find(|t| t.as_str() == text)
    }

    /// (old age in years, months of old-rule retirement per month of delay, longest delay).
    fn rule(self) -> (i32, i32, i32) {
        match self {
            Self::Man => (60, 4, 36),
            Self::Woman55 => (55, 4, 36),
            Self::Woman50 => (50, 2, 60),
        }
    }
}

/// A calendar month.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct YearMonth {
    pub year: i32,
    /// 1 to 12.
    pub month: u8,
}

impl YearMonth {
    pub fn of(date: Date) -> Self {
        Self {
            year: date.year(),
            month: u8::from(date.month()),
        }
    }

    fn index(self) -> i32 {
        self.year * 12 + i32::from(self.month) - 1
    }

    fn from_index(index: i32) -> Self {
        Self {
            year: index.div_euclid(12),
            month: (index.rem_euclid(12) + 1) as u8,
        }
    }

    pub fn plus_months(self, months: i32) -> Self {
        Self::from_index(self.index() + months)
    }

    /// The first day of the month.
    pub fn first_day(self) -> Option<Date> {
        Date::from_calendar_date(self.year, Month::try_from(self.month).ok()?, 1).ok()
    }

    /// `YYYY-MM`, as stored.
    pub fn text(self) -> String {
        format!("{:04}-{:02}", self.year, self.month)
    }

    pub fn parse(text: &str) -> Option<Self> {
        let (year, month) = text.split_once('-')?;
        let month: u8 = month.parse().ok()?;
        (1..=12).contains(&month).then_some(Self {
            year: year.parse().ok()?,
            month,
        })
    }
}

/// The reform counts from this month: an old retirement month at or before it is unchanged.
const REFORM_BASE: YearMonth = YearMonth { year: 2024, month: 12 };

/// The month a person born on `birth` reaches the legal retirement age on `track`.
pub fn retirement_month(birth: Date, track: RetirementTrack) -> YearMonth {
    let (old_age, step, cap) = track.rule();
    let old = YearMonth::of(birth).plus_months(old_age * 12);
    let after_base = old.index() - REFORM_BASE.index();
    let delay = if after_base <= 0 {
        0
    } else {
        ((after_base + step - 1) / step).min(cap)
    };
    old.plus_months(delay)
}

#[cfg(test)]
mod tests {
    use super::*;
    use time::macros::date;

    fn ym(year: i32, month: u8) -> YearMonth {
        YearMonth { year, month }
    }

    #[test]
    fn a_man_born_january_1965_retires_february_2025() {
        assert_eq!(
            retirement_month(date!(1965 - 01 - 15), RetirementTrack::Man),
            ym(2025, 2)
        );
    }

    #[test]
    fn a_woman_on_the_55_track_born_april_1971_retires_august_2026() {
        assert_eq!(
            retirement_month(date!(1971 - 04 - 01), RetirementTrack::Woman55),
            ym(2026, 8)
        );
    }

    #[test]
    fn a_woman_on_the_50_track_born_december_1995_retires_december_2050() {
        assert_eq!(
            retirement_month(date!(1995 - 12 - 31), RetirementTrack::Woman50),
            ym(2050, 12)
        );
    }

    #[test]
    fn someone_who_retired_under_the_old_rule_is_unchanged() {
        assert_eq!(
            retirement_month(date!(1964 - 12 - 01), RetirementTrack::Man),
            ym(2024, 12)
        );
        assert_eq!(
            retirement_month(date!(1950 - 06 - 01), RetirementTrack::Woman50),
            ym(2000, 6)
        );
    }

    #[test]
    fn the_delay_stops_at_three_years_for_men() {
        assert_eq!(
            retirement_month(date!(1980 - 01 - 01), RetirementTrack::Man),
            ym(2043, 1)
        );
    }

    #[test]
    fn months_are_stored_as_text_and_read_back() {
        assert_eq!(YearMonth::parse(&ym(2026, 8).text()), Some(ym(2026, 8)));
        assert_eq!(YearMonth::parse("2026-13"), None);
        assert_eq!(ym(2025, 11).plus_months(3), ym(2026, 2));
    }
}
