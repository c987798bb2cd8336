//! Organized labor export: a batch of placed persons departs, and each traveller's subsidies go
//! to subsidy payment as claims of facts — the Zaozhuang agency's service subsidy to the agency,
//! Chongqing's transport subsidy to the person — whose outcomes come back on the claim feed.

use std::time::Duration;

use bangfu_platform::auth::{Department, Role};
use bangfu_platform::peers::CallContext;
use bangfu_platform::testing::Backend;
use bangfu_proto::common::v1 as common;
use bangfu_proto::jobs::v1 as pb;
use bangfu_proto::subsidy::v1 as sub;

use crate::support::*;

/// Tengzhou (滕州市), Zaozhuang: outside Shizhong, the placed persons' home district.
const TENGZHOU: &str = "370481";

/// A shared sewing job in Tengzhou, open to every county.
async fn tengzhou_posting(suite: &Suite) -> pb::Posting {
    let city = suite.city_clerk();
    let employer = suite
        .jobs()
        .await
        .create_carrier(with_token(
            pb::CreateCarrierRequest {
                carrier: Some(pb::Carrier {
                    region: region(TENGZHOU),
                    ..carrier_draft(pb::CarrierKind::Employer, CREDIT_CODES[0])
                }),
                request_id: uuid(),
            },
            &city,
        ))
        .await
        .expect("employer")
        .into_inner()
        .carrier
        .expect("carrier");
    suite
        .create_posting(
            pb::Posting {
                shared_across_regions: true,
                headcount: 10,
                ..posting_draft(&employer.name, TENGZHOU)
            },
            &city,
        )
        .await
        .expect("posting")
}

/// A poverty-alleviated person of `village`, registered as a seeker and placed on `posting`
/// from `start`, by `clerk`.
async fn placed(
    suite: &Suite,
    clerk: &str,
    village: &str,
    sequence: &str,
    posting: &str,
    start: common::Date,
) -> pb::Placement {
    let person = suite
        .person("刘长青", village, "19880808", sequence, common::LaborCapacity::Full)
        .await;
    suite.certify(&person, common::PersonCategory::PovertyAlleviated).await;
    let seeker = suite
        .register(
            pb::Seeker {
                intentions: vec![
                    pb::WorkIntention::OutOfCounty as i32,
                    pb::WorkIntention::OutOfProvince as i32,
                ],
                ..seeker_draft(&person, &["缝纫"])
            },
            clerk,
        )
        .await
        .expect("seeker");
    suite
        .jobs()
        .await
        .record_placement(with_token(
            pb::RecordPlacementRequest {
                placement: Some(placement_draft(posting, &seeker.name, start)),
                request_id: uuid(),
            },
            clerk,
        ))
        .await
        .expect("placed")
        .into_inner()
        .placement
        .expect("placement")
}

async fn batch(suite: &Suite, clerk: &str, draft: pb::ExportBatch) -> Result<pb::ExportBatch, tonic::Status> {
    suite
        .jobs()
        .await
        .create_export_batch(with_token(
            pb::CreateExportBatchRequest {
                export_batch: Some(draft),
                request_id: uuid(),
            },
            clerk,
        ))
        .await
        .map(|r| r.into_inner().export_batch.expect("batch"))
}

async fn add(
    suite: &Suite,
    clerk: &str,
    batch: &pb::ExportBatch,
    placement: &str,
    fare: Option<i64>,
) -> Result<pb::ExportBatch, tonic::Status> {
    suite
        .jobs()
        .await
        .add_travellers(with_token(
            pb::AddTravellersRequest {
                name: batch.name.clone(),
                travellers: vec![pb::Traveller {
                    placement: placement.into(),
                    fare: fare.map(|fen| common::Money { fen }),
                    ..Default::default()
                }],
                etag: batch.etag.clone(),
            },
            clerk,
        ))
        .await
        .map(|r| r.into_inner().export_batch.expect("batch"))
}

async fn depart(
    suite: &Suite,
    clerk: &str,
    batch: &pb::ExportBatch,
    day: common::Date,
) -> Result<pb::ExportBatch, tonic::Status> {
    suite
        .jobs()
        .await
        .depart_export_batch(with_token(
            pb::DepartExportBatchRequest {
                name: batch.name.clone(),
                departed_date: Some(day),
                etag: batch.etag.clone(),
            },
            clerk,
        ))
        .await
        .map(|r| r.into_inner().export_batch.expect("batch"))
}

/// The batch once its first traveller's `which` claim is no longer pending or submitted.
async fn settled(
    suite: &Suite,
    clerk: &str,
    name: &str,
    which: fn(&pb::Traveller) -> Option<&pb::ClaimProgress>,
) -> pb::ExportBatch {
    for _ in 0..100 {
        let batch = suite
            .jobs()
            .await
            .get_export_batch(with_token(pb::GetExportBatchRequest { name: name.into() }, clerk))
            .await
            .expect("batch")
            .into_inner()
            .export_batch
            .expect("batch");
        let state = batch
            .travellers
            .first()
            .and_then(which)
            .map(|c| c.state)
            .unwrap_or_default();
        if state != pb::ClaimProgressState::Pending as i32 && state != pb::ClaimProgressState::Submitted as i32 {
            return batch;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("the claim outcome did not come back on the feed");
}

async fn a_departed_batch_claims_the_agency_and_transport_subsidies_once(backend: Backend) {
    let suite = Suite::start(backend).await;
    suite.fund(sub::FundSource::EmploymentSubsidy, "3704").await;
    suite.fund(sub::FundSource::RuralRevitalizationTransition, "50").await;
    let posting = tengzhou_posting(&suite).await;

    // Zaozhuang: Shizhong's agency sends a person to Tengzhou under the agency subsidy.
    let clerk = suite.clerk();
    let agency = suite.carrier(pb::CarrierKind::HrAgency, 1).await;
    let placement = placed(&suite, &clerk, VILLAGE, "081", &posting.name, date(2025, 3, 3)).await;
    let planned = batch(
        &suite,
        &clerk,
        pb::ExportBatch {
            display_name: "2025年春风行动 市中区—滕州 第1批".into(),
            agency: agency.name.clone(),
            mode: pb::TravelMode::Bus as i32,
            origin: region("370402"),
            destination: region(TENGZHOU),
            departure_date: Some(date(2025, 3, 3)),
            agency_policy: "zz-agency-2021".into(),
            ..Default::default()
        },
    )
    .await
    .expect("batch");
    assert_eq!(planned.state, pb::ExportBatchState::Planned as i32);
    let refused = depart(&suite, &clerk, &planned, date(2025, 3, 2))
        .await
        .expect_err("empty");
    assert_eq!(reason(&refused), "EXPORT_BATCH_EMPTY");
    let planned = add(&suite, &clerk, &planned, &placement.name, None)
        .await
        .expect("added");
    assert_eq!(planned.travellers.len(), 1);
    let traveller = &planned.travellers[0];
    assert_eq!(traveller.display_name, "刘**");
    assert_eq!(
        traveller.agency_claim.as_ref().map(|c| c.state),
        Some(pb::ClaimProgressState::Pending as i32)
    );
    assert_eq!(
        traveller.transport_claim.as_ref().map(|c| c.state),
        Some(pb::ClaimProgressState::NotClaimed as i32)
    );

    suite.set_day(2025, 3, 3);
    let departed = depart(&suite, &clerk, &planned, date(2025, 3, 3))
        .await
        .expect("departed");
    assert_eq!(departed.state, pb::ExportBatchState::Departed as i32);
    assert_eq!(departed.departed_date, Some(date(2025, 3, 3)));
    let settled_batch = settled(&suite, &clerk, &departed.name, |t| t.agency_claim.as_ref()).await;
    let claim = settled_batch.travellers[0].agency_claim.clone().expect("claim");
    assert_eq!(claim.state, pb::ClaimProgressState::Granted as i32, "{claim:?}");
    assert_eq!(claim.amount.map(|m| m.fen), Some(60_000));
    // The claim pays the agency, not the person.
    let in_subsidy = suite
        .subsidy()
        .await
        .get_claim(with_token(
            sub::GetClaimRequest {
                name: claim.claim.clone(),
            },
            &suite.token("reviewer-finance", Department::Finance, Role::Reviewer, "*"),
        ))
        .await
        .expect("claim")
        .into_inner()
        .claim
        .expect("claim");
    match in_subsidy.payee.and_then(|p| p.payee) {
        Some(sub::payee::Payee::Organization(organization)) => assert_eq!(organization.credit_code, CREDIT_CODES[1]),
        other => panic!("paid to the agency: {other:?}"),
    }
    // Sending again claims nothing more: subsidy payment holds one claim for the person.
    assert_eq!(
        suite
            .app
            .send_pending_claims(&CallContext::own(), None)
            .await
            .expect("job"),
        0
    );
    let claims = suite
        .subsidy()
        .await
        .list_claims(with_token(
            sub::ListClaimsRequest {
                person: placement.person.clone(),
                source_system: "jobs".into(),
                ..Default::default()
            },
            &suite.token("reviewer-finance", Department::Finance, Role::Reviewer, "*"),
        ))
        .await
        .expect("claims")
        .into_inner()
        .claims;
    assert_eq!(claims.len(), 1, "{claims:?}");
    // A departed batch takes nobody else.
    let another = placed(&suite, &clerk, SAME_TOWNSHIP, "082", &posting.name, date(2025, 3, 3)).await;
    let refused = add(&suite, &clerk, &settled_batch, &another.name, None)
        .await
        .expect_err("departed");
    assert_eq!(reason(&refused), "STATE_CONFLICT");

    // Chongqing: its labor station sends a person to Zaozhuang; the transport subsidy is
    // judged on the first day of work, when identity shows work out of the province.
    let chongqing = suite.token("clerk-hr-cq", Department::Hr, Role::Clerk, "50");
    let station = suite
        .jobs()
        .await
        .create_carrier(with_token(
            pb::CreateCarrierRequest {
                carrier: Some(pb::Carrier {
                    region: region(YUZHONG_VILLAGE),
                    ..carrier_draft(pb::CarrierKind::LaborStation, CREDIT_CODES[2])
                }),
                request_id: uuid(),
            },
            &chongqing,
        ))
        .await
        .expect("station")
        .into_inner()
        .carrier
        .expect("carrier");
    let traveller = placed(
        &suite,
        &chongqing,
        YUZHONG_VILLAGE,
        "091",
        &posting.name,
        date(2025, 3, 5),
    )
    .await;
    assert_eq!(
        traveller.employment_status,
        common::EmploymentStatus::EmployedOutOfProvince as i32
    );
    let planned = batch(
        &suite,
        &chongqing,
        pb::ExportBatch {
            display_name: "渝鲁劳务协作 渝中—滕州 专列".into(),
            agency: station.name.clone(),
            mode: pb::TravelMode::Train as i32,
            origin: region("500101"),
            destination: region(TENGZHOU),
            departure_date: Some(date(2025, 3, 3)),
            transport_policy: "cq-transport-cross-province".into(),
            ..Default::default()
        },
    )
    .await
    .expect("batch");
    let refused = add(&suite, &chongqing, &planned, &traveller.name, None)
        .await
        .expect_err("no fare");
    assert_eq!(fields(&refused), vec!["travellers[0].fare"]);
    let planned = add(&suite, &chongqing, &planned, &traveller.name, Some(45_600))
        .await
        .expect("added");
    let departed = depart(&suite, &chongqing, &planned, date(2025, 3, 3))
        .await
        .expect("departed");
    // Work starts on the 5th: the claim waits for that day.
    assert_eq!(
        departed.travellers[0].transport_claim.as_ref().map(|c| c.state),
        Some(pb::ClaimProgressState::Pending as i32)
    );
    suite.set_day(2025, 3, 5);
    suite.app.record_missing_in_identity().await.expect("job");
    assert_eq!(
        suite.person_in_identity(&traveller.person).await.employment_status,
        common::EmploymentStatus::EmployedOutOfProvince as i32
    );
    assert_eq!(
        suite
            .app
            .send_pending_claims(&CallContext::own(), None)
            .await
            .expect("job"),
        1
    );
    let settled_batch = settled(&suite, &chongqing, &departed.name, |t| t.transport_claim.as_ref()).await;
    let claim = settled_batch.travellers[0].transport_claim.clone().expect("claim");
    assert_eq!(claim.state, pb::ClaimProgressState::Granted as i32, "{claim:?}");
    assert_eq!(claim.amount.map(|m| m.fen), Some(45_600));

    // A claim whose day falls after the policy's last version lapsed waits, saying why, rather
    // than being lost: it goes once a version is published.
    suite.set_day(2025, 12, 30);
    let late = placed(
        &suite,
        &chongqing,
        YUZHONG_VILLAGE,
        "093",
        &posting.name,
        date(2026, 1, 5),
    )
    .await;
    let planned = batch(
        &suite,
        &chongqing,
        pb::ExportBatch {
            display_name: "渝鲁劳务协作 渝中—滕州 年末专列".into(),
            agency: station.name.clone(),
            mode: pb::TravelMode::Train as i32,
            origin: region("500101"),
            destination: region(TENGZHOU),
            departure_date: Some(date(2025, 12, 30)),
            transport_policy: "cq-transport-cross-province".into(),
            ..Default::default()
        },
    )
    .await
    .expect("batch");
    let planned = add(&suite, &chongqing, &planned, &late.name, Some(51_000))
        .await
        .expect("added");
    let departed_late = depart(&suite, &chongqing, &planned, date(2025, 12, 30))
        .await
        .expect("departed");
    suite.set_day(2026, 1, 5);
    suite.app.record_missing_in_identity().await.expect("job");
    assert_eq!(
        suite
            .app
            .send_pending_claims(&CallContext::own(), None)
            .await
            .expect("job"),
        0
    );
    let waiting = suite
        .jobs()
        .await
        .get_export_batch(with_token(
            pb::GetExportBatchRequest {
                name: departed_late.name.clone(),
            },
            &chongqing,
        ))
        .await
        .expect("batch")
        .into_inner()
        .export_batch
        .expect("batch");
    let claim = waiting.travellers[0].transport_claim.clone().expect("claim");
    assert_eq!(claim.state, pb::ClaimProgressState::Pending as i32, "{claim:?}");
    assert!(claim.detail.contains("无有效政策版本"), "{claim:?}");

    // Shizhong's clerk does not see Chongqing's batch.
    let refused = suite
        .jobs()
        .await
        .get_export_batch(with_token(
            pb::GetExportBatchRequest {
                name: departed.name.clone(),
            },
            &clerk,
        ))
        .await
        .expect_err("outside scope");
    assert_eq!(reason(&refused), "NOT_FOUND");
}

async fn a_batch_is_refused_a_policy_not_in_the_catalog_and_a_sender_that_does_not_send(backend: Backend) {
    let suite = Suite::start(backend).await;
    let clerk = suite.clerk();
    let agency = suite.carrier(pb::CarrierKind::HrAgency, 1).await;
    let employer = suite.carrier(pb::CarrierKind::Employer, 0).await;
    let draft = pb::ExportBatch {
        display_name: "第2批".into(),
        agency: agency.name.clone(),
        mode: pb::TravelMode::Bus as i32,
        origin: region("370402"),
        destination: region(TENGZHOU),
        departure_date: Some(date(2025, 3, 10)),
        agency_policy: "zz-agency-2099".into(),
        ..Default::default()
    };
    let refused = batch(&suite, &clerk, draft.clone()).await.expect_err("unknown policy");
    assert_eq!(fields(&refused), vec!["export_batch.agency_policy"]);
    let refused = batch(
        &suite,
        &clerk,
        pb::ExportBatch {
            agency: employer.name.clone(),
            agency_policy: "zz-agency-2021".into(),
            ..draft.clone()
        },
    )
    .await
    .expect_err("an employer");
    assert_eq!(fields(&refused), vec!["export_batch.agency"]);
    let refused = batch(
        &suite,
        &clerk,
        pb::ExportBatch {
            departure_date: Some(date(2025, 3, 1)),
            agency_policy: String::new(),
            ..draft
        },
    )
    .await
    .expect_err("in the past");
    assert_eq!(fields(&refused), vec!["export_batch.departure_date"]);
}

bangfu_platform::on_both_backends!(
    a_departed_batch_claims_the_agency_and_transport_subsidies_once,
    a_batch_is_refused_a_policy_not_in_the_catalog_and_a_sender_that_does_not_send,
);
