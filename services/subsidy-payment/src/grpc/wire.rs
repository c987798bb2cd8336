//! Wire ↔ domain conversions of `bangfu.subsidy.v1`. Parsing names the field at fault; the
//! domain never sees a protobuf type.

use bangfu_platform::error::{ErrorReason, Problem};
use bangfu_platform::subsidy_claims::claim_person_name;
use bangfu_platform::wire::{date, date_to_wire, optional_date, timestamp_to_wire};
use bangfu_proto::common::v1 as common;
use bangfu_proto::subsidy::v1 as pb;

use crate::app::CreatedVersion;
use crate::domain::{self as d, ExampleResult, FactValue, Period, StoredVersion, parse_day};
use crate::store::{LedgerEntry, StoredClaim, StoredFund, StoredPolicy};

fn invalid(field: impl Into<String>, message: impl Into<String>, message_zh: impl Into<String>) -> Problem {
    Problem::invalid_field(ErrorReason::FieldInvalid, field, message, message_zh)
}

fn required(field: &str, what_zh: &str) -> Problem {
    Problem::required(field, what_zh)
}

macro_rules! enum_map {
    ($fn_in:ident, $fn_out:ident, $wire:ty, $domain:ty, { $($w:ident => $d:ident),+ $(,)? }) => {
        // Every contract enum maps both ways, whether or not a request carries it yet.
        #[allow(dead_code)]
        pub fn $fn_in(field: &str, value: i32) -> Result<$domain, Problem> {
            match <$wire>::try_from(value) {
                $(Ok(<$wire>::$w) => Ok(<$domain>::$d),)+
                _ => Err(invalid(field, "must be given", "请选择有效的取值")),
            }
        }

        pub fn $fn_out(value: $domain) -> i32 {
            match value { $(<$domain>::$d => <$wire>::$w as i32,)+ }
        }
    };
}

enum_map!(fund_source, fund_source_to_wire, pb::FundSource, d::FundSource, {
    EmploymentSubsidy => EmploymentSubsidy,
    RuralRevitalizationTransition => RuralRevitalizationTransition,
    EastWestCooperation => EastWestCooperation,
    PhotovoltaicIncome => PhotovoltaicIncome,
    WorkRelief => WorkRelief,
    LocalBudget => LocalBudget,
});
enum_map!(payee_kind, payee_kind_to_wire, pb::PayeeKind, d::PayeeKind, {
    Person => Person, Organization => Organization,
});
/// Not given is a person: every policy was about a person before organizations were.
pub fn claim_subject(field: &str, value: i32) -> Result<d::ClaimSubject, Problem> {
    match pb::ClaimSubject::try_from(value) {
        Ok(pb::ClaimSubject::Unspecified | pb::ClaimSubject::Person) => Ok(d::ClaimSubject::Person),
        Ok(pb::ClaimSubject::Organization) => Ok(d::ClaimSubject::Organization),
        Err(_) => Err(invalid(field, "must be PERSON or ORGANIZATION", "请选择有效的补贴对象")),
    }
}

pub fn claim_subject_to_wire(value: d::ClaimSubject) -> i32 {
    match value {
        d::ClaimSubject::Person => pb::ClaimSubject::Person as i32,
        d::ClaimSubject::Organization => pb::ClaimSubject::Organization as i32,
    }
}

enum_map!(period_kind, period_kind_to_wire, pb::PeriodKind, d::PeriodKind, {
    OneTime => OneTime, Monthly => Monthly,
});
enum_map!(fact_type, fact_type_to_wire, pb::FactType, d::FactType, {
    Integer => Integer, Money => Money, Boolean => Boolean, Text => Text, Date => Date,
    YearMonth => YearMonth, RegionCode => RegionCode, TextList => TextList,
});
enum_map!(fact_source, fact_source_to_wire, pb::FactSource, d::FactSource, {
    Claim => Claim, Identity => Identity, History => History, StandardsTable => StandardsTable,
    Parameter => Parameter,
});
enum_map!(exclusivity_scope, exclusivity_scope_to_wire, pb::ExclusivityScope, d::ExclusivityScope, {
    SamePeriod => SamePeriod, Ever => Ever,
});
enum_map!(rejection_reason, rejection_reason_to_wire, pb::RejectionReason, d::RejectionReason, {
    PolicyNotInForce => PolicyNotInForce, NotTargetPerson => NotTargetPerson, OutOfRegion => OutOfRegion,
    DuplicatePeriod => DuplicatePeriod, ExclusiveWith => ExclusiveWith, CapReached => CapReached,
    PersonDeceased => PersonDeceased, BudgetExhausted => BudgetExhausted, ConditionNotMet => ConditionNotMet,
    PersonMovedAway => PersonMovedAway, StandardMissing => StandardMissing, AmountZero => AmountZero,
    RejectedInReview => RejectedInReview, PersonNotFound => PersonNotFound,
});
enum_map!(outcome, outcome_to_wire, pb::DecisionOutcome, d::Outcome, {
    Eligible => Eligible, Rejected => Rejected,
});
enum_map!(claim_state, claim_state_to_wire, pb::ClaimState, d::ClaimState, {
    Proposed => Proposed, Declined => Declined, Rejected => Rejected, PendingReview => PendingReview,
    Approved => Approved, Batched => Batched, Paid => Paid, PaymentFailed => PaymentFailed,
    RecoveryOpen => RecoveryOpen, Recovered => Recovered, Withdrawn => Withdrawn,
});
enum_map!(review_verdict, review_verdict_to_wire, pb::ReviewVerdict, d::ReviewVerdict, {
    Approve => Approve, Reject => Reject,
});
enum_map!(review_cause, review_cause_to_wire, pb::ReviewCause, d::ReviewCause, {
    AmountBand => AmountBand, ObjectionUpheld => ObjectionUpheld, Reevaluated => Reevaluated,
});

/// Defaults for enums whose zero value has a meaning ("not given: …").
fn category_as_of(value: i32) -> d::CategoryAsOf {
    match pb::CategoryAsOf::try_from(value) {
        Ok(pb::CategoryAsOf::PeriodLastDay) => d::CategoryAsOf::PeriodLastDay,
        Ok(pb::CategoryAsOf::AnyDay) => d::CategoryAsOf::AnyDay,
        Ok(pb::CategoryAsOf::EveryDay) => d::CategoryAsOf::EveryDay,
        _ => d::CategoryAsOf::PeriodFirstDay,
    }
}

fn category_as_of_to_wire(value: d::CategoryAsOf) -> i32 {
    (match value {
        d::CategoryAsOf::PeriodFirstDay => pb::CategoryAsOf::PeriodFirstDay,
        d::CategoryAsOf::PeriodLastDay => pb::CategoryAsOf::PeriodLastDay,
        d::CategoryAsOf::AnyDay => pb::CategoryAsOf::AnyDay,
        d::CategoryAsOf::EveryDay => pb::CategoryAsOf::EveryDay,
    }) as i32
}

fn region_basis(value: i32) -> d::RegionBasis {
    match pb::RegionBasis::try_from(value) {
        Ok(pb::RegionBasis::Residence) => d::RegionBasis::Residence,
        Ok(pb::RegionBasis::Organization) => d::RegionBasis::Organization,
        _ => d::RegionBasis::Registered,
    }
}

fn region_basis_to_wire(value: d::RegionBasis) -> i32 {
    (match value {
        d::RegionBasis::Registered => pb::RegionBasis::Registered,
        d::RegionBasis::Residence => pb::RegionBasis::Residence,
        d::RegionBasis::Organization => pb::RegionBasis::Organization,
    }) as i32
}

fn rounding(field: &str, value: Option<&pb::RoundingRule>) -> Result<d::Rounding, Problem> {
    let Some(value) = value else {
        return Ok(d::Rounding::default());
    };
    let mode = match pb::RoundingMode::try_from(value.mode) {
        Ok(pb::RoundingMode::Down) => d::RoundingMode::Down,
        Ok(pb::RoundingMode::Up) => d::RoundingMode::Up,
        Ok(_) => d::RoundingMode::HalfUp,
        Err(_) => {
            return Err(invalid(
                format!("{field}.mode"),
                "unknown rounding mode",
                "舍入方式无效",
            ));
        }
    };
    Ok(d::Rounding {
        mode,
        unit_fen: if value.unit_fen == 0 { 1 } else { value.unit_fen },
    })
}

fn rounding_to_wire(value: d::Rounding) -> pb::RoundingRule {
    pb::RoundingRule {
        mode: (match value.mode {
            d::RoundingMode::HalfUp => pb::RoundingMode::HalfUp,
            d::RoundingMode::Down => pb::RoundingMode::Down,
            d::RoundingMode::Up => pb::RoundingMode::Up,
        }) as i32,
        unit_fen: value.unit_fen,
    }
}

fn money(value: Option<&common::Money>) -> Option<i64> {
    value.map(|m| m.fen)
}

pub fn money_to_wire(fen: i64) -> common::Money {
    common::Money { fen }
}

fn strip<'a>(name: &'a str, prefix: &str) -> &'a str {
    name.strip_prefix(prefix).unwrap_or(name)
}

pub fn period(field: &str, value: Option<&common::Period>) -> Result<Period, Problem> {
    let value = value.ok_or_else(|| required(field, "期间"))?;
    let first = date(&format!("{field}.first_day"), value.first_day.as_ref())?;
    let last = date(&format!("{field}.last_day"), value.last_day.as_ref())?;
    if last < first {
        return Err(invalid(
            format!("{field}.last_day"),
            "must not be before first_day",
            "结束日期不能早于开始日期",
        ));
    }
    Ok(Period { first, last })
}

pub fn period_to_wire(period: &Period) -> common::Period {
    common::Period {
        first_day: Some(date_to_wire(period.first)),
        last_day: Some(date_to_wire(period.last)),
    }
}

fn year_month_text(field: &str, value: &common::YearMonth) -> Result<String, Problem> {
    if !(1..=12).contains(&value.month) || !(1900..=2200).contains(&value.year) {
        return Err(invalid(field, "must be a year and a month 1 to 12", "年月无效"));
    }
    Ok(format!("{:04}-{:02}", value.year, value.month))
}

pub fn fact_value(field: &str, value: Option<&pb::FactValue>) -> Result<FactValue, Problem> {
    use pb::fact_value::Value;
    let value = value
        .and_then(|v| v.value.as_ref())
        .ok_or_else(|| required(field, "事实值"))?;
    Ok(match value {
        Value::IntegerValue(v) => FactValue::Integer(*v),
        Value::MoneyValue(m) => FactValue::Money(m.fen),
        Value::BooleanValue(v) => FactValue::Boolean(*v),
        Value::TextValue(v) => {
            if v.chars().count() > 500 {
                return Err(invalid(
                    field,
                    "text is at most 500 characters",
                    "文字不能超过500个字符",
                ));
            }
            FactValue::Text(v.clone())
        }
        Value::DateValue(v) => FactValue::Date(d::day_text(date(field, Some(v))?)),
        Value::YearMonthValue(v) => FactValue::YearMonth(year_month_text(field, v)?),
        Value::RegionCodeValue(v) => {
            if v.len() != 12 || !v.bytes().all(|b| b.is_ascii_digit()) {
                return Err(invalid(
                    field,
                    "a region code has 12 digits",
                    "行政区划代码应为12位数字",
                ));
            }
            FactValue::RegionCode(v.clone())
        }
        Value::TextListValue(list) => {
            if list.items.len() > 100 || list.items.iter().any(|i| i.chars().count() > 100) {
                return Err(invalid(
                    field,
                    "at most 100 items of 100 characters",
                    "列表最多100项，每项不超过100个字符",
                ));
            }
            FactValue::TextList(list.items.clone())
        }
    })
}

pub fn fact_value_to_wire(value: &FactValue) -> pb::FactValue {
    use pb::fact_value::Value;
    let year_month = |text: &str| {
        let (year, month) = text.split_once('-').unwrap_or(("0", "0"));
        common::YearMonth {
            year: year.parse().unwrap_or(0),
            month: month.parse().unwrap_or(0),
        }
    };
    let value = match value {
        FactValue::Integer(v) => Value::IntegerValue(*v),
        FactValue::Money(v) => Value::MoneyValue(money_to_wire(*v)),
        FactValue::Boolean(v) => Value::BooleanValue(*v),
        FactValue::Text(v) => Value::TextValue(v.clone()),
        FactValue::Date(v) => match parse_day(v) {
            Some(day) => Value::DateValue(date_to_wire(day)),
            None => Value::TextValue(v.clone()),
        },
        FactValue::YearMonth(v) => Value::YearMonthValue(year_month(v)),
        FactValue::RegionCode(v) => Value::RegionCodeValue(v.clone()),
        FactValue::TextList(items) => Value::TextListValue(pb::TextList { items: items.clone() }),
    };
    pb::FactValue { value: Some(value) }
}

pub fn facts(field: &str, values: &[pb::Fact]) -> Result<Vec<d::Fact>, Problem> {
    values
        .iter()
        .enumerate()
        .map(|(i, f)| {
            Ok(d::Fact {
                name: f.name.trim().to_string(),
                value: fact_value(&format!("{field}[{i}].value"), f.value.as_ref())?,
            })
        })
        .collect()
}

fn fact_to_wire(fact: &d::Fact) -> pb::Fact {
    pb::Fact {
        name: fact.name.clone(),
        value: Some(fact_value_to_wire(&fact.value)),
    }
}

pub fn policy(value: Option<&pb::Policy>) -> Result<d::Policy, Problem> {
    let value = value.ok_or_else(|| required("policy", "政策"))?;
    Ok(d::Policy {
        code: value.code.trim().to_string(),
        title: value.title.trim().to_string(),
        policy_group: value.policy_group.trim().to_string(),
        payee_kind: payee_kind("policy.payee_kind", value.payee_kind)?,
        period_kind: period_kind("policy.period_kind", value.period_kind)?,
        claim_subject: claim_subject("policy.claim_subject", value.claim_subject)?,
    })
}

pub fn policy_version(value: Option<&pb::PolicyVersion>) -> Result<d::PolicyVersion, Problem> {
    let value = value.ok_or_else(|| required("version", "政策版本"))?;
    let document = value
        .source_document
        .as_ref()
        .ok_or_else(|| required("version.source_document", "政策文件"))?;
    let facts = value
        .facts
        .iter()
        .enumerate()
        .map(|(i, f)| {
            Ok(d::FactDefinition {
                name: f.name.trim().to_string(),
                fact_type: fact_type(&format!("version.facts[{i}].type"), f.r#type)?,
                source: fact_source(&format!("version.facts[{i}].source"), f.source)?,
                description: f.description.trim().to_string(),
                required: f.required,
                lookup_key: f.lookup_key.trim().to_string(),
                max_value: f.max_value,
            })
        })
        .collect::<Result<Vec<_>, Problem>>()?;
    let conditions = value
        .conditions
        .iter()
        .enumerate()
        .map(|(i, c)| {
            Ok(d::Condition {
                expression: c.expression.clone(),
                reason: rejection_reason(&format!("version.conditions[{i}].reason"), c.reason)?,
                description: c.description.trim().to_string(),
            })
        })
        .collect::<Result<Vec<_>, Problem>>()?;
    let caps = value.caps.as_ref().map(|c| d::Caps {
        max_amount_per_claim: money(c.max_amount_per_claim.as_ref()),
        max_total_amount: money(c.max_total_amount.as_ref()),
        max_months: c.max_months,
        retirement_extension_years: c.retirement_extension_years,
        max_claims: c.max_claims,
    });
    let exclusivity_groups = value
        .exclusivity_groups
        .iter()
        .enumerate()
        .map(|(i, g)| {
            Ok(d::ExclusivityGroup {
                key: g.key.trim().to_string(),
                scope: exclusivity_scope(&format!("version.exclusivity_groups[{i}].scope"), g.scope)
                    .unwrap_or(d::ExclusivityScope::SamePeriod),
            })
        })
        .collect::<Result<Vec<_>, Problem>>()?;
    let standards_tables = value
        .standards_tables
        .iter()
        .enumerate()
        .map(|(i, t)| {
            Ok(d::StandardsTable {
                key: t.key.trim().to_string(),
                description: t.description.trim().to_string(),
                rounding: rounding(&format!("version.standards_tables[{i}].rounding"), t.rounding.as_ref())?,
                rows: t
                    .rows
                    .iter()
                    .map(|r| d::StandardsRow {
                        region_prefix: r.region_prefix.trim().to_string(),
                        year: r.year,
                        value_fen: money(r.value.as_ref()).unwrap_or(-1),
                        source: r.source.trim().to_string(),
                    })
                    .collect(),
            })
        })
        .collect::<Result<Vec<_>, Problem>>()?;
    let examples = value
        .examples
        .iter()
        .enumerate()
        .map(|(i, e)| {
            let field = format!("version.examples[{i}]");
            let expected_outcome = outcome(&format!("{field}.expected_outcome"), e.expected_outcome)?;
            let expected_amount = money(e.expected_amount.as_ref());
            if expected_outcome == d::Outcome::Eligible && expected_amount.is_none() {
                return Err(required(&format!("{field}.expected_amount"), "预期金额"));
            }
            Ok(d::ExampleCase {
                title: e.title.trim().to_string(),
                period: period(&format!("{field}.period"), e.period.as_ref())?,
                region: e.region.trim().to_string(),
                facts: self::facts(&format!("{field}.facts"), &e.facts)?,
                expected_outcome,
                expected_amount: expected_amount.unwrap_or(0),
                expected_reasons: e
                    .expected_reasons
                    .iter()
                    .enumerate()
                    .map(|(j, r)| rejection_reason(&format!("{field}.expected_reasons[{j}]"), *r))
                    .collect::<Result<Vec<_>, Problem>>()?,
                assumed_standards: e
                    .assumed_standards
                    .iter()
                    .enumerate()
                    .map(|(j, a)| {
                        let value = money(a.value.as_ref()).ok_or_else(|| {
                            required(&format!("{field}.assumed_standards[{j}].value"), "假设标准金额")
                        })?;
                        Ok((a.key.trim().to_string(), value))
                    })
                    .collect::<Result<Vec<_>, Problem>>()?,
            })
        })
        .collect::<Result<Vec<_>, Problem>>()?;
    let proactive_trigger = value
        .proactive_trigger
        .as_ref()
        .map(|t| {
            let change_kind = strip(t.change_kind().as_str_name(), "CHANGE_KIND_").to_string();
            if !d::TRIGGER_KINDS.contains(&change_kind.as_str()) {
                return Err(invalid(
                    "version.proactive_trigger.change_kind",
                    format!("a proposal may be triggered by {}", d::TRIGGER_KINDS.join(" or ")),
                    "免申即享只能由就业状态变化或人员类别认定触发",
                ));
            }
            Ok(d::ProactiveTrigger {
                change_kind,
                employment_status: (t.employment_status != 0)
                    .then(|| strip(t.employment_status().as_str_name(), "EMPLOYMENT_STATUS_").to_string()),
                category: (t.category != 0).then(|| strip(t.category().as_str_name(), "PERSON_CATEGORY_").to_string()),
                registered_region_prefix: t.registered_region_prefix.trim().to_string(),
            })
        })
        .transpose()?;
    Ok(d::PolicyVersion {
        source_document: d::SourceDocument {
            document_number: document.document_number.trim().to_string(),
            title: document.title.trim().to_string(),
            article: document.article.trim().to_string(),
            issuer: document.issuer.trim().to_string(),
            issue_date: optional_date("version.source_document.issue_date", document.issue_date.as_ref())?,
        },
        issuing_region_prefix: value.issuing_region_prefix.trim().to_string(),
        valid_from: date("version.valid_from", value.valid_from.as_ref())?,
        valid_to: optional_date("version.valid_to", value.valid_to.as_ref())?,
        fund_source: fund_source("version.fund_source", value.fund_source)?,
        target_categories: value
            .target_categories
            .iter()
            .map(|c| {
                bangfu_proto::common::v1::PersonCategory::try_from(*c)
                    .ok()
                    .filter(|c| *c != bangfu_proto::common::v1::PersonCategory::Unspecified)
                    .map(|c| strip(c.as_str_name(), "PERSON_CATEGORY_").to_string())
                    .ok_or_else(|| invalid("version.target_categories", "unknown category", "对象类别无效"))
            })
            .collect::<Result<Vec<_>, Problem>>()?,
        category_as_of: category_as_of(value.category_as_of),
        region_basis: region_basis(value.region_basis),
        facts,
        conditions,
        amount_rule: value.amount_rule.clone(),
        amount_rounding: rounding("version.amount_rounding", value.amount_rounding.as_ref())?,
        caps: caps.unwrap_or_default(),
        exclusivity_groups,
        standards_tables,
        examples,
        proactive_trigger,
        change_note: value.change_note.trim().to_string(),
        noticed_by_submitter: value.noticed_by_submitter,
    })
}

fn category_to_wire(name: &str) -> i32 {
    common::PersonCategory::from_str_name(&format!("PERSON_CATEGORY_{name}")).map_or(0, |c| c as i32)
}

pub fn version_to_wire(version: &StoredVersion) -> pb::PolicyVersion {
    let rules = &version.rules;
    pb::PolicyVersion {
        name: version.name(),
        version: version.version,
        state: (match version.state {
            d::VersionState::Draft => pb::PolicyVersionState::Draft,
            d::VersionState::Published => pb::PolicyVersionState::Published,
        }) as i32,
        source_document: Some(pb::SourceDocument {
            document_number: rules.source_document.document_number.clone(),
            title: rules.source_document.title.clone(),
            article: rules.source_document.article.clone(),
            issuer: rules.source_document.issuer.clone(),
            issue_date: rules.source_document.issue_date.map(date_to_wire),
        }),
        issuing_region_prefix: rules.issuing_region_prefix.clone(),
        valid_from: Some(date_to_wire(rules.valid_from)),
        valid_to: rules.valid_to.map(date_to_wire),
        fund_source: fund_source_to_wire(rules.fund_source),
        target_categories: rules.target_categories.iter().map(|c| category_to_wire(c)).collect(),
        category_as_of: category_as_of_to_wire(rules.category_as_of),
        region_basis: region_basis_to_wire(rules.region_basis),
        facts: rules
            .facts
            .iter()
            .map(|f| pb::FactDefinition {
                name: f.name.clone(),
                r#type: fact_type_to_wire(f.fact_type),
                source: fact_source_to_wire(f.source),
                description: f.description.clone(),
                required: f.required,
                lookup_key: f.lookup_key.clone(),
                max_value: f.max_value,
            })
            .collect(),
        conditions: rules
            .conditions
            .iter()
            .map(|c| pb::PolicyCondition {
                expression: c.expression.clone(),
                reason: rejection_reason_to_wire(c.reason),
                description: c.description.clone(),
            })
            .collect(),
        amount_rule: rules.amount_rule.clone(),
        amount_rounding: Some(rounding_to_wire(rules.amount_rounding)),
        caps: Some(pb::PolicyCaps {
            max_amount_per_claim: rules.caps.max_amount_per_claim.map(money_to_wire),
            max_total_amount: rules.caps.max_total_amount.map(money_to_wire),
            max_months: rules.caps.max_months,
            retirement_extension_years: rules.caps.retirement_extension_years,
            max_claims: rules.caps.max_claims,
        }),
        exclusivity_groups: rules
            .exclusivity_groups
            .iter()
            .map(|g| pb::ExclusivityGroup {
                key: g.key.clone(),
                scope: exclusivity_scope_to_wire(g.scope),
            })
            .collect(),
        standards_tables: rules
            .standards_tables
            .iter()
            .map(|t| pb::StandardsTable {
                key: t.key.clone(),
                description: t.description.clone(),
                rounding: Some(rounding_to_wire(t.rounding)),
                rows: t
                    .rows
                    .iter()
                    .map(|r| pb::StandardsRow {
                        region_prefix: r.region_prefix.clone(),
                        year: r.year,
                        value: Some(money_to_wire(r.value_fen)),
                        source: r.source.clone(),
                    })
                    .collect(),
            })
            .collect(),
        examples: rules
            .examples
            .iter()
            .map(|e| pb::ExampleCase {
                title: e.title.clone(),
                period: Some(period_to_wire(&e.period)),
                region: e.region.clone(),
                facts: e.facts.iter().map(fact_to_wire).collect(),
                expected_outcome: outcome_to_wire(e.expected_outcome),
                expected_amount: (e.expected_outcome == d::Outcome::Eligible).then(|| money_to_wire(e.expected_amount)),
                expected_reasons: e
                    .expected_reasons
                    .iter()
                    .map(|r| rejection_reason_to_wire(*r))
                    .collect(),
                assumed_standards: e
                    .assumed_standards
                    .iter()
                    .map(|(key, value)| pb::AssumedStandard {
                        key: key.clone(),
                        value: Some(money_to_wire(*value)),
                    })
                    .collect(),
            })
            .collect(),
        proactive_trigger: rules.proactive_trigger.as_ref().map(|t| pb::ProactiveTrigger {
            change_kind: bangfu_proto::identity::v1::ChangeKind::from_str_name(&format!(
                "CHANGE_KIND_{}",
                t.change_kind
            ))
            .map_or(0, |k| k as i32),
            employment_status: t
                .employment_status
                .as_ref()
                .and_then(|s| common::EmploymentStatus::from_str_name(&format!("EMPLOYMENT_STATUS_{s}")))
                .map_or(0, |s| s as i32),
            category: t.category.as_deref().map_or(0, category_to_wire),
            registered_region_prefix: t.registered_region_prefix.clone(),
        }),
        change_note: rules.change_note.clone(),
        create_subject: version.create_subject.clone(),
        create_time: Some(timestamp_to_wire(version.created)),
        publish_subject: version.publish_subject.clone().unwrap_or_default(),
        publish_time: version.published.map(timestamp_to_wire),
        noticed_by_submitter: rules.noticed_by_submitter,
    }
}

pub fn policy_to_wire(
    policy: &StoredPolicy,
    latest: Option<&StoredVersion>,
    in_force: Option<&StoredVersion>,
) -> pb::Policy {
    pb::Policy {
        name: d::policy_name(&policy.policy.code),
        code: policy.policy.code.clone(),
        title: policy.policy.title.clone(),
        policy_group: policy.policy.policy_group.clone(),
        payee_kind: payee_kind_to_wire(policy.policy.payee_kind),
        period_kind: period_kind_to_wire(policy.policy.period_kind),
        latest_version: latest.map(|v| v.name()).unwrap_or_default(),
        in_force_version: in_force.map(|v| v.name()).unwrap_or_default(),
        create_time: Some(timestamp_to_wire(policy.created)),
        create_subject: policy.create_subject.clone(),
        claim_subject: claim_subject_to_wire(policy.policy.claim_subject),
    }
}

pub fn example_results_to_wire(results: &[ExampleResult]) -> Vec<pb::ExampleResult> {
    results
        .iter()
        .map(|r| pb::ExampleResult {
            title: r.title.clone(),
            passed: r.passed,
            outcome: r.outcome.map_or(0, outcome_to_wire),
            amount: (r.outcome == Some(d::Outcome::Eligible)).then(|| money_to_wire(r.amount)),
            reasons: r.reasons.iter().map(|x| rejection_reason_to_wire(*x)).collect(),
            message: r.message.clone(),
        })
        .collect()
}

pub fn created_version_to_wire(created: &CreatedVersion) -> (Option<pb::Policy>, Option<pb::PolicyVersion>) {
    let version = created.version.as_ref();
    (
        created.policy.as_ref().map(|p| policy_to_wire(p, version, None)),
        version.map(version_to_wire),
    )
}

pub fn fund_to_wire(fund: &StoredFund) -> pb::Fund {
    pb::Fund {
        name: fund.name(),
        display_name: fund.display_name.clone(),
        fund_source: fund_source_to_wire(fund.fund_source),
        region_prefix: fund.region_prefix.clone(),
        year: fund.year,
        budget_document: fund.budget_document.clone(),
        budget: Some(money_to_wire(fund.budget)),
        reserved: Some(money_to_wire(fund.reserved)),
        payable: Some(money_to_wire(fund.payable)),
        consumed: Some(money_to_wire(fund.consumed)),
        recoverable: Some(money_to_wire(fund.recoverable)),
        released: Some(money_to_wire(fund.released)),
        available: Some(money_to_wire(fund.available())),
        create_subject: fund.create_subject.clone(),
        create_time: Some(timestamp_to_wire(fund.created)),
        etag: fund.etag(),
    }
}

fn ledger_account(text: &str) -> i32 {
    (match text {
        "available" => pb::LedgerAccount::Available,
        "reserved" => pb::LedgerAccount::Reserved,
        "payable" => pb::LedgerAccount::Payable,
        "paid" => pb::LedgerAccount::Paid,
        "recoverable" => pb::LedgerAccount::Recoverable,
        "treasury" => pb::LedgerAccount::Treasury,
        _ => pb::LedgerAccount::Unspecified,
    }) as i32
}

/// The stored kind of an entry kind asked for in a filter.
pub fn ledger_kind(value: i32) -> Option<&'static str> {
    match pb::LedgerEntryKind::try_from(value).ok()? {
        pb::LedgerEntryKind::Budget => Some("budget"),
        pb::LedgerEntryKind::Reserve => Some("reserve"),
        pb::LedgerEntryKind::Release => Some("release"),
        pb::LedgerEntryKind::BatchApproved => Some("batch_approved"),
        pb::LedgerEntryKind::BatchCancelled => Some("batch_cancelled"),
        pb::LedgerEntryKind::Paid => Some("paid"),
        pb::LedgerEntryKind::PaymentFailed => Some("payment_failed"),
        pb::LedgerEntryKind::RecoveryOpened => Some("recovery_opened"),
        pb::LedgerEntryKind::RecoveryReceived => Some("recovery_received"),
        pb::LedgerEntryKind::RecoveryClosed => Some("recovery_closed"),
        pb::LedgerEntryKind::Unspecified => None,
    }
}

pub fn entry_to_wire(entry: &LedgerEntry) -> pb::LedgerEntry {
    let kind = pb::LedgerEntryKind::from_str_name(&format!("LEDGER_ENTRY_KIND_{}", entry.kind.to_uppercase()))
        .map_or(0, |k| k as i32);
    pb::LedgerEntry {
        name: format!("funds/{}/ledgerEntries/{}", entry.fund_id, entry.seq),
        kind,
        debit_account: ledger_account(&entry.debit),
        credit_account: ledger_account(&entry.credit),
        amount: Some(money_to_wire(entry.amount)),
        payment_batch: entry
            .batch_id
            .as_ref()
            .map(|b| format!("paymentBatches/{b}"))
            .unwrap_or_default(),
        claim: entry
            .claim_id
            .as_ref()
            .map(|c| format!("claims/{c}"))
            .unwrap_or_default(),
        recovery: String::new(),
        document: entry.document.clone(),
        entry_date: Some(date_to_wire(entry.entry_date)),
        record_time: Some(timestamp_to_wire(entry.recorded)),
        subject: entry.subject.clone(),
    }
}

fn micros_to_wire(micros: i64) -> Option<prost_types::Timestamp> {
    bangfu_platform::db::from_micros(micros).map(timestamp_to_wire)
}

pub fn decision_to_wire(decision: &d::Decision, policy_code: &str) -> pb::ClaimDecision {
    pb::ClaimDecision {
        outcome: outcome_to_wire(decision.outcome),
        amount: (decision.outcome == d::Outcome::Eligible).then(|| money_to_wire(decision.amount)),
        computed_amount: Some(money_to_wire(decision.computed_amount)),
        policy_version: if decision.policy_version > 0 {
            d::version_name(policy_code, decision.policy_version)
        } else {
            String::new()
        },
        rejection_reasons: decision
            .rejections
            .iter()
            .map(|r| pb::RejectionDetail {
                reason: rejection_reason_to_wire(r.reason),
                message: r.message.clone(),
                conflicting_claim: r.conflicting_claim.clone(),
            })
            .collect(),
        months_granted: decision.months_granted,
        months_limit: decision.months_limit,
        frozen_facts: decision
            .frozen_facts
            .iter()
            .map(|f| pb::FrozenFact {
                fact: Some(fact_to_wire(&f.fact)),
                source: fact_source_to_wire(f.source),
                source_detail: f.source_detail.clone(),
                read_time: micros_to_wire(f.read_us),
            })
            .collect(),
        decide_time: micros_to_wire(decision.decided_us),
    }
}

fn payee_to_wire(payee: &d::Payee) -> pb::Payee {
    pb::Payee {
        payee: Some(match payee {
            d::Payee::Person(id) => pb::payee::Payee::Person(format!("persons/{id}")),
            d::Payee::Organization(org) => pb::payee::Payee::Organization(pb::OrganizationPayee {
                credit_code: org.credit_code.clone(),
                display_name: org.display_name.clone(),
                region: Some(common::RegionCode {
                    code: org.region.clone(),
                    display_name: String::new(),
                }),
            }),
        }),
    }
}

/// A batch's notice period; none for a batch published with no notice days (its period would
/// end the day before it begins).
fn notice_period_to_wire(batch: &crate::store::StoredBatch) -> Option<common::Period> {
    batch
        .notice
        .filter(|(first, last)| first <= last)
        .map(|(first, last)| common::Period {
            first_day: Some(date_to_wire(first)),
            last_day: Some(date_to_wire(last)),
        })
}

/// A claim with what was paid on it, when it was.
pub fn paid_claim_to_wire(claim: &StoredClaim, paid: Option<&(i64, Option<time::Date>)>) -> pb::Claim {
    let mut wire = claim_to_wire(claim);
    if let Some((amount, date)) = paid {
        wire.paid_amount = Some(money_to_wire(*amount));
        wire.paid_date = date.map(date_to_wire);
    }
    wire
}

pub fn claim_to_wire(claim: &StoredClaim) -> pb::Claim {
    let code = &claim.payload.policy_code;
    pb::Claim {
        name: claim.name(),
        policy: d::policy_name(code),
        person: claim_person_name(&claim.payload.person_id),
        person_display_name: claim.person_display_name.clone(),
        payee: Some(payee_to_wire(&claim.payload.payee)),
        period: Some(period_to_wire(&claim.payload.period)),
        facts: claim.payload.facts.iter().map(fact_to_wire).collect(),
        source: Some(pb::ClaimSource {
            system: claim.source_system.clone(),
            reference: claim.source_reference.clone(),
        }),
        note: claim.payload.note.clone(),
        state: claim_state_to_wire(claim.state),
        region: Some(common::RegionCode {
            code: claim.region.clone(),
            display_name: String::new(),
        }),
        decision: claim.decision.made().then(|| decision_to_wire(&claim.decision, code)),
        earlier_decisions: claim
            .earlier_decisions
            .iter()
            .map(|x| decision_to_wire(x, code))
            .collect(),
        fund: claim.fund_id.as_ref().map(|f| format!("funds/{f}")).unwrap_or_default(),
        review_cause: claim.review_cause.map_or(0, review_cause_to_wire),
        required_reviews: claim.required_reviews,
        reviews: claim
            .reviews
            .iter()
            .map(|r| pb::ClaimReview {
                review_subject: r.subject.clone(),
                verdict: review_verdict_to_wire(r.verdict),
                note: r.note.clone(),
                review_time: micros_to_wire(r.reviewed_us),
            })
            .collect(),
        payment_batch: claim
            .payment_batch_id
            .as_ref()
            .map(|b| format!("paymentBatches/{b}"))
            .unwrap_or_default(),
        paid_amount: None,
        paid_date: None,
        recoveries: Vec::new(),
        submit_subject: claim.submit_subject.clone(),
        acting_service: claim.acting_service.clone(),
        create_time: Some(timestamp_to_wire(claim.created)),
        update_time: Some(timestamp_to_wire(claim.updated)),
        etag: claim.etag(),
    }
}

/// "persons/{id}" → id.
pub fn person_id(field: &str, name: &str) -> Result<String, Problem> {
    name.strip_prefix("persons/")
        .filter(|id| !id.is_empty() && id.len() <= 64 && id.bytes().all(|b| b.is_ascii_alphanumeric()))
        .map(str::to_string)
        .ok_or_else(|| invalid(field, "must be persons/{person}", "人员应写作 persons/{编号}"))
}

/// "{collection}/{id}" → id.
pub fn resource_id(field: &str, name: &str, collection: &str) -> Result<String, Problem> {
    name.strip_prefix(collection)
        .and_then(|rest| rest.strip_prefix('/'))
        .filter(|id| !id.is_empty() && id.len() <= 64 && id.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-'))
        .map(str::to_string)
        .ok_or_else(|| {
            invalid(
                field,
                format!("must be {collection}/{{id}}"),
                format!("应写作 {collection}/{{编号}}"),
            )
        })
}

/// "policies/{code}/versions/{n}" → (code, n).
pub fn version_ref(field: &str, name: &str) -> Result<(String, i32), Problem> {
    let parsed = name.strip_prefix("policies/").and_then(|rest| {
        let (code, number) = rest.split_once("/versions/")?;
        Some((code.to_string(), number.parse::<i32>().ok().filter(|n| *n > 0)?))
    });
    parsed.ok_or_else(|| {
        invalid(
            field,
            "must be policies/{policy}/versions/{version}",
            "版本应写作 policies/{政策编码}/versions/{版本号}",
        )
    })
}

pub fn claim_payload(value: Option<&pb::Claim>) -> Result<(d::ClaimPayload, Option<d::ClaimSource>), Problem> {
    let claim = value.ok_or_else(|| required("claim", "补贴申请"))?;
    let policy_code = resource_id("claim.policy", &claim.policy, "policies")?;
    // A claim about an organization alone names no person; the policy decides which it wants.
    let person_id = if claim.person.is_empty() {
        String::new()
    } else {
        person_id("claim.person", &claim.person)?
    };
    let payee = payee("claim.payee", claim.payee.as_ref())?;
    if claim.note.chars().count() > 500 {
        return Err(invalid("claim.note", "at most 500 characters", "备注不能超过500个字符"));
    }
    let source = claim.source.as_ref().map(|s| d::ClaimSource {
        system: s.system.trim().to_string(),
        reference: s.reference.trim().to_string(),
    });
    if let Some(source) = &source {
        d::check_source(source).map_err(crate::app::invalid)?;
    }
    Ok((
        d::ClaimPayload {
            policy_code,
            person_id,
            payee,
            period: period("claim.period", claim.period.as_ref())?,
            facts: facts("claim.facts", &claim.facts)?,
            note: claim.note.trim().to_string(),
        },
        source,
    ))
}

/// A feed event as the claim change it records.
pub fn claim_change_to_wire(event: &bangfu_platform::outbox::FeedEvent) -> pb::ClaimChange {
    let detail: Option<crate::app::ClaimEvent> = serde_json::from_str(&event.detail).ok();
    let kind = match crate::app::ClaimChangeKind::parse(&event.kind) {
        Some(crate::app::ClaimChangeKind::Decided) => pb::ClaimChangeKind::Decided,
        Some(crate::app::ClaimChangeKind::Reviewed) => pb::ClaimChangeKind::Reviewed,
        Some(crate::app::ClaimChangeKind::Withdrawn) => pb::ClaimChangeKind::Withdrawn,
        Some(crate::app::ClaimChangeKind::Batched) => pb::ClaimChangeKind::Batched,
        Some(crate::app::ClaimChangeKind::Unbatched) => pb::ClaimChangeKind::Unbatched,
        Some(crate::app::ClaimChangeKind::Paid) => pb::ClaimChangeKind::Paid,
        Some(crate::app::ClaimChangeKind::PaymentFailed) => pb::ClaimChangeKind::PaymentFailed,
        Some(crate::app::ClaimChangeKind::RecoveryOpened) => pb::ClaimChangeKind::RecoveryOpened,
        Some(crate::app::ClaimChangeKind::Reevaluated) => pb::ClaimChangeKind::Reevaluated,
        Some(crate::app::ClaimChangeKind::Proposed) => pb::ClaimChangeKind::Proposed,
        Some(crate::app::ClaimChangeKind::Declined) => pb::ClaimChangeKind::Declined,
        None => pb::ClaimChangeKind::Unspecified,
    };
    let mut change = pb::ClaimChange {
        cursor: event.position.encode(),
        claim: event.resource.clone(),
        kind: kind as i32,
        effective_date: event.effective_date.map(date_to_wire),
        record_time: Some(timestamp_to_wire(event.recorded)),
        ..Default::default()
    };
    if let Some(detail) = detail {
        change.source = Some(pb::ClaimSource {
            system: detail.source_system,
            reference: detail.source_reference,
        });
        change.person = claim_person_name(&detail.person_id);
        change.state = claim_state_to_wire(detail.state);
        // A proposal, and a proposal declined, carry no decision.
        if !matches!(detail.state, d::ClaimState::Proposed | d::ClaimState::Declined) {
            change.outcome = outcome_to_wire(detail.outcome);
            change.amount = (detail.outcome == d::Outcome::Eligible).then(|| money_to_wire(detail.amount));
        }
        change.rejection_reasons = detail.reasons.into_iter().map(rejection_reason_to_wire).collect();
    }
    change
}

fn account_kind(field: &str, value: i32) -> Result<d::AccountKind, Problem> {
    match pb::PayeeAccountKind::try_from(value) {
        Ok(pb::PayeeAccountKind::SocialSecurityCard) => Ok(d::AccountKind::SocialSecurityCard),
        Ok(pb::PayeeAccountKind::BankAccount) => Ok(d::AccountKind::BankAccount),
        _ => Err(invalid(
            field,
            "social-security card or bank account",
            "请选择社保卡或银行账户",
        )),
    }
}

fn payee(field: &str, value: Option<&pb::Payee>) -> Result<d::Payee, Problem> {
    match value.and_then(|p| p.payee.as_ref()) {
        None => Err(required(field, "收款方")),
        Some(pb::payee::Payee::Person(name)) => Ok(d::Payee::Person(person_id(&format!("{field}.person"), name)?)),
        Some(pb::payee::Payee::Organization(org)) => {
            let credit_code = org.credit_code.trim().to_uppercase();
            if !d::valid_credit_code(&credit_code) {
                return Err(invalid(
                    format!("{field}.organization.credit_code"),
                    "not a unified social credit code (18 characters, last a check character)",
                    "统一社会信用代码无效（应为18位，末位为校验码）",
                ));
            }
            let display_name = org.display_name.trim().to_string();
            if display_name.is_empty() || display_name.chars().count() > 100 {
                return Err(invalid(
                    format!("{field}.organization.display_name"),
                    "must be 1 to 100 characters",
                    "单位名称应为1至100个字符",
                ));
            }
            let region = org
                .region
                .as_ref()
                .map(|r| r.code.trim().to_string())
                .unwrap_or_default();
            if region.len() != 12 || !region.bytes().all(|b| b.is_ascii_digit()) {
                return Err(invalid(
                    format!("{field}.organization.region"),
                    "a region code has 12 digits",
                    "单位所在地应为12位行政区划代码",
                ));
            }
            Ok(d::Payee::Organization(d::OrganizationPayee {
                credit_code,
                display_name,
                region,
            }))
        }
    }
}

/// What every account carries, checked for form; `prefix` is the fields' path ("payee_account.").
struct AccountDetails {
    kind: d::AccountKind,
    account_number: String,
    holder_name: String,
    bank_name: String,
    bank_code: String,
}

fn account_details(
    prefix: &str,
    kind: i32,
    account_number: &str,
    holder_name: &str,
    bank_name: &str,
    bank_code: &str,
) -> Result<AccountDetails, Problem> {
    let account_number = account_number.trim().to_string();
    d::check_account_number(&format!("{prefix}account_number"), &account_number).map_err(crate::app::invalid)?;
    let bank_code = bank_code.trim().to_string();
    d::check_bank_code(&format!("{prefix}bank_code"), &bank_code).map_err(crate::app::invalid)?;
    let holder_name = holder_name.trim().to_string();
    if holder_name.is_empty() || holder_name.chars().count() > 100 {
        return Err(invalid(
            format!("{prefix}holder_name"),
            "must be 1 to 100 characters",
            "持卡人姓名应为1至100个字符",
        ));
    }
    let bank_name = bank_name.trim().to_string();
    if bank_name.is_empty() || bank_name.chars().count() > 100 {
        return Err(invalid(
            format!("{prefix}bank_name"),
            "must be 1 to 100 characters",
            "开户银行应为1至100个字符",
        ));
    }
    Ok(AccountDetails {
        kind: account_kind(&format!("{prefix}kind"), kind)?,
        account_number,
        holder_name,
        bank_name,
        bank_code,
    })
}

pub fn new_account(value: Option<&pb::PayeeAccount>) -> Result<crate::app::NewAccount, Problem> {
    let value = value.ok_or_else(|| required("payee_account", "收款账户"))?;
    let owner = payee("payee_account.owner", value.owner.as_ref())?;
    let details = account_details(
        "payee_account.",
        value.kind,
        &value.account_number,
        &value.holder_name,
        &value.bank_name,
        &value.bank_code,
    )?;
    let holder_citizen_id = Some(value.holder_citizen_id.trim().to_uppercase()).filter(|v| !v.is_empty());
    let verification_document = value.verification_document.trim().to_string();
    if verification_document.chars().count() > 200 {
        return Err(invalid(
            "payee_account.verification_document",
            "at most 200 characters",
            "登记证明不能超过200个字符",
        ));
    }
    Ok(crate::app::NewAccount {
        owner,
        kind: details.kind,
        account_number: details.account_number,
        holder_name: details.holder_name,
        holder_citizen_id,
        bank_name: details.bank_name,
        bank_code: details.bank_code,
        verification_document,
    })
}

/// One row of an account list, checked for form; a field at fault is named as in the row.
pub fn account_row(row: &pb::PayeeAccountRow) -> Result<crate::app::AccountRow, Problem> {
    let details = account_details(
        "",
        row.kind,
        &row.account_number,
        &row.holder_name,
        &row.bank_name,
        &row.bank_code,
    )?;
    let citizen_id = row.holder_citizen_id.trim().to_uppercase();
    let credit_code = row.credit_code.trim().to_uppercase();
    let holder = match (citizen_id.is_empty(), credit_code.is_empty()) {
        (false, true) => crate::app::RowHolder::Person { citizen_id },
        (true, false) => {
            if !d::valid_credit_code(&credit_code) {
                return Err(invalid(
                    "credit_code",
                    "not a unified social credit code (18 characters, last a check character)",
                    "统一社会信用代码无效（应为18位，末位为校验码）",
                ));
            }
            crate::app::RowHolder::Organization { credit_code }
        }
        _ => {
            return Err(invalid(
                "holder_citizen_id",
                "give the holder's citizen ID for a person or the credit code for an organization, not both",
                "个人填写持卡人身份证号，单位填写统一社会信用代码，二者填且只填一项",
            ));
        }
    };
    Ok(crate::app::AccountRow {
        holder,
        kind: details.kind,
        account_number: details.account_number,
        holder_name: details.holder_name,
        bank_name: details.bank_name,
        bank_code: details.bank_code,
    })
}

pub fn verification_state_to_wire(state: d::VerificationState) -> pb::PayeeAccountVerificationState {
    match state {
        d::VerificationState::Pending => pb::PayeeAccountVerificationState::Pending,
        d::VerificationState::Verified => pb::PayeeAccountVerificationState::Verified,
        d::VerificationState::NameMismatch => pb::PayeeAccountVerificationState::NameMismatch,
        d::VerificationState::PersonNotFound => pb::PayeeAccountVerificationState::PersonNotFound,
    }
}

pub fn account_to_wire(account: &crate::store::StoredAccount) -> pb::PayeeAccount {
    pb::PayeeAccount {
        name: account.name(),
        owner: Some(payee_to_wire(&account.owner)),
        kind: (match account.kind {
            d::AccountKind::SocialSecurityCard => pb::PayeeAccountKind::SocialSecurityCard,
            d::AccountKind::BankAccount => pb::PayeeAccountKind::BankAccount,
        }) as i32,
        account_number: String::new(),
        masked_account_number: account.account_masked.clone(),
        holder_name: account.holder_name_masked.clone(),
        holder_citizen_id: String::new(),
        bank_name: account.bank_name.clone(),
        bank_code: account.bank_code.clone(),
        verification_state: verification_state_to_wire(account.verification_state) as i32,
        verification_method: (match account.verification_method {
            d::VerificationMethod::None => pb::PayeeAccountVerificationMethod::Unspecified,
            d::VerificationMethod::IdentityNameMatch => pb::PayeeAccountVerificationMethod::IdentityNameMatch,
            d::VerificationMethod::OrganizationRegistration => {
                pb::PayeeAccountVerificationMethod::OrganizationRegistration
            }
        }) as i32,
        verification_document: account.verification_document.clone(),
        verify_time: account.verified.map(timestamp_to_wire),
        in_use: account.in_use,
        superseded_by: account
            .superseded_by
            .as_ref()
            .map(|id| format!("payeeAccounts/{id}"))
            .unwrap_or_default(),
        create_subject: account.create_subject.clone(),
        create_time: Some(timestamp_to_wire(account.created)),
    }
}

pub fn batch_state_to_wire(state: &str) -> i32 {
    use crate::app::batch_state as s;
    (match state {
        s::DRAFT => pb::PaymentBatchState::Draft,
        s::NOTICE => pb::PaymentBatchState::Notice,
        s::AWAITING_APPROVAL => pb::PaymentBatchState::AwaitingApproval,
        s::APPROVED => pb::PaymentBatchState::Approved,
        s::EXPORTED => pb::PaymentBatchState::Exported,
        s::RECONCILED => pb::PaymentBatchState::Reconciled,
        s::CANCELLED => pb::PaymentBatchState::Cancelled,
        _ => pb::PaymentBatchState::Unspecified,
    }) as i32
}

pub fn batch_state(field: &str, value: i32) -> Result<&'static str, Problem> {
    use crate::app::batch_state as s;
    match pb::PaymentBatchState::try_from(value) {
        Ok(pb::PaymentBatchState::Draft) => Ok(s::DRAFT),
        Ok(pb::PaymentBatchState::Notice) => Ok(s::NOTICE),
        Ok(pb::PaymentBatchState::Approved) => Ok(s::APPROVED),
        Ok(pb::PaymentBatchState::Exported) => Ok(s::EXPORTED),
        Ok(pb::PaymentBatchState::Reconciled) => Ok(s::RECONCILED),
        Ok(pb::PaymentBatchState::Cancelled) => Ok(s::CANCELLED),
        _ => Err(invalid(
            field,
            "filter by a stored state (not AWAITING_APPROVAL)",
            "批次状态无效",
        )),
    }
}

pub fn selection(value: Option<&pb::ClaimSelection>) -> Result<crate::store::Selection, Problem> {
    let value = value.ok_or_else(|| required("payment_batch.selection", "批次范围"))?;
    let fund_id = resource_id("payment_batch.selection.fund", &value.fund, "funds")?;
    let region_prefix = value.region_prefix.trim().to_string();
    if bangfu_platform::auth::RegionScope::parse(&region_prefix).is_none() || region_prefix == "*" {
        return Err(invalid(
            "payment_batch.selection.region_prefix",
            "must be a division-code prefix of 2, 4, 6, 9 or 12 digits",
            "批次地区应为2、4、6、9或12位行政区划代码前缀",
        ));
    }
    let policies = value
        .policies
        .iter()
        .enumerate()
        .map(|(i, p)| resource_id(&format!("payment_batch.selection.policies[{i}]"), p, "policies"))
        .collect::<Result<Vec<_>, _>>()?;
    Ok(crate::store::Selection {
        fund_id,
        region_prefix,
        policies,
        period_last_day_on_or_before: optional_date(
            "payment_batch.selection.period_last_day_on_or_before",
            value.period_last_day_on_or_before.as_ref(),
        )?,
        include_failed_payments: value.include_failed_payments,
    })
}

pub fn batch_to_wire(batch: &crate::store::StoredBatch, today: time::Date) -> pb::PaymentBatch {
    let report = batch
        .reconciliation
        .as_deref()
        .and_then(|text| serde_json::from_str::<crate::app::Reconciliation>(text).ok());
    pb::PaymentBatch {
        name: batch.name(),
        display_name: batch.display_name.clone(),
        selection: Some(pb::ClaimSelection {
            fund: format!("funds/{}", batch.selection.fund_id),
            region_prefix: batch.selection.region_prefix.clone(),
            policies: batch.selection.policies.iter().map(|p| d::policy_name(p)).collect(),
            period_last_day_on_or_before: batch.selection.period_last_day_on_or_before.map(date_to_wire),
            include_failed_payments: batch.selection.include_failed_payments,
        }),
        state: batch_state_to_wire(crate::app::effective_state(batch, today)),
        control_count: batch.control_count,
        control_amount: Some(money_to_wire(batch.control_amount)),
        skipped_without_account: batch.skipped_without_account,
        notice_days: i32::try_from(batch.notice_days).unwrap_or_default(),
        notice_period: notice_period_to_wire(batch),
        objection_contact: batch.objection_contact.clone(),
        open_objections: i32::try_from(batch.open_objections).unwrap_or_default(),
        paid_count: batch.paid_count,
        paid_amount: Some(money_to_wire(batch.paid_amount)),
        failed_count: batch.failed_count,
        failed_amount: Some(money_to_wire(batch.failed_amount)),
        reconciliation: report.as_ref().map(reconciliation_to_wire),
        create_subject: batch.create_subject.clone(),
        create_time: Some(timestamp_to_wire(batch.created)),
        approve_subject: batch.approve_subject.clone().unwrap_or_default(),
        approve_time: batch.approved.map(timestamp_to_wire),
        export_count: i32::try_from(batch.export_count).unwrap_or_default(),
        first_export_time: batch.first_export.map(timestamp_to_wire),
        cancel_reason: batch.cancel_reason.clone(),
        cancel_time: batch.cancelled.map(timestamp_to_wire),
        etag: batch.etag(),
    }
}

pub fn line_state_to_wire(state: &str) -> i32 {
    (match state {
        "pending" => pb::PaymentLineState::Pending,
        "paid" => pb::PaymentLineState::Paid,
        "failed" => pb::PaymentLineState::Failed,
        "cancelled" => pb::PaymentLineState::Cancelled,
        _ => pb::PaymentLineState::Unspecified,
    }) as i32
}

pub fn line_state(field: &str, value: i32) -> Result<&'static str, Problem> {
    match pb::PaymentLineState::try_from(value) {
        Ok(pb::PaymentLineState::Pending) => Ok("pending"),
        Ok(pb::PaymentLineState::Paid) => Ok("paid"),
        Ok(pb::PaymentLineState::Failed) => Ok("failed"),
        Ok(pb::PaymentLineState::Cancelled) => Ok("cancelled"),
        _ => Err(invalid(field, "unknown line state", "明细状态无效")),
    }
}

pub fn line_to_wire(line: &crate::store::StoredLine) -> pb::PaymentLine {
    pb::PaymentLine {
        name: line.name(),
        line_number: line.line_number,
        claim: format!("claims/{}", line.claim_id),
        payee_display_name: line.payee_display_name.clone(),
        payee_account: format!("payeeAccounts/{}", line.account_id),
        masked_account_number: line.masked_account.clone(),
        amount: Some(money_to_wire(line.amount)),
        state: line_state_to_wire(&line.state),
        paid_date: line.paid_date.map(date_to_wire),
        bank_reference: line.bank_reference.clone(),
        failure_reason: line.failure_reason.clone(),
    }
}

pub fn reconciliation_to_wire(report: &crate::app::Reconciliation) -> pb::ReconciliationReport {
    pb::ReconciliationReport {
        file_sha256: report.file_sha256.clone(),
        control_count: report.control_count,
        control_amount: Some(money_to_wire(report.control_amount)),
        paid_count: report.paid_count,
        paid_amount: Some(money_to_wire(report.paid_amount)),
        failed_count: report.failed_count,
        failed_amount: Some(money_to_wire(report.failed_amount)),
        pending_count: report.pending_count,
        pending_amount: Some(money_to_wire(report.pending_amount)),
        issue_count: report.issue_count,
        balanced: report.balanced,
        report_time: bangfu_platform::db::from_micros(report.report_us).map(timestamp_to_wire),
    }
}

pub fn file_encoding(field: &str, value: i32) -> Result<crate::domain::files::Encoding, Problem> {
    match pb::FileEncoding::try_from(value) {
        Ok(pb::FileEncoding::Utf8) => Ok(crate::domain::files::Encoding::Utf8),
        Ok(pb::FileEncoding::Gbk) => Ok(crate::domain::files::Encoding::Gbk),
        _ => Err(invalid(field, "GBK or UTF-8", "请选择文件编码（GBK或UTF-8）")),
    }
}

pub fn notice_to_wire(notice: &crate::app::PublicNotice) -> pb::PublicNotice {
    let batch = &notice.batch;
    pb::PublicNotice {
        name: format!("{}/publicNotice", batch.name()),
        title: format!("{}公示", batch.display_name),
        issuer: batch.notice_issuer.clone(),
        notice_period: notice_period_to_wire(batch),
        objection_contact: batch.objection_contact.clone(),
        lines: notice
            .lines
            .iter()
            .map(|l| pb::PublicNoticeLine {
                line_number: l.line_number,
                masked_name: l.masked_name.clone(),
                subsidy_item: l.subsidy_item.clone(),
                period_label: l.period_label.clone(),
                amount: Some(money_to_wire(l.amount)),
            })
            .collect(),
        total_count: notice.total_count,
        total_amount: Some(money_to_wire(notice.total_amount)),
    }
}

pub fn row_result_to_wire(row: &crate::app::RowResult) -> pb::BankLineResult {
    use crate::app::{IssueKind, RowOutcome};
    let (outcome, issue) = match &row.outcome {
        RowOutcome::Paid => (pb::BankLineOutcome::Paid, None),
        RowOutcome::Failed => (pb::BankLineOutcome::Failed, None),
        RowOutcome::Unchanged => (pb::BankLineOutcome::Unchanged, None),
        RowOutcome::Issue {
            kind,
            batch_amount,
            message,
        } => (
            pb::BankLineOutcome::Issue,
            Some(pb::ReconciliationIssue {
                file_line_number: row.file_line_number,
                line_id: row.line_id.clone(),
                kind: (match kind {
                    IssueKind::UnknownLine => pb::ReconciliationIssueKind::UnknownLine,
                    IssueKind::AmountDiffers => pb::ReconciliationIssueKind::AmountDiffers,
                    IssueKind::DuplicateLine => pb::ReconciliationIssueKind::DuplicateLine,
                    IssueKind::OtherBatchLine => pb::ReconciliationIssueKind::OtherBatchLine,
                    IssueKind::ResultConflict => pb::ReconciliationIssueKind::ResultConflict,
                }) as i32,
                payment_line: row.payment_line.clone().unwrap_or_default(),
                bank_amount: Some(money_to_wire(row.bank_amount)),
                batch_amount: batch_amount.map(money_to_wire),
                message: message.clone(),
            }),
        ),
    };
    pb::BankLineResult {
        file_line_number: row.file_line_number,
        payment_line: row.payment_line.clone().unwrap_or_default(),
        outcome: outcome as i32,
        failure_reason: row.failure_reason.clone(),
        issue,
    }
}

fn channel_text(value: i32) -> Option<&'static str> {
    match pb::ObjectionChannel::try_from(value).ok()? {
        pb::ObjectionChannel::Phone => Some("phone"),
        pb::ObjectionChannel::InPerson => Some("in_person"),
        pb::ObjectionChannel::Letter => Some("letter"),
        pb::ObjectionChannel::Online => Some("online"),
        pb::ObjectionChannel::Unspecified => None,
    }
}

pub fn new_objection(value: Option<&pb::Objection>) -> Result<crate::app::NewObjection, Problem> {
    let value = value.ok_or_else(|| required("objection", "异议"))?;
    let channel = channel_text(value.channel).ok_or_else(|| {
        invalid(
            "objection.channel",
            "phone, in person, letter or online",
            "请选择异议的受理方式",
        )
    })?;
    let content = value.content.trim().to_string();
    if content.is_empty() || content.chars().count() > 2000 {
        return Err(invalid(
            "objection.content",
            "must be 1 to 2,000 characters",
            "异议内容应为1至2000个字符",
        ));
    }
    let objector_contact = value.objector_contact.trim().to_string();
    if objector_contact.chars().count() > 200 {
        return Err(invalid(
            "objection.objector_contact",
            "at most 200 characters",
            "联系方式不能超过200个字符",
        ));
    }
    if value.line_number < 0 {
        return Err(invalid(
            "objection.line_number",
            "0 for the whole batch, or a line's number",
            "序号无效",
        ));
    }
    Ok(crate::app::NewObjection {
        line_number: value.line_number,
        channel: channel.to_string(),
        content,
        objector_contact,
        received_date: date("objection.received_date", value.received_date.as_ref())?,
    })
}

pub fn objection_state(value: &str) -> i32 {
    (match value {
        "open" => pb::ObjectionState::Open,
        "upheld" => pb::ObjectionState::Upheld,
        "dismissed" => pb::ObjectionState::Dismissed,
        _ => pb::ObjectionState::Unspecified,
    }) as i32
}

pub fn objection_state_filter(field: &str, value: i32) -> Result<&'static str, Problem> {
    match pb::ObjectionState::try_from(value) {
        Ok(pb::ObjectionState::Unspecified) => Ok(""),
        Ok(pb::ObjectionState::Open) => Ok("open"),
        Ok(pb::ObjectionState::Upheld) => Ok("upheld"),
        Ok(pb::ObjectionState::Dismissed) => Ok("dismissed"),
        Err(_) => Err(invalid(field, "unknown objection state", "异议状态无效")),
    }
}

pub fn objection_to_wire(objection: &crate::store::StoredObjection) -> pb::Objection {
    let channel = match objection.channel.as_str() {
        "phone" => pb::ObjectionChannel::Phone,
        "in_person" => pb::ObjectionChannel::InPerson,
        "letter" => pb::ObjectionChannel::Letter,
        "online" => pb::ObjectionChannel::Online,
        _ => pb::ObjectionChannel::Unspecified,
    };
    pb::Objection {
        name: objection.name(),
        line_number: objection.line_number,
        claim: objection
            .claim_id
            .as_ref()
            .map(|c| format!("claims/{c}"))
            .unwrap_or_default(),
        channel: channel as i32,
        content: objection.content.clone(),
        objector_contact: objection.objector_contact_masked.clone(),
        received_date: Some(date_to_wire(objection.received_date)),
        state: objection_state(&objection.state),
        resolution: objection.resolution.clone(),
        record_subject: objection.record_subject.clone(),
        resolve_subject: objection.resolve_subject.clone().unwrap_or_default(),
        create_time: Some(timestamp_to_wire(objection.created)),
        resolve_time: objection.resolved.map(timestamp_to_wire),
    }
}

pub fn statement_to_wire(statement: &crate::app::Statement) -> pb::PersonStatement {
    pb::PersonStatement {
        person: format!("persons/{}", statement.person_id),
        person_display_name: statement.display_name.clone(),
        lines: statement
            .lines
            .iter()
            .map(|line| {
                let claim = &line.claim;
                let granted = if claim.state.is_granted() { claim.amount } else { 0 };
                pb::StatementLine {
                    claim: claim.name(),
                    policy_title: line.policy_title.clone(),
                    policy_version: if claim.decision.policy_version > 0 {
                        d::version_name(&claim.payload.policy_code, claim.decision.policy_version)
                    } else {
                        String::new()
                    },
                    period: Some(period_to_wire(&claim.payload.period)),
                    granted_amount: Some(money_to_wire(granted)),
                    paid_amount: Some(money_to_wire(line.paid.map(|p| p.0).unwrap_or(0))),
                    paid_date: line.paid.and_then(|p| p.1).map(date_to_wire),
                    to_return_amount: Some(money_to_wire(0)),
                    returned_amount: Some(money_to_wire(0)),
                    state: strip(
                        pb::ClaimState::try_from(claim_state_to_wire(claim.state))
                            .map(|s| s.as_str_name())
                            .unwrap_or(""),
                        "CLAIM_STATE_",
                    )
                    .to_string(),
                    source_system: claim.source_system.clone(),
                }
            })
            .collect(),
        total_granted: Some(money_to_wire(statement.total_granted)),
        total_paid: Some(money_to_wire(statement.total_paid)),
        total_to_return: Some(money_to_wire(0)),
        total_returned: Some(money_to_wire(0)),
    }
}

pub fn recovery_state_filter(field: &str, value: i32) -> Result<&'static str, Problem> {
    match pb::RecoveryState::try_from(value) {
        Ok(pb::RecoveryState::Unspecified) => Ok(""),
        Ok(pb::RecoveryState::Open) => Ok("open"),
        Ok(pb::RecoveryState::Returned) => Ok("returned"),
        Ok(pb::RecoveryState::WrittenOff) => Ok("written_off"),
        Ok(pb::RecoveryState::Cancelled) => Ok("cancelled"),
        Err(_) => Err(invalid(field, "unknown recovery state", "追回状态无效")),
    }
}

/// A recovery reason filter as stored ("" for any).
pub fn recovery_reason_filter(field: &str, value: i32) -> Result<&'static str, Problem> {
    match pb::RecoveryReason::try_from(value) {
        Ok(pb::RecoveryReason::Unspecified) => Ok(""),
        Ok(pb::RecoveryReason::CategoryRevoked) => Ok("category_revoked"),
        Ok(pb::RecoveryReason::CategoryAnnulled) => Ok("category_annulled"),
        Ok(pb::RecoveryReason::PersonDeceased) => Ok("person_deceased"),
        Ok(pb::RecoveryReason::FactsCorrected) => Ok("facts_corrected"),
        _ => Err(invalid(field, "unknown recovery reason", "追回原因无效")),
    }
}

/// An account verification state filter (None for any).
pub fn verification_state_filter(field: &str, value: i32) -> Result<Option<d::VerificationState>, Problem> {
    match pb::PayeeAccountVerificationState::try_from(value) {
        Ok(pb::PayeeAccountVerificationState::Unspecified) => Ok(None),
        Ok(pb::PayeeAccountVerificationState::Pending) => Ok(Some(d::VerificationState::Pending)),
        Ok(pb::PayeeAccountVerificationState::Verified) => Ok(Some(d::VerificationState::Verified)),
        Ok(pb::PayeeAccountVerificationState::NameMismatch) => Ok(Some(d::VerificationState::NameMismatch)),
        Ok(pb::PayeeAccountVerificationState::PersonNotFound) => Ok(Some(d::VerificationState::PersonNotFound)),
        Err(_) => Err(invalid(field, "unknown verification state", "核验状态无效")),
    }
}

pub fn recovery_to_wire(recovery: &crate::store::StoredRecovery) -> pb::Recovery {
    let reason = match recovery.reason.as_str() {
        "category_revoked" => pb::RecoveryReason::CategoryRevoked,
        "category_annulled" => pb::RecoveryReason::CategoryAnnulled,
        "person_deceased" => pb::RecoveryReason::PersonDeceased,
        "facts_corrected" => pb::RecoveryReason::FactsCorrected,
        _ => pb::RecoveryReason::Unspecified,
    };
    let state = match recovery.state.as_str() {
        "open" => pb::RecoveryState::Open,
        "returned" => pb::RecoveryState::Returned,
        "written_off" => pb::RecoveryState::WrittenOff,
        "cancelled" => pb::RecoveryState::Cancelled,
        _ => pb::RecoveryState::Unspecified,
    };
    pb::Recovery {
        name: recovery.name(),
        claim: format!("claims/{}", recovery.claim_id),
        person: format!("persons/{}", recovery.person_id),
        person_display_name: recovery.person_display_name.clone(),
        reason: reason as i32,
        trigger: format!("identity change {}", recovery.trigger_cursor),
        amount: Some(money_to_wire(recovery.amount)),
        returned_amount: Some(money_to_wire(recovery.returned)),
        reevaluation: Some(decision_to_wire(&recovery.reevaluation, &recovery.policy_code)),
        message: recovery.message.clone(),
        state: state as i32,
        fund: format!("funds/{}", recovery.fund_id),
        documents: Vec::new(),
        create_time: Some(timestamp_to_wire(recovery.created)),
        close_time: recovery.closed.map(timestamp_to_wire),
        etag: recovery.etag(),
    }
}
