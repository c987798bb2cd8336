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

use bangfu_proto::common::v1 as common;
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

/// Import a CSV export of the national monitoring system; rejected rows go to a rejects file.
#[derive(Debug, Args)]
pub struct ImportArgs {
    #[command(flatten)]
    pub client: ClientArgs,
    /// The CSV export, with a header row of Chinese or English column names.
    pub file: PathBuf,
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
    /// Where to write the rejected rows (default: beside the file, named NAME.rejects.csv).
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

fn parse_date_arg(value: &str) -> Result<time::Date, String> {
    parse_date(value.trim()).ok_or_else(|| format!("{value:?} is not a date like 2025-06-30"))
}

/// Imports the file; `Ok` when the call completed, even with rejected rows.
pub async fn run(args: ImportArgs) -> Result<(), Failure> {
    let encoding = match args.encoding {
        Some(InputEncoding::Utf8) => encoding_rs::UTF_8,
        Some(InputEncoding::Gb18030) => encoding_rs::GB18030,
        None => sniff(&args.file)?,
    };
    let input = Input::open(&args.file, encoding)?;
    if !input.ignored.is_empty() {
        eprintln!(
            "ignoring columns this import does not read: {}",
            input.ignored.join(", ")
        );
    }
    let rejects_path = args.rejects.clone().unwrap_or_else(|| default_rejects_path(&args.file));
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
        export_date: Some(proto_date(args.export_date)),
        source_document,
        rows: Vec::new(),
    };
    let bar = progress_bar(input.bytes);
    let started = Instant::now();
    let (tally, stopped) = import(identity, input, first, usize::from(args.chunk_rows), &mut rejects, &bar).await;
    let elapsed = started.elapsed();
    bar.finish_and_clear();
    // Flushed (or removed when empty) whatever stopped the import, so what was rejected is kept.
    let rejects_file = rejects.finish();
    let shown = rejects_file.as_ref().ok().and_then(Option::as_deref);
    report(&tally, elapsed, shown, encoding, stopped.is_ok(), args.client.json);
    stopped?;
    rejects_file.map(|_| ())
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
    bom: bool,
    layout: Layout,
    ignored: Vec<String>,
    bytes: u64,
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
        let bom = first.get(0).is_some_and(|field| field.starts_with(UTF8_BOM));
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
        for (index, name) in names.iter().enumerate() {
            let key = header_key(name);
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
            bom,
            layout: Layout { columns, names },
            ignored,
            bytes,
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
            Column::CitizenId => row.citizen_id = value.trim_start_matches('\'').to_owned(),
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
                let date = parse_date(value).ok_or_else(|| {
                    let message = format!("“{header}”应为日期，如 2024-03-01、20240301 或 2024/03/01，现为“{value}”");
                    rejected("FIELD_INVALID", header, message)
                })?;
                row.category_start_date = Some(proto_date(date));
            }
        }
    }
    Ok(row)
}

/// Months worked: empty is none; spreadsheets sometimes write whole numbers as "6.0".
fn parse_months(value: &str) -> Option<i32> {
    if value.is_empty() {
        return Some(0);
    }
    let months: i32 = value.strip_suffix(".0").unwrap_or(value).parse().ok()?;
    (0..=12).contains(&months).then_some(months)
}

/// Dates as exports and spreadsheets write them: 2024-03-01, 20240301, 2024/3/1; a time after
/// the date is ignored.
fn parse_date(value: &str) -> Option<time::Date> {
    let day = value.split_whitespace().next()?;
    let (year, month, dom) = if day.len() == 8 && day.bytes().all(|b| b.is_ascii_digit()) {
        (&day[..4], &day[4..6], &day[6..])
    } else {
        let mut parts = day.split(['-', '/', '.']);
        let found = (parts.next()?, parts.next()?, parts.next()?);
        if parts.next().is_some() {
            return None;
        }
        found
    };
    let month = time::Month::try_from(month.parse::<u8>().ok()?).ok()?;
    time::Date::from_calendar_date(year.parse().ok()?, month, dom.parse().ok()?).ok()
}

fn proto_date(date: time::Date) -> common::Date {
    common::Date {
        year: date.year(),
        month: i32::from(u8::from(date.month())),
        day: i32::from(date.day()),
    }
}

/// The rows that need the clerk, in the input's encoding and columns plus why.
struct Rejects {
    path: PathBuf,
    writer: csv::Writer<File>,
    encoding: &'static Encoding,
    width: usize,
    written: u64,
}

impl Rejects {
    fn create(path: PathBuf, input: &Input) -> Result<Self, Failure> {
        let mut file = File::create(&path).map_err(|e| unwritable(&path, e))?;
        // Excel only takes a CSV as UTF-8 with the mark, so keep it when the input had it.
        if input.bom {
            file.write_all(UTF8_BOM).map_err(|e| unwritable(&path, e))?;
        }
        let mut writer = csv::WriterBuilder::new().flexible(true).from_writer(file);
        let encoding = input.encoding;
        let header = input
            .header
            .iter()
            .map(|field| Cow::Borrowed(field.as_slice()))
            .chain(REJECT_COLUMNS.into_iter().map(|name| encoding.encode(name).0));
        writer.write_record(header).map_err(|e| unwritable(&path, e))?;
        Ok(Self {
            width: input.header.len(),
            path,
            writer,
            encoding,
            written: 0,
        })
    }

    /// Writes the row out if it needs the clerk, counting it.
    fn settle(&mut self, held: Held, tally: &mut Tally) -> Result<(), Failure> {
        let (reason, field, message) = match held.verdict {
            Some(Verdict::Rejected { reason, field, message }) => {
                tally.rejected += 1;
                (reason, field, message)
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
        let record = held
            .raw
            .iter()
            .map(Cow::Borrowed)
            .chain(std::iter::repeat_n(
                Cow::Borrowed(&b""[..]),
                self.width.saturating_sub(held.raw.len()),
            ))
            .chain(
                [number.as_str(), reason.as_str(), field.as_str(), message.as_str()]
                    .into_iter()
                    .map(|text| encoding.encode(text).0),
            );
        self.writer
            .write_record(record)
            .map_err(|e| unwritable(&self.path, e))?;
        self.written += 1;
        Ok(())
    }

    /// The file's path, or `None` (and no file) when nothing was rejected.
    fn finish(self) -> Result<Option<PathBuf>, Failure> {
        let Self {
            path,
            mut writer,
            written,
            ..
        } = self;
        writer.flush().map_err(|e| unwritable(&path, e))?;
        drop(writer);
        if written == 0 {
            std::fs::remove_file(&path).map_err(|e| unwritable(&path, e))?;
            return Ok(None);
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
) -> (Tally, Result<(), Failure>) {
    let mut tally = Tally::default();
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
        return (tally, Err(Failure::failed("the import could not start")));
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
    let exchanging = exchange(chunk_rx, request_tx, response_rx, limit, rejects, bar, &mut tally);
    let (called, exchanged) = tokio::join!(call, exchanging);
    let leftover = match exchanged {
        Ok(leftover) => leftover,
        Err(failure) => return (tally, Err(failure)),
    };
    // After a failed call the rows without a verdict are simply not known: importing the file
    // again settles them.
    let completed = called.is_ok();
    for mut held in leftover.into_values() {
        if completed && held.verdict.is_none() {
            held.verdict = Some(Verdict::Unanswered);
        }
        if let Err(failure) = rejects.settle(held, &mut tally) {
            return (tally, Err(failure));
        }
    }
    let read = reading
        .await
        .unwrap_or_else(|e| Err(Failure::failed(format!("the file reader stopped: {e}"))));
    let confirmed = tally.confirmed;
    let again = "importing the same file again is safe: rows already imported come back unchanged";
    let result = match (called, read) {
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
    };
    (tally, result)
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
        bar.set_message(format!("{} rows done", tally.confirmed + tally.rejected_here));
    }
    // Ends the request stream, so the server finishes; and stops the reader if the call ended first.
    drop(requests);
    drop(chunks);
    if !call_over {
        while let Some(response) = responses.recv().await {
            answer(response, &mut held, &mut sent, tally);
            flush(&mut held, rejects, tally)?;
            bar.set_message(format!("{} rows done", tally.confirmed + tally.rejected_here));
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

pub(crate) fn progress_bar(total_bytes: u64) -> ProgressBar {
    // A log or a pipe gets the summary only.
    if !std::io::stderr().is_terminal() {
        return ProgressBar::hidden();
    }
    let bar = ProgressBar::with_draw_target(Some(total_bytes), ProgressDrawTarget::stderr());
    if let Ok(style) = ProgressStyle::with_template("{wide_bar} {bytes}/{total_bytes} {msg} [{elapsed}]") {
        bar.set_style(style);
    }
    bar
}

fn default_rejects_path(input: &Path) -> PathBuf {
    let stem = input
        .file_stem()
        .map_or_else(|| "import".to_owned(), |stem| stem.to_string_lossy().into_owned());
    input.with_file_name(format!("{stem}.rejects.csv"))
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
                "{} (categories wait for the certifying department's review: `bangfu identity confirm` with a reviewer token of agri, or hr for employment difficulty)",
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
