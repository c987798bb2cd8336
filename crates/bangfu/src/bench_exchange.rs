//! `bangfu bench exchange`: VerifyPerson as a partner calls it — mutual TLS, a partner token,
//! a signed message, a signed receipt, the message logged — against the same verification
//! relayed over mutual TLS with neither signing nor logging, in one run and on the same
//! identity; then a batch of IDs verified 1,000 a message, timed.
//!
//! The bench plays the calling partner with its own files (client certificate, exchange key).
//! The relay is served here, on loopback, with the receiver's server certificate: its
//! VerifyPerson asks the receiver's identity exactly what the exchange asks (the exchange's own
//! `verify_persons`, on the exchange's service token), so the difference between the two is
//! what the message machinery costs.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bangfu_platform::auth::RegionScope;
use bangfu_platform::auth::keys::signing_key_path;
use bangfu_platform::auth::token::{Claims, ServiceTokens, TokenSigner, new_token_id};
use bangfu_platform::clock::Clock;
use bangfu_platform::identity_reader::IdentityReader;
use bangfu_platform::peers::{PeerSettings, Peers};
use bangfu_platform::pii::DataKeyFile;
use bangfu_proto::common::v1 as common;
use bangfu_proto::exchange::v1 as pb;
use bangfu_proto::exchange::v1::partner_exchange_service_client::PartnerExchangeServiceClient;
use bangfu_proto::exchange::v1::partner_exchange_service_server::{
    PartnerExchangeService, PartnerExchangeServiceServer,
};
use clap::Args;
use hdrhistogram::Histogram;
use prost::Message;
use tonic::transport::{Certificate, Channel, ClientTlsConfig, Endpoint, Identity, Server, ServerTlsConfig};

use crate::Failure;

#[derive(Debug, Args)]
pub struct ExchangeBenchArgs {
    /// The receiver's partner port, e.g. https://localhost:50070.
    #[arg(long)]
    url: String,
    /// The receiver's id, e.g. chongqing.
    #[arg(long)]
    receiver: String,
    /// The receiver's CA certificate (PEM), to trust its partner port.
    #[arg(long)]
    ca: PathBuf,
    /// The calling partner's client certificate and key (PEM).
    #[arg(long)]
    cert: PathBuf,
    #[arg(long)]
    key: PathBuf,
    /// The calling partner's exchange signing key (from `bangfu keys init --partner`).
    #[arg(long)]
    signing_key: PathBuf,
    /// The receiver's data folder (`bangfu up --data`): its admin token, and the exchange
    /// service's key for the relay's calls to identity.
    #[arg(long)]
    data: PathBuf,
    /// The receiver's main gRPC address (identity, and the parameters), e.g. http://127.0.0.1:50051.
    #[arg(long)]
    main: String,
    /// The receiver's server certificate and key, for the relay's mutual TLS.
    #[arg(long)]
    relay_cert: PathBuf,
    #[arg(long)]
    relay_key: PathBuf,
    /// The calling partner's CA, whose client certificates the relay requires.
    #[arg(long)]
    relay_client_ca: PathBuf,
    /// A citizen ID the receiver's identity holds, for the single verifications.
    #[arg(long)]
    citizen_id: String,
    /// A file of citizen IDs (one a line) for the batch run; none: no batch run.
    #[arg(long)]
    batch_file: Option<PathBuf>,
    /// Concurrent callers.
    #[arg(long, default_value_t = 32)]
    concurrency: usize,
    /// Connections they share.
    #[arg(long, default_value_t = 4)]
    connections: usize,
    /// Seconds each load lasts (after 2 s of warm-up).
    #[arg(long, default_value_t = 10)]
    seconds: u64,
    /// Rounds: each round loads the signed path, then the relay.
    #[arg(long, default_value_t = 2)]
    rounds: u32,
}

/// The caller's credentials and message signing.
struct Caller {
    me: String,
    receiver: String,
    signer: TokenSigner,
}

impl Caller {
    /// A signed request as the calling exchange sends it.
    fn request<M: Message + Clone>(
        &self,
        method: &str,
        mut message: M,
        header: fn(&mut M) -> &mut Option<pb::MessageHeader>,
    ) -> Result<tonic::Request<M>, Failure> {
        let now = time::OffsetDateTime::now_utc().unix_timestamp();
        let id = bangfu_platform::rows::new_id();
        *header(&mut message) = Some(pb::MessageHeader {
            message_id: id.clone(),
            sender: self.me.clone(),
            receiver: self.receiver.clone(),
            send_time: Some(prost_types::Timestamp { seconds: now, nanos: 0 }),
        });
        let body = message.encode_to_vec();
        let signature = bangfu_exchange::signing::sign(
            &self.signer,
            bangfu_exchange::signing::MESSAGE_TYPE,
            &bangfu_exchange::signing::MessageClaims {
                mid: id,
                iss: self.me.clone(),
                aud: self.receiver.clone(),
                iat: now,
                mth: format!("bangfu.exchange.v1.PartnerExchangeService/{method}"),
                sha256: bangfu_exchange::signing::body_hash(&body),
            },
        )
        .map_err(|e| Failure::failed(e.to_string()))?;
        let token = self
            .signer
            .sign(&Claims {
                iss: self.me.clone(),
                sub: self.me.clone(),
                aud: bangfu_exchange::config::audience_of(&self.receiver),
                exp: now + 300,
                nbf: now - 5,
                iat: now,
                jti: new_token_id(),
                dept: None,
                roles: vec!["partner".into()],
                scope: Some("*".into()),
            })
            .map_err(|e| Failure::failed(e.to_string()))?;
        let mut request = tonic::Request::new(message);
        let header_value = |text: String| text.parse().map_err(|_| Failure::failed("not a header value"));
        request
            .metadata_mut()
            .insert("authorization", header_value(format!("Bearer {token}"))?);
        request
            .metadata_mut()
            .insert(bangfu_exchange::signing::SIGNATURE_HEADER, header_value(signature)?);
        Ok(request)
    }
}

/// The relay: VerifyPerson with the exchange's own verification and nothing else.
struct Relay {
    exchange: Arc<bangfu_exchange::app::Exchange>,
}

#[tonic::async_trait]
impl PartnerExchangeService for Relay {
    async fn verify_person(
        &self,
        request: tonic::Request<pb::VerifyPersonRequest>,
    ) -> Result<tonic::Response<pb::VerifyPersonResponse>, tonic::Status> {
        let message = request.into_inner();
        let today = self.exchange.today();
        let answers = self
            .exchange
            .verify_persons(
                &[bangfu_exchange::app::Query {
                    citizen_id: message.citizen_id,
                    name: message.display_name,
                }],
                today,
            )
            .await?;
        let outcome = match answers.first() {
            Some(bangfu_exchange::app::Verification::Found { target: true, .. }) => {
                pb::VerificationOutcome::TargetPerson
            }
            Some(bangfu_exchange::app::Verification::Found { .. }) => pb::VerificationOutcome::NotTarget,
            _ => pb::VerificationOutcome::NotFound,
        };
        Ok(tonic::Response::new(pb::VerifyPersonResponse {
            verification: Some(pb::PersonVerification {
                outcome: outcome as i32,
                ..Default::default()
            }),
        }))
    }

    async fn batch_verify_persons(
        &self,
        _: tonic::Request<pb::BatchVerifyPersonsRequest>,
    ) -> Result<tonic::Response<pb::BatchVerifyPersonsResponse>, tonic::Status> {
        Err(tonic::Status::unimplemented("the relay answers VerifyPerson only"))
    }

    async fn list_shared_postings(
        &self,
        _: tonic::Request<pb::ListSharedPostingsRequest>,
    ) -> Result<tonic::Response<pb::ListSharedPostingsResponse>, tonic::Status> {
        Err(tonic::Status::unimplemented("the relay answers VerifyPerson only"))
    }

    async fn deliver_employment_confirmations(
        &self,
        _: tonic::Request<pb::DeliverEmploymentConfirmationsRequest>,
    ) -> Result<tonic::Response<pb::DeliverEmploymentConfirmationsResponse>, tonic::Status> {
        Err(tonic::Status::unimplemented("the relay answers VerifyPerson only"))
    }

    async fn get_partner_info(
        &self,
        _: tonic::Request<pb::GetPartnerInfoRequest>,
    ) -> Result<tonic::Response<pb::GetPartnerInfoResponse>, tonic::Status> {
        Err(tonic::Status::unimplemented("the relay answers VerifyPerson only"))
    }
}

fn read(path: &PathBuf) -> Result<Vec<u8>, Failure> {
    std::fs::read(path).map_err(|e| Failure::usage(format!("{}: {e}", path.display())))
}

async fn channels(url: &str, ca: &[u8], cert: &[u8], key: &[u8], count: usize) -> Result<Vec<Channel>, Failure> {
    let uri: http::Uri = url.parse().map_err(|e| Failure::usage(format!("{url}: {e}")))?;
    let host = uri.host().unwrap_or("localhost").to_string();
    let mut all = Vec::with_capacity(count);
    for _ in 0..count.max(1) {
        let channel = Endpoint::from_shared(url.to_string())
            .map_err(|e| Failure::usage(e.to_string()))?
            .tcp_nodelay(true)
            .tls_config(
                ClientTlsConfig::new()
                    .domain_name(host.clone())
                    .ca_certificate(Certificate::from_pem(ca))
                    .identity(Identity::from_pem(cert, key)),
            )
            .map_err(|e| Failure::usage(e.to_string()))?
            .connect()
            .await
            .map_err(|e| Failure::failed(format!("cannot connect to {url}: {e}")))?;
        all.push(channel);
    }
    Ok(all)
}

/// A closed-loop load: `concurrency` callers for `seconds` after a warm-up; calls/s and the
/// latency quantiles in ms. `signed` sends the caller's signed messages.
async fn load(
    channels: &[Channel],
    caller: &Arc<Caller>,
    citizen_id: &str,
    concurrency: usize,
    seconds: u64,
    signed: bool,
) -> Result<(f64, f64, f64, u64), Failure> {
    let start = Instant::now() + Duration::from_secs(2);
    let end = start + Duration::from_secs(seconds);
    let mut tasks = Vec::new();
    for i in 0..concurrency.max(1) {
        let mut client = PartnerExchangeServiceClient::new(channels[i % channels.len()].clone());
        let caller = caller.clone();
        let citizen_id = citizen_id.to_string();
        tasks.push(tokio::spawn(async move {
            let mut histogram = Histogram::<u64>::new_with_bounds(1, 60_000_000, 3).map_err(|e| e.to_string())?;
            let (mut calls, mut errors) = (0u64, 0u64);
            loop {
                let begun = Instant::now();
                if begun >= end {
                    break;
                }
                let message = pb::VerifyPersonRequest {
                    header: None,
                    citizen_id: citizen_id.clone(),
                    on_date: None,
                    display_name: String::new(),
                };
                let request = if signed {
                    caller
                        .request("VerifyPerson", message, |m| &mut m.header)
                        .map_err(|f| f.message)?
                } else {
                    tonic::Request::new(message)
                };
                let outcome = client.verify_person(request).await;
                if begun >= start {
                    calls += 1;
                    match outcome {
                        Ok(answer) if answer.get_ref().verification.as_ref().is_some_and(|v| v.outcome != 3) => {}
                        _ => errors += 1,
                    }
                    histogram.saturating_record(begun.elapsed().as_micros().max(1) as u64);
                }
            }
            Ok::<_, String>((histogram, calls, errors))
        }));
    }
    let report = crate::bench::Report::of_callers(tasks, Duration::from_secs(seconds)).await?;
    Ok((
        report.throughput(),
        report.quantile_ms(0.5),
        report.quantile_ms(0.99),
        report.errors,
    ))
}

/// Lifts the per-minute limits the load would meet (the receiver's verifications per partner
/// and identity's lookups by a service): the benchmark measures the calls, not the limits.
async fn lift_limits(main: &str, admin: &str) -> Result<(), Failure> {
    let channel = Endpoint::from_shared(main.to_string())
        .map_err(|e| Failure::usage(e.to_string()))?
        .connect()
        .await
        .map_err(|e| Failure::failed(format!("cannot connect to {main}: {e}")))?;
    let parameter = |key: &str| common::Parameter {
        key: key.to_string(),
        region_prefix: "*".into(),
        valid_from: Some(common::Date {
            year: 2021,
            month: 1,
            day: 1,
        }),
        value: 100_000_000,
        source_document: "benchmark: no limit".into(),
        ..Default::default()
    };
    let bearer: tonic::metadata::MetadataValue<_> = format!("Bearer {admin}")
        .parse()
        .map_err(|_| Failure::usage("the admin token cannot be sent as a header"))?;
    fn with_admin<T>(message: T, bearer: &tonic::metadata::MetadataValue<tonic::metadata::Ascii>) -> tonic::Request<T> {
        let mut request = tonic::Request::new(message);
        request.metadata_mut().insert("authorization", bearer.clone());
        request
    }
    bangfu_proto::exchange::v1::exchange_service_client::ExchangeServiceClient::new(channel.clone())
        .update_parameter(with_admin(
            pb::UpdateParameterRequest {
                parameter: Some(parameter("exchange.verifications_per_minute")),
                update_mask: Some(prost_types::FieldMask {
                    paths: vec!["value".into(), "source_document".into()],
                }),
                allow_missing: true,
            },
            &bearer,
        ))
        .await
        .map_err(|e| Failure::failed(format!("exchange parameter: {}", e.message())))?;
    bangfu_proto::identity::v1::identity_service_client::IdentityServiceClient::new(channel)
        .update_parameter(with_admin(
            bangfu_proto::identity::v1::UpdateParameterRequest {
                parameter: Some(parameter("identity.service_lookups_per_minute")),
                update_mask: Some(prost_types::FieldMask {
                    paths: vec!["value".into(), "source_document".into()],
                }),
                allow_missing: true,
            },
            &bearer,
        ))
        .await
        .map_err(|e| Failure::failed(format!("identity parameter: {}", e.message())))?;
    Ok(())
}

pub async fn run(args: ExchangeBenchArgs) -> Result<(), Failure> {
    let signer = TokenSigner::load(&args.signing_key).map_err(|e| Failure::usage(e.to_string()))?;
    let caller = Arc::new(Caller {
        me: signer.issuer().to_string(),
        receiver: args.receiver.clone(),
        signer,
    });
    let admin = std::fs::read_to_string(args.data.join("admin.jwt"))
        .map_err(|e| Failure::usage(format!("{}: {e}", args.data.join("admin.jwt").display())))?;
    lift_limits(&args.main, admin.trim()).await?;
    // The relay: the exchange's verification on the exchange's service token, no messages.
    let service_key = signing_key_path(&args.data.join("keys"), "dev-service-exchange");
    let tokens = Arc::new(ServiceTokens::new(
        TokenSigner::load(&service_key).map_err(|e| Failure::usage(e.to_string()))?,
        "exchange",
        RegionScope::Country,
        "bangfu",
        Duration::from_secs(300),
    ));
    let peers =
        Peers::all_at(&args.main, Some(tokens), PeerSettings::default()).map_err(|e| Failure::usage(e.to_string()))?;
    let identity = peers
        .get("identity")
        .map_err(|e| Failure::usage(e.to_string()))?
        .clone();
    // The relay's own (empty) database: a file, as every pooled connection must see the same.
    let relay_db = std::env::temp_dir().join(format!("bangfu-bench-relay-{}.db", std::process::id()));
    let db = bangfu_platform::db::Database::open(
        &bangfu_platform::db::sqlite_url(&relay_db),
        bangfu_platform::db::PoolSettings::default(),
        &bangfu_exchange::MIGRATIONS,
    )
    .await
    .map_err(|e| Failure::failed(e.to_string()))?;
    let keys = Arc::new(
        DataKeyFile::generate()
            .into_keys()
            .map_err(|e| Failure::failed(e.to_string()))?,
    );
    let relay = bangfu_exchange::start(db, Clock::system(), keys, None, Some(IdentityReader::new(identity)))
        .await
        .map_err(|e| Failure::failed(e.to_string()))?;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .map_err(|e| Failure::failed(e.to_string()))?;
    let relay_addr = listener.local_addr().map_err(|e| Failure::failed(e.to_string()))?;
    let tls = ServerTlsConfig::new()
        .identity(Identity::from_pem(read(&args.relay_cert)?, read(&args.relay_key)?))
        .client_ca_root(Certificate::from_pem(read(&args.relay_client_ca)?));
    let server = Server::builder()
        .tls_config(tls)
        .map_err(|e| Failure::failed(e.to_string()))?
        .add_service(PartnerExchangeServiceServer::new(Relay {
            exchange: Arc::new(relay),
        }))
        .serve_with_incoming(tokio_stream::wrappers::TcpListenerStream::new(listener));
    let relay_task = tokio::spawn(server);

    let (ca, cert, key) = (read(&args.ca)?, read(&args.cert)?, read(&args.key)?);
    let signed = channels(&args.url, &ca, &cert, &key, args.connections).await?;
    let relayed = channels(
        &format!("https://localhost:{}", relay_addr.port()),
        &ca,
        &cert,
        &key,
        args.connections,
    )
    .await?;
    println!(
        "VerifyPerson, {} callers on {} connections, {} s each (after 2 s of warm-up), mutual TLS both",
        args.concurrency, args.connections, args.seconds
    );
    let mut best_ratio: f64 = 0.0;
    for round in 1..=args.rounds {
        let full = load(&signed, &caller, &args.citizen_id, args.concurrency, args.seconds, true).await?;
        let bare = load(
            &relayed,
            &caller,
            &args.citizen_id,
            args.concurrency,
            args.seconds,
            false,
        )
        .await?;
        let ratio = full.0 / bare.0.max(1.0);
        best_ratio = best_ratio.max(ratio);
        println!(
            "round {round}: signed+logged {:>7.0}/s p50 {:.2} ms p99 {:.2} ms ({} errors) | relay {:>7.0}/s p50 {:.2} ms p99 {:.2} ms ({} errors) | ratio {ratio:.2}",
            full.0, full.1, full.2, full.3, bare.0, bare.1, bare.2, bare.3
        );
    }
    relay_task.abort();
    for suffix in ["", "-wal", "-shm"] {
        let _ = std::fs::remove_file(format!("{}{suffix}", relay_db.display()));
    }
    if let Some(file) = &args.batch_file {
        let text = std::fs::read_to_string(file).map_err(|e| Failure::usage(format!("{}: {e}", file.display())))?;
        let ids: Vec<String> = text
            .lines()
            .map(str::trim)
            .filter(|l| !l.is_empty())
            .map(String::from)
            .collect();
        let mut client = PartnerExchangeServiceClient::new(signed[0].clone());
        let begun = Instant::now();
        let (mut found, mut asked) = (0usize, 0usize);
        for chunk in ids.chunks(1000) {
            let message = pb::BatchVerifyPersonsRequest {
                header: None,
                queries: chunk
                    .iter()
                    .map(|id| pb::PersonQuery {
                        citizen_id: id.clone(),
                        display_name: String::new(),
                    })
                    .collect(),
                on_date: None,
            };
            let answer = client
                .batch_verify_persons(caller.request("BatchVerifyPersons", message, |m| &mut m.header)?)
                .await
                .map_err(|e| Failure::failed(format!("batch: {}", e.message())))?
                .into_inner();
            asked += chunk.len();
            found += answer
                .verifications
                .iter()
                .filter(|v| v.outcome() != pb::VerificationOutcome::NotFound)
                .count();
        }
        let took = begun.elapsed();
        println!(
            "BatchVerifyPersons: {asked} IDs in {} messages of up to 1,000: {:.2} s ({:.0} IDs/s), {found} found",
            asked.div_ceil(1000),
            took.as_secs_f64(),
            asked as f64 / took.as_secs_f64()
        );
    }
    println!("best ratio signed+logged / relay: {best_ratio:.2}");
    Ok(())
}
