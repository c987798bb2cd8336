//! The whole path: announcement → applications → eligibility → notice → objection → contract,
//! and one person, one post under concurrent hires.

use bangfu_platform::testing::with_token;
use bangfu_proto::common::v1 as common;
use bangfu_proto::identity::v1 as id;
use bangfu_proto::welfare_post::v1 as pb;

use crate::on_both_backends;
use crate::support::{Backend, Suite, date, reason, uuid};

async fn hiring_goes_through_notice_and_objection_to_an_active_contract(backend: Backend) {
    let suite = Suite::start(backend).await;
    suite.fund().await;
    let post = suite.post(2).await;
    assert_eq!(post.village.as_ref().map(|v| v.display_name.is_empty()), Some(false));
    let announcement = suite.announce(&post.name).await;
    let first = suite.target_person("张三", "101").await;
    let second = suite.target_person("李四", "102").await;
    // Not in any category: a target person only per identity.
    let outsider = suite.person("王五", "103", 1970, common::LaborCapacity::Full).await;
    let mut applications = Vec::new();
    for person in [&first, &second, &outsider] {
        applications.push(suite.apply(&announcement.name, person).await);
    }
    assert_eq!(applications[0].display_name, "张*");

    // Eligibility as of the hire date, kept on each application and ranked.
    for application in &applications {
        let checked = suite
            .posts()
            .await
            .check_eligibility(with_token(
                pb::CheckEligibilityRequest {
                    subject: Some(pb::check_eligibility_request::Subject::Application(
                        application.name.clone(),
                    )),
                    hire_date: Some(date(2025, 3, 10)),
                },
                &suite.clerk(),
            ))
            .await
            .expect("checked")
            .into_inner()
            .eligibility
            .expect("eligibility");
        if application.name == applications[2].name {
            assert!(!checked.eligible);
            // Every reason: identity's category, and subsidy payment's dry run of the month.
            assert_eq!(
                checked.reasons.iter().map(|r| r.reason).collect::<Vec<_>>(),
                vec![
                    pb::IneligibilityReason::NotTargetPerson as i32,
                    pb::IneligibilityReason::SubsidyRefused as i32
                ]
            );
            assert!(
                checked.reasons[1].message.starts_with("NOT_TARGET_PERSON"),
                "{:?}",
                checked.reasons[1]
            );
        } else {
            assert!(checked.eligible, "{checked:?}");
        }
    }
    let ranked = suite
        .posts()
        .await
        .list_applications(with_token(
            pb::ListApplicationsRequest {
                announcement: announcement.name.clone(),
                ..Default::default()
            },
            &suite.clerk(),
        ))
        .await
        .expect("listed")
        .into_inner()
        .applications;
    assert_eq!(ranked.len(), 3);
    assert_eq!(
        ranked[2].name, applications[2].name,
        "the ineligible applicant ranks last"
    );
    assert_eq!(ranked.iter().map(|a| a.rank).collect::<Vec<_>>(), vec![1, 2, 3]);

    // Proposing the ineligible one is refused with its reasons; nothing is proposed.
    let refused = suite
        .propose(
            &announcement.name,
            &applications[2].name,
            date(2025, 3, 10),
            date(2026, 2, 28),
        )
        .await
        .expect_err("not eligible");
    assert_eq!(reason(&refused), "NOT_ELIGIBLE");
    assert!(refused.message().contains("NOT_TARGET_PERSON"), "{}", refused.message());

    let notice = suite
        .posts()
        .await
        .propose_hires(with_token(
            pb::ProposeHiresRequest {
                announcement: announcement.name.clone(),
                hires: vec![
                    crate::support::hire(&applications[0].name, date(2025, 3, 10), date(2026, 2, 28)),
                    crate::support::hire(&applications[1].name, date(2025, 3, 10), date(2026, 2, 28)),
                ],
                notice_first_day: None,
                request_id: uuid(),
            },
            &suite.clerk(),
        ))
        .await
        .expect("proposed")
        .into_inner()
        .hire_notice
        .expect("notice");
    // Five days of notice from today (policy data), masked names only.
    let period = notice.notice_period.expect("period");
    assert_eq!(period.first_day, Some(date(2025, 3, 2)));
    assert_eq!(period.last_day, Some(date(2025, 3, 6)));
    let mut names: Vec<String> = notice.lines.iter().map(|l| l.display_name.clone()).collect();
    names.sort();
    assert_eq!(names, vec!["张*", "李*"]);
    let posted = format!("{notice:?}");
    assert!(!posted.contains("370402197003"), "no citizen ID on a public notice");

    // An objection to the second proposal, raised by the clerk and upheld by the reviewer.
    let contested = notice
        .lines
        .iter()
        .find(|l| l.display_name == "李*")
        .expect("line")
        .assignment
        .clone();
    let objection = suite
        .posts()
        .await
        .raise_objection(with_token(
            pb::RaiseObjectionRequest {
                objection: Some(pb::Objection {
                    assignment: contested.clone(),
                    content: "反映其家庭有经营性车辆".into(),
                    received_from: "来电，未留姓名".into(),
                    ..Default::default()
                }),
                request_id: uuid(),
            },
            &suite.clerk(),
        ))
        .await
        .expect("objection")
        .into_inner()
        .objection
        .expect("objection");

    // Not before the notice ends, and not with an objection open.
    let early = suite
        .posts()
        .await
        .confirm_hires(with_token(
            pb::ConfirmHiresRequest {
                hire_notice: notice.name.clone(),
            },
            &suite.reviewer(),
        ))
        .await
        .expect_err("too early");
    assert_eq!(reason(&early), "NOTICE_NOT_ENDED");
    suite.set_day(2025, 3, 7);
    let open = suite
        .posts()
        .await
        .confirm_hires(with_token(
            pb::ConfirmHiresRequest {
                hire_notice: notice.name.clone(),
            },
            &suite.reviewer(),
        ))
        .await
        .expect_err("objection open");
    assert_eq!(reason(&open), "OBJECTION_OPEN");
    // The one who recorded it may not resolve it.
    let own = suite
        .posts()
        .await
        .resolve_objection(with_token(
            pb::ResolveObjectionRequest {
                name: objection.name.clone(),
                upheld: true,
                resolution: "核实属实".into(),
            },
            &suite.token(
                "clerk-agri",
                bangfu_platform::auth::Department::Agri,
                bangfu_platform::auth::Role::Reviewer,
                "370402",
            ),
        ))
        .await
        .expect_err("maker is not checker");
    assert_eq!(reason(&own), "SAME_MAKER_AND_CHECKER");
    suite
        .posts()
        .await
        .resolve_objection(with_token(
            pb::ResolveObjectionRequest {
                name: objection.name.clone(),
                upheld: true,
                resolution: "经核实，其家庭有经营性车辆，不符合条件".into(),
            },
            &suite.reviewer(),
        ))
        .await
        .expect("upheld");

    let confirmed = suite
        .posts()
        .await
        .confirm_hires(with_token(
            pb::ConfirmHiresRequest {
                hire_notice: notice.name.clone(),
            },
            &suite.reviewer(),
        ))
        .await
        .expect("confirmed")
        .into_inner();
    assert_eq!(
        confirmed.hire_notice.expect("notice").state,
        pb::HireNoticeState::Confirmed as i32
    );
    assert_eq!(
        confirmed.assignments.len(),
        1,
        "the upheld objection's proposal is not hired"
    );
    let active = &confirmed.assignments[0];
    assert_eq!(active.person, first);
    assert_eq!(active.state, pb::AssignmentState::Active as i32);
    // Identity takes employment once it begins: the service's job records it on the start day.
    assert!(!active.employment_recorded);
    suite.set_day(2025, 3, 10);
    assert_eq!(suite.app.record_missing_employment().await.expect("recorded"), 1);
    let withdrawn = suite
        .posts()
        .await
        .get_assignment(with_token(pb::GetAssignmentRequest { name: contested }, &suite.clerk()))
        .await
        .expect("assignment")
        .into_inner()
        .assignment
        .expect("assignment");
    assert_eq!(withdrawn.state, pb::AssignmentState::Withdrawn as i32);

    // Identity now says the holder is on a public-welfare post from the contract's start.
    let person = suite
        .identity()
        .await
        .batch_get_persons(with_token(
            id::BatchGetPersonsRequest {
                names: vec![first.clone()],
                period: Some(common::Period {
                    first_day: Some(date(2025, 3, 12)),
                    last_day: Some(date(2025, 3, 12)),
                }),
                view: common::PersonalDataView::Masked as i32,
                purpose: None,
            },
            &suite.clerk(),
        ))
        .await
        .expect("person")
        .into_inner()
        .results
        .remove(0)
        .person
        .expect("person");
    assert_eq!(
        person.employment_status,
        common::EmploymentStatus::PublicWelfarePost as i32
    );
    let recorded = suite
        .posts()
        .await
        .get_assignment(with_token(
            pb::GetAssignmentRequest {
                name: active.name.clone(),
            },
            &suite.clerk(),
        ))
        .await
        .expect("assignment")
        .into_inner()
        .assignment
        .expect("assignment");
    assert!(recorded.employment_recorded);

    // The post shows its place taken; a second hire of the same person elsewhere is refused.
    let post = suite
        .posts()
        .await
        .get_post(with_token(
            pb::GetPostRequest {
                name: post.name.clone(),
            },
            &suite.clerk(),
        ))
        .await
        .expect("post")
        .into_inner()
        .post
        .expect("post");
    assert_eq!(post.places_taken, 1);
}

/// Two posts propose the same person for overlapping terms at once: exactly one proposal holds.
async fn one_person_holds_one_post_under_concurrent_hires(backend: Backend) {
    let suite = Suite::start(backend).await;
    suite.fund().await;
    let person = suite.target_person("赵六", "104").await;
    let mut pending = Vec::new();
    for _ in 0..2 {
        let post = suite.post(1).await;
        let announcement = suite.announce(&post.name).await;
        let application = suite.apply(&announcement.name, &person).await;
        pending.push((announcement.name, application.name));
    }
    let (a, b) = (&pending[0], &pending[1]);
    let (left, right) = tokio::join!(
        suite.propose(&a.0, &a.1, date(2025, 3, 10), date(2025, 8, 31)),
        suite.propose(&b.0, &b.1, date(2025, 6, 1), date(2025, 11, 30)),
    );
    let outcomes = [left, right];
    let held = outcomes.iter().filter(|r| r.is_ok()).count();
    assert_eq!(held, 1, "{outcomes:?}");
    let refusal = outcomes.iter().find_map(|r| r.as_ref().err()).expect("one refused");
    assert!(
        matches!(reason(refusal).as_str(), "POST_SLOT_TAKEN" | "NOT_ELIGIBLE"),
        "{refusal:?}"
    );
    // The refused application, for a later term that overlaps neither, is free.
    let (announcement, application) = if outcomes[0].is_err() { a } else { b };
    let free = suite
        .propose(announcement, application, date(2025, 12, 1), date(2025, 12, 31))
        .await
        .expect("a later term");
    assert_eq!(free.lines.len(), 1);
}

/// A post with one place: two persons proposed for it at once, exactly one proposal holds.
async fn a_post_is_not_proposed_beyond_its_places(backend: Backend) {
    let suite = Suite::start(backend).await;
    suite.fund().await;
    let post = suite.post(1).await;
    let announcement = suite.announce(&post.name).await;
    let first = suite.target_person("钱七", "105").await;
    let second = suite.target_person("孙八", "106").await;
    let a = suite.apply(&announcement.name, &first).await;
    let b = suite.apply(&announcement.name, &second).await;
    let (left, right) = tokio::join!(
        suite.propose(&announcement.name, &a.name, date(2025, 3, 10), date(2025, 12, 31)),
        suite.propose(&announcement.name, &b.name, date(2025, 3, 10), date(2025, 12, 31)),
    );
    let outcomes = [left, right];
    assert_eq!(outcomes.iter().filter(|r| r.is_ok()).count(), 1, "{outcomes:?}");
    let refusal = outcomes.iter().find_map(|r| r.as_ref().err()).expect("one refused");
    assert_eq!(
        crate::support::fields(refusal),
        vec!["hires".to_string()],
        "{refusal:?}"
    );
}

on_both_backends!(
    hiring_goes_through_notice_and_objection_to_an_active_contract,
    one_person_holds_one_post_under_concurrent_hires,
    a_post_is_not_proposed_beyond_its_places
);
