//! Keys on disk: what a server refuses to trust.

use std::os::unix::fs::PermissionsExt;

use bangfu_platform::auth::keys::{DevelopmentKeys, KeyError, KeyRing, ensure_development_keys, signing_key_path};
use bangfu_platform::auth::token::TokenSigner;

#[test]
fn a_keys_folder_others_can_write_is_refused() {
    let dir = tempfile::tempdir().expect("tmp");
    let keys = dir.path().join("keys");
    ensure_development_keys(&keys).expect("keys");
    std::fs::set_permissions(&keys, std::fs::Permissions::from_mode(0o777)).expect("chmod");
    let err = KeyRing::load(&keys, DevelopmentKeys::Allow).expect_err("world-writable");
    assert!(matches!(err, KeyError::WritableByOthers { .. }), "{err}");
    assert!(err.to_string().contains("chmod go-w"), "{err}");
}

#[test]
fn a_trust_file_others_can_write_is_refused() {
    let dir = tempfile::tempdir().expect("tmp");
    let keys = dir.path().join("keys");
    ensure_development_keys(&keys).expect("keys");
    std::fs::set_permissions(keys.join("trust.json"), std::fs::Permissions::from_mode(0o666)).expect("chmod");
    let err = KeyRing::load(&keys, DevelopmentKeys::Allow).expect_err("group-writable");
    assert!(matches!(err, KeyError::WritableByOthers { .. }), "{err}");
}

#[test]
fn a_signing_key_others_can_read_is_refused() {
    let dir = tempfile::tempdir().expect("tmp");
    let keys = dir.path().join("keys");
    ensure_development_keys(&keys).expect("keys");
    let path = signing_key_path(&keys, "dev-departments");
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).expect("chmod");
    let err = TokenSigner::load(&path).expect_err("readable by others");
    assert!(err.to_string().contains("chmod 600"), "{err}");
}

#[test]
fn a_deployment_refuses_the_development_keys() {
    let dir = tempfile::tempdir().expect("tmp");
    let keys = dir.path().join("keys");
    ensure_development_keys(&keys).expect("keys");
    assert!(KeyRing::load(&keys, DevelopmentKeys::Allow).is_ok());
    let err = KeyRing::load(&keys, DevelopmentKeys::Refuse).expect_err("development keys");
    assert!(matches!(err, KeyError::DevelopmentKey { .. }), "{err}");
    assert!(err.to_string().contains("bangfu keys init"), "{err}");
}

#[test]
fn development_keys_are_made_once_and_kept() {
    let dir = tempfile::tempdir().expect("tmp");
    let keys = dir.path().join("keys");
    assert!(ensure_development_keys(&keys).expect("first"));
    let before = std::fs::read(keys.join("dev-departments.pub.pem")).expect("public key");
    assert!(!ensure_development_keys(&keys).expect("second"));
    assert_eq!(
        before,
        std::fs::read(keys.join("dev-departments.pub.pem")).expect("public key")
    );
    let mode = std::fs::metadata(signing_key_path(&keys, "dev-departments"))
        .expect("meta")
        .permissions()
        .mode();
    assert_eq!(mode & 0o777, 0o600);
}
