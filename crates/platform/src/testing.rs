//! Test support shared by every crate's integration tests: development keys in a temporary
//! folder, tokens of any shape (good and deliberately bad), and a real server on a random
//! port. Tests speak to the server only over gRPC.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use tonic::transport::Channel;

use crate::auth::keys::{self, DEVELOPMENT_DEPARTMENT_KID, KeyRing};
use crate::auth::token::{Claims, TokenSigner, UserIdentity, unix_now};
use crate::auth::verify::{Revocations, Verifier};
use crate::auth::{Department, MethodRule, RegionScope, Role};
use crate::config::ServerConfig;
use crate::diagnostics::Diagnostics;
use crate::server::{ServeError, ServerHost, Shutdown};

/// Development keys in a temporary folder, removed when dropped.
pub struct TestKeys {
    dir: tempfile::TempDir,
}

impl TestKeys {
    pub fn new() -> Self {
        let dir = tempfile::tempdir().expect("temporary folder");
        keys::ensure_development_keys(&dir.path().join("keys")).expect("development keys");
        Self { dir }
    }

    pub fn keys_dir(&self) -> PathBuf {
        self.dir.path().join("keys")
    }

    pub fn revocation_file(&self) -> PathBuf {
        self.keys_dir().join("revoked.json")
    }

    /// A verifier over these keys that re-reads the revocation file on every call.
    pub fn verifier(&self) -> Verifier {
        let ring = KeyRing::load(&self.keys_dir(), keys::DevelopmentKeys::Allow).expect("key ring");
        Verifier::new(
            ring,
            "bangfu",
            Duration::from_secs(30),
            Revocations::from_file(Some(self.revocation_file()), Duration::ZERO),
        )
    }

    pub fn department_signer(&self) -> TokenSigner {
        TokenSigner::load(&keys::signing_key_path(&self.keys_dir(), DEVELOPMENT_DEPARTMENT_KID))
            .expect("department key")
    }

    pub fn service_signer(&self, service: &str) -> TokenSigner {
        TokenSigner::load(&keys::signing_key_path(
            &self.keys_dir(),
            &format!("dev-service-{service}"),
        ))
        .expect("service key")
    }

    /// Claims of a valid user token, for a test to spoil one field of.
    pub fn user_claims(&self, department: Department, roles: &[Role], scope: &str) -> Claims {
        let user = UserIdentity {
            subject: "test-user".into(),
            department,
            roles: roles.to_vec(),
            scope: RegionScope::parse(scope).expect("scope"),
        };
        self.department_signer()
            .user_claims(&user, "bangfu", unix_now(), Duration::from_secs(3600))
    }

    /// A valid user token.
    pub fn user_token(&self, department: Department, roles: &[Role], scope: &str) -> String {
        self.department_signer()
            .sign(&self.user_claims(department, roles, scope))
            .expect("sign")
    }

    /// A valid user token for a named subject.
    pub fn user_token_for(&self, subject: &str, department: Department, roles: &[Role], scope: &str) -> String {
        let mut claims = self.user_claims(department, roles, scope);
        claims.sub = subject.to_string();
        self.department_signer().sign(&claims).expect("sign")
    }

    /// A valid token of a service acting on its own.
    pub fn service_token(&self, service: &str, scope: &str) -> String {
        let signer = self.service_signer(service);
        let scope = RegionScope::parse(scope).expect("scope");
        signer
            .sign(&signer.service_claims(service, &scope, "bangfu", unix_now(), Duration::from_secs(300)))
            .expect("sign")
    }

    /// Writes the revocation file.
    pub fn revoke(&self, token_ids: &[&str], subjects: &[&str]) {
        let body = serde_json::json!({ "token_ids": token_ids, "subjects": subjects });
        std::fs::write(self.revocation_file(), body.to_string()).expect("revocation file");
    }
}

impl Default for TestKeys {
    fn default() -> Self {
        Self::new()
    }
}

/// Server settings for tests: a random loopback port and a short grace period.
pub fn server_config() -> ServerConfig {
    ServerConfig {
        listen: SocketAddr::from(([127, 0, 0, 1], 0)),
        unary_timeout: Duration::from_secs(10),
        stream_idle_timeout: Duration::from_secs(30),
        concurrency_limit: 64,
        max_receive_bytes: 64 * 1024,
        max_send_bytes: 1024 * 1024,
        keepalive_interval: Duration::from_secs(30),
        keepalive_timeout: Duration::from_secs(10),
        shutdown_grace: Duration::from_secs(5),
        tls: None,
    }
}

/// A server running in this process on a random port.
pub struct TestServer {
    pub addr: SocketAddr,
    pub keys: TestKeys,
    pub shutdown: Shutdown,
    task: tokio::task::JoinHandle<Result<(), ServeError>>,
}

impl TestServer {
    /// A server with the suite's permission table and the diagnostics service.
    pub async fn start() -> Self {
        Self::start_with(server_config(), crate::auth::permissions::METHODS, |host| {
            let diagnostics = Diagnostics::new(host.config(), host.service_names()).into_server(host.config());
            host.add_service(diagnostics);
        })
        .await
    }

    /// A server with a given configuration and method table, hosting what `add` adds.
    pub async fn start_with(config: ServerConfig, methods: &[MethodRule], add: impl FnOnce(&mut ServerHost)) -> Self {
        let keys = TestKeys::new();
        let listener = crate::server::bind(config.listen).await.expect("bind");
        let addr = listener.local_addr().expect("address");
        let mut host = ServerHost::with_methods(config, Arc::new(keys.verifier()), methods);
        add(&mut host);
        let shutdown = host.shutdown();
        let task = tokio::spawn(host.serve(listener));
        Self {
            addr,
            keys,
            shutdown,
            task,
        }
    }

    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// A new connection to the server.
    pub async fn channel(&self) -> Channel {
        Channel::from_shared(self.url())
            .expect("url")
            .connect()
            .await
            .expect("connect")
    }

    /// Triggers the shutdown and waits for the server to stop.
    pub async fn stop(self) -> Result<(), ServeError> {
        self.shutdown.trigger();
        self.task.await.expect("server task")
    }

    /// Waits for the server task after a shutdown triggered elsewhere.
    pub async fn stopped(self) -> Result<(), ServeError> {
        self.task.await.expect("server task")
    }
}

/// A request carrying `authorization: Bearer <token>`.
pub fn with_token<T>(message: T, token: &str) -> tonic::Request<T> {
    let mut request = tonic::Request::new(message);
    request
        .metadata_mut()
        .insert("authorization", format!("Bearer {token}").parse().expect("ascii token"));
    request
}
