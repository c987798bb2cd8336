//! Registering persons, reading them masked and unmasked, finding them by citizen ID, and the
//! refusals a clerk meets: each with its reason and field, nothing half-written.

use bangfu_platform::auth::{Department, Role};
use bangfu_platform::error::reason_of;
use bangfu_proto::common::v1 as common;
use bangfu_proto::identity::v1 as pb;
use tonic::Code;

use crate::on_both_backends;
use crate::support::{
    Backend, Identity, SHIZHONG_OTHER_VILLAGE, SHIZHONG_VILLAGE, XUECHENG_VILLAGE, YUZHONG_VILLAGE, citizen_id, request,
};

on_both_backends!(
    a_registered_person_comes_back_masked_with_birth_sex_and_retirement_from_the_id,
    the_unmasked_view_needs_the_pii_permission_and_a_purpose_and_is_audited,
    bad_input_is_refused_naming_the_field_and_nothing_is_written,
    a_citizen_id_registered_twice_is_named_only_inside_the_callers_scope,
    a_retried_create_with_the_same_request_id_returns_the_same_person,
    a_person_outside_the_callers_scope_is_not_found,
    lookups_answer_whether_the_name_matches_without_unmasking_and_are_audited,
    parameters_and_audit_events_are_served_through_the_service,
);

fn person(name: &str, id: &str, village: &str) -> pb::Person {
    pb::Person {
        display_name: name.into(),
        citizen_id: id.into(),
        phone: "13812341234".into(),
        registered_region: Some(common::RegionCode {
            code: village.into(),
            display_name: String::new(),
        }),
        labor_capacity: common::LaborCapacity::Weak as i32,
        skills: vec!["保洁".into()],
        ..Default::default()
    }
}

async fn create(
    identity: &Identity,
    token: &str,
    person: pb::Person,
    request_id: &str,
) -> Result<pb::Person, tonic::Status> {
    let mut client = identity.client().await;
    client
        .create_person(request(
            pb::CreatePersonRequest {
                person: Some(person),
                request_id: request_id.into(),
            },
            token,
        ))
        .await
        .map(|r| r.into_inner().person.expect("person"))
}

async fn get(identity: &Identity, token: &str, name: &str) -> Result<pb::Person, tonic::Status> {
    let mut client = identity.client().await;
    client
        .get_person(request(
            pb::GetPersonRequest {
                name: name.into(),
                ..Default::default()
            },
            token,
        ))
        .await
        .map(|r| r.into_inner().person.expect("person"))
}

async fn count_persons(identity: &Identity) -> i64 {
    sqlx::query_scalar("SELECT COUNT(*) FROM persons")
        .fetch_one(identity.store.db.pool())
        .await
        .expect("count")
}

async fn a_registered_person_comes_back_masked_with_birth_sex_and_retirement_from_the_id(backend: Backend) {
    let identity = Identity::start(backend).await;
    let clerk = identity.shizhong_clerk();
    // A woman born April 1971, no track given: the default 55 track retires her August 2026.
    let id = citizen_id("370402", "19710415", "002");
    let created = create(&identity, &clerk, person("王秀英", &id, SHIZHONG_VILLAGE), "")
        .await
        .expect("created");
    assert!(created.name.starts_with("persons/"));
    assert!(
        !created.name.contains(&id[..6]) && !created.name.contains(&id[10..]),
        "the resource name holds no part of the citizen ID"
    );
    assert!(
        candidate_ids(&created).len() > 1000,
        "a masked answer must not narrow the citizen ID down"
    );
    assert_eq!(created.citizen_id, format!("{}*************{}", &id[..4], &id[17..]));
    assert_eq!(created.display_name, "王**");
    assert_eq!(created.phone, "138****1234");
    assert_eq!(created.sex, common::Sex::Female as i32);
    // Masked, the birth date is the year and month.
    assert_eq!(
        created.birth_date,
        Some(common::Date {
            year: 1971,
            month: 4,
            day: 0
        })
    );
    assert_eq!(
        created.retirement_month,
        Some(common::YearMonth { year: 2026, month: 8 })
    );
    assert_eq!(created.retirement_track, pb::RetirementTrack::Woman55 as i32);
    assert_eq!(created.labor_capacity, common::LaborCapacity::Weak as i32);
    let registered = created.registered_region.expect("region");
    assert_eq!(registered.code, SHIZHONG_VILLAGE);
    assert!(
        registered.display_name.starts_with("山东省枣庄市市中区"),
        "{}",
        registered.display_name
    );
    assert_eq!(
        created.residence_region.expect("residence").code,
        SHIZHONG_VILLAGE,
        "residence defaults to registered"
    );

    let read = get(&identity, &clerk, &created.name).await.expect("read back");
    assert_eq!(read.citizen_id, created.citizen_id);
    assert_eq!(read.etag, "r1");
    // Nothing personal is stored in clear.
    let clear: i64 =
        sqlx::query_scalar("SELECT COUNT(*) FROM persons WHERE citizen_id_masked = $1 OR name_masked = $2")
            .bind(&id)
            .bind("王秀英")
            .fetch_one(identity.store.db.pool())
            .await
            .expect("count");
    assert_eq!(clear, 0);
}

async fn the_unmasked_view_needs_the_pii_permission_and_a_purpose_and_is_audited(backend: Backend) {
    let identity = Identity::start(backend).await;
    let id = citizen_id("370402", "19800101", "011");
    let created = create(
        &identity,
        &identity.shizhong_clerk(),
        person("张三", &id, SHIZHONG_VILLAGE),
        "",
    )
    .await
    .expect("created");
    let mut client = identity.client().await;
    let unmasked = |purpose: Option<common::AccessPurpose>| pb::GetPersonRequest {
        name: created.name.clone(),
        period: None,
        view: common::PersonalDataView::Unmasked as i32,
        purpose,
    };
    let purpose = common::AccessPurpose {
        code: common::AccessPurposeCode::EligibilityReview as i32,
        reference: "枣人社函〔2026〕12号".into(),
    };
    let clerk = identity.shizhong_clerk();
    let status = client
        .get_person(request(unmasked(Some(purpose.clone())), &clerk))
        .await
        .expect_err("clerks read masked only");
    assert_eq!(status.code(), Code::PermissionDenied);
    let reviewer = identity.token("reviewer-zhao", Department::Hr, Role::Reviewer, "3704");
    let status = client
        .get_person(request(unmasked(None), &reviewer))
        .await
        .expect_err("no purpose");
    assert_eq!(status.code(), Code::InvalidArgument);
    assert_eq!(reason_of(&status).as_deref(), Some("ACCESS_PURPOSE_REQUIRED"));
    let clear = client
        .get_person(request(unmasked(Some(purpose)), &reviewer))
        .await
        .expect("reviewer with a purpose")
        .into_inner()
        .person
        .expect("person");
    assert_eq!(clear.citizen_id, id);
    assert_eq!(clear.display_name, "张三");
    assert_eq!(clear.phone, "13812341234");

    let auditor = identity.token("auditor-qian", Department::Hr, Role::Auditor, "*");
    bangfu_platform::testing::seal_audit(&identity.store.db, 2).await;
    let events = client
        .list_audit_events(request(
            pb::ListAuditEventsRequest {
                filter: Some(common::AuditEventFilter {
                    subject: "reviewer-zhao".into(),
                    ..Default::default()
                }),
                ..Default::default()
            },
            &auditor,
        ))
        .await
        .expect("auditor reads the log")
        .into_inner()
        .audit_events;
    assert_eq!(
        events.len(),
        1,
        "the unmasked read is audited once; the refused one is not a read"
    );
    assert_eq!(events[0].resource, created.name);
    let stated = events[0].purpose.clone().expect("purpose");
    assert_eq!(stated.code, common::AccessPurposeCode::EligibilityReview as i32);
    assert_eq!(stated.reference, "枣人社函〔2026〕12号");
}

async fn bad_input_is_refused_naming_the_field_and_nothing_is_written(backend: Backend) {
    let identity = Identity::start(backend).await;
    let clerk = identity.shizhong_clerk();
    let good = citizen_id("370402", "19800101", "011");
    let mut wrong_check = good.clone();
    wrong_check.replace_range(17.., if good.ends_with('0') { "1" } else { "0" });
    let cases: Vec<(pb::Person, &str, &str)> = vec![
        (
            person("张三", &wrong_check, SHIZHONG_VILLAGE),
            "person.citizen_id",
            "CITIZEN_ID_INVALID",
        ),
        (
            person("张三", "370402800101011", SHIZHONG_VILLAGE),
            "person.citizen_id",
            "CITIZEN_ID_INVALID",
        ),
        (
            person("张三", &citizen_id("370402", "20270101", "011"), SHIZHONG_VILLAGE),
            "person.citizen_id",
            "CITIZEN_ID_INVALID",
        ),
        (
            person("张三", &citizen_id("370402", "19800230", "011"), SHIZHONG_VILLAGE),
            "person.citizen_id",
            "CITIZEN_ID_INVALID",
        ),
        (
            person(&"张".repeat(500), &good, SHIZHONG_VILLAGE),
            "person.display_name",
            "FIELD_TOO_LONG",
        ),
        (
            person("张\u{7}三", &good, SHIZHONG_VILLAGE),
            "person.display_name",
            "FIELD_INVALID",
        ),
        (
            person("张三", &good, "370402999999"),
            "person.registered_region.code",
            "REGION_UNKNOWN",
        ),
        (
            person("张三", &good, "370402"),
            "person.registered_region.code",
            "REGION_UNKNOWN",
        ),
    ];
    for (input, field, reason) in cases {
        let status = create(&identity, &clerk, input, "").await.expect_err("refused");
        assert_eq!(status.code(), Code::InvalidArgument, "{field}: {status:?}");
        assert_eq!(reason_of(&status).as_deref(), Some(reason), "{field}");
        let details = tonic_types::StatusExt::get_error_details(&status);
        assert_eq!(details.bad_request().expect("field").field_violations[0].field, field);
    }
    let mut wrong_sex = person("张三", &good, SHIZHONG_VILLAGE);
    wrong_sex.sex = common::Sex::Female as i32;
    let status = create(&identity, &clerk, wrong_sex, "")
        .await
        .expect_err("sex contradicts the ID");
    assert_eq!(status.code(), Code::InvalidArgument);
    // A name that looks like SQL is only a name.
    let sql = create(
        &identity,
        &clerk,
        person("x'); DROP TABLE persons;--", &good, SHIZHONG_VILLAGE),
        "",
    )
    .await
    .expect("stored as data");
    assert_eq!(sql.display_name.chars().next(), Some('x'));
    assert_eq!(count_persons(&identity).await, 1);
}

async fn a_citizen_id_registered_twice_is_named_only_inside_the_callers_scope(backend: Backend) {
    let identity = Identity::start(backend).await;
    let id = citizen_id("370402", "19700505", "033");
    let first = create(
        &identity,
        &identity.shizhong_clerk(),
        person("李四", &id, SHIZHONG_VILLAGE),
        "",
    )
    .await
    .expect("first");
    let status = create(
        &identity,
        &identity.shizhong_clerk(),
        person("李四", &id, SHIZHONG_OTHER_VILLAGE),
        "",
    )
    .await
    .expect_err("same ID in scope");
    assert_eq!(status.code(), Code::AlreadyExists);
    assert_eq!(reason_of(&status).as_deref(), Some("ALREADY_EXISTS"));
    let info = tonic_types::StatusExt::get_error_details(&status);
    assert_eq!(
        info.error_info().expect("info").metadata.get("resource"),
        Some(&first.name)
    );

    let xuecheng = identity.token("clerk-sun", Department::Hr, Role::Clerk, "370403");
    let status = create(&identity, &xuecheng, person("李四", &id, XUECHENG_VILLAGE), "")
        .await
        .expect_err("same ID elsewhere");
    assert_eq!(status.code(), Code::AlreadyExists);
    assert_eq!(reason_of(&status).as_deref(), Some("PERSON_EXISTS_OUTSIDE_SCOPE"));
    assert!(!status.message().contains(&first.name));
    let details = tonic_types::StatusExt::get_error_details(&status);
    assert!(!details.error_info().expect("info").metadata.contains_key("resource"));
    assert_eq!(count_persons(&identity).await, 1);
}

async fn a_retried_create_with_the_same_request_id_returns_the_same_person(backend: Backend) {
    let identity = Identity::start(backend).await;
    let clerk = identity.shizhong_clerk();
    let id = citizen_id("370402", "19900909", "045");
    let request_id = "0b6f6d2e-8a3c-4c7e-9a51-3f2d1c0b9a87";
    let first = create(&identity, &clerk, person("赵六", &id, SHIZHONG_VILLAGE), request_id)
        .await
        .expect("first");
    let again = create(&identity, &clerk, person("赵六", &id, SHIZHONG_VILLAGE), request_id)
        .await
        .expect("retry");
    assert_eq!(first.name, again.name);
    assert_eq!(count_persons(&identity).await, 1);
    let other_id = citizen_id("370402", "19900909", "047");
    let status = create(
        &identity,
        &clerk,
        person("赵六", &other_id, SHIZHONG_VILLAGE),
        request_id,
    )
    .await
    .expect_err("same request id, different person");
    assert_eq!(reason_of(&status).as_deref(), Some("REQUEST_ID_REUSED"));
}

async fn a_person_outside_the_callers_scope_is_not_found(backend: Backend) {
    let identity = Identity::start(backend).await;
    let chongqing = identity.token("clerk-chen", Department::Hr, Role::Clerk, "50");
    let created = create(
        &identity,
        &chongqing,
        person("陈七", &citizen_id("500101", "19850707", "051"), YUZHONG_VILLAGE),
        "",
    )
    .await
    .expect("created in Chongqing");
    let status = get(&identity, &identity.shizhong_clerk(), &created.name)
        .await
        .expect_err("outside scope");
    assert_eq!(status.code(), Code::NotFound);
    let missing = get(&identity, &identity.shizhong_clerk(), "persons/00000000000000000000")
        .await
        .expect_err("missing");
    assert_eq!(missing.code(), Code::NotFound);
    assert_eq!(
        status.message().replace(&created.name, ""),
        missing.message().replace("persons/00000000000000000000", "")
    );
    let status = create(
        &identity,
        &identity.shizhong_clerk(),
        person("陈七", &citizen_id("500101", "19850707", "053"), YUZHONG_VILLAGE),
        "",
    )
    .await
    .expect_err("a clerk registers only inside the scope");
    assert_eq!(status.code(), Code::PermissionDenied);
}

async fn lookups_answer_whether_the_name_matches_without_unmasking_and_are_audited(backend: Backend) {
    let identity = Identity::start(backend).await;
    let id = citizen_id("370402", "19751212", "067");
    let created = create(
        &identity,
        &identity.shizhong_clerk(),
        person("买买提·艾力", &id, SHIZHONG_VILLAGE),
        "",
    )
    .await
    .expect("created");
    let mut client = identity.client().await;
    let lookup = |citizen_id: &str, name: &str| pb::LookupPersonRequest {
        citizen_id: citizen_id.into(),
        display_name: name.into(),
    };
    let clerk = identity.shizhong_clerk();
    let found = client
        .lookup_person(request(lookup(&id, "买买提•艾力"), &clerk))
        .await
        .expect("lookup")
        .into_inner();
    assert_eq!(found.person, created.name);
    assert_eq!(found.name_match, pb::NameMatch::Matched as i32);
    let wrong = client
        .lookup_person(request(lookup(&id, "买买提"), &clerk))
        .await
        .expect("lookup")
        .into_inner();
    assert_eq!(wrong.name_match, pb::NameMatch::Mismatched as i32);
    let chongqing = identity.token("clerk-chen", Department::Hr, Role::Clerk, "50");
    let hidden = client
        .lookup_person(request(lookup(&id, "买买提·艾力"), &chongqing))
        .await
        .expect("lookup")
        .into_inner();
    assert_eq!(
        hidden,
        pb::LookupPersonResponse::default(),
        "outside the scope nothing is told"
    );
    let bad = client
        .lookup_person(request(lookup("11010519491231002Y", ""), &clerk))
        .await
        .expect_err("bad ID");
    assert_eq!(reason_of(&bad).as_deref(), Some("CITIZEN_ID_INVALID"));
    bangfu_platform::testing::seal_audit(&identity.store.db, 4).await;
    let lookups: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM audit_events WHERE method LIKE '%LookupPerson'")
        .fetch_one(identity.store.db.pool())
        .await
        .expect("count");
    assert_eq!(lookups, 3);
}

async fn parameters_and_audit_events_are_served_through_the_service(backend: Backend) {
    let identity = Identity::start(backend).await;
    let mut client = identity.client().await;
    let admin = identity.token("admin-wu", Department::Hr, Role::Admin, "*");
    let listed = client
        .list_parameters(request(
            pb::ListParametersRequest {
                filter: Some(common::ParameterFilter {
                    key: "identity.income_drop_alert_bp".into(),
                    ..Default::default()
                }),
                ..Default::default()
            },
            &admin,
        ))
        .await
        .expect("list")
        .into_inner();
    assert_eq!(listed.parameters.len(), 1);
    let mut row = listed.parameters[0].clone();
    assert_eq!((row.value, row.unit), (2000, common::ParameterUnit::BasisPoints as i32));
    row.value = 2500;
    let updated = client
        .update_parameter(request(
            pb::UpdateParameterRequest {
                parameter: Some(row.clone()),
                update_mask: Some(prost_types::FieldMask {
                    paths: vec!["value".into()],
                }),
                allow_missing: false,
            },
            &admin,
        ))
        .await
        .expect("update")
        .into_inner()
        .parameter
        .expect("row");
    assert_eq!((updated.value, updated.etag.as_str()), (2500, "r2"));
    let stale = client
        .update_parameter(request(
            pb::UpdateParameterRequest {
                parameter: Some(row),
                update_mask: Some(prost_types::FieldMask {
                    paths: vec!["value".into()],
                }),
                allow_missing: false,
            },
            &admin,
        ))
        .await
        .expect_err("stale etag");
    assert_eq!(stale.code(), Code::Aborted);
    let clerk = identity.shizhong_clerk();
    let denied = client
        .list_audit_events(request(pb::ListAuditEventsRequest::default(), &clerk))
        .await
        .expect_err("clerks do not read the audit log");
    assert_eq!(denied.code(), Code::PermissionDenied);
    bangfu_platform::testing::seal_audit(&identity.store.db, 2).await;
    let events = client
        .list_audit_events(request(
            pb::ListAuditEventsRequest {
                page_size: 1,
                ..Default::default()
            },
            &admin,
        ))
        .await
        .expect("admin reads")
        .into_inner();
    assert_eq!(events.audit_events.len(), 1);
    assert!(
        !events.next_page_token.is_empty(),
        "a second page holds the refused call"
    );
}

/// Every citizen ID consistent with what a masked answer shows: the masked ID's kept
/// characters, the registered county as the issuing county (true for anyone registered where
/// they were born), the birth date as far as shown, the sex, and the check character. One
/// candidate means the masked view gave the ID away.
fn candidate_ids(masked: &pb::Person) -> Vec<String> {
    let county = &masked.registered_region.as_ref().expect("region").code[..6];
    let birth = masked.birth_date.expect("birth date");
    let days: Vec<i32> = if birth.day == 0 {
        (1..=31).collect()
    } else {
        vec![birth.day]
    };
    let shown: Vec<char> = masked.citizen_id.chars().collect();
    let male = masked.sex == common::Sex::Male as i32;
    let mut candidates = Vec::new();
    for day in days {
        for sequence in 0..1000u32 {
            if (sequence % 2 == 1) != male {
                continue;
            }
            let id = citizen_id(
                county,
                &format!("{:04}{:02}{:02}", birth.year, birth.month, day),
                &format!("{sequence:03}"),
            );
            let fits = id
                .chars()
                .zip(&shown)
                .all(|(digit, mask)| *mask == '*' || digit == *mask);
            if fits {
                candidates.push(id);
            }
        }
    }
    candidates
}
