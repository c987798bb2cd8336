//! The one mechanism that authorizes every RPC: a tower layer in front of all services. It
//! finds the method in the permission table (a method that is not there is denied), verifies
//! the token(s), works out the caller's effective permissions and scope, refuses what the
//! caller may not do, and hands the handler the [`Principal`] in the request's extensions.
//!
//! It also bounds unary calls by time (a stream is bounded by idle time instead, elsewhere),
//! and gives the codec's refusals the shape of every other error: an oversized message is
//! RESOURCE_EXHAUSTED (the gRPC spec's code, where tonic answers OUT_OF_RANGE), and a body
//! that is not a protobuf message of the method's type is INVALID_ARGUMENT (the caller's
//! fault, where tonic answers INTERNAL), both with a reason.

use std::collections::HashMap;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use http::HeaderMap;
use tonic::body::Body;
use tower::{Layer, Service};

use super::permissions::{self, Access, CallKind, MethodRule};
use super::verify::{TokenKind, Verifier, unauthenticated};
use super::{ON_BEHALF_OF_HEADER, Principal};
use crate::audit::{self, AuditEntry, Outcome};
use crate::db::Database;
use crate::error::{ErrorReason, Problem};

/// The headers read on every call, parsed once: a name given as text is parsed and hashed
/// again on each lookup.
const GRPC_TIMEOUT: http::HeaderName = http::HeaderName::from_static("grpc-timeout");
const ON_BEHALF_OF: http::HeaderName = http::HeaderName::from_static(ON_BEHALF_OF_HEADER);

/// Headers where people put tokens by mistake; a token there is named as misplaced rather than
/// reported missing, so the caller learns where it goes.
const WRONG_TOKEN_HEADERS: &[&str] = &[
    "token",
    "x-token",
    "access-token",
    "x-access-token",
    "x-api-key",
    "authentication",
    "x-authorization",
    "x-jwt",
    "jwt",
];

/// Where the denied calls of one service's methods are audited: the service's own database,
/// through a bounded queue and one writer. A refusal is answered at once and never waits on the
/// database; a flood of refusals (a client retrying a bad token in a loop) cannot spawn a task
/// per call — past the queue's size they are dropped and counted
/// (`bangfu.audit.denials_dropped`, and a warning in the log).
#[derive(Debug, Clone)]
pub struct DenialAudit {
    /// The methods' path prefix, e.g. `/bangfu.identity.v1.`.
    pub path_prefix: &'static str,
    queue: tokio::sync::mpsc::Sender<AuditEntry>,
    dropped: Arc<std::sync::atomic::AtomicU64>,
}

/// Refusals waiting to be written, per service.
const DENIAL_QUEUE: usize = 4096;
/// Refusals written per transaction.
const DENIAL_BATCH: usize = 256;

impl DenialAudit {
    /// Starts the writer for `db` (inside the runtime); it ends when the last layer holding the
    /// queue is dropped, after writing what is queued.
    pub fn start(path_prefix: &'static str, db: Database) -> Self {
        let (queue, mut receiver) = tokio::sync::mpsc::channel::<AuditEntry>(DENIAL_QUEUE);
        tokio::spawn(async move {
            let mut batch = Vec::with_capacity(DENIAL_BATCH);
            while receiver.recv_many(&mut batch, DENIAL_BATCH).await > 0 {
                if let Err(error) = audit::append_many_now(&db, &batch).await {
                    tracing::error!(%error, refusals = batch.len(), "denied calls could not be audited");
                }
                batch.clear();
            }
        });
        Self {
            path_prefix,
            queue,
            dropped: Arc::default(),
        }
    }

    /// Audits a refusal made inside a handler (a department that does not certify a category, a
    /// record outside the caller's scope — answered NOT_FOUND, maker = checker) as the layer's
    /// own are, and hands the refusal back. Queued, not written on the spot: it works inside
    /// the use case's open transaction (on SQLite a second writer would wait for it), and a
    /// rollback of that transaction does not take the audit row with it.
    pub fn refused(&self, principal: &Principal, method: &str, resource: &str, problem: Problem) -> Problem {
        let entry = AuditEntry::by(principal, method, resource, time::OffsetDateTime::now_utc())
            .with_outcome(Outcome::Denied, problem.reason_code())
            .with_current_trace();
        self.push(entry);
        problem
    }

    /// Refusals dropped because the queue was full.
    pub fn dropped(&self) -> u64 {
        self.dropped.load(std::sync::atomic::Ordering::Relaxed)
    }

    fn push(&self, entry: AuditEntry) {
        if self.queue.try_send(entry).is_err() {
            let dropped = self.dropped.fetch_add(1, std::sync::atomic::Ordering::Relaxed) + 1;
            opentelemetry::global::meter("bangfu")
                .u64_counter("bangfu.audit.denials_dropped")
                .build()
                .add(1, &[opentelemetry::KeyValue::new("service", self.path_prefix)]);
            if dropped.is_power_of_two() {
                tracing::warn!(
                    dropped,
                    service = self.path_prefix,
                    "denied calls not audited: the audit queue is full"
                );
            }
        }
    }
}

/// Shared state of the layer.
#[derive(Debug)]
struct AuthState {
    verifier: Arc<Verifier>,
    methods: HashMap<&'static str, MethodRule>,
    unary_timeout: Duration,
    denials: Vec<DenialAudit>,
    log: DenialLog,
}

/// Denial lines logged per second and service; the rest are counted and reported in one line.
/// A client looping on a forbidden call wrote 328,570 lines in 15 s before this bound; the
/// audit log, not this one, keeps every denial.
const DENIAL_LINES_PER_SECOND: u32 = 10;

/// The service part of a method path (`/bangfu.identity.v1.IdentityService/X` →
/// `bangfu.identity.v1.IdentityService`), from the permission table's own strings.
fn service_of(path: &'static str) -> &'static str {
    let name = path.strip_prefix('/').unwrap_or(path);
    name.split_once('/').map_or(name, |(service, _)| service)
}

/// Bounds the denial lines in the log: at most `per_second` a second for each service (the
/// calls of paths in no table share one budget, as their names come from the client), then
/// one line saying how many were left out.
#[derive(Debug)]
pub(crate) struct DenialLog {
    per_second: u32,
    windows: std::sync::Mutex<HashMap<&'static str, LogWindow>>,
}

#[derive(Debug, Clone, Copy)]
struct LogWindow {
    started: std::time::Instant,
    logged: u32,
    suppressed: u64,
}

/// What to do with one denial's log line.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum LogLine {
    /// Write it; `suppressed_before` lines of this service were left out in the window before.
    Write { suppressed_before: u64 },
    /// Leave it out (it is counted).
    Skip,
}

impl DenialLog {
    pub(crate) fn new(per_second: u32) -> Self {
        Self {
            per_second,
            windows: std::sync::Mutex::default(),
        }
    }

    pub(crate) fn admit(&self, service: &'static str, now: std::time::Instant) -> LogLine {
        let mut windows = self.windows.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        let window = windows.entry(service).or_insert(LogWindow {
            started: now,
            logged: 0,
            suppressed: 0,
        });
        let mut suppressed_before = 0;
        if now.saturating_duration_since(window.started) >= Duration::from_secs(1) {
            suppressed_before = window.suppressed;
            *window = LogWindow {
                started: now,
                logged: 0,
                suppressed: 0,
            };
        }
        if window.logged < self.per_second {
            window.logged += 1;
            LogLine::Write { suppressed_before }
        } else {
            window.suppressed += 1;
            LogLine::Skip
        }
    }

    /// Whether to log this denial now; writes the line about the ones left out before it.
    fn should_log(&self, service: &'static str) -> bool {
        match self.admit(service, std::time::Instant::now()) {
            LogLine::Write { suppressed_before } => {
                if suppressed_before > 0 {
                    tracing::warn!(
                        service,
                        suppressed = suppressed_before,
                        "denied calls not logged (more than {} a second); the audit log has each",
                        self.per_second
                    );
                }
                true
            }
            LogLine::Skip => false,
        }
    }
}

impl AuthState {
    /// Records a refused call in the audit log of the service it was meant for, off the
    /// request path: the refusal is answered at once, and a slow database does not slow it.
    fn audit_denial(&self, path: &str, principal: Option<&Principal>, problem: &Problem) {
        let Some(sink) = self.denials.iter().find(|d| path.starts_with(d.path_prefix)) else {
            return;
        };
        let now = time::OffsetDateTime::now_utc();
        let entry = match principal {
            Some(principal) => AuditEntry::by(principal, path, "", now),
            None => AuditEntry::anonymous(path, now),
        }
        .with_outcome(Outcome::Denied, problem.reason_code())
        .with_current_trace();
        sink.push(entry);
    }
}

/// The authorization layer; see the module comment.
#[derive(Debug, Clone)]
pub struct AuthLayer {
    state: Arc<AuthState>,
}

impl AuthLayer {
    /// A layer that checks methods against [`permissions::PLATFORM_METHODS`].
    pub fn new(verifier: Arc<Verifier>, unary_timeout: Duration, denials: Vec<DenialAudit>) -> Self {
        Self::with_methods(verifier, permissions::PLATFORM_METHODS, unary_timeout, denials)
    }

    /// A layer with another method table (tests use it to show an unlisted method is denied).
    pub fn with_methods(
        verifier: Arc<Verifier>,
        methods: &[MethodRule],
        unary_timeout: Duration,
        denials: Vec<DenialAudit>,
    ) -> Self {
        Self {
            state: Arc::new(AuthState {
                verifier,
                methods: methods.iter().map(|m| (m.path, *m)).collect(),
                unary_timeout,
                denials,
                log: DenialLog::new(DENIAL_LINES_PER_SECOND),
            }),
        }
    }
}

impl<S> Layer<S> for AuthLayer {
    type Service = AuthService<S>;

    fn layer(&self, inner: S) -> Self::Service {
        AuthService {
            inner,
            state: self.state.clone(),
        }
    }
}

/// The service the layer wraps around the routes.
#[derive(Debug, Clone)]
pub struct AuthService<S> {
    inner: S,
    state: Arc<AuthState>,
}

type BoxFuture<T, E> = Pin<Box<dyn std::future::Future<Output = Result<T, E>> + Send>>;

impl<S> Service<http::Request<Body>> for AuthService<S>
where
    S: Service<http::Request<Body>, Response = http::Response<Body>> + Clone + Send + 'static,
    S::Future: Send + 'static,
    S::Error: Send + 'static,
{
    type Response = http::Response<Body>;
    type Error = S::Error;
    type Future = BoxFuture<Self::Response, Self::Error>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, mut request: http::Request<Body>) -> Self::Future {
        // The ready inner service goes to this call; a fresh clone stays for the next.
        let clone = self.inner.clone();
        let mut inner = std::mem::replace(&mut self.inner, clone);
        let state = self.state.clone();

        // Every method this server routes has a rule (a startup check keeps it so), so a path
        // without one is a method this server does not serve: a newer contract's, or a service
        // deployed elsewhere. The token is not at fault, and the client should not go and fix it.
        let Some(rule) = state.methods.get(request.uri().path()).copied() else {
            let path = request.uri().path();
            tracing::debug!(method = %path, "method not served");
            return deny(
                Problem::new(
                    tonic::Code::Unimplemented,
                    ErrorReason::MethodNotServed,
                    format!("this server does not serve {}", crate::error::quoted(path)),
                    "本服务器未提供该接口，请核对服务地址或客户端版本",
                )
                .with_metadata("method", crate::error::quoted(path)),
            );
        };
        // The table's own string: nothing is copied per call.
        let path = rule.path;

        let bounded = matches!(rule.kind, CallKind::Unary | CallKind::ServerStreaming);
        let timeout = state.unary_timeout;
        // The time the call has: the caller's grpc-timeout, and for a bounded call no more than
        // the server's own limit. Calls to peers made for it end by then too.
        let asked = request
            .headers()
            .get(&GRPC_TIMEOUT)
            .and_then(|v| v.to_str().ok())
            .and_then(crate::peers::parse_grpc_timeout);
        let limit = match (asked, bounded) {
            (Some(asked), true) => Some(asked.min(timeout)),
            (Some(asked), false) => Some(asked),
            (None, true) => Some(timeout),
            (None, false) => None,
        };
        let deadline = limit.map(|limit| std::time::Instant::now() + limit);

        let mut context = crate::peers::CallContext::new(None, deadline);
        if let Some(permission) = rule.access.permission() {
            let principal = match authenticate(&state.verifier, request.headers()) {
                Ok(principal) => principal,
                Err(problem) => {
                    if state.log.should_log(service_of(rule.path)) {
                        tracing::warn!(method = %path, reason = problem.reason_code(), "call refused");
                    }
                    state.audit_denial(path, None, &problem);
                    return deny(problem);
                }
            };
            // A partner province's token opens the partner-facing methods and nothing else; no
            // local token opens those, whatever permissions it holds (an administrator's too).
            let partner_caller = principal.roles.contains(&super::Role::Partner);
            if partner_caller != matches!(rule.access, Access::Partner(_)) {
                if state.log.should_log(service_of(rule.path)) {
                    tracing::warn!(method = %path, subject = %principal.subject, reason = "CALLER_KIND_REFUSED", "call denied");
                }
                let problem = if partner_caller {
                    Problem::new(
                        tonic::Code::PermissionDenied,
                        ErrorReason::CallerKindRefused,
                        "a partner province's token may call only the exchange's partner-facing methods",
                        "外省协作方令牌只能调用交换服务的对外接口",
                    )
                } else {
                    Problem::new(
                        tonic::Code::PermissionDenied,
                        ErrorReason::CallerKindRefused,
                        "this method answers only a partner province's exchange, with its partner token",
                        "该接口仅供协作省份的交换服务调用，本省令牌不能调用",
                    )
                };
                state.audit_denial(path, Some(&principal), &problem);
                return deny(problem);
            }
            if !principal.has(permission) {
                if state.log.should_log(service_of(rule.path)) {
                    tracing::warn!(
                        method = %path,
                        subject = %principal.subject,
                        permission = permission.as_str(),
                        reason = "PERMISSION_MISSING",
                        "call denied"
                    );
                }
                let problem = Problem::new(
                    tonic::Code::PermissionDenied,
                    ErrorReason::PermissionMissing,
                    format!("this call needs the permission {}", permission.as_str()),
                    format!("您没有办理此业务的权限（{}），请联系管理员授权", permission.as_str()),
                )
                .with_metadata("permission", permission.as_str());
                state.audit_denial(path, Some(&principal), &problem);
                return deny(problem);
            }
            context = crate::peers::CallContext::new(forwardable_user_token(request.headers(), &principal), deadline);
            request.extensions_mut().insert(principal);
        }
        request.extensions_mut().insert(context);
        // Every string field of every single-message request, checked once here for all
        // services. A streamed request (a bulk import, a payroll) answers item by item: its
        // handler refuses a bad row on its own and lets the good ones land.
        let request = if bounded {
            crate::request_text::check_request(request)
        } else {
            request
        };
        let bound = limit.unwrap_or(timeout);
        Box::pin(crate::db::with_call_deadline(deadline, async move {
            let response = if bounded {
                // The caller's own grpc-timeout, when shorter, ends the work here too: a call a
                // peer gave up on does not go on holding a connection.
                match tokio::time::timeout(bound, inner.call(request)).await {
                    Ok(response) => response?,
                    Err(_) => {
                        return Ok(problem_response(Problem::new(
                            tonic::Code::DeadlineExceeded,
                            ErrorReason::Timeout,
                            format!("the call took longer than {} ms", bound.as_millis()),
                            "处理超时，请稍后重试",
                        )));
                    }
                }
            } else {
                inner.call(request).await?
            };
            Ok(explain_codec_errors(response))
        }))
    }
}

/// The token of the user behind a call: the one a service passed on, or the caller's own when
/// the caller is a user. A service acting on its own has none.
fn forwardable_user_token<'h>(headers: &'h HeaderMap, principal: &Principal) -> Option<&'h str> {
    if let Some(user) = headers.get(&ON_BEHALF_OF).and_then(|v| v.to_str().ok()) {
        return Some(user.trim());
    }
    if principal.acting_service.is_some() {
        return None;
    }
    headers.get(http::header::AUTHORIZATION).and_then(|v| bearer(v).ok())
}

/// Works out the caller from the `authorization` and `x-bangfu-on-behalf-of` headers.
fn authenticate(verifier: &Verifier, headers: &HeaderMap) -> Result<Arc<Principal>, Problem> {
    let on_behalf_of = headers.get(&ON_BEHALF_OF);
    let Some(authorization) = headers.get(http::header::AUTHORIZATION) else {
        if on_behalf_of.is_some() {
            return Err(on_behalf_without_service());
        }
        if let Some(name) = WRONG_TOKEN_HEADERS.iter().find(|name| headers.contains_key(**name)) {
            return Err(unauthenticated(
                ErrorReason::TokenInWrongHeader,
                format!("a token was sent in \"{name}\"; send it as \"authorization: Bearer <token>\""),
                "令牌放错了位置，请放在 authorization 请求头中（Bearer 方式）",
            ));
        }
        return Err(unauthenticated(
            ErrorReason::TokenMissing,
            "no token: send \"authorization: Bearer <token>\"",
            "未提供身份令牌，请登录后再试",
        ));
    };
    let caller = verifier.verify(bearer(authorization)?)?;
    let Some(user_header) = on_behalf_of else {
        return Ok(caller.principal.clone());
    };
    let TokenKind::Service(service) = &caller.kind else {
        return Err(on_behalf_without_service());
    };
    if user_header.len() > MAX_TOKEN_BYTES {
        return Err(too_large());
    }
    let user = verifier.verify(user_header.to_str().map_err(|_| malformed())?.trim())?;
    if user.kind != TokenKind::User {
        return Err(unauthenticated(
            ErrorReason::TokenClaimInvalid,
            "x-bangfu-on-behalf-of must carry a user's token",
            "代办请求中的用户令牌无效",
        ));
    }
    let service_permissions = permissions::service_permissions(service);
    let user_permissions = permissions::user_permissions(user.department, &user.roles);
    Ok(Arc::new(Principal {
        subject: user.subject.clone(),
        issuer: user.issuer.clone(),
        department: user.department,
        roles: user.roles.clone(),
        scope: caller.scope.intersect(&user.scope),
        acting_service: Some(service.clone()),
        token_id: format!("{}/{}", caller.token_id, user.token_id),
        permissions: service_permissions.intersection(user_permissions),
    }))
}

/// The longest token accepted. bangfu's tokens are well under 2 KiB; a longer one is a mistake
/// or an attack, answered on its own stream rather than by the transport (see the server's
/// header-list limit, set above this).
pub const MAX_TOKEN_BYTES: usize = 8 * 1024;

fn too_large() -> Problem {
    unauthenticated(
        ErrorReason::TokenTooLarge,
        format!("the token is longer than {MAX_TOKEN_BYTES} bytes"),
        "令牌过长，请重新获取令牌",
    )
    .with_metadata("limit_bytes", MAX_TOKEN_BYTES.to_string())
}

fn bearer(value: &http::HeaderValue) -> Result<&str, Problem> {
    if value.len() > MAX_TOKEN_BYTES {
        return Err(too_large());
    }
    let text = value.to_str().map_err(|_| malformed())?.trim();
    match text.split_once(' ') {
        Some((scheme, token)) if scheme.eq_ignore_ascii_case("bearer") && !token.trim().is_empty() => Ok(token.trim()),
        _ => Err(unauthenticated(
            ErrorReason::TokenMalformed,
            "the authorization header must be \"Bearer <token>\"",
            "authorization 请求头格式应为 “Bearer 令牌”",
        )),
    }
}

fn malformed() -> Problem {
    unauthenticated(
        ErrorReason::TokenMalformed,
        "the token is not a well-formed JWT",
        "令牌格式不正确，请重新获取令牌",
    )
}

fn on_behalf_without_service() -> Problem {
    unauthenticated(
        ErrorReason::OnBehalfOfRequiresService,
        "x-bangfu-on-behalf-of is accepted only beside a service token in authorization",
        "代办请求必须由系统服务发起",
    )
}

fn problem_response(problem: Problem) -> http::Response<Body> {
    tonic::Status::from(problem).into_http()
}

fn deny<E: Send + 'static>(problem: Problem) -> BoxFuture<http::Response<Body>, E> {
    let response = problem_response(problem);
    Box::pin(async move { Ok(response) })
}

/// tonic answers a request it cannot decode with a bare status: OUT_OF_RANGE for a message
/// over the limit, INTERNAL for bytes that are not the method's message. Such trailers-only
/// responses are rewritten into the codes and reasons every other refusal has.
fn explain_codec_errors(response: http::Response<Body>) -> http::Response<Body> {
    let code = response.headers().get("grpc-status").map(|v| v.as_bytes().to_vec());
    let (too_large, malformed) = match code.as_deref() {
        Some(b"11") => (true, false),
        Some(b"13") => (false, true),
        _ => return response,
    };
    let Some(status) = tonic::Status::from_header_map(response.headers()) else {
        return response;
    };
    if too_large && status.message().contains("message length too large") {
        return problem_response(Problem::new(
            tonic::Code::ResourceExhausted,
            ErrorReason::MessageTooLarge,
            status.message().to_string(),
            "提交的数据量超过单次允许的上限，请分批提交",
        ));
    }
    if malformed && status.message().contains("failed to decode Protobuf message") {
        return problem_response(Problem::new(
            tonic::Code::InvalidArgument,
            ErrorReason::MessageMalformed,
            format!(
                "the request is not a valid message of this method's type: {}",
                status.message()
            ),
            "请求数据格式不正确，请检查调用方程序",
        ));
    }
    response
}

#[cfg(test)]
mod tests {
    use std::time::{Duration, Instant};

    use super::{DenialLog, LogLine, service_of};

    fn written(log: &DenialLog, service: &'static str, now: Instant, calls: usize) -> Vec<u64> {
        (0..calls)
            .filter_map(|_| match log.admit(service, now) {
                LogLine::Write { suppressed_before } => Some(suppressed_before),
                LogLine::Skip => None,
            })
            .collect()
    }

    #[test]
    fn a_flood_of_denials_logs_the_budget_per_second_then_the_count_left_out() {
        let log = DenialLog::new(10);
        let start = Instant::now();
        assert_eq!(written(&log, "identity", start, 1000), vec![0; 10]);
        // Still the same second: nothing more.
        assert!(written(&log, "identity", start + Duration::from_millis(900), 100).is_empty());
        // The next second: the first line says how many of the last were left out.
        let next = written(&log, "identity", start + Duration::from_secs(1), 1000);
        assert_eq!(next.len(), 10);
        assert_eq!(next[0], 1090);
        assert!(next[1..].iter().all(|n| *n == 0));
        // A quiet service keeps its own budget.
        assert_eq!(written(&log, "jobs", start, 3), vec![0; 3]);
        // The count comes with the next denial, however late; after a quiet window it is 0.
        let later = start + Duration::from_secs(5);
        assert_eq!(written(&log, "identity", later, 1), vec![990]);
        assert_eq!(written(&log, "identity", later + Duration::from_secs(2), 1), vec![0]);
    }

    #[test]
    fn the_service_of_a_path_is_its_first_part() {
        assert_eq!(
            service_of("/bangfu.identity.v1.IdentityService/GetPerson"),
            "bangfu.identity.v1.IdentityService"
        );
        assert_eq!(service_of("nothing"), "nothing");
    }
}
