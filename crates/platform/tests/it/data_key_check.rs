//! The data key check value on both backends: recorded on first use, matched after, refused
//! with other keys (naming both sides' ids, never material), and moved along by a rotation.

use bangfu_platform::data_key_check::{self, KeyCheckError, KeyCheckOutcome, KeyIds, MismatchReason};
use bangfu_platform::pii::DataKeys;
use bangfu_platform::testing::TestDatabase;

on_both_backends!(
    the_first_use_records_a_check_and_later_starts_match_it,
    another_deployments_keys_are_refused_naming_the_key_ids_on_both_sides,
    a_rotation_is_followed_and_the_keys_from_before_it_are_then_refused,
);

fn keys(encryption: &[(&str, u8)], index: &[(u32, u8)]) -> DataKeys {
    let encryption_keys = encryption.iter().map(|(id, b)| (id.to_string(), [*b; 32])).collect();
    let index_keys = index.iter().map(|(v, b)| (*v, [*b; 32])).collect();
    let (active_id, _) = encryption.last().expect("an encryption key");
    let (active_version, _) = index.last().expect("an index key");
    DataKeys::new(encryption_keys, active_id, index_keys, *active_version).expect("keys")
}

fn ids(id: &str, version: u32) -> KeyIds {
    KeyIds {
        encryption_key_id: id.to_string(),
        index_key_version: version,
    }
}

fn mismatch(error: KeyCheckError) -> bangfu_platform::data_key_check::KeyMismatch {
    match error {
        KeyCheckError::Mismatch(mismatch) => *mismatch,
        other => panic!("expected a mismatch, got {other}"),
    }
}

async fn the_first_use_records_a_check_and_later_starts_match_it(test: TestDatabase) {
    let ours = keys(&[("dk-a", 1)], &[(1, 2)]);
    assert_eq!(data_key_check::inspect(&test.db, &ours).await.expect("inspect"), None);
    assert_eq!(
        data_key_check::ensure(&test.db, &ours, 1).await.expect("first"),
        KeyCheckOutcome::Recorded(ids("dk-a", 1))
    );
    assert_eq!(
        data_key_check::ensure(&test.db, &ours, 2).await.expect("second"),
        KeyCheckOutcome::Matched(ids("dk-a", 1))
    );
    assert_eq!(
        data_key_check::inspect(&test.db, &ours).await.expect("inspect"),
        Some(ids("dk-a", 1))
    );
}

async fn another_deployments_keys_are_refused_naming_the_key_ids_on_both_sides(test: TestDatabase) {
    data_key_check::ensure(&test.db, &keys(&[("dk-a", 1)], &[(1, 2)]), 1)
        .await
        .expect("record");

    // Another deployment: its own random encryption key id, and index version 1 like every
    // fresh deployment — the id alone cannot tell, the HMAC does.
    let theirs = keys(&[("dk-z", 9)], &[(1, 8)]);
    let refused = mismatch(
        data_key_check::ensure(&test.db, &theirs, 2)
            .await
            .expect_err("other keys"),
    );
    assert_eq!(refused.recorded, ids("dk-a", 1));
    assert_eq!(refused.reason, MismatchReason::EncryptionKeyMissing("dk-a".into()));
    let message = refused.to_string();
    for expected in [
        "dk-a",
        "dk-z (current)",
        "index key version 1",
        "BANGFU_DATA_KEYS",
        "same backup",
    ] {
        assert!(message.contains(expected), "{expected:?} in {message}");
    }
    // Ids only: no key material, in any encoding a key file uses.
    assert!(!message.contains("CQkJ"), "{message}");

    let same_ids_other_keys = keys(&[("dk-a", 7)], &[(1, 2)]);
    let refused = mismatch(
        data_key_check::ensure(&test.db, &same_ids_other_keys, 3)
            .await
            .expect_err("same id, other key"),
    );
    assert_eq!(refused.reason, MismatchReason::EncryptionKeyDiffers("dk-a".into()));
    let other_index_key = keys(&[("dk-a", 1)], &[(1, 3)]);
    let refused = mismatch(
        data_key_check::inspect(&test.db, &other_index_key)
            .await
            .expect_err("same version, other index key"),
    );
    assert_eq!(refused.reason, MismatchReason::IndexKeyDiffers(1));

    // Refusing wrote nothing: the right keys still match.
    assert_eq!(
        data_key_check::ensure(&test.db, &keys(&[("dk-a", 1)], &[(1, 2)]), 4)
            .await
            .expect("ours"),
        KeyCheckOutcome::Matched(ids("dk-a", 1))
    );
}

async fn a_rotation_is_followed_and_the_keys_from_before_it_are_then_refused(test: TestDatabase) {
    let before = keys(&[("dk-a", 1)], &[(1, 2)]);
    data_key_check::ensure(&test.db, &before, 1).await.expect("record");

    // Rotation as pii.rs does it: a new current key, the old ones kept for reading.
    let after = keys(&[("dk-a", 1), ("dk-b", 3)], &[(1, 2), (2, 4)]);
    assert_eq!(
        data_key_check::ensure(&test.db, &after, 2).await.expect("rotated"),
        KeyCheckOutcome::Rotated {
            from: ids("dk-a", 1),
            to: ids("dk-b", 2)
        }
    );
    assert_eq!(
        data_key_check::ensure(&test.db, &after, 3).await.expect("again"),
        KeyCheckOutcome::Matched(ids("dk-b", 2))
    );

    // The keys folder from before the rotation cannot read what was written since.
    let refused = mismatch(
        data_key_check::ensure(&test.db, &before, 4)
            .await
            .expect_err("old keys"),
    );
    assert_eq!(refused.recorded, ids("dk-b", 2));
    assert_eq!(refused.reason, MismatchReason::EncryptionKeyMissing("dk-b".into()));

    // A file that dropped the old keys after the rotation still reads the recorded ones.
    let pruned = keys(&[("dk-b", 3)], &[(2, 4)]);
    assert_eq!(
        data_key_check::inspect(&test.db, &pruned).await.expect("pruned"),
        Some(ids("dk-b", 2))
    );
}
