//! Text no request may carry, refused in one place for every method of every service: NUL and
//! the other control characters (tab, line feed and carriage return aside), and the bidi
//! overrides that make a name display as something else (U+202A–U+202E, U+2066–U+2069).
//!
//! Why here and not in each service's parsing: NUL alone reached PostgreSQL as an INTERNAL
//! error and SQLite as stored data, through whichever free-text field a service forgot to
//! check. The layer reads each request message by the method's descriptor (the contracts are
//! compiled into the binary) and refuses it naming the field, before any handler runs. Streamed
//! requests (a bulk import) are left to their handlers, which refuse a bad row and keep the rest.

use std::collections::HashMap;
use std::pin::Pin;
use std::sync::OnceLock;
use std::task::{Context, Poll};

use bytes::{Buf, Bytes, BytesMut};
use http_body::{Body as HttpBody, Frame};
use prost_reflect::{DescriptorPool, DynamicMessage, MapKey, MessageDescriptor, Value};

use crate::error::{ErrorReason, Problem};

/// The request type of every bangfu method whose requests can hold text, by gRPC path; empty
/// if the contracts cannot be read. A request type without a string field anywhere in it (a
/// health or server-info request) is left out: nothing to check, and its calls pay nothing.
fn request_types() -> &'static HashMap<String, MessageDescriptor> {
    static TYPES: OnceLock<HashMap<String, MessageDescriptor>> = OnceLock::new();
    TYPES.get_or_init(|| match DescriptorPool::decode(bangfu_proto::FILE_DESCRIPTOR_SET) {
        Ok(pool) => pool
            .services()
            .flat_map(|service| {
                service
                    .methods()
                    .map(|method| (format!("/{}/{}", service.full_name(), method.name()), method.input()))
                    .collect::<Vec<_>>()
            })
            .filter(|(_, message)| holds_text(message, &mut Vec::new()))
            .collect(),
        Err(error) => {
            tracing::error!(%error, "the contracts compiled into the binary cannot be read; request text is not checked");
            HashMap::new()
        }
    })
}

/// Whether `message` has a string field, or a map with string keys, at any depth.
fn holds_text(message: &MessageDescriptor, seen: &mut Vec<String>) -> bool {
    if seen.iter().any(|name| name == message.full_name()) {
        return false;
    }
    seen.push(message.full_name().to_string());
    message.fields().any(|field| match field.kind() {
        prost_reflect::Kind::String => true,
        prost_reflect::Kind::Message(inner) => holds_text(&inner, seen),
        _ => false,
    })
}

/// Reads the contracts' request types now, at start, so that the first call does not pay for
/// it (decoding every contract costs about fifty million instructions).
pub fn prepare() {
    request_types();
}

/// The descriptor of `path`'s request messages, for the methods the contracts define.
pub fn request_type(path: &str) -> Option<MessageDescriptor> {
    request_types().get(path).cloned()
}

/// What is wrong with a character, if anything.
fn refused(c: char) -> Option<&'static str> {
    match c {
        '\t' | '\n' | '\r' => None,
        '\0' => Some("contains NUL (U+0000)"),
        c if c.is_control() => Some("contains a control character"),
        '\u{202A}'..='\u{202E}' | '\u{2066}'..='\u{2069}' => {
            Some("contains a bidirectional override, which makes text display other than it reads")
        }
        _ => None,
    }
}

/// The first string field of `message` holding refused text, as (field path, what is wrong).
pub fn first_refused(message: &DynamicMessage) -> Option<(String, &'static str)> {
    fn walk(message: &DynamicMessage, prefix: &str) -> Option<(String, &'static str)> {
        for (field, value) in message.fields() {
            let path = if prefix.is_empty() {
                field.name().to_string()
            } else {
                format!("{prefix}.{}", field.name())
            };
            if let Some(found) = check(value, &path) {
                return Some(found);
            }
        }
        None
    }
    fn check(value: &Value, path: &str) -> Option<(String, &'static str)> {
        match value {
            Value::String(text) => text.chars().find_map(refused).map(|why| (path.to_string(), why)),
            Value::Message(inner) => walk(inner, path),
            Value::List(items) => items
                .iter()
                .enumerate()
                .find_map(|(i, item)| check(item, &format!("{path}[{i}]"))),
            Value::Map(entries) => entries.iter().find_map(|(key, item)| {
                if let MapKey::String(key) = key
                    && let Some(why) = key.chars().find_map(refused)
                {
                    return Some((format!("{path} (a key)"), why));
                }
                check(item, &format!("{path}[{}]", crate::error::quoted(&map_key(key))))
            }),
            _ => None,
        }
    }
    walk(message, "")
}

fn map_key(key: &MapKey) -> String {
    match key {
        MapKey::String(text) => text.clone(),
        MapKey::Bool(b) => b.to_string(),
        MapKey::I32(n) => n.to_string(),
        MapKey::I64(n) => n.to_string(),
        MapKey::U32(n) => n.to_string(),
        MapKey::U64(n) => n.to_string(),
    }
}

fn problem(field: &str, why: &str) -> Problem {
    Problem::invalid_field(
        ErrorReason::FieldInvalid,
        field,
        why,
        "填写内容含有不可见的控制字符或方向控制符，请删除后重新提交",
    )
}

/// The gRPC frame header: a compression flag and a 4-byte length.
const FRAME_HEADER: usize = 5;

/// A request body whose messages are checked as they arrive. The checked frames pass on
/// unchanged; a message with refused text ends the body with INVALID_ARGUMENT naming the field,
/// which the handler answers with.
pub struct CheckedBody<B> {
    inner: B,
    message: MessageDescriptor,
    pending: BytesMut,
    failed: bool,
}

impl<B> CheckedBody<B> {
    pub fn new(inner: B, message: MessageDescriptor) -> Self {
        Self {
            inner,
            message,
            pending: BytesMut::new(),
            failed: false,
        }
    }

    /// The complete frames at the front of `pending`, checked; `Err` when one holds refused text.
    fn checked_frames(&mut self) -> Result<Option<Bytes>, tonic::Status> {
        let mut end = 0;
        loop {
            let rest = &self.pending[end..];
            if rest.len() < FRAME_HEADER {
                break;
            }
            let compressed = rest[0] != 0;
            let length = u32::from_be_bytes([rest[1], rest[2], rest[3], rest[4]]) as usize;
            if rest.len() < FRAME_HEADER + length {
                break;
            }
            // A compressed message (not enabled on this server) or one that does not decode is
            // left to the codec, which refuses it in its own words.
            if !compressed
                && let Ok(message) =
                    DynamicMessage::decode(self.message.clone(), &rest[FRAME_HEADER..FRAME_HEADER + length])
                && let Some((field, why)) = first_refused(&message)
            {
                return Err(problem(&field, why).into());
            }
            end += FRAME_HEADER + length;
        }
        Ok((end > 0).then(|| self.pending.split_to(end).freeze()))
    }
}

impl<B> HttpBody for CheckedBody<B>
where
    B: HttpBody<Data = Bytes> + Unpin,
    B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
{
    type Data = Bytes;
    type Error = tonic::Status;

    fn poll_frame(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Result<Frame<Bytes>, Self::Error>>> {
        if self.failed {
            return Poll::Ready(None);
        }
        loop {
            match Pin::new(&mut self.inner).poll_frame(cx) {
                Poll::Pending => return Poll::Pending,
                Poll::Ready(None) => {
                    // What is left is an incomplete frame: pass it on for the codec to refuse.
                    if self.pending.has_remaining() {
                        let rest = self.pending.split().freeze();
                        return Poll::Ready(Some(Ok(Frame::data(rest))));
                    }
                    return Poll::Ready(None);
                }
                Poll::Ready(Some(Err(error))) => {
                    return Poll::Ready(Some(Err(tonic::Status::from_error(error.into()))));
                }
                Poll::Ready(Some(Ok(frame))) => match frame.into_data() {
                    Ok(data) => {
                        self.pending.extend_from_slice(&data);
                        match self.checked_frames() {
                            Ok(Some(frames)) => return Poll::Ready(Some(Ok(Frame::data(frames)))),
                            Ok(None) => continue,
                            Err(status) => {
                                self.failed = true;
                                return Poll::Ready(Some(Err(status)));
                            }
                        }
                    }
                    Err(frame) => return Poll::Ready(Some(Ok(frame))),
                },
            }
        }
    }

    fn is_end_stream(&self) -> bool {
        self.failed || (self.inner.is_end_stream() && self.pending.is_empty())
    }
}

/// Checks `request`'s messages if its method is one of the contracts'.
pub fn check_request(request: http::Request<tonic::body::Body>) -> http::Request<tonic::body::Body> {
    let Some(message) = request_type(request.uri().path()) else {
        return request;
    };
    request.map(|body| tonic::body::Body::new(CheckedBody::new(body, message)))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn message_with(text: &str) -> DynamicMessage {
        let person = request_type("/bangfu.identity.v1.IdentityService/CreatePerson").expect("contract");
        let mut request = DynamicMessage::new(person.clone());
        let person_field = person.get_field_by_name("person").expect("field");
        let mut inner = DynamicMessage::new(person_field.kind().as_message().expect("message").clone());
        inner.set_field_by_name("display_name", Value::String(text.to_string()));
        inner.set_field_by_name("skills", Value::List(vec![Value::String("电工".into())]));
        request.set_field(&person_field, Value::Message(inner));
        request
    }

    #[test]
    fn every_contract_method_has_its_request_type() {
        assert!(!request_types().is_empty(), "the contracts were read");
        assert!(request_type("/bangfu.identity.v1.IdentityService/GetPerson").is_some());
        // Nothing to check in an empty request: its calls are not wrapped at all.
        assert!(request_type("/bangfu.diagnostics.v1.DiagnosticsService/WhoAmI").is_none());
        assert!(request_type("/grpc.health.v1.Health/Check").is_none());
    }

    #[test]
    fn nul_controls_and_bidi_overrides_are_found_by_field_and_chinese_text_is_not() {
        assert_eq!(first_refused(&message_with("王秀英")), None);
        assert_eq!(first_refused(&message_with("第一行\n第二行\t")), None);
        for bad in ["王\0秀英", "王\u{1b}[31m", "王\u{202E}英秀", "\u{2066}王"] {
            let (field, _) = first_refused(&message_with(bad)).expect(bad);
            assert_eq!(field, "person.display_name", "{bad:?}");
        }
    }

    #[test]
    fn refusals_are_not_confused_with_ordinary_letters() {
        assert!(refused('\u{7f}').is_some());
        assert!(refused('\u{85}').is_some());
        assert!(refused('·').is_none());
        assert!(refused('〔').is_none());
    }
}
