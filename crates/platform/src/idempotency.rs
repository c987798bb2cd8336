//! Safe retries of calls that create records or move money (AIP-155 `request_id`): the key a
//! request is remembered under. The first call with a request id stores, in its own
//! transaction, a hash of the request and the resource it created (`write::begin` claims it,
//! `Unit::commit` records the resource); a retry with the same id and the same request is
//! answered with that resource, and the same id with a different request is refused, so a
//! client bug cannot silently return someone else's record. Ids are scoped to the subject and
//! the method.

use sha2::{Digest, Sha256};

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

impl RequestKey {
    /// The key of a whole request message: every field counts, so a retry that differs in any
    /// of them is REQUEST_ID_REUSED rather than a silent answer to another request. prost
    /// encodes the same message to the same bytes (fields in number order), map fields aside:
    /// a request with a map must hash its parts with [`RequestKey::new`] instead.
    pub fn of_message(
        subject: &str,
        method: &str,
        request_id: &str,
        request: &impl prost::Message,
    ) -> Result<Option<Self>, Problem> {
        Self::new(subject, method, request_id, &[&request.encode_to_vec()])
    }

    /// `of_message` for a create whose contract requires the request id: an empty one is
    /// FIELD_REQUIRED on `request_id` rather than a call without retry safety.
    pub fn required_of_message(
        subject: &str,
        method: &str,
        request_id: &str,
        request: &impl prost::Message,
    ) -> Result<Option<Self>, Problem> {
        if request_id.trim().is_empty() {
            return Err(Problem::required("request_id", "请求编号"));
        }
        Self::of_message(subject, method, request_id, request)
    }
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
