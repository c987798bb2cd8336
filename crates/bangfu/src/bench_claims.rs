//! `bangfu bench claims`: SubmitClaim under load against a running suite, beside the
//! platform's cheapest authenticated call (GetServerInfo) on the same server, in one run.
//! Every call submits a new claim: a public-welfare-post month of Zaozhuang's shipped policy for
//! one of the persons the bench registers (poverty-alleviated, certified from 2021), months from
//! 2021-09 to 2025-12, so no two calls ask for the same person and month until the persons run
//! out of months.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use bangfu_proto::common::v1 as common;
use bangfu_proto::identity::v1 as id;
use bangfu_proto::subsidy::v1 as pb;
use tonic::metadata::MetadataValue;
use tonic::transport::Channel;

use crate::Failure;
use crate::bench::{Call, LoadArgs, load_call, load_run};

/// The claims a load run submits, in order.
#[derive(Debug)]
pub struct ClaimSequence {
    persons: Vec<String>,
    next: AtomicU64,
    run: String,
}

/// Months from 2021-09 (the first the shipped Zaozhuang post policy covers) to 2025-12.
const MONTHS: u64 = 52;

impl ClaimSequence {
    /// The next claim.
    pub fn next_claim(&self) -> pb::Claim {
        let i = self.next.fetch_add(1, Ordering::Relaxed);
        let person = &self.persons[(i % self.persons.len() as u64) as usize];
        let month_index = (i / self.persons.len() as u64) % MONTHS;
        let months_from_2021_09 = 8 + month_index as i32;
        let (year, month) = (2021 + months_from_2021_09 / 12, months_from_2021_09 % 12 + 1);
        let last = time::Month::try_from(month as u8).map(|m| m.length(year)).unwrap_or(28);
        pb::Claim {
            policy: "policies/zz-welfare-post-2021".into(),
            person: person.clone(),
            payee: Some(pb::Payee {
                payee: Some(pb::payee::Payee::Person(person.clone())),
            }),
            period: Some(common::Period {
                first_day: Some(common::Date { year, month, day: 1 }),
                last_day: Some(common::Date {
                    year,
                    month,
                    day: i32::from(last),
                }),
            }),
            facts: vec![
                pb::Fact {
                    name: "days_on_post".into(),
                    value: Some(pb::FactValue {
                        value: Some(pb::fact_value::Value::IntegerValue(i64::from(last))),
                    }),
                },
                pb::Fact {
                    name: "post_monthly_standard_fen".into(),
                    value: Some(pb::FactValue {
                        value: Some(pb::fact_value::Value::MoneyValue(common::Money { fen: 50_000 })),
                    }),
                },
            ],
            source: Some(pb::ClaimSource {
                system: "bench".into(),
                reference: format!("{}/{i}", self.run),
            }),
            ..Default::default()
        }
    }
}

fn authorized<T>(message: T, bearer: &MetadataValue<tonic::metadata::Ascii>) -> tonic::Request<T> {
    let mut request = tonic::Request::new(message);
    request.metadata_mut().insert("authorization", bearer.clone());
    request
}

/// A valid citizen ID from 17 digits.
fn citizen_id(body: &str) -> String {
    format!("{body}{}", crate::bench_data::check_character(body))
}

/// Registers `count` certified persons and makes sure Zaozhuang's 2021–2025 employment-subsidy
/// funds exist with room for the run.
async fn prepare(channel: &Channel, token: &str, count: usize) -> Result<ClaimSequence, Failure> {
    let bearer: MetadataValue<tonic::metadata::Ascii> = format!("Bearer {token}")
        .parse()
        .map_err(|_| Failure::usage("the token cannot be sent as a header"))?;
    let mut subsidy = pb::subsidy_service_client::SubsidyServiceClient::new(channel.clone());
    for year in 2021..=2025 {
        let fund = pb::Fund {
            display_name: format!("{year}年枣庄市就业补助资金（压测）"),
            fund_source: pb::FundSource::EmploymentSubsidy as i32,
            region_prefix: "3704".into(),
            year,
            budget_document: "压测".into(),
            budget: Some(common::Money { fen: 100_000_000_000 }),
            ..Default::default()
        };
        match subsidy
            .create_fund(authorized(
                pb::CreateFundRequest {
                    fund: Some(fund),
                    request_id: String::new(),
                },
                &bearer,
            ))
            .await
        {
            Ok(_) => {}
            Err(status) if status.code() == tonic::Code::AlreadyExists => {}
            Err(status) => return Err(crate::client::call_failed(&status)),
        }
    }
    let mut identity = id::identity_service_client::IdentityServiceClient::new(channel.clone());
    // Persons born on days after 1960-01-01 picked by the clock, so reruns rarely collide; one
    // that exists is skipped.
    let seed = time::OffsetDateTime::now_utc().unix_timestamp().rem_euclid(3000);
    let mut persons = Vec::with_capacity(count);
    let base = time::macros::date!(1960 - 01 - 01);
    for k in 0..count as i64 {
        let birth = base + time::Duration::days(seed * 3 + k / 900);
        let body = format!(
            "370402{:04}{:02}{:02}{:03}",
            birth.year(),
            u8::from(birth.month()),
            birth.day(),
            100 + k % 900
        );
        let created = identity
            .create_person(authorized(
                id::CreatePersonRequest {
                    person: Some(id::Person {
                        display_name: format!("压测{k}"),
                        citizen_id: citizen_id(&body),
                        registered_region: Some(common::RegionCode {
                            code: "370402001013".into(),
                            display_name: String::new(),
                        }),
                        ..Default::default()
                    }),
                    request_id: String::new(),
                },
                &bearer,
            ))
            .await;
        let name = match created {
            Ok(response) => response.into_inner().person.map(|p| p.name).unwrap_or_default(),
            Err(status) if status.code() == tonic::Code::AlreadyExists => continue,
            Err(status) => return Err(crate::client::call_failed(&status)),
        };
        identity
            .certify_category(authorized(
                id::CertifyCategoryRequest {
                    person: name.clone(),
                    certification: Some(common::CategoryCertification {
                        category: common::PersonCategory::PovertyAlleviated as i32,
                        certifying_body: "枣庄市市中区乡村振兴局".into(),
                        document_reference: "压测".into(),
                        valid_from: Some(common::Date {
                            year: 2021,
                            month: 1,
                            day: 1,
                        }),
                        ..Default::default()
                    }),
                    request_id: String::new(),
                },
                &bearer,
            ))
            .await
            .map_err(|s| crate::client::call_failed(&s))?;
        persons.push(name);
    }
    if persons.is_empty() {
        return Err(Failure::failed("no person could be registered for the run"));
    }
    Ok(ClaimSequence {
        persons,
        next: AtomicU64::new(0),
        run: format!("run-{}", time::OffsetDateTime::now_utc().unix_timestamp()),
    })
}

/// SubmitClaims: `count` new claims over `streams` streams at once, each in messages of 1,000
/// lines, the way a monthly payroll is sent; prints claims/s and the slowest message's answer
/// time.
async fn stream(
    channels: &[Channel],
    token: &str,
    sequence: &Arc<ClaimSequence>,
    count: usize,
    streams: usize,
) -> Result<(), Failure> {
    let bearer: MetadataValue<tonic::metadata::Ascii> = format!("Bearer {token}")
        .parse()
        .map_err(|_| Failure::usage("the token cannot be sent as a header"))?;
    let started = std::time::Instant::now();
    let mut tasks = tokio::task::JoinSet::new();
    for n in 0..streams {
        let share = count / streams + usize::from(n < count % streams);
        let messages: Vec<pb::SubmitClaimsRequest> = (0..share)
            .collect::<Vec<_>>()
            .chunks(1000)
            .map(|chunk| pb::SubmitClaimsRequest {
                lines: chunk
                    .iter()
                    .map(|i| pb::SubmitClaimsLine {
                        line_reference: format!("{n}-{i}"),
                        claim: Some(sequence.next_claim()),
                    })
                    .collect(),
            })
            .collect();
        let channel = channels[n % channels.len()].clone();
        let bearer = bearer.clone();
        tasks.spawn(async move {
            let mut subsidy = pb::subsidy_service_client::SubsidyServiceClient::new(channel)
                .max_decoding_message_size(64 * 1024 * 1024);
            let mut answers = subsidy
                .submit_claims(authorized(tokio_stream::iter(messages), &bearer))
                .await
                .map_err(|s| crate::client::call_failed(&s))?
                .into_inner();
            let (mut lines, mut refused, mut slowest) = (0usize, 0usize, std::time::Duration::ZERO);
            let mut last = std::time::Instant::now();
            while let Some(answer) = answers.message().await.map_err(|s| crate::client::call_failed(&s))? {
                slowest = slowest.max(last.elapsed());
                last = std::time::Instant::now();
                lines += answer.results.len();
                refused += answer.results.iter().filter(|r| r.error.is_some()).count();
            }
            Ok::<_, Failure>((lines, refused, slowest))
        });
    }
    let (mut lines, mut refused, mut slowest) = (0usize, 0usize, std::time::Duration::ZERO);
    while let Some(done) = tasks.join_next().await {
        let (l, r, s) = done.map_err(|e| Failure::failed(format!("a stream failed: {e}")))??;
        lines += l;
        refused += r;
        slowest = slowest.max(s);
    }
    let elapsed = started.elapsed();
    say!(
        "SubmitClaims  {lines} claims over {streams} streams in {:.2} s: {:.0} claims/s ({refused} refused), slowest message {:.0} ms",
        elapsed.as_secs_f64(),
        lines as f64 / elapsed.as_secs_f64(),
        slowest.as_secs_f64() * 1000.0
    );
    Ok(())
}

/// GetServerInfo, then SubmitClaim, with the same load settings on the same server; then,
/// with `stream_claims`, that many more through SubmitClaims.
pub async fn run(
    load: &LoadArgs,
    channels: &[Channel],
    token: &str,
    persons: usize,
    stream_claims: usize,
    streams: usize,
) -> Result<(), Failure> {
    let sequence = Arc::new(prepare(&channels[0], token, persons).await?);
    say!(
        "{} persons registered and certified; Zaozhuang funds 2021-2025 in place",
        sequence.persons.len()
    );
    let floor = load_run(load, channels, Some(token)).await?;
    say!("{}", floor.line("server-info"));
    let claims = load_call(load, channels, Some(token), &Call::SubmitClaim(sequence.clone())).await?;
    say!("{}", claims.line("submit"));
    say!(
        "SubmitClaim / GetServerInfo: throughput {:.3}x, p99 {:.2}x",
        claims.throughput() / floor.throughput(),
        claims.latency_us.value_at_quantile(0.99) as f64 / floor.latency_us.value_at_quantile(0.99).max(1) as f64
    );
    if stream_claims > 0 {
        stream(channels, token, &sequence, stream_claims, streams).await?;
    }
    Ok(())
}
