//! What a submitting service (posts, work relief, job matching) asks of subsidy payment, and
//! only that: the facts a policy takes from the claim, a dry run, claims sent in one
//! `SubmitClaims` stream, and the claim feed (`WatchClaimChanges`) their outcomes come back on.
//! Subsidy payment's contract stops here; a service sees [`ClaimLine`], [`LineAnswer`] and
//! [`ClaimOutcome`].

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bangfu_proto::common::v1 as common;
use bangfu_proto::subsidy::v1 as sub;
use bangfu_proto::subsidy::v1::subsidy_service_client::SubsidyServiceClient;
use time::{Date, OffsetDateTime};
use tokio_stream::StreamExt;

use crate::error::Problem;
use crate::follow::{Feed, FeedStream, Followed};
use crate::peers::{CallContext, Peer, PeerError, Retry};
use crate::wire::date_to_wire;

/// Lines per SubmitClaims message (the contract's limit).
const LINES_PER_MESSAGE: usize = 1000;

/// A value a service gives a claim; sent only under names the policy's version declares.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub enum FactValue {
    Integer(i64),
    Money(i64),
    Boolean(bool),
    Text(String),
    Date(String),
    /// A 12-digit division code.
    Region(String),
}

/// A claim's person as a resource name, "persons/{id}"; empty for a claim about an organization
/// alone (an award to a carrier), which names no person.
pub fn claim_person_name(person_id: &str) -> String {
    if person_id.is_empty() {
        String::new()
    } else {
        format!("persons/{person_id}")
    }
}

/// An organization the money goes to (an HR agency, a workshop), by its registration.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OrganizationPayee {
    pub credit_code: String,
    pub display_name: String,
    /// 12 digits.
    pub region: String,
}

/// One claim of facts, as a submitting service keeps it.
#[derive(Debug, Clone)]
pub struct ClaimLine {
    /// The service's own line number, echoed in logs.
    pub line_reference: String,
    /// The policy's code in subsidy payment's catalog.
    pub policy: String,
    pub person_id: String,
    pub first: Date,
    pub last: Date,
    pub facts: Vec<(String, FactValue)>,
    /// Who is paid when not the person (policies whose payee is an organization).
    pub organization: Option<OrganizationPayee>,
    /// The claim source's reference (the idempotency key with the system); empty for a dry run.
    pub reference: String,
}

/// What subsidy payment answered for one line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LineAnswer {
    /// Stored (new or existing): the claim and its decision, as the claim feed will tell it
    /// (`Granted` or `Rejected`), so the submitter can record both at once.
    Claim(ClaimOutcome),
    /// Refused with nothing stored: the reason code and message, and whether the same line may
    /// succeed later unchanged (then it stays pending).
    Refused { message: String, retryable: bool },
}

/// How long the facts a policy takes are remembered: a payroll run asks once per policy and
/// month, not once per payroll; a version published meanwhile is seen within a minute.
const FACT_NAMES_TTL: Duration = Duration::from_secs(60);

/// The names of the facts a version takes from the claim; None: no version in force.
type FactNames = Option<Vec<String>>;

/// Fact names by policy and day, with when they were read.
type FactNamesCache = HashMap<(String, Date), (Instant, FactNames)>;

/// Subsidy payment as one submitting system (its claim source system, e.g. "work-relief").
#[derive(Debug, Clone)]
pub struct SubsidyClaims {
    peer: Peer,
    system: &'static str,
    fact_names: Arc<Mutex<FactNamesCache>>,
}

impl SubsidyClaims {
    pub fn new(peer: Peer, system: &'static str) -> Self {
        Self {
            peer,
            system,
            fact_names: Arc::default(),
        }
    }

    /// The names of the facts the policy's published version in force on `day` takes from the
    /// submitter (where two overlap, the later version, as subsidy payment decides); None when
    /// subsidy payment's catalog has no such policy, or no version covers the day.
    pub async fn claim_fact_names(
        &self,
        call: &CallContext,
        policy: &str,
        day: Date,
    ) -> Result<Option<Vec<String>>, Problem> {
        let key = (policy.to_string(), day);
        let remembered = self
            .fact_names
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .get(&key)
            .filter(|(at, _)| at.elapsed() < FACT_NAMES_TTL)
            .map(|(_, names)| names.clone());
        if let Some(names) = remembered {
            return Ok(names);
        }
        let names = self.read_fact_names(call, policy, day).await?;
        // A policy not (yet) in force is asked again next time: it may be published any minute.
        if names.is_some() {
            let mut cache = self.fact_names.lock().unwrap_or_else(|p| p.into_inner());
            if cache.len() > 1_000 {
                cache.clear();
            }
            cache.insert(key, (Instant::now(), names.clone()));
        }
        Ok(names)
    }

    async fn read_fact_names(&self, call: &CallContext, policy: &str, day: Date) -> Result<FactNames, Problem> {
        let request = sub::ListPolicyVersionsRequest {
            parent: format!("policies/{policy}"),
            page_size: 1000,
            page_token: String::new(),
        };
        let answer = self
            .peer
            .call(call, Retry::Safe, |channel| {
                let request = request.clone();
                async move { SubsidyServiceClient::new(channel).list_policy_versions(request).await }
            })
            .await;
        let response = match answer {
            Ok(response) => response,
            Err(PeerError::Refused { status, .. }) if status.code() == tonic::Code::NotFound => return Ok(None),
            Err(error) => return Err(error.into()),
        };
        let wire_day = date_to_wire(day);
        let key = |d: &common::Date| (d.year, d.month, d.day);
        let covering = response
            .versions
            .into_iter()
            .filter(|v| v.state == sub::PolicyVersionState::Published as i32)
            .filter(|v| v.valid_from.as_ref().is_some_and(|from| key(from) <= key(&wire_day)))
            .filter(|v| v.valid_to.as_ref().is_none_or(|to| key(&wire_day) <= key(to)))
            .max_by_key(|v| v.version);
        Ok(covering.map(|version| {
            version
                .facts
                .iter()
                .filter(|f| f.source == sub::FactSource::Claim as i32)
                .map(|f| f.name.clone())
                .collect()
        }))
    }

    /// A claim's state as subsidy payment names it ("BATCHED", "PAID"…), acting for the caller;
    /// None when the caller may not see it or it does not exist.
    pub async fn claim_state(&self, call: &CallContext, claim: &str) -> Result<Option<String>, Problem> {
        let request = sub::GetClaimRequest {
            name: claim.to_string(),
        };
        let answer = self
            .peer
            .call(call, Retry::Safe, |channel| {
                let request = request.clone();
                async move { SubsidyServiceClient::new(channel).get_claim(request).await }
            })
            .await;
        match answer {
            Ok(response) => Ok(response.claim.map(|c| {
                let state = c.state();
                state.as_str_name().trim_start_matches("CLAIM_STATE_").to_string()
            })),
            Err(PeerError::Refused { status, .. }) if status.code() == tonic::Code::NotFound => Ok(None),
            Err(error) => Err(error.into()),
        }
    }

    /// Decides a stored claim again (ReevaluateClaim at the etag read now), acting for the
    /// caller: the reasons it is still rejected, empty when it is granted now.
    pub async fn reevaluate(&self, call: &CallContext, claim: &str, note: &str) -> Result<Vec<String>, Problem> {
        let read = sub::GetClaimRequest {
            name: claim.to_string(),
        };
        let current = self
            .peer
            .call(call, Retry::Safe, |channel| {
                let read = read.clone();
                async move { SubsidyServiceClient::new(channel).get_claim(read).await }
            })
            .await?
            .claim
            .ok_or_else(Problem::internal)?;
        let request = sub::ReevaluateClaimRequest {
            name: claim.to_string(),
            note: note.to_string(),
            etag: current.etag,
        };
        let decided = self
            .peer
            .call(call, Retry::Safe, |channel| {
                let request = request.clone();
                async move { SubsidyServiceClient::new(channel).reevaluate_claim(request).await }
            })
            .await?
            .claim
            .and_then(|c| c.decision)
            .ok_or_else(Problem::internal)?;
        if decided.outcome == sub::DecisionOutcome::Eligible as i32 {
            return Ok(Vec::new());
        }
        Ok(decided
            .rejection_reasons
            .iter()
            .map(|r| format!("{}: {}", rejection_code(r.reason), r.message))
            .collect())
    }

    /// Subsidy payment's dry run of a claim: the reasons it would refuse or reject it
    /// ("CAP_REACHED: …"), empty when it would grant it. Subsidy payment unreachable is an error.
    pub async fn evaluate(&self, call: &CallContext, claim: &ClaimLine) -> Result<Vec<String>, Problem> {
        let request = sub::EvaluateClaimRequest {
            claim: Some(self.claim_to_wire(claim)),
        };
        let answer = self
            .peer
            .call(call, Retry::Safe, |channel| {
                let request = request.clone();
                async move { SubsidyServiceClient::new(channel).evaluate_claim(request).await }
            })
            .await;
        let response = match answer {
            Ok(response) => response,
            Err(PeerError::Refused { status, .. })
                if matches!(
                    status.code(),
                    tonic::Code::FailedPrecondition | tonic::Code::InvalidArgument
                ) =>
            {
                let reason = crate::error::reason_of(&status).unwrap_or_default();
                return Ok(vec![format!("{reason}: {}", status.message())]);
            }
            Err(error) => return Err(error.into()),
        };
        let Some(decision) = response.decision else {
            return Ok(Vec::new());
        };
        if decision.outcome == sub::DecisionOutcome::Eligible as i32 {
            return Ok(Vec::new());
        }
        Ok(decision
            .rejection_reasons
            .iter()
            .map(|r| format!("{}: {}", rejection_code(r.reason), r.message))
            .collect())
    }

    /// Sends claims through one SubmitClaims stream and answers each line in order. Re-sending
    /// lines is safe: each claim's source makes it idempotent. Fewer answers than lines (the
    /// stream broke) leave the rest for the caller to send again.
    pub async fn submit(&self, call: &CallContext, claims: &[ClaimLine]) -> Result<Vec<LineAnswer>, Problem> {
        if claims.is_empty() {
            return Ok(Vec::new());
        }
        let messages: Vec<sub::SubmitClaimsRequest> = claims
            .chunks(LINES_PER_MESSAGE)
            .map(|chunk| sub::SubmitClaimsRequest {
                lines: chunk
                    .iter()
                    .map(|claim| sub::SubmitClaimsLine {
                        line_reference: claim.line_reference.clone(),
                        claim: Some(self.claim_to_wire(claim)),
                    })
                    .collect(),
            })
            .collect();
        let mut responses = self
            .peer
            .call(call, Retry::Safe, |channel| {
                let messages = messages.clone();
                async move {
                    SubsidyServiceClient::new(channel)
                        .submit_claims(tokio_stream::iter(messages))
                        .await
                }
            })
            .await?;
        let mut answers = Vec::with_capacity(claims.len());
        loop {
            let message = responses.message().await.map_err(|status| {
                Problem::from(PeerError::Refused {
                    service: self.peer.service().to_string(),
                    status,
                })
            })?;
            let Some(message) = message else { break };
            for result in message.results {
                answers.push(match result.error {
                    Some(error) if result.claim.is_empty() => LineAnswer::Refused {
                        message: format!("{}: {}", error.reason, error.message),
                        retryable: error.retryable,
                    },
                    _ => {
                        let rejected = result.outcome == sub::DecisionOutcome::Rejected as i32;
                        LineAnswer::Claim(ClaimOutcome {
                            claim: result.claim,
                            reference: String::new(),
                            kind: if rejected {
                                ClaimOutcomeKind::Rejected
                            } else {
                                ClaimOutcomeKind::Granted
                            },
                            amount_fen: result.amount.map(|m| m.fen).unwrap_or(0),
                            effective_date: None,
                            rejection_reasons: result.rejection_reasons.into_iter().map(rejection_code).collect(),
                        })
                    }
                });
            }
        }
        if answers.len() != claims.len() {
            tracing::warn!(
                sent = claims.len(),
                answered = answers.len(),
                "subsidy payment answered fewer lines than sent; the rest stay pending"
            );
        }
        Ok(answers)
    }

    fn claim_to_wire(&self, claim: &ClaimLine) -> sub::Claim {
        sub::Claim {
            policy: format!("policies/{}", claim.policy),
            person: claim_person_name(&claim.person_id),
            payee: Some(sub::Payee {
                payee: Some(match &claim.organization {
                    Some(organization) => sub::payee::Payee::Organization(sub::OrganizationPayee {
                        credit_code: organization.credit_code.clone(),
                        display_name: organization.display_name.clone(),
                        region: Some(common::RegionCode {
                            code: organization.region.clone(),
                            display_name: String::new(),
                        }),
                    }),
                    None => sub::payee::Payee::Person(format!("persons/{}", claim.person_id)),
                }),
            }),
            period: Some(common::Period {
                first_day: Some(date_to_wire(claim.first)),
                last_day: Some(date_to_wire(claim.last)),
            }),
            facts: claim
                .facts
                .iter()
                .map(|(name, value)| sub::Fact {
                    name: name.clone(),
                    value: Some(sub::FactValue {
                        value: Some(match value {
                            FactValue::Integer(v) => sub::fact_value::Value::IntegerValue(*v),
                            FactValue::Money(v) => sub::fact_value::Value::MoneyValue(common::Money { fen: *v }),
                            FactValue::Boolean(v) => sub::fact_value::Value::BooleanValue(*v),
                            FactValue::Text(v) => sub::fact_value::Value::TextValue(v.clone()),
                            FactValue::Date(v) => sub::fact_value::Value::DateValue(
                                crate::parameters::parse_date_text(v)
                                    .map(date_to_wire)
                                    .unwrap_or_default(),
                            ),
                            FactValue::Region(v) => sub::fact_value::Value::RegionCodeValue(v.clone()),
                        }),
                    }),
                })
                .collect(),
            // A dry run has no source; a submitted claim is keyed by its reference.
            source: (!claim.reference.is_empty()).then(|| sub::ClaimSource {
                system: self.system.into(),
                reference: claim.reference.clone(),
            }),
            note: String::new(),
            ..Default::default()
        }
    }
}

fn rejection_code(reason: i32) -> String {
    sub::RejectionReason::try_from(reason)
        .map(|reason| reason.as_str_name().trim_start_matches("REJECTION_REASON_").to_string())
        .unwrap_or_default()
}

/// What happened to one of the service's claims, as its feed tells it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClaimOutcome {
    /// "claims/{claim}".
    pub claim: String,
    /// The claim source's reference the service gave it.
    pub reference: String,
    pub kind: ClaimOutcomeKind,
    /// The amount granted, or paid for `Paid`.
    pub amount_fen: i64,
    /// The paid date for `Paid`; the change's business date otherwise.
    pub effective_date: Option<Date>,
    /// Every rejection reason ("CAP_REACHED"), for `Rejected`.
    pub rejection_reasons: Vec<String>,
}

/// The outcomes a submitter acts on; the feed's other kinds are `Other`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ClaimOutcomeKind {
    /// Decided (or decided again) eligible.
    Granted,
    /// Decided (or decided again) rejected, or rejected by a reviewer.
    Rejected,
    Paid,
    PaymentFailed,
    Other,
}

/// Subsidy payment's claim feed for one source system, read on the following service's own
/// account (a service token sees only its own system's claims).
pub struct ClaimChanges {
    peer: Peer,
    system: &'static str,
}

impl ClaimChanges {
    pub fn new(peer: Peer, system: &'static str) -> Self {
        Self { peer, system }
    }
}

impl Feed for ClaimChanges {
    type Event = ClaimOutcome;

    async fn open(&self, after: String) -> Result<FeedStream<Self::Event>, Problem> {
        use sub::watch_claim_changes_response::Item;

        let service = self.peer.service().to_string();
        let system = self.system.to_string();
        let stream = self
            .peer
            .open_stream(|channel| async move {
                SubsidyServiceClient::new(channel)
                    .watch_claim_changes(sub::WatchClaimChangesRequest {
                        after_cursor: after,
                        start_at_head: false,
                        source_system: system,
                    })
                    .await
            })
            .await?;
        let items = stream.map(move |answer: Result<sub::WatchClaimChangesResponse, tonic::Status>| {
            let refused = |status| {
                Problem::from(PeerError::Refused {
                    service: service.clone(),
                    status,
                })
            };
            match answer.map(|response| response.item) {
                Ok(Some(Item::Change(change))) => Ok(Followed::Event {
                    cursor: change.cursor.clone(),
                    behind: 0,
                    recorded: change
                        .record_time
                        .as_ref()
                        .and_then(|t| OffsetDateTime::from_unix_timestamp(t.seconds).ok()),
                    event: outcome_from(change),
                }),
                Ok(Some(Item::Heartbeat(beat))) => Ok(Followed::Heartbeat { cursor: beat.cursor }),
                Ok(None) => Err(refused(tonic::Status::unknown(
                    "a feed item with neither a change nor a heartbeat",
                ))),
                Err(status) => Err(refused(status)),
            }
        });
        Ok(Box::pin(items))
    }
}

fn outcome_from(change: sub::ClaimChange) -> ClaimOutcome {
    use sub::ClaimChangeKind as K;
    let rejected = change.outcome == sub::DecisionOutcome::Rejected as i32;
    let kind = match change.kind() {
        K::Decided | K::Reevaluated if rejected => ClaimOutcomeKind::Rejected,
        K::Decided | K::Reevaluated => ClaimOutcomeKind::Granted,
        K::Reviewed if change.state == sub::ClaimState::Rejected as i32 => ClaimOutcomeKind::Rejected,
        K::Paid => ClaimOutcomeKind::Paid,
        K::PaymentFailed => ClaimOutcomeKind::PaymentFailed,
        _ => ClaimOutcomeKind::Other,
    };
    ClaimOutcome {
        claim: change.claim,
        reference: change.source.map(|s| s.reference).unwrap_or_default(),
        kind,
        amount_fen: change.amount.map(|m| m.fen).unwrap_or(0),
        effective_date: crate::identity_reader::date(change.effective_date.as_ref()),
        rejection_reasons: change.rejection_reasons.into_iter().map(rejection_code).collect(),
    }
}

/// What a submitting service does with a page of its claims' outcomes (in feed order), inside
/// the follower's transaction, at the clock's time: a page at once, so that a service can read
/// what the page touches in one statement instead of one per outcome.
pub type OutcomeHandler =
    for<'a> fn(
        &'a mut sqlx::AnyConnection,
        &'a [&'a ClaimOutcome],
        OffsetDateTime,
    ) -> std::pin::Pin<Box<dyn std::future::Future<Output = Result<(), Problem>> + Send + 'a>>;

/// A submitting service's effect of its claims' outcomes.
pub struct OutcomeFollower {
    clock: crate::clock::Clock,
    handle: OutcomeHandler,
}

impl crate::follow::Apply<ClaimOutcome> for OutcomeFollower {
    async fn apply(&self, tx: &mut sqlx::AnyConnection, outcome: &ClaimOutcome) -> Result<(), Problem> {
        (self.handle)(tx, &[outcome], self.clock.now()).await
    }

    async fn apply_all(&self, tx: &mut sqlx::AnyConnection, outcomes: &[&ClaimOutcome]) -> Result<(), Problem> {
        (self.handle)(tx, outcomes, self.clock.now()).await
    }
}

/// The follower of subsidy payment's claim feed for one submitting service's claims (those of
/// `system`), kept under `name` (e.g. "jobs/subsidy-claims"), handing each outcome to `handle`.
pub fn outcome_follower(
    name: &str,
    db: crate::db::Database,
    subsidy: Peer,
    system: &'static str,
    clock: crate::clock::Clock,
    handle: OutcomeHandler,
) -> crate::follow::Follower<ClaimChanges, OutcomeFollower> {
    crate::follow::Follower::new(
        name,
        db,
        ClaimChanges::new(subsidy, system),
        OutcomeFollower { clock, handle },
    )
}
