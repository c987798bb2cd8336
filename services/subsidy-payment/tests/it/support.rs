//! Identity and subsidy payment on one test server, as `bangfu up` hosts them, on a fresh
//! database per service of either backend, at 2025-03-02 10:00 in China (the shipped policies
//! are in force until 2025-12-31).

use std::sync::Arc;
use std::time::Duration;

use bangfu_platform::auth::token::ServiceTokens;
use bangfu_platform::auth::{Department, RegionScope, Role};
use bangfu_platform::clock::{Clock, ManualTime};
use bangfu_platform::peers::{PeerSettings, Peers};
use bangfu_platform::pii::DataKeyFile;
use bangfu_platform::testing::{TestDatabase, TestServer, citizen_id, server_config, with_token};
use bangfu_proto::common::v1 as common;
use bangfu_proto::identity::v1 as id;
use bangfu_proto::identity::v1::identity_service_client::IdentityServiceClient;
use bangfu_proto::subsidy::v1 as pb;
use bangfu_proto::subsidy::v1::subsidy_service_client::SubsidyServiceClient;
use bangfu_subsidy_payment::app::Subsidy;
use tonic::transport::Channel;

/// Zaozhuang, Shizhong district (枣庄市市中区).
pub const SHIZHONG_VILLAGE: &str = "370402001013";

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

pub struct Suite {
    pub server: TestServer,
    /// The service itself, for what a job does on a schedule (the recovery check).
    pub app: Arc<Subsidy>,
    /// The suite's clock: a test moves it past a notice period.
    pub time: Arc<ManualTime>,
    /// Identity's and subsidy's databases, dropped (and removed) with the suite.
    _databases: (TestDatabase, TestDatabase),
}

impl Suite {
    pub async fn start(backend: Backend) -> Self {
        let _ = tracing_subscriber::fmt()
            .with_test_writer()
            .with_env_filter("warn")
            .try_init();
        let (identity_db, subsidy_db) = match backend {
            Backend::Sqlite => (
                TestDatabase::sqlite(&bangfu_identity::MIGRATIONS).await,
                TestDatabase::sqlite(&bangfu_subsidy_payment::MIGRATIONS).await,
            ),
            Backend::Postgres => (
                TestDatabase::postgres(&bangfu_identity::MIGRATIONS).await,
                TestDatabase::postgres(&bangfu_subsidy_payment::MIGRATIONS).await,
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
        let methods = [
            bangfu_platform::auth::permissions::PLATFORM_METHODS,
            bangfu_identity::METHODS,
            bangfu_subsidy_payment::METHODS,
        ]
        .concat();
        let (identity_store, subsidy_store) = (identity_db.db.clone(), subsidy_db.db.clone());
        let follower_db = subsidy_db.db.clone();
        let app_slot: Arc<std::sync::Mutex<Option<Arc<Subsidy>>>> = Arc::new(std::sync::Mutex::new(None));
        let app_slot_in = app_slot.clone();
        let server = TestServer::start_calling_itself(server_config(), &methods, move |host, test_keys, addr| {
            host.audit_denials(bangfu_identity::PATH_PREFIX, identity_store);
            host.audit_denials(bangfu_subsidy_payment::PATH_PREFIX, subsidy_store);
            let tokens = Arc::new(ServiceTokens::new(
                test_keys.service_signer("subsidy"),
                "subsidy",
                RegionScope::Country,
                "bangfu",
                Duration::from_secs(300),
            ));
            let peers = Peers::all_at(&format!("http://{addr}"), Some(tokens), PeerSettings::default()).expect("peers");
            let peer = peers.get("identity").expect("identity peer").clone();
            // The recovery follower of identity's feed, as the hosted service runs it.
            bangfu_subsidy_payment::recovery_follower(follower_db, peer.clone(), clock)
                .hosted()
                .spawn(host.shutdown());
            let subsidy = Arc::new(subsidy.with_identity(bangfu_subsidy_payment::identity::IdentityFacts::new(peer)));
            *app_slot_in.lock().expect("slot") = Some(subsidy.clone());
            let config = host.config().clone();
            host.add_service(bangfu_subsidy_payment::grpc::SubsidyServer::shared(subsidy, &config));
            let identity = identity.with_shutdown(host.shutdown()).into_server(host.config());
            host.add_service(identity);
        })
        .await;
        let app = app_slot.lock().expect("slot").take().expect("the subsidy service");
        Self {
            server,
            app,
            time,
            _databases: (identity_db, subsidy_db),
        }
    }

    /// Subsidy payment's database, for what a test writes or counts beneath the service.
    pub fn subsidy_db(&self) -> &bangfu_platform::db::Database {
        &self._databases.1.db
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

    /// A county agriculture clerk of Shizhong: submits post subsidy claims.
    pub fn agri_clerk(&self) -> String {
        self.token("clerk-agri", Department::Agri, Role::Clerk, "370402")
    }

    /// A Zaozhuang finance clerk: registers accounts, makes batches.
    pub fn finance_clerk(&self) -> String {
        self.token("clerk-finance", Department::Finance, Role::Clerk, "3704")
    }

    pub fn finance_reviewer(&self, subject: &str) -> String {
        self.token(subject, Department::Finance, Role::Reviewer, "3704")
    }

    /// Registers a person in Shizhong, born 1970-03-15 with the ID sequence given, in no
    /// category; returns the resource name.
    pub async fn person(&self, name: &str, sequence: &str) -> String {
        let hr = self.token("clerk-hr", Department::Hr, Role::Clerk, "370402");
        self.person_in(
            &hr,
            name,
            &citizen_id(&format!("37040219700315{sequence}")),
            SHIZHONG_VILLAGE,
        )
        .await
    }

    /// Registers a person with the citizen ID given in `village`, by `hr_clerk`, in no
    /// category; returns the resource name.
    pub async fn person_in(&self, hr_clerk: &str, name: &str, citizen_id: &str, village: &str) -> String {
        self.identity()
            .await
            .create_person(with_token(
                id::CreatePersonRequest {
                    person: Some(id::Person {
                        display_name: name.into(),
                        citizen_id: citizen_id.into(),
                        registered_region: Some(common::RegionCode {
                            code: village.into(),
                            display_name: String::new(),
                        }),
                        ..Default::default()
                    }),
                    request_id: String::new(),
                },
                hr_clerk,
            ))
            .await
            .expect("created")
            .into_inner()
            .person
            .expect("person")
            .name
    }

    /// Certifies `person` poverty-alleviated (脱贫人口) from 2021.
    pub async fn certify_poverty_alleviated(&self, person: &str) {
        let reviewer = self.token("reviewer-agri", Department::Agri, Role::Reviewer, "370402");
        self.certify_poverty_alleviated_by(&reviewer, person, "枣庄市市中区乡村振兴局", "市中乡振〔2021〕1号")
            .await;
    }

    /// Certifies `person` poverty-alleviated from 2021, by `reviewer` of `body`.
    pub async fn certify_poverty_alleviated_by(&self, reviewer: &str, person: &str, body: &str, document: &str) {
        self.identity()
            .await
            .certify_category(with_token(
                id::CertifyCategoryRequest {
                    person: person.into(),
                    certification: Some(common::CategoryCertification {
                        category: common::PersonCategory::PovertyAlleviated as i32,
                        certifying_body: body.into(),
                        document_reference: document.into(),
                        valid_from: Some(date(2021, 1, 1)),
                        ..Default::default()
                    }),
                    request_id: String::new(),
                },
                reviewer,
            ))
            .await
            .expect("certified");
    }

    /// A poverty-alleviated person in Shizhong (certified from 2021); returns the resource name.
    pub async fn poverty_alleviated_person(&self, name: &str, sequence: &str) -> String {
        let person = self.person(name, sequence).await;
        self.certify_poverty_alleviated(&person).await;
        person
    }

    /// A fund as a finance clerk reads it.
    pub async fn read_fund(&self, name: &str) -> pb::Fund {
        self.subsidy()
            .await
            .get_fund(with_token(
                pb::GetFundRequest { name: name.into() },
                &self.finance_clerk(),
            ))
            .await
            .expect("fund")
            .into_inner()
            .fund
            .expect("fund")
    }

    /// The employment-subsidy fund of Zaozhuang for 2025 with `budget_fen`.
    pub async fn fund(&self, budget_fen: i64) -> pb::Fund {
        self.subsidy()
            .await
            .create_fund(with_token(
                pb::CreateFundRequest {
                    fund: Some(pb::Fund {
                        display_name: "2025年枣庄市就业补助资金".into(),
                        fund_source: pb::FundSource::EmploymentSubsidy as i32,
                        region_prefix: "3704".into(),
                        year: 2025,
                        budget_document: "枣财社指〔2025〕1号".into(),
                        budget: Some(common::Money { fen: budget_fen }),
                        ..Default::default()
                    }),
                    request_id: String::new(),
                },
                &self.finance_reviewer("reviewer-finance"),
            ))
            .await
            .expect("fund")
            .into_inner()
            .fund
            .expect("fund")
    }
}

pub fn date(year: i32, month: i32, day: i32) -> common::Date {
    common::Date { year, month, day }
}

pub fn month(year: i32, month: i32) -> common::Period {
    let last = time::Month::try_from(month as u8).expect("month").length(year);
    common::Period {
        first_day: Some(date(year, month, 1)),
        last_day: Some(date(year, month, i32::from(last))),
    }
}

pub fn money_fact(name: &str, fen: i64) -> pb::Fact {
    pb::Fact {
        name: name.into(),
        value: Some(pb::FactValue {
            value: Some(pb::fact_value::Value::MoneyValue(common::Money { fen })),
        }),
    }
}

pub fn integer_fact(name: &str, value: i64) -> pb::Fact {
    pb::Fact {
        name: name.into(),
        value: Some(pb::FactValue {
            value: Some(pb::fact_value::Value::IntegerValue(value)),
        }),
    }
}

/// The reason code a refusal carries.
pub fn reason(status: &tonic::Status) -> String {
    bangfu_platform::error::reason_of(status).unwrap_or_default()
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

/// Polls every future on this task until all are done, in order.
pub async fn join_all<F: std::future::Future>(futures: Vec<F>) -> Vec<F::Output> {
    let mut pinned: Vec<_> = futures.into_iter().map(Box::pin).map(Some).collect();
    let mut outputs: Vec<Option<F::Output>> = (0..pinned.len()).map(|_| None).collect();
    std::future::poll_fn(|cx| {
        let mut pending = false;
        for (slot, output) in pinned.iter_mut().zip(outputs.iter_mut()) {
            if let Some(future) = slot {
                match future.as_mut().poll(cx) {
                    std::task::Poll::Ready(value) => {
                        *output = Some(value);
                        *slot = None;
                    }
                    std::task::Poll::Pending => pending = true,
                }
            }
        }
        if pending {
            std::task::Poll::Pending
        } else {
            std::task::Poll::Ready(())
        }
    })
    .await;
    outputs.into_iter().flatten().collect()
}
