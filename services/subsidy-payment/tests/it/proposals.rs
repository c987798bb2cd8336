//! Proactive claims (免申即享): Chongqing's transport subsidy proposed when a Chongqing target
//! person's employment turns to out-of-province, confirmed by a clerk with the fare, or declined.

use bangfu_platform::auth::{Department, Role};
use bangfu_platform::testing::{citizen_id, with_token};
use bangfu_proto::common::v1 as common;
use bangfu_proto::identity::v1 as id;
use bangfu_proto::subsidy::v1 as pb;

use crate::on_both_backends;
use crate::support::{Backend, Suite, date, money_fact, reason};

const WANZHOU_VILLAGE: &str = "500101001001";

/// A poverty-alleviated person registered in Wanzhou; returns the resource name.
async fn chongqing_person(suite: &Suite, name: &str, sequence: &str) -> String {
    let hr = suite.token("clerk-hr-cq", Department::Hr, Role::Clerk, "500101");
    let person = suite
        .person_in(
            &hr,
            name,
            &citizen_id(&format!("50010119800101{sequence}")),
            WANZHOU_VILLAGE,
        )
        .await;
    let reviewer = suite.token("reviewer-agri-cq", Department::Agri, Role::Reviewer, "500101");
    suite
        .certify_poverty_alleviated_by(&reviewer, &person, "万州区乡村振兴局", "万州乡振〔2021〕3号")
        .await;
    person
}

async fn goes_to_work(suite: &Suite, person: &str, status: common::EmploymentStatus) {
    let hr = suite.token("clerk-hr-cq", Department::Hr, Role::Clerk, "500101");
    suite
        .identity()
        .await
        .record_employment(with_token(
            id::RecordEmploymentRequest {
                person: person.into(),
                record: Some(id::EmploymentRecord {
                    status: status as i32,
                    employer: "山东某制造企业".into(),
                    start_date: Some(date(2025, 2, 20)),
                    reporting_system: "就业信息平台".into(),
                    ..Default::default()
                }),
                request_id: String::new(),
            },
            &hr,
        ))
        .await
        .expect("employment recorded");
}

/// Runs the proposal job as its schedule would, until it has proposed `expected` claims.
async fn proposed(suite: &Suite, expected: usize) {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    let mut total = 0;
    while total < expected {
        total += suite.app.process_proposal_checks().await.expect("checked");
        assert!(
            std::time::Instant::now() < deadline,
            "{total} of {expected} claims proposed"
        );
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
}

async fn proposals_of(suite: &Suite, token: &str) -> Vec<pb::Claim> {
    suite
        .subsidy()
        .await
        .list_claims(with_token(
            pb::ListClaimsRequest {
                source_system: "subsidy-payment".into(),
                ..Default::default()
            },
            token,
        ))
        .await
        .expect("listed")
        .into_inner()
        .claims
}

async fn going_out_of_province_proposes_the_transport_subsidy_for_a_clerk_to_confirm(backend: Backend) {
    let suite = Suite::start(backend).await;
    let (wang, li, zhao) = (
        chongqing_person(&suite, "王一", "011").await,
        chongqing_person(&suite, "李二", "021").await,
        chongqing_person(&suite, "赵三", "031").await,
    );
    goes_to_work(&suite, &wang, common::EmploymentStatus::EmployedOutOfProvince).await;
    goes_to_work(&suite, &li, common::EmploymentStatus::EmployedOutOfProvince).await;
    // Working in the home county triggers nothing.
    goes_to_work(&suite, &zhao, common::EmploymentStatus::EmployedInCounty).await;
    proposed(&suite, 2).await;
    assert_eq!(
        suite.app.process_proposal_checks().await.expect("checked"),
        0,
        "nothing proposed twice"
    );

    let clerk = suite.token("clerk-hr-cq", Department::Hr, Role::Clerk, "500101");
    let mut proposals = proposals_of(&suite, &clerk).await;
    proposals.sort_by_key(|c| c.person.clone());
    let mut expected = vec![wang.clone(), li.clone()];
    expected.sort();
    assert_eq!(proposals.iter().map(|c| c.person.clone()).collect::<Vec<_>>(), expected);
    for claim in &proposals {
        assert_eq!(claim.state, pb::ClaimState::Proposed as i32);
        assert_eq!(claim.policy, "policies/cq-transport-cross-province");
        assert!(claim.decision.is_none(), "a proposal is not decided");
        let period = claim.period.as_ref().expect("period");
        assert_eq!(period.first_day, Some(date(2025, 2, 20)));
    }
    // A Shandong clerk sees none of them.
    assert!(proposals_of(&suite, &suite.agri_clerk()).await.is_empty());

    let finance = suite.token("reviewer-finance-cq", Department::Finance, Role::Reviewer, "50");
    suite
        .subsidy()
        .await
        .create_fund(with_token(
            pb::CreateFundRequest {
                fund: Some(pb::Fund {
                    display_name: "2025年重庆市衔接推进乡村振兴补助资金".into(),
                    fund_source: pb::FundSource::RuralRevitalizationTransition as i32,
                    region_prefix: "50".into(),
                    year: 2025,
                    budget_document: "渝财农〔2025〕1号".into(),
                    budget: Some(common::Money { fen: 10_000_000 }),
                    ..Default::default()
                }),
                request_id: String::new(),
            },
            &finance,
        ))
        .await
        .expect("fund");

    let wang_claim = proposals.iter().find(|c| c.person == wang).expect("wang's");
    let li_claim = proposals.iter().find(|c| c.person == li).expect("li's");
    let confirm = |claim: &pb::Claim, facts: Vec<pb::Fact>, decline: bool, etag: String| {
        let suite = &suite;
        let clerk = clerk.clone();
        let name = claim.name.clone();
        async move {
            suite
                .subsidy()
                .await
                .confirm_proposed_claim(with_token(
                    pb::ConfirmProposedClaimRequest {
                        name,
                        facts,
                        decline,
                        note: if decline {
                            "本人已在当地领取同类补助".into()
                        } else {
                            "已核验万州至济南火车票".into()
                        },
                        etag,
                    },
                    &clerk,
                ))
                .await
                .map(|r| r.into_inner().claim.expect("claim"))
        }
    };
    // The fare is the clerk's to give: without it the proposal stays as it is.
    let missing = confirm(wang_claim, Vec::new(), false, wang_claim.etag.clone())
        .await
        .expect_err("no fare");
    assert_eq!(reason(&missing), "FIELD_REQUIRED");
    let decided = confirm(
        wang_claim,
        vec![money_fact("transport_fare_fen", 32_500)],
        false,
        wang_claim.etag.clone(),
    )
    .await
    .expect("confirmed");
    assert_eq!(decided.state, pb::ClaimState::Approved as i32);
    let decision = decided.decision.as_ref().expect("decided");
    assert_eq!(decision.outcome, pb::DecisionOutcome::Eligible as i32);
    assert_eq!(decision.amount.as_ref().map(|m| m.fen), Some(32_500));
    // Confirmed once: the same call again finds it decided.
    let again = confirm(
        wang_claim,
        vec![money_fact("transport_fare_fen", 32_500)],
        false,
        decided.etag.clone(),
    )
    .await
    .expect_err("not proposed any more");
    assert_eq!(reason(&again), "STATE_CONFLICT");

    let declined = confirm(li_claim, Vec::new(), true, li_claim.etag.clone())
        .await
        .expect("declined");
    assert_eq!(declined.state, pb::ClaimState::Declined as i32);
    assert!(declined.decision.is_none());
}

/// An import of a county's persons notes a change per certification. One round of the job
/// works through more than a page of them (it took a hundred a round, every 30 s: days for a
/// province's import), and each is audited as matched.
async fn a_round_works_through_an_imports_noted_changes_each_audited(backend: Backend) {
    let suite = Suite::start(backend).await;
    let noted = 1_234;
    {
        let db = suite.subsidy_db();
        let mut tx = db.pool().begin().await.expect("transaction");
        for i in 0..noted {
            let check = bangfu_subsidy_payment::store::ProposalCheck {
                cursor: format!("import-{i:05}"),
                person_id: format!("person-{i:05}"),
                change_kind: "CATEGORY_CERTIFIED".into(),
                category: "POVERTY_ALLEVIATED".into(),
                effective_date: Some(time::macros::date!(2025 - 02 - 01)),
            };
            bangfu_subsidy_payment::store::note_proposal_check(&mut tx, &check, time::OffsetDateTime::now_utc())
                .await
                .expect("noted");
        }
        tx.commit().await.expect("committed");
    }
    assert_eq!(
        suite.app.process_proposal_checks().await.expect("checked"),
        0,
        "no shipped policy is triggered by a certification"
    );
    let db = suite.subsidy_db();
    let left: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM proposal_checks")
        .fetch_one(db.pool())
        .await
        .expect("counted");
    assert_eq!(left, 0, "every noted change taken in one round");
    let audited: i64 = sqlx::query_scalar(
        "SELECT COUNT(*) FROM audit_events WHERE method LIKE '%CheckProposal' AND resource LIKE 'persons/person-%'",
    )
    .fetch_one(db.pool())
    .await
    .expect("counted");
    assert_eq!(audited, noted, "one audit row per change matched");
}

on_both_backends!(
    going_out_of_province_proposes_the_transport_subsidy_for_a_clerk_to_confirm,
    a_round_works_through_an_imports_noted_changes_each_audited
);
