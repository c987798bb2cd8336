//! Identity, subsidy payment and work relief on one test server, as `bangfu up` hosts them, on a
//! fresh database per service of either backend, at 2025-03-02 10:00 in China (the shipped
//! Shandong work-relief remuneration policy is in force until 2025-12-31). The receipt follower
//! of subsidy payment's claim feed runs as the hosted service runs it.

use std::sync::Arc;
use std::time::Duration;

use bangfu_platform::auth::token::ServiceTokens;
use bangfu_platform::auth::{Department, RegionScope, Role};
use bangfu_platform::clock::{Clock, ManualTime};
use bangfu_platform::peers::{PeerSettings, Peers};
use bangfu_platform::pii::DataKeyFile;
pub use bangfu_platform::testing::{Backend, reason, wire_date as date};
use bangfu_platform::testing::{TcpProxy, TestDatabase, TestServer, citizen_id, server_config, with_token};
use bangfu_proto::common::v1 as common;
use bangfu_proto::identity::v1 as id;
use bangfu_proto::identity::v1::identity_service_client::IdentityServiceClient;
use bangfu_proto::subsidy::v1 as sub;
use bangfu_proto::subsidy::v1::subsidy_service_client::SubsidyServiceClient;
use bangfu_proto::work_relief::v1 as pb;
use bangfu_proto::work_relief::v1::work_relief_service_client::WorkReliefServiceClient;
use bangfu_work_relief::app::Relief;
use tonic::transport::Channel;

/// Zaozhuang, Shizhong district (枣庄市市中区), a village of 孟庄镇.
pub const VILLAGE: &str = "370402001013";

/// The shipped Shandong work-relief remuneration policy.
pub const POLICY: &str = "sd-work-relief-remuneration-2023";

pub struct Suite {
    pub server: TestServer,
    /// The work-relief service itself, for what its job does on a schedule.
    pub app: Arc<Relief>,
    /// The suite's clock: a test moves it past a notice period, past a due date.
    pub time: Arc<ManualTime>,
    /// Between work relief and subsidy payment: a test cuts it to take subsidy payment away.
    pub subsidy_link: Arc<TcpProxy>,
    _databases: (TestDatabase, TestDatabase, TestDatabase),
}

impl Suite {
    pub async fn start(backend: Backend) -> Self {
        let _ = tracing_subscriber::fmt()
            .with_test_writer()
            .with_env_filter("warn")
            .try_init();
        let identity_db = TestDatabase::on(backend, &bangfu_identity::MIGRATIONS).await;
        let subsidy_db = TestDatabase::on(backend, &bangfu_subsidy_payment::MIGRATIONS).await;
        let relief_db = TestDatabase::on(backend, &bangfu_work_relief::MIGRATIONS).await;
        let (clock, time) = Clock::manual(time::macros::datetime!(2025-03-02 02:00 UTC));
        let keys = Arc::new(DataKeyFile::generate().into_keys().expect("data keys"));
        let subsidy_keys = Arc::new(DataKeyFile::generate().into_keys().expect("data keys"));
        let identity = bangfu_identity::start(identity_db.db.clone(), keys, clock.clone())
            .await
            .expect("identity");
        let subsidy = bangfu_subsidy_payment::start(subsidy_db.db.clone(), clock.clone(), None, Some(subsidy_keys))
            .await
            .expect("subsidy");
        let relief = bangfu_work_relief::start(relief_db.db.clone(), clock.clone(), None)
            .await
            .expect("work relief");
        let methods = [
            bangfu_platform::auth::permissions::PLATFORM_METHODS,
            bangfu_identity::METHODS,
            bangfu_subsidy_payment::METHODS,
            bangfu_work_relief::METHODS,
        ]
        .concat();
        let stores = (identity_db.db.clone(), subsidy_db.db.clone(), relief_db.db.clone());
        let follower_db = relief_db.db.clone();
        let slot: Arc<std::sync::Mutex<Option<Arc<Relief>>>> = Arc::new(std::sync::Mutex::new(None));
        let slot_in = slot.clone();
        let subsidy_link = Arc::new(TcpProxy::unbound().await);
        let link = subsidy_link.clone();
        let server = TestServer::start_calling_itself(server_config(), &methods, move |host, test_keys, addr| {
            host.audit_denials(bangfu_identity::PATH_PREFIX, stores.0);
            host.audit_denials(bangfu_subsidy_payment::PATH_PREFIX, stores.1);
            host.audit_denials(bangfu_work_relief::PATH_PREFIX, stores.2);
            let tokens_of = |service: &str| {
                Arc::new(ServiceTokens::new(
                    test_keys.service_signer(service),
                    service,
                    RegionScope::Country,
                    "bangfu",
                    Duration::from_secs(300),
                ))
            };
            let subsidy_peers = Peers::all_at(
                &format!("http://{addr}"),
                Some(tokens_of("subsidy")),
                PeerSettings::default(),
            )
            .expect("peers");
            let subsidy = Arc::new(
                subsidy.with_identity(bangfu_subsidy_payment::identity::IdentityFacts::new(
                    subsidy_peers.get("identity").expect("identity").clone(),
                )),
            );
            let relief_peers = Peers::all_at(
                &format!("http://{addr}"),
                Some(tokens_of("work_relief")),
                PeerSettings::default(),
            )
            .expect("peers");
            let identity_peer = relief_peers.get("identity").expect("identity").clone();
            link.point_to(addr);
            let through_link = Peers::all_at(
                &format!("http://{}", link.addr),
                Some(tokens_of("work_relief")),
                PeerSettings {
                    attempts: 1,
                    ..PeerSettings::default()
                },
            )
            .expect("peers");
            let subsidy_peer = through_link.get("subsidy").expect("subsidy").clone();
            bangfu_work_relief::receipt_follower(follower_db, subsidy_peer.clone(), clock)
                .hosted()
                .spawn(host.shutdown());
            let relief =
                Arc::new(relief.with_peers(bangfu_work_relief::peers::Peers::new(identity_peer, subsidy_peer)));
            *slot_in.lock().expect("slot") = Some(relief.clone());
            let config = host.config().clone();
            host.add_service(bangfu_work_relief::grpc::ReliefServer::shared(relief, &config));
            host.add_service(bangfu_subsidy_payment::grpc::SubsidyServer::shared(subsidy, &config));
            let identity = identity.with_shutdown(host.shutdown()).into_server(host.config());
            host.add_service(identity);
        })
        .await;
        let app = slot.lock().expect("slot").take().expect("the work-relief service");
        Self {
            server,
            app,
            time,
            subsidy_link,
            _databases: (identity_db, subsidy_db, relief_db),
        }
    }

    pub async fn relief(&self) -> WorkReliefServiceClient<Channel> {
        WorkReliefServiceClient::new(self.server.channel().await)
    }

    pub async fn subsidy(&self) -> SubsidyServiceClient<Channel> {
        SubsidyServiceClient::new(self.server.channel().await)
    }

    pub async fn identity(&self) -> IdentityServiceClient<Channel> {
        IdentityServiceClient::new(self.server.channel().await)
    }

    pub fn token(&self, subject: &str, department: Department, role: Role, scope: &str) -> String {
        self.server.keys.user_token_for(subject, department, &[role], scope)
    }

    /// Shizhong's work-relief clerk of development and reform (发改): projects, roster, payrolls.
    pub fn clerk(&self) -> String {
        self.token("clerk-ndrc", Department::Ndrc, Role::Clerk, "370402")
    }

    /// Shizhong's development-and-reform reviewer: objections, approval, closing.
    pub fn reviewer(&self) -> String {
        self.token("reviewer-ndrc", Department::Ndrc, Role::Reviewer, "370402")
    }

    pub fn finance(&self, subject: &str, role: Role) -> String {
        self.token(subject, Department::Finance, role, "3704")
    }

    /// Moves the suite's clock to `day` 10:00 in China.
    pub fn set_day(&self, year: i32, month: u8, day: u8) {
        let date =
            time::Date::from_calendar_date(year, time::Month::try_from(month).expect("month"), day).expect("day");
        self.time.set(date.with_hms(2, 0, 0).expect("time").assume_utc());
    }

    /// Sets a parameter row from 2021 for `region` through `service` ("work_relief" or "subsidy").
    pub async fn parameter(&self, service: &str, key: &str, region: &str, value: i64) {
        let row = common::Parameter {
            key: key.into(),
            region_prefix: region.into(),
            valid_from: Some(date(2021, 1, 1)),
            value,
            source_document: "枣庄市发展改革委 以工代赈劳务报酬指导标准".into(),
            ..Default::default()
        };
        match service {
            "work_relief" => {
                self.relief()
                    .await
                    .update_parameter(with_token(
                        pb::UpdateParameterRequest {
                            parameter: Some(row),
                            update_mask: None,
                            allow_missing: true,
                        },
                        &self.reviewer(),
                    ))
                    .await
                    .expect("work-relief parameter");
            }
            _ => {
                self.subsidy()
                    .await
                    .update_parameter(with_token(
                        sub::UpdateParameterRequest {
                            parameter: Some(row),
                            update_mask: None,
                            allow_missing: true,
                        },
                        &self.finance("reviewer-finance", Role::Reviewer),
                    ))
                    .await
                    .expect("subsidy parameter");
            }
        }
    }

    /// The rules every scenario runs under: Zaozhuang's daily wage guideline of 100 yuan; in
    /// subsidy payment, no claim review (the shipped remuneration policy says its claims were
    /// noticed by work relief, so their batch is not noticed again).
    pub async fn rules(&self) {
        self.parameter("work_relief", "work_relief.wage_guideline_daily_fen", "370402", 10_000)
            .await;
        self.parameter("subsidy", "subsidy.review_one_reviewer_above_fen", "3704", 0)
            .await;
        self.parameter("subsidy", "subsidy.review_two_reviewers_above_fen", "3704", 0)
            .await;
    }

    /// Zaozhuang's work-relief fund for 2025 in subsidy payment, which remuneration draws on.
    pub async fn fund(&self) -> String {
        self.subsidy()
            .await
            .create_fund(with_token(
                sub::CreateFundRequest {
                    fund: Some(sub::Fund {
                        display_name: "2025年枣庄市以工代赈资金".into(),
                        fund_source: sub::FundSource::WorkRelief as i32,
                        region_prefix: "3704".into(),
                        year: 2025,
                        budget_document: "枣财建指〔2025〕3号".into(),
                        budget: Some(common::Money { fen: 100_000_000 }),
                        ..Default::default()
                    }),
                    request_id: String::new(),
                },
                &self.finance("reviewer-finance", Role::Reviewer),
            ))
            .await
            .expect("fund")
            .into_inner()
            .fund
            .expect("fund")
            .name
    }

    /// Registers a person in `VILLAGE` born in March 1975; `sequence` makes the ID unique.
    /// Returns the resource name.
    pub async fn person(&self, name: &str, sequence: &str) -> String {
        let hr = self.token("clerk-hr", Department::Hr, Role::Clerk, "370402");
        self.identity()
            .await
            .create_person(with_token(
                id::CreatePersonRequest {
                    person: Some(id::Person {
                        display_name: name.into(),
                        citizen_id: citizen_id(&format!("37040219750315{sequence}")),
                        registered_region: Some(common::RegionCode {
                            code: VILLAGE.into(),
                            display_name: String::new(),
                        }),
                        residence_region: Some(common::RegionCode {
                            code: VILLAGE.into(),
                            display_name: String::new(),
                        }),
                        labor_capacity: common::LaborCapacity::Full as i32,
                        ..Default::default()
                    }),
                    request_id: String::new(),
                },
                &hr,
            ))
            .await
            .expect("created")
            .into_inner()
            .person
            .expect("person")
            .name
    }

    /// Certifies `person` in `category` from 2021.
    pub async fn certify(&self, person: &str, category: common::PersonCategory) {
        self.identity()
            .await
            .certify_category(with_token(
                id::CertifyCategoryRequest {
                    person: person.into(),
                    certification: Some(common::CategoryCertification {
                        category: category as i32,
                        certifying_body: "枣庄市市中区乡村振兴局".into(),
                        document_reference: "市中乡振〔2021〕1号".into(),
                        valid_from: Some(date(2021, 1, 1)),
                        ..Default::default()
                    }),
                    request_id: String::new(),
                },
                &self.token("reviewer-agri", Department::Agri, Role::Reviewer, "370402"),
            ))
            .await
            .expect("certified");
    }

    /// A road project in `VILLAGE` from 2025-02-01 to 2025-12-31, paid on the 15th.
    pub async fn project(&self, number: &str) -> pb::Project {
        self.relief()
            .await
            .create_project(with_token(
                pb::CreateProjectRequest {
                    project: Some(project_draft(number)),
                    request_id: uuid(),
                },
                &self.clerk(),
            ))
            .await
            .expect("project")
            .into_inner()
            .project
            .expect("project")
    }

    /// A project numbered `number` with one worker (a person of `VILLAGE`, `sequence` in the
    /// ID, 120 yuan a day) whose 10 days of February 2025 are prepared and noticed from today:
    /// the person and the payroll in notice.
    pub async fn noticed_february(&self, number: &str, sequence: &str) -> (String, pb::Payroll) {
        let person = self.person("甲工人", sequence).await;
        let project = self.project(number).await;
        let worker = self
            .enrol(&project.name, daily_worker(&person, pb::WorkerRole::Worker, 12_000))
            .await
            .expect("enrolled");
        self.attendance(&project.name, 2025, 2, &[(&worker.name, 10, 0)])
            .await
            .expect("roll");
        let payroll = self.prepare(&project.name, 2025, 2).await.expect("prepared");
        let noticed = self.publish(&payroll).await;
        (person, noticed)
    }

    pub async fn allocate(&self, project: &str, source: pb::FundSource, fen: i64) -> pb::AllocateFundsResponse {
        self.relief()
            .await
            .allocate_funds(with_token(
                pb::AllocateFundsRequest {
                    parent: project.into(),
                    allocation: Some(pb::FundAllocation {
                        fund_source: source as i32,
                        year: 2025,
                        amount: Some(common::Money { fen }),
                        document: "鲁发改振兴〔2025〕12号".into(),
                        ..Default::default()
                    }),
                    request_id: uuid(),
                },
                &self.clerk(),
            ))
            .await
            .expect("allocated")
            .into_inner()
    }

    pub async fn enrol(&self, project: &str, worker: pb::Worker) -> Result<pb::Worker, tonic::Status> {
        self.relief()
            .await
            .enrol_worker(with_token(
                pb::EnrolWorkerRequest {
                    parent: project.into(),
                    worker: Some(worker),
                    request_id: uuid(),
                },
                &self.clerk(),
            ))
            .await
            .map(|r| r.into_inner().worker.expect("worker"))
    }

    /// Records a muster roll in two streamed parts: (worker, days, pieces).
    pub async fn attendance(
        &self,
        project: &str,
        year: i32,
        month: i32,
        entries: &[(&str, i32, i64)],
    ) -> Result<pb::RecordAttendanceResponse, tonic::Status> {
        let entries: Vec<pb::AttendanceEntry> = entries
            .iter()
            .map(|(worker, days, pieces)| pb::AttendanceEntry {
                worker: (*worker).into(),
                days: *days,
                pieces: *pieces,
            })
            .collect();
        let split = entries.len().div_ceil(2);
        let request_id = uuid();
        let parts = vec![
            pb::RecordAttendanceRequest {
                parent: project.into(),
                month: Some(common::YearMonth { year, month }),
                entries: entries[..split].to_vec(),
                request_id,
            },
            pb::RecordAttendanceRequest {
                entries: entries[split..].to_vec(),
                ..Default::default()
            },
        ];
        self.relief()
            .await
            .record_attendance(with_token(tokio_stream::iter(parts), &self.clerk()))
            .await
            .map(|r| r.into_inner())
    }

    pub async fn prepare(&self, project: &str, year: i32, month: i32) -> Result<pb::Payroll, tonic::Status> {
        self.relief()
            .await
            .prepare_payroll(with_token(
                pb::PreparePayrollRequest {
                    parent: project.into(),
                    month: Some(common::YearMonth { year, month }),
                },
                &self.clerk(),
            ))
            .await
            .map(|r| r.into_inner().payroll.expect("payroll"))
    }

    pub async fn publish(&self, payroll: &pb::Payroll) -> pb::Payroll {
        self.relief()
            .await
            .publish_payroll_notice(with_token(
                pb::PublishPayrollNoticeRequest {
                    name: payroll.name.clone(),
                    etag: payroll.etag.clone(),
                    first_day: None,
                    objection_contact: "市中区发展改革局以工代赈股 0632-1234567".into(),
                },
                &self.clerk(),
            ))
            .await
            .expect("noticed")
            .into_inner()
            .payroll
            .expect("payroll")
    }

    pub async fn approve(&self, payroll: &pb::Payroll, token: &str) -> Result<pb::Payroll, tonic::Status> {
        self.relief()
            .await
            .approve_payroll(with_token(
                pb::ApprovePayrollRequest {
                    name: payroll.name.clone(),
                    etag: payroll.etag.clone(),
                },
                token,
            ))
            .await
            .map(|r| r.into_inner().payroll.expect("payroll"))
    }

    pub async fn payroll(&self, name: &str) -> pb::Payroll {
        self.relief()
            .await
            .get_payroll(with_token(pb::GetPayrollRequest { name: name.into() }, &self.clerk()))
            .await
            .expect("payroll")
            .into_inner()
            .payroll
            .expect("payroll")
    }

    pub async fn get_project(&self, name: &str) -> pb::Project {
        self.relief()
            .await
            .get_project(with_token(pb::GetProjectRequest { name: name.into() }, &self.clerk()))
            .await
            .expect("project")
            .into_inner()
            .project
            .expect("project")
    }

    /// Registers each worker's social-security card with subsidy payment (verified against
    /// identity by name and ID): `(person, name, 17 ID digits)`.
    pub async fn accounts(&self, holders: &[(&str, &str, &str)]) {
        for (i, (person, name, first17)) in holders.iter().enumerate() {
            self.subsidy()
                .await
                .register_payee_account(with_token(
                    sub::RegisterPayeeAccountRequest {
                        payee_account: Some(sub::PayeeAccount {
                            owner: Some(sub::Payee {
                                payee: Some(sub::payee::Payee::Person((*person).into())),
                            }),
                            kind: sub::PayeeAccountKind::SocialSecurityCard as i32,
                            account_number: format!("62170000765432{i:02}"),
                            holder_name: (*name).into(),
                            holder_citizen_id: citizen_id(first17),
                            bank_name: "中国农业银行枣庄市中支行".into(),
                            ..Default::default()
                        }),
                        request_id: String::new(),
                    },
                    &self.finance("clerk-finance", Role::Clerk),
                ))
                .await
                .expect("account");
        }
    }

    /// Finance pays what the fund holds for Shizhong: a batch, no second notice (work relief's
    /// was held), approval by a second subject, the file, the bank's results (every line paid
    /// on `paid`). Returns how many lines the bank paid.
    pub async fn bank_pays(&self, fund: &str, paid: &str) -> usize {
        let paid = bangfu_platform::testing::pay_through_the_bank(
            self.server.channel().await,
            fund,
            "370402",
            &self.finance("clerk-finance", Role::Clerk),
            &self.finance("reviewer-finance", Role::Reviewer),
            |noticed| {
                assert_eq!(
                    noticed.notice_days, 0,
                    "work relief noticed these lines: no second notice"
                )
            },
            paid,
        )
        .await;
        usize::try_from(paid.paid_count).unwrap_or(0)
    }

    /// Waits (up to 10 s) until the payroll's lines are all in `state`, as the feed moves them.
    pub async fn wait_for_lines(&self, payroll: &str, state: pb::LineState) -> pb::Payroll {
        for _ in 0..200 {
            let read = self.payroll(payroll).await;
            if read.lines.iter().all(|l| l.state == state as i32) {
                return read;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        let read = self.payroll(payroll).await;
        panic!("lines never reached {state:?}: {:?}", read.lines);
    }
}

pub fn project_draft(number: &str) -> pb::Project {
    pb::Project {
        project_number: number.into(),
        display_name: "孟庄镇张庄村生产道路硬化工程".into(),
        summary: "硬化村内生产道路2.3公里，宽4米".into(),
        channel: pb::ProjectChannel::Dedicated as i32,
        region: Some(common::RegionCode {
            code: VILLAGE.into(),
            display_name: String::new(),
        }),
        schedule: Some(common::Period {
            first_day: Some(date(2025, 2, 1)),
            last_day: Some(date(2025, 12, 31)),
        }),
        owner_unit: "枣庄市市中区孟庄镇人民政府".into(),
        contact_name: "王科长".into(),
        contact_phone: "0632-1234567".into(),
        in_key_assistance_county: true,
        remuneration_policy: POLICY.into(),
        pay_day: 15,
        ..Default::default()
    }
}

pub fn daily_worker(person: &str, role: pb::WorkerRole, wage_fen: i64) -> pb::Worker {
    pb::Worker {
        person: person.into(),
        role: role as i32,
        pay: Some(pb::worker::Pay::DailyWage(common::Money { fen: wage_fen })),
        start_date: Some(date(2025, 2, 1)),
        agreement_reference: "张庄路-劳务-001".into(),
        ..Default::default()
    }
}

pub fn piece_worker(person: &str, rate_fen: i64) -> pb::Worker {
    pb::Worker {
        person: person.into(),
        role: pb::WorkerRole::Worker as i32,
        pay: Some(pb::worker::Pay::PieceRate(common::Money { fen: rate_fen })),
        piece_unit: "米".into(),
        start_date: Some(date(2025, 2, 1)),
        agreement_reference: "张庄路-劳务-002".into(),
        ..Default::default()
    }
}

/// A fresh request id.
pub fn uuid() -> String {
    bangfu_platform::rows::new_id()
}
