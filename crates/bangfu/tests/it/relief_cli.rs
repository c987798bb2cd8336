//! `bangfu relief …` against `bangfu up`, as a county work-relief desk uses it on today's date:
//! a project and its funds, a worker enrolled, last month's muster roll from a workbook (a wrong
//! CSV one refused whole), the payroll computed and noticed with masked names, and the approval
//! refused until the notice ends. The shipped Shandong remuneration policy ends with 2025; the
//! province publishes the one in force now, as a deployment must.

use std::process::Output;

use bangfu_proto::common::v1 as common;
use bangfu_proto::identity::v1 as id;
use bangfu_proto::subsidy::v1 as sub;
use bangfu_proto::work_relief::v1 as pb;

use crate::cli::{against, day, json, ok, text, token};
use crate::replicas::authorized;
use crate::up::Up;

pub(crate) const VILLAGE: &str = "370402001013";
const POLICY: &str = "sd-work-relief-remuneration-2026";

pub(crate) fn relief(up: &Up, token: &str, args: &[&str]) -> Output {
    let mut all = vec!["relief"];
    all.extend_from_slice(args);
    against(up, token, &all)
}

/// A one-sheet workbook: the first row as text cells, the others a text and a number.
fn write_workbook(path: &std::path::Path, rows: &[(&str, &str)]) {
    use std::io::Write;
    let text = |r: &str, v: &str| format!("<c r=\"{r}\" t=\"inlineStr\"><is><t>{v}</t></is></c>");
    let mut sheet =
        String::from("<worksheet xmlns=\"http://schemas.openxmlformats.org/spreadsheetml/2006/main\"><sheetData>");
    for (i, (a, b)) in rows.iter().enumerate() {
        let n = i + 1;
        let second = if i == 0 {
            text(&format!("B{n}"), b)
        } else {
            format!("<c r=\"B{n}\"><v>{b}</v></c>")
        };
        sheet.push_str(&format!("<row r=\"{n}\">{}{second}</row>", text(&format!("A{n}"), a)));
    }
    sheet.push_str("</sheetData></worksheet>");
    let rels = "http://schemas.openxmlformats.org/package/2006/relationships";
    let office = "http://schemas.openxmlformats.org/officeDocument/2006/relationships";
    let parts = [
        (
            "[Content_Types].xml",
            "<Types xmlns=\"http://schemas.openxmlformats.org/package/2006/content-types\">\
             <Default Extension=\"rels\" ContentType=\"application/vnd.openxmlformats-package.relationships+xml\"/>\
             <Default Extension=\"xml\" ContentType=\"application/xml\"/>\
             <Override PartName=\"/xl/workbook.xml\" ContentType=\"application/vnd.openxmlformats-officedocument.spreadsheetml.sheet.main+xml\"/>\
             <Override PartName=\"/xl/worksheets/sheet1.xml\" ContentType=\"application/vnd.openxmlformats-officedocument.spreadsheetml.worksheet+xml\"/></Types>"
                .to_string(),
        ),
        (
            "_rels/.rels",
            format!("<Relationships xmlns=\"{rels}\"><Relationship Id=\"rId1\" Type=\"{office}/officeDocument\" Target=\"xl/workbook.xml\"/></Relationships>"),
        ),
        (
            "xl/workbook.xml",
            format!("<workbook xmlns=\"http://schemas.openxmlformats.org/spreadsheetml/2006/main\" xmlns:r=\"{office}\"><sheets><sheet name=\"考勤\" sheetId=\"1\" r:id=\"rId1\"/></sheets></workbook>"),
        ),
        (
            "xl/_rels/workbook.xml.rels",
            format!("<Relationships xmlns=\"{rels}\"><Relationship Id=\"rId1\" Type=\"{office}/worksheet\" Target=\"worksheets/sheet1.xml\"/></Relationships>"),
        ),
        ("xl/worksheets/sheet1.xml", sheet),
    ];
    let mut zip = zip::ZipWriter::new(std::fs::File::create(path).expect("create"));
    let options = zip::write::SimpleFileOptions::default().compression_method(zip::CompressionMethod::Stored);
    for (name, body) in parts {
        zip.start_file(name, options).expect("part");
        zip.write_all(body.as_bytes()).expect("write");
    }
    zip.finish().expect("finish");
}

/// What the province and county set up first: the remuneration policy in force (published by a
/// second subject), the county's wage guideline, and a worker in identity.
pub(crate) async fn setup(up: &Up, admin: &str, second_admin: &str, year: i32) -> String {
    let channel = tonic::transport::Channel::from_shared(up.addr.clone())
        .expect("url")
        .connect()
        .await
        .expect("connect");
    let mut subsidy = sub::subsidy_service_client::SubsidyServiceClient::new(channel.clone());
    let mut relief = pb::work_relief_service_client::WorkReliefServiceClient::new(channel.clone());
    let mut identity = id::identity_service_client::IdentityServiceClient::new(channel);
    let mut request = bangfu_subsidy_payment::grpc::policy_files::parse(
        "sd-work-relief-remuneration-2023.json",
        include_str!("../../../../services/subsidy-payment/policies/sd-work-relief-remuneration-2023.json"),
    )
    .expect("policy file");
    request.policy.as_mut().expect("policy").code = POLICY.into();
    let version = request.version.as_mut().expect("version");
    version.valid_from = Some(common::Date {
        year: year - 1,
        month: 1,
        day: 1,
    });
    version.valid_to = Some(common::Date {
        year: year + 1,
        month: 12,
        day: 31,
    });
    let created = subsidy
        .create_policy(authorized(request, admin))
        .await
        .expect("policy")
        .into_inner();
    subsidy
        .publish_policy_version(authorized(
            sub::PublishPolicyVersionRequest {
                name: created.version.expect("version").name,
                note: "续行山东省以工代赈劳务报酬发放口径".into(),
            },
            second_admin,
        ))
        .await
        .expect("published");
    relief
        .update_parameter(authorized(
            pb::UpdateParameterRequest {
                parameter: Some(common::Parameter {
                    key: "work_relief.wage_guideline_daily_fen".into(),
                    region_prefix: "3704".into(),
                    valid_from: Some(common::Date {
                        year: year - 1,
                        month: 1,
                        day: 1,
                    }),
                    value: 12_000,
                    source_document: "枣庄市以工代赈劳务报酬指导标准".into(),
                    ..Default::default()
                }),
                update_mask: None,
                allow_missing: true,
            },
            admin,
        ))
        .await
        .expect("guideline");
    identity
        .create_person(authorized(
            id::CreatePersonRequest {
                person: Some(id::Person {
                    display_name: "赈工甲".into(),
                    citizen_id: bangfu_platform::testing::citizen_id("37040219750101301"),
                    registered_region: Some(common::RegionCode {
                        code: VILLAGE.into(),
                        display_name: String::new(),
                    }),
                    labor_capacity: common::LaborCapacity::Full as i32,
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
        .name
}

#[tokio::test]
async fn a_county_desk_runs_a_month_of_work_relief_with_the_relief_commands() {
    let dir = tempfile::tempdir().expect("tmp");
    let data = dir.path().join("data");
    let up = Up::start(&data);
    let keys = data.join("keys");
    let keys = keys.to_str().expect("path");
    let today = time::OffsetDateTime::now_utc()
        .to_offset(time::macros::offset!(+8))
        .date();
    let last_month = (today.replace_day(1).expect("day 1") - time::Duration::days(1))
        .replace_day(1)
        .expect("day 1");
    let month = format!("{:04}-{:02}", last_month.year(), u8::from(last_month.month()));
    let admin = token(keys, "ndrc", "admin", "37", "admin-a");
    let second_admin = token(keys, "finance", "admin", "37", "admin-b");
    let clerk = token(keys, "ndrc", "clerk", "370402", "clerk-ndrc");
    let reviewer = token(keys, "ndrc", "reviewer", "370402", "reviewer-ndrc");
    let person = setup(&up, &admin, &second_admin, today.year()).await;

    let created = json(relief(
        &up,
        &clerk,
        &[
            "project-create",
            "--number",
            "SD-CLI-001",
            "--name",
            "张庄村生产道路硬化工程",
            "--summary",
            "硬化生产道路2.3公里",
            "--region",
            VILLAGE,
            "--start",
            &day(last_month),
            "--end",
            &day(today + time::Duration::days(365)),
            "--owner",
            "孟庄镇人民政府",
            "--contact",
            "王科长",
            "--phone",
            "0632-1234567",
            "--policy",
            POLICY,
            "--key-county",
            "--json",
        ],
    ));
    let project = created["project"]["name"].as_str().expect("name").to_string();
    let funded = json(relief(
        &up,
        &clerk,
        &[
            "funds",
            &project,
            "--source",
            "central",
            "--year",
            &today.year().to_string(),
            "--amount",
            "100000",
            "--document",
            "鲁发改振兴〔2026〕1号",
            "--json",
        ],
    ));
    assert_eq!(
        funded["laborShare"]["required"]["fen"], "3000000",
        "30 % of 100,000 yuan"
    );
    let listed = ok(relief(&up, &clerk, &["projects"]));
    assert!(listed.contains("SD-CLI-001"), "{listed}");

    let enrolled = json(relief(
        &up,
        &clerk,
        &[
            "enrol",
            &project,
            "--person",
            &person,
            "--daily-wage",
            "150",
            "--start",
            &day(last_month),
            "--agreement",
            "张庄路-001",
            "--json",
        ],
    ));
    let worker = enrolled["worker"]["name"].as_str().expect("name").to_string();
    let roster = ok(relief(&up, &clerk, &["workers", &project]));
    assert!(roster.contains("赈**") && roster.contains("1 workers"), "{roster}");

    // A wrong muster roll is refused whole, each bad line named.
    let bad = dir.path().join("bad.csv");
    std::fs::write(&bad, format!("人员,出勤天数\n{worker},40\n")).expect("write");
    let refused = relief(
        &up,
        &clerk,
        &[
            "attendance",
            &project,
            "--month",
            &month,
            "--file",
            bad.to_str().expect("path"),
        ],
    );
    assert!(!refused.status.success());
    assert!(text(&refused.stdout).contains("days"), "{}", text(&refused.stdout));
    assert!(
        text(&refused.stderr).contains("nothing was recorded"),
        "{}",
        text(&refused.stderr)
    );
    // The site clerk's workbook, the worker by id and the days as Excel keeps a number.
    let roll = dir.path().join("考勤表.xlsx");
    let id = worker.rsplit('/').next().expect("id");
    write_workbook(&roll, &[("人员", "出勤天数"), (id, "20")]);
    let recorded = json(relief(
        &up,
        &clerk,
        &[
            "attendance",
            &project,
            "--month",
            &month,
            "--file",
            roll.to_str().expect("path"),
            "--json",
        ],
    ));
    assert_eq!(recorded["recorded"], 1);

    let prepared = json(relief(
        &up,
        &clerk,
        &["payroll", &project, "--month", &month, "--prepare", "--json"],
    ));
    assert_eq!(prepared["payroll"]["total"]["fen"], "300000", "20 days × 150 yuan");
    let payroll = prepared["payroll"]["name"].as_str().expect("name").to_string();
    let noticed = json(relief(
        &up,
        &clerk,
        &[
            "notice",
            &payroll,
            "--contact",
            "市中区发改局以工代赈股 0632-1234567",
            "--json",
        ],
    ));
    assert_eq!(noticed["payroll"]["state"], "PAYROLL_STATE_NOTICE");
    let shown = ok(relief(&up, &clerk, &["notice", &payroll, "--show"]));
    assert!(shown.contains("赈**"), "{shown}");
    assert!(
        !shown.contains("37040219750101301"),
        "no citizen ID on the notice: {shown}"
    );

    let early = relief(&up, &reviewer, &["approve", &payroll]);
    assert!(!early.status.success());
    assert!(
        text(&early.stderr).contains("NOTICE_NOT_ENDED"),
        "{}",
        text(&early.stderr)
    );

    let stats = json(relief(
        &up,
        &clerk,
        &[
            "stats",
            "--region-prefix",
            "370402",
            "--year",
            &today.year().to_string(),
            "--json",
        ],
    ));
    assert_eq!(stats["projects"], 1);
    assert_eq!(stats["projectList"][0]["projectNumber"], "SD-CLI-001");
}
