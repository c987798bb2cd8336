//! The files that travel to and from the bank: the disbursement file for the 一卡通 system and
//! the bank's result file. One layout ships (CSV with a header row and a control-total trailer,
//! GBK or UTF-8); a province's own layout is one more implementation of the two traits.

use super::FieldError;

/// The text encoding of a file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Encoding {
    Utf8,
    Gbk,
}

impl Encoding {
    pub fn encode(self, text: &str) -> Vec<u8> {
        match self {
            Self::Utf8 => text.as_bytes().to_vec(),
            Self::Gbk => encoding_rs::GBK.encode(text).0.into_owned(),
        }
    }

    /// Decodes strictly: a byte sequence the encoding does not define is an error, never a
    /// replacement character in an amount or a name.
    pub fn decode(self, bytes: &[u8]) -> Option<String> {
        match self {
            Self::Utf8 => std::str::from_utf8(bytes.strip_prefix(b"\xef\xbb\xbf").unwrap_or(bytes))
                .ok()
                .map(str::to_string),
            Self::Gbk => encoding_rs::GBK
                .decode_without_bom_handling_and_without_replacement(bytes)
                .map(|text| text.into_owned()),
        }
    }
}

/// One line of a disbursement file, in clear (the export is permission-gated and audited).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DisbursementLine {
    /// The line's id the bank answers with: "{batch}-{line number}".
    pub line_id: String,
    pub line_number: i64,
    pub holder_name: String,
    /// A person's citizen ID, or an organization's credit code.
    pub holder_id: String,
    pub account_number: String,
    pub bank_name: String,
    pub bank_code: String,
    pub amount_fen: i64,
    pub subsidy_item: String,
    pub period_label: String,
}

/// An amount in fen as yuan with two decimals ("1234.50").
pub fn yuan(fen: i64) -> String {
    let sign = if fen < 0 { "-" } else { "" };
    format!("{sign}{}.{:02}", fen.abs() / 100, fen.abs() % 100)
}

/// "1234.5" or "1234.50" yuan as fen; None for anything else (more than two decimals, signs).
pub fn parse_yuan(text: &str) -> Option<i64> {
    let text = text.trim();
    let (whole, fraction) = text.split_once('.').unwrap_or((text, ""));
    if whole.is_empty() || !whole.bytes().all(|b| b.is_ascii_digit()) || fraction.len() > 2 {
        return None;
    }
    if !fraction.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let fen_part: i64 = match fraction.len() {
        0 => 0,
        1 => fraction.parse::<i64>().ok()? * 10,
        _ => fraction.parse().ok()?,
    };
    whole.parse::<i64>().ok()?.checked_mul(100)?.checked_add(fen_part)
}

/// A disbursement file layout.
pub trait DisbursementFormat: Send + Sync {
    /// The header row.
    fn header(&self) -> Vec<String>;
    /// One line's row.
    fn row(&self, line: &DisbursementLine) -> Vec<String>;
    /// The trailer row with the control totals.
    fn trailer(&self, count: i64, amount_fen: i64) -> Vec<String>;
}

/// What the bank said of one line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BankOutcome {
    Paid,
    Failed,
}

/// One row of a bank result file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BankLine {
    /// The row in the file, counting the header as row 1.
    pub file_line_number: i64,
    pub line_id: String,
    pub amount_fen: i64,
    pub outcome: BankOutcome,
    pub paid_date: Option<time::Date>,
    pub bank_reference: String,
    pub failure_reason: String,
}

/// A bank result file layout.
pub trait BankResultFormat: Send + Sync {
    /// Every row, or what makes the file unreadable (a missing column, an amount that is no
    /// amount) with the row it was found in.
    fn parse(&self, text: &str) -> Result<Vec<BankLine>, FieldError>;
}

/// The shipped layout: CSV, a header row, one row per line, a trailer row "合计,<count>,<yuan>".
pub struct CsvLayout;

pub const CSV_HEADER: [&str; 10] = [
    "序号",
    "明细编号",
    "姓名",
    "证件号码",
    "账号",
    "开户银行",
    "联行号",
    "金额（元）",
    "补贴项目",
    "所属期间",
];

impl DisbursementFormat for CsvLayout {
    fn header(&self) -> Vec<String> {
        CSV_HEADER.iter().map(|h| h.to_string()).collect()
    }

    fn row(&self, line: &DisbursementLine) -> Vec<String> {
        vec![
            line.line_number.to_string(),
            line.line_id.clone(),
            line.holder_name.clone(),
            line.holder_id.clone(),
            line.account_number.clone(),
            line.bank_name.clone(),
            line.bank_code.clone(),
            yuan(line.amount_fen),
            line.subsidy_item.clone(),
            line.period_label.clone(),
        ]
    }

    fn trailer(&self, count: i64, amount_fen: i64) -> Vec<String> {
        vec!["合计".into(), count.to_string(), yuan(amount_fen)]
    }
}

/// Columns of the bank's result file the CSV layout reads, by header name.
const RESULT_ID: &str = "明细编号";
const RESULT_AMOUNT: &str = "金额（元）";
const RESULT_OUTCOME: &str = "结果";
const RESULT_DATE: &str = "付款日期";
const RESULT_REFERENCE: &str = "银行流水号";
const RESULT_REASON: &str = "失败原因";

impl BankResultFormat for CsvLayout {
    fn parse(&self, text: &str) -> Result<Vec<BankLine>, FieldError> {
        let mut reader = csv::ReaderBuilder::new().flexible(true).from_reader(text.as_bytes());
        let headers = reader
            .headers()
            .map_err(|e| FieldError::new("file", format!("no header row: {e}"), "结果文件缺少表头行"))?
            .clone();
        let column = |name: &str| headers.iter().position(|h| h.trim() == name);
        let required = |name: &str| {
            column(name).ok_or_else(|| {
                FieldError::new(
                    "file",
                    format!("the header has no column {name}"),
                    format!("结果文件缺少“{name}”列"),
                )
            })
        };
        let (id_at, amount_at, outcome_at) = (
            required(RESULT_ID)?,
            required(RESULT_AMOUNT)?,
            required(RESULT_OUTCOME)?,
        );
        let (date_at, reference_at, reason_at) = (column(RESULT_DATE), column(RESULT_REFERENCE), column(RESULT_REASON));
        let mut lines = Vec::new();
        for (index, record) in reader.records().enumerate() {
            let row = index as i64 + 2;
            let record =
                record.map_err(|e| FieldError::new("file", format!("row {row}: {e}"), format!("第{row}行无法读取")))?;
            let cell = |at: Option<usize>| at.and_then(|i| record.get(i)).map(str::trim).unwrap_or("");
            let id = cell(Some(id_at));
            if id == "合计" || (id.is_empty() && record.iter().all(|c| c.trim().is_empty())) {
                continue;
            }
            let amount_fen = parse_yuan(cell(Some(amount_at))).ok_or_else(|| {
                FieldError::new(
                    "file",
                    format!(
                        "row {row}: the amount {} is not yuan with at most two decimals",
                        cell(Some(amount_at))
                    ),
                    format!("第{row}行金额无效"),
                )
            })?;
            let outcome = match cell(Some(outcome_at)) {
                "成功" | "PAID" | "paid" => BankOutcome::Paid,
                "失败" | "FAILED" | "failed" => BankOutcome::Failed,
                other => {
                    return Err(FieldError::new(
                        "file",
                        format!("row {row}: the result {other} is neither 成功 nor 失败"),
                        format!("第{row}行结果应为“成功”或“失败”"),
                    ));
                }
            };
            let date_text = cell(date_at);
            let paid_date = if date_text.is_empty() {
                None
            } else {
                Some(super::parse_day(date_text).ok_or_else(|| {
                    FieldError::new(
                        "file",
                        format!("row {row}: {date_text} is not YYYY-MM-DD"),
                        format!("第{row}行付款日期无效"),
                    )
                })?)
            };
            lines.push(BankLine {
                file_line_number: row,
                line_id: id.to_string(),
                amount_fen,
                outcome,
                paid_date,
                bank_reference: cell(reference_at).to_string(),
                failure_reason: cell(reason_at).to_string(),
            });
        }
        Ok(lines)
    }
}

/// Writes rows as CSV text (quoting as needed), each ending in CRLF as banks' systems expect.
pub fn csv_rows(rows: &[Vec<String>]) -> String {
    let mut writer = csv::WriterBuilder::new()
        .terminator(csv::Terminator::CRLF)
        .from_writer(Vec::new());
    for row in rows {
        // Writing to memory cannot fail.
        let _ = writer.write_record(row);
    }
    writer
        .into_inner()
        .ok()
        .and_then(|bytes| String::from_utf8(bytes).ok())
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn yuan_round_trips() {
        assert_eq!(yuan(123_450), "1234.50");
        assert_eq!(yuan(5), "0.05");
        assert_eq!(parse_yuan("1234.5"), Some(123_450));
        assert_eq!(parse_yuan("1234.50"), Some(123_450));
        assert_eq!(parse_yuan("1234"), Some(123_400));
        assert_eq!(parse_yuan("12.345"), None);
        assert_eq!(parse_yuan("-1"), None);
        assert_eq!(parse_yuan("1,234.00"), None);
    }

    #[test]
    fn gbk_decodes_strictly() {
        let bytes = Encoding::Gbk.encode("明细编号,金额");
        assert_eq!(Encoding::Gbk.decode(&bytes).as_deref(), Some("明细编号,金额"));
        assert_eq!(Encoding::Utf8.decode(&bytes), None, "GBK bytes are not UTF-8");
        assert_eq!(Encoding::Gbk.decode(&[0x81, 0x20]), None);
    }

    #[test]
    fn a_result_file_needs_its_columns() {
        let missing = CsvLayout
            .parse("明细编号,结果\nb1-1,成功\n")
            .expect_err("no amount column");
        assert!(missing.message_zh.contains("金额"));
        let lines = CsvLayout
            .parse("明细编号,金额（元）,结果,付款日期,银行流水号,失败原因\nb1-1,500.00,成功,2025-06-05,R1,\nb1-2,12.5,失败,,,账户已销户\n合计,2,512.50\n")
            .expect("parsed");
        assert_eq!(lines.len(), 2);
        assert_eq!(lines[1].amount_fen, 1250);
        assert_eq!(lines[1].outcome, BankOutcome::Failed);
        assert_eq!(lines[1].file_line_number, 3);
    }
}
