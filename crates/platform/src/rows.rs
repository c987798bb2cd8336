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

/// A new opaque id: 80 random bits in lower-case hex.
pub fn new_id() -> String {
    let bytes: [u8; 10] = rand::random();
    bytes.iter().map(|b| format!("{b:02x}")).collect()
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
