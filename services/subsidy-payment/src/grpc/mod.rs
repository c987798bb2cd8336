//! The wire edge of subsidy payment: each RPC takes its caller, parses the message into domain
//! values (`wire`), runs the use case in `app`, and maps the answer back.

mod payee_accounts;
mod payment_files;
pub mod policy_files;
mod submit_claims;
mod wire;

use std::pin::Pin;
use std::sync::Arc;

use bangfu_platform::auth::caller;
use bangfu_platform::config::ServerConfig;
use bangfu_platform::error::{ErrorReason, Problem};
use bangfu_platform::idempotency::RequestKey;
use bangfu_platform::outbox::{FeedItem, Position, Start};
use bangfu_platform::paging;
use bangfu_platform::peers::CallContext;
use bangfu_platform::service_rpc;
use bangfu_platform::wire::text;
use bangfu_proto::subsidy::v1 as pb;
use bangfu_proto::subsidy::v1::subsidy_service_server::{SubsidyService, SubsidyServiceServer};
use tokio_stream::Stream;
use tonic::{Request, Response, Status};

use crate::app::{PolicyQuery, Submission, Subsidy, method};
use crate::store::ClaimFilter;

type BoxStream<T> = Pin<Box<dyn Stream<Item = Result<T, Status>> + Send>>;

/// The gRPC face of [`Subsidy`].
#[derive(Clone)]
pub struct SubsidyServer {
    subsidy: Arc<Subsidy>,
}

impl SubsidyServer {
    /// The service with the configured message limits.
    pub fn shared(subsidy: Arc<Subsidy>, config: &ServerConfig) -> SubsidyServiceServer<Self> {
        SubsidyServiceServer::new(Self { subsidy })
            .max_decoding_message_size(config.max_receive_bytes)
            .max_encoding_message_size(config.max_send_bytes)
    }
}

/// The request key of a create, bound to the whole message.
fn request_key(
    subject: &str,
    name: &str,
    request_id: &str,
    message: &impl prost::Message,
) -> Result<Option<RequestKey>, Problem> {
    RequestKey::of_message(subject, &method(name), request_id, message)
}

/// The number a page token carries after: 0 for the first page.
fn number_after(token: &str, fingerprint: &str) -> Result<i64, Problem> {
    match paging::decode_token(token, fingerprint)? {
        None => Ok(0),
        Some(cursor) => cursor
            .first()
            .and_then(|n| n.parse().ok())
            .ok_or_else(paging::token_invalid),
    }
}

/// The (key, id) pair a page token carries after: None for the first page.
fn pair_after(token: &str, fingerprint: &str) -> Result<Option<(String, String)>, Problem> {
    match paging::decode_token(token, fingerprint)? {
        None => Ok(None),
        Some(cursor) => match cursor.as_slice() {
            [key, id] => Ok(Some((key.clone(), id.clone()))),
            _ => Err(paging::token_invalid()),
        },
    }
}

#[tonic::async_trait]
impl SubsidyService for SubsidyServer {
    async fn create_policy(
        &self,
        request: Request<pb::CreatePolicyRequest>,
    ) -> Result<Response<pb::CreatePolicyResponse>, Status> {
        let caller = caller(&request)?;
        let request = request.into_inner();
        let key = request_key(&caller.subject, "CreatePolicy", &request.request_id, &request)?;
        let policy = wire::policy(request.policy.as_ref())?;
        let version = wire::policy_version(request.version.as_ref())?;
        let created = self
            .subsidy
            .create_policy(&caller, key, policy, version, request.validate_only)
            .await?;
        let (policy, version) = wire::created_version_to_wire(&created);
        Ok(Response::new(pb::CreatePolicyResponse {
            policy,
            version,
            example_results: wire::example_results_to_wire(&created.examples),
        }))
    }

    async fn get_policy(
        &self,
        request: Request<pb::GetPolicyRequest>,
    ) -> Result<Response<pb::GetPolicyResponse>, Status> {
        let request = request.into_inner();
        let code = wire::resource_id("name", &request.name, "policies")?;
        let (policy, latest, in_force) = self.subsidy.get_policy(&code).await?;
        Ok(Response::new(pb::GetPolicyResponse {
            policy: Some(wire::policy_to_wire(&policy, latest.as_ref(), in_force.as_ref())),
            in_force_version: in_force.as_ref().map(wire::version_to_wire),
        }))
    }

    async fn list_policies(
        &self,
        request: Request<pb::ListPoliciesRequest>,
    ) -> Result<Response<pb::ListPoliciesResponse>, Status> {
        let request = request.into_inner();
        let size = paging::page_size(request.page_size, 100, 1000)?;
        let in_force_on = bangfu_platform::wire::optional_date("in_force_on", request.in_force_on.as_ref())?;
        let query = PolicyQuery {
            region_prefix: request.region_prefix.trim().to_string(),
            fund_source: (request.fund_source != 0)
                .then(|| wire::fund_source("fund_source", request.fund_source))
                .transpose()?,
            policy_group: request.policy_group.trim().to_string(),
            in_force_on,
        };
        let fingerprint = paging::fingerprint(&[
            &query.region_prefix,
            &request.fund_source.to_string(),
            &query.policy_group,
            &in_force_on.map(crate::domain::day_text).unwrap_or_default(),
        ]);
        let after = match paging::decode_token(&request.page_token, &fingerprint)? {
            None => String::new(),
            Some(cursor) => cursor.into_iter().next().ok_or_else(paging::token_invalid)?,
        };
        let listing = self.subsidy.list_policies(&query, &after, size).await?;
        Ok(Response::new(pb::ListPoliciesResponse {
            policies: listing
                .policies
                .iter()
                .map(|(p, latest, in_force)| wire::policy_to_wire(p, latest.as_ref(), in_force.as_ref()))
                .collect(),
            next_page_token: listing
                .next_after
                .map(|code| paging::encode_token(&fingerprint, &[code]))
                .unwrap_or_default(),
        }))
    }

    async fn create_policy_version(
        &self,
        request: Request<pb::CreatePolicyVersionRequest>,
    ) -> Result<Response<pb::CreatePolicyVersionResponse>, Status> {
        let caller = caller(&request)?;
        let request = request.into_inner();
        let key = request_key(&caller.subject, "CreatePolicyVersion", &request.request_id, &request)?;
        let code = wire::resource_id("parent", &request.parent, "policies")?;
        let version = wire::policy_version(request.version.as_ref())?;
        let created = self
            .subsidy
            .create_policy_version(&caller, key, &code, version, request.validate_only)
            .await?;
        Ok(Response::new(pb::CreatePolicyVersionResponse {
            version: created.version.as_ref().map(wire::version_to_wire),
            example_results: wire::example_results_to_wire(&created.examples),
        }))
    }

    async fn get_policy_version(
        &self,
        request: Request<pb::GetPolicyVersionRequest>,
    ) -> Result<Response<pb::GetPolicyVersionResponse>, Status> {
        let request = request.into_inner();
        let (code, number) = wire::version_ref("name", &request.name)?;
        let version = self.subsidy.get_policy_version(&code, number).await?;
        Ok(Response::new(pb::GetPolicyVersionResponse {
            version: Some(wire::version_to_wire(&version)),
        }))
    }

    async fn list_policy_versions(
        &self,
        request: Request<pb::ListPolicyVersionsRequest>,
    ) -> Result<Response<pb::ListPolicyVersionsResponse>, Status> {
        let request = request.into_inner();
        let code = wire::resource_id("parent", &request.parent, "policies")?;
        let size = paging::page_size(request.page_size, 100, 1000)?;
        let fingerprint = paging::fingerprint(&[&code]);
        let before = number_after(&request.page_token, &fingerprint)?;
        let mut versions = self
            .subsidy
            .list_policy_versions(
                &code,
                i32::try_from(before).map_err(|_| paging::token_invalid())?,
                size + 1,
            )
            .await?;
        let next_page_token = paging::next_page(&mut versions, size, &fingerprint, |v| vec![v.version.to_string()]);
        Ok(Response::new(pb::ListPolicyVersionsResponse {
            versions: versions.iter().map(wire::version_to_wire).collect(),
            next_page_token,
        }))
    }

    async fn publish_policy_version(
        &self,
        request: Request<pb::PublishPolicyVersionRequest>,
    ) -> Result<Response<pb::PublishPolicyVersionResponse>, Status> {
        let caller = caller(&request)?;
        let request = request.into_inner();
        let (code, number) = wire::version_ref("name", &request.name)?;
        let note = text("note", &request.note, 500, "发布说明")?;
        let version = self
            .subsidy
            .publish_policy_version(&caller, &code, number, &note)
            .await?;
        Ok(Response::new(pb::PublishPolicyVersionResponse {
            version: Some(wire::version_to_wire(&version)),
        }))
    }

    async fn create_fund(
        &self,
        request: Request<pb::CreateFundRequest>,
    ) -> Result<Response<pb::CreateFundResponse>, Status> {
        let caller = caller(&request)?;
        let request = request.into_inner();
        let key = request_key(&caller.subject, "CreateFund", &request.request_id, &request)?;
        let fund = request.fund.as_ref().ok_or_else(|| Problem::required("fund", "资金"))?;
        let region_prefix = fund.region_prefix.trim().to_string();
        if bangfu_platform::auth::RegionScope::parse(&region_prefix).is_none() || region_prefix == "*" {
            return Err(Problem::invalid_field(
                ErrorReason::FieldInvalid,
                "fund.region_prefix",
                "must be a division-code prefix of 2, 4, 6, 9 or 12 digits",
                "资金地区应为2、4、6、9或12位行政区划代码前缀",
            )
            .into());
        }
        if !(2000..=2100).contains(&fund.year) {
            return Err(Problem::invalid_field(
                ErrorReason::FieldInvalid,
                "fund.year",
                "must be a year",
                "预算年度无效",
            )
            .into());
        }
        let budget = fund.budget.as_ref().map(|m| m.fen).unwrap_or(0);
        if budget <= 0 || budget > 1_000_000_000_000 {
            return Err(Problem::invalid_field(
                ErrorReason::AmountOutOfRange,
                "fund.budget",
                "must be more than zero and at most 10 billion yuan",
                "预算金额应大于零且不超过100亿元",
            )
            .into());
        }
        let new = crate::app::NewFundRequest {
            display_name: text("fund.display_name", &fund.display_name, 100, "资金名称")?,
            fund_source: wire::fund_source("fund.fund_source", fund.fund_source)?,
            region_prefix,
            year: fund.year,
            budget_document: text("fund.budget_document", &fund.budget_document, 128, "预算指标文号")?,
            budget,
        };
        let fund = self.subsidy.create_fund(&caller, key, new).await?;
        Ok(Response::new(pb::CreateFundResponse {
            fund: Some(wire::fund_to_wire(&fund)),
        }))
    }

    async fn get_fund(&self, request: Request<pb::GetFundRequest>) -> Result<Response<pb::GetFundResponse>, Status> {
        let caller = caller(&request)?;
        let request = request.into_inner();
        let id = wire::resource_id("name", &request.name, "funds")?;
        let fund = self.subsidy.get_fund(&caller, &id).await?;
        Ok(Response::new(pb::GetFundResponse {
            fund: Some(wire::fund_to_wire(&fund)),
        }))
    }

    async fn list_funds(
        &self,
        request: Request<pb::ListFundsRequest>,
    ) -> Result<Response<pb::ListFundsResponse>, Status> {
        let caller = caller(&request)?;
        let request = request.into_inner();
        let size = paging::page_size(request.page_size, 100, 1000)?;
        let source = (request.fund_source != 0)
            .then(|| wire::fund_source("fund_source", request.fund_source))
            .transpose()?;
        let region_prefix = request.region_prefix.trim().to_string();
        let fingerprint = paging::fingerprint(&[
            &request.fund_source.to_string(),
            &region_prefix,
            &request.year.to_string(),
        ]);
        let after = match paging::decode_token(&request.page_token, &fingerprint)? {
            None => None,
            Some(cursor) => match cursor.as_slice() {
                [year, source, region, id] => Some((
                    year.parse().map_err(|_| paging::token_invalid())?,
                    source.clone(),
                    region.clone(),
                    id.clone(),
                )),
                _ => return Err(paging::token_invalid().into()),
            },
        };
        let listing = self
            .subsidy
            .list_funds(&caller, source, &region_prefix, request.year, after, size)
            .await?;
        let next_page_token = match (listing.more, listing.funds.last()) {
            (true, Some(last)) => paging::encode_token(
                &fingerprint,
                &[
                    last.year.to_string(),
                    last.fund_source.as_str().to_string(),
                    last.region_prefix.clone(),
                    last.id.clone(),
                ],
            ),
            _ => String::new(),
        };
        Ok(Response::new(pb::ListFundsResponse {
            funds: listing.funds.iter().map(wire::fund_to_wire).collect(),
            next_page_token,
        }))
    }

    async fn adjust_fund_budget(
        &self,
        request: Request<pb::AdjustFundBudgetRequest>,
    ) -> Result<Response<pb::AdjustFundBudgetResponse>, Status> {
        let caller = caller(&request)?;
        let request = request.into_inner();
        let key = request_key(&caller.subject, "AdjustFundBudget", &request.request_id, &request)?;
        let id = wire::resource_id("name", &request.name, "funds")?;
        let delta = request.amount.as_ref().map(|m| m.fen).unwrap_or(0);
        if delta == 0 || delta.abs() > 1_000_000_000_000 {
            return Err(Problem::invalid_field(
                ErrorReason::AmountOutOfRange,
                "amount",
                "must not be zero, and at most 10 billion yuan either way",
                "调整金额不能为零，且不超过100亿元",
            )
            .into());
        }
        let document = text("document", &request.document, 128, "预算调整文号")?;
        let etag = text("etag", &request.etag, 64, "版本标记")?;
        let (fund, entry) = self
            .subsidy
            .adjust_fund_budget(&caller, key, &id, delta, &document, &etag)
            .await?;
        Ok(Response::new(pb::AdjustFundBudgetResponse {
            fund: Some(wire::fund_to_wire(&fund)),
            entry: Some(wire::entry_to_wire(&entry)),
        }))
    }

    async fn list_ledger_entries(
        &self,
        request: Request<pb::ListLedgerEntriesRequest>,
    ) -> Result<Response<pb::ListLedgerEntriesResponse>, Status> {
        let caller = caller(&request)?;
        let request = request.into_inner();
        let id = wire::resource_id("parent", &request.parent, "funds")?;
        let size = paging::page_size(request.page_size, 100, 1000)?;
        let filter = crate::store::EntryFilter {
            kind: wire::ledger_kind(request.kind).unwrap_or("").to_string(),
            batch_id: if request.payment_batch.is_empty() {
                String::new()
            } else {
                wire::resource_id("payment_batch", &request.payment_batch, "paymentBatches")?
            },
            period: request
                .entry_period
                .as_ref()
                .map(|p| wire::period("entry_period", Some(p)))
                .transpose()?
                .map(|p| (crate::domain::day_text(p.first), crate::domain::day_text(p.last))),
        };
        let (first, last) = filter.period.clone().unwrap_or_default();
        let fingerprint = paging::fingerprint(&[&id, &filter.kind, &filter.batch_id, &first, &last]);
        let after = number_after(&request.page_token, &fingerprint)?;
        let mut entries = self
            .subsidy
            .list_ledger_entries(&caller, &id, &filter, after, size + 1)
            .await?;
        let next_page_token = paging::next_page(&mut entries, size, &fingerprint, |e| vec![e.seq.to_string()]);
        Ok(Response::new(pb::ListLedgerEntriesResponse {
            entries: entries.iter().map(wire::entry_to_wire).collect(),
            next_page_token,
        }))
    }

    async fn submit_claim(
        &self,
        request: Request<pb::SubmitClaimRequest>,
    ) -> Result<Response<pb::SubmitClaimResponse>, Status> {
        let caller = caller(&request)?;
        let call = CallContext::of(&request);
        let request = request.into_inner();
        let key = request_key(&caller.subject, "SubmitClaim", &request.request_id, &request)?;
        let (payload, source) = wire::claim_payload(request.claim.as_ref())?;
        let source = source.ok_or_else(|| Problem::required("claim.source", "申请来源"))?;
        let submitted = self
            .subsidy
            .submit_claim(&caller, &call, key, Submission { source, payload })
            .await?;
        Ok(Response::new(pb::SubmitClaimResponse {
            claim: Some(wire::claim_to_wire(&submitted.claim)),
            existing: submitted.existing,
        }))
    }

    type SubmitClaimsStream = BoxStream<pb::SubmitClaimsResponse>;

    async fn submit_claims(
        &self,
        request: Request<tonic::Streaming<pb::SubmitClaimsRequest>>,
    ) -> Result<Response<Self::SubmitClaimsStream>, Status> {
        let caller = caller(&request)?;
        let call = CallContext::of(&request);
        let stream = submit_claims::start(
            self.subsidy.clone(),
            caller,
            call,
            request.into_inner(),
            self.subsidy.shutdown().clone(),
        );
        Ok(Response::new(stream))
    }

    async fn evaluate_claim(
        &self,
        request: Request<pb::EvaluateClaimRequest>,
    ) -> Result<Response<pb::EvaluateClaimResponse>, Status> {
        let caller = caller(&request)?;
        let call = CallContext::of(&request);
        let request = request.into_inner();
        let (payload, _) = wire::claim_payload(request.claim.as_ref())?;
        let code = payload.policy_code.clone();
        let dry = self.subsidy.evaluate_claim(&caller, &call, payload).await?;
        Ok(Response::new(pb::EvaluateClaimResponse {
            decision: Some(wire::decision_to_wire(&dry.decision, &code)),
            region: (!dry.region.is_empty()).then(|| bangfu_proto::common::v1::RegionCode {
                code: dry.region.clone(),
                display_name: String::new(),
            }),
            fund: dry.fund.unwrap_or_default(),
            required_reviews: dry.required_reviews,
        }))
    }

    async fn get_claim(&self, request: Request<pb::GetClaimRequest>) -> Result<Response<pb::GetClaimResponse>, Status> {
        let caller = caller(&request)?;
        let request = request.into_inner();
        let id = wire::resource_id("name", &request.name, "claims")?;
        let claim = self.subsidy.get_claim(&caller, &id).await?;
        let paid = self.subsidy.payments_of(std::slice::from_ref(&claim)).await?;
        Ok(Response::new(pb::GetClaimResponse {
            claim: Some(wire::paid_claim_to_wire(&claim, paid.get(&claim.id))),
        }))
    }

    async fn list_claims(
        &self,
        request: Request<pb::ListClaimsRequest>,
    ) -> Result<Response<pb::ListClaimsResponse>, Status> {
        let caller = caller(&request)?;
        let request = request.into_inner();
        let size = paging::page_size(request.page_size, 100, 1000)?;
        let period = request
            .period
            .as_ref()
            .map(|p| wire::period("period", Some(p)))
            .transpose()?
            .map(|p| (crate::domain::day_text(p.first), crate::domain::day_text(p.last)));
        let filter = ClaimFilter {
            policy_code: if request.policy.is_empty() {
                String::new()
            } else {
                wire::resource_id("policy", &request.policy, "policies")?
            },
            person_id: if request.person.is_empty() {
                String::new()
            } else {
                wire::person_id("person", &request.person)?
            },
            state: if request.state == 0 {
                String::new()
            } else {
                wire::claim_state("state", request.state)?.as_str().to_string()
            },
            source_system: request.source_system.trim().to_string(),
            region_prefix: request.region_prefix.trim().to_string(),
            fund_id: if request.fund.is_empty() {
                String::new()
            } else {
                wire::resource_id("fund", &request.fund, "funds")?
            },
            period,
            payment_batch_id: if request.payment_batch.is_empty() {
                String::new()
            } else {
                wire::resource_id("payment_batch", &request.payment_batch, "paymentBatches")?
            },
        };
        let (first, last) = filter.period.clone().unwrap_or_default();
        let fingerprint = paging::fingerprint(&[
            &filter.policy_code,
            &filter.person_id,
            &filter.state,
            &filter.source_system,
            &filter.region_prefix,
            &filter.fund_id,
            &first,
            &last,
            &filter.payment_batch_id,
        ]);
        let after = pair_after(&request.page_token, &fingerprint)?;
        let listing = self.subsidy.list_claims(&caller, filter, after, size).await?;
        let next_page_token = match (listing.more, listing.claims.last()) {
            (true, Some(last)) => paging::encode_token(&fingerprint, &[last.region.clone(), last.id.clone()]),
            _ => String::new(),
        };
        let paid = self.subsidy.payments_of(&listing.claims).await?;
        Ok(Response::new(pb::ListClaimsResponse {
            claims: listing
                .claims
                .iter()
                .map(|claim| wire::paid_claim_to_wire(claim, paid.get(&claim.id)))
                .collect(),
            next_page_token,
        }))
    }

    async fn review_claim(
        &self,
        request: Request<pb::ReviewClaimRequest>,
    ) -> Result<Response<pb::ReviewClaimResponse>, Status> {
        let caller = caller(&request)?;
        let request = request.into_inner();
        let id = wire::resource_id("name", &request.name, "claims")?;
        let verdict = wire::review_verdict("verdict", request.verdict)?;
        let note = text("note", &request.note, 500, "复核意见")?;
        let etag = text("etag", &request.etag, 64, "版本标记")?;
        let claim = self.subsidy.review_claim(&caller, &id, verdict, &note, &etag).await?;
        Ok(Response::new(pb::ReviewClaimResponse {
            claim: Some(wire::claim_to_wire(&claim)),
        }))
    }

    async fn withdraw_claim(
        &self,
        request: Request<pb::WithdrawClaimRequest>,
    ) -> Result<Response<pb::WithdrawClaimResponse>, Status> {
        let caller = caller(&request)?;
        let request = request.into_inner();
        let id = wire::resource_id("name", &request.name, "claims")?;
        let reason = text("reason", &request.reason, 500, "撤回原因")?;
        let etag = text("etag", &request.etag, 64, "版本标记")?;
        let claim = self.subsidy.withdraw_claim(&caller, &id, &reason, &etag).await?;
        Ok(Response::new(pb::WithdrawClaimResponse {
            claim: Some(wire::claim_to_wire(&claim)),
        }))
    }

    async fn confirm_proposed_claim(
        &self,
        request: Request<pb::ConfirmProposedClaimRequest>,
    ) -> Result<Response<pb::ConfirmProposedClaimResponse>, Status> {
        let caller = caller(&request)?;
        let call = CallContext::of(&request);
        let request = request.into_inner();
        let id = wire::resource_id("name", &request.name, "claims")?;
        let facts = wire::facts("facts", &request.facts)?;
        let note = text(
            "note",
            &request.note,
            500,
            if request.decline {
                "不予确认的原因"
            } else {
                "与本人核实的情况"
            },
        )?;
        let etag = text("etag", &request.etag, 64, "版本标记")?;
        let claim = self
            .subsidy
            .confirm_proposed_claim(&caller, &call, &id, facts, request.decline, &note, &etag)
            .await?;
        Ok(Response::new(pb::ConfirmProposedClaimResponse {
            claim: Some(wire::claim_to_wire(&claim)),
        }))
    }

    async fn reevaluate_claim(
        &self,
        request: Request<pb::ReevaluateClaimRequest>,
    ) -> Result<Response<pb::ReevaluateClaimResponse>, Status> {
        let caller = caller(&request)?;
        let call = CallContext::of(&request);
        let request = request.into_inner();
        let id = wire::resource_id("name", &request.name, "claims")?;
        let note = text("note", &request.note, 500, "重新核定的原因")?;
        let etag = text("etag", &request.etag, 64, "版本标记")?;
        let claim = self.subsidy.reevaluate_claim(&caller, &call, &id, &note, &etag).await?;
        Ok(Response::new(pb::ReevaluateClaimResponse {
            claim: Some(wire::claim_to_wire(&claim)),
        }))
    }

    async fn get_person_statement(
        &self,
        request: Request<pb::GetPersonStatementRequest>,
    ) -> Result<Response<pb::GetPersonStatementResponse>, Status> {
        let caller = caller(&request)?;
        let request = request.into_inner();
        let person = wire::person_id("person", &request.person)?;
        let period = request
            .period
            .as_ref()
            .map(|p| wire::period("period", Some(p)))
            .transpose()?;
        let size = paging::page_size(request.page_size, 100, 1000)?;
        let (first, last) = period
            .map(|p| (crate::domain::day_text(p.first), crate::domain::day_text(p.last)))
            .unwrap_or_default();
        let fingerprint = paging::fingerprint(&[&person, &first, &last]);
        let after = pair_after(&request.page_token, &fingerprint)?;
        let statement = self
            .subsidy
            .person_statement(&caller, &person, period, after, size)
            .await?;
        let next_page_token = match (statement.more, statement.lines.last()) {
            (true, Some(last)) => paging::encode_token(
                &fingerprint,
                &[
                    crate::domain::day_text(last.claim.payload.period.first),
                    last.claim.id.clone(),
                ],
            ),
            _ => String::new(),
        };
        Ok(Response::new(pb::GetPersonStatementResponse {
            statement: Some(wire::statement_to_wire(&statement)),
            next_page_token,
        }))
    }

    async fn settle_recovery(
        &self,
        request: Request<pb::SettleRecoveryRequest>,
    ) -> Result<Response<pb::SettleRecoveryResponse>, Status> {
        let caller = caller(&request)?;
        let request = request.into_inner();
        let key = request_key(&caller.subject, "SettleRecovery", &request.request_id, &request)?;
        let id = wire::resource_id("name", &request.name, "recoveries")?;
        let settlement = match pb::RecoveryState::try_from(request.settlement) {
            Ok(pb::RecoveryState::Returned) => {
                crate::app::Settlement::Returned(request.returned_amount.as_ref().map(|m| m.fen).unwrap_or_default())
            }
            Ok(pb::RecoveryState::WrittenOff) => crate::app::Settlement::WrittenOff,
            Ok(pb::RecoveryState::Cancelled) => crate::app::Settlement::Cancelled,
            _ => {
                return Err(Problem::invalid_field(
                    ErrorReason::FieldInvalid,
                    "settlement",
                    "RETURNED, WRITTEN_OFF or CANCELLED",
                    "请选择办结方式：已缴回、核销或撤销",
                )
                .into());
            }
        };
        let document = text("document", &request.document, 128, "缴款书或文书编号")?;
        let etag = text("etag", &request.etag, 64, "版本标记")?;
        let (recovery, entry) = self
            .subsidy
            .settle_recovery(&caller, key, &id, settlement, &document, &etag)
            .await?;
        Ok(Response::new(pb::SettleRecoveryResponse {
            recovery: Some(wire::recovery_to_wire(&recovery)),
            entry: Some(wire::entry_to_wire(&entry)),
        }))
    }

    async fn register_payee_account(
        &self,
        request: Request<pb::RegisterPayeeAccountRequest>,
    ) -> Result<Response<pb::RegisterPayeeAccountResponse>, Status> {
        let caller = caller(&request)?;
        let call = CallContext::of(&request);
        let request = request.into_inner();
        let key = request_key(&caller.subject, "RegisterPayeeAccount", &request.request_id, &request)?;
        let new = wire::new_account(request.payee_account.as_ref())?;
        let account = self.subsidy.register_payee_account(&caller, &call, key, new).await?;
        Ok(Response::new(pb::RegisterPayeeAccountResponse {
            payee_account: Some(wire::account_to_wire(&account)),
        }))
    }

    async fn get_payee_account(
        &self,
        request: Request<pb::GetPayeeAccountRequest>,
    ) -> Result<Response<pb::GetPayeeAccountResponse>, Status> {
        let caller = caller(&request)?;
        let request = request.into_inner();
        let id = wire::resource_id("name", &request.name, "payeeAccounts")?;
        let account = self.subsidy.get_payee_account(&caller, &id).await?;
        Ok(Response::new(pb::GetPayeeAccountResponse {
            payee_account: Some(wire::account_to_wire(&account)),
        }))
    }

    async fn list_payee_accounts(
        &self,
        request: Request<pb::ListPayeeAccountsRequest>,
    ) -> Result<Response<pb::ListPayeeAccountsResponse>, Status> {
        let caller = caller(&request)?;
        let request = request.into_inner();
        let verification_state = wire::verification_state_filter("verification_state", request.verification_state)?;
        let size = paging::page_size(request.page_size, 100, 1000)?;
        let owner = if !request.person.is_empty() {
            Some(crate::domain::Payee::Person(wire::person_id(
                "person",
                &request.person,
            )?))
        } else if !request.credit_code.is_empty() {
            Some(crate::domain::Payee::Organization(crate::domain::OrganizationPayee {
                credit_code: request.credit_code.trim().to_uppercase(),
                display_name: String::new(),
                region: String::new(),
            }))
        } else {
            None
        };
        let fingerprint = paging::fingerprint(&[
            &request.person,
            &request.credit_code,
            verification_state.map(|s| s.as_str()).unwrap_or(""),
            if request.in_use_only { "in-use" } else { "" },
        ]);
        let after = pair_after(&request.page_token, &fingerprint)?;
        let listing = self
            .subsidy
            .list_payee_accounts(
                &caller,
                "",
                crate::app::AccountQuery {
                    owner: owner.as_ref(),
                    verification_state,
                    in_use_only: request.in_use_only,
                },
                after,
                size,
            )
            .await?;
        let next_page_token = match (listing.more, listing.accounts.last()) {
            (true, Some(last)) => paging::encode_token(&fingerprint, &[last.region.clone(), last.id.clone()]),
            _ => String::new(),
        };
        Ok(Response::new(pb::ListPayeeAccountsResponse {
            payee_accounts: listing.accounts.iter().map(wire::account_to_wire).collect(),
            next_page_token,
        }))
    }

    async fn create_payment_batch(
        &self,
        request: Request<pb::CreatePaymentBatchRequest>,
    ) -> Result<Response<pb::CreatePaymentBatchResponse>, Status> {
        let caller = caller(&request)?;
        let request = request.into_inner();
        let key = request_key(&caller.subject, "CreatePaymentBatch", &request.request_id, &request)?;
        let batch = request
            .payment_batch
            .as_ref()
            .ok_or_else(|| Problem::required("payment_batch", "发放批次"))?;
        let display_name = text("payment_batch.display_name", &batch.display_name, 100, "批次名称")?;
        let selection = wire::selection(batch.selection.as_ref())?;
        let batch = self
            .subsidy
            .create_payment_batch(&caller, key, display_name, selection)
            .await?;
        Ok(Response::new(pb::CreatePaymentBatchResponse {
            payment_batch: Some(wire::batch_to_wire(&batch, self.subsidy.today())),
        }))
    }

    async fn get_payment_batch(
        &self,
        request: Request<pb::GetPaymentBatchRequest>,
    ) -> Result<Response<pb::GetPaymentBatchResponse>, Status> {
        let caller = caller(&request)?;
        let request = request.into_inner();
        let id = wire::resource_id("name", &request.name, "paymentBatches")?;
        let batch = self.subsidy.get_payment_batch(&caller, &id).await?;
        Ok(Response::new(pb::GetPaymentBatchResponse {
            payment_batch: Some(wire::batch_to_wire(&batch, self.subsidy.today())),
        }))
    }

    async fn list_payment_batches(
        &self,
        request: Request<pb::ListPaymentBatchesRequest>,
    ) -> Result<Response<pb::ListPaymentBatchesResponse>, Status> {
        let caller = caller(&request)?;
        let request = request.into_inner();
        let size = paging::page_size(request.page_size, 100, 1000)?;
        let fund = if request.fund.is_empty() {
            String::new()
        } else {
            wire::resource_id("fund", &request.fund, "funds")?
        };
        let state = if request.state == 0 {
            ""
        } else {
            wire::batch_state("state", request.state)?
        };
        let region_prefix = request.region_prefix.trim().to_string();
        let fingerprint = paging::fingerprint(&[&fund, state, &region_prefix]);
        let before = match paging::decode_token(&request.page_token, &fingerprint)? {
            None => None,
            Some(cursor) => match cursor.as_slice() {
                [created, id] => Some((created.parse().map_err(|_| paging::token_invalid())?, id.clone())),
                _ => return Err(paging::token_invalid().into()),
            },
        };
        let listing = self
            .subsidy
            .list_payment_batches(&caller, &fund, state, &region_prefix, before, size)
            .await?;
        let next_page_token = match (listing.more, listing.batches.last()) {
            (true, Some(last)) => paging::encode_token(
                &fingerprint,
                &[
                    bangfu_platform::db::to_micros(last.created).to_string(),
                    last.id.clone(),
                ],
            ),
            _ => String::new(),
        };
        let today = self.subsidy.today();
        Ok(Response::new(pb::ListPaymentBatchesResponse {
            payment_batches: listing.batches.iter().map(|b| wire::batch_to_wire(b, today)).collect(),
            next_page_token,
        }))
    }

    async fn list_payment_lines(
        &self,
        request: Request<pb::ListPaymentLinesRequest>,
    ) -> Result<Response<pb::ListPaymentLinesResponse>, Status> {
        let caller = caller(&request)?;
        let request = request.into_inner();
        let id = wire::resource_id("parent", &request.parent, "paymentBatches")?;
        let size = paging::page_size(request.page_size, 100, 1000)?;
        let state = if request.state == 0 {
            ""
        } else {
            wire::line_state("state", request.state)?
        };
        let fingerprint = paging::fingerprint(&[&id, state]);
        let after = number_after(&request.page_token, &fingerprint)?;
        let mut lines = self
            .subsidy
            .list_payment_lines(&caller, &id, state, after, size + 1)
            .await?;
        let next_page_token = paging::next_page(&mut lines, size, &fingerprint, |l| vec![l.line_number.to_string()]);
        Ok(Response::new(pb::ListPaymentLinesResponse {
            lines: lines.iter().map(wire::line_to_wire).collect(),
            next_page_token,
        }))
    }

    async fn publish_batch_notice(
        &self,
        request: Request<pb::PublishBatchNoticeRequest>,
    ) -> Result<Response<pb::PublishBatchNoticeResponse>, Status> {
        let caller = caller(&request)?;
        let request = request.into_inner();
        let id = wire::resource_id("name", &request.name, "paymentBatches")?;
        let first_day = bangfu_platform::wire::optional_date("first_day", request.first_day.as_ref())?
            .unwrap_or_else(|| self.subsidy.today());
        let contact = text(
            "objection_contact",
            &request.objection_contact,
            200,
            "异议受理电话和地点",
        )?;
        let issuer = text("issuer", &request.issuer, 100, "公示发布单位")?;
        let etag = text("etag", &request.etag, 64, "版本标记")?;
        let batch = self
            .subsidy
            .publish_batch_notice(
                &caller,
                &id,
                first_day,
                crate::app::NoticeIssue {
                    issuer: &issuer,
                    objection_contact: &contact,
                },
                &etag,
            )
            .await?;
        Ok(Response::new(pb::PublishBatchNoticeResponse {
            payment_batch: Some(wire::batch_to_wire(&batch, self.subsidy.today())),
        }))
    }

    async fn get_public_notice(
        &self,
        request: Request<pb::GetPublicNoticeRequest>,
    ) -> Result<Response<pb::GetPublicNoticeResponse>, Status> {
        let caller = caller(&request)?;
        let request = request.into_inner();
        let id = request
            .name
            .strip_suffix("/publicNotice")
            .ok_or_else(|| {
                Problem::invalid_field(
                    ErrorReason::FieldInvalid,
                    "name",
                    "must be paymentBatches/{batch}/publicNotice",
                    "公示名称应写作 paymentBatches/{批次}/publicNotice",
                )
            })
            .and_then(|batch| wire::resource_id("name", batch, "paymentBatches"))?;
        let size = paging::page_size(request.page_size, 100, 1000)?;
        let region_prefix = request.region_prefix.trim().to_string();
        let fingerprint = paging::fingerprint(&[&id, &region_prefix]);
        let after = number_after(&request.page_token, &fingerprint)?;
        let notice = self
            .subsidy
            .public_notice(&caller, &id, &region_prefix, after, size)
            .await?;
        let next_page_token = match (notice.more, notice.lines.last()) {
            (true, Some(last)) => paging::encode_token(&fingerprint, &[last.line_number.to_string()]),
            _ => String::new(),
        };
        Ok(Response::new(pb::GetPublicNoticeResponse {
            public_notice: Some(wire::notice_to_wire(&notice)),
            next_page_token,
        }))
    }

    async fn cancel_payment_batch(
        &self,
        request: Request<pb::CancelPaymentBatchRequest>,
    ) -> Result<Response<pb::CancelPaymentBatchResponse>, Status> {
        let caller = caller(&request)?;
        let request = request.into_inner();
        let id = wire::resource_id("name", &request.name, "paymentBatches")?;
        let reason = text("reason", &request.reason, 500, "撤销原因")?;
        let etag = text("etag", &request.etag, 64, "版本标记")?;
        let batch = self.subsidy.cancel_payment_batch(&caller, &id, &reason, &etag).await?;
        Ok(Response::new(pb::CancelPaymentBatchResponse {
            payment_batch: Some(wire::batch_to_wire(&batch, self.subsidy.today())),
        }))
    }

    async fn approve_payment_batch(
        &self,
        request: Request<pb::ApprovePaymentBatchRequest>,
    ) -> Result<Response<pb::ApprovePaymentBatchResponse>, Status> {
        let caller = caller(&request)?;
        let request = request.into_inner();
        let id = wire::resource_id("name", &request.name, "paymentBatches")?;
        let note = text("note", &request.note, 500, "审批意见")?;
        let etag = text("etag", &request.etag, 64, "版本标记")?;
        let batch = self.subsidy.approve_payment_batch(&caller, &id, &note, &etag).await?;
        Ok(Response::new(pb::ApprovePaymentBatchResponse {
            payment_batch: Some(wire::batch_to_wire(&batch, self.subsidy.today())),
        }))
    }

    async fn raise_objection(
        &self,
        request: Request<pb::RaiseObjectionRequest>,
    ) -> Result<Response<pb::RaiseObjectionResponse>, Status> {
        let caller = caller(&request)?;
        let request = request.into_inner();
        let batch = wire::resource_id("parent", &request.parent, "paymentBatches")?;
        let new = wire::new_objection(request.objection.as_ref())?;
        let objection = self.subsidy.raise_objection(&caller, &batch, new).await?;
        Ok(Response::new(pb::RaiseObjectionResponse {
            objection: Some(wire::objection_to_wire(&objection)),
        }))
    }

    async fn list_objections(
        &self,
        request: Request<pb::ListObjectionsRequest>,
    ) -> Result<Response<pb::ListObjectionsResponse>, Status> {
        let caller = caller(&request)?;
        let request = request.into_inner();
        let batch = wire::resource_id("parent", &request.parent, "paymentBatches")?;
        let state = wire::objection_state_filter("state", request.state)?;
        let size = paging::page_size(request.page_size, 100, 1000)?;
        let fingerprint = paging::fingerprint(&[&batch, state]);
        let after = number_after(&request.page_token, &fingerprint)?;
        let mut objections = self
            .subsidy
            .list_objections(&caller, &batch, state, after, size + 1)
            .await?;
        let next_page_token = paging::next_page(&mut objections, size, &fingerprint, |o| vec![o.seq.to_string()]);
        Ok(Response::new(pb::ListObjectionsResponse {
            objections: objections.iter().map(wire::objection_to_wire).collect(),
            next_page_token,
        }))
    }

    async fn resolve_objection(
        &self,
        request: Request<pb::ResolveObjectionRequest>,
    ) -> Result<Response<pb::ResolveObjectionResponse>, Status> {
        let caller = caller(&request)?;
        let request = request.into_inner();
        let parsed = request.name.split_once("/objections/").and_then(|(batch, seq)| {
            let batch = wire::resource_id("name", batch, "paymentBatches").ok()?;
            Some((batch, seq.parse::<i64>().ok().filter(|n| *n > 0)?))
        });
        let (batch, seq) = parsed.ok_or_else(|| {
            Problem::invalid_field(
                ErrorReason::FieldInvalid,
                "name",
                "must be paymentBatches/{batch}/objections/{objection}",
                "异议应写作 paymentBatches/{批次}/objections/{编号}",
            )
        })?;
        let resolution = match pb::ObjectionState::try_from(request.resolution) {
            Ok(pb::ObjectionState::Upheld) => crate::app::Resolution::Upheld,
            Ok(pb::ObjectionState::Dismissed) => crate::app::Resolution::Dismissed,
            _ => {
                return Err(Problem::invalid_field(
                    ErrorReason::FieldInvalid,
                    "resolution",
                    "UPHELD or DISMISSED",
                    "处理结果应为“异议成立”或“异议不成立”",
                )
                .into());
            }
        };
        let finding = text("finding", &request.finding, 2000, "核查结论")?;
        let etag = text("etag", &request.etag, 64, "版本标记")?;
        let (objection, batch) = self
            .subsidy
            .resolve_objection(&caller, &batch, seq, resolution, &finding, &etag)
            .await?;
        Ok(Response::new(pb::ResolveObjectionResponse {
            objection: Some(wire::objection_to_wire(&objection)),
            payment_batch: Some(wire::batch_to_wire(&batch, self.subsidy.today())),
        }))
    }

    async fn list_recoveries(
        &self,
        request: Request<pb::ListRecoveriesRequest>,
    ) -> Result<Response<pb::ListRecoveriesResponse>, Status> {
        let caller = caller(&request)?;
        let request = request.into_inner();
        let size = paging::page_size(request.page_size, 100, 1000)?;
        let person = if request.person.is_empty() {
            String::new()
        } else {
            wire::person_id("person", &request.person)?
        };
        let claim = if request.claim.is_empty() {
            String::new()
        } else {
            wire::resource_id("claim", &request.claim, "claims")?
        };
        let filter = crate::store::RecoveryFilter {
            person_id: person,
            claim_id: claim,
            state: wire::recovery_state_filter("state", request.state)?.to_string(),
            reason: wire::recovery_reason_filter("reason", request.reason)?.to_string(),
            fund_id: if request.fund.is_empty() {
                String::new()
            } else {
                wire::resource_id("fund", &request.fund, "funds")?
            },
        };
        let region_prefix = request.region_prefix.trim().to_string();
        let fingerprint = paging::fingerprint(&[
            &filter.person_id,
            &filter.claim_id,
            &filter.state,
            &filter.reason,
            &filter.fund_id,
            &region_prefix,
        ]);
        let after = pair_after(&request.page_token, &fingerprint)?;
        let listing = self
            .subsidy
            .list_recoveries(&caller, &region_prefix, &filter, after, size)
            .await?;
        let next_page_token = match (listing.more, listing.recoveries.last()) {
            (true, Some(last)) => paging::encode_token(&fingerprint, &[last.region.clone(), last.id.clone()]),
            _ => String::new(),
        };
        Ok(Response::new(pb::ListRecoveriesResponse {
            recoveries: listing.recoveries.iter().map(wire::recovery_to_wire).collect(),
            next_page_token,
        }))
    }

    async fn get_recovery(
        &self,
        request: Request<pb::GetRecoveryRequest>,
    ) -> Result<Response<pb::GetRecoveryResponse>, Status> {
        let caller = caller(&request)?;
        let request = request.into_inner();
        let id = wire::resource_id("name", &request.name, "recoveries")?;
        let recovery = self.subsidy.get_recovery(&caller, &id).await?;
        Ok(Response::new(pb::GetRecoveryResponse {
            recovery: Some(wire::recovery_to_wire(&recovery)),
        }))
    }

    type RegisterPayeeAccountsStream = BoxStream<pb::RegisterPayeeAccountsResponse>;

    async fn register_payee_accounts(
        &self,
        request: Request<tonic::Streaming<pb::RegisterPayeeAccountsRequest>>,
    ) -> Result<Response<Self::RegisterPayeeAccountsStream>, Status> {
        let caller = caller(&request)?;
        let call = CallContext::of(&request);
        Ok(Response::new(payee_accounts::start(
            self.subsidy.clone(),
            caller,
            call,
            request.into_inner(),
            self.subsidy.shutdown().clone(),
        )))
    }

    type ExportPaymentBatchStream = BoxStream<pb::ExportPaymentBatchResponse>;

    async fn export_payment_batch(
        &self,
        request: Request<pb::ExportPaymentBatchRequest>,
    ) -> Result<Response<Self::ExportPaymentBatchStream>, Status> {
        let caller = caller(&request)?;
        let request = request.into_inner();
        let id = wire::resource_id("name", &request.name, "paymentBatches")?;
        if request.format != pb::DisbursementFileFormat::Csv as i32 {
            return Err(Problem::invalid_field(
                ErrorReason::FieldInvalid,
                "format",
                "CSV is the layout served",
                "发放文件格式请选择CSV",
            )
            .into());
        }
        let encoding = wire::file_encoding("encoding", request.encoding)?;
        let purpose = match bangfu_platform::wire::disclosure(
            &caller,
            bangfu_platform::auth::Permission::SubsidyPay,
            bangfu_proto::common::v1::PersonalDataView::Unmasked as i32,
            request.purpose.as_ref(),
        )? {
            bangfu_platform::wire::Disclosure::Unmasked(purpose) => purpose,
            bangfu_platform::wire::Disclosure::Masked => return Err(Problem::internal().into()),
        };
        let export = self.subsidy.begin_export(&caller, &id, &purpose).await?;
        Ok(Response::new(payment_files::export_stream(
            self.subsidy.clone(),
            export,
            encoding,
            request.encoding,
            request.format,
        )))
    }

    type ImportBankResultsStream = BoxStream<pb::ImportBankResultsResponse>;

    async fn import_bank_results(
        &self,
        request: Request<tonic::Streaming<pb::ImportBankResultsRequest>>,
    ) -> Result<Response<Self::ImportBankResultsStream>, Status> {
        let caller = caller(&request)?;
        let stream = payment_files::import(self.subsidy.clone(), caller, request.into_inner()).await?;
        Ok(Response::new(stream))
    }

    type WatchClaimChangesStream = BoxStream<pb::WatchClaimChangesResponse>;

    async fn watch_claim_changes(
        &self,
        request: Request<pb::WatchClaimChangesRequest>,
    ) -> Result<Response<Self::WatchClaimChangesStream>, Status> {
        let caller = caller(&request)?;
        let request = request.into_inner();
        let start = if request.start_at_head {
            Start::Head
        } else {
            Start::After(Position::decode(&request.after_cursor)?)
        };
        let feed = self
            .subsidy
            .watch_claim_changes(&caller, start, request.source_system.trim())
            .await?;
        let stream = tokio_stream::StreamExt::map(feed, |item| match item {
            Ok(FeedItem::Event(event)) => Ok(pb::WatchClaimChangesResponse {
                item: Some(pb::watch_claim_changes_response::Item::Change(
                    wire::claim_change_to_wire(&event),
                )),
            }),
            Ok(FeedItem::Heartbeat(position)) => Ok(pb::WatchClaimChangesResponse {
                item: Some(pb::watch_claim_changes_response::Item::Heartbeat(pb::Heartbeat {
                    cursor: position.encode(),
                })),
            }),
            Err(problem) => Err(Status::from(problem)),
        });
        Ok(Response::new(Box::pin(stream)))
    }

    async fn list_parameters(
        &self,
        request: Request<pb::ListParametersRequest>,
    ) -> Result<Response<pb::ListParametersResponse>, Status> {
        let request = request.into_inner();
        let (parameters, next_page_token) = service_rpc::list_parameters(
            self.subsidy.parameters(),
            request.filter.as_ref(),
            request.page_size,
            &request.page_token,
        )
        .await?;
        Ok(Response::new(pb::ListParametersResponse {
            parameters,
            next_page_token,
        }))
    }

    async fn update_parameter(
        &self,
        request: Request<pb::UpdateParameterRequest>,
    ) -> Result<Response<pb::UpdateParameterResponse>, Status> {
        let caller = caller(&request)?;
        let request = request.into_inner();
        let parameter = service_rpc::update_parameter(
            self.subsidy.parameters(),
            &caller,
            &method("UpdateParameter"),
            request.parameter.as_ref(),
            request.update_mask.as_ref(),
            request.allow_missing,
            self.subsidy.now(),
        )
        .await?;
        Ok(Response::new(pb::UpdateParameterResponse {
            parameter: Some(parameter),
        }))
    }

    async fn list_audit_events(
        &self,
        request: Request<pb::ListAuditEventsRequest>,
    ) -> Result<Response<pb::ListAuditEventsResponse>, Status> {
        let caller = caller(&request)?;
        let request = request.into_inner();
        let (audit_events, next_page_token) = service_rpc::list_audit_events(
            self.subsidy.db(),
            &caller,
            request.filter.as_ref(),
            request.page_size,
            &request.page_token,
        )
        .await?;
        Ok(Response::new(pb::ListAuditEventsResponse {
            audit_events,
            next_page_token,
        }))
    }
}
