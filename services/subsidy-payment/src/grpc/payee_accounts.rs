//! RegisterPayeeAccounts: a bank's or a county's account list, rows in (the client decodes the
//! file, GBK or UTF-8), one answer per message back, in order. The first message names the
//! list; later ones carry rows only. A row refused is reported with the reason; the others are
//! stored. Rows are idempotent by content, so a list sent again after a crash writes nothing
//! twice.

use std::sync::Arc;

use bangfu_platform::auth::Principal;
use bangfu_platform::error::{ErrorReason, Problem};
use bangfu_platform::peers::CallContext;
use bangfu_platform::server::Shutdown;
use bangfu_platform::streams;
use bangfu_proto::subsidy::v1 as pb;
use tonic::Streaming;

use super::submit_claims::line_error;
use super::{BoxStream, wire};
use crate::app::{AccountList, Subsidy};

/// Rows one message may carry.
const ROWS_PER_MESSAGE: usize = 1000;

pub(super) fn start(
    subsidy: Arc<Subsidy>,
    caller: Arc<Principal>,
    call: CallContext,
    inbound: Streaming<pb::RegisterPayeeAccountsRequest>,
    shutdown: Shutdown,
) -> BoxStream<pb::RegisterPayeeAccountsResponse> {
    let mut list: Option<AccountList> = None;
    streams::answer_each(inbound, shutdown, move |request: pb::RegisterPayeeAccountsRequest| {
        let (subsidy, caller, call) = (subsidy.clone(), caller.clone(), call.clone());
        let named = match list.as_ref() {
            Some(list) => Ok(list.clone()),
            None => list_of(&request).inspect(|named| list = Some(named.clone())),
        };
        async move { answer(&subsidy, &caller, &call, named?, request).await }
    })
}

/// The list as the first message names it.
fn list_of(first: &pb::RegisterPayeeAccountsRequest) -> Result<AccountList, Problem> {
    let source_document = first.source_document.trim().to_string();
    if source_document.is_empty() || source_document.chars().count() > 200 {
        return Err(Problem::invalid_field(
            ErrorReason::FieldRequired,
            "source_document",
            "the first message names the list's origin (the letter, the file), 1 to 200 characters",
            "第一条消息须注明账户名单来源（来函或文件名），1至200个字符",
        ));
    }
    let organization_region = first.organization_region.trim().to_string();
    let county = organization_region.len() == 6 && organization_region.bytes().all(|b| b.is_ascii_digit());
    if !organization_region.is_empty() && !county {
        return Err(Problem::invalid_field(
            ErrorReason::RegionUnknown,
            "organization_region",
            "a county code has 6 digits",
            "单位所在区县代码应为6位数字",
        ));
    }
    Ok(AccountList {
        source_document,
        verification_document: first.verification_document.trim().to_string(),
        organization_region,
    })
}

async fn answer(
    subsidy: &Subsidy,
    caller: &Principal,
    call: &CallContext,
    list: AccountList,
    request: pb::RegisterPayeeAccountsRequest,
) -> Result<pb::RegisterPayeeAccountsResponse, Problem> {
    if request.rows.len() > ROWS_PER_MESSAGE {
        return Err(Problem::invalid_field(
            ErrorReason::FieldInvalid,
            "rows",
            format!("at most {ROWS_PER_MESSAGE} rows per message"),
            format!("每条消息最多{ROWS_PER_MESSAGE}行"),
        ));
    }
    let numbers: Vec<i64> = request.rows.iter().map(|row| row.row_number).collect();
    let rows = request.rows.iter().map(wire::account_row).collect();
    let results = subsidy.register_payee_accounts(caller, call, &list, rows).await?;
    Ok(pb::RegisterPayeeAccountsResponse {
        results: numbers
            .into_iter()
            .zip(results)
            .map(|(row_number, result)| match result {
                Ok(registered) => pb::PayeeAccountRowResult {
                    row_number,
                    outcome: if registered.created {
                        pb::PayeeAccountRowOutcome::Created
                    } else {
                        pb::PayeeAccountRowOutcome::Unchanged
                    } as i32,
                    payee_account: registered.account.name(),
                    verification_state: wire::verification_state_to_wire(registered.account.verification_state) as i32,
                    error: None,
                },
                Err(problem) => pb::PayeeAccountRowResult {
                    row_number,
                    outcome: pb::PayeeAccountRowOutcome::Rejected as i32,
                    error: Some(line_error(&problem)),
                    ..Default::default()
                },
            })
            .collect(),
    })
}
