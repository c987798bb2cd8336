//! Prints any answer of the contract whole, read through the contract's own descriptors: as
//! the protobuf JSON mapping (`--json`, for scripts: every field the server sent, names as in
//! the .proto files), or as label/value rows and tables a clerk reads. Money shows as yuan,
//! dates as `YYYY-MM-DD`, times in UTC+8, enums as their flag spelling (`pending-review`), so
//! no command hand-picks fields and a field the contract gains is shown without a change here.

use std::path::PathBuf;
use std::sync::LazyLock;

use prost_reflect::{DescriptorPool, DynamicMessage, Kind, MessageDescriptor, ReflectMessage, SerializeOptions, Value};

use crate::Failure;
use crate::format::{kebab, stamp_text, yuan_text};

static POOL: LazyLock<Result<DescriptorPool, String>> =
    LazyLock::new(|| DescriptorPool::decode(bangfu_proto::FILE_DESCRIPTOR_SET).map_err(|e| e.to_string()));

/// The contract's descriptors, comments included.
pub fn pool() -> Result<&'static DescriptorPool, Failure> {
    POOL.as_ref()
        .map_err(|e| Failure::failed(format!("the contract's descriptors: {e}")))
}

/// A message of the contract, by its full name (`bangfu.subsidy.v1.Claim`), for reading
/// field by field.
pub fn reflect<M: prost::Message>(full_name: &str, message: &M) -> Result<DynamicMessage, Failure> {
    let descriptor = pool()?
        .get_message_by_name(full_name)
        .ok_or_else(|| Failure::failed(format!("the contract has no message {full_name}")))?;
    DynamicMessage::decode(descriptor, message.encode_to_vec().as_slice())
        .map_err(|e| Failure::failed(format!("{full_name}: {e}")))
}

/// The message in the protobuf JSON mapping, as grpcurl and every proto3 library print it:
/// lowerCamelCase names, 64-bit integers as strings, enums by name, fields left at their
/// default omitted.
pub fn json(message: &DynamicMessage) -> serde_json::Value {
    message
        .serialize_with_options(serde_json::value::Serializer, &SerializeOptions::new())
        .unwrap_or(serde_json::Value::Null)
}

/// How a command prints its answer (`--json`, `--jsonl`, or neither).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Output {
    /// Label/value rows, and tables under a header row, for a clerk to read.
    Text,
    /// One JSON document per command: a record is an object, a list an array (`[]` when
    /// empty), printed when the command ends.
    Json,
    /// One JSON object per line as each arrives: for long lists and streams.
    JsonLines,
}

impl Output {
    pub fn is_json(self) -> bool {
        self != Self::Text
    }
}

/// A list printed as it is paged through: a table per page, JSON lines as they come, or one
/// JSON array when the list ends.
pub struct Listing {
    output: Output,
    items: Vec<serde_json::Value>,
    /// With `--output FILE`: the file, the header and the rows kept for it.
    file: Option<(PathBuf, Vec<String>, Vec<Vec<String>>)>,
}

impl Listing {
    pub fn new(output: Output) -> Self {
        Self {
            output,
            items: Vec::new(),
            file: None,
        }
    }

    /// A listing written to a file (CSV with a byte-order mark, or .xlsx) instead of printed.
    pub fn to_file(output: Output, file: Option<PathBuf>) -> Self {
        Self {
            file: file.map(|path| (path, Vec::new(), Vec::new())),
            ..Self::new(output)
        }
    }

    /// Prints (or, for one JSON array or a file, keeps) a page's records.
    pub fn page(&mut self, messages: &[DynamicMessage], columns: &[(&str, &str)]) {
        if let Some((_, header, rows)) = &mut self.file {
            if header.is_empty() {
                *header = columns.iter().map(|(label, _)| (*label).to_string()).collect();
            }
            rows.extend(messages.iter().map(|message| cells(message, columns)));
            return;
        }
        match self.output {
            Output::Text => text_table(messages, columns),
            Output::JsonLines => {
                for message in messages {
                    say!("{}", json(message));
                }
            }
            Output::Json => self.items.extend(messages.iter().map(json)),
        }
    }

    /// Prints the JSON array of every record kept, or writes the file.
    pub fn finish(self) -> Result<(), Failure> {
        if let Some((path, header, rows)) = self.file {
            crate::table_file::write_table(&path, &header, &rows)?;
            eprintln!("{} rows written to {}", rows.len(), path.display());
            return Ok(());
        }
        if self.output == Output::Json {
            say!("{:#}", serde_json::Value::Array(self.items));
        }
        Ok(())
    }
}

/// A record's cells under `columns`, empty ones as `-`.
fn cells(message: &DynamicMessage, columns: &[(&str, &str)]) -> Vec<String> {
    columns
        .iter()
        .map(|(_, path)| {
            let text = at_path(message, path).unwrap_or_default();
            if text.is_empty() { "-".to_string() } else { text }
        })
        .collect()
}

/// Prints one record: JSON, or a row per field the server sent (nested fields as
/// `decision.amount`, list items as `facts[0].value`).
/// Prints a server's answer whole: every field as rows, or JSON.
pub fn show<M: prost::Message>(full_name: &str, answer: &M, json: bool) -> Result<(), Failure> {
    record(&reflect(full_name, answer)?, json);
    Ok(())
}

pub fn record(message: &DynamicMessage, as_json: bool) {
    if as_json {
        say!("{:#}", json(message));
    } else {
        crate::client::print_rows(
            &rows(message)
                .iter()
                .map(|(label, value)| (label.as_str(), value.clone()))
                .collect::<Vec<_>>(),
        );
    }
}

/// A table's layout: the message its rows are, and its columns (header, dotted field path).
pub struct Columns {
    pub message: &'static str,
    pub columns: &'static [(&'static str, &'static str)],
}

impl Columns {
    /// Each row as the contract's message, for [`table`].
    pub fn rows<M: prost::Message>(&self, items: &[M]) -> Result<Vec<DynamicMessage>, Failure> {
        items.iter().map(|item| reflect(self.message, item)).collect()
    }

    /// Every column's path names a field of the message (a test runs this for every layout).
    #[cfg(test)]
    pub fn check(&self) -> Result<(), String> {
        let pool = POOL.as_ref().map_err(Clone::clone)?;
        let message = pool
            .get_message_by_name(self.message)
            .ok_or_else(|| format!("no message {}", self.message))?;
        for (_, path) in self.columns {
            let mut descriptor = message.clone();
            let mut parts = path.split('.').peekable();
            while let Some(part) = parts.next() {
                let field = descriptor
                    .get_field_by_name(part)
                    .ok_or_else(|| format!("{} has no field {part} (column {path})", descriptor.full_name()))?;
                if parts.peek().is_some() {
                    descriptor = match field.kind() {
                        Kind::Message(inner) => inner,
                        _ => return Err(format!("{path}: {part} is not a message")),
                    };
                }
            }
        }
        Ok(())
    }
}

/// Prints a whole list as `output` says: a table of `columns` (header, field path), a JSON
/// array, or JSON lines.
pub fn table(messages: &[DynamicMessage], columns: &[(&str, &str)], output: Output) -> Result<(), Failure> {
    let mut listing = Listing::new(output);
    listing.page(messages, columns);
    listing.finish()
}

/// A table of `columns` under a header row, empty cells as `-`.
fn text_table(messages: &[DynamicMessage], columns: &[(&str, &str)]) {
    let header: Vec<String> = columns.iter().map(|(label, _)| (*label).to_string()).collect();
    let rows: Vec<Vec<String>> = messages.iter().map(|message| cells(message, columns)).collect();
    crate::format::print_table(&header, &rows);
}

/// The text of the field at a dotted path, when set.
pub fn at_path(message: &DynamicMessage, path: &str) -> Option<String> {
    let (head, rest) = path.split_once('.').map_or((path, None), |(h, r)| (h, Some(r)));
    let field = message.descriptor().get_field_by_name(head)?;
    if !message.has_field(&field) {
        return None;
    }
    let value = message.get_field(&field);
    match (rest, value.as_ref()) {
        (Some(rest), Value::Message(inner)) if !is_leaf(&inner.descriptor()) => at_path(inner, rest),
        (None, value) => Some(value_text(&field.kind(), value)),
        _ => None,
    }
}

/// Label/value rows of every field set, in the contract's order.
pub fn rows(message: &DynamicMessage) -> Vec<(String, String)> {
    let mut out = Vec::new();
    collect(message, "", &mut out);
    out
}

fn collect(message: &DynamicMessage, prefix: &str, out: &mut Vec<(String, String)>) {
    for (field, value) in message.fields() {
        let label = format!("{prefix}{}", field.name().replace('_', " "));
        let kind = field.kind();
        match value {
            Value::List(items) => {
                for (index, item) in items.iter().enumerate() {
                    push(&kind, item, &format!("{label}[{index}]"), out);
                }
            }
            Value::Map(entries) => {
                let mut entries: Vec<_> = entries.iter().collect();
                entries.sort_by_key(|(key, _)| format!("{key:?}"));
                let value_kind = match &kind {
                    Kind::Message(entry) => entry.map_entry_value_field().kind(),
                    other => other.clone(),
                };
                for (key, item) in entries {
                    let key = match key {
                        prost_reflect::MapKey::String(text) => text.clone(),
                        other => format!("{other:?}"),
                    };
                    push(&value_kind, item, &format!("{label}[{key}]"), out);
                }
            }
            value => push(&kind, value, &label, out),
        }
    }
}

fn push(kind: &Kind, value: &Value, label: &str, out: &mut Vec<(String, String)>) {
    match value {
        Value::Message(inner) if !is_leaf(&inner.descriptor()) => collect(inner, &format!("{label}."), out),
        value => out.push((label.to_string(), value_text(kind, value))),
    }
}

/// Messages shown as one value: money, dates, periods, months, regions, times.
fn is_leaf(descriptor: &MessageDescriptor) -> bool {
    matches!(
        descriptor.full_name(),
        "bangfu.common.v1.Money"
            | "bangfu.common.v1.Date"
            | "bangfu.common.v1.Period"
            | "bangfu.common.v1.YearMonth"
            | "bangfu.common.v1.RegionCode"
            | "google.protobuf.Timestamp"
    )
}

fn value_text(kind: &Kind, value: &Value) -> String {
    match value {
        Value::Bool(b) => if *b { "yes" } else { "no" }.to_string(),
        Value::I32(n) => n.to_string(),
        Value::I64(n) => n.to_string(),
        Value::U32(n) => n.to_string(),
        Value::U64(n) => n.to_string(),
        Value::F32(n) => n.to_string(),
        Value::F64(n) => n.to_string(),
        Value::String(text) => text.clone(),
        Value::Bytes(bytes) => format!("{} bytes", bytes.len()),
        Value::EnumNumber(number) => match kind {
            Kind::Enum(descriptor) => descriptor
                .get_value(*number)
                .map_or_else(|| number.to_string(), |value| enum_text(&value)),
            _ => number.to_string(),
        },
        Value::Message(inner) => leaf_text(inner),
        Value::List(items) => items
            .iter()
            .map(|item| value_text(kind, item))
            .collect::<Vec<_>>()
            .join(", "),
        Value::Map(entries) => format!("{} entries", entries.len()),
    }
}

fn int(message: &DynamicMessage, name: &str) -> i64 {
    match message.get_field_by_name(name).as_deref() {
        Some(Value::I32(n)) => i64::from(*n),
        Some(Value::I64(n)) => *n,
        _ => 0,
    }
}

fn text(message: &DynamicMessage, name: &str) -> String {
    match message.get_field_by_name(name).as_deref() {
        Some(Value::String(text)) => text.clone(),
        _ => String::new(),
    }
}

fn date_of(message: &DynamicMessage) -> String {
    let (year, month, day) = (int(message, "year"), int(message, "month"), int(message, "day"));
    if day == 0 {
        format!("{year:04}-{month:02}")
    } else {
        format!("{year:04}-{month:02}-{day:02}")
    }
}

fn leaf_text(message: &DynamicMessage) -> String {
    match message.descriptor().full_name() {
        "bangfu.common.v1.Money" => format!("{} 元", yuan_text(int(message, "fen"))),
        "bangfu.common.v1.Date" | "bangfu.common.v1.YearMonth" => date_of(message),
        "bangfu.common.v1.Period" => {
            let day = |name: &str| match message.get_field_by_name(name).as_deref() {
                Some(Value::Message(date)) => date_of(date),
                _ => "?".to_string(),
            };
            let (first, last) = (day("first_day"), day("last_day"));
            if first == last {
                first
            } else {
                format!("{first} – {last}")
            }
        }
        "bangfu.common.v1.RegionCode" => {
            let (code, name) = (text(message, "code"), text(message, "display_name"));
            if name.is_empty() {
                code
            } else {
                format!("{code} {name}")
            }
        }
        "google.protobuf.Timestamp" => stamp_text(Some(int(message, "seconds"))),
        _ => json(message).to_string(),
    }
}

/// An enum value as a clerk reads it: its Chinese term under a Chinese locale (when the
/// contract gives one), otherwise its flag spelling (`pending-review`).
pub fn enum_text(value: &prost_reflect::EnumValueDescriptor) -> String {
    if crate::terms::chinese_locale()
        && let Some(term) = crate::terms::terms(value).into_iter().next()
    {
        return term;
    }
    kebab(&enum_prefix(value.parent_enum().name()), value.name())
}

/// `CLAIM_STATE` for `ClaimState`: what the enum's value names start with.
fn enum_prefix(name: &str) -> String {
    let mut prefix = String::new();
    for (index, c) in name.chars().enumerate() {
        if c.is_ascii_uppercase() && index > 0 {
            prefix.push('_');
        }
        prefix.push(c.to_ascii_uppercase());
    }
    prefix
}

#[cfg(test)]
mod tests {
    use super::*;
    use bangfu_proto::common::v1 as common;
    use bangfu_proto::subsidy::v1 as pb;

    #[test]
    fn a_claim_prints_every_field_sent_with_money_dates_and_states_as_a_clerk_reads_them() {
        let claim = pb::Claim {
            name: "claims/c1".into(),
            state: pb::ClaimState::PendingReview as i32,
            period: Some(common::Period {
                first_day: Some(common::Date {
                    year: 2025,
                    month: 3,
                    day: 1,
                }),
                last_day: Some(common::Date {
                    year: 2025,
                    month: 3,
                    day: 31,
                }),
            }),
            decision: Some(pb::ClaimDecision {
                amount: Some(common::Money { fen: 123_456 }),
                ..Default::default()
            }),
            facts: vec![pb::Fact {
                name: "days_on_post".into(),
                ..Default::default()
            }],
            ..Default::default()
        };
        let message = reflect("bangfu.subsidy.v1.Claim", &claim).expect("reflected");
        let rows = rows(&message);
        let find = |label: &str| rows.iter().find(|(l, _)| l == label).map(|(_, v)| v.clone());
        assert_eq!(find("name").as_deref(), Some("claims/c1"));
        assert_eq!(find("state").as_deref(), Some("pending-review"));
        assert_eq!(find("period").as_deref(), Some("2025-03-01 – 2025-03-31"));
        assert_eq!(find("decision.amount").as_deref(), Some("1234.56 元"));
        assert_eq!(find("facts[0].name").as_deref(), Some("days_on_post"));
        assert_eq!(find("note"), None, "fields not sent are not shown");
        assert_eq!(at_path(&message, "decision.amount").as_deref(), Some("1234.56 元"));
        assert_eq!(json(&message)["state"], "CLAIM_STATE_PENDING_REVIEW");
        assert_eq!(
            json(&message)["decision"]["amount"]["fen"],
            "123456",
            "64-bit integers are strings in the JSON mapping"
        );
        assert_eq!(json(&message)["facts"][0]["name"], "days_on_post");
    }
}
