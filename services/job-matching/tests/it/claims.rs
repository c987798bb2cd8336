//! The other subsidies job matching claims: a workshop's on-the-job training month (以工代训,
//! Zaozhuang 2021) and an agency's service subsidy after a year of follow-up (Chaoyang).

use bangfu_platform::auth::{Department, Role};
use bangfu_platform::testing::Backend;
use bangfu_proto::common::v1 as common;
use bangfu_proto::jobs::v1 as pb;
use bangfu_proto::subsidy::v1 as sub;

use crate::support::*;

async fn a_workshop_month_of_on_the_job_training_is_claimed_once_per_person(backend: Backend) {
    let suite = Suite::start(backend).await;
    // September 2021: the Zaozhuang 以工代训 policy is in force until the year's end.
    suite.set_day(2021, 9, 1);
    suite
        .fund_of_year(sub::FundSource::EmploymentSubsidy, "3704", 2021)
        .await;
    let clerk = suite.clerk();
    let workshop = suite.carrier(pb::CarrierKind::AssistanceWorkshop, 0).await;
    let posting = suite
        .create_posting(posting_draft(&workshop.name, VILLAGE), &clerk)
        .await
        .expect("posting");
    let target = suite
        .person("张秀英", VILLAGE, "19800512", "024", common::LaborCapacity::Weak)
        .await;
    suite.certify(&target, common::PersonCategory::MonitoredAtRisk).await;
    let other = suite
        .person("王建国", SAME_TOWNSHIP, "19850707", "051", common::LaborCapacity::Full)
        .await;
    for person in [&target, &other] {
        let seeker = suite
            .register(
                pb::Seeker {
                    available_from: Some(date(2021, 9, 1)),
                    ..seeker_draft(person, &[])
                },
                &clerk,
            )
            .await
            .expect("seeker");
        suite
            .place(placement_draft(&posting.name, &seeker.name, date(2021, 9, 1)))
            .await
            .expect("placed");
    }

    suite.set_day(2021, 10, 8);
    let claim = |month: i32| {
        let workshop = workshop.name.clone();
        let clerk = clerk.clone();
        let suite = &suite;
        async move {
            suite
                .jobs()
                .await
                .claim_on_job_training(with_token(
                    pb::ClaimOnJobTrainingRequest {
                        carrier: workshop,
                        month: Some(common::YearMonth { year: 2021, month }),
                        policy: "zz-ygdx-2021".into(),
                        monthly_standard: money(50_000),
                        placements: vec![],
                    },
                    &clerk,
                ))
                .await
        }
    };
    let claimed = claim(9).await.expect("claimed").into_inner().claims;
    // The target person only: the other is no target person.
    assert_eq!(claimed.len(), 1, "{claimed:?}");
    assert_eq!(claimed[0].person, target);
    assert_eq!(claimed[0].payee, workshop.name);
    assert!(claimed[0].reference.ends_with("/2021-09"), "{}", claimed[0].reference);
    let settled = settled_claims(&suite, &clerk, &workshop.name, 1).await;
    let progress = settled[0].progress.clone().expect("progress");
    assert_eq!(progress.state, pb::ClaimProgressState::Granted as i32, "{progress:?}");
    assert_eq!(progress.amount.map(|m| m.fen), Some(50_000));
    // Claiming the month again claims nothing more.
    claim(9).await.expect("again");
    assert_eq!(settled_claims(&suite, &clerk, &workshop.name, 1).await.len(), 1);
    // A month not yet begun is refused.
    let refused = claim(11).await.expect_err("November");
    assert_eq!(fields(&refused), vec!["month"]);
}

async fn an_agency_is_claimed_for_after_a_year_of_follow_up(backend: Backend) {
    let suite = Suite::start(backend).await;
    suite.set_day(2024, 1, 2);
    suite
        .fund_of_year(sub::FundSource::EmploymentSubsidy, "2113", 2024)
        .await;
    let clerk = suite.token("clerk-hr-cy", Department::Hr, Role::Clerk, "2113");
    let carrier = |kind: pb::CarrierKind, code: &'static str| {
        let clerk = clerk.clone();
        let suite = &suite;
        async move {
            suite
                .jobs()
                .await
                .create_carrier(with_token(
                    pb::CreateCarrierRequest {
                        carrier: Some(pb::Carrier {
                            region: region(CHAOYANG_VILLAGE),
                            ..carrier_draft(kind, code)
                        }),
                        request_id: uuid(),
                    },
                    &clerk,
                ))
                .await
                .expect("carrier")
                .into_inner()
                .carrier
                .expect("carrier")
        }
    };
    let agency = carrier(pb::CarrierKind::HrAgency, CREDIT_CODES[1]).await;
    let employer = carrier(pb::CarrierKind::Employer, CREDIT_CODES[0]).await;
    let posting = suite
        .create_posting(posting_draft(&employer.name, "211302"), &clerk)
        .await
        .expect("posting");
    let person = suite
        .person(
            "赵桂芝",
            CHAOYANG_VILLAGE,
            "19820303",
            "044",
            common::LaborCapacity::Full,
        )
        .await;
    suite.certify(&person, common::PersonCategory::PovertyAlleviated).await;
    let seeker = suite
        .register(
            pb::Seeker {
                available_from: Some(date(2024, 1, 1)),
                ..seeker_draft(&person, &[])
            },
            &clerk,
        )
        .await
        .expect("seeker");
    let placement = suite
        .jobs()
        .await
        .record_placement(with_token(
            pb::RecordPlacementRequest {
                placement: Some(placement_draft(&posting.name, &seeker.name, date(2024, 1, 2))),
                request_id: uuid(),
            },
            &clerk,
        ))
        .await
        .expect("placed")
        .into_inner()
        .placement
        .expect("placement");

    // A year of monthly follow-ups, still at work.
    suite.set_day(2025, 1, 6);
    for month in 1..=12 {
        suite
            .jobs()
            .await
            .record_follow_up(with_token(
                pb::RecordFollowUpRequest {
                    parent: placement.name.clone(),
                    follow_up: Some(pb::FollowUp {
                        month: Some(common::YearMonth { year: 2024, month }),
                        still_employed: true,
                        income: money(320_000),
                        ..Default::default()
                    }),
                    request_id: uuid(),
                },
                &clerk,
            ))
            .await
            .expect("followed up");
    }
    let claim = suite
        .jobs()
        .await
        .claim_agency_subsidy(with_token(
            pb::ClaimAgencySubsidyRequest {
                placement: placement.name.clone(),
                agency: agency.name.clone(),
                policy: "cy-agency-2021".into(),
                insured_region: region("211302"),
            },
            &clerk,
        ))
        .await
        .expect("claimed")
        .into_inner()
        .claim
        .expect("claim");
    assert_eq!(claim.payee, agency.name);
    let settled = settled_claims(&suite, &clerk, &placement.name, 1).await;
    let progress = settled[0].progress.clone().expect("progress");
    assert_eq!(progress.state, pb::ClaimProgressState::Granted as i32, "{progress:?}");
    assert_eq!(progress.amount.map(|m| m.fen), Some(20_000));

    // An employer is not an agency.
    let refused = suite
        .jobs()
        .await
        .claim_agency_subsidy(with_token(
            pb::ClaimAgencySubsidyRequest {
                placement: placement.name.clone(),
                agency: employer.name.clone(),
                policy: "cy-agency-2021".into(),
                insured_region: region("211302"),
            },
            &clerk,
        ))
        .await
        .expect_err("an employer");
    assert_eq!(fields(&refused), vec!["agency"]);
    // Another county's clerk sees none of the claims.
    let refused = suite
        .jobs()
        .await
        .list_subsidy_claims(with_token(
            pb::ListSubsidyClaimsRequest {
                owner: placement.name.clone(),
            },
            &suite.clerk(),
        ))
        .await
        .expect_err("outside scope");
    assert_eq!(reason(&refused), "NOT_FOUND");
}

bangfu_platform::on_both_backends!(
    a_workshop_month_of_on_the_job_training_is_claimed_once_per_person,
    an_agency_is_claimed_for_after_a_year_of_follow_up,
);
