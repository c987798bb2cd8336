//! `bangfu subsidy …` against `bangfu up`, as a finance clerk uses it: the policy catalog, a
//! bank's account list in GBK, the accounts it registered, masked.

use std::process::{Command, Output};

use crate::up::Up;

const BANGFU: &str = env!("CARGO_BIN_EXE_bangfu");

fn bangfu(args: &[&str]) -> Output {
    Command::new(BANGFU).args(args).output().expect("run bangfu")
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

fn token(keys: &str, dept: &str, role: &str, region: &str) -> String {
    let issued = bangfu(&[
        "token", "issue", "--dept", dept, "--role", role, "--region", region, "--keys", keys,
    ]);
    assert!(issued.status.success(), "{}", text(&issued.stderr));
    text(&issued.stdout).trim().to_string()
}

#[test]
fn a_finance_clerk_reads_the_catalog_and_registers_a_banks_account_list() {
    let dir = tempfile::tempdir().expect("tmp");
    let data = dir.path().join("data");
    let up = Up::start(&data);
    let keys = data.join("keys");
    let keys = keys.to_str().expect("path");
    let finance = token(keys, "finance", "clerk", "3704");

    // The shipped catalog, one JSON line per policy, whole.
    let listed = bangfu(&["subsidy", "policies", "--addr", &up.addr, "--token", &finance, "--json"]);
    assert!(listed.status.success(), "{}", text(&listed.stderr));
    let policies: Vec<serde_json::Value> = text(&listed.stdout)
        .lines()
        .filter(|line| !line.contains("next_page_token"))
        .map(|line| serde_json::from_str(line).expect("json line"))
        .collect();
    assert_eq!(policies.len(), 8, "{}", text(&listed.stdout));
    assert!(policies.iter().any(|p| p["code"] == "cq-transport-cross-province"));
    // One policy whole, as rows a clerk reads: its source and its money.
    let shown = bangfu(&[
        "subsidy",
        "policies",
        "zz-agency-2021",
        "--addr",
        &up.addr,
        "--token",
        &finance,
    ]);
    assert!(shown.status.success(), "{}", text(&shown.stderr));
    let shown = text(&shown.stdout);
    assert!(shown.contains("§九"), "{shown}");
    assert!(shown.contains("2025-12-31"), "{shown}");

    // A person the list names, registered by HR.
    let hr = token(keys, "hr", "clerk", "370402");
    let created = bangfu(&[
        "identity",
        "create",
        "--addr",
        &up.addr,
        "--token",
        &hr,
        "--json",
        "--name",
        "王秀英",
        "--citizen-id",
        "11010519491231002X",
        "--region",
        "370402001013",
    ]);
    assert!(created.status.success(), "{}", text(&created.stderr));
    let person: serde_json::Value = serde_json::from_slice(&created.stdout).expect("json");
    let person = person["name"].as_str().expect("name").to_string();

    // The bank's list, in GBK as banks send it: one known holder, one nobody holds.
    let list = dir.path().join("社保卡名单.csv");
    let csv = "姓名,身份证号,社保卡号,开户银行\n王秀英,11010519491231002X,6217 0000 1234 5678,枣庄农村商业银行\n李四,110105194912310038,6217000099990000,枣庄农村商业银行\n";
    let (gbk, _, _) = encoding_rs::GBK.encode(csv);
    std::fs::write(&list, &gbk).expect("write the list");
    let imported = bangfu(&[
        "subsidy",
        "accounts",
        "import",
        list.to_str().expect("path"),
        "--addr",
        &up.addr,
        "--token",
        &finance,
    ]);
    let out = text(&imported.stdout);
    assert!(imported.status.success(), "{}{out}", text(&imported.stderr));
    assert!(out.contains("2 rows: 1 registered and verified"), "{out}");
    assert!(out.contains("1 refused"), "{out}");
    assert!(
        out.lines()
            .any(|line| line.starts_with('3') && line.contains("NOT_FOUND")),
        "row 3 is refused, naming why: {out}"
    );
    // Sent again: nothing registered twice.
    let again = bangfu(&[
        "subsidy",
        "accounts",
        "import",
        list.to_str().expect("path"),
        "--addr",
        &up.addr,
        "--token",
        &finance,
        "--json",
    ]);
    assert!(again.status.success(), "{}", text(&again.stderr));
    let summary: serde_json::Value =
        serde_json::from_str(text(&again.stdout).lines().next().expect("summary")).expect("json");
    assert_eq!(summary["unchanged"], 1);
    assert_eq!(summary["created_verified"], 0);

    let accounts = bangfu(&[
        "subsidy", "accounts", "list", "--person", &person, "--addr", &up.addr, "--token", &finance,
    ]);
    let accounts = text(&accounts.stdout);
    assert!(accounts.contains("6217********5678"), "{accounts}");
    assert!(
        !accounts.contains("6217000012345678"),
        "never the whole number: {accounts}"
    );
    assert!(accounts.contains("verified"), "{accounts}");
}
