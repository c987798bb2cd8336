//! Work relief's rules as plain Rust: the kinds its records have, a payroll line's amount, the
//! labor-remuneration share and the least remuneration the rules ask, the days of a month an
//! enrolment covers, the due date and age of a month's pay. Nothing here knows gRPC or SQL.

use bangfu_platform::stored_enum;
use time::{Date, Month};

stored_enum! {
    /// The channel a project runs through.
    Channel {
        Dedicated => "dedicated",
        RuralInfrastructure => "rural_infrastructure",
        KeyProject => "key_project",
    }
}

stored_enum! {
    /// Running or closed.
    ProjectState {
        Active => "active",
        Closed => "closed",
    }
}

stored_enum! {
    /// Where allotted money comes from.
    FundSource {
        Central => "central",
        Provincial => "provincial",
        County => "county",
        Other => "other",
    }
}

impl FundSource {
    /// The parameter that holds this source's minimum labor share, in basis points.
    pub fn min_share_key(self) -> &'static str {
        match self {
            FundSource::Central => "work_relief.min_labor_share_bp",
            FundSource::Provincial => "work_relief.min_labor_share_provincial_bp",
            FundSource::County => "work_relief.min_labor_share_county_bp",
            FundSource::Other => "work_relief.min_labor_share_other_bp",
        }
    }
}

stored_enum! {
    /// A worker's role on the project.
    WorkerRole {
        Worker => "worker",
        TeamLeader => "team_leader",
        Manager => "manager",
        Technician => "technician",
    }
}

impl WorkerRole {
    /// Managers' and technicians' pay is not labor remuneration in the share's sense.
    pub fn counts_in_share(self) -> bool {
        matches!(self, WorkerRole::Worker | WorkerRole::TeamLeader)
    }
}

stored_enum! {
    /// How a worker is paid.
    PayBasis {
        Daily => "daily",
        Piece => "piece",
    }
}

stored_enum! {
    /// On the roster or ended.
    EnrolmentState {
        Active => "active",
        Ended => "ended",
    }
}

stored_enum! {
    /// Where a payroll stands; AWAITING_APPROVAL is NOTICE after its last day, never stored.
    PayrollState {
        Draft => "draft",
        Notice => "notice",
        AwaitingApproval => "awaiting_approval",
        Approved => "approved",
        Paid => "paid",
    }
}

stored_enum! {
    /// Where a payroll line's money stands.
    LineState {
        Prepared => "prepared",
        Pending => "pending",
        Claimed => "claimed",
        ClaimRefused => "claim_refused",
        PaymentFailed => "payment_failed",
        Paid => "paid",
    }
}

stored_enum! {
    /// How a receipt was confirmed.
    ReceiptSource {
        Bank => "bank",
        PaperLedger => "paper_ledger",
    }
}

stored_enum! {
    /// Whether an objection is open.
    ObjectionState {
        Open => "open",
        Upheld => "upheld",
        Dismissed => "dismissed",
    }
}

/// The state a payroll is in on `today`: a notice whose last day has passed awaits approval.
pub fn effective_state(stored: PayrollState, notice_last: Option<Date>, today: Date) -> PayrollState {
    match (stored, notice_last) {
        (PayrollState::Notice, Some(last)) if today > last => PayrollState::AwaitingApproval,
        (stored, _) => stored,
    }
}

/// A calendar month.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct YearMonth {
    pub year: i32,
    pub month: Month,
}

impl YearMonth {
    pub fn new(year: i32, month: u8) -> Option<Self> {
        (1900..=9999).contains(&year).then_some(())?;
        Some(Self {
            year,
            month: Month::try_from(month).ok()?,
        })
    }

    pub fn of(day: Date) -> Self {
        Self {
            year: day.year(),
            month: day.month(),
        }
    }

    /// "2026-03", as months are stored and named.
    pub fn text(self) -> String {
        format!("{:04}-{:02}", self.year, u8::from(self.month))
    }

    pub fn parse(text: &str) -> Option<Self> {
        let (year, month) = text.split_once('-')?;
        Self::new(year.parse().ok()?, month.parse().ok()?)
    }

    pub fn first_day(self) -> Date {
        // Day 1 exists in every month.
        Date::from_calendar_date(self.year, self.month, 1).unwrap_or(Date::MIN)
    }

    pub fn last_day(self) -> Date {
        let days = time::util::days_in_month(self.month, self.year);
        Date::from_calendar_date(self.year, self.month, days).unwrap_or(Date::MIN)
    }

    pub fn days(self) -> i64 {
        i64::from(time::util::days_in_month(self.month, self.year))
    }

    pub fn next(self) -> Self {
        match self.month {
            Month::December => Self {
                year: self.year + 1,
                month: Month::January,
            },
            month => Self {
                year: self.year,
                month: month.next(),
            },
        }
    }
}

/// The days of `month` an enrolment from `start` to `end` (open when None) covers.
pub fn days_enrolled(start: Date, end: Option<Date>, month: YearMonth) -> i64 {
    let first = start.max(month.first_day());
    let last = end.map_or(month.last_day(), |end| end.min(month.last_day()));
    if last < first {
        0
    } else {
        (last - first).whole_days() + 1
    }
}

/// A line's amount: days × daily wage or pieces × piece rate; None on overflow.
pub fn line_amount(basis: PayBasis, rate_fen: i64, days: i64, pieces: i64) -> Option<i64> {
    match basis {
        PayBasis::Daily => rate_fen.checked_mul(days),
        PayBasis::Piece => rate_fen.checked_mul(pieces),
    }
}

/// `amount × bp / 10,000`, rounded up: the least remuneration a share asks is never rounded
/// in the project's favour.
pub fn share_of(amount_fen: i64, bp: i64) -> i64 {
    let product = i128::from(amount_fen) * i128::from(bp);
    let required = (product + 9_999).div_euclid(10_000);
    i64::try_from(required).unwrap_or(i64::MAX)
}

/// `part ÷ whole` in basis points, rounded down; 0 when there is no whole.
pub fn share_bp(part_fen: i64, whole_fen: i64) -> i32 {
    if whole_fen <= 0 {
        return 0;
    }
    let bp = i128::from(part_fen) * 10_000 / i128::from(whole_fen);
    i32::try_from(bp).unwrap_or(i32::MAX)
}

/// The day a month's remuneration is due: the project's pay day in the following month.
pub fn due_date(month: YearMonth, pay_day: u8) -> Date {
    let next = month.next();
    let day = pay_day.clamp(1, 28);
    Date::from_calendar_date(next.year, next.month, day).unwrap_or(Date::MIN)
}

/// Days a line is overdue on `today`, after the due date and the allowed days; 0 or less is
/// not overdue.
pub fn days_overdue(due: Date, allowed_days: i64, today: Date) -> i64 {
    (today - due).whole_days() - allowed_days
}

/// The relocated persons a relocation site's roster of `workers` must hold: the reserved share,
/// rounded up.
pub fn relocated_reserved(workers: i64, reserved_bp: i64) -> i64 {
    share_of(workers, reserved_bp)
}

/// Categories identity certifies that make a target person (脱贫人口, 防止返贫监测对象).
pub fn is_target_category(category: &str) -> bool {
    matches!(category, "POVERTY_ALLEVIATED" | "MONITORED_AT_RISK")
}

/// The county (first 6 digits) of a division code.
pub fn county_of(region: &str) -> &str {
    region.get(..6).unwrap_or(region)
}

#[cfg(test)]
mod tests {
    use super::*;
    use time::macros::date;

    #[test]
    fn a_month_knows_its_days_and_successor() {
        let feb = YearMonth::new(2024, 2).expect("month");
        assert_eq!(feb.days(), 29);
        assert_eq!(feb.last_day(), date!(2024 - 02 - 29));
        assert_eq!(YearMonth::new(2025, 12).expect("month").next().text(), "2026-01");
        assert_eq!(YearMonth::parse("2025-03"), YearMonth::new(2025, 3));
        assert_eq!(YearMonth::parse("2025-13"), None);
    }

    #[test]
    fn days_enrolled_clip_to_the_enrolment() {
        let march = YearMonth::new(2025, 3).expect("month");
        assert_eq!(days_enrolled(date!(2025 - 01 - 01), None, march), 31);
        assert_eq!(days_enrolled(date!(2025 - 03 - 10), None, march), 22);
        assert_eq!(
            days_enrolled(date!(2025 - 03 - 10), Some(date!(2025 - 03 - 19)), march),
            10
        );
        assert_eq!(days_enrolled(date!(2025 - 04 - 01), None, march), 0);
        assert_eq!(
            days_enrolled(date!(2025 - 01 - 01), Some(date!(2025 - 02 - 28)), march),
            0
        );
    }

    #[test]
    fn line_amounts_multiply_and_refuse_overflow() {
        assert_eq!(line_amount(PayBasis::Daily, 13_000, 22, 0), Some(286_000));
        assert_eq!(line_amount(PayBasis::Piece, 450, 0, 1_200), Some(540_000));
        assert_eq!(line_amount(PayBasis::Daily, i64::MAX, 2, 0), None);
    }

    #[test]
    fn the_least_remuneration_rounds_up_and_the_share_down() {
        // 30 % of 1,000,001 fen is 300,000.3 fen: 300,001 is asked.
        assert_eq!(share_of(1_000_001, 3_000), 300_001);
        assert_eq!(share_of(1_000_000, 3_000), 300_000);
        assert_eq!(share_bp(299_999, 1_000_000), 2_999);
        assert_eq!(share_bp(300_000, 1_000_000), 3_000);
        assert_eq!(share_bp(5, 0), 0);
        assert_eq!(relocated_reserved(7, 3_000), 3);
    }

    #[test]
    fn pay_is_due_on_the_pay_day_of_the_next_month_and_ages_after_the_allowed_days() {
        let december = YearMonth::new(2025, 12).expect("month");
        let due = due_date(december, 15);
        assert_eq!(due, date!(2026 - 01 - 15));
        assert_eq!(days_overdue(due, 5, date!(2026 - 01 - 20)), 0);
        assert_eq!(days_overdue(due, 5, date!(2026 - 01 - 23)), 3);
    }

    #[test]
    fn only_workers_and_team_leaders_count_in_the_share() {
        assert!(WorkerRole::Worker.counts_in_share());
        assert!(WorkerRole::TeamLeader.counts_in_share());
        assert!(!WorkerRole::Manager.counts_in_share());
        assert!(!WorkerRole::Technician.counts_in_share());
    }

    #[test]
    fn a_notice_past_its_last_day_awaits_approval() {
        let last = Some(date!(2025 - 04 - 07));
        assert_eq!(
            effective_state(PayrollState::Notice, last, date!(2025 - 04 - 07)),
            PayrollState::Notice
        );
        assert_eq!(
            effective_state(PayrollState::Notice, last, date!(2025 - 04 - 08)),
            PayrollState::AwaitingApproval
        );
        assert_eq!(
            effective_state(PayrollState::Approved, last, date!(2025 - 04 - 08)),
            PayrollState::Approved
        );
    }
}
