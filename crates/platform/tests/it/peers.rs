//! Calls between services through `peers`: a service calls another as itself and for a user
//! (the receiver grants what both hold), and a peer that is gone or silent is a clear
//! UNAVAILABLE or DEADLINE_EXCEEDED naming it, within the caller's deadline.

use std::sync::Arc;
use std::time::{Duration, Instant};

use bangfu_platform::auth::token::ServiceTokens;
use bangfu_platform::auth::{Department, RegionScope, Role};
use bangfu_platform::error::{ErrorReason, Problem};
use bangfu_platform::peers::{CallContext, PeerError, PeerSettings, Peers, Retry};
use bangfu_platform::testing::{TestKeys, TestServer};
use bangfu_proto::diagnostics::v1::diagnostics_service_client::DiagnosticsServiceClient;
use bangfu_proto::diagnostics::v1::{GetServerInfoRequest, WhoAmIRequest, WhoAmIResponse};

fn tokens(keys: &TestKeys, service: &str) -> Arc<ServiceTokens> {
    Arc::new(ServiceTokens::new(
        keys.service_signer(service),
        service,
        RegionScope::parse("3704").expect("scope"),
        "bangfu",
        Duration::from_secs(300),
    ))
}

/// Peers of the `welfare_post` service with identity at `url`.
fn peers(keys: &TestKeys, url: &str) -> Peers {
    let url = url.to_string();
    Peers::from_lookup(
        move |name| (name == "BANGFU_PEER_IDENTITY").then(|| url.clone()),
        None,
        Some(tokens(keys, "welfare_post")),
        PeerSettings::default(),
    )
    .expect("peers")
}

async fn who_am_i(peers: &Peers, context: &CallContext) -> Result<WhoAmIResponse, PeerError> {
    let identity = peers.get("identity").expect("configured");
    identity
        .call(context, Retry::Safe, |channel| async move {
            DiagnosticsServiceClient::new(channel).who_am_i(WhoAmIRequest {}).await
        })
        .await
}

#[tokio::test]
async fn a_service_calls_a_peer_as_itself_and_for_a_user() {
    let server = TestServer::start().await;
    let peers = peers(&server.keys, &server.url());
    let own = who_am_i(&peers, &CallContext::own()).await.expect("own call");
    assert_eq!(
        (
            own.subject.as_str(),
            own.acting_service.as_str(),
            own.region_scope.as_str()
        ),
        ("welfare_post", "welfare_post", "3704")
    );
    let user = server
        .keys
        .user_token_for("clerk-sun", Department::Agri, &[Role::Clerk], "370402");
    let deadline = Instant::now() + Duration::from_secs(5);
    let for_user = who_am_i(&peers, &CallContext::new(Some(&user), Some(deadline)))
        .await
        .expect("call for a user");
    assert_eq!(
        (
            for_user.subject.as_str(),
            for_user.acting_service.as_str(),
            for_user.region_scope.as_str()
        ),
        ("clerk-sun", "welfare_post", "370402")
    );
}

#[tokio::test]
async fn a_user_acting_through_a_service_gets_only_what_both_hold() {
    let server = TestServer::start().await;
    let peers = peers(&server.keys, &server.url());
    // The administrator may read the server's settings; the service it acts through may not.
    let admin = server
        .keys
        .user_token_for("admin-zhou", Department::Hr, &[Role::Admin], "*");
    let identity = peers.get("identity").expect("configured");
    let refused = identity
        .call(
            &CallContext::new(Some(&admin), None),
            Retry::Safe,
            |channel| async move {
                DiagnosticsServiceClient::new(channel)
                    .get_server_info(GetServerInfoRequest {})
                    .await
            },
        )
        .await
        .expect_err("refused");
    let problem = Problem::from(refused);
    assert_eq!(problem.code, tonic::Code::PermissionDenied);
    assert_eq!(problem.reason, ErrorReason::PermissionMissing);
    assert!(problem.metadata.contains(&("peer".into(), "identity".into())));
}

#[tokio::test]
async fn a_stopped_peer_is_unavailable_naming_it_within_the_deadline() {
    let keys = TestKeys::new();
    // A port nothing listens on any more.
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let url = format!("http://{}", listener.local_addr().expect("address"));
    drop(listener);
    let peers = peers(&keys, &url);
    let started = Instant::now();
    let deadline = started + Duration::from_secs(3);
    let error = who_am_i(&peers, &CallContext::new(None, Some(deadline)))
        .await
        .expect_err("nobody answers");
    assert!(
        Instant::now() <= deadline + Duration::from_millis(200),
        "within the deadline"
    );
    let problem = Problem::from(error);
    assert_eq!(problem.code, tonic::Code::Unavailable);
    assert_eq!(problem.reason, ErrorReason::PeerUnavailable);
    assert!(problem.message.contains("identity"), "{}", problem.message);
    assert!(problem.metadata.contains(&("peer".into(), "identity".into())));
}

#[tokio::test]
async fn a_silent_peer_ends_the_call_at_the_callers_deadline() {
    let keys = TestKeys::new();
    // Accepts connections and never says a word.
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let url = format!("http://{}", listener.local_addr().expect("address"));
    let silent = tokio::spawn(async move {
        let mut held = Vec::new();
        while let Ok((socket, _)) = listener.accept().await {
            held.push(socket);
        }
    });
    let peers = peers(&keys, &url);
    let started = Instant::now();
    let error = who_am_i(
        &peers,
        &CallContext::new(None, Some(started + Duration::from_millis(500))),
    )
    .await
    .expect_err("no answer");
    let took = started.elapsed();
    assert!(
        matches!(
            error,
            PeerError::DeadlineExceeded { .. } | PeerError::Unavailable { .. }
        ),
        "{error}"
    );
    assert!(
        took < Duration::from_millis(1500),
        "ended by the deadline, took {took:?}"
    );
    silent.abort();
}

/// A diagnostics service whose WhoAmI never finishes, and says when its work was dropped.
struct Stuck {
    dropped: Arc<tokio::sync::Notify>,
}

struct DropSignal(Arc<tokio::sync::Notify>);

impl Drop for DropSignal {
    fn drop(&mut self) {
        self.0.notify_one();
    }
}

#[tonic::async_trait]
impl bangfu_proto::diagnostics::v1::diagnostics_service_server::DiagnosticsService for Stuck {
    async fn who_am_i(
        &self,
        _: tonic::Request<WhoAmIRequest>,
    ) -> Result<tonic::Response<WhoAmIResponse>, tonic::Status> {
        let _signal = DropSignal(self.dropped.clone());
        std::future::pending::<()>().await;
        Ok(tonic::Response::new(WhoAmIResponse::default()))
    }

    async fn get_server_info(
        &self,
        _: tonic::Request<GetServerInfoRequest>,
    ) -> Result<tonic::Response<bangfu_proto::diagnostics::v1::GetServerInfoResponse>, tonic::Status> {
        Ok(tonic::Response::new(Default::default()))
    }

    async fn check_peers(
        &self,
        _: tonic::Request<bangfu_proto::diagnostics::v1::CheckPeersRequest>,
    ) -> Result<tonic::Response<bangfu_proto::diagnostics::v1::CheckPeersResponse>, tonic::Status> {
        Ok(tonic::Response::new(Default::default()))
    }
}

#[tokio::test]
async fn the_callers_deadline_ends_the_work_downstream() {
    let dropped = Arc::new(tokio::sync::Notify::new());
    let stuck = Stuck {
        dropped: dropped.clone(),
    };
    // The server's own limit is 30 s; the caller has 300 ms.
    let server = TestServer::start_with(
        bangfu_platform::testing::server_config(),
        bangfu_platform::auth::permissions::PLATFORM_METHODS,
        |host| {
            host.add_service(
                bangfu_proto::diagnostics::v1::diagnostics_service_server::DiagnosticsServiceServer::new(stuck),
            );
        },
    )
    .await;
    let peers = peers(&server.keys, &server.url());
    let started = Instant::now();
    let error = who_am_i(
        &peers,
        &CallContext::new(None, Some(started + Duration::from_millis(300))),
    )
    .await
    .expect_err("no answer in time");
    assert!(matches!(error, PeerError::DeadlineExceeded { .. }), "{error}");
    tokio::time::timeout(Duration::from_secs(3), dropped.notified())
        .await
        .expect("the peer dropped the work when the caller's time ran out");
}
