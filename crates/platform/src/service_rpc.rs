//! The methods every service exposes in its own service with the common messages —
//! `ListParameters`, `UpdateParameter`, `ListAuditEvents` — written once: each service's `grpc`
//! module unpacks its request, calls these, and packs the response.

use bangfu_proto::common::v1 as pb;
use time::OffsetDateTime;

use crate::audit::{self, AuditQuery};
use crate::auth::{Principal, RegionScope};
use crate::db::Database;
use crate::error::Problem;
use crate::paging;
use crate::parameters::{ParameterChange, Parameters};
use crate::wire;

/// One page of parameter rows and the token of the next.
pub async fn list_parameters(
    parameters: &Parameters,
    filter: Option<&pb::ParameterFilter>,
    page_size: i32,
    page_token: &str,
) -> Result<(Vec<pb::Parameter>, String), Problem> {
    let query = wire::parameter_query(filter)?;
    let size = paging::page_size(page_size, 100, 1000)?;
    let date = query
        .effective_date
        .map(crate::parameters::date_text)
        .unwrap_or_default();
    let fingerprint = paging::fingerprint(&[
        query.key.as_deref().unwrap_or(""),
        query.region_code.as_deref().unwrap_or(""),
        &date,
    ]);
    let cursor = paging::decode_token(page_token, &fingerprint)?;
    let mut rows = parameters.list(&query, cursor.as_deref(), size + 1).await?;
    let next = if rows.len() > size as usize {
        rows.truncate(size as usize);
        rows.last()
            .map(|row| paging::encode_token(&fingerprint, &Parameters::cursor_of(row)))
            .unwrap_or_default()
    } else {
        String::new()
    };
    Ok((rows.iter().map(wire::parameter_to_wire).collect(), next))
}

/// Creates or changes one parameter row for `caller`.
pub async fn update_parameter(
    parameters: &Parameters,
    caller: &Principal,
    method: &str,
    parameter: Option<&pb::Parameter>,
    update_mask: Option<&prost_types::FieldMask>,
    allow_missing: bool,
    now: OffsetDateTime,
) -> Result<pb::Parameter, Problem> {
    let parameter = parameter.ok_or_else(|| Problem::required("parameter", "参数"))?;
    let change = ParameterChange {
        key: parameter.key.trim().to_string(),
        region_prefix: parameter.region_prefix.trim().to_string(),
        valid_from: wire::date("parameter.valid_from", parameter.valid_from.as_ref())?,
        valid_to: wire::optional_date("parameter.valid_to", parameter.valid_to.as_ref())?,
        value: parameter.value,
        source_document: parameter.source_document.trim().to_string(),
        update_mask: update_mask.map(|mask| mask.paths.clone()).unwrap_or_default(),
        allow_missing,
        etag: parameter.etag.clone(),
    };
    let row = parameters.update(caller, method, &change, now).await?;
    Ok(wire::parameter_to_wire(&row))
}

/// One page of the audit events in `caller`'s region scope, and the token of the next.
pub async fn list_audit_events(
    db: &Database,
    caller: &Principal,
    filter: Option<&pb::AuditEventFilter>,
    page_size: i32,
    page_token: &str,
) -> Result<(Vec<pb::AuditEvent>, String), Problem> {
    let mut query: AuditQuery = wire::audit_query(filter)?;
    query.region_prefix = match &caller.scope {
        RegionScope::Country => String::new(),
        RegionScope::Prefix(prefix) => prefix.clone(),
        RegionScope::Nothing => return Ok((Vec::new(), String::new())),
    };
    let size = paging::page_size(page_size, 100, 1000)?;
    let fingerprint = paging::fingerprint(&[
        &query
            .start
            .map(|t| t.unix_timestamp_nanos().to_string())
            .unwrap_or_default(),
        &query
            .end
            .map(|t| t.unix_timestamp_nanos().to_string())
            .unwrap_or_default(),
        query.subject.as_deref().unwrap_or(""),
        query.resource.as_deref().unwrap_or(""),
        query.outcome.map(audit::Outcome::as_str).unwrap_or(""),
        &query.region_prefix,
    ]);
    query.after_sequence = match paging::decode_token(page_token, &fingerprint)? {
        Some(cursor) => cursor.first().and_then(|s| s.parse().ok()).unwrap_or(0),
        None => 0,
    };
    query.limit = size + 1;
    let mut events = audit::list(db, &query).await?;
    let next = if events.len() > size as usize {
        events.truncate(size as usize);
        events
            .last()
            .map(|event| paging::encode_token(&fingerprint, &[event.sequence.to_string()]))
            .unwrap_or_default()
    } else {
        String::new()
    };
    Ok((events.iter().map(wire::audit_event_to_wire).collect(), next))
}
