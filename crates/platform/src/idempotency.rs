//! Safe retries of calls that create records or move money (AIP-155 `request_id`). The first
//! call with a request id stores, in its own transaction, a hash of the request and the
//! resource it created; a retry with the same id and the same request is answered with that
//! resource, and the same id with a different request is refused, so a client bug cannot
//! silently return someone else's record. Ids are scoped to the subject and the method.

use sha2::{Digest, Sha256};
use sqlx::{AnyConnection, Row};

use crate::db::to_micros;
use crate::error::{ErrorReason, Problem};

/// A validated request id with the key it is stored under.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RequestKey {
    pub subject: String,
    pub method: String,
    pub request_id: String,
    /// Hex SHA-256 of the request's meaningful content.
    pub request_hash: String,
}

impl RequestKey {
    /// Checks the id (1 to 64 letters, digits, `-` or `_`; a UUID fits) and hashes the request
    /// parts that must match on a retry. An empty id means the caller wants no retry safety.
    pub fn new(
        subject: &str,
        method: &str,
        request_id: &str,
        request_parts: &[&[u8]],
    ) -> Result<Option<Self>, Problem> {
        let request_id = request_id.trim();
        if request_id.is_empty() {
            return Ok(None);
        }
        let valid = request_id.len() <= 64
            && request_id
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
        if !valid {
            return Err(Problem::invalid_field(
                ErrorReason::FieldInvalid,
                "request_id",
                "must be 1 to 64 letters, digits, '-' or '_' (a UUID)",
                "请求编号格式不正确",
            ));
        }
        let mut hasher = Sha256::new();
        for part in request_parts {
            hasher.update((part.len() as u64).to_be_bytes());
            hasher.update(part);
        }
        Ok(Some(Self {
            subject: subject.to_string(),
            method: method.to_string(),
            request_id: request_id.to_string(),
            request_hash: hasher.finalize().iter().map(|b| format!("{b:02x}")).collect(),
        }))
    }
}

/// What an earlier call with the same request id left.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Previous {
    /// Not seen before: do the work, then `remember` it in the same transaction.
    None,
    /// The same request was done before and created this resource: answer with it.
    Done { resource: String },
}

/// Looks the key up inside the caller's transaction.
pub async fn previous(connection: &mut AnyConnection, key: &RequestKey) -> Result<Previous, Problem> {
    let row = sqlx::query(
        "SELECT request_hash, resource FROM request_ids WHERE subject = $1 AND method = $2 AND request_id = $3",
    )
    .bind(&key.subject)
    .bind(&key.method)
    .bind(&key.request_id)
    .fetch_optional(connection)
    .await?;
    let Some(row) = row else { return Ok(Previous::None) };
    let hash: String = row.try_get("request_hash")?;
    if hash != key.request_hash {
        return Err(Problem::new(
            tonic::Code::FailedPrecondition,
            ErrorReason::RequestIdReused,
            "this request_id was used before with a different request",
            "该请求编号已用于另一笔不同的业务，请使用新的请求编号",
        ));
    }
    Ok(Previous::Done {
        resource: row.try_get("resource")?,
    })
}

/// Records the key and the resource it created, in the transaction that created it. Two
/// concurrent first attempts cannot both commit: the second fails on the primary key and its
/// retry finds the first.
pub async fn remember(
    connection: &mut AnyConnection,
    key: &RequestKey,
    resource: &str,
    now: time::OffsetDateTime,
) -> Result<(), Problem> {
    sqlx::query(
        "INSERT INTO request_ids (subject, method, request_id, request_hash, resource, created_us) \
         VALUES ($1, $2, $3, $4, $5, $6)",
    )
    .bind(&key.subject)
    .bind(&key.method)
    .bind(&key.request_id)
    .bind(&key.request_hash)
    .bind(resource)
    .bind(to_micros(now))
    .execute(connection)
    .await?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_empty_id_asks_for_no_retry_safety_and_a_bad_one_is_refused() {
        assert_eq!(RequestKey::new("s", "m", "", &[b"x"]).ok(), Some(None));
        assert!(RequestKey::new("s", "m", "not a uuid!", &[b"x"]).is_err());
        assert!(RequestKey::new("s", "m", &"a".repeat(65), &[b"x"]).is_err());
        let key = RequestKey::new("s", "m", "5f0c9a3e-1b2d-4c8e-9f00-7a6b5c4d3e2f", &[b"x"]).expect("valid");
        assert!(key.is_some());
    }

    #[test]
    fn the_hash_separates_request_parts() {
        let a = RequestKey::new("s", "m", "r1", &[b"ab", b"c"])
            .ok()
            .flatten()
            .expect("key");
        let b = RequestKey::new("s", "m", "r1", &[b"a", b"bc"])
            .ok()
            .flatten()
            .expect("key");
        assert_ne!(a.request_hash, b.request_hash);
    }
}
