//! A certified labor base's one-time award (Zaozhuang §五: 有条件的区(市)可对吸纳脱贫享受政策人口
//! 就业数量多、成效好的乡村振兴劳务基地给予一次性奖补): a claim about the base alone, paid to it,
//! granted once the district has set its count and amount and the base absorbs that many target
//! persons, and never twice.

use bangfu_platform::auth::{Department, Role};
use bangfu_platform::testing::{Backend, publish_policy_version};
use bangfu_proto::common::v1 as common;
use bangfu_proto::jobs::v1 as pb;
use bangfu_proto::subsidy::v1 as sub;

use crate::support::*;

const POLICY: &str = "zz-labor-base-award-2021";

/// Shizhong's finance sets what the documents leave to the district: the target persons a base
/// must absorb (a parameter) and the award (a new version of the policy with its 2025 row).
async fn district_sets_its_award(suite: &Suite, min_absorbed: i64, award_fen: i64) {
    let finance = suite.token("reviewer-finance", Department::Finance, Role::Reviewer, "*");
    suite
        .subsidy()
        .await
        .update_parameter(with_token(
            sub::UpdateParameterRequest {
                parameter: Some(common::Parameter {
                    key: "subsidy.labor_base_award_min_absorbed".into(),
                    region_prefix: "370402".into(),
                    valid_from: Some(date(2025, 1, 1)),
                    value: min_absorbed,
                    source_document: "市中区乡村振兴劳务基地认定和奖补办法".into(),
                    ..Default::default()
                }),
                update_mask: None,
                allow_missing: true,
            },
            &finance,
        ))
        .await
        .expect("threshold set");
    let mut request = bangfu_subsidy_payment::grpc::policy_files::parse(
        "zz-labor-base-award-2021.json",
        include_str!("../../../subsidy-payment/policies/zz-labor-base-award-2021.json"),
    )
    .expect("policy file");
    let version = request.version.as_mut().expect("version");
    version.change_note = "录入市中区2025年乡村振兴劳务基地奖补标准".into();
    version.standards_tables[0].rows.push(sub::StandardsRow {
        region_prefix: "370402".into(),
        year: 2025,
        value: money(award_fen),
        source: "市中区乡村振兴劳务基地认定和奖补办法".into(),
    });
    publish_policy_version(
        suite.server.channel().await,
        &format!("policies/{POLICY}"),
        request.version.expect("version"),
        &suite.token("admin", Department::Finance, Role::Admin, "*"),
        &finance,
    )
    .await;
}

async fn certified_base(suite: &Suite, n: usize) -> pb::Carrier {
    let base = suite.carrier(pb::CarrierKind::LaborBase, n).await;
    suite.certify_carrier(&base).await
}

/// Places a new target person (poverty-alleviated) with `base` from `start` (today); `sequence`
/// makes the ID unique.
async fn place_target_person(suite: &Suite, base: &pb::Carrier, name: &str, sequence: &str, start: common::Date) {
    let clerk = suite.clerk();
    let posting = suite
        .create_posting(posting_draft(&base.name, VILLAGE), &clerk)
        .await
        .expect("posting");
    let person = suite
        .person(name, VILLAGE, "19790605", sequence, common::LaborCapacity::Full)
        .await;
    suite.certify(&person, common::PersonCategory::PovertyAlleviated).await;
    let seeker = suite
        .register(
            pb::Seeker {
                available_from: Some(date(2025, 3, 1)),
                ..seeker_draft(&person, &[])
            },
            &clerk,
        )
        .await
        .expect("seeker");
    suite
        .place(placement_draft(&posting.name, &seeker.name, start))
        .await
        .expect("placed");
}

async fn claim_award(suite: &Suite, base: &str) -> Result<pb::SubsidyClaim, tonic::Status> {
    suite
        .jobs()
        .await
        .claim_carrier_award(with_token(
            pb::ClaimCarrierAwardRequest {
                carrier: base.into(),
                policy: POLICY.into(),
            },
            &suite.clerk(),
        ))
        .await
        .map(|r| r.into_inner().claim.expect("claim"))
}

/// The progress of the claim with `reference` on `owner`, once settled.
async fn settled(suite: &Suite, owner: &str, count: usize, reference: &str) -> pb::ClaimProgress {
    settled_claims(suite, &suite.clerk(), owner, count)
        .await
        .into_iter()
        .find(|c| c.reference == reference)
        .and_then(|c| c.progress)
        .expect("the claim is shown on the carrier")
}

async fn a_labor_base_past_the_districts_count_is_awarded_once(backend: Backend) {
    let suite = Suite::start(backend).await;
    suite.fund(sub::FundSource::EmploymentSubsidy, "3704").await;
    let base = certified_base(&suite, 0).await;
    place_target_person(&suite, &base, "孙玉兰", "061", date(2025, 3, 2)).await;

    // The district has set neither its count nor its amount: refused, nothing invented.
    let first = claim_award(&suite, &base.name).await.expect("claimed");
    assert_eq!(first.person, "", "an award is about the base alone");
    assert_eq!(first.payee, base.name);
    let progress = settled(&suite, &base.name, 1, &first.reference).await;
    assert_eq!(progress.state, pb::ClaimProgressState::Refused as i32, "{progress:?}");
    assert!(progress.detail.contains("STANDARD_MISSING"), "{progress:?}");

    // Shizhong sets two absorbed target persons and 20,000 yuan; one is too few.
    district_sets_its_award(&suite, 2, 2_000_000).await;
    suite.set_day(2025, 3, 3);
    let second = claim_award(&suite, &base.name).await.expect("claimed");
    assert_ne!(second.reference, first.reference, "a later day is a new claim");
    let progress = settled(&suite, &base.name, 2, &second.reference).await;
    assert_eq!(progress.state, pb::ClaimProgressState::Refused as i32, "{progress:?}");
    assert!(progress.detail.contains("CONDITION_NOT_MET"), "{progress:?}");

    // A second target person at the base, and a second base with two of its own, the same day:
    // each base is its own subject, so neither award holds the other's period.
    place_target_person(&suite, &base, "钱德明", "062", date(2025, 3, 3)).await;
    let other = certified_base(&suite, 1).await;
    place_target_person(&suite, &other, "周小红", "063", date(2025, 3, 3)).await;
    place_target_person(&suite, &other, "吴国庆", "064", date(2025, 3, 3)).await;
    assert_eq!(suite.get_carrier(&base.name).await.absorbed_target_persons, 2);
    suite.set_day(2025, 3, 4);
    let third = claim_award(&suite, &base.name).await.expect("claimed");
    let theirs = claim_award(&suite, &other.name).await.expect("claimed");
    for (owner, count, claim) in [(&base.name, 3, &third), (&other.name, 1, &theirs)] {
        let progress = settled(&suite, owner, count, &claim.reference).await;
        assert_eq!(
            progress.state,
            pb::ClaimProgressState::Granted as i32,
            "{owner}: {progress:?}"
        );
        assert_eq!(progress.amount.map(|m| m.fen), Some(2_000_000));
    }

    // Subsidy payment holds the base as payee and names no person.
    let granted = settled(&suite, &base.name, 3, &third.reference).await.claim;
    let finance = suite.token("reviewer-finance", Department::Finance, Role::Reviewer, "*");
    let held = suite
        .subsidy()
        .await
        .get_claim(with_token(sub::GetClaimRequest { name: granted }, &finance))
        .await
        .expect("claim in subsidy payment")
        .into_inner()
        .claim
        .expect("claim");
    assert_eq!(held.person, "");
    match held.payee.and_then(|p| p.payee) {
        Some(sub::payee::Payee::Organization(org)) => assert_eq!(org.credit_code, CREDIT_CODES[0]),
        other => panic!("the payee is the base: {other:?}"),
    }

    // The same day again answers the same claim; a later day is refused: it is one-time.
    let again = claim_award(&suite, &base.name).await.expect("retry");
    assert_eq!(again.reference, third.reference);
    suite.set_day(2025, 3, 5);
    let fourth = claim_award(&suite, &base.name).await.expect("claimed");
    let progress = settled(&suite, &base.name, 4, &fourth.reference).await;
    assert_eq!(progress.state, pb::ClaimProgressState::Refused as i32, "{progress:?}");
    assert!(progress.detail.contains("CAP_REACHED"), "{progress:?}");

    // An employer is no labor base, and another county's clerk may not claim for this one.
    let employer = suite.carrier(pb::CarrierKind::Employer, 2).await;
    let refused = claim_award(&suite, &employer.name).await.expect("claimed");
    let progress = settled(&suite, &employer.name, 1, &refused.reference).await;
    assert_eq!(progress.state, pb::ClaimProgressState::Refused as i32, "{progress:?}");
    assert!(progress.detail.contains("CONDITION_NOT_MET"), "{progress:?}");
    let outside = suite
        .jobs()
        .await
        .claim_carrier_award(with_token(
            pb::ClaimCarrierAwardRequest {
                carrier: base.name.clone(),
                policy: POLICY.into(),
            },
            &suite.token("clerk-hr-xc", Department::Hr, Role::Clerk, "370403"),
        ))
        .await
        .expect_err("outside scope");
    assert_eq!(reason(&outside), "NOT_FOUND");
}

bangfu_platform::on_both_backends!(a_labor_base_past_the_districts_count_is_awarded_once);
