//! A trainee's completion claims the training subsidy, paid to the provider, and the living
//! allowance during training, 1.5 × the local rural minimum-living standard, paid to the person
//! (Chaoyang §四(三)), each once.

use bangfu_platform::auth::{Department, Role};
use bangfu_platform::testing::{Backend, publish_policy_version};
use bangfu_proto::common::v1 as common;
use bangfu_proto::jobs::v1 as pb;
use bangfu_proto::subsidy::v1 as sub;

use crate::support::*;

/// Chaoyang's finance enters its rural minimum-living standard for 2024 (the shipped policy
/// leaves the figure to each region): a new version of the living-allowance policy, made by the
/// administrator and published by a finance reviewer.
async fn enter_minimum_living_standard(suite: &Suite, monthly_fen: i64) {
    let mut request = bangfu_subsidy_payment::grpc::policy_files::parse(
        "cy-training-living-2021.json",
        include_str!("../../../subsidy-payment/policies/cy-training-living-2021.json"),
    )
    .expect("policy file");
    let version = request.version.as_mut().expect("version");
    version.change_note = "录入朝阳市2024年农村最低生活保障标准".into();
    version.standards_tables[0].rows.push(sub::StandardsRow {
        region_prefix: "2113".into(),
        year: 2024,
        value: money(monthly_fen),
        source: "朝阳市民政局公布的2024年农村低保标准".into(),
    });
    publish_policy_version(
        suite.server.channel().await,
        "policies/cy-training-living-2021",
        request.version.expect("version"),
        &suite.token("admin", Department::Finance, Role::Admin, "*"),
        &suite.token("reviewer-finance", Department::Finance, Role::Reviewer, "*"),
    )
    .await;
}

fn course_draft() -> pb::TrainingCourse {
    pb::TrainingCourse {
        display_name: "2024年第3期养老护理员培训班".into(),
        provider: "双塔区职业技能培训学校".into(),
        provider_credit_code: CREDIT_CODES[2].into(),
        occupation: Some(pb::Occupation {
            code: "4-10-01-05".into(),
            display_name: "养老护理员".into(),
        }),
        region: region("211302"),
        schedule: Some(common::Period {
            first_day: Some(date(2024, 5, 6)),
            last_day: Some(date(2024, 5, 17)),
        }),
        days: 10,
        place: "双塔区职业技能培训中心".into(),
        training_subsidy_policy: "cy-training-subsidy-2021".into(),
        training_subsidy_standard: money(120_000),
        living_allowance_policy: "cy-training-living-2021".into(),
        ..Default::default()
    }
}

async fn create_course(
    suite: &Suite,
    token: &str,
    course: pb::TrainingCourse,
) -> Result<pb::TrainingCourse, tonic::Status> {
    suite
        .jobs()
        .await
        .create_training_course(with_token(
            pb::CreateTrainingCourseRequest {
                training_course: Some(course),
                request_id: uuid(),
            },
            token,
        ))
        .await
        .map(|r| r.into_inner().training_course.expect("course"))
}

async fn enrol(suite: &Suite, token: &str, course: &str, person: &str) -> pb::TraineeEnrolment {
    suite
        .jobs()
        .await
        .enrol_trainee(with_token(
            pb::EnrolTraineeRequest {
                parent: course.into(),
                enrolment: Some(pb::TraineeEnrolment {
                    person: person.into(),
                    ..Default::default()
                }),
                request_id: uuid(),
            },
            token,
        ))
        .await
        .expect("enrolled")
        .into_inner()
        .enrolment
        .expect("enrolment")
}

async fn finish(
    suite: &Suite,
    token: &str,
    enrolment: &str,
    outcome: pb::EnrolmentState,
) -> Result<pb::TraineeEnrolment, tonic::Status> {
    suite
        .jobs()
        .await
        .record_training_completion(with_token(
            pb::RecordTrainingCompletionRequest {
                name: enrolment.into(),
                outcome: outcome as i32,
                certificate: if outcome == pb::EnrolmentState::Completed {
                    "S000021130000244000123".into()
                } else {
                    String::new()
                },
            },
            token,
        ))
        .await
        .map(|r| r.into_inner().enrolment.expect("enrolment"))
}

async fn a_completion_claims_the_training_subsidy_and_living_allowance_once(backend: Backend) {
    let suite = Suite::start(backend).await;
    suite.set_day(2024, 5, 2);
    suite
        .fund_of_year(sub::FundSource::EmploymentSubsidy, "2113", 2024)
        .await;
    let clerk = suite.token("clerk-hr-cy", Department::Hr, Role::Clerk, "2113");
    let course = create_course(&suite, &clerk, course_draft()).await.expect("course");
    assert_eq!(course.training_subsidy_standard.map(|m| m.fen), Some(120_000));

    let target = suite
        .person(
            "孙秀英",
            CHAOYANG_VILLAGE,
            "19800404",
            "046",
            common::LaborCapacity::Full,
        )
        .await;
    suite.certify(&target, common::PersonCategory::PovertyAlleviated).await;
    let other = suite
        .person(
            "钱志强",
            CHAOYANG_VILLAGE,
            "19850505",
            "057",
            common::LaborCapacity::Full,
        )
        .await;
    let dropped = suite
        .person(
            "周玉梅",
            CHAOYANG_VILLAGE,
            "19790606",
            "068",
            common::LaborCapacity::Full,
        )
        .await;
    suite.certify(&dropped, common::PersonCategory::PovertyAlleviated).await;
    let target_enrolment = enrol(&suite, &clerk, &course.name, &target).await;
    let other_enrolment = enrol(&suite, &clerk, &course.name, &other).await;
    let dropped_enrolment = enrol(&suite, &clerk, &course.name, &dropped).await;

    suite.set_day(2024, 5, 20);
    finish(&suite, &clerk, &dropped_enrolment.name, pb::EnrolmentState::Dropped)
        .await
        .expect("dropped");
    for enrolment in [&target_enrolment, &other_enrolment] {
        finish(&suite, &clerk, &enrolment.name, pb::EnrolmentState::Completed)
            .await
            .expect("completed");
    }
    // A completion recorded twice is refused and claims nothing more.
    let again = finish(&suite, &clerk, &target_enrolment.name, pb::EnrolmentState::Completed)
        .await
        .expect_err("completed already");
    assert_eq!(reason(&again), "STATE_CONFLICT");

    let claims = settled_claims(&suite, &clerk, &course.name, 4).await;
    assert_eq!(claims.len(), 4, "{claims:?}");
    let claim = |enrolment: &pb::TraineeEnrolment, kind: &str| {
        let reference = format!("{}/{kind}", enrolment.name);
        claims
            .iter()
            .find(|c| c.reference == reference)
            .unwrap_or_else(|| panic!("no claim {reference}: {claims:?}"))
            .clone()
    };
    let state_and_amount = |c: &pb::SubsidyClaim| {
        let progress = c.progress.clone().expect("progress");
        (progress.state, progress.amount.map(|m| m.fen).unwrap_or(0))
    };
    // The provider is paid the project's standard; the trainee 520 yuan × 1.5 ÷ 30 × 10 days.
    let subsidy = claim(&target_enrolment, "trainingSubsidy");
    assert_eq!(subsidy.payee, course.name);
    assert_eq!(subsidy.person, target);
    assert_eq!(
        state_and_amount(&subsidy),
        (pb::ClaimProgressState::Granted as i32, 120_000)
    );
    // Chaoyang has not entered its rural minimum-living standard yet: the allowance is refused
    // for want of it. Once finance enters the figure, the claim is decided again and granted:
    // 520 yuan × 1.5 ÷ 30 × 10 days.
    let allowance = claim(&target_enrolment, "livingAllowance");
    assert_eq!(allowance.payee, target);
    let progress = allowance.progress.clone().expect("progress");
    assert_eq!(progress.state, pb::ClaimProgressState::Refused as i32, "{progress:?}");
    assert!(progress.detail.contains("STANDARD_MISSING"), "{progress:?}");
    enter_minimum_living_standard(&suite, 52_000).await;
    let finance = suite.token("clerk-finance-cy", Department::Finance, Role::Clerk, "2113");
    let mut subsidy_service = suite.subsidy().await;
    let stored = subsidy_service
        .get_claim(with_token(
            sub::GetClaimRequest {
                name: progress.claim.clone(),
            },
            &finance,
        ))
        .await
        .expect("claim")
        .into_inner()
        .claim
        .expect("claim");
    subsidy_service
        .reevaluate_claim(with_token(
            sub::ReevaluateClaimRequest {
                name: progress.claim.clone(),
                note: "朝阳市2024年农村低保标准已录入".into(),
                etag: stored.etag,
            },
            &finance,
        ))
        .await
        .expect("decided again");
    let mut granted = (0, 0);
    for _ in 0..100 {
        let claims = settled_claims(&suite, &clerk, &course.name, 4).await;
        let again = claims
            .iter()
            .find(|c| c.reference == allowance.reference)
            .expect("allowance");
        granted = state_and_amount(again);
        if granted.0 == pb::ClaimProgressState::Granted as i32 {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    assert_eq!(granted, (pb::ClaimProgressState::Granted as i32, 26_000));
    // A trainee who is no target person completes, and subsidy payment refuses both claims.
    for kind in ["trainingSubsidy", "livingAllowance"] {
        let refused = claim(&other_enrolment, kind);
        let progress = refused.progress.clone().expect("progress");
        assert_eq!(progress.state, pb::ClaimProgressState::Refused as i32, "{progress:?}");
        assert!(progress.detail.contains("NOT_TARGET_PERSON"), "{progress:?}");
    }
    // A trainee who dropped out claims nothing.
    assert!(!claims.iter().any(|c| c.person == dropped), "{claims:?}");

    // Subsidy payment holds the provider as the payee of the training subsidy.
    let stored = suite
        .subsidy()
        .await
        .get_claim(with_token(
            sub::GetClaimRequest {
                name: subsidy.progress.clone().expect("progress").claim,
            },
            &suite.token("reviewer-finance", Department::Finance, Role::Reviewer, "*"),
        ))
        .await
        .expect("claim in subsidy payment")
        .into_inner()
        .claim
        .expect("claim");
    match stored.payee.and_then(|p| p.payee) {
        Some(sub::payee::Payee::Organization(organization)) => {
            assert_eq!(organization.display_name, "双塔区职业技能培训学校");
        }
        other => panic!("the provider should be paid: {other:?}"),
    }
}

async fn a_course_claiming_subsidies_needs_the_providers_registration_and_policies_in_force(backend: Backend) {
    let suite = Suite::start(backend).await;
    suite.set_day(2024, 5, 2);
    let clerk = suite.token("clerk-hr-cy", Department::Hr, Role::Clerk, "2113");
    let refused = create_course(
        &suite,
        &clerk,
        pb::TrainingCourse {
            provider_credit_code: "91350100M000100Y44".into(),
            ..course_draft()
        },
    )
    .await
    .expect_err("a wrong check character");
    assert_eq!(reason(&refused), "CREDIT_CODE_INVALID");
    assert_eq!(fields(&refused), vec!["training_course.provider_credit_code"]);
    let refused = create_course(
        &suite,
        &clerk,
        pb::TrainingCourse {
            training_subsidy_standard: None,
            ..course_draft()
        },
    )
    .await
    .expect_err("no standard");
    assert_eq!(fields(&refused), vec!["training_course.training_subsidy_standard"]);
    // The shipped policies end with 2025: a course ending in 2026 cannot claim under them.
    let refused = create_course(
        &suite,
        &clerk,
        pb::TrainingCourse {
            schedule: Some(common::Period {
                first_day: Some(date(2026, 1, 5)),
                last_day: Some(date(2026, 1, 16)),
            }),
            ..course_draft()
        },
    )
    .await
    .expect_err("policies out of force");
    assert_eq!(fields(&refused), vec!["training_course.training_subsidy_policy"]);
    // A course outside a subsidy project needs neither.
    let plain = create_course(
        &suite,
        &clerk,
        pb::TrainingCourse {
            provider_credit_code: String::new(),
            training_subsidy_policy: String::new(),
            training_subsidy_standard: None,
            living_allowance_policy: String::new(),
            ..course_draft()
        },
    )
    .await
    .expect("a course without subsidies");
    assert!(plain.training_subsidy_policy.is_empty());
}

bangfu_platform::on_both_backends!(
    a_completion_claims_the_training_subsidy_and_living_allowance_once,
    a_course_claiming_subsidies_needs_the_providers_registration_and_policies_in_force,
);
