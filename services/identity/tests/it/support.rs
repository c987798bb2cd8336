//! A running identity service for a test, on a fresh database of either backend.

use std::sync::Arc;
use std::time::Duration;

use bangfu_platform::auth::{Department, Role};
use bangfu_platform::clock::Clock;
use bangfu_platform::db::{Database, PoolSettings};
use bangfu_platform::outbox::WatchSettings;
use bangfu_platform::pii::DataKeyFile;
use bangfu_platform::testing::{TcpProxy, TestDatabase, TestServer, server_config, with_token};
use bangfu_proto::identity::v1::identity_service_client::IdentityServiceClient;
use tonic::transport::Channel;

/// Zaozhuang, Shizhong district (枣庄市市中区): villages the test persons live in.
pub const SHIZHONG_VILLAGE: &str = "370402001013";
pub const SHIZHONG_OTHER_VILLAGE: &str = "370402001016";
/// Zaozhuang, Xuecheng district (薛城区).
pub const XUECHENG_VILLAGE: &str = "370403001001";
/// Chongqing, Yuzhong district (渝中区).
pub const YUZHONG_VILLAGE: &str = "500101001001";

/// The gRPC name health checks ask for.
pub const IDENTITY_SERVICE: &str = "bangfu.identity.v1.IdentityService";

pub struct Identity {
    pub server: TestServer,
    pub store: TestDatabase,
}

pub enum Backend {
    Sqlite,
    Postgres,
}

impl Identity {
    /// The service at 2026-03-02 10:00 in China (02:00 UTC).
    pub async fn start(backend: Backend) -> Self {
        let store = match backend {
            Backend::Sqlite => TestDatabase::sqlite(&bangfu_identity::MIGRATIONS).await,
            Backend::Postgres => TestDatabase::postgres(&bangfu_identity::MIGRATIONS).await,
        };
        let db = store.db.clone();
        Self::serve(store, db, Duration::from_secs(5)).await
    }

    /// The service on PostgreSQL through a proxy the test can cut, as a database that goes
    /// away. Readiness is checked only every minute, so what turns it sooner is the calls.
    pub async fn start_through_proxy() -> (Self, TcpProxy) {
        let store = TestDatabase::postgres(&bangfu_identity::MIGRATIONS).await;
        let proxy = TcpProxy::start("127.0.0.1:5432".parse().expect("address")).await;
        let url = store.url.replacen("127.0.0.1:5432", &proxy.addr.to_string(), 1);
        assert_ne!(url, store.url, "the test database URL goes through 127.0.0.1:5432");
        let db = Database::open(&url, PoolSettings::default(), &bangfu_identity::MIGRATIONS)
            .await
            .expect("open through the proxy");
        (Self::serve(store, db, Duration::from_secs(60)).await, proxy)
    }

    async fn serve(store: TestDatabase, db: Database, readiness_check: Duration) -> Self {
        let (clock, _time) = Clock::manual(time::macros::datetime!(2026-03-02 02:00 UTC));
        let keys = Arc::new(DataKeyFile::generate().into_keys().expect("data keys"));
        let service = bangfu_identity::start(db.clone(), keys, clock).await.expect("identity");
        let methods = [
            bangfu_platform::auth::permissions::PLATFORM_METHODS,
            bangfu_identity::METHODS,
        ]
        .concat();
        let server = TestServer::start_with(server_config(), &methods, move |host| {
            host.audit_denials(bangfu_identity::PATH_PREFIX, db.clone());
            let feed = WatchSettings {
                poll: Duration::from_millis(20),
                heartbeat: Duration::from_millis(300),
                batch: 100,
            };
            let server = service
                .with_shutdown(host.shutdown())
                .with_feed_settings(feed)
                .into_server(host.config());
            host.add_service(server);
            host.ready_while_database_answers(IDENTITY_SERVICE, db);
            host.check_databases_every(readiness_check);
        })
        .await;
        Self { server, store }
    }

    pub async fn client(&self) -> IdentityServiceClient<Channel> {
        IdentityServiceClient::new(self.server.channel().await)
    }

    /// A token of `subject` in `department` with `role`, scoped to `scope`.
    pub fn token(&self, subject: &str, department: Department, role: Role, scope: &str) -> String {
        self.server.keys.user_token_for(subject, department, &[role], scope)
    }

    /// An HR clerk of Shizhong district (370402).
    pub fn shizhong_clerk(&self) -> String {
        self.token("clerk-li", Department::Hr, Role::Clerk, "370402")
    }
}

pub fn request<T>(message: T, token: &str) -> tonic::Request<T> {
    with_token(message, token)
}

/// A valid citizen ID: issuing county, birth date `yyyymmdd`, 3-digit sequence (odd = male).
pub fn citizen_id(county: &str, birth: &str, sequence: &str) -> String {
    bangfu_platform::testing::citizen_id(&format!("{county}{birth}{sequence}"))
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

/// Registers a person with a name, citizen ID and village; returns its resource name.
pub async fn register(identity: &Identity, token: &str, name: &str, id: &str, village: &str) -> String {
    let mut client = identity.client().await;
    let person = bangfu_proto::identity::v1::Person {
        display_name: name.into(),
        citizen_id: id.into(),
        registered_region: Some(bangfu_proto::common::v1::RegionCode {
            code: village.into(),
            display_name: String::new(),
        }),
        ..Default::default()
    };
    client
        .create_person(request(
            bangfu_proto::identity::v1::CreatePersonRequest {
                person: Some(person),
                request_id: String::new(),
            },
            token,
        ))
        .await
        .expect("created")
        .into_inner()
        .person
        .expect("person")
        .name
}

/// A person as of `period` (None: today), masked.
pub async fn read_person(
    identity: &Identity,
    token: &str,
    name: &str,
    period: Option<bangfu_proto::common::v1::Period>,
) -> bangfu_proto::identity::v1::Person {
    let mut client = identity.client().await;
    client
        .get_person(request(
            bangfu_proto::identity::v1::GetPersonRequest {
                name: name.into(),
                period,
                ..Default::default()
            },
            token,
        ))
        .await
        .expect("read")
        .into_inner()
        .person
        .expect("person")
}

/// Moves a person's registration and/or residence to the villages given, from `effective`
/// (None: today).
pub async fn move_person(
    identity: &Identity,
    token: &str,
    name: &str,
    (registered, residence): (Option<&str>, Option<&str>),
    effective: Option<bangfu_proto::common::v1::Date>,
) {
    let region = |code: &str| {
        Some(bangfu_proto::common::v1::RegionCode {
            code: code.into(),
            display_name: String::new(),
        })
    };
    let mut person = read_person(identity, token, name, None).await;
    let mut paths = Vec::new();
    if let Some(code) = registered {
        person.registered_region = region(code);
        paths.push("registered_region".to_string());
    }
    if let Some(code) = residence {
        person.residence_region = region(code);
        paths.push("residence_region".to_string());
    }
    let mut client = identity.client().await;
    client
        .update_person(request(
            bangfu_proto::identity::v1::UpdatePersonRequest {
                person: Some(person),
                update_mask: Some(prost_types::FieldMask { paths }),
                effective_date: effective,
            },
            token,
        ))
        .await
        .expect("moved");
}
