//! Bad input, each refused with a reason and a field a clerk can act on and nothing written;
//! subsidy payment away, and the approved lines sent when it returns.

use bangfu_platform::auth::{Department, Role};
use bangfu_platform::testing::{citizen_id, fields, with_token};
use bangfu_proto::common::v1 as common;
use bangfu_proto::identity::v1 as id;
use bangfu_proto::work_relief::v1 as pb;

use crate::support::{Backend, Suite, daily_worker, date, project_draft, reason, uuid};

async fn bad_projects_funds_and_workers_are_refused_with_their_field(backend: Backend) {
    let suite = Suite::start(backend).await;
    suite.rules().await;
    let clerk = suite.clerk();

    // A project ending before it starts.
    let mut backwards = project_draft("SD-2025-370402-010");
    backwards.schedule = Some(common::Period {
        first_day: Some(date(2025, 6, 1)),
        last_day: Some(date(2025, 5, 31)),
    });
    let refused = suite
        .relief()
        .await
        .create_project(with_token(
            pb::CreateProjectRequest {
                project: Some(backwards),
                request_id: uuid(),
            },
            &clerk,
        ))
        .await
        .expect_err("ends before it starts");
    assert_eq!(reason(&refused), "FIELD_INVALID");
    assert_eq!(fields(&refused), vec!["project.schedule.last_day"]);
    let listed = suite
        .relief()
        .await
        .list_projects(with_token(pb::ListProjectsRequest::default(), &clerk))
        .await
        .expect("listed")
        .into_inner()
        .projects;
    assert!(listed.is_empty(), "nothing half-written");

    let project = suite.project("SD-2025-370402-011").await;
    // The same number again is another project's.
    let again = suite
        .relief()
        .await
        .create_project(with_token(
            pb::CreateProjectRequest {
                project: Some(project_draft("SD-2025-370402-011")),
                request_id: uuid(),
            },
            &clerk,
        ))
        .await
        .expect_err("numbers are unique");
    assert_eq!(reason(&again), "ALREADY_EXISTS");

    // An allocation of zero, or less.
    for fen in [0, -5] {
        let refused = suite
            .relief()
            .await
            .allocate_funds(with_token(
                pb::AllocateFundsRequest {
                    parent: project.name.clone(),
                    allocation: Some(pb::FundAllocation {
                        fund_source: pb::FundSource::Central as i32,
                        year: 2025,
                        amount: Some(common::Money { fen }),
                        document: "鲁发改振兴〔2025〕12号".into(),
                        ..Default::default()
                    }),
                    request_id: uuid(),
                },
                &clerk,
            ))
            .await
            .expect_err("no money");
        assert_eq!(fields(&refused), vec!["allocation.amount"]);
    }

    // A worker identity does not know; one registered outside the clerk's county.
    let unknown = suite
        .enrol(
            &project.name,
            daily_worker("persons/0123456789abcdef0123", pb::WorkerRole::Worker, 12_000),
        )
        .await
        .expect_err("unknown");
    assert_eq!(unknown.code(), tonic::Code::NotFound);
    let elsewhere = suite
        .identity()
        .await
        .create_person(with_token(
            id::CreatePersonRequest {
                person: Some(id::Person {
                    display_name: "薛城人".into(),
                    citizen_id: citizen_id("37040319750315131"),
                    registered_region: Some(common::RegionCode {
                        code: "370403001001".into(),
                        display_name: String::new(),
                    }),
                    labor_capacity: common::LaborCapacity::Full as i32,
                    ..Default::default()
                }),
                request_id: String::new(),
            },
            &suite.token("clerk-hr-city", Department::Hr, Role::Clerk, "3704"),
        ))
        .await
        .expect("created")
        .into_inner()
        .person
        .expect("person")
        .name;
    let outside = suite
        .enrol(&project.name, daily_worker(&elsewhere, pb::WorkerRole::Worker, 12_000))
        .await
        .expect_err("outside the clerk's scope");
    assert_eq!(outside.code(), tonic::Code::NotFound);

    // A daily wage below the guideline (100 yuan).
    let jia = suite.person("甲工人", "133").await;
    let low = suite
        .enrol(&project.name, daily_worker(&jia, pb::WorkerRole::Worker, 9_999))
        .await
        .expect_err("below the guideline");
    assert_eq!(reason(&low), "WAGE_BELOW_GUIDELINE");
    assert_eq!(fields(&low), vec!["worker.daily_wage"]);
    let metadata = bangfu_platform::error::metadata_of(&low);
    assert_eq!(metadata.get("guideline_fen").map(String::as_str), Some("10000"));

    // Enrolled twice for overlapping periods.
    let a = suite
        .enrol(&project.name, daily_worker(&jia, pb::WorkerRole::Worker, 12_000))
        .await
        .expect("enrolled");
    let mut later = daily_worker(&jia, pb::WorkerRole::Worker, 12_000);
    later.start_date = Some(date(2025, 6, 1));
    let twice = suite.enrol(&project.name, later).await.expect_err("overlap");
    assert_eq!(reason(&twice), "ENROLMENT_OVERLAP");
    assert_eq!(
        bangfu_platform::error::metadata_of(&twice).get("resource"),
        Some(&a.name)
    );
    // Nor on another project in the same months: remuneration is claimed once a person a month.
    let other = suite.project("SD-2025-370402-014").await;
    let mut elsewhere_too = daily_worker(&jia, pb::WorkerRole::Worker, 12_000);
    elsewhere_too.start_date = Some(date(2025, 4, 20));
    let two_rosters = suite.enrol(&other.name, elsewhere_too).await.expect_err("same months");
    assert_eq!(reason(&two_rosters), "ENROLMENT_OVERLAP");
    // Ended in May, the same person may come back in June.
    suite
        .relief()
        .await
        .end_enrolment(with_token(
            pb::EndEnrolmentRequest {
                name: a.name.clone(),
                end_date: Some(date(2025, 5, 31)),
                reason: "第一期工程完工".into(),
            },
            &clerk,
        ))
        .await
        .expect("ended");
    let mut june = daily_worker(&jia, pb::WorkerRole::Worker, 12_000);
    june.start_date = Some(date(2025, 6, 1));
    suite.enrol(&project.name, june).await.expect("back in June");

    // Attendance of more days than February has, and for a month before the enrolment: every
    // problem is named, nothing recorded.
    let roll = suite
        .attendance(&project.name, 2025, 2, &[(&a.name, 29, 0)])
        .await
        .expect("answered");
    assert_eq!(roll.recorded, 0);
    assert_eq!(roll.problems.len(), 1);
    assert_eq!(roll.problems[0].field, "days");
    let january = suite
        .attendance(&project.name, 2025, 1, &[(&a.name, 5, 0)])
        .await
        .expect("answered");
    assert_eq!(january.recorded, 0);
    assert_eq!(january.problems[0].field, "worker");
    let empty = suite.prepare(&project.name, 2025, 2).await.expect("prepared");
    assert_eq!(empty.line_count, 0, "the refused roll wrote nothing");
}

async fn a_payroll_is_not_approved_by_its_preparer(backend: Backend) {
    let suite = Suite::start(backend).await;
    suite.rules().await;
    let (_, payroll) = suite.noticed_february("SD-2025-370402-012", "141").await;
    suite.set_day(2025, 3, 9);
    let awaiting = suite.payroll(&payroll.name).await;
    let preparer_as_reviewer = suite.token("clerk-ndrc", Department::Ndrc, Role::Reviewer, "370402");
    let refused = suite
        .approve(&awaiting, &preparer_as_reviewer)
        .await
        .expect_err("maker and checker differ");
    assert_eq!(reason(&refused), "SAME_MAKER_AND_CHECKER");
    assert_eq!(
        suite.payroll(&payroll.name).await.state,
        pb::PayrollState::AwaitingApproval as i32
    );
    // The refusal is audited. Refusals' rows are written beside the answer, not before it:
    // the auditor may have to look again.
    let auditor = suite.token("auditor", Department::Ndrc, Role::Auditor, "370402");
    let refusal_audited = |events: &[common::AuditEvent]| {
        events
            .iter()
            .any(|e| e.method.ends_with("/ApprovePayroll") && e.resource == payroll.name && e.subject == "clerk-ndrc")
    };
    let mut events = Vec::new();
    for _ in 0..50 {
        events = suite
            .relief()
            .await
            .list_audit_events(with_token(pb::ListAuditEventsRequest::default(), &auditor))
            .await
            .expect("audit")
            .into_inner()
            .audit_events;
        if refusal_audited(&events) {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    assert!(refusal_audited(&events), "{events:?}");
}

async fn lines_approved_while_subsidy_payment_is_away_are_sent_when_it_returns(backend: Backend) {
    let suite = Suite::start(backend).await;
    suite.rules().await;
    suite.fund().await;
    let (_, payroll) = suite.noticed_february("SD-2025-370402-013", "151").await;
    suite.set_day(2025, 3, 9);
    let awaiting = suite.payroll(&payroll.name).await;
    suite.subsidy_link.cut();
    let approved = suite.approve(&awaiting, &suite.reviewer()).await.expect("approved");
    assert_eq!(approved.state, pb::PayrollState::Approved as i32);
    assert_eq!(approved.lines[0].state, pb::LineState::Pending as i32);
    suite.subsidy_link.restore();
    // What the service's job does every 15 seconds.
    let sent = suite
        .app
        .send_pending(&bangfu_platform::peers::CallContext::own(), "", None)
        .await
        .expect("sent");
    assert_eq!(sent, 1);
    let claimed = suite.payroll(&payroll.name).await;
    assert_eq!(claimed.lines[0].state, pb::LineState::Claimed as i32);
    // Sent again, nothing is claimed twice.
    let again = suite
        .app
        .send_pending(&bangfu_platform::peers::CallContext::own(), "", None)
        .await
        .expect("nothing pending");
    assert_eq!(again, 0);
}

async fn a_refused_line_is_sent_again_once_what_refused_it_is_withdrawn(backend: Backend) {
    use bangfu_proto::subsidy::v1 as sub;
    let suite = Suite::start(backend).await;
    suite.rules().await;
    suite.fund().await;
    let (jia, payroll) = suite.noticed_february("SD-2025-370402-015", "161").await;
    // A counter clerk already claimed February's remuneration for the same person.
    let finance = suite.finance("clerk-finance", Role::Clerk);
    let counter = suite
        .subsidy()
        .await
        .submit_claim(with_token(
            sub::SubmitClaimRequest {
                claim: Some(sub::Claim {
                    policy: format!("policies/{}", crate::support::POLICY),
                    person: jia.clone(),
                    payee: Some(sub::Payee {
                        payee: Some(sub::payee::Payee::Person(jia.clone())),
                    }),
                    period: Some(common::Period {
                        first_day: Some(date(2025, 2, 1)),
                        last_day: Some(date(2025, 2, 28)),
                    }),
                    facts: vec![sub::Fact {
                        name: "attested_amount_fen".into(),
                        value: Some(sub::FactValue {
                            value: Some(sub::fact_value::Value::MoneyValue(common::Money { fen: 50_000 })),
                        }),
                    }],
                    source: Some(sub::ClaimSource {
                        system: "counter".into(),
                        reference: "柜台-2025-02-001".into(),
                    }),
                    ..Default::default()
                }),
                request_id: String::new(),
            },
            &finance,
        ))
        .await
        .expect("counter claim")
        .into_inner()
        .claim
        .expect("claim");
    suite.set_day(2025, 3, 9);
    let awaiting = suite.payroll(&payroll.name).await;
    suite.approve(&awaiting, &suite.reviewer()).await.expect("approved");
    let refused = suite.wait_for_lines(&payroll.name, pb::LineState::ClaimRefused).await;
    assert!(
        refused.lines[0].status_detail.contains("DUPLICATE_PERIOD"),
        "{:?}",
        refused.lines[0]
    );

    let resubmit = |token: String| {
        let name = payroll.name.clone();
        let suite = &suite;
        async move {
            suite
                .relief()
                .await
                .resubmit_line(with_token(
                    pb::ResubmitLineRequest {
                        payroll: name,
                        line_number: 1,
                        reason: "柜台重复申报已撤回".into(),
                    },
                    &token,
                ))
                .await
                .map(|r| r.into_inner().line.expect("line"))
        }
    };
    let by_clerk = resubmit(suite.clerk()).await.expect_err("a reviewer decides");
    assert_eq!(by_clerk.code(), tonic::Code::PermissionDenied);
    // Still colliding: refused again, with the reason.
    let again = resubmit(suite.reviewer()).await.expect("resubmitted");
    assert_eq!(again.state, pb::LineState::ClaimRefused as i32);
    let mut subsidy = suite.subsidy().await;
    let read = subsidy
        .get_claim(with_token(
            sub::GetClaimRequest {
                name: counter.name.clone(),
            },
            &finance,
        ))
        .await
        .expect("claim")
        .into_inner()
        .claim
        .expect("claim");
    subsidy
        .withdraw_claim(with_token(
            sub::WithdrawClaimRequest {
                name: counter.name.clone(),
                reason: "与以工代赈工资表重复".into(),
                etag: read.etag,
            },
            &finance,
        ))
        .await
        .expect("withdrawn");
    let claimed = resubmit(suite.reviewer()).await.expect("resubmitted");
    assert_eq!(claimed.state, pb::LineState::Claimed as i32, "{claimed:?}");
    assert!(claimed.claim.starts_with("claims/"));
    // A claimed line is not sent again.
    let twice = resubmit(suite.reviewer()).await.expect_err("claimed");
    assert_eq!(reason(&twice), "STATE_CONFLICT");
}

bangfu_platform::on_both_backends!(
    bad_projects_funds_and_workers_are_refused_with_their_field,
    a_payroll_is_not_approved_by_its_preparer,
    lines_approved_while_subsidy_payment_is_away_are_sent_when_it_returns,
    a_refused_line_is_sent_again_once_what_refused_it_is_withdrawn,
);
