//! `bangfu jobs …` against `bangfu up`, as a county employment-service desk of HR uses it on
//! today's date: an assistance workshop recorded and certified, the employer's postings imported
//! from its CSV list (a row with the wages the wrong way round reported, the others created), a
//! person the registry certifies as poverty-alleviated registered as a seeker, recommended for a
//! posting, accepted, placed and followed up, and the placement counted in 附件1. No subsidy
//! policy is needed: no export batch is sent.

use std::process::Output;

use crate::cli::{against, day, json, ok, text, token};
use crate::up::Up;

const VILLAGE: &str = "370402001013";
const COUNTY: &str = "370402";
/// A real licence's unified social credit code (its check character is right).
const CREDIT_CODE: &str = "91350100M000100Y43";
const VALID_UNTIL: &str = "2027-12-31";

fn jobs(up: &Up, token: &str, args: &[&str]) -> Output {
    let mut all = vec!["jobs"];
    all.extend_from_slice(args);
    against(up, token, &all)
}

fn identity(up: &Up, token: &str, args: &[&str]) -> Output {
    let mut all = vec!["identity"];
    all.extend_from_slice(args);
    against(up, token, &all)
}

#[test]
fn a_county_desk_places_a_target_person_with_the_jobs_commands() {
    let dir = tempfile::tempdir().expect("tmp");
    let data = dir.path().join("data");
    let up = Up::start(&data);
    let keys = data.join("keys");
    let keys = keys.to_str().expect("path");
    let today = time::OffsetDateTime::now_utc()
        .to_offset(time::macros::offset!(+8))
        .date();
    let month = format!("{:04}-{:02}", today.year(), u8::from(today.month()));
    let clerk = token(keys, "hr", "clerk", "37", "clerk-hr");
    let reviewer = token(keys, "hr", "reviewer", "37", "reviewer-hr");
    let certifier = token(keys, "agri", "reviewer", "37", "reviewer-agri");

    // A person of working age in the registry, certified poverty-alleviated by rural affairs.
    let citizen_id = bangfu_platform::testing::citizen_id("37040219900101301");
    let person = json(identity(
        &up,
        &clerk,
        &[
            "create",
            "--name",
            "求职甲",
            "--citizen-id",
            &citizen_id,
            "--region",
            VILLAGE,
            "--json",
        ],
    ));
    let person = person["name"].as_str().expect("name").to_string();
    ok(identity(
        &up,
        &certifier,
        &[
            "certify",
            &person,
            "--category",
            "poverty-alleviated",
            "--body",
            "枣庄市市中区乡村振兴局",
            "--document",
            "市中乡振〔2021〕1号",
            "--from",
            &day(today - time::Duration::days(3 * 365)),
        ],
    ));

    // The workshop, certified by the HR reviewer.
    let created = json(jobs(
        &up,
        &clerk,
        &[
            "carrier-create",
            "--name",
            "市中区榴园服装帮扶车间",
            "--kind",
            "assistance-workshop",
            "--credit-code",
            CREDIT_CODE,
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
    let certified = json(jobs(
        &up,
        &reviewer,
        &[
            "certify",
            &carrier,
            "--body",
            "枣庄市人力资源和社会保障局",
            "--document",
            "枣人社字〔2026〕3号",
            "--date",
            &day(today),
            "--valid-until",
            VALID_UNTIL,
            "--json",
        ],
    ));
    assert_eq!(certified["carrier"]["certified"], true, "{certified}");
    let listed = ok(jobs(&up, &clerk, &["carriers", "--region-prefix", COUNTY]));
    assert!(listed.contains(&carrier), "{listed}");

    // The employer's list as it hands it in: the third posting's wages are the wrong way round.
    let list = dir.path().join("岗位信息.csv");
    std::fs::write(
        &list,
        format!(
            "岗位名称,职业编码,职业名称,工作地点,最低月薪,最高月薪,招聘人数,合同期限,每周工时,技能要求,有效期至,跨区域共享\n\
             服装缝纫工,6-05-01-01,缝纫工,{VILLAGE},2400,3600,3,12,44,缝纫、熨烫,{VALID_UNTIL},否\n\
             包装工,6-31-01-03,包装工,{VILLAGE},2200,3000,2,12,44,,{VALID_UNTIL},是\n\
             质检员,6-31-03-01,检验员,{VILLAGE},4000,3000,1,12,44,质检,{VALID_UNTIL},否\n"
        ),
    )
    .expect("write");
    let imported = jobs(
        &up,
        &clerk,
        &[
            "postings-import",
            list.to_str().expect("path"),
            "--carrier",
            &carrier,
            "--json",
        ],
    );
    assert!(!imported.status.success(), "a row failed: the import says so");
    assert!(
        text(&imported.stderr).contains("1 of 3 rows were not created"),
        "{}",
        text(&imported.stderr)
    );
    let rows: Vec<serde_json::Value> =
        serde_json::from_str(&text(&imported.stdout)).expect("one JSON array of the rows");
    assert_eq!(rows.len(), 3, "{rows:?}");
    assert_eq!(rows[0]["row"], 2);
    assert_eq!(rows[0]["posting"]["title"], "服装缝纫工");
    assert_eq!(rows[1]["posting"]["sharedAcrossRegions"], true);
    assert_eq!(rows[2]["row"], 4);
    let why = rows[2]["error"].as_str().expect("why row 4 failed");
    assert!(why.contains("wage_max"), "{why}");
    let posting = rows[0]["posting"]["name"].as_str().expect("name").to_string();
    let listed = ok(jobs(&up, &clerk, &["postings", "--carrier", &carrier]));
    assert!(listed.contains("服装缝纫工") && listed.contains("包装工"), "{listed}");
    assert!(!listed.contains("质检员"), "the bad row made no posting: {listed}");
    // Imported again, the good rows make nothing twice.
    let again = jobs(
        &up,
        &clerk,
        &["postings-import", list.to_str().expect("path"), "--carrier", &carrier],
    );
    assert!(!again.status.success());
    assert!(text(&again.stdout).contains(&posting), "{}", text(&again.stdout));
    let postings = ok(jobs(&up, &clerk, &["postings", "--carrier", &carrier, "--json"]));
    let postings: serde_json::Value = serde_json::from_str(&postings).expect("a JSON array");
    assert_eq!(postings.as_array().map(Vec::len), Some(2), "{postings}");

    let registered = json(jobs(
        &up,
        &clerk,
        &[
            "seeker-register",
            "--person",
            &person,
            "--intentions",
            "local,out-of-county",
            "--expected-wage",
            "3000",
            "--available-from",
            &day(today),
            "--skills",
            "缝纫",
            "--json",
        ],
    ));
    let seeker = registered["seeker"]["name"].as_str().expect("name").to_string();
    assert_eq!(
        registered["seeker"]["priority"], "TARGET_PRIORITY_POVERTY_ALLEVIATED",
        "{registered}"
    );

    let recommended = json(jobs(&up, &clerk, &["recommend", "--posting", &posting, "--json"]));
    let first = &recommended["recommendations"][0];
    assert_eq!(first["seeker"]["name"], seeker.as_str(), "{recommended}");
    let table = ok(jobs(&up, &clerk, &["recommend", "--posting", &posting]));
    assert!(table.contains(&seeker) && table.contains("求*"), "{table}");
    assert!(table.contains("distance"), "the reasons are shown: {table}");
    let for_seeker = ok(jobs(&up, &clerk, &["recommend", "--seeker", &seeker]));
    assert!(for_seeker.contains(&posting), "{for_seeker}");

    let applied = json(jobs(
        &up,
        &clerk,
        &["apply", "--posting", &posting, "--seeker", &seeker, "--json"],
    ));
    let application = applied["application"]["name"].as_str().expect("name").to_string();
    let accepted = json(jobs(&up, &clerk, &["decide", &application, "--accept", "--json"]));
    assert_eq!(accepted["application"]["state"], "APPLICATION_STATE_ACCEPTED");

    let placed = json(jobs(
        &up,
        &clerk,
        &[
            "place",
            "--posting",
            &posting,
            "--seeker",
            &seeker,
            "--application",
            &application,
            "--start",
            &day(today),
            "--contract-months",
            "12",
            "--wage",
            "3000",
            "--social-insurance",
            "--json",
        ],
    ));
    let placement = placed["placement"]["name"].as_str().expect("name").to_string();
    assert_eq!(placed["placement"]["state"], "PLACEMENT_STATE_ACTIVE");
    let followed = json(jobs(
        &up,
        &clerk,
        &[
            "follow-up",
            &placement,
            "--month",
            &month,
            "--income",
            "3000",
            "--note",
            "电话回访，在岗",
            "--json",
        ],
    ));
    assert_eq!(followed["followUp"]["stillEmployed"], true, "{followed}");
    let listed = ok(jobs(&up, &clerk, &["placements", "--carrier", &carrier]));
    assert!(listed.contains(&placement), "{listed}");
    let shown = ok(jobs(&up, &clerk, &["placements", &placement]));
    assert!(shown.contains("电话回访，在岗"), "the latest follow-up: {shown}");

    let stats = json(jobs(&up, &clerk, &["stats", "--region-prefix", COUNTY, "--json"]));
    let counts = &stats["total"]["counts"];
    assert_eq!(counts["targetPersonsPlaced"], 1, "{stats}");
    assert_eq!(counts["assistanceWorkshops"], 1, "{stats}");
    assert_eq!(counts["workshopTargetPersons"], 1, "{stats}");
    let form = ok(jobs(&up, &clerk, &["stats", "--region-prefix", COUNTY]));
    assert!(form.contains("脱贫人口就业") && form.contains("合计"), "{form}");
}
