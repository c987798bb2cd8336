//! `bangfu reports …` against `bangfu up`, as Shizhong's HR desk and Zaozhuang's city reviewers
//! use it on today's date: the county's quarter generated from live numbers (a workshop and a
//! labor brand certified in job matching, a worker enrolled on a work-relief project), every
//! cell of the exported workbook compared with the services' own stats, refusals for a quarter
//! that has not begun, a region outside the clerk's scope, approval at the wrong level and by
//! the submitter; approval and return racing; the approved numbers frozen while a later change
//! shows as a difference; the city held back until its counties are approved; the overdue listed.

use bangfu_proto::common::v1 as common;
use bangfu_proto::jobs::v1 as jobs;
use bangfu_proto::welfare_post::v1 as posts;
use bangfu_proto::work_relief::v1 as relief;
use calamine::{Data, Reader, Xlsx, open_workbook};

use crate::cli::{against, day, json, ok, text, token};
use crate::relief_cli::{VILLAGE, relief, setup};
use crate::replicas::authorized;
use crate::up::Up;

const COUNTY: &str = "370402";

/// A unified social credit code with its GB 32100 check character, from 17 characters.
fn credit_code(first17: &str) -> String {
    const CHARSET: &[u8] = b"0123456789ABCDEFGHJKLMNPQRTUWXY";
    const WEIGHTS: [usize; 17] = [1, 3, 9, 27, 19, 26, 16, 17, 20, 29, 25, 13, 8, 24, 10, 30, 28];
    let sum: usize = first17
        .bytes()
        .zip(WEIGHTS)
        .map(|(b, w)| CHARSET.iter().position(|c| *c == b).expect("a code character") * w)
        .sum();
    format!("{first17}{}", char::from(CHARSET[(31 - sum % 31) % 31]))
}

/// A carrier of `kind` in Shizhong, certified by the city's HR reviewer today.
fn certified_carrier(up: &Up, clerk: &str, reviewer: &str, kind: &str, name: &str, code: &str, today: time::Date) {
    let created = json(against(
        up,
        clerk,
        &[
            "jobs",
            "carrier-create",
            "--name",
            name,
            "--kind",
            kind,
            "--credit-code",
            &credit_code(code),
            "--region",
            VILLAGE,
            "--contact",
            "王经理",
            "--phone",
            "0632-3311234",
            "--json",
        ],
    ));
    let carrier = created["carrier"]["name"].as_str().expect("name").to_string();
    ok(against(
        up,
        reviewer,
        &[
            "jobs",
            "certify",
            &carrier,
            "--body",
            "枣庄市人力资源和社会保障局",
            "--document",
            "枣人社字〔2026〕3号",
            "--date",
            &day(today),
            "--valid-until",
            &day(today + time::Duration::days(700)),
        ],
    ));
}

fn reports(up: &Up, token: &str, args: &[&str]) -> std::process::Output {
    let mut all = vec!["reports"];
    all.extend_from_slice(args);
    against(up, token, &all)
}

/// A failed command's reason code is in its message.
fn refused(out: std::process::Output, reason: &str) -> String {
    assert!(!out.status.success(), "refused: {}", text(&out.stdout));
    let message = text(&out.stderr);
    assert!(message.contains(reason), "expected {reason}: {message}");
    message
}

fn cell(report: &serde_json::Value, row: usize, column: &str) -> Option<i64> {
    report["rows"][row]["cells"]
        .as_array()
        .expect("cells")
        .iter()
        .find(|c| c["column"] == format!("PROGRESS_COLUMN_{column}"))
        // int64 travels as a JSON string; a zero is left out.
        .map(|c| match &c["value"] {
            serde_json::Value::Null => 0,
            serde_json::Value::String(s) => s.parse().expect("a number"),
            other => other.as_i64().expect("a number"),
        })
}

#[tokio::test]
async fn a_county_files_its_quarter_from_live_numbers_and_the_city_signs_it_off() {
    let dir = tempfile::tempdir().expect("tmp");
    let data = dir.path().join("data");
    let up = Up::start(&data);
    let keys = data.join("keys");
    let keys = keys.to_str().expect("path");
    let today = time::OffsetDateTime::now_utc()
        .to_offset(time::macros::offset!(+8))
        .date();
    let year = today.year();
    let quarter = (u8::from(today.month()) - 1) / 3 + 1;
    let period = format!("{year}Q{quarter}");
    let report = format!("reports/progress-{COUNTY}-{year}q{quarter}");
    let last_month = (today.replace_day(1).expect("day 1") - time::Duration::days(1))
        .replace_day(1)
        .expect("day 1");

    // What the services hold: a worker on a work-relief project, two certified carriers.
    let admin = token(keys, "ndrc", "admin", "37", "admin-a");
    let second_admin = token(keys, "finance", "admin", "37", "admin-b");
    let ndrc = token(keys, "ndrc", "clerk", COUNTY, "clerk-ndrc");
    let person = setup(&up, &admin, &second_admin, year).await;
    let created = json(relief(
        &up,
        &ndrc,
        &[
            "project-create",
            "--number",
            "SD-RPT-001",
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
            "sd-work-relief-remuneration-2026",
            "--key-county",
            "--json",
        ],
    ));
    let project = created["project"]["name"].as_str().expect("name").to_string();
    json(relief(
        &up,
        &ndrc,
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
    let jobs_clerk = token(keys, "hr", "clerk", "37", "clerk-jobs");
    let jobs_reviewer = token(keys, "hr", "reviewer", "37", "reviewer-jobs");
    certified_carrier(
        &up,
        &jobs_clerk,
        &jobs_reviewer,
        "assistance-workshop",
        "市中区榴园服装帮扶车间",
        "91370402MA3C00001",
        today,
    );
    certified_carrier(
        &up,
        &jobs_clerk,
        &jobs_reviewer,
        "labor-brand",
        "市中区榴乡巧手劳务品牌",
        "91370402MA3C00002",
        today,
    );

    // The county desk generates its quarter.
    let clerk = token(keys, "hr", "clerk", COUNTY, "clerk-shizhong");
    let generated = json(reports(
        &up,
        &clerk,
        &["generate", COUNTY, "--period", &period, "--json"],
    ));
    assert_eq!(generated["name"], report.as_str(), "{generated}");
    assert_eq!(generated["state"], "REPORT_STATE_DRAFT", "{generated}");
    assert!(
        generated["missingParts"].as_array().is_none_or(Vec::is_empty),
        "{generated}"
    );
    assert_eq!(cell(&generated, 0, "ASSISTANCE_WORKSHOPS"), Some(1), "{generated}");
    assert_eq!(cell(&generated, 0, "LABOR_BRANDS"), Some(1));
    assert_eq!(cell(&generated, 0, "WORK_RELIEF_WORKERS"), Some(1));

    // Every cell of the workbook is what the services' stats say, asked as the clerk.
    let channel = tonic::transport::Channel::from_shared(up.addr.clone())
        .expect("url")
        .connect()
        .await
        .expect("connect");
    let as_of = common::Date {
        year,
        month: i32::from(u8::from(today.month())),
        day: i32::from(today.day()),
    };
    let job_stats = jobs::job_matching_service_client::JobMatchingServiceClient::new(channel.clone())
        .get_job_stats(authorized(
            jobs::GetJobStatsRequest {
                region_prefix: COUNTY.into(),
                as_of: Some(as_of),
            },
            &clerk,
        ))
        .await
        .expect("job stats")
        .into_inner()
        .total
        .and_then(|t| t.counts)
        .expect("counts");
    let post_stats = posts::welfare_post_service_client::WelfarePostServiceClient::new(channel.clone())
        .get_post_stats(authorized(
            posts::GetPostStatsRequest {
                region_prefix: COUNTY.into(),
                year,
                as_of: Some(as_of),
            },
            &clerk,
        ))
        .await
        .expect("post stats")
        .into_inner();
    let relief_stats = relief::work_relief_service_client::WorkReliefServiceClient::new(channel.clone())
        .get_project_stats(authorized(
            relief::GetProjectStatsRequest {
                region_prefix: COUNTY.into(),
                year,
                as_of: Some(as_of),
            },
            &clerk,
        ))
        .await
        .expect("project stats")
        .into_inner();
    let expected: [f64; 12] = [
        job_stats.labor_alliances,
        job_stats.labor_brands,
        job_stats.labor_bases,
        job_stats.labor_base_target_persons,
        job_stats.labor_cooperatives,
        job_stats.assistance_workshops,
        job_stats.workshop_target_persons,
        relief_stats.workers,
        post_stats.persons_on_post,
        job_stats.target_persons_in_training,
        job_stats.relocation_site_target_persons,
        job_stats.relocation_site_events,
    ]
    .map(f64::from);
    assert_eq!((expected[5], expected[1], expected[7]), (1.0, 1.0, 1.0));
    let file = dir.path().join("附件1.xlsx");
    ok(reports(
        &up,
        &clerk,
        &["export", &report, "--xlsx", file.to_str().expect("path")],
    ));
    let mut workbook: Xlsx<_> = open_workbook(&file).expect("a workbook");
    let sheet = workbook.worksheet_range("附件1").expect("the form's sheet");
    let at = |row: u32, col: u32| sheet.get_value((row, col)).cloned().unwrap_or(Data::Empty);
    assert_eq!(at(0, 0), Data::String("防止返贫就业攻坚行动推进情况表".into()));
    assert_eq!(at(2, 0), Data::String("市、县（市、区）".into()));
    assert_eq!(at(2, 3), Data::String("乡村振兴劳务基地".into()));
    assert_eq!(at(3, 4), Data::String("吸纳脱贫人口数".into()));
    assert_eq!(at(2, 6), Data::String("就业帮扶车间".into()));
    assert_eq!(at(4, 0), Data::String("市中区".into()));
    for (i, value) in expected.iter().enumerate() {
        let col = u32::try_from(i + 1).expect("column");
        assert_eq!(at(4, col), Data::Float(*value), "column {col}");
    }
    let footer: Vec<String> = (5..12).map(|row| at(row, 0).to_string()).collect();
    assert!(
        footer.iter().any(|line| line.contains("注：相关数据填当年累计数")),
        "{footer:?}"
    );
    assert!(footer.iter().any(|line| line.contains("clerk-shizhong")), "{footer:?}");
    let merged = workbook
        .worksheet_merge_cells("附件1")
        .expect("merged cells")
        .expect("merged");
    assert!(
        merged.iter().any(|m| m.start == (2, 3) && m.end == (2, 4)),
        "the labor bases' heading spans its two columns: {merged:?}"
    );
    let sources = workbook.worksheet_range("数据来源").expect("the sources' sheet");
    let services: Vec<String> = sources
        .rows()
        .map(|r| r.get(1).map(|c| c.to_string()).unwrap_or_default())
        .collect();
    for service in ["jobs", "welfare_post", "work_relief", "identity"] {
        assert!(
            services.iter().any(|s| s == service),
            "{service} is a source: {services:?}"
        );
    }
    let csv_file = dir.path().join("附件1.csv");
    ok(reports(
        &up,
        &clerk,
        &["export", &report, "--csv", csv_file.to_str().expect("path")],
    ));
    let csv_text = std::fs::read_to_string(&csv_file).expect("csv");
    assert!(
        csv_text.starts_with("\u{feff}地区代码,市、县（市、区）,劳务协作联盟个数"),
        "{csv_text}"
    );

    // Bad input, each with its reason.
    refused(
        reports(
            &up,
            &clerk,
            &["generate", COUNTY, "--period", &format!("{}Q1", year + 1)],
        ),
        "REPORT_PERIOD_NOT_BEGUN",
    );
    refused(
        reports(&up, &clerk, &["generate", "370403", "--period", &period]),
        "NOT_FOUND",
    );

    // Submitted by the county; the county's own reviewer and the province may not approve it.
    let submitted = json(reports(&up, &clerk, &["submit", &report, "--json"]));
    assert_eq!(submitted["state"], "REPORT_STATE_SUBMITTED");
    let same_level = token(keys, "hr", "reviewer", COUNTY, "reviewer-shizhong");
    refused(reports(&up, &same_level, &["approve", &report]), "REPORT_WRONG_LEVEL");
    let province = token(keys, "hr", "reviewer", "37", "reviewer-province");
    refused(reports(&up, &province, &["approve", &report]), "REPORT_WRONG_LEVEL");
    refused(reports(&up, &clerk, &["approve", &report]), "PERMISSION_MISSING");

    // Two city reviewers at once, one approving and one returning: exactly one wins.
    let city_a = token(keys, "hr", "reviewer", "3704", "reviewer-city-a");
    let city_b = token(keys, "hr", "reviewer", "3704", "reviewer-city-b");
    let etag = submitted["etag"].as_str().expect("etag").to_string();
    let approve = {
        let (addr, city_a, report, etag) = (up.addr.clone(), city_a.clone(), report.clone(), etag.clone());
        std::thread::spawn(move || {
            std::process::Command::new(env!("CARGO_BIN_EXE_bangfu"))
                .args([
                    "reports", "approve", &report, "--etag", &etag, "--addr", &addr, "--token", &city_a,
                ])
                .output()
                .expect("run")
        })
    };
    let returned = {
        let (addr, city_b, report, etag) = (up.addr.clone(), city_b.clone(), report.clone(), etag.clone());
        std::thread::spawn(move || {
            std::process::Command::new(env!("CARGO_BIN_EXE_bangfu"))
                .args([
                    "reports",
                    "return",
                    &report,
                    "--etag",
                    &etag,
                    "--reason",
                    "培训人数待核实",
                    "--addr",
                    &addr,
                    "--token",
                    &city_b,
                ])
                .output()
                .expect("run")
        })
    };
    let (approve, returned) = (approve.join().expect("approve"), returned.join().expect("return"));
    assert!(
        approve.status.success() != returned.status.success(),
        "one decision wins: approve {} / return {}",
        text(&approve.stderr),
        text(&returned.stderr)
    );
    if returned.status.success() {
        // Returned: generated again and submitted again, then approved.
        refused(reports(&up, &clerk, &["submit", &report]), "STATE_CONFLICT");
        json(reports(
            &up,
            &clerk,
            &["generate", COUNTY, "--period", &period, "--json"],
        ));
        ok(reports(&up, &clerk, &["submit", &report]));
        ok(reports(&up, &city_a, &["approve", &report]));
    }
    let approved = json(reports(&up, &clerk, &["get", &report, "--json"]));
    assert_eq!(approved["state"], "REPORT_STATE_APPROVED", "{approved}");

    // The submitter may not approve their own: an administrator of the city submits one.
    let city_admin = token(keys, "hr", "admin", "3704", "admin-city");
    json(reports(
        &up,
        &city_admin,
        &["generate", "370403", "--period", &period, "--json"],
    ));
    ok(reports(
        &up,
        &city_admin,
        &["submit", &format!("progress-370403-{year}q{quarter}")],
    ));
    refused(
        reports(
            &up,
            &city_admin,
            &["approve", &format!("progress-370403-{year}q{quarter}")],
        ),
        "SAME_MAKER_AND_CHECKER",
    );

    // A cooperative certified after the approval: the approved numbers stay, the change shows.
    certified_carrier(
        &up,
        &jobs_clerk,
        &jobs_reviewer,
        "labor-cooperative",
        "市中区孟庄劳务合作社",
        "93370402MA3C00003",
        today,
    );
    let again = json(reports(
        &up,
        &clerk,
        &["generate", COUNTY, "--period", &period, "--json"],
    ));
    assert_eq!(again["state"], "REPORT_STATE_APPROVED", "{again}");
    assert_eq!(cell(&again, 0, "LABOR_COOPERATIVES"), Some(0), "frozen: {again}");
    let differences = again["differences"].as_array().expect("differences");
    assert!(
        differences.iter().any(|d| d["row"] == COUNTY
            && d["column"] == "LABOR_COOPERATIVES"
            && d["frozenValue"] == "0"
            && d["liveValue"] == "1"),
        "{again}"
    );

    // The city waits for its counties.
    let city_clerk = token(keys, "hr", "clerk", "3704", "clerk-zaozhuang");
    let city = json(reports(
        &up,
        &city_clerk,
        &["generate", "3704", "--period", &period, "--json"],
    ));
    let regions: Vec<&str> = city["rows"]
        .as_array()
        .expect("rows")
        .iter()
        .map(|r| r["region"]["code"].as_str().expect("code"))
        .collect();
    assert_eq!(regions.first(), Some(&"3704"), "{regions:?}");
    assert!(regions.contains(&COUNTY) && regions.contains(&"370481"), "{regions:?}");
    let sum: i64 = (1..regions.len())
        .map(|row| cell(&city, row, "LABOR_BRANDS").expect("a number"))
        .sum();
    assert_eq!(
        cell(&city, 0, "LABOR_BRANDS"),
        Some(sum),
        "the city's row sums its counties"
    );
    let held = refused(
        reports(
            &up,
            &city_clerk,
            &["submit", &format!("progress-3704-{year}q{quarter}")],
        ),
        "REPORT_LOWER_LEVELS_PENDING",
    );
    assert!(held.contains("370403"), "{held}");

    // Last year's quarters are all past due: a county that filed nothing is listed overdue.
    let periods = ok(reports(
        &up,
        &city_clerk,
        &["periods", "3704", "--year", &(year - 1).to_string()],
    ));
    assert!(
        periods.lines().any(|line| line.contains(&format!("{}Q1", year - 1))
            && line.contains("370403")
            && line.contains("OVERDUE")),
        "{periods}"
    );
}
