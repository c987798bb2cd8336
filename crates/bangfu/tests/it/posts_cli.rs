//! `bangfu posts …` against `bangfu up`, as a township clerk and a reviewer of rural
//! revitalization use it on today's date: a post, its announcement, an application checked and
//! ranked, a hire notice of masked names, an objection, and the confirmation refused until the
//! notice ends. The shipped Zaozhuang policy and contract cap end with 2025; the county publishes
//! the ones in force now, as a deployment must.

use std::process::Output;

use bangfu_proto::common::v1 as common;
use bangfu_proto::identity::v1 as id;
use bangfu_proto::subsidy::v1 as sub;
use bangfu_proto::welfare_post::v1 as pb;
use time::Duration;

use crate::cli::{against, day, json, ok, text, token};
use crate::replicas::authorized;
use crate::up::Up;

const VILLAGE: &str = "370402001013";
const POLICY: &str = "zz-welfare-post-2026";

fn posts(up: &Up, token: &str, args: &[&str]) -> Output {
    let mut all = vec!["posts"];
    all.extend_from_slice(args);
    against(up, token, &all)
}

fn wire(date: time::Date) -> common::Date {
    common::Date {
        year: date.year(),
        month: i32::from(u8::from(date.month())),
        day: i32::from(date.day()),
    }
}

/// What a county sets up before its clerks can hire on today's date: the post policy in force
/// (published by a second subject), this year's fund, the contract cap, and a target person.
async fn county_setup(up: &Up, admin: &str, second_admin: &str, today: time::Date) -> String {
    let channel = tonic::transport::Channel::from_shared(up.addr.clone())
        .expect("url")
        .connect()
        .await
        .expect("connect");
    let mut subsidy = sub::subsidy_service_client::SubsidyServiceClient::new(channel.clone());
    let mut posts = pb::welfare_post_service_client::WelfarePostServiceClient::new(channel.clone());
    let mut identity = id::identity_service_client::IdentityServiceClient::new(channel);
    let year = today.year();
    let mut request = bangfu_subsidy_payment::grpc::policy_files::parse(
        "zz-welfare-post-2021.json",
        include_str!("../../../../services/subsidy-payment/policies/zz-welfare-post-2021.json"),
    )
    .expect("policy file");
    let policy = request.policy.as_mut().expect("policy");
    policy.code = POLICY.into();
    let version = request.version.as_mut().expect("version");
    version.valid_from = Some(common::Date { year, month: 1, day: 1 });
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
                note: "续行枣人社字〔2021〕52号的公益性岗位补贴标准".into(),
            },
            second_admin,
        ))
        .await
        .expect("published");
    subsidy
        .create_fund(authorized(
            sub::CreateFundRequest {
                fund: Some(sub::Fund {
                    display_name: format!("{year}年枣庄市就业补助资金"),
                    fund_source: sub::FundSource::EmploymentSubsidy as i32,
                    region_prefix: "3704".into(),
                    year,
                    budget_document: format!("枣财社指〔{year}〕1号"),
                    budget: Some(common::Money { fen: 10_000_000 }),
                    ..Default::default()
                }),
                request_id: String::new(),
            },
            admin,
        ))
        .await
        .expect("fund");
    posts
        .update_parameter(authorized(
            pb::UpdateParameterRequest {
                parameter: Some(common::Parameter {
                    key: "welfare_post.contract_max_months".into(),
                    region_prefix: "3704".into(),
                    valid_from: Some(common::Date { year, month: 1, day: 1 }),
                    value: 12,
                    source_document: "枣庄市公益性岗位聘用期限（续行）".into(),
                    ..Default::default()
                }),
                update_mask: None,
                allow_missing: true,
            },
            admin,
        ))
        .await
        .expect("contract cap");
    let person = identity
        .create_person(authorized(
            id::CreatePersonRequest {
                person: Some(id::Person {
                    display_name: "岗位丙".into(),
                    citizen_id: bangfu_platform::testing::citizen_id("37040219750101201"),
                    registered_region: Some(common::RegionCode {
                        code: VILLAGE.into(),
                        display_name: String::new(),
                    }),
                    labor_capacity: common::LaborCapacity::Half as i32,
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
                    valid_from: Some(wire(today - Duration::days(365 * 3))),
                    ..Default::default()
                }),
                request_id: String::new(),
            },
            admin,
        ))
        .await
        .expect("certified");
    person
}

#[tokio::test]
async fn a_township_clerk_hires_for_a_post_with_the_posts_commands() {
    let dir = tempfile::tempdir().expect("tmp");
    let data = dir.path().join("data");
    let up = Up::start(&data);
    let keys = data.join("keys");
    let keys = keys.to_str().expect("path");
    let today = time::OffsetDateTime::now_utc()
        .to_offset(time::macros::offset!(+8))
        .date();
    let admin = token(keys, "agri", "admin", "3704", "admin-a");
    let second_admin = token(keys, "finance", "admin", "3704", "admin-b");
    let clerk = token(keys, "agri", "clerk", "370402", "clerk-agri");
    let reviewer = token(keys, "agri", "reviewer", "370402", "reviewer-agri");
    let person = county_setup(&up, &admin, &second_admin, today).await;

    let created = json(posts(
        &up,
        &clerk,
        &[
            "create",
            "--village",
            VILLAGE,
            "--title",
            "村内道路保洁员",
            "--type",
            "cleaning",
            "--funding",
            "employment-subsidy",
            "--policy",
            POLICY,
            "--standard",
            "500",
            "--hours",
            "88",
            "--days",
            "22",
            "--places",
            "2",
            "--json",
        ],
    ));
    let post = created["post"]["name"].as_str().expect("name").to_string();
    assert_eq!(created["post"]["monthlyStandard"]["fen"], "50000");
    let listed = ok(posts(&up, &clerk, &["list"]));
    assert!(
        listed.contains("村内道路保洁员") && listed.contains("cleaning"),
        "{listed}"
    );

    let announced = json(posts(
        &up,
        &clerk,
        &[
            "announce",
            &post,
            "--duties",
            "负责村内主干道日常保洁",
            "--requirements",
            "本乡镇户籍脱贫人口或监测对象",
            "--pay",
            "每月500元，按在岗天数计发",
            "--hours",
            "每天上午7:00-11:00",
            "--place",
            "村委会",
            "--from",
            &day(today),
            "--to",
            &day(today + Duration::days(10)),
            "--json",
        ],
    ));
    let announcement = announced["announcement"]["name"].as_str().expect("name").to_string();
    let applied = json(posts(&up, &clerk, &["apply", &announcement, &person, "--json"]));
    let application = applied["application"]["name"].as_str().expect("name").to_string();
    let start = today + Duration::days(10);
    let checked = ok(posts(
        &up,
        &clerk,
        &["eligibility", "--application", &application, "--hire-date", &day(start)],
    ));
    assert!(
        checked
            .lines()
            .any(|l| l.starts_with("eligibility.eligible") && l.ends_with("yes")),
        "{checked}"
    );
    let ranked = ok(posts(&up, &clerk, &["applications", &announcement]));
    assert!(ranked.contains("岗**") && ranked.contains("half"), "{ranked}");

    let end = start + Duration::days(180);
    let proposed = json(posts(
        &up,
        &clerk,
        &[
            "propose",
            &announcement,
            "--hire",
            &format!("{application}:{}:{}", day(start), day(end)),
            "--insurer",
            "中国人寿枣庄分公司",
            "--policy-number",
            "ZZ-0001",
            "--json",
        ],
    ));
    let notice = proposed["hireNotice"]["name"].as_str().expect("name").to_string();
    let shown = ok(posts(&up, &clerk, &["propose", &notice, "--show"]));
    assert!(shown.contains("岗**"), "{shown}");
    assert!(
        !shown.contains("37040219750101201"),
        "no citizen ID on the notice: {shown}"
    );
    let assignment = proposed["hireNotice"]["lines"][0]["assignment"]
        .as_str()
        .expect("assignment")
        .to_string();
    let objected = ok(posts(
        &up,
        &clerk,
        &["object", &assignment, "--content", "反映其已在外务工", "--from", "来电"],
    ));
    assert!(objected.contains("open"), "{objected}");

    // The reviewer cannot confirm while the notice runs: a clear message and a failing exit.
    let early = posts(&up, &reviewer, &["confirm", &notice]);
    assert!(!early.status.success());
    assert!(
        text(&early.stderr).contains("NOTICE_NOT_ENDED"),
        "{}",
        text(&early.stderr)
    );
}
