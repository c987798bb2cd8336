//! Money leaving and the bank's answer: the disbursement file of an approved batch (in clear,
//! permission-gated, audited with its purpose) and the bank's result file, reconciled line by
//! line. Every mismatch (a line the batch does not have, another batch's line, an amount that
//! differs, a line twice, a result contradicting an earlier one) is reported and not applied;
//! what reconciles is applied in one transaction with one ledger entry per kind and file.

use std::collections::{HashMap, HashSet};

use bangfu_platform::audit::AuditEntry;
use bangfu_platform::auth::Principal;
use bangfu_platform::error::{ErrorReason, Problem};
use bangfu_platform::wire::StatedPurpose;
use bangfu_platform::write;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use tonic::Code;

use super::Subsidy;
use super::batches::{PolicyTitles, period_label, state, wrong_state};
use super::feed::{ClaimChangeKind, publish_claims_dated};
use super::funds::account;
use super::payees::aad;
use crate::domain::files::{
    BankLine, BankOutcome, BankResultFormat, CsvLayout, DisbursementFormat, DisbursementLine, Encoding, csv_rows,
};
use crate::domain::{Payee, day_text};
use crate::store::{self, StoredBatch};

/// Lines per chunk of an export.
pub const EXPORT_LINES_PER_CHUNK: i64 = 1000;

/// A batch's reconciliation after a result file.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Reconciliation {
    pub file_sha256: String,
    pub control_count: i64,
    pub control_amount: i64,
    pub paid_count: i64,
    pub paid_amount: i64,
    pub failed_count: i64,
    pub failed_amount: i64,
    pub pending_count: i64,
    pub pending_amount: i64,
    pub issue_count: i64,
    pub balanced: bool,
    pub report_us: i64,
}

/// Why a result-file row was not applied.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum IssueKind {
    UnknownLine,
    AmountDiffers,
    DuplicateLine,
    OtherBatchLine,
    ResultConflict,
}

/// What happened to one row of a result file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RowOutcome {
    Paid,
    Failed,
    /// The same result was recorded before (a re-sent file).
    Unchanged,
    Issue {
        kind: IssueKind,
        batch_amount: Option<i64>,
        message: String,
    },
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RowResult {
    pub file_line_number: i64,
    pub line_id: String,
    pub payment_line: Option<String>,
    pub bank_amount: i64,
    pub outcome: RowOutcome,
    pub failure_reason: String,
}

/// The bank's file as received.
pub struct ResultFile {
    pub file_name: String,
    pub bank_name: String,
    pub encoding: Encoding,
    pub bytes: Vec<u8>,
}

/// What an export needs to stream: the batch and the file's name.
pub struct Export {
    pub batch: StoredBatch,
    pub file_name: String,
    pub export_number: i64,
}

fn file_invalid(message: String, message_zh: String) -> Problem {
    Problem::new(
        Code::InvalidArgument,
        ErrorReason::PaymentFileInvalid,
        message,
        message_zh,
    )
}

impl Subsidy {
    /// Starts an export: the batch must be approved (or exported before); the export is
    /// counted and audited with its purpose before a byte leaves.
    pub async fn begin_export(&self, caller: &Principal, id: &str, purpose: &StatedPurpose) -> Result<Export, Problem> {
        let today = self.today();
        let mut unit = write::begin_unkeyed(self.db(), self.now()).await?;
        let now = unit.now();
        let mut batch = self
            .batch_to_change(unit.tx(), caller, "ExportPaymentBatch", id)
            .await?;
        let from = batch.state.clone();
        if from != state::APPROVED && from != state::EXPORTED {
            return Err(wrong_state(
                &batch,
                today,
                "APPROVED",
                "只有审批通过的批次可以导出发放文件",
            ));
        }
        // Once the bank has answered, a file of the batch again could pay a line twice (a failed
        // line may already be in a new batch): the export is for a file lost before any answer.
        if batch.paid_count + batch.failed_count > 0 {
            return Err(Problem::new(
                Code::FailedPrecondition,
                ErrorReason::StateConflict,
                format!("{} has bank results; it is not exported again", batch.name()),
                "该批次已导入银行结果，不能再次导出发放文件",
            ));
        }
        let read = batch.revision;
        batch.state = state::EXPORTED.into();
        batch.export_count += 1;
        batch.first_export.get_or_insert(now);
        if !store::move_batch(unit.tx(), &batch, &from, read).await? {
            return Err(Problem::etag_mismatch(&batch.name()));
        }
        batch.revision += 1;
        let region = batch.selection.region_prefix.clone();
        let name = batch.name();
        unit.commit(
            AuditEntry::by(caller, &super::method("ExportPaymentBatch"), name, now)
                .in_region(&region)
                .with_purpose(&purpose.code, &purpose.reference),
        )
        .await?;
        let file_name = format!("{}_{}_{}.csv", region, day_text(today).replace('-', ""), batch.id);
        let export_number = batch.export_count;
        Ok(Export {
            batch,
            file_name,
            export_number,
        })
    }

    /// The file's rows after line `after`, up to a chunk, in clear: the header row first when
    /// `after` is 0. Returns the text and the last line number in it (None: no lines left).
    pub async fn export_rows(&self, batch: &StoredBatch, after: i64) -> Result<(String, Option<i64>), Problem> {
        let keys = self.data_keys()?;
        let layout = CsvLayout;
        let mut conn = self.db().acquire().await?;
        let lines = store::list_lines(&mut conn, &batch.id, "", "", after, EXPORT_LINES_PER_CHUNK).await?;
        let mut rows = Vec::with_capacity(lines.len() + 1);
        if after == 0 {
            rows.push(layout.header());
        }
        let mut titles = PolicyTitles::default();
        for line in lines.iter().filter(|l| l.state != "cancelled") {
            let account = store::get_account(&mut conn, &line.account_id)
                .await?
                .ok_or_else(Problem::internal)?;
            let claim = store::get_claim(&mut conn, &line.claim_id)
                .await?
                .ok_or_else(Problem::internal)?;
            let decrypt = |envelope: &[u8], field: &str| {
                keys.decrypt(envelope, &aad(&account.id, field))
                    .ok()
                    .and_then(|bytes| String::from_utf8(bytes).ok())
                    .ok_or_else(|| {
                        tracing::error!(account = %account.name(), field, "a payee account does not decrypt");
                        Problem::internal()
                    })
            };
            let holder_id = match (&account.owner, &account.holder_citizen_id_enc) {
                (Payee::Organization(org), _) => org.credit_code.clone(),
                (Payee::Person(_), Some(envelope)) => decrypt(envelope, "holder_citizen_id")?,
                (Payee::Person(_), None) => return Err(Problem::internal()),
            };
            let subsidy_item = titles.title(&mut conn, &claim.payload.policy_code).await?;
            rows.push(layout.row(&DisbursementLine {
                line_id: format!("{}-{}", batch.id, line.line_number),
                line_number: line.line_number,
                holder_name: decrypt(&account.holder_name_enc, "holder_name")?,
                holder_id,
                account_number: decrypt(&account.account_enc, "account_number")?,
                bank_name: account.bank_name.clone(),
                bank_code: account.bank_code.clone(),
                amount_fen: line.amount,
                subsidy_item,
                period_label: period_label(&claim.payload.period),
            }));
        }
        Ok((csv_rows(&rows), lines.last().map(|l| l.line_number)))
    }

    /// The trailer row with the control totals.
    pub fn export_trailer(&self, batch: &StoredBatch) -> String {
        csv_rows(&[CsvLayout.trailer(batch.control_count, batch.control_amount)])
    }

    /// ImportBankResults: reconciles the bank's file against the batch and applies what
    /// reconciles. The same file again changes nothing and answers its first report.
    pub async fn import_bank_results(
        &self,
        caller: &Principal,
        id: &str,
        file: ResultFile,
    ) -> Result<(Vec<RowResult>, Reconciliation), Problem> {
        let sha256 = Sha256::digest(&file.bytes)
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect::<String>();
        let text = file.encoding.decode(&file.bytes).ok_or_else(|| {
            Problem::new(
                Code::InvalidArgument,
                ErrorReason::EncodingInvalid,
                "the file is not in the encoding named in its header",
                "结果文件的编码与声明的不符（请确认是GBK还是UTF-8）",
            )
        })?;
        let rows = CsvLayout
            .parse(&text)
            .map_err(|e| file_invalid(e.message, e.message_zh))?;
        let today = self.today();
        let mut unit = write::begin_unkeyed(self.db(), self.now()).await?;
        let now = unit.now();
        let mut batch = self.batch_to_change(unit.tx(), caller, "ImportBankResults", id).await?;
        if let Some(report) = store::result_file_report(unit.tx(), id, &sha256).await? {
            return Ok((Vec::new(), report));
        }
        let from = batch.state.clone();
        if from != state::EXPORTED {
            return Err(wrong_state(
                &batch,
                today,
                "EXPORTED",
                "只有已导出的批次可以导入银行结果",
            ));
        }
        let lines = store::list_lines(unit.tx(), id, "", "", 0, i64::MAX).await?;
        let by_number: HashMap<i64, &store::StoredLine> = lines.iter().map(|l| (l.line_number, l)).collect();
        let mut seen = HashSet::new();
        let mut results = Vec::with_capacity(rows.len());
        let (mut paid, mut failed) = ((0i64, 0i64), (0i64, 0i64));
        // The bank's paid date of each claim, for the feed: a submitter's receipt is dated by it.
        let mut paid_dates: HashMap<String, time::Date> = HashMap::new();
        for row in rows {
            let outcome = self
                .reconcile_row(unit.tx(), &batch, &by_number, &mut seen, &row, now)
                .await?;
            if outcome.0 == RowOutcome::Paid
                && let (Some(date), Some(line)) = (
                    row.paid_date,
                    outcome
                        .1
                        .as_ref()
                        .and_then(|line| line.rsplit('/').next()?.parse::<i64>().ok())
                        .and_then(|number| by_number.get(&number)),
                )
            {
                paid_dates.insert(line.claim_id.clone(), date);
            }
            match outcome.0 {
                RowOutcome::Paid => {
                    paid.0 += 1;
                    paid.1 += row.amount_fen;
                }
                RowOutcome::Failed => {
                    failed.0 += 1;
                    failed.1 += row.amount_fen;
                }
                _ => {}
            }
            results.push(RowResult {
                file_line_number: row.file_line_number,
                line_id: row.line_id.clone(),
                payment_line: outcome.1,
                bank_amount: row.amount_fen,
                outcome: outcome.0,
                failure_reason: row.failure_reason.clone(),
            });
        }
        for (kind, state) in [
            (ClaimChangeKind::Paid, "paid"),
            (ClaimChangeKind::PaymentFailed, "failed"),
        ] {
            let ids: Vec<String> = results
                .iter()
                .filter(|r| match state {
                    "paid" => r.outcome == RowOutcome::Paid,
                    _ => r.outcome == RowOutcome::Failed,
                })
                .filter_map(|r| r.payment_line.as_ref())
                .filter_map(|line| line.rsplit('/').next()?.parse::<i64>().ok())
                .filter_map(|number| by_number.get(&number).map(|l| l.claim_id.clone()))
                .collect();
            let claims = store::claims_by_ids(unit.tx(), &ids).await?;
            publish_claims_dated(unit.tx(), kind, &claims, &paid_dates, now).await?;
        }
        let document = format!("{} sha256:{sha256}", file.file_name);
        self.batch_entry(
            unit.tx(),
            &batch,
            "paid",
            (account::PAID, account::PAYABLE),
            paid.1,
            (0, -paid.1, paid.1),
            &document,
            &caller.subject,
        )
        .await?;
        self.batch_entry(
            unit.tx(),
            &batch,
            "payment_failed",
            (account::RESERVED, account::PAYABLE),
            failed.1,
            (failed.1, -failed.1, 0),
            &document,
            &caller.subject,
        )
        .await?;
        batch.paid_count += paid.0;
        batch.paid_amount += paid.1;
        batch.failed_count += failed.0;
        batch.failed_amount += failed.1;
        let pending_count = batch.control_count - batch.paid_count - batch.failed_count;
        let pending_amount = batch.control_amount - batch.paid_amount - batch.failed_amount;
        let issue_count = results
            .iter()
            .filter(|r| matches!(r.outcome, RowOutcome::Issue { .. }))
            .count() as i64;
        let report = Reconciliation {
            file_sha256: sha256.clone(),
            control_count: batch.control_count,
            control_amount: batch.control_amount,
            paid_count: batch.paid_count,
            paid_amount: batch.paid_amount,
            failed_count: batch.failed_count,
            failed_amount: batch.failed_amount,
            pending_count,
            pending_amount,
            issue_count,
            balanced: pending_count == 0 && pending_amount == 0 && issue_count == 0,
            report_us: bangfu_platform::db::to_micros(now),
        };
        let read = batch.revision;
        if pending_count == 0 {
            batch.state = state::RECONCILED.into();
        }
        batch.reconciliation = Some(store::to_json(&report));
        if !store::move_batch(unit.tx(), &batch, &from, read).await? {
            return Err(Problem::etag_mismatch(&batch.name()));
        }
        store::insert_result_file(
            unit.tx(),
            id,
            &sha256,
            &file.file_name,
            &file.bank_name,
            &store::to_json(&report),
            &caller.subject,
            now,
        )
        .await?;
        let region = batch.selection.region_prefix.clone();
        unit.commit(AuditEntry::by(caller, &super::method("ImportBankResults"), batch.name(), now).in_region(&region))
            .await?;
        Ok((results, report))
    }

    /// Checks one row against the batch and applies it when it reconciles.
    async fn reconcile_row(
        &self,
        tx: &mut sqlx::AnyConnection,
        batch: &StoredBatch,
        lines: &HashMap<i64, &store::StoredLine>,
        seen: &mut HashSet<String>,
        row: &BankLine,
        now: time::OffsetDateTime,
    ) -> Result<(RowOutcome, Option<String>), Problem> {
        let issue = |kind, batch_amount, message: String| RowOutcome::Issue {
            kind,
            batch_amount,
            message,
        };
        let Some((batch_part, number)) = row.line_id.rsplit_once('-') else {
            return Ok((
                issue(
                    IssueKind::UnknownLine,
                    None,
                    format!("明细编号 {} 无法识别", row.line_id),
                ),
                None,
            ));
        };
        if batch_part != batch.id {
            let kind = if store::get_batch(tx, batch_part).await?.is_some() {
                IssueKind::OtherBatchLine
            } else {
                IssueKind::UnknownLine
            };
            return Ok((issue(kind, None, format!("明细 {} 不属于本批次", row.line_id)), None));
        }
        let Some(line) = number.parse::<i64>().ok().and_then(|n| lines.get(&n)) else {
            return Ok((
                issue(IssueKind::UnknownLine, None, format!("本批次没有明细 {}", row.line_id)),
                None,
            ));
        };
        let line_name = Some(line.name());
        if !seen.insert(row.line_id.clone()) {
            return Ok((
                issue(
                    IssueKind::DuplicateLine,
                    Some(line.amount),
                    format!("明细 {} 在文件中重复出现", row.line_id),
                ),
                line_name,
            ));
        }
        if row.amount_fen != line.amount {
            return Ok((
                issue(
                    IssueKind::AmountDiffers,
                    Some(line.amount),
                    format!("银行金额与批次金额不符（批次 {} 分）", line.amount),
                ),
                line_name,
            ));
        }
        let recorded = match line.state.as_str() {
            "paid" => Some(BankOutcome::Paid),
            "failed" => Some(BankOutcome::Failed),
            "pending" => None,
            _ => {
                return Ok((
                    issue(IssueKind::ResultConflict, Some(line.amount), "该明细已撤销".into()),
                    line_name,
                ));
            }
        };
        match recorded {
            Some(outcome) if outcome == row.outcome => return Ok((RowOutcome::Unchanged, line_name)),
            Some(_) => {
                return Ok((
                    issue(
                        IssueKind::ResultConflict,
                        Some(line.amount),
                        "与此前导入的结果相反，请与银行核实".into(),
                    ),
                    line_name,
                ));
            }
            None => {}
        }
        let applied = store::settle_line(
            tx,
            line,
            &row.outcome,
            row.paid_date,
            &row.bank_reference,
            &row.failure_reason,
            now,
        )
        .await?;
        if !applied {
            return Err(Problem::etag_mismatch(&batch.name()));
        }
        Ok((
            match row.outcome {
                BankOutcome::Paid => RowOutcome::Paid,
                BankOutcome::Failed => RowOutcome::Failed,
            },
            line_name,
        ))
    }
}
