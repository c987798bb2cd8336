//! `bangfu.diagnostics.v1.DiagnosticsService`, served by every bangfu server: who the server
//! takes the caller for, and what it runs with. The first thing to call when a token does not
//! work as expected, and the cheap authenticated call the platform benchmark measures.

use bangfu_proto::diagnostics::v1::diagnostics_service_server::{DiagnosticsService, DiagnosticsServiceServer};
use bangfu_proto::diagnostics::v1::{GetServerInfoRequest, GetServerInfoResponse, WhoAmIRequest, WhoAmIResponse};
use tonic::{Request, Response, Status};

use crate::auth::principal;
use crate::config::ServerConfig;

/// What GetServerInfo reports.
#[derive(Debug, Clone)]
pub struct Diagnostics {
    info: GetServerInfoResponse,
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
            },
        }
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
        Ok(Response::new(self.info.clone()))
    }
}
