//! The client against a server that requires client certificates (mutual TLS, the Helm chart's
//! default), run as a deployment runs it (`bangfu serve identity` with BANGFU_TLS_CERT, _KEY
//! and _CLIENT_CA): with --tls-cert, --tls-key and --ca the client commands get in; without a
//! certificate they are told what to give; certificate flags that cannot work are usage errors.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use rcgen::{BasicConstraints, CertificateParams, DnType, IsCa, Issuer, KeyPair};

use crate::replicas::{Replica, deployment_keys, fresh_database, operator_token};

const BANGFU: &str = env!("CARGO_BIN_EXE_bangfu");

/// A CA, a server certificate for 127.0.0.1 and a client certificate, as PEM files in a folder.
struct Pki {
    dir: PathBuf,
}

impl Pki {
    fn make(dir: &Path) -> Self {
        let ca_key = KeyPair::generate().expect("ca key");
        let mut ca_params = CertificateParams::new(Vec::<String>::new()).expect("ca params");
        ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        ca_params.distinguished_name.push(DnType::CommonName, "bangfu test CA");
        let ca = ca_params.self_signed(&ca_key).expect("ca");
        let issuer = Issuer::from_params(&ca_params, &ca_key);
        let signed = |names: Vec<String>, common_name: &str| {
            let key = KeyPair::generate().expect("key");
            let mut params = CertificateParams::new(names).expect("params");
            params.distinguished_name.push(DnType::CommonName, common_name);
            let cert = params.signed_by(&key, &issuer).expect("cert");
            (cert.pem(), key.serialize_pem())
        };
        let (server_cert, server_key) = signed(vec!["localhost".into(), "127.0.0.1".into()], "identity");
        let (client_cert, client_key) = signed(Vec::new(), "bangfu admin");
        std::fs::create_dir_all(dir).expect("dir");
        for (file, pem) in [
            ("ca.pem", ca.pem()),
            ("server.pem", server_cert),
            ("server.key", server_key),
            ("client.pem", client_cert),
            ("client.key", client_key),
        ] {
            std::fs::write(dir.join(file), pem).expect("write");
        }
        Self { dir: dir.to_path_buf() }
    }

    fn path(&self, file: &str) -> String {
        self.dir.join(file).to_str().expect("utf-8 path").to_string()
    }
}

/// `bangfu` with `args` and nothing from the environment but `env`, whatever its outcome.
fn run(args: &[&str], env: &[(&str, &str)]) -> Output {
    Command::new(BANGFU)
        .env_clear()
        .envs(env.iter().copied())
        .args(args)
        .output()
        .expect("run bangfu")
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// A fresh database for this test alone (the replicas test owns bangfu_identity).

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_client_presents_its_certificate_to_a_server_that_requires_one() {
    let dir = tempfile::tempdir().expect("tmp");
    let pki = Pki::make(&dir.path().join("tls"));
    let keys = deployment_keys(dir.path());
    let database_url = fresh_database("bangfu_client_tls").await;
    let (server_cert, server_key, ca) = (pki.path("server.pem"), pki.path("server.key"), pki.path("ca.pem"));
    let mut server = Replica::start_with(
        &keys,
        &database_url,
        &[
            ("BANGFU_TLS_CERT", &server_cert),
            ("BANGFU_TLS_KEY", &server_key),
            ("BANGFU_TLS_CLIENT_CA", &ca),
        ],
    );
    server.wait_serving();
    let addr = server.addr.replace("http://", "https://");
    let token = operator_token(&keys, "hr", "admin");
    // Plaintext to the TLS port: told to use https.
    let plaintext = run(&["whoami", "--addr", &server.addr], &[("BANGFU_TOKEN", &token)]);
    let said = text(&plaintext.stderr);
    eprintln!("plaintext to the TLS port: {said}");
    assert_eq!(plaintext.status.code(), Some(6), "{said}");
    assert!(said.contains("https://"), "says to use https: {said}");
    let (client_cert, client_key) = (pki.path("client.pem"), pki.path("client.key"));

    let whoami = run(
        &[
            "whoami",
            "--addr",
            &addr,
            "--ca",
            &ca,
            "--tls-cert",
            &client_cert,
            "--tls-key",
            &client_key,
            "--json",
        ],
        &[("BANGFU_TOKEN", &token)],
    );
    assert!(whoami.status.success(), "{}", text(&whoami.stderr));
    let me: serde_json::Value = serde_json::from_slice(&whoami.stdout).expect("json");
    assert_eq!(me["subject"], "hr-admin");

    // The same from the environment, as a pod or a shell profile gives it.
    let info = run(
        &["server-info", "--json"],
        &[
            ("BANGFU_ADDR", &addr),
            ("BANGFU_TOKEN", &token),
            ("BANGFU_CA_CERT", &ca),
            ("BANGFU_CLIENT_CERT", &client_cert),
            ("BANGFU_CLIENT_KEY", &client_key),
        ],
    );
    assert!(info.status.success(), "{}", text(&info.stderr));
    let info: serde_json::Value = serde_json::from_slice(&info.stdout).expect("json");
    assert_eq!(info["tls"], true);

    let refused = run(
        &["whoami", "--addr", &addr, "--ca-cert", &ca],
        &[("BANGFU_TOKEN", &token)],
    );
    assert_eq!(
        refused.status.code(),
        Some(6),
        "a connection refused: {}",
        text(&refused.stderr)
    );
    let said = text(&refused.stderr);
    eprintln!("without a certificate: {said}");
    assert!(
        said.contains("--tls-cert") && said.contains("--tls-key"),
        "says which flags to give: {said}"
    );

    // A server certificate from another CA than --ca names is refused at the handshake.
    let other = Pki::make(&dir.path().join("other"));
    let untrusted = run(
        &[
            "whoami",
            "--addr",
            &addr,
            "--ca",
            &other.path("ca.pem"),
            "--tls-cert",
            &client_cert,
            "--tls-key",
            &client_key,
        ],
        &[("BANGFU_TOKEN", &token)],
    );
    let said = text(&untrusted.stderr);
    eprintln!("with another CA: {said}");
    assert_eq!(untrusted.status.code(), Some(6), "cannot connect: exit 6. {said}");
    assert!(said.contains("certificate"), "says it is the certificate: {said}");
    assert!(said.contains("--ca-cert"), "says which flag gives the CA: {said}");
}

#[test]
fn certificate_flags_that_cannot_work_are_usage_errors_naming_the_flag() {
    let dir = tempfile::tempdir().expect("tmp");
    let pki = Pki::make(dir.path());
    let (cert, key) = (pki.path("client.pem"), pki.path("client.key"));
    let https = "https://127.0.0.1:9";
    let cases: [(&[&str], &str); 5] = [
        (&["--addr", https, "--tls-cert", &cert], "not --tls-key"),
        (&["--addr", https, "--tls-key", &key], "not --tls-cert"),
        (
            &["--addr", "http://127.0.0.1:9", "--tls-cert", &cert, "--tls-key", &key],
            "client certificates need an https:// address",
        ),
        (&["--addr", https, "--tls-cert", &key, "--tls-key", &key], "--tls-cert"),
        (
            &["--addr", https, "--tls-cert", &cert, "--tls-key", &cert],
            "holds no PEM PRIVATE KEY",
        ),
    ];
    for (flags, expected) in cases {
        let mut args = vec!["whoami", "--token", "t"];
        args.extend_from_slice(flags);
        let output = run(&args, &[]);
        let said = text(&output.stderr);
        assert_eq!(output.status.code(), Some(2), "{args:?}: {said}");
        assert!(said.contains(expected), "{args:?}: {said}");
    }
    let missing = run(
        &[
            "whoami",
            "--addr",
            https,
            "--token",
            "t",
            "--tls-cert",
            "/nonexistent/client.pem",
            "--tls-key",
            &key,
        ],
        &[],
    );
    assert_eq!(missing.status.code(), Some(2));
    assert!(text(&missing.stderr).contains("--tls-cert /nonexistent/client.pem"));
}
