//! What posts ask of the other services, and only that: persons from identity (the platform's
//! reader), holders' employment recorded in identity, and subsidy payment's catalog, dry run
//! and claims. The other contracts' types stop here.

use bangfu_platform::error::Problem;
use bangfu_platform::identity_reader::IdentityReader;
use bangfu_platform::peers::{CallContext, Peer, PeerError, Retry};
use bangfu_platform::wire::date_to_wire;
use bangfu_proto::common::v1 as common;
use bangfu_proto::identity::v1 as id;
use bangfu_proto::identity::v1::identity_service_client::IdentityServiceClient;
use bangfu_proto::subsidy::v1 as sub;
use bangfu_proto::subsidy::v1::subsidy_service_client::SubsidyServiceClient;
use time::Date;

/// The claim source system posts' claims carry.
pub const CLAIM_SYSTEM: &str = "welfare-post";

/// Lines per SubmitClaims message (the contract's limit).
const LINES_PER_MESSAGE: usize = 1000;

/// The other services, as configured.
#[derive(Debug, Clone)]
pub struct Peers {
    pub identity: IdentityReader,
    identity_peer: Peer,
    subsidy: Peer,
}

/// A value posts give a claim; sent only under names the policy's version declares.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub enum FactValue {
    Integer(i64),
    Money(i64),
    Boolean(bool),
    Date(String),
}

/// One holder's month as a claim of facts.
#[derive(Debug, Clone)]
pub struct MonthClaim {
    pub line_reference: String,
    pub policy: String,
    pub person_id: String,
    pub first: Date,
    pub last: Date,
    pub facts: Vec<(String, FactValue)>,
    pub reference: String,
}

/// What subsidy payment answered for one line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LineAnswer {
    /// Stored (new or existing): the claim's name.
    Claim(String),
    /// Refused with nothing stored: the reason code and message, and whether the same line may
    /// succeed later unchanged (then it stays pending).
    Refused { message: String, retryable: bool },
}

impl Peers {
    pub fn new(identity: Peer, subsidy: Peer) -> Self {
        Self {
            identity: IdentityReader::new(identity.clone()),
            identity_peer: identity,
            subsidy,
        }
    }

    /// Records in identity that the holder is on a public-welfare post for the contract's term,
    /// acting for the clerk; the request id makes a retry (or a re-run) record it once.
    pub async fn record_post_employment(
        &self,
        call: &CallContext,
        person_id: &str,
        village: &str,
        first: Date,
        last: Date,
        request_id: &str,
    ) -> Result<(), Problem> {
        self.record_employment(
            call,
            person_id,
            common::EmploymentStatus::PublicWelfarePost,
            village,
            first,
            Some(last),
            request_id,
        )
        .await
    }

    /// Records that the holder is off the post from `from` to `until` (the contract's end), so
    /// identity no longer counts them as employed on it.
    pub async fn record_post_exit(
        &self,
        call: &CallContext,
        person_id: &str,
        from: Date,
        until: Date,
        request_id: &str,
    ) -> Result<(), Problem> {
        self.record_employment(
            call,
            person_id,
            common::EmploymentStatus::Unemployed,
            "",
            from,
            Some(until),
            request_id,
        )
        .await
    }

    #[allow(clippy::too_many_arguments)]
    async fn record_employment(
        &self,
        call: &CallContext,
        person_id: &str,
        status: common::EmploymentStatus,
        work_region: &str,
        first: Date,
        last: Option<Date>,
        request_id: &str,
    ) -> Result<(), Problem> {
        let request = id::RecordEmploymentRequest {
            person: format!("persons/{person_id}"),
            record: Some(id::EmploymentRecord {
                name: String::new(),
                status: status as i32,
                employer: if status == common::EmploymentStatus::PublicWelfarePost {
                    "乡村公益性岗位".into()
                } else {
                    String::new()
                },
                work_region: work_region.to_string(),
                start_date: Some(date_to_wire(first)),
                end_date: last.map(date_to_wire),
                reporting_system: "乡村公益性岗位管理".into(),
            }),
            request_id: request_id.to_string(),
        };
        self.identity_peer
            .call(call, Retry::Safe, |channel| {
                let request = request.clone();
                async move { IdentityServiceClient::new(channel).record_employment(request).await }
            })
            .await?;
        Ok(())
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
        let request = sub::ListPolicyVersionsRequest {
            parent: format!("policies/{policy}"),
            page_size: 1000,
            page_token: String::new(),
        };
        let answer = self
            .subsidy
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

    /// Subsidy payment's dry run of a month's claim: the reasons it would refuse or reject it
    /// ("CAP_REACHED: …"), empty when it would grant it. Subsidy payment unreachable is an error.
    pub async fn evaluate(&self, call: &CallContext, claim: &MonthClaim) -> Result<Vec<String>, Problem> {
        let request = sub::EvaluateClaimRequest {
            claim: Some(claim_to_wire(claim)),
        };
        let answer = self
            .subsidy
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
                let reason = bangfu_platform::error::reason_of(&status).unwrap_or_default();
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
            .map(|r| {
                let code = sub::RejectionReason::try_from(r.reason)
                    .map(|reason| reason.as_str_name().trim_start_matches("REJECTION_REASON_").to_string())
                    .unwrap_or_default();
                format!("{code}: {}", r.message)
            })
            .collect())
    }

    /// Sends claims through one SubmitClaims stream and answers each line in order. Re-sending
    /// lines is safe: each claim's source (assignment + month) makes it idempotent.
    pub async fn submit(&self, call: &CallContext, claims: &[MonthClaim]) -> Result<Vec<LineAnswer>, Problem> {
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
                        claim: Some(claim_to_wire(claim)),
                    })
                    .collect(),
            })
            .collect();
        let mut responses = self
            .subsidy
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
                    service: self.subsidy.service().to_string(),
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
                    _ => LineAnswer::Claim(result.claim),
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
}

fn claim_to_wire(claim: &MonthClaim) -> sub::Claim {
    sub::Claim {
        policy: format!("policies/{}", claim.policy),
        person: format!("persons/{}", claim.person_id),
        payee: Some(sub::Payee {
            payee: Some(sub::payee::Payee::Person(format!("persons/{}", claim.person_id))),
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
                        FactValue::Date(v) => sub::fact_value::Value::DateValue(
                            bangfu_platform::parameters::parse_date_text(v)
                                .map(date_to_wire)
                                .unwrap_or_default(),
                        ),
                    }),
                }),
            })
            .collect(),
        // A dry run has no source; a submitted month is keyed by its assignment and month.
        source: (!claim.reference.is_empty()).then(|| sub::ClaimSource {
            system: CLAIM_SYSTEM.into(),
            reference: claim.reference.clone(),
        }),
        note: String::new(),
        ..Default::default()
    }
}

/// The claim source reference of a holder's month: assignment + month.
pub fn month_reference(assignment_id: &str, month: &str) -> String {
    format!("assignments/{assignment_id}/months/{month}")
}
