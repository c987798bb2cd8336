//! A seeker's way through the service: registered, applying, accepted, placed (identity records
//! the employment and the carrier absorbs a target person), followed up (identity records the
//! income), and the placement ended (identity records the loss of work and raises its alert).

use bangfu_platform::testing::Backend;
use bangfu_proto::common::v1 as common;
use bangfu_proto::identity::v1 as id;
use bangfu_proto::jobs::v1 as pb;

use crate::support::*;

async fn a_placed_target_person_is_employed_in_identity_until_the_placement_ends(backend: Backend) {
    let suite = Suite::start(backend).await;
    let clerk = suite.clerk();
    let workshop = suite.carrier(pb::CarrierKind::AssistanceWorkshop, 0).await;
    assert_eq!(workshop.credit_code, CREDIT_CODES[0]);
    assert!(!workshop.certified);
    // The HR reviewer certifies the workshop (认定).
    let workshop = suite
        .jobs()
        .await
        .certify_carrier(with_token(
            pb::CertifyCarrierRequest {
                name: workshop.name.clone(),
                certification: Some(pb::CarrierCertification {
                    certifying_body: "枣庄市人力资源和社会保障局".into(),
                    document: "枣人社字〔2021〕52号".into(),
                    certify_date: Some(date(2025, 1, 10)),
                    valid_until: Some(date(2026, 1, 9)),
                    ..Default::default()
                }),
                etag: workshop.etag.clone(),
            },
            &suite.reviewer(),
        ))
        .await
        .expect("certified")
        .into_inner()
        .carrier
        .expect("carrier");
    assert!(workshop.certified);
    assert_eq!(
        workshop.certification.as_ref().map(|c| c.recorded_by.as_str()),
        Some("reviewer-hr")
    );

    let posting = suite
        .create_posting(posting_draft(&workshop.name, OTHER_TOWNSHIP), &clerk)
        .await
        .expect("posting");
    assert_eq!(posting.state, pb::PostingState::Open as i32);
    assert_eq!(posting.open_date, Some(date(2025, 3, 2)));

    let person = suite
        .person("张秀英", VILLAGE, "19800512", "024", common::LaborCapacity::Weak)
        .await;
    suite.certify(&person, common::PersonCategory::MonitoredAtRisk).await;
    let seeker = suite
        .register(seeker_draft(&person, &["缝纫"]), &clerk)
        .await
        .expect("seeker");
    assert_eq!(seeker.display_name, "张**");
    assert_eq!(seeker.registered_region, VILLAGE);
    assert_eq!(seeker.priority, pb::TargetPriority::MonitoredAtRisk as i32);
    assert_eq!(seeker.labor_capacity, common::LaborCapacity::Weak as i32);

    let mut jobs = suite.jobs().await;
    let application = jobs
        .submit_application(with_token(
            pb::SubmitApplicationRequest {
                application: Some(pb::Application {
                    posting: posting.name.clone(),
                    seeker: seeker.name.clone(),
                    ..Default::default()
                }),
                request_id: uuid(),
            },
            &clerk,
        ))
        .await
        .expect("applied")
        .into_inner()
        .application
        .expect("application");
    assert_eq!(application.state, pb::ApplicationState::Submitted as i32);
    let application = jobs
        .decide_application(with_token(
            pb::DecideApplicationRequest {
                name: application.name.clone(),
                decision: pb::ApplicationState::Accepted as i32,
                note: String::new(),
                etag: application.etag.clone(),
            },
            &clerk,
        ))
        .await
        .expect("decided")
        .into_inner()
        .application
        .expect("application");
    assert_eq!(application.state, pb::ApplicationState::Accepted as i32);
    assert_eq!(application.decided_by, "clerk-hr");

    let mut draft = placement_draft(&posting.name, &seeker.name, date(2025, 3, 3));
    draft.application = application.name.clone();
    let placement = suite.place(draft).await.expect("placed");
    assert_eq!(placement.state, pb::PlacementState::Active as i32);
    assert_eq!(
        placement.employment_status,
        common::EmploymentStatus::EmployedInCounty as i32
    );
    assert_eq!(placement.carrier, workshop.name);
    // She starts tomorrow: identity hears of it on the day, from the service's job.
    assert!(!placement.identity_recorded);
    assert_eq!(suite.app.record_missing_in_identity().await.expect("job"), 0);
    suite.set_day(2025, 3, 4);
    assert_eq!(suite.app.record_missing_in_identity().await.expect("job"), 1);
    let in_identity = suite.person_in_identity(&person).await;
    assert_eq!(
        in_identity.employment_status,
        common::EmploymentStatus::EmployedInCounty as i32
    );

    let workshop_now = suite.get_carrier(&workshop.name).await;
    assert_eq!(workshop_now.active_placements, 1);
    assert_eq!(workshop_now.absorbed_target_persons, 1);
    assert_eq!(
        suite.get_seeker(&seeker.name).await.state,
        pb::SeekerState::Placed as i32
    );
    let posting_now = jobs
        .get_posting(with_token(
            pb::GetPostingRequest {
                name: posting.name.clone(),
            },
            &clerk,
        ))
        .await
        .expect("posting")
        .into_inner()
        .posting
        .expect("posting");
    assert_eq!(posting_now.placed, 1);

    // The April follow-up: still there, 3,100 yuan earned.
    suite.set_day(2025, 4, 28);
    let follow_up = jobs
        .record_follow_up(with_token(
            pb::RecordFollowUpRequest {
                parent: placement.name.clone(),
                follow_up: Some(pb::FollowUp {
                    month: Some(common::YearMonth { year: 2025, month: 4 }),
                    still_employed: true,
                    income: money(310_000),
                    note: "电话回访，在岗稳定".into(),
                    ..Default::default()
                }),
                request_id: uuid(),
            },
            &clerk,
        ))
        .await
        .expect("followed up")
        .into_inner()
        .follow_up
        .expect("follow-up");
    assert!(follow_up.identity_recorded);
    assert!(follow_up.name.starts_with(&format!("{}/followUps/", placement.name)));

    // She leaves at the end of May: identity hears it and raises 就业转失业.
    suite.set_day(2025, 6, 2);
    let placement = jobs
        .get_placement(with_token(
            pb::GetPlacementRequest {
                name: placement.name.clone(),
            },
            &clerk,
        ))
        .await
        .expect("placement")
        .into_inner()
        .placement
        .expect("placement");
    assert_eq!(
        placement
            .last_follow_up
            .as_ref()
            .and_then(|f| f.income.as_ref())
            .map(|m| m.fen),
        Some(310_000)
    );
    let ended = jobs
        .end_placement(with_token(
            pb::EndPlacementRequest {
                name: placement.name.clone(),
                end_date: Some(date(2025, 5, 31)),
                reason: pb::PlacementEndReason::Resigned as i32,
                note: String::new(),
                etag: placement.etag.clone(),
            },
            &clerk,
        ))
        .await
        .expect("ended")
        .into_inner()
        .placement
        .expect("placement");
    assert_eq!(ended.state, pb::PlacementState::Ended as i32);
    assert!(ended.identity_recorded);
    let in_identity = suite.person_in_identity(&person).await;
    assert_eq!(
        in_identity.employment_status,
        common::EmploymentStatus::Unemployed as i32
    );
    let alerts = suite
        .identity()
        .await
        .list_alerts(with_token(
            id::ListAlertsRequest {
                kind: id::AlertKind::EmploymentLost as i32,
                ..Default::default()
            },
            &suite.city_clerk(),
        ))
        .await
        .expect("alerts")
        .into_inner()
        .alerts;
    assert_eq!(alerts.len(), 1, "{alerts:?}");
    assert_eq!(alerts[0].person, person);
    assert_eq!(
        suite.get_seeker(&seeker.name).await.state,
        pb::SeekerState::Active as i32
    );
    assert_eq!(suite.get_carrier(&workshop.name).await.absorbed_target_persons, 0);

    // Nothing more is recorded on an ended placement.
    let refused = jobs
        .record_follow_up(with_token(
            pb::RecordFollowUpRequest {
                parent: placement.name.clone(),
                follow_up: Some(pb::FollowUp {
                    month: Some(common::YearMonth { year: 2025, month: 6 }),
                    still_employed: false,
                    income: money(0),
                    ..Default::default()
                }),
                request_id: uuid(),
            },
            &clerk,
        ))
        .await
        .expect_err("ended");
    assert_eq!(reason(&refused), "PLACEMENT_ENDED");

    // Every write is in the audit log under the clerk or reviewer who made it (sealed first:
    // the log lists sealed rows, and on PostgreSQL another test's open transaction can hold
    // sealing back for a moment).
    bangfu_platform::testing::seal_audit(suite.app.db(), 9).await;
    let events = jobs
        .list_audit_events(with_token(
            pb::ListAuditEventsRequest {
                page_size: 100,
                ..Default::default()
            },
            &suite.token(
                "auditor",
                bangfu_platform::auth::Department::Hr,
                bangfu_platform::auth::Role::Auditor,
                "3704",
            ),
        ))
        .await
        .expect("audit")
        .into_inner()
        .audit_events;
    let methods: Vec<&str> = events
        .iter()
        .map(|e| e.method.rsplit('/').next().unwrap_or_default())
        .collect();
    for method in [
        "CreateCarrier",
        "CertifyCarrier",
        "CreatePosting",
        "RegisterSeeker",
        "SubmitApplication",
        "DecideApplication",
        "RecordPlacement",
        "RecordFollowUp",
        "EndPlacement",
    ] {
        assert!(methods.contains(&method), "{method} audited: {methods:?}");
    }
}

async fn placements_identity_missed_are_recorded_by_the_job(backend: Backend) {
    let suite = Suite::start(backend).await;
    let clerk = suite.clerk();
    let employer = suite.carrier(pb::CarrierKind::Employer, 1).await;
    let posting = suite
        .create_posting(posting_draft(&employer.name, "370402"), &clerk)
        .await
        .expect("posting");
    let person = suite
        .person("李强", SAME_TOWNSHIP, "19900101", "031", common::LaborCapacity::Full)
        .await;
    let seeker = suite
        .register(seeker_draft(&person, &[]), &clerk)
        .await
        .expect("seeker");
    let placement = suite
        .place(placement_draft(&posting.name, &seeker.name, date(2025, 3, 2)))
        .await
        .expect("placed");
    assert!(placement.identity_recorded);
    assert_eq!(
        suite.person_in_identity(&person).await.employment_status,
        common::EmploymentStatus::EmployedInCounty as i32
    );

    // Identity is away when the placement ends: the end stands, unrecorded there.
    suite.set_day(2025, 4, 1);
    suite.identity_link.cut();
    let ended = suite
        .jobs()
        .await
        .end_placement(with_token(
            pb::EndPlacementRequest {
                name: placement.name.clone(),
                end_date: Some(date(2025, 3, 31)),
                reason: pb::PlacementEndReason::ContractEnded as i32,
                note: String::new(),
                etag: placement.etag.clone(),
            },
            &clerk,
        ))
        .await
        .expect("ended")
        .into_inner()
        .placement
        .expect("placement");
    assert!(!ended.identity_recorded);
    assert_eq!(
        suite.person_in_identity(&person).await.employment_status,
        common::EmploymentStatus::EmployedInCounty as i32
    );
    assert!(suite.app.record_missing_in_identity().await.expect("retried") == 0);

    // Back: the job records the end once, under the same request id.
    suite.identity_link.restore();
    assert_eq!(suite.app.record_missing_in_identity().await.expect("retried"), 1);
    assert_eq!(suite.app.record_missing_in_identity().await.expect("retried"), 0);
    assert_eq!(
        suite.person_in_identity(&person).await.employment_status,
        common::EmploymentStatus::Unemployed as i32
    );
    let placement = suite
        .jobs()
        .await
        .get_placement(with_token(
            pb::GetPlacementRequest {
                name: placement.name.clone(),
            },
            &clerk,
        ))
        .await
        .expect("placement")
        .into_inner()
        .placement
        .expect("placement");
    assert!(placement.identity_recorded);
}

async fn a_placement_called_off_before_its_first_day_gives_the_place_back(backend: Backend) {
    let suite = Suite::start(backend).await;
    let clerk = suite.clerk();
    let employer = suite.carrier(pb::CarrierKind::Employer, 1).await;
    let posting = suite
        .create_posting(
            pb::Posting {
                headcount: 1,
                ..posting_draft(&employer.name, "370402")
            },
            &clerk,
        )
        .await
        .expect("posting");
    let person = suite
        .person("李强", SAME_TOWNSHIP, "19900101", "031", common::LaborCapacity::Full)
        .await;
    let seeker = suite
        .register(seeker_draft(&person, &[]), &clerk)
        .await
        .expect("seeker");
    let placement = suite
        .place(placement_draft(&posting.name, &seeker.name, date(2025, 3, 10)))
        .await
        .expect("placed");
    // He does not turn up: the placement is called off before its first day.
    let ended = suite
        .jobs()
        .await
        .end_placement(with_token(
            pb::EndPlacementRequest {
                name: placement.name.clone(),
                end_date: Some(date(2025, 3, 2)),
                reason: pb::PlacementEndReason::Other as i32,
                note: "未到岗".into(),
                etag: placement.etag.clone(),
            },
            &clerk,
        ))
        .await
        .expect("called off")
        .into_inner()
        .placement
        .expect("placement");
    assert_eq!(ended.state, pb::PlacementState::Ended as i32);
    assert!(ended.identity_recorded, "nothing for identity to hear");
    assert_eq!(
        suite.get_seeker(&seeker.name).await.state,
        pb::SeekerState::Active as i32
    );
    // The place is free again, and on the day he would have started identity hears nothing.
    let another = suite
        .person("王建国", VILLAGE, "19850707", "051", common::LaborCapacity::Full)
        .await;
    let another = suite
        .register(seeker_draft(&another, &[]), &clerk)
        .await
        .expect("seeker");
    suite
        .place(placement_draft(&posting.name, &another.name, date(2025, 3, 2)))
        .await
        .expect("the freed place");
    suite.set_day(2025, 3, 10);
    suite.app.record_missing_in_identity().await.expect("job");
    assert_ne!(
        suite.person_in_identity(&person).await.employment_status,
        common::EmploymentStatus::EmployedInCounty as i32
    );
}

bangfu_platform::on_both_backends!(
    a_placement_called_off_before_its_first_day_gives_the_place_back,
    a_placed_target_person_is_employed_in_identity_until_the_placement_ends,
    placements_identity_missed_are_recorded_by_the_job,
);
