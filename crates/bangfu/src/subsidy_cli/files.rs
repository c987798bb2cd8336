//! The commands that move files: a bank's or a county's account list in, the disbursement
//! file out, the bank's result file in. Long streams show progress on a terminal; the summary
//! goes to standard output (JSON lines with `--json`).

use std::io::Write;
use std::path::PathBuf;

use bangfu_proto::common::v1 as common;
use bangfu_proto::subsidy::v1 as pb;
use clap::Args;
use sha2::{Digest, Sha256};

use super::{batch_name, connect};
use crate::Failure;
use crate::client::{ClientArgs, call, call_failed};
use crate::format::{enum_value, yuan_text};
use crate::identity_import::{progress_bar, sniff};
use crate::print::{Columns, json, record, reflect, table};

pub(super) const ACCOUNT_ROW: Columns = Columns {
    message: "bangfu.subsidy.v1.PayeeAccountRowResult",
    columns: &[
        ("row", "row_number"),
        ("outcome", "outcome"),
        ("check", "verification_state"),
        ("reason", "error.reason"),
        ("field", "error.field"),
        ("message", "error.message"),
    ],
};

pub(super) const BANK_LINE: Columns = Columns {
    message: "bangfu.subsidy.v1.BankLineResult",
    columns: &[
        ("file line", "file_line_number"),
        ("outcome", "outcome"),
        ("payment line", "payment_line"),
        ("failure", "failure_reason"),
        ("issue", "issue.kind"),
        ("detail", "issue.message"),
    ],
};

/// Rows per message of an account list: the server's limit.
const ROWS_PER_MESSAGE: usize = 1000;

/// Bytes per message of a result file.
const CHUNK_BYTES: usize = 256 * 1024;

#[derive(Debug, Args)]
pub struct AccountsImportArgs {
    #[command(flatten)]
    client: ClientArgs,
    /// The list: CSV with a header row naming 姓名, 身份证号 (or 统一社会信用代码), 账号,
    /// 开户银行, and optionally 联行号 and 账户类型 (社保卡 / 银行账户); English column names
    /// (holder_name, citizen_id, credit_code, account_number, bank_name, bank_code, kind) too.
    file: PathBuf,
    /// The list's origin (the bank's or the county's letter); default the file's name.
    #[arg(long)]
    source_document: Option<String>,
    /// For organizations' rows: the registration document checked.
    #[arg(long, default_value = "")]
    verification_document: String,
    /// For organizations' rows: the county (6 digits) they are registered in.
    #[arg(long, default_value = "")]
    organization_region: String,
    /// The kind of rows without a 账户类型 column: social-security-card or bank-account.
    #[arg(long, default_value = "social-security-card")]
    kind: String,
}

/// Which row field a column fills.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Column {
    HolderName,
    CitizenId,
    CreditCode,
    AccountNumber,
    BankName,
    BankCode,
    Kind,
}

fn column(header: &str) -> Option<Column> {
    let name = header.trim().trim_start_matches('\u{feff}');
    Some(match name {
        "姓名" | "户名" | "持卡人姓名" | "holder_name" => Column::HolderName,
        "身份证号" | "公民身份号码" | "证件号码" | "身份证号码" | "citizen_id" => Column::CitizenId,
        "统一社会信用代码" | "credit_code" => Column::CreditCode,
        "账号" | "卡号" | "银行账号" | "社保卡号" | "account_number" => Column::AccountNumber,
        "开户银行" | "开户行" | "bank_name" => Column::BankName,
        "联行号" | "bank_code" => Column::BankCode,
        "账户类型" | "kind" => Column::Kind,
        _ => return None,
    })
}

/// The account kind a cell names; `None` when it names none.
fn kind_of(text: &str, default: i32) -> Option<i32> {
    match text.trim() {
        "" => Some(default),
        "社保卡" | "社会保障卡" | "social_security_card" | "social-security-card" => {
            Some(pb::PayeeAccountKind::SocialSecurityCard as i32)
        }
        "银行账户" | "银行卡" | "bank_account" | "bank-account" => {
            Some(pb::PayeeAccountKind::BankAccount as i32)
        }
        _ => None,
    }
}

/// The list's rows, numbered as in the file (the header is row 1).
fn read_rows(args: &AccountsImportArgs, default_kind: i32) -> Result<Vec<pb::PayeeAccountRow>, Failure> {
    let bytes =
        std::fs::read(&args.file).map_err(|e| Failure::usage(format!("cannot read {}: {e}", args.file.display())))?;
    let encoding = sniff(&args.file)?;
    let (text, _, malformed) = encoding.decode(&bytes);
    if malformed {
        return Err(Failure::usage(format!(
            "{} is neither UTF-8 nor GBK/GB18030 throughout",
            args.file.display()
        )));
    }
    let mut reader = csv::ReaderBuilder::new().flexible(true).from_reader(text.as_bytes());
    let headers = reader
        .headers()
        .map_err(|e| Failure::usage(format!("{}: the header row: {e}", args.file.display())))?
        .clone();
    let columns: Vec<Option<Column>> = headers.iter().map(column).collect();
    for needed in [Column::HolderName, Column::AccountNumber, Column::BankName] {
        if !columns.contains(&Some(needed)) {
            return Err(Failure::usage(format!(
                "{}: no column for {needed:?} (header: {})",
                args.file.display(),
                headers.iter().collect::<Vec<_>>().join(",")
            )));
        }
    }
    if !columns.contains(&Some(Column::CitizenId)) && !columns.contains(&Some(Column::CreditCode)) {
        return Err(Failure::usage(format!(
            "{}: no 身份证号 or 统一社会信用代码 column",
            args.file.display()
        )));
    }
    let mut rows = Vec::new();
    for (index, record) in reader.records().enumerate() {
        let row_number = i64::try_from(index).unwrap_or(i64::MAX).saturating_add(2);
        let record = record.map_err(|e| Failure::usage(format!("{} row {row_number}: {e}", args.file.display())))?;
        let mut row = pb::PayeeAccountRow {
            row_number,
            kind: default_kind,
            ..Default::default()
        };
        for (cell, column) in record.iter().zip(&columns) {
            let cell = cell.trim().to_string();
            match column {
                Some(Column::HolderName) => row.holder_name = cell,
                Some(Column::CitizenId) => row.holder_citizen_id = cell,
                Some(Column::CreditCode) => row.credit_code = cell,
                Some(Column::AccountNumber) => row.account_number = cell.replace([' ', '-'], ""),
                Some(Column::BankName) => row.bank_name = cell,
                Some(Column::BankCode) => row.bank_code = cell,
                Some(Column::Kind) => {
                    // An unknown kind is sent as unspecified: the server refuses the row, naming it.
                    row.kind = kind_of(&cell, default_kind).unwrap_or(0);
                }
                None => {}
            }
        }
        rows.push(row);
    }
    Ok(rows)
}

pub async fn import_accounts(args: AccountsImportArgs) -> Result<(), Failure> {
    let default_kind = enum_value::<pb::PayeeAccountKind>("--kind", &args.kind)?;
    let rows = read_rows(&args, default_kind)?;
    let source_document = args.source_document.clone().unwrap_or_else(|| {
        args.file
            .file_name()
            .map_or_else(|| args.file.display().to_string(), |n| n.to_string_lossy().into_owned())
    });
    let total = rows.len();
    let mut messages: Vec<pb::RegisterPayeeAccountsRequest> = rows
        .chunks(ROWS_PER_MESSAGE)
        .map(|chunk| pb::RegisterPayeeAccountsRequest {
            rows: chunk.to_vec(),
            ..Default::default()
        })
        .collect();
    if messages.is_empty() {
        messages.push(pb::RegisterPayeeAccountsRequest::default());
    }
    messages[0].source_document = source_document;
    messages[0].verification_document = args.verification_document.clone();
    messages[0].organization_region = args.organization_region.clone();
    let mut subsidy = connect(&args.client).await?;
    let bar = progress_bar(u64::try_from(total).unwrap_or(u64::MAX));
    let mut answers = call(subsidy.register_payee_accounts(tokio_stream::iter(messages))).await?;
    let (mut created, mut mismatched, mut unchanged) = (0usize, 0usize, 0usize);
    let mut refused = Vec::new();
    loop {
        let answer = match answers.message().await {
            Ok(Some(answer)) => answer,
            Ok(None) => break,
            Err(status) => {
                bar.finish_and_clear();
                return Err(call_failed(&status));
            }
        };
        bar.inc(u64::try_from(answer.results.len()).unwrap_or(0));
        for result in answer.results {
            match pb::PayeeAccountRowOutcome::try_from(result.outcome) {
                Ok(pb::PayeeAccountRowOutcome::Created)
                    if result.verification_state == pb::PayeeAccountVerificationState::Verified as i32 =>
                {
                    created += 1;
                }
                Ok(pb::PayeeAccountRowOutcome::Created) => {
                    mismatched += 1;
                    refused.push(result);
                }
                Ok(pb::PayeeAccountRowOutcome::Unchanged) => unchanged += 1,
                _ => refused.push(result),
            }
        }
    }
    bar.finish_and_clear();
    let shown = ACCOUNT_ROW.rows(&refused)?;
    if args.client.json {
        say!(
            "{:#}",
            serde_json::json!({
                "rows": total,
                "createdVerified": created,
                "createdNotVerified": mismatched,
                "unchanged": unchanged,
                "refused": refused.len() - mismatched,
                "results": shown.iter().map(json).collect::<Vec<_>>(),
            })
        );
    } else {
        say!(
            "{total} rows: {created} registered and verified, {mismatched} registered but not verified \
             (name does not match identity), {unchanged} already registered, {} refused",
            refused.len() - mismatched
        );
        if !shown.is_empty() {
            table(&shown, ACCOUNT_ROW.columns, crate::print::Output::Text)?;
        }
    }
    Ok(())
}

#[derive(Debug, Args)]
pub struct ExportArgs {
    #[command(flatten)]
    client: ClientArgs,
    /// The approved batch's id or name.
    batch: String,
    /// Where to write the file (default: the name the server gives it, here).
    #[arg(long)]
    out: Option<PathBuf>,
    /// The file's encoding: gbk (what most 一卡通 systems read) or utf-8.
    #[arg(long, default_value = "gbk")]
    encoding: String,
    /// The payment order or letter this export is for (recorded in the audit log).
    #[arg(long)]
    reference: String,
}

/// An `--encoding` flag, spelled as `identity import` takes it: gbk (or gb18030) or utf-8.
fn file_encoding(text: &str) -> Result<pb::FileEncoding, Failure> {
    match crate::identity_import::parse_encoding(text).map_err(|e| Failure::usage(format!("--encoding {e}")))? {
        crate::identity_import::InputEncoding::Gb18030 => Ok(pb::FileEncoding::Gbk),
        crate::identity_import::InputEncoding::Utf8 => Ok(pb::FileEncoding::Utf8),
    }
}

pub async fn export(args: ExportArgs) -> Result<(), Failure> {
    let encoding = file_encoding(&args.encoding)?;
    let mut subsidy = connect(&args.client).await?;
    let mut stream = call(subsidy.export_payment_batch(pb::ExportPaymentBatchRequest {
        name: batch_name(&args.batch),
        format: pb::DisbursementFileFormat::Csv as i32,
        encoding: encoding as i32,
        purpose: Some(common::AccessPurpose {
            code: common::AccessPurposeCode::Payment as i32,
            reference: args.reference.clone(),
        }),
    }))
    .await?;
    // Written beside its final name and renamed only once the trailer checks out, so a file
    // cut short never looks like a finished one.
    let mut file: Option<(PathBuf, PathBuf, std::fs::File)> = None;
    let mut hasher = Sha256::new();
    let mut size = 0i64;
    let bar = progress_bar(0);
    let mut trailer = None;
    while let Some(message) = stream.message().await.map_err(|status| call_failed(&status))? {
        match message.item {
            Some(pb::export_payment_batch_response::Item::Header(header)) => {
                let path = args.out.clone().unwrap_or_else(|| PathBuf::from(&header.file_name));
                let partial = path.with_extension("partial");
                let created = std::fs::File::create(&partial)
                    .map_err(|e| Failure::failed(format!("cannot write {}: {e}", partial.display())))?;
                file = Some((path, partial, created));
            }
            Some(pb::export_payment_batch_response::Item::Chunk(bytes)) => {
                let (_, partial, out) = file
                    .as_mut()
                    .ok_or_else(|| Failure::failed("the server sent file bytes before the header"))?;
                out.write_all(&bytes)
                    .map_err(|e| Failure::failed(format!("cannot write {}: {e}", partial.display())))?;
                hasher.update(&bytes);
                size += i64::try_from(bytes.len()).unwrap_or(i64::MAX);
                bar.inc(u64::try_from(bytes.len()).unwrap_or(0));
            }
            Some(pb::export_payment_batch_response::Item::Trailer(last)) => trailer = Some(last),
            None => {}
        }
    }
    bar.finish_and_clear();
    let (path, partial, out) = file.ok_or_else(|| Failure::failed("the server sent no file"))?;
    let trailer = trailer.ok_or_else(|| {
        Failure::failed(format!(
            "the export ended before its trailer; {} is incomplete: export again",
            partial.display()
        ))
    })?;
    out.sync_all()
        .map_err(|e| Failure::failed(format!("cannot write {}: {e}", partial.display())))?;
    let digest: String = hasher.finalize().iter().map(|b| format!("{b:02x}")).collect();
    if digest != trailer.file_sha256 || size != trailer.file_size {
        return Err(Failure::failed(format!(
            "{} does not match what the server sent ({size} bytes, sha256 {digest}; the server says {} bytes, \
             sha256 {}): export again",
            partial.display(),
            trailer.file_size,
            trailer.file_sha256
        )));
    }
    std::fs::rename(&partial, &path)
        .map_err(|e| Failure::failed(format!("cannot move {} to {}: {e}", partial.display(), path.display())))?;
    let amount = trailer.total_amount.map_or(0, |m| m.fen);
    if args.client.json {
        say!(
            "{}",
            serde_json::json!({
                "file": path.display().to_string(),
                "lines": trailer.line_count,
                "totalFen": amount,
                "bytes": size,
                "sha256": digest,
            })
        );
    } else {
        say!(
            "{}: {} lines, {} 元, {size} bytes, sha256 {digest}",
            path.display(),
            trailer.line_count,
            yuan_text(amount)
        );
    }
    Ok(())
}

#[derive(Debug, Args)]
pub struct ImportResultsArgs {
    #[command(flatten)]
    client: ClientArgs,
    /// The batch's id or name.
    batch: String,
    /// The bank's result file (the CSV layout the export describes).
    file: PathBuf,
    /// The bank that paid.
    #[arg(long)]
    bank_name: String,
    /// The file's encoding: gbk or utf-8 (default: read from the file).
    #[arg(long)]
    encoding: Option<String>,
}

pub async fn import_results(args: ImportResultsArgs) -> Result<(), Failure> {
    let encoding = match args.encoding.as_deref() {
        Some(text) => file_encoding(text)?,
        None if sniff(&args.file)? == encoding_rs::UTF_8 => pb::FileEncoding::Utf8,
        None => pb::FileEncoding::Gbk,
    };
    let bytes =
        std::fs::read(&args.file).map_err(|e| Failure::usage(format!("cannot read {}: {e}", args.file.display())))?;
    let file_name = args
        .file
        .file_name()
        .map_or_else(|| args.file.display().to_string(), |n| n.to_string_lossy().into_owned());
    let mut messages = vec![pb::ImportBankResultsRequest {
        item: Some(pb::import_bank_results_request::Item::Header(pb::BankResultsHeader {
            payment_batch: batch_name(&args.batch),
            format: pb::BankResultFileFormat::Csv as i32,
            encoding: encoding as i32,
            file_name,
            bank_name: args.bank_name.clone(),
            request_id: String::new(),
        })),
    }];
    messages.extend(bytes.chunks(CHUNK_BYTES).map(|chunk| pb::ImportBankResultsRequest {
        item: Some(pb::import_bank_results_request::Item::Chunk(chunk.to_vec())),
    }));
    let mut subsidy = connect(&args.client).await?;
    let mut answers = call(subsidy.import_bank_results(tokio_stream::iter(messages))).await?;
    let mut noted = Vec::new();
    let mut report = None;
    while let Some(answer) = answers.message().await.map_err(|status| call_failed(&status))? {
        match answer.item {
            Some(pb::import_bank_results_response::Item::LineResults(results)) => {
                // Paid and unchanged lines are the report's totals; a failed line or an issue
                // is what the clerk acts on.
                noted.extend(results.results.into_iter().filter(|r| {
                    r.outcome == pb::BankLineOutcome::Failed as i32 || r.outcome == pb::BankLineOutcome::Issue as i32
                }));
            }
            Some(pb::import_bank_results_response::Item::Report(last)) => report = Some(last),
            None => {}
        }
    }
    let report = report.ok_or_else(|| Failure::failed("the import ended without its reconciliation report"))?;
    let shown = BANK_LINE.rows(&noted)?;
    let reconciliation = reflect("bangfu.subsidy.v1.ReconciliationReport", &report)?;
    if args.client.output().is_json() {
        say!(
            "{:#}",
            serde_json::json!({
                "report": json(&reconciliation),
                "issues": shown.iter().map(json).collect::<Vec<_>>(),
            })
        );
    } else {
        record(&reconciliation, false);
        if !shown.is_empty() {
            say!("");
            table(&shown, BANK_LINE.columns, crate::print::Output::Text)?;
        }
    }
    if report.balanced {
        Ok(())
    } else {
        Err(Failure::failed(
            "the results do not reconcile with the batch: see the issues above and settle them with the bank",
        ))
    }
}
