//! A project's month end to end: funds → roster → muster roll → payroll → notice → objection →
//! approval → claims paid by subsidy payment → receipts from the bank → the share at close.

use bangfu_platform::testing::with_token;
use bangfu_proto::common::v1 as common;
use bangfu_proto::identity::v1 as id;
use bangfu_proto::work_relief::v1 as pb;

use crate::support::{Backend, Suite, daily_worker, date, piece_worker, reason, uuid};

async fn a_month_is_noticed_approved_paid_and_the_project_closes_above_its_share(backend: Backend) {
    let suite = Suite::start(backend).await;
    suite.rules().await;
    let fund = suite.fund().await;
    let jia = suite.person("甲工人", "101").await;
    suite.certify(&jia, common::PersonCategory::PovertyAlleviated).await;
    let yi = suite.person("乙工人", "103").await;
    suite.certify(&yi, common::PersonCategory::Relocated).await;
    let bing = suite.person("丙主管", "105").await;

    let project = suite.project("SD-2025-370402-001").await;
    assert_eq!(project.state, pb::ProjectState::Active as i32);
    let funded = suite.allocate(&project.name, pb::FundSource::Central, 1_000_000).await;
    let share = funded.labor_share.expect("share");
    assert_eq!(share.required.map(|m| m.fen), Some(300_000), "30 % of central funds");
    assert_eq!(share.gap.map(|m| m.fen), Some(300_000));

    let a = suite
        .enrol(&project.name, daily_worker(&jia, pb::WorkerRole::Worker, 15_000))
        .await
        .expect("甲");
    assert!(a.target_person && a.local && !a.relocated);
    assert_eq!(a.display_name, "甲**", "names are masked");
    let b = suite.enrol(&project.name, piece_worker(&yi, 500)).await.expect("乙");
    assert!(b.relocated && !b.target_person);
    let c = suite
        .enrol(&project.name, daily_worker(&bing, pb::WorkerRole::Manager, 20_000))
        .await
        .expect("丙");
    // Identity records the enrolment as work-relief employment.
    let person = suite
        .identity()
        .await
        .get_person(with_token(
            id::GetPersonRequest {
                name: jia.clone(),
                ..Default::default()
            },
            &suite.clerk(),
        ))
        .await
        .expect("person")
        .into_inner()
        .person
        .expect("person");
    assert_eq!(person.employment_status, common::EmploymentStatus::WorkRelief as i32);

    let roll = suite
        .attendance(
            &project.name,
            2025,
            2,
            &[(&a.name, 20, 0), (&b.name, 0, 400), (&c.name, 10, 0)],
        )
        .await
        .expect("roll");
    assert_eq!(roll.recorded, 3);
    assert!(roll.problems.is_empty());
    let payroll = suite.prepare(&project.name, 2025, 2).await.expect("prepared");
    assert_eq!(payroll.state, pb::PayrollState::Draft as i32);
    let amounts: Vec<i64> = payroll
        .lines
        .iter()
        .map(|l| l.amount.as_ref().map_or(0, |m| m.fen))
        .collect();
    assert_eq!(amounts, vec![300_000, 200_000, 200_000], "days × wage, pieces × rate");
    assert_eq!(
        payroll.share_total.as_ref().map(|m| m.fen),
        Some(500_000),
        "the manager's pay is not counted"
    );
    assert_eq!(payroll.due_date, Some(date(2025, 3, 15)));

    // The notice: masked names, days or pieces and amounts, nothing that identifies a person.
    let noticed = suite.publish(&payroll).await;
    assert_eq!(noticed.state, pb::PayrollState::Notice as i32);
    assert_eq!(
        noticed.notice_period,
        Some(common::Period {
            first_day: Some(date(2025, 3, 2)),
            last_day: Some(date(2025, 3, 8)),
        })
    );
    let notice = suite
        .relief()
        .await
        .get_payroll_notice(with_token(
            pb::GetPayrollNoticeRequest {
                name: format!("{}/notice", payroll.name),
            },
            &suite.clerk(),
        ))
        .await
        .expect("notice")
        .into_inner()
        .notice
        .expect("notice");
    let printed = format!("{notice:?}");
    assert_eq!(notice.lines.len(), 3);
    assert!(notice.lines.iter().all(|l| l.display_name.ends_with("**")), "{printed}");
    assert!(
        !printed.contains("3704021975") && !printed.contains("persons/"),
        "{printed}"
    );

    // An objection to 乙's pieces: whoever recorded it cannot also resolve it; upheld, the
    // payroll goes back to be corrected and noticed again.
    let objection = suite
        .relief()
        .await
        .raise_objection(with_token(
            pb::RaiseObjectionRequest {
                parent: payroll.name.clone(),
                objection: Some(pb::Objection {
                    line_number: 2,
                    content: "本人2月实际完成420米，工资表少记20米".into(),
                    channel: "来访".into(),
                    received_date: Some(date(2025, 3, 2)),
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
    let resolve = |token: String| {
        let name = objection.name.clone();
        let suite = &suite;
        async move {
            suite
                .relief()
                .await
                .resolve_objection(with_token(
                    pb::ResolveObjectionRequest {
                        name,
                        upheld: true,
                        resolution: "经核实施工日志，实际完成420米".into(),
                    },
                    &token,
                ))
                .await
        }
    };
    let own = suite.token(
        "clerk-ndrc",
        bangfu_platform::auth::Department::Ndrc,
        bangfu_platform::auth::Role::Reviewer,
        "370402",
    );
    let refused = resolve(own).await.expect_err("maker and checker differ");
    assert_eq!(reason(&refused), "SAME_MAKER_AND_CHECKER");
    resolve(suite.reviewer()).await.expect("upheld");
    assert_eq!(suite.payroll(&payroll.name).await.state, pb::PayrollState::Draft as i32);
    suite
        .attendance(&project.name, 2025, 2, &[(&b.name, 0, 420)])
        .await
        .expect("corrected");
    // The draft follows its roll at once.
    assert_eq!(suite.payroll(&payroll.name).await.total.map(|m| m.fen), Some(710_000));
    let corrected = suite.prepare(&project.name, 2025, 2).await.expect("prepared again");
    assert_eq!(corrected.total.as_ref().map(|m| m.fen), Some(710_000));
    let noticed = suite.publish(&corrected).await;

    let early = suite
        .approve(&noticed, &suite.reviewer())
        .await
        .expect_err("the notice runs 7 days");
    assert_eq!(reason(&early), "NOTICE_NOT_ENDED");
    suite.set_day(2025, 3, 9);
    let awaiting = suite.payroll(&payroll.name).await;
    assert_eq!(awaiting.state, pb::PayrollState::AwaitingApproval as i32);
    let clerk_approves = suite
        .approve(&awaiting, &suite.clerk())
        .await
        .expect_err("a clerk does not approve");
    assert_eq!(clerk_approves.code(), tonic::Code::PermissionDenied);
    let approved = suite.approve(&awaiting, &suite.reviewer()).await.expect("approved");
    assert_eq!(approved.state, pb::PayrollState::Approved as i32);
    assert!(
        approved
            .lines
            .iter()
            .all(|l| l.state == pb::LineState::Claimed as i32 && l.claim.starts_with("claims/")),
        "{:?}",
        approved.lines
    );
    // A paper ledger cannot confirm money not yet sent to the bank: the bank could pay it again.
    let early_receipt = suite
        .relief()
        .await
        .confirm_receipt(with_token(
            pb::ConfirmReceiptRequest {
                payroll: payroll.name.clone(),
                line_number: 1,
                ledger_reference: "QZ-2025-03-001".into(),
                paid_date: Some(date(2025, 3, 9)),
            },
            &suite.clerk(),
        ))
        .await
        .expect_err("not yet at the bank");
    assert_eq!(reason(&early_receipt), "STATE_CONFLICT");
    let planned = suite.get_project(&project.name).await.labor_share.expect("share");
    assert_eq!(planned.planned.map(|m| m.fen), Some(510_000));
    assert_eq!(planned.planned_share_bp, 5_100);
    assert_eq!(planned.paid.map(|m| m.fen), Some(0));

    // Unpaid remuneration blocks the close.
    let project_now = suite.get_project(&project.name).await;
    let close = |etag: String| {
        let name = project.name.clone();
        let suite = &suite;
        async move {
            suite
                .relief()
                .await
                .close_project(with_token(pb::CloseProjectRequest { name, etag }, &suite.reviewer()))
                .await
        }
    };
    let unpaid = close(project_now.etag.clone()).await.expect_err("lines unpaid");
    assert_eq!(reason(&unpaid), "ARREARS_OPEN");

    // Finance pays; the bank's results come back on subsidy payment's claim feed and confirm
    // each worker's receipt here.
    suite
        .accounts(&[
            (&jia, "甲工人", "37040219750315101"),
            (&yi, "乙工人", "37040219750315103"),
            (&bing, "丙主管", "37040219750315105"),
        ])
        .await;
    assert_eq!(suite.bank_pays(&fund, "2025-03-12").await, 3);
    let paid = suite.wait_for_lines(&payroll.name, pb::LineState::Paid).await;
    for line in &paid.lines {
        assert_eq!(line.receipt_source, pb::ReceiptSource::Bank as i32, "{line:?}");
        assert_eq!(line.paid_date, Some(date(2025, 3, 12)), "{line:?}");
    }
    for _ in 0..100 {
        if suite.payroll(&payroll.name).await.state == pb::PayrollState::Paid as i32 {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    assert_eq!(suite.payroll(&payroll.name).await.state, pb::PayrollState::Paid as i32);
    let share = suite.get_project(&project.name).await;
    let labor = share.labor_share.expect("share");
    assert_eq!(labor.paid.map(|m| m.fen), Some(510_000));
    assert_eq!(labor.gap.map(|m| m.fen), Some(0));

    let closed = close(share.etag.clone())
        .await
        .expect("closed")
        .into_inner()
        .project
        .expect("project");
    assert_eq!(closed.state, pb::ProjectState::Closed as i32);

    // The region's year and the project list (附件2).
    let stats = suite
        .relief()
        .await
        .get_project_stats(with_token(
            pb::GetProjectStatsRequest {
                region_prefix: "370402".into(),
                year: 2025,
                as_of: None,
            },
            &suite.clerk(),
        ))
        .await
        .expect("stats")
        .into_inner();
    // Counted to January 31 (a form's day before anyone was enrolled): nobody yet.
    let january = suite
        .relief()
        .await
        .get_project_stats(with_token(
            pb::GetProjectStatsRequest {
                region_prefix: "370402".into(),
                year: 2025,
                as_of: Some(date(2025, 1, 31)),
            },
            &suite.clerk(),
        ))
        .await
        .expect("stats")
        .into_inner();
    assert_eq!(
        (january.workers, january.remuneration_paid.map(|m| m.fen)),
        (0, Some(0))
    );
    assert!(
        january.projects == 0 && january.project_list.is_empty(),
        "not begun by then"
    );
    assert_eq!(stats.projects, 1);
    assert_eq!(stats.remuneration_paid.map(|m| m.fen), Some(710_000));
    assert_eq!(stats.share_paid.map(|m| m.fen), Some(510_000));
    assert_eq!(stats.share_bp, 5_100);
    assert_eq!((stats.workers, stats.target_persons, stats.relocated), (2, 1, 1));
    let row = &stats.project_list[0];
    assert_eq!(row.project_number, "SD-2025-370402-001");
    assert_eq!((row.people_employed, row.target_persons), (2, 1));
    assert!(row.in_key_assistance_county && !row.at_relocation_site);
}

async fn a_project_below_its_share_or_with_arrears_does_not_close(backend: Backend) {
    let suite = Suite::start(backend).await;
    suite.rules().await;
    let jia = suite.person("甲工人", "111").await;
    let project = suite.project("SD-2025-370402-002").await;
    suite.allocate(&project.name, pb::FundSource::Central, 10_000_000).await;
    let a = suite
        .enrol(&project.name, daily_worker(&jia, pb::WorkerRole::Worker, 12_000))
        .await
        .expect("enrolled");
    let project_now = suite.get_project(&project.name).await;
    let below = suite
        .relief()
        .await
        .close_project(with_token(
            pb::CloseProjectRequest {
                name: project.name.clone(),
                etag: project_now.etag.clone(),
            },
            &suite.reviewer(),
        ))
        .await
        .expect_err("nothing paid");
    assert_eq!(reason(&below), "LABOR_SHARE_BELOW_MINIMUM");
    let metadata = bangfu_platform::error::metadata_of(&below);
    assert_eq!(metadata.get("gap_fen").map(String::as_str), Some("3000000"));

    // February's payroll is prepared and never paid: on April 1 it is 17 days past its due
    // date (March 15) and listed as arrears; closing is refused for it.
    suite
        .attendance(&project.name, 2025, 2, &[(&a.name, 22, 0)])
        .await
        .expect("roll");
    suite.prepare(&project.name, 2025, 2).await.expect("prepared");
    suite.set_day(2025, 4, 1);
    let arrears = suite
        .relief()
        .await
        .list_arrears(with_token(
            pb::ListArrearsRequest {
                region_prefix: "370402".into(),
                ..Default::default()
            },
            &suite.clerk(),
        ))
        .await
        .expect("arrears")
        .into_inner()
        .arrears;
    assert_eq!(arrears.len(), 1);
    assert_eq!(arrears[0].days_overdue, 17);
    assert_eq!(
        arrears[0].line.as_ref().and_then(|l| l.amount.as_ref()).map(|m| m.fen),
        Some(264_000)
    );
    let project_now = suite.get_project(&project.name).await;
    let owed = suite
        .relief()
        .await
        .close_project(with_token(
            pb::CloseProjectRequest {
                name: project.name.clone(),
                etag: project_now.etag,
            },
            &suite.reviewer(),
        ))
        .await
        .expect_err("arrears");
    assert_eq!(reason(&owed), "ARREARS_OPEN");
}

async fn two_approvals_at_once_send_the_payroll_once(backend: Backend) {
    let suite = Suite::start(backend).await;
    suite.rules().await;
    suite.fund().await;
    let (_, noticed) = suite.noticed_february("SD-2025-370402-003", "121").await;
    suite.set_day(2025, 3, 9);
    let awaiting = suite.payroll(&noticed.name).await;
    let one = suite.token(
        "reviewer-one",
        bangfu_platform::auth::Department::Ndrc,
        bangfu_platform::auth::Role::Reviewer,
        "370402",
    );
    let two = suite.token(
        "reviewer-two",
        bangfu_platform::auth::Department::Ndrc,
        bangfu_platform::auth::Role::Reviewer,
        "370402",
    );
    let (first, second) = tokio::join!(suite.approve(&awaiting, &one), suite.approve(&awaiting, &two));
    let outcomes = [first.is_ok(), second.is_ok()];
    assert_eq!(outcomes.iter().filter(|ok| **ok).count(), 1, "{first:?} {second:?}");
    let loser = first.err().or(second.err()).expect("one refused");
    assert!(
        ["ETAG_MISMATCH", "STATE_CONFLICT"].contains(&reason(&loser).as_str()),
        "{loser:?}"
    );
    let claims = suite
        .subsidy()
        .await
        .list_claims(with_token(
            bangfu_proto::subsidy::v1::ListClaimsRequest::default(),
            &suite.finance("clerk-finance", bangfu_platform::auth::Role::Clerk),
        ))
        .await
        .expect("claims")
        .into_inner()
        .claims;
    assert_eq!(claims.len(), 1, "one line, one claim");
}

bangfu_platform::on_both_backends!(
    a_month_is_noticed_approved_paid_and_the_project_closes_above_its_share,
    a_project_below_its_share_or_with_arrears_does_not_close,
    two_approvals_at_once_send_the_payroll_once,
);
