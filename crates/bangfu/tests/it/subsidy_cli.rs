//! `bangfu subsidy …` against `bangfu up`, as a finance clerk uses it: the policy catalog, a
//! bank's account list in GBK, the accounts it registered, masked.

use std::process::{Command, Output};

use crate::cli::text;
use crate::up::Up;

const BANGFU: &str = env!("CARGO_BIN_EXE_bangfu");

fn bangfu(args: &[&str]) -> Output {
    Command::new(BANGFU).args(args).output().expect("run bangfu")
}

fn token(keys: &str, dept: &str, role: &str, region: &str) -> String {
    crate::cli::token(keys, dept, role, region, &format!("{dept}-{role}"))
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
    let policies: Vec<serde_json::Value> = serde_json::from_str(&text(&listed.stdout)).expect("a JSON array");
    assert_eq!(policies.len(), 12, "{}", text(&listed.stdout));
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

    // Chaoyang's finance enters its rural minimum-living standard, which the shipped living
    // allowance leaves to each region; a second reviewer publishes the draft.
    let author = crate::cli::token(keys, "finance", "reviewer", "*", "finance-reviewer-author");
    let drafted = bangfu(&[
        "subsidy",
        "set-standard",
        "cy-training-living-2021",
        "--table",
        "rural_min_living_monthly",
        "--region",
        "2113",
        "--year",
        "2024",
        "--value",
        "520",
        "--source",
        "朝阳市2024年农村低保标准",
        "--addr",
        &up.addr,
        "--token",
        &author,
        "--json",
    ]);
    assert!(drafted.status.success(), "{}", text(&drafted.stderr));
    let drafted: serde_json::Value = serde_json::from_str(&text(&drafted.stdout)).expect("JSON");
    let draft = drafted["version"]["name"].as_str().expect("draft name").to_string();
    assert_eq!(draft, "policies/cy-training-living-2021/versions/2");
    assert_eq!(
        drafted["version"]["standardsTables"][0]["rows"][0]["value"]["fen"],
        serde_json::json!("52000"),
        "{drafted}"
    );
    // The author may not publish their own version.
    let own = bangfu(&[
        "subsidy",
        "publish-version",
        &draft,
        "--note",
        "已核对",
        "--addr",
        &up.addr,
        "--token",
        &author,
    ]);
    assert!(!own.status.success(), "{}", text(&own.stdout));
    let publisher = crate::cli::token(keys, "finance", "reviewer", "*", "finance-reviewer-publisher");
    let published = bangfu(&[
        "subsidy",
        "publish-version",
        &draft,
        "--note",
        "已核对民政部门公布的标准",
        "--addr",
        &up.addr,
        "--token",
        &publisher,
        "--json",
    ]);
    assert!(published.status.success(), "{}", text(&published.stderr));
    let published: serde_json::Value = serde_json::from_str(&text(&published.stdout)).expect("JSON");
    assert_eq!(
        published["version"]["state"], "POLICY_VERSION_STATE_PUBLISHED",
        "{published}"
    );

    // Shizhong's count for a labor base's one-time award, which the documents leave to the
    // district: set from the command line, then changed on the same row (read with its etag).
    let set = |value: &str, token: &str| {
        bangfu(&[
            "subsidy",
            "parameter",
            "set",
            "subsidy.labor_base_award_min_absorbed",
            "--region",
            "370402",
            "--from",
            "2025-01-01",
            "--value",
            value,
            "--document",
            "市中区乡村振兴劳务基地认定和奖补办法",
            "--addr",
            &up.addr,
            "--token",
            token,
        ])
    };
    for value in ["30", "25"] {
        let out = set(value, &publisher);
        assert!(out.status.success(), "{}", text(&out.stderr));
    }
    let listed = bangfu(&[
        "subsidy",
        "parameter",
        "list",
        "--key",
        "subsidy.labor_base_award_min_absorbed",
        "--addr",
        &up.addr,
        "--token",
        &finance,
        "--json",
    ]);
    assert!(listed.status.success(), "{}", text(&listed.stderr));
    let rows: Vec<serde_json::Value> = serde_json::from_str(&text(&listed.stdout)).expect("a JSON array");
    assert_eq!(rows.len(), 1, "{rows:?}");
    assert_eq!(rows[0]["regionPrefix"], "370402");
    assert_eq!(rows[0]["value"], "25", "{rows:?}");
    // A finance clerk reads the rules but may not change them.
    let refused = set("1", &finance);
    assert_eq!(refused.status.code(), Some(5), "{}", text(&refused.stderr));

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
            .any(|line| line.trim_start().starts_with('3') && line.contains("NOT_FOUND")),
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
    let summary: serde_json::Value = serde_json::from_str(&text(&again.stdout)).expect("one JSON document");
    assert_eq!(summary["unchanged"], 1);
    assert_eq!(summary["createdVerified"], 0);

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

/// Runs `bangfu subsidy ARGS --addr … --token …`, failing the test unless it succeeds; stdout.
fn subsidy(up: &Up, token: &str, args: &[&str]) -> String {
    let mut all = vec!["subsidy"];
    all.extend_from_slice(args);
    all.extend_from_slice(&["--addr", &up.addr, "--token", token]);
    let out = bangfu(&all);
    assert!(
        out.status.success(),
        "bangfu {}: {}{}",
        all.join(" "),
        text(&out.stderr),
        text(&out.stdout)
    );
    text(&out.stdout)
}

/// Two poverty-alleviated persons on posts in Shizhong, each with an approved March claim and a
/// verified account, and a notice period of 0 days; returns the fund's name and the persons.
async fn a_month_of_post_subsidies(up: &Up, admin: &str, clerk: &str) -> (String, Vec<String>) {
    use bangfu_proto::common::v1 as common;
    use bangfu_proto::identity::v1 as id;
    use bangfu_proto::subsidy::v1 as pb;

    use crate::replicas::authorized;
    let channel = tonic::transport::Channel::from_shared(up.addr.clone())
        .expect("url")
        .connect()
        .await
        .expect("connect");
    let mut identity = id::identity_service_client::IdentityServiceClient::new(channel.clone());
    let mut subsidy = pb::subsidy_service_client::SubsidyServiceClient::new(channel);
    let date = |year, month, day| common::Date { year, month, day };
    let fund = subsidy
        .create_fund(authorized(
            pb::CreateFundRequest {
                fund: Some(pb::Fund {
                    display_name: "2025年枣庄市就业补助资金".into(),
                    fund_source: pb::FundSource::EmploymentSubsidy as i32,
                    region_prefix: "3704".into(),
                    year: 2025,
                    budget_document: "枣财社指〔2025〕1号".into(),
                    budget: Some(common::Money { fen: 10_000_000 }),
                    ..Default::default()
                }),
                request_id: String::new(),
            },
            admin,
        ))
        .await
        .expect("fund")
        .into_inner()
        .fund
        .expect("fund");
    subsidy
        .update_parameter(authorized(
            pb::UpdateParameterRequest {
                parameter: Some(common::Parameter {
                    key: "subsidy.notice_days".into(),
                    region_prefix: "3704".into(),
                    valid_from: Some(date(2020, 1, 1)),
                    value: 0,
                    source_document: "试点：公示期已在村务公开栏完成".into(),
                    ..Default::default()
                }),
                update_mask: None,
                allow_missing: true,
            },
            admin,
        ))
        .await
        .expect("notice days");
    let mut persons = Vec::new();
    for (n, name) in ["岗位甲", "岗位乙"].iter().enumerate() {
        let body = format!("37040219750101{:03}", 100 + n);
        let citizen_id = bangfu_platform::testing::citizen_id(&body);
        let person = identity
            .create_person(authorized(
                id::CreatePersonRequest {
                    person: Some(id::Person {
                        display_name: (*name).into(),
                        citizen_id: citizen_id.clone(),
                        registered_region: Some(common::RegionCode {
                            code: "370402001013".into(),
                            display_name: String::new(),
                        }),
                        ..Default::default()
                    }),
                    request_id: String::new(),
                },
                admin,
            ))
            .await
            .expect("person")
            .into_inner()
            .person
            .expect("person")
            .name;
        identity
            .certify_category(authorized(
                id::CertifyCategoryRequest {
                    person: person.clone(),
                    certification: Some(common::CategoryCertification {
                        category: common::PersonCategory::PovertyAlleviated as i32,
                        certifying_body: "枣庄市市中区乡村振兴局".into(),
                        document_reference: "市中乡振〔2021〕1号".into(),
                        valid_from: Some(date(2021, 1, 1)),
                        ..Default::default()
                    }),
                    request_id: String::new(),
                },
                admin,
            ))
            .await
            .expect("certified");
        let fact = |name: &str, value: pb::fact_value::Value| pb::Fact {
            name: name.into(),
            value: Some(pb::FactValue { value: Some(value) }),
        };
        let claim = pb::Claim {
            policy: "policies/zz-welfare-post-2021".into(),
            person: person.clone(),
            payee: Some(pb::Payee {
                payee: Some(pb::payee::Payee::Person(person.clone())),
            }),
            period: Some(common::Period {
                first_day: Some(date(2025, 3, 1)),
                last_day: Some(date(2025, 3, 31)),
            }),
            facts: vec![
                fact("days_on_post", pb::fact_value::Value::IntegerValue(31)),
                fact(
                    "post_monthly_standard_fen",
                    pb::fact_value::Value::MoneyValue(common::Money { fen: 50_000 }),
                ),
            ],
            source: Some(pb::ClaimSource {
                system: "welfare-post".into(),
                reference: format!("assignments/{n}/months/2025-03"),
            }),
            ..Default::default()
        };
        let decided = subsidy
            .submit_claim(authorized(
                pb::SubmitClaimRequest {
                    claim: Some(claim),
                    request_id: String::new(),
                },
                admin,
            ))
            .await
            .expect("claim")
            .into_inner()
            .claim
            .expect("claim");
        assert_eq!(decided.state, pb::ClaimState::Approved as i32, "{decided:?}");
        subsidy
            .register_payee_account(authorized(
                pb::RegisterPayeeAccountRequest {
                    payee_account: Some(pb::PayeeAccount {
                        owner: Some(pb::Payee {
                            payee: Some(pb::payee::Payee::Person(person.clone())),
                        }),
                        kind: pb::PayeeAccountKind::SocialSecurityCard as i32,
                        account_number: format!("62170000990000{n:02}"),
                        holder_name: (*name).into(),
                        holder_citizen_id: citizen_id,
                        bank_name: "枣庄农村商业银行".into(),
                        ..Default::default()
                    }),
                    request_id: String::new(),
                },
                clerk,
            ))
            .await
            .expect("account");
        persons.push(person);
    }
    (fund.name, persons)
}

#[tokio::test]
async fn a_payroll_runs_from_batch_to_bank_results_with_the_subsidy_commands() {
    let dir = tempfile::tempdir().expect("tmp");
    let data = dir.path().join("data");
    let up = Up::start(&data);
    let keys = data.join("keys");
    let keys = keys.to_str().expect("path");
    let admin = token(keys, "agri", "admin", "3704");
    let clerk = token(keys, "finance", "clerk", "3704");
    let reviewer = token(keys, "finance", "reviewer", "3704");
    let (fund, persons) = a_month_of_post_subsidies(&up, &admin, &clerk).await;

    let approved = subsidy(&up, &clerk, &["claims", "--state", "approved"]);
    assert_eq!(
        approved.lines().filter(|l| l.starts_with("claims/")).count(),
        2,
        "{approved}"
    );
    assert!(approved.contains("500.00 元"), "{approved}");

    let created = subsidy(
        &up,
        &clerk,
        &[
            "batch",
            "create",
            "--display-name",
            "2025年3月市中区公益性岗位补贴",
            "--fund",
            &fund,
            "--region-prefix",
            "370402",
            "--json",
        ],
    );
    let created: serde_json::Value = serde_json::from_str(&created).expect("json");
    let batch = created["paymentBatch"]["name"].as_str().expect("name").to_string();
    assert_eq!(created["paymentBatch"]["controlCount"], "2");

    // The notice: masked names and amounts, never an ID or an account number.
    let notice = subsidy(
        &up,
        &clerk,
        &[
            "notice",
            &batch,
            "--publish",
            "--issuer",
            "枣庄市市中区财政局",
            "--objection-contact",
            "市中区财政局 0632-1234567",
        ],
    );
    assert!(notice.contains("岗*甲") || notice.contains("岗**"), "{notice}");
    assert!(notice.contains("500.00 元"), "{notice}");
    assert!(
        notice
            .lines()
            .any(|l| l.starts_with("issuer") && l.ends_with("枣庄市市中区财政局")),
        "{notice}"
    );
    assert!(!notice.contains("370402197501011"), "{notice}");
    assert!(!notice.contains("621700009900"), "{notice}");

    // Approved by a second person, exported, paid.
    subsidy(&up, &reviewer, &["approve", &batch, "--note", "公示期满无异议"]);
    let file = dir.path().join("发放明细.csv");
    let exported = subsidy(
        &up,
        &clerk,
        &[
            "export",
            &batch,
            "--out",
            file.to_str().expect("path"),
            "--reference",
            "枣财支〔2025〕3号",
        ],
    );
    assert!(exported.contains("2 lines, 1000.00 元"), "{exported}");
    let bytes = std::fs::read(&file).expect("the file");
    let (content, _, malformed) = encoding_rs::GBK.decode(&bytes);
    assert!(!malformed, "the file is GBK");
    let mut results = String::from("明细编号,金额（元）,结果,付款日期,银行流水号,失败原因\n");
    for line in content.lines().skip(1).filter(|l| !l.starts_with("合计")) {
        let cells: Vec<&str> = line.split(',').collect();
        results.push_str(&format!("{},{},成功,2025-04-10,R{},\n", cells[1], cells[7], cells[0]));
    }
    let results_file = dir.path().join("回盘.csv");
    std::fs::write(&results_file, results).expect("results");
    let reconciled = subsidy(
        &up,
        &clerk,
        &[
            "import-results",
            &batch,
            results_file.to_str().expect("path"),
            "--bank-name",
            "枣庄农村商业银行",
        ],
    );
    assert!(reconciled.contains("balanced"), "{reconciled}");
    assert!(reconciled.contains("yes"), "{reconciled}");

    let statement = subsidy(&up, &clerk, &["statement", &persons[0]]);
    assert!(statement.contains("paid"), "{statement}");
    assert!(statement.contains("500.00 元"), "{statement}");
    let shown = subsidy(&up, &clerk, &["batch", "get", &batch]);
    assert!(shown.contains("reconciliation.paid count"), "{shown}");
}
