//! Training, recruitment events and the quarterly counts (附件1): certified carriers by kind,
//! the target persons they absorb, trainees, relocation-site employment, events — by county,
//! cumulative from January 1.

use bangfu_platform::auth::{Department, Role};
use bangfu_platform::testing::Backend;
use bangfu_proto::common::v1 as common;
use bangfu_proto::jobs::v1 as pb;

use crate::support::*;

/// Codes with valid check characters (GB 32100) for the other carriers.
const MORE_CODES: [&str; 3] = ["91370402MA3C1X2Y4T", "91370402726215693L", "91370402MA94D6E01X"];

async fn certified(suite: &Suite, kind: pb::CarrierKind, code: &str, relocation_site: bool) -> pb::Carrier {
    let carrier = suite
        .jobs()
        .await
        .create_carrier(with_token(
            pb::CreateCarrierRequest {
                carrier: Some(pb::Carrier {
                    at_relocation_site: relocation_site,
                    ..carrier_draft(kind, code)
                }),
                request_id: uuid(),
            },
            &suite.clerk(),
        ))
        .await
        .expect("carrier")
        .into_inner()
        .carrier
        .expect("carrier");
    suite.certify_carrier(&carrier).await
}

async fn quarterly_counts_come_from_carriers_placements_training_and_events(backend: Backend) {
    let suite = Suite::start(backend).await;
    let clerk = suite.clerk();
    let mut jobs = suite.jobs().await;
    let workshop = certified(&suite, pb::CarrierKind::AssistanceWorkshop, CREDIT_CODES[0], true).await;
    let base = certified(&suite, pb::CarrierKind::LaborBase, CREDIT_CODES[1], false).await;
    certified(&suite, pb::CarrierKind::LaborBrand, CREDIT_CODES[2], false).await;
    certified(&suite, pb::CarrierKind::LaborCooperative, MORE_CODES[0], false).await;
    certified(&suite, pb::CarrierKind::LaborAlliance, MORE_CODES[1], false).await;
    // A workshop never certified is not counted.
    suite
        .jobs()
        .await
        .create_carrier(with_token(
            pb::CreateCarrierRequest {
                carrier: Some(carrier_draft(pb::CarrierKind::AssistanceWorkshop, MORE_CODES[2])),
                request_id: uuid(),
            },
            &clerk,
        ))
        .await
        .expect("carrier");

    // A monitored person works at the relocation site's workshop; a person who is no target
    // person works at the labor base.
    let workshop_job = suite
        .create_posting(posting_draft(&workshop.name, VILLAGE), &clerk)
        .await
        .expect("posting");
    let base_job = suite
        .create_posting(posting_draft(&base.name, VILLAGE), &clerk)
        .await
        .expect("posting");
    let monitored = suite
        .person("张秀英", VILLAGE, "19800512", "024", common::LaborCapacity::Weak)
        .await;
    suite.certify(&monitored, common::PersonCategory::MonitoredAtRisk).await;
    let other = suite
        .person("王建国", SAME_TOWNSHIP, "19850707", "051", common::LaborCapacity::Full)
        .await;
    for (person, posting) in [(&monitored, &workshop_job), (&other, &base_job)] {
        let seeker = suite.register(seeker_draft(person, &[]), &clerk).await.expect("seeker");
        suite
            .place(placement_draft(&posting.name, &seeker.name, date(2025, 3, 3)))
            .await
            .expect("placed");
    }

    // A poverty-alleviated person trains in March; identity shows the training on its days.
    let trainee = suite
        .person("李桂兰", OTHER_TOWNSHIP, "19900101", "042", common::LaborCapacity::Full)
        .await;
    suite.certify(&trainee, common::PersonCategory::PovertyAlleviated).await;
    let course = jobs
        .create_training_course(with_token(
            pb::CreateTrainingCourseRequest {
                training_course: Some(pb::TrainingCourse {
                    display_name: "2025年第1期家政服务员培训班".into(),
                    provider: "市中区职业培训学校".into(),
                    occupation: Some(pb::Occupation {
                        code: "4-10-01-06".into(),
                        display_name: "家政服务员".into(),
                    }),
                    region: region("370402"),
                    schedule: Some(common::Period {
                        first_day: Some(date(2025, 3, 10)),
                        last_day: Some(date(2025, 3, 20)),
                    }),
                    days: 10,
                    place: "市中区职业培训中心".into(),
                    ..Default::default()
                }),
                request_id: uuid(),
            },
            &clerk,
        ))
        .await
        .expect("course")
        .into_inner()
        .training_course
        .expect("course");
    let enrolment = jobs
        .enrol_trainee(with_token(
            pb::EnrolTraineeRequest {
                parent: course.name.clone(),
                enrolment: Some(pb::TraineeEnrolment {
                    person: trainee.clone(),
                    ..Default::default()
                }),
                request_id: uuid(),
            },
            &clerk,
        ))
        .await
        .expect("enrolled")
        .into_inner()
        .enrolment
        .expect("enrolment");
    assert!(enrolment.target_person);
    assert!(!enrolment.identity_recorded, "the course starts on the 10th");
    suite.set_day(2025, 3, 12);
    suite.app.record_missing_in_identity().await.expect("job");
    assert_eq!(
        suite.person_in_identity(&trainee).await.employment_status,
        common::EmploymentStatus::InTraining as i32
    );
    suite.set_day(2025, 3, 21);
    let completed = jobs
        .record_training_completion(with_token(
            pb::RecordTrainingCompletionRequest {
                name: enrolment.name.clone(),
                outcome: pb::EnrolmentState::Completed as i32,
                certificate: "S000037040225000123".into(),
            },
            &clerk,
        ))
        .await
        .expect("completed")
        .into_inner()
        .enrolment
        .expect("enrolment");
    assert_eq!(completed.state, pb::EnrolmentState::Completed as i32);
    let refused = jobs
        .record_training_completion(with_token(
            pb::RecordTrainingCompletionRequest {
                name: enrolment.name.clone(),
                outcome: pb::EnrolmentState::Dropped as i32,
                certificate: String::new(),
            },
            &clerk,
        ))
        .await
        .expect_err("twice");
    assert_eq!(reason(&refused), "STATE_CONFLICT");

    // Two events: a 乐业搬迁 one at the relocation site and a job fair.
    for (kind, day, title) in [
        (pb::RecruitmentEventKind::RelocationSite, 5, "2025年乐业搬迁专场招聘会"),
        (pb::RecruitmentEventKind::JobFair, 6, "2025年春风行动招聘会"),
    ] {
        jobs.create_recruitment_event(with_token(
            pb::CreateRecruitmentEventRequest {
                recruitment_event: Some(pb::RecruitmentEvent {
                    display_name: title.into(),
                    kind: kind as i32,
                    region: region(VILLAGE),
                    event_date: Some(date(2025, 3, day)),
                    carriers: vec![workshop.name.clone()],
                    postings: vec![workshop_job.name.clone()],
                    persons_reached: 320,
                    persons_placed: 41,
                    ..Default::default()
                }),
                request_id: uuid(),
            },
            &clerk,
        ))
        .await
        .expect("event");
    }
    let refused = jobs
        .create_recruitment_event(with_token(
            pb::CreateRecruitmentEventRequest {
                recruitment_event: Some(pb::RecruitmentEvent {
                    display_name: "人数有误".into(),
                    kind: pb::RecruitmentEventKind::JobFair as i32,
                    region: region(VILLAGE),
                    event_date: Some(date(2025, 3, 7)),
                    persons_reached: 10,
                    persons_placed: 11,
                    ..Default::default()
                }),
                request_id: uuid(),
            },
            &clerk,
        ))
        .await
        .expect_err("more placed than reached");
    assert_eq!(fields(&refused), vec!["recruitment_event.persons_placed"]);

    // In April the same trainee takes a course in 薛城区 too: each county counts her, the city
    // once.
    suite.set_day(2025, 4, 1);
    let xuecheng_course = jobs
        .create_training_course(with_token(
            pb::CreateTrainingCourseRequest {
                training_course: Some(pb::TrainingCourse {
                    region: region("370403"),
                    schedule: Some(common::Period {
                        first_day: Some(date(2025, 4, 7)),
                        last_day: Some(date(2025, 4, 18)),
                    }),
                    ..course.clone()
                }),
                request_id: uuid(),
            },
            &suite.city_clerk(),
        ))
        .await
        .expect("course")
        .into_inner()
        .training_course
        .expect("course");
    jobs.enrol_trainee(with_token(
        pb::EnrolTraineeRequest {
            parent: xuecheng_course.name.clone(),
            enrolment: Some(pb::TraineeEnrolment {
                person: trainee.clone(),
                ..Default::default()
            }),
            request_id: uuid(),
        },
        &suite.city_clerk(),
    ))
    .await
    .expect("enrolled in 薛城区");

    // The second quarter's end, for the city.
    suite.set_day(2025, 7, 2);
    let stats = jobs
        .get_job_stats(with_token(
            pb::GetJobStatsRequest {
                region_prefix: "3704".into(),
                as_of: Some(date(2025, 6, 30)),
            },
            &suite.city_clerk(),
        ))
        .await
        .expect("stats")
        .into_inner();
    assert_eq!(
        stats.period,
        Some(common::Period {
            first_day: Some(date(2025, 1, 1)),
            last_day: Some(date(2025, 6, 30)),
        })
    );
    let total = stats.total.and_then(|t| t.counts).expect("total");
    assert_eq!(total.assistance_workshops, 1);
    assert_eq!(total.labor_bases, 1);
    assert_eq!(total.labor_brands, 1);
    assert_eq!(total.labor_cooperatives, 1);
    assert_eq!(total.labor_alliances, 1);
    assert_eq!(total.workshop_target_persons, 1);
    assert_eq!(total.labor_base_target_persons, 0, "not a target person");
    assert_eq!(total.relocation_site_target_persons, 1);
    assert_eq!(total.target_persons_in_training, 1);
    assert_eq!(total.target_persons_placed, 1);
    assert_eq!(total.recruitment_events, 2);
    assert_eq!(total.relocation_site_events, 1);
    let counties: Vec<String> = stats
        .rows
        .iter()
        .map(|r| r.region.as_ref().map(|g| g.code.clone()).unwrap_or_default())
        .collect();
    assert_eq!(counties, vec!["370402".to_string(), "370403".to_string()]);
    let trained: Vec<i32> = stats
        .rows
        .iter()
        .map(|r| {
            r.counts
                .as_ref()
                .map(|c| c.target_persons_in_training)
                .unwrap_or_default()
        })
        .collect();
    assert_eq!(
        trained,
        vec![1, 1],
        "each county counts the trainee; the total above once"
    );

    // The first quarter of the next year counts none of this year's events.
    suite.set_day(2026, 4, 2);
    let next = jobs
        .get_job_stats(with_token(
            pb::GetJobStatsRequest {
                region_prefix: "3704".into(),
                as_of: Some(date(2026, 3, 31)),
            },
            &suite.city_clerk(),
        ))
        .await
        .expect("stats")
        .into_inner()
        .total
        .and_then(|t| t.counts)
        .expect("total");
    assert_eq!(next.recruitment_events, 0);
    assert_eq!(next.workshop_target_persons, 1, "still working there");

    // Another county's clerk is refused Shizhong's counts.
    let refused = jobs
        .get_job_stats(with_token(
            pb::GetJobStatsRequest {
                region_prefix: "370402".into(),
                as_of: None,
            },
            &suite.token("clerk-hr-xc", Department::Hr, Role::Clerk, "370403"),
        ))
        .await
        .expect_err("outside scope");
    assert_eq!(reason(&refused), "NOT_FOUND");
}

bangfu_platform::on_both_backends!(quarterly_counts_come_from_carriers_placements_training_and_events);
