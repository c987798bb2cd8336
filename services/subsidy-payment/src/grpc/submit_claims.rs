//! SubmitClaims: chunks of lines in, one answer per chunk back, in order. A line refused is
//! reported with a reason a clerk can act on, and whether sending it again later may succeed;
//! the other lines go on. Lines are idempotent by their claim's source, so a stream re-sent
//! after a crash writes nothing twice.

use std::sync::Arc;

use bangfu_platform::auth::Principal;
use bangfu_platform::error::{ErrorReason, Problem};
use bangfu_platform::peers::CallContext;
use bangfu_platform::server::Shutdown;
use bangfu_platform::streams;
use bangfu_proto::subsidy::v1 as pb;
use tonic::Streaming;

use super::{BoxStream, wire};
use crate::app::{Submission, Subsidy};

/// Lines one message may carry.
const LINES_PER_MESSAGE: usize = 1000;

/// Refusals a later retry of the same line may get past: identity or the database
/// unreachable, no version in force yet, a fund not yet there or exhausted.
fn retryable(problem: &Problem) -> bool {
    matches!(
        problem.reason,
        ErrorReason::PeerUnavailable
            | ErrorReason::DatabaseUnavailable
            | ErrorReason::Timeout
            | ErrorReason::PolicyNotInForce
            | ErrorReason::BudgetExhausted
            | ErrorReason::FundMissing
            | ErrorReason::StateConflict
    )
}

pub(super) fn line_error(problem: &Problem) -> pb::LineError {
    pb::LineError {
        reason: problem.reason_code().to_string(),
        field: problem.violations.first().map(|v| v.field.clone()).unwrap_or_default(),
        message: problem.message_zh.clone(),
        retryable: retryable(problem),
    }
}

pub(super) fn start(
    subsidy: Arc<Subsidy>,
    caller: Arc<Principal>,
    call: CallContext,
    inbound: Streaming<pb::SubmitClaimsRequest>,
    shutdown: Shutdown,
) -> BoxStream<pb::SubmitClaimsResponse> {
    streams::answer_each(inbound, shutdown, move |request| {
        let (subsidy, caller, call) = (subsidy.clone(), caller.clone(), call.clone());
        async move { answer(&subsidy, &caller, &call, request).await }
    })
}

async fn answer(
    subsidy: &Subsidy,
    caller: &Principal,
    call: &CallContext,
    request: pb::SubmitClaimsRequest,
) -> Result<pb::SubmitClaimsResponse, Problem> {
    if request.lines.len() > LINES_PER_MESSAGE {
        return Err(Problem::invalid_field(
            ErrorReason::FieldInvalid,
            "lines",
            format!("at most {LINES_PER_MESSAGE} lines per message"),
            format!("每条消息最多{LINES_PER_MESSAGE}笔申请"),
        ));
    }
    let references: Vec<String> = request.lines.iter().map(|l| l.line_reference.clone()).collect();
    let parsed: Vec<Result<Submission, Problem>> = request
        .lines
        .iter()
        .map(|line| {
            let reference = line.line_reference.trim();
            if reference.is_empty() || reference.chars().count() > 64 {
                return Err(Problem::invalid_field(
                    ErrorReason::FieldInvalid,
                    "line_reference",
                    "must be 1 to 64 characters",
                    "行号应为1至64个字符",
                ));
            }
            let (payload, source) = wire::claim_payload(line.claim.as_ref())?;
            let source = source.ok_or_else(|| Problem::required("claim.source", "申请来源"))?;
            Ok(Submission { source, payload })
        })
        .collect();
    let results = subsidy.submit_claims(caller, call, parsed).await?;
    Ok(pb::SubmitClaimsResponse {
        results: references
            .into_iter()
            .zip(results)
            .map(|(line_reference, result)| match result {
                Ok(submitted) => {
                    let claim = &submitted.claim;
                    let decision = wire::decision_to_wire(&claim.decision, &claim.payload.policy_code);
                    pb::SubmitClaimsLineResult {
                        line_reference,
                        claim: claim.name(),
                        state: wire::claim_state_to_wire(claim.state),
                        outcome: decision.outcome,
                        amount: decision.amount,
                        policy_version: decision.policy_version,
                        rejection_reasons: decision.rejection_reasons.iter().map(|r| r.reason).collect(),
                        existing: submitted.existing,
                        error: None,
                    }
                }
                Err(problem) => pb::SubmitClaimsLineResult {
                    line_reference,
                    error: Some(line_error(&problem)),
                    ..Default::default()
                },
            })
            .collect(),
    })
}
