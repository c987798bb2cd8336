//! `bangfu.diagnostics.v1.DiagnosticsService`, served by every bangfu server: who the server
//! takes the caller for, and what it runs with. The first thing to call when a token does not
//! work as expected, and the cheap authenticated call the platform benchmark measures.

use bangfu_proto::diagnostics::v1::diagnostics_service_client::DiagnosticsServiceClient;
use bangfu_proto::diagnostics::v1::diagnostics_service_server::{DiagnosticsService, DiagnosticsServiceServer};
use bangfu_proto::diagnostics::v1::{
    CheckPeersRequest, CheckPeersResponse, GetServerInfoRequest, GetServerInfoResponse, PeerCheck, WhoAmIRequest,
    WhoAmIResponse,
};
use std::sync::Arc;

use bangfu_proto::diagnostics::v1 as pb;
use tonic::{Request, Response, Status};

use crate::auth::principal;
use crate::config::ServerConfig;
use crate::error::Problem;
use crate::follow::{FollowerState, FollowerStatus};
use crate::peers::{CallContext, Peers, Retry};

/// What GetServerInfo reports, and the peers CheckPeers calls.
#[derive(Debug, Clone)]
pub struct Diagnostics {
    info: GetServerInfoResponse,
    /// Each hosted service with the peers it calls.
    callers: Vec<(String, Peers)>,
    /// The feed followers this server runs, read at each call.
    followers: Vec<Arc<FollowerStatus>>,
}

impl Diagnostics {
    pub fn new(config: &ServerConfig, services: &[&str]) -> Self {
        let mut services: Vec<String> = services.iter().map(|s| s.to_string()).collect();
        services.push(DIAGNOSTICS_SERVICE.to_string());
        services.sort();
        Self {
            info: GetServerInfoResponse {
                version: env!("CARGO_PKG_VERSION").to_string(),
                services,
                max_receive_message_bytes: config.max_receive_bytes as i64,
                max_send_message_bytes: config.max_send_bytes as i64,
                unary_timeout_millis: config.unary_timeout.as_millis() as i64,
                concurrency_limit: config.concurrency_limit as i64,
                tls: config.tls.is_some(),
                followers: Vec::new(),
            },
            callers: Vec::new(),
            followers: Vec::new(),
        }
    }

    /// The peers hosted service `caller` calls, for CheckPeers.
    pub fn with_peers(mut self, caller: &str, peers: Peers) -> Self {
        self.callers.push((caller.to_string(), peers));
        self
    }

    /// The followers whose state and lag GetServerInfo reports.
    pub fn with_followers(mut self, followers: impl IntoIterator<Item = Arc<FollowerStatus>>) -> Self {
        self.followers.extend(followers);
        self
    }

    /// The service, with the configured message limits.
    pub fn into_server(self, config: &ServerConfig) -> DiagnosticsServiceServer<Self> {
        DiagnosticsServiceServer::new(self)
            .max_decoding_message_size(config.max_receive_bytes)
            .max_encoding_message_size(config.max_send_bytes)
    }
}

/// The fully qualified name of the diagnostics service.
pub const DIAGNOSTICS_SERVICE: &str = "bangfu.diagnostics.v1.DiagnosticsService";

#[tonic::async_trait]
impl DiagnosticsService for Diagnostics {
    async fn who_am_i(&self, request: Request<WhoAmIRequest>) -> Result<Response<WhoAmIResponse>, Status> {
        let caller = principal(&request)?;
        Ok(Response::new(WhoAmIResponse {
            subject: caller.subject.clone(),
            department: caller.department.map(|d| d.as_str().to_string()).unwrap_or_default(),
            roles: caller.roles.iter().map(|r| r.as_str().to_string()).collect(),
            region_scope: caller.scope.to_string(),
            acting_service: caller.acting_service.clone().unwrap_or_default(),
            permissions: caller.permissions.iter().map(|p| p.as_str().to_string()).collect(),
            issuer: caller.issuer.clone(),
        }))
    }

    async fn get_server_info(
        &self,
        _request: Request<GetServerInfoRequest>,
    ) -> Result<Response<GetServerInfoResponse>, Status> {
        let mut info = self.info.clone();
        info.followers = self
            .followers
            .iter()
            .map(|status| {
                let report = status.report();
                pb::FollowerStatus {
                    name: report.name,
                    state: match report.state {
                        FollowerState::Following => pb::FollowerState::Following,
                        FollowerState::Standby => pb::FollowerState::Standby,
                        FollowerState::Reconnecting => pb::FollowerState::Reconnecting,
                        FollowerState::Stopped => pb::FollowerState::Stopped,
                    } as i32,
                    events_applied: report.events_applied as i64,
                    lag_seconds: report.lag_seconds,
                    events_behind: i64::try_from(report.events_behind).unwrap_or(i64::MAX),
                    last_error: report.last_error,
                }
            })
            .collect();
        Ok(Response::new(info))
    }

    async fn check_peers(&self, request: Request<CheckPeersRequest>) -> Result<Response<CheckPeersResponse>, Status> {
        let context = CallContext::of(&request);
        let mut checks = Vec::new();
        for (caller, peers) in &self.callers {
            for peer in peers.iter() {
                let started = std::time::Instant::now();
                let answer = peer
                    .call(&context, Retry::Safe, |channel| async move {
                        DiagnosticsServiceClient::new(channel).who_am_i(WhoAmIRequest {}).await
                    })
                    .await;
                let mut check = PeerCheck {
                    caller: caller.clone(),
                    peer: peer.service().to_string(),
                    address: peer.url().to_string(),
                    latency_millis: started.elapsed().as_millis() as i64,
                    ..Default::default()
                };
                match answer {
                    Ok(seen) => {
                        check.reachable = true;
                        check.seen_subject = seen.subject;
                        check.seen_acting_service = seen.acting_service;
                    }
                    Err(error) => {
                        let problem = Problem::from(error);
                        check.error = format!("{}: {}", problem.reason_code(), problem.message);
                    }
                }
                checks.push(check);
            }
        }
        Ok(Response::new(CheckPeersResponse { checks }))
    }
}
