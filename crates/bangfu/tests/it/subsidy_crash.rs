//! Subsidy payment killed mid-call: identity and `bangfu serve subsidy` run as child processes
//! on PostgreSQL, and subsidy is SIGKILLed again and again while claims are submitted, the batch
//! is made, the disbursement file is exported and the bank's results are imported. The client
//! retries each call after the restart, as a county's system would. At the end: every claim once,
//! none lost, every line paid once, the file's totals the batch's, and the fund's ledger sums.

use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use bangfu_proto::common::v1 as common;
use bangfu_proto::identity::v1 as id;
use bangfu_proto::subsidy::v1 as pb;
use bangfu_proto::subsidy::v1::subsidy_service_client::SubsidyServiceClient;
use tonic::transport::Channel;

use crate::replicas::{authorized, bangfu, client, empty_database, operator_token};
use crate::up::free_port;

const BANGFU: &str = env!("CARGO_BIN_EXE_bangfu");
const PERSONS: u32 = 24;

/// One `bangfu serve <service>` child on PostgreSQL, restarted on a fresh port after a kill.
struct Served {
    service: &'static str,
    grpc: &'static str,
    env: Vec<(String, String)>,
    child: Option<Child>,
    addr: String,
    restarts: u32,
}

impl Served {
    fn start(service: &'static str, grpc: &'static str, env: Vec<(String, String)>) -> Self {
        let mut served = Self {
            service,
            grpc,
            env,
            child: None,
            addr: String::new(),
            restarts: 0,
        };
        served.spawn();
        served
    }

    fn spawn(&mut self) {
        let (port, health) = (free_port(), free_port());
        let child = Command::new(BANGFU)
            .env_clear()
            .args(["serve", self.service])
            .envs(self.env.iter().map(|(k, v)| (k.as_str(), v.as_str())))
            .env("BANGFU_LISTEN", format!("127.0.0.1:{port}"))
            .env("BANGFU_HEALTH_LISTEN", format!("127.0.0.1:{health}"))
            .env("BANGFU_LOG", "error")
            .stdout(Stdio::null())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("spawn bangfu serve");
        self.child = Some(child);
        self.addr = format!("http://127.0.0.1:{port}");
        let health = format!("http://127.0.0.1:{health}");
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            let checked = Command::new(BANGFU)
                .args(["health", "--addr", &health, "--service", self.grpc])
                .output()
                .expect("bangfu health");
            if checked.status.success() {
                return;
            }
            assert!(Instant::now() < deadline, "{} never became SERVING", self.service);
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// SIGKILL, then a new process on a new port.
    fn kill_and_restart(&mut self) {
        if let Some(mut child) = self.child.take() {
            child.kill().expect("SIGKILL");
            child.wait().expect("reaped");
        }
        self.restarts += 1;
        self.spawn();
    }
}

impl Drop for Served {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

async fn subsidy_client(addr: &str) -> Option<SubsidyServiceClient<Channel>> {
    let channel = Channel::from_shared(addr.to_string()).ok()?.connect().await.ok()?;
    Some(SubsidyServiceClient::new(channel))
}

/// Retries `call` against the current address until it succeeds; a refusal that retrying
/// cannot mend fails the test.
async fn until_ok<T, F, Fut>(served: &Served, what: &str, mut call: F) -> T
where
    F: FnMut(SubsidyServiceClient<Channel>) -> Fut,
    Fut: std::future::Future<Output = Result<T, tonic::Status>>,
{
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        if let Some(client) = subsidy_client(&served.addr).await {
            match call(client).await {
                Ok(value) => return value,
                Err(status)
                    if matches!(
                        status.code(),
                        tonic::Code::Unavailable | tonic::Code::Unknown | tonic::Code::Aborted | tonic::Code::Internal
                    ) => {}
                Err(status) => panic!("{what}: {status:?}"),
            }
        }
        assert!(Instant::now() < deadline, "{what} never succeeded");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Starts `call` on the current server, kills the server a moment into it, restarts it, and
/// lets the call end however it ends (committed or not: the retry decides).
async fn killed_during<F, Fut>(served: &mut Served, delay_ms: u64, call: F)
where
    F: FnOnce(SubsidyServiceClient<Channel>) -> Fut,
    Fut: std::future::Future + Send + 'static,
    Fut::Output: Send,
{
    if let Some(client) = subsidy_client(&served.addr).await {
        let in_flight = tokio::spawn(call(client));
        tokio::time::sleep(Duration::from_millis(delay_ms)).await;
        served.kill_and_restart();
        let _ = in_flight.await;
    }
}

fn claim(person: &str, n: u32) -> pb::Claim {
    pb::Claim {
        policy: "policies/zz-welfare-post-2021".into(),
        person: person.into(),
        payee: Some(pb::Payee {
            payee: Some(pb::payee::Payee::Person(person.into())),
        }),
        period: Some(common::Period {
            first_day: Some(common::Date {
                year: 2025,
                month: 3,
                day: 1,
            }),
            last_day: Some(common::Date {
                year: 2025,
                month: 3,
                day: 31,
            }),
        }),
        facts: vec![
            pb::Fact {
                name: "days_on_post".into(),
                value: Some(pb::FactValue {
                    value: Some(pb::fact_value::Value::IntegerValue(31)),
                }),
            },
            pb::Fact {
                name: "post_monthly_standard_fen".into(),
                value: Some(pb::FactValue {
                    value: Some(pb::fact_value::Value::MoneyValue(common::Money {
                        fen: 50_000 + i64::from(n),
                    })),
                }),
            },
        ],
        source: Some(pb::ClaimSource {
            system: "welfare-post".into(),
            reference: format!("assignments/{n}/months/2025-03"),
        }),
        ..Default::default()
    }
}

fn keys_init(dir: &Path) -> std::path::PathBuf {
    let keys = dir.join("keys");
    bangfu(
        &[
            "keys",
            "init",
            "--out",
            keys.to_str().expect("path"),
            "--services",
            "identity,subsidy",
        ],
        &[],
    );
    keys
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn subsidy_killed_again_and_again_on_postgres_pays_every_claim_once_and_the_ledger_sums() {
    let dir = tempfile::tempdir().expect("tmp");
    let keys = keys_init(dir.path());
    let identity_url = empty_database("crash_identity").await;
    let subsidy_url = empty_database("crash_subsidy").await;
    bangfu(&["migrate", "identity"], &[("DATABASE_URL", identity_url.as_str())]);
    bangfu(&["migrate", "subsidy"], &[("DATABASE_URL", subsidy_url.as_str())]);
    let path = |p: &Path| p.to_str().expect("path").to_string();
    let common_env = |url: &str, service: &str| {
        vec![
            ("DATABASE_URL".to_string(), url.to_string()),
            ("BANGFU_KEYS_DIR".to_string(), path(&keys.join("public"))),
            (
                "BANGFU_SIGNING_KEY".to_string(),
                path(&keys.join(service).join("signing.json")),
            ),
            ("BANGFU_DATA_KEYS".to_string(), path(&keys.join("data-keys.json"))),
        ]
    };
    let identity = Served::start(
        "identity",
        "bangfu.identity.v1.IdentityService",
        common_env(&identity_url, "identity"),
    );
    let mut subsidy_env = common_env(&subsidy_url, "subsidy");
    subsidy_env.push(("BANGFU_PEER_IDENTITY".to_string(), identity.addr.clone()));
    // The shipped policies cover 2021–2025; the clock stays real, the claims are for 2025-03.
    let mut subsidy = Served::start("subsidy", "bangfu.subsidy.v1.SubsidyService", subsidy_env);

    let agri = operator_token(&keys, "agri", "admin");
    let finance = operator_token(&keys, "finance", "reviewer");
    let finance_clerk = operator_token(&keys, "finance", "clerk");

    // Persons, certified, in identity (which is never killed).
    let mut persons = Vec::new();
    let mut people = client(&identity.addr).await;
    for n in 0..PERSONS {
        let body = format!("37040219750101{:03}", 100 + n);
        let person = people
            .create_person(authorized(
                id::CreatePersonRequest {
                    person: Some(id::Person {
                        display_name: format!("岗位{n}"),
                        citizen_id: bangfu_platform::testing::citizen_id(&body),
                        registered_region: Some(common::RegionCode {
                            code: "370402001013".into(),
                            display_name: String::new(),
                        }),
                        ..Default::default()
                    }),
                    request_id: String::new(),
                },
                &agri,
            ))
            .await
            .expect("person")
            .into_inner()
            .person
            .expect("person")
            .name;
        people
            .certify_category(authorized(
                id::CertifyCategoryRequest {
                    person: person.clone(),
                    certification: Some(common::CategoryCertification {
                        category: common::PersonCategory::PovertyAlleviated as i32,
                        certifying_body: "枣庄市市中区乡村振兴局".into(),
                        document_reference: "市中乡振〔2021〕1号".into(),
                        valid_from: Some(common::Date {
                            year: 2021,
                            month: 1,
                            day: 1,
                        }),
                        ..Default::default()
                    }),
                    request_id: String::new(),
                },
                &agri,
            ))
            .await
            .expect("certified");
        persons.push((person, body));
    }

    // The fund, and no notice period (so the batch may be approved today), each retried.
    let fund = until_ok(&subsidy, "fund", |mut c| {
        let token = agri.clone();
        async move {
            c.create_fund(authorized(
                pb::CreateFundRequest {
                    fund: Some(pb::Fund {
                        display_name: "2025年枣庄市就业补助资金".into(),
                        fund_source: pb::FundSource::EmploymentSubsidy as i32,
                        region_prefix: "3704".into(),
                        year: 2025,
                        budget_document: "枣财社指〔2025〕1号".into(),
                        budget: Some(common::Money { fen: 100_000_000 }),
                        ..Default::default()
                    }),
                    request_id: "crash-fund".into(),
                },
                &token,
            ))
            .await
            .map(|r| r.into_inner().fund.expect("fund"))
        }
    })
    .await;
    until_ok(&subsidy, "notice days", |mut c| {
        let token = agri.clone();
        async move {
            c.update_parameter(authorized(
                pb::UpdateParameterRequest {
                    parameter: Some(common::Parameter {
                        key: "subsidy.notice_days".into(),
                        region_prefix: "3704".into(),
                        valid_from: Some(common::Date {
                            year: 2020,
                            month: 1,
                            day: 1,
                        }),
                        value: 0,
                        source_document: "压力测试".into(),
                        ..Default::default()
                    }),
                    update_mask: None,
                    allow_missing: true,
                },
                &token,
            ))
            .await
            .map(|_| ())
        }
    })
    .await;

    // Claims and accounts, with a kill in flight every fourth claim.
    for (n, (person, body)) in persons.iter().enumerate() {
        let n = n as u32;
        if n.is_multiple_of(4) {
            let (token, request) = (agri.clone(), claim(person, n));
            killed_during(&mut subsidy, u64::from(n % 7) * 3, move |mut c| async move {
                c.submit_claim(authorized(
                    pb::SubmitClaimRequest {
                        claim: Some(request),
                        request_id: String::new(),
                    },
                    &token,
                ))
                .await
            })
            .await;
        }
        until_ok(&subsidy, "claim", |mut c| {
            let (token, request) = (agri.clone(), claim(person, n));
            async move {
                c.submit_claim(authorized(
                    pb::SubmitClaimRequest {
                        claim: Some(request),
                        request_id: String::new(),
                    },
                    &token,
                ))
                .await
            }
        })
        .await;
        until_ok(&subsidy, "account", |mut c| {
            let token = finance_clerk.clone();
            let account = pb::PayeeAccount {
                owner: Some(pb::Payee {
                    payee: Some(pb::payee::Payee::Person(person.clone())),
                }),
                kind: pb::PayeeAccountKind::SocialSecurityCard as i32,
                account_number: format!("6217000099{n:06}"),
                holder_name: format!("岗位{n}"),
                holder_citizen_id: bangfu_platform::testing::citizen_id(body),
                bank_name: "中国农业银行枣庄市中支行".into(),
                ..Default::default()
            };
            async move {
                c.register_payee_account(authorized(
                    pb::RegisterPayeeAccountRequest {
                        payee_account: Some(account),
                        request_id: format!("crash-account-{n}"),
                    },
                    &token,
                ))
                .await
            }
        })
        .await;
    }

    // The batch: killed while it is made, then retried under the same request id.
    let make = |token: String| {
        let fund = fund.name.clone();
        move |mut c: SubsidyServiceClient<Channel>| {
            let (token, fund) = (token.clone(), fund.clone());
            async move {
                c.create_payment_batch(authorized(
                    pb::CreatePaymentBatchRequest {
                        payment_batch: Some(pb::PaymentBatch {
                            display_name: "2025年3月公益性岗位补贴".into(),
                            selection: Some(pb::ClaimSelection {
                                fund,
                                region_prefix: "370402".into(),
                                ..Default::default()
                            }),
                            ..Default::default()
                        }),
                        request_id: "crash-batch".into(),
                    },
                    &token,
                ))
                .await
                .map(|r| r.into_inner().payment_batch.expect("batch"))
            }
        }
    };
    killed_during(&mut subsidy, 5, make(agri.clone())).await;
    let batch = until_ok(&subsidy, "batch", make(agri.clone())).await;
    assert_eq!(batch.control_count, i64::from(PERSONS), "every claim in the batch once");
    let expected: i64 = (0..PERSONS).map(|n| 50_000 + i64::from(n)).sum();
    assert_eq!(batch.control_amount.as_ref().map(|m| m.fen), Some(expected));

    let noticed = until_ok(&subsidy, "notice", |mut c| {
        let (token, name, etag) = (agri.clone(), batch.name.clone(), batch.etag.clone());
        async move {
            c.publish_batch_notice(authorized(
                pb::PublishBatchNoticeRequest {
                    issuer: "枣庄市市中区财政局".into(),
                    name,
                    first_day: None,
                    objection_contact: "市中区财政局".into(),
                    etag,
                },
                &token,
            ))
            .await
            .map(|r| r.into_inner().payment_batch.expect("batch"))
        }
    })
    .await;
    until_ok(&subsidy, "approval", |mut c| {
        let (token, name, etag) = (finance.clone(), noticed.name.clone(), noticed.etag.clone());
        async move {
            c.approve_payment_batch(authorized(
                pb::ApprovePaymentBatchRequest {
                    name,
                    note: "公示无异议".into(),
                    etag,
                },
                &token,
            ))
            .await
            .map(|_| ())
        }
    })
    .await;

    // The export: killed mid-stream, then read whole.
    let export = |token: String, name: String| {
        move |mut c: SubsidyServiceClient<Channel>| {
            let (token, name) = (token.clone(), name.clone());
            async move {
                let mut stream = c
                    .export_payment_batch(authorized(
                        pb::ExportPaymentBatchRequest {
                            name,
                            format: pb::DisbursementFileFormat::Csv as i32,
                            encoding: pb::FileEncoding::Utf8 as i32,
                            purpose: Some(common::AccessPurpose {
                                code: common::AccessPurposeCode::Payment as i32,
                                reference: "市中财支〔2025〕3号".into(),
                            }),
                        },
                        &token,
                    ))
                    .await?
                    .into_inner();
                let mut bytes = Vec::new();
                while let Some(message) = stream.message().await? {
                    match message.item {
                        Some(pb::export_payment_batch_response::Item::Chunk(chunk)) => bytes.extend(chunk),
                        Some(pb::export_payment_batch_response::Item::Trailer(trailer)) => {
                            return Ok((bytes, trailer));
                        }
                        _ => {}
                    }
                }
                Err(tonic::Status::unavailable("the stream ended before its trailer"))
            }
        }
    };
    killed_during(&mut subsidy, 3, export(finance_clerk.clone(), batch.name.clone())).await;
    let (file, trailer) = until_ok(&subsidy, "export", export(finance_clerk.clone(), batch.name.clone())).await;
    assert_eq!(trailer.line_count, i64::from(PERSONS));
    assert_eq!(trailer.total_amount.as_ref().map(|m| m.fen), Some(expected));
    let text = String::from_utf8(file).expect("UTF-8");
    let rows: Vec<&str> = text.lines().skip(1).filter(|r| !r.starts_with("合计")).collect();
    assert_eq!(rows.len(), PERSONS as usize, "one file line per claim");

    // The bank pays every line; the import is killed once, then retried; again changes nothing.
    let mut results = String::from("明细编号,金额（元）,结果,付款日期,银行流水号,失败原因\n");
    for row in &rows {
        let cells: Vec<&str> = row.split(',').collect();
        results.push_str(&format!("{},{},成功,2025-04-03,B{},\n", cells[1], cells[7], cells[0]));
    }
    let import = |token: String, name: String, file: Vec<u8>| {
        move |mut c: SubsidyServiceClient<Channel>| {
            let (token, name, file) = (token.clone(), name.clone(), file.clone());
            async move {
                let messages = vec![
                    pb::ImportBankResultsRequest {
                        item: Some(pb::import_bank_results_request::Item::Header(pb::BankResultsHeader {
                            payment_batch: name,
                            format: pb::BankResultFileFormat::Csv as i32,
                            encoding: pb::FileEncoding::Utf8 as i32,
                            file_name: "回盘.csv".into(),
                            bank_name: "中国农业银行枣庄分行".into(),
                            request_id: String::new(),
                        })),
                    },
                    pb::ImportBankResultsRequest {
                        item: Some(pb::import_bank_results_request::Item::Chunk(file)),
                    },
                ];
                let mut stream = c
                    .import_bank_results(authorized(tokio_stream::iter(messages), &token))
                    .await?
                    .into_inner();
                while let Some(message) = stream.message().await? {
                    if let Some(pb::import_bank_results_response::Item::Report(report)) = message.item {
                        return Ok(report);
                    }
                }
                Err(tonic::Status::unavailable("the stream ended before its report"))
            }
        }
    };
    let bytes = results.into_bytes();
    killed_during(
        &mut subsidy,
        4,
        import(finance_clerk.clone(), batch.name.clone(), bytes.clone()),
    )
    .await;
    let report = until_ok(
        &subsidy,
        "import",
        import(finance_clerk.clone(), batch.name.clone(), bytes.clone()),
    )
    .await;
    let again = until_ok(
        &subsidy,
        "import again",
        import(finance_clerk.clone(), batch.name.clone(), bytes),
    )
    .await;
    assert_eq!(report, again, "the same file again changes nothing");
    assert_eq!(report.paid_count, i64::from(PERSONS), "{report:?}");
    assert_eq!(report.paid_amount.as_ref().map(|m| m.fen), Some(expected));
    assert!(report.balanced, "{report:?}");

    // Nothing twice, nothing lost, and the fund's accounts sum to its budget.
    let claims = until_ok(&subsidy, "claims", |mut c| {
        let token = finance.clone();
        async move {
            c.list_claims(authorized(
                pb::ListClaimsRequest {
                    page_size: 1000,
                    ..Default::default()
                },
                &token,
            ))
            .await
            .map(|r| r.into_inner().claims)
        }
    })
    .await;
    assert_eq!(
        claims.len(),
        PERSONS as usize,
        "one claim per source, however often it was sent"
    );
    assert!(claims.iter().all(|c| c.state == pb::ClaimState::Paid as i32));
    let settled = until_ok(&subsidy, "fund", |mut c| {
        let (token, name) = (finance.clone(), fund.name.clone());
        async move {
            c.get_fund(authorized(pb::GetFundRequest { name }, &token))
                .await
                .map(|r| r.into_inner().fund.expect("fund"))
        }
    })
    .await;
    let fen = |m: &Option<common::Money>| m.as_ref().map(|m| m.fen).unwrap_or_default();
    assert_eq!(fen(&settled.consumed), expected);
    assert_eq!(fen(&settled.reserved) + fen(&settled.payable), 0);
    assert_eq!(
        fen(&settled.available) + fen(&settled.reserved) + fen(&settled.payable) + fen(&settled.consumed),
        fen(&settled.budget)
    );
    assert!(subsidy.restarts >= 9, "subsidy was killed {} times", subsidy.restarts);
}
