//! A holder's months: evaluation, closing into claims at subsidy payment (once, even when run
//! twice or while subsidy payment is down), and the exit identity's feed proposes.

use std::time::Duration;

use bangfu_platform::auth::{Department, Role};
use bangfu_platform::peers::CallContext;
use bangfu_platform::testing::{citizen_id, pay_through_the_bank, publish_policy_version, with_token};
use bangfu_proto::common::v1 as common;
use bangfu_proto::identity::v1 as id;
use bangfu_proto::subsidy::v1 as sub;
use bangfu_proto::welfare_post::v1 as pb;

use crate::on_both_backends;
use crate::support::{Backend, Suite, date, reason};

/// A holder of `suite`'s post from 2025-03-10, confirmed; returns (assignment, person, certification).
async fn holder(suite: &Suite) -> (pb::Assignment, String, String) {
    suite.fund().await;
    let post = suite.post(1).await;
    let announcement = suite.announce(&post.name).await;
    let person = suite.person("张三", "101", 1970, common::LaborCapacity::Weak).await;
    let certification = suite.certify(&person).await;
    let application = suite.apply(&announcement.name, &person).await;
    let notice = suite
        .propose(
            &announcement.name,
            &application.name,
            date(2025, 3, 10),
            date(2026, 2, 28),
        )
        .await
        .expect("proposed");
    suite.set_day(2025, 3, 7);
    let confirmed = suite
        .posts()
        .await
        .confirm_hires(with_token(
            pb::ConfirmHiresRequest {
                hire_notice: notice.name,
            },
            &suite.reviewer(),
        ))
        .await
        .expect("confirmed")
        .into_inner();
    (confirmed.assignments[0].clone(), person, certification)
}

async fn evaluate(
    suite: &Suite,
    assignment: &str,
    year: i32,
    month: i32,
    days: i32,
    score: i32,
) -> Result<pb::Evaluation, tonic::Status> {
    suite
        .posts()
        .await
        .record_evaluation(with_token(
            pb::RecordEvaluationRequest {
                assignment: assignment.into(),
                evaluation: Some(pb::Evaluation {
                    month: Some(common::YearMonth { year, month }),
                    days_on_post: days,
                    hours_on_post: days * 4,
                    score,
                    ..Default::default()
                }),
            },
            &suite.clerk(),
        ))
        .await
        .map(|r| r.into_inner().evaluation.expect("evaluation"))
}

async fn close(suite: &Suite, year: i32, month: i32) -> Result<pb::CloseMonthResponse, tonic::Status> {
    suite
        .posts()
        .await
        .close_month(with_token(
            pb::CloseMonthRequest {
                region_prefix: "370402".into(),
                month: Some(common::YearMonth { year, month }),
                line_limit: 0,
            },
            &suite.clerk(),
        ))
        .await
        .map(|r| r.into_inner())
}

async fn welfare_post_claims(suite: &Suite) -> Vec<sub::Claim> {
    suite
        .subsidy()
        .await
        .list_claims(with_token(
            sub::ListClaimsRequest {
                source_system: "welfare-post".into(),
                ..Default::default()
            },
            &suite.clerk(),
        ))
        .await
        .expect("claims")
        .into_inner()
        .claims
}

async fn a_closed_month_becomes_one_claim_of_facts_at_subsidy_payment(backend: Backend) {
    let suite = Suite::start(backend).await;
    let (assignment, person, _) = holder(&suite).await;
    // March: on post from the 10th, 22 of 31 days covered; 16 days required, 20 worked.
    let recorded = evaluate(&suite, &assignment.name, 2025, 3, 20, 85)
        .await
        .expect("evaluated");
    assert!(recorded.passed);
    // Not a month before the contract, nor one in the future.
    let before = evaluate(&suite, &assignment.name, 2025, 2, 10, 90)
        .await
        .expect_err("before the contract");
    assert_eq!(reason(&before), "FIELD_INVALID");
    let future = evaluate(&suite, &assignment.name, 2025, 5, 10, 90)
        .await
        .expect_err("future");
    assert_eq!(reason(&future), "FIELD_INVALID");
    // March cannot be closed while it runs.
    let running = close(&suite, 2025, 3).await.expect_err("month not over");
    assert_eq!(reason(&running), "FIELD_INVALID");

    suite.set_day(2025, 4, 2);
    let closed = close(&suite, 2025, 3).await.expect("closed");
    assert_eq!(
        (closed.holder_count, closed.claim_count, closed.pending_count),
        (1, 1, 0),
        "{closed:?}"
    );
    // The line shows the decision the call brought back, without waiting for the claim feed.
    assert_eq!(closed.lines[0].message, "已核定补贴 32258 分", "{closed:?}");
    let claims = welfare_post_claims(&suite).await;
    assert_eq!(claims.len(), 1);
    let claim = &claims[0];
    assert_eq!(claim.person, person);
    assert_eq!(
        claim.source.as_ref().map(|s| s.reference.clone()),
        Some(format!("{}/months/2025-03", assignment.name))
    );
    // The policy computed the amount from the facts: 500 yuan × 20 / 31 days.
    let decision = claim.decision.as_ref().expect("decision");
    assert_eq!(decision.outcome, sub::DecisionOutcome::Eligible as i32, "{decision:?}");
    assert_eq!(decision.amount.as_ref().map(|m| m.fen), Some(32_258));

    // Closing again creates nothing twice.
    let again = close(&suite, 2025, 3).await.expect("closed again");
    assert_eq!((again.holder_count, again.claim_count), (1, 1));
    assert_eq!(welfare_post_claims(&suite).await.len(), 1);

    // April with a failed evaluation: no claim, the reason recorded here.
    evaluate(&suite, &assignment.name, 2025, 4, 22, 40)
        .await
        .expect("evaluated");
    suite.set_day(2025, 5, 3);
    let april = close(&suite, 2025, 4).await.expect("closed");
    assert_eq!((april.claim_count, april.no_claim_count), (0, 1));
    assert_eq!(april.lines[0].outcome, pb::MonthOutcome::EvaluationFailed as i32);
    assert_eq!(welfare_post_claims(&suite).await.len(), 1);
    // The village committee corrects April's score; closing April again sends its claim. March,
    // sent already, cannot be corrected here.
    let april_record = suite
        .posts()
        .await
        .record_evaluation(with_token(
            pb::RecordEvaluationRequest {
                assignment: assignment.name.clone(),
                evaluation: Some(pb::Evaluation {
                    month: Some(common::YearMonth { year: 2025, month: 4 }),
                    days_on_post: 22,
                    hours_on_post: 88,
                    score: 75,
                    etag: "\"1\"".into(),
                    ..Default::default()
                }),
            },
            &suite.clerk(),
        ))
        .await
        .expect("corrected")
        .into_inner()
        .evaluation
        .expect("evaluation");
    assert!(april_record.passed);
    let again = close(&suite, 2025, 4).await.expect("closed again");
    assert_eq!((again.claim_count, again.no_claim_count), (1, 0));
    assert_eq!(welfare_post_claims(&suite).await.len(), 2);
    let sent = evaluate(&suite, &assignment.name, 2025, 3, 22, 90)
        .await
        .expect_err("March was sent");
    assert_eq!(reason(&sent), "STATE_CONFLICT");

    // December 2025, closed in January: the policy version that covers the month decides it,
    // though it is no longer in force on the day of closing.
    suite.set_day(2026, 1, 5);
    evaluate(&suite, &assignment.name, 2025, 12, 22, 90)
        .await
        .expect("evaluated");
    let december = close(&suite, 2025, 12).await.expect("closed");
    assert_eq!((december.claim_count, december.refused_count), (1, 0), "{december:?}");
    assert_eq!(welfare_post_claims(&suite).await.len(), 3);
}

/// A suite with one holder whose March (22 days, score 90) is evaluated, on 2 April.
async fn march_to_close(backend: Backend) -> Suite {
    let suite = Suite::start(backend).await;
    let (assignment, _, _) = holder(&suite).await;
    evaluate(&suite, &assignment.name, 2025, 3, 22, 90)
        .await
        .expect("evaluated");
    suite.set_day(2025, 4, 2);
    suite
}

async fn a_month_closed_while_subsidy_payment_is_down_completes_when_it_returns(backend: Backend) {
    let suite = march_to_close(backend).await;
    suite.subsidy_link.cut();
    let closed = close(&suite, 2025, 3).await.expect("closed with subsidy payment down");
    assert_eq!(
        (closed.holder_count, closed.claim_count, closed.pending_count),
        (1, 0, 1)
    );
    assert_eq!(closed.lines[0].outcome, pb::MonthOutcome::Pending as i32);
    suite.subsidy_link.restore();
    // The service's job sends what was left pending.
    let sent = suite
        .app
        .send_pending(&CallContext::own(), None, "", "", false, None)
        .await
        .expect("sent");
    assert_eq!(sent, 1);
    let after = close(&suite, 2025, 3).await.expect("closed");
    assert_eq!((after.claim_count, after.pending_count), (1, 0));
    assert_eq!(welfare_post_claims(&suite).await.len(), 1);
}

/// A clerk's retry while the first call still runs: each holder's claim goes once, and both
/// answers show it.
async fn a_month_closed_twice_at_once_sends_each_claim_once(backend: Backend) {
    let suite = march_to_close(backend).await;
    let (first, second) = tokio::join!(close(&suite, 2025, 3), close(&suite, 2025, 3));
    for closed in [first.expect("first"), second.expect("second")] {
        assert_eq!(
            (closed.holder_count, closed.claim_count, closed.pending_count),
            (1, 1, 0),
            "{closed:?}"
        );
        assert_eq!(closed.lines[0].outcome, pb::MonthOutcome::ClaimSubmitted as i32);
    }
    assert_eq!(welfare_post_claims(&suite).await.len(), 1);
}

async fn a_revoked_category_on_identitys_feed_proposes_an_exit(backend: Backend) {
    let suite = Suite::start(backend).await;
    let (assignment, _, certification) = holder(&suite).await;
    suite
        .identity()
        .await
        .revoke_category(with_token(
            id::RevokeCategoryRequest {
                name: certification,
                valid_to: Some(date(2025, 3, 31)),
                annul: false,
                document_reference: "市中乡振〔2025〕9号".into(),
                request_id: String::new(),
            },
            &suite.reviewer(),
        ))
        .await
        .expect("revoked");
    let proposals = awaited_exit_proposals(&suite).await;
    assert_eq!(proposals.len(), 1, "the follower opened an exit proposal");
    let proposal = &proposals[0];
    assert_eq!(proposal.assignment, assignment.name);
    assert_eq!(proposal.reason, pb::ExitReason::CategoryRevoked as i32);
    assert_eq!(proposal.effective_date, Some(date(2025, 3, 31)));

    let exited = suite
        .posts()
        .await
        .exit_holder(with_token(
            pb::ExitHolderRequest {
                name: assignment.name.clone(),
                etag: assignment.etag.clone(),
                reason: pb::ExitReason::CategoryRevoked as i32,
                last_day: Some(date(2025, 3, 31)),
                note: "脱贫人口身份于2025年3月31日终止".into(),
                exit_proposal: proposal.name.clone(),
            },
            &suite.clerk(),
        ))
        .await
        .expect("exited")
        .into_inner()
        .assignment
        .expect("assignment");
    assert_eq!(exited.state, pb::AssignmentState::Ended as i32);
    assert_eq!(exited.last_day, Some(date(2025, 3, 31)));
    // The slot is free from April; an exit for the same proposal again is refused.
    let again = suite
        .posts()
        .await
        .exit_holder(with_token(
            pb::ExitHolderRequest {
                name: assignment.name.clone(),
                etag: exited.etag.clone(),
                reason: pb::ExitReason::CategoryRevoked as i32,
                last_day: Some(date(2025, 3, 31)),
                note: "重复办理".into(),
                exit_proposal: String::new(),
            },
            &suite.clerk(),
        ))
        .await
        .expect_err("ended already");
    assert_eq!(reason(&again), "STATE_CONFLICT");
}

/// A holder who becomes a village cadre, two cleaning posts of one township paid differently
/// and a village over its configured need show as signals naming their records; the stats count
/// the posts and the holder.
async fn signals_and_stats_name_what_they_rest_on(backend: Backend) {
    let suite = Suite::start(backend).await;
    let (assignment, person, _) = holder(&suite).await;
    // The holder is elected to the village committee after being hired.
    suite
        .posts()
        .await
        .register_village_cadre(with_token(
            pb::RegisterVillageCadreRequest {
                village_cadre: Some(pb::VillageCadre {
                    village: Some(common::RegionCode {
                        code: crate::support::VILLAGE.into(),
                        display_name: String::new(),
                    }),
                    person: person.clone(),
                    office: "村委会委员".into(),
                    term_start: Some(date(2025, 3, 20)),
                    ..Default::default()
                }),
                request_id: crate::support::uuid(),
            },
            &suite.clerk(),
        ))
        .await
        .expect("cadre");
    // A second cleaning post in the township at another standard.
    suite
        .posts()
        .await
        .create_post(with_token(
            pb::CreatePostRequest {
                post: Some(pb::Post {
                    monthly_standard: Some(common::Money { fen: 60_000 }),
                    ..crate::support::post_draft(1)
                }),
                request_id: crate::support::uuid(),
            },
            &suite.clerk(),
        ))
        .await
        .expect("second post");
    // The village needs one post only.
    suite
        .posts()
        .await
        .update_parameter(with_token(
            pb::UpdateParameterRequest {
                parameter: Some(common::Parameter {
                    key: "welfare_post.village_post_need".into(),
                    region_prefix: crate::support::VILLAGE.into(),
                    valid_from: Some(date(2025, 1, 1)),
                    value: 1,
                    source_document: "孟庄镇公益性岗位需求核定".into(),
                    ..Default::default()
                }),
                update_mask: None,
                allow_missing: true,
            },
            &suite.token(
                "reviewer-agri",
                bangfu_platform::auth::Department::Agri,
                bangfu_platform::auth::Role::Reviewer,
                "370402",
            ),
        ))
        .await
        .expect("need");
    suite.set_day(2025, 4, 2);
    let signals = suite
        .posts()
        .await
        .list_fraud_signals(with_token(
            pb::ListFraudSignalsRequest {
                region_prefix: "370402".into(),
                kind: 0,
                as_of: None,
            },
            &suite.clerk(),
        ))
        .await
        .expect("signals")
        .into_inner()
        .signals;
    let kinds: Vec<i32> = signals.iter().map(|s| s.kind).collect();
    assert_eq!(
        kinds,
        vec![
            pb::FraudSignalKind::CadreRelative as i32,
            pb::FraudSignalKind::OverNeed as i32,
            pb::FraudSignalKind::UnevenPay as i32,
        ],
        "{signals:?}"
    );
    assert!(signals[0].resources.contains(&assignment.name), "{:?}", signals[0]);
    assert!(signals[0].resources.iter().any(|r| r.starts_with("villageCadres/")));
    assert_eq!(signals[1].resources.len(), 2, "both posts of the village");
    assert_eq!(signals[2].region.as_ref().map(|r| r.code.as_str()), Some("370402001"));

    let stats = suite
        .posts()
        .await
        .get_post_stats(with_token(
            pb::GetPostStatsRequest {
                region_prefix: "370402".into(),
                year: 2025,
                as_of: Some(date(2025, 3, 31)),
            },
            &suite.clerk(),
        ))
        .await
        .expect("stats")
        .into_inner();
    let total = &stats.counts[0];
    assert_eq!((total.post_count, total.holder_count), (2, 1));
    assert_eq!((stats.persons_placed, stats.persons_on_post), (1, 1));
}

/// Zaozhuang's finance caps the post subsidy at `months` months from 2025: a new version of the
/// shipped policy (which has no cap), made by the administrator and published by a reviewer.
async fn cap_post_subsidy(suite: &Suite, months: i64) {
    let mut file: serde_json::Value = serde_json::from_str(include_str!(
        "../../../subsidy-payment/policies/zz-welfare-post-2021.json"
    ))
    .expect("policy file");
    let version = &mut file["version"];
    version["validFrom"] = serde_json::json!({ "year": 2025, "month": 1, "day": 1 });
    version["changeNote"] = serde_json::json!(format!("自2025年起岗位补贴累计不超过{months}个月"));
    version["caps"] = serde_json::json!({ "maxMonths": months });
    version["facts"].as_array_mut().expect("facts").push(serde_json::json!({
        "name": "history.months_granted",
        "type": "FACT_TYPE_INTEGER",
        "source": "FACT_SOURCE_HISTORY",
        "description": "本补贴项目组此前已核发的月数"
    }));
    for example in version["examples"].as_array_mut().expect("examples") {
        example["facts"]
            .as_array_mut()
            .expect("facts")
            .push(serde_json::json!({ "name": "history.months_granted", "value": { "integerValue": 0 } }));
    }
    let request = bangfu_subsidy_payment::grpc::policy_files::parse("cap", &file.to_string()).expect("parse");
    publish_policy_version(
        suite.server.channel().await,
        "policies/zz-welfare-post-2021",
        request.version.expect("version"),
        &suite.token("admin", Department::Finance, Role::Admin, "*"),
        &suite.token("reviewer-finance", Department::Finance, Role::Reviewer, "*"),
    )
    .await;
}

/// The open exit proposals the clerk sees once there is one; the followers poll their feeds,
/// so this gives them up to 30 s on a loaded machine.
async fn awaited_exit_proposals(suite: &Suite) -> Vec<pb::ExitProposal> {
    let mut proposals = Vec::new();
    for _ in 0..300 {
        proposals = suite
            .posts()
            .await
            .list_exit_proposals(with_token(
                pb::ListExitProposalsRequest {
                    state: pb::ExitProposalState::Open as i32,
                    ..Default::default()
                },
                &suite.clerk(),
            ))
            .await
            .expect("proposals")
            .into_inner()
            .exit_proposals;
        if !proposals.is_empty() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    proposals
}

/// A month past the subsidy's cap is refused by subsidy payment (CAP_REACHED); its claim feed
/// brings the refusal back, the month line shows it, and the holder gets an exit proposal.
async fn a_month_past_the_subsidy_cap_proposes_an_exit(backend: Backend) {
    let suite = Suite::start(backend).await;
    let (assignment, _, _) = holder(&suite).await;
    cap_post_subsidy(&suite, 1).await;
    evaluate(&suite, &assignment.name, 2025, 3, 20, 85)
        .await
        .expect("evaluated");
    suite.set_day(2025, 4, 2);
    close(&suite, 2025, 3).await.expect("March closed");
    evaluate(&suite, &assignment.name, 2025, 4, 22, 85)
        .await
        .expect("evaluated");
    suite.set_day(2025, 5, 2);
    close(&suite, 2025, 4).await.expect("April closed");
    let claims = welfare_post_claims(&suite).await;
    assert_eq!(claims.len(), 2);
    let proposals = awaited_exit_proposals(&suite).await;
    assert_eq!(proposals.len(), 1, "the claim follower opened an exit proposal");
    let proposal = &proposals[0];
    assert_eq!(proposal.assignment, assignment.name);
    assert_eq!(proposal.reason, pb::ExitReason::CapOrRetirement as i32);
    assert_eq!(proposal.effective_date, Some(date(2025, 3, 31)));
    // April's line says why its claim was refused; March's that it was granted.
    let lines = close(&suite, 2025, 4).await.expect("April shown again").lines;
    assert!(lines[0].message.contains("CAP_REACHED"), "{lines:?}");
    let lines = close(&suite, 2025, 3).await.expect("March shown again").lines;
    assert!(lines[0].message.contains("已核定"), "{lines:?}");
}

/// The first line of a month as CloseMonth shows it, once its message is `message`; the
/// claim follower polls its feed and backs off after errors, so this gives it up to 60 s on a
/// loaded machine.
async fn awaited_line(suite: &Suite, year: i32, month: i32, message: &str) -> pb::MonthLine {
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    loop {
        let line = close(suite, year, month)
            .await
            .expect("shown again")
            .lines
            .into_iter()
            .next()
            .expect("a line");
        if line.message == message || std::time::Instant::now() >= deadline {
            return line;
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}

/// A month's claim through the whole money path at subsidy payment — the holder's account,
/// a batch, its notice, approval, the disbursement file and the bank's results — and back:
/// the claim feed brings the payment to posts, and the month line says it was paid.
async fn a_month_paid_by_the_bank_shows_as_paid_on_its_line(backend: Backend) {
    let suite = Suite::start(backend).await;
    let (assignment, person, _) = holder(&suite).await;
    evaluate(&suite, &assignment.name, 2025, 3, 20, 85)
        .await
        .expect("evaluated");
    suite.set_day(2025, 4, 2);
    let closed = close(&suite, 2025, 3).await.expect("closed");
    assert_eq!(closed.lines[0].message, "已核定补贴 32258 分", "{closed:?}");

    let finance = suite.token("clerk-finance", Department::Finance, Role::Clerk, "3704");
    let mut subsidy = suite.subsidy().await;
    let fund = subsidy
        .list_funds(with_token(sub::ListFundsRequest::default(), &finance))
        .await
        .expect("funds")
        .into_inner()
        .funds
        .remove(0)
        .name;
    subsidy
        .register_payee_account(with_token(
            sub::RegisterPayeeAccountRequest {
                payee_account: Some(sub::PayeeAccount {
                    owner: Some(sub::Payee {
                        payee: Some(sub::payee::Payee::Person(person.clone())),
                    }),
                    kind: sub::PayeeAccountKind::SocialSecurityCard as i32,
                    account_number: "6217000055550101".into(),
                    holder_name: "张三".into(),
                    holder_citizen_id: citizen_id("37040219700315101"),
                    bank_name: "中国农业银行枣庄市中支行".into(),
                    ..Default::default()
                }),
                request_id: String::new(),
            },
            &finance,
        ))
        .await
        .expect("account");
    let paid = pay_through_the_bank(
        suite.server.channel().await,
        &fund,
        "370402",
        &finance,
        &suite.token("reviewer-approver", Department::Finance, Role::Reviewer, "3704"),
        // The notice runs its seven days from today.
        |noticed| {
            assert_eq!(noticed.control_count, 1, "{noticed:?}");
            suite.set_day(2025, 4, 20);
        },
        "2025-04-21",
    )
    .await;
    assert_eq!(paid.paid_count, 1);

    let line = awaited_line(&suite, 2025, 3, "已发放 32258 分").await;
    assert_eq!(
        line.message, "已发放 32258 分",
        "the payment came back through the claim feed"
    );
    assert_eq!(line.outcome, pb::MonthOutcome::ClaimSubmitted as i32);
}

on_both_backends!(
    a_closed_month_becomes_one_claim_of_facts_at_subsidy_payment,
    a_month_past_the_subsidy_cap_proposes_an_exit,
    a_month_paid_by_the_bank_shows_as_paid_on_its_line,
    a_month_closed_while_subsidy_payment_is_down_completes_when_it_returns,
    a_month_closed_twice_at_once_sends_each_claim_once,
    a_revoked_category_on_identitys_feed_proposes_an_exit,
    signals_and_stats_name_what_they_rest_on
);
