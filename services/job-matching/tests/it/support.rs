//! Identity, subsidy payment and job matching on one test server, as `bangfu up` hosts them, on
//! a fresh database per service of either backend, at 2025-03-02 10:00 in China (the shipped
//! Zaozhuang agency and Chongqing transport policies are in force until 2025-12-31). The
//! follower of subsidy payment's claim feed runs as the hosted service runs it.

use std::sync::Arc;
use std::time::Duration;

use bangfu_job_matching::app::Jobs;
use bangfu_platform::auth::token::ServiceTokens;
use bangfu_platform::auth::{Department, RegionScope, Role};
use bangfu_platform::clock::{Clock, ManualTime};
use bangfu_platform::outbox::WatchSettings;
use bangfu_platform::peers::{PeerSettings, Peers};
use bangfu_platform::pii::DataKeyFile;
pub use bangfu_platform::testing::{Backend, fields, reason, wire_date as date, with_token};
use bangfu_platform::testing::{TcpProxy, TestDatabase, TestServer, citizen_id, server_config};
use bangfu_proto::common::v1 as common;
use bangfu_proto::identity::v1 as id;
use bangfu_proto::identity::v1::identity_service_client::IdentityServiceClient;
use bangfu_proto::jobs::v1 as pb;
use bangfu_proto::jobs::v1::job_matching_service_client::JobMatchingServiceClient;
use bangfu_proto::subsidy::v1 as sub;
use bangfu_proto::subsidy::v1::subsidy_service_client::SubsidyServiceClient;
use tonic::transport::Channel;

/// Zaozhuang, Shizhong district (枣庄市市中区), 中心街街道, 铁西居委会.
pub const VILLAGE: &str = "370402001013";
/// Another community of the same township.
pub const SAME_TOWNSHIP: &str = "370402001016";
/// A community of another township of Shizhong.
pub const OTHER_TOWNSHIP: &str = "370402002003";
/// Xuecheng district (薛城区), in Zaozhuang too.
pub const XUECHENG_VILLAGE: &str = "370403001001";
/// Yuzhong district (渝中区), Chongqing.
pub const YUZHONG_VILLAGE: &str = "500101001001";

/// A real licence's unified social credit code, and others whose check characters are right.
pub const CREDIT_CODES: [&str; 3] = ["91350100M000100Y43", "91110000802100433B", "9144030071526726XG"];

pub struct Suite {
    pub server: TestServer,
    /// The job-matching service itself, for what its job does on a schedule.
    pub app: Arc<Jobs>,
    pub time: Arc<ManualTime>,
    /// Between job matching and identity: a test cuts it to take identity away.
    pub identity_link: Arc<TcpProxy>,
    _databases: (TestDatabase, TestDatabase, TestDatabase),
}

impl Suite {
    pub async fn start(backend: Backend) -> Self {
        let _ = tracing_subscriber::fmt()
            .with_test_writer()
            .with_env_filter("warn")
            .try_init();
        let identity_db = TestDatabase::on(backend, &bangfu_identity::MIGRATIONS).await;
        let jobs_db = TestDatabase::on(backend, &bangfu_job_matching::MIGRATIONS).await;
        let subsidy_db = TestDatabase::on(backend, &bangfu_subsidy_payment::MIGRATIONS).await;
        let (clock, time) = Clock::manual(time::macros::datetime!(2025-03-02 02:00 UTC));
        let keys = Arc::new(DataKeyFile::generate().into_keys().expect("data keys"));
        let identity = bangfu_identity::start(identity_db.db.clone(), keys, clock.clone())
            .await
            .expect("identity");
        let jobs = bangfu_job_matching::start(jobs_db.db.clone(), clock.clone(), None)
            .await
            .expect("jobs");
        let subsidy_keys = Arc::new(DataKeyFile::generate().into_keys().expect("data keys"));
        let subsidy = bangfu_subsidy_payment::start(subsidy_db.db.clone(), clock.clone(), None, Some(subsidy_keys))
            .await
            .expect("subsidy");
        let methods = [
            bangfu_platform::auth::permissions::PLATFORM_METHODS,
            bangfu_identity::METHODS,
            bangfu_subsidy_payment::METHODS,
            bangfu_job_matching::METHODS,
        ]
        .concat();
        let stores = (identity_db.db.clone(), jobs_db.db.clone(), subsidy_db.db.clone());
        let follower_db = jobs_db.db.clone();
        let slot: Arc<std::sync::Mutex<Option<Arc<Jobs>>>> = Arc::new(std::sync::Mutex::new(None));
        let slot_in = slot.clone();
        let identity_link = Arc::new(TcpProxy::unbound().await);
        let link = identity_link.clone();
        let server = TestServer::start_calling_itself(server_config(), &methods, move |host, test_keys, addr| {
            host.audit_denials(bangfu_identity::PATH_PREFIX, stores.0);
            host.audit_denials(bangfu_job_matching::PATH_PREFIX, stores.1);
            host.audit_denials(bangfu_subsidy_payment::PATH_PREFIX, stores.2);
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
            let tokens = tokens_of("jobs");
            let direct =
                Peers::all_at(&format!("http://{addr}"), Some(tokens.clone()), PeerSettings::default()).expect("peers");
            let subsidy_peer = direct.get("subsidy").expect("subsidy").clone();
            bangfu_job_matching::claim_follower(follower_db.clone(), subsidy_peer.clone(), clock.clone())
                .hosted()
                .spawn(host.shutdown());
            bangfu_job_matching::person_follower(follower_db, direct.get("identity").expect("identity").clone(), clock)
                .hosted()
                .spawn(host.shutdown());
            link.point_to(addr);
            let peers = Peers::all_at(
                &format!("http://{}", link.addr),
                Some(tokens),
                PeerSettings {
                    attempts: 1,
                    ..PeerSettings::default()
                },
            )
            .expect("peers");
            let identity_peer = peers.get("identity").expect("identity").clone();
            let jobs = Arc::new(
                jobs.with_peers(bangfu_job_matching::peers::Peers::new(identity_peer, subsidy_peer))
                    .with_shutdown(host.shutdown())
                    .with_feed_settings(WatchSettings {
                        poll: Duration::from_millis(50),
                        heartbeat: Duration::from_millis(300),
                        batch: 500,
                    }),
            );
            *slot_in.lock().expect("slot") = Some(jobs.clone());
            let config = host.config().clone();
            host.add_service(bangfu_job_matching::grpc::JobsServer::shared(jobs, &config));
            host.add_service(bangfu_subsidy_payment::grpc::SubsidyServer::shared(subsidy, &config));
            let identity = identity.with_shutdown(host.shutdown()).into_server(host.config());
            host.add_service(identity);
        })
        .await;
        let app = slot.lock().expect("slot").take().expect("the job-matching service");
        Self {
            server,
            app,
            time,
            identity_link,
            _databases: (identity_db, jobs_db, subsidy_db),
        }
    }

    pub async fn jobs(&self) -> JobMatchingServiceClient<Channel> {
        JobMatchingServiceClient::new(self.server.channel().await)
    }

    pub async fn subsidy(&self) -> SubsidyServiceClient<Channel> {
        SubsidyServiceClient::new(self.server.channel().await)
    }

    /// Finance's rules for the claims: no review, and a fund of `source` for `region` in 2025.
    pub async fn fund(&self, source: sub::FundSource, region: &str) {
        self.fund_of_year(source, region, 2025).await;
    }

    /// Finance's rules for the claims: no review, and a fund of `source` for `region` in `year`.
    pub async fn fund_of_year(&self, source: sub::FundSource, region: &str, year: i32) {
        let finance = self.token("reviewer-finance", Department::Finance, Role::Reviewer, "*");
        let mut subsidy = self.subsidy().await;
        for key in [
            "subsidy.review_one_reviewer_above_fen",
            "subsidy.review_two_reviewers_above_fen",
        ] {
            subsidy
                .update_parameter(with_token(
                    sub::UpdateParameterRequest {
                        parameter: Some(common::Parameter {
                            key: key.into(),
                            region_prefix: region.into(),
                            valid_from: Some(date(2021, 1, 1)),
                            value: 0,
                            source_document: "财政局 补贴审核规则".into(),
                            ..Default::default()
                        }),
                        update_mask: None,
                        allow_missing: true,
                    },
                    &finance,
                ))
                .await
                .expect("subsidy parameter");
        }
        subsidy
            .create_fund(with_token(
                sub::CreateFundRequest {
                    fund: Some(sub::Fund {
                        display_name: format!("{year}年就业帮扶资金 {region}"),
                        fund_source: source as i32,
                        region_prefix: region.into(),
                        year,
                        budget_document: "财社〔2025〕1号".into(),
                        budget: Some(common::Money { fen: 100_000_000 }),
                        ..Default::default()
                    }),
                    request_id: String::new(),
                },
                &finance,
            ))
            .await
            .expect("fund");
    }

    pub async fn identity(&self) -> IdentityServiceClient<Channel> {
        IdentityServiceClient::new(self.server.channel().await)
    }

    pub fn token(&self, subject: &str, department: Department, role: Role, scope: &str) -> String {
        self.server.keys.user_token_for(subject, department, &[role], scope)
    }

    /// Shizhong's employment-service clerk of HR (人社).
    pub fn clerk(&self) -> String {
        self.token("clerk-hr", Department::Hr, Role::Clerk, "370402")
    }

    /// Shizhong's HR reviewer: certifies carriers, sets parameters.
    pub fn reviewer(&self) -> String {
        self.token("reviewer-hr", Department::Hr, Role::Reviewer, "370402")
    }

    /// Zaozhuang's HR clerk (the city).
    pub fn city_clerk(&self) -> String {
        self.token("clerk-hr-city", Department::Hr, Role::Clerk, "3704")
    }

    /// Moves the suite's clock to `day` 10:00 in China.
    pub fn set_day(&self, year: i32, month: u8, day: u8) {
        let date =
            time::Date::from_calendar_date(year, time::Month::try_from(month).expect("month"), day).expect("day");
        self.time.set(date.with_hms(2, 0, 0).expect("time").assume_utc());
    }

    /// Registers a person in `village` born in `birth` (YYYYMMDD) with `capacity`; `sequence`
    /// (3 digits) makes the ID unique. Returns the resource name.
    pub async fn person(
        &self,
        name: &str,
        village: &str,
        birth: &str,
        sequence: &str,
        capacity: common::LaborCapacity,
    ) -> String {
        let token = self.token("clerk-hr-province", Department::Hr, Role::Clerk, "*");
        self.identity()
            .await
            .create_person(with_token(
                id::CreatePersonRequest {
                    person: Some(id::Person {
                        display_name: name.into(),
                        citizen_id: citizen_id(&format!("{}{birth}{sequence}", &village[..6])),
                        registered_region: Some(common::RegionCode {
                            code: village.into(),
                            display_name: String::new(),
                        }),
                        residence_region: Some(common::RegionCode {
                            code: village.into(),
                            display_name: String::new(),
                        }),
                        labor_capacity: capacity as i32,
                        ..Default::default()
                    }),
                    request_id: String::new(),
                },
                &token,
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
                        household_type: if category == common::PersonCategory::MonitoredAtRisk {
                            common::MonitoredHouseholdType::MarginalAtRisk as i32
                        } else {
                            0
                        },
                        certifying_body: "枣庄市乡村振兴局".into(),
                        document_reference: "枣乡振〔2021〕1号".into(),
                        valid_from: Some(date(2021, 1, 1)),
                        ..Default::default()
                    }),
                    request_id: String::new(),
                },
                &self.token("reviewer-agri", Department::Agri, Role::Reviewer, "*"),
            ))
            .await
            .expect("certified");
    }

    /// What identity says of a person today.
    pub async fn person_in_identity(&self, person: &str) -> id::Person {
        self.identity()
            .await
            .get_person(with_token(
                id::GetPersonRequest {
                    name: person.into(),
                    ..Default::default()
                },
                &self.token("clerk-hr-province", Department::Hr, Role::Clerk, "*"),
            ))
            .await
            .expect("person")
            .into_inner()
            .person
            .expect("person")
    }

    /// A carrier of `kind` in Shizhong with the `n`th of [`CREDIT_CODES`].
    pub async fn carrier(&self, kind: pb::CarrierKind, n: usize) -> pb::Carrier {
        self.jobs()
            .await
            .create_carrier(with_token(
                pb::CreateCarrierRequest {
                    carrier: Some(carrier_draft(kind, CREDIT_CODES[n])),
                    request_id: uuid(),
                },
                &self.clerk(),
            ))
            .await
            .expect("carrier")
            .into_inner()
            .carrier
            .expect("carrier")
    }

    /// The HR reviewer certifies `carrier` (认定) from 2025-01-10 to 2026-01-09.
    pub async fn certify_carrier(&self, carrier: &pb::Carrier) -> pb::Carrier {
        self.jobs()
            .await
            .certify_carrier(with_token(
                pb::CertifyCarrierRequest {
                    name: carrier.name.clone(),
                    certification: Some(pb::CarrierCertification {
                        certifying_body: "枣庄市人力资源和社会保障局".into(),
                        document: "枣人社字〔2025〕3号".into(),
                        certify_date: Some(date(2025, 1, 10)),
                        valid_until: Some(date(2026, 1, 9)),
                        ..Default::default()
                    }),
                    etag: carrier.etag.clone(),
                },
                &self.reviewer(),
            ))
            .await
            .expect("certified")
            .into_inner()
            .carrier
            .expect("carrier")
    }

    pub async fn create_posting(&self, posting: pb::Posting, token: &str) -> Result<pb::Posting, tonic::Status> {
        self.jobs()
            .await
            .create_posting(with_token(
                pb::CreatePostingRequest {
                    posting: Some(posting),
                    request_id: uuid(),
                },
                token,
            ))
            .await
            .map(|r| r.into_inner().posting.expect("posting"))
    }

    pub async fn register(&self, seeker: pb::Seeker, token: &str) -> Result<pb::Seeker, tonic::Status> {
        self.jobs()
            .await
            .register_seeker(with_token(
                pb::RegisterSeekerRequest {
                    seeker: Some(seeker),
                    request_id: uuid(),
                },
                token,
            ))
            .await
            .map(|r| r.into_inner().seeker.expect("seeker"))
    }

    pub async fn place(&self, placement: pb::Placement) -> Result<pb::Placement, tonic::Status> {
        self.jobs()
            .await
            .record_placement(with_token(
                pb::RecordPlacementRequest {
                    placement: Some(placement),
                    request_id: uuid(),
                },
                &self.clerk(),
            ))
            .await
            .map(|r| r.into_inner().placement.expect("placement"))
    }

    pub async fn get_carrier(&self, name: &str) -> pb::Carrier {
        self.jobs()
            .await
            .get_carrier(with_token(pb::GetCarrierRequest { name: name.into() }, &self.clerk()))
            .await
            .expect("carrier")
            .into_inner()
            .carrier
            .expect("carrier")
    }

    pub async fn get_seeker(&self, name: &str) -> pb::Seeker {
        self.jobs()
            .await
            .get_seeker(with_token(pb::GetSeekerRequest { name: name.into() }, &self.clerk()))
            .await
            .expect("seeker")
            .into_inner()
            .seeker
            .expect("seeker")
    }

    /// Sets a job-matching parameter row from 2021 for `region`.
    pub async fn parameter(&self, key: &str, region: &str, value: i64) {
        self.jobs()
            .await
            .update_parameter(with_token(
                pb::UpdateParameterRequest {
                    parameter: Some(common::Parameter {
                        key: key.into(),
                        region_prefix: region.into(),
                        valid_from: Some(date(2021, 1, 1)),
                        value,
                        source_document: "枣庄市人社局 就业帮扶人岗匹配权重".into(),
                        ..Default::default()
                    }),
                    update_mask: None,
                    allow_missing: true,
                },
                &self.reviewer(),
            ))
            .await
            .expect("parameter");
    }
}

pub fn money(fen: i64) -> Option<common::Money> {
    Some(common::Money { fen })
}

pub fn region(code: &str) -> Option<common::RegionCode> {
    Some(common::RegionCode {
        code: code.into(),
        display_name: String::new(),
    })
}

pub fn carrier_draft(kind: pb::CarrierKind, credit_code: &str) -> pb::Carrier {
    pb::Carrier {
        display_name: "市中区榴园服装帮扶车间".into(),
        kind: kind as i32,
        credit_code: credit_code.into(),
        region: region(VILLAGE),
        contact_name: "王经理".into(),
        contact_phone: "0632-3311234".into(),
        ..Default::default()
    }
}

/// A sewing job in `work_region` for 2,400 to 3,600 yuan a month, 3 places, taking full and
/// weak labor aged 18 to 55, asking for sewing and ironing, open until the end of 2025.
pub fn posting_draft(carrier: &str, work_region: &str) -> pb::Posting {
    pb::Posting {
        carrier: carrier.into(),
        title: "服装缝纫工".into(),
        occupation: Some(pb::Occupation {
            code: "6-05-01-01".into(),
            display_name: "缝纫工".into(),
        }),
        work_region: region(work_region),
        wage_min: money(240_000),
        wage_max: money(360_000),
        headcount: 3,
        contract_months: 12,
        weekly_hours: 44,
        accepted_labor_capacities: vec![common::LaborCapacity::Full as i32, common::LaborCapacity::Weak as i32],
        min_age: 18,
        max_age: 55,
        skills: vec!["缝纫".into(), "熨烫".into()],
        meals: true,
        valid_until: Some(date(2025, 12, 31)),
        ..Default::default()
    }
}

/// A seeker for `person` who wants local work at 3,000 yuan, from March 2025.
pub fn seeker_draft(person: &str, skills: &[&str]) -> pb::Seeker {
    pb::Seeker {
        person: person.into(),
        skills: skills.iter().map(|s| s.to_string()).collect(),
        intentions: vec![pb::WorkIntention::Local as i32],
        expected_wage: money(300_000),
        available_from: Some(date(2025, 3, 1)),
        ..Default::default()
    }
}

pub fn placement_draft(posting: &str, seeker: &str, start: common::Date) -> pb::Placement {
    pb::Placement {
        posting: posting.into(),
        seeker: seeker.into(),
        start_date: Some(start),
        contract_months: 12,
        monthly_wage: money(300_000),
        social_insurance: true,
        ..Default::default()
    }
}

/// A fresh request id.
pub fn uuid() -> String {
    bangfu_platform::rows::new_id()
}

/// A Chaoyang (朝阳市, Liaoning) community of 双塔区.
pub const CHAOYANG_VILLAGE: &str = "211302001001";

/// The subsidy claims shown on `owner` once there are at least `count` and none is pending or
/// submitted.
pub async fn settled_claims(suite: &Suite, token: &str, owner: &str, count: usize) -> Vec<pb::SubsidyClaim> {
    for _ in 0..100 {
        let claims = suite
            .jobs()
            .await
            .list_subsidy_claims(with_token(pb::ListSubsidyClaimsRequest { owner: owner.into() }, token))
            .await
            .expect("claims")
            .into_inner()
            .claims;
        let open = claims.iter().any(|c| {
            let state = c.progress.as_ref().map(|p| p.state).unwrap_or_default();
            state == pb::ClaimProgressState::Pending as i32 || state == pb::ClaimProgressState::Submitted as i32
        });
        if claims.len() >= count && !open {
            return claims;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("the claims on {owner} did not settle");
}
