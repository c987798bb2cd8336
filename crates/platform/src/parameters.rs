//! Rule numbers that differ by region and date — alert thresholds, age limits, contract caps,
//! notice periods, living standards — kept as rows (key, region prefix, valid from, valid to,
//! value, source document), never as constants: the policy documents disagree with each other
//! (contracts ≤ 1 year in Zaozhuang and Chongqing, ≤ 6 months in Chaoyang) and each expires
//! while the work goes on under the next one. A lookup for a key, a region and a date takes the
//! row with the longest region prefix valid that day. Defaults from the documents ship here and
//! are installed into each service's database for the keys it owns; administrators change them
//! through the service's `UpdateParameter`.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use sqlx::{AnyConnection, Row};
use time::{Date, OffsetDateTime};

use crate::audit::{self, AuditEntry};
use crate::auth::{Principal, RegionScope};
use crate::db::{Database, DbError, from_micros, to_micros};
use crate::error::{ErrorReason, Problem};

/// The unit a key's value is counted in; every value is an integer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Unit {
    Count,
    Fen,
    BasisPoints,
    Days,
    Months,
    Years,
}

/// A parameter key the code knows, with its unit.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Definition {
    pub key: &'static str,
    pub unit: Unit,
    pub description: &'static str,
}

/// A default row shipped with the code, from the policy documents (`DOMAIN.md`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DefaultRow {
    pub key: &'static str,
    pub region_prefix: &'static str,
    pub valid_from: &'static str,
    pub valid_to: Option<&'static str>,
    pub value: i64,
    pub source: &'static str,
}

const fn def(key: &'static str, unit: Unit, description: &'static str) -> Definition {
    Definition { key, unit, description }
}

const fn row(
    key: &'static str,
    region_prefix: &'static str,
    valid_from: &'static str,
    valid_to: Option<&'static str>,
    value: i64,
    source: &'static str,
) -> DefaultRow {
    DefaultRow {
        key,
        region_prefix,
        valid_from,
        valid_to,
        value,
        source,
    }
}

/// Every key the suite reads. A key belongs to the service its prefix names; `audit.` keys
/// belong to every service.
pub const DEFINITIONS: &[Definition] = &[
    def(
        "audit.retention_months",
        Unit::Months,
        "how long audit events are kept (at least 6 months)",
    ),
    def(
        "identity.income_drop_alert_bp",
        Unit::BasisPoints,
        "income drop, year-on-year or month-on-month, that raises an alert",
    ),
    def(
        "identity.employed_count_drop_alert_bp",
        Unit::BasisPoints,
        "drop of a region's employed count, month-on-month, that raises an alert",
    ),
    def(
        "identity.default_female_retirement_age",
        Unit::Years,
        "the retirement track (50 or 55) assumed for a woman when none is recorded",
    ),
    def(
        "identity.lookups_per_minute",
        Unit::Count,
        "lookups by citizen ID one subject may make per minute",
    ),
    def(
        "identity.service_lookups_per_minute",
        Unit::Count,
        "lookups by citizen ID a service acting on its own (payee checks) may make per minute",
    ),
    def(
        "exchange.message_window_seconds",
        Unit::Count,
        "seconds a partner's message time may differ from ours before it is refused",
    ),
    def(
        "exchange.target_partner_workers",
        Unit::Count,
        "workers of the partner provinces to be employed here in a year",
    ),
    def(
        "exchange.target_partner_target_workers",
        Unit::Count,
        "of them, target persons (poverty-alleviated and monitored) of the partner provinces",
    ),
    def(
        "exchange.verifications_per_minute",
        Unit::Count,
        "persons a partner may verify per minute",
    ),
    def(
        "reports.progress_due_day",
        Unit::Count,
        "day of a quarter's last month by which the progress form (附件1) is due",
    ),
    def(
        "reports.project_list_due_month",
        Unit::Count,
        "month of the year in which the project list (附件2) is due",
    ),
    def(
        "reports.project_list_due_day",
        Unit::Count,
        "day of that month by which the project list (附件2) is due",
    ),
    def(
        "reports.generation_timeout_seconds",
        Unit::Count,
        "seconds after which a report left generating (its server stopped midway) may be generated again",
    ),
    def(
        "jobs.weight_distance_bp",
        Unit::BasisPoints,
        "matching weight of distance on the division tree (same village … the cooperation partner)",
    ),
    def(
        "jobs.weight_intention_bp",
        Unit::BasisPoints,
        "matching weight of fit with the seeker's intention and named destinations",
    ),
    def(
        "jobs.weight_skills_bp",
        Unit::BasisPoints,
        "matching weight of share of the posting's skills the seeker has",
    ),
    def(
        "jobs.weight_wage_bp",
        Unit::BasisPoints,
        "matching weight of the posting's top wage against the seeker's expected wage",
    ),
    def(
        "jobs.weight_labor_capacity_bp",
        Unit::BasisPoints,
        "matching weight of the posting takes the seeker's labor capacity",
    ),
    def(
        "jobs.weight_priority_bp",
        Unit::BasisPoints,
        "matching weight of priority for target persons, monitored at-risk first",
    ),
    def(
        "jobs.agency_subsidy_fen",
        Unit::Fen,
        "subsidy to an HR agency per person in organized labor export",
    ),
    def(
        "jobs.agency_subsidy_min_contract_months",
        Unit::Months,
        "shortest contract for the agency subsidy",
    ),
    def(
        "jobs.workshop_training_max_months",
        Unit::Months,
        "months of the workshop on-the-job training subsidy (以工代训)",
    ),
    def(
        "jobs.training_living_allowance_bp",
        Unit::BasisPoints,
        "living allowance in training, as a share of the rural minimum-living standard",
    ),
    def(
        "welfare_post.min_age",
        Unit::Years,
        "youngest age for a public-welfare post",
    ),
    def("welfare_post.max_hire_age", Unit::Years, "oldest age for a new hire"),
    def(
        "welfare_post.max_hire_age_fit",
        Unit::Years,
        "oldest age for a new hire in good health",
    ),
    def(
        "welfare_post.contract_max_months",
        Unit::Months,
        "longest contract per signing",
    ),
    def(
        "welfare_post.subsidy_max_months",
        Unit::Months,
        "longest time on the post subsidy",
    ),
    def(
        "welfare_post.near_retirement_years",
        Unit::Years,
        "within this many years of retirement at first approval, the subsidy may run to retirement",
    ),
    def(
        "welfare_post.max_placements",
        Unit::Count,
        "most placements on posts per person",
    ),
    def(
        "welfare_post.monitoring_line_fen_per_year",
        Unit::Fen,
        "the provincial monitoring line the post subsidy follows, per year",
    ),
    def(
        "welfare_post.public_notice_days",
        Unit::Days,
        "days of public notice (公示) before a hire takes effect",
    ),
    def(
        "welfare_post.pass_score",
        Unit::Count,
        "lowest monthly evaluation score (0 to 100) that passes",
    ),
    def(
        "welfare_post.village_post_need",
        Unit::Count,
        "posts a village needs (set by village code, for 一村多岗)",
    ),
    def(
        "work_relief.min_labor_share_bp",
        Unit::BasisPoints,
        "smallest share of central funds paid as labor remuneration",
    ),
    def(
        "work_relief.min_labor_share_provincial_bp",
        Unit::BasisPoints,
        "smallest share of provincial funds paid as labor remuneration, where local rules set one",
    ),
    def(
        "work_relief.min_labor_share_county_bp",
        Unit::BasisPoints,
        "smallest share of county funds paid as labor remuneration, where local rules set one",
    ),
    def(
        "work_relief.min_labor_share_other_bp",
        Unit::BasisPoints,
        "smallest share of other funds paid as labor remuneration, where local rules set one",
    ),
    def(
        "work_relief.public_notice_days",
        Unit::Days,
        "days of public notice before remuneration is paid",
    ),
    def(
        "work_relief.wage_guideline_daily_fen",
        Unit::Fen,
        "the region's wage guideline for work relief, per day (below it is refused)",
    ),
    def(
        "work_relief.relocation_reserved_share_bp",
        Unit::BasisPoints,
        "share of a relocation-site project's jobs reserved for relocated people",
    ),
    def(
        "work_relief.arrears_allowed_days",
        Unit::Days,
        "days after the pay day before unpaid remuneration counts as arrears",
    ),
    def(
        "work_relief.ledger_retention_years",
        Unit::Years,
        "years pay ledgers are kept",
    ),
    def(
        "subsidy.review_one_reviewer_above_fen",
        Unit::Fen,
        "a claim above this amount needs one reviewer before it may be paid (0: no review)",
    ),
    def(
        "subsidy.review_two_reviewers_above_fen",
        Unit::Fen,
        "a claim above this amount needs two reviewers before it may be paid (0: no review)",
    ),
    def(
        "subsidy.notice_days",
        Unit::Days,
        "days a payment batch's public notice (公示) runs before it may be approved",
    ),
    def(
        "subsidy.max_claim_amount_fen",
        Unit::Fen,
        "the largest amount fact a claim may carry where its policy sets no ceiling",
    ),
    // The documents leave the threshold of a carrier's one-time award to the district or county
    // (认定办法和奖补规则由区县制定), so no default is shipped: until a county sets its figure,
    // an award claim is refused STANDARD_MISSING.
    def(
        "subsidy.labor_base_award_min_absorbed",
        Unit::Count,
        "target persons a labor base (乡村振兴劳务基地) must absorb for its one-time award, set by the district",
    ),
    def(
        "subsidy.assistance_base_award_min_absorbed",
        Unit::Count,
        "target persons an assistance base (就业帮扶基地) must absorb for its award, set by the county",
    ),
    def(
        "subsidy.unemployment_insurance_min_wage_bp",
        Unit::BasisPoints,
        "unemployment insurance as a share of the top minimum-wage tier in key counties",
    ),
];

const ZAOZHUANG: &str = "枣人社字〔2021〕52号";
const CHAOYANG: &str = "朝阳市脱贫劳动力就业帮扶六部门通知（2021-09-26）";
const CHONGQING: &str = "重庆市人社局等五部门通知（2021）";
const SHANDONG: &str = "山东省防止返贫就业攻坚行动方案（2023-10）";

/// The defaults from the documents. Local rows keep the document's own validity; when it has
/// lapsed, a lookup finds nothing and the service says an administrator must enter the value.
pub const DEFAULTS: &[DefaultRow] = &[
    row(
        "audit.retention_months",
        "*",
        "2019-12-01",
        None,
        6,
        "GB/T 22239-2019 等级保护 第三级（审计记录留存不少于6个月）",
    ),
    row("identity.income_drop_alert_bp", "*", "2023-10-01", None, 2000, SHANDONG),
    row(
        "identity.employed_count_drop_alert_bp",
        "*",
        "2023-10-01",
        None,
        1000,
        SHANDONG,
    ),
    row(
        "identity.default_female_retirement_age",
        "*",
        "2025-01-01",
        None,
        55,
        "国发〔2024〕18号",
    ),
    row(
        "identity.lookups_per_minute",
        "*",
        "2021-01-01",
        None,
        60,
        "等级保护 第三级（最小必要、防批量查询）",
    ),
    row(
        "identity.service_lookups_per_minute",
        "*",
        "2021-01-01",
        None,
        120_000,
        "等级保护 第三级（最小必要、防批量查询）",
    ),
    row(
        "jobs.agency_subsidy_fen",
        "3704",
        "2021-08-13",
        Some("2025-12-31"),
        60_000,
        ZAOZHUANG,
    ),
    row(
        "jobs.agency_subsidy_fen",
        "2113",
        "2021-09-26",
        Some("2025-12-31"),
        20_000,
        CHAOYANG,
    ),
    row(
        "jobs.agency_subsidy_min_contract_months",
        "3704",
        "2021-08-13",
        Some("2025-12-31"),
        6,
        ZAOZHUANG,
    ),
    row(
        "jobs.agency_subsidy_min_contract_months",
        "2113",
        "2021-09-26",
        Some("2025-12-31"),
        12,
        CHAOYANG,
    ),
    row(
        "jobs.workshop_training_max_months",
        "3704",
        "2021-08-13",
        Some("2021-12-31"),
        6,
        ZAOZHUANG,
    ),
    row(
        "jobs.training_living_allowance_bp",
        "2113",
        "2021-09-26",
        Some("2025-12-31"),
        15_000,
        CHAOYANG,
    ),
    row(
        "welfare_post.min_age",
        "*",
        "2021-01-01",
        None,
        16,
        "乡村公益性岗位管理通行规定（年满16周岁）",
    ),
    row(
        "welfare_post.max_hire_age",
        "*",
        "2021-01-01",
        None,
        60,
        "乡村公益性岗位管理通行规定",
    ),
    row(
        "welfare_post.max_hire_age_fit",
        "*",
        "2021-01-01",
        None,
        65,
        "乡村公益性岗位管理通行规定",
    ),
    row(
        "welfare_post.contract_max_months",
        "3704",
        "2021-08-13",
        Some("2025-12-31"),
        12,
        ZAOZHUANG,
    ),
    row(
        "welfare_post.contract_max_months",
        "50",
        "2021-01-01",
        Some("2025-12-31"),
        12,
        CHONGQING,
    ),
    row(
        "welfare_post.contract_max_months",
        "2113",
        "2021-09-26",
        Some("2025-12-31"),
        6,
        CHAOYANG,
    ),
    row(
        "welfare_post.subsidy_max_months",
        "2113",
        "2021-09-26",
        Some("2025-12-31"),
        36,
        CHAOYANG,
    ),
    row(
        "welfare_post.near_retirement_years",
        "2113",
        "2021-09-26",
        Some("2025-12-31"),
        5,
        CHAOYANG,
    ),
    row(
        "welfare_post.public_notice_days",
        "*",
        "2021-01-01",
        None,
        5,
        "乡村公益性岗位管理通行规定（拟聘人员公示不少于5个工作日）",
    ),
    row(
        "welfare_post.pass_score",
        "*",
        "2021-01-01",
        None,
        60,
        "bangfu 默认值（村委会考核合格线，可调整）",
    ),
    row(
        "welfare_post.max_placements",
        "*",
        "2021-01-01",
        None,
        2,
        "乡村公益性岗位管理通行规定",
    ),
    row(
        "welfare_post.monitoring_line_fen_per_year",
        "21",
        "2021-01-01",
        Some("2021-12-31"),
        660_000,
        CHAOYANG,
    ),
    row(
        "welfare_post.monitoring_line_fen_per_year",
        "21",
        "2022-01-01",
        Some("2022-12-31"),
        726_000,
        CHAOYANG,
    ),
    row(
        "welfare_post.monitoring_line_fen_per_year",
        "21",
        "2023-01-01",
        Some("2023-12-31"),
        798_600,
        CHAOYANG,
    ),
    row(
        "welfare_post.monitoring_line_fen_per_year",
        "21",
        "2024-01-01",
        Some("2024-12-31"),
        878_460,
        CHAOYANG,
    ),
    row(
        "welfare_post.monitoring_line_fen_per_year",
        "21",
        "2025-01-01",
        Some("2025-12-31"),
        966_306,
        CHAOYANG,
    ),
    row(
        "exchange.message_window_seconds",
        "*",
        "2021-01-01",
        None,
        300,
        "bangfu 默认值（双方服务器时间偏差上限，可调整）",
    ),
    // Shandong §一: 16,000 workers of the Chongqing and Gansu cooperation counties employed,
    // 10,000 of them poverty-alleviated.
    row(
        "exchange.target_partner_workers",
        "37",
        "2023-10-01",
        None,
        16_000,
        SHANDONG,
    ),
    row(
        "exchange.target_partner_target_workers",
        "37",
        "2023-10-01",
        None,
        10_000,
        SHANDONG,
    ),
    row(
        "exchange.verifications_per_minute",
        "*",
        "2021-01-01",
        None,
        60_000,
        "bangfu 默认值（按协作省份计，防批量查询，可调整）",
    ),
    // Shandong's notice §(四): 附件1 by the 15th of each quarter's last month, 附件2 by October 25.
    row("reports.progress_due_day", "37", "2023-10-01", None, 15, SHANDONG),
    row("reports.project_list_due_month", "37", "2023-10-01", None, 10, SHANDONG),
    row("reports.project_list_due_day", "37", "2023-10-01", None, 25, SHANDONG),
    row(
        "reports.generation_timeout_seconds",
        "*",
        "2021-01-01",
        None,
        600,
        "bangfu 默认值（报表生成中断后可重新生成的等待时间）",
    ),
    // Matching weights: they sum to 10,000 so a score reads as basis points of a perfect match.
    row(
        "jobs.weight_distance_bp",
        "*",
        "2021-01-01",
        None,
        2_500,
        "bangfu 默认值（人社部门可调整）",
    ),
    row(
        "jobs.weight_intention_bp",
        "*",
        "2021-01-01",
        None,
        2_000,
        "bangfu 默认值（人社部门可调整）",
    ),
    row(
        "jobs.weight_skills_bp",
        "*",
        "2021-01-01",
        None,
        1_500,
        "bangfu 默认值（人社部门可调整）",
    ),
    row(
        "jobs.weight_wage_bp",
        "*",
        "2021-01-01",
        None,
        1_500,
        "bangfu 默认值（人社部门可调整）",
    ),
    row(
        "jobs.weight_labor_capacity_bp",
        "*",
        "2021-01-01",
        None,
        1_000,
        "bangfu 默认值（人社部门可调整）",
    ),
    row(
        "jobs.weight_priority_bp",
        "*",
        "2021-01-01",
        None,
        1_500,
        "bangfu 默认值（人社部门可调整）",
    ),
    row(
        "work_relief.min_labor_share_bp",
        "*",
        "2022-01-01",
        None,
        3_000,
        "国家发展改革委 以工代赈管理办法（2022）",
    ),
    row("work_relief.public_notice_days", "50", "2021-01-01", None, 7, CHONGQING),
    row(
        "work_relief.public_notice_days",
        "*",
        "2021-01-01",
        None,
        7,
        "bangfu 默认值（参照重庆市发放前公示7天，可调整）",
    ),
    row(
        "work_relief.arrears_allowed_days",
        "*",
        "2021-01-01",
        None,
        0,
        "bangfu 默认值（按月足额发放，逾期即计拖欠，可调整）",
    ),
    row(
        "work_relief.ledger_retention_years",
        "*",
        "2022-01-01",
        None,
        3,
        "国家发展改革委 以工代赈管理办法（2022）",
    ),
    // Finance's own controls, not from a policy document: amounts above 2,000 yuan are looked
    // at by one reviewer, above 5,000 yuan by two; no claim fact above 100,000 yuan.
    row(
        "subsidy.review_one_reviewer_above_fen",
        "*",
        "2020-01-01",
        None,
        200_000,
        "bangfu 默认值（财政部门可调整）",
    ),
    row(
        "subsidy.review_two_reviewers_above_fen",
        "*",
        "2020-01-01",
        None,
        500_000,
        "bangfu 默认值（财政部门可调整）",
    ),
    row(
        "subsidy.notice_days",
        "*",
        "2020-01-01",
        None,
        7,
        "公示期不少于7天（各地通行做法；财政部门可调整）",
    ),
    row(
        "subsidy.max_claim_amount_fen",
        "*",
        "2020-01-01",
        None,
        10_000_000,
        "bangfu 默认值（财政部门可调整）",
    ),
    row(
        "subsidy.unemployment_insurance_min_wage_bp",
        "50",
        "2021-01-01",
        Some("2025-12-31"),
        9_000,
        CHONGQING,
    ),
];

/// The definition of a key, if the code knows it.
pub fn definition(key: &str) -> Option<&'static Definition> {
    DEFINITIONS.iter().find(|d| d.key == key)
}

/// Whether `key` belongs to `service`'s parameters.
pub fn belongs_to(key: &str, service: &str) -> bool {
    key.strip_prefix(service).is_some_and(|rest| rest.starts_with('.')) || key.starts_with("audit.")
}

/// One stored row.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ParameterRow {
    pub key: String,
    /// `*` for the whole country, or a division-code prefix.
    pub region_prefix: String,
    pub valid_from: Date,
    pub valid_to: Option<Date>,
    pub value: i64,
    pub unit: Unit,
    pub source_document: String,
    pub update_subject: String,
    pub update_time: OffsetDateTime,
    pub revision: i64,
}

impl ParameterRow {
    /// `parameters/{key}/regions/{region_prefix|all}/versions/{YYYYMMDD}`.
    pub fn name(&self) -> String {
        let region = if self.region_prefix == "*" {
            "all"
        } else {
            self.region_prefix.as_str()
        };
        format!(
            "parameters/{}/regions/{region}/versions/{}",
            self.key,
            compact_date(self.valid_from)
        )
    }

    pub fn etag(&self) -> String {
        format!("r{}", self.revision)
    }
}

fn compact_date(date: Date) -> String {
    format!("{:04}{:02}{:02}", date.year(), u8::from(date.month()), date.day())
}

/// A business date as stored: `YYYY-MM-DD`.
pub fn date_text(date: Date) -> String {
    format!("{:04}-{:02}-{:02}", date.year(), u8::from(date.month()), date.day())
}

/// Parses a stored `YYYY-MM-DD`.
pub fn parse_date_text(text: &str) -> Option<Date> {
    let format = time::macros::format_description!("[year]-[month]-[day]");
    Date::parse(text, &format).ok()
}

/// A change to one row, as UpdateParameter asks for it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ParameterChange {
    pub key: String,
    pub region_prefix: String,
    pub valid_from: Date,
    pub valid_to: Option<Date>,
    pub value: i64,
    pub source_document: String,
    /// Which of `valid_to`, `value`, `source_document` to change; empty with `allow_missing`
    /// creates the row.
    pub update_mask: Vec<String>,
    pub allow_missing: bool,
    /// The etag the caller read; empty to skip the check.
    pub etag: String,
}

/// Which rows a listing returns.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ParameterQuery {
    pub key: Option<String>,
    pub region_code: Option<String>,
    pub effective_date: Option<Date>,
}

/// (key, date) of a cached lookup: every row of the key in force that day.
type LookupKey = (String, Date);

/// When a key's rows were read, and the rows: (region prefix, value).
type CachedRows = (Instant, Vec<(String, i64)>);

/// A service's parameters: lookups (cached briefly, so every replica sees a change within the
/// cache's lifetime), listings and changes.
#[derive(Debug)]
pub struct Parameters {
    db: Database,
    service: &'static str,
    cache_ttl: Duration,
    cache: Mutex<HashMap<LookupKey, CachedRows>>,
}

/// The rows valid for key $1 on date $2 that cover region $3, most specific first.
const LOOKUP_WHERE: &str = "WHERE key = $1 AND valid_from <= $2 AND (valid_to IS NULL OR valid_to >= $2) \
       AND (region_prefix = '*' OR substr($3, 1, length(region_prefix)) = region_prefix) \
     ORDER BY CASE WHEN region_prefix = '*' THEN 0 ELSE length(region_prefix) END DESC LIMIT 1";

/// The value of the most specific row for `region_code`: the longest prefix it starts with,
/// else the country-wide `*` row.
fn most_specific(rows: &[(String, i64)], region_code: &str) -> Option<i64> {
    rows.iter()
        .filter(|(prefix, _)| prefix == "*" || region_code.starts_with(prefix.as_str()))
        .max_by_key(|(prefix, _)| if prefix == "*" { 0 } else { prefix.len() })
        .map(|(_, value)| *value)
}

/// FAILED_PRECONDITION: the rule has no value for the region and date.
fn missing(key: &str, region_code: &str, date: Date) -> Problem {
    Problem::new(
        tonic::Code::FailedPrecondition,
        ErrorReason::StateConflict,
        format!(
            "no value of parameter {key} for region {region_code} on {}",
            date_text(date)
        ),
        format!(
            "参数 {key} 在 {} 对该地区没有有效取值，请管理员补录后再办理",
            date_text(date)
        ),
    )
    .with_metadata("parameter", key)
}

const ROW_COLUMNS_SQL: &str = "SELECT key, region_prefix, valid_from, valid_to, value, source_document, update_subject, \
     update_time_us, revision FROM parameters";

impl Parameters {
    /// The parameters of `service` in its database, with the shipped defaults installed for
    /// its keys (a default an administrator already changed is left alone).
    pub async fn open(db: Database, service: &'static str, cache_ttl: Duration) -> Result<Self, DbError> {
        let mut tx = db.begin().await?;
        for default in DEFAULTS.iter().filter(|d| belongs_to(d.key, service)) {
            sqlx::query(
                "INSERT INTO parameters (key, region_prefix, valid_from, valid_to, value, source_document, \
                 update_subject, update_time_us, revision) VALUES ($1, $2, $3, $4, $5, $6, 'bangfu-defaults', $7, 1) \
                 ON CONFLICT (key, region_prefix, valid_from) DO NOTHING",
            )
            .bind(default.key)
            .bind(default.region_prefix)
            .bind(default.valid_from)
            .bind(default.valid_to)
            .bind(default.value)
            .bind(default.source)
            .bind(to_micros(OffsetDateTime::now_utc()))
            .execute(&mut *tx)
            .await?;
        }
        tx.commit().await?;
        Ok(Self {
            db,
            service,
            cache_ttl,
            cache: Mutex::new(HashMap::new()),
        })
    }

    /// The value of `key` for a record in `region_code` on `date`: the most specific region's
    /// row valid that day, or `None`. Outside a transaction only: inside one, use `lookup_on`
    /// with its connection, so a use case never waits for a second connection while holding one.
    pub async fn lookup(&self, key: &str, region_code: &str, date: Date) -> Result<Option<i64>, DbError> {
        if let Some(value) = self.cached(key, region_code, date) {
            return Ok(value);
        }
        let mut connection = self.db.acquire().await?;
        self.lookup_on(&mut connection, key, region_code, date).await
    }

    /// `lookup` on the caller's connection (its transaction).
    pub async fn lookup_on(
        &self,
        connection: &mut AnyConnection,
        key: &str,
        region_code: &str,
        date: Date,
    ) -> Result<Option<i64>, DbError> {
        if let Some(value) = self.cached(key, region_code, date) {
            return Ok(value);
        }
        // Every row of the key in force on the date, once: a bulk import touching thousands of
        // villages resolves each in memory instead of asking the database per village.
        let rows: Vec<(String, i64)> = sqlx::query_as(
            "SELECT region_prefix, value FROM parameters WHERE key = $1 AND valid_from <= $2 \
             AND (valid_to IS NULL OR valid_to >= $2)",
        )
        .bind(key)
        .bind(date_text(date))
        .fetch_all(&mut *connection)
        .await?;
        let value = most_specific(&rows, region_code);
        let mut cache = self.cache.lock().unwrap_or_else(|p| p.into_inner());
        if cache.len() > 10_000 {
            cache.clear();
        }
        cache.insert((key.to_string(), date), (Instant::now(), rows));
        Ok(value)
    }

    fn cached(&self, key: &str, region_code: &str, date: Date) -> Option<Option<i64>> {
        self.cache
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .get(&(key.to_string(), date))
            .filter(|(at, _)| at.elapsed() < self.cache_ttl)
            .map(|(_, rows)| most_specific(rows, region_code))
    }

    /// Like `lookup`, but a missing value is an error a clerk can act on: the rule has no value
    /// for that region and date, and an administrator must enter one.
    pub async fn require(&self, key: &str, region_code: &str, date: Date) -> Result<i64, Problem> {
        let value = self.lookup(key, region_code, date).await?;
        value.ok_or_else(|| missing(key, region_code, date))
    }

    /// `require` on the caller's connection (its transaction).
    pub async fn require_on(
        &self,
        connection: &mut AnyConnection,
        key: &str,
        region_code: &str,
        date: Date,
    ) -> Result<i64, Problem> {
        let value = self.lookup_on(connection, key, region_code, date).await?;
        value.ok_or_else(|| missing(key, region_code, date))
    }

    /// Rows matching `query`, ordered by key, region prefix and validity, after `cursor`. With
    /// both a region and a date, only the row a lookup would use, per key, all on one page.
    pub async fn list(
        &self,
        query: &ParameterQuery,
        cursor: Option<&[String]>,
        limit: u32,
    ) -> Result<Vec<ParameterRow>, DbError> {
        if let (Some(region), Some(date)) = (&query.region_code, query.effective_date) {
            let mut rows = Vec::new();
            for definition in DEFINITIONS.iter().filter(|d| belongs_to(d.key, self.service)) {
                if query.key.as_deref().is_some_and(|key| key != definition.key) {
                    continue;
                }
                let found = sqlx::query(sqlx::AssertSqlSafe(format!("{ROW_COLUMNS_SQL} {LOOKUP_WHERE}")))
                    .bind(definition.key)
                    .bind(date_text(date))
                    .bind(region)
                    .fetch_optional(self.db.pool())
                    .await?;
                if let Some(row) = found.as_ref().map(row_of).transpose()?.flatten() {
                    rows.push(row);
                }
            }
            return Ok(rows);
        }
        let (after_key, after_region, after_from) = match cursor {
            Some([key, region, from]) => (key.clone(), region.clone(), from.clone()),
            _ => (String::new(), String::new(), String::new()),
        };
        let rows = sqlx::query(
            "SELECT key, region_prefix, valid_from, valid_to, value, source_document, update_subject, \
             update_time_us, revision FROM parameters \
             WHERE (key > $1 OR (key = $1 AND (region_prefix > $2 OR (region_prefix = $2 AND valid_from > $3)))) \
               AND ($4 = '' OR key = $4) \
               AND ($5 = '' OR (valid_from <= $5 AND (valid_to IS NULL OR valid_to >= $5))) \
               AND ($6 = '' OR region_prefix = '*' OR substr($6, 1, length(region_prefix)) = region_prefix) \
             ORDER BY key, region_prefix, valid_from LIMIT $7",
        )
        .bind(&after_key)
        .bind(&after_region)
        .bind(&after_from)
        .bind(query.key.clone().unwrap_or_default())
        .bind(query.effective_date.map(date_text).unwrap_or_default())
        .bind(query.region_code.clone().unwrap_or_default())
        .bind(i64::from(limit))
        .fetch_all(self.db.pool())
        .await?;
        let rows = rows.iter().map(row_of).collect::<Result<Vec<_>, _>>()?;
        Ok(rows
            .into_iter()
            .flatten()
            .filter(|r| belongs_to(&r.key, self.service))
            .collect())
    }

    /// The cursor after `row`, for the next page.
    pub fn cursor_of(row: &ParameterRow) -> Vec<String> {
        vec![row.key.clone(), row.region_prefix.clone(), date_text(row.valid_from)]
    }

    /// Creates or changes a row for `principal`, audited in the same transaction.
    pub async fn update(
        &self,
        principal: &Principal,
        method: &str,
        change: &ParameterChange,
        now: OffsetDateTime,
    ) -> Result<ParameterRow, Problem> {
        let definition = validate(change, self.service)?;
        let inside_scope = match change.region_prefix.as_str() {
            "*" => principal.scope == RegionScope::Country,
            prefix => principal.scope.contains(prefix),
        };
        if !inside_scope {
            return Err(Problem::new(
                tonic::Code::PermissionDenied,
                ErrorReason::PermissionMissing,
                "the row's region lies outside the caller's scope",
                "该参数适用的地区超出了您的管辖范围",
            ));
        }
        let mut tx = self.db.begin().await.map_err(Problem::from)?;
        let existing = sqlx::query(sqlx::AssertSqlSafe(format!(
            "{ROW_COLUMNS_SQL} WHERE key = $1 AND region_prefix = $2 AND valid_from = $3"
        )))
        .bind(&change.key)
        .bind(&change.region_prefix)
        .bind(date_text(change.valid_from))
        .fetch_optional(&mut *tx)
        .await?;
        let existing = existing.as_ref().map(row_of).transpose()?.flatten();
        let mut row = match existing {
            Some(current) => {
                if !change.etag.is_empty() && change.etag != current.etag() {
                    return Err(Problem::new(
                        tonic::Code::Aborted,
                        ErrorReason::EtagMismatch,
                        "the parameter changed since it was read; read it again and retry",
                        "该参数已被他人修改，请刷新后重新修改",
                    ));
                }
                if change.update_mask.is_empty() {
                    if change.allow_missing && same_content(&current, change) {
                        // A retried create finds what the first attempt stored.
                        return Ok(current);
                    }
                    return Err(Problem::new(
                        tonic::Code::AlreadyExists,
                        ErrorReason::AlreadyExists,
                        format!("{} already exists; give an update_mask to change it", current.name()),
                        "该参数版本已存在，如需修改请指明修改的字段",
                    )
                    .with_metadata("resource", current.name()));
                }
                let mut updated = current.clone();
                for field in &change.update_mask {
                    match field.as_str() {
                        "valid_to" => updated.valid_to = change.valid_to,
                        "value" => updated.value = change.value,
                        "source_document" => updated.source_document = change.source_document.clone(),
                        other => {
                            return Err(Problem::invalid_field(
                                ErrorReason::FieldInvalid,
                                "update_mask",
                                format!("{other} cannot be changed; only valid_to, value and source_document can"),
                                "只能修改失效日期、取值和依据文件",
                            ));
                        }
                    }
                }
                updated.revision += 1;
                updated
            }
            None if change.allow_missing => ParameterRow {
                key: change.key.clone(),
                region_prefix: change.region_prefix.clone(),
                valid_from: change.valid_from,
                valid_to: change.valid_to,
                value: change.value,
                unit: definition.unit,
                source_document: change.source_document.clone(),
                update_subject: String::new(),
                update_time: now,
                revision: 1,
            },
            None => {
                return Err(Problem::not_found(&format!(
                    "parameters/{}/regions/{}/versions/{}",
                    change.key,
                    if change.region_prefix == "*" {
                        "all"
                    } else {
                        &change.region_prefix
                    },
                    compact_date(change.valid_from)
                )));
            }
        };
        if row.valid_to.is_some_and(|to| to < row.valid_from) {
            return Err(Problem::invalid_field(
                ErrorReason::FieldInvalid,
                "parameter.valid_to",
                "must not be before valid_from",
                "失效日期不能早于生效日期",
            ));
        }
        row.update_subject = principal.subject.clone();
        row.update_time = now;
        // Two rows of one key and region may not be valid on the same day.
        let overlapping: i64 = sqlx::query_scalar(
            "SELECT COUNT(*) FROM parameters WHERE key = $1 AND region_prefix = $2 AND valid_from <> $3 \
             AND valid_from <= $4 AND (valid_to IS NULL OR valid_to >= $3)",
        )
        .bind(&row.key)
        .bind(&row.region_prefix)
        .bind(date_text(row.valid_from))
        .bind(row.valid_to.map(date_text).unwrap_or_else(|| "9999-12-31".into()))
        .fetch_one(&mut *tx)
        .await?;
        if overlapping > 0 {
            return Err(Problem::new(
                tonic::Code::FailedPrecondition,
                ErrorReason::StateConflict,
                "another row of this key and region is valid in part of this period; end it first",
                "同一地区该参数已有其他版本在此期间有效，请先设置原版本的失效日期",
            ));
        }
        sqlx::query(
            "INSERT INTO parameters (key, region_prefix, valid_from, valid_to, value, source_document, update_subject, \
             update_time_us, revision) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9) \
             ON CONFLICT (key, region_prefix, valid_from) DO UPDATE SET valid_to = excluded.valid_to, \
             value = excluded.value, source_document = excluded.source_document, \
             update_subject = excluded.update_subject, update_time_us = excluded.update_time_us, \
             revision = excluded.revision",
        )
        .bind(&row.key)
        .bind(&row.region_prefix)
        .bind(date_text(row.valid_from))
        .bind(row.valid_to.map(date_text))
        .bind(row.value)
        .bind(&row.source_document)
        .bind(&row.update_subject)
        .bind(to_micros(now))
        .bind(row.revision)
        .execute(&mut *tx)
        .await?;
        audit::append(&mut tx, &AuditEntry::by(principal, method, row.name(), now)).await?;
        tx.commit().await?;
        self.cache.lock().unwrap_or_else(|p| p.into_inner()).clear();
        Ok(row)
    }
}

fn same_content(row: &ParameterRow, change: &ParameterChange) -> bool {
    row.valid_to == change.valid_to && row.value == change.value && row.source_document == change.source_document
}

fn validate(change: &ParameterChange, service: &str) -> Result<&'static Definition, Problem> {
    let definition = definition(&change.key)
        .filter(|d| belongs_to(d.key, service))
        .ok_or_else(|| {
            Problem::invalid_field(
                ErrorReason::ParameterUnknown,
                "parameter.key",
                format!("{} is not a parameter of the {service} service", change.key),
                "参数名称不存在，请核对",
            )
        })?;
    if change.region_prefix != "*" && RegionScope::parse(&change.region_prefix).is_none() {
        return Err(Problem::invalid_field(
            ErrorReason::FieldInvalid,
            "parameter.region_prefix",
            "must be * or a 2, 4, 6, 9 or 12 digit division code",
            "适用地区应为“*”（全国）或2、4、6、9、12位区划代码",
        ));
    }
    if change.value < 0 {
        return Err(Problem::invalid_field(
            ErrorReason::FieldInvalid,
            "parameter.value",
            "must not be negative",
            "参数取值不能为负数",
        ));
    }
    let source = change.source_document.trim();
    if (change.allow_missing || change.update_mask.iter().any(|f| f == "source_document")) && source.is_empty() {
        return Err(Problem::required("parameter.source_document", "依据文件"));
    }
    if source.chars().count() > 200 {
        return Err(Problem::invalid_field(
            ErrorReason::FieldTooLong,
            "parameter.source_document",
            "is longer than 200 characters",
            "依据文件名称不能超过200个字",
        ));
    }
    Ok(definition)
}

fn row_of(row: &sqlx::any::AnyRow) -> Result<Option<ParameterRow>, sqlx::Error> {
    let key: String = row.try_get("key")?;
    let Some(definition) = definition(&key) else {
        // A key the code no longer knows is left in the table but never served.
        return Ok(None);
    };
    let valid_from: String = row.try_get("valid_from")?;
    let valid_to: Option<String> = row.try_get("valid_to")?;
    let micros: i64 = row.try_get("update_time_us")?;
    let Some(valid_from) = parse_date_text(&valid_from) else {
        return Ok(None);
    };
    Ok(Some(ParameterRow {
        key,
        region_prefix: row.try_get("region_prefix")?,
        valid_from,
        valid_to: valid_to.as_deref().and_then(parse_date_text),
        value: row.try_get("value")?,
        unit: definition.unit,
        source_document: row.try_get("source_document")?,
        update_subject: row.try_get("update_subject")?,
        update_time: from_micros(micros).unwrap_or(OffsetDateTime::UNIX_EPOCH),
        revision: row.try_get("revision")?,
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_default_has_a_definition_and_a_valid_region_and_dates() {
        for default in DEFAULTS {
            assert!(definition(default.key).is_some(), "{} has no definition", default.key);
            assert!(default.region_prefix == "*" || RegionScope::parse(default.region_prefix).is_some());
            let from = parse_date_text(default.valid_from).expect("valid_from");
            if let Some(to) = default.valid_to {
                assert!(parse_date_text(to).expect("valid_to") >= from, "{}", default.key);
            }
        }
    }

    #[test]
    fn keys_belong_to_their_service_and_audit_keys_to_all() {
        assert!(belongs_to("welfare_post.min_age", "welfare_post"));
        assert!(!belongs_to("welfare_post.min_age", "welfare"));
        assert!(belongs_to("audit.retention_months", "identity"));
        assert!(!belongs_to("jobs.agency_subsidy_fen", "identity"));
    }

    #[test]
    fn the_monitoring_line_rises_ten_percent_a_year() {
        let lines: Vec<i64> = DEFAULTS
            .iter()
            .filter(|d| d.key == "welfare_post.monitoring_line_fen_per_year")
            .map(|d| d.value)
            .collect();
        for pair in lines.windows(2) {
            assert_eq!(pair[1], pair[0] * 11 / 10);
        }
    }
}
