//! Bulk import through the bidirectional ImportPersons stream: rows as the national monitoring
//! system exports them, a result per row, idempotent re-runs, and categories the importer may
//! not certify waiting for the certifying department's reviewer.

use bangfu_platform::auth::{Department, Role};
use bangfu_platform::error::reason_of;
use bangfu_proto::common::v1 as common;
use bangfu_proto::identity::v1 as pb;
use tonic::Code;

use crate::on_both_backends;
use crate::support::{
    Backend, Identity, SHIZHONG_OTHER_VILLAGE, SHIZHONG_VILLAGE, XUECHENG_VILLAGE, citizen_id, move_person,
    read_person, request,
};

on_both_backends!(
    an_import_registers_persons_and_running_it_again_changes_nothing,
    every_bad_row_is_rejected_with_its_reason_and_field_and_good_rows_land,
    a_row_that_changed_since_the_last_import_updates_only_that_person,
    categories_the_importer_may_not_certify_wait_for_a_reviewer,
    an_import_without_its_export_date_is_refused,
    a_moved_registration_takes_a_residence_that_matched_it_and_says_when_it_kept_one,
);

fn export_date() -> Option<common::Date> {
    Some(common::Date {
        year: 2026,
        month: 2,
        day: 28,
    })
}

fn row(number: i64, name: &str, id: &str, village: &str) -> pb::ImportRow {
    pb::ImportRow {
        row_number: number,
        display_name: name.into(),
        citizen_id: id.into(),
        registered_region: village.into(),
        ..Default::default()
    }
}

/// Sends the rows in messages of `chunk` rows and answers every result, in order.
async fn import(identity: &Identity, token: &str, rows: Vec<pb::ImportRow>, chunk: usize) -> Vec<pb::ImportRowResult> {
    let mut messages = vec![pb::ImportPersonsRequest {
        export_date: export_date(),
        source_document: "2026年2月防返贫监测信息系统导出".into(),
        rows: Vec::new(),
    }];
    for part in rows.chunks(chunk) {
        messages.push(pb::ImportPersonsRequest {
            export_date: None,
            source_document: String::new(),
            rows: part.to_vec(),
        });
    }
    let mut client = identity.client().await;
    let mut answers = client
        .import_persons(request(tokio_stream::iter(messages), token))
        .await
        .expect("import accepted")
        .into_inner();
    let mut results = Vec::new();
    while let Some(answer) = answers.message().await.expect("import answers") {
        results.extend(answer.results);
    }
    results
}

fn outcome(result: &pb::ImportRowResult) -> pb::ImportOutcome {
    pb::ImportOutcome::try_from(result.outcome).expect("outcome")
}

/// The change feed of `scope` from its head.
async fn watch_from_head(identity: &Identity, scope: &str) -> tonic::Streaming<pb::WatchPersonChangesResponse> {
    let watcher = identity.token("feed-reader", Department::Hr, Role::Admin, scope);
    let mut client = identity.client().await;
    client
        .watch_person_changes(request(
            pb::WatchPersonChangesRequest {
                after_cursor: String::new(),
                start_at_head: true,
                kinds: Vec::new(),
            },
            &watcher,
        ))
        .await
        .expect("watch")
        .into_inner()
}

/// The next change other than a creation, or None at a heartbeat (nothing more for now).
async fn next_change_or_idle(feed: &mut tonic::Streaming<pb::WatchPersonChangesResponse>) -> Option<pb::PersonChange> {
    use pb::watch_person_changes_response::Item;
    loop {
        let item = tokio::time::timeout(std::time::Duration::from_secs(5), feed.message())
            .await
            .expect("an event in time")
            .expect("stream")
            .expect("item");
        match item.item {
            Some(Item::Heartbeat(_)) => return None,
            // On PostgreSQL the head is the oldest running transaction's horizon, cluster-wide,
            // so earlier creations may be replayed; they are not what these tests are about.
            Some(Item::Change(change)) if change.kind != pb::ChangeKind::Created as i32 => return Some(change),
            _ => {}
        }
    }
}

/// The next change other than a creation, waiting through heartbeats, for 10 seconds at most.
async fn next_change(feed: &mut tonic::Streaming<pb::WatchPersonChangesResponse>) -> pb::PersonChange {
    let wait = async {
        loop {
            if let Some(change) = next_change_or_idle(feed).await {
                return change;
            }
        }
    };
    tokio::time::timeout(std::time::Duration::from_secs(10), wait)
        .await
        .expect("a change in time")
}

async fn count_persons(identity: &Identity, token: &str) -> usize {
    let mut client = identity.client().await;
    client
        .list_persons(request(
            pb::ListPersonsRequest {
                page_size: 1000,
                ..Default::default()
            },
            token,
        ))
        .await
        .expect("listed")
        .into_inner()
        .persons
        .len()
}

async fn an_import_registers_persons_and_running_it_again_changes_nothing(backend: Backend) {
    let identity = Identity::start(backend).await;
    let clerk = identity.shizhong_clerk();
    let head_id = citizen_id("370402", "19700101", "011");
    let mut head = row(2, "王大山", &head_id, SHIZHONG_VILLAGE);
    head.household_number = "3704020010130001".into();
    head.relation = "户主".into();
    head.labor_skill = "普通劳动力".into();
    head.months_worked = 8;
    head.work_location = "省外".into();
    let mut spouse = row(3, "李小花", &citizen_id("370402", "19720202", "022"), SHIZHONG_VILLAGE);
    spouse.household_number = "3704020010130001".into();
    spouse.relation = "配偶".into();
    spouse.labor_skill = "弱劳动力".into();
    // The region by names, as many exports give it.
    let mut by_names = row(4, "赵一", &citizen_id("370402", "19800303", "031"), "");
    by_names.province_name = "山东省".into();
    by_names.city_name = "枣庄市".into();
    by_names.county_name = "市中区".into();
    by_names.township_name = "中心街街道".into();
    by_names.village_name = "新风里回族社区居委会".into();
    let rows = vec![head, spouse, by_names];

    let first = import(&identity, &clerk, rows.clone(), 2).await;
    assert_eq!(first.len(), 3, "{first:?}");
    assert!(
        first.iter().all(|r| outcome(r) == pb::ImportOutcome::Created),
        "{first:?}"
    );
    assert_eq!(first.iter().map(|r| r.row_number).collect::<Vec<_>>(), vec![2, 3, 4]);

    let mut client = identity.client().await;
    let person = client
        .get_person(request(
            pb::GetPersonRequest {
                name: first[0].person.clone(),
                ..Default::default()
            },
            &clerk,
        ))
        .await
        .expect("read")
        .into_inner()
        .person
        .expect("person");
    assert_eq!(person.display_name, "王**");
    assert_eq!(
        person.citizen_id,
        format!("{}*************{}", &head_id[..4], &head_id[17..])
    );
    assert_eq!(person.labor_capacity, common::LaborCapacity::Full as i32);
    assert_eq!(
        person.employment_status,
        common::EmploymentStatus::EmployedOutOfProvince as i32,
        "months worked and the place became an employment record"
    );
    assert_eq!(person.household_relation, pb::HouseholdRelation::Head as i32);
    let household = client
        .get_household(request(
            pb::GetHouseholdRequest {
                name: person.household.clone(),
            },
            &clerk,
        ))
        .await
        .expect("household")
        .into_inner()
        .household
        .expect("household");
    assert_eq!(household.household_number, "3704020010130001");
    assert_eq!(household.members.len(), 2);
    let by_names = client
        .get_person(request(
            pb::GetPersonRequest {
                name: first[2].person.clone(),
                ..Default::default()
            },
            &clerk,
        ))
        .await
        .expect("read")
        .into_inner()
        .person
        .expect("person");
    assert_eq!(by_names.registered_region.expect("region").code, SHIZHONG_OTHER_VILLAGE);

    let again = import(&identity, &clerk, rows, 1000).await;
    assert!(
        again.iter().all(|r| outcome(r) == pb::ImportOutcome::Unchanged),
        "{again:?}"
    );
    assert_eq!(
        again.iter().map(|r| r.person.clone()).collect::<Vec<_>>(),
        first.iter().map(|r| r.person.clone()).collect::<Vec<_>>()
    );
    assert_eq!(count_persons(&identity, &clerk).await, 3);
}

async fn every_bad_row_is_rejected_with_its_reason_and_field_and_good_rows_land(backend: Backend) {
    let identity = Identity::start(backend).await;
    let clerk = identity.shizhong_clerk();
    let good = citizen_id("370402", "19650505", "051");
    let mut wrong_check = citizen_id("370402", "19660606", "061");
    let last = wrong_check.pop().expect("check character");
    wrong_check.push(if last == '1' { '2' } else { '1' });
    let mut second_head = row(9, "孙二", &citizen_id("370402", "19700909", "091"), SHIZHONG_VILLAGE);
    second_head.household_number = "H-1".into();
    second_head.relation = "户主".into();
    let mut first_head = row(8, "孙一", &citizen_id("370402", "19700808", "081"), SHIZHONG_VILLAGE);
    first_head.household_number = "H-1".into();
    first_head.relation = "户主".into();
    let mut unknown_relation = row(10, "周三", &citizen_id("370402", "19701010", "101"), SHIZHONG_VILLAGE);
    unknown_relation.household_number = "H-2".into();
    unknown_relation.relation = "邻居".into();
    let mut months_without_place = row(11, "吴四", &citizen_id("370402", "19701111", "111"), SHIZHONG_VILLAGE);
    months_without_place.months_worked = 5;
    let mut vague_category = row(12, "郑五", &citizen_id("370402", "19701212", "121"), SHIZHONG_VILLAGE);
    vague_category.categories = "监测户".into();
    let mut late_start = row(13, "冯六", &citizen_id("370402", "19710101", "131"), SHIZHONG_VILLAGE);
    late_start.categories = "脱贫户".into();
    late_start.category_start_date = Some(common::Date {
        year: 2026,
        month: 3,
        day: 1,
    });
    let mut unknown_village_name = row(14, "陈七", &citizen_id("370402", "19710202", "141"), "");
    unknown_village_name.province_name = "山东省".into();
    unknown_village_name.city_name = "枣庄市".into();
    unknown_village_name.county_name = "市中区".into();
    unknown_village_name.township_name = "中心街街道".into();
    unknown_village_name.village_name = "不存在村".into();
    let sql_name = "Robert'); DROP TABLE persons;--";
    let rows = vec![
        row(2, "好人", &good, SHIZHONG_VILLAGE),
        row(3, "错号", &wrong_check, SHIZHONG_VILLAGE),
        row(4, "旧号", "370402650505051", SHIZHONG_VILLAGE),
        row(5, "错村", &citizen_id("370402", "19670707", "071"), "370402999999"),
        row(
            6,
            &"长".repeat(500),
            &citizen_id("370402", "19680808", "081"),
            SHIZHONG_VILLAGE,
        ),
        row(
            7,
            "控\u{7}制",
            &citizen_id("370402", "19690909", "091"),
            SHIZHONG_VILLAGE,
        ),
        first_head,
        second_head,
        unknown_relation,
        months_without_place,
        vague_category,
        late_start,
        unknown_village_name,
        row(15, "重复", &good, SHIZHONG_VILLAGE),
        row(16, "外区", &citizen_id("370403", "19720303", "151"), XUECHENG_VILLAGE),
        row(17, sql_name, &citizen_id("370402", "19730404", "161"), SHIZHONG_VILLAGE),
        // The same ID again in a later message: found through the database, not memory.
        row(18, "再重复", &good, SHIZHONG_VILLAGE),
    ];
    let results = import(&identity, &clerk, rows, 15).await;
    let verdict = |number: i64| {
        let result = results
            .iter()
            .find(|r| r.row_number == number)
            .unwrap_or_else(|| panic!("row {number} has a result: {results:?}"));
        (outcome(result), result.reason.as_str(), result.field.as_str())
    };
    use pb::ImportOutcome::{Created, Rejected};
    assert_eq!(verdict(2), (Created, "", ""));
    assert_eq!(verdict(3), (Rejected, "CITIZEN_ID_INVALID", "citizen_id"));
    assert_eq!(verdict(4), (Rejected, "CITIZEN_ID_INVALID", "citizen_id"));
    assert_eq!(verdict(5), (Rejected, "REGION_UNKNOWN", "registered_region"));
    assert_eq!(verdict(6), (Rejected, "FIELD_TOO_LONG", "display_name"));
    assert_eq!(verdict(7), (Rejected, "FIELD_INVALID", "display_name"));
    assert_eq!(verdict(8), (Created, "", ""));
    assert_eq!(verdict(9), (Rejected, "FIELD_INVALID", "relation"), "a second head");
    assert_eq!(verdict(10), (Rejected, "FIELD_INVALID", "relation"));
    assert_eq!(verdict(11), (Rejected, "FIELD_INVALID", "work_location"));
    assert_eq!(verdict(12), (Rejected, "FIELD_INVALID", "categories"));
    assert_eq!(verdict(13), (Rejected, "FIELD_INVALID", "category_start_date"));
    assert_eq!(verdict(14), (Rejected, "REGION_UNKNOWN", "village_name"));
    assert_eq!(verdict(15), (Rejected, "DUPLICATE_IN_IMPORT", "citizen_id"));
    assert_eq!(
        verdict(16).1,
        "PERMISSION_MISSING",
        "a village outside the clerk's scope"
    );
    assert_eq!(verdict(17), (Created, "", ""), "a name is data, whatever it looks like");
    assert_eq!(verdict(18), (Rejected, "DUPLICATE_IN_IMPORT", "citizen_id"));
    assert!(results.iter().all(|r| outcome(r) != Rejected || !r.message.is_empty()));
    assert_eq!(
        count_persons(&identity, &clerk).await,
        3,
        "only the good rows were stored"
    );
}

async fn a_row_that_changed_since_the_last_import_updates_only_that_person(backend: Backend) {
    let identity = Identity::start(backend).await;
    let clerk = identity.shizhong_clerk();
    let steady = row(2, "钱一", &citizen_id("370402", "19750101", "011"), SHIZHONG_VILLAGE);
    let mut moving = row(3, "钱二", &citizen_id("370402", "19760202", "021"), SHIZHONG_VILLAGE);
    let first = import(&identity, &clerk, vec![steady.clone(), moving.clone()], 1000).await;
    assert!(first.iter().all(|r| outcome(r) == pb::ImportOutcome::Created));

    let mut feed = watch_from_head(&identity, "370402").await;

    moving.display_name = "钱二妹".into();
    moving.labor_skill = "半劳动力".into();
    moving.registered_region = SHIZHONG_OTHER_VILLAGE.into();
    let second = import(&identity, &clerk, vec![steady, moving], 1000).await;
    assert_eq!(outcome(&second[0]), pb::ImportOutcome::Unchanged);
    assert_eq!(outcome(&second[1]), pb::ImportOutcome::Updated);

    let mut kinds = Vec::new();
    while kinds.len() < 3 {
        let change = next_change(&mut feed).await;
        assert_eq!(change.person, first[1].person, "only the changed person has events");
        kinds.push((change.kind, change.changed_fields));
    }
    // The residence was the registered village, so it moved with it.
    for kind in [pb::ChangeKind::RegistrationMoved, pb::ChangeKind::ResidenceMoved] {
        assert!(kinds.contains(&(kind as i32, vec![])), "{kinds:?}");
    }
    let updated = kinds
        .iter()
        .find(|(kind, _)| *kind == pb::ChangeKind::Updated as i32)
        .expect("an update event");
    assert!(updated.1.contains(&"display_name".to_string()), "{kinds:?}");
    assert!(updated.1.contains(&"labor_capacity".to_string()), "{kinds:?}");

    let person = read_person(&identity, &clerk, &first[1].person, None).await;
    assert_eq!(person.display_name, "钱**");
    assert_eq!(person.labor_capacity, common::LaborCapacity::Half as i32);
    assert_eq!(person.registered_region.expect("region").code, SHIZHONG_OTHER_VILLAGE);
}

async fn categories_the_importer_may_not_certify_wait_for_a_reviewer(backend: Backend) {
    let identity = Identity::start(backend).await;
    let clerk = identity.shizhong_clerk();
    let mut alleviated = row(2, "何一", &citizen_id("370402", "19600101", "011"), SHIZHONG_VILLAGE);
    alleviated.categories = "脱贫户、边缘易致贫户".into();
    alleviated.category_start_date = Some(common::Date {
        year: 2021,
        month: 1,
        day: 1,
    });
    let results = import(&identity, &clerk, vec![alleviated.clone()], 1000).await;
    assert_eq!(outcome(&results[0]), pb::ImportOutcome::Created);
    assert_eq!(results[0].reason, "CATEGORIES_PENDING");

    let mut client = identity.client().await;
    let reader = client.clone();
    let read = move |name: String, token: String| {
        let mut client = reader.clone();
        async move {
            client
                .get_person(request(
                    pb::GetPersonRequest {
                        name,
                        ..Default::default()
                    },
                    &token,
                ))
                .await
                .expect("read")
                .into_inner()
                .person
                .expect("person")
        }
    };
    assert!(
        read(results[0].person.clone(), clerk.clone())
            .await
            .certifications
            .is_empty()
    );

    // HR certifies neither category: its reviewer sees nothing to confirm.
    let hr_reviewer = identity.token("reviewer-hr", Department::Hr, Role::Reviewer, "370402");
    let hr_list = client
        .list_pending_certifications(request(pb::ListPendingCertificationsRequest::default(), &hr_reviewer))
        .await
        .expect("listed")
        .into_inner();
    assert!(hr_list.pending_certifications.is_empty());

    let agri_reviewer = identity.token("reviewer-agri", Department::Agri, Role::Reviewer, "370402");
    let pending = client
        .list_pending_certifications(request(pb::ListPendingCertificationsRequest::default(), &agri_reviewer))
        .await
        .expect("listed")
        .into_inner()
        .pending_certifications;
    assert_eq!(pending.len(), 2);
    assert!(
        pending
            .iter()
            .all(|p| p.person == results[0].person && p.import_subject == "clerk-li")
    );

    // Re-importing the file proposes nothing new.
    let again = import(&identity, &clerk, vec![alleviated], 1000).await;
    assert_eq!(outcome(&again[0]), pb::ImportOutcome::Unchanged);
    let still = client
        .list_pending_certifications(request(pb::ListPendingCertificationsRequest::default(), &agri_reviewer))
        .await
        .expect("listed")
        .into_inner()
        .pending_certifications;
    assert_eq!(still.len(), 2);

    let mut names: Vec<String> = pending.iter().map(|p| p.name.clone()).collect();
    names.push("pendingCertifications/nothing".into());
    let confirmed = client
        .confirm_certifications(request(
            pb::ConfirmCertificationsRequest { names: names.clone() },
            &agri_reviewer,
        ))
        .await
        .expect("confirmed")
        .into_inner();
    assert_eq!(confirmed.certifications.len(), 2);
    assert_eq!(
        confirmed.not_confirmed,
        vec!["pendingCertifications/nothing".to_string()]
    );
    let person = read(results[0].person.clone(), clerk.clone()).await;
    assert_eq!(person.certifications.len(), 2);
    assert!(
        person
            .certifications
            .iter()
            .all(|c| c.certification.as_ref().and_then(|c| c.valid_from)
                == Some(common::Date {
                    year: 2021,
                    month: 1,
                    day: 1
                }))
    );

    let twice = client
        .confirm_certifications(request(pb::ConfirmCertificationsRequest { names }, &agri_reviewer))
        .await
        .expect("answered")
        .into_inner();
    assert!(twice.certifications.is_empty(), "a proposal is confirmed once");

    // The clerk who imported may not confirm (and lacks the permission anyway).
    let refused = client
        .confirm_certifications(request(
            pb::ConfirmCertificationsRequest {
                names: vec![pending[0].name.clone()],
            },
            &clerk,
        ))
        .await
        .expect_err("refused");
    assert_eq!(refused.code(), Code::PermissionDenied);
}

async fn an_import_without_its_export_date_is_refused(backend: Backend) {
    let identity = Identity::start(backend).await;
    let mut client = identity.client().await;
    let messages = vec![pb::ImportPersonsRequest {
        export_date: None,
        source_document: "x".into(),
        rows: vec![row(2, "某", &citizen_id("370402", "19600101", "011"), SHIZHONG_VILLAGE)],
    }];
    let refused = match client
        .import_persons(request(tokio_stream::iter(messages), &identity.shizhong_clerk()))
        .await
    {
        Err(status) => status,
        Ok(response) => {
            let mut answers = response.into_inner();
            answers.message().await.expect_err("refused")
        }
    };
    assert_eq!(refused.code(), Code::InvalidArgument);
    assert_eq!(reason_of(&refused).as_deref(), Some("FIELD_REQUIRED"));
}

async fn a_moved_registration_takes_a_residence_that_matched_it_and_says_when_it_kept_one(backend: Backend) {
    let identity = Identity::start(backend).await;
    let clerk = identity.token("clerk-city", Department::Hr, Role::Clerk, "3704");
    let mut at_home = row(2, "孙一", &citizen_id("370402", "19750101", "011"), SHIZHONG_VILLAGE);
    let mut away = row(3, "孙二", &citizen_id("370402", "19760202", "021"), SHIZHONG_VILLAGE);
    let first = import(&identity, &clerk, vec![at_home.clone(), away.clone()], 1000).await;
    assert!(first.iter().all(|r| outcome(r) == pb::ImportOutcome::Created));
    // The second person lives in Xuecheng, away from the village of registration.
    move_person(
        &identity,
        &clerk,
        &first[1].person,
        (None, Some(XUECHENG_VILLAGE)),
        None,
    )
    .await;

    let mut feed = watch_from_head(&identity, "3704").await;
    at_home.registered_region = SHIZHONG_OTHER_VILLAGE.into();
    away.registered_region = SHIZHONG_OTHER_VILLAGE.into();
    let second = import(&identity, &clerk, vec![at_home, away], 1000).await;
    assert!(
        second.iter().all(|r| outcome(r) == pb::ImportOutcome::Updated),
        "{second:?}"
    );

    // Living where registered: the residence moved too, and nothing to check.
    let moved = read_person(&identity, &clerk, &first[0].person, None).await;
    assert_eq!(moved.registered_region.expect("region").code, SHIZHONG_OTHER_VILLAGE);
    assert_eq!(moved.residence_region.expect("region").code, SHIZHONG_OTHER_VILLAGE);
    assert!(second[0].notes.is_empty(), "{:?}", second[0]);
    assert_eq!(second[0].reason, "");
    // Living elsewhere: the residence stays, and the row says so to the clerk.
    let kept = read_person(&identity, &clerk, &first[1].person, None).await;
    assert_eq!(kept.registered_region.expect("region").code, SHIZHONG_OTHER_VILLAGE);
    assert_eq!(kept.residence_region.expect("region").code, XUECHENG_VILLAGE);
    assert_eq!(second[1].notes, vec!["RESIDENCE_KEPT".to_string()]);
    assert_eq!(second[1].reason, "RESIDENCE_KEPT");
    assert!(second[1].message.contains(XUECHENG_VILLAGE), "{}", second[1].message);

    // The feed has both moves of the first person and only the registration of the second.
    let mut seen = Vec::new();
    while seen.len() < 3 {
        let change = next_change(&mut feed).await;
        seen.push((change.person, change.kind));
    }
    // One transaction wrote them all: what is not here by the next heartbeat is not coming.
    while let Some(change) = next_change_or_idle(&mut feed).await {
        seen.push((change.person, change.kind));
    }
    seen.sort();
    let mut expected = vec![
        (first[0].person.clone(), pb::ChangeKind::RegistrationMoved as i32),
        (first[0].person.clone(), pb::ChangeKind::ResidenceMoved as i32),
        (first[1].person.clone(), pb::ChangeKind::RegistrationMoved as i32),
    ];
    expected.sort();
    assert_eq!(seen, expected);
}

/// After a large import the planner's statistics are refreshed for the tables that now hold
/// rows, and a table still empty (no certification confirmed yet) is left unanalyzed: analyzed
/// empty, PostgreSQL would plan every later read of it as a read of nothing and scan it whole
/// once it fills.
#[tokio::test]
async fn statistics_after_an_import_skip_the_tables_still_empty_on_postgres() {
    let identity = Identity::start(Backend::Postgres).await;
    let token = identity.shizhong_clerk();
    let rows = vec![row(
        1,
        "王小明",
        &citizen_id("370402", "19800101", "001"),
        SHIZHONG_VILLAGE,
    )];
    import(&identity, &token, rows, 1).await;
    let db = identity.store.db.clone();
    let keys = std::sync::Arc::new(
        bangfu_platform::pii::DataKeyFile::generate()
            .into_keys()
            .expect("data keys"),
    );
    let analyzed = bangfu_identity::store::Store::new(db.clone(), keys)
        .analyze_after_import()
        .await
        .expect("analyze");
    assert!(analyzed.iter().any(|t| t == "persons"), "{analyzed:?}");
    assert!(!analyzed.iter().any(|t| t == "certifications"), "{analyzed:?}");
    let reltuples = |table: &'static str| {
        let db = db.clone();
        async move {
            sqlx::query_scalar::<_, f64>(sqlx::AssertSqlSafe(format!(
                "SELECT CAST(reltuples AS DOUBLE PRECISION) FROM pg_class WHERE relname = '{table}'"
            )))
            .fetch_one(db.pool())
            .await
            .expect("reltuples")
        }
    };
    assert_eq!(reltuples("persons").await, 1.0);
    // -1: never analyzed, so the planner estimates from the table's size as it fills.
    assert_eq!(reltuples("certifications").await, -1.0);
}
