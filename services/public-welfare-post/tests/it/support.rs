//! Identity, subsidy payment and public-welfare posts on one test server, as `bangfu up` hosts
//! them, on a fresh database per service of either backend, at 2025-03-02 10:00 in China (the
//! shipped Zaozhuang post policy is in force until 2025-12-31).

use std::sync::Arc;
use std::time::Duration;

use bangfu_platform::auth::token::ServiceTokens;
use bangfu_platform::auth::{Department, RegionScope, Role};
use bangfu_platform::clock::{Clock, ManualTime};
use bangfu_platform::peers::{PeerSettings, Peers};
use bangfu_platform::pii::DataKeyFile;
use bangfu_platform::testing::{TcpProxy, TestDatabase, TestServer, citizen_id, server_config, with_token};
use bangfu_proto::common::v1 as common;
use bangfu_proto::identity::v1 as id;
use bangfu_proto::identity::v1::identity_service_client::IdentityServiceClient;
use bangfu_proto::subsidy::v1 as sub;
use bangfu_proto::subsidy::v1::subsidy_service_client::SubsidyServiceClient;
use bangfu_proto::welfare_post::v1 as pb;
use bangfu_proto::welfare_post::v1::welfare_post_service_client::WelfarePostServiceClient;
use bangfu_public_welfare_post::app::Posts;
use tonic::transport::Channel;

/// Zaozhuang, Shizhong district (枣庄市市中区), a village of 孟庄镇.
pub const VILLAGE: &str = "370402001013";

/// The shipped Zaozhuang post subsidy policy.
pub const POLICY: &str = "zz-welfare-post-2021";

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

pub struct Suite {
    pub server: TestServer,
    /// The posts service itself, for what its job does on a schedule.
    pub app: Arc<Posts>,
    /// The suite's clock: a test moves it past a notice period, into the next month.
    pub time: Arc<ManualTime>,
    /// Between posts and subsidy payment: a test cuts it to take subsidy payment away.
    pub subsidy_link: Arc<TcpProxy>,
    _databases: (TestDatabase, TestDatabase, TestDatabase),
}

impl Suite {
    pub async fn start(backend: Backend) -> Self {
        let _ = tracing_subscriber::fmt()
            .with_test_writer()
            .with_env_filter("warn")
            .try_init();
        let (identity_db, subsidy_db, posts_db) = match backend {
            Backend::Sqlite => (
                TestDatabase::sqlite(&bangfu_identity::MIGRATIONS).await,
                TestDatabase::sqlite(&bangfu_subsidy_payment::MIGRATIONS).await,
                TestDatabase::sqlite(&bangfu_public_welfare_post::MIGRATIONS).await,
            ),
            Backend::Postgres => (
                TestDatabase::postgres(&bangfu_identity::MIGRATIONS).await,
                TestDatabase::postgres(&bangfu_subsidy_payment::MIGRATIONS).await,
                TestDatabase::postgres(&bangfu_public_welfare_post::MIGRATIONS).await,
            ),
        };
        let (clock, time) = Clock::manual(time::macros::datetime!(2025-03-02 02:00 UTC));
        let keys = Arc::new(DataKeyFile::generate().into_keys().expect("data keys"));
        let subsidy_keys = Arc::new(DataKeyFile::generate().into_keys().expect("data keys"));
        let identity = bangfu_identity::start(identity_db.db.clone(), keys, clock.clone())
            .await
            .expect("identity");
        let subsidy = bangfu_subsidy_payment::start(subsidy_db.db.clone(), clock.clone(), None, Some(subsidy_keys))
            .await
            .expect("subsidy");
        let posts = bangfu_public_welfare_post::start(posts_db.db.clone(), clock.clone(), None)
            .await
            .expect("posts");
        let methods = [
            bangfu_platform::auth::permissions::PLATFORM_METHODS,
            bangfu_identity::METHODS,
            bangfu_subsidy_payment::METHODS,
            bangfu_public_welfare_post::METHODS,
        ]
        .concat();
        let stores = (identity_db.db.clone(), subsidy_db.db.clone(), posts_db.db.clone());
        let follower_db = posts_db.db.clone();
        let slot: Arc<std::sync::Mutex<Option<Arc<Posts>>>> = Arc::new(std::sync::Mutex::new(None));
        let slot_in = slot.clone();
        let subsidy_link = Arc::new(TcpProxy::unbound().await);
        let link = subsidy_link.clone();
        let server = TestServer::start_calling_itself(server_config(), &methods, move |host, test_keys, addr| {
            host.audit_denials(bangfu_identity::PATH_PREFIX, stores.0);
            host.audit_denials(bangfu_subsidy_payment::PATH_PREFIX, stores.1);
            host.audit_denials(bangfu_public_welfare_post::PATH_PREFIX, stores.2);
            let peers_of = |service: &str| {
                let tokens = Arc::new(ServiceTokens::new(
                    test_keys.service_signer(service),
                    service,
                    RegionScope::Country,
                    "bangfu",
                    Duration::from_secs(300),
                ));
                Peers::all_at(&format!("http://{addr}"), Some(tokens), PeerSettings::default()).expect("peers")
            };
            let subsidy_peers = peers_of("subsidy");
            let subsidy = Arc::new(
                subsidy.with_identity(bangfu_subsidy_payment::identity::IdentityFacts::new(
                    subsidy_peers.get("identity").expect("identity").clone(),
                )),
            );
            let posts_peers = peers_of("welfare_post");
            let identity_peer = posts_peers.get("identity").expect("identity").clone();
            link.point_to(addr);
            let tokens = Arc::new(ServiceTokens::new(
                test_keys.service_signer("welfare_post"),
                "welfare_post",
                RegionScope::Country,
                "bangfu",
                Duration::from_secs(300),
            ));
            let through_link = Peers::all_at(
                &format!("http://{}", link.addr),
                Some(tokens),
                PeerSettings {
                    attempts: 1,
                    ..PeerSettings::default()
                },
            )
            .expect("peers");
            let subsidy_peer = through_link.get("subsidy").expect("subsidy").clone();
            // The exit follower of identity's feed, as the hosted service runs it.
            bangfu_public_welfare_post::exit_follower(follower_db.clone(), identity_peer.clone(), clock.clone())
                .hosted()
                .spawn(host.shutdown());
            // And the follower of subsidy payment's claim feed.
            bangfu_public_welfare_post::claim_follower(follower_db, subsidy_peer.clone(), clock)
                .hosted()
                .spawn(host.shutdown());
            let posts = Arc::new(posts.with_peers(bangfu_public_welfare_post::peers::Peers::new(
                identity_peer,
                subsidy_peer,
            )));
            *slot_in.lock().expect("slot") = Some(posts.clone());
            let config = host.config().clone();
            host.add_service(bangfu_public_welfare_post::grpc::PostsServer::shared(posts, &config));
            host.add_service(bangfu_subsidy_payment::grpc::SubsidyServer::shared(subsidy, &config));
            let identity = identity.with_shutdown(host.shutdown()).into_server(host.config());
            host.add_service(identity);
        })
        .await;
        let app = slot.lock().expect("slot").take().expect("the posts service");
        Self {
            server,
            app,
            time,
            subsidy_link,
            _databases: (identity_db, subsidy_db, posts_db),
        }
    }

    pub async fn posts(&self) -> WelfarePostServiceClient<Channel> {
        WelfarePostServiceClient::new(self.server.channel().await)
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

    /// A Shizhong township clerk of agriculture and rural affairs (乡村振兴): posts, hiring, months.
    pub fn clerk(&self) -> String {
        self.token("clerk-agri", Department::Agri, Role::Clerk, "370402")
    }

    /// A Shizhong reviewer of agriculture: resolves objections, confirms hires.
    pub fn reviewer(&self) -> String {
        self.token("reviewer-agri", Department::Agri, Role::Reviewer, "370402")
    }

    /// Moves the suite's clock to `day` 10:00 in China.
    pub fn set_day(&self, year: i32, month: u8, day: u8) {
        let date =
            time::Date::from_calendar_date(year, time::Month::try_from(month).expect("month"), day).expect("day");
        self.time.set(date.with_hms(2, 0, 0).expect("time").assume_utc());
    }

    /// Registers a person in `VILLAGE` born in March of `birth_year`, with labor capacity
    /// `labor`; returns the resource name.
    pub async fn person(&self, name: &str, sequence: &str, birth_year: i32, labor: common::LaborCapacity) -> String {
        let hr = self.token("clerk-hr", Department::Hr, Role::Clerk, "370402");
        self.identity()
            .await
            .create_person(with_token(
                id::CreatePersonRequest {
                    person: Some(id::Person {
                        display_name: name.into(),
                        citizen_id: citizen_id(&format!("370402{birth_year}0315{sequence}")),
                        registered_region: Some(common::RegionCode {
                            code: VILLAGE.into(),
                            display_name: String::new(),
                        }),
                        labor_capacity: labor as i32,
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

    /// Certifies `person` poverty-alleviated from 2021; returns the certification's name.
    pub async fn certify(&self, person: &str) -> String {
        self.identity()
            .await
            .certify_category(with_token(
                id::CertifyCategoryRequest {
                    person: person.into(),
                    certification: Some(common::CategoryCertification {
                        category: common::PersonCategory::PovertyAlleviated as i32,
                        certifying_body: "枣庄市市中区乡村振兴局".into(),
                        document_reference: "市中乡振〔2021〕1号".into(),
                        valid_from: Some(date(2021, 1, 1)),
                        ..Default::default()
                    }),
                    request_id: String::new(),
                },
                &self.reviewer(),
            ))
            .await
            .expect("certified")
            .into_inner()
            .certification
            .expect("certification")
            .name
    }

    /// A poverty-alleviated person of the village, half labor, 55 in 2025.
    pub async fn target_person(&self, name: &str, sequence: &str) -> String {
        let person = self.person(name, sequence, 1970, common::LaborCapacity::Half).await;
        self.certify(&person).await;
        person
    }

    /// Zaozhuang's employment-subsidy fund for 2025, which the post subsidy draws on.
    pub async fn fund(&self) {
        self.subsidy()
            .await
            .create_fund(with_token(
                sub::CreateFundRequest {
                    fund: Some(sub::Fund {
                        display_name: "2025年枣庄市就业补助资金".into(),
                        fund_source: sub::FundSource::EmploymentSubsidy as i32,
                        region_prefix: "3704".into(),
                        year: 2025,
                        budget_document: "枣财社指〔2025〕1号".into(),
                        budget: Some(common::Money { fen: 100_000_000 }),
                        ..Default::default()
                    }),
                    request_id: String::new(),
                },
                &self.token("reviewer-finance", Department::Finance, Role::Reviewer, "3704"),
            ))
            .await
            .expect("fund");
    }

    /// A cleaning post in `VILLAGE` with two places at 500 yuan a month, 22 days required.
    pub async fn post(&self, places: i32) -> pb::Post {
        self.posts()
            .await
            .create_post(with_token(
                pb::CreatePostRequest {
                    post: Some(post_draft(places)),
                    request_id: uuid(),
                },
                &self.clerk(),
            ))
            .await
            .expect("post")
            .into_inner()
            .post
            .expect("post")
    }

    /// The post's announcement, taking applications 2025-03-01 to 2025-03-10.
    pub async fn announce(&self, post: &str) -> pb::Announcement {
        self.posts()
            .await
            .publish_announcement(with_token(
                pb::PublishAnnouncementRequest {
                    announcement: Some(announcement_draft(post)),
                    request_id: uuid(),
                },
                &self.clerk(),
            ))
            .await
            .expect("announcement")
            .into_inner()
            .announcement
            .expect("announcement")
    }

    pub async fn apply(&self, announcement: &str, person: &str) -> pb::Application {
        self.posts()
            .await
            .submit_application(with_token(
                pb::SubmitApplicationRequest {
                    application: Some(pb::Application {
                        announcement: announcement.into(),
                        person: person.into(),
                        ..Default::default()
                    }),
                    request_id: uuid(),
                },
                &self.clerk(),
            ))
            .await
            .expect("application")
            .into_inner()
            .application
            .expect("application")
    }

    /// Proposes `application` for a contract from `start` to `end`, insured from `start`.
    pub async fn propose(
        &self,
        announcement: &str,
        application: &str,
        start: common::Date,
        end: common::Date,
    ) -> Result<pb::HireNotice, tonic::Status> {
        self.posts()
            .await
            .propose_hires(with_token(
                pb::ProposeHiresRequest {
                    announcement: announcement.into(),
                    hires: vec![hire(application, start, end)],
                    notice_first_day: None,
                    request_id: uuid(),
                },
                &self.clerk(),
            ))
            .await
            .map(|r| r.into_inner().hire_notice.expect("notice"))
    }
}

pub fn post_draft(places: i32) -> pb::Post {
    pb::Post {
        village: Some(common::RegionCode {
            code: VILLAGE.into(),
            display_name: String::new(),
        }),
        title: "村内道路保洁员".into(),
        post_type: pb::PostType::Cleaning as i32,
        post_class: pb::PostClass::Ordinary as i32,
        funding_source: pb::FundingSource::EmploymentSubsidy as i32,
        subsidy_policy: POLICY.into(),
        monthly_standard: Some(common::Money { fen: 50_000 }),
        hours_per_month: 88,
        days_per_month: 22,
        work_time: pb::WorkTime::PartTime as i32,
        places,
        ..Default::default()
    }
}

pub fn announcement_draft(post: &str) -> pb::Announcement {
    pb::Announcement {
        post: post.into(),
        duties: "负责村内主干道及公共区域日常保洁".into(),
        requirements: "本乡镇户籍脱贫人口或监测对象，年龄16至60周岁，身体健康".into(),
        pay: "每月500元，按在岗天数计发".into(),
        hours: "每天上午7:00-11:00".into(),
        place: "孟庄镇某村村委会".into(),
        application_period: Some(common::Period {
            first_day: Some(date(2025, 3, 1)),
            last_day: Some(date(2025, 3, 10)),
        }),
        ..Default::default()
    }
}

pub fn hire(application: &str, start: common::Date, end: common::Date) -> pb::ProposedHire {
    pb::ProposedHire {
        application: application.into(),
        contract_term: Some(common::Period {
            first_day: Some(start),
            last_day: Some(end),
        }),
        insurance: Some(pb::AccidentInsurance {
            insurer: "中国人寿枣庄分公司".into(),
            policy_number: "ZZ2025-0001".into(),
            coverage: Some(common::Period {
                first_day: Some(start),
                last_day: Some(date(start.year + 1, start.month, start.day.min(28))),
            }),
        }),
    }
}

pub fn date(year: i32, month: i32, day: i32) -> common::Date {
    common::Date { year, month, day }
}

/// A fresh request id.
pub fn uuid() -> String {
    bangfu_platform::rows::new_id()
}

/// The reason code a refusal carries.
pub fn reason(status: &tonic::Status) -> String {
    bangfu_platform::error::reason_of(status).unwrap_or_default()
}

/// The fields a refusal's BadRequest names.
pub fn fields(status: &tonic::Status) -> Vec<String> {
    use tonic_types::StatusExt;
    status
        .get_error_details()
        .bad_request()
        .map(|b| b.field_violations.iter().map(|v| v.field.clone()).collect())
        .unwrap_or_default()
}

/// Runs each listed `async fn(Backend)` once on SQLite and once on PostgreSQL.
#[macro_export]
macro_rules! on_both_backends {
    ($($test:ident),+ $(,)?) => {
        mod on_sqlite {
            $(
                #[tokio::test]
                async fn $test() {
                    super::$test($crate::support::Backend::Sqlite).await;
                }
            )+
        }
        mod on_postgres {
            $(
                #[tokio::test]
                async fn $test() {
                    super::$test($crate::support::Backend::Postgres).await;
                }
            )+
        }
    };
}
