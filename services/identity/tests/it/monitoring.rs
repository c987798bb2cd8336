//! Employment and income monitoring through gRPC: the status timeline answers as of a day,
//! losing work and falling income raise alerts once, a county sees only its own alerts, and the
//! statistics count by region, category and status.

use bangfu_platform::auth::{Department, Role};
use bangfu_platform::error::reason_of;
use bangfu_proto::common::v1 as common;
use bangfu_proto::identity::v1 as pb;
use tonic::Code;

use crate::on_both_backends;
use crate::support::{
    Backend, Identity, SHIZHONG_VILLAGE, XUECHENG_VILLAGE, citizen_id, move_person, read_person, register, request,
};

on_both_backends!(
    the_status_timeline_answers_as_of_a_day_and_losing_work_raises_alerts,
    income_falling_beyond_the_threshold_raises_one_alert_per_month_and_kind,
    bad_employment_and_income_records_are_refused_naming_the_field,
    statistics_count_persons_by_region_category_and_status,
    the_month_end_check_raises_a_county_drop_no_single_record_raised_once,
    statistics_count_a_person_who_moved_where_they_were_in_the_period,
    a_county_employment_drop_counts_workers_where_they_lived_that_day,
    a_move_backdated_before_a_later_one_is_history_and_the_later_one_stays_in_force,
);

fn date(year: i32, month: i32, day: i32) -> Option<common::Date> {
    Some(common::Date { year, month, day })
}

fn period(first: Option<common::Date>, last: Option<common::Date>) -> Option<common::Period> {
    Some(common::Period {
        first_day: first,
        last_day: last,
    })
}

async fn record(
    identity: &Identity,
    token: &str,
    person: &str,
    status: common::EmploymentStatus,
    start: Option<common::Date>,
) -> Result<pb::RecordEmploymentResponse, tonic::Status> {
    let mut client = identity.client().await;
    client
        .record_employment(request(
            pb::RecordEmploymentRequest {
                person: person.into(),
                record: Some(pb::EmploymentRecord {
                    status: status as i32,
                    employer: "枣庄某制衣厂".into(),
                    work_region: "370402".into(),
                    start_date: start,
                    reporting_system: "就业信息平台".into(),
                    ..Default::default()
                }),
                request_id: String::new(),
            },
            token,
        ))
        .await
        .map(|r| r.into_inner())
}

async fn status_on(identity: &Identity, token: &str, person: &str, day: Option<common::Date>) -> i32 {
    read_person(identity, token, person, period(day, day))
        .await
        .employment_status
}

async fn alerts(identity: &Identity, token: &str, kind: pb::AlertKind, all: bool) -> Vec<pb::Alert> {
    let mut client = identity.client().await;
    client
        .list_alerts(request(
            pb::ListAlertsRequest {
                kind: kind as i32,
                include_acknowledged: all,
                ..Default::default()
            },
            token,
        ))
        .await
        .expect("listed")
        .into_inner()
        .alerts
}

async fn the_status_timeline_answers_as_of_a_day_and_losing_work_raises_alerts(backend: Backend) {
    let identity = Identity::start(backend).await;
    let clerk = identity.shizhong_clerk();
    let person = register(
        &identity,
        &clerk,
        "马一",
        &citizen_id("370402", "19800101", "011"),
        SHIZHONG_VILLAGE,
    )
    .await;
    record(
        &identity,
        &clerk,
        &person,
        common::EmploymentStatus::EmployedInCounty,
        date(2026, 1, 1),
    )
    .await
    .expect("employed");
    let lost = record(
        &identity,
        &clerk,
        &person,
        common::EmploymentStatus::Unemployed,
        date(2026, 2, 15),
    )
    .await
    .expect("unemployed");
    assert_eq!(lost.current_status, common::EmploymentStatus::Unemployed as i32);
    assert!(
        lost.record
            .expect("record")
            .name
            .starts_with(&format!("{person}/employmentRecords/"))
    );

    use common::EmploymentStatus as S;
    assert_eq!(
        status_on(&identity, &clerk, &person, date(2025, 12, 31)).await,
        S::Unspecified as i32
    );
    assert_eq!(
        status_on(&identity, &clerk, &person, date(2026, 2, 14)).await,
        S::EmployedInCounty as i32
    );
    assert_eq!(
        status_on(&identity, &clerk, &person, date(2026, 2, 15)).await,
        S::Unemployed as i32
    );

    let lost_alerts = alerts(&identity, &clerk, pb::AlertKind::EmploymentLost, false).await;
    assert_eq!(lost_alerts.len(), 1);
    assert_eq!(lost_alerts[0].person, person);
    assert_eq!(lost_alerts[0].effective_date, date(2026, 2, 15));
    // The district had one employed person at the end of January and none now.
    let county = alerts(&identity, &clerk, pb::AlertKind::RegionEmploymentDrop, false).await;
    assert_eq!(county.len(), 1);
    assert_eq!(county[0].region, "370402");
    assert_eq!(county[0].drop_basis_points, 10_000);

    // The periods as recorded, latest first: the employed one closed the day before.
    let records = identity
        .client()
        .await
        .list_employment_records(request(
            pb::ListEmploymentRecordsRequest {
                parent: person.clone(),
                page_size: 1,
                page_token: String::new(),
            },
            &clerk,
        ))
        .await
        .expect("records")
        .into_inner();
    assert_eq!(records.employment_records[0].status(), S::Unemployed);
    let rest = identity
        .client()
        .await
        .list_employment_records(request(
            pb::ListEmploymentRecordsRequest {
                parent: person.clone(),
                page_size: 1,
                page_token: records.next_page_token,
            },
            &clerk,
        ))
        .await
        .expect("next page")
        .into_inner();
    let first = &rest.employment_records[0];
    assert_eq!(
        (first.status(), first.employer.as_str(), first.end_date),
        (S::EmployedInCounty, "枣庄某制衣厂", date(2026, 2, 14))
    );
    assert!(rest.next_page_token.is_empty());

    // Another district sees none of it.
    let xuecheng = identity.token("clerk-zhao", Department::Hr, Role::Clerk, "370403");
    let hidden_records = identity
        .client()
        .await
        .list_employment_records(request(
            pb::ListEmploymentRecordsRequest {
                parent: person.clone(),
                ..Default::default()
            },
            &xuecheng,
        ))
        .await
        .expect_err("another district's person");
    assert_eq!(hidden_records.code(), Code::NotFound);
    assert!(
        alerts(&identity, &xuecheng, pb::AlertKind::Unspecified, true)
            .await
            .is_empty()
    );
    let mut client = identity.client().await;
    let hidden = client
        .acknowledge_alert(request(
            pb::AcknowledgeAlertRequest {
                name: lost_alerts[0].name.clone(),
                note: "已电话联系".into(),
            },
            &xuecheng,
        ))
        .await
        .expect_err("not found");
    assert_eq!(hidden.code(), Code::NotFound);

    let acknowledged = client
        .acknowledge_alert(request(
            pb::AcknowledgeAlertRequest {
                name: lost_alerts[0].name.clone(),
                note: "已推荐到县人力资源市场参加招聘会".into(),
            },
            &clerk,
        ))
        .await
        .expect("acknowledged")
        .into_inner()
        .alert
        .expect("alert");
    assert_eq!(acknowledged.acknowledge_subject, "clerk-li");
    assert_eq!(acknowledged.acknowledge_note, "已推荐到县人力资源市场参加招聘会");
    assert!(acknowledged.acknowledge_time.is_some());
    assert!(
        alerts(&identity, &clerk, pb::AlertKind::EmploymentLost, false)
            .await
            .is_empty()
    );
    assert_eq!(
        alerts(&identity, &clerk, pb::AlertKind::EmploymentLost, true)
            .await
            .len(),
        1
    );
    let again = client
        .acknowledge_alert(request(
            pb::AcknowledgeAlertRequest {
                name: lost_alerts[0].name.clone(),
                note: "再次".into(),
            },
            &clerk,
        ))
        .await
        .expect_err("already done");
    assert_eq!(again.code(), Code::FailedPrecondition);
}

async fn income(
    identity: &Identity,
    token: &str,
    person: &str,
    (year, month): (i32, i32),
    fen: i64,
    request_id: &str,
) -> Result<Vec<pb::Alert>, tonic::Status> {
    let mut client = identity.client().await;
    client
        .record_income(request(
            pb::RecordIncomeRequest {
                person: person.into(),
                month: Some(common::YearMonth { year, month }),
                income: Some(common::Money { fen }),
                reporting_system: "务工收入监测".into(),
                request_id: request_id.into(),
            },
            token,
        ))
        .await
        .map(|r| r.into_inner().alerts)
}

async fn income_falling_beyond_the_threshold_raises_one_alert_per_month_and_kind(backend: Backend) {
    let identity = Identity::start(backend).await;
    let clerk = identity.shizhong_clerk();
    let person = register(
        &identity,
        &clerk,
        "牛二",
        &citizen_id("370402", "19820202", "021"),
        SHIZHONG_VILLAGE,
    )
    .await;
    // 3,000 yuan in February 2025 and January 2026, 2,400 (exactly 20% less) in February 2026:
    // not beyond the default threshold of 20%.
    assert!(
        income(&identity, &clerk, &person, (2025, 2), 300_000, "")
            .await
            .expect("ok")
            .is_empty()
    );
    assert!(
        income(&identity, &clerk, &person, (2026, 1), 300_000, "")
            .await
            .expect("ok")
            .is_empty()
    );
    assert!(
        income(&identity, &clerk, &person, (2026, 2), 240_000, "")
            .await
            .expect("ok")
            .is_empty()
    );
    // Corrected to 1,500 yuan: half, both month-on-month and year-on-year.
    let raised = income(&identity, &clerk, &person, (2026, 2), 150_000, "feb-correction")
        .await
        .expect("ok");
    let mut kinds: Vec<i32> = raised.iter().map(|a| a.kind).collect();
    kinds.sort();
    assert_eq!(
        kinds,
        vec![
            pb::AlertKind::IncomeDropYearOnYear as i32,
            pb::AlertKind::IncomeDropMonthOnMonth as i32
        ]
    );
    assert!(raised.iter().all(|a| a.drop_basis_points == 5000 && a.person == person));
    // The retry answers the same alerts and raises nothing new.
    let retried = income(&identity, &clerk, &person, (2026, 2), 150_000, "feb-correction")
        .await
        .expect("ok");
    assert_eq!(
        retried.iter().map(|a| a.name.clone()).collect::<Vec<_>>(),
        raised.iter().map(|a| a.name.clone()).collect::<Vec<_>>()
    );
    assert_eq!(
        alerts(&identity, &clerk, pb::AlertKind::Unspecified, true).await.len(),
        2
    );
    let reused = income(&identity, &clerk, &person, (2026, 2), 100_000, "feb-correction")
        .await
        .expect_err("a request id names one request");
    assert_eq!(reason_of(&reused).as_deref(), Some("REQUEST_ID_REUSED"));
}

async fn bad_employment_and_income_records_are_refused_naming_the_field(backend: Backend) {
    let identity = Identity::start(backend).await;
    let clerk = identity.shizhong_clerk();
    let person = register(
        &identity,
        &clerk,
        "杨三",
        &citizen_id("370402", "19830303", "031"),
        SHIZHONG_VILLAGE,
    )
    .await;
    let field_of = |status: &tonic::Status| {
        tonic_types::StatusExt::get_details_bad_request(status)
            .and_then(|b| b.field_violations.first().map(|v| v.field.clone()))
            .unwrap_or_default()
    };
    let mut client = identity.client().await;
    let backwards = client
        .record_employment(request(
            pb::RecordEmploymentRequest {
                person: person.clone(),
                record: Some(pb::EmploymentRecord {
                    status: common::EmploymentStatus::SelfEmployed as i32,
                    start_date: date(2026, 2, 1),
                    end_date: date(2026, 1, 31),
                    reporting_system: "就业信息平台".into(),
                    ..Default::default()
                }),
                request_id: String::new(),
            },
            &clerk,
        ))
        .await
        .expect_err("refused");
    assert_eq!(backwards.code(), Code::InvalidArgument);
    assert_eq!(field_of(&backwards), "record.end_date");

    let no_status = record(
        &identity,
        &clerk,
        &person,
        common::EmploymentStatus::Unspecified,
        date(2026, 1, 1),
    )
    .await
    .expect_err("refused");
    assert_eq!(field_of(&no_status), "record.status");
    let future = record(
        &identity,
        &clerk,
        &person,
        common::EmploymentStatus::Unemployed,
        date(2026, 4, 1),
    )
    .await
    .expect_err("refused");
    assert_eq!(field_of(&future), "record.start_date");

    let negative = income(&identity, &clerk, &person, (2026, 1), -1, "")
        .await
        .expect_err("refused");
    assert_eq!(negative.code(), Code::InvalidArgument);
    assert_eq!(field_of(&negative), "income.fen");
    let no_month = income(&identity, &clerk, &person, (2026, 13), 100, "")
        .await
        .expect_err("refused");
    assert_eq!(field_of(&no_month), "month");

    // Nothing was half-written: no status and no alert.
    assert_eq!(
        status_on(&identity, &clerk, &person, date(2026, 3, 2)).await,
        common::EmploymentStatus::Unspecified as i32
    );
    assert!(
        alerts(&identity, &clerk, pb::AlertKind::Unspecified, true)
            .await
            .is_empty()
    );
}

async fn statistics_count_persons_by_region_category_and_status(backend: Backend) {
    let identity = Identity::start(backend).await;
    let admin = identity.token("admin-zz", Department::Hr, Role::Clerk, "3704");
    let worker = register(
        &identity,
        &admin,
        "甲",
        &citizen_id("370402", "19700101", "011"),
        SHIZHONG_VILLAGE,
    )
    .await;
    let idle = register(
        &identity,
        &admin,
        "乙",
        &citizen_id("370402", "19700202", "021"),
        SHIZHONG_VILLAGE,
    )
    .await;
    let other = register(
        &identity,
        &admin,
        "丙",
        &citizen_id("370403", "19700303", "031"),
        XUECHENG_VILLAGE,
    )
    .await;
    record(
        &identity,
        &admin,
        &worker,
        common::EmploymentStatus::EmployedOutOfProvince,
        date(2026, 1, 5),
    )
    .await
    .expect("recorded");
    record(
        &identity,
        &admin,
        &other,
        common::EmploymentStatus::PublicWelfarePost,
        date(2026, 2, 1),
    )
    .await
    .expect("recorded");
    for person in [&worker, &idle] {
        certify_alleviated_since_2021(&identity, person).await;
    }
    let stats = stats_for(&identity, &admin, "3704", period(date(2026, 2, 1), date(2026, 2, 28))).await;
    assert_eq!(stats.len(), 2);
    let shizhong = &stats[0];
    assert_eq!(shizhong.region.as_ref().map(|r| r.code.as_str()), Some("370402"));
    assert_eq!(
        shizhong.region.as_ref().map(|r| r.display_name.as_str()),
        Some("市中区")
    );
    assert_eq!(shizhong.target_persons, 2);
    assert_eq!(
        shizhong.persons_by_category.get("PERSON_CATEGORY_POVERTY_ALLEVIATED"),
        Some(&2)
    );
    assert_eq!(
        shizhong
            .persons_by_employment_status
            .get("EMPLOYMENT_STATUS_EMPLOYED_OUT_OF_PROVINCE"),
        Some(&1)
    );
    assert_eq!(
        shizhong
            .persons_by_employment_status
            .get("EMPLOYMENT_STATUS_UNSPECIFIED"),
        Some(&1)
    );
    let xuecheng = &stats[1];
    assert_eq!(xuecheng.target_persons, 0);
    assert_eq!(
        xuecheng
            .persons_by_employment_status
            .get("EMPLOYMENT_STATUS_PUBLIC_WELFARE_POST"),
        Some(&1)
    );

    // A district clerk asking for the whole city gets only its district.
    let clerk = identity.shizhong_clerk();
    let narrowed = stats_for(&identity, &clerk, "3704", None).await;
    assert_eq!(narrowed.len(), 1);
    assert_eq!(narrowed[0].region.as_ref().map(|r| r.code.as_str()), Some("370402"));
}

/// Moves a person's registration and residence to Xuecheng from 2026-03-01.
async fn move_to_xuecheng_from_march(identity: &Identity, token: &str, person: &str) {
    let xuecheng = Some(XUECHENG_VILLAGE);
    move_person(identity, token, person, (xuecheng, xuecheng), date(2026, 3, 1)).await;
}

async fn stats_for(
    identity: &Identity,
    token: &str,
    prefix: &str,
    period: Option<common::Period>,
) -> Vec<pb::RegionStats> {
    let mut client = identity.client().await;
    client
        .get_monitoring_stats(request(
            pb::GetMonitoringStatsRequest {
                region_prefix: prefix.into(),
                period,
                group_by_digits: 6,
            },
            token,
        ))
        .await
        .expect("stats")
        .into_inner()
        .regions
}

/// Certifies a person poverty-alleviated (脱贫人口) from 2021 on, as Zaozhuang's bureau.
async fn certify_alleviated_since_2021(identity: &Identity, person: &str) {
    let certifier = identity.token("reviewer-agri", Department::Agri, Role::Reviewer, "3704");
    let mut client = identity.client().await;
    client
        .certify_category(request(
            pb::CertifyCategoryRequest {
                person: person.into(),
                certification: Some(common::CategoryCertification {
                    category: common::PersonCategory::PovertyAlleviated as i32,
                    certifying_body: "枣庄市乡村振兴局".into(),
                    document_reference: "枣振发〔2021〕1号".into(),
                    valid_from: date(2021, 1, 1),
                    ..Default::default()
                }),
                request_id: String::new(),
            },
            &certifier,
        ))
        .await
        .expect("certified");
}

async fn statistics_count_a_person_who_moved_where_they_were_in_the_period(backend: Backend) {
    let identity = Identity::start(backend).await;
    let admin = identity.token("admin-zz", Department::Hr, Role::Clerk, "3704");
    let mover = register(
        &identity,
        &admin,
        "丁",
        &citizen_id("370402", "19750505", "051"),
        SHIZHONG_VILLAGE,
    )
    .await;
    record(
        &identity,
        &admin,
        &mover,
        common::EmploymentStatus::EmployedOutOfProvince,
        date(2026, 1, 5),
    )
    .await
    .expect("recorded");
    certify_alleviated_since_2021(&identity, &mover).await;
    move_to_xuecheng_from_march(&identity, &admin, &mover).await;

    // Where each district's row counts the person, in one comparable line per row.
    let rows = |stats: &[pb::RegionStats]| -> Vec<(String, i64, Option<i64>, Option<i64>)> {
        stats
            .iter()
            .map(|r| {
                (
                    r.region.as_ref().map(|c| c.code.clone()).unwrap_or_default(),
                    r.target_persons,
                    r.persons_by_category.get("PERSON_CATEGORY_POVERTY_ALLEVIATED").copied(),
                    r.persons_by_employment_status
                        .get("EMPLOYMENT_STATUS_EMPLOYED_OUT_OF_PROVINCE")
                        .copied(),
                )
            })
            .collect()
    };
    let february = stats_for(&identity, &admin, "3704", period(date(2026, 2, 1), date(2026, 2, 28))).await;
    assert_eq!(
        rows(&february),
        vec![("370402".to_string(), 1, Some(1), Some(1))],
        "in February the person still lived in Shizhong"
    );
    let april = stats_for(&identity, &admin, "3704", period(date(2026, 4, 1), date(2026, 4, 30))).await;
    assert_eq!(
        rows(&april),
        vec![("370403".to_string(), 1, Some(1), Some(1))],
        "from March the person counts in Xuecheng"
    );
    // A county's own clerk asking for February sees the person its county had then.
    let shizhong = identity.shizhong_clerk();
    let theirs = stats_for(
        &identity,
        &shizhong,
        "370402",
        period(date(2026, 2, 1), date(2026, 2, 28)),
    )
    .await;
    assert_eq!(rows(&theirs), vec![("370402".to_string(), 1, Some(1), Some(1))]);
}

async fn a_county_employment_drop_counts_workers_where_they_lived_that_day(backend: Backend) {
    let identity = Identity::start(backend).await;
    let admin = identity.token("admin-zz", Department::Hr, Role::Clerk, "3704");
    let mut persons = Vec::new();
    for (name, county, sequence, village) in [
        ("戊", "370402", "061", SHIZHONG_VILLAGE),
        ("己", "370402", "071", SHIZHONG_VILLAGE),
        ("庚", "370402", "081", SHIZHONG_VILLAGE),
        ("辛", "370403", "091", XUECHENG_VILLAGE),
    ] {
        let person = register(
            &identity,
            &admin,
            name,
            &citizen_id(county, "19760606", sequence),
            village,
        )
        .await;
        record(
            &identity,
            &admin,
            &person,
            common::EmploymentStatus::EmployedInCounty,
            date(2026, 1, 5),
        )
        .await
        .expect("employed");
        persons.push(person);
    }
    let [mover, leaver, _stayer, xuecheng_worker] = persons.try_into().expect("four persons");
    // A Shizhong worker moves to Xuecheng from March 1; the same day a Xuecheng worker loses
    // work and so does one in Shizhong.
    move_to_xuecheng_from_march(&identity, &admin, &mover).await;
    for person in [&xuecheng_worker, &leaver] {
        record(
            &identity,
            &admin,
            person,
            common::EmploymentStatus::Unemployed,
            date(2026, 3, 1),
        )
        .await
        .expect("unemployed");
    }
    let drops = alerts(&identity, &admin, pb::AlertKind::RegionEmploymentDrop, true).await;
    let by_county: Vec<(String, i64)> = drops.iter().map(|a| (a.region.clone(), a.drop_basis_points)).collect();
    // Xuecheng had one worker at the end of February and has one on March 1 (the newcomer):
    // no drop. Shizhong had three then (the mover included) and one now: two thirds.
    assert_eq!(by_county, vec![("370402".to_string(), 6666)]);
}

async fn the_month_end_check_raises_a_county_drop_no_single_record_raised_once(backend: Backend) {
    let identity = Identity::start(backend).await;
    let clerk = identity.shizhong_clerk();
    let mut persons = Vec::new();
    for sequence in ["011", "013", "015", "017"] {
        let person = register(
            &identity,
            &clerk,
            "赵六",
            &citizen_id("370402", "19800101", sequence),
            SHIZHONG_VILLAGE,
        )
        .await;
        record(
            &identity,
            &clerk,
            &person,
            common::EmploymentStatus::EmployedInCounty,
            date(2026, 1, 5),
        )
        .await
        .expect("employed");
        persons.push(person);
    }
    // Three leave the labour force in February: no record loses work, so none raises a drop.
    for person in &persons[..3] {
        record(
            &identity,
            &clerk,
            person,
            common::EmploymentStatus::NotInLaborForce,
            date(2026, 2, 10),
        )
        .await
        .expect("left");
    }
    let county_clerk = identity.token("clerk-li", Department::Hr, Role::Clerk, "370402");
    assert!(
        alerts(&identity, &county_clerk, pb::AlertKind::RegionEmploymentDrop, true)
            .await
            .is_empty()
    );

    // The job as a replica runs it, on 2 March: February against January.
    let (clock, _) = bangfu_platform::clock::Clock::manual(time::macros::datetime!(2026-03-02 02:00 UTC));
    let keys = std::sync::Arc::new(
        bangfu_platform::pii::DataKeyFile::generate()
            .into_keys()
            .expect("data keys"),
    );
    let replica = bangfu_identity::start(identity.store.db.clone(), keys, clock)
        .await
        .expect("identity");
    assert_eq!(replica.check_month_end_employment().await.expect("checked"), 1);
    assert_eq!(
        replica.check_month_end_employment().await.expect("again"),
        0,
        "idempotent"
    );
    let drops = alerts(&identity, &county_clerk, pb::AlertKind::RegionEmploymentDrop, true).await;
    assert_eq!(drops.len(), 1);
    assert_eq!(drops[0].region, "370402");
    assert_eq!(drops[0].effective_date, date(2026, 2, 1));
    assert_eq!(
        drops[0].drop_basis_points, 7_500,
        "4 employed at January's end, 1 at February's"
    );
}

/// A village of Yicheng (峄城区), a third district of Zaozhuang.
const YICHENG_VILLAGE: &str = "370404001006";

async fn a_move_backdated_before_a_later_one_is_history_and_the_later_one_stays_in_force(backend: Backend) {
    let identity = Identity::start(backend).await;
    let admin = identity.token("admin-zz", Department::Hr, Role::Clerk, "3704");
    let mover = register(
        &identity,
        &admin,
        "戊",
        &citizen_id("370402", "19760606", "061"),
        SHIZHONG_VILLAGE,
    )
    .await;
    certify_alleviated_since_2021(&identity, &mover).await;
    move_to_xuecheng_from_march(&identity, &admin, &mover).await;
    // Recorded afterwards: the person had lived in Yicheng for February, before the March move.
    let yicheng = Some(YICHENG_VILLAGE);
    move_person(&identity, &admin, &mover, (yicheng, yicheng), date(2026, 2, 1)).await;

    let districts = |stats: &[pb::RegionStats]| -> Vec<(String, i64)> {
        stats
            .iter()
            .map(|r| {
                let code = r.region.as_ref().map(|c| c.code.clone()).unwrap_or_default();
                (code, r.target_persons)
            })
            .collect()
    };
    for (month, last_day, district) in [(1, 31, "370402"), (2, 28, "370404"), (4, 30, "370403")] {
        let stats = stats_for(
            &identity,
            &admin,
            "3704",
            period(date(2026, month, 1), date(2026, month, last_day)),
        )
        .await;
        assert_eq!(districts(&stats), vec![(district.to_string(), 1)], "month {month}");
    }
    // Today the person lives in Xuecheng: its clerk lists them, Yicheng's does not.
    let listed = |scope: &'static str| {
        let identity = &identity;
        async move {
            let token = identity.token("clerk", Department::Hr, Role::Clerk, scope);
            let mut client = identity.client().await;
            client
                .list_persons(request(
                    pb::ListPersonsRequest {
                        region_prefix: scope.into(),
                        page_size: 10,
                        ..Default::default()
                    },
                    &token,
                ))
                .await
                .expect("listed")
                .into_inner()
                .persons
                .into_iter()
                .map(|p| p.name)
                .collect::<Vec<_>>()
        }
    };
    assert_eq!(listed("370403").await, vec![mover.clone()]);
    assert!(
        listed("370404").await.is_empty(),
        "the backdated move is not where the person is now"
    );
    let now = read_person(&identity, &admin, &mover, None).await;
    assert_eq!(now.residence_region.expect("residence").code, XUECHENG_VILLAGE);
}
