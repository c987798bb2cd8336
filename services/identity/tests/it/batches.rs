//! Batch reads and lookups, as subsidy payment and the post service call them: answers in the
//! order asked, persons not found and persons outside the scope alike, one audit row a batch.

use bangfu_platform::auth::{Department, Role};
use bangfu_platform::error::reason_of;
use bangfu_proto::identity::v1 as pb;
use tonic::Code;

use crate::on_both_backends;
use crate::support::{
    Backend, Identity, SHIZHONG_OTHER_VILLAGE, SHIZHONG_VILLAGE, YUZHONG_VILLAGE, citizen_id, move_person, read_person,
    register, request,
};
use bangfu_proto::common::v1 as common;

on_both_backends!(
    a_batch_read_answers_in_order_and_hides_what_the_caller_may_not_see,
    a_batch_read_gives_each_person_the_facts_of_the_period_as_a_single_read_does,
    a_batch_lookup_matches_names_without_unmasking_and_is_audited_once,
);

async fn a_batch_read_answers_in_order_and_hides_what_the_caller_may_not_see(backend: Backend) {
    let identity = Identity::start(backend).await;
    let clerk = identity.shizhong_clerk();
    let chongqing = identity.token("clerk-chen", Department::Hr, Role::Clerk, "50");
    let a = register(
        &identity,
        &clerk,
        "甲",
        &citizen_id("370402", "19800101", "011"),
        SHIZHONG_VILLAGE,
    )
    .await;
    let b = register(
        &identity,
        &clerk,
        "乙",
        &citizen_id("370402", "19810101", "021"),
        SHIZHONG_VILLAGE,
    )
    .await;
    let c = register(
        &identity,
        &chongqing,
        "丙",
        &citizen_id("500101", "19820101", "031"),
        YUZHONG_VILLAGE,
    )
    .await;
    let missing = "persons/0123456789abcdef0123".to_string();
    let names = vec![b.clone(), c.clone(), missing.clone(), a.clone(), b.clone()];
    let subsidy_reader = identity.token("finance-clerk", Department::Finance, Role::Clerk, "3704");
    let mut client = identity.client().await;
    let results = client
        .batch_get_persons(request(
            pb::BatchGetPersonsRequest {
                names: names.clone(),
                ..Default::default()
            },
            &subsidy_reader,
        ))
        .await
        .expect("batch")
        .into_inner()
        .results;
    assert_eq!(results.iter().map(|r| r.name.clone()).collect::<Vec<_>>(), names);
    assert_eq!(
        results.iter().map(|r| r.not_found).collect::<Vec<_>>(),
        [false, true, true, false, false]
    );
    assert_eq!(
        results[0].person.as_ref().expect("b").display_name,
        "*",
        "a one-character name masks whole"
    );
    assert_eq!(results[3].person.as_ref().expect("a").name, a);
    assert!(
        results[1].person.is_none(),
        "the Chongqing person is not revealed to Zaozhuang"
    );

    let too_many = vec![a.clone(); 1001];
    let status = client
        .batch_get_persons(request(
            pb::BatchGetPersonsRequest {
                names: too_many,
                ..Default::default()
            },
            &subsidy_reader,
        ))
        .await
        .expect_err("over the batch limit");
    assert_eq!(status.code(), Code::InvalidArgument);
    let bad_name = client
        .batch_get_persons(request(
            pb::BatchGetPersonsRequest {
                names: vec![a, "households/1".into()],
                ..Default::default()
            },
            &subsidy_reader,
        ))
        .await
        .expect_err("not a person name");
    let details = tonic_types::StatusExt::get_error_details(&bad_name);
    assert_eq!(
        details.bad_request().expect("field").field_violations[0].field,
        "names[1]"
    );
}

async fn a_batch_lookup_matches_names_without_unmasking_and_is_audited_once(backend: Backend) {
    let identity = Identity::start(backend).await;
    let clerk = identity.shizhong_clerk();
    let chongqing = identity.token("clerk-chen", Department::Hr, Role::Clerk, "50");
    let id_a = citizen_id("370402", "19800101", "011");
    let id_b = citizen_id("370402", "19810101", "021");
    let id_c = citizen_id("500101", "19820101", "031");
    let a = register(&identity, &clerk, "甲一", &id_a, SHIZHONG_VILLAGE).await;
    let b = register(&identity, &clerk, "乙二", &id_b, SHIZHONG_VILLAGE).await;
    register(&identity, &chongqing, "丙三", &id_c, YUZHONG_VILLAGE).await;
    let unregistered = citizen_id("370402", "19900101", "041");
    let pair = |id: &str, name: &str| pb::LookupPersonRequest {
        citizen_id: id.into(),
        display_name: name.into(),
    };
    let mut client = identity.client().await;
    let subsidy = identity.token("finance-clerk", Department::Finance, Role::Clerk, "3704");
    // Finance clerks may not look up by ID; the subsidy service acting alone may.
    let denied = client
        .batch_lookup_persons(request(
            pb::BatchLookupPersonsRequest {
                lookups: vec![pair(&id_a, "")],
            },
            &subsidy,
        ))
        .await
        .expect_err("no lookup permission");
    assert_eq!(denied.code(), Code::PermissionDenied);
    let service = identity.server.keys.service_token("subsidy", "3704");
    let results = client
        .batch_lookup_persons(request(
            pb::BatchLookupPersonsRequest {
                lookups: vec![
                    pair(&id_a, "甲一"),
                    pair(&id_b, "乙 三"),
                    pair(&id_c, "丙三"),
                    pair(&unregistered, ""),
                    pair(&id_a, ""),
                ],
            },
            &service,
        ))
        .await
        .expect("batch lookup")
        .into_inner()
        .results;
    assert_eq!(
        results[0],
        pb::LookupPersonResponse {
            person: a.clone(),
            name_match: pb::NameMatch::Matched as i32
        }
    );
    assert_eq!(
        results[1],
        pb::LookupPersonResponse {
            person: b,
            name_match: pb::NameMatch::Mismatched as i32
        }
    );
    assert_eq!(
        results[2],
        pb::LookupPersonResponse::default(),
        "outside the service's scope"
    );
    assert_eq!(results[3], pb::LookupPersonResponse::default(), "not registered");
    assert_eq!(
        results[4],
        pb::LookupPersonResponse {
            person: a,
            name_match: pb::NameMatch::Unspecified as i32
        }
    );

    let bad = client
        .batch_lookup_persons(request(
            pb::BatchLookupPersonsRequest {
                lookups: vec![pair(&id_a, ""), pair("370402198001010110", "")],
            },
            &service,
        ))
        .await
        .expect_err("a malformed ID");
    assert_eq!(reason_of(&bad).as_deref(), Some("CITIZEN_ID_INVALID"));
    let details = tonic_types::StatusExt::get_error_details(&bad);
    assert_eq!(
        details.bad_request().expect("field").field_violations[0].field,
        "lookups[1].citizen_id"
    );

    bangfu_platform::testing::seal_audit(&identity.store.db, 4).await;
    let mut resources: Vec<String> = sqlx::query_scalar(
        "SELECT resource FROM audit_events WHERE method LIKE '%BatchLookupPersons' AND outcome = 'succeeded'",
    )
    .fetch_all(identity.store.db.pool())
    .await
    .expect("rows");
    resources.sort();
    let mut expected = vec![
        results[0].person.clone(),
        results[1].person.clone(),
        results[4].person.clone(),
        "persons (5 looked up, 3 found)".to_string(),
    ];
    expected.sort();
    assert_eq!(
        resources, expected,
        "a row for the batch, and one naming each person a lookup revealed"
    );
}

/// Each person of a batch carries its own certifications, region and employment for the period
/// asked, exactly as GetPerson answers that person alone (one reads each fact per person).
async fn a_batch_read_gives_each_person_the_facts_of_the_period_as_a_single_read_does(backend: Backend) {
    let identity = Identity::start(backend).await;
    let clerk = identity.shizhong_clerk();
    let certified = register(
        &identity,
        &clerk,
        "赵一",
        &citizen_id("370402", "19800101", "011"),
        SHIZHONG_VILLAGE,
    )
    .await;
    let moved = register(
        &identity,
        &clerk,
        "钱二",
        &citizen_id("370402", "19810101", "021"),
        SHIZHONG_VILLAGE,
    )
    .await;
    let employed = register(
        &identity,
        &clerk,
        "孙三",
        &citizen_id("370402", "19820101", "031"),
        SHIZHONG_VILLAGE,
    )
    .await;
    let date = |year, month, day| Some(common::Date { year, month, day });
    let mut client = identity.client().await;
    let reviewer = identity.token("reviewer-agri", Department::Agri, Role::Reviewer, "370402");
    let certification = client
        .certify_category(request(
            pb::CertifyCategoryRequest {
                person: certified.clone(),
                certification: Some(common::CategoryCertification {
                    category: common::PersonCategory::PovertyAlleviated as i32,
                    household_type: 0,
                    certifying_body: "枣庄市市中区乡村振兴局".into(),
                    document_reference: "市中振发〔2026〕5号".into(),
                    valid_from: date(2026, 1, 1),
                    valid_to: None,
                    annulled: false,
                }),
                request_id: String::new(),
            },
            &reviewer,
        ))
        .await
        .expect("certified")
        .into_inner()
        .certification
        .expect("certification");
    // Today in the tests is 2026-03-02: the move counts from then, the work from February.
    move_person(&identity, &clerk, &moved, (None, Some(SHIZHONG_OTHER_VILLAGE)), None).await;
    client
        .record_employment(request(
            pb::RecordEmploymentRequest {
                person: employed.clone(),
                record: Some(pb::EmploymentRecord {
                    status: common::EmploymentStatus::EmployedInCounty as i32,
                    start_date: date(2026, 2, 1),
                    reporting_system: "就业信息平台".into(),
                    ..Default::default()
                }),
                request_id: String::new(),
            },
            &identity.token("clerk-city", Department::Hr, Role::Clerk, "*"),
        ))
        .await
        .expect("recorded");

    let names = vec![certified.clone(), moved.clone(), employed.clone()];
    for (first, last, moved_to) in [
        ((2026, 2, 1), (2026, 2, 15), SHIZHONG_VILLAGE),
        ((2026, 3, 2), (2026, 3, 2), SHIZHONG_OTHER_VILLAGE),
    ] {
        let period = Some(common::Period {
            first_day: date(first.0, first.1, first.2),
            last_day: date(last.0, last.1, last.2),
        });
        let batch: Vec<pb::Person> = client
            .batch_get_persons(request(
                pb::BatchGetPersonsRequest {
                    names: names.clone(),
                    period,
                    ..Default::default()
                },
                &clerk,
            ))
            .await
            .expect("batch")
            .into_inner()
            .results
            .into_iter()
            .map(|r| r.person.expect("found"))
            .collect();
        for (name, person) in names.iter().zip(&batch) {
            assert_eq!(
                person,
                &read_person(&identity, &clerk, name, period).await,
                "{name} in {period:?}"
            );
        }
        let certifications: Vec<Vec<String>> = batch
            .iter()
            .map(|p| p.certifications.iter().map(|c| c.name.clone()).collect())
            .collect();
        assert_eq!(certifications, [vec![certification.name.clone()], vec![], vec![]]);
        let residences: Vec<&str> = batch
            .iter()
            .map(|p| p.residence_region.as_ref().expect("residence").code.as_str())
            .collect();
        assert_eq!(residences, [SHIZHONG_VILLAGE, moved_to, SHIZHONG_VILLAGE]);
        assert_eq!(
            batch.iter().map(|p| p.employment_status).collect::<Vec<_>>(),
            [0, 0, common::EmploymentStatus::EmployedInCounty as i32],
            "only the third works, from February"
        );
    }
}
