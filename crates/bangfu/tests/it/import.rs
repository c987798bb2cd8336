//! `bangfu identity import`: a GBK export as the national monitoring system writes it. The good
//! rows land, the bad ones come back in a rejects file in the same encoding with their reasons,
//! and importing the same file again creates nothing.

use std::fs::File;

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use std::time::{Duration, Instant};

use encoding_rs::GB18030;

use crate::up::Up;

const BANGFU: &str = env!("CARGO_BIN_EXE_bangfu");

/// A `bangfu up` with its admin token.
struct Server {
    up: Up,
    token_file: PathBuf,
}

impl Server {
    fn start(data: &Path) -> Self {
        Self {
            up: Up::start(data),
            token_file: data.join("admin.jwt"),
        }
    }

    /// `bangfu identity import FILE --json` with the admin token, plus `extra`.
    fn import(&self, file: &Path, extra: &[&str]) -> Output {
        let mut command = Command::new(BANGFU);
        command
            .args(["identity", "import", "--addr", &self.up.addr, "--token-file"])
            .arg(&self.token_file)
            .arg(file)
            .args(["--export-date", "2025-06-30", "--json"])
            .args(extra);
        finish(command, file.parent().expect("a folder"))
    }
}

/// Runs the command to its end, or fails the test after two minutes instead of hanging CI when a
/// stream stalls.
fn finish(mut command: Command, dir: &Path) -> Output {
    let stdout_path = dir.join("command.stdout");
    let stderr_path = dir.join("command.stderr");
    let mut child = command
        .stdout(File::create(&stdout_path).expect("stdout file"))
        .stderr(File::create(&stderr_path).expect("stderr file"))
        .spawn()
        .expect("run bangfu");
    let deadline = Instant::now() + Duration::from_secs(120);
    let status = loop {
        if let Some(status) = child.try_wait().expect("wait") {
            break status;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            panic!(
                "the command did not finish within 120 s; stderr: {}",
                text(&std::fs::read(&stderr_path).unwrap_or_default())
            );
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    Output {
        status,
        stdout: std::fs::read(&stdout_path).expect("stdout"),
        stderr: std::fs::read(&stderr_path).expect("stderr"),
    }
}

/// `bangfu identity import FILE` against an address where nothing listens: a refusal from it
/// was made before anything was sent.
fn import_refused_before_sending(path: &Path, dir: &Path) -> Output {
    let mut command = Command::new(BANGFU);
    command
        .args([
            "identity",
            "import",
            "--addr",
            "http://127.0.0.1:9",
            "--token",
            "unused",
        ])
        .arg(path)
        .args(["--export-date", "2025-06-30"]);
    finish(command, dir)
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// The JSON summary of a run that must have succeeded.
fn summary(out: &Output) -> serde_json::Value {
    assert!(
        out.status.success(),
        "exit status {}; stderr: {}",
        out.status,
        text(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).unwrap_or_else(|e| panic!("a JSON summary ({e}): {}", text(&out.stdout)))
}

use bangfu_platform::testing::citizen_id;

fn gbk(text: &str) -> Vec<u8> {
    let (bytes, _, unmappable) = GB18030.encode(text);
    assert!(!unmappable, "{text} is encodable");
    bytes.into_owned()
}

fn strict_gb18030(bytes: &[u8]) -> String {
    GB18030
        .decode_without_bom_handling_and_without_replacement(bytes)
        .unwrap_or_else(|| panic!("valid GB18030: {bytes:?}"))
        .into_owned()
}

/// An export with three good rows (2–4) and three bad ones: row 5 has a wrong check character,
/// row 6 a name with bytes that are not GB18030, row 7 repeats row 2's citizen ID.
struct Export {
    path: PathBuf,
    good: [String; 3],
    wrong_check: String,
    garbled_name: Vec<u8>,
}

fn write_export(dir: &Path) -> Export {
    let good = [
        citizen_id("37040219800101001"),
        citizen_id("37040219800101002"),
        citizen_id("37040219800101003"),
    ];
    assert_eq!(
        good[0], "370402198001010011",
        "the check-character helper agrees with GB 11643"
    );
    let valid = citizen_id("37040219800101005");
    let wrong_check = format!("{}{}", &valid[..17], if valid.ends_with('0') { '1' } else { '0' });
    let mut garbled_name = gbk("孙");
    garbled_name.extend([0x81_u8, 0x20]);
    garbled_name.extend(gbk("七"));

    let mut bytes = gbk("序号,姓名,身份证号码,行政区划代码,备注\r\n");
    bytes.extend(gbk(&format!("1,张三,{},370402001013,\r\n", good[0])));
    bytes.extend(gbk(&format!("2,李四,{},370402001016,\r\n", good[1])));
    bytes.extend(gbk(&format!("3,王五,{},370402001013,\r\n", good[2])));
    bytes.extend(gbk(&format!("4,赵六,{wrong_check},370402001016,\r\n")));
    bytes.extend(gbk("5,"));
    bytes.extend(&garbled_name);
    bytes.extend(gbk(&format!(",{},370402001016,\r\n", citizen_id("37040219800101004"))));
    bytes.extend(gbk(&format!("6,张三,{},370402001013,\r\n", good[0])));
    let path = dir.join("export.csv");
    std::fs::write(&path, bytes).expect("write the export");
    Export {
        path,
        good,
        wrong_check,
        garbled_name,
    }
}

/// The rejects file holds exactly rows 5, 6 and 7, in GB18030, with the original bytes and why.
fn assert_rejects_file(path: &Path, export: &Export) {
    let mut reader = csv::ReaderBuilder::new()
        .has_headers(false)
        .flexible(true)
        .from_path(path)
        .expect("the rejects file exists");
    let records: Vec<csv::ByteRecord> = reader
        .byte_records()
        .collect::<Result<_, _>>()
        .expect("the rejects file is CSV");
    let (header, rows) = records.split_first().expect("a header row");
    let header: Vec<String> = header.iter().map(strict_gb18030).collect();
    assert_eq!(
        header,
        [
            "序号",
            "姓名",
            "身份证号码",
            "行政区划代码",
            "备注",
            "行号",
            "原因",
            "字段",
            "说明"
        ]
    );
    let numbers: Vec<String> = rows.iter().map(|row| strict_gb18030(&row[5])).collect();
    assert_eq!(numbers, ["5", "6", "7"], "exactly the rejected rows, in file order");
    let reasons: Vec<String> = rows.iter().map(|row| strict_gb18030(&row[6])).collect();
    assert_eq!(
        reasons,
        ["CITIZEN_ID_INVALID", "ENCODING_INVALID", "DUPLICATE_IN_IMPORT"]
    );
    assert_eq!(&rows[0][2], export.wrong_check.as_bytes());
    // The undecodable name comes back byte for byte, for the clerk to correct.
    assert_eq!(&rows[1][1], export.garbled_name.as_slice());
    assert_eq!(strict_gb18030(&rows[1][7]), "姓名", "the column at fault");
    assert_eq!(
        strict_gb18030(&rows[0][7]),
        "身份证号码",
        "the server's refusal names the column as the file's header does"
    );
    assert_eq!(&rows[2][2], export.good[0].as_bytes());
    for row in rows {
        assert!(!strict_gb18030(&row[8]).is_empty(), "every rejected row says why");
    }
}

#[test]
fn a_gbk_export_lands_its_good_rows_and_returns_the_bad_ones_in_a_gbk_rejects_file() {
    let dir = tempfile::tempdir().expect("tmp");
    let server = Server::start(&dir.path().join("data"));
    let export = write_export(dir.path());

    let out = server.import(&export.path, &[]);
    let summary = summary(&out);
    assert_eq!(summary["completed"], true);
    assert_eq!(summary["rowsRead"], 6);
    assert_eq!(summary["created"], 3, "{summary}");
    assert_eq!(summary["updated"], 0);
    assert_eq!(summary["unchanged"], 0);
    assert_eq!(summary["rejected"], 3, "{summary}");
    assert_eq!(summary["rejectedBeforeSending"], 1, "the undecodable row is never sent");
    let rejects = dir.path().join("export.rejects.csv");
    assert_eq!(summary["rejectsFile"], rejects.display().to_string());
    assert!(
        text(&out.stderr).contains("备注"),
        "the unread column is named: {}",
        text(&out.stderr)
    );
    assert_rejects_file(&rejects, &export);
}

#[test]
fn importing_the_same_export_again_creates_nothing_in_one_chunk_or_in_several() {
    let dir = tempfile::tempdir().expect("tmp");
    let server = Server::start(&dir.path().join("data"));
    let export = write_export(dir.path());
    let rejects = dir.path().join("export.rejects.csv");
    assert_eq!(summary(&server.import(&export.path, &[]))["created"], 3);

    // Chunks of two put row 7's repeated ID in another message than row 2's, and row 6 (refused
    // before sending) between answered rows; "gbk" names the encoding instead of guessing it.
    let runs: [&[&str]; 2] = [&[], &["--chunk-rows", "2", "--encoding", "gbk"]];
    for extra in runs {
        let again = summary(&server.import(&export.path, extra));
        assert_eq!(again["completed"], true);
        assert_eq!(again["created"], 0, "{extra:?}: {again}");
        assert_eq!(again["updated"], 0, "{extra:?}: {again}");
        assert_eq!(again["unchanged"], 3, "{extra:?}: {again}");
        assert_eq!(again["rejected"], 3, "{extra:?}: {again}");
        assert_rejects_file(&rejects, &export);
    }
}

#[test]
fn an_export_without_a_citizen_id_column_is_refused_naming_it_and_the_headers_found() {
    let dir = tempfile::tempdir().expect("tmp");
    let path = dir.path().join("no-ids.csv");
    std::fs::write(&path, "姓名,村代码\n张三,370402001013\n").expect("write");
    let out = import_refused_before_sending(&path, dir.path());
    assert_eq!(out.status.code(), Some(2), "{}", text(&out.stderr));
    let stderr = text(&out.stderr);
    assert!(stderr.contains("证件号码"), "{stderr}");
    assert!(stderr.contains("姓名, 村代码"), "{stderr}");
    assert!(!dir.path().join("no-ids.rejects.csv").exists());
}

/// A clerk's workbook: a good row, an ID Excel stored as a number, a formula's error where an
/// ID should be, a merged cell, a blank row.
fn write_workbook(path: &Path) -> String {
    let good = citizen_id("37040219800101001");
    let mut workbook = rust_xlsxwriter::Workbook::new();
    let sheet = workbook.add_worksheet();
    let header = ["姓名", "证件号码", "行政区划代码", "与户主关系"];
    for (column, name) in header.iter().enumerate() {
        sheet.write_string(0, column as u16, *name).expect("header");
    }
    sheet.write_string(1, 0, "张三").expect("cell");
    sheet.write_string(1, 1, &good).expect("cell");
    sheet.write_string(1, 2, "370402001013").expect("cell");
    sheet.write_string(2, 0, "李四").expect("cell");
    sheet
        .write_number(2, 1, 370_402_198_001_010_020.0)
        .expect("an ID typed as a number");
    sheet.write_string(2, 2, "370402001013").expect("cell");
    sheet.write_string(3, 0, "王五").expect("cell");
    sheet
        .write_formula(3, 1, rust_xlsxwriter::Formula::new("=1/0").set_result("#DIV/0!"))
        .expect("a formula");
    sheet.write_string(3, 2, "370402001013").expect("cell");
    let merged = rust_xlsxwriter::Format::new();
    sheet.merge_range(4, 0, 5, 0, "赵六", &merged).expect("merged");
    sheet.write_string(4, 1, citizen_id("37040219800101003")).expect("cell");
    sheet.write_string(4, 2, "370402001013").expect("cell");
    sheet.write_string(5, 1, citizen_id("37040219800101004")).expect("cell");
    sheet.write_string(5, 2, "370402001013").expect("cell");
    workbook.save(path).expect("save the workbook");
    good
}

#[test]
fn a_workbook_imports_directly_and_its_bad_rows_come_back_in_a_workbook() {
    use calamine::{Reader, Xlsx, open_workbook};
    let dir = tempfile::tempdir().expect("tmp");
    let server = Server::start(&dir.path().join("data"));
    let path = dir.path().join("花名册.xlsx");
    write_workbook(&path);

    let out = server.import(&path, &[]);
    let summary = summary(&out);
    let rejects = dir.path().join("花名册.rejects.xlsx");
    assert_eq!(summary["rejectsFile"], rejects.display().to_string());
    let mut workbook: Xlsx<_> = open_workbook(&rejects).expect("the rejects come back as a workbook");
    let sheet = workbook.worksheet_range_at(0).expect("a sheet").expect("readable");
    let rows: Vec<Vec<String>> = sheet
        .rows()
        .map(|row| row.iter().map(ToString::to_string).collect())
        .collect();
    assert_eq!(summary["rowsRead"], 5, "{summary}");
    assert_eq!(
        summary["created"], 2,
        "the good row and the first of the merged rows: {summary} {rows:?}"
    );
    assert_eq!(summary["rejected"], 3, "{summary}");
    assert_eq!(
        rows[0],
        [
            "姓名",
            "证件号码",
            "行政区划代码",
            "与户主关系",
            "行号",
            "原因",
            "字段",
            "说明"
        ]
    );
    assert_eq!(rows[1][0], "李四");
    assert_eq!(rows[1][1], "3.70402E+17", "as Excel shows it");
    assert_eq!(rows[1][4], "3");
    assert!(
        rows[1][7].contains("文本"),
        "the hint says to make the column text: {:?}",
        rows[1]
    );
    assert_eq!(rows[2][0], "王五");
    assert_eq!(rows[2][6], "证件号码", "{:?}", rows[2]);
    assert_eq!(
        rows[3][0], "",
        "the merged cell's second row has no name: {:?}",
        rows[3]
    );
    assert_eq!(rows[3][6], "姓名", "{:?}", rows[3]);

    // --strict: the same workbook again fails the run, creating nothing twice.
    let strict = server.import(&path, &["--strict"]);
    assert_eq!(strict.status.code(), Some(2), "{}", text(&strict.stderr));
    let again: serde_json::Value = serde_json::from_slice(&strict.stdout).expect("the summary still");
    assert_eq!(again["created"], 0, "{again}");
    assert_eq!(again["unchanged"], 2, "{again}");
}

#[test]
fn a_utf8_rejects_file_opens_in_excel_and_imports_again_without_doubling_its_columns() {
    let dir = tempfile::tempdir().expect("tmp");
    let server = Server::start(&dir.path().join("data"));
    let path = dir.path().join("list.csv");
    let wrong = {
        let valid = citizen_id("37040219800101005");
        format!("{}{}", &valid[..17], if valid.ends_with('0') { '1' } else { '0' })
    };
    std::fs::write(
        &path,
        format!(
            "姓名,身份证号,村代码\n张三,{},370402001013\n李四,{wrong},370402001013\n",
            citizen_id("37040219800101001")
        ),
    )
    .expect("write");
    let first = summary(&server.import(&path, &[]));
    assert_eq!(first["rejected"], 1, "{first}");
    let rejects = dir.path().join("list.rejects.csv");
    let bytes = std::fs::read(&rejects).expect("rejects");
    assert!(bytes.starts_with(b"\xEF\xBB\xBF"), "UTF-8 with the mark Excel needs");
    // Imported as it is (nothing fixed): the second rejects file has the columns once.
    let again_path = dir.path().join("list.rejects.again.csv");
    let again = summary(&server.import(&rejects, &["--rejects", again_path.to_str().expect("path")]));
    assert_eq!(again["rejected"], 1, "{again}");
    let text = String::from_utf8(std::fs::read(&again_path).expect("again")).expect("utf-8");
    let header = text.trim_start_matches('\u{feff}').lines().next().expect("header");
    assert_eq!(header, "姓名,身份证号,村代码,行号,原因,字段,说明");
    let row = text.lines().nth(1).expect("the row");
    assert!(
        row.contains(",身份证号,"),
        "the 字段 column names the header's column: {row}"
    );
}

#[test]
fn an_empty_sheet_is_refused_before_anything_is_sent() {
    let dir = tempfile::tempdir().expect("tmp");
    let path = dir.path().join("empty.xlsx");
    let mut workbook = rust_xlsxwriter::Workbook::new();
    workbook.add_worksheet();
    workbook.save(&path).expect("save");
    let out = import_refused_before_sending(&path, dir.path());
    assert_eq!(out.status.code(), Some(2), "{}", text(&out.stderr));
    assert!(text(&out.stderr).contains("empty"), "{}", text(&out.stderr));
}
