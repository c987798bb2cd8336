//! The server's own behaviour: health per service, reflection, message limits, and a graceful
//! shutdown that finishes what is running and takes nothing new.

use std::sync::Arc;
use std::time::Duration;

use bangfu_platform::auth::{Department, Role, permissions};
use bangfu_platform::error::reason_of;
use bangfu_platform::testing::{TestServer, server_config, with_token};
use bangfu_proto::diagnostics::v1::diagnostics_service_client::DiagnosticsServiceClient;
use bangfu_proto::diagnostics::v1::diagnostics_service_server::{DiagnosticsService, DiagnosticsServiceServer};
use bangfu_proto::diagnostics::v1::{GetServerInfoRequest, GetServerInfoResponse, WhoAmIRequest, WhoAmIResponse};
use tokio::sync::Notify;
use tonic::Code;
use tonic_health::pb::HealthCheckRequest;
use tonic_health::pb::health_check_response::ServingStatus;
use tonic_health::pb::health_client::HealthClient;

async fn health_of(server: &TestServer, service: &str) -> Result<i32, tonic::Status> {
    let mut client = HealthClient::new(server.channel().await);
    client
        .check(HealthCheckRequest {
            service: service.into(),
        })
        .await
        .map(|r| r.into_inner().status)
}

#[tokio::test]
async fn health_reports_each_hosted_service_serving_without_a_token() {
    let server = TestServer::start().await;
    assert_eq!(
        health_of(&server, "").await.expect("overall"),
        ServingStatus::Serving as i32
    );
    assert_eq!(
        health_of(&server, "bangfu.diagnostics.v1.DiagnosticsService")
            .await
            .expect("diagnostics"),
        ServingStatus::Serving as i32
    );
    let status = health_of(&server, "bangfu.nothing.v1.NoService")
        .await
        .expect_err("unknown");
    assert_eq!(status.code(), Code::NotFound);
}

#[tokio::test]
async fn reflection_lists_the_hosted_services() {
    use tonic_reflection::pb::v1::ServerReflectionRequest;
    use tonic_reflection::pb::v1::server_reflection_client::ServerReflectionClient;
    use tonic_reflection::pb::v1::server_reflection_request::MessageRequest;
    use tonic_reflection::pb::v1::server_reflection_response::MessageResponse;

    let server = TestServer::start().await;
    let mut client = ServerReflectionClient::new(server.channel().await);
    let request = ServerReflectionRequest {
        host: String::new(),
        message_request: Some(MessageRequest::ListServices(String::new())),
    };
    let mut responses = client
        .server_reflection_info(tokio_stream::iter(vec![request]))
        .await
        .expect("reflection")
        .into_inner();
    let response = responses.message().await.expect("message").expect("one response");
    let Some(MessageResponse::ListServicesResponse(list)) = response.message_response else {
        panic!("expected a service list, got {:?}", response.message_response);
    };
    let names: Vec<String> = list.service.into_iter().map(|s| s.name).collect();
    assert!(
        names.contains(&"bangfu.diagnostics.v1.DiagnosticsService".to_string()),
        "{names:?}"
    );
    assert!(names.contains(&"grpc.health.v1.Health".to_string()), "{names:?}");
}

#[tokio::test]
async fn a_message_over_the_limit_is_resource_exhausted() {
    let server = TestServer::start().await;
    let token = server.keys.user_token(Department::Hr, &[Role::Clerk], "37");
    // WhoAmIRequest has no fields; an unknown field still counts against the limit (64 KiB here).
    let padding = "x".repeat(80 * 1024);
    let oversized = OversizedWhoAmI { padding };
    let mut raw = tonic::client::Grpc::new(server.channel().await);
    raw.ready().await.expect("ready");
    let path = http::uri::PathAndQuery::from_static("/bangfu.diagnostics.v1.DiagnosticsService/WhoAmI");
    let status = raw
        .unary::<_, WhoAmIResponse, _>(
            with_token(oversized, &token),
            path,
            tonic_prost::ProstCodec::<OversizedWhoAmI, WhoAmIResponse>::default(),
        )
        .await
        .expect_err("too large");
    assert_eq!(status.code(), Code::ResourceExhausted, "{status:?}");
    assert_eq!(reason_of(&status).as_deref(), Some("MESSAGE_TOO_LARGE"));
}

#[tokio::test]
async fn bytes_that_are_not_the_methods_message_are_invalid_argument() {
    let server = TestServer::start().await;
    let token = server.keys.user_token(Department::Hr, &[Role::Clerk], "37");
    let mut raw = tonic::client::Grpc::new(server.channel().await);
    raw.ready().await.expect("ready");
    let path = http::uri::PathAndQuery::from_static("/bangfu.diagnostics.v1.DiagnosticsService/WhoAmI");
    // Field 1 as a length-delimited value whose length runs past the end.
    let garbage = OversizedWhoAmI { padding: String::new() };
    let status = raw
        .unary::<_, WhoAmIResponse, _>(with_token(garbage, &token), path, GarbageCodec)
        .await
        .expect_err("malformed");
    assert_eq!(status.code(), Code::InvalidArgument, "{status:?}");
    assert_eq!(reason_of(&status).as_deref(), Some("MESSAGE_MALFORMED"));
}

/// Encodes any request as bytes no protobuf decoder accepts.
#[derive(Debug, Clone, Default)]
struct GarbageCodec;

impl tonic::codec::Codec for GarbageCodec {
    type Encode = OversizedWhoAmI;
    type Decode = WhoAmIResponse;
    type Encoder = GarbageEncoder;
    type Decoder = <tonic_prost::ProstCodec<OversizedWhoAmI, WhoAmIResponse> as tonic::codec::Codec>::Decoder;

    fn encoder(&mut self) -> Self::Encoder {
        GarbageEncoder
    }

    fn decoder(&mut self) -> Self::Decoder {
        tonic::codec::Codec::decoder(&mut tonic_prost::ProstCodec::<OversizedWhoAmI, WhoAmIResponse>::default())
    }
}

#[derive(Debug, Clone, Default)]
struct GarbageEncoder;

impl tonic::codec::Encoder for GarbageEncoder {
    type Item = OversizedWhoAmI;
    type Error = tonic::Status;

    fn encode(&mut self, _: Self::Item, dst: &mut tonic::codec::EncodeBuf<'_>) -> Result<(), Self::Error> {
        use bytes::BufMut;
        dst.put_slice(&[0x0a, 0x7f, 0x01]);
        Ok(())
    }
}

/// A WhoAmIRequest with an unknown field the server must still read past.
#[derive(Clone, PartialEq, prost::Message)]
struct OversizedWhoAmI {
    #[prost(string, tag = "99")]
    padding: String,
}

/// A diagnostics service whose WhoAmI waits until the test lets it finish.
struct Slow {
    entered: Arc<Notify>,
    release: Arc<Notify>,
}

#[tonic::async_trait]
impl DiagnosticsService for Slow {
    async fn who_am_i(
        &self,
        _: tonic::Request<WhoAmIRequest>,
    ) -> Result<tonic::Response<WhoAmIResponse>, tonic::Status> {
        self.entered.notify_one();
        self.release.notified().await;
        Ok(tonic::Response::new(WhoAmIResponse {
            subject: "finished".into(),
            ..Default::default()
        }))
    }

    async fn get_server_info(
        &self,
        _: tonic::Request<GetServerInfoRequest>,
    ) -> Result<tonic::Response<GetServerInfoResponse>, tonic::Status> {
        Ok(tonic::Response::new(GetServerInfoResponse::default()))
    }

    async fn check_peers(
        &self,
        _: tonic::Request<bangfu_proto::diagnostics::v1::CheckPeersRequest>,
    ) -> Result<tonic::Response<bangfu_proto::diagnostics::v1::CheckPeersResponse>, tonic::Status> {
        Ok(tonic::Response::new(Default::default()))
    }
}

#[tokio::test]
async fn shutdown_lets_an_in_flight_call_finish_and_refuses_new_ones() {
    let entered = Arc::new(Notify::new());
    let release = Arc::new(Notify::new());
    let slow = Slow {
        entered: entered.clone(),
        release: release.clone(),
    };
    let server = TestServer::start_with(server_config(), permissions::PLATFORM_METHODS, |host| {
        host.add_service(DiagnosticsServiceServer::new(slow));
    })
    .await;
    let token = server.keys.user_token(Department::Hr, &[Role::Clerk], "37");
    let mut client = DiagnosticsServiceClient::new(server.channel().await);
    let in_flight = tokio::spawn({
        let token = token.clone();
        async move { client.who_am_i(with_token(WhoAmIRequest {}, &token)).await }
    });
    entered.notified().await;

    server.shutdown.trigger();
    // Health turns NOT_SERVING for load balancers; the listener closes to new connections.
    let refused = tokio::time::timeout(Duration::from_secs(5), async {
        loop {
            match tonic::transport::Channel::from_shared(server.url())
                .expect("url")
                .connect()
                .await
            {
                Err(_) => break,
                Ok(_) => tokio::time::sleep(Duration::from_millis(20)).await,
            }
        }
    })
    .await;
    assert!(refused.is_ok(), "new connections are still accepted after shutdown");

    release.notify_one();
    let finished = in_flight.await.expect("task").expect("the in-flight call completes");
    assert_eq!(finished.into_inner().subject, "finished");
    tokio::time::timeout(Duration::from_secs(5), server.stopped())
        .await
        .expect("server stops once the call is done")
        .expect("clean stop");
}

#[tokio::test]
async fn health_turns_not_serving_when_draining() {
    let entered = Arc::new(Notify::new());
    let release = Arc::new(Notify::new());
    let slow = Slow {
        entered: entered.clone(),
        release: release.clone(),
    };
    let server = TestServer::start_with(server_config(), permissions::PLATFORM_METHODS, |host| {
        host.add_service(DiagnosticsServiceServer::new(slow));
    })
    .await;
    let token = server.keys.user_token(Department::Hr, &[Role::Clerk], "37");
    // One connection, opened before the drain, kept open by an in-flight call.
    let channel = server.channel().await;
    let mut client = DiagnosticsServiceClient::new(channel.clone());
    let in_flight = tokio::spawn(async move { client.who_am_i(with_token(WhoAmIRequest {}, &token)).await });
    entered.notified().await;
    let mut health = HealthClient::new(channel);
    let mut watch = health
        .watch(HealthCheckRequest {
            service: "bangfu.diagnostics.v1.DiagnosticsService".into(),
        })
        .await
        .expect("watch")
        .into_inner();
    let first = watch.message().await.expect("status").expect("one");
    assert_eq!(first.status, ServingStatus::Serving as i32);

    server.shutdown.trigger();
    let next = tokio::time::timeout(Duration::from_secs(5), watch.message())
        .await
        .expect("a status change")
        .expect("status")
        .expect("one");
    assert_eq!(next.status, ServingStatus::NotServing as i32);
    release.notify_one();
    in_flight.await.expect("task").expect("in-flight call completes");
    drop(watch);
    tokio::time::timeout(Duration::from_secs(10), server.stopped())
        .await
        .expect("stops")
        .expect("clean");
}

#[tokio::test]
async fn server_info_reports_the_configured_limits() {
    let server = TestServer::start().await;
    let token = server.keys.user_token(Department::Hr, &[Role::Admin], "*");
    let mut client = DiagnosticsServiceClient::new(server.channel().await);
    let info = client
        .get_server_info(with_token(GetServerInfoRequest {}, &token))
        .await
        .expect("admin may read")
        .into_inner();
    assert_eq!(info.max_receive_message_bytes, 64 * 1024);
    assert!(
        info.services
            .contains(&"bangfu.diagnostics.v1.DiagnosticsService".to_string())
    );
}

#[tokio::test]
async fn a_service_is_not_serving_while_its_database_is_away_and_the_server_stays_alive_on_postgres() {
    use bangfu_platform::db::{Database, Migrations, PoolSettings};
    use bangfu_platform::testing::{TcpProxy, TestDatabase};
    let test = TestDatabase::postgres(&Migrations::NONE).await;
    let proxy = TcpProxy::start("127.0.0.1:5432".parse().expect("address")).await;
    let url = test.url.replacen("127.0.0.1:5432", &proxy.addr.to_string(), 1);
    let settings = PoolSettings {
        acquire_timeout: Duration::from_secs(1),
        ..PoolSettings::default()
    };
    let db = Database::open(&url, settings, &Migrations::NONE).await.expect("open");
    const DIAGNOSTICS: &str = "bangfu.diagnostics.v1.DiagnosticsService";
    let server = TestServer::start_with(server_config(), permissions::PLATFORM_METHODS, move |host| {
        let diagnostics = bangfu_platform::diagnostics::Diagnostics::new(host.config(), &[]).into_server(host.config());
        host.add_service(diagnostics);
        host.ready_while_database_answers(DIAGNOSTICS, db);
        host.check_databases_every(Duration::from_millis(100));
    })
    .await;
    let serving = ServingStatus::Serving as i32;
    let not_serving = ServingStatus::NotServing as i32;
    let becomes = |wanted: i32| {
        let server = &server;
        async move {
            for _ in 0..100 {
                if health_of(server, DIAGNOSTICS).await.expect("health") == wanted {
                    return true;
                }
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
            false
        }
    };
    assert!(becomes(serving).await);
    proxy.cut();
    assert!(becomes(not_serving).await, "readiness follows the database");
    assert_eq!(
        health_of(&server, "").await.expect("health"),
        serving,
        "liveness does not"
    );
    proxy.restore();
    assert!(becomes(serving).await, "and comes back with it");
}

#[tokio::test]
async fn the_health_port_answers_health_in_plaintext_and_nothing_else() {
    let health_listener = bangfu_platform::server::bind("127.0.0.1:0".parse().expect("address"))
        .await
        .expect("bind");
    let health_addr = health_listener.local_addr().expect("address");
    let server = TestServer::start_with(server_config(), permissions::PLATFORM_METHODS, move |host| {
        let diagnostics = bangfu_platform::diagnostics::Diagnostics::new(host.config(), &[]).into_server(host.config());
        host.add_service(diagnostics);
        host.health_listener(health_listener);
    })
    .await;
    let channel = tonic::transport::Channel::from_shared(format!("http://{health_addr}"))
        .expect("url")
        .connect()
        .await
        .expect("connect");
    let mut health = HealthClient::new(channel.clone());
    let status = health
        .check(HealthCheckRequest {
            service: "bangfu.diagnostics.v1.DiagnosticsService".into(),
        })
        .await
        .expect("health")
        .into_inner()
        .status;
    assert_eq!(status, ServingStatus::Serving as i32);
    let token = server.keys.user_token(Department::Hr, &[Role::Clerk], "37");
    let refused = DiagnosticsServiceClient::new(channel)
        .who_am_i(with_token(WhoAmIRequest {}, &token))
        .await
        .expect_err("only health here");
    assert_eq!(refused.code(), Code::Unimplemented);
}

#[tokio::test]
async fn a_connection_that_never_speaks_is_closed_after_the_handshake_timeout() {
    use tokio::io::AsyncReadExt;
    let server = TestServer::start().await;
    // The test configuration's handshake timeout is 1 s.
    let mut silent = tokio::net::TcpStream::connect(server.addr).await.expect("connect");
    let mut buffer = [0u8; 16];
    let read = tokio::time::timeout(Duration::from_secs(10), silent.read(&mut buffer))
        .await
        .expect("the server closed the silent connection");
    assert!(
        matches!(read, Ok(0) | Err(_)),
        "the server sent {read:?} to a client that said nothing"
    );
    // A client that speaks is served as before.
    let mut health = HealthClient::new(server.channel().await);
    health
        .check(HealthCheckRequest { service: String::new() })
        .await
        .expect("served");
}
