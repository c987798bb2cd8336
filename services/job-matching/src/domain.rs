//! Job matching's rules as plain Rust: the kinds its records have, the unified social credit
//! code's check character (GB 32100), where a job lies from a person on the division tree, and
//! the score a seeker and a posting get together with every reason behind it. The store ranks
//! in SQL with the same arithmetic (see `store::score_sql`); a test holds the two equal. Nothing
//! here knows gRPC or SQL.

use bangfu_platform::stored_enum;
use time::Date;

stored_enum! {
    /// The kinds of carrier (就业载体) the documents name.
    CarrierKind {
        Employer => "employer",
        AssistanceWorkshop => "assistance_workshop",
        LaborBase => "labor_base",
        LaborBrand => "labor_brand",
        LaborCooperative => "labor_cooperative",
        HrAgency => "hr_agency",
        LaborAlliance => "labor_alliance",
        LaborStation => "labor_station",
    }
}

stored_enum! {
    /// Whether a posting takes applications (expiry is computed from valid_until on read).
    PostingState {
        Open => "open",
        Closed => "closed",
        Expired => "expired",
    }
}

stored_enum! {
    /// Whether a seeker is looking.
    SeekerState {
        Active => "active",
        Placed => "placed",
        Withdrawn => "withdrawn",
    }
}

stored_enum! {
    /// Where a seeker is willing to work (就业意向).
    WorkIntention {
        Local => "local",
        OutOfCounty => "out_of_county",
        OutOfProvince => "out_of_province",
    }
}

stored_enum! {
    /// A person's labor capacity as identity assessed it.
    LaborCapacity {
        Full => "full",
        Weak => "weak",
        Half => "half",
        None => "none",
    }
}

stored_enum! {
    /// Where an application stands.
    ApplicationState {
        Submitted => "submitted",
        Accepted => "accepted",
        Rejected => "rejected",
    }
}

stored_enum! {
    /// Whether a placement is running.
    PlacementState {
        Active => "active",
        Ended => "ended",
    }
}

stored_enum! {
    /// Why a placement ended.
    EndReason {
        ContractEnded => "contract_ended",
        Resigned => "resigned",
        Dismissed => "dismissed",
        Other => "other",
    }
}

stored_enum! {
    /// Where a placement's work lies against the person's registered region.
    EmploymentPlace {
        InCounty => "in_county",
        OutOfCounty => "out_of_county",
        OutOfProvince => "out_of_province",
    }
}

stored_enum! {
    /// How an export batch travels.
    TravelMode {
        Bus => "bus",
        Train => "train",
        Air => "air",
    }
}

stored_enum! {
    /// Whether an export batch has left.
    ExportBatchState {
        Planned => "planned",
        Departed => "departed",
    }
}

stored_enum! {
    /// Where a subsidy claim this service sends stands.
    ClaimProgress {
        NotClaimed => "not_claimed",
        Pending => "pending",
        Submitted => "submitted",
        Granted => "granted",
        Refused => "refused",
        Paid => "paid",
        PaymentFailed => "payment_failed",
    }
}

stored_enum! {
    /// The subsidies an export batch claims for each traveller.
    ExportSubsidy {
        Transport => "transport",
        Agency => "agency",
    }
}

impl CarrierKind {
    /// Whether it may organize an export batch: agencies, cooperatives, stations and alliances
    /// do; an employer or a workshop hires, it does not send.
    pub fn organizes_export(self) -> bool {
        matches!(
            self,
            CarrierKind::HrAgency
                | CarrierKind::LaborCooperative
                | CarrierKind::LaborStation
                | CarrierKind::LaborAlliance
        )
    }
}

/// A division code padded to the 12 digits subsidy payment's facts take ("370402" →
/// "370402000000").
pub fn padded_code(code: &str) -> String {
    format!("{code:0<12}")
}

stored_enum! {
    /// The kinds of recruitment event the reports count.
    RecruitmentEventKind {
        JobFair => "job_fair",
        RelocationSite => "relocation_site",
        Online => "online",
        LaborCooperation => "labor_cooperation",
    }
}

stored_enum! {
    /// Where a trainee stands.
    EnrolmentState {
        Enrolled => "enrolled",
        Completed => "completed",
        Dropped => "dropped",
    }
}

/// Priority as a target person, stored as its rank (0 to 3) so SQL can order and score by it.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Priority {
    #[default]
    None = 0,
    OtherTarget = 1,
    PovertyAlleviated = 2,
    MonitoredAtRisk = 3,
}

impl Priority {
    pub fn rank(self) -> i64 {
        self as i64
    }

    pub fn from_rank(rank: i64) -> Option<Self> {
        match rank {
            0 => Some(Priority::None),
            1 => Some(Priority::OtherTarget),
            2 => Some(Priority::PovertyAlleviated),
            3 => Some(Priority::MonitoredAtRisk),
            _ => None,
        }
    }

    /// The highest priority among the categories a person holds (identity's names without
    /// prefix): monitored at-risk first, then poverty-alleviated, then any other target.
    pub fn of_categories(categories: &[String]) -> Self {
        categories
            .iter()
            .map(|c| match c.as_str() {
                "MONITORED_AT_RISK" => Priority::MonitoredAtRisk,
                "POVERTY_ALLEVIATED" => Priority::PovertyAlleviated,
                _ => Priority::OtherTarget,
            })
            .max()
            .unwrap_or(Priority::None)
    }

    /// A target person (脱贫人口 or 监测对象) as 附件1 counts those a carrier absorbs.
    pub fn is_counted_target(self) -> bool {
        matches!(self, Priority::PovertyAlleviated | Priority::MonitoredAtRisk)
    }
}

// ---------------------------------------------------------------------------------------------
// Unified social credit code (统一社会信用代码, GB 32100-2015)

/// The 31 characters the code uses (no I, O, S, V, Z), each worth its index.
const CREDIT_CHARSET: &[u8] = b"0123456789ABCDEFGHJKLMNPQRTUWXY";
/// Weight of the i-th of the first 17 characters: 3^i mod 31.
const CREDIT_WEIGHTS: [u32; 17] = [1, 3, 9, 27, 19, 26, 16, 17, 20, 29, 25, 13, 8, 24, 10, 30, 28];

/// Why a credit code is refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CreditCodeError {
    #[error("a unified social credit code has 18 characters, not {0}")]
    Length(usize),
    #[error("character {position} ('{character}') is not used in unified social credit codes")]
    Character { position: usize, character: char },
    #[error("the check character should be '{expected}', not '{found}'")]
    Check { expected: char, found: char },
}

/// Checks a unified social credit code (upper-cased by the caller) against GB 32100's check
/// character: 31 minus the weighted sum mod 31, with 31 written as 0.
pub fn check_credit_code(code: &str) -> Result<(), CreditCodeError> {
    let chars: Vec<char> = code.chars().collect();
    if chars.len() != 18 {
        return Err(CreditCodeError::Length(chars.len()));
    }
    let mut values = [0u32; 18];
    for (position, character) in chars.iter().enumerate() {
        let value =
            CREDIT_CHARSET
                .iter()
                .position(|c| char::from(*c) == *character)
                .ok_or(CreditCodeError::Character {
                    position: position + 1,
                    character: *character,
                })?;
        values[position] = u32::try_from(value).unwrap_or(0);
    }
    let sum: u32 = CREDIT_WEIGHTS.iter().zip(values).map(|(w, v)| w * v).sum();
    let check = (31 - sum % 31) % 31;
    let expected = char::from(CREDIT_CHARSET[check as usize]);
    if chars[17] != expected {
        return Err(CreditCodeError::Check {
            expected,
            found: chars[17],
        });
    }
    Ok(())
}

// ---------------------------------------------------------------------------------------------
// The division tree

/// The lengths of a division code's levels: province, city, county, township, village.
const LEVELS: [usize; 5] = [2, 4, 6, 9, 12];

/// A division code at its own level: "370402000000" → "370402"; "370402" stays.
pub fn natural_code(code: &str) -> &str {
    let mut end = code.len();
    for pair in LEVELS.windows(2).rev() {
        let (shorter, longer) = (pair[0], pair[1]);
        if end == longer && code.len() >= longer && code[shorter..longer].bytes().all(|b| b == b'0') {
            end = shorter;
        }
    }
    &code[..end]
}

/// The code's prefix at each level it reaches, for the store: [province, city, county,
/// township, village], empty past its own level.
pub fn level_prefixes(code: &str) -> [String; 5] {
    let code = natural_code(code);
    LEVELS.map(|len| {
        if code.len() >= len {
            code[..len].to_string()
        } else {
            String::new()
        }
    })
}

/// How near a job is to a person on the division tree (or along their cooperation route).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Proximity {
    Elsewhere,
    Partner,
    SameProvince,
    SameCity,
    SameCounty,
    SameTownship,
    SameVillage,
}

impl Proximity {
    /// How well the distance fits, 0 to 10000.
    pub fn fit_bp(self) -> i64 {
        match self {
            Proximity::SameVillage => 10_000,
            Proximity::SameTownship => 9_000,
            Proximity::SameCounty => 8_000,
            Proximity::SameCity => 6_000,
            Proximity::SameProvince => 4_000,
            Proximity::Partner => 3_000,
            Proximity::Elsewhere => 0,
        }
    }

    pub fn explanation(self) -> &'static str {
        match self {
            Proximity::SameVillage => "同一村（社区）",
            Proximity::SameTownship => "同一乡镇（街道）",
            Proximity::SameCounty => "同一县（区）",
            Proximity::SameCity => "同一市",
            Proximity::SameProvince => "同一省",
            Proximity::Partner => "劳务协作对口省份",
            Proximity::Elsewhere => "其他地区",
        }
    }
}

/// Where `work_region` lies from a person registered in `home` (a village code) on the
/// cooperation route towards `route_destination` (a province, or empty).
pub fn proximity(home: &str, work_region: &str, route_destination: &str) -> Proximity {
    let home = level_prefixes(home);
    let work = level_prefixes(work_region);
    let same = |level: usize| !work[level].is_empty() && work[level] == home[level];
    if same(4) {
        Proximity::SameVillage
    } else if same(3) {
        Proximity::SameTownship
    } else if same(2) {
        Proximity::SameCounty
    } else if same(1) {
        Proximity::SameCity
    } else if same(0) {
        Proximity::SameProvince
    } else if !route_destination.is_empty() && work[0] == route_destination {
        Proximity::Partner
    } else {
        Proximity::Elsewhere
    }
}

/// Where a placement's work lies against the person's registered region, as identity's
/// employment status names it. A work region above county level inside the home city counts
/// as out of county: nobody can say it is in it.
pub fn employment_place(home: &str, work_region: &str) -> EmploymentPlace {
    let home = level_prefixes(home);
    let work = level_prefixes(work_region);
    if work[0] != home[0] {
        EmploymentPlace::OutOfProvince
    } else if !work[2].is_empty() && work[2] == home[2] {
        EmploymentPlace::InCounty
    } else {
        EmploymentPlace::OutOfCounty
    }
}

// ---------------------------------------------------------------------------------------------
// Matching

stored_enum! {
    /// What a recommendation weighs, in the order reasons are given.
    Factor {
        Distance => "distance",
        Intention => "intention",
        Skills => "skills",
        Wage => "wage",
        LaborCapacity => "labor_capacity",
        TargetPriority => "target_priority",
    }
}

impl Factor {
    /// The parameter holding its weight in basis points.
    pub fn weight_key(self) -> &'static str {
        match self {
            Factor::Distance => "jobs.weight_distance_bp",
            Factor::Intention => "jobs.weight_intention_bp",
            Factor::Skills => "jobs.weight_skills_bp",
            Factor::Wage => "jobs.weight_wage_bp",
            Factor::LaborCapacity => "jobs.weight_labor_capacity_bp",
            Factor::TargetPriority => "jobs.weight_priority_bp",
        }
    }
}

/// Each factor's weight in basis points, from the parameters in force.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Weights {
    pub distance: i64,
    pub intention: i64,
    pub skills: i64,
    pub wage: i64,
    pub labor_capacity: i64,
    pub priority: i64,
}

impl Weights {
    pub fn of(&self, factor: Factor) -> i64 {
        match factor {
            Factor::Distance => self.distance,
            Factor::Intention => self.intention,
            Factor::Skills => self.skills,
            Factor::Wage => self.wage,
            Factor::LaborCapacity => self.labor_capacity,
            Factor::TargetPriority => self.priority,
        }
    }
}

/// What matching reads of a seeker.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SeekerProfile {
    /// The registered village code.
    pub home: String,
    pub labor_capacity: Option<LaborCapacity>,
    pub priority: Priority,
    pub skills: Vec<String>,
    pub intentions: Vec<WorkIntention>,
    pub destinations: Vec<String>,
    pub expected_wage_fen: i64,
    /// The province their cooperation route leads to, or empty.
    pub route_destination: String,
}

/// What matching reads of a posting.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PostingProfile {
    pub work_region: String,
    pub wage_max_fen: i64,
    pub accepted: Vec<LaborCapacity>,
    pub skills: Vec<String>,
}

/// One reason in a score.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reason {
    pub factor: Factor,
    pub weight_bp: i64,
    pub fit_bp: i64,
    /// weight × fit / 10000, rounded down: what it adds to the score.
    pub points: i64,
    pub explanation: String,
}

/// A pair's score with its reasons.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Scored {
    pub score: i64,
    pub reasons: Vec<Reason>,
}

/// The labor capacities a posting that names none takes.
pub fn accepted_or_default(accepted: &[LaborCapacity]) -> Vec<LaborCapacity> {
    if accepted.is_empty() {
        vec![LaborCapacity::Full]
    } else {
        accepted.to_vec()
    }
}

/// Whether the posting's work region is what the seeker wants: a named destination, or the
/// kind of place one of their intentions names.
fn intention_fit(seeker: &SeekerProfile, work_region: &str) -> (i64, String) {
    let work = natural_code(work_region);
    if let Some(destination) = seeker.destinations.iter().find(|d| work.starts_with(d.as_str())) {
        return (10_000, format!("意向地区 {destination}"));
    }
    let wanted = match employment_place(&seeker.home, work_region) {
        EmploymentPlace::InCounty => WorkIntention::Local,
        EmploymentPlace::OutOfCounty => WorkIntention::OutOfCounty,
        EmploymentPlace::OutOfProvince => WorkIntention::OutOfProvince,
    };
    let label = match wanted {
        WorkIntention::Local => "县内就业",
        WorkIntention::OutOfCounty => "省内县外就业",
        WorkIntention::OutOfProvince => "省外就业",
    };
    if seeker.intentions.contains(&wanted) {
        (10_000, format!("符合意向：{label}"))
    } else {
        (0, format!("不符合意向：岗位属{label}"))
    }
}

/// Scores a seeker and a posting: each factor's fit (0 to 10000) times its weight.
pub fn score(weights: &Weights, seeker: &SeekerProfile, posting: &PostingProfile) -> Scored {
    let proximity = proximity(&seeker.home, &posting.work_region, &seeker.route_destination);
    let (intention, intention_why) = intention_fit(seeker, &posting.work_region);
    let matched = posting.skills.iter().filter(|s| seeker.skills.contains(s)).count() as i64;
    let required = posting.skills.len() as i64;
    let skills = if required == 0 {
        10_000
    } else {
        matched * 10_000 / required
    };
    let wage = if seeker.expected_wage_fen <= 0 || posting.wage_max_fen >= seeker.expected_wage_fen {
        10_000
    } else {
        posting.wage_max_fen * 10_000 / seeker.expected_wage_fen
    };
    let accepted = accepted_or_default(&posting.accepted);
    let capacity = seeker
        .labor_capacity
        .filter(|c| accepted.contains(c))
        .map_or(0, |_| 10_000);
    let priority = match seeker.priority {
        Priority::MonitoredAtRisk => 10_000,
        Priority::PovertyAlleviated => 7_000,
        Priority::OtherTarget => 4_000,
        Priority::None => 0,
    };
    let yuan = |fen: i64| fen / 100;
    let fits = [
        (
            Factor::Distance,
            proximity.fit_bp(),
            proximity.explanation().to_string(),
        ),
        (Factor::Intention, intention, intention_why),
        (
            Factor::Skills,
            skills,
            if required == 0 {
                "岗位无技能要求".to_string()
            } else {
                format!("掌握 {matched}/{required} 项技能")
            },
        ),
        (
            Factor::Wage,
            wage,
            format!(
                "月薪最高 {} 元，期望 {} 元",
                yuan(posting.wage_max_fen),
                yuan(seeker.expected_wage_fen)
            ),
        ),
        (
            Factor::LaborCapacity,
            capacity,
            if capacity > 0 {
                "岗位接受其劳动能力"
            } else {
                "岗位不接受其劳动能力"
            }
            .to_string(),
        ),
        (
            Factor::TargetPriority,
            priority,
            match seeker.priority {
                Priority::MonitoredAtRisk => "防止返贫监测对象，优先",
                Priority::PovertyAlleviated => "脱贫人口，优先",
                Priority::OtherTarget => "其他帮扶对象",
                Priority::None => "非帮扶对象",
            }
            .to_string(),
        ),
    ];
    let reasons: Vec<Reason> = fits
        .into_iter()
        .map(|(factor, fit_bp, explanation)| {
            let weight_bp = weights.of(factor);
            Reason {
                factor,
                weight_bp,
                fit_bp,
                points: weight_bp * fit_bp / 10_000,
                explanation,
            }
        })
        .collect();
    Scored {
        score: reasons.iter().map(|r| r.points).sum(),
        reasons,
    }
}

/// The birth months ("YYYY-MM") of people aged `min_age` to `max_age` on `day`, as an
/// exclusive-inclusive range (after, up to): age counts a birthday in `day`'s month as passed,
/// as identity's masked year and month of birth allow.
pub fn birth_month_range(day: Date, min_age: i64, max_age: i64) -> (String, String) {
    let month = u8::from(day.month());
    let year = i64::from(day.year());
    (
        format!("{:04}-{month:02}", year - max_age - 1),
        format!("{:04}-{month:02}", year - min_age),
    )
}

/// Whole years of age on `day` of a person born in `birth_month` ("YYYY-MM"), counting a
/// birthday in `day`'s month as passed (the rule [`birth_month_range`] bounds); None when the
/// month is not known.
pub fn age_on(birth_month: &str, day: Date) -> Option<i64> {
    let (year, month) = birth_month.split_once('-')?;
    let (year, month): (i64, u8) = (year.parse().ok()?, month.parse().ok()?);
    Some(i64::from(day.year()) - year - i64::from(u8::from(day.month()) < month))
}

/// A skill as matching compares it: trimmed, Latin letters in lower case ("CAD" and "cad" are
/// one skill on either database); SQL pattern characters and the list separator are refused by
/// the wire edge, so none reaches here.
pub fn skill_key(skill: &str) -> String {
    skill.trim().to_ascii_lowercase()
}

#[cfg(test)]
mod tests {
    use super::*;
    use time::macros::date;

    #[test]
    fn credit_codes_are_checked_as_gb_32100_computes() {
        // Codes printed on real business licences.
        for code in ["91350100M000100Y43", "91110000802100433B", "9144030071526726XG"] {
            assert_eq!(check_credit_code(code), Ok(()), "{code}");
        }
        assert_eq!(
            check_credit_code("91350100M000100Y44"),
            Err(CreditCodeError::Check {
                expected: '3',
                found: '4'
            })
        );
        assert_eq!(check_credit_code("9135010"), Err(CreditCodeError::Length(7)));
        assert!(matches!(
            check_credit_code("91350100M0001O0Y43"),
            Err(CreditCodeError::Character { position: 14, .. })
        ));
    }

    #[test]
    fn codes_are_read_at_their_own_level() {
        assert_eq!(natural_code("370402000000"), "370402");
        assert_eq!(natural_code("370400000000"), "3704");
        assert_eq!(natural_code("370402001013"), "370402001013");
        assert_eq!(natural_code("370402001000"), "370402001");
        assert_eq!(natural_code("37"), "37");
        assert_eq!(level_prefixes("370402")[2], "370402");
        assert_eq!(level_prefixes("370402")[3], "");
    }

    #[test]
    fn proximity_walks_the_tree_then_the_route() {
        let home = "370402001013";
        assert_eq!(proximity(home, "370402001013", ""), Proximity::SameVillage);
        assert_eq!(proximity(home, "370402001", ""), Proximity::SameTownship);
        assert_eq!(proximity(home, "370402", ""), Proximity::SameCounty);
        assert_eq!(proximity(home, "370402000000", ""), Proximity::SameCounty);
        assert_eq!(proximity(home, "370403", ""), Proximity::SameCity);
        assert_eq!(proximity(home, "3701", ""), Proximity::SameProvince);
        assert_eq!(proximity("500101001001", "370402", "37"), Proximity::Partner);
        assert_eq!(proximity("500101001001", "440300", "37"), Proximity::Elsewhere);
    }

    #[test]
    fn employment_place_is_judged_from_the_registered_region() {
        let home = "370402001013";
        assert_eq!(employment_place(home, "370402003"), EmploymentPlace::InCounty);
        assert_eq!(employment_place(home, "370481"), EmploymentPlace::OutOfCounty);
        assert_eq!(employment_place(home, "3704"), EmploymentPlace::OutOfCounty);
        assert_eq!(employment_place(home, "500101"), EmploymentPlace::OutOfProvince);
    }

    fn weights() -> Weights {
        Weights {
            distance: 2500,
            intention: 2000,
            skills: 1500,
            wage: 1500,
            labor_capacity: 1000,
            priority: 1500,
        }
    }

    fn seeker() -> SeekerProfile {
        SeekerProfile {
            home: "370402001013".into(),
            labor_capacity: Some(LaborCapacity::Weak),
            priority: Priority::MonitoredAtRisk,
            skills: vec!["缝纫".into(), "包装".into()],
            intentions: vec![WorkIntention::Local],
            destinations: vec![],
            expected_wage_fen: 300_000,
            route_destination: String::new(),
        }
    }

    #[test]
    fn a_score_is_the_sum_of_its_reasons() {
        let posting = PostingProfile {
            work_region: "370402".into(),
            wage_max_fen: 240_000,
            accepted: vec![LaborCapacity::Full, LaborCapacity::Weak],
            skills: vec!["缝纫".into(), "熨烫".into(), "包装".into()],
        };
        let scored = score(&weights(), &seeker(), &posting);
        let points: Vec<i64> = scored.reasons.iter().map(|r| r.points).collect();
        // County 8000 × 0.25; local wanted; 2 of 3 skills; 2400 of 3000 yuan; weak accepted;
        // monitored at risk.
        assert_eq!(points, vec![2000, 2000, 999, 1200, 1000, 1500]);
        assert_eq!(scored.score, 8699);
        assert_eq!(scored.reasons[2].explanation, "掌握 2/3 项技能");
    }

    #[test]
    fn a_posting_that_names_no_capacity_takes_full_labor_only() {
        let posting = PostingProfile {
            work_region: "3201".into(),
            wage_max_fen: 500_000,
            accepted: vec![],
            skills: vec![],
        };
        let scored = score(&weights(), &seeker(), &posting);
        let fits: Vec<i64> = scored.reasons.iter().map(|r| r.fit_bp).collect();
        assert_eq!(fits, vec![0, 0, 10_000, 10_000, 0, 10_000]);
        let mut named = seeker();
        named.destinations = vec!["32".into()];
        assert_eq!(score(&weights(), &named, &posting).reasons[1].fit_bp, 10_000);
    }

    #[test]
    fn priority_is_the_highest_category_held() {
        assert_eq!(Priority::of_categories(&[]), Priority::None);
        assert_eq!(
            Priority::of_categories(&["DISABLED".into(), "POVERTY_ALLEVIATED".into()]),
            Priority::PovertyAlleviated
        );
        assert_eq!(
            Priority::of_categories(&["MONITORED_AT_RISK".into(), "POVERTY_ALLEVIATED".into()]),
            Priority::MonitoredAtRisk
        );
    }

    #[test]
    fn birth_months_bound_the_age_range() {
        // On 2026-12-06, aged 16 to 45: born after 1980-12 and by 2010-12.
        assert_eq!(
            birth_month_range(date!(2026 - 12 - 06), 16, 45),
            ("1980-12".to_string(), "2010-12".to_string())
        );
        assert_eq!(age_on("1980-12", date!(2026 - 12 - 06)), Some(46));
        assert_eq!(age_on("1981-01", date!(2026 - 12 - 06)), Some(45));
        assert_eq!(age_on("", date!(2026 - 12 - 06)), None);
    }
}
