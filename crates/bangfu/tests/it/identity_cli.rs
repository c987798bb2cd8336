//! `bangfu identity …` against `bangfu up` as a county clerk and an integrator use it: the
//! whole record in clear for a stated purpose (and audited), a change with the etag,
//! households, a file of IDs looked up at once, lists as one JSON array or a workbook, errors
//! as JSON with distinct exit codes.

use std::process::Output;

use calamine::{Reader, Xlsx, open_workbook};

use crate::cli::{against, json, ok, text, token};
use crate::up::Up;

const VILLAGE: &str = "370402001013";
/// Valid check characters, born 1949-12-31 (female) and 1949-12-31 (male).
const WANG: &str = "11010519491231002X";
const LI: &str = "110105194912310011";

fn identity(up: &Up, token: &str, args: &[&str]) -> Output {
    let mut all = vec!["identity"];
    all.extend_from_slice(args);
    against(up, token, &all)
}

fn create(up: &Up, admin: &str, name: &str, citizen_id: &str) -> String {
    let person = json(identity(
        up,
        admin,
        &[
            "create",
            "--name",
            name,
            "--citizen-id",
            citizen_id,
            "--region",
            VILLAGE,
            "--phone",
            "13812345678",
            "--json",
        ],
    ));
    person["name"].as_str().expect("name").to_string()
}

/// A suite with an administrator of the whole country and a county clerk of HR.
fn desk() -> (tempfile::TempDir, Up, String, String) {
    let dir = tempfile::tempdir().expect("tmp");
    let data = dir.path().join("data");
    let up = Up::start(&data);
    let keys = data.join("keys");
    let keys = keys.to_str().expect("path");
    let admin = token(keys, "hr", "admin", "*", "admin-a");
    let clerk = token(keys, "hr", "clerk", "370402", "clerk-hr");
    (dir, up, admin, clerk)
}

#[test]
fn a_clerk_reads_the_whole_record_for_a_purpose_updates_it_and_keeps_a_household() {
    let (_dir, up, admin, clerk) = desk();
    let wang = create(&up, &admin, "王秀英", WANG);
    let li = create(&up, &admin, "李建国", LI);

    // Masked by default, every field the server sends; in clear only with a purpose.
    let masked = ok(identity(&up, &clerk, &["get", &wang]));
    assert!(masked.contains("1101*************X"), "{masked}");
    assert!(masked.contains("sex") && masked.contains("female"), "{masked}");
    assert!(
        masked.contains("birth date         1949-12\n"),
        "to the month only: {masked}"
    );
    assert!(!masked.contains(WANG) && !masked.contains("13812345678"), "{masked}");
    let refused = identity(&up, &clerk, &["get", &wang, "--unmasked"]);
    assert_eq!(refused.status.code(), Some(2), "--unmasked needs --purpose");
    let whole = ok(identity(
        &up,
        &admin,
        &["get", &wang, "--unmasked", "--purpose", "市中区人社函〔2026〕7号"],
    ));
    assert!(whole.contains(WANG) && whole.contains("王秀英"), "{whole}");
    assert!(whole.contains("1949-12-31") && whole.contains("13812345678"), "{whole}");
    let audit = json(identity(
        &up,
        &admin,
        &["audit", "--resource", &wang, "--all", "--json"],
    ));
    let reads: Vec<&serde_json::Value> = audit
        .as_array()
        .expect("one JSON array")
        .iter()
        .filter(|event| event["purpose"]["reference"] == "市中区人社函〔2026〕7号")
        .collect();
    assert_eq!(reads.len(), 1, "the clear read is audited with its purpose: {audit}");
    assert_eq!(reads[0]["purpose"]["code"], "ACCESS_PURPOSE_CODE_CASE_HANDLING");

    // A change in a life, sent with the etag read.
    let nothing = identity(&up, &clerk, &["update", &wang]);
    assert_eq!(nothing.status.code(), Some(2), "{}", text(&nothing.stderr));
    let updated = json(identity(
        &up,
        &clerk,
        &[
            "update",
            &wang,
            "--phone",
            "13900001111",
            "--skills",
            "电工，焊工",
            "--json",
        ],
    ));
    assert_eq!(updated["phone"], "139****1111");
    assert_eq!(updated["skills"], serde_json::json!(["电工", "焊工"]));
    assert_eq!(updated["etag"], "r2", "one change, one new etag: {updated}");
    let wrong = identity(&up, &clerk, &["update", &wang, "--phone", "12345", "--json"]);
    assert_eq!(wrong.status.code(), Some(2));
    let error: serde_json::Value = serde_json::from_slice(&wrong.stderr).expect("the error as JSON on stderr");
    assert_eq!(error["code"], "InvalidArgument", "{error}");
    assert_eq!(error["field"], "person.phone", "{error}");
    assert!(!error["reason"].as_str().unwrap_or_default().is_empty(), "{error}");
    assert!(!error["traceId"].as_str().unwrap_or_default().is_empty(), "{error}");

    // A household: two members, the head changed, one removed.
    let household = json(identity(
        &up,
        &clerk,
        &[
            "household",
            "create",
            "--number",
            "3704020010130001",
            "--region",
            VILLAGE,
            "--json",
        ],
    ));
    let household = household["name"].as_str().expect("name").to_string();
    ok(identity(
        &up,
        &clerk,
        &["household", "add", &household, &wang, "--relation", "head"],
    ));
    ok(identity(
        &up,
        &clerk,
        &["household", "add", &household, &li, "--relation", "配偶"],
    ));
    let changed = json(identity(
        &up,
        &clerk,
        &[
            "household",
            "head",
            &household,
            &li,
            "--old-head-relation",
            "spouse",
            "--json",
        ],
    ));
    let relation_of = |household: &serde_json::Value, person: &str| {
        household["members"]
            .as_array()
            .and_then(|members| members.iter().find(|m| m["person"] == person))
            .map(|m| m["relation"].clone())
    };
    assert_eq!(
        relation_of(&changed, &li),
        Some("HOUSEHOLD_RELATION_HEAD".into()),
        "{changed}"
    );
    assert_eq!(
        relation_of(&changed, &wang),
        Some("HOUSEHOLD_RELATION_SPOUSE".into()),
        "{changed}"
    );
    let removed = json(identity(
        &up,
        &clerk,
        &["household", "remove", &household, &wang, "--json"],
    ));
    assert_eq!(relation_of(&removed, &wang), None, "{removed}");
    let again = identity(&up, &clerk, &["household", "remove", &household, &wang]);
    assert_eq!(
        again.status.code(),
        Some(4),
        "not a member any more: {}",
        text(&again.stderr)
    );
}

#[test]
fn an_integrator_looks_up_a_file_of_ids_and_lists_as_json_and_workbooks() {
    let (dir, up, admin, clerk) = desk();

    // Before anyone is registered: an empty list is an empty array, and an unknown ID exits 4.
    assert_eq!(json(identity(&up, &clerk, &["list", "--json"])), serde_json::json!([]));
    let unknown = identity(&up, &clerk, &["find", WANG]);
    assert_eq!(unknown.status.code(), Some(4), "{}", text(&unknown.stderr));

    let wang = create(&up, &admin, "王秀英", WANG);
    create(&up, &admin, "李建国", LI);
    // Another department's list: a repeated ID, a name that differs, an ID Excel turned into a
    // number, and one nobody registered.
    let ids = dir.path().join("ids.csv");
    std::fs::write(
        &ids,
        format!(
            "姓名,身份证号\n王秀英,{WANG}\n李建军,{LI}\n张三,3.70402E+17\n王秀英,{WANG}\n赵六,110105194912310054\n"
        ),
    )
    .expect("write");
    let result = dir.path().join("result.xlsx");
    let summary = json(identity(
        &up,
        &clerk,
        &[
            "lookup",
            "--file",
            ids.to_str().expect("path"),
            "--output",
            result.to_str().expect("path"),
            "--json",
        ],
    ));
    assert_eq!(summary["rows"], 5, "{summary}");
    assert_eq!(summary["found"], 3, "{summary}");
    assert_eq!(summary["notFound"], 1, "{summary}");
    assert_eq!(summary["nameMismatched"], 1, "{summary}");
    assert_eq!(summary["invalid"], 1, "{summary}");
    let mut workbook: Xlsx<_> = open_workbook(&result).expect("a workbook");
    let sheet = workbook.worksheet_range_at(0).expect("a sheet").expect("readable");
    let rows: Vec<Vec<String>> = sheet
        .rows()
        .map(|row| row.iter().map(ToString::to_string).collect())
        .collect();
    assert_eq!(rows[0], ["行号", "身份证号", "姓名", "结果", "姓名比对", "人员"]);
    assert_eq!(rows[1][1], WANG, "the ID stays text, every digit");
    assert_eq!(rows[1][3], "已登记");
    assert_eq!(rows[1][5], wang);
    assert_eq!(rows[2][4], "不一致", "the name differs: {:?}", rows[2]);
    assert!(
        rows[3][3].contains("文本"),
        "Excel's number is refused with a hint: {:?}",
        rows[3]
    );
    assert_eq!(rows[4][5], wang, "a repeated ID is answered on its row too");
    assert_eq!(rows[5][3], "未找到");

    // Lists: one JSON array, proto3 JSON names; a table with its header; a workbook.
    let listed = json(identity(&up, &clerk, &["list", "--json"]));
    let listed = listed.as_array().expect("an array");
    assert_eq!(listed.len(), 2);
    assert_eq!(listed[0]["citizenId"].as_str().map(str::len), Some(18));
    assert!(
        listed[0]["citizenId"].as_str().unwrap_or_default().contains('*'),
        "masked"
    );
    let table = ok(identity(&up, &clerk, &["list"]));
    assert!(table.starts_with("person"), "a header row first: {table}");
    let export = dir.path().join("persons.xlsx");
    ok(identity(
        &up,
        &clerk,
        &["list", "--output", export.to_str().expect("path")],
    ));
    let mut workbook: Xlsx<_> = open_workbook(&export).expect("a workbook");
    let sheet = workbook.worksheet_range_at(0).expect("a sheet").expect("readable");
    assert_eq!(sheet.rows().count(), 3, "the header and two persons");

    // The counts: categories apart from employment statuses, each ending with a total row.
    let stats = ok(identity(&up, &clerk, &["stats", "--region", "3704"]));
    assert!(
        stats.contains("by category") && stats.contains("by employment status"),
        "{stats}"
    );
    assert_eq!(stats.lines().filter(|l| l.starts_with("total")).count(), 2, "{stats}");
}

#[test]
fn the_binary_completes_has_a_manual_suggests_and_refuses_a_future_date_before_any_call() {
    let bangfu = |args: &[&str]| {
        std::process::Command::new(env!("CARGO_BIN_EXE_bangfu"))
            .args(args)
            .env("LANG", "C.UTF-8")
            .env_remove("LC_ALL")
            .env_remove("LC_MESSAGES")
            .output()
            .expect("run bangfu")
    };
    for shell in ["bash", "zsh", "fish", "powershell"] {
        let script = ok(bangfu(&["completion", shell]));
        assert!(script.contains("identity"), "{shell}: {script}");
    }
    let chinese = std::process::Command::new(env!("CARGO_BIN_EXE_bangfu"))
        .args(["identity", "--help"])
        .env("LANG", "zh_CN.UTF-8")
        .env_remove("LC_ALL")
        .env_remove("LC_MESSAGES")
        .output()
        .expect("run bangfu");
    let chinese = ok(chinese);
    assert!(
        chinese.contains("登记一名人员"),
        "--help in Chinese under a Chinese locale: {chinese}"
    );
    let english = ok(bangfu(&["identity", "--help"]));
    assert!(english.contains("Register a person"), "{english}");
    let manual = ok(bangfu(&["man"]));
    assert!(manual.contains(".TH bangfu 1"), "{manual}");
    let typo = bangfu(&["identiy", "list"]);
    assert_eq!(typo.status.code(), Some(2));
    assert!(
        text(&typo.stderr).contains("'identity'"),
        "did you mean: {}",
        text(&typo.stderr)
    );
    let serve = ok(bangfu(&["serve", "--help"]));
    for variable in [
        "DATABASE_URL",
        "BANGFU_LISTEN",
        "BANGFU_PEER_IDENTITY",
        "BANGFU_TLS_CERT",
    ] {
        assert!(serve.contains(variable), "serve --help lists {variable}: {serve}");
    }
    // Nothing listens on port 9: a refusal there proves no call was made.
    let dir = tempfile::tempdir().expect("tmp");
    let file = dir.path().join("x.csv");
    std::fs::write(&file, "姓名,证件号码\n").expect("write");
    let future = bangfu(&[
        "identity",
        "import",
        file.to_str().expect("path"),
        "--export-date",
        "2999/01/31",
        "--addr",
        "127.0.0.1:9",
        "--token",
        "unused",
    ]);
    assert_eq!(future.status.code(), Some(2));
    assert!(text(&future.stderr).contains("future"), "{}", text(&future.stderr));
    let unreachable = bangfu(&["identity", "list", "--addr", "127.0.0.1:9", "--token", "t", "--json"]);
    assert_eq!(
        unreachable.status.code(),
        Some(6),
        "unavailable: {}",
        text(&unreachable.stderr)
    );
    let error: serde_json::Value = serde_json::from_slice(&unreachable.stderr).expect("JSON on stderr");
    assert!(
        error["detail"]
            .as_str()
            .unwrap_or_default()
            .contains("nothing listens there"),
        "{error}"
    );
}
