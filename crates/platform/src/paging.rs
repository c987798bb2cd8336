//! List paging as AIP-158 describes it: `page_size` (0 means the default, above the maximum is
//! the maximum, negative is refused) and an opaque `page_token` that carries a keyset cursor —
//! never an offset, so a page deep in a million rows costs what the first one does. A token is
//! bound to the query that issued it: reused with other filters it is refused, not misread.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use sha2::{Digest, Sha256};

use crate::error::{ErrorReason, Problem};

/// A list request's page: its size (100 by default, 1,000 at most) and the cursor its token
/// carries (None on the first page).
pub fn page(size: i32, token: &str, fingerprint: &str) -> Result<(u32, Option<Vec<String>>), Problem> {
    Ok((page_size(size, 100, 1000)?, decode_token(token, fingerprint)?))
}

/// The size of a page after the AIP-158 rules.
pub fn page_size(requested: i32, default: u32, max: u32) -> Result<u32, Problem> {
    match requested {
        n if n < 0 => Err(Problem::invalid_field(
            ErrorReason::FieldInvalid,
            "page_size",
            "must not be negative",
            "每页条数不能为负数",
        )),
        0 => Ok(default),
        n => Ok((n as u32).min(max)),
    }
}

/// A fingerprint of a query's filters: a page token from another query is refused.
pub fn fingerprint(filters: &[&str]) -> String {
    let mut hasher = Sha256::new();
    for filter in filters {
        hasher.update((filter.len() as u32).to_be_bytes());
        hasher.update(filter.as_bytes());
    }
    let digest = hasher.finalize();
    digest[..8].iter().map(|b| format!("{b:02x}")).collect()
}

/// Encodes a cursor (the sort key of the last row returned) as a page token.
pub fn encode_token(fingerprint: &str, cursor: &[String]) -> String {
    let mut text = format!("v1\u{1f}{fingerprint}");
    for part in cursor {
        text.push('\u{1f}');
        text.push_str(part);
    }
    URL_SAFE_NO_PAD.encode(text)
}

/// PAGE_TOKEN_INVALID: a token this server did not issue for this query, or whose cursor does
/// not fit it.
pub fn token_invalid() -> Problem {
    Problem::invalid_field(
        ErrorReason::PageTokenInvalid,
        "page_token",
        "is not a token this server issued for this query",
        "翻页标记无效，请从第一页重新查询",
    )
}

/// Decodes a page token issued for the same query; an empty token is the first page.
pub fn decode_token(token: &str, fingerprint: &str) -> Result<Option<Vec<String>>, Problem> {
    if token.is_empty() {
        return Ok(None);
    }
    let bytes = URL_SAFE_NO_PAD.decode(token).map_err(|_| token_invalid())?;
    let text = String::from_utf8(bytes).map_err(|_| token_invalid())?;
    let mut parts = text.split('\u{1f}');
    if parts.next() != Some("v1") || parts.next() != Some(fingerprint) {
        return Err(token_invalid());
    }
    Ok(Some(parts.map(str::to_string).collect()))
}

/// Keeps the page of `rows` (read with one more than `size`) and gives the next page's token,
/// made from the last row kept; empty on the last page.
pub fn next_page<T>(rows: &mut Vec<T>, size: u32, fingerprint: &str, cursor: impl Fn(&T) -> Vec<String>) -> String {
    if rows.len() <= size as usize {
        return String::new();
    }
    rows.truncate(size as usize);
    rows.last()
        .map(|row| encode_token(fingerprint, &cursor(row)))
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn page_size_follows_aip_158() {
        assert_eq!(page_size(0, 100, 1000).ok(), Some(100));
        assert_eq!(page_size(5000, 100, 1000).ok(), Some(1000));
        assert_eq!(page_size(7, 100, 1000).ok(), Some(7));
        assert!(page_size(-1, 100, 1000).is_err());
    }

    #[test]
    fn a_token_round_trips_for_its_own_query_only() {
        let mine = fingerprint(&["subject=li"]);
        let other = fingerprint(&["subject=wang"]);
        let token = encode_token(&mine, &["42".to_string()]);
        assert_eq!(decode_token(&token, &mine).ok().flatten(), Some(vec!["42".to_string()]));
        let err = decode_token(&token, &other).expect_err("other query");
        assert_eq!(err.reason, ErrorReason::PageTokenInvalid);
        assert!(decode_token("not base64!", &mine).is_err());
        assert_eq!(decode_token("", &mine).ok().flatten(), None);
    }
}
