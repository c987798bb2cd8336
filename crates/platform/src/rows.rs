//! Reading stored rows the same way in every service: a column decoded to a domain value or a
//! decode error naming the column, instants as microseconds, JSON documents, and new opaque ids.

use sqlx::Row;
use sqlx::any::AnyRow;
use time::OffsetDateTime;

use crate::db::from_micros;

/// A stored value the code cannot read (an unknown state text, an impossible instant) as the
/// decode error of `column`.
pub fn decode<T>(column: &str, value: Option<T>) -> Result<T, sqlx::Error> {
    value.ok_or_else(|| sqlx::Error::ColumnDecode {
        index: column.to_string(),
        source: format!("unexpected stored value in {column}").into(),
    })
}

/// An instant stored as microseconds since the epoch.
pub fn instant(row: &AnyRow, column: &str) -> Result<OffsetDateTime, sqlx::Error> {
    decode(column, from_micros(row.try_get(column)?))
}

/// A JSON document stored as text.
pub fn json<T: serde::de::DeserializeOwned>(row: &AnyRow, column: &str) -> Result<T, sqlx::Error> {
    let text: String = row.try_get(column)?;
    serde_json::from_str(&text).map_err(|e| sqlx::Error::ColumnDecode {
        index: column.to_string(),
        source: Box::new(e),
    })
}

/// A value as the JSON text it is stored as.
pub fn to_json<T: serde::Serialize>(value: &T) -> String {
    // Plain data types with string keys: serialization cannot fail.
    serde_json::to_string(value).unwrap_or_default()
}

/// A new opaque id: 80 random bits in lower-case hex.
pub fn new_id() -> String {
    let bytes: [u8; 10] = rand::random();
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}
