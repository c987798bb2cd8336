//! What the one write path holds under retries and races: concurrent first attempts with one
//! request id get one answer, a retried state change gets the first answer, a request id is
//! bound to the whole request, every state change is guarded where it is made (approve against
//! reject, revoke against annul, one head per household), and one person's employment periods
//! never overlap.

use bangfu_platform::auth::{Department, Role};
use bangfu_platform::error::reason_of;
use bangfu_proto::common::v1 as common;
use bangfu_proto::identity::v1 as pb;
use tonic::Code;

use crate::on_both_backends;
use crate::support::{Backend, Identity, SHIZHONG_VILLAGE, citizen_id, register, request};

on_both_backends!(
    concurrent_first_attempts_with_one_request_id_create_one_person,
    a_request_id_covers_the_whole_request,
    a_retried_annulment_answers_with_the_first,
    approve_and_reject_racing_leave_one_review_and_the_id_it_says,
    revoke_and_annul_racing_leave_one_change,
    two_heads_registered_at_once_leave_one_head,
    a_backdated_employment_record_never_overlaps_a_later_one,
    a_batch_lookup_counts_each_id_against_the_limit,
);

fn village() -> Option<common::RegionCode> {
    Some(common::RegionCode {
        code: SHIZHONG_VILLAGE.into(),
        display_name: String::new(),
    })
}

fn create(name: &str, id: &str, request_id: &str) -> pb::CreatePersonRequest {
    pb::CreatePersonRequest {
        person: Some(pb::Person {
            display_name: name.into(),
            citizen_id: id.into(),
            registered_region: village(),
            ..Default::default()
        }),
        request_id: request_id.into(),
    }
}

async fn concurrent_first_attempts_with_one_request_id_create_one_person(backend: Backend) {
    let identity = Identity::start(backend).await;
    let clerk = identity.shizhong_clerk();
    let id = citizen_id("370402", "19800101", "013");
    let mut calls = Vec::new();
    for _ in 0..8 {
        let mut client = identity.client().await;
        let message = create("孙一", &id, "5f0c9a3e-1b2d-4c8e-9f00-7a6b5c4d3e2f");
        let token = clerk.clone();
        calls.push(tokio::spawn(async move {
            client.create_person(request(message, &token)).await
        }));
    }
    let mut names = Vec::new();
    for call in calls {
        let answer = call
            .await
            .expect("joined")
            .expect("every attempt gets the first's answer");
        names.push(answer.into_inner().person.expect("person").name);
    }
    names.dedup();
    assert_eq!(names.len(), 1, "one person for one request id: {names:?}");
}

async fn a_request_id_covers_the_whole_request(backend: Backend) {
    let identity = Identity::start(backend).await;
    let clerk = identity.shizhong_clerk();
    let mut client = identity.client().await;
    let id = citizen_id("370402", "19800101", "015");
    let mut first = create("孙二", &id, "req-skills");
    first.person.as_mut().expect("person").skills = vec!["电工".into()];
    client.create_person(request(first, &clerk)).await.expect("created");
    // The same id with only the skills changed is another request, not a retry.
    let mut other = create("孙二", &id, "req-skills");
    other.person.as_mut().expect("person").skills = vec!["焊工".into()];
    let refused = client
        .create_person(request(other, &clerk))
        .await
        .expect_err("another request under a used id");
    assert_eq!(refused.code(), Code::FailedPrecondition);
    assert_eq!(reason_of(&refused).as_deref(), Some("REQUEST_ID_REUSED"));
}

fn agri_reviewer(identity: &Identity) -> String {
    identity.token("reviewer-agri", Department::Agri, Role::Reviewer, "370402")
}

async fn certified(identity: &Identity, sequence: &str) -> (String, String) {
    let person = register(
        identity,
        &identity.shizhong_clerk(),
        "钱三",
        &citizen_id("370402", "19700101", sequence),
        SHIZHONG_VILLAGE,
    )
    .await;
    let mut client = identity.client().await;
    let certification = client
        .certify_category(request(
            pb::CertifyCategoryRequest {
                person: person.clone(),
                certification: Some(common::CategoryCertification {
                    category: common::PersonCategory::PovertyAlleviated as i32,
                    household_type: 0,
                    certifying_body: "枣庄市市中区乡村振兴局".into(),
                    document_reference: "市中振发〔2026〕5号".into(),
                    valid_from: Some(common::Date {
                        year: 2021,
                        month: 1,
                        day: 1,
                    }),
                    valid_to: None,
                    annulled: false,
                }),
                request_id: String::new(),
            },
            &agri_reviewer(identity),
        ))
        .await
        .expect("certified")
        .into_inner()
        .certification
        .expect("certification");
    (person, certification.name)
}

fn annul(name: &str, request_id: &str) -> pb::RevokeCategoryRequest {
    pb::RevokeCategoryRequest {
        name: name.into(),
        annul: true,
        valid_to: None,
        document_reference: "市中振发〔2026〕9号".into(),
        request_id: request_id.into(),
    }
}

fn revoke(name: &str) -> pb::RevokeCategoryRequest {
    pb::RevokeCategoryRequest {
        name: name.into(),
        annul: false,
        valid_to: Some(common::Date {
            year: 2026,
            month: 2,
            day: 28,
        }),
        document_reference: "市中振发〔2026〕8号".into(),
        request_id: String::new(),
    }
}

async fn a_retried_annulment_answers_with_the_first(backend: Backend) {
    let identity = Identity::start(backend).await;
    let (_, certification) = certified(&identity, "017").await;
    let reviewer = agri_reviewer(&identity);
    let mut client = identity.client().await;
    let first = client
        .revoke_category(request(annul(&certification, "req-annul"), &reviewer))
        .await
        .expect("annulled")
        .into_inner();
    // The answer to the first was lost; the retry finds the certification annulled, and must
    // still get the first's answer rather than "already annulled".
    let retried = client
        .revoke_category(request(annul(&certification, "req-annul"), &reviewer))
        .await
        .expect("the retry answers as the first did")
        .into_inner();
    assert_eq!(retried, first);
    let again = client
        .revoke_category(request(annul(&certification, "req-annul-2"), &reviewer))
        .await
        .expect_err("a new annulment of an annulled certification");
    assert_eq!(reason_of(&again).as_deref(), Some("STATE_CONFLICT"));
}

async fn revoke_and_annul_racing_leave_one_change(backend: Backend) {
    let identity = Identity::start(backend).await;
    let reviewer = agri_reviewer(&identity);
    for (round, sequence) in ["019", "021", "023", "025"].into_iter().enumerate() {
        let (person, certification) = certified(&identity, sequence).await;
        let mut revoker = identity.client().await;
        let mut annuller = identity.client().await;
        let (revoked, annulled) = tokio::join!(
            revoker.revoke_category(request(revoke(&certification), &reviewer)),
            annuller.revoke_category(request(annul(&certification, ""), &reviewer)),
        );
        let succeeded = usize::from(revoked.is_ok()) + usize::from(annulled.is_ok());
        assert!(succeeded >= 1, "round {round}: one of the two changes is made");
        for refused in [&revoked, &annulled].into_iter().filter_map(|r| r.as_ref().err()) {
            assert_eq!(reason_of(refused).as_deref(), Some("STATE_CONFLICT"), "round {round}");
        }
        // Both may succeed only in the order revoke, then annul (an annulment voids a revoked
        // certification); an annulled one is never revoked after.
        let mut client = identity.client().await;
        let read = client
            .get_person(request(
                pb::GetPersonRequest {
                    name: person.clone(),
                    period: Some(common::Period {
                        first_day: Some(common::Date {
                            year: 2021,
                            month: 1,
                            day: 1,
                        }),
                        last_day: Some(common::Date {
                            year: 2026,
                            month: 3,
                            day: 2,
                        }),
                    }),
                    ..Default::default()
                },
                &identity.shizhong_clerk(),
            ))
            .await
            .expect("read")
            .into_inner()
            .person
            .expect("person");
        let annulled_now = read
            .certifications
            .iter()
            .all(|c| c.certification.as_ref().is_some_and(|c| c.annulled));
        assert_eq!(
            annulled_now,
            annulled.is_ok(),
            "round {round}: annulled exactly when the annulment succeeded"
        );
        let events = feed_kinds(&identity, &person, 2 + succeeded).await;
        let expected: Vec<&str> = [
            revoked.is_ok().then_some("CHANGE_KIND_CATEGORY_REVOKED"),
            annulled.is_ok().then_some("CHANGE_KIND_CATEGORY_ANNULLED"),
        ]
        .into_iter()
        .flatten()
        .collect();
        let mut seen: Vec<&str> = events
            .iter()
            .map(String::as_str)
            .filter(|k| *k != "CHANGE_KIND_CREATED" && *k != "CHANGE_KIND_CATEGORY_CERTIFIED")
            .collect();
        seen.sort_unstable();
        let mut expected = expected;
        expected.sort_unstable();
        assert_eq!(seen, expected, "round {round}: the feed tells each change made, once");
    }
}

/// The kinds of the feed's events about `person`, from the start: read until at least
/// `at_least` of them came and then a heartbeat said nothing more is there. (On PostgreSQL
/// another test's open transaction may hold committed events back for a moment.)
async fn feed_kinds(identity: &Identity, person: &str, at_least: usize) -> Vec<String> {
    use pb::watch_person_changes_response::Item;
    use tokio_stream::StreamExt;
    let mut client = identity.client().await;
    let admin = identity.token("admin", Department::Hr, Role::Admin, "*");
    let mut stream = client
        .watch_person_changes(request(pb::WatchPersonChangesRequest::default(), &admin))
        .await
        .expect("watch")
        .into_inner();
    let mut kinds = Vec::new();
    loop {
        let item = tokio::time::timeout(std::time::Duration::from_secs(10), stream.next())
            .await
            .expect("the feed answers within 10 s")
            .expect("stream open")
            .expect("item");
        match item.item {
            Some(Item::Change(change)) if change.person == person => kinds.push(
                pb::ChangeKind::try_from(change.kind)
                    .map(|k| k.as_str_name().to_string())
                    .unwrap_or_default(),
            ),
            Some(Item::Heartbeat(_)) if kinds.len() >= at_least => return kinds,
            _ => {}
        }
    }
}

async fn approve_and_reject_racing_leave_one_review_and_the_id_it_says(backend: Backend) {
    let identity = Identity::start(backend).await;
    let reviewer_a = identity.token("reviewer-zhao", Department::Hr, Role::Reviewer, "370402");
    let reviewer_b = identity.token("reviewer-qian", Department::Hr, Role::Reviewer, "370402");
    for (round, sequence) in ["031", "033", "035", "037"].into_iter().enumerate() {
        let old_id = citizen_id("370402", "19650415", sequence);
        let new_id = citizen_id("370402", "19650416", sequence);
        let clerk = identity.shizhong_clerk();
        let person = register(&identity, &clerk, "吴九", &old_id, SHIZHONG_VILLAGE).await;
        let mut client = identity.client().await;
        let proposed = client
            .correct_citizen_id(request(
                pb::CorrectCitizenIdRequest {
                    person: person.clone(),
                    correction: Some(pb::CitizenIdCorrection {
                        new_citizen_id: new_id.clone(),
                        reason: "户籍证明显示出生日期为4月16日".into(),
                        ..Default::default()
                    }),
                    request_id: String::new(),
                },
                &clerk,
            ))
            .await
            .expect("proposed")
            .into_inner()
            .correction
            .expect("correction");
        let review = |approve: bool, token: String| {
            let name = proposed.name.clone();
            let channel = identity.client();
            async move {
                let mut client = channel.await;
                client
                    .approve_citizen_id_correction(request(
                        pb::ApproveCitizenIdCorrectionRequest {
                            name,
                            approve,
                            reason: "已核对户籍证明".into(),
                        },
                        &token,
                    ))
                    .await
            }
        };
        let (approved, rejected) = tokio::join!(review(true, reviewer_a.clone()), review(false, reviewer_b.clone()));
        assert!(
            approved.is_ok() != rejected.is_ok(),
            "round {round}: exactly one review is made"
        );
        let loser = approved
            .as_ref()
            .err()
            .or(rejected.as_ref().err())
            .expect("one refused");
        assert_eq!(reason_of(loser).as_deref(), Some("STATE_CONFLICT"), "round {round}");
        // The ID the registry finds the person by is the one the review's outcome says.
        let expected = if approved.is_ok() { &new_id } else { &old_id };
        let other = if approved.is_ok() { &old_id } else { &new_id };
        let found = client
            .lookup_person(request(
                pb::LookupPersonRequest {
                    citizen_id: expected.clone(),
                    display_name: String::new(),
                },
                &clerk,
            ))
            .await
            .expect("lookup")
            .into_inner();
        assert_eq!(found.person, person, "round {round}");
        let not_found = client
            .lookup_person(request(
                pb::LookupPersonRequest {
                    citizen_id: other.clone(),
                    display_name: String::new(),
                },
                &clerk,
            ))
            .await
            .expect("lookup")
            .into_inner();
        assert!(not_found.person.is_empty(), "round {round}");
    }
}

async fn two_heads_registered_at_once_leave_one_head(backend: Backend) {
    let identity = Identity::start(backend).await;
    let clerk = identity.shizhong_clerk();
    let mut client = identity.client().await;
    for round in 0..4 {
        let household = client
            .create_household(request(
                pb::CreateHouseholdRequest {
                    household: Some(pb::Household {
                        household_number: format!("370402001013100{round}"),
                        region: village(),
                        ..Default::default()
                    }),
                    request_id: String::new(),
                },
                &clerk,
            ))
            .await
            .expect("household")
            .into_inner()
            .household
            .expect("household");
        let head = |sequence: String| {
            let mut message = create("郑大", &citizen_id("370402", "19750101", &sequence), "");
            let person = message.person.as_mut().expect("person");
            person.household = household.name.clone();
            person.household_relation = pb::HouseholdRelation::Head as i32;
            let channel = identity.client();
            let token = clerk.clone();
            async move { channel.await.create_person(request(message, &token)).await }
        };
        let (first, second) = tokio::join!(head(format!("2{round}1")), head(format!("2{round}3")));
        assert!(first.is_ok() != second.is_ok(), "round {round}: one head registered");
        let refused = first.as_ref().err().or(second.as_ref().err()).expect("one refused");
        assert_eq!(refused.code(), Code::InvalidArgument, "round {round}: {refused:?}");
        assert_eq!(reason_of(refused).as_deref(), Some("FIELD_INVALID"), "round {round}");
    }
}

fn date(year: i32, month: i32, day: i32) -> Option<common::Date> {
    Some(common::Date { year, month, day })
}

async fn a_backdated_employment_record_never_overlaps_a_later_one(backend: Backend) {
    let identity = Identity::start(backend).await;
    let clerk = identity.shizhong_clerk();
    let person = register(
        &identity,
        &clerk,
        "周五",
        &citizen_id("370402", "19800101", "041"),
        SHIZHONG_VILLAGE,
    )
    .await;
    let mut client = identity.client().await;
    let record = |status: common::EmploymentStatus, start: Option<common::Date>| pb::RecordEmploymentRequest {
        person: person.clone(),
        record: Some(pb::EmploymentRecord {
            status: status as i32,
            employer: "枣庄某制衣厂".into(),
            work_region: "370402".into(),
            start_date: start,
            reporting_system: "就业信息平台".into(),
            ..Default::default()
        }),
        request_id: String::new(),
    };
    client
        .record_employment(request(
            record(common::EmploymentStatus::EmployedInCounty, date(2026, 2, 1)),
            &clerk,
        ))
        .await
        .expect("employed from February");
    // Reported late: unemployed from January, with no end given.
    client
        .record_employment(request(
            record(common::EmploymentStatus::Unemployed, date(2026, 1, 1)),
            &clerk,
        ))
        .await
        .expect("unemployed from January");
    let stats = |first: Option<common::Date>, last: Option<common::Date>| pb::GetMonitoringStatsRequest {
        region_prefix: "370402".into(),
        period: Some(common::Period {
            first_day: first,
            last_day: last,
        }),
        group_by_digits: 6,
    };
    let february = client
        .get_monitoring_stats(request(stats(date(2026, 2, 1), date(2026, 2, 28)), &clerk))
        .await
        .expect("stats")
        .into_inner()
        .regions;
    let counts = &february[0].persons_by_employment_status;
    assert_eq!(counts.values().sum::<i64>(), 1, "one person, counted once: {counts:?}");
    assert_eq!(counts.get("EMPLOYMENT_STATUS_EMPLOYED_IN_COUNTY"), Some(&1));
    let january = client
        .get_monitoring_stats(request(stats(date(2026, 1, 1), date(2026, 1, 31)), &clerk))
        .await
        .expect("stats")
        .into_inner()
        .regions;
    assert_eq!(
        january[0]
            .persons_by_employment_status
            .get("EMPLOYMENT_STATUS_UNEMPLOYED"),
        Some(&1)
    );
}

async fn a_batch_lookup_counts_each_id_against_the_limit(backend: Backend) {
    let identity = Identity::start(backend).await;
    let clerk = identity.shizhong_clerk();
    let mut client = identity.client().await;
    let lookups = |n: usize| pb::BatchLookupPersonsRequest {
        lookups: (0..n)
            .map(|i| pb::LookupPersonRequest {
                citizen_id: citizen_id("370402", "19800101", &format!("{:03}", 101 + 2 * i)),
                display_name: String::new(),
            })
            .collect(),
    };
    // 40 and then 20 of the default 60 a minute pass; one more does not.
    client
        .batch_lookup_persons(request(lookups(40), &clerk))
        .await
        .expect("40 lookups");
    client
        .batch_lookup_persons(request(lookups(20), &clerk))
        .await
        .expect("20 more");
    let limited = client
        .batch_lookup_persons(request(lookups(1), &clerk))
        .await
        .expect_err("the 61st lookup in a minute");
    assert_eq!(limited.code(), Code::ResourceExhausted);
    assert_eq!(reason_of(&limited).as_deref(), Some("RATE_LIMITED"));
    // A batch larger than a minute's allowance is refused as such, whatever is left.
    let other = identity.token("clerk-zhang", Department::Hr, Role::Clerk, "370402");
    let too_many = client
        .batch_lookup_persons(request(lookups(61), &other))
        .await
        .expect_err("61 in one call");
    assert_eq!(reason_of(&too_many).as_deref(), Some("RATE_LIMITED"));
    assert!(too_many.message().contains("smaller batches"), "{}", too_many.message());
}
