//! The exchange's use cases. Every message across the province line goes through [`Exchange::
//! check_incoming`] and [`Exchange::accept`] (received) or [`Exchange::send`] (sent): signed,
//! checked, answered with a receipt, and logged with its result — refusals too.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bangfu_platform::auth::Principal;
use bangfu_platform::clock::Clock;
use bangfu_platform::db::{Database, to_micros};
use bangfu_platform::error::{ErrorReason, Problem};
use bangfu_platform::identity_reader::{CategoryHeld, Employment, IdentityReader, Lookup, TARGET_CATEGORIES};
use bangfu_platform::parameters::Parameters;
use bangfu_platform::peers::CallContext;
use bangfu_platform::pii::{CitizenId, DataKeys};
use bangfu_platform::ratelimit::SubjectRateLimiter;
use bangfu_proto::common::v1 as common;
use bangfu_proto::exchange::v1 as pb;
use bangfu_proto::exchange::v1::partner_exchange_service_client::PartnerExchangeServiceClient;
use prost::Message;
use rustls_pki_types::CertificateDer;
use sqlx::AnyConnection;
use time::{Date, OffsetDateTime};
use tonic::transport::{Certificate, Channel, ClientTlsConfig, Endpoint, Identity};

use crate::config::{Ability, ExchangeConfig, Partner, hex};
use crate::signing::{self, MESSAGE_TYPE, MessageClaims, RECEIPT_TYPE, ReceiptClaims, SignatureError};
use crate::store::{self, Direction, LoggedMessage};

/// The full name of a partner-facing method, as signatures and the log name it.
pub fn partner_method(name: &str) -> String {
    format!("bangfu.exchange.v1.PartnerExchangeService/{name}")
}

/// The audit method name of a local method.
pub fn method(name: &str) -> String {
    format!("/bangfu.exchange.v1.ExchangeService/{name}")
}

/// How long a partner token we mint for a call lives.
const PARTNER_TOKEN_TTL: Duration = Duration::from_secs(300);
/// How long a call to a partner may take.
const PARTNER_CALL_TIMEOUT: Duration = Duration::from_secs(30);
/// The reporting system identity shows for what the exchange records.
pub const REPORTING_SYSTEM: &str = "鲁渝劳务协作交换";

/// A message received from a partner that passed every check, ready to be answered.
#[derive(Debug, Clone)]
pub struct Incoming {
    /// The partner's verified token, for the audit log.
    pub caller: Arc<Principal>,
    pub partner: Arc<Partner>,
    pub method: String,
    pub message_id: String,
    pub send_time: OffsetDateTime,
    pub request_hash: String,
    pub signature: String,
    pub body: Vec<u8>,
    pub items: i64,
}

/// What a partner sent, before it is checked: the caller, its certificates and signature.
pub struct Received<'a, M: Message> {
    pub caller: &'a Principal,
    pub certificates: Option<Arc<Vec<CertificateDer<'static>>>>,
    pub signature: Option<String>,
    pub method: &'static str,
    pub ability: Option<Ability>,
    pub header: Option<&'a pb::MessageHeader>,
    pub message: &'a M,
    pub items: usize,
}

/// One person asked about.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Query {
    pub citizen_id: String,
    pub name: String,
}

/// A minimized answer about one person.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verification {
    Found {
        target: bool,
        categories: Vec<CategoryHeld>,
        home_county: String,
        name_matches: Option<bool>,
    },
    NotFound,
    CitizenIdInvalid,
}

/// A confirmation as received.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Confirmation {
    pub confirmation_id: String,
    pub citizen_id: String,
    pub employer: String,
    pub work_region: String,
    pub start: Date,
    pub end: Option<Date>,
    pub contract_months: i32,
    pub income: Option<(i32, u8, i64)>,
}

/// What became of a received confirmation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ConfirmationOutcome {
    Recorded,
    Unmatched,
    Duplicate,
    Pending,
}

impl ConfirmationOutcome {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Recorded => "recorded",
            Self::Unmatched => "unmatched",
            Self::Duplicate => "duplicate",
            Self::Pending => "pending",
        }
    }

    pub fn parse(text: &str) -> Option<Self> {
        [Self::Recorded, Self::Unmatched, Self::Duplicate, Self::Pending]
            .into_iter()
            .find(|o| o.as_str() == text)
    }
}

/// The exchange desk.
pub struct Exchange {
    pub(crate) db: Database,
    parameters: Arc<Parameters>,
    clock: Clock,
    keys: Arc<DataKeys>,
    pub(crate) config: Option<Arc<ExchangeConfig>>,
    identity: Option<IdentityReader>,
    /// Job matching: our shared postings are read there, the partner's created there.
    pub(crate) jobs: Option<bangfu_platform::peers::Peer>,
    channels: HashMap<String, Channel>,
    verifications: SubjectRateLimiter,
    /// When each partner's last contact was written, and whether it was a failure: a message
    /// that succeeds writes it at most every few seconds (a row every message would queue them
    /// all on that one row), a failure and the success after one always.
    contacts: std::sync::Mutex<HashMap<String, (Instant, bool)>>,
}

/// How often a partner's successful contact is written at most.
const CONTACT_EVERY: Duration = Duration::from_secs(10);

impl Exchange {
    /// The desk over its database; `config` None when no partner is configured (the local
    /// methods answer, with no partners).
    pub fn new(
        db: Database,
        parameters: Arc<Parameters>,
        clock: Clock,
        keys: Arc<DataKeys>,
        config: Option<Arc<ExchangeConfig>>,
        identity: Option<IdentityReader>,
    ) -> Result<Self, String> {
        let mut channels = HashMap::new();
        if let Some(config) = &config {
            for partner in &config.partners {
                channels.insert(partner.id.clone(), channel_to(config, partner)?);
            }
        }
        Ok(Self {
            db,
            parameters,
            clock,
            keys,
            config,
            identity,
            jobs: None,
            channels,
            verifications: SubjectRateLimiter::named("exchange.verifications"),
            contacts: std::sync::Mutex::new(HashMap::new()),
        })
    }

    /// The desk with job matching to read our shared postings from and create the partner's in.
    pub fn with_jobs(mut self, jobs: bangfu_platform::peers::Peer) -> Self {
        self.jobs = Some(jobs);
        self
    }

    pub fn db(&self) -> &Database {
        &self.db
    }

    pub fn parameters(&self) -> &Parameters {
        &self.parameters
    }

    pub fn now(&self) -> OffsetDateTime {
        self.clock.now()
    }

    pub fn today(&self) -> Date {
        self.clock.today()
    }

    pub fn config(&self) -> Option<&Arc<ExchangeConfig>> {
        self.config.as_ref()
    }

    fn configured(&self) -> Result<&Arc<ExchangeConfig>, Problem> {
        self.config.as_ref().ok_or_else(|| {
            Problem::new(
                tonic::Code::FailedPrecondition,
                ErrorReason::StateConflict,
                "this exchange has no partners configured (BANGFU_EXCHANGE_CONFIG)",
                "本交换服务尚未配置协作省份",
            )
        })
    }

    fn identity(&self) -> Result<&IdentityReader, Problem> {
        self.identity.as_ref().ok_or_else(|| {
            Problem::new(
                tonic::Code::Unavailable,
                ErrorReason::PeerUnavailable,
                "identity is not configured for the exchange",
                "暂时无法连接身份服务，请稍后重试",
            )
        })
    }

    /// A configured partner by id, or NOT_FOUND.
    pub fn partner(&self, id: &str) -> Result<Arc<Partner>, Problem> {
        self.config
            .as_ref()
            .and_then(|c| c.partner(id))
            .cloned()
            .ok_or_else(|| Problem::not_found(&format!("partners/{id}")))
    }

    fn seal_body(&self, body: &[u8], partner: &str, message_id: &str) -> Result<Vec<u8>, Problem> {
        let aad = format!("exchange/{partner}/{message_id}");
        self.keys.encrypt(body, aad.as_bytes()).map_err(|error| {
            tracing::error!(%error, "cannot encrypt a message body");
            Problem::internal()
        })
    }

    // ----- received messages -----

    /// Checks a message from a partner: the certificate is that partner's, it may ask this,
    /// the header and signature match the message, its time is inside the window and its id
    /// is new. A refusal is logged with its reason before it is returned.
    pub async fn check_incoming<M: Message>(&self, received: Received<'_, M>) -> Result<Incoming, Problem> {
        let config = self.configured()?;
        let partner = config.partner(&received.caller.issuer).cloned().ok_or_else(|| {
            Problem::new(
                tonic::Code::Unauthenticated,
                ErrorReason::TokenWrongIssuer,
                "the token's issuer is not a configured partner",
                "令牌签发方不是已配置的协作省份",
            )
        })?;
        let body = received.message.encode_to_vec();
        let request_hash = signing::body_hash(&body);
        let header = received.header.cloned().unwrap_or_default();
        let send_time = header
            .send_time
            .as_ref()
            .and_then(|t| OffsetDateTime::from_unix_timestamp(t.seconds).ok())
            .unwrap_or(OffsetDateTime::UNIX_EPOCH);
        let mut incoming = Incoming {
            caller: Arc::new(received.caller.clone()),
            partner: partner.clone(),
            method: partner_method(received.method),
            message_id: header.message_id.clone(),
            send_time,
            request_hash,
            signature: received.signature.clone().unwrap_or_default(),
            body,
            items: received.items as i64,
        };
        let checked = self.checks(&config.id, &partner, &received, &header, &incoming).await;
        if let Err(problem) = checked {
            if incoming.message_id.is_empty() {
                incoming.message_id = "(none)".into();
            }
            self.log_refusal(&incoming, &problem).await;
            return Err(problem);
        }
        Ok(incoming)
    }

    async fn checks<M: Message>(
        &self,
        me: &str,
        partner: &Partner,
        received: &Received<'_, M>,
        header: &pb::MessageHeader,
        incoming: &Incoming,
    ) -> Result<(), Problem> {
        let chain = received.certificates.as_deref().map(Vec::as_slice).unwrap_or_default();
        if !crate::pki::issued_by(chain, &partner.ca_der) {
            return Err(Problem::new(
                tonic::Code::Unauthenticated,
                ErrorReason::ClientCertificateRefused,
                format!(
                    "the client certificate was not issued by the CA pinned for partner {}",
                    partner.id
                ),
                "客户端证书不是该协作省份的证书颁发机构签发的",
            )
            .with_metadata("partner", partner.id.as_str()));
        }
        if let Some(ability) = received.ability
            && !partner.may(ability)
        {
            return Err(Problem::new(
                tonic::Code::PermissionDenied,
                ErrorReason::PartnerNotAllowed,
                format!("partner {} may not ask {}", partner.id, ability.as_str()),
                "该协作省份无权调用此接口",
            )
            .with_metadata("partner", partner.id.as_str())
            .with_metadata("asked", ability.as_str()));
        }
        check_header(header, &partner.id, me)?;
        let invalid = |error: SignatureError| {
            Problem::new(
                tonic::Code::Unauthenticated,
                ErrorReason::MessageSignatureInvalid,
                format!("the message's signature is not valid: {error}"),
                "报文签名无效，已拒收",
            )
            .with_metadata("detail", error.detail())
        };
        let signature = received
            .signature
            .as_deref()
            .ok_or(SignatureError::Missing)
            .map_err(invalid)?;
        let claims: MessageClaims =
            signing::verify(signature, MESSAGE_TYPE, |kid| partner.key(kid)).map_err(invalid)?;
        let mismatch = |what| invalid(SignatureError::Mismatch(what));
        if claims.mid != header.message_id {
            return Err(mismatch("message id"));
        }
        if claims.iss != partner.id || claims.aud != me {
            return Err(mismatch("sender or receiver"));
        }
        if claims.mth != incoming.method {
            return Err(mismatch("method"));
        }
        if claims.iat != incoming.send_time.unix_timestamp() {
            return Err(mismatch("send time"));
        }
        if claims.sha256 != incoming.request_hash {
            return Err(mismatch("body hash"));
        }
        let window = self
            .parameters
            .require("exchange.message_window_seconds", &partner.region_prefix, self.today())
            .await?;
        let now = self.now();
        if (now - incoming.send_time).whole_seconds().abs() > window {
            return Err(Problem::new(
                tonic::Code::FailedPrecondition,
                ErrorReason::MessageTimeOutsideWindow,
                format!(
                    "the message was sent at {}, more than {window} s from this server's time",
                    incoming.send_time
                ),
                "报文发送时间超出允许的时间窗口，请核对双方服务器时间",
            )
            .with_metadata("window_seconds", window.to_string())
            .with_metadata("server_time", now.unix_timestamp().to_string()));
        }
        let mut connection = self.db.acquire().await?;
        if store::seen(&mut connection, &partner.id, &header.message_id).await? {
            return Err(replayed(&header.message_id));
        }
        Ok(())
    }

    /// The audit row of a message received: who (the partner's token), what and how it ended.
    fn audit_entry(&self, incoming: &Incoming) -> bangfu_platform::audit::AuditEntry {
        bangfu_platform::audit::AuditEntry::by(
            &incoming.caller,
            &format!("/{}", incoming.method),
            format!(
                "partners/{} message {} ({} item(s))",
                incoming.partner.id, incoming.message_id, incoming.items
            ),
            self.now(),
        )
    }

    /// Logs a refused message in the message log and the audit log (best effort: a refusal is
    /// returned even if the logs cannot take it, and the failure is logged).
    pub async fn log_refusal(&self, incoming: &Incoming, problem: &Problem) {
        let result = async {
            let body = self.seal_body(&incoming.body, &incoming.partner.id, &incoming.message_id)?;
            let mut connection = self.db.acquire().await?;
            bangfu_platform::audit::append(
                &mut connection,
                &self
                    .audit_entry(incoming)
                    .with_outcome(bangfu_platform::audit::Outcome::Denied, problem.reason_code()),
            )
            .await?;
            store::log_message(
                &mut connection,
                &LoggedMessage {
                    direction: Direction::Incoming,
                    partner: incoming.partner.id.clone(),
                    message_id: incoming.message_id.clone(),
                    method: incoming.method.clone(),
                    send_time: incoming.send_time,
                    log_time: self.now(),
                    request_sha256: signing::hex_of(&incoming.request_hash),
                    signature: incoming.signature.clone(),
                    request_body: body,
                    response_sha256: String::new(),
                    receipt: String::new(),
                    response_body: Vec::new(),
                    result: problem.reason_code().to_string(),
                    item_count: incoming.items,
                },
            )
            .await?;
            Ok::<_, Problem>(())
        }
        .await;
        if let Err(error) = result {
            tracing::error!(reason = %problem.reason_code(), error = %error.message, "cannot log a refused partner message");
        }
    }

    /// Answers a checked message: its id is marked seen, the exchange is logged with a signed
    /// receipt over the request and `response`, in one transaction the caller may add its own
    /// writes to before committing. Returns the open transaction and the receipt.
    pub async fn accept<R: Message>(
        &self,
        incoming: &Incoming,
        response: &R,
    ) -> Result<(sqlx::Transaction<'static, sqlx::Any>, String), Problem> {
        let config = self.configured()?;
        let body = response.encode_to_vec();
        let response_hash = signing::body_hash(&body);
        let now = self.now();
        let receipt = signing::sign(
            &config.signer,
            RECEIPT_TYPE,
            &ReceiptClaims {
                mid: incoming.message_id.clone(),
                iss: config.id.clone(),
                aud: incoming.partner.id.clone(),
                iat: now.unix_timestamp(),
                mth: incoming.method.clone(),
                req: incoming.request_hash.clone(),
                sha256: response_hash.clone(),
            },
        )
        .map_err(|_| Problem::internal())?;
        let request_body = self.seal_body(&incoming.body, &incoming.partner.id, &incoming.message_id)?;
        let response_body = self.seal_body(&body, &incoming.partner.id, &incoming.message_id)?;
        let mut tx = self.db.begin().await?;
        if !store::mark_seen(&mut tx, &incoming.partner.id, &incoming.message_id, now).await? {
            drop(tx);
            let problem = replayed(&incoming.message_id);
            self.log_refusal(incoming, &problem).await;
            return Err(problem);
        }
        store::log_message(
            &mut tx,
            &LoggedMessage {
                direction: Direction::Incoming,
                partner: incoming.partner.id.clone(),
                message_id: incoming.message_id.clone(),
                method: incoming.method.clone(),
                send_time: incoming.send_time,
                log_time: now,
                request_sha256: signing::hex_of(&incoming.request_hash),
                signature: incoming.signature.clone(),
                request_body,
                response_sha256: signing::hex_of(&response_hash),
                receipt: receipt.clone(),
                response_body,
                result: "OK".into(),
                item_count: incoming.items,
            },
        )
        .await?;
        if self.contact_due(&incoming.partner.id, false) {
            store::note_contact(&mut tx, &incoming.partner.id, now, "").await?;
        }
        bangfu_platform::audit::append(&mut tx, &self.audit_entry(incoming)).await?;
        Ok((tx, receipt))
    }

    /// Whether a contact with `partner` (`failed` or not) is to be written now.
    fn contact_due(&self, partner: &str, failed: bool) -> bool {
        let now = Instant::now();
        let mut contacts = self.contacts.lock().unwrap_or_else(|p| p.into_inner());
        let due = match contacts.get(partner) {
            None => true,
            Some((at, was_failure)) => failed || *was_failure || now.duration_since(*at) >= CONTACT_EVERY,
        };
        if due {
            contacts.insert(partner.to_string(), (now, failed));
        }
        due
    }

    /// Counts `cost` verifications against the partner's per-minute limit.
    pub async fn limit_verifications(&self, partner: &Partner, cost: usize) -> Result<(), Problem> {
        let per_minute = self
            .parameters
            .require(
                "exchange.verifications_per_minute",
                &partner.region_prefix,
                self.today(),
            )
            .await?;
        self.verifications.check(
            &partner.id,
            u32::try_from(per_minute).unwrap_or(u32::MAX),
            u32::try_from(cost).unwrap_or(u32::MAX),
            Instant::now(),
        )
    }

    /// Whether each person is a target person of ours on `day`, minimized. An invalid ID is
    /// answered on its own; identity audits every lookup as this service's.
    pub async fn verify_persons(&self, queries: &[Query], day: Date) -> Result<Vec<Verification>, Problem> {
        let identity = self.identity()?;
        let today = self.today();
        let mut answers = vec![Verification::NotFound; queries.len()];
        let mut asked = Vec::new();
        let mut positions = Vec::new();
        for (i, query) in queries.iter().enumerate() {
            match CitizenId::parse(&query.citizen_id, today) {
                Ok(id) => {
                    asked.push((id.as_str().to_string(), query.name.clone()));
                    positions.push(i);
                }
                Err(_) => answers[i] = Verification::CitizenIdInvalid,
            }
        }
        if asked.is_empty() {
            return Ok(answers);
        }
        let call = CallContext::own();
        let found = identity.lookup_many(&call, &asked).await?;
        let ids: Vec<String> = found
            .iter()
            .filter_map(|l| match l {
                Lookup::Found { person_id, .. } => Some(person_id.clone()),
                Lookup::NotFound => None,
            })
            .collect();
        let facts = identity.persons(&call, &ids, (day, day)).await?;
        for (position, lookup) in positions.into_iter().zip(found) {
            let Lookup::Found {
                person_id,
                name_matches,
            } = lookup
            else {
                continue;
            };
            let Some(person) = facts.get(&person_id) else {
                continue;
            };
            let categories: Vec<CategoryHeld> = person.certifications_on(day).cloned().collect();
            let target = categories
                .iter()
                .any(|c| TARGET_CATEGORIES.contains(&c.category.as_str()));
            let given_name = !queries[position].name.trim().is_empty();
            answers[position] = Verification::Found {
                target,
                categories: if target { categories } else { Vec::new() },
                home_county: person.registered_region.chars().take(6).collect(),
                name_matches: given_name.then_some(name_matches),
            };
        }
        Ok(answers)
    }

    /// Received confirmations with `outcome` ("" for all), newest first, one page.
    pub async fn received_confirmations(
        &self,
        outcome: &str,
        before: Option<(i64, String)>,
        limit: u32,
    ) -> Result<Vec<store::ReceivedRow>, Problem> {
        let mut connection = self.db.acquire().await?;
        Ok(store::received_confirmations(&mut connection, outcome, before, limit).await?)
    }

    /// Which of `ids` the partner's confirmations already hold.
    pub async fn known_confirmations(
        &self,
        partner: &str,
        ids: &[String],
    ) -> Result<std::collections::HashSet<String>, Problem> {
        if ids.is_empty() {
            return Ok(std::collections::HashSet::new());
        }
        let sql = format!(
            "SELECT confirmation_id FROM exchange_received_confirmations WHERE partner = $1 AND confirmation_id IN ({})",
            bangfu_platform::db::numbered_parameters(2, ids.len())
        );
        let mut query = sqlx::query_scalar(sqlx::AssertSqlSafe(sql)).bind(partner);
        for id in ids {
            query = query.bind(id);
        }
        let mut connection = self.db.acquire().await?;
        let known: std::collections::HashSet<String> = query.fetch_all(&mut *connection).await?.into_iter().collect();
        Ok(known)
    }

    /// Keeps new confirmations in the accepting transaction, PENDING until identity records
    /// them; one kept meanwhile by a racing message stays as it was (DUPLICATE).
    pub async fn keep_confirmations(
        &self,
        tx: &mut AnyConnection,
        partner: &Partner,
        confirmations: &[Confirmation],
    ) -> Result<Vec<ConfirmationOutcome>, Problem> {
        let now = self.now();
        let mut outcomes = Vec::with_capacity(confirmations.len());
        for confirmation in confirmations {
            let sealed = StoredConfirmation::of(confirmation).seal(
                &self.keys,
                &format!("confirmation/{}/{}", partner.id, confirmation.confirmation_id),
            )?;
            let inserted = sqlx::query(
                "INSERT INTO exchange_received_confirmations (partner, confirmation_id, body, person_id, outcome, \
                 employer, work_region, start_date, end_date, received_us) \
                 VALUES ($1, $2, $3, '', 'pending', $4, $5, $6, $8, $7) \
                 ON CONFLICT (partner, confirmation_id) DO NOTHING",
            )
            .bind(&partner.id)
            .bind(&confirmation.confirmation_id)
            .bind(sealed)
            .bind(&confirmation.employer)
            .bind(&confirmation.work_region)
            .bind(bangfu_platform::parameters::date_text(confirmation.start))
            .bind(to_micros(now))
            .bind(confirmation.end.map(bangfu_platform::parameters::date_text))
            .execute(&mut *tx)
            .await?;
            outcomes.push(if inserted.rows_affected() == 1 {
                ConfirmationOutcome::Pending
            } else {
                ConfirmationOutcome::Duplicate
            });
        }
        Ok(outcomes)
    }

    /// Records pending confirmations in identity: out-of-province employment and the month's
    /// income, once each (the confirmation's key is the request id), or keeps them unmatched
    /// when no person of ours holds the ID. Returns the outcome of each one tried, by id.
    pub async fn record_pending_confirmations(
        &self,
        partner: Option<&str>,
        limit: u32,
    ) -> Result<HashMap<(String, String), ConfirmationOutcome>, Problem> {
        let identity = self.identity()?;
        let rows: Vec<(String, String, Vec<u8>)> = {
            let mut connection = self.db.acquire().await?;
            sqlx::query_as(
                "SELECT partner, confirmation_id, body FROM exchange_received_confirmations \
                 WHERE outcome = 'pending' AND ($1 = '' OR partner = $1) ORDER BY received_us LIMIT $2",
            )
            .bind(partner.unwrap_or(""))
            .bind(i64::from(limit))
            .fetch_all(&mut *connection)
            .await?
        };
        let mut outcomes = HashMap::new();
        let call = CallContext::own();
        for (partner, confirmation_id, sealed) in rows {
            let stored = StoredConfirmation::open(
                &self.keys,
                &sealed,
                &format!("confirmation/{partner}/{confirmation_id}"),
            )?;
            let lookup = identity.lookup(&call, &stored.citizen_id, "").await?;
            let request_key = format!("exchange-{partner}-{confirmation_id}");
            let (outcome, person) = match lookup {
                Lookup::NotFound => (ConfirmationOutcome::Unmatched, String::new()),
                Lookup::Found { person_id, .. } => {
                    let employment = Employment {
                        person_id: person_id.clone(),
                        status: common::EmploymentStatus::EmployedOutOfProvince,
                        employer: stored.employer.clone(),
                        work_region: stored.work_region.clone(),
                        first: stored.start()?,
                        last: stored.end()?,
                        reporting_system: REPORTING_SYSTEM.to_string(),
                    };
                    identity.record_employment(&call, &employment, &request_key).await?;
                    if let Some((year, month, fen)) = stored.income {
                        identity
                            .record_income(
                                &call,
                                &person_id,
                                (year, month),
                                fen,
                                REPORTING_SYSTEM,
                                &format!("{request_key}-income"),
                            )
                            .await?;
                    }
                    (ConfirmationOutcome::Recorded, person_id)
                }
            };
            let mut connection = self.db.acquire().await?;
            sqlx::query(
                "UPDATE exchange_received_confirmations SET outcome = $1, person_id = $2, recorded_us = $3 \
                 WHERE partner = $4 AND confirmation_id = $5 AND outcome = 'pending'",
            )
            .bind(outcome.as_str())
            .bind(&person)
            .bind(to_micros(self.now()))
            .bind(&partner)
            .bind(&confirmation_id)
            .execute(&mut *connection)
            .await?;
            outcomes.insert((partner, confirmation_id), outcome);
        }
        Ok(outcomes)
    }

    // ----- sent messages -----

    /// Sends a message to a partner: header and signature made, the call made over mutual TLS
    /// with our partner token, the receipt checked against the request and the answer, and the
    /// exchange logged with its result either way. Returns the answer and the log row's id.
    pub async fn send<Req, Resp, F, Fut>(
        &self,
        partner: &Partner,
        method: &'static str,
        mut message: Req,
        header_of: fn(&mut Req) -> &mut Option<pb::MessageHeader>,
        items: usize,
        call: F,
    ) -> Result<(Resp, i64), Problem>
    where
        Req: Message + Clone,
        Resp: Message + Default,
        F: FnOnce(PartnerExchangeServiceClient<Channel>, tonic::Request<Req>) -> Fut,
        Fut: std::future::Future<Output = Result<tonic::Response<Resp>, tonic::Status>>,
    {
        let config = self.configured()?;
        let channel = self.channels.get(&partner.id).cloned().ok_or_else(Problem::internal)?;
        let now = self.now();
        let message_id = bangfu_platform::rows::new_id();
        *header_of(&mut message) = Some(pb::MessageHeader {
            message_id: message_id.clone(),
            sender: config.id.clone(),
            receiver: partner.id.clone(),
            send_time: Some(prost_types::Timestamp {
                seconds: now.unix_timestamp(),
                nanos: 0,
            }),
        });
        let body = message.encode_to_vec();
        let request_hash = signing::body_hash(&body);
        let full_method = partner_method(method);
        let signature = signing::sign(
            &config.signer,
            MESSAGE_TYPE,
            &MessageClaims {
                mid: message_id.clone(),
                iss: config.id.clone(),
                aud: partner.id.clone(),
                iat: now.unix_timestamp(),
                mth: full_method.clone(),
                sha256: request_hash.clone(),
            },
        )
        .map_err(|_| Problem::internal())?;
        let token = partner_token(config, partner, now).map_err(|_| Problem::internal())?;
        let mut request = tonic::Request::new(message);
        request.set_timeout(PARTNER_CALL_TIMEOUT);
        let metadata = request.metadata_mut();
        let header_value = |text: &str| text.parse().map_err(|_| Problem::internal());
        metadata.insert("authorization", header_value(&format!("Bearer {token}"))?);
        metadata.insert(signing::SIGNATURE_HEADER, header_value(&signature)?);
        let client = PartnerExchangeServiceClient::new(channel)
            .max_decoding_message_size(64 * 1024 * 1024)
            .max_encoding_message_size(64 * 1024 * 1024);
        let outcome = tokio::time::timeout(PARTNER_CALL_TIMEOUT, call(client, request)).await;
        let mut logged = LoggedMessage {
            direction: Direction::Outgoing,
            partner: partner.id.clone(),
            message_id: message_id.clone(),
            method: full_method.clone(),
            send_time: now,
            log_time: self.now(),
            request_sha256: signing::hex_of(&request_hash),
            signature,
            request_body: self.seal_body(&body, &partner.id, &message_id)?,
            response_sha256: String::new(),
            receipt: String::new(),
            response_body: Vec::new(),
            result: String::new(),
            item_count: items as i64,
        };
        let answer = match outcome {
            Err(_) => Err(unavailable(partner, "did not answer in time")),
            Ok(Err(status)) => Err(refused_by_partner(partner, &status)),
            Ok(Ok(response)) => {
                let receipt = response
                    .metadata()
                    .get(signing::RECEIPT_HEADER)
                    .and_then(|v| v.to_str().ok())
                    .map(str::to_string);
                let answer = response.into_inner();
                let answer_body = answer.encode_to_vec();
                let answer_hash = signing::body_hash(&answer_body);
                match check_receipt(
                    partner,
                    &config.id,
                    &message_id,
                    &full_method,
                    &request_hash,
                    &answer_hash,
                    receipt.as_deref(),
                ) {
                    Ok(()) => {
                        logged.response_sha256 = signing::hex_of(&answer_hash);
                        logged.receipt = receipt.unwrap_or_default();
                        logged.response_body = self.seal_body(&answer_body, &partner.id, &message_id)?;
                        Ok(answer)
                    }
                    Err(error) => Err(unavailable(
                        partner,
                        &format!("answered without a valid receipt: {error}"),
                    )),
                }
            }
        };
        logged.result = match &answer {
            Ok(_) => "OK".to_string(),
            Err(problem) => problem.reason_code().to_string(),
        };
        let error = answer.as_ref().err().map(|p| p.message.clone()).unwrap_or_default();
        let mut tx = self.db.begin().await?;
        let id = store::log_message(&mut tx, &logged).await?;
        // A refusal is an answer: the partner is there.
        let reachable = !matches!(&answer, Err(p) if p.reason == ErrorReason::PartnerUnavailable);
        if self.contact_due(&partner.id, !reachable) {
            store::note_contact(&mut tx, &partner.id, self.now(), if reachable { "" } else { &error }).await?;
        }
        tx.commit().await.map_err(bangfu_platform::db::DbError::from)?;
        answer.map(|a| (a, id))
    }
}

/// The channel to a partner's exchange: its pinned CA, our certificate as client identity.
fn channel_to(config: &ExchangeConfig, partner: &Partner) -> Result<Channel, String> {
    let uri: http::Uri = partner
        .url
        .parse()
        .map_err(|e| format!("partner {} url {:?}: {e}", partner.id, partner.url))?;
    let host = uri
        .host()
        .ok_or_else(|| format!("partner {} url {:?} names no host", partner.id, partner.url))?
        .to_string();
    let tls = ClientTlsConfig::new()
        .domain_name(host)
        .ca_certificate(Certificate::from_pem(&partner.ca_pem))
        .identity(Identity::from_pem(&config.tls_cert, &config.tls_key));
    Ok(Endpoint::from_shared(partner.url.clone())
        .map_err(|e| format!("partner {}: {e}", partner.id))?
        .connect_timeout(Duration::from_secs(5))
        .tcp_nodelay(true)
        .tls_config(tls)
        .map_err(|e| format!("partner {}: TLS: {e}", partner.id))?
        .connect_lazy())
}

/// The partner token we call `partner` with: signed by our exchange key, for its audience.
fn partner_token(config: &ExchangeConfig, partner: &Partner, now: OffsetDateTime) -> Result<String, String> {
    let now = now.unix_timestamp();
    let claims = bangfu_platform::auth::token::Claims {
        iss: config.id.clone(),
        sub: config.id.clone(),
        aud: partner.audience(),
        exp: now + PARTNER_TOKEN_TTL.as_secs() as i64,
        nbf: now - 5,
        iat: now,
        jti: bangfu_platform::auth::token::new_token_id(),
        dept: None,
        roles: vec!["partner".into()],
        scope: Some(partner.region_prefix.clone()),
    };
    config.signer.sign(&claims).map_err(|e| e.to_string())
}

fn check_receipt(
    partner: &Partner,
    me: &str,
    message_id: &str,
    method: &str,
    request_hash: &str,
    answer_hash: &str,
    receipt: Option<&str>,
) -> Result<(), SignatureError> {
    let receipt = receipt.ok_or(SignatureError::Missing)?;
    let claims: ReceiptClaims = signing::verify(receipt, RECEIPT_TYPE, |kid| partner.key(kid))?;
    if claims.mid != message_id || claims.iss != partner.id || claims.aud != me || claims.mth != method {
        return Err(SignatureError::Mismatch("message"));
    }
    if claims.req != request_hash {
        return Err(SignatureError::Mismatch("request hash"));
    }
    if claims.sha256 != answer_hash {
        return Err(SignatureError::Mismatch("answer hash"));
    }
    Ok(())
}

fn check_header(header: &pb::MessageHeader, partner: &str, me: &str) -> Result<(), Problem> {
    let id = &header.message_id;
    if !bangfu_platform::wire::is_id(id) {
        return Err(Problem::invalid_field(
            ErrorReason::FieldInvalid,
            "header.message_id",
            "must be 1 to 64 characters of [A-Za-z0-9_-]",
            "报文编号格式不正确",
        ));
    }
    if header.sender != partner {
        return Err(Problem::invalid_field(
            ErrorReason::FieldInvalid,
            "header.sender",
            "must be the calling partner's id",
            "报文发送方与调用方不符",
        ));
    }
    if header.receiver != me {
        return Err(Problem::invalid_field(
            ErrorReason::FieldInvalid,
            "header.receiver",
            "must be this exchange's id",
            "报文接收方不是本交换服务",
        ));
    }
    if header.send_time.is_none() {
        return Err(Problem::required("header.send_time", "报文发送时间"));
    }
    Ok(())
}

fn replayed(message_id: &str) -> Problem {
    Problem::new(
        tonic::Code::AlreadyExists,
        ErrorReason::MessageReplayed,
        format!("message {message_id} was received before; a message is accepted once"),
        "该报文已接收过，重复报文已拒收",
    )
    .with_metadata("message_id", message_id)
}

fn unavailable(partner: &Partner, what: &str) -> Problem {
    Problem::new(
        tonic::Code::Unavailable,
        ErrorReason::PartnerUnavailable,
        format!("partner {} {what}", partner.id),
        format!("暂时无法与协作省份（{}）交换数据，请稍后重试", partner.display_name),
    )
    .with_metadata("partner", partner.id.as_str())
}

/// A partner's refusal as our caller sees it: its reason travels on; a transport failure is
/// the partner being unavailable.
fn refused_by_partner(partner: &Partner, status: &tonic::Status) -> Problem {
    let reason = bangfu_platform::error::reason_of(status)
        .and_then(|code| ErrorReason::from_str_name(&format!("ERROR_REASON_{code}")));
    match reason {
        None => unavailable(partner, &format!("is not reachable: {}", status.message())),
        Some(reason) => Problem::new(
            status.code(),
            reason,
            format!("partner {}: {}", partner.id, status.message()),
            format!("协作省份（{}）拒绝了该请求：{}", partner.display_name, status.message()),
        )
        .with_metadata("partner", partner.id.as_str()),
    }
}

/// A received confirmation as kept (encrypted) until identity records it.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
struct StoredConfirmation {
    citizen_id: String,
    employer: String,
    work_region: String,
    start: String,
    end: Option<String>,
    contract_months: i32,
    income: Option<(i32, u8, i64)>,
}

impl StoredConfirmation {
    /// Encrypted, bound to `aad` (where it is kept), as the tables keep it: it holds a citizen ID.
    fn seal(&self, keys: &DataKeys, aad: &str) -> Result<Vec<u8>, Problem> {
        let body = serde_json::to_vec(self).map_err(|_| Problem::internal())?;
        keys.encrypt(&body, aad.as_bytes()).map_err(|_| Problem::internal())
    }

    /// What [`seal`](Self::seal) kept under `aad`.
    fn open(keys: &DataKeys, sealed: &[u8], aad: &str) -> Result<Self, Problem> {
        let body = keys.decrypt(sealed, aad.as_bytes()).map_err(|_| Problem::internal())?;
        serde_json::from_slice(&body).map_err(|_| Problem::internal())
    }

    fn of(c: &Confirmation) -> Self {
        Self {
            citizen_id: c.citizen_id.clone(),
            employer: c.employer.clone(),
            work_region: c.work_region.clone(),
            start: bangfu_platform::parameters::date_text(c.start),
            end: c.end.map(bangfu_platform::parameters::date_text),
            contract_months: c.contract_months,
            income: c.income,
        }
    }

    fn start(&self) -> Result<Date, Problem> {
        bangfu_platform::parameters::parse_date_text(&self.start).ok_or_else(Problem::internal)
    }

    fn end(&self) -> Result<Option<Date>, Problem> {
        self.end
            .as_deref()
            .map(|d| bangfu_platform::parameters::parse_date_text(d).ok_or_else(Problem::internal))
            .transpose()
    }
}

/// What the message log's sealer does on its schedule.
pub async fn seal_log(db: &Database) -> Result<u64, bangfu_platform::db::DbError> {
    store::seal(db).await
}

/// Lowercase hex of a SHA-256, for the partner list.
pub fn fingerprint(der: &[u8]) -> String {
    use sha2::Digest;
    hex(&sha2::Sha256::digest(der))
}

/// Employment statuses that are work a partner hears of.
fn is_work(status: common::EmploymentStatus) -> bool {
    use common::EmploymentStatus as S;
    matches!(
        status,
        S::EmployedInCounty
            | S::EmployedOutOfCounty
            | S::EmployedOutOfProvince
            | S::SelfEmployed
            | S::PublicWelfarePost
            | S::WorkRelief
    )
}

/// The confirmation id of one period of work: the same period confirmed again keeps its id
/// (the partner records it once); a period that ended or changed gets a new one.
pub fn confirmation_id_of(me: &str, employment: &Employment) -> String {
    use sha2::Digest;
    let mut hasher = sha2::Sha256::new();
    for part in [
        employment.person_id.as_str(),
        &bangfu_platform::parameters::date_text(employment.first),
        &employment
            .last
            .map(bangfu_platform::parameters::date_text)
            .unwrap_or_default(),
        &employment.employer,
        &employment.work_region,
    ] {
        hasher.update((part.len() as u32).to_be_bytes());
        hasher.update(part.as_bytes());
    }
    format!("{me}-{}", &hex(&hasher.finalize())[..32])
}

/// Notes a person whose employment changed (the follower of identity's feed calls it in the
/// transaction that moves its cursor).
pub async fn note_person(tx: &mut AnyConnection, person_id: &str, now: OffsetDateTime) -> Result<(), Problem> {
    sqlx::query(
        "INSERT INTO exchange_noted_persons (person_id, noted_us) VALUES ($1, $2) \
         ON CONFLICT (person_id) DO UPDATE SET noted_us = excluded.noted_us",
    )
    .bind(person_id)
    .bind(to_micros(now))
    .execute(tx)
    .await?;
    Ok(())
}

/// What one round of sending did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct SendRound {
    /// Confirmations queued from noted persons.
    pub queued: usize,
    /// Confirmations the partners answered for.
    pub delivered: usize,
}

impl Exchange {
    /// One round of employment confirmations to partners: noted persons registered in a
    /// partner's region get a confirmation queued for each period of work here (the note goes
    /// in the same transaction), then every partner is sent what waits for it, up to 1,000 per
    /// message. A partner that does not answer keeps its queue for the next round: nothing is
    /// lost when either side restarts, and the partner records each confirmation once.
    pub async fn send_confirmations(&self) -> Result<SendRound, Problem> {
        let Some(config) = self.config.clone() else {
            return Ok(SendRound::default());
        };
        let queued = self.queue_noted_persons(&config).await?;
        let mut delivered = 0;
        for partner in &config.partners {
            if !partner.may(Ability::EmploymentConfirmations) {
                continue;
            }
            delivered += self.deliver_waiting(partner).await?;
        }
        Ok(SendRound { queued, delivered })
    }

    async fn queue_noted_persons(&self, config: &ExchangeConfig) -> Result<usize, Problem> {
        let noted: Vec<(String, i64)> = {
            let mut connection = self.db.acquire().await?;
            sqlx::query_as("SELECT person_id, noted_us FROM exchange_noted_persons ORDER BY noted_us LIMIT 200")
                .fetch_all(&mut *connection)
                .await?
        };
        if noted.is_empty() {
            return Ok(0);
        }
        let identity = self.identity()?;
        let call = CallContext::own();
        let today = self.today();
        let ids: Vec<String> = noted.iter().map(|(id, _)| id.clone()).collect();
        let facts = identity.persons(&call, &ids, (today, today)).await?;
        let mut queued = 0;
        for (person_id, noted_us) in noted {
            let partner = facts.get(&person_id).and_then(|f| {
                config
                    .partners
                    .iter()
                    .find(|p| f.registered_region.starts_with(&p.region_prefix))
            });
            let mut confirmations = Vec::new();
            if let Some(partner) = partner {
                let work: Vec<Employment> = identity
                    .employment_records(&call, &person_id)
                    .await?
                    .into_iter()
                    .filter(|e| is_work(e.status) && e.work_region.starts_with(&config.region_prefix))
                    .collect();
                if !work.is_empty() {
                    let citizen_id = identity
                        .citizen_ids(
                            &call,
                            std::slice::from_ref(&person_id),
                            common::AccessPurposeCode::LaborCooperation,
                            "鲁渝劳务协作：向户籍地协作省份确认就业",
                        )
                        .await?
                        .remove(&person_id);
                    if let Some(citizen_id) = citizen_id {
                        for employment in work {
                            confirmations.push((
                                partner.clone(),
                                Confirmation {
                                    confirmation_id: confirmation_id_of(&config.id, &employment),
                                    citizen_id: citizen_id.clone(),
                                    employer: employment.employer.clone(),
                                    work_region: employment.work_region.clone(),
                                    start: employment.first,
                                    end: employment.last,
                                    contract_months: 0,
                                    income: None,
                                },
                            ));
                        }
                    }
                }
            }
            // Queued and un-noted together: a crash between leaves the note, and queuing again
            // finds the same confirmation ids.
            let mut tx = self.db.begin().await?;
            for (partner, confirmation) in &confirmations {
                let sealed = StoredConfirmation::of(confirmation)
                    .seal(&self.keys, &format!("outbox/{}", confirmation.confirmation_id))?;
                let inserted = sqlx::query(
                    "INSERT INTO exchange_outbox (id, partner, confirmation_id, body, state, person_id, target_person, \
                     start_date, end_date, created_us) VALUES ($1, $2, $3, $4, 'waiting', $5, -1, $6, $8, $7) \
                     ON CONFLICT (confirmation_id) DO NOTHING",
                )
                .bind(bangfu_platform::rows::new_id())
                .bind(&partner.id)
                .bind(&confirmation.confirmation_id)
                .bind(sealed)
                .bind(&person_id)
                .bind(bangfu_platform::parameters::date_text(confirmation.start))
                .bind(to_micros(self.now()))
                .bind(confirmation.end.map(bangfu_platform::parameters::date_text))
                .execute(&mut *tx)
                .await?;
                queued += inserted.rows_affected() as usize;
            }
            // Only the note read: a change noted meanwhile stays for the next round.
            sqlx::query("DELETE FROM exchange_noted_persons WHERE person_id = $1 AND noted_us = $2")
                .bind(&person_id)
                .bind(noted_us)
                .execute(&mut *tx)
                .await?;
            tx.commit().await.map_err(bangfu_platform::db::DbError::from)?;
        }
        Ok(queued)
    }

    /// Asks the partner which of the persons we confirm are its target persons (for the
    /// cooperation statistics); those it does not answer about stay unknown for the next round.
    async fn verify_targets(&self, partner: &Partner) -> Result<(), Problem> {
        let unknown: Vec<(String, Vec<u8>)> = {
            let mut connection = self.db.acquire().await?;
            sqlx::query_as(
                "SELECT confirmation_id, body FROM exchange_outbox WHERE partner = $1 AND target_person = -1 \
                 ORDER BY created_us, id LIMIT 1000",
            )
            .bind(&partner.id)
            .fetch_all(&mut *connection)
            .await?
        };
        if unknown.is_empty() {
            return Ok(());
        }
        let mut queries = Vec::with_capacity(unknown.len());
        for (confirmation_id, sealed) in &unknown {
            let stored = StoredConfirmation::open(&self.keys, sealed, &format!("outbox/{confirmation_id}"))?;
            queries.push(pb::PersonQuery {
                citizen_id: stored.citizen_id,
                display_name: String::new(),
            });
        }
        let asked = pb::BatchVerifyPersonsRequest {
            header: None,
            queries,
            on_date: None,
        };
        let answer = self
            .send(
                partner,
                "BatchVerifyPersons",
                asked,
                |m| &mut m.header,
                unknown.len(),
                |mut client, request| async move { client.batch_verify_persons(request).await },
            )
            .await;
        let Ok((answer, _)) = answer else {
            return Ok(());
        };
        let mut tx = self.db.begin().await?;
        for ((confirmation_id, _), verification) in unknown.iter().zip(&answer.verifications) {
            let target = i64::from(verification.outcome() == pb::VerificationOutcome::TargetPerson);
            sqlx::query("UPDATE exchange_outbox SET target_person = $1 WHERE confirmation_id = $2")
                .bind(target)
                .bind(confirmation_id)
                .execute(&mut *tx)
                .await?;
        }
        tx.commit().await.map_err(bangfu_platform::db::DbError::from)?;
        Ok(())
    }

    async fn deliver_waiting(&self, partner: &Partner) -> Result<usize, Problem> {
        self.verify_targets(partner).await?;
        let waiting: Vec<(String, String, Vec<u8>)> = {
            let mut connection = self.db.acquire().await?;
            sqlx::query_as(
                "SELECT id, confirmation_id, body FROM exchange_outbox WHERE partner = $1 AND state = 'waiting' \
                 ORDER BY created_us, id LIMIT 1000",
            )
            .bind(&partner.id)
            .fetch_all(&mut *connection)
            .await?
        };
        if waiting.is_empty() {
            return Ok(0);
        }
        let mut wire = Vec::with_capacity(waiting.len());
        for (_, confirmation_id, sealed) in &waiting {
            let stored = StoredConfirmation::open(&self.keys, sealed, &format!("outbox/{confirmation_id}"))?;
            wire.push(stored.to_wire(confirmation_id)?);
        }
        let message = pb::DeliverEmploymentConfirmationsRequest {
            header: None,
            confirmations: wire,
        };
        let sent = self
            .send(
                partner,
                "DeliverEmploymentConfirmations",
                message,
                |m| &mut m.header,
                waiting.len(),
                |mut client, request| async move { client.deliver_employment_confirmations(request).await },
            )
            .await;
        let answer = match sent {
            Ok((answer, _)) => answer,
            Err(problem) => {
                sqlx::query(
                    "UPDATE exchange_outbox SET attempts = attempts + 1 WHERE partner = $1 AND state = 'waiting'",
                )
                .bind(&partner.id)
                .execute(&mut *self.db.acquire().await?)
                .await?;
                tracing::info!(partner = %partner.id, reason = problem.reason_code(), waiting = waiting.len(), "confirmations wait for the partner");
                return Ok(0);
            }
        };
        let now = to_micros(self.now());
        let mut tx = self.db.begin().await?;
        let mut delivered = 0;
        for result in &answer.results {
            let outcome = match result.outcome() {
                pb::ConfirmationOutcome::Refused => format!("refused:{}:{}", result.reason, result.field),
                other => other
                    .as_str_name()
                    .trim_start_matches("CONFIRMATION_OUTCOME_")
                    .to_lowercase(),
            };
            let updated = sqlx::query(
                "UPDATE exchange_outbox SET state = 'delivered', outcome = $1, attempts = attempts + 1, delivered_us = $2 \
                 WHERE partner = $3 AND confirmation_id = $4 AND state = 'waiting'",
            )
            .bind(outcome)
            .bind(now)
            .bind(&partner.id)
            .bind(&result.confirmation_id)
            .execute(&mut *tx)
            .await?;
            delivered += updated.rows_affected() as usize;
        }
        tx.commit().await.map_err(bangfu_platform::db::DbError::from)?;
        Ok(delivered)
    }
}

impl StoredConfirmation {
    fn to_wire(&self, confirmation_id: &str) -> Result<pb::EmploymentConfirmation, Problem> {
        Ok(pb::EmploymentConfirmation {
            confirmation_id: confirmation_id.to_string(),
            citizen_id: self.citizen_id.clone(),
            employer: self.employer.clone(),
            work_region: self.work_region.clone(),
            start_date: Some(bangfu_platform::wire::date_to_wire(self.start()?)),
            end_date: self.end()?.map(bangfu_platform::wire::date_to_wire),
            contract_months: self.contract_months,
            monthly_income: self.income.map(|(_, _, fen)| common::Money { fen }),
            income_month: self.income.map(|(year, month, _)| common::YearMonth {
                year,
                month: i32::from(month),
            }),
        })
    }
}

/// One partner's cooperation counts for a period.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PartnerCounts {
    pub partner: String,
    pub partner_workers: std::collections::BTreeSet<String>,
    pub partner_target_workers: std::collections::BTreeSet<String>,
    pub partner_workers_unverified: usize,
    pub our_workers_there: usize,
    pub our_postings_shared: usize,
    pub partner_postings_open: usize,
}

/// The cooperation statistics of a period.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CooperationStats {
    pub partners: Vec<PartnerCounts>,
    pub target_workers: i64,
    pub target_target_workers: i64,
    pub period: (Date, Date),
}

impl Exchange {
    /// Workers of each partner's region employed here (confirmed to the partner) and ours
    /// employed there (confirmed to us, recorded), for periods of work overlapping `period`,
    /// with the postings shared now and the targets in force at the period's end.
    pub async fn cooperation_stats(&self, period: (Date, Date)) -> Result<CooperationStats, Problem> {
        let (first, last) = (
            bangfu_platform::parameters::date_text(period.0),
            bangfu_platform::parameters::date_text(period.1),
        );
        let mut stats = CooperationStats {
            partners: Vec::new(),
            target_workers: 0,
            target_target_workers: 0,
            period,
        };
        let Some(config) = self.config.clone() else {
            return Ok(stats);
        };
        let mut connection = self.db.acquire().await?;
        let shared: i64 = sqlx::query_scalar(
            "SELECT COUNT(*) FROM exchange_shared_feed f WHERE f.withdrawn = 0 \
             AND f.id = (SELECT MAX(g.id) FROM exchange_shared_feed g WHERE g.posting_id = f.posting_id)",
        )
        .fetch_one(&mut *connection)
        .await?;
        for partner in &config.partners {
            let mut counts = PartnerCounts {
                partner: partner.id.clone(),
                ..PartnerCounts::default()
            };
            let workers: Vec<(String, i64)> = sqlx::query_as(
                "SELECT person_id, MAX(target_person) FROM exchange_outbox WHERE partner = $1 \
                 AND start_date <= $2 AND (end_date IS NULL OR end_date >= $3) GROUP BY person_id",
            )
            .bind(&partner.id)
            .bind(&last)
            .bind(&first)
            .fetch_all(&mut *connection)
            .await?;
            for (person, target) in workers {
                match target {
                    1 => {
                        counts.partner_target_workers.insert(person.clone());
                    }
                    -1 => counts.partner_workers_unverified += 1,
                    _ => {}
                }
                counts.partner_workers.insert(person);
            }
            let there: i64 = sqlx::query_scalar(
                "SELECT COUNT(DISTINCT person_id) FROM exchange_received_confirmations WHERE partner = $1 \
                 AND outcome = 'recorded' AND start_date <= $2 AND (end_date IS NULL OR end_date >= $3)",
            )
            .bind(&partner.id)
            .bind(&last)
            .bind(&first)
            .fetch_one(&mut *connection)
            .await?;
            let open: i64 = sqlx::query_scalar(
                "SELECT COUNT(*) FROM exchange_partner_postings WHERE partner = $1 AND withdrawn = 0",
            )
            .bind(&partner.id)
            .fetch_one(&mut *connection)
            .await?;
            counts.our_workers_there = usize::try_from(there).unwrap_or(0);
            counts.partner_postings_open = usize::try_from(open).unwrap_or(0);
            if partner.may(Ability::SharedPostings) {
                counts.our_postings_shared = usize::try_from(shared).unwrap_or(0);
            }
            stats.partners.push(counts);
        }
        drop(connection);
        for (key, value) in [
            ("exchange.target_partner_workers", &mut stats.target_workers),
            (
                "exchange.target_partner_target_workers",
                &mut stats.target_target_workers,
            ),
        ] {
            *value = self
                .parameters
                .lookup(key, &config.region_prefix, period.1)
                .await
                .map_err(Problem::from)?
                .unwrap_or_default();
        }
        Ok(stats)
    }
}
