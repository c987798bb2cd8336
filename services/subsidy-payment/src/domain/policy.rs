//! The policy catalog (补贴政策目录): a policy and the versions of its rules, and the checks a
//! version passes before it is stored.

use serde::{Deserialize, Serialize};
use time::Date;

use super::{FieldError, Period};

macro_rules! text_enum {
    ($(#[$meta:meta])* $name:ident { $($variant:ident => $text:literal),+ $(,)? }) => {
        $(#[$meta])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
        #[serde(rename_all = "snake_case")]
        pub enum $name { $($variant),+ }

        impl $name {
            /// The stored form.
            pub fn as_str(self) -> &'static str {
                match self { $(Self::$variant => $text),+ }
            }

            /// Parses the stored form.
            pub fn parse(text: &str) -> Option<Self> {
                match text { $($text => Some(Self::$variant),)+ _ => None }
            }
        }
    };
}
pub(crate) use text_enum;

text_enum!(
    /// Where a subsidy's money comes from (资金来源).
    FundSource {
        EmploymentSubsidy => "employment_subsidy",
        RuralRevitalizationTransition => "rural_revitalization_transition",
        EastWestCooperation => "east_west_cooperation",
        PhotovoltaicIncome => "photovoltaic_income",
        WorkRelief => "work_relief",
        LocalBudget => "local_budget",
    }
);

text_enum!(
    /// Who receives a policy's money.
    PayeeKind {
        Person => "person",
        Organization => "organization",
    }
);

text_enum!(
    /// Whom a policy's claims are about (补贴对象): a person (the beneficiary, read from
    /// identity), or an organization alone, e.g. a one-time award to a labor base (奖补), which
    /// has no beneficiary person. Periods, caps, history and exclusivity count per subject.
    ClaimSubject {
        Person => "person",
        Organization => "organization",
    }
);

text_enum!(
    /// How a policy's claims are cut in time.
    PeriodKind {
        OneTime => "one_time",
        Monthly => "monthly",
    }
);

text_enum!(
    /// The type of a fact a rule reads.
    FactType {
        Integer => "integer",
        Money => "money",
        Boolean => "boolean",
        Text => "text",
        Date => "date",
        YearMonth => "year_month",
        RegionCode => "region_code",
        TextList => "text_list",
    }
);

text_enum!(
    /// Where a fact's value comes from when a claim is evaluated.
    FactSource {
        Claim => "claim",
        Identity => "identity",
        History => "history",
        StandardsTable => "standards_table",
        Parameter => "parameter",
    }
);

text_enum!(
    /// On which day(s) of the period a category must be valid to count.
    CategoryAsOf {
        PeriodFirstDay => "period_first_day",
        PeriodLastDay => "period_last_day",
        AnyDay => "any_day",
        EveryDay => "every_day",
    }
);

text_enum!(
    /// Which of the person's regions gives the claim its region.
    RegionBasis {
        Registered => "registered",
        Residence => "residence",
        Organization => "organization",
    }
);

text_enum!(
    /// How an amount is rounded to a unit.
    RoundingMode {
        HalfUp => "half_up",
        Down => "down",
        Up => "up",
    }
);

text_enum!(
    /// Within what two policies of one exclusivity group exclude each other.
    ExclusivityScope {
        SamePeriod => "same_period",
        Ever => "ever",
    }
);

text_enum!(
    /// The life of a policy version.
    VersionState {
        Draft => "draft",
        Published => "published",
    }
);

/// The identity facts a rule may read, with the only type each may be declared with.
pub const IDENTITY_FACTS: &[(&str, FactType)] = &[
    ("person.categories", FactType::TextList),
    ("person.registered_region", FactType::RegionCode),
    ("person.residence_region", FactType::RegionCode),
    ("person.employment_status", FactType::Text),
    ("person.labor_capacity", FactType::Text),
    ("person.age_years", FactType::Integer),
    ("person.retirement_month", FactType::YearMonth),
    ("person.death_date", FactType::Date),
    ("person.moved_away_date", FactType::Date),
];

/// The history facts, counted over the policy group before the claim.
pub const HISTORY_FACTS: &[(&str, FactType)] = &[
    ("history.months_granted", FactType::Integer),
    ("history.amount_granted_fen", FactType::Money),
    ("history.claims_granted", FactType::Integer),
    ("history.first_approval_month", FactType::YearMonth),
];

/// A policy: what stays the same across its versions.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Policy {
    pub code: String,
    pub title: String,
    /// 补贴项目组: no person is granted two claims of one group for the same month or day.
    pub policy_group: String,
    pub payee_kind: PayeeKind,
    pub period_kind: PeriodKind,
    pub claim_subject: ClaimSubject,
}

/// The document a rule rests on.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SourceDocument {
    pub document_number: String,
    pub title: String,
    pub article: String,
    pub issuer: String,
    #[serde(with = "super::optional_day_serde", default)]
    pub issue_date: Option<Date>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FactDefinition {
    pub name: String,
    pub fact_type: FactType,
    pub source: FactSource,
    pub description: String,
    pub required: bool,
    pub lookup_key: String,
    pub max_value: i64,
}

/// A typed fact value.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "type", content = "value")]
pub enum FactValue {
    Integer(i64),
    Money(i64),
    Boolean(bool),
    Text(String),
    /// "YYYY-MM-DD".
    Date(String),
    /// "YYYY-MM".
    YearMonth(String),
    RegionCode(String),
    TextList(Vec<String>),
}

impl FactValue {
    pub fn fact_type(&self) -> FactType {
        match self {
            Self::Integer(_) => FactType::Integer,
            Self::Money(_) => FactType::Money,
            Self::Boolean(_) => FactType::Boolean,
            Self::Text(_) => FactType::Text,
            Self::Date(_) => FactType::Date,
            Self::YearMonth(_) => FactType::YearMonth,
            Self::RegionCode(_) => FactType::RegionCode,
            Self::TextList(_) => FactType::TextList,
        }
    }
}

/// A named fact value.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Fact {
    pub name: String,
    pub value: FactValue,
}

text_enum!(
    /// Why a claim is rejected; a decision lists every reason that applies.
    RejectionReason {
        PolicyNotInForce => "policy_not_in_force",
        NotTargetPerson => "not_target_person",
        OutOfRegion => "out_of_region",
        DuplicatePeriod => "duplicate_period",
        ExclusiveWith => "exclusive_with",
        CapReached => "cap_reached",
        PersonDeceased => "person_deceased",
        BudgetExhausted => "budget_exhausted",
        ConditionNotMet => "condition_not_met",
        PersonMovedAway => "person_moved_away",
        StandardMissing => "standard_missing",
        AmountZero => "amount_zero",
        RejectedInReview => "rejected_in_review",
        PersonNotFound => "person_not_found",
    }
);

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Condition {
    pub expression: String,
    pub reason: RejectionReason,
    pub description: String,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Caps {
    pub max_amount_per_claim: Option<i64>,
    pub max_total_amount: Option<i64>,
    pub max_months: i32,
    pub retirement_extension_years: i32,
    pub max_claims: i32,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ExclusivityGroup {
    pub key: String,
    pub scope: ExclusivityScope,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Rounding {
    pub mode: RoundingMode,
    /// 1 (fen), 10 (jiao) or 100 (yuan).
    pub unit_fen: i64,
}

impl Default for Rounding {
    fn default() -> Self {
        Self {
            mode: RoundingMode::HalfUp,
            unit_fen: 1,
        }
    }
}

impl Rounding {
    /// `numerator / denominator` in fen, rounded to the unit by the mode. None when the
    /// denominator is not positive or the arithmetic overflows.
    pub fn divide(&self, numerator: i64, denominator: i64) -> Option<i64> {
        if denominator <= 0 {
            return None;
        }
        let unit = i128::from(self.unit_fen.max(1));
        let scaled_denominator = i128::from(denominator) * unit;
        // Rounded on the magnitude, the sign put back: half up and up go away from zero, down
        // towards it, as 四舍五入 and 舍去 are meant for amounts.
        let n = i128::from(numerator);
        let magnitude = n.abs();
        let quotient = magnitude / scaled_denominator;
        let remainder = magnitude % scaled_denominator;
        let rounded_magnitude = match self.mode {
            RoundingMode::Down => quotient,
            RoundingMode::Up => quotient + i128::from(remainder != 0),
            RoundingMode::HalfUp => quotient + i128::from(remainder * 2 >= scaled_denominator),
        };
        let rounded = if n < 0 { -rounded_magnitude } else { rounded_magnitude };
        i64::try_from(rounded * unit).ok()
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StandardsRow {
    pub region_prefix: String,
    pub year: i32,
    pub value_fen: i64,
    pub source: String,
}

/// A standards table (补贴标准): a value by region and year, read by `standard(key)`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StandardsTable {
    pub key: String,
    pub description: String,
    pub rounding: Rounding,
    pub rows: Vec<StandardsRow>,
}

impl StandardsTable {
    /// The row with the longest prefix covering `region`, for `year` ("*" covers every region).
    pub fn lookup(&self, region: &str, year: i32) -> Option<&StandardsRow> {
        self.rows
            .iter()
            .filter(|row| row.year == year && (row.region_prefix == "*" || region.starts_with(&row.region_prefix)))
            .max_by_key(|row| {
                if row.region_prefix == "*" {
                    0
                } else {
                    row.region_prefix.len()
                }
            })
    }
}

text_enum!(
    /// The outcome of evaluating a claim.
    Outcome {
        Eligible => "eligible",
        Rejected => "rejected",
    }
);

/// An example case: facts in, decision and amount out.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ExampleCase {
    pub title: String,
    pub period: Period,
    pub region: String,
    pub facts: Vec<Fact>,
    pub expected_outcome: Outcome,
    pub expected_amount: i64,
    pub expected_reasons: Vec<RejectionReason>,
    /// Values the case assumes for standards tables (key, fen), in place of their rows: a table
    /// each region fills in later can still be tested when the version is created.
    #[serde(default)]
    pub assumed_standards: Vec<(String, i64)>,
}

/// An identity change that makes the service propose a claim (免申即享).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ProactiveTrigger {
    /// Identity's change kind, as its feed names it.
    pub change_kind: String,
    pub employment_status: Option<String>,
    pub category: Option<String>,
    pub registered_region_prefix: String,
}

/// The identity changes a trigger may name: those a person's entitlement can start from.
pub const TRIGGER_KINDS: [&str; 2] = ["EMPLOYMENT_CHANGED", "CATEGORY_CERTIFIED"];

/// What a trigger is matched against: the change, and the person's facts after it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TriggeringChange<'a> {
    pub change_kind: &'a str,
    /// For a category change, the category ("" otherwise).
    pub category: &'a str,
    pub employment_status: &'a str,
    pub registered_region: &'a str,
}

impl ProactiveTrigger {
    /// Whether the change, with the person's facts after it, is the one the policy names.
    pub fn matches(&self, change: &TriggeringChange<'_>) -> bool {
        self.change_kind == change.change_kind
            && self.category.as_deref().is_none_or(|c| c == change.category)
            && self
                .employment_status
                .as_deref()
                .is_none_or(|s| s == change.employment_status)
            && change.registered_region.starts_with(&self.registered_region_prefix)
    }

    /// The period a proposal claims: the change's day for a one-time policy, its month for a
    /// monthly one.
    pub fn period(kind: PeriodKind, day: Date) -> Period {
        match kind {
            PeriodKind::OneTime => Period { first: day, last: day },
            PeriodKind::Monthly => {
                let first = day.replace_day(1).unwrap_or(day);
                let last = day.replace_day(day.month().length(day.year())).unwrap_or(day);
                Period { first, last }
            }
        }
    }
}

/// One version of a policy's rules.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PolicyVersion {
    pub source_document: SourceDocument,
    pub issuing_region_prefix: String,
    #[serde(with = "super::day_serde")]
    pub valid_from: Date,
    #[serde(with = "super::optional_day_serde", default)]
    pub valid_to: Option<Date>,
    pub fund_source: FundSource,
    /// Category names as identity gives them ("POVERTY_ALLEVIATED").
    pub target_categories: Vec<String>,
    pub category_as_of: CategoryAsOf,
    pub region_basis: RegionBasis,
    pub facts: Vec<FactDefinition>,
    pub conditions: Vec<Condition>,
    pub amount_rule: String,
    pub amount_rounding: Rounding,
    pub caps: Caps,
    pub exclusivity_groups: Vec<ExclusivityGroup>,
    pub standards_tables: Vec<StandardsTable>,
    pub examples: Vec<ExampleCase>,
    pub proactive_trigger: Option<ProactiveTrigger>,
    pub change_note: String,
    /// The submitter noticed every claim before sending it (work relief's payroll notice): a
    /// batch of only such claims is not noticed twice.
    #[serde(default)]
    pub noticed_by_submitter: bool,
}

impl PolicyVersion {
    /// Whether the version's validity covers `day`.
    pub fn covers(&self, day: Date) -> bool {
        self.valid_from <= day && self.valid_to.is_none_or(|to| day <= to)
    }

    pub fn fact(&self, name: &str) -> Option<&FactDefinition> {
        self.facts.iter().find(|f| f.name == name)
    }

    pub fn table(&self, key: &str) -> Option<&StandardsTable> {
        self.standards_tables.iter().find(|t| t.key == key)
    }
}

/// A stored version with its number and life.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredVersion {
    pub policy_code: String,
    pub version: i32,
    pub state: VersionState,
    pub rules: PolicyVersion,
    pub create_subject: String,
    pub created: time::OffsetDateTime,
    pub publish_subject: Option<String>,
    pub published: Option<time::OffsetDateTime>,
}

impl StoredVersion {
    pub fn name(&self) -> String {
        version_name(&self.policy_code, self.version)
    }
}

pub fn policy_name(code: &str) -> String {
    format!("policies/{code}")
}

pub fn version_name(code: &str, version: i32) -> String {
    format!("policies/{code}/versions/{version}")
}

/// A code or group: lower-case letters, digits and hyphens, starting with a letter.
pub fn valid_code(text: &str, min: usize, max: usize) -> bool {
    (min..=max).contains(&text.len())
        && text.starts_with(|c: char| c.is_ascii_lowercase())
        && !text.ends_with('-')
        && text
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
}

fn valid_identifier(text: &str) -> bool {
    !text.is_empty()
        && text.len() <= 63
        && text.starts_with(|c: char| c.is_ascii_lowercase())
        && text
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_')
}

fn valid_region_prefix(text: &str) -> bool {
    text == "*" || ((2..=12).contains(&text.len()) && text.bytes().all(|b| b.is_ascii_digit()))
}

fn text_length(field: &str, value: &str, min: usize, max: usize, what_zh: &str) -> Result<(), FieldError> {
    let length = value.chars().count();
    if length < min || length > max {
        return Err(FieldError::new(
            field,
            format!("must be {min} to {max} characters"),
            format!("{what_zh}应为{min}至{max}个字符"),
        ));
    }
    Ok(())
}

/// Checks a policy's stable part.
pub fn check_policy(policy: &Policy) -> Result<(), FieldError> {
    if !valid_code(&policy.code, 3, 63) {
        return Err(FieldError::new(
            "policy.code",
            "must be 3 to 63 lower-case letters, digits and hyphens, starting with a letter",
            "政策编码应为3至63位小写字母、数字或连字符，以字母开头",
        ));
    }
    text_length("policy.title", &policy.title, 1, 100, "政策名称")?;
    if !valid_code(&policy.policy_group, 1, 63) {
        return Err(FieldError::new(
            "policy.policy_group",
            "must be 1 to 63 lower-case letters, digits and hyphens, starting with a letter",
            "补贴项目组应为小写字母、数字或连字符，以字母开头",
        ));
    }
    if policy.claim_subject == ClaimSubject::Organization && policy.payee_kind != PayeeKind::Organization {
        return Err(FieldError::new(
            "policy.payee_kind",
            "a policy about organizations pays the organization (ORGANIZATION)",
            "补贴对象为单位的政策，收款方应为该单位",
        ));
    }
    Ok(())
}

/// A claim about an organization alone reads nothing of a person: its region is the
/// organization's, and no fact or category may come from identity.
fn check_organization_subject(version: &PolicyVersion) -> Result<(), FieldError> {
    if version.region_basis != RegionBasis::Organization {
        return Err(FieldError::new(
            "version.region_basis",
            "a policy about organizations takes its region from the organization (ORGANIZATION)",
            "补贴对象为单位的政策，应按单位所在地确定地区",
        ));
    }
    if !version.target_categories.is_empty() {
        return Err(FieldError::new(
            "version.target_categories",
            "a policy about organizations has no target categories of persons",
            "补贴对象为单位的政策不设人员类别",
        ));
    }
    if let Some(i) = version.facts.iter().position(|f| f.source == FactSource::Identity) {
        return Err(FieldError::new(
            format!("version.facts[{i}].source"),
            "a policy about organizations reads no person from identity",
            "补贴对象为单位的政策不能读取人员信息",
        ));
    }
    Ok(())
}

/// Checks a version's shape (the rules' compilation and examples are checked by
/// [`super::rules::CompiledRules`]). `first` is true for a policy's first version, which needs
/// no change note.
pub fn check_version(policy: &Policy, version: &PolicyVersion, first: bool) -> Result<(), FieldError> {
    let doc = &version.source_document;
    text_length(
        "version.source_document.document_number",
        &doc.document_number,
        1,
        128,
        "文号",
    )?;
    text_length("version.source_document.title", &doc.title, 1, 200, "文件标题")?;
    text_length("version.source_document.article", &doc.article, 1, 64, "条款")?;
    text_length("version.source_document.issuer", &doc.issuer, 1, 100, "发文机关")?;
    if !valid_region_prefix(&version.issuing_region_prefix) {
        return Err(FieldError::new(
            "version.issuing_region_prefix",
            "must be a division-code prefix of 2 to 12 digits, or *",
            "适用地区应为2至12位行政区划代码前缀，或 *",
        ));
    }
    if let Some(to) = version.valid_to
        && to < version.valid_from
    {
        return Err(FieldError::new(
            "version.valid_to",
            "must be on or after valid_from",
            "有效期止不能早于有效期起",
        ));
    }
    if !first {
        text_length("version.change_note", &version.change_note, 1, 500, "变更说明")?;
    }
    if policy.claim_subject == ClaimSubject::Organization {
        check_organization_subject(version)?;
    }
    if version.region_basis == RegionBasis::Organization && policy.payee_kind != PayeeKind::Organization {
        return Err(FieldError::new(
            "version.region_basis",
            "ORGANIZATION applies only to a policy paid to organizations",
            "按单位所在地确定地区仅适用于支付给单位的政策",
        ));
    }
    let mut names = std::collections::HashSet::new();
    for (i, fact) in version.facts.iter().enumerate() {
        let field = format!("version.facts[{i}]");
        if !names.insert(fact.name.as_str()) {
            return Err(FieldError::new(
                format!("{field}.name"),
                format!("the fact {} is defined twice", fact.name),
                format!("事实项 {} 重复定义", fact.name),
            ));
        }
        text_length(&format!("{field}.description"), &fact.description, 1, 200, "事实项说明")?;
        let fixed = match fact.source {
            FactSource::Identity => Some(IDENTITY_FACTS),
            FactSource::History => Some(HISTORY_FACTS),
            _ => None,
        };
        match fixed {
            Some(known) => match known.iter().find(|(name, _)| *name == fact.name) {
                Some((_, fact_type)) if *fact_type == fact.fact_type => {}
                Some((_, fact_type)) => {
                    return Err(FieldError::new(
                        format!("{field}.type"),
                        format!("{} has the type {}", fact.name, fact_type.as_str()),
                        format!("事实项 {} 的类型应为 {}", fact.name, fact_type.as_str()),
                    ));
                }
                None => {
                    let list: Vec<&str> = known.iter().map(|(name, _)| *name).collect();
                    return Err(FieldError::new(
                        format!("{field}.name"),
                        format!(
                            "{} is not one of the {} facts: {}",
                            fact.name,
                            fact.source.as_str(),
                            list.join(", ")
                        ),
                        format!("事实项 {} 不在可用的事实中：{}", fact.name, list.join("、")),
                    ));
                }
            },
            None => {
                if !valid_identifier(&fact.name) {
                    return Err(FieldError::new(
                        format!("{field}.name"),
                        "must be a lower_snake_case identifier",
                        "事实项名称应为小写字母、数字和下划线，以字母开头",
                    ));
                }
            }
        }
        let table_missing = fact.source == FactSource::StandardsTable
            && (fact.fact_type != FactType::Money || version.table(&fact.lookup_key).is_none());
        if table_missing {
            return Err(FieldError::new(
                format!("{field}.lookup_key"),
                "a standards-table fact is MONEY and names a table of this version",
                "标准表事实项应为金额类型，并指向本版本的标准表",
            ));
        }
        if fact.source == FactSource::Parameter && fact.lookup_key.is_empty() {
            return Err(FieldError::new(
                format!("{field}.lookup_key"),
                "a parameter fact names its parameter key",
                "参数事实项应写明参数键",
            ));
        }
        if fact.max_value < 0 {
            return Err(FieldError::new(
                format!("{field}.max_value"),
                "must not be negative",
                "上限不能为负数",
            ));
        }
    }
    if !version.target_categories.is_empty() && version.fact("person.categories").is_none() {
        return Err(FieldError::new(
            "version.target_categories",
            "target categories need the fact person.categories",
            "设置了对象类别时，须定义事实项 person.categories",
        ));
    }
    for (i, condition) in version.conditions.iter().enumerate() {
        text_length(
            &format!("version.conditions[{i}].expression"),
            &condition.expression,
            1,
            2000,
            "条件表达式",
        )?;
        text_length(
            &format!("version.conditions[{i}].description"),
            &condition.description,
            1,
            200,
            "条件说明",
        )?;
    }
    text_length("version.amount_rule", &version.amount_rule, 1, 2000, "金额规则")?;
    if ![1, 10, 100].contains(&version.amount_rounding.unit_fen) {
        return Err(FieldError::new(
            "version.amount_rounding.unit_fen",
            "must be 1, 10 or 100",
            "舍入单位应为1分、1角或1元",
        ));
    }
    let caps = &version.caps;
    if caps.max_months < 0 || caps.retirement_extension_years < 0 || caps.max_claims < 0 {
        return Err(FieldError::new(
            "version.caps",
            "limits must not be negative",
            "上限不能为负数",
        ));
    }
    // A money cap of 0 would grant claims of 0 fen: a cap is a positive amount, or none.
    for (field, cap) in [
        ("version.caps.max_amount_per_claim", caps.max_amount_per_claim),
        ("version.caps.max_total_amount", caps.max_total_amount),
    ] {
        if cap.is_some_and(|fen| fen <= 0) {
            return Err(FieldError::new(
                field,
                "a money cap is more than 0 fen; leave it out for no cap",
                "金额上限应大于0；不设上限请留空",
            ));
        }
    }
    if caps.max_months > 0 && policy.period_kind != PeriodKind::Monthly {
        return Err(FieldError::new(
            "version.caps.max_months",
            "a month limit applies only to a monthly policy",
            "月数上限仅适用于按月发放的政策",
        ));
    }
    if caps.retirement_extension_years > 0 && caps.max_months == 0 {
        return Err(FieldError::new(
            "version.caps.retirement_extension_years",
            "the retirement extension needs max_months",
            "延至退休的规则须同时设置月数上限",
        ));
    }
    let needed = [
        (caps.max_months > 0, "history.months_granted"),
        (caps.max_total_amount.is_some(), "history.amount_granted_fen"),
        (caps.max_claims > 0, "history.claims_granted"),
    ];
    for (name, _) in needed.iter().filter(|(needs, _)| *needs).map(|(_, name)| (name, ())) {
        if version.fact(name).is_none() {
            return Err(FieldError::new(
                "version.facts",
                format!("the caps need the history fact {name}"),
                format!("设置了上限时，须定义事实项 {name}"),
            ));
        }
    }
    if caps.retirement_extension_years > 0 {
        for name in ["person.retirement_month", "history.first_approval_month"] {
            if version.fact(name).is_none() {
                return Err(FieldError::new(
                    "version.facts",
                    format!("the retirement extension needs the fact {name}"),
                    format!("延至退休的规则须定义事实项 {name}"),
                ));
            }
        }
    }
    for (i, group) in version.exclusivity_groups.iter().enumerate() {
        if !valid_code(&group.key, 1, 63) {
            return Err(FieldError::new(
                format!("version.exclusivity_groups[{i}].key"),
                "must be lower-case letters, digits and hyphens",
                "互斥组应为小写字母、数字或连字符",
            ));
        }
    }
    let mut keys = std::collections::HashSet::new();
    for (i, table) in version.standards_tables.iter().enumerate() {
        let field = format!("version.standards_tables[{i}]");
        if !valid_identifier(&table.key) || !keys.insert(table.key.as_str()) {
            return Err(FieldError::new(
                format!("{field}.key"),
                "must be a lower_snake_case identifier, unique in the version",
                "标准表键应为小写字母、数字和下划线，且在本版本中唯一",
            ));
        }
        for (j, row) in table.rows.iter().enumerate() {
            if !valid_region_prefix(&row.region_prefix) || row.value_fen < 0 || !(2000..=2100).contains(&row.year) {
                return Err(FieldError::new(
                    format!("{field}.rows[{j}]"),
                    "a row has a region prefix (2 to 12 digits or *), a year and a value of zero or more",
                    "标准表每行应有地区前缀、年度和不小于零的金额",
                ));
            }
            text_length(&format!("{field}.rows[{j}].source"), &row.source, 1, 200, "标准来源")?;
        }
    }
    let eligible = version.examples.iter().any(|e| e.expected_outcome == Outcome::Eligible);
    let rejected = version.examples.iter().any(|e| e.expected_outcome == Outcome::Rejected);
    if !eligible || !rejected {
        return Err(FieldError::new(
            "version.examples",
            "give at least one ELIGIBLE and one REJECTED example case",
            "测算样例至少应有一个符合条件和一个不符合条件的案例",
        ));
    }
    let mut titles = std::collections::HashSet::new();
    for (i, example) in version.examples.iter().enumerate() {
        text_length(
            &format!("version.examples[{i}].title"),
            &example.title,
            1,
            100,
            "样例标题",
        )?;
        if !titles.insert(example.title.as_str()) {
            return Err(FieldError::new(
                format!("version.examples[{i}].title"),
                "example titles are unique in the version",
                "样例标题在本版本中不能重复",
            ));
        }
        check_period(policy, &example.period, &format!("version.examples[{i}].period"))?;
        let mut assumed = std::collections::HashSet::new();
        for (j, (key, value)) in example.assumed_standards.iter().enumerate() {
            if !keys.contains(key.as_str()) || !assumed.insert(key.as_str()) || *value < 0 {
                return Err(FieldError::new(
                    format!("version.examples[{i}].assumed_standards[{j}]"),
                    "names a standards table of the version, once, with a value of zero or more",
                    "测算假设应对应本版本的标准表，每表一次，金额不小于零",
                ));
            }
        }
    }
    Ok(())
}

/// The period rule of a policy's kind: a calendar month for monthly policies; at most 400 days
/// for a one-time event.
pub fn check_period(policy: &Policy, period: &Period, field: &str) -> Result<(), FieldError> {
    if period.last < period.first {
        return Err(FieldError::new(
            field,
            "the last day is before the first",
            "期间的结束日不能早于开始日",
        ));
    }
    match policy.period_kind {
        PeriodKind::Monthly if !period.is_calendar_month() => Err(FieldError::new(
            field,
            "a monthly policy's period is one calendar month, first to last day",
            "按月发放的政策，期间应为一个完整的自然月（首日至末日）",
        )),
        PeriodKind::OneTime if period.days() > 400 => Err(FieldError::new(
            field,
            "a one-time period is at most 400 days",
            "一次性补贴的期间不能超过400天",
        )),
        _ => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_transport_trigger_wants_a_chongqing_person_gone_out_of_province() {
        let trigger = ProactiveTrigger {
            change_kind: "EMPLOYMENT_CHANGED".into(),
            employment_status: Some("EMPLOYED_OUT_OF_PROVINCE".into()),
            category: None,
            registered_region_prefix: "50".into(),
        };
        let change = TriggeringChange {
            change_kind: "EMPLOYMENT_CHANGED",
            category: "",
            employment_status: "EMPLOYED_OUT_OF_PROVINCE",
            registered_region: "500101001001",
        };
        assert!(trigger.matches(&change));
        assert!(!trigger.matches(&TriggeringChange {
            registered_region: "370402001001",
            ..change.clone()
        }));
        assert!(!trigger.matches(&TriggeringChange {
            employment_status: "EMPLOYED_IN_COUNTY",
            ..change.clone()
        }));
        assert!(!trigger.matches(&TriggeringChange {
            change_kind: "CATEGORY_CERTIFIED",
            ..change
        }));
    }

    #[test]
    fn a_proposal_claims_the_day_or_the_month_of_the_change() {
        let day = Date::from_calendar_date(2024, time::Month::February, 20).expect("date");
        let one = ProactiveTrigger::period(PeriodKind::OneTime, day);
        assert_eq!((one.first, one.last), (day, day));
        let month = ProactiveTrigger::period(PeriodKind::Monthly, day);
        assert_eq!(
            (month.first, month.last),
            (
                Date::from_calendar_date(2024, time::Month::February, 1).expect("date"),
                Date::from_calendar_date(2024, time::Month::February, 29).expect("date"),
            )
        );
    }

    #[test]
    fn division_rounds_as_told() {
        let half_up = Rounding::default();
        assert_eq!(half_up.divide(5, 2), Some(3));
        assert_eq!(half_up.divide(4, 3), Some(1));
        assert_eq!(half_up.divide(-5, 2), Some(-3));
        let down = Rounding {
            mode: RoundingMode::Down,
            unit_fen: 1,
        };
        assert_eq!(down.divide(5, 3), Some(1));
        let up_to_yuan = Rounding {
            mode: RoundingMode::Up,
            unit_fen: 100,
        };
        assert_eq!(up_to_yuan.divide(10_001, 1), Some(10_100));
        let half_up_yuan = Rounding {
            mode: RoundingMode::HalfUp,
            unit_fen: 100,
        };
        assert_eq!(half_up_yuan.divide(726_000 * 11, 10), Some(798_600));
        assert_eq!(half_up_yuan.divide(15_049, 1), Some(15_000));
        assert_eq!(half_up_yuan.divide(15_050, 1), Some(15_100));
        assert_eq!(half_up.divide(1, 0), None);
    }

    #[test]
    fn the_longest_prefix_row_of_the_year_wins() {
        let table = StandardsTable {
            key: "t".into(),
            description: "d".into(),
            rounding: Rounding::default(),
            rows: vec![
                StandardsRow {
                    region_prefix: "*".into(),
                    year: 2024,
                    value_fen: 1,
                    source: "s".into(),
                },
                StandardsRow {
                    region_prefix: "2113".into(),
                    year: 2024,
                    value_fen: 2,
                    source: "s".into(),
                },
                StandardsRow {
                    region_prefix: "2113".into(),
                    year: 2025,
                    value_fen: 3,
                    source: "s".into(),
                },
            ],
        };
        assert_eq!(table.lookup("211302001001", 2024).map(|r| r.value_fen), Some(2));
        assert_eq!(table.lookup("370402001013", 2024).map(|r| r.value_fen), Some(1));
        assert_eq!(table.lookup("370402001013", 2025).map(|r| r.value_fen), None);
    }

    #[test]
    fn codes_are_lower_case_with_hyphens() {
        assert!(valid_code("zz-agency-2021", 3, 63));
        assert!(!valid_code("ZZ-agency", 3, 63));
        assert!(!valid_code("zz", 3, 63));
        assert!(!valid_code("zz-", 3, 63));
        assert!(!valid_code("1zz", 3, 63));
    }
}
