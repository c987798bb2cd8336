//! A version's rules compiled once (CEL), and the evaluation of one claim's facts against them:
//! region, target categories, death and moving away, the conditions, the amount rule and the
//! caps. Duplicates and exclusivity need stored claims and are the application's.
//!
//! The `cel` crate has no type checker: a rule that returns a string, or reads a fact the
//! version does not define, is found only by evaluating it. That is why every version carries
//! example cases, evaluated at creation ([`CompiledRules::check_examples`]).

use std::collections::HashMap;
use std::sync::{Arc, LazyLock, Mutex};

use cel::{Context, Env, ExecutionError, Program, Value};
use serde::{Deserialize, Serialize};

use super::policy::{Caps, Condition, Fact, FactValue, Outcome, PolicyVersion, RejectionReason, Rounding};
use super::{FieldError, Period, month_text};

/// The standard library environment, built once: rules add nothing to parsing.
static ENV: LazyLock<Arc<Env>> = LazyLock::new(|| Arc::new(Env::stdlib()));

/// One reason a claim was rejected.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Rejection {
    pub reason: RejectionReason,
    /// What failed, in zh-CN: the condition's description, the cap and its count.
    pub message: String,
    /// The claim it collides with, for duplicates and exclusivity.
    #[serde(default)]
    pub conflicting_claim: String,
}

impl Rejection {
    pub fn new(reason: RejectionReason, message: impl Into<String>) -> Self {
        Self {
            reason,
            message: message.into(),
            conflicting_claim: String::new(),
        }
    }
}

/// What the rules gave for one set of facts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Evaluation {
    pub outcome: Outcome,
    /// After caps; 0 when rejected.
    pub amount: i64,
    /// What the amount rule computed, before caps.
    pub computed_amount: i64,
    pub rejections: Vec<Rejection>,
    /// Months of the group granted including this claim (monthly policies with a month cap).
    pub months_granted: i32,
    /// The month limit that applied; 0 when none.
    pub months_limit: i32,
}

/// A rule that could not be evaluated: the version is wrong, not the claim.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{rule}: {message}")]
pub struct RuleError {
    /// "conditions[1]" or "amount_rule".
    pub rule: String,
    pub message: String,
}

/// What an example case gave.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExampleResult {
    pub title: String,
    pub passed: bool,
    pub outcome: Option<Outcome>,
    pub amount: i64,
    pub reasons: Vec<RejectionReason>,
    /// For a failed case: what differed, or the evaluation error, in zh-CN.
    pub message: String,
}

/// A version's conditions and amount rule, compiled.
pub struct CompiledRules {
    conditions: Vec<(Program, Condition)>,
    amount: Program,
    version: Arc<PolicyVersion>,
}

impl std::fmt::Debug for CompiledRules {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CompiledRules")
            .field("conditions", &self.conditions.len())
            .field("amount_rule", &self.version.amount_rule)
            .finish()
    }
}

fn compile(field: &str, source: &str) -> Result<Program, FieldError> {
    ENV.compile(source).map_err(|errors| {
        let detail = errors.to_string();
        FieldError::new(
            field,
            format!("the expression does not compile: {detail}"),
            format!("表达式无法编译：{detail}"),
        )
    })
}

impl CompiledRules {
    /// Compiles every expression of the version; an error names the expression and position.
    pub fn compile(version: Arc<PolicyVersion>) -> Result<Self, FieldError> {
        let conditions = version
            .conditions
            .iter()
            .enumerate()
            .map(|(i, condition)| {
                compile(&format!("version.conditions[{i}].expression"), &condition.expression)
                    .map(|program| (program, condition.clone()))
            })
            .collect::<Result<Vec<_>, _>>()?;
        let amount = compile("version.amount_rule", &version.amount_rule)?;
        Ok(Self {
            conditions,
            amount,
            version,
        })
    }

    pub fn version(&self) -> &PolicyVersion {
        &self.version
    }

    /// Evaluates every example case; the results, and whether all passed.
    pub fn check_examples(&self) -> (Vec<ExampleResult>, bool) {
        let results: Vec<ExampleResult> = self
            .version
            .examples
            .iter()
            .map(|example| {
                let mut result = ExampleResult {
                    title: example.title.clone(),
                    passed: false,
                    outcome: None,
                    amount: 0,
                    reasons: Vec::new(),
                    message: String::new(),
                };
                match self.evaluate_assuming(
                    &example.period,
                    &example.region,
                    &example.facts,
                    &example.assumed_standards,
                ) {
                    Err(error) => result.message = format!("规则无法计算：{error}"),
                    Ok(evaluation) => {
                        let mut expected: Vec<&str> = example.expected_reasons.iter().map(|r| r.as_str()).collect();
                        let mut got: Vec<&str> = evaluation.rejections.iter().map(|r| r.reason.as_str()).collect();
                        expected.sort_unstable();
                        expected.dedup();
                        got.sort_unstable();
                        got.dedup();
                        let mut differences = Vec::new();
                        if evaluation.outcome != example.expected_outcome {
                            differences.push(format!(
                                "结果应为 {}，实为 {}",
                                example.expected_outcome.as_str(),
                                evaluation.outcome.as_str()
                            ));
                        } else if evaluation.outcome == Outcome::Eligible
                            && evaluation.amount != example.expected_amount
                        {
                            differences.push(format!(
                                "金额应为 {} 分，实为 {} 分",
                                example.expected_amount, evaluation.amount
                            ));
                        } else if evaluation.outcome == Outcome::Rejected && expected != got {
                            differences.push(format!(
                                "不符合原因应为 [{}]，实为 [{}]",
                                expected.join(", "),
                                got.join(", ")
                            ));
                        }
                        result.passed = differences.is_empty();
                        result.message = differences.join("；");
                        result.outcome = Some(evaluation.outcome);
                        result.amount = evaluation.amount;
                        result.reasons = evaluation.rejections.iter().map(|r| r.reason).collect();
                    }
                }
                result
            })
            .collect();
        let passed = results.iter().all(|r| r.passed);
        (results, passed)
    }

    /// Evaluates one claim: `facts` holds every fact the version defines that has a value
    /// (claim, identity, history, tables and parameters already looked up).
    pub fn evaluate(&self, period: &Period, region: &str, facts: &[Fact]) -> Result<Evaluation, RuleError> {
        self.evaluate_assuming(period, region, facts, &[])
    }

    /// Evaluates with standards values assumed in place of the tables' rows (an example case's).
    fn evaluate_assuming(
        &self,
        period: &Period,
        region: &str,
        facts: &[Fact],
        assumed: &[(String, i64)],
    ) -> Result<Evaluation, RuleError> {
        let version = &self.version;
        let mut rejections = Vec::new();
        let by_name: HashMap<&str, &FactValue> = facts.iter().map(|f| (f.name.as_str(), &f.value)).collect();

        if version.issuing_region_prefix != "*" && !region.starts_with(&version.issuing_region_prefix) {
            rejections.push(Rejection::new(
                RejectionReason::OutOfRegion,
                format!(
                    "所在地区 {region} 不在政策适用范围 {} 内",
                    version.issuing_region_prefix
                ),
            ));
        }
        if !version.target_categories.is_empty() {
            let held = match by_name.get("person.categories") {
                Some(FactValue::TextList(items)) => items.clone(),
                _ => Vec::new(),
            };
            if !version.target_categories.iter().any(|c| held.contains(c)) {
                rejections.push(Rejection::new(
                    RejectionReason::NotTargetPerson,
                    format!("不属于政策对象（{}）", version.target_categories.join("、")),
                ));
            }
        }
        let first_day = super::day_text(period.first);
        if let Some(FactValue::Date(death)) = by_name.get("person.death_date")
            && death.as_str() < first_day.as_str()
        {
            rejections.push(Rejection::new(
                RejectionReason::PersonDeceased,
                format!("已于 {death} 死亡，早于期间首日"),
            ));
        }
        if let Some(FactValue::Date(moved)) = by_name.get("person.moved_away_date")
            && moved.as_str() < first_day.as_str()
        {
            rejections.push(Rejection::new(
                RejectionReason::PersonMovedAway,
                format!("已于 {moved} 迁出，早于期间首日"),
            ));
        }

        let missing = Arc::new(Mutex::new(Vec::<String>::new()));
        let context = self.context(period, region, facts, assumed, missing.clone());
        for (i, (program, condition)) in self.conditions.iter().enumerate() {
            match program.execute(&context) {
                Ok(Value::Bool(true)) => {}
                Ok(Value::Bool(false)) => {
                    rejections.push(Rejection::new(condition.reason, condition.description.clone()))
                }
                Ok(other) => {
                    return Err(RuleError {
                        rule: format!("conditions[{i}]"),
                        message: format!("gave {other:?}, not true or false"),
                    });
                }
                Err(error) => {
                    if let Some(rejection) = standard_missing(&missing) {
                        rejections.push(rejection);
                    } else {
                        return Err(RuleError {
                            rule: format!("conditions[{i}]"),
                            message: error.to_string(),
                        });
                    }
                }
            }
        }

        let computed = match self.amount.execute(&context) {
            Ok(Value::Int(amount)) if amount >= 0 => Some(amount),
            Ok(Value::UInt(amount)) => i64::try_from(amount).ok(),
            Ok(other) => {
                return Err(RuleError {
                    rule: "amount_rule".into(),
                    message: format!("gave {other:?}, not a whole number of fen of zero or more"),
                });
            }
            Err(error) => match standard_missing(&missing) {
                Some(rejection) => {
                    if !rejections.iter().any(|r| r.reason == RejectionReason::StandardMissing) {
                        rejections.push(rejection);
                    }
                    None
                }
                // A rejected claim may lack what the amount needs (an optional fact it does not
                // meet the conditions for); only an otherwise eligible one shows a broken rule.
                None if !rejections.is_empty() => None,
                None => {
                    return Err(RuleError {
                        rule: "amount_rule".into(),
                        message: error.to_string(),
                    });
                }
            },
        };
        let computed_amount = computed.unwrap_or(0);
        let mut amount = computed_amount;
        if rejections.is_empty() && computed_amount == 0 {
            rejections.push(Rejection::new(RejectionReason::AmountZero, "按规则计算的金额为零"));
        }
        let (months_granted, months_limit) = apply_caps(&version.caps, period, &by_name, &mut amount, &mut rejections);
        // Nothing is granted that pays nothing, whatever the caps did to the amount.
        if rejections.is_empty() && amount <= 0 {
            rejections.push(Rejection::new(RejectionReason::AmountZero, "按规则计算的金额为零"));
        }

        if rejections.is_empty() {
            Ok(Evaluation {
                outcome: Outcome::Eligible,
                amount,
                computed_amount,
                rejections,
                months_granted,
                months_limit,
            })
        } else {
            Ok(Evaluation {
                outcome: Outcome::Rejected,
                amount: 0,
                computed_amount,
                rejections,
                months_granted,
                months_limit,
            })
        }
    }

    fn context(
        &self,
        period: &Period,
        region: &str,
        facts: &[Fact],
        assumed: &[(String, i64)],
        missing: Arc<Mutex<Vec<String>>>,
    ) -> Context<'static, 'static> {
        let mut context = Context::with_env(ENV.clone());
        let mut plain: HashMap<String, Value> = HashMap::new();
        let mut person: HashMap<String, Value> = HashMap::new();
        let mut history: HashMap<String, Value> = HashMap::new();
        for fact in facts {
            let value = to_cel(&fact.value);
            if let Some(key) = fact.name.strip_prefix("person.") {
                person.insert(key.to_string(), value);
            } else if let Some(key) = fact.name.strip_prefix("history.") {
                history.insert(key.to_string(), value);
            } else {
                plain.insert(fact.name.clone(), value);
            }
        }
        let mut period_value: HashMap<String, Value> = HashMap::new();
        period_value.insert("first_day".into(), Value::from(super::day_text(period.first)));
        period_value.insert("last_day".into(), Value::from(super::day_text(period.last)));
        period_value.insert("days".into(), Value::Int(period.days()));
        period_value.insert("year".into(), Value::Int(i64::from(period.first.year())));
        period_value.insert("month".into(), Value::from(month_text(period.first)));
        context.add_variable_from_value("facts", plain);
        context.add_variable_from_value("person", person);
        context.add_variable_from_value("history", history);
        context.add_variable_from_value("period", period_value);
        context.add_variable_from_value("region", region.to_string());

        let standards: HashMap<String, Option<i64>> = self
            .version
            .standards_tables
            .iter()
            .map(|table| {
                (
                    table.key.clone(),
                    table.lookup(region, period.first.year()).map(|row| row.value_fen),
                )
            })
            .chain(assumed.iter().map(|(key, value)| (key.clone(), Some(*value))))
            .collect();
        let year = period.first.year();
        let region_owned = region.to_string();
        // Both names are free in the standard library, so adding them cannot fail.
        let _ = context.add_function("standard", move |key: Arc<String>| -> Result<i64, ExecutionError> {
            match standards.get(key.as_str()) {
                Some(Some(value)) => Ok(*value),
                Some(None) => {
                    if let Ok(mut missing) = missing.lock() {
                        missing.push(format!("标准表 {key} 没有适用于地区 {region_owned}、{year} 年的标准"));
                    }
                    Err(ExecutionError::function_error(
                        "standard",
                        format!("no row of {key} for {region_owned} in {year}"),
                    ))
                }
                None => Err(ExecutionError::function_error(
                    "standard",
                    format!("the version has no table {key}"),
                )),
            }
        });
        let rounding: Rounding = self.version.amount_rounding;
        let _ = context.add_function("div_round", move |a: i64, b: i64| -> Result<i64, ExecutionError> {
            rounding
                .divide(a, b)
                .ok_or_else(|| ExecutionError::function_error("div_round", format!("cannot divide {a} by {b}")))
        });
        context
    }
}

fn standard_missing(missing: &Mutex<Vec<String>>) -> Option<Rejection> {
    let missing = missing.lock().ok()?;
    missing
        .first()
        .map(|message| Rejection::new(RejectionReason::StandardMissing, message.clone()))
}

fn to_cel(value: &FactValue) -> Value {
    match value {
        FactValue::Integer(v) | FactValue::Money(v) => Value::Int(*v),
        FactValue::Boolean(v) => Value::Bool(*v),
        FactValue::Text(v) | FactValue::Date(v) | FactValue::YearMonth(v) | FactValue::RegionCode(v) => {
            Value::from(v.clone())
        }
        FactValue::TextList(items) => Value::List(Arc::new(items.iter().map(|i| Value::from(i.clone())).collect())),
    }
}

fn integer(by_name: &HashMap<&str, &FactValue>, name: &str) -> i64 {
    match by_name.get(name) {
        Some(FactValue::Integer(v) | FactValue::Money(v)) => *v,
        _ => 0,
    }
}

fn year_month(by_name: &HashMap<&str, &FactValue>, name: &str) -> Option<(i32, u8)> {
    match by_name.get(name) {
        Some(FactValue::YearMonth(text)) => {
            let (year, month) = text.split_once('-')?;
            Some((year.parse().ok()?, month.parse().ok()?))
        }
        _ => None,
    }
}

fn months_from(from: (i32, u8), to: (i32, u8)) -> i64 {
    i64::from(to.0 - from.0) * 12 + i64::from(to.1) - i64::from(from.1)
}

/// Applies the per-person caps over the policy group; cuts `amount` or adds CAP_REACHED.
/// Returns the months granted including this claim and the month limit that applied.
fn apply_caps(
    caps: &Caps,
    period: &Period,
    by_name: &HashMap<&str, &FactValue>,
    amount: &mut i64,
    rejections: &mut Vec<Rejection>,
) -> (i32, i32) {
    if caps.max_claims > 0 {
        let granted = integer(by_name, "history.claims_granted");
        if granted >= i64::from(caps.max_claims) {
            rejections.push(Rejection::new(
                RejectionReason::CapReached,
                format!("已享受 {granted} 次，达到上限 {} 次", caps.max_claims),
            ));
        }
    }
    let mut months = (0, 0);
    if caps.max_months > 0 {
        let granted = integer(by_name, "history.months_granted");
        let this_month = (period.first.year(), u8::from(period.first.month()));
        let mut limit = i64::from(caps.max_months);
        if caps.retirement_extension_years > 0 {
            let first_approval = year_month(by_name, "history.first_approval_month").unwrap_or(this_month);
            if let Some(retirement) = year_month(by_name, "person.retirement_month") {
                let to_retirement = months_from(first_approval, retirement);
                if to_retirement >= 0 && to_retirement <= i64::from(caps.retirement_extension_years) * 12 {
                    // Within the years of retirement at the first approval: the months may run
                    // to the retirement month (延长至法定退休年龄).
                    limit = limit.max(to_retirement + 1);
                }
            }
        }
        let with_this = granted + 1;
        if with_this > limit {
            rejections.push(Rejection::new(
                RejectionReason::CapReached,
                format!("已享受 {granted} 个月，达到上限 {limit} 个月"),
            ));
        }
        months = (
            i32::try_from(with_this).unwrap_or(i32::MAX),
            i32::try_from(limit).unwrap_or(i32::MAX),
        );
    }
    if let Some(max_total) = caps.max_total_amount {
        let granted = integer(by_name, "history.amount_granted_fen");
        let remaining = max_total - granted;
        if remaining <= 0 {
            rejections.push(Rejection::new(
                RejectionReason::CapReached,
                format!("已享受 {granted} 分，达到累计上限 {max_total} 分"),
            ));
        } else {
            *amount = (*amount).min(remaining);
        }
    }
    if let Some(max_per_claim) = caps.max_amount_per_claim {
        *amount = (*amount).min(max_per_claim);
    }
    months
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::policy::*;
    use time::macros::date;

    fn fact(name: &str, fact_type: FactType, source: FactSource) -> FactDefinition {
        FactDefinition {
            name: name.into(),
            fact_type,
            source,
            description: "d".into(),
            required: source == FactSource::Claim,
            lookup_key: String::new(),
            max_value: 0,
        }
    }

    fn post_version() -> PolicyVersion {
        PolicyVersion {
            source_document: SourceDocument {
                document_number: "枣人社字〔2021〕52号".into(),
                title: "t".into(),
                article: "§四".into(),
                issuer: "i".into(),
                issue_date: None,
            },
            issuing_region_prefix: "3704".into(),
            valid_from: date!(2021 - 01 - 01),
            valid_to: Some(date!(2025 - 12 - 31)),
            fund_source: FundSource::RuralRevitalizationTransition,
            target_categories: vec!["POVERTY_ALLEVIATED".into(), "MONITORED_AT_RISK".into()],
            category_as_of: CategoryAsOf::PeriodFirstDay,
            region_basis: RegionBasis::Registered,
            facts: vec![
                fact("monthly_standard_fen", FactType::Money, FactSource::Claim),
                fact("days_on_post", FactType::Integer, FactSource::Claim),
                fact("person.categories", FactType::TextList, FactSource::Identity),
                fact("person.death_date", FactType::Date, FactSource::Identity),
                fact("person.retirement_month", FactType::YearMonth, FactSource::Identity),
                fact("history.months_granted", FactType::Integer, FactSource::History),
                fact("history.amount_granted_fen", FactType::Money, FactSource::History),
                fact("history.claims_granted", FactType::Integer, FactSource::History),
                fact("history.first_approval_month", FactType::YearMonth, FactSource::History),
            ],
            conditions: vec![Condition {
                expression: "facts.days_on_post > 0 && facts.days_on_post <= period.days".into(),
                reason: RejectionReason::ConditionNotMet,
                description: "当月在岗".into(),
            }],
            amount_rule: "div_round(facts.monthly_standard_fen * facts.days_on_post, period.days)".into(),
            amount_rounding: Rounding::default(),
            caps: Caps {
                max_months: 36,
                retirement_extension_years: 5,
                ..Caps::default()
            },
            exclusivity_groups: vec![],
            standards_tables: vec![],
            examples: vec![],
            proactive_trigger: None,
            change_note: String::new(),
            noticed_by_submitter: false,
        }
    }

    fn facts(days: i64, categories: &[&str], months_granted: i64, first_approval: Option<&str>) -> Vec<Fact> {
        let mut facts = vec![
            Fact {
                name: "monthly_standard_fen".into(),
                value: FactValue::Money(50_000),
            },
            Fact {
                name: "days_on_post".into(),
                value: FactValue::Integer(days),
            },
            Fact {
                name: "person.categories".into(),
                value: FactValue::TextList(categories.iter().map(|c| c.to_string()).collect()),
            },
            Fact {
                name: "person.retirement_month".into(),
                value: FactValue::YearMonth("2030-06".into()),
            },
            Fact {
                name: "history.months_granted".into(),
                value: FactValue::Integer(months_granted),
            },
            Fact {
                name: "history.amount_granted_fen".into(),
                value: FactValue::Money(0),
            },
            Fact {
                name: "history.claims_granted".into(),
                value: FactValue::Integer(months_granted),
            },
        ];
        if let Some(month) = first_approval {
            facts.push(Fact {
                name: "history.first_approval_month".into(),
                value: FactValue::YearMonth(month.into()),
            });
        }
        facts
    }

    const MARCH: Period = Period {
        first: date!(2025 - 03 - 01),
        last: date!(2025 - 03 - 31),
    };

    fn rules() -> CompiledRules {
        CompiledRules::compile(Arc::new(post_version())).expect("compiles")
    }

    #[test]
    fn a_post_month_is_pro_rated_by_days_on_post() {
        let evaluation = rules()
            .evaluate(&MARCH, "370402001013", &facts(20, &["POVERTY_ALLEVIATED"], 0, None))
            .expect("evaluates");
        assert_eq!(evaluation.outcome, Outcome::Eligible);
        // 500 yuan × 20 / 31 = 322.580… yuan, half up to the fen.
        assert_eq!(evaluation.amount, 32_258);
        assert_eq!((evaluation.months_granted, evaluation.months_limit), (1, 36));
    }

    #[test]
    fn a_rejection_lists_every_reason() {
        let evaluation = rules()
            .evaluate(&MARCH, "500101001001", &facts(0, &["DISABLED"], 0, None))
            .expect("evaluates");
        assert_eq!(evaluation.outcome, Outcome::Rejected);
        let reasons: Vec<_> = evaluation.rejections.iter().map(|r| r.reason).collect();
        assert_eq!(
            reasons,
            vec![
                RejectionReason::OutOfRegion,
                RejectionReason::NotTargetPerson,
                RejectionReason::ConditionNotMet
            ]
        );
        assert_eq!(evaluation.amount, 0);
    }

    #[test]
    fn thirty_six_months_unless_retirement_is_near_at_the_first_approval() {
        let rules = rules();
        let capped = rules
            .evaluate(
                &MARCH,
                "370402001013",
                &facts(31, &["POVERTY_ALLEVIATED"], 36, Some("2021-01")),
            )
            .expect("evaluates");
        assert_eq!(capped.rejections[0].reason, RejectionReason::CapReached);
        // First approved 2026-01 with retirement 2030-06: 53 months away, within 5 years, so the
        // months run to retirement (54 with the retirement month).
        let march_2029 = Period {
            first: date!(2029 - 03 - 01),
            last: date!(2029 - 03 - 31),
        };
        let extended = rules
            .evaluate(
                &march_2029,
                "370402001013",
                &facts(31, &["POVERTY_ALLEVIATED"], 36, Some("2026-01")),
            )
            .expect("evaluates");
        assert_eq!(extended.outcome, Outcome::Eligible);
        assert_eq!(extended.months_limit, 54);
    }

    #[test]
    fn a_rule_that_is_not_an_integer_is_an_error() {
        let mut version = post_version();
        version.amount_rule = "'五百元'".into();
        let rules = CompiledRules::compile(Arc::new(version)).expect("compiles");
        let error = rules
            .evaluate(&MARCH, "370402001013", &facts(20, &["POVERTY_ALLEVIATED"], 0, None))
            .expect_err("a string is no amount");
        assert_eq!(error.rule, "amount_rule");
    }

    #[test]
    fn a_rule_that_does_not_compile_names_where() {
        let mut version = post_version();
        version.conditions[0].expression = "facts.days_on_post >".into();
        let error = CompiledRules::compile(Arc::new(version)).expect_err("incomplete");
        assert_eq!(error.field, "version.conditions[0].expression");
        assert!(error.message.contains("1:"), "{}", error.message);
    }

    #[test]
    fn a_missing_standard_is_a_rejection() {
        let mut version = post_version();
        version.standards_tables = vec![StandardsTable {
            key: "post_monthly".into(),
            description: "d".into(),
            rounding: Rounding::default(),
            rows: vec![StandardsRow {
                region_prefix: "3704".into(),
                year: 2024,
                value_fen: 50_000,
                source: "s".into(),
            }],
        }];
        version.amount_rule = "standard('post_monthly')".into();
        let rules = CompiledRules::compile(Arc::new(version)).expect("compiles");
        let evaluation = rules
            .evaluate(&MARCH, "370402001013", &facts(20, &["POVERTY_ALLEVIATED"], 0, None))
            .expect("evaluates");
        assert_eq!(evaluation.rejections[0].reason, RejectionReason::StandardMissing);
    }

    #[test]
    fn a_table_left_to_the_regions_rejects_claims_but_an_example_may_assume_a_value() {
        let mut version = post_version();
        version.standards_tables = vec![StandardsTable {
            key: "rural_min_living_monthly".into(),
            description: "d".into(),
            rounding: Rounding::default(),
            rows: vec![],
        }];
        version.amount_rule = "div_round(standard('rural_min_living_monthly') * 3, 2)".into();
        let facts = facts(20, &["POVERTY_ALLEVIATED"], 0, None);
        version.examples = vec![ExampleCase {
            title: "假设月标准500元".into(),
            period: MARCH,
            region: "370402001013".into(),
            facts: facts.clone(),
            expected_outcome: Outcome::Eligible,
            expected_amount: 75_000,
            expected_reasons: vec![],
            assumed_standards: vec![("rural_min_living_monthly".into(), 50_000)],
        }];
        let rules = CompiledRules::compile(Arc::new(version)).expect("compiles");
        let (results, passed) = rules.check_examples();
        assert!(passed, "{results:?}");
        let evaluation = rules.evaluate(&MARCH, "370402001013", &facts).expect("evaluates");
        assert_eq!(evaluation.outcome, Outcome::Rejected);
        assert_eq!(evaluation.rejections[0].reason, RejectionReason::StandardMissing);
    }
}
