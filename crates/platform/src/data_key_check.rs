//! A check value in every database that holds personal data, tying it to the data keys it was
//! written with. Without it a server given other keys — a backup restored beside another
//! deployment's keys folder, `BANGFU_DATA_KEYS` pointing at the wrong file — serves without a
//! word: lookups answer "not found" for persons who are there, and the same citizen ID is
//! registered twice. With it the server refuses to start and names the keys on both sides.
//!
//! The check is an AES-GCM envelope of a fixed label under the encryption key and the HMAC of
//! that label under the blind-index key, with both keys' ids: never key material, and nothing
//! that helps recover it (the label is public; AES-GCM and HMAC-SHA256 resist a known-plaintext
//! attack).
//!
//! Key rotation is a file operation: a new current key is added to the file and the old ones
//! stay for reading; nothing is written to the database. So a check made under a key the file
//! still holds matches, and is then made again under the current keys, in one transaction, so
//! the database always names the newest keys it was served with. A file without those keys (an
//! older copy of the keys folder, from before a rotation) is refused: the rows written under
//! the newer keys would be unreadable and unfindable with it.

use std::fmt;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use sqlx::{Any, Row};

use crate::db::{Backend, Database, DbError};
use crate::pii::{DataKeys, PiiCryptoError};

/// What is encrypted and hashed. Fixed, so any deployment's check can be verified with its keys.
const LABEL: &str = "bangfu data key check v1";
/// The envelope's associated data, so no other ciphertext of the label passes for the check.
const AAD: &[u8] = b"data_key_check";

/// The ids of one encryption key and one index key (never their material).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeyIds {
    pub encryption_key_id: String,
    pub index_key_version: u32,
}

impl KeyIds {
    /// The keys new values are written with.
    pub fn current(keys: &DataKeys) -> Self {
        Self {
            encryption_key_id: keys.active_encryption_key_id().to_string(),
            index_key_version: keys.active_index_version(),
        }
    }
}

impl fmt::Display for KeyIds {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "encryption key {} and index key version {}",
            self.encryption_key_id, self.index_key_version
        )
    }
}

/// Every key id a key file holds, current ones first, for messages.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HeldKeys {
    pub current: KeyIds,
    /// The encryption keys kept for reading, besides the current one.
    pub older_encryption_key_ids: Vec<String>,
    /// The index key versions kept for reading, besides the current one.
    pub older_index_versions: Vec<u32>,
}

impl HeldKeys {
    pub fn of(keys: &DataKeys) -> Self {
        let current = KeyIds::current(keys);
        Self {
            older_encryption_key_ids: keys
                .encryption_key_ids()
                .filter(|id| *id != current.encryption_key_id)
                .map(str::to_string)
                .collect(),
            older_index_versions: keys
                .index_versions()
                .filter(|version| *version != current.index_key_version)
                .collect(),
            current,
        }
    }
}

impl fmt::Display for HeldKeys {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "encryption key {} (current)", self.current.encryption_key_id)?;
        for id in &self.older_encryption_key_ids {
            write!(f, ", {id}")?;
        }
        write!(f, " and index key version {} (current)", self.current.index_key_version)?;
        for version in &self.older_index_versions {
            write!(f, ", {version}")?;
        }
        Ok(())
    }
}

/// Which of the recorded keys the given ones fail.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum MismatchReason {
    #[error("the keys given do not hold encryption key {0}")]
    EncryptionKeyMissing(String),
    #[error("the keys given hold another key under the id {0}")]
    EncryptionKeyDiffers(String),
    #[error("the keys given do not hold index key version {0}")]
    IndexKeyMissing(u32),
    #[error("the keys given hold another index key under version {0}")]
    IndexKeyDiffers(u32),
}

/// The database was made with other data keys than the ones given.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "the data keys given are not the ones this database was made with: the database was made with {recorded}; \
     the keys given hold {given}; {reason}. Serving would answer \"not found\" for persons who are there. \
     Point BANGFU_DATA_KEYS at the data keys the database was made with (under bangfu up: keys/data-keys.json \
     in the data folder), or restore the keys folder from the same backup as the database"
)]
pub struct KeyMismatch {
    pub recorded: KeyIds,
    pub given: HeldKeys,
    pub reason: MismatchReason,
}

#[derive(Debug, thiserror::Error)]
pub enum KeyCheckError {
    #[error(transparent)]
    Mismatch(Box<KeyMismatch>),
    #[error("the database's data key check value is unreadable ({0}): it was changed outside bangfu")]
    Corrupt(&'static str),
    #[error("making the data key check value failed: {0}")]
    Crypto(#[from] PiiCryptoError),
    #[error(transparent)]
    Database(#[from] DbError),
}

impl From<sqlx::Error> for KeyCheckError {
    fn from(error: sqlx::Error) -> Self {
        Self::Database(DbError::Query(error))
    }
}

/// What [`ensure`] found and did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum KeyCheckOutcome {
    /// The check was made under the current keys and matches them.
    Matched(KeyIds),
    /// The database had none: one was recorded under the current keys.
    Recorded(KeyIds),
    /// Made under older keys the file still holds for reading; made again under the current.
    Rotated { from: KeyIds, to: KeyIds },
}

impl fmt::Display for KeyCheckOutcome {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Matched(ids) => write!(f, "the data keys match the database ({ids})"),
            Self::Recorded(ids) => write!(
                f,
                "the database had no data key check value (it is new, or was made before key checks): recorded one for {ids}"
            ),
            Self::Rotated { from, to } => write!(
                f,
                "the data keys were rotated: the database's key check value moved from {from} to {to}"
            ),
        }
    }
}

/// One check value as stored.
struct Check {
    ids: KeyIds,
    /// Base64 of the AES-GCM envelope of [`LABEL`].
    encryption_check: String,
    /// [`crate::pii::BlindIndex::to_hex`] of [`LABEL`].
    index_check: String,
}

impl Check {
    fn make(keys: &DataKeys) -> Result<Self, KeyCheckError> {
        Ok(Self {
            ids: KeyIds::current(keys),
            encryption_check: BASE64.encode(keys.encrypt(LABEL.as_bytes(), AAD)?),
            index_check: keys.blind_index(LABEL).to_hex(),
        })
    }

    /// Whether `keys` can read what was written under the keys this check was made with.
    fn verify(&self, keys: &DataKeys) -> Result<(), KeyCheckError> {
        let mismatch = |reason| {
            KeyCheckError::Mismatch(Box::new(KeyMismatch {
                recorded: self.ids.clone(),
                given: HeldKeys::of(keys),
                reason,
            }))
        };
        let envelope = BASE64
            .decode(&self.encryption_check)
            .map_err(|_| KeyCheckError::Corrupt("the encryption check is not base64"))?;
        let id = || self.ids.encryption_key_id.clone();
        match keys.decrypt(&envelope, AAD) {
            Ok(label) if label == LABEL.as_bytes() => {}
            // The right key decrypts to the label; any other value means the row was forged.
            Ok(_) => return Err(KeyCheckError::Corrupt("the encryption check holds another value")),
            Err(PiiCryptoError::UnknownKey { .. }) => return Err(mismatch(MismatchReason::EncryptionKeyMissing(id()))),
            Err(PiiCryptoError::DecryptionFailed) => return Err(mismatch(MismatchReason::EncryptionKeyDiffers(id()))),
            Err(_) => return Err(KeyCheckError::Corrupt("the encryption check is not an envelope")),
        }
        let version = self.ids.index_key_version;
        match keys
            .blind_indexes(LABEL)
            .into_iter()
            .find(|index| index.version == version)
        {
            None => Err(mismatch(MismatchReason::IndexKeyMissing(version))),
            Some(index) if index.to_hex() != self.index_check => {
                Err(mismatch(MismatchReason::IndexKeyDiffers(version)))
            }
            Some(_) => Ok(()),
        }
    }
}

const SELECT: &str = "SELECT encryption_key_id, encryption_check, index_key_version, index_check \
                      FROM data_key_check WHERE singleton = 1";

async fn read<'c, E>(executor: E, suffix: &str) -> Result<Option<Check>, KeyCheckError>
where
    E: sqlx::Executor<'c, Database = Any>,
{
    // The suffix is one of two constants (a row lock or nothing), never input.
    let row = sqlx::query(sqlx::AssertSqlSafe(format!("{SELECT}{suffix}")))
        .fetch_optional(executor)
        .await?;
    let Some(row) = row else {
        return Ok(None);
    };
    let version: i64 = row.try_get("index_key_version")?;
    Ok(Some(Check {
        ids: KeyIds {
            encryption_key_id: row.try_get("encryption_key_id")?,
            index_key_version: u32::try_from(version)
                .map_err(|_| KeyCheckError::Corrupt("the index key version is out of range"))?,
        },
        encryption_check: row.try_get("encryption_check")?,
        index_check: row.try_get("index_check")?,
    }))
}

/// Binds a check's values as `$1`–`$5`, the order both the insert and the update name them.
fn bind_check<'q>(
    query: sqlx::query::Query<'q, Any, sqlx::any::AnyArguments>,
    check: &Check,
    now_us: i64,
) -> sqlx::query::Query<'q, Any, sqlx::any::AnyArguments> {
    query
        .bind(check.ids.encryption_key_id.clone())
        .bind(check.encryption_check.clone())
        .bind(i64::from(check.ids.index_key_version))
        .bind(check.index_check.clone())
        .bind(now_us)
}

/// At a service's start: compares the database's check with `keys`, records one when there is
/// none, and moves it to the current keys after a rotation. A mismatch is an error naming both
/// sides' key ids; the caller refuses to serve.
pub async fn ensure(db: &Database, keys: &DataKeys, now_us: i64) -> Result<KeyCheckOutcome, KeyCheckError> {
    let current = Check::make(keys)?;
    let mut tx = db.begin().await?;
    let inserted = bind_check(
        sqlx::query(
            "INSERT INTO data_key_check (singleton, encryption_key_id, encryption_check, index_key_version, \
             index_check, recorded_time_us) VALUES (1, $1, $2, $3, $4, $5) ON CONFLICT (singleton) DO NOTHING",
        ),
        &current,
        now_us,
    )
    .execute(&mut *tx)
    .await?
    .rows_affected();
    if inserted == 1 {
        tx.commit().await?;
        return Ok(KeyCheckOutcome::Recorded(current.ids));
    }
    // Replicas starting together after a rotation compare and update one after the other: the
    // row is locked on PostgreSQL; SQLite's `BEGIN IMMEDIATE` already holds the one write lock.
    let lock = match db.backend() {
        Backend::Postgres => " FOR UPDATE",
        Backend::Sqlite => "",
    };
    let stored = read(&mut *tx, lock)
        .await?
        .ok_or(KeyCheckError::Corrupt("the row was there and then gone"))?;
    stored.verify(keys)?;
    if stored.ids == current.ids {
        tx.commit().await?;
        return Ok(KeyCheckOutcome::Matched(stored.ids));
    }
    bind_check(
        sqlx::query(
            "UPDATE data_key_check SET encryption_key_id = $1, encryption_check = $2, index_key_version = $3, \
             index_check = $4, recorded_time_us = $5 WHERE singleton = 1",
        ),
        &current,
        now_us,
    )
    .execute(&mut *tx)
    .await?;
    tx.commit().await?;
    Ok(KeyCheckOutcome::Rotated {
        from: stored.ids,
        to: current.ids,
    })
}

/// Compares without writing (a backup, `serve --check-config`): the keys the database names
/// when `keys` can read them, `None` when it has no check value yet (made before key checks, or
/// not started yet), a mismatch error otherwise.
pub async fn inspect(db: &Database, keys: &DataKeys) -> Result<Option<KeyIds>, KeyCheckError> {
    let exists = match db.backend() {
        Backend::Sqlite => "SELECT COUNT(*) FROM sqlite_master WHERE type = 'table' AND name = 'data_key_check'",
        Backend::Postgres => {
            "SELECT COUNT(*) FROM information_schema.tables WHERE table_schema = current_schema() \
             AND table_name = 'data_key_check'"
        }
    };
    let tables: i64 = sqlx::query_scalar(exists).fetch_one(db.pool()).await?;
    if tables == 0 {
        return Ok(None);
    }
    let Some(stored) = read(db.pool(), "").await? else {
        return Ok(None);
    };
    stored.verify(keys)?;
    Ok(Some(stored.ids))
}
