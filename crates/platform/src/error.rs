//! One mapping from what went wrong to what a client sees: a `tonic::Status` carrying the
//! rich error model — `ErrorInfo` with a stable reason (domain `bangfu`), `BadRequest` field
//! violations, and a zh-CN `LocalizedMessage` a county clerk can act on.
//!
//! Services keep their own `thiserror` enums and convert them into a [`Problem`]; nothing
//! else builds a `Status` by hand, so every error leaves the server in the same shape.

use std::collections::HashMap;

pub use bangfu_proto::common::v1::ErrorReason;
use tonic::Code;
use tonic_types::{ErrorDetails, StatusExt};

/// The `ErrorInfo.domain` of every bangfu error.
pub const ERROR_DOMAIN: &str = "bangfu";

/// The locale of the clerk-facing message.
pub const CLERK_LOCALE: &str = "zh-CN";

/// A field that failed validation, named by its path in the request (`person.citizen_id`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FieldViolation {
    pub field: String,
    pub description: String,
}

/// A refusal or failure as the client will see it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem {
    pub code: Code,
    pub reason: ErrorReason,
    /// English, for the developer reading a log.
    pub message: String,
    /// zh-CN, for the clerk at the counter.
    pub message_zh: String,
    pub violations: Vec<FieldViolation>,
    pub metadata: Vec<(String, String)>,
}

impl Problem {
    pub fn new(code: Code, reason: ErrorReason, message: impl Into<String>, message_zh: impl Into<String>) -> Self {
        Self {
            code,
            reason,
            message: message.into(),
            message_zh: message_zh.into(),
            violations: Vec::new(),
            metadata: Vec::new(),
        }
    }

    /// INVALID_ARGUMENT naming the one field at fault.
    pub fn invalid_field(
        reason: ErrorReason,
        field: impl Into<String>,
        message: impl Into<String>,
        message_zh: impl Into<String>,
    ) -> Self {
        let message = message.into();
        let field = field.into();
        Self::new(Code::InvalidArgument, reason, format!("{field}: {message}"), message_zh)
            .with_violation(field, message)
    }

    /// INVALID_ARGUMENT for a required field left empty.
    pub fn required(field: impl Into<String>, what_zh: &str) -> Self {
        Self::invalid_field(
            ErrorReason::FieldRequired,
            field,
            "is required",
            format!("请填写{what_zh}"),
        )
    }

    /// NOT_FOUND, also for records outside the caller's region scope: existence is not revealed.
    pub fn not_found(resource: &str) -> Self {
        Self::new(
            Code::NotFound,
            ErrorReason::NotFound,
            format!("{resource} was not found"),
            "未找到该记录，或该记录不在您的管辖范围内",
        )
        .with_metadata("resource", resource)
    }

    /// ABORTED, ETAG_MISMATCH: the record changed since the caller read it (its etag moved on).
    pub fn etag_mismatch(resource: &str) -> Self {
        Self::new(
            Code::Aborted,
            ErrorReason::EtagMismatch,
            format!("{resource} changed since it was read; read it again"),
            "该记录已被他人修改，请刷新后重试",
        )
        .with_metadata("resource", resource)
    }

    /// INTERNAL: the details go to the log, never to the client.
    pub fn internal() -> Self {
        Self::new(
            Code::Internal,
            ErrorReason::Internal,
            "internal error; the server log has the details under this call's trace id",
            "系统内部错误，请稍后重试；如仍失败请联系系统管理员",
        )
    }

    /// UNAVAILABLE while the database cannot be reached; safe to retry.
    pub fn database_unavailable() -> Self {
        Self::new(
            Code::Unavailable,
            ErrorReason::DatabaseUnavailable,
            "the database is unavailable; retry later",
            "数据库暂时无法访问，请稍后重试",
        )
    }

    /// FAILED_PRECONDITION, STATE_CONFLICT: the record is not in a state that allows the change;
    /// metadata "resource" names it.
    pub fn state_conflict(resource: &str, message: impl Into<String>, message_zh: impl Into<String>) -> Self {
        Self::new(
            Code::FailedPrecondition,
            ErrorReason::StateConflict,
            message,
            message_zh,
        )
        .with_metadata("resource", resource)
    }

    pub fn with_violation(mut self, field: impl Into<String>, description: impl Into<String>) -> Self {
        self.violations.push(FieldViolation {
            field: field.into(),
            description: description.into(),
        });
        self
    }

    pub fn with_metadata(mut self, key: impl Into<String>, value: impl Into<String>) -> Self {
        self.metadata.push((key.into(), value.into()));
        self
    }

    /// The stable reason string clients switch on, e.g. `TOKEN_EXPIRED`.
    pub fn reason_code(&self) -> &'static str {
        self.reason.code()
    }
}

impl std::fmt::Display for Problem {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} ({}): {}", self.reason_code(), self.code, self.message)
    }
}

impl std::error::Error for Problem {}

/// The longest value an error quotes back, in characters: enough to recognise it, and a
/// 10 kB value does not become tens of kB of trailers, which the standard gRPC C-core client
/// cannot read (it reports RESOURCE_EXHAUSTED and the real reason is lost).
pub const QUOTE_CHARS: usize = 64;

/// The longest text of any one part of an error (message, field description, metadata value).
const PART_CHARS: usize = 512;

/// `value` as an error may quote it: its first [`QUOTE_CHARS`] characters, then "…".
pub fn quoted(value: &str) -> String {
    shortened(value, QUOTE_CHARS)
}

fn shortened(value: &str, limit: usize) -> String {
    match value.char_indices().nth(limit) {
        None => value.to_string(),
        Some((cut, _)) => format!("{}…", &value[..cut]),
    }
}

impl From<Problem> for tonic::Status {
    fn from(problem: Problem) -> Self {
        // Every part is bounded here, at the one way out, whatever a service put in it.
        let problem = Problem {
            message: shortened(&problem.message, PART_CHARS),
            message_zh: shortened(&problem.message_zh, PART_CHARS),
            violations: problem
                .violations
                .into_iter()
                .map(|v| FieldViolation {
                    field: shortened(&v.field, QUOTE_CHARS * 2),
                    description: shortened(&v.description, PART_CHARS),
                })
                .collect(),
            metadata: problem
                .metadata
                .into_iter()
                .map(|(key, value)| (key, shortened(&value, PART_CHARS)))
                .collect(),
            ..problem
        };
        let mut metadata: HashMap<String, String> = problem.metadata.into_iter().collect();
        let mut details = ErrorDetails::new();
        // What the client quotes to an operator, who finds the call's log lines, spans and
        // audit rows under it: the call's trace id (every served call has one). Outside a call
        // an INTERNAL error still gets an id, logged here.
        let id = crate::telemetry::current_trace_id().or_else(|| {
            (problem.code == Code::Internal).then(|| {
                let id = format!("{:032x}", rand::random::<u128>());
                tracing::error!(trace_id = %id, message = %problem.message, "internal error answered to the client");
                id
            })
        });
        if let Some(id) = id {
            metadata.insert("trace_id".into(), id.clone());
            details.set_request_info(id, "");
        }
        if let Some(delay) = retry_after(problem.reason) {
            details.set_retry_info(Some(delay));
        }
        details.set_error_info(problem.reason.code(), ERROR_DOMAIN, metadata);
        for violation in problem.violations {
            details.add_bad_request_violation(violation.field, violation.description);
        }
        details.set_localized_message(CLERK_LOCALE, problem.message_zh);
        tonic::Status::with_error_details(problem.code, problem.message, details)
    }
}

/// How long a client should wait before trying again, for the refusals that pass by
/// themselves (`google.rpc.RetryInfo`); clients that honour it spread their retries instead of
/// hammering a database on its way back.
fn retry_after(reason: ErrorReason) -> Option<std::time::Duration> {
    match reason {
        ErrorReason::DatabaseUnavailable | ErrorReason::PeerUnavailable | ErrorReason::ShuttingDown => {
            Some(std::time::Duration::from_secs(1))
        }
        // The per-minute allowance refills continuously; a few seconds buys a few lookups.
        ErrorReason::RateLimited => Some(std::time::Duration::from_secs(5)),
        _ => None,
    }
}

/// Reads the bangfu reason back out of a status (for clients and tests).
pub fn reason_of(status: &tonic::Status) -> Option<String> {
    status
        .get_error_details()
        .error_info()
        .filter(|info| info.domain == ERROR_DOMAIN)
        .map(|info| info.reason.clone())
}

/// The metadata of a bangfu status's ErrorInfo ("resource", "gap_fen"…); empty when none.
pub fn metadata_of(status: &tonic::Status) -> std::collections::HashMap<String, String> {
    status
        .get_error_details()
        .error_info()
        .filter(|info| info.domain == ERROR_DOMAIN)
        .map(|info| info.metadata.clone())
        .unwrap_or_default()
}

/// A status as one line for a person at a terminal: reason, message, field problems and the
/// clerk's message.
/// What a refusal carries beyond its code, for a client that reports it as data (the CLI's
/// `--json` errors): the reason code, the first field named, the clerk's message (the
/// localized one when sent) and the trace id of an internal error.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct RefusalParts {
    pub reason: String,
    pub field: String,
    pub message: String,
    pub trace_id: String,
}

pub fn refusal_parts(status: &tonic::Status) -> RefusalParts {
    let details = status.get_error_details();
    let info = details.error_info();
    RefusalParts {
        reason: info.map(|i| i.reason.clone()).unwrap_or_default(),
        field: details
            .bad_request()
            .and_then(|bad| bad.field_violations.first())
            .map(|v| v.field.clone())
            .unwrap_or_default(),
        message: details
            .localized_message()
            .map_or_else(|| status.message().to_string(), |l| l.message.clone()),
        trace_id: info
            .and_then(|i| i.metadata.get("trace_id").cloned())
            .unwrap_or_default(),
    }
}

pub fn describe_status(status: &tonic::Status) -> String {
    let details = status.get_error_details();
    let mut text = match details.error_info() {
        Some(info) => format!("{} ({:?}): {}", info.reason, status.code(), status.message()),
        None => format!("{:?}: {}", status.code(), status.message()),
    };
    if let Some(bad) = details.bad_request() {
        for violation in &bad.field_violations {
            text.push_str(&format!("\n  field {}: {}", violation.field, violation.description));
        }
    }
    if let Some(localized) = details.localized_message() {
        text.push_str(&format!("\n  {}", localized.message));
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_status_carries_reason_field_and_clerk_message() {
        let problem = Problem::invalid_field(
            ErrorReason::CitizenIdInvalid,
            "person.citizen_id",
            "check character does not match",
            "身份证号码校验位不正确",
        );
        let status = tonic::Status::from(problem);
        assert_eq!(status.code(), Code::InvalidArgument);
        let details = status.get_error_details();
        let info = details.error_info().expect("error info");
        assert_eq!(info.reason, "CITIZEN_ID_INVALID");
        assert_eq!(info.domain, "bangfu");
        let bad = details.bad_request().expect("bad request");
        assert_eq!(bad.field_violations[0].field, "person.citizen_id");
        let localized = details.localized_message().expect("localized");
        assert_eq!(localized.locale, "zh-CN");
        assert_eq!(localized.message, "身份证号码校验位不正确");
    }

    #[test]
    fn an_internal_error_tells_the_client_the_id_to_quote() {
        let status = tonic::Status::from(Problem::internal());
        let details = status.get_error_details();
        let quoted = details.request_info().expect("request info").request_id.clone();
        assert_eq!(quoted.len(), 32, "{quoted}");
        let info = details.error_info().expect("error info");
        assert_eq!(info.metadata.get("trace_id"), Some(&quoted));
        // Outside a call only an INTERNAL error needs an id of its own.
        let other = tonic::Status::from(Problem::not_found("persons/1"));
        assert!(other.get_error_details().request_info().is_none());
    }

    #[test]
    fn a_long_rejected_value_is_quoted_short_and_the_status_stays_small() {
        let huge = "3".repeat(10_000);
        assert_eq!(quoted(&huge).chars().count(), QUOTE_CHARS + 1);
        assert!(quoted(&huge).ends_with('…'));
        assert_eq!(quoted("370402"), "370402");
        let problem = Problem::invalid_field(
            ErrorReason::FieldInvalid,
            "person.registered_region.code",
            format!("{huge} is not a region code"),
            format!("{huge} 不是行政区划代码"),
        )
        .with_metadata("value", huge.clone());
        let status = tonic::Status::from(problem);
        assert!(status.message().len() < 1_000, "{}", status.message().len());
        assert!(
            status.details().len() < 4_000,
            "details of {} bytes",
            status.details().len()
        );
    }

    #[test]
    fn reason_codes_drop_the_enum_prefix() {
        assert_eq!(ErrorReason::TokenExpired.code(), "TOKEN_EXPIRED");
        assert_eq!(
            ErrorReason::PersonExistsOutsideScope.code(),
            "PERSON_EXISTS_OUTSIDE_SCOPE"
        );
    }
}
