//! Reading stored rows the same way in every service: a column decoded to a domain value or a
//! decode error naming the column, instants as microseconds, JSON documents, and new opaque ids.

use sqlx::Row;
use sqlx::any::AnyRow;
use time::{Date, OffsetDateTime};

use crate::db::from_micros;
use crate::parameters::parse_date_text;

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

/// A new opaque id, 20 lower-case hex digits (80 bits): the second it was made (32 bits), a
/// counter of this process (16 bits) and 32 random bits.
///
/// Ids are primary keys and lead many indexes (a person's regions, a claim's periods). Wholly
/// random ids sent every insert to a random leaf of each of those B-trees, so a bulk import or
/// a payroll rewrote a page per row per index at each commit (SQLite's WAL, PostgreSQL's
/// full-page writes). Ids made close in time now sort close together, and inserts land near
/// the right edge. Within one process and second the counter keeps ids distinct; across
/// replicas the random bits do, and every id column is a primary or unique key that refuses
/// the rare clash (each writer retries or steps back).
pub fn new_id() -> String {
    static COUNTER: std::sync::atomic::AtomicU16 = std::sync::atomic::AtomicU16::new(0);
    let seconds = OffsetDateTime::now_utc().unix_timestamp().clamp(0, i64::from(u32::MAX));
    let count = COUNTER.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let random: u32 = rand::random();
    format!("{seconds:08x}{count:04x}{random:08x}")
}

/// A business date stored as "YYYY-MM-DD" text.
pub fn day(row: &AnyRow, column: &str) -> Result<Date, sqlx::Error> {
    let text: String = row.try_get(column)?;
    decode(column, parse_date_text(&text))
}

/// An optional business date stored as text or NULL.
pub fn optional_day(row: &AnyRow, column: &str) -> Result<Option<Date>, sqlx::Error> {
    let text: Option<String> = row.try_get(column)?;
    Ok(text.as_deref().and_then(parse_date_text))
}

/// A text column parsed into a domain kind (see [`stored_enum!`](crate::stored_enum)).
pub fn parsed<T>(row: &AnyRow, column: &str, parse: impl Fn(&str) -> Option<T>) -> Result<T, sqlx::Error> {
    let text: String = row.try_get(column)?;
    decode(column, parse(&text))
}

/// Declares a closed set of kinds stored as lower-case text, with `as_str`, `parse` and `ALL`.
/// The wire edge maps them to proto enums by name ([`enum_mapping!`](crate::enum_mapping)).
#[macro_export]
macro_rules! stored_enum {
    ($(#[$doc:meta])* $name:ident { $($variant:ident => $text:literal,)+ }) => {
        $(#[$doc])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
        pub enum $name {
            $($variant,)+
        }

        impl $name {
            pub const ALL: &'static [$name] = &[$($name::$variant,)+];

            pub fn as_str(self) -> &'static str {
                match self {
                    $($name::$variant => $text,)+
                }
            }

            pub fn parse(text: &str) -> Option<Self> {
                match text {
                    $($text => Some($name::$variant),)+
                    _ => None,
                }
            }
        }
    };
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn new_ids_are_twenty_hex_digits_distinct_and_lead_with_the_second_they_were_made() {
        let before = OffsetDateTime::now_utc().unix_timestamp();
        let ids: Vec<String> = (0..100_000).map(|_| new_id()).collect();
        let after = OffsetDateTime::now_utc().unix_timestamp();
        let distinct: std::collections::HashSet<&String> = ids.iter().collect();
        assert_eq!(distinct.len(), ids.len());
        for id in &ids {
            assert_eq!(id.len(), 20);
            assert!(
                id.bytes().all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b)),
                "{id}"
            );
            let second = i64::from_str_radix(&id[..8], 16).unwrap();
            assert!(
                (before..=after).contains(&second),
                "{id} was not made between {before} and {after}"
            );
        }
    }
}
