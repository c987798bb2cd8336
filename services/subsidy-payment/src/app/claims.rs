//! Claims: submitted and decided at once from identity's facts (即申即享), evaluated as a dry
//! run, reviewed by amount band, withdrawn, read and listed.
//!
//! The order of a submission: the source key is looked up first (a retry answers with the
//! claim it made); the policy version in force and identity's facts are read outside the
//! transaction; then, in one transaction, the history, the rules, the periods the claim holds
//! (the database refuses a second claim of the group for the same month or day), the
//! fund reservation (a guarded UPDATE that cannot overdraw), the claim, its ledger entry, its
//! feed event and its audit row. Anything that fails leaves nothing behind.

use std::collections::HashMap;
use std::sync::Arc;

use bangfu_platform::audit::AuditEntry;
use bangfu_platform::auth::Principal;
use bangfu_platform::db::{Backend, to_micros};
use bangfu_platform::error::{ErrorReason, Problem};
use bangfu_platform::idempotency::RequestKey;
use bangfu_platform::peers::CallContext;
use bangfu_platform::write::{self, Begun};
use sqlx::AnyConnection;
use tonic::Code;

use super::feed::{ClaimChangeKind, publish};
use super::funds::account;
use super::{Subsidy, method};
use crate::domain::{
    ClaimPayload, ClaimSource, ClaimState, ClaimSubject, Decision, ExclusivityScope, Fact, FactSource, FactType,
    FactValue, FrozenFact, FundSource, Outcome, Payee, PayeeKind, Period, PeriodKind, Policy, RegionBasis, Rejection,
    RejectionReason, Review, ReviewBands, ReviewCause, ReviewVerdict, StoredVersion, check_period, day_text,
    month_text, policy_name,
};
use crate::identity::{PersonFacts, PolicyFacts, source_detail};
use crate::store::{self, LedgerEntry, StoredClaim, StoredPolicy};

/// A claim as submitted, with its source.
#[derive(Debug, Clone)]
pub struct Submission {
    pub source: ClaimSource,
    pub payload: ClaimPayload,
}

/// What SubmitClaim answers: the claim, and whether it existed (a retry).
#[derive(Clone)]
pub struct Submitted {
    pub claim: StoredClaim,
    pub existing: bool,
}

/// What EvaluateClaim answers.
pub struct Dry {
    pub decision: Decision,
    pub region: String,
    pub fund: Option<String>,
    pub required_reviews: i32,
}

/// A page of claims.
pub struct ClaimListing {
    pub claims: Vec<StoredClaim>,
    pub more: bool,
}

/// Lines written in one transaction. SQLite has one writer: a transaction holds the database's
/// lock while it writes, and a few hundred lines keep that to tens of milliseconds, so other
/// streams and the service's jobs wait their turn well inside the busy timeout. PostgreSQL
/// writes concurrently, but every stream paying from one fund queues on that fund's balances row from
/// its reservation to its commit: fewer, larger transactions queue less often (a whole
/// 1,000-line message at once: four streams of 200,000 claims 6,454 -> 6,699 claims/s).
fn lines_per_transaction(backend: Backend) -> usize {
    match backend {
        Backend::Sqlite => 250,
        Backend::Postgres => 1_000,
    }
}

/// A policy and the version in force on a day (None: not in force).
type Catalogued = (Arc<StoredPolicy>, Option<Arc<StoredVersion>>);

/// Persons read from identity ahead of a chunk of claims, by person and period.
type Prefetched = HashMap<(String, Period), PersonFacts>;

/// What deciding reads that stays the same across a chunk of claims: the catalog, the funds
/// and the review bands. A single claim starts with an empty one.
#[derive(Default)]
pub(super) struct Reads {
    /// Shared, not copied, into each line's `Gathered`: a version carries its rules, tables and
    /// example cases, and copying and dropping one per claim was about 6 % of the server's CPU while
    /// streaming claims.
    catalog: HashMap<(String, time::Date), Catalogued>,
    funds: HashMap<(FundSource, String, i32), Option<String>>,
    bands: HashMap<(String, time::Date), ReviewBands>,
}

/// Everything read before the transaction: the policy, the version in force and the person
/// (none for a claim about an organization alone).
pub(super) struct Gathered {
    policy: Arc<StoredPolicy>,
    version: Arc<StoredVersion>,
    person: Option<PersonFacts>,
    /// The person's masked name, or the organization's.
    display_name: String,
    region: String,
    read_us: i64,
}

fn claim_not_found(id: &str) -> Problem {
    Problem::not_found(&format!("claims/{id}"))
}

fn not_in_force(code: &str, period: &Period) -> Problem {
    Problem::new(
        Code::FailedPrecondition,
        ErrorReason::PolicyNotInForce,
        format!(
            "no published version of {code} covers {}; a claim for this period waits for a new version",
            day_text(period.first)
        ),
        format!(
            "政策 {code} 在 {} 没有生效的版本，待新版本发布后再申请",
            day_text(period.first)
        ),
    )
    .with_metadata("policy", policy_name(code))
}

fn source_reused(existing: &StoredClaim, fields: &[&str]) -> Problem {
    Problem::new(
        Code::AlreadyExists,
        ErrorReason::ClaimSourceReused,
        format!(
            "the source {}/{} was used for {} with a different {}",
            existing.source_system,
            existing.source_reference,
            existing.name(),
            fields.join(", ")
        ),
        format!("该来源编号已用于另一笔申请，且以下内容不同：{}", fields.join("、")),
    )
    .with_metadata("resource", existing.name())
    .with_metadata("fields", fields.join(","))
}

/// A claim names the person and payee its policy wants: a person-subject claim names its
/// beneficiary (and, when the person is paid, pays that person); a claim about an organization
/// names no person and pays the organization.
fn check_subject_and_payee(policy: &Policy, payload: &ClaimPayload) -> Result<(), Problem> {
    match policy.claim_subject {
        ClaimSubject::Person if payload.person_id.is_empty() => {
            return Err(Problem::invalid_field(
                ErrorReason::FieldRequired,
                "claim.person",
                format!("{} is about a person; name the beneficiary", policy_name(&policy.code)),
                "该政策的补贴对象为个人，请填写申请对象",
            ));
        }
        ClaimSubject::Organization if !payload.person_id.is_empty() => {
            return Err(Problem::invalid_field(
                ErrorReason::FieldInvalid,
                "claim.person",
                format!(
                    "{} is about the organization alone; a claim under it names no person",
                    policy_name(&policy.code)
                ),
                "该政策的补贴对象为单位，申请不填写人员",
            ));
        }
        _ => {}
    }
    match (&payload.payee, policy.payee_kind) {
        (Payee::Person(id), PayeeKind::Person) if *id == payload.person_id => Ok(()),
        (Payee::Organization(_), PayeeKind::Organization) => Ok(()),
        _ => Err(Problem::invalid_field(
            ErrorReason::FieldInvalid,
            "claim.payee",
            format!(
                "{} pays {}; for a person it is the beneficiary",
                policy_name(&policy.code),
                policy.payee_kind.as_str()
            ),
            "收款方与政策不符：支付给个人的政策，收款人应为申请对象本人；支付给单位的政策，应填写单位",
        )),
    }
}

/// The units of time a claim holds in its group: months of a monthly policy, days of a
/// one-time one.
fn units(kind: PeriodKind, period: &Period) -> Vec<String> {
    match kind {
        PeriodKind::Monthly => period.months(),
        PeriodKind::OneTime => period.day_texts(),
    }
}

/// A submitted claim before its decision: what the submitter sent, where it was read to
/// belong, the version that will decide it.
fn new_claim(caller: &Principal, found: &Gathered, submission: &Submission, now: time::OffsetDateTime) -> StoredClaim {
    StoredClaim {
        id: store::new_id(),
        policy_group: found.policy.policy.policy_group.clone(),
        source_system: submission.source.system.clone(),
        source_reference: submission.source.reference.clone(),
        payload: submission.payload.clone(),
        state: ClaimState::Rejected,
        region: found.region.clone(),
        person_display_name: found.display_name.clone(),
        amount: 0,
        fund_id: None,
        payment_batch_id: None,
        decision: Decision::pending(found.version.version),
        earlier_decisions: Vec::new(),
        review_cause: None,
        required_reviews: 0,
        reviews: Vec::new(),
        submit_subject: caller.subject.clone(),
        acting_service: caller.acting_service.clone().unwrap_or_default(),
        created: now,
        updated: now,
        revision: 1,
    }
}

impl Subsidy {
    /// The review bands in force for a region and day (parameters; 0 turns a band off).
    async fn review_bands(
        &self,
        conn: &mut AnyConnection,
        region: &str,
        day: time::Date,
    ) -> Result<ReviewBands, Problem> {
        let one = self
            .parameters()
            .lookup_on(conn, "subsidy.review_one_reviewer_above_fen", region, day)
            .await?
            .unwrap_or(0);
        let two = self
            .parameters()
            .lookup_on(conn, "subsidy.review_two_reviewers_above_fen", region, day)
            .await?
            .unwrap_or(0);
        Ok(ReviewBands {
            one_reviewer_above_fen: one,
            two_reviewers_above_fen: two,
        })
    }

    /// Checks the claim's own facts against the version: each defined, of its type, under its
    /// ceiling; every required one present.
    async fn check_claim_facts(&self, version: &StoredVersion, payload: &ClaimPayload) -> Result<(), Problem> {
        let rules = &version.rules;
        let ceiling = self
            .parameters()
            .lookup("subsidy.max_claim_amount_fen", "", payload.period.first)
            .await?
            .unwrap_or(0);
        for (i, fact) in payload.facts.iter().enumerate() {
            let field = format!("claim.facts[{i}]");
            let Some(definition) = rules.fact(&fact.name).filter(|d| d.source == FactSource::Claim) else {
                let names: Vec<&str> = rules
                    .facts
                    .iter()
                    .filter(|d| d.source == FactSource::Claim)
                    .map(|d| d.name.as_str())
                    .collect();
                return Err(Problem::invalid_field(
                    ErrorReason::FieldInvalid,
                    format!("{field}.name"),
                    format!(
                        "{} is not a fact the submitter gives under {}; those are: {}",
                        fact.name,
                        version.name(),
                        names.join(", ")
                    ),
                    format!("事实项 {} 不需要申请方填写，应填写：{}", fact.name, names.join("、")),
                ));
            };
            if fact.value.fact_type() != definition.fact_type {
                return Err(Problem::invalid_field(
                    ErrorReason::FieldInvalid,
                    format!("{field}.value"),
                    format!("{} is of type {}", fact.name, definition.fact_type.as_str()),
                    format!("事实项 {} 的类型应为 {}", fact.name, definition.fact_type.as_str()),
                ));
            }
            if let FactValue::Integer(v) | FactValue::Money(v) = fact.value {
                let limit = if definition.max_value > 0 {
                    definition.max_value
                } else if definition.fact_type == FactType::Money {
                    ceiling
                } else {
                    0
                };
                if v < 0 || (limit > 0 && v > limit) {
                    return Err(Problem::invalid_field(
                        ErrorReason::AmountOutOfRange,
                        format!("{field}.value"),
                        format!("{} must be between 0 and {limit}", fact.name),
                        format!("{}（{}）应在0至{limit}之间", definition.description, fact.name),
                    ));
                }
            }
            if payload.facts[..i].iter().any(|f| f.name == fact.name) {
                return Err(Problem::invalid_field(
                    ErrorReason::FieldInvalid,
                    format!("{field}.name"),
                    format!("{} is given twice", fact.name),
                    format!("事实项 {} 重复填写", fact.name),
                ));
            }
        }
        for definition in rules
            .facts
            .iter()
            .filter(|d| d.source == FactSource::Claim && d.required)
        {
            if !payload.facts.iter().any(|f| f.name == definition.name) {
                return Err(Problem::invalid_field(
                    ErrorReason::FieldRequired,
                    "claim.facts",
                    format!("{} ({}) is required", definition.name, definition.description),
                    format!("请填写{}（{}）", definition.description, definition.name),
                ));
            }
        }
        Ok(())
    }

    /// Reads what a decision needs outside any transaction: the policy, the version in force
    /// for the period (None: not in force), the person's facts from identity, the claim's region.
    async fn gather(
        &self,
        caller: &Principal,
        call: &CallContext,
        method_name: &str,
        payload: &ClaimPayload,
        prefetched: Option<&Prefetched>,
        reads: &mut Reads,
    ) -> Result<Result<Gathered, Arc<StoredPolicy>>, Problem> {
        let key = (payload.policy_code.clone(), payload.period.first);
        let (policy, version) = match reads.catalog.get(&key) {
            Some(known) => known.clone(),
            None => {
                let mut conn = self.db().acquire().await?;
                let policy = Arc::new(
                    store::get_policy(&mut conn, &payload.policy_code)
                        .await?
                        .ok_or_else(|| Problem::not_found(&policy_name(&payload.policy_code)))?,
                );
                let version = store::version_in_force(&mut conn, &payload.policy_code, payload.period.first)
                    .await?
                    .map(Arc::new);
                reads.catalog.insert(key, (policy.clone(), version.clone()));
                (policy, version)
            }
        };
        check_period(&policy.policy, &payload.period, "claim.period").map_err(super::invalid)?;
        check_subject_and_payee(&policy.policy, payload)?;
        let Some(version) = version else {
            return Ok(Err(policy));
        };
        self.check_claim_facts(&version, payload).await?;
        let read_us = to_micros(self.now());
        if let (ClaimSubject::Organization, Payee::Organization(org)) = (policy.policy.claim_subject, &payload.payee) {
            let region = org.region.clone();
            self.ensure_sees(
                caller,
                method_name,
                &format!("organizations/{}", org.credit_code),
                &region,
            )?;
            return Ok(Ok(Gathered {
                policy,
                version,
                person: None,
                display_name: org.display_name.clone(),
                region,
                read_us,
            }));
        }
        let known = prefetched.and_then(|p| p.get(&(payload.person_id.clone(), payload.period)));
        let person = match known {
            Some(person) => Some(person.clone()),
            None => {
                self.identity()?
                    .person(call, &payload.person_id, &payload.period)
                    .await?
            }
        };
        let person = person.ok_or_else(|| {
            let resource = format!("persons/{}", payload.person_id);
            self.refuse(caller, method_name, &resource, Problem::not_found(&resource))
        })?;
        let region = match (version.rules.region_basis, &payload.payee) {
            (RegionBasis::Residence, _) => person.residence_region.clone(),
            (RegionBasis::Organization, Payee::Organization(org)) => org.region.clone(),
            _ => person.registered_region.clone(),
        };
        self.ensure_sees(caller, method_name, &format!("persons/{}", payload.person_id), &region)?;
        Ok(Ok(Gathered {
            policy,
            version,
            display_name: person.display_name.clone(),
            person: Some(person),
            region,
            read_us,
        }))
    }

    /// What a decision needs, or POLICY_NOT_IN_FORCE.
    pub(super) async fn gather_for_decision(
        &self,
        caller: &Principal,
        call: &CallContext,
        method_name: &str,
        payload: &ClaimPayload,
    ) -> Result<Gathered, Problem> {
        match self
            .gather(caller, call, method_name, payload, None, &mut Reads::default())
            .await?
        {
            Ok(gathered) => Ok(gathered),
            Err(policy) => Err(not_in_force(&policy.policy.code, &payload.period)),
        }
    }

    /// Every fact the version defines that has a value, frozen with where it came from.
    async fn facts_for(
        &self,
        conn: &mut AnyConnection,
        gathered: &Gathered,
        payload: &ClaimPayload,
    ) -> Result<Vec<FrozenFact>, Problem> {
        let rules = &gathered.version.rules;
        let policy = &gathered.policy.policy;
        let period = &payload.period;
        let person = gathered.person.as_ref();
        let history_needed = rules.facts.iter().any(|f| f.source == FactSource::History);
        let history = if history_needed {
            store::history(
                conn,
                &payload.subject_key(),
                &policy.policy_group,
                policy.period_kind == PeriodKind::Monthly,
            )
            .await?
        } else {
            store::History::default()
        };
        let identity_detail = source_detail(&payload.person_id, period);
        let mut frozen = Vec::new();
        for definition in &rules.facts {
            let (value, detail) = match definition.source {
                FactSource::Claim => (
                    payload
                        .facts
                        .iter()
                        .find(|f| f.name == definition.name)
                        .map(|f| f.value.clone()),
                    "claim".to_string(),
                ),
                FactSource::Identity => {
                    // A policy about organizations defines no identity fact (check_version).
                    let value = person.and_then(|p| p.fact(&definition.name, period, rules.category_as_of));
                    (value, identity_detail.clone())
                }
                FactSource::History => {
                    let value = match definition.name.as_str() {
                        "history.months_granted" => Some(FactValue::Integer(history.months_granted)),
                        "history.amount_granted_fen" => Some(FactValue::Money(history.amount_granted)),
                        "history.claims_granted" => Some(FactValue::Integer(history.claims_granted)),
                        "history.first_approval_month" => {
                            history.first_approval_month.clone().map(FactValue::YearMonth)
                        }
                        _ => None,
                    };
                    (value, format!("history policy group {}", policy.policy_group))
                }
                FactSource::StandardsTable => {
                    let value = rules
                        .table(&definition.lookup_key)
                        .and_then(|t| t.lookup(&gathered.region, period.first.year()))
                        .map(|row| FactValue::Money(row.value_fen));
                    (
                        value,
                        format!(
                            "table {} {} {}",
                            definition.lookup_key,
                            gathered.region,
                            period.first.year()
                        ),
                    )
                }
                FactSource::Parameter => {
                    let value = self
                        .parameters()
                        .lookup_on(conn, &definition.lookup_key, &gathered.region, period.first)
                        .await?
                        .map(|v| match definition.fact_type {
                            FactType::Money => FactValue::Money(v),
                            _ => FactValue::Integer(v),
                        });
                    (
                        value,
                        format!("parameter {} {}", definition.lookup_key, gathered.region),
                    )
                }
            };
            if let Some(value) = value {
                frozen.push(FrozenFact {
                    fact: Fact {
                        name: definition.name.clone(),
                        value,
                    },
                    source: definition.source,
                    source_detail: detail,
                    read_us: if definition.source == FactSource::Identity {
                        gathered.read_us
                    } else {
                        to_micros(self.now())
                    },
                });
            }
        }
        Ok(frozen)
    }

    /// The rules' decision on the gathered facts, with exclusivity against stored claims.
    async fn decide(
        &self,
        conn: &mut AnyConnection,
        gathered: &Gathered,
        payload: &ClaimPayload,
    ) -> Result<Decision, Problem> {
        let frozen = self.facts_for(conn, gathered, payload).await?;
        let facts: Vec<Fact> = frozen.iter().map(|f| f.fact.clone()).collect();
        let rules = self.compiled(&gathered.version)?;
        let evaluation = rules
            .evaluate(&payload.period, &gathered.region, &facts)
            .map_err(|error| {
                tracing::error!(version = %gathered.version.name(), %error, "a published rule fails on a claim");
                Problem::new(
                    Code::Internal,
                    ErrorReason::PolicyRuleInvalid,
                    format!(
                        "{} cannot decide this claim ({error}); the policy needs a new version",
                        gathered.version.name()
                    ),
                    "该政策规则无法计算此申请，需由财政部门发布新版本后再申请",
                )
            })?;
        let mut rejections = evaluation.rejections.clone();
        for group in &gathered.version.rules.exclusivity_groups {
            if group.scope != ExclusivityScope::Ever {
                continue;
            }
            let others: Vec<String> = store::policies_in_exclusivity_group(conn, &group.key)
                .await?
                .into_iter()
                .filter(|(code, rules)| {
                    *code != payload.policy_code
                        && rules
                            .exclusivity_groups
                            .iter()
                            .any(|g| g.key == group.key && g.scope == ExclusivityScope::Ever)
                })
                .map(|(code, _)| code)
                .collect();
            if let Some((id, code, _, _)) = store::exclusive_claims(conn, &payload.subject_key(), &others)
                .await?
                .into_iter()
                .next()
            {
                rejections.push(Rejection {
                    reason: RejectionReason::ExclusiveWith,
                    message: format!("已享受互斥的政策 {code}（互斥组 {}）", group.key),
                    conflicting_claim: format!("claims/{id}"),
                });
            }
        }
        let outcome = if rejections.is_empty() {
            Outcome::Eligible
        } else {
            Outcome::Rejected
        };
        Ok(Decision {
            outcome,
            amount: if outcome == Outcome::Eligible {
                evaluation.amount
            } else {
                0
            },
            computed_amount: evaluation.computed_amount,
            policy_version: gathered.version.version,
            rejections,
            months_granted: evaluation.months_granted,
            months_limit: evaluation.months_limit,
            frozen_facts: frozen,
            decided_us: to_micros(self.now()),
        })
    }

    /// The period keys a granted claim holds: its group's units and those of its same-period
    /// exclusivity groups.
    fn period_keys(gathered: &Gathered, payload: &ClaimPayload) -> Vec<(String, String)> {
        let policy: &Policy = &gathered.policy.policy;
        let units = units(policy.period_kind, &payload.period);
        let mut keys: Vec<(String, String)> = units
            .iter()
            .map(|u| (format!("group:{}", policy.policy_group), u.clone()))
            .collect();
        for group in &gathered.version.rules.exclusivity_groups {
            if group.scope == ExclusivityScope::SamePeriod {
                // Exclusivity across period kinds is by month: a month on a post excludes a
                // work-relief day in it.
                for month in payload.period.months() {
                    keys.push((format!("exclusive:{}", group.key), month));
                }
            }
        }
        keys
    }

    /// Takes the periods the granted decisions hold, for claims of distinct subjects (so no two
    /// of them can want one key), every key in one statement. A claim one of whose keys another
    /// claim holds (the database's constraint says so) looks that holder up, gives back what
    /// it took and turns into DUPLICATE_PERIOD.
    async fn hold_periods(
        tx: &mut AnyConnection,
        claims: &mut [(&Gathered, &ClaimPayload, &str, &mut Decision)],
    ) -> Result<(), Problem> {
        let wanted: Vec<store::WantedPeriods> = claims
            .iter()
            .filter(|(_, _, _, decision)| decision.outcome == Outcome::Eligible)
            .map(|(gathered, payload, claim_id, _)| store::WantedPeriods {
                claim_id,
                subject: payload.subject_key(),
                keys: Self::period_keys(gathered, payload),
            })
            .collect();
        let taken = store::occupy(tx, &wanted).await?;
        let mut missing: HashMap<&str, (&str, &(String, String))> = HashMap::new();
        for wanted in &wanted {
            let subject = wanted.subject.as_str();
            if let Some(key) = wanted
                .keys
                .iter()
                .find(|(group, unit)| !taken.contains(&(subject.to_string(), group.clone(), unit.clone())))
            {
                missing.insert(wanted.claim_id, (subject, key));
            }
        }
        for (gathered, _, claim_id, decision) in claims.iter_mut() {
            if let Some((subject, key)) = missing.get(claim_id) {
                let holder = store::holder_of(tx, subject, std::slice::from_ref(*key))
                    .await?
                    .ok_or_else(Problem::internal)?;
                store::vacate(tx, claim_id).await?;
                Self::duplicate_period(gathered, decision, &holder);
            }
        }
        Ok(())
    }

    fn duplicate_period(gathered: &Gathered, decision: &mut Decision, holder: &str) {
        decision.outcome = Outcome::Rejected;
        decision.amount = 0;
        decision.rejections.push(Rejection {
            reason: RejectionReason::DuplicatePeriod,
            message: format!(
                "同一补贴项目组（{}）在该期间已有申请",
                gathered.policy.policy.policy_group
            ),
            conflicting_claim: format!("claims/{holder}"),
        });
    }

    /// Decides `claim` in the transaction and sets what follows from the decision: the periods
    /// it holds (a clash rejects it), its fund, its reviews and its state. Returns the month of
    /// approval of a granted claim. The fund's reservation is left to the caller's last step.
    pub(super) async fn decide_into(
        &self,
        tx: &mut AnyConnection,
        gathered: &Gathered,
        claim: &mut StoredClaim,
        reads: &mut Reads,
    ) -> Result<Option<String>, Problem> {
        let payload = claim.payload.clone();
        let mut decision = self.decide(tx, gathered, &payload).await?;
        Self::hold_periods(tx, &mut [(gathered, &payload, claim.id.as_str(), &mut decision)]).await?;
        self.settle(tx, gathered, claim, decision, reads).await
    }

    /// What follows from a decision whose periods are held: the claim's amount, fund, reviews
    /// and state. Returns the month of approval of a granted claim.
    async fn settle(
        &self,
        tx: &mut AnyConnection,
        gathered: &Gathered,
        claim: &mut StoredClaim,
        decision: Decision,
        reads: &mut Reads,
    ) -> Result<Option<String>, Problem> {
        let first = claim.payload.period.first;
        claim.amount = decision.amount;
        claim.decision = decision;
        claim.region = gathered.region.clone();
        claim.state = ClaimState::Rejected;
        if claim.decision.outcome != Outcome::Eligible {
            // A rejected claim holds no money, so it names no fund.
            claim.fund_id = None;
            return Ok(None);
        }
        let source = gathered.version.rules.fund_source;
        let year = first.year();
        let fund_key = (source, gathered.region.clone(), year);
        let fund = match reads.funds.get(&fund_key) {
            Some(known) => known.clone(),
            None => {
                let found = store::fund_for(tx, source, &gathered.region, year).await?.map(|f| f.id);
                reads.funds.insert(fund_key, found.clone());
                found
            }
        };
        let fund = fund.ok_or_else(|| {
            Problem::new(
                Code::FailedPrecondition,
                ErrorReason::FundMissing,
                format!(
                    "no fund of {} covers {} in {year}; finance creates it first",
                    source.as_str(),
                    gathered.region,
                ),
                "该地区、年度尚未下达对应来源的资金，请联系财政部门",
            )
        })?;
        claim.fund_id = Some(fund);
        let bands_key = (gathered.region.clone(), first);
        let bands = match reads.bands.get(&bands_key) {
            Some(known) => *known,
            None => {
                let bands = self.review_bands(tx, &gathered.region, first).await?;
                reads.bands.insert(bands_key, bands);
                bands
            }
        };
        claim.required_reviews = bands.required_reviews(claim.amount);
        if claim.required_reviews > 0 {
            claim.state = ClaimState::PendingReview;
            claim.review_cause = Some(ReviewCause::AmountBand);
        } else {
            claim.state = ClaimState::Approved;
        }
        Ok(Some(month_text(first)))
    }

    /// SubmitClaim: decide and store, idempotent by source.
    pub async fn submit_claim(
        &self,
        caller: &Principal,
        call: &CallContext,
        key: Option<RequestKey>,
        submission: Submission,
    ) -> Result<Submitted, Problem> {
        self.submit_one(caller, call, key, submission, None).await
    }

    /// SubmitClaims' chunk: each line as SubmitClaim would take it, the persons read from
    /// identity once for the chunk (one BatchGetPersons per period, up to 1,000 a call). A line
    /// refused is answered with its problem; the others go on.
    pub async fn submit_claims(
        &self,
        caller: &Principal,
        call: &CallContext,
        lines: Vec<Result<Submission, Problem>>,
    ) -> Result<Vec<Result<Submitted, Problem>>, Problem> {
        let mut by_period: HashMap<Period, Vec<String>> = HashMap::new();
        // A claim about an organization alone has no person to read.
        for submission in lines.iter().flatten().filter(|s| !s.payload.person_id.is_empty()) {
            by_period
                .entry(submission.payload.period)
                .or_default()
                .push(submission.payload.person_id.clone());
        }
        let mut prefetched = Prefetched::new();
        for (period, mut ids) in by_period {
            ids.sort();
            ids.dedup();
            match self.identity()?.persons(call, &ids, &period).await {
                Ok(persons) => {
                    for (id, person) in persons {
                        prefetched.insert((id, period), person);
                    }
                }
                // Identity unreachable: every line waits (retryable), none is decided on
                // missing facts.
                Err(problem) => return Ok(lines.iter().map(|_| Err(problem.clone())).collect()),
            }
        }
        let mut results = Vec::with_capacity(lines.len());
        let mut stepped_back = false;
        for slice in lines.chunks(lines_per_transaction(self.db().backend())) {
            // A slice whose source another stream committed meanwhile is taken once more: its
            // look-up of stored sources now finds them and answers those lines as retries, where
            // stepping back would take its thousand lines one transaction each. A fund short of
            // the slice's total steps back on the second try too.
            let mut written = self.submit_chunk(caller, call, slice, &prefetched).await;
            if matches!(written, Ok(None)) {
                written = self.submit_chunk(caller, call, slice, &prefetched).await;
            }
            match written {
                Ok(Some(answers)) => results.extend(answers),
                Ok(None) => {
                    stepped_back = true;
                    break;
                }
                // Rolled back whatever it was (a line's value a constraint refuses, a write
                // that met another stream's): each line then gets its own answer.
                Err(problem) => {
                    tracing::warn!(error = %problem.message, "a slice of SubmitClaims failed; its lines go one by one");
                    stepped_back = true;
                    break;
                }
            }
        }
        if !stepped_back {
            return Ok(results);
        }
        let done = results.len();
        // A slice stepped back (its fund could not hold all of it, or a source was taken by
        // another stream meanwhile): each line as SubmitClaim takes it, with its own answer.
        for line in lines.into_iter().skip(done) {
            results.push(match line {
                Ok(submission) => self.submit_one(caller, call, None, submission, Some(&prefetched)).await,
                Err(problem) => Err(problem),
            });
        }
        Ok(results)
    }

    /// A chunk of claims in one transaction, decided line by line as SubmitClaim decides one
    /// (the same periods taken, so the same constraint refuses paying twice) but written in a
    /// few statements: the claims, one reservation per fund, the journal, the feed and the
    /// audit rows in multi-row inserts, one commit. None when the chunk must step back to
    /// line-by-line submission: a fund cannot hold the whole chunk (each line then learns
    /// whether it fits), or another stream took one of its sources meanwhile. Nothing of it
    /// is kept then.
    async fn submit_chunk(
        &self,
        caller: &Principal,
        call: &CallContext,
        lines: &[Result<Submission, Problem>],
        prefetched: &Prefetched,
    ) -> Result<Option<Vec<Result<Submitted, Problem>>>, Problem> {
        let mut results: Vec<Option<Result<Submitted, Problem>>> = vec![None; lines.len()];
        // Sources submitted before answer as a retry; a source twice in the chunk answers
        // from its first line.
        let sources: Vec<(String, String)> = lines
            .iter()
            .flatten()
            .map(|s| (s.source.system.clone(), s.source.reference.clone()))
            .collect();
        let existing = {
            let mut conn = self.db().acquire().await?;
            store::claims_by_sources(&mut conn, &sources).await?
        };
        let mut first_of: HashMap<(String, String), usize> = HashMap::new();
        let mut repeats: Vec<(usize, usize)> = Vec::new();
        let mut reads = Reads::default();
        let mut gathered: Vec<(usize, Gathered)> = Vec::new();
        for (index, line) in lines.iter().enumerate() {
            let submission = match line {
                Ok(submission) => submission,
                Err(problem) => {
                    results[index] = Some(Err(problem.clone()));
                    continue;
                }
            };
            let source = (submission.source.system.clone(), submission.source.reference.clone());
            if let Some(claim) = existing.get(&source) {
                results[index] = Some(self.existing(caller, claim.clone(), &submission.payload));
                continue;
            }
            if let Some(first) = first_of.get(&source) {
                repeats.push((index, *first));
                continue;
            }
            let payload = &submission.payload;
            match self
                .gather(caller, call, "SubmitClaim", payload, Some(prefetched), &mut reads)
                .await
            {
                // A source counts as taken once its line is on its way to a decision: a line
                // refused before that stores nothing, and a later line may use the source.
                Ok(Ok(found)) => {
                    first_of.insert(source, index);
                    gathered.push((index, found));
                }
                Ok(Err(policy)) => results[index] = Some(Err(not_in_force(&policy.policy.code, &payload.period))),
                Err(problem) => results[index] = Some(Err(problem)),
            }
        }

        let mut unit = write::begin_unkeyed(self.db(), self.now()).await?;
        let now = unit.now();
        let subjects: Vec<String> = gathered
            .iter()
            .filter_map(|(index, _)| lines[*index].as_ref().ok().map(|s| s.payload.subject_key()))
            .collect();
        store::lock_subjects(unit.tx(), self.db().backend(), &subjects).await?;
        let mut decided: Vec<(usize, StoredClaim, Option<String>)> = Vec::new();
        // A wave: lines of distinct subjects, each decided against what is written, their
        // periods then taken in one statement. A subject coming back closes the wave and writes
        // the claims decided so far: the later line reads the subject's claims (history,
        // exclusivity). The wave's key is the subject key, the same key periods are held
        // under: a finer key would let two lines of one subject into one wave.
        let mut unwritten = 0;
        let mut wave: Vec<(usize, Gathered, StoredClaim, Decision)> = Vec::new();
        let mut wave_subjects: std::collections::HashSet<String> = std::collections::HashSet::new();
        for (index, found) in gathered {
            let Some(Ok(submission)) = lines.get(index) else {
                continue;
            };
            let subject = submission.payload.subject_key();
            if wave_subjects.contains(&subject) {
                self.close_wave(unit.tx(), &mut wave, &mut decided, &mut results, &mut reads)
                    .await?;
                let pending: Vec<(&StoredClaim, Option<&str>)> = decided[unwritten..]
                    .iter()
                    .map(|(_, claim, month)| (claim, month.as_deref()))
                    .collect();
                store::insert_claims(unit.tx(), &pending).await?;
                unwritten = decided.len();
                wave_subjects.clear();
            }
            let claim = new_claim(caller, &found, submission, now);
            // Nothing is taken before the decision: a refusal here leaves nothing to give back.
            match self.decide(unit.tx(), &found, &submission.payload).await {
                Ok(decision) => {
                    wave_subjects.insert(subject);
                    wave.push((index, found, claim, decision));
                }
                Err(problem) => results[index] = Some(Err(problem)),
            }
        }
        self.close_wave(unit.tx(), &mut wave, &mut decided, &mut results, &mut reads)
            .await?;
        let pending: Vec<(&StoredClaim, Option<&str>)> = decided[unwritten..]
            .iter()
            .map(|(_, claim, month)| (claim, month.as_deref()))
            .collect();
        match store::insert_claims(unit.tx(), &pending).await {
            Ok(()) => {}
            Err(sqlx::Error::Database(error)) if error.is_unique_violation() => return Ok(None),
            Err(error) => return Err(error.into()),
        }
        // Everything but the funds first: the feed, the audit rows and (on PostgreSQL) the
        // deferred check of the periods' claims. A fund's balances row is locked from its reservation
        // to the commit, and every stream paying from that fund waits for it: what runs under
        // the lock is the reservation, its journal rows and the commit, nothing else.
        let (positions, claims): (Vec<usize>, Vec<StoredClaim>) =
            decided.into_iter().map(|(index, claim, _)| (index, claim)).unzip();
        super::feed::publish_claims(unit.tx(), ClaimChangeKind::Decided, &claims, now).await?;
        unit.audit_many(
            claims
                .iter()
                .map(|claim| AuditEntry::by(caller, &method("SubmitClaim"), claim.name(), now).in_region(&claim.region))
                .collect(),
        )
        .await?;
        if self.db().backend() == Backend::Postgres {
            sqlx::query("SET CONSTRAINTS ALL IMMEDIATE")
                .execute(&mut *unit.tx())
                .await?;
        }

        // The funds' balances rows last, as for one claim. A fund that cannot hold the chunk's total
        // sends the chunk back.
        let mut by_fund: std::collections::BTreeMap<String, Vec<&StoredClaim>> = std::collections::BTreeMap::new();
        for claim in &claims {
            if claim.state == ClaimState::Approved
                && let Some(fund_id) = &claim.fund_id
            {
                by_fund.entry(fund_id.clone()).or_default().push(claim);
            }
        }
        for (fund_id, claims) in &by_fund {
            let total: i64 = claims.iter().map(|c| c.amount).sum();
            if !store::reserve(unit.tx(), fund_id, total).await? {
                return Ok(None);
            }
            let entries: Vec<LedgerEntry> = claims
                .iter()
                .map(|claim| LedgerEntry {
                    fund_id: fund_id.clone(),
                    seq: 0,
                    kind: "reserve".into(),
                    debit: account::RESERVED.into(),
                    credit: account::AVAILABLE.into(),
                    amount: claim.amount,
                    claim_id: Some(claim.id.clone()),
                    batch_id: None,
                    document: claim.name(),
                    entry_date: self.today(),
                    subject: caller.subject.clone(),
                    recorded: now,
                })
                .collect();
            store::append_entries(unit.tx(), fund_id, &entries).await?;
        }
        unit.commit_audited().await?;

        for (index, claim) in positions.into_iter().zip(claims) {
            results[index] = Some(Ok(Submitted { claim, existing: false }));
        }
        for (index, first) in repeats {
            let answer = match (&results[first], &lines[index]) {
                (Some(Ok(made)), Ok(submission)) => {
                    let differences = made.claim.payload.differences(&submission.payload);
                    if differences.is_empty() {
                        Ok(Submitted {
                            claim: made.claim.clone(),
                            existing: true,
                        })
                    } else {
                        Err(source_reused(&made.claim, &differences))
                    }
                }
                // The first line stored nothing: the repeat is decided on its own, as it would
                // be one by one.
                (Some(Err(_)), Ok(submission)) => {
                    self.submit_one(caller, call, None, submission.clone(), Some(prefetched))
                        .await
                }
                _ => Err(Problem::internal()),
            };
            results[index] = Some(answer);
        }
        Ok(Some(
            results
                .into_iter()
                .map(|r| r.unwrap_or_else(|| Err(Problem::internal())))
                .collect(),
        ))
    }

    /// Takes the wave's periods in one statement, then settles each line as `decide_into`
    /// would; a line that cannot be settled gives its periods back and is answered with why.
    async fn close_wave(
        &self,
        tx: &mut AnyConnection,
        wave: &mut Vec<(usize, Gathered, StoredClaim, Decision)>,
        decided: &mut Vec<(usize, StoredClaim, Option<String>)>,
        results: &mut [Option<Result<Submitted, Problem>>],
        reads: &mut Reads,
    ) -> Result<(), Problem> {
        let mut holding: Vec<(&Gathered, &ClaimPayload, &str, &mut Decision)> = wave
            .iter_mut()
            .map(|(_, gathered, claim, decision)| (&*gathered, &claim.payload, claim.id.as_str(), decision))
            .collect();
        Self::hold_periods(tx, &mut holding).await?;
        for (index, found, mut claim, decision) in wave.drain(..) {
            match self.settle(tx, &found, &mut claim, decision, reads).await {
                Ok(month) => decided.push((index, claim, month)),
                Err(problem) => {
                    store::vacate(tx, &claim.id).await?;
                    results[index] = Some(Err(problem));
                }
            }
        }
        Ok(())
    }

    async fn submit_one(
        &self,
        caller: &Principal,
        call: &CallContext,
        key: Option<RequestKey>,
        submission: Submission,
        prefetched: Option<&Prefetched>,
    ) -> Result<Submitted, Problem> {
        let Submission { source, payload } = submission;
        {
            let mut conn = self.db().acquire().await?;
            if let Some(existing) = store::claim_by_source(&mut conn, &source.system, &source.reference).await? {
                return self.existing(caller, existing, &payload);
            }
        }
        let gathered = match self
            .gather(caller, call, "SubmitClaim", &payload, prefetched, &mut Reads::default())
            .await?
        {
            Ok(gathered) => gathered,
            Err(policy) => return Err(not_in_force(&policy.policy.code, &payload.period)),
        };
        let mut unit = match write::begin(self.db(), key, self.now()).await? {
            Begun::Replay { resource } => {
                let id = resource.trim_start_matches("claims/");
                let mut conn = self.db().acquire().await?;
                let claim = store::get_claim(&mut conn, id)
                    .await?
                    .ok_or_else(|| claim_not_found(id))?;
                return Ok(Submitted { claim, existing: true });
            }
            Begun::Fresh(unit) => unit,
        };
        store::lock_subject(unit.tx(), self.db().backend(), &payload.subject_key()).await?;
        // A concurrent submission of the same source may have committed since the first look.
        if let Some(existing) = store::claim_by_source(unit.tx(), &source.system, &source.reference).await? {
            return self.existing(caller, existing, &payload);
        }
        let now = unit.now();
        let mut claim = new_claim(
            caller,
            &gathered,
            &Submission {
                source,
                payload: payload.clone(),
            },
            now,
        );
        let approved_month = self
            .decide_into(unit.tx(), &gathered, &mut claim, &mut Reads::default())
            .await?;
        store::insert_claim(unit.tx(), &claim, approved_month.as_deref()).await?;
        publish(&mut unit, ClaimChangeKind::Decided, &claim).await?;
        // The fund's balances row is every concurrent approval's one hot row: it is locked last, so the
        // lock is held only for the reservation, its journal entry, the audit row and the commit.
        // A refusal still rolls the whole claim back.
        if claim.state == ClaimState::Approved
            && let Some(fund_id) = claim.fund_id.clone()
        {
            self.reserve(unit.tx(), &fund_id, &claim, &caller.subject, now).await?;
        }
        let resource = claim.name();
        unit.commit(AuditEntry::by(caller, &method("SubmitClaim"), resource, now).in_region(&claim.region))
            .await?;
        Ok(Submitted { claim, existing: false })
    }

    /// The answer to a source submitted before: the same claim, or CLAIM_SOURCE_REUSED.
    fn existing(
        &self,
        caller: &Principal,
        existing: StoredClaim,
        payload: &ClaimPayload,
    ) -> Result<Submitted, Problem> {
        self.ensure_sees(caller, "SubmitClaim", &existing.name(), &existing.region)?;
        let differences = existing.payload.differences(payload);
        if differences.is_empty() {
            Ok(Submitted {
                claim: existing,
                existing: true,
            })
        } else {
            Err(source_reused(&existing, &differences))
        }
    }

    /// Moves the claim's amount from available to reserved, with its journal entry.
    pub(super) async fn reserve(
        &self,
        tx: &mut AnyConnection,
        fund_id: &str,
        claim: &StoredClaim,
        subject: &str,
        now: time::OffsetDateTime,
    ) -> Result<(), Problem> {
        if !store::reserve(tx, fund_id, claim.amount).await? {
            return Err(Problem::new(
                Code::FailedPrecondition,
                ErrorReason::BudgetExhausted,
                format!("funds/{fund_id} has less than {} fen available", claim.amount),
                "该项资金余额不足，无法核定此笔补贴，请联系财政部门追加预算",
            )
            .with_metadata("fund", format!("funds/{fund_id}")));
        }
        store::append_entry(
            tx,
            &LedgerEntry {
                fund_id: fund_id.to_string(),
                seq: 0,
                kind: "reserve".into(),
                debit: account::RESERVED.into(),
                credit: account::AVAILABLE.into(),
                amount: claim.amount,
                claim_id: Some(claim.id.clone()),
                batch_id: None,
                document: claim.name(),
                entry_date: self.today(),
                subject: subject.to_string(),
                recorded: now,
            },
        )
        .await?;
        Ok(())
    }

    /// EvaluateClaim: the decision a claim would get now, stored nowhere.
    pub async fn evaluate_claim(
        &self,
        caller: &Principal,
        call: &CallContext,
        payload: ClaimPayload,
    ) -> Result<Dry, Problem> {
        let gathered = match self
            .gather(caller, call, "EvaluateClaim", &payload, None, &mut Reads::default())
            .await?
        {
            Ok(gathered) => gathered,
            Err(_) => {
                return Ok(Dry {
                    decision: Decision {
                        outcome: Outcome::Rejected,
                        amount: 0,
                        computed_amount: 0,
                        policy_version: 0,
                        rejections: vec![Rejection::new(
                            RejectionReason::PolicyNotInForce,
                            format!("{} 没有生效的政策版本", day_text(payload.period.first)),
                        )],
                        months_granted: 0,
                        months_limit: 0,
                        frozen_facts: Vec::new(),
                        decided_us: to_micros(self.now()),
                    },
                    region: String::new(),
                    fund: None,
                    required_reviews: 0,
                });
            }
        };
        let mut conn = self.db().acquire().await?;
        let mut decision = self.decide(&mut conn, &gathered, &payload).await?;
        if decision.outcome == Outcome::Eligible
            && let Some(holder) = store::holder_of(
                &mut conn,
                &payload.subject_key(),
                &Self::period_keys(&gathered, &payload),
            )
            .await?
        {
            decision.outcome = Outcome::Rejected;
            decision.amount = 0;
            decision.rejections.push(Rejection {
                reason: RejectionReason::DuplicatePeriod,
                message: "同一补贴项目组在该期间已有申请".into(),
                conflicting_claim: format!("claims/{holder}"),
            });
        }
        let fund = store::fund_for(
            &mut conn,
            gathered.version.rules.fund_source,
            &gathered.region,
            payload.period.first.year(),
        )
        .await?;
        if decision.outcome == Outcome::Eligible
            && let Some(fund) = &fund
            && fund.available() < decision.amount
        {
            decision.outcome = Outcome::Rejected;
            decision.rejections.push(Rejection::new(
                RejectionReason::BudgetExhausted,
                format!("资金余额 {} 分，不足 {} 分", fund.available(), decision.amount),
            ));
            decision.amount = 0;
        }
        let required_reviews = self
            .review_bands(&mut conn, &gathered.region, payload.period.first)
            .await?
            .required_reviews(decision.amount);
        Ok(Dry {
            decision,
            region: gathered.region,
            fund: fund.map(|f| f.name()),
            required_reviews,
        })
    }

    pub async fn get_claim(&self, caller: &Principal, id: &str) -> Result<StoredClaim, Problem> {
        let mut conn = self.db().acquire().await?;
        let claim = store::get_claim(&mut conn, id)
            .await?
            .ok_or_else(|| claim_not_found(id))?;
        self.ensure_sees(caller, "GetClaim", &claim.name(), &claim.region)?;
        Ok(claim)
    }

    /// What was paid on each of the claims (amount and day), by claim id; the claims were read
    /// for the caller already.
    pub async fn payments_of(
        &self,
        claims: &[StoredClaim],
    ) -> Result<HashMap<String, (i64, Option<time::Date>)>, Problem> {
        let ids: Vec<String> = claims.iter().map(|c| c.id.clone()).collect();
        let mut conn = self.db().acquire().await?;
        Ok(store::paid_lines(&mut conn, &ids).await?)
    }

    pub async fn list_claims(
        &self,
        caller: &Principal,
        mut filter: store::ClaimFilter,
        after: Option<(String, String)>,
        limit: u32,
    ) -> Result<ClaimListing, Problem> {
        let Some(prefix) = caller.scope.narrowed(&filter.region_prefix) else {
            return Ok(ClaimListing {
                claims: Vec::new(),
                more: false,
            });
        };
        filter.region_prefix = prefix;
        let mut conn = self.db().acquire().await?;
        let mut claims = store::list_claims(&mut conn, &filter, after, i64::from(limit) + 1).await?;
        let more = claims.len() > limit as usize;
        claims.truncate(limit as usize);
        Ok(ClaimListing { claims, more })
    }

    /// ReviewClaim: one reviewer's verdict on a claim waiting for review. Never by its
    /// submitter or an earlier reviewer; the last approval needed reserves the amount.
    pub async fn review_claim(
        &self,
        caller: &Principal,
        id: &str,
        verdict: ReviewVerdict,
        note: &str,
        etag: &str,
    ) -> Result<StoredClaim, Problem> {
        let mut unit = write::begin_unkeyed(self.db(), self.now()).await?;
        let now = unit.now();
        let mut claim = store::get_claim(unit.tx(), id)
            .await?
            .ok_or_else(|| claim_not_found(id))?;
        let name = claim.name();
        self.ensure_sees(caller, "ReviewClaim", &name, &claim.region)?;
        if claim.etag() != etag {
            return Err(Problem::etag_mismatch(&name));
        }
        if claim.state != ClaimState::PendingReview {
            return Err(Problem::new(
                Code::FailedPrecondition,
                ErrorReason::StateConflict,
                format!("{name} is {}, not waiting for review", claim.state.as_str()),
                "该申请不在待复核状态",
            ));
        }
        let earlier = claim.reviews.iter().any(|r| r.subject == caller.subject);
        if caller.subject == claim.submit_subject || earlier {
            let refusal = Problem::new(
                Code::PermissionDenied,
                ErrorReason::SameMakerAndChecker,
                "the submitter, or a subject who reviewed the claim before, may not review it",
                "申请人或已复核过的人员不能再次复核该申请，请由其他复核人员办理",
            );
            return Err(self.refuse(caller, "ReviewClaim", &name, refusal));
        }
        let read_revision = claim.revision;
        claim.reviews.push(Review {
            subject: caller.subject.clone(),
            verdict,
            note: note.to_string(),
            reviewed_us: to_micros(now),
        });
        claim.updated = now;
        match verdict {
            ReviewVerdict::Reject => {
                claim.state = ClaimState::Rejected;
                claim.review_cause = None;
                claim.earlier_decisions.push(claim.decision.clone());
                claim.decision.outcome = Outcome::Rejected;
                claim.decision.rejections = vec![Rejection::new(RejectionReason::RejectedInReview, note)];
                claim.decision.decided_us = to_micros(now);
                claim.amount = 0;
                store::vacate(unit.tx(), &claim.id).await?;
            }
            ReviewVerdict::Approve => {
                let approvals = claim
                    .reviews
                    .iter()
                    .filter(|r| r.verdict == ReviewVerdict::Approve)
                    .count();
                if approvals as i32 >= claim.required_reviews {
                    let fund_id = claim.fund_id.clone().ok_or_else(Problem::internal)?;
                    self.reserve(unit.tx(), &fund_id, &claim, &caller.subject, now).await?;
                    claim.state = ClaimState::Approved;
                    claim.review_cause = None;
                }
            }
        }
        if !store::update_claim(unit.tx(), &claim, ClaimState::PendingReview, read_revision, None).await? {
            return Err(Problem::etag_mismatch(&name));
        }
        let claim = store::get_claim(unit.tx(), id).await?.ok_or_else(Problem::internal)?;
        publish(&mut unit, ClaimChangeKind::Reviewed, &claim).await?;
        unit.commit(AuditEntry::by(caller, &method("ReviewClaim"), name, now).in_region(&claim.region))
            .await?;
        Ok(claim)
    }

    /// WithdrawClaim: by its source's side, before it enters a batch; an approved claim's
    /// reservation is released.
    pub async fn withdraw_claim(
        &self,
        caller: &Principal,
        id: &str,
        reason: &str,
        etag: &str,
    ) -> Result<StoredClaim, Problem> {
        let mut unit = write::begin_unkeyed(self.db(), self.now()).await?;
        let now = unit.now();
        let mut claim = store::get_claim(unit.tx(), id)
            .await?
            .ok_or_else(|| claim_not_found(id))?;
        let name = claim.name();
        self.ensure_sees(caller, "WithdrawClaim", &name, &claim.region)?;
        if claim.etag() != etag {
            return Err(Problem::etag_mismatch(&name));
        }
        let from = claim.state;
        if !matches!(
            from,
            ClaimState::Proposed | ClaimState::Rejected | ClaimState::PendingReview | ClaimState::Approved
        ) {
            return Err(Problem::new(
                Code::FailedPrecondition,
                ErrorReason::StateConflict,
                format!(
                    "{name} is {}; only a claim not in a batch may be withdrawn",
                    from.as_str()
                ),
                "该申请已进入发放批次或已发放，不能撤回",
            ));
        }
        if from == ClaimState::Approved {
            let fund_id = claim.fund_id.clone().ok_or_else(Problem::internal)?;
            self.release_reservation(unit.tx(), &fund_id, &claim, claim.amount, reason, &caller.subject, now)
                .await?;
        }
        store::vacate(unit.tx(), &claim.id).await?;
        let read_revision = claim.revision;
        claim.state = ClaimState::Withdrawn;
        claim.updated = now;
        if !store::update_claim(unit.tx(), &claim, from, read_revision, None).await? {
            return Err(Problem::etag_mismatch(&name));
        }
        let claim = store::get_claim(unit.tx(), id).await?.ok_or_else(Problem::internal)?;
        publish(&mut unit, ClaimChangeKind::Withdrawn, &claim).await?;
        unit.commit(AuditEntry::by(caller, &method("WithdrawClaim"), name, now).in_region(&claim.region))
            .await?;
        Ok(claim)
    }
}

impl Subsidy {
    /// ReevaluateClaim: a rejected, waiting or approved claim decided again under the version in
    /// force for its period now, with identity's facts as they are now (a correction, a new
    /// version). The old decision is kept; an approved claim whose amount changes goes back to
    /// review, one now rejected gives its reservation back.
    pub async fn reevaluate_claim(
        &self,
        caller: &Principal,
        call: &CallContext,
        id: &str,
        note: &str,
        etag: &str,
    ) -> Result<StoredClaim, Problem> {
        let read = {
            let mut conn = self.db().acquire().await?;
            store::get_claim(&mut conn, id)
                .await?
                .ok_or_else(|| claim_not_found(id))?
        };
        self.ensure_sees(caller, "ReevaluateClaim", &read.name(), &read.region)?;
        let payload = read.payload.clone();
        let gathered = self
            .gather_for_decision(caller, call, "ReevaluateClaim", &payload)
            .await?;
        let mut unit = write::begin_unkeyed(self.db(), self.now()).await?;
        let now = unit.now();
        store::lock_subject(unit.tx(), self.db().backend(), &payload.subject_key()).await?;
        let mut claim = store::get_claim(unit.tx(), id)
            .await?
            .ok_or_else(|| claim_not_found(id))?;
        let name = claim.name();
        if claim.etag() != etag {
            return Err(Problem::etag_mismatch(&name));
        }
        let from = claim.state;
        if !matches!(
            from,
            ClaimState::Rejected | ClaimState::PendingReview | ClaimState::Approved
        ) {
            return Err(Problem::new(
                Code::FailedPrecondition,
                ErrorReason::StateConflict,
                format!(
                    "{name} is {}; only a rejected, waiting or approved claim is decided again",
                    from.as_str()
                ),
                "该申请已进入发放或已办结，不能重新核定",
            ));
        }
        // Out of the way first: the claim's own periods and amount must not count against it.
        let old_amount = claim.amount;
        let old_fund = claim.fund_id.clone();
        let read_revision = claim.revision;
        claim.state = ClaimState::Rejected;
        if !store::update_claim(unit.tx(), &claim, from, read_revision, None).await? {
            return Err(Problem::etag_mismatch(&name));
        }
        store::vacate(unit.tx(), &claim.id).await?;
        if from == ClaimState::Approved
            && let Some(fund_id) = &old_fund
        {
            self.release_reservation(unit.tx(), fund_id, &claim, old_amount, note, &caller.subject, now)
                .await?;
        }

        let previous = claim.decision.clone();
        claim.reviews.clear();
        claim.review_cause = None;
        claim.required_reviews = 0;
        claim.updated = now;
        let approved_month = self
            .decide_into(unit.tx(), &gathered, &mut claim, &mut Reads::default())
            .await?;
        claim.earlier_decisions.push(previous);
        // A different amount on a claim approved before goes back to a reviewer.
        if from == ClaimState::Approved && claim.decision.outcome == Outcome::Eligible && claim.amount != old_amount {
            claim.state = ClaimState::PendingReview;
            claim.review_cause = Some(ReviewCause::Reevaluated);
            claim.required_reviews = claim.required_reviews.max(1);
        }
        if claim.state == ClaimState::Approved
            && let Some(fund_id) = claim.fund_id.clone()
        {
            self.reserve(unit.tx(), &fund_id, &claim, &caller.subject, now).await?;
        }
        if !store::update_claim(
            unit.tx(),
            &claim,
            ClaimState::Rejected,
            read_revision + 1,
            approved_month.as_deref(),
        )
        .await?
        {
            return Err(Problem::etag_mismatch(&name));
        }
        let claim = store::get_claim(unit.tx(), id).await?.ok_or_else(Problem::internal)?;
        publish(&mut unit, ClaimChangeKind::Reevaluated, &claim).await?;
        unit.commit(AuditEntry::by(caller, &method("ReevaluateClaim"), name, now).in_region(&claim.region))
            .await?;
        Ok(claim)
    }

    /// Gives a claim's reservation back to the fund, with its journal entry.
    #[allow(clippy::too_many_arguments)]
    async fn release_reservation(
        &self,
        tx: &mut AnyConnection,
        fund_id: &str,
        claim: &StoredClaim,
        amount: i64,
        document: &str,
        subject: &str,
        now: time::OffsetDateTime,
    ) -> Result<(), Problem> {
        if amount == 0 {
            return Ok(());
        }
        if !store::release(tx, fund_id, amount).await? {
            tracing::error!(claim = %claim.name(), "an approved claim's reservation is missing from its fund");
            return Err(Problem::internal());
        }
        store::append_entry(
            tx,
            &LedgerEntry {
                fund_id: fund_id.to_string(),
                seq: 0,
                kind: "release".into(),
                debit: account::AVAILABLE.into(),
                credit: account::RESERVED.into(),
                amount,
                claim_id: Some(claim.id.clone()),
                batch_id: None,
                document: document.to_string(),
                entry_date: self.today(),
                subject: subject.to_string(),
                recorded: now,
            },
        )
        .await?;
        Ok(())
    }
}
