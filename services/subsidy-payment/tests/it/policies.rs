//! The policy catalog: shipped policies loaded and in force, rules checked by their examples,
//! versions published by a second subject.

use bangfu_platform::testing::with_token;
use bangfu_proto::common::v1 as common;
use bangfu_proto::subsidy::v1 as pb;

use crate::on_both_backends;
use crate::support::{Backend, Suite, date, integer_fact, join_all, month, reason};

/// A one-time 300-yuan subsidy for completing a course of at least 5 days.
fn course_subsidy(amount_rule: &str, expected_fen: i64) -> pb::CreatePolicyRequest {
    pb::CreatePolicyRequest {
        policy: Some(pb::Policy {
            code: "sz-course-2025".into(),
            title: "培训结业补贴（市中区）".into(),
            policy_group: "training-completion".into(),
            payee_kind: pb::PayeeKind::Person as i32,
            period_kind: pb::PeriodKind::OneTime as i32,
            ..Default::default()
        }),
        version: Some(pb::PolicyVersion {
            source_document: Some(pb::SourceDocument {
                document_number: "市中人社〔2025〕3号".into(),
                title: "关于开展脱贫劳动力技能培训的通知".into(),
                article: "§三".into(),
                issuer: "枣庄市市中区人力资源和社会保障局".into(),
                issue_date: None,
            }),
            issuing_region_prefix: "370402".into(),
            valid_from: Some(date(2025, 1, 1)),
            valid_to: Some(date(2025, 12, 31)),
            fund_source: pb::FundSource::EmploymentSubsidy as i32,
            facts: vec![pb::FactDefinition {
                name: "course_days".into(),
                r#type: pb::FactType::Integer as i32,
                source: pb::FactSource::Claim as i32,
                description: "培训天数".into(),
                required: true,
                ..Default::default()
            }],
            conditions: vec![pb::PolicyCondition {
                expression: "facts.course_days >= 5".into(),
                reason: pb::RejectionReason::ConditionNotMet as i32,
                description: "培训不少于5天".into(),
            }],
            amount_rule: amount_rule.into(),
            examples: vec![
                pb::ExampleCase {
                    title: "结业".into(),
                    period: Some(month(2025, 3)),
                    region: "370402001013".into(),
                    facts: vec![integer_fact("course_days", 10)],
                    expected_outcome: pb::DecisionOutcome::Eligible as i32,
                    expected_amount: Some(common::Money { fen: expected_fen }),
                    expected_reasons: vec![],
                    assumed_standards: vec![],
                },
                pb::ExampleCase {
                    title: "天数不足".into(),
                    period: Some(month(2025, 3)),
                    region: "370402001013".into(),
                    facts: vec![integer_fact("course_days", 3)],
                    expected_outcome: pb::DecisionOutcome::Rejected as i32,
                    expected_amount: None,
                    expected_reasons: vec![pb::RejectionReason::ConditionNotMet as i32],
                    assumed_standards: vec![],
                },
            ],
            ..Default::default()
        }),
        request_id: String::new(),
        validate_only: false,
    }
}

async fn create(
    suite: &Suite,
    token: &str,
    request: pb::CreatePolicyRequest,
) -> Result<pb::CreatePolicyResponse, tonic::Status> {
    suite
        .subsidy()
        .await
        .create_policy(with_token(request, token))
        .await
        .map(|r| r.into_inner())
}

async fn rules_are_refused_unless_they_compile_and_pass_their_examples(backend: Backend) {
    let suite = Suite::start(backend).await;
    let author = suite.finance_reviewer("reviewer-author");

    let broken = create(&suite, &author, course_subsidy("30000 +", 30_000))
        .await
        .expect_err("does not compile");
    assert_eq!(broken.code(), tonic::Code::InvalidArgument);
    assert_eq!(reason(&broken), "POLICY_RULE_INVALID");

    let wrong = create(&suite, &author, course_subsidy("20000", 30_000))
        .await
        .expect_err("200 yuan, not 300");
    assert_eq!(reason(&wrong), "POLICY_EXAMPLE_FAILED");
    assert!(wrong.message().contains("结业"), "{}", wrong.message());

    let text = create(&suite, &author, course_subsidy("'三百元'", 30_000))
        .await
        .expect_err("not an integer");
    assert_eq!(reason(&text), "POLICY_EXAMPLE_FAILED");

    // A money cap of 0 would grant claims of nothing.
    let mut zero_cap = course_subsidy("30000", 30_000);
    if let Some(version) = zero_cap.version.as_mut() {
        version.caps = Some(pb::PolicyCaps {
            max_amount_per_claim: Some(bangfu_proto::common::v1::Money { fen: 0 }),
            ..Default::default()
        });
    }
    let zero = create(&suite, &author, zero_cap).await.expect_err("a cap of 0 fen");
    assert_eq!(reason(&zero), "FIELD_INVALID");
    let details = tonic_types::StatusExt::get_error_details(&zero);
    assert_eq!(
        details.bad_request().expect("field").field_violations[0].field,
        "version.caps.max_amount_per_claim"
    );

    let mut national = course_subsidy("30000", 30_000);
    if let Some(version) = national.version.as_mut() {
        version.issuing_region_prefix = "*".into();
    }
    let beyond = create(&suite, &author, national)
        .await
        .expect_err("a city's reviewer issues no national rule");
    assert_eq!(reason(&beyond), "PERMISSION_MISSING");

    let created = create(&suite, &author, course_subsidy("30000", 30_000))
        .await
        .expect("created");
    let version = created.version.expect("version");
    assert_eq!(version.state, pb::PolicyVersionState::Draft as i32);
    assert!(created.example_results.iter().all(|r| r.passed));

    let publish = |token: String| {
        let name = version.name.clone();
        let suite = &suite;
        async move {
            suite
                .subsidy()
                .await
                .publish_policy_version(with_token(
                    pb::PublishPolicyVersionRequest {
                        name,
                        note: "已核对文件条款和测算样例".into(),
                    },
                    &token,
                ))
                .await
                .map(|r| r.into_inner().version.expect("version"))
        }
    };
    let own = publish(author.clone()).await.expect_err("the author may not publish");
    assert_eq!(reason(&own), "SAME_MAKER_AND_CHECKER");
    let published = publish(suite.finance_reviewer("reviewer-checker"))
        .await
        .expect("published");
    assert_eq!(published.state, pb::PolicyVersionState::Published as i32);
    assert_eq!(published.publish_subject, "reviewer-checker");
}

async fn the_shipped_policies_are_in_the_catalog_until_the_documents_expire(backend: Backend) {
    let suite = Suite::start(backend).await;
    let clerk = suite.agri_clerk();
    let listed = suite
        .subsidy()
        .await
        .list_policies(with_token(
            pb::ListPoliciesRequest {
                policy_group: "public-welfare-post".into(),
                ..Default::default()
            },
            &clerk,
        ))
        .await
        .expect("listed")
        .into_inner()
        .policies;
    let codes: Vec<&str> = listed.iter().map(|p| p.code.as_str()).collect();
    assert_eq!(
        codes,
        vec!["cq-welfare-post-2021", "cy-welfare-post-2021", "zz-welfare-post-2021"]
    );
    // Today (2025-03-02) every one of them is in force.
    assert!(listed.iter().all(|p| p.in_force_version.ends_with("/versions/1")));
    let in_2026 = suite
        .subsidy()
        .await
        .list_policies(with_token(
            pb::ListPoliciesRequest {
                in_force_on: Some(date(2026, 1, 1)),
                ..Default::default()
            },
            &clerk,
        ))
        .await
        .expect("listed")
        .into_inner()
        .policies;
    assert!(in_2026.is_empty(), "the seed documents expired on 2025-12-31");
}

/// A once-in-a-lifetime 100-yuan subsidy (max_claims 1), published by a second reviewer.
async fn once_only_policy(suite: &Suite) {
    let mut request = course_subsidy("10000", 10_000);
    let policy = request.policy.as_mut().expect("policy");
    policy.code = "sz-once-2025".into();
    policy.policy_group = "once-only".into();
    let version = request.version.as_mut().expect("version");
    version.conditions.clear();
    version.facts = vec![pb::FactDefinition {
        name: "history.claims_granted".into(),
        r#type: pb::FactType::Integer as i32,
        source: pb::FactSource::History as i32,
        description: "已享受次数".into(),
        ..Default::default()
    }];
    version.caps = Some(pb::PolicyCaps {
        max_claims: 1,
        ..Default::default()
    });
    version.examples = vec![
        pb::ExampleCase {
            title: "首次".into(),
            period: Some(month(2025, 3)),
            region: "370402001013".into(),
            facts: vec![integer_fact("history.claims_granted", 0)],
            expected_outcome: pb::DecisionOutcome::Eligible as i32,
            expected_amount: Some(common::Money { fen: 10_000 }),
            expected_reasons: vec![],
            assumed_standards: vec![],
        },
        pb::ExampleCase {
            title: "再次".into(),
            period: Some(month(2025, 3)),
            region: "370402001013".into(),
            facts: vec![integer_fact("history.claims_granted", 1)],
            expected_outcome: pb::DecisionOutcome::Rejected as i32,
            expected_amount: None,
            expected_reasons: vec![pb::RejectionReason::CapReached as i32],
            assumed_standards: vec![],
        },
    ];
    let created = create(suite, &suite.finance_reviewer("reviewer-author"), request)
        .await
        .expect("created")
        .version
        .expect("version");
    suite
        .subsidy()
        .await
        .publish_policy_version(with_token(
            pb::PublishPolicyVersionRequest {
                name: created.name,
                note: "已核对".into(),
            },
            &suite.finance_reviewer("reviewer-checker"),
        ))
        .await
        .expect("published");
}

async fn concurrent_claims_of_one_person_never_pass_a_cap_twice(backend: Backend) {
    let suite = Suite::start(backend).await;
    once_only_policy(&suite).await;
    suite.fund(10_000_000).await;
    let person = suite.poverty_alleviated_person("卫一", "801").await;
    let clerk = suite.agri_clerk();
    // Five claims for five different days (no two hold the same day), all at once.
    let calls = (1..=5).map(|day| {
        let (suite, clerk, person) = (&suite, clerk.clone(), person.clone());
        async move {
            let claim = pb::Claim {
                policy: "policies/sz-once-2025".into(),
                person: person.clone(),
                payee: Some(pb::Payee {
                    payee: Some(pb::payee::Payee::Person(person)),
                }),
                period: Some(common::Period {
                    first_day: Some(date(2025, 4, day)),
                    last_day: Some(date(2025, 4, day)),
                }),
                source: Some(pb::ClaimSource {
                    system: "counter".into(),
                    reference: format!("once/{day}"),
                }),
                ..Default::default()
            };
            suite
                .subsidy()
                .await
                .submit_claim(with_token(
                    pb::SubmitClaimRequest {
                        claim: Some(claim),
                        request_id: String::new(),
                    },
                    &clerk,
                ))
                .await
                .map(|r| r.into_inner().claim.expect("claim"))
        }
    });
    let results = join_all(calls.collect()).await;
    let approved = results
        .iter()
        .filter(|r| r.as_ref().is_ok_and(|c| c.state == pb::ClaimState::Approved as i32))
        .count();
    let capped = results
        .iter()
        .filter(|r| {
            r.as_ref().is_ok_and(|c| {
                c.decision.as_ref().is_some_and(|d| {
                    d.rejection_reasons
                        .iter()
                        .any(|x| x.reason == pb::RejectionReason::CapReached as i32)
                })
            })
        })
        .count();
    assert_eq!((approved, capped), (1, 4), "{results:?}");
}

/// A claim under the labor-base award: about the base alone, paid to it.
fn award_claim(person: &str, payee: pb::payee::Payee) -> pb::Claim {
    pb::Claim {
        policy: "policies/zz-labor-base-award-2021".into(),
        person: person.into(),
        payee: Some(pb::Payee { payee: Some(payee) }),
        period: Some(common::Period {
            first_day: Some(date(2025, 3, 4)),
            last_day: Some(date(2025, 3, 4)),
        }),
        facts: vec![
            pb::Fact {
                name: "carrier_kind".into(),
                value: Some(pb::FactValue {
                    value: Some(pb::fact_value::Value::TextValue("labor_base".into())),
                }),
            },
            pb::Fact {
                name: "certified".into(),
                value: Some(pb::FactValue {
                    value: Some(pb::fact_value::Value::BooleanValue(true)),
                }),
            },
            integer_fact("absorbed_target_persons", 40),
        ],
        source: Some(pb::ClaimSource {
            system: "job-matching".into(),
            reference: "carriers/1/award/zz-labor-base-award-2021/2025-03-04".into(),
        }),
        ..Default::default()
    }
}

async fn a_policy_about_organizations_names_no_person_and_keeps_its_groups_shape(backend: Backend) {
    let suite = Suite::start(backend).await;
    let author = suite.finance_reviewer("reviewer-author");
    let organization = |request: &mut pb::CreatePolicyRequest| {
        let policy = request.policy.as_mut().expect("policy");
        policy.claim_subject = pb::ClaimSubject::Organization as i32;
        policy.payee_kind = pb::PayeeKind::Organization as i32;
        request.version.as_mut().expect("version").region_basis = pb::RegionBasis::Organization as i32;
    };
    let field_of = |status: &tonic::Status| {
        tonic_types::StatusExt::get_error_details(status)
            .bad_request()
            .map(|b| b.field_violations[0].field.clone())
            .unwrap_or_default()
    };

    // About an organization, paid to a person: refused.
    let mut request = course_subsidy("30000", 30_000);
    organization(&mut request);
    request.policy.as_mut().expect("policy").payee_kind = pb::PayeeKind::Person as i32;
    let refused = create(&suite, &author, request).await.expect_err("paid to a person");
    assert_eq!(field_of(&refused), "policy.payee_kind");

    // About an organization, reading a person from identity: refused, naming the fact.
    let mut request = course_subsidy("30000", 30_000);
    organization(&mut request);
    request
        .version
        .as_mut()
        .expect("version")
        .facts
        .push(pb::FactDefinition {
            name: "person.categories".into(),
            r#type: pb::FactType::TextList as i32,
            source: pb::FactSource::Identity as i32,
            description: "人员类别".into(),
            ..Default::default()
        });
    let refused = create(&suite, &author, request).await.expect_err("reads identity");
    assert_eq!(field_of(&refused), "version.facts[1].source");

    // A group keyed by organizations takes no policy about persons (its periods would never
    // meet), and a monthly group takes no one-time policy.
    let mut request = course_subsidy("30000", 30_000);
    request.policy.as_mut().expect("policy").policy_group = "labor-base-award".into();
    let refused = create(&suite, &author, request).await.expect_err("mixed group");
    assert_eq!(field_of(&refused), "policy.policy_group");
    let mut request = course_subsidy("30000", 30_000);
    request.policy.as_mut().expect("policy").policy_group = "public-welfare-post".into();
    let refused = create(&suite, &author, request).await.expect_err("mixed group");
    assert_eq!(field_of(&refused), "policy.policy_group");
    // The same policy in a group of its own shape is taken.
    let mut request = course_subsidy("30000", 30_000);
    organization(&mut request);
    request.policy.as_mut().expect("policy").policy_group = "labor-base-award".into();
    create(&suite, &author, request).await.expect("same shape");

    // A claim under the award names no person; one that names a person is refused.
    let clerk = suite.token(
        "clerk-hr",
        bangfu_platform::auth::Department::Hr,
        bangfu_platform::auth::Role::Clerk,
        "370402",
    );
    let base = pb::payee::Payee::Organization(pb::OrganizationPayee {
        credit_code: "91350100M000100Y43".into(),
        display_name: "市中区乡村振兴劳务基地".into(),
        region: Some(common::RegionCode {
            code: "370402001013".into(),
            display_name: String::new(),
        }),
    });
    let person = suite.poverty_alleviated_person("王小花", "022").await;
    let submit = |claim: pb::Claim| {
        let clerk = clerk.clone();
        let suite = &suite;
        async move {
            suite
                .subsidy()
                .await
                .submit_claim(with_token(
                    pb::SubmitClaimRequest {
                        claim: Some(claim),
                        request_id: String::new(),
                    },
                    &clerk,
                ))
                .await
        }
    };
    let refused = submit(award_claim(&person, base.clone()))
        .await
        .expect_err("names a person");
    assert_eq!(field_of(&refused), "claim.person");
    let taken = submit(award_claim("", base))
        .await
        .expect("about the base")
        .into_inner();
    let claim = taken.claim.expect("claim");
    assert_eq!(claim.person, "");
    assert_eq!(claim.region.map(|r| r.code).as_deref(), Some("370402001013"));
    // A claim about a person must name one.
    let mut nameless = crate::claims::post_claim(&person, "assignments/9/months/2025-03", 2025, 3, 20, 50_000);
    nameless.person = String::new();
    let refused = submit(nameless).await.expect_err("no person");
    assert_eq!(field_of(&refused), "claim.person");
}

on_both_backends!(
    a_policy_about_organizations_names_no_person_and_keeps_its_groups_shape,
    rules_are_refused_unless_they_compile_and_pass_their_examples,
    the_shipped_policies_are_in_the_catalog_until_the_documents_expire,
    concurrent_claims_of_one_person_never_pass_a_cap_twice,
);
