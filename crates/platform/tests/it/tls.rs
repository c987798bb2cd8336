//! TLS on the gRPC port: with a client CA configured, only clients presenting a certificate
//! from that CA get in; plaintext and certificate-less clients are turned away.

use std::path::Path;

use std::sync::Arc;

use bangfu_platform::auth::RegionScope;
use bangfu_platform::auth::permissions;
use bangfu_platform::auth::token::ServiceTokens;
use bangfu_platform::config::TlsFiles;
use bangfu_platform::diagnostics::Diagnostics;
use bangfu_platform::error::{ErrorReason, Problem};
use bangfu_platform::peers::{CallContext, PeerSettings, PeerTls, Peers, Retry};
use bangfu_platform::testing::{TestServer, server_config};
use bangfu_proto::diagnostics::v1::WhoAmIRequest;
use bangfu_proto::diagnostics::v1::diagnostics_service_client::DiagnosticsServiceClient;
use rcgen::{BasicConstraints, CertificateParams, DnType, IsCa, Issuer, KeyPair};
use tonic::transport::{Certificate, Channel, ClientTlsConfig, Identity};
use tonic_health::pb::HealthCheckRequest;
use tonic_health::pb::health_client::HealthClient;

struct Pki {
    ca: String,
    client_cert: String,
    client_key: String,
}

/// A CA, a server certificate for localhost and a client certificate, written to `dir`.
fn make_pki(dir: &Path) -> Pki {
    let ca_key = KeyPair::generate().expect("ca key");
    let mut ca_params = CertificateParams::new(Vec::<String>::new()).expect("ca params");
    ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    ca_params.distinguished_name.push(DnType::CommonName, "bangfu test CA");
    let ca_cert = ca_params.self_signed(&ca_key).expect("ca");
    let issuer = Issuer::from_params(&ca_params, &ca_key);

    let server_key = KeyPair::generate().expect("server key");
    let server_params = CertificateParams::new(vec!["localhost".to_string()]).expect("server params");
    let server_cert = server_params.signed_by(&server_key, &issuer).expect("server cert");
    let client_key = KeyPair::generate().expect("client key");
    let mut client_params = CertificateParams::new(Vec::<String>::new()).expect("client params");
    client_params.distinguished_name.push(DnType::CommonName, "subsidy");
    let client_cert = client_params.signed_by(&client_key, &issuer).expect("client cert");

    std::fs::write(dir.join("ca.pem"), ca_cert.pem()).expect("write");
    std::fs::write(dir.join("server.pem"), server_cert.pem()).expect("write");
    std::fs::write(dir.join("server.key"), server_key.serialize_pem()).expect("write");
    std::fs::write(dir.join("client.pem"), client_cert.pem()).expect("write");
    std::fs::write(dir.join("client.key"), client_key.serialize_pem()).expect("write");
    Pki {
        ca: ca_cert.pem(),
        client_cert: client_cert.pem(),
        client_key: client_key.serialize_pem(),
    }
}

async fn start_tls_server(dir: &Path) -> TestServer {
    let mut config = server_config();
    config.tls = Some(TlsFiles {
        cert: dir.join("server.pem"),
        key: dir.join("server.key"),
        client_ca: Some(dir.join("ca.pem")),
    });
    TestServer::start_with(config, permissions::PLATFORM_METHODS, |host| {
        let diagnostics = Diagnostics::new(host.config(), &[]).into_server(host.config());
        host.add_service(diagnostics);
    })
    .await
}

/// The subsidy service's view of an identity peer at `url`, trusting `ca` and presenting the
/// client certificate in `client`.
fn tls_peer(server: &TestServer, url: &str, ca: &Path, client: &Path) -> Peers {
    let tokens = ServiceTokens::new(
        server.keys.service_signer("subsidy"),
        "subsidy",
        RegionScope::Country,
        "bangfu",
        std::time::Duration::from_secs(300),
    );
    let tls = PeerTls {
        ca: ca.to_path_buf(),
        cert: client.join("client.pem"),
        key: client.join("client.key"),
    };
    let url = url.to_string();
    Peers::from_lookup(
        move |name| (name == "BANGFU_PEER_IDENTITY").then(|| url.clone()),
        Some(&tls),
        Some(Arc::new(tokens)),
        PeerSettings::default(),
    )
    .expect("peers")
}

async fn who_am_i(peers: &Peers) -> Result<String, Problem> {
    peers
        .get("identity")
        .expect("configured")
        .call(&CallContext::own(), Retry::Safe, |channel| async move {
            DiagnosticsServiceClient::new(channel).who_am_i(WhoAmIRequest {}).await
        })
        .await
        .map(|me| me.subject)
        .map_err(Problem::from)
}

#[tokio::test]
async fn a_peer_behind_a_certificate_from_another_ca_or_refusing_ours_is_peer_unavailable_naming_it() {
    let ours = tempfile::tempdir().expect("tmp");
    let theirs = tempfile::tempdir().expect("tmp");
    make_pki(ours.path());
    make_pki(theirs.path());
    let server = start_tls_server(ours.path()).await;
    let url = format!("https://localhost:{}", server.addr.port());

    let right = tls_peer(&server, &url, &ours.path().join("ca.pem"), ours.path());
    assert_eq!(who_am_i(&right).await.expect("mutual TLS with the right CA"), "subsidy");

    // The peer's certificate is not from the CA this service trusts.
    let untrusted = tls_peer(&server, &url, &theirs.path().join("ca.pem"), ours.path());
    // Our certificate is not from the CA the peer trusts.
    let refused = tls_peer(&server, &url, &ours.path().join("ca.pem"), theirs.path());
    for (case, peers) in [("untrusted server", untrusted), ("refused client", refused)] {
        let problem = who_am_i(&peers).await.expect_err(case);
        assert_eq!(problem.code, tonic::Code::Unavailable, "{case}: {problem}");
        assert_eq!(problem.reason, ErrorReason::PeerUnavailable, "{case}: {problem}");
        assert!(
            problem.metadata.contains(&("peer".to_string(), "identity".to_string())),
            "{case}: {:?}",
            problem.metadata
        );
    }
}

async fn health_over(channel: Result<Channel, tonic::transport::Error>) -> bool {
    let Ok(channel) = channel else { return false };
    HealthClient::new(channel)
        .check(HealthCheckRequest { service: String::new() })
        .await
        .is_ok()
}

#[tokio::test]
async fn a_client_with_a_certificate_from_the_ca_is_served() {
    let dir = tempfile::tempdir().expect("tmp");
    let pki = make_pki(dir.path());
    let server = start_tls_server(dir.path()).await;
    let tls = ClientTlsConfig::new()
        .ca_certificate(Certificate::from_pem(&pki.ca))
        .domain_name("localhost")
        .identity(Identity::from_pem(&pki.client_cert, &pki.client_key));
    let channel = Channel::from_shared(format!("https://{}", server.addr))
        .expect("url")
        .tls_config(tls)
        .expect("tls")
        .connect()
        .await;
    assert!(health_over(channel).await, "a client with a certificate is refused");
}

#[tokio::test]
async fn plaintext_and_certificate_less_clients_are_turned_away() {
    let dir = tempfile::tempdir().expect("tmp");
    let pki = make_pki(dir.path());
    let server = start_tls_server(dir.path()).await;
    let plaintext = Channel::from_shared(format!("http://{}", server.addr))
        .expect("url")
        .connect()
        .await;
    assert!(!health_over(plaintext).await, "plaintext got through");

    let without_certificate = ClientTlsConfig::new()
        .ca_certificate(Certificate::from_pem(&pki.ca))
        .domain_name("localhost");
    let channel = Channel::from_shared(format!("https://{}", server.addr))
        .expect("url")
        .tls_config(without_certificate)
        .expect("tls")
        .connect()
        .await;
    assert!(
        !health_over(channel).await,
        "a client without a certificate got through"
    );
}
