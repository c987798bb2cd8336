//! Credentials for calls one bangfu service makes to another: the calling service's own
//! short-lived token in `authorization`, the user's token in `x-bangfu-on-behalf-of` when the
//! call is made for a user, the time left (`grpc-timeout`) and the current trace context. The
//! receiver grants only what both the service and the user hold, in the overlap of their
//! scopes. `peers` builds these for every call; tests use them directly.

use std::sync::Arc;

use tonic::metadata::MetadataValue;
use tonic::service::Interceptor;

use super::ON_BEHALF_OF_HEADER;
use super::token::ServiceTokens;

/// A tonic interceptor that signs outgoing calls as this service, optionally for a user.
#[derive(Debug, Clone)]
pub struct ServiceCredentials {
    tokens: Arc<ServiceTokens>,
    on_behalf_of: Option<MetadataValue<tonic::metadata::Ascii>>,
    deadline: Option<std::time::Instant>,
}

impl ServiceCredentials {
    /// Calls made by the service on its own account (a feed follower, a scheduled job).
    pub fn own(tokens: Arc<ServiceTokens>) -> Self {
        Self {
            tokens,
            on_behalf_of: None,
            deadline: None,
        }
    }

    /// Calls made for the user whose token is `user_token`; a token that cannot be a header
    /// value is refused here rather than sent.
    pub fn for_user(tokens: Arc<ServiceTokens>, user_token: &str) -> Result<Self, tonic::Status> {
        let value = user_token
            .trim()
            .parse()
            .map_err(|_| tonic::Status::unauthenticated("the user's token cannot be sent as a header"))?;
        Ok(Self {
            tokens,
            on_behalf_of: Some(value),
            deadline: None,
        })
    }

    /// Tells the receiver when the caller stops waiting (`grpc-timeout`), so it gives up too.
    pub fn with_deadline(mut self, deadline: std::time::Instant) -> Self {
        self.deadline = Some(deadline);
        self
    }
}

impl Interceptor for ServiceCredentials {
    fn call(&mut self, mut request: tonic::Request<()>) -> Result<tonic::Request<()>, tonic::Status> {
        let token = self.tokens.token().map_err(|error| {
            tracing::error!(%error, "cannot mint this service's token");
            tonic::Status::internal("this service cannot sign its own token")
        })?;
        let authorization = format!("Bearer {token}")
            .parse()
            .map_err(|_| tonic::Status::internal("this service's token is not a valid header"))?;
        let metadata = request.metadata_mut();
        metadata.insert("authorization", authorization);
        if let Some(user) = &self.on_behalf_of {
            metadata.insert(ON_BEHALF_OF_HEADER, user.clone());
        }
        crate::telemetry::inject_trace_context(metadata);
        if let Some(deadline) = self.deadline {
            request.set_timeout(deadline.saturating_duration_since(std::time::Instant::now()));
        }
        Ok(request)
    }
}
