//! `bangfu identity import FILE.csv`: loads an export of the national monitoring system
//! (全国防返贫监测信息系统) through the streaming ImportPersons call. A blocking thread reads the
//! file while results come back, and only a few chunks are ever in flight, so memory stays flat
//! however big the file. Rows refused here or by the server go to a rejects file in the input's
//! own encoding and layout, so the clerk fixes them in the spreadsheet and imports that file.

use std::borrow::Cow;
use std::collections::{BTreeMap, VecDeque};
use std::fs::File;
use std::io::{BufReader, IsTerminal, Read, Write};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use bangfu_proto::identity::v1 as pb;
use bangfu_proto::identity::v1::identity_service_client::IdentityServiceClient;
use clap::Args;
use csv::ByteRecord;
use encoding_rs::Encoding;
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use tokio::sync::mpsc;
use tokio_stream::wrappers::ReceiverStream;

use crate::Failure;
use crate::client::{Authorized, ClientArgs, authorized, call_failed, print_rows};

/// Chunks sent and not yet answered. The server answers each chunk once it is stored, so a few
/// keep it busy, and their raw rows are all we hold for the rejects file.
const IN_FLIGHT: usize = 4;
const UTF8_BOM: &[u8] = b"\xEF\xBB\xBF";
/// How much of the file is looked at to guess its encoding.
const SNIFF_BYTES: u64 = 64 * 1024;
const REJECT_COLUMNS: [&str; 4] = ["行号", "原因", "字段", "说明"];

/// The columns `import --help` lists: each with the names a header may give it.
const COLUMNS_HELP: &str = "Columns (a header row names them, in any order; either name):
  姓名 / name                        required
  证件号码 / 身份证号 / citizen_id    required, 18 characters, as text (not a number Excel shortened)
  行政区划代码 / 村代码 / region_code  the village's 12-digit code; or the five names below
  省 / 市 / 县 / 乡 / 村               province, city, county, township and village names
  户编号 / household_number
  人口编号 / national_person_number
  与户主关系 / relation                户主, 配偶, 子女, 父母, 孙子女, 祖父母, 兄弟姐妹, 儿媳, 女婿, 其他
  劳动技能 / labor_skill               普通劳动力, 技能劳动力, 弱劳动力, 半劳动力, 丧失劳动力
  务工时间（月） / months_worked       0 to 12
  务工地点 / work_location             县内, 省内县外, 省外
  人员类型 / categories                脱贫户, 脱贫不稳定户, 边缘易致贫户, 突发严重困难户, 易地扶贫搬迁,
                                      滩区迁建, 就业困难人员, 低保, 特困, 残疾人 (several: separated by 、or ，)
  认定日期 / category_start_date       2024-03-01, 20240301 or 2024/03/01
Other columns are ignored (and named). A rejects file imports again as it is: its 行号, 原因,
字段 and 说明 columns are left out. A sample: docs/samples/import-sample.csv.";

/// Import an export of the national monitoring system; rejected rows go to a rejects file.
#[derive(Debug, Args)]
#[command(after_help = COLUMNS_HELP)]
pub struct ImportArgs {
    #[command(flatten)]
    pub client: ClientArgs,
    /// The export: CSV (UTF-8 or GBK) or a workbook (.xlsx, .xls), with a header row of
    /// Chinese or English column names (listed below).
    pub file: PathBuf,
    /// The sheet of a workbook (default: the first).
    #[arg(long)]
    pub sheet: Option<String>,
    /// Exit non-zero (2) when any row was rejected, for scripts that must not go on.
    #[arg(long)]
    pub strict: bool,
    /// The file's encoding: utf-8, or gb18030 (gbk is read as gb18030, its superset). Default:
    /// utf-8, or gb18030 when the start of the file is not UTF-8.
    #[arg(long, value_parser = parse_encoding)]
    pub encoding: Option<InputEncoding>,
    /// The date of the export, YYYY-MM-DD.
    #[arg(long, value_parser = parse_date_arg)]
    pub export_date: time::Date,
    /// The document the import rests on (default: the file's name).
    #[arg(long)]
    pub source_document: Option<String>,
    /// Where to write the rejected rows: .xlsx for a workbook, otherwise CSV in the input's
    /// encoding (UTF-8 with a byte-order mark, so Excel opens it). Default: beside the file,
    /// NAME.rejects.csv (NAME.rejects.xlsx for a workbook).
    #[arg(long)]
    pub rejects: Option<PathBuf>,
    /// Rows per message, 1 to 1000.
    #[arg(long, default_value_t = 1000, value_parser = clap::value_parser!(u16).range(1..=1000))]
    pub chunk_rows: u16,
}

/// The encodings exports come in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum InputEncoding {
    Utf8,
    Gb18030,
}

pub(crate) fn parse_encoding(value: &str) -> Result<InputEncoding, String> {
    match value.trim().to_ascii_lowercase().as_str() {
        "utf-8" | "utf8" => Ok(InputEncoding::Utf8),
        // Government exports say GBK; GB18030 decodes every GBK file and more.
        "gb18030" | "gbk" | "gb2312" => Ok(InputEncoding::Gb18030),
        other => Err(format!("{other:?} is not one of utf-8, gb18030, gbk")),
    }
}

/// The export date: the one date parser of every flag, and not a day after today.
fn parse_date_arg(value: &str) -> Result<time::Date, String> {
    crate::format::parse_past_day("--export-date", value).map_err(|failure| failure.message)
}

/// Imports the file; `Ok` when the call completed, even with rejected rows.
pub async fn run(args: ImportArgs) -> Result<(), Failure> {
    // A workbook is read as the clerk sees it and imported as UTF-8 CSV text: one pipeline.
    let workbook = crate::table_file::is_workbook(&args.file);
    let converted = if workbook {
        Some(sheet_as_csv(&args.file, args.sheet.as_deref())?)
    } else {
        None
    };
    let file = converted
        .as_ref()
        .map_or(args.file.as_path(), tempfile::NamedTempFile::path);
    let encoding = match (args.encoding, workbook) {
        (_, true) | (Some(InputEncoding::Utf8), false) => encoding_rs::UTF_8,
        (Some(InputEncoding::Gb18030), false) => encoding_rs::GB18030,
        (None, false) => sniff(file)?,
    };
    let input = Input::open(file, encoding)?;
    if !input.ignored.is_empty() {
        eprintln!(
            "ignoring columns this import does not read: {}",
            input.ignored.join(", ")
        );
    }
    let rejects_path = args
        .rejects
        .clone()
        .unwrap_or_else(|| default_rejects_path(&args.file, workbook));
    if let (Ok(a), Ok(b)) = (std::fs::canonicalize(&args.file), std::fs::canonicalize(&rejects_path))
        && a == b
    {
        return Err(Failure::usage(
            "--rejects names the input file itself: choose another path",
        ));
    }
    let source_document = args.source_document.clone().unwrap_or_else(|| {
        args.file
            .file_name()
            .map_or_else(|| args.file.display().to_string(), |n| n.to_string_lossy().into_owned())
    });
    let identity = IdentityServiceClient::new(authorized(&args.client).await?);
    let mut rejects = Rejects::create(rejects_path, &input)?;
    let first = pb::ImportPersonsRequest {
        export_date: Some(crate::format::wire_date(args.export_date)),
        source_document,
        rows: Vec::new(),
    };
    let bar = progress_bar(input.bytes);
    let started = Instant::now();
    let mut tally = Tally::default();
    let importing = import(
        identity,
        input,
        first,
        usize::from(args.chunk_rows),
        &mut rejects,
        &bar,
        &mut tally,
    );
    let stopped = tokio::select! {
        stopped = importing => stopped,
        // Ctrl-C: what was confirmed stays; the rows settled so far are in the rejects file.
        Ok(()) = tokio::signal::ctrl_c() => Err(Failure::failed(format!(
            "interrupted: {} row(s) were confirmed before Ctrl-C. To go on, run the same command again \
             (rows already imported come back unchanged):\n  {}",
            tally.confirmed,
            resume_command()
        ))),
    };
    let elapsed = started.elapsed();
    bar.finish_and_clear();
    // Flushed (or removed when empty) whatever stopped the import, so what was rejected is kept.
    let rejects_file = rejects.finish();
    let shown = rejects_file.as_ref().ok().and_then(Option::as_deref);
    report(
        &tally,
        elapsed,
        shown,
        encoding,
        stopped.is_ok(),
        args.client.output().is_json(),
    );
    stopped?;
    rejects_file?;
    if args.strict && tally.rejected + tally.unanswered > 0 {
        return Err(Failure::usage(format!(
            "--strict: {} row(s) were rejected; fix them in the rejects file and import it",
            tally.rejected + tally.unanswered
        )));
    }
    Ok(())
}

/// The command line as given, quoted for a shell, to say how to resume.
fn resume_command() -> String {
    std::env::args()
        .map(|arg| {
            if !arg.is_empty() && arg.chars().all(|c| c.is_alphanumeric() || "-_./=:@,+".contains(c)) {
                arg
            } else {
                format!("'{}'", arg.replace('\'', "'\\''"))
            }
        })
        .collect::<Vec<_>>()
        .join(" ")
}

/// A workbook's sheet written out as UTF-8 CSV for the import to read; the file is removed
/// when the handle is dropped.
fn sheet_as_csv(workbook: &Path, sheet: Option<&str>) -> Result<tempfile::NamedTempFile, Failure> {
    let table = crate::table_file::read_table(workbook, sheet)?;
    if table.iter().all(|row| row.iter().all(|cell| cell.trim().is_empty())) {
        return Err(Failure::usage(format!(
            "{}: the sheet is empty: it needs a header row and rows of persons",
            workbook.display()
        )));
    }
    let unwritable = |e: &dyn std::fmt::Display| Failure::failed(format!("cannot write the sheet as CSV: {e}"));
    let mut file = tempfile::Builder::new()
        .prefix("bangfu-import-")
        .suffix(".csv")
        .tempfile()
        .map_err(|e| unwritable(&e))?;
    file.write_all(UTF8_BOM).map_err(|e| unwritable(&e))?;
    let mut writer = csv::WriterBuilder::new().flexible(true).from_writer(file.as_file_mut());
    for row in &table {
        writer.write_record(row).map_err(|e| unwritable(&e))?;
    }
    writer.flush().map_err(|e| unwritable(&e))?;
    drop(writer);
    Ok(file)
}

/// Which import row field a column fills.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Column {
    HouseholdNumber,
    NationalPersonNumber,
    Name,
    CitizenId,
    Region,
    Province,
    City,
    County,
    Township,
    Village,
    Relation,
    LaborSkill,
    MonthsWorked,
    WorkLocation,
    Categories,
    StartDate,
}

/// Column names as the national system exports them, written as `header_key` leaves them, then
/// the contract's field names.
const HEADERS: &[(Column, &[&str])] = &[
    (Column::HouseholdNumber, &["户编号", "household_number"]),
    (Column::NationalPersonNumber, &["人口编号", "national_person_number"]),
    (Column::Name, &["姓名", "name", "display_name"]),
    (Column::CitizenId, &["证件号码", "身份证号", "身份证号码", "citizen_id"]),
    (
        Column::Region,
        &["行政区划代码", "村代码", "region_code", "registered_region"],
    ),
    (Column::Province, &["省", "省份", "province"]),
    (Column::City, &["市", "地市", "city"]),
    (Column::County, &["县", "县（市、区）", "区县", "county"]),
    (Column::Township, &["乡", "乡（镇）", "乡镇", "township"]),
    (Column::Village, &["村", "village"]),
    (Column::Relation, &["与户主关系", "relation"]),
    (Column::LaborSkill, &["劳动技能", "labor_skill"]),
    (Column::MonthsWorked, &["务工时间（月）", "务工月数", "months_worked"]),
    (Column::WorkLocation, &["务工地点", "务工区域", "work_location"]),
    (Column::Categories, &["人员类型", "类别", "户类型", "categories"]),
    (Column::StartDate, &["认定日期", "纳入时间", "category_start_date"]),
];

/// Hand-edited headers differ in spaces (also full-width), bracket width and case.
fn header_key(name: &str) -> String {
    name.chars()
        .filter(|c| !c.is_whitespace())
        .map(|c| match c {
            '(' => '（',
            ')' => '）',
            c => c.to_ascii_lowercase(),
        })
        .collect()
}

/// The header's columns this import reads, by position, and the names as the file has them.
struct Layout {
    columns: Vec<(usize, Column)>,
    names: Vec<String>,
}

/// The opened file, its header read and understood.
struct Input {
    reader: csv::Reader<BufReader<File>>,
    encoding: &'static Encoding,
    /// The header's fields as the file has them, without a byte-order mark.
    header: Vec<Vec<u8>>,
    layout: Layout,
    ignored: Vec<String>,
    bytes: u64,
    /// The columns a rejects file gives back: all but a previous rejects file's own four.
    kept: Vec<usize>,
}

impl Input {
    fn open(path: &Path, encoding: &'static Encoding) -> Result<Self, Failure> {
        let file = File::open(path).map_err(|e| unreadable(path, e))?;
        let bytes = file.metadata().map_or(0, |m| m.len());
        let mut reader = csv::ReaderBuilder::new()
            .flexible(true)
            .has_headers(false)
            .from_reader(BufReader::new(file));
        let mut first = ByteRecord::new();
        if !reader.read_byte_record(&mut first).map_err(|e| unreadable(path, e))? {
            return Err(Failure::usage(format!(
                "{} is empty: it needs a header row",
                path.display()
            )));
        }
        let header: Vec<Vec<u8>> = first
            .iter()
            .enumerate()
            .map(|(index, field)| match index {
                0 => field.strip_prefix(UTF8_BOM).unwrap_or(field).to_vec(),
                _ => field.to_vec(),
            })
            .collect();
        let mut names = Vec::with_capacity(header.len());
        for field in &header {
            let name = encoding
                .decode_without_bom_handling_and_without_replacement(field)
                .ok_or_else(|| {
                    Failure::usage(format!(
                        "the header row of {} is not {}: give --encoding gb18030 or --encoding utf-8",
                        path.display(),
                        encoding.name()
                    ))
                })?;
            names.push(name.trim().to_owned());
        }
        let mut columns: Vec<(usize, Column)> = Vec::new();
        let mut ignored = Vec::new();
        // A rejects file imported again: its own columns are neither read nor given back.
        let kept: Vec<usize> = (0..names.len())
            .filter(|&index| !REJECT_COLUMNS.contains(&names[index].as_str()))
            .collect();
        for (index, name) in names.iter().enumerate() {
            let key = header_key(name);
            if !kept.contains(&index) {
                continue;
            }
            match HEADERS.iter().find(|(_, known)| known.contains(&key.as_str())) {
                Some(&(column, _)) if !columns.iter().any(|&(_, taken)| taken == column) => {
                    columns.push((index, column));
                }
                _ if name.is_empty() => {}
                _ => ignored.push(name.clone()),
            }
        }
        let missing: Vec<&str> = [
            (Column::Name, "姓名 (name)"),
            (Column::CitizenId, "证件号码 (citizen_id)"),
        ]
        .into_iter()
        .filter(|(needed, _)| !columns.iter().any(|&(_, have)| have == *needed))
        .map(|(_, label)| label)
        .collect();
        if !missing.is_empty() {
            return Err(Failure::usage(format!(
                "{} has no {} column; its header has: {}",
                path.display(),
                missing.join(" and no "),
                names.join(", ")
            )));
        }
        Ok(Self {
            reader,
            encoding,
            header,
            layout: Layout { columns, names },
            ignored,
            bytes,
            kept,
        })
    }
}

fn unreadable(path: &Path, error: impl std::fmt::Display) -> Failure {
    Failure::usage(format!("cannot read {}: {error}", path.display()))
}

fn unwritable(path: &Path, error: impl std::fmt::Display) -> Failure {
    Failure::failed(format!("cannot write the rejects file {}: {error}", path.display()))
}

/// UTF-8 unless the start of the file says otherwise; then GB18030, what government systems write.
pub(crate) fn sniff(path: &Path) -> Result<&'static Encoding, Failure> {
    let mut start = Vec::new();
    File::open(path)
        .and_then(|file| file.take(SNIFF_BYTES).read_to_end(&mut start))
        .map_err(|e| unreadable(path, e))?;
    match std::str::from_utf8(&start) {
        Ok(_) => Ok(encoding_rs::UTF_8),
        // A character cut off by the end of the sample is no evidence against UTF-8.
        Err(error) if error.error_len().is_none() => Ok(encoding_rs::UTF_8),
        Err(_) => {
            eprintln!("reading {} as GB18030 (GBK): it is not UTF-8", path.display());
            Ok(encoding_rs::GB18030)
        }
    }
}

/// What became of a row. A rejected row keeps its raw fields until it is written out.
enum Verdict {
    Accepted,
    Rejected {
        reason: String,
        field: String,
        message: String,
    },
    /// The server answered the row's chunk without a result for it.
    Unanswered,
}

/// A row read, waiting for its verdict in row order.
struct Held {
    row_number: i64,
    raw: ByteRecord,
    verdict: Option<Verdict>,
}

#[derive(Default)]
struct Chunk {
    rows: Vec<pb::ImportRow>,
    held: Vec<Held>,
    blank: u64,
    bytes_read: u64,
}

/// Runs on a blocking thread. Answers whether it read to the end; `false` when the import side
/// stopped listening.
fn read_rows(
    mut reader: csv::Reader<BufReader<File>>,
    layout: &Layout,
    encoding: &'static Encoding,
    chunk_rows: usize,
    chunks: &mpsc::Sender<Chunk>,
) -> Result<bool, Failure> {
    let mut record = ByteRecord::new();
    let mut chunk = Chunk::default();
    // Numbered as the spreadsheet the clerk opens: the header is row 1.
    let mut row_number: i64 = 1;
    loop {
        let more = match reader.read_byte_record(&mut record) {
            Ok(more) => more,
            Err(error) => {
                // The rows before the fault still go, so "imported up to here" is true.
                let _ = chunks.blocking_send(std::mem::take(&mut chunk));
                return Err(Failure::failed(format!(
                    "cannot read the file after row {row_number}: {error}"
                )));
            }
        };
        if !more {
            break;
        }
        row_number += 1;
        if record.iter().all(|field| field.iter().all(u8::is_ascii_whitespace)) {
            chunk.blank += 1;
            continue;
        }
        let verdict = match import_row(&record, layout, encoding, row_number) {
            Ok(row) => {
                chunk.rows.push(row);
                None
            }
            Err(rejected) => Some(rejected),
        };
        chunk.held.push(Held {
            row_number,
            raw: record.clone(),
            verdict,
        });
        if chunk.held.len() >= chunk_rows {
            chunk.bytes_read = reader.position().byte();
            if chunks.blocking_send(std::mem::take(&mut chunk)).is_err() {
                return Ok(false);
            }
        }
    }
    chunk.bytes_read = reader.position().byte();
    Ok(chunks.blocking_send(chunk).is_ok())
}

fn rejected(reason: &str, field: &str, message: String) -> Verdict {
    Verdict::Rejected {
        reason: reason.to_owned(),
        field: field.to_owned(),
        message,
    }
}

/// The row as the contract has it, or why it cannot be sent. Codes are ErrorReason names.
fn import_row(
    record: &ByteRecord,
    layout: &Layout,
    encoding: &'static Encoding,
    row_number: i64,
) -> Result<pb::ImportRow, Verdict> {
    let mut row = pb::ImportRow {
        row_number,
        ..Default::default()
    };
    for &(index, column) in &layout.columns {
        let header = layout.names[index].as_str();
        let bytes = record.get(index).unwrap_or_default();
        // Never sent with replacement characters: a garbled name would be stored as a person.
        let Some(text) = encoding.decode_without_bom_handling_and_without_replacement(bytes) else {
            let message = format!(
                "“{header}”含有无法按 {} 编码识别的字符，请核对该单元格或文件编码",
                encoding.name()
            );
            return Err(rejected("ENCODING_INVALID", header, message));
        };
        let value = text.trim();
        match column {
            Column::HouseholdNumber => row.household_number = value.to_owned(),
            Column::NationalPersonNumber => row.national_person_number = value.to_owned(),
            Column::Name => row.display_name = value.to_owned(),
            // Spreadsheets keep an 18-digit number as text behind an apostrophe.
            Column::CitizenId => {
                let id = value.trim_start_matches('\'');
                if shortened_by_excel(id) {
                    let message = format!(
                        "“{header}”为 {id}：Excel 把身份证号当作数字，变成了科学计数法，后几位已丢失。请把该列设为“文本”格式，重新录入后再导入"
                    );
                    return Err(rejected("CITIZEN_ID_INVALID", header, message));
                }
                row.citizen_id = id.to_owned();
            }
            Column::Region => row.registered_region = value.to_owned(),
            Column::Province => row.province_name = value.to_owned(),
            Column::City => row.city_name = value.to_owned(),
            Column::County => row.county_name = value.to_owned(),
            Column::Township => row.township_name = value.to_owned(),
            Column::Village => row.village_name = value.to_owned(),
            Column::Relation => row.relation = value.to_owned(),
            Column::LaborSkill => row.labor_skill = value.to_owned(),
            Column::WorkLocation => row.work_location = value.to_owned(),
            Column::Categories => row.categories = value.to_owned(),
            Column::MonthsWorked => {
                row.months_worked = parse_months(value).ok_or_else(|| {
                    rejected(
                        "FIELD_INVALID",
                        header,
                        format!("“{header}”应为 0 到 12 的整数，现为“{value}”"),
                    )
                })?;
            }
            Column::StartDate if value.is_empty() => {}
            Column::StartDate => {
                let date = crate::format::day_of(value).ok_or_else(|| {
                    let message = format!("“{header}”应为日期，如 2024-03-01、20240301 或 2024/03/01，现为“{value}”");
                    rejected("FIELD_INVALID", header, message)
                })?;
                row.category_start_date = Some(crate::format::wire_date(date));
            }
        }
    }
    Ok(row)
}

/// An ID Excel took for a number and shows in scientific notation (`3.70402E+17`): its last
/// digits are gone, so no check can save it.
fn shortened_by_excel(value: &str) -> bool {
    let upper = value.to_ascii_uppercase();
    match upper.split_once('E') {
        Some((mantissa, exponent)) => {
            !mantissa.is_empty()
                && mantissa.chars().all(|c| c.is_ascii_digit() || c == '.')
                && exponent.trim_start_matches('+').chars().all(|c| c.is_ascii_digit())
                && !exponent.trim_start_matches('+').is_empty()
        }
        None => false,
    }
}

/// Months worked: empty is none; spreadsheets sometimes write whole numbers as "6.0".
fn parse_months(value: &str) -> Option<i32> {
    if value.is_empty() {
        return Some(0);
    }
    let months: i32 = value.strip_suffix(".0").unwrap_or(value).parse().ok()?;
    (0..=12).contains(&months).then_some(months)
}

/// The rows that need the clerk, in the input's encoding and columns plus why: CSV, turned
/// into a workbook at the end when the path asks for one.
struct Rejects {
    path: PathBuf,
    /// Where the CSV goes: the path itself, or beside it until the workbook is written.
    csv_path: PathBuf,
    writer: csv::Writer<File>,
    encoding: &'static Encoding,
    kept: Vec<usize>,
    /// The header's name of each column the server may name by its field.
    names: Vec<(Column, String)>,
    written: u64,
}

impl Rejects {
    fn create(path: PathBuf, input: &Input) -> Result<Self, Failure> {
        let csv_path = if crate::table_file::is_workbook(&path) {
            path.with_extension("csv.partial")
        } else {
            path.clone()
        };
        let mut file = File::create(&csv_path).map_err(|e| unwritable(&csv_path, e))?;
        // Excel reads a CSV without the mark as the system's code page (GBK on Chinese
        // Windows): UTF-8 gets the mark, GBK stays as it came.
        if input.encoding == encoding_rs::UTF_8 {
            file.write_all(UTF8_BOM).map_err(|e| unwritable(&csv_path, e))?;
        }
        let mut writer = csv::WriterBuilder::new().flexible(true).from_writer(file);
        let encoding = input.encoding;
        let header = input
            .kept
            .iter()
            .map(|&index| Cow::Borrowed(input.header[index].as_slice()))
            .chain(REJECT_COLUMNS.into_iter().map(|name| encoding.encode(name).0));
        writer.write_record(header).map_err(|e| unwritable(&csv_path, e))?;
        Ok(Self {
            kept: input.kept.clone(),
            names: input
                .layout
                .columns
                .iter()
                .map(|&(index, column)| (column, input.layout.names[index].clone()))
                .collect(),
            path,
            csv_path,
            writer,
            encoding,
            written: 0,
        })
    }

    /// The header's name for a field the server named (`citizen_id` → `证件号码`), so that the
    /// 字段 column names columns one way.
    fn column_name(&self, field: String) -> String {
        let column = match field.as_str() {
            "display_name" => Column::Name,
            "citizen_id" => Column::CitizenId,
            "registered_region" => Column::Region,
            "province_name" => Column::Province,
            "city_name" => Column::City,
            "county_name" => Column::County,
            "township_name" => Column::Township,
            "village_name" => Column::Village,
            "household_number" => Column::HouseholdNumber,
            "national_person_number" => Column::NationalPersonNumber,
            "relation" => Column::Relation,
            "labor_skill" => Column::LaborSkill,
            "months_worked" => Column::MonthsWorked,
            "work_location" => Column::WorkLocation,
            "categories" => Column::Categories,
            "category_start_date" => Column::StartDate,
            _ => return field,
        };
        self.names
            .iter()
            .find(|(have, _)| *have == column)
            .map_or(field, |(_, name)| name.clone())
    }

    /// Writes the row out if it needs the clerk, counting it.
    fn settle(&mut self, held: Held, tally: &mut Tally) -> Result<(), Failure> {
        let (reason, field, message) = match held.verdict {
            Some(Verdict::Rejected { reason, field, message }) => {
                tally.rejected += 1;
                (reason, self.column_name(field), message)
            }
            Some(Verdict::Unanswered) => {
                tally.unanswered += 1;
                (
                    "NO_RESULT".to_owned(),
                    String::new(),
                    "服务器未返回该行的结果，请重新导入".to_owned(),
                )
            }
            Some(Verdict::Accepted) | None => return Ok(()),
        };
        let number = held.row_number.to_string();
        let encoding = self.encoding;
        // The original bytes, not a re-encoding: the clerk gets back exactly what was exported.
        let record = self
            .kept
            .iter()
            .map(|&index| Cow::Borrowed(held.raw.get(index).unwrap_or_default()))
            .chain(
                [number.as_str(), reason.as_str(), field.as_str(), message.as_str()]
                    .into_iter()
                    .map(|text| encoding.encode(text).0),
            );
        self.writer
            .write_record(record)
            .map_err(|e| unwritable(&self.csv_path, e))?;
        self.written += 1;
        Ok(())
    }

    /// The file's path, or `None` (and no file) when nothing was rejected.
    fn finish(self) -> Result<Option<PathBuf>, Failure> {
        let Self {
            path,
            csv_path,
            mut writer,
            written,
            encoding,
            ..
        } = self;
        writer.flush().map_err(|e| unwritable(&csv_path, e))?;
        drop(writer);
        if written == 0 {
            std::fs::remove_file(&csv_path).map_err(|e| unwritable(&csv_path, e))?;
            return Ok(None);
        }
        if csv_path != path {
            let bytes = std::fs::read(&csv_path).map_err(|e| unwritable(&csv_path, e))?;
            let (text, _, _) = encoding.decode(&bytes);
            let mut reader = csv::ReaderBuilder::new()
                .flexible(true)
                .has_headers(false)
                .from_reader(text.as_bytes());
            let mut rows = Vec::new();
            for record in reader.records() {
                let record = record.map_err(|e| unwritable(&csv_path, e))?;
                rows.push(record.iter().map(str::to_string).collect::<Vec<_>>());
            }
            let header = if rows.is_empty() { Vec::new() } else { rows.remove(0) };
            crate::table_file::write_table(&path, &header, &rows)?;
            std::fs::remove_file(&csv_path).map_err(|e| unwritable(&csv_path, e))?;
        }
        Ok(Some(path))
    }
}

#[derive(Debug, Default)]
struct Tally {
    rows_read: u64,
    blank: u64,
    created: u64,
    updated: u64,
    unchanged: u64,
    rejected: u64,
    rejected_here: u64,
    unanswered: u64,
    pending_certification: u64,
    /// Rows the server gave a result for.
    confirmed: u64,
}

/// Streams the rows and collects the results. The tally comes back whatever stopped the import.
async fn import(
    mut identity: IdentityServiceClient<Authorized>,
    input: Input,
    first: pb::ImportPersonsRequest,
    chunk_rows: usize,
    rejects: &mut Rejects,
    bar: &ProgressBar,
    tally: &mut Tally,
) -> Result<(), Failure> {
    let Input {
        reader,
        encoding,
        layout,
        ..
    } = input;
    let (chunk_tx, chunk_rx) = mpsc::channel::<Chunk>(2);
    let reading = tokio::task::spawn_blocking(move || read_rows(reader, &layout, encoding, chunk_rows, &chunk_tx));
    // Never full: at most IN_FLIGHT chunks are unanswered, plus the first message.
    let (request_tx, request_rx) = mpsc::channel::<pb::ImportPersonsRequest>(IN_FLIGHT + 1);
    let (response_tx, response_rx) = mpsc::channel::<pb::ImportPersonsResponse>(IN_FLIGHT);
    if request_tx.send(first).await.is_err() {
        return Err(Failure::failed("the import could not start"));
    }
    let call = async move {
        let mut results = identity
            .import_persons(ReceiverStream::new(request_rx))
            .await?
            .into_inner();
        while let Some(response) = results.message().await? {
            if response_tx.send(response).await.is_err() {
                break;
            }
        }
        Ok::<(), tonic::Status>(())
    };
    let limit = (IN_FLIGHT + 1) * chunk_rows;
    let exchanging = exchange(chunk_rx, request_tx, response_rx, limit, rejects, bar, tally);
    let (called, exchanged) = tokio::join!(call, exchanging);
    let leftover = exchanged?;
    // After a failed call the rows without a verdict are simply not known: importing the file
    // again settles them.
    let completed = called.is_ok();
    for mut held in leftover.into_values() {
        if completed && held.verdict.is_none() {
            held.verdict = Some(Verdict::Unanswered);
        }
        rejects.settle(held, tally)?;
    }
    let read = reading
        .await
        .unwrap_or_else(|e| Err(Failure::failed(format!("the file reader stopped: {e}"))));
    let confirmed = tally.confirmed;
    let again = "importing the same file again is safe: rows already imported come back unchanged";
    match (called, read) {
        (Err(status), _) => Err(Failure::failed(format!(
            "the import stopped: {}. {confirmed} row(s) were confirmed before it stopped; {again}",
            call_failed(&status).message
        ))),
        (Ok(()), Err(failure)) => Err(Failure::failed(format!(
            "{}. The {confirmed} row(s) before it were confirmed; {again}",
            failure.message
        ))),
        (Ok(()), Ok(false)) => Err(Failure::failed(format!(
            "the server ended the import before the whole file was sent ({confirmed} row(s) confirmed); {again}"
        ))),
        (Ok(()), Ok(true)) if tally.unanswered > 0 => Err(Failure::failed(format!(
            "the server gave no result for {} row(s); they are in the rejects file as NO_RESULT: import it again",
            tally.unanswered
        ))),
        (Ok(()), Ok(true)) => Ok(()),
    }
}

/// Feeds chunks to the call and settles rows as their results come back, in row order. Answers
/// the rows still held when the call ended.
async fn exchange(
    mut chunks: mpsc::Receiver<Chunk>,
    requests: mpsc::Sender<pb::ImportPersonsRequest>,
    mut responses: mpsc::Receiver<pb::ImportPersonsResponse>,
    limit: usize,
    rejects: &mut Rejects,
    bar: &ProgressBar,
    tally: &mut Tally,
) -> Result<BTreeMap<i64, Held>, Failure> {
    let mut held: BTreeMap<i64, Held> = BTreeMap::new();
    // The last row number of each chunk sent and not yet answered, oldest first.
    let mut sent: VecDeque<i64> = VecDeque::new();
    let mut call_over = false;
    loop {
        tokio::select! {
            // Reading waits while enough is in flight: that is what keeps memory flat.
            chunk = chunks.recv(), if sent.len() < IN_FLIGHT && held.len() < limit => {
                let Some(chunk) = chunk else { break };
                bar.set_position(chunk.bytes_read);
                tally.blank += chunk.blank;
                tally.rows_read += chunk.held.len() as u64;
                let last_sent = chunk.rows.last().map(|row| row.row_number);
                for row in chunk.held {
                    if row.verdict.is_some() {
                        tally.rejected_here += 1;
                    }
                    held.insert(row.row_number, row);
                }
                if let Some(last_sent) = last_sent {
                    let request = pb::ImportPersonsRequest { rows: chunk.rows, ..Default::default() };
                    // A send fails only once the call is over; its outcome arrives below.
                    if requests.send(request).await.is_ok() {
                        sent.push_back(last_sent);
                    }
                }
            }
            response = responses.recv() => {
                let Some(response) = response else {
                    call_over = true;
                    break;
                };
                answer(response, &mut held, &mut sent, tally);
            }
        }
        flush(&mut held, rejects, tally)?;
        show_progress(bar, tally);
    }
    // Ends the request stream, so the server finishes; and stops the reader if the call ended first.
    drop(requests);
    drop(chunks);
    if !call_over {
        while let Some(response) = responses.recv().await {
            answer(response, &mut held, &mut sent, tally);
            flush(&mut held, rejects, tally)?;
            show_progress(bar, tally);
        }
    }
    Ok(held)
}

fn answer(
    response: pb::ImportPersonsResponse,
    held: &mut BTreeMap<i64, Held>,
    sent: &mut VecDeque<i64>,
    tally: &mut Tally,
) {
    for result in response.results {
        let outcome = pb::ImportOutcome::try_from(result.outcome).unwrap_or(pb::ImportOutcome::Unspecified);
        if outcome != pb::ImportOutcome::Rejected && result.reason == "CATEGORIES_PENDING" {
            tally.pending_certification += 1;
        }
        let verdict = match outcome {
            pb::ImportOutcome::Created | pb::ImportOutcome::Updated | pb::ImportOutcome::Unchanged => Verdict::Accepted,
            pb::ImportOutcome::Rejected => Verdict::Rejected {
                reason: result.reason,
                field: result.field,
                message: result.message,
            },
            pb::ImportOutcome::Unspecified => Verdict::Unanswered,
        };
        match outcome {
            pb::ImportOutcome::Created => tally.created += 1,
            pb::ImportOutcome::Updated => tally.updated += 1,
            pb::ImportOutcome::Unchanged => tally.unchanged += 1,
            pb::ImportOutcome::Rejected | pb::ImportOutcome::Unspecified => {}
        }
        if outcome != pb::ImportOutcome::Unspecified {
            tally.confirmed += 1;
        }
        if let Some(row) = held.get_mut(&result.row_number) {
            row.verdict = Some(verdict);
        }
    }
    // One response answers the oldest chunk: a row of it still without a result never gets one.
    if let Some(last) = sent.pop_front() {
        for (_, row) in held.range_mut(..=last).filter(|(_, row)| row.verdict.is_none()) {
            row.verdict = Some(Verdict::Unanswered);
        }
    }
}

/// Settles rows from the front while their verdicts are in, so the rejects file is in row order.
fn flush(held: &mut BTreeMap<i64, Held>, rejects: &mut Rejects, tally: &mut Tally) -> Result<(), Failure> {
    while held.first_key_value().is_some_and(|(_, row)| row.verdict.is_some()) {
        if let Some((_, row)) = held.pop_first() {
            rejects.settle(row, tally)?;
        }
    }
    Ok(())
}

/// The bar moves with the bytes read (so its ETA holds for the file); its message counts the
/// rows the server confirmed and their rate.
pub(crate) fn progress_bar(total_bytes: u64) -> ProgressBar {
    // A log or a pipe gets the summary only.
    if !std::io::stderr().is_terminal() {
        return ProgressBar::hidden();
    }
    let bar = ProgressBar::with_draw_target(Some(total_bytes), ProgressDrawTarget::stderr());
    if let Ok(style) = ProgressStyle::with_template("{wide_bar} {percent}% {msg} [{elapsed}, ETA {eta}]") {
        bar.set_style(style);
    }
    bar
}

fn show_progress(bar: &ProgressBar, tally: &Tally) {
    let seconds = bar.elapsed().as_secs_f64();
    let rate = if seconds > 0.0 {
        tally.confirmed as f64 / seconds
    } else {
        0.0
    };
    bar.set_message(format!(
        "{} rows confirmed, {} rejected here, {rate:.0} rows/s",
        tally.confirmed, tally.rejected_here
    ));
}

fn default_rejects_path(input: &Path, workbook: bool) -> PathBuf {
    let stem = input
        .file_stem()
        .map_or_else(|| "import".to_owned(), |stem| stem.to_string_lossy().into_owned());
    let extension = if workbook { "xlsx" } else { "csv" };
    input.with_file_name(format!("{stem}.rejects.{extension}"))
}

fn report(
    tally: &Tally,
    elapsed: Duration,
    rejects: Option<&Path>,
    encoding: &'static Encoding,
    completed: bool,
    json: bool,
) {
    let seconds = elapsed.as_secs_f64();
    let per_second = if seconds > 0.0 {
        tally.rows_read as f64 / seconds
    } else {
        0.0
    };
    if json {
        let value = serde_json::json!({
            "completed": completed,
            "encoding": encoding.name(),
            "rowsRead": tally.rows_read,
            "blankRowsSkipped": tally.blank,
            "created": tally.created,
            "updated": tally.updated,
            "unchanged": tally.unchanged,
            "rejected": tally.rejected,
            "rejectedBeforeSending": tally.rejected_here,
            "unanswered": tally.unanswered,
            "pendingCertification": tally.pending_certification,
            "confirmed": tally.confirmed,
            "elapsedSeconds": seconds,
            "rowsPerSecond": per_second,
            "rejectsFile": rejects.map(|path| path.display().to_string()),
        });
        say!("{value}");
        return;
    }
    let mut rows = vec![
        ("rows read", tally.rows_read.to_string()),
        ("created", tally.created.to_string()),
        ("updated", tally.updated.to_string()),
        ("unchanged", tally.unchanged.to_string()),
        (
            "rejected",
            format!("{} ({} before sending)", tally.rejected, tally.rejected_here),
        ),
        (
            "pending certification",
            format!(
                "{} (categories wait for the certifying department's review: `bangfu identity confirm` with that department's reviewer token)",
                tally.pending_certification
            ),
        ),
    ];
    if tally.unanswered > 0 {
        rows.push(("no result", tally.unanswered.to_string()));
    }
    if tally.blank > 0 {
        rows.push(("blank rows skipped", tally.blank.to_string()));
    }
    rows.push(("elapsed", format!("{seconds:.1} s, {per_second:.0} rows/s")));
    if let Some(path) = rejects {
        rows.push(("rejects", path.display().to_string()));
    }
    print_rows(&rows);
}
