//! The wire edge of the exchange: the partner-facing service (its own port, mutual TLS, partner
//! tokens) and the desk's local service. Each RPC takes its caller, parses the message, runs
//! the use case in `app`, and maps the answer back.

use std::sync::Arc;

use bangfu_platform::audit::{self, AuditEntry};
use bangfu_platform::auth::caller;
use bangfu_platform::config::ServerConfig;
use bangfu_platform::error::{ErrorReason, Problem};
use bangfu_platform::paging;
use bangfu_platform::service_rpc;
use bangfu_platform::wire::{date_to_wire, optional_date, timestamp_to_wire};
use bangfu_proto::common::v1 as common;
use bangfu_proto::exchange::v1 as pb;
use bangfu_proto::exchange::v1::exchange_service_server::{ExchangeService, ExchangeServiceServer};
use bangfu_proto::exchange::v1::partner_exchange_service_server::{
    PartnerExchangeService, PartnerExchangeServiceServer,
};
use prost::Message;
use tonic::{Request, Response, Status};

use crate::app::{Confirmation, ConfirmationOutcome, Exchange, Incoming, Query, Received, Verification, method};
use crate::config::Ability;
use crate::signing;
use crate::store::{self, Direction, MessageFilter};

/// At most this many persons or confirmations in one message.
const MAX_ITEMS: usize = 1000;

/// The partner-facing face of [`Exchange`].
#[derive(Clone)]
pub struct PartnerDesk {
    exchange: Arc<Exchange>,
}

impl PartnerDesk {
    pub fn shared(exchange: Arc<Exchange>, config: &ServerConfig) -> PartnerExchangeServiceServer<Self> {
        PartnerExchangeServiceServer::new(Self { exchange })
            .max_decoding_message_size(config.max_receive_bytes)
            .max_encoding_message_size(config.max_send_bytes)
    }

    /// Checks a received message (logging a refusal).
    async fn check<M: Message>(
        &self,
        request: &Request<M>,
        method: &'static str,
        ability: Option<Ability>,
        header: Option<&pb::MessageHeader>,
        items: usize,
    ) -> Result<Incoming, Status> {
        let caller = caller(request)?;
        let signature = request
            .metadata()
            .get(signing::SIGNATURE_HEADER)
            .and_then(|v| v.to_str().ok())
            .map(str::to_string);
        let received = Received {
            caller: &caller,
            certificates: request.peer_certs(),
            signature,
            method,
            ability,
            header,
            message: request.get_ref(),
            items,
        };
        Ok(self.exchange.check_incoming(received).await?)
    }

    /// Answers a checked message with `result`: a refusal is logged; an answer is logged with
    /// its receipt, which travels in the response's metadata.
    async fn answer<R: Message>(&self, incoming: &Incoming, result: Result<R, Problem>) -> Result<Response<R>, Status> {
        let answer = match result {
            Ok(answer) => answer,
            Err(problem) => {
                self.exchange.log_refusal(incoming, &problem).await;
                return Err(problem.into());
            }
        };
        let (tx, receipt) = self.exchange.accept(incoming, &answer).await?;
        tx.commit().await.map_err(|e| Status::from(Problem::from(e)))?;
        respond(answer, &receipt)
    }
}

fn respond<R>(answer: R, receipt: &str) -> Result<Response<R>, Status> {
    let mut response = Response::new(answer);
    let value = receipt.parse().map_err(|_| Status::from(Problem::internal()))?;
    response.metadata_mut().insert(signing::RECEIPT_HEADER, value);
    Ok(response)
}

fn verification_to_wire(answer: &Verification, day: time::Date) -> pb::PersonVerification {
    let mut wire = pb::PersonVerification {
        on_date: Some(date_to_wire(day)),
        ..Default::default()
    };
    match answer {
        Verification::NotFound => wire.outcome = pb::VerificationOutcome::NotFound as i32,
        Verification::CitizenIdInvalid => wire.outcome = pb::VerificationOutcome::CitizenIdInvalid as i32,
        Verification::Found {
            target,
            categories,
            home_county,
            name_matches,
        } => {
            wire.outcome = if *target {
                pb::VerificationOutcome::TargetPerson as i32
            } else {
                pb::VerificationOutcome::NotTarget as i32
            };
            wire.categories = categories
                .iter()
                .map(|c| pb::CategoryValidity {
                    category: common::PersonCategory::from_str_name(&format!("PERSON_CATEGORY_{}", c.category))
                        .map_or(0, |c| c as i32),
                    valid_from: c.valid_from.map(date_to_wire),
                    valid_to: c.valid_to.map(date_to_wire),
                })
                .collect();
            wire.home_county = home_county.clone();
            wire.name_check = match name_matches {
                None => pb::NameCheck::Unspecified,
                Some(true) => pb::NameCheck::Matched,
                Some(false) => pb::NameCheck::Mismatched,
            } as i32;
        }
    }
    wire
}

fn items_within(field: &str, count: usize) -> Result<(), Problem> {
    if count == 0 || count > MAX_ITEMS {
        return Err(Problem::invalid_field(
            ErrorReason::FieldInvalid,
            field,
            format!("must hold 1 to {MAX_ITEMS} entries"),
            format!("每个报文须包含1至{MAX_ITEMS}条"),
        ));
    }
    Ok(())
}

/// One confirmation as sent, checked on its own: a bad one is refused in its own result.
fn confirmation_of(i: usize, c: &pb::EmploymentConfirmation, today: time::Date) -> Result<Confirmation, Problem> {
    let at = |field: &str| format!("confirmations[{i}].{field}");
    let id = &c.confirmation_id;
    if !bangfu_platform::wire::is_id(id) {
        return Err(Problem::invalid_field(
            ErrorReason::FieldInvalid,
            at("confirmation_id"),
            "must be 1 to 64 characters of [A-Za-z0-9_-]",
            "确认编号格式不正确",
        ));
    }
    let citizen_id = bangfu_platform::pii::CitizenId::parse(&c.citizen_id, today).map_err(|e| {
        Problem::invalid_field(
            ErrorReason::CitizenIdInvalid,
            at("citizen_id"),
            e.to_string(),
            e.message_zh(),
        )
    })?;
    let employer = bangfu_platform::wire::text(&at("employer"), &c.employer, 100, "用人单位")?;
    let work_region = bangfu_platform::wire::region_prefix(&at("work_region"), &c.work_region, true)?;
    let start = bangfu_platform::wire::date(&at("start_date"), c.start_date.as_ref())?;
    let end = optional_date(&at("end_date"), c.end_date.as_ref())?;
    let income = match (&c.monthly_income, &c.income_month) {
        (None, _) => None,
        (Some(money), Some(month)) if money.fen >= 0 && (1..=12).contains(&month.month) => {
            Some((month.year, month.month as u8, money.fen))
        }
        _ => {
            return Err(Problem::invalid_field(
                ErrorReason::FieldInvalid,
                at("income_month"),
                "a monthly income needs its month, and is zero or more",
                "月收入须注明月份且不为负数",
            ));
        }
    };
    Ok(Confirmation {
        confirmation_id: id.clone(),
        citizen_id: citizen_id.as_str().to_string(),
        employer,
        work_region,
        start,
        end,
        contract_months: c.contract_months.max(0),
        income,
    })
}

#[tonic::async_trait]
impl PartnerExchangeService for PartnerDesk {
    async fn verify_person(
        &self,
        request: Request<pb::VerifyPersonRequest>,
    ) -> Result<Response<pb::VerifyPersonResponse>, Status> {
        let incoming = self
            .check(
                &request,
                "VerifyPerson",
                Some(Ability::VerifyPerson),
                request.get_ref().header.as_ref(),
                1,
            )
            .await?;
        let message = request.into_inner();
        let result = async {
            let day = optional_date("on_date", message.on_date.as_ref())?.unwrap_or_else(|| self.exchange.today());
            let today = self.exchange.today();
            bangfu_platform::pii::CitizenId::parse(&message.citizen_id, today).map_err(|e| {
                Problem::invalid_field(
                    ErrorReason::CitizenIdInvalid,
                    "citizen_id",
                    e.to_string(),
                    e.message_zh(),
                )
            })?;
            self.exchange.limit_verifications(&incoming.partner, 1).await?;
            let answers = self
                .exchange
                .verify_persons(
                    &[Query {
                        citizen_id: message.citizen_id.clone(),
                        name: message.display_name.clone(),
                    }],
                    day,
                )
                .await?;
            let answer = answers.first().ok_or_else(Problem::internal)?;
            Ok(pb::VerifyPersonResponse {
                verification: Some(verification_to_wire(answer, day)),
            })
        }
        .await;
        self.answer(&incoming, result).await
    }

    async fn batch_verify_persons(
        &self,
        request: Request<pb::BatchVerifyPersonsRequest>,
    ) -> Result<Response<pb::BatchVerifyPersonsResponse>, Status> {
        let items = request.get_ref().queries.len();
        let incoming = self
            .check(
                &request,
                "BatchVerifyPersons",
                Some(Ability::VerifyPerson),
                request.get_ref().header.as_ref(),
                items,
            )
            .await?;
        let message = request.into_inner();
        let result = async {
            items_within("queries", items)?;
            let day = optional_date("on_date", message.on_date.as_ref())?.unwrap_or_else(|| self.exchange.today());
            self.exchange.limit_verifications(&incoming.partner, items).await?;
            let queries: Vec<Query> = message
                .queries
                .iter()
                .map(|q| Query {
                    citizen_id: q.citizen_id.clone(),
                    name: q.display_name.clone(),
                })
                .collect();
            let answers = self.exchange.verify_persons(&queries, day).await?;
            Ok(pb::BatchVerifyPersonsResponse {
                verifications: answers.iter().map(|a| verification_to_wire(a, day)).collect(),
            })
        }
        .await;
        self.answer(&incoming, result).await
    }

    async fn list_shared_postings(
        &self,
        request: Request<pb::ListSharedPostingsRequest>,
    ) -> Result<Response<pb::ListSharedPostingsResponse>, Status> {
        let incoming = self
            .check(
                &request,
                "ListSharedPostings",
                Some(Ability::SharedPostings),
                request.get_ref().header.as_ref(),
                0,
            )
            .await?;
        let message = request.into_inner();
        let max = match message.max_changes {
            0 => 100,
            n => n.clamp(1, 1000) as u32,
        };
        let result = self
            .exchange
            .shared_changes(message.after_cursor.trim(), max)
            .await
            .map(|(changes, next_cursor)| pb::ListSharedPostingsResponse { changes, next_cursor });
        self.answer(&incoming, result).await
    }

    async fn deliver_employment_confirmations(
        &self,
        request: Request<pb::DeliverEmploymentConfirmationsRequest>,
    ) -> Result<Response<pb::DeliverEmploymentConfirmationsResponse>, Status> {
        let items = request.get_ref().confirmations.len();
        let incoming = self
            .check(
                &request,
                "DeliverEmploymentConfirmations",
                Some(Ability::EmploymentConfirmations),
                request.get_ref().header.as_ref(),
                items,
            )
            .await?;
        let message = request.into_inner();
        if let Err(problem) = items_within("confirmations", items) {
            self.exchange.log_refusal(&incoming, &problem).await;
            return Err(problem.into());
        }
        // Each confirmation on its own: a bad one is refused in its result, the others kept.
        let today = self.exchange.today();
        let mut results: Vec<pb::ConfirmationResult> = Vec::with_capacity(items);
        let mut valid = Vec::new();
        let mut positions = Vec::new();
        for (i, wire) in message.confirmations.iter().enumerate() {
            let parsed = confirmation_of(i, wire, today);
            match parsed {
                Ok(confirmation) => {
                    positions.push(results.len());
                    results.push(pb::ConfirmationResult {
                        confirmation_id: confirmation.confirmation_id.clone(),
                        ..Default::default()
                    });
                    valid.push(confirmation);
                }
                Err(problem) => results.push(pb::ConfirmationResult {
                    confirmation_id: wire.confirmation_id.clone(),
                    outcome: pb::ConfirmationOutcome::Refused as i32,
                    reason: problem.reason_code().to_string(),
                    field: problem.violations.first().map(|v| v.field.clone()).unwrap_or_default(),
                }),
            }
        }
        // Kept in the transaction that logs the message: a confirmation is never answered
        // PENDING without being kept, nor kept without the message that brought it.
        let ids: Vec<String> = valid.iter().map(|c| c.confirmation_id.clone()).collect();
        let known = self.exchange.known_confirmations(&incoming.partner.id, &ids).await?;
        let mut fresh = Vec::new();
        for (&position, confirmation) in positions.iter().zip(&valid) {
            results[position].outcome = if known.contains(&confirmation.confirmation_id) {
                pb::ConfirmationOutcome::Duplicate
            } else {
                fresh.push(confirmation.clone());
                pb::ConfirmationOutcome::Pending
            } as i32;
        }
        let answer = pb::DeliverEmploymentConfirmationsResponse { results };
        let (mut tx, receipt) = self.exchange.accept(&incoming, &answer).await?;
        self.exchange
            .keep_confirmations(&mut tx, &incoming.partner, &fresh)
            .await
            .map_err(Status::from)?;
        tx.commit().await.map_err(|e| Status::from(Problem::from(e)))?;
        let kept = fresh.len();
        // Recorded in identity now when it answers; the job catches up otherwise.
        if kept > 0
            && let Err(problem) = self
                .exchange
                .record_pending_confirmations(Some(&incoming.partner.id), kept as u32)
                .await
        {
            tracing::warn!(error = %problem.message, "confirmations kept; identity will record them on the next round");
        }
        respond(answer, &receipt)
    }

    async fn get_partner_info(
        &self,
        request: Request<pb::GetPartnerInfoRequest>,
    ) -> Result<Response<pb::GetPartnerInfoResponse>, Status> {
        let incoming = self
            .check(&request, "GetPartnerInfo", None, request.get_ref().header.as_ref(), 0)
            .await?;
        let result = match self.exchange.config() {
            None => Err(Problem::internal()),
            Some(config) => Ok(pb::GetPartnerInfoResponse {
                partner_id: config.id.clone(),
                display_name: config.display_name.clone(),
                region_prefix: config.region_prefix.clone(),
                key_ids: vec![config.signer.kid().to_string()],
                allowed: incoming
                    .partner
                    .allowed
                    .iter()
                    .map(|a| a.as_str().to_string())
                    .collect(),
                server_time: Some(timestamp_to_wire(self.exchange.now())),
            }),
        };
        self.answer(&incoming, result).await
    }
}

/// The desk's local face of [`Exchange`].
#[derive(Clone)]
pub struct LocalDesk {
    exchange: Arc<Exchange>,
}

impl LocalDesk {
    pub fn shared(exchange: Arc<Exchange>, config: &ServerConfig) -> ExchangeServiceServer<Self> {
        ExchangeServiceServer::new(Self { exchange })
            .max_decoding_message_size(config.max_receive_bytes)
            .max_encoding_message_size(config.max_send_bytes)
    }
}

fn partner_id(field: &str, name: &str, required: bool) -> Result<String, Problem> {
    if name.trim().is_empty() && !required {
        return Ok(String::new());
    }
    bangfu_platform::wire::id_of(field, name, "partners")
}

fn message_to_wire(entry: &store::LogEntry) -> pb::ExchangeMessage {
    let m = &entry.message;
    pb::ExchangeMessage {
        name: format!("messages/{}", entry.id),
        direction: match m.direction {
            Direction::Outgoing => pb::MessageDirection::Outgoing,
            Direction::Incoming => pb::MessageDirection::Incoming,
        } as i32,
        partner: format!("partners/{}", m.partner),
        message_id: m.message_id.clone(),
        method: m.method.clone(),
        send_time: Some(timestamp_to_wire(m.send_time)),
        log_time: Some(timestamp_to_wire(m.log_time)),
        request_sha256: m.request_sha256.clone(),
        signature: m.signature.clone(),
        response_sha256: m.response_sha256.clone(),
        receipt: m.receipt.clone(),
        result: m.result.clone(),
        sequence: entry.sequence.unwrap_or_default(),
        prev_hash: entry.prev_hash.clone(),
        hash: entry.hash.clone(),
        item_count: i32::try_from(m.item_count).unwrap_or(i32::MAX),
    }
}

#[tonic::async_trait]
impl ExchangeService for LocalDesk {
    async fn list_partners(
        &self,
        request: Request<pb::ListPartnersRequest>,
    ) -> Result<Response<pb::ListPartnersResponse>, Status> {
        caller(&request)?;
        let mut partners = Vec::new();
        if let Some(config) = self.exchange.config() {
            let mut connection = self.exchange.db().acquire().await.map_err(Problem::from)?;
            for partner in &config.partners {
                let state = store::partner_state(&mut connection, &partner.id)
                    .await
                    .map_err(Problem::from)?;
                partners.push(pb::Partner {
                    name: format!("partners/{}", partner.id),
                    display_name: partner.display_name.clone(),
                    region_prefix: partner.region_prefix.clone(),
                    url: partner.url.clone(),
                    allowed: partner.allowed.iter().map(|a| a.as_str().to_string()).collect(),
                    key_ids: partner.key_ids(),
                    ca_sha256: partner.ca_sha256.clone(),
                    last_contact_time: state.last_contact.map(timestamp_to_wire),
                    waiting_messages: i32::try_from(state.waiting_messages).unwrap_or(i32::MAX),
                    last_error: state.last_error,
                });
            }
        }
        Ok(Response::new(pb::ListPartnersResponse { partners }))
    }

    async fn verify_partner_person(
        &self,
        request: Request<pb::VerifyPartnerPersonRequest>,
    ) -> Result<Response<pb::VerifyPartnerPersonResponse>, Status> {
        let caller = caller(&request)?;
        let message = request.into_inner();
        let partner = self.exchange.partner(&partner_id("partner", &message.partner, true)?)?;
        let citizen_id =
            bangfu_platform::pii::CitizenId::parse(&message.citizen_id, self.exchange.today()).map_err(|e| {
                Problem::invalid_field(
                    ErrorReason::CitizenIdInvalid,
                    "citizen_id",
                    e.to_string(),
                    e.message_zh(),
                )
            })?;
        let on_date = optional_date("on_date", message.on_date.as_ref())?;
        let question = pb::VerifyPersonRequest {
            header: None,
            citizen_id: citizen_id.as_str().to_string(),
            on_date: on_date.map(date_to_wire),
            display_name: message.display_name.trim().to_string(),
        };
        let outcome = self
            .exchange
            .send(
                &partner,
                "VerifyPerson",
                question,
                |m| &mut m.header,
                1,
                |mut client, request| async move { client.verify_person(request).await },
            )
            .await;
        // Asking a partner about a citizen ID is audited as a lookup, answered or not.
        let entry = AuditEntry::by(
            &caller,
            &method("VerifyPartnerPerson"),
            format!("partners/{}", partner.id),
            self.exchange.now(),
        );
        let entry = match &outcome {
            Ok(_) => entry,
            Err(problem) => entry.with_outcome(audit::Outcome::Failed, problem.reason_code()),
        };
        audit::append_now(self.exchange.db(), &entry)
            .await
            .map_err(Problem::from)?;
        let (answer, log_id) = outcome?;
        Ok(Response::new(pb::VerifyPartnerPersonResponse {
            verification: answer.verification,
            message: format!("messages/{log_id}"),
        }))
    }

    async fn list_partner_postings(
        &self,
        request: Request<pb::ListPartnerPostingsRequest>,
    ) -> Result<Response<pb::ListPartnerPostingsResponse>, Status> {
        caller(&request)?;
        let message = request.into_inner();
        let partner = partner_id("partner", &message.partner, false)?;
        let fingerprint = paging::fingerprint(&[&partner, &message.show_withdrawn.to_string()]);
        let (size, cursor) = paging::page(message.page_size, &message.page_token, &fingerprint)?;
        let after = match cursor.as_deref() {
            Some([partner, posting]) => (partner.clone(), posting.clone()),
            _ => (String::new(), String::new()),
        };
        let mut postings = self
            .exchange
            .partner_postings(&partner, message.show_withdrawn, after, size + 1)
            .await?;
        let next_page_token = if postings.len() > size as usize {
            postings.truncate(size as usize);
            postings
                .last()
                .map(|p| {
                    paging::encode_token(
                        &fingerprint,
                        &[
                            p.partner.trim_start_matches("partners/").to_string(),
                            p.posting.as_ref().map(|s| s.posting_id.clone()).unwrap_or_default(),
                        ],
                    )
                })
                .unwrap_or_default()
        } else {
            String::new()
        };
        Ok(Response::new(pb::ListPartnerPostingsResponse {
            postings,
            next_page_token,
        }))
    }

    async fn get_cooperation_stats(
        &self,
        request: Request<pb::GetCooperationStatsRequest>,
    ) -> Result<Response<pb::GetCooperationStatsResponse>, Status> {
        caller(&request)?;
        let year = request.get_ref().year;
        if !(2000..=2100).contains(&year) {
            return Err(Problem::invalid_field(
                ErrorReason::FieldInvalid,
                "year",
                "must be 2000 to 2100",
                "年份应在2000至2100之间",
            )
            .into());
        }
        let first = time::Date::from_calendar_date(year, time::Month::January, 1).map_err(|_| Problem::internal())?;
        let last = time::Date::from_calendar_date(year, time::Month::December, 31)
            .map_err(|_| Problem::internal())?
            .min(self.exchange.today());
        if last < first {
            return Err(Problem::invalid_field(
                ErrorReason::FieldInvalid,
                "year",
                "is in the future",
                "年份不能晚于今年",
            )
            .into());
        }
        let stats = self.exchange.cooperation_stats((first, last)).await?;
        let count = |n: usize| i32::try_from(n).unwrap_or(i32::MAX);
        let mut all_workers = std::collections::BTreeSet::new();
        let mut all_targets = std::collections::BTreeSet::new();
        let partners = stats
            .partners
            .iter()
            .map(|p| {
                all_workers.extend(p.partner_workers.iter().cloned());
                all_targets.extend(p.partner_target_workers.iter().cloned());
                pb::PartnerCooperation {
                    partner: format!("partners/{}", p.partner),
                    partner_workers_employed_here: count(p.partner_workers.len()),
                    partner_target_workers_employed_here: count(p.partner_target_workers.len()),
                    partner_workers_unverified: count(p.partner_workers_unverified),
                    our_workers_employed_there: count(p.our_workers_there),
                    our_postings_shared: count(p.our_postings_shared),
                    partner_postings_open: count(p.partner_postings_open),
                }
            })
            .collect();
        Ok(Response::new(pb::GetCooperationStatsResponse {
            partners,
            partner_workers_employed_here: count(all_workers.len()),
            partner_target_workers_employed_here: count(all_targets.len()),
            target_partner_workers: i32::try_from(stats.target_workers).unwrap_or(i32::MAX),
            target_partner_target_workers: i32::try_from(stats.target_target_workers).unwrap_or(i32::MAX),
            period: Some(common::Period {
                first_day: Some(date_to_wire(stats.period.0)),
                last_day: Some(date_to_wire(stats.period.1)),
            }),
        }))
    }

    async fn list_exchange_messages(
        &self,
        request: Request<pb::ListExchangeMessagesRequest>,
    ) -> Result<Response<pb::ListExchangeMessagesResponse>, Status> {
        caller(&request)?;
        let message = request.into_inner();
        let direction = match pb::MessageDirection::try_from(message.direction) {
            Ok(pb::MessageDirection::Outgoing) => Some(Direction::Outgoing),
            Ok(pb::MessageDirection::Incoming) => Some(Direction::Incoming),
            Ok(pb::MessageDirection::Unspecified) => None,
            Err(_) => {
                return Err(Problem::invalid_field(
                    ErrorReason::FieldInvalid,
                    "direction",
                    "unknown direction",
                    "方向无效",
                )
                .into());
            }
        };
        let filter = MessageFilter {
            partner: partner_id("partner", &message.partner, false)?,
            direction,
            method: message.method.trim().to_string(),
        };
        let fingerprint = paging::fingerprint(&[
            &filter.partner,
            direction.map(Direction::as_str).unwrap_or(""),
            &filter.method,
        ]);
        let (size, cursor) = paging::page(message.page_size, &message.page_token, &fingerprint)?;
        let before: i64 = cursor
            .and_then(|c| c.into_iter().next())
            .and_then(|c| c.parse().ok())
            .unwrap_or(0);
        let mut connection = self.exchange.db().acquire().await.map_err(Problem::from)?;
        let mut rows = store::list_messages(&mut connection, &filter, before, size + 1)
            .await
            .map_err(Problem::from)?;
        let next_page_token = if rows.len() > size as usize {
            rows.truncate(size as usize);
            rows.last()
                .map(|r| paging::encode_token(&fingerprint, &[r.id.to_string()]))
                .unwrap_or_default()
        } else {
            String::new()
        };
        Ok(Response::new(pb::ListExchangeMessagesResponse {
            messages: rows.iter().map(message_to_wire).collect(),
            next_page_token,
        }))
    }

    async fn get_message(
        &self,
        request: Request<pb::GetMessageRequest>,
    ) -> Result<Response<pb::GetMessageResponse>, Status> {
        caller(&request)?;
        let name = &request.get_ref().name;
        let id: i64 = bangfu_platform::wire::id_of("name", name, "messages")?
            .parse()
            .map_err(|_| Problem::not_found(name))?;
        let mut connection = self.exchange.db().acquire().await.map_err(Problem::from)?;
        let entry = store::get_message(&mut connection, id)
            .await
            .map_err(Problem::from)?
            .ok_or_else(|| Problem::not_found(name))?;
        Ok(Response::new(pb::GetMessageResponse {
            message: Some(message_to_wire(&entry)),
        }))
    }

    async fn list_received_confirmations(
        &self,
        request: Request<pb::ListReceivedConfirmationsRequest>,
    ) -> Result<Response<pb::ListReceivedConfirmationsResponse>, Status> {
        caller(&request)?;
        let message = request.into_inner();
        let outcome = match pb::ConfirmationOutcome::try_from(message.outcome) {
            Ok(pb::ConfirmationOutcome::Unspecified) => "",
            Ok(pb::ConfirmationOutcome::Recorded) => "recorded",
            Ok(pb::ConfirmationOutcome::Unmatched) => "unmatched",
            Ok(pb::ConfirmationOutcome::Pending) => "pending",
            _ => {
                return Err(Problem::invalid_field(
                    ErrorReason::FieldInvalid,
                    "outcome",
                    "only RECORDED, UNMATCHED or PENDING are kept",
                    "确认结果筛选条件无效",
                )
                .into());
            }
        };
        let fingerprint = paging::fingerprint(&[outcome]);
        let (size, cursor) = paging::page(message.page_size, &message.page_token, &fingerprint)?;
        let before = cursor.and_then(|c| match c.as_slice() {
            [at, key] => at.parse::<i64>().ok().map(|at| (at, key.clone())),
            _ => None,
        });
        let mut rows = self.exchange.received_confirmations(outcome, before, size + 1).await?;
        let next_page_token = if rows.len() > size as usize {
            rows.truncate(size as usize);
            rows.last()
                .map(|r| {
                    paging::encode_token(
                        &fingerprint,
                        &[
                            r.received_us.to_string(),
                            format!("{}/{}", r.partner, r.confirmation_id),
                        ],
                    )
                })
                .unwrap_or_default()
        } else {
            String::new()
        };
        let confirmations = rows
            .into_iter()
            .map(|r| pb::ReceivedConfirmation {
                partner: format!("partners/{}", r.partner),
                confirmation_id: r.confirmation_id,
                person: if r.person_id.is_empty() {
                    String::new()
                } else {
                    format!("persons/{}", r.person_id)
                },
                outcome: match ConfirmationOutcome::parse(&r.outcome) {
                    Some(ConfirmationOutcome::Recorded) => pb::ConfirmationOutcome::Recorded,
                    Some(ConfirmationOutcome::Unmatched) => pb::ConfirmationOutcome::Unmatched,
                    _ => pb::ConfirmationOutcome::Pending,
                } as i32,
                employer: r.employer,
                work_region: r.work_region,
                start_date: bangfu_platform::parameters::parse_date_text(&r.start_date).map(date_to_wire),
                receive_time: bangfu_platform::db::from_micros(r.received_us).map(timestamp_to_wire),
            })
            .collect();
        Ok(Response::new(pb::ListReceivedConfirmationsResponse {
            confirmations,
            next_page_token,
        }))
    }

    async fn list_parameters(
        &self,
        request: Request<pb::ListParametersRequest>,
    ) -> Result<Response<pb::ListParametersResponse>, Status> {
        let request = request.into_inner();
        let (parameters, next_page_token) = service_rpc::list_parameters(
            self.exchange.parameters(),
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
            self.exchange.parameters(),
            &caller,
            &method("UpdateParameter"),
            request.parameter.as_ref(),
            request.update_mask.as_ref(),
            request.allow_missing,
            self.exchange.now(),
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
            self.exchange.db(),
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
