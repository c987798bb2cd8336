//! Claims decided at once from identity's facts: idempotent by source, never twice for one
//! person, group and month, inside the budget, reviewed by amount band.

use bangfu_platform::testing::with_token;
use bangfu_proto::subsidy::v1 as pb;

use crate::on_both_backends;
use crate::support::{Backend, Suite, integer_fact, money_fact, month, reason};

pub fn post_claim(
    person: &str,
    reference: &str,
    year: i32,
    month_number: i32,
    days: i64,
    standard_fen: i64,
) -> pb::Claim {
    pb::Claim {
        policy: "policies/zz-welfare-post-2021".into(),
        person: person.into(),
        payee: Some(pb::Payee {
            payee: Some(pb::payee::Payee::Person(person.into())),
        }),
        period: Some(month(year, month_number)),
        facts: vec![
            integer_fact("days_on_post", days),
            money_fact("post_monthly_standard_fen", standard_fen),
        ],
        source: Some(pb::ClaimSource {
            system: "welfare-post".into(),
            reference: reference.into(),
        }),
        ..Default::default()
    }
}

/// A SubmitClaims line.
fn line(reference: &str, claim: pb::Claim) -> pb::SubmitClaimsLine {
    pb::SubmitClaimsLine {
        line_reference: reference.into(),
        claim: Some(claim),
    }
}

/// Sends `messages` on one SubmitClaims stream and gathers every line's answer, in order.
async fn stream(suite: &Suite, token: &str, messages: Vec<pb::SubmitClaimsRequest>) -> Vec<pb::SubmitClaimsLineResult> {
    let mut responses = suite
        .subsidy()
        .await
        .submit_claims(with_token(tokio_stream::iter(messages), token))
        .await
        .expect("stream")
        .into_inner();
    let mut results = Vec::new();
    while let Some(response) = responses.message().await.expect("answer") {
        results.extend(response.results);
    }
    results
}

pub async fn submit(suite: &Suite, token: &str, claim: pb::Claim) -> Result<pb::SubmitClaimResponse, tonic::Status> {
    suite
        .subsidy()
        .await
        .submit_claim(with_token(
            pb::SubmitClaimRequest {
                claim: Some(claim),
                request_id: String::new(),
            },
            token,
        ))
        .await
        .map(|r| r.into_inner())
}

async fn a_claim_is_decided_at_once_reserved_and_idempotent_by_source(backend: Backend) {
    let suite = Suite::start(backend).await;
    let fund = suite.fund(10_000_000).await;
    let person = suite.poverty_alleviated_person("王小花", "022").await;
    let clerk = suite.agri_clerk();

    // 20 of 31 days on a 500-yuan post: 322.58 yuan, pro-rated and rounded half up.
    let first = submit(
        &suite,
        &clerk,
        post_claim(&person, "assignments/1/months/2025-03", 2025, 3, 20, 50_000),
    )
    .await
    .expect("submitted");
    let claim = first.claim.expect("claim");
    assert!(!first.existing);
    assert_eq!(claim.state, pb::ClaimState::Approved as i32);
    let decision = claim.decision.clone().expect("decision");
    assert_eq!(decision.outcome, pb::DecisionOutcome::Eligible as i32);
    assert_eq!(decision.amount.map(|m| m.fen), Some(32_258));
    assert_eq!(decision.policy_version, "policies/zz-welfare-post-2021/versions/1");
    assert_eq!(claim.person_display_name, "王**", "the name is masked");
    let categories = decision
        .frozen_facts
        .iter()
        .find(|f| f.fact.as_ref().is_some_and(|f| f.name == "person.categories"))
        .expect("identity's categories are frozen on the claim");
    assert!(categories.source_detail.starts_with("identity BatchGetPersons"));
    assert_eq!(claim.fund, fund.name);
    let fund_after = suite.read_fund(&fund.name).await;
    assert_eq!(fund_after.reserved.map(|m| m.fen), Some(32_258));
    assert_eq!(fund_after.available.map(|m| m.fen), Some(10_000_000 - 32_258));

    // The same source and payload again: the same claim, nothing new.
    let again = submit(
        &suite,
        &clerk,
        post_claim(&person, "assignments/1/months/2025-03", 2025, 3, 20, 50_000),
    )
    .await
    .expect("retried");
    assert!(again.existing);
    assert_eq!(again.claim.expect("claim").name, claim.name);
    assert_eq!(suite.read_fund(&fund.name).await.reserved.map(|m| m.fen), Some(32_258));

    // The same source with other days: refused, naming what differs.
    let reused = submit(
        &suite,
        &clerk,
        post_claim(&person, "assignments/1/months/2025-03", 2025, 3, 31, 50_000),
    )
    .await
    .expect_err("another payload under the same source");
    assert_eq!(reused.code(), tonic::Code::AlreadyExists);
    assert_eq!(reason(&reused), "CLAIM_SOURCE_REUSED");
    assert!(reused.message().contains("facts"), "{}", reused.message());

    // Another department's claim for the same person, group and month: stored rejected, naming
    // the claim it collides with; nothing more reserved.
    let twice = submit(
        &suite,
        &clerk,
        post_claim(&person, "other-system/ref-9", 2025, 3, 31, 50_000),
    )
    .await
    .expect("decided");
    let twice = twice.claim.expect("claim");
    assert_eq!(twice.state, pb::ClaimState::Rejected as i32);
    let rejection = &twice.decision.expect("decision").rejection_reasons[0];
    assert_eq!(rejection.reason, pb::RejectionReason::DuplicatePeriod as i32);
    assert_eq!(rejection.conflicting_claim, claim.name);
    assert_eq!(suite.read_fund(&fund.name).await.reserved.map(|m| m.fen), Some(32_258));

    // The journal sums: the budget entry and one reservation.
    let entries = suite
        .subsidy()
        .await
        .list_ledger_entries(with_token(
            pb::ListLedgerEntriesRequest {
                parent: fund.name.clone(),
                ..Default::default()
            },
            &clerk,
        ))
        .await
        .expect("entries")
        .into_inner()
        .entries;
    let kinds: Vec<i32> = entries.iter().map(|e| e.kind).collect();
    assert_eq!(
        kinds,
        vec![pb::LedgerEntryKind::Budget as i32, pb::LedgerEntryKind::Reserve as i32]
    );
}

async fn a_period_after_the_documents_expired_is_not_in_force_and_stores_nothing(backend: Backend) {
    let suite = Suite::start(backend).await;
    suite.fund(10_000_000).await;
    let person = suite.poverty_alleviated_person("李四", "031").await;
    let clerk = suite.agri_clerk();
    let refused = submit(
        &suite,
        &clerk,
        post_claim(&person, "assignments/2/months/2026-01", 2026, 1, 31, 50_000),
    )
    .await
    .expect_err("the 2021 documents expired on 2025-12-31");
    assert_eq!(refused.code(), tonic::Code::FailedPrecondition);
    assert_eq!(reason(&refused), "POLICY_NOT_IN_FORCE");
    let claims = suite
        .subsidy()
        .await
        .list_claims(with_token(pb::ListClaimsRequest::default(), &clerk))
        .await
        .expect("listed")
        .into_inner()
        .claims;
    assert!(claims.is_empty(), "nothing is stored for a refused claim");
}

async fn a_large_amount_waits_for_two_reviewers_other_than_the_submitter(backend: Backend) {
    let suite = Suite::start(backend).await;
    let fund = suite.fund(10_000_000).await;
    let person = suite.poverty_alleviated_person("赵六", "051").await;
    let clerk = suite.agri_clerk();
    // 6,000 yuan: above the two-reviewer band (5,000 yuan).
    let claim = submit(
        &suite,
        &clerk,
        post_claim(&person, "assignments/3/months/2025-04", 2025, 4, 30, 600_000),
    )
    .await
    .expect("submitted")
    .claim
    .expect("claim");
    assert_eq!(claim.state, pb::ClaimState::PendingReview as i32);
    assert_eq!(claim.required_reviews, 2);
    assert_eq!(suite.read_fund(&fund.name).await.reserved.map(|m| m.fen), Some(0));

    let review = |token: String, etag: String| {
        let name = claim.name.clone();
        let suite = &suite;
        async move {
            suite
                .subsidy()
                .await
                .review_claim(with_token(
                    pb::ReviewClaimRequest {
                        name,
                        verdict: pb::ReviewVerdict::Approve as i32,
                        note: "核对在岗考勤表无误".into(),
                        etag,
                    },
                    &token,
                ))
                .await
                .map(|r| r.into_inner().claim.expect("claim"))
        }
    };
    let first = review(suite.finance_reviewer("reviewer-a"), claim.etag.clone())
        .await
        .expect("first review");
    assert_eq!(first.state, pb::ClaimState::PendingReview as i32);
    let same = review(suite.finance_reviewer("reviewer-a"), first.etag.clone())
        .await
        .expect_err("one reviewer counts once");
    assert_eq!(reason(&same), "SAME_MAKER_AND_CHECKER");
    let stale = review(suite.finance_reviewer("reviewer-b"), claim.etag.clone())
        .await
        .expect_err("an etag from before the first review");
    assert_eq!(reason(&stale), "ETAG_MISMATCH");
    let second = review(suite.finance_reviewer("reviewer-b"), first.etag.clone())
        .await
        .expect("second review");
    assert_eq!(second.state, pb::ClaimState::Approved as i32);
    assert_eq!(suite.read_fund(&fund.name).await.reserved.map(|m| m.fen), Some(600_000));
}

async fn concurrent_claims_never_overdraw_the_fund(backend: Backend) {
    let suite = Suite::start(backend).await;
    // Room for three full months of 500 yuan, not four.
    let fund = suite.fund(160_000).await;
    let clerk = suite.agri_clerk();
    let mut persons = Vec::new();
    for i in 0..6 {
        persons.push(
            suite
                .poverty_alleviated_person("钱七", &format!("{:03}", 101 + 2 * i))
                .await,
        );
    }
    let results = crate::support::join_all(
        persons
            .iter()
            .enumerate()
            .map(|(i, person)| {
                let clerk = clerk.clone();
                let suite = &suite;
                async move {
                    submit(
                        suite,
                        &clerk,
                        post_claim(person, &format!("race/{i}"), 2025, 5, 31, 50_000),
                    )
                    .await
                }
            })
            .collect(),
    )
    .await;
    let approved = results.iter().filter(|r| r.is_ok()).count();
    let exhausted = results
        .iter()
        .filter(|r| r.as_ref().err().is_some_and(|e| reason(e) == "BUDGET_EXHAUSTED"))
        .count();
    assert_eq!((approved, exhausted), (3, 3), "{results:?}");
    let fund = suite.read_fund(&fund.name).await;
    assert_eq!(fund.reserved.map(|m| m.fen), Some(150_000));
    assert_eq!(fund.available.map(|m| m.fen), Some(10_000));
}

mod feed {
    use std::time::Duration;

    use bangfu_platform::testing::with_token;
    use bangfu_proto::subsidy::v1 as pb;

    use super::{post_claim, submit};
    use crate::support::{Backend, Suite};

    /// The next change on a claim feed, skipping heartbeats.
    async fn next_change(stream: &mut tonic::Streaming<pb::WatchClaimChangesResponse>) -> Option<pb::ClaimChange> {
        loop {
            let item = tokio::time::timeout(Duration::from_secs(1), stream.message())
                .await
                .ok()?;
            match item.expect("stream").expect("open").item {
                Some(pb::watch_claim_changes_response::Item::Change(change)) => return Some(change),
                _ => continue,
            }
        }
    }

    async fn watch(suite: &Suite, token: &str) -> tonic::Streaming<pb::WatchClaimChangesResponse> {
        suite
            .subsidy()
            .await
            .watch_claim_changes(with_token(pb::WatchClaimChangesRequest::default(), token))
            .await
            .expect("watching")
            .into_inner()
    }

    #[tokio::test]
    async fn the_submitting_service_learns_the_outcome_and_no_other_service_does() {
        let suite = Suite::start(Backend::Sqlite).await;
        suite.fund(10_000_000).await;
        let person = suite.poverty_alleviated_person("孙八", "061").await;
        submit(
            &suite,
            &suite.agri_clerk(),
            post_claim(&person, "assignments/8/months/2025-03", 2025, 3, 31, 50_000),
        )
        .await
        .expect("submitted");

        let posts = suite.server.keys.service_token("welfare_post", "3704");
        let mut own = watch(&suite, &posts).await;
        let change = next_change(&mut own)
            .await
            .expect("the decision reaches the posts service");
        assert_eq!(change.kind, pb::ClaimChangeKind::Decided as i32);
        assert_eq!(change.state, pb::ClaimState::Approved as i32);
        assert_eq!(change.amount.map(|m| m.fen), Some(50_000));
        let source = change.source.expect("source");
        assert_eq!(
            (source.system.as_str(), source.reference.as_str()),
            ("welfare-post", "assignments/8/months/2025-03")
        );
        assert_eq!(change.person, person);

        let jobs = suite.server.keys.service_token("jobs", "3704");
        let mut other = watch(&suite, &jobs).await;
        assert!(
            next_change(&mut other).await.is_none(),
            "job matching sees only its own claims"
        );
    }
}

async fn a_payroll_streamed_twice_is_stored_once_and_a_bad_line_does_not_stop_it(backend: Backend) {
    let suite = Suite::start(backend).await;
    let fund = suite.fund(10_000_000).await;
    let clerk = suite.agri_clerk();
    let mut persons = Vec::new();
    for i in 0..5 {
        persons.push(
            suite
                .poverty_alleviated_person("周九", &format!("{:03}", 201 + 2 * i))
                .await,
        );
    }
    let mut lines: Vec<pb::SubmitClaimsLine> = persons
        .iter()
        .enumerate()
        .map(|(i, person)| pb::SubmitClaimsLine {
            line_reference: format!("row-{}", i + 2),
            claim: Some(post_claim(person, &format!("payroll/2025-06/{i}"), 2025, 6, 30, 50_000)),
        })
        .collect();
    let mut unknown = post_claim(&persons[0], "payroll/2025-06/x", 2025, 6, 30, 50_000);
    unknown.policy = "policies/no-such-policy".into();
    lines.insert(
        2,
        pb::SubmitClaimsLine {
            line_reference: "row-bad".into(),
            claim: Some(unknown),
        },
    );
    let send = |lines: Vec<pb::SubmitClaimsLine>| {
        let suite = &suite;
        let clerk = clerk.clone();
        async move {
            let (first, second) = lines.split_at(3);
            let messages = vec![
                pb::SubmitClaimsRequest { lines: first.to_vec() },
                pb::SubmitClaimsRequest { lines: second.to_vec() },
            ];
            stream(suite, &clerk, messages).await
        }
    };
    let first = send(lines.clone()).await;
    assert_eq!(first.len(), 6);
    let refs: Vec<&str> = first.iter().map(|r| r.line_reference.as_str()).collect();
    assert_eq!(
        refs,
        vec!["row-2", "row-3", "row-bad", "row-4", "row-5", "row-6"],
        "answers keep the lines' order"
    );
    let bad = first[2].error.as_ref().expect("the unknown policy is refused");
    assert_eq!(bad.reason, "NOT_FOUND");
    assert!(!bad.retryable);
    let approved = first
        .iter()
        .filter(|r| r.state == pb::ClaimState::Approved as i32)
        .count();
    assert_eq!(approved, 5);
    assert!(first.iter().all(|r| !r.existing));

    let again = send(lines).await;
    assert_eq!(
        again.iter().filter(|r| r.existing).count(),
        5,
        "a re-sent payroll writes nothing new"
    );
    let names: Vec<&str> = first.iter().map(|r| r.claim.as_str()).collect();
    let names_again: Vec<&str> = again.iter().map(|r| r.claim.as_str()).collect();
    assert_eq!(names, names_again);
    assert_eq!(
        suite.read_fund(&fund.name).await.reserved.map(|m| m.fen),
        Some(5 * 50_000)
    );
}

async fn a_budget_is_raised_and_cut_but_never_below_what_is_committed(backend: Backend) {
    let suite = Suite::start(backend).await;
    let fund = suite.fund(100_000).await;
    let person = suite.poverty_alleviated_person("何一", "901").await;
    submit(
        &suite,
        &suite.agri_clerk(),
        post_claim(&person, "posts/b1/2025-03", 2025, 3, 31, 50_000),
    )
    .await
    .expect("claim");
    let reviewer = suite.finance_reviewer("reviewer-budget");
    let adjust = |delta: i64, etag: String| {
        let (suite, reviewer, name) = (&suite, reviewer.clone(), fund.name.clone());
        async move {
            suite
                .subsidy()
                .await
                .adjust_fund_budget(with_token(
                    pb::AdjustFundBudgetRequest {
                        name,
                        amount: Some(bangfu_proto::common::v1::Money { fen: delta }),
                        document: "枣财社指〔2025〕9号".into(),
                        etag,
                        request_id: String::new(),
                    },
                    &reviewer,
                ))
                .await
                .map(|r| r.into_inner())
        }
    };
    let current = suite.read_fund(&fund.name).await;
    let raised = adjust(20_000, current.etag.clone()).await.expect("raised");
    let raised_fund = raised.fund.expect("fund");
    assert_eq!(raised_fund.budget.map(|m| m.fen), Some(120_000));
    assert_eq!(raised.entry.expect("entry").kind, pb::LedgerEntryKind::Budget as i32);
    let stale = adjust(1_000, current.etag.clone())
        .await
        .expect_err("read before the raise");
    assert_eq!(reason(&stale), "ETAG_MISMATCH");
    // 50,000 fen are reserved: a cut to less than that is refused.
    let deep = adjust(-80_000, raised_fund.etag.clone())
        .await
        .expect_err("below what is committed");
    assert_eq!(reason(&deep), "BUDGET_EXHAUSTED");
    let cut = adjust(-70_000, raised_fund.etag.clone()).await.expect("cut");
    let after = cut.fund.expect("fund");
    assert_eq!(after.budget.map(|m| m.fen), Some(50_000));
    assert_eq!(after.available.map(|m| m.fen), Some(0));
}

async fn a_claim_rejected_on_missing_facts_is_approved_once_they_are_corrected(backend: Backend) {
    let suite = Suite::start(backend).await;
    let fund = suite.fund(10_000_000).await;
    let person = suite.person("施一", "911").await;
    let clerk = suite.agri_clerk();
    let rejected = submit(
        &suite,
        &clerk,
        post_claim(&person, "posts/e1/2025-03", 2025, 3, 31, 50_000),
    )
    .await
    .expect("decided")
    .claim
    .expect("claim");
    assert_eq!(rejected.state, pb::ClaimState::Rejected as i32);
    let first = rejected.decision.clone().expect("decision");
    assert_eq!(
        first.rejection_reasons[0].reason,
        pb::RejectionReason::NotTargetPerson as i32
    );

    // The certifying department records the category the clerk's counter lacked.
    suite.certify_poverty_alleviated(&person).await;
    let reevaluated = suite
        .subsidy()
        .await
        .reevaluate_claim(with_token(
            pb::ReevaluateClaimRequest {
                name: rejected.name.clone(),
                note: "补录脱贫人口认定后重新核定".into(),
                etag: rejected.etag.clone(),
            },
            &clerk,
        ))
        .await
        .expect("decided again")
        .into_inner()
        .claim
        .expect("claim");
    assert_eq!(reevaluated.state, pb::ClaimState::Approved as i32);
    assert_eq!(
        reevaluated.decision.expect("decision").amount.map(|m| m.fen),
        Some(50_000)
    );
    assert_eq!(reevaluated.earlier_decisions, vec![first], "the first decision is kept");
    assert_eq!(suite.read_fund(&fund.name).await.reserved.map(|m| m.fen), Some(50_000));
    let stale = suite
        .subsidy()
        .await
        .reevaluate_claim(with_token(
            pb::ReevaluateClaimRequest {
                name: rejected.name.clone(),
                note: "再次".into(),
                etag: rejected.etag.clone(),
            },
            &clerk,
        ))
        .await
        .expect_err("the etag moved");
    assert_eq!(reason(&stale), "ETAG_MISMATCH");
}

/// One SubmitClaims message with the lines a payroll chunk must tell apart: a person's month
/// twice under two sources, a source twice, and (with a small budget) more than the fund holds.
async fn chunk_results(suite: &Suite, budget_fen: i64) -> (Vec<pb::SubmitClaimsLineResult>, pb::Fund) {
    let fund = suite.fund(budget_fen).await;
    let clerk = suite.agri_clerk();
    let mut persons = Vec::new();
    for i in 0..3 {
        persons.push(
            suite
                .poverty_alleviated_person("钱二", &format!("{:03}", 301 + 2 * i))
                .await,
        );
    }
    let lines = vec![
        line("a", post_claim(&persons[0], "chunk/a", 2025, 4, 30, 50_000)),
        line("b", post_claim(&persons[0], "chunk/b", 2025, 4, 30, 50_000)),
        line("a-again", post_claim(&persons[0], "chunk/a", 2025, 4, 30, 50_000)),
        line("c", post_claim(&persons[1], "chunk/c", 2025, 4, 30, 50_000)),
        line("d", post_claim(&persons[2], "chunk/d", 2025, 4, 30, 50_000)),
    ];
    let results = stream(suite, &clerk, vec![pb::SubmitClaimsRequest { lines }]).await;
    (results, fund)
}

async fn each_line_of_a_chunk_is_decided_as_if_submitted_alone(backend: Backend) {
    // Enough money: the chunk is written at once.
    let suite = Suite::start(backend).await;
    let (results, fund) = chunk_results(&suite, 10_000_000).await;
    let state = |i: usize| pb::ClaimState::try_from(results[i].state).expect("state");
    assert_eq!(state(0), pb::ClaimState::Approved);
    assert_eq!(state(1), pb::ClaimState::Rejected, "the same person and month again");
    assert_eq!(
        results[1].rejection_reasons,
        vec![pb::RejectionReason::DuplicatePeriod as i32]
    );
    assert!(results[2].existing, "the same source again is the first line's claim");
    assert_eq!(results[2].claim, results[0].claim);
    assert_eq!(
        (state(3), state(4)),
        (pb::ClaimState::Approved, pb::ClaimState::Approved)
    );
    assert_eq!(suite.read_fund(&fund.name).await.reserved.map(|m| m.fen), Some(150_000));

    // Money for two claims only: every line learns whether it fits, and the fund is never
    // overdrawn.
    let suite = Suite::start(backend).await;
    let (results, fund) = chunk_results(&suite, 100_000).await;
    let state = |i: usize| pb::ClaimState::try_from(results[i].state).expect("state");
    assert_eq!(state(0), pb::ClaimState::Approved);
    assert_eq!(state(1), pb::ClaimState::Rejected);
    assert!(results[2].existing);
    assert_eq!(state(3), pb::ClaimState::Approved);
    let exhausted = results[4].error.as_ref().expect("no money left for the last line");
    assert_eq!(exhausted.reason, "BUDGET_EXHAUSTED");
    assert!(exhausted.retryable);
    let after = suite.read_fund(&fund.name).await;
    assert_eq!(after.reserved.map(|m| m.fen), Some(100_000));
    assert_eq!(after.available.map(|m| m.fen), Some(0));
}

async fn a_persons_months_in_one_chunk_count_against_the_cap_as_they_are_decided(backend: Backend) {
    use bangfu_platform::auth::{Department, Role};
    let suite = Suite::start(backend).await;
    let hr = suite.token("clerk-hr-cy", Department::Hr, Role::Clerk, "2113");
    let person = suite
        .person_in(
            &hr,
            "孙三",
            &bangfu_platform::testing::citizen_id("21130219800101013"),
            "211302001001",
        )
        .await;
    let reviewer = suite.token("reviewer-agri-cy", Department::Agri, Role::Reviewer, "2113");
    suite
        .certify_poverty_alleviated_by(&reviewer, &person, "朝阳市双塔区乡村振兴局", "双乡振〔2021〕1号")
        .await;
    let finance = suite.token("reviewer-finance-cy", Department::Finance, Role::Reviewer, "2113");
    for year in 2021..=2024 {
        suite
            .subsidy()
            .await
            .create_fund(with_token(
                pb::CreateFundRequest {
                    fund: Some(pb::Fund {
                        display_name: format!("{year}年朝阳市就业补助资金"),
                        fund_source: pb::FundSource::EmploymentSubsidy as i32,
                        region_prefix: "2113".into(),
                        year,
                        budget_document: format!("朝财社〔{year}〕1号"),
                        budget: Some(bangfu_proto::common::v1::Money { fen: 10_000_000 }),
                        ..Default::default()
                    }),
                    request_id: String::new(),
                },
                &finance,
            ))
            .await
            .expect("fund");
    }
    // 37 months of the same post, 2021-10 (the policy's first) to 2024-10, in one message.
    let lines: Vec<pb::SubmitClaimsLine> = (0..37)
        .map(|i| {
            let (year, month_number) = (2021 + (9 + i) / 12, 1 + (9 + i) % 12);
            pb::SubmitClaimsLine {
                line_reference: format!("{year}-{month_number:02}"),
                claim: Some(pb::Claim {
                    policy: "policies/cy-welfare-post-2021".into(),
                    person: person.clone(),
                    payee: Some(pb::Payee {
                        payee: Some(pb::payee::Payee::Person(person.clone())),
                    }),
                    period: Some(crate::support::month(year, month_number)),
                    facts: vec![integer_fact("days_on_post", 28)],
                    source: Some(pb::ClaimSource {
                        system: "welfare-post".into(),
                        reference: format!("cy/{year}-{month_number:02}"),
                    }),
                    ..Default::default()
                }),
            }
        })
        .collect();
    let results = stream(
        &suite,
        &suite.token("clerk-agri-cy", Department::Agri, Role::Clerk, "2113"),
        vec![pb::SubmitClaimsRequest { lines }],
    )
    .await;
    assert_eq!(results.len(), 37);
    let approved = results
        .iter()
        .filter(|r| r.state == pb::ClaimState::Approved as i32)
        .count();
    assert_eq!(
        approved,
        36,
        "{:?}",
        results.iter().map(|r| r.error.clone()).collect::<Vec<_>>()
    );
    assert_eq!(results[36].state, pb::ClaimState::Rejected as i32);
    assert_eq!(
        results[36].rejection_reasons,
        vec![pb::RejectionReason::CapReached as i32],
        "the 37th month is over the 36-month cap"
    );
}

async fn two_payrolls_over_the_same_persons_at_once_both_finish(backend: Backend) {
    let suite = Suite::start(backend).await;
    suite.fund(100_000_000).await;
    let clerk = suite.agri_clerk();
    let mut persons = Vec::new();
    for i in 0..20 {
        persons.push(
            suite
                .poverty_alleviated_person("孙四", &format!("{:03}", 401 + 2 * i))
                .await,
        );
    }
    // The same persons, one stream in each order, each its own month: on PostgreSQL both lock
    // the same persons, and must not deadlock.
    let send = |order: Vec<String>, month_number: i32| {
        let (suite, clerk) = (&suite, clerk.clone());
        async move {
            let lines = order
                .iter()
                .enumerate()
                .map(|(i, person)| pb::SubmitClaimsLine {
                    line_reference: i.to_string(),
                    claim: Some(post_claim(
                        person,
                        &format!("both/{month_number}/{i}"),
                        2025,
                        month_number,
                        28,
                        50_000,
                    )),
                })
                .collect();
            stream(suite, &clerk, vec![pb::SubmitClaimsRequest { lines }]).await
        }
    };
    let mut reversed = persons.clone();
    reversed.reverse();
    let (may, june) = tokio::join!(send(persons.clone(), 5), send(reversed, 6));
    for results in [may, june] {
        assert_eq!(results.len(), 20);
        assert!(
            results.iter().all(|r| r.state == pb::ClaimState::Approved as i32),
            "{:?}",
            results.iter().map(|r| r.error.clone()).collect::<Vec<_>>()
        );
    }
}

async fn a_line_corrected_later_in_the_same_message_is_decided(backend: Backend) {
    let suite = Suite::start(backend).await;
    suite.fund(10_000_000).await;
    let person = suite.poverty_alleviated_person("钱五", "501").await;
    // The clerk's system sends a line, then the same source again with the fact corrected.
    let wrong = pb::Claim {
        facts: vec![
            integer_fact("days_worked", 31),
            money_fact("post_monthly_standard_fen", 50_000),
        ],
        ..post_claim(&person, "fix/2025-05", 2025, 5, 31, 50_000)
    };
    let corrected = post_claim(&person, "fix/2025-05", 2025, 5, 31, 50_000);
    let lines = vec![line("1", wrong), line("2", corrected)];
    let results = stream(&suite, &suite.agri_clerk(), vec![pb::SubmitClaimsRequest { lines }]).await;
    assert_eq!(
        results[0].error.as_ref().map(|e| e.reason.as_str()),
        Some("FIELD_INVALID")
    );
    assert!(results[1].error.is_none(), "{:?}", results[1].error);
    assert_eq!(results[1].state, pb::ClaimState::Approved as i32);
    assert!(!results[1].existing);
}

on_both_backends!(
    a_claim_is_decided_at_once_reserved_and_idempotent_by_source,
    a_period_after_the_documents_expired_is_not_in_force_and_stores_nothing,
    a_large_amount_waits_for_two_reviewers_other_than_the_submitter,
    concurrent_claims_never_overdraw_the_fund,
    a_payroll_streamed_twice_is_stored_once_and_a_bad_line_does_not_stop_it,
    a_budget_is_raised_and_cut_but_never_below_what_is_committed,
    a_claim_rejected_on_missing_facts_is_approved_once_they_are_corrected,
    each_line_of_a_chunk_is_decided_as_if_submitted_alone,
    a_persons_months_in_one_chunk_count_against_the_cap_as_they_are_decided,
    two_payrolls_over_the_same_persons_at_once_both_finish,
    a_line_corrected_later_in_the_same_message_is_decided,
    a_streamed_line_whose_month_a_stored_claim_holds_is_refused_naming_it,
    one_payroll_sent_on_two_streams_at_once_is_stored_once,
);

/// A sender that retries while its first stream is still being written (a timeout on its
/// side) races itself: every line of both streams names the same claim, each claim is stored
/// and reserved once.
async fn one_payroll_sent_on_two_streams_at_once_is_stored_once(backend: Backend) {
    let suite = Suite::start(backend).await;
    let fund = suite.fund(100_000_000).await;
    let clerk = suite.agri_clerk();
    let mut persons = Vec::new();
    for i in 0..20 {
        persons.push(
            suite
                .poverty_alleviated_person("吴五", &format!("{:03}", 501 + 2 * i))
                .await,
        );
    }
    let lines: Vec<pb::SubmitClaimsLine> = persons
        .iter()
        .enumerate()
        .map(|(i, person)| pb::SubmitClaimsLine {
            line_reference: i.to_string(),
            claim: Some(post_claim(person, &format!("twice/2025-07/{i}"), 2025, 7, 31, 50_000)),
        })
        .collect();
    let send = || {
        let (suite, clerk, lines) = (&suite, clerk.clone(), lines.clone());
        async move { stream(suite, &clerk, vec![pb::SubmitClaimsRequest { lines }]).await }
    };
    let (one, other) = tokio::join!(send(), send());
    for results in [&one, &other] {
        assert_eq!(results.len(), 20);
        assert!(
            results.iter().all(|r| r.state == pb::ClaimState::Approved as i32),
            "{:?}",
            results.iter().map(|r| r.error.clone()).collect::<Vec<_>>()
        );
    }
    let names = |results: &[pb::SubmitClaimsLineResult]| results.iter().map(|r| r.claim.clone()).collect::<Vec<_>>();
    assert_eq!(names(&one), names(&other), "both streams name the same claims");
    let distinct: std::collections::BTreeSet<String> = names(&one).into_iter().collect();
    assert_eq!(distinct.len(), 20);
    assert_eq!(
        one.iter().chain(&other).filter(|r| !r.existing).count(),
        20,
        "each claim was made once, the other answer is a retry's"
    );
    assert_eq!(
        suite.read_fund(&fund.name).await.reserved.map(|m| m.fen),
        Some(20 * 50_000),
        "reserved once per claim"
    );
}

/// The periods of a chunk are taken in one statement: a line whose month a claim stored
/// earlier already holds must still be refused, name that claim and hold nothing, while the
/// line beside it is granted.
async fn a_streamed_line_whose_month_a_stored_claim_holds_is_refused_naming_it(backend: Backend) {
    let suite = Suite::start(backend).await;
    let fund = suite.fund(10_000_000).await;
    let clerk = suite.agri_clerk();
    let held = suite.poverty_alleviated_person("钱三", "401").await;
    let free = suite.poverty_alleviated_person("钱四", "403").await;
    let first = submit(
        &suite,
        &clerk,
        post_claim(&held, "posts/held/2025-05", 2025, 5, 31, 50_000),
    )
    .await
    .expect("decided")
    .claim
    .expect("claim");
    assert_eq!(first.state, pb::ClaimState::Approved as i32);

    let lines = vec![
        line("held", post_claim(&held, "relief/held/2025-05", 2025, 5, 31, 50_000)),
        line("free", post_claim(&free, "relief/free/2025-05", 2025, 5, 31, 50_000)),
    ];
    let results = stream(&suite, &clerk, vec![pb::SubmitClaimsRequest { lines }]).await;
    assert_eq!(results[0].state, pb::ClaimState::Rejected as i32);
    assert_eq!(
        results[0].rejection_reasons,
        vec![pb::RejectionReason::DuplicatePeriod as i32]
    );
    assert_eq!(results[1].state, pb::ClaimState::Approved as i32);
    let refused = suite
        .subsidy()
        .await
        .get_claim(with_token(
            pb::GetClaimRequest {
                name: results[0].claim.clone(),
            },
            &clerk,
        ))
        .await
        .expect("read")
        .into_inner()
        .claim
        .expect("claim");
    let rejection = &refused.decision.expect("decision").rejection_reasons[0];
    assert_eq!(rejection.conflicting_claim, first.name, "the stored claim is named");
    // Only the two granted claims hold money.
    assert_eq!(suite.read_fund(&fund.name).await.reserved.map(|m| m.fen), Some(100_000));
}
