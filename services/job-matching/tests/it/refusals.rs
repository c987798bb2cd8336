//! Bad input is refused with its reason and field, and leaves nothing half-written; two clerks
//! taking a posting's last place at once cannot both have it.

use bangfu_platform::auth::{Department, Role};
use bangfu_platform::testing::Backend;
use bangfu_proto::common::v1 as common;
use bangfu_proto::jobs::v1 as pb;

use crate::support::*;

async fn bad_carriers_postings_seekers_and_placements_are_refused_with_their_field(backend: Backend) {
    let suite = Suite::start(backend).await;
    let clerk = suite.clerk();
    let mut jobs = suite.jobs().await;

    // A credit code whose check character is wrong, and one with a letter the code never uses.
    for (code, expected) in [
        ("91350100M000100Y44", "CREDIT_CODE_INVALID"),
        ("91350100M0001O0Y43", "CREDIT_CODE_INVALID"),
    ] {
        let refused = jobs
            .create_carrier(with_token(
                pb::CreateCarrierRequest {
                    carrier: Some(carrier_draft(pb::CarrierKind::Employer, code)),
                    request_id: uuid(),
                },
                &clerk,
            ))
            .await
            .expect_err("bad code");
        assert_eq!(reason(&refused), expected, "{code}");
        assert_eq!(fields(&refused), vec!["carrier.credit_code"]);
    }
    let carrier = suite.carrier(pb::CarrierKind::Employer, 0).await;
    // The same code twice.
    let refused = jobs
        .create_carrier(with_token(
            pb::CreateCarrierRequest {
                carrier: Some(carrier_draft(
                    pb::CarrierKind::LaborBase,
                    &CREDIT_CODES[0].to_lowercase(),
                )),
                request_id: uuid(),
            },
            &clerk,
        ))
        .await
        .expect_err("taken");
    assert_eq!(reason(&refused), "ALREADY_EXISTS");

    // A wage range upside down; a posting with no places; a posting ending yesterday.
    let cases = [
        (
            pb::Posting {
                wage_min: money(400_000),
                ..posting_draft(&carrier.name, VILLAGE)
            },
            "posting.wage_max",
        ),
        (
            pb::Posting {
                headcount: 0,
                ..posting_draft(&carrier.name, VILLAGE)
            },
            "posting.headcount",
        ),
        (
            pb::Posting {
                valid_until: Some(date(2025, 3, 1)),
                ..posting_draft(&carrier.name, VILLAGE)
            },
            "posting.valid_until",
        ),
        (
            pb::Posting {
                skills: vec!["缝纫%".into()],
                ..posting_draft(&carrier.name, VILLAGE)
            },
            "posting.skills[0]",
        ),
        (
            pb::Posting {
                occupation: Some(pb::Occupation {
                    code: "605".into(),
                    display_name: "缝纫工".into(),
                }),
                ..posting_draft(&carrier.name, VILLAGE)
            },
            "posting.occupation.code",
        ),
    ];
    for (posting, field) in cases {
        let refused = suite.create_posting(posting, &clerk).await.expect_err("bad posting");
        assert_eq!(reason(&refused), "FIELD_INVALID", "{field}");
        assert_eq!(fields(&refused), vec![field]);
    }
    let listed = jobs
        .list_postings(with_token(pb::ListPostingsRequest::default(), &clerk))
        .await
        .expect("listed")
        .into_inner()
        .postings;
    assert!(listed.is_empty(), "nothing half-written: {listed:?}");

    // A seeker for a person identity does not know, and for one outside the clerk's scope.
    let refused = suite
        .register(seeker_draft("persons/0000000000deadbeef00", &[]), &clerk)
        .await
        .expect_err("unknown person");
    assert_eq!(reason(&refused), "NOT_FOUND");
    let elsewhere = suite
        .person("李强", XUECHENG_VILLAGE, "19900101", "031", common::LaborCapacity::Full)
        .await;
    let refused = suite
        .register(seeker_draft(&elsewhere, &[]), &clerk)
        .await
        .expect_err("outside scope");
    assert_eq!(reason(&refused), "NOT_FOUND");
    let person = suite
        .person("张秀英", VILLAGE, "19800512", "024", common::LaborCapacity::Weak)
        .await;
    let refused = suite
        .register(
            pb::Seeker {
                intentions: vec![],
                ..seeker_draft(&person, &[])
            },
            &clerk,
        )
        .await
        .expect_err("no intention");
    assert_eq!(fields(&refused), vec!["seeker.intentions"]);
    let seeker = suite
        .register(seeker_draft(&person, &["缝纫"]), &clerk)
        .await
        .expect("seeker");
    let refused = suite
        .register(seeker_draft(&person, &[]), &clerk)
        .await
        .expect_err("twice");
    assert_eq!(reason(&refused), "ALREADY_EXISTS");

    // A placement starting before the posting opened.
    let posting = suite
        .create_posting(posting_draft(&carrier.name, VILLAGE), &clerk)
        .await
        .expect("posting");
    let refused = suite
        .place(placement_draft(&posting.name, &seeker.name, date(2025, 3, 1)))
        .await
        .expect_err("before it opened");
    assert_eq!(fields(&refused), vec!["placement.start_date"]);
    assert_eq!(
        suite.get_seeker(&seeker.name).await.state,
        pb::SeekerState::Active as i32
    );

    // An application to a closed posting.
    let closed = jobs
        .close_posting(with_token(
            pb::ClosePostingRequest {
                name: posting.name.clone(),
                reason: "岗位撤销".into(),
                etag: posting.etag.clone(),
            },
            &clerk,
        ))
        .await
        .expect("closed")
        .into_inner()
        .posting
        .expect("posting");
    assert_eq!(closed.state, pb::PostingState::Closed as i32);
    let refused = jobs
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
        .expect_err("closed");
    assert_eq!(reason(&refused), "POSTING_CLOSED");
    let refused = suite
        .place(placement_draft(&posting.name, &seeker.name, date(2025, 3, 3)))
        .await
        .expect_err("closed");
    assert_eq!(reason(&refused), "POSTING_CLOSED");

    // Another county's clerk sees none of it.
    let xuecheng = suite.token("clerk-hr-xc", Department::Hr, Role::Clerk, "370403");
    let refused = jobs
        .get_seeker(with_token(
            pb::GetSeekerRequest {
                name: seeker.name.clone(),
            },
            &xuecheng,
        ))
        .await
        .expect_err("outside scope");
    assert_eq!(reason(&refused), "NOT_FOUND");
    // A clerk may not certify a carrier.
    let refused = jobs
        .certify_carrier(with_token(
            pb::CertifyCarrierRequest {
                name: carrier.name.clone(),
                certification: Some(pb::CarrierCertification {
                    certifying_body: "市中区人社局".into(),
                    document: "市中人社〔2025〕1号".into(),
                    certify_date: Some(date(2025, 3, 1)),
                    ..Default::default()
                }),
                etag: carrier.etag.clone(),
            },
            &clerk,
        ))
        .await
        .expect_err("clerk");
    assert_eq!(reason(&refused), "PERMISSION_MISSING");
}

async fn two_clerks_placing_the_last_place_cannot_both_have_it(backend: Backend) {
    let suite = Suite::start(backend).await;
    let clerk = suite.clerk();
    let carrier = suite.carrier(pb::CarrierKind::Employer, 0).await;
    let posting = suite
        .create_posting(
            pb::Posting {
                headcount: 1,
                ..posting_draft(&carrier.name, VILLAGE)
            },
            &clerk,
        )
        .await
        .expect("posting");
    let first = suite
        .person("张秀英", VILLAGE, "19800512", "024", common::LaborCapacity::Full)
        .await;
    let second = suite
        .person("王建国", SAME_TOWNSHIP, "19850707", "051", common::LaborCapacity::Full)
        .await;
    let first = suite.register(seeker_draft(&first, &[]), &clerk).await.expect("seeker");
    let second = suite
        .register(seeker_draft(&second, &[]), &clerk)
        .await
        .expect("seeker");
    let (a, b) = tokio::join!(
        suite.place(placement_draft(&posting.name, &first.name, date(2025, 3, 3))),
        suite.place(placement_draft(&posting.name, &second.name, date(2025, 3, 3))),
    );
    let (placed, refused) = match (a, b) {
        (Ok(placed), Err(refused)) => (placed, refused),
        (Err(refused), Ok(placed)) => (placed, refused),
        other => panic!("exactly one placement: {other:?}"),
    };
    assert_eq!(reason(&refused), "POSTING_FILLED");
    let loser = if placed.seeker == first.name { &second } else { &first };
    assert_eq!(
        suite.get_seeker(&loser.name).await.state,
        pb::SeekerState::Active as i32
    );
    let placements = suite
        .jobs()
        .await
        .list_placements(with_token(
            pb::ListPlacementsRequest {
                posting: posting.name.clone(),
                ..Default::default()
            },
            &clerk,
        ))
        .await
        .expect("listed")
        .into_inner()
        .placements;
    assert_eq!(placements.len(), 1);
}

bangfu_platform::on_both_backends!(
    bad_carriers_postings_seekers_and_placements_are_refused_with_their_field,
    two_clerks_placing_the_last_place_cannot_both_have_it,
);
