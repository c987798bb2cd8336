//! Public-welfare posts' rules as plain Rust: the kinds a post and a hire have, eligibility as of
//! a hire date (every reason, not only the first), the contract cap per signing, the days a
//! month requires and what a closed month yields. Nothing here knows gRPC or SQL.

use bangfu_platform::identity_reader::PersonFacts;
use time::{Date, Month};

use bangfu_platform::stored_enum;

stored_enum! {
    /// What a holder does.
    PostType {
        Cleaning => "cleaning",
        Greening => "greening",
        FacilityCare => "facility_care",
        CareService => "care_service",
        RuralLogistics => "rural_logistics",
        RoadCare => "road_care",
        RiverPatrol => "river_patrol",
        VillageAffairs => "village_affairs",
        Other => "other",
    }
}

stored_enum! {
    /// A post's class (ordinary, skilled, special).
    PostClass {
        Ordinary => "ordinary",
        Skilled => "skilled",
        Special => "special",
    }
}

stored_enum! {
    /// Where a post's money comes from.
    FundingSource {
        EmploymentSubsidy => "employment_subsidy",
        RuralRevitalization => "rural_revitalization",
        Photovoltaic => "photovoltaic",
        Other => "other",
    }
}

stored_enum! {
    /// Full- or part-time.
    WorkTime {
        FullTime => "full_time",
        PartTime => "part_time",
    }
}

stored_enum! {
    /// Whether a post takes hires.
    PostState {
        Open => "open",
        Closed => "closed",
    }
}

stored_enum! {
    /// Where an application stands.
    ApplicationState {
        Submitted => "submitted",
        Proposed => "proposed",
        Hired => "hired",
        NotHired => "not_hired",
    }
}

stored_enum! {
    /// Where a signing stands; proposed and active ones hold the person's slot.
    AssignmentState {
        Proposed => "proposed",
        Active => "active",
        Withdrawn => "withdrawn",
        Ended => "ended",
    }
}

stored_enum! {
    /// Where an objection stands.
    ObjectionState {
        Open => "open",
        Upheld => "upheld",
        Dismissed => "dismissed",
    }
}

stored_enum! {
    /// Why a holder leaves a post (有序退岗).
    ExitReason {
        ContractEnd => "contract_end",
        FailedEvaluation => "failed_evaluation",
        FoundOtherWork => "found_other_work",
        CategoryRevoked => "category_revoked",
        Death => "death",
        MovedAway => "moved_away",
        CapOrRetirement => "cap_or_retirement",
        TwoPosts => "two_posts",
        Impersonation => "impersonation",
        LongAbsence => "long_absence",
    }
}

stored_enum! {
    /// What a closed month yielded for one holder.
    MonthOutcome {
        Pending => "pending",
        ClaimSubmitted => "claim_submitted",
        NoEvaluation => "no_evaluation",
        BelowMinimumDays => "below_minimum_days",
        EvaluationFailed => "evaluation_failed",
        ClaimRefused => "claim_refused",
    }
}

stored_enum! {
    /// One reason a person may not take a post.
    Ineligibility {
        NotTargetPerson => "not_target_person",
        TooYoung => "too_young",
        TooOld => "too_old",
        NotRegisteredLocally => "not_registered_locally",
        VillageCadre => "village_cadre",
        HoldsAnotherPost => "holds_another_post",
        PhotovoltaicTarget => "photovoltaic_target",
        PlacementsReached => "placements_reached",
        SubsidyRefused => "subsidy_refused",
        DeceasedOrMoved => "deceased_or_moved",
    }
}

/// The categories that make a person a target of the posts (脱贫人口, 监测对象, 农村低收入人口).
pub use bangfu_platform::identity_reader::TARGET_CATEGORIES;

/// The only categories a photovoltaic-funded post may be held by (光伏收益岗位).
pub const PHOTOVOLTAIC_CATEGORIES: &[&str] = &["POVERTY_ALLEVIATED", "MONITORED_AT_RISK"];

/// One reason found, with what exactly failed and the record it rests on.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Finding {
    pub reason: String,
    pub message: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub resource: String,
}

impl Finding {
    fn new(reason: Ineligibility, message: String, resource: impl Into<String>) -> Self {
        Self {
            reason: reason.as_str().to_string(),
            message,
            resource: resource.into(),
        }
    }

    pub fn reason(&self) -> Option<Ineligibility> {
        Ineligibility::parse(&self.reason)
    }
}

/// The age limits in force for the post's region on the hire date (parameters).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AgeLimits {
    pub min: i64,
    pub max: i64,
    pub max_fit: i64,
}

/// What the service knows about a person and a post for one check, gathered by the application.
#[derive(Debug, Clone)]
pub struct EligibilityInput<'a> {
    pub hire_date: Date,
    pub person: &'a PersonFacts,
    pub village: &'a str,
    pub village_residents_only: bool,
    pub funding: FundingSource,
    pub declared_fit: bool,
    pub ages: AgeLimits,
    pub max_placements: i64,
    /// Earlier placements of the person (signings that were not renewals), active or ended.
    pub placements: i64,
    /// The cadre registrations that exclude the person: (registration, whose, how related).
    pub cadres: &'a [CadreLink],
    /// The signing that holds the person's slot over the hire date, if any.
    pub other_slot: Option<&'a str>,
    /// Subsidy payment's reasons against the first month, quoted.
    pub subsidy_refusals: &'a [String],
}

/// A cadre registration that excludes a person.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CadreLink {
    pub registration: String,
    pub office: String,
    /// True when the person is the cadre; false when in the cadre's household.
    pub is_the_cadre: bool,
}

/// Every reason `input`'s person may not take the post on the hire date; empty when eligible.
pub fn check_eligibility(input: &EligibilityInput<'_>) -> Vec<Finding> {
    let mut found = Vec::new();
    let day = input.hire_date;
    let person = input.person;
    let held = person.categories_on(day);
    let holds = |wanted: &[&str]| held.iter().any(|c| wanted.contains(&c.as_str()));
    if !holds(TARGET_CATEGORIES) {
        found.push(Finding::new(
            Ineligibility::NotTargetPerson,
            format!(
                "{} 在 {} 不属于脱贫人口、防止返贫监测对象或农村低收入人口",
                person.display_name, day
            ),
            "",
        ));
    }
    if input.funding == FundingSource::Photovoltaic && !holds(PHOTOVOLTAIC_CATEGORIES) {
        found.push(Finding::new(
            Ineligibility::PhotovoltaicTarget,
            "光伏收益岗位仅限脱贫人口或防止返贫监测对象".to_string(),
            "",
        ));
    }
    if let Some(age) = person.age_on(day) {
        if age < input.ages.min {
            found.push(Finding::new(
                Ineligibility::TooYoung,
                format!("聘用日 {day} 年龄 {age} 周岁，未满 {} 周岁", input.ages.min),
                "",
            ));
        }
        let limit = if input.declared_fit {
            input.ages.max_fit
        } else {
            input.ages.max
        };
        if age > limit {
            found.push(Finding::new(
                Ineligibility::TooOld,
                format!("聘用日 {day} 年龄 {age} 周岁，超过 {limit} 周岁的聘用年龄上限"),
                "",
            ));
        }
    }
    let required = if input.village_residents_only {
        input.village
    } else {
        township(input.village)
    };
    if !person.registered_region.starts_with(required) {
        found.push(Finding::new(
            Ineligibility::NotRegisteredLocally,
            format!(
                "户籍地 {} 不在岗位要求的{} {required}",
                person.registered_region,
                if input.village_residents_only { "村" } else { "乡镇" }
            ),
            "",
        ));
    }
    if person.death_date.is_some_and(|d| d <= day) || person.moved_away_date.is_some_and(|d| d <= day) {
        found.push(Finding::new(
            Ineligibility::DeceasedOrMoved,
            "身份信息记录该人员已死亡或已迁出".to_string(),
            "",
        ));
    }
    for cadre in input.cadres {
        found.push(Finding::new(
            Ineligibility::VillageCadre,
            if cadre.is_the_cadre {
                format!("本人为村干部（{}）", cadre.office)
            } else {
                format!("与村干部（{}）同户", cadre.office)
            },
            cadre.registration.clone(),
        ));
    }
    if let Some(other) = input.other_slot {
        found.push(Finding::new(
            Ineligibility::HoldsAnotherPost,
            "同一时期已在岗或已拟聘其他公益性岗位（一人一岗）".to_string(),
            other,
        ));
    }
    if input.placements >= input.max_placements {
        found.push(Finding::new(
            Ineligibility::PlacementsReached,
            format!(
                "已安置公益性岗位 {} 次，达到上限 {} 次",
                input.placements, input.max_placements
            ),
            "",
        ));
    }
    for refusal in input.subsidy_refusals {
        found.push(Finding::new(Ineligibility::SubsidyRefused, refusal.clone(), ""));
    }
    found
}

/// The township (乡镇) a village lies in: its first nine digits.
pub fn township(village: &str) -> &str {
    village.get(..9).unwrap_or(village)
}

/// How an application ranks: eligible weak and half labor first, then other eligible ones,
/// then those found ineligible, then the unchecked.
pub fn rank_key(eligible: Option<bool>, labor_capacity: &str) -> i64 {
    match eligible {
        Some(true) if matches!(labor_capacity, "WEAK" | "HALF") => 0,
        Some(true) => 1,
        Some(false) => 2,
        None => 9,
    }
}

/// The day `months` calendar months after `day` (the last day of the month when it has fewer days).
pub fn add_months(day: Date, months: i64) -> Date {
    let total = i64::from(day.year()) * 12 + i64::from(u8::from(day.month())) - 1 + months;
    let year = i32::try_from(total.div_euclid(12)).unwrap_or(day.year());
    let month = Month::try_from(u8::try_from(total.rem_euclid(12) + 1).unwrap_or(1)).unwrap_or(Month::January);
    let last = month.length(year);
    Date::from_calendar_date(year, month, day.day().min(last)).unwrap_or(day)
}

/// Whether a contract from `start` to `end` (both inclusive) fits within `months` per signing:
/// it ends before the same day `months` later.
pub fn within_contract_cap(start: Date, end: Date, months: i64) -> bool {
    end >= start && end < add_months(start, months)
}

/// A calendar month: its first and last day.
pub fn month_days(year: i32, month: u8) -> Option<(Date, Date)> {
    let month = Month::try_from(month).ok()?;
    let first = Date::from_calendar_date(year, month, 1).ok()?;
    let last = Date::from_calendar_date(year, month, month.length(year)).ok()?;
    Some((first, last))
}

/// "YYYY-MM" of a day.
pub fn month_text(day: Date) -> String {
    format!("{:04}-{:02}", day.year(), u8::from(day.month()))
}

/// The days on post a month requires of a holder whose signing covers `covered` of the month's
/// `month_len` days: the post's days per month, pro-rated and rounded up.
pub fn required_days(days_per_month: i64, covered: i64, month_len: i64) -> i64 {
    if covered >= month_len || month_len <= 0 {
        return days_per_month;
    }
    (days_per_month * covered + month_len - 1) / month_len
}

/// A month's evaluation as the closing needs it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MonthRecord {
    pub days_on_post: i64,
    pub passed: bool,
}

/// Whether a holder's month yields a claim: Ok, or the outcome and reason for none.
pub fn month_claimable(record: Option<MonthRecord>, required: i64) -> Result<(), (MonthOutcome, String)> {
    let Some(record) = record else {
        return Err((
            MonthOutcome::NoEvaluation,
            "当月未录入考勤与考核，不发放补贴".to_string(),
        ));
    };
    if !record.passed {
        return Err((MonthOutcome::EvaluationFailed, "当月考核不合格，不发放补贴".to_string()));
    }
    if record.days_on_post < required {
        return Err((
            MonthOutcome::BelowMinimumDays,
            format!("当月在岗 {} 天，少于应在岗 {required} 天", record.days_on_post),
        ));
    }
    Ok(())
}

/// Day number of a date, for the slot columns (Julian day).
pub fn day_number(day: Date) -> i64 {
    i64::from(day.to_julian_day())
}

#[cfg(test)]
mod tests {
    use bangfu_platform::identity_reader::CategoryHeld;
    use time::macros::date;

    use super::*;

    fn person(born: (i32, u8), registered: &str, categories: &[&str]) -> PersonFacts {
        PersonFacts {
            person_id: "p1".into(),
            display_name: "张*".into(),
            registered_region: registered.into(),
            residence_region: registered.into(),
            employment_status: "UNEMPLOYED".into(),
            labor_capacity: "HALF".into(),
            birth_year_month: Some(born),
            retirement_month: None,
            death_date: None,
            moved_away_date: None,
            certifications: categories
                .iter()
                .map(|c| CategoryHeld {
                    category: (*c).into(),
                    valid_from: Some(date!(2020 - 01 - 01)),
                    valid_to: None,
                    annulled: false,
                })
                .collect(),
            household: "h1".into(),
        }
    }

    fn input<'a>(person: &'a PersonFacts, funding: FundingSource) -> EligibilityInput<'a> {
        EligibilityInput {
            hire_date: date!(2025 - 04 - 01),
            person,
            village: "370402001013",
            village_residents_only: false,
            funding,
            declared_fit: false,
            ages: AgeLimits {
                min: 16,
                max: 60,
                max_fit: 65,
            },
            max_placements: 2,
            placements: 0,
            cadres: &[],
            other_slot: None,
            subsidy_refusals: &[],
        }
    }

    fn reasons(found: &[Finding]) -> Vec<Ineligibility> {
        found.iter().filter_map(Finding::reason).collect()
    }

    #[test]
    fn an_eligible_person_has_no_reason() {
        let p = person((1970, 5), "370402001099", &["POVERTY_ALLEVIATED"]);
        assert!(check_eligibility(&input(&p, FundingSource::EmploymentSubsidy)).is_empty());
    }

    #[test]
    fn every_reason_is_reported_not_only_the_first() {
        let p = person((1960, 1), "370403001001", &["RURAL_LOW_INCOME"]);
        let cadres = [CadreLink {
            registration: "villageCadres/c1".into(),
            office: "村委会主任".into(),
            is_the_cadre: false,
        }];
        let refusals = ["CAP_REACHED: 已领取36个月".to_string()];
        let mut checked = input(&p, FundingSource::Photovoltaic);
        checked.cadres = &cadres;
        checked.other_slot = Some("assignments/a9");
        checked.placements = 2;
        checked.subsidy_refusals = &refusals;
        let found = check_eligibility(&checked);
        assert_eq!(
            reasons(&found),
            vec![
                Ineligibility::PhotovoltaicTarget,
                Ineligibility::TooOld,
                Ineligibility::NotRegisteredLocally,
                Ineligibility::VillageCadre,
                Ineligibility::HoldsAnotherPost,
                Ineligibility::PlacementsReached,
                Ineligibility::SubsidyRefused,
            ]
        );
        assert_eq!(found[3].resource, "villageCadres/c1");
        assert_eq!(found[4].resource, "assignments/a9");
    }

    #[test]
    fn the_age_limit_rises_for_the_declared_fit_and_youth_is_refused() {
        // Born 1964-03: 61 on 2025-04-01.
        let p = person((1964, 3), "370402001013", &["MONITORED_AT_RISK"]);
        let mut checked = input(&p, FundingSource::EmploymentSubsidy);
        assert_eq!(reasons(&check_eligibility(&checked)), vec![Ineligibility::TooOld]);
        checked.declared_fit = true;
        assert!(check_eligibility(&checked).is_empty());
        // Born 2009-05: 15 on 2025-04-01 (the birthday month is after April).
        let young = person((2009, 5), "370402001013", &["POVERTY_ALLEVIATED"]);
        assert_eq!(
            reasons(&check_eligibility(&input(&young, FundingSource::Other))),
            vec![Ineligibility::TooYoung]
        );
    }

    #[test]
    fn a_category_not_held_on_the_hire_date_does_not_count() {
        let mut p = person((1980, 1), "370402001013", &["POVERTY_ALLEVIATED"]);
        p.certifications[0].valid_to = Some(date!(2025 - 03 - 31));
        assert_eq!(
            reasons(&check_eligibility(&input(&p, FundingSource::EmploymentSubsidy))),
            vec![Ineligibility::NotTargetPerson]
        );
    }

    #[test]
    fn village_only_posts_need_the_village() {
        let p = person((1980, 1), "370402001099", &["POVERTY_ALLEVIATED"]);
        let mut checked = input(&p, FundingSource::EmploymentSubsidy);
        checked.village_residents_only = true;
        assert_eq!(
            reasons(&check_eligibility(&checked)),
            vec![Ineligibility::NotRegisteredLocally]
        );
    }

    #[test]
    fn contracts_fit_the_cap_per_signing() {
        let start = date!(2025 - 04 - 01);
        assert!(within_contract_cap(start, date!(2026 - 03 - 31), 12));
        assert!(!within_contract_cap(start, date!(2026 - 04 - 01), 12));
        assert!(within_contract_cap(start, date!(2025 - 09 - 30), 6));
        assert!(!within_contract_cap(start, date!(2025 - 10 - 01), 6));
        assert!(!within_contract_cap(start, date!(2025 - 03 - 31), 6));
        assert_eq!(add_months(date!(2025 - 01 - 31), 1), date!(2025 - 02 - 28));
        assert_eq!(add_months(date!(2025 - 11 - 15), 3), date!(2026 - 02 - 15));
    }

    #[test]
    fn a_month_is_claimable_only_with_a_passed_evaluation_and_enough_days() {
        assert_eq!(required_days(22, 31, 31), 22);
        assert_eq!(required_days(22, 16, 31), 12);
        assert!(
            month_claimable(
                Some(MonthRecord {
                    days_on_post: 22,
                    passed: true
                }),
                22
            )
            .is_ok()
        );
        assert_eq!(
            month_claimable(
                Some(MonthRecord {
                    days_on_post: 21,
                    passed: true
                }),
                22
            )
            .map_err(|e| e.0),
            Err(MonthOutcome::BelowMinimumDays)
        );
        assert_eq!(
            month_claimable(
                Some(MonthRecord {
                    days_on_post: 30,
                    passed: false
                }),
                22
            )
            .map_err(|e| e.0),
            Err(MonthOutcome::EvaluationFailed)
        );
        assert_eq!(
            month_claimable(None, 22).map_err(|e| e.0),
            Err(MonthOutcome::NoEvaluation)
        );
    }

    #[test]
    fn weak_and_half_labor_rank_first() {
        assert!(rank_key(Some(true), "HALF") < rank_key(Some(true), "FULL"));
        assert!(rank_key(Some(true), "FULL") < rank_key(Some(false), "WEAK"));
        assert!(rank_key(Some(false), "WEAK") < rank_key(None, "WEAK"));
    }
}
