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

#[test]
fn deployment_keys_are_made_once_per_service_and_trusted_by_a_deployment() {
    use bangfu_platform::auth::keys::{KeysInitialized, init_deployment_keys};
    let dir = tempfile::tempdir().expect("tmp");
    let out = dir.path().join("keys");
    let first = init_deployment_keys(&out, &["identity"]).expect("first");
    assert_eq!(first.created.len(), 2, "the operator's key and identity's: {first:?}");
    assert!(first.data_keys_created);
    let public = out.join("public");
    // Not development keys: a deployment trusts them.
    let ring = KeyRing::load(&public, DevelopmentKeys::Refuse).expect("trusted");
    assert_eq!(ring.len(), 2);
    for private in ["operator/signing.json", "identity/signing.json", "data-keys.json"] {
        let mode = std::fs::metadata(out.join(private)).expect("file").permissions().mode();
        assert_eq!(mode & 0o077, 0, "{private} is private");
    }
    assert!(TokenSigner::load(&out.join("operator/signing.json")).is_ok());

    // A service added later gets its key; what exists is kept as it was.
    let identity_key = std::fs::read(out.join("identity/signing.json")).expect("key");
    let second = init_deployment_keys(&out, &["identity", "jobs"]).expect("second");
    assert_eq!(second.created.len(), 1, "{second:?}");
    assert!(second.created[0].starts_with("jobs-"));
    assert!(!second.data_keys_created);
    assert_eq!(
        identity_key,
        std::fs::read(out.join("identity/signing.json")).expect("key")
    );
    assert_eq!(
        KeyRing::load(&public, DevelopmentKeys::Refuse).expect("trusted").len(),
        3
    );
    assert_eq!(
        init_deployment_keys(&out, &["identity", "jobs"]).expect("third"),
        KeysInitialized::default()
    );
    let unknown = init_deployment_keys(&out, &["payroll"]).expect_err("unknown service");
    assert!(unknown.to_string().contains("payroll"), "{unknown}");
}
