//! Ranked matching: the best seekers for a posting and the best postings for a seeker, each with
//! its reasons and their weights, in the caller's scope, on today's facts from identity.

use bangfu_platform::auth::{Department, Role};
use bangfu_platform::testing::Backend;
use bangfu_proto::common::v1 as common;
use bangfu_proto::jobs::v1 as pb;

use crate::support::*;

struct Seekers {
    a: pb::Seeker,
    b: pb::Seeker,
    c: pb::Seeker,
    d: pb::Seeker,
}

/// Five seekers around a sewing job in 中心街街道 (see each line for what they score under the
/// default weights: distance 2500, intention 2000, skills 1500, wage 1500, capacity 1000,
/// priority 1500).
async fn seekers(suite: &Suite) -> Seekers {
    let clerk = suite.clerk();
    let city = suite.city_clerk();
    let seeker = |person: String, skills: &'static [&'static str], token: String| async move {
        suite
            .register(seeker_draft(&person, skills), &token)
            .await
            .expect("seeker")
    };
    // A: same township, weak labor, monitored at risk, one of two skills: 2250 + 2000 + 750 +
    // 1500 + 1000 + 1500 = 9000.
    let a = suite
        .person("张秀英", VILLAGE, "19800512", "024", common::LaborCapacity::Weak)
        .await;
    suite.certify(&a, common::PersonCategory::MonitoredAtRisk).await;
    // B: Xuecheng (same city, out of county though wanting local work — but naming the city,
    // written as the padded "370400", as a destination), poverty-alleviated, both skills:
    // 1500 + 2000 + 1500 + 1500 + 1000 + 1050 = 8550.
    let b = suite
        .person(
            "李桂兰",
            XUECHENG_VILLAGE,
            "19900101",
            "042",
            common::LaborCapacity::Full,
        )
        .await;
    suite.certify(&b, common::PersonCategory::PovertyAlleviated).await;
    // C: same township, not a target person, no skills: 2250 + 2000 + 0 + 1500 + 1000 + 0 = 6750.
    let c = suite
        .person("王建国", SAME_TOWNSHIP, "19850707", "051", common::LaborCapacity::Full)
        .await;
    // D: another township of the county, half labor (not taken), monitored at risk:
    // 2000 + 2000 + 0 + 1500 + 0 + 1500 = 7000.
    let d = suite
        .person("赵小红", OTHER_TOWNSHIP, "19780211", "062", common::LaborCapacity::Half)
        .await;
    suite.certify(&d, common::PersonCategory::MonitoredAtRisk).await;
    // F: 65 years old, past the job's 55: never recommended for it.
    let f = suite
        .person("孙老汉", VILLAGE, "19600101", "071", common::LaborCapacity::Full)
        .await;
    let seekers = Seekers {
        a: seeker(a, &["缝纫"], clerk.clone()).await,
        b: suite
            .register(
                pb::Seeker {
                    destination_regions: vec!["370400".into()],
                    ..seeker_draft(&b, &["缝纫", "熨烫"])
                },
                &city,
            )
            .await
            .expect("seeker"),
        c: seeker(c, &[], clerk.clone()).await,
        d: seeker(d, &[], clerk.clone()).await,
    };
    seeker(f, &["缝纫", "熨烫"], clerk).await;
    seekers
}

async fn recommend_seekers(suite: &Suite, posting: &str, token: &str, size: i32) -> Vec<pb::SeekerRecommendation> {
    suite
        .jobs()
        .await
        .recommend_seekers(with_token(
            pb::RecommendSeekersRequest {
                posting: posting.into(),
                region_prefix: String::new(),
                page_size: size,
            },
            token,
        ))
        .await
        .expect("recommended")
        .into_inner()
        .recommendations
}

fn ranking(found: &[pb::SeekerRecommendation]) -> Vec<(String, i32)> {
    found
        .iter()
        .map(|r| (r.seeker.as_ref().expect("seeker").name.clone(), r.score))
        .collect()
}

async fn seekers_are_ranked_for_a_posting_with_their_reasons(backend: Backend) {
    let suite = Suite::start(backend).await;
    let workshop = suite.carrier(pb::CarrierKind::AssistanceWorkshop, 0).await;
    let posting = suite
        .create_posting(posting_draft(&workshop.name, "370402001"), &suite.clerk())
        .await
        .expect("posting");
    let s = seekers(&suite).await;

    // Shizhong's clerk sees Shizhong's seekers only; the best two of them are kept by the
    // database's ranking, not cut from a longer list.
    let found = recommend_seekers(&suite, &posting.name, &suite.clerk(), 2).await;
    assert_eq!(
        ranking(&found),
        vec![(s.a.name.clone(), 9000), (s.d.name.clone(), 7000)]
    );
    let found = recommend_seekers(&suite, &posting.name, &suite.clerk(), 0).await;
    assert_eq!(
        ranking(&found),
        vec![
            (s.a.name.clone(), 9000),
            (s.d.name.clone(), 7000),
            (s.c.name.clone(), 6750)
        ]
    );
    // The city's clerk sees Xuecheng's seeker too.
    let found = recommend_seekers(&suite, &posting.name, &suite.city_clerk(), 0).await;
    assert_eq!(
        ranking(&found),
        vec![
            (s.a.name.clone(), 9000),
            (s.b.name.clone(), 8550),
            (s.d.name.clone(), 7000),
            (s.c.name.clone(), 6750),
        ]
    );

    // Each reason with its weight, fit and points, in factor order.
    let best = &found[0];
    let reasons: Vec<(i32, i32, i32, i32)> = best
        .reasons
        .iter()
        .map(|r| (r.factor, r.weight_bp, r.fit_bp, r.points))
        .collect();
    assert_eq!(
        reasons,
        vec![
            (pb::MatchFactor::Distance as i32, 2500, 9000, 2250),
            (pb::MatchFactor::Intention as i32, 2000, 10_000, 2000),
            (pb::MatchFactor::Skills as i32, 1500, 5000, 750),
            (pb::MatchFactor::Wage as i32, 1500, 10_000, 1500),
            (pb::MatchFactor::LaborCapacity as i32, 1000, 10_000, 1000),
            (pb::MatchFactor::TargetPriority as i32, 1500, 10_000, 1500),
        ]
    );
    assert_eq!(best.reasons[0].explanation, "同一乡镇（街道）");
    assert_eq!(best.reasons[2].explanation, "掌握 1/2 项技能");
    assert_eq!(best.seeker.as_ref().map(|s| s.display_name.as_str()), Some("张**"));

    // The weights are parameters: with no weight on priority, the township's seeker without
    // skills passes the half-labor one.
    suite.parameter("jobs.weight_priority_bp", "370402", 0).await;
    let found = recommend_seekers(&suite, &posting.name, &suite.clerk(), 0).await;
    assert_eq!(
        ranking(&found),
        vec![
            (s.a.name.clone(), 7500),
            (s.c.name.clone(), 6750),
            (s.d.name.clone(), 5500)
        ]
    );
    assert_eq!(found[0].reasons[5].weight_bp, 0);
}

async fn postings_are_ranked_for_a_seeker_among_those_open_and_visible(backend: Backend) {
    let suite = Suite::start(backend).await;
    let clerk = suite.clerk();
    let workshop = suite.carrier(pb::CarrierKind::AssistanceWorkshop, 0).await;
    let near = suite
        .create_posting(posting_draft(&workshop.name, "370402001"), &clerk)
        .await
        .expect("posting");
    let closed = suite
        .create_posting(posting_draft(&workshop.name, VILLAGE), &clerk)
        .await
        .expect("posting");
    suite
        .jobs()
        .await
        .close_posting(with_token(
            pb::ClosePostingRequest {
                name: closed.name.clone(),
                reason: "已招满".into(),
                etag: closed.etag.clone(),
            },
            &clerk,
        ))
        .await
        .expect("closed");
    // Xuecheng's posting is outside Shizhong's scope and not shared.
    let city = suite.city_clerk();
    let xuecheng = suite
        .jobs()
        .await
        .create_carrier(with_token(
            pb::CreateCarrierRequest {
                carrier: Some(pb::Carrier {
                    region: region(XUECHENG_VILLAGE),
                    ..carrier_draft(pb::CarrierKind::Employer, CREDIT_CODES[1])
                }),
                request_id: uuid(),
            },
            &city,
        ))
        .await
        .expect("carrier")
        .into_inner()
        .carrier
        .expect("carrier");
    suite
        .create_posting(posting_draft(&xuecheng.name, XUECHENG_VILLAGE), &city)
        .await
        .expect("posting");
    // Chongqing's job is shared across regions: every county sees it.
    let chongqing = suite.token("clerk-hr-cq", Department::Hr, Role::Clerk, "50");
    let cq_carrier = suite
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
        .expect("carrier")
        .into_inner()
        .carrier
        .expect("carrier");
    let shared = suite
        .create_posting(
            pb::Posting {
                shared_across_regions: true,
                skills: vec!["缝纫".into()],
                ..posting_draft(&cq_carrier.name, "500101")
            },
            &chongqing,
        )
        .await
        .expect("posting");

    let person = suite
        .person("张秀英", VILLAGE, "19800512", "024", common::LaborCapacity::Weak)
        .await;
    suite.certify(&person, common::PersonCategory::MonitoredAtRisk).await;
    let seeker = suite
        .register(seeker_draft(&person, &["缝纫"]), &clerk)
        .await
        .expect("seeker");
    let found = suite
        .jobs()
        .await
        .recommend_postings(with_token(
            pb::RecommendPostingsRequest {
                seeker: seeker.name.clone(),
                page_size: 0,
            },
            &clerk,
        ))
        .await
        .expect("recommended")
        .into_inner();
    assert_eq!(found.as_of, Some(date(2025, 3, 2)));
    let ranking: Vec<(String, i32)> = found
        .recommendations
        .iter()
        .map(|r| (r.posting.as_ref().expect("posting").name.clone(), r.score))
        .collect();
    // The shared job: elsewhere, not the wanted place, its one skill held, wage, capacity and
    // priority: 0 + 0 + 1500 + 1500 + 1000 + 1500.
    assert_eq!(ranking, vec![(near.name.clone(), 9000), (shared.name.clone(), 5500)]);
    assert_eq!(
        found.recommendations[1].reasons[1].explanation,
        "不符合意向：岗位属省外就业"
    );

    // A certification revoked in identity lowers the seeker's priority at the next ranking.
    let certification = suite
        .person_in_identity(&person)
        .await
        .certifications
        .first()
        .map(|c| c.name.clone())
        .expect("certification");
    suite
        .identity()
        .await
        .revoke_category(with_token(
            bangfu_proto::identity::v1::RevokeCategoryRequest {
                name: certification,
                valid_to: Some(date(2025, 3, 1)),
                annul: false,
                document_reference: "枣乡振〔2025〕8号 风险消除".into(),
                request_id: String::new(),
            },
            &suite.token("reviewer-agri", Department::Agri, Role::Reviewer, "37"),
        ))
        .await
        .expect("revoked");
    let found = suite
        .jobs()
        .await
        .recommend_postings(with_token(
            pb::RecommendPostingsRequest {
                seeker: seeker.name.clone(),
                page_size: 1,
            },
            &clerk,
        ))
        .await
        .expect("recommended")
        .into_inner();
    assert_eq!(found.recommendations[0].score, 7500);
    assert_eq!(
        suite.get_seeker(&seeker.name).await.priority,
        pb::TargetPriority::Unspecified as i32
    );

    // A closed posting is not ranked: it takes no one.
    let refused = suite
        .jobs()
        .await
        .recommend_seekers(with_token(
            pb::RecommendSeekersRequest {
                posting: closed.name.clone(),
                ..Default::default()
            },
            &clerk,
        ))
        .await
        .expect_err("closed");
    assert_eq!(reason(&refused), "POSTING_CLOSED");
}

async fn a_certification_made_in_identity_reaches_the_seekers_priority(backend: Backend) {
    let suite = Suite::start(backend).await;
    let person = suite
        .person("张秀英", VILLAGE, "19800512", "024", common::LaborCapacity::Weak)
        .await;
    let seeker = suite
        .register(seeker_draft(&person, &["缝纫"]), &suite.clerk())
        .await
        .expect("seeker");
    assert_eq!(seeker.priority, pb::TargetPriority::Unspecified as i32);
    // Certified after registration: identity's feed tells the service, whose job reads the
    // person again.
    suite.certify(&person, common::PersonCategory::MonitoredAtRisk).await;
    let mut refreshed = 0;
    for _ in 0..100 {
        refreshed = suite.app.refresh_stale_seekers().await.expect("job");
        if refreshed > 0 {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    assert_eq!(refreshed, 1, "the feed marked the seeker to be read again");
    assert_eq!(
        suite.get_seeker(&seeker.name).await.priority,
        pb::TargetPriority::MonitoredAtRisk as i32
    );
    assert_eq!(suite.app.refresh_stale_seekers().await.expect("job"), 0);
}

bangfu_platform::on_both_backends!(
    a_certification_made_in_identity_reaches_the_seekers_priority,
    seekers_are_ranked_for_a_posting_with_their_reasons,
    postings_are_ranked_for_a_seeker_among_those_open_and_visible,
);
