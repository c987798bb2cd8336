//! What an operator is told before anything runs: a plaintext gRPC port beyond loopback is
//! warned about, and a deployment's user token names its person.

use std::process::{Command, Output};

use crate::replicas::{deployment_keys, serve_identity, text};

const BANGFU: &str = env!("CARGO_BIN_EXE_bangfu");

/// `bangfu serve identity --check-config --offline` listening on `listen`, with a deployment's
/// keys: the warning comes from the settings, before any database is contacted.
fn check_config(keys: &std::path::Path, listen: &str) -> Output {
    serve_identity(keys, "postgres://bangfu_identity:secret@127.0.0.1:5432/bangfu_identity")
        .args(["--check-config", "--offline"])
        .env("BANGFU_LISTEN", listen)
        .output()
        .expect("run bangfu serve")
}

#[test]
fn serve_warns_once_about_a_plaintext_port_beyond_loopback() {
    let dir = tempfile::tempdir().expect("tmp");
    let keys = deployment_keys(dir.path());
    let open = check_config(&keys, "0.0.0.0:50051");
    assert!(open.status.success(), "{}", text(&open));
    let log = text(&open);
    let warnings: Vec<&str> = log.lines().filter(|l| l.contains("PLAINTEXT ON THE NETWORK")).collect();
    assert_eq!(warnings.len(), 1, "{log}");
    assert!(warnings[0].contains("WARN"), "{}", warnings[0]);
    for variable in ["BANGFU_LISTEN=0.0.0.0:50051", "BANGFU_TLS_CERT", "BANGFU_TLS_KEY"] {
        assert!(warnings[0].contains(variable), "{variable} not named: {}", warnings[0]);
    }
    let loopback = check_config(&keys, "127.0.0.1:50051");
    assert!(loopback.status.success(), "{}", text(&loopback));
    assert!(!text(&loopback).contains("PLAINTEXT"), "{}", text(&loopback));
}

#[test]
fn a_token_signed_with_a_deployment_key_must_name_its_subject() {
    let dir = tempfile::tempdir().expect("tmp");
    let keys = deployment_keys(dir.path());
    let key = keys.join("operator/signing.json");
    let issue = |extra: &[&str]| {
        Command::new(BANGFU)
            .args([
                "token", "issue", "--dept", "hr", "--role", "clerk", "--region", "3704", "--key",
            ])
            .arg(&key)
            .args(extra)
            .output()
            .expect("run bangfu token issue")
    };
    let unnamed = issue(&[]);
    assert_eq!(unnamed.status.code(), Some(2), "{}", text(&unnamed));
    assert!(text(&unnamed).contains("--subject is required"), "{}", text(&unnamed));
    assert!(unnamed.stdout.is_empty(), "no token printed");
    let named = issue(&["--subject", "clerk-zhang"]);
    assert!(named.status.success(), "{}", text(&named));
    let token = String::from_utf8_lossy(&named.stdout);
    let payload = token.trim().split('.').nth(1).expect("a JWT");
    use base64::Engine as _;
    let claims = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(payload)
        .expect("base64url");
    let claims = String::from_utf8_lossy(&claims);
    assert!(claims.contains("\"sub\":\"clerk-zhang\""), "{claims}");
}
