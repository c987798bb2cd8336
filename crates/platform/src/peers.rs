//! Calls from one bangfu service to another (a peer), built once: typed tonic clients over a
//! channel to the address the configuration gives (`BANGFU_PEER_<SERVICE>`, e.g.
//! `BANGFU_PEER_IDENTITY=https://identity:50051`), each call carrying the calling service's own
//! short-lived token, the user's token when it acts for one, the time the caller has left and
//! the trace context; mutual TLS with the service's own certificate when the address is https.
//!
//! ```text
//! let context = CallContext::of(&request);            // in the handler: the user and deadline
//! let person = peers.get("identity")?.call(&context, Retry::Safe, |channel| async move {
//!     IdentityServiceClient::new(channel).get_person(message.clone()).await
//! }).await?;
//! ```
//!
//! Retries only where they are safe: UNAVAILABLE is retried, with backoff and a bound, for
//! reads and for writes that carry a request id (`Retry::Safe`), never for anything else. A peer
//! that is down or does not answer in time is a clear UNAVAILABLE or DEADLINE_EXCEEDED naming
//! it, never a wait past the caller's deadline.

use std::collections::BTreeMap;
use std::future::Future;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use tonic::service::interceptor::InterceptedService;
use tonic::transport::{Certificate, Channel, ClientTlsConfig, Endpoint, Identity};

use crate::auth::client::ServiceCredentials;
use crate::auth::permissions::SERVICES;
use crate::auth::token::ServiceTokens;
use crate::error::{ErrorReason, Problem};

/// Who a call between services is made for and when its caller stops waiting: put in every
/// request's extensions by the authorization layer, read by the handler, handed to each peer
/// call it makes.
#[derive(Debug, Clone, Default)]
pub struct CallContext {
    /// The user's token to pass on (`x-bangfu-on-behalf-of`), when a user is behind the call.
    user_token: Option<Arc<str>>,
    /// When the incoming call's own time runs out.
    deadline: Option<Instant>,
}

impl CallContext {
    /// Work the service does on its own account (a follower, a scheduled job): no user, and the
    /// peer settings' default time limit.
    pub fn own() -> Self {
        Self::default()
    }

    /// For a user whose token is `user_token`, until `deadline`.
    pub fn new(user_token: Option<&str>, deadline: Option<Instant>) -> Self {
        Self {
            user_token: user_token.map(Arc::from),
            deadline,
        }
    }

    /// The context of an incoming request (as the layer left it), or `own()` outside one.
    pub fn of<T>(request: &tonic::Request<T>) -> Self {
        request.extensions().get::<CallContext>().cloned().unwrap_or_default()
    }

    pub fn deadline(&self) -> Option<Instant> {
        self.deadline
    }

    pub fn acts_for_user(&self) -> bool {
        self.user_token.is_some()
    }
}

/// The `grpc-timeout` header's value (`100m`, `5S`, …) as a duration.
pub fn parse_grpc_timeout(value: &str) -> Option<Duration> {
    let (digits, unit) = value.split_at(value.len().checked_sub(1)?);
    if digits.is_empty() || digits.len() > 8 {
        return None;
    }
    let n: u64 = digits.parse().ok()?;
    Some(match unit {
        "H" => Duration::from_secs(n.checked_mul(3600)?),
        "M" => Duration::from_secs(n.checked_mul(60)?),
        "S" => Duration::from_secs(n),
        "m" => Duration::from_millis(n),
        "u" => Duration::from_micros(n),
        "n" => Duration::from_nanos(n),
        _ => return None,
    })
}

/// Whether a failed call may be sent again.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Retry {
    /// A read, or a write that carries a request id: sending it twice does no harm.
    Safe,
    /// Anything else: one attempt.
    Never,
}

/// How peers are called.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PeerSettings {
    /// How long a connection attempt may take.
    pub connect_timeout: Duration,
    /// The time limit of a call made with no caller's deadline (`CallContext::own`).
    pub default_timeout: Duration,
    /// Attempts of a `Retry::Safe` call that meets UNAVAILABLE, the first included.
    pub attempts: u32,
    /// The wait before the second attempt; doubled for each further one.
    pub backoff: Duration,
}

impl Default for PeerSettings {
    fn default() -> Self {
        Self {
            connect_timeout: Duration::from_secs(2),
            default_timeout: Duration::from_secs(10),
            attempts: 3,
            backoff: Duration::from_millis(100),
        }
    }
}

/// The TLS material a service presents to its peers and trusts them by.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PeerTls {
    /// The CA peers' server certificates are checked against.
    pub ca: PathBuf,
    /// The service's own certificate and key, presented as its client certificate.
    pub cert: PathBuf,
    pub key: PathBuf,
}

/// What went wrong calling a peer.
#[derive(Debug, thiserror::Error)]
pub enum PeerError {
    #[error("no address for the {service} service: set BANGFU_PEER_{}", service.to_uppercase())]
    NotConfigured { service: String },
    #[error("{variable}={value:?} is not a usable address: {reason}")]
    InvalidAddress {
        variable: String,
        value: String,
        reason: String,
    },
    #[error("{variable}: {reason}")]
    Tls { variable: &'static str, reason: String },
    #[error("the {service} service cannot be reached: {detail}")]
    Unavailable { service: String, detail: String },
    #[error("the {service} service did not answer in time")]
    DeadlineExceeded { service: String },
    #[error("this service has no signing key for its calls to {service} (BANGFU_SIGNING_KEY)")]
    NoCredentials { service: String },
    #[error("the {service} service refused the call: {}", status.message())]
    Refused { service: String, status: tonic::Status },
}

impl PeerError {
    /// The peer's own answer, when it answered with an error: the caller maps it to its domain
    /// (a person that does not exist, a permission the user lacks).
    pub fn status(&self) -> Option<&tonic::Status> {
        match self {
            Self::Refused { status, .. } => Some(status),
            _ => None,
        }
    }
}

impl From<PeerError> for Problem {
    fn from(error: PeerError) -> Self {
        match &error {
            PeerError::NotConfigured { service } | PeerError::Unavailable { service, .. } => {
                tracing::warn!(%error, "peer unavailable");
                Problem::new(
                    tonic::Code::Unavailable,
                    ErrorReason::PeerUnavailable,
                    error.to_string(),
                    format!("暂时无法连接{service}服务，请稍后重试"),
                )
                .with_metadata("peer", service.as_str())
            }
            PeerError::DeadlineExceeded { service } => Problem::new(
                tonic::Code::DeadlineExceeded,
                ErrorReason::Timeout,
                error.to_string(),
                format!("{service}服务处理超时，请稍后重试"),
            )
            .with_metadata("peer", service.as_str()),
            PeerError::Refused { service, status } => {
                // The peer's reason and code travel on: a permission the user lacks there is a
                // permission the user lacks here.
                let reason = crate::error::reason_of(status)
                    .and_then(|code| ErrorReason::from_str_name(&format!("ERROR_REASON_{code}")))
                    .unwrap_or(ErrorReason::Internal);
                let zh = tonic_types::StatusExt::get_error_details(status)
                    .localized_message()
                    .map(|m| m.message.clone())
                    .unwrap_or_else(|| format!("{service}服务拒绝了该请求"));
                Problem::new(status.code(), reason, format!("{service}: {}", status.message()), zh)
                    .with_metadata("peer", service.as_str())
            }
            PeerError::InvalidAddress { .. } | PeerError::Tls { .. } | PeerError::NoCredentials { .. } => {
                tracing::error!(%error, "peer misconfigured");
                Problem::internal()
            }
        }
    }
}

/// What a transport failure was, down to its cause ("transport error" alone tells an operator
/// nothing; "invalid peer certificate: UnknownIssuer" tells which certificate to fix).
fn transport_detail(status: &tonic::Status) -> String {
    let mut detail = status.message().to_string();
    let mut cause = std::error::Error::source(status);
    while let Some(error) = cause {
        detail.push_str(": ");
        detail.push_str(&error.to_string());
        cause = error.source();
    }
    detail
}

/// The services this one calls, by name.
#[derive(Debug, Clone, Default)]
pub struct Peers {
    peers: BTreeMap<String, Peer>,
}

impl Peers {
    /// No peers (a service that calls none, or a test).
    pub fn none() -> Self {
        Self::default()
    }

    /// The peers `BANGFU_PEER_<SERVICE>` names, read through `lookup`: `http://` on loopback
    /// or `https://` with mutual TLS (`tls` required then). Calls are signed with `tokens`.
    pub fn from_lookup(
        lookup: impl Fn(&str) -> Option<String>,
        tls: Option<&PeerTls>,
        tokens: Option<Arc<ServiceTokens>>,
        settings: PeerSettings,
    ) -> Result<Self, PeerError> {
        let mut peers = BTreeMap::new();
        for service in SERVICES {
            let variable = format!("BANGFU_PEER_{}", service.to_uppercase());
            let Some(url) = lookup(&variable)
                .map(|v| v.trim().to_string())
                .filter(|v| !v.is_empty())
            else {
                continue;
            };
            let peer = Peer::new(service, &variable, &url, tls, tokens.clone(), settings)?;
            peers.insert((*service).to_string(), peer);
        }
        Ok(Self { peers })
    }

    /// Every service at `url` (`bangfu up`: one process, one port on loopback), called through
    /// the same channel, tokens and layers as a deployment's.
    pub fn all_at(url: &str, tokens: Option<Arc<ServiceTokens>>, settings: PeerSettings) -> Result<Self, PeerError> {
        let mut peers = BTreeMap::new();
        for service in SERVICES {
            let peer = Peer::new(service, "bangfu up", url, None, tokens.clone(), settings)?;
            peers.insert((*service).to_string(), peer);
        }
        Ok(Self { peers })
    }

    /// The peer `service`, or UNAVAILABLE naming the variable to set.
    pub fn get(&self, service: &str) -> Result<&Peer, PeerError> {
        self.peers.get(service).ok_or_else(|| PeerError::NotConfigured {
            service: service.to_string(),
        })
    }

    /// The configured peers, by service name.
    pub fn iter(&self) -> impl Iterator<Item = &Peer> {
        self.peers.values()
    }
}

/// One peer service and the channel to it (connected on first use, reconnected as needed).
#[derive(Debug, Clone)]
pub struct Peer {
    service: String,
    url: String,
    channel: Channel,
    tokens: Option<Arc<ServiceTokens>>,
    settings: PeerSettings,
}

impl Peer {
    fn new(
        service: &str,
        variable: &str,
        url: &str,
        tls: Option<&PeerTls>,
        tokens: Option<Arc<ServiceTokens>>,
        settings: PeerSettings,
    ) -> Result<Self, PeerError> {
        let invalid = |reason: String| PeerError::InvalidAddress {
            variable: variable.to_string(),
            value: url.to_string(),
            reason,
        };
        let uri: http::Uri = url.parse().map_err(|e: http::uri::InvalidUri| invalid(e.to_string()))?;
        let host = uri
            .host()
            .ok_or_else(|| invalid("it names no host".into()))?
            .to_string();
        if uri.port_u16().is_none() {
            return Err(invalid("it names no port (e.g. https://identity:50051)".into()));
        }
        let mut endpoint = Endpoint::from_shared(url.to_string())
            .map_err(|e| invalid(e.to_string()))?
            .connect_timeout(settings.connect_timeout)
            .tcp_nodelay(true)
            .http2_keep_alive_interval(Duration::from_secs(30))
            .keep_alive_timeout(Duration::from_secs(10));
        match uri.scheme_str() {
            Some("http") => {}
            Some("https") => {
                let tls = tls.ok_or_else(|| PeerError::Tls {
                    variable: "BANGFU_TLS_CERT",
                    reason: format!(
                        "{variable} is https, and calling it needs this service's certificate and key \
                         (BANGFU_TLS_CERT, BANGFU_TLS_KEY) and the CA that signed the peer's (BANGFU_PEER_CA)"
                    ),
                })?;
                let read = |variable: &'static str, path: &PathBuf| {
                    std::fs::read(path).map_err(|e| PeerError::Tls {
                        variable,
                        reason: format!("{}: {e}", path.display()),
                    })
                };
                let config = ClientTlsConfig::new()
                    .domain_name(host)
                    .ca_certificate(Certificate::from_pem(read("BANGFU_PEER_CA", &tls.ca)?))
                    .identity(Identity::from_pem(
                        read("BANGFU_TLS_CERT", &tls.cert)?,
                        read("BANGFU_TLS_KEY", &tls.key)?,
                    ));
                endpoint = endpoint.tls_config(config).map_err(|e| PeerError::Tls {
                    variable: "BANGFU_PEER_CA",
                    reason: e.to_string(),
                })?;
            }
            _ => return Err(invalid("it must start with http:// or https://".into())),
        }
        Ok(Self {
            service: service.to_string(),
            url: url.to_string(),
            channel: endpoint.connect_lazy(),
            tokens,
            settings,
        })
    }

    /// Opens a server stream on the service's own account (a feed follower reading another
    /// service's `Watch…Changes`). The stream itself has no deadline; opening it is bounded by
    /// the peer settings' time limit. Never retried here: the follower reconnects with its own
    /// backoff from the cursor it stored.
    pub async fn open_stream<T, F, Fut>(&self, make: F) -> Result<tonic::Streaming<T>, PeerError>
    where
        F: FnOnce(InterceptedService<Channel, ServiceCredentials>) -> Fut,
        Fut: Future<Output = Result<tonic::Response<tonic::Streaming<T>>, tonic::Status>>,
    {
        let tokens = self.tokens.clone().ok_or_else(|| PeerError::NoCredentials {
            service: self.service.clone(),
        })?;
        let channel = InterceptedService::new(self.channel.clone(), ServiceCredentials::own(tokens));
        match tokio::time::timeout(self.settings.default_timeout, make(channel)).await {
            Err(_) => Err(self.deadline_exceeded()),
            Ok(Ok(response)) => Ok(response.into_inner()),
            Ok(Err(status)) => Err(self.failure(status)),
        }
    }

    /// What an error status from the peer means: the transport's own failure (refused, reset,
    /// a TLS handshake one side rejected) is the peer not reachable as configured; anything
    /// with a reason is the peer's refusal (a bangfu server's refusals always carry one).
    fn failure(&self, status: tonic::Status) -> PeerError {
        // A connection the peer (or the network) closed mid-call surfaces as CANCELLED.
        let transport = matches!(
            status.code(),
            tonic::Code::Unavailable | tonic::Code::Unknown | tonic::Code::Cancelled
        ) && crate::error::reason_of(&status).is_none();
        if transport {
            PeerError::Unavailable {
                service: self.service.clone(),
                detail: transport_detail(&status),
            }
        } else {
            PeerError::Refused {
                service: self.service.clone(),
                status,
            }
        }
    }

    pub fn service(&self) -> &str {
        &self.service
    }

    pub fn url(&self) -> &str {
        &self.url
    }

    /// Calls the peer: `make` builds the typed client over the channel it is given and makes
    /// one call. The call carries this service's token (and the user's, from `context`), ends
    /// by the caller's deadline, and is retried on UNAVAILABLE only when `retry` says it is safe.
    pub async fn call<T, F, Fut>(&self, context: &CallContext, retry: Retry, mut make: F) -> Result<T, PeerError>
    where
        F: FnMut(InterceptedService<Channel, ServiceCredentials>) -> Fut,
        Fut: Future<Output = Result<tonic::Response<T>, tonic::Status>>,
    {
        let own_limit = Instant::now() + self.settings.default_timeout;
        let deadline = context.deadline.map_or(own_limit, |d| d.min(own_limit));
        let tokens = self.tokens.clone().ok_or_else(|| PeerError::NoCredentials {
            service: self.service.clone(),
        })?;
        let credentials = match &context.user_token {
            Some(user) => ServiceCredentials::for_user(tokens, user).map_err(|status| PeerError::Refused {
                service: self.service.clone(),
                status,
            })?,
            None => ServiceCredentials::own(tokens),
        }
        .with_deadline(deadline);
        let attempts = match retry {
            Retry::Safe => self.settings.attempts.max(1),
            Retry::Never => 1,
        };
        let mut backoff = self.settings.backoff;
        let mut attempt = 1;
        loop {
            let remaining = deadline.saturating_duration_since(Instant::now());
            if remaining.is_zero() {
                return Err(self.deadline_exceeded());
            }
            let channel = InterceptedService::new(self.channel.clone(), credentials.clone());
            let status = match tokio::time::timeout(remaining, make(channel)).await {
                Err(_) => return Err(self.deadline_exceeded()),
                Ok(Ok(response)) => return Ok(response.into_inner()),
                Ok(Err(status)) => status,
            };
            if Instant::now() >= deadline && crate::error::reason_of(&status).is_none() {
                // The peer's transport gave up with the time the call carried ("Timeout expired").
                return Err(self.deadline_exceeded());
            }
            match status.code() {
                tonic::Code::Unavailable if attempt < attempts => {
                    tracing::debug!(peer = %self.service, attempt, status = %status.message(), "peer unavailable; retrying");
                    let wait = backoff.min(deadline.saturating_duration_since(Instant::now()));
                    tokio::time::sleep(wait).await;
                    backoff *= 2;
                    attempt += 1;
                }
                tonic::Code::Unavailable | tonic::Code::Unknown | tonic::Code::Cancelled
                    if crate::error::reason_of(&status).is_none() =>
                {
                    return Err(self.failure(status));
                }
                tonic::Code::DeadlineExceeded if crate::error::reason_of(&status).is_none() => {
                    return Err(self.deadline_exceeded());
                }
                _ => {
                    return Err(PeerError::Refused {
                        service: self.service.clone(),
                        status,
                    });
                }
            }
        }
    }

    fn deadline_exceeded(&self) -> PeerError {
        PeerError::DeadlineExceeded {
            service: self.service.clone(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn grpc_timeouts_are_read_in_every_unit_and_nonsense_is_refused() {
        assert_eq!(parse_grpc_timeout("100m"), Some(Duration::from_millis(100)));
        assert_eq!(parse_grpc_timeout("5S"), Some(Duration::from_secs(5)));
        assert_eq!(parse_grpc_timeout("2M"), Some(Duration::from_secs(120)));
        assert_eq!(parse_grpc_timeout("1H"), Some(Duration::from_secs(3600)));
        assert_eq!(parse_grpc_timeout("250u"), Some(Duration::from_micros(250)));
        assert_eq!(parse_grpc_timeout("7n"), Some(Duration::from_nanos(7)));
        for bad in ["", "m", "10", "10x", "123456789S", "-1S"] {
            assert_eq!(parse_grpc_timeout(bad), None, "{bad:?}");
        }
    }

    #[tokio::test]
    async fn a_peer_address_that_is_not_a_url_is_refused_naming_the_variable() {
        let lookup = |name: &str| (name == "BANGFU_PEER_IDENTITY").then(|| "identity:50051".to_string());
        let error = Peers::from_lookup(lookup, None, None, PeerSettings::default()).expect_err("not a URL");
        let text = error.to_string();
        assert!(text.contains("BANGFU_PEER_IDENTITY"), "{text}");
        let no_port = |name: &str| (name == "BANGFU_PEER_SUBSIDY").then(|| "http://subsidy".to_string());
        let error = Peers::from_lookup(no_port, None, None, PeerSettings::default()).expect_err("no port");
        assert!(error.to_string().contains("no port"), "{error}");
        let https = |name: &str| (name == "BANGFU_PEER_JOBS").then(|| "https://jobs:50051".to_string());
        let error = Peers::from_lookup(https, None, None, PeerSettings::default()).expect_err("https without TLS");
        assert!(error.to_string().contains("BANGFU_TLS_CERT"), "{error}");
        let none = Peers::from_lookup(|_| None, None, None, PeerSettings::default()).expect("no peers");
        let missing = none.get("identity").expect_err("not configured");
        assert_eq!(
            Problem::from(missing).reason,
            ErrorReason::PeerUnavailable,
            "an unconfigured peer is UNAVAILABLE naming it"
        );
    }
}
