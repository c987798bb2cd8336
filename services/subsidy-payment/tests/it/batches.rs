//! The money path: approved claims with verified accounts → a batch with fixed control totals →
//! public notice (masked) → approval by a second subject after the notice → the disbursement
//! file → the bank's results, reconciled; the ledger moves with each step and balances.

use bangfu_platform::testing::{citizen_id, pay_through_the_bank, with_token};
use bangfu_proto::common::v1 as common;
use bangfu_proto::subsidy::v1 as pb;

use crate::accounts::{person_account, register};
use crate::claims::{post_claim, submit};
use crate::on_both_backends;
use crate::support::{Backend, Suite, reason};

async fn batch(suite: &Suite, token: &str, fund: &str) -> Result<pb::PaymentBatch, tonic::Status> {
    suite
        .subsidy()
        .await
        .create_payment_batch(with_token(
            pb::CreatePaymentBatchRequest {
                payment_batch: Some(pb::PaymentBatch {
                    display_name: "2025年3月市中区公益性岗位补贴".into(),
                    selection: Some(pb::ClaimSelection {
                        fund: fund.into(),
                        region_prefix: "370402".into(),
                        ..Default::default()
                    }),
                    ..Default::default()
                }),
                request_id: String::new(),
            },
            token,
        ))
        .await
        .map(|r| r.into_inner().payment_batch.expect("batch"))
}

async fn export(suite: &Suite, token: &str, name: &str) -> Result<(Vec<u8>, pb::ExportFileTrailer), tonic::Status> {
    let mut stream = suite
        .subsidy()
        .await
        .export_payment_batch(with_token(
            pb::ExportPaymentBatchRequest {
                name: name.into(),
                format: pb::DisbursementFileFormat::Csv as i32,
                encoding: pb::FileEncoding::Gbk as i32,
                purpose: Some(common::AccessPurpose {
                    code: common::AccessPurposeCode::Payment as i32,
                    reference: "市中财支〔2025〕12号".into(),
                }),
            },
            token,
        ))
        .await?
        .into_inner();
    let mut bytes = Vec::new();
    let mut trailer = None;
    while let Some(message) = stream.message().await? {
        match message.item {
            Some(pb::export_payment_batch_response::Item::Chunk(chunk)) => bytes.extend(chunk),
            Some(pb::export_payment_batch_response::Item::Trailer(t)) => trailer = Some(t),
            _ => {}
        }
    }
    Ok((bytes, trailer.expect("trailer")))
}

async fn import(
    suite: &Suite,
    token: &str,
    batch: &str,
    file: &str,
) -> (Vec<pb::BankLineResult>, pb::ReconciliationReport) {
    let (bytes, _, _) = encoding_rs::GBK.encode(file);
    let messages = vec![
        pb::ImportBankResultsRequest {
            item: Some(pb::import_bank_results_request::Item::Header(pb::BankResultsHeader {
                payment_batch: batch.into(),
                format: pb::BankResultFileFormat::Csv as i32,
                encoding: pb::FileEncoding::Gbk as i32,
                file_name: "回盘文件.csv".into(),
                bank_name: "中国农业银行枣庄分行".into(),
                request_id: String::new(),
            })),
        },
        pb::ImportBankResultsRequest {
            item: Some(pb::import_bank_results_request::Item::Chunk(bytes.into_owned())),
        },
    ];
    let mut stream = suite
        .subsidy()
        .await
        .import_bank_results(with_token(tokio_stream::iter(messages), token))
        .await
        .expect("imported")
        .into_inner();
    let mut results = Vec::new();
    let mut report = None;
    while let Some(message) = stream.message().await.expect("answer") {
        match message.item {
            Some(pb::import_bank_results_response::Item::LineResults(r)) => results.extend(r.results),
            Some(pb::import_bank_results_response::Item::Report(r)) => report = Some(r),
            None => {}
        }
    }
    (results, report.expect("report"))
}

async fn a_batch_goes_from_approved_claims_to_reconciled_payments(backend: Backend) {
    let suite = Suite::start(backend).await;
    let budget = suite.fund(10_000_000).await;
    let agri = suite.agri_clerk();
    let finance = suite.finance_clerk();
    // Three persons with verified cards; a fourth without an account is left out and counted.
    let mut persons = Vec::new();
    for (i, name) in ["郑一", "郑二", "郑三", "郑四"].iter().enumerate() {
        let sequence = format!("{:03}", 401 + 2 * i);
        let person = suite.poverty_alleviated_person(name, &sequence).await;
        submit(
            &suite,
            &agri,
            post_claim(
                &person,
                &format!("posts/{i}/2025-03"),
                2025,
                3,
                31,
                50_000 + i as i64 * 100,
            ),
        )
        .await
        .expect("claim");
        if i < 3 {
            let id = citizen_id(&format!("37040219700315{sequence}"));
            register(
                &suite,
                &finance,
                person_account(&person, name, &id, &format!("62170000123456{i:02}")),
            )
            .await
            .expect("account");
        }
        persons.push(person);
    }

    let made = batch(&suite, &finance, &budget.name).await.expect("batch");
    assert_eq!(made.state, pb::PaymentBatchState::Draft as i32);
    assert_eq!(made.control_count, 3);
    assert_eq!(made.control_amount.map(|m| m.fen), Some(50_000 + 50_100 + 50_200));
    assert_eq!(made.skipped_without_account, 1);
    // The same claims cannot go into a second batch.
    let second = batch(&suite, &finance, &budget.name)
        .await
        .expect_err("nothing left to batch");
    assert_eq!(reason(&second), "STATE_CONFLICT");

    let mut client = suite.subsidy().await;
    let noticed = client
        .publish_batch_notice(with_token(
            pb::PublishBatchNoticeRequest {
                issuer: "枣庄市市中区财政局".into(),
                name: made.name.clone(),
                first_day: None,
                objection_contact: "市中区财政局 0632-1234567".into(),
                etag: made.etag.clone(),
            },
            &finance,
        ))
        .await
        .expect("noticed")
        .into_inner()
        .payment_batch
        .expect("batch");
    assert_eq!(noticed.notice_days, 7);
    let notice = client
        .get_public_notice(with_token(
            pb::GetPublicNoticeRequest {
                name: format!("{}/publicNotice", made.name),
                ..Default::default()
            },
            &finance,
        ))
        .await
        .expect("notice")
        .into_inner()
        .public_notice
        .expect("notice");
    assert_eq!(notice.total_count, 3);
    assert_eq!(notice.issuer, "枣庄市市中区财政局", "the notice names who issues it");
    let printed = format!("{notice:?}");
    assert!(notice.lines.iter().all(|l| l.masked_name.ends_with('*')), "{printed}");
    assert!(
        !printed.contains("6217") && !printed.contains("370402197003"),
        "no account or ID on a notice"
    );

    let approver = suite.finance_reviewer("reviewer-approver");
    let approve = |etag: String, token: String| {
        let name = made.name.clone();
        let suite = &suite;
        async move {
            suite
                .subsidy()
                .await
                .approve_payment_batch(with_token(
                    pb::ApprovePaymentBatchRequest {
                        name,
                        note: "公示期满无异议".into(),
                        etag,
                    },
                    &token,
                ))
                .await
                .map(|r| r.into_inner().payment_batch.expect("batch"))
        }
    };
    let early = approve(noticed.etag.clone(), approver.clone())
        .await
        .expect_err("the notice runs 7 days");
    assert_eq!(reason(&early), "NOTICE_NOT_ENDED");
    suite.time.advance(time::Duration::days(8));
    // A township's reviewer sees the batch's lines in the township, but may not approve the
    // county's batch.
    let township = suite.token(
        "reviewer-township",
        bangfu_platform::auth::Department::Finance,
        bangfu_platform::auth::Role::Reviewer,
        "370402001",
    );
    let partial = approve(noticed.etag.clone(), township)
        .await
        .expect_err("the batch is the county's");
    assert_eq!(partial.code(), tonic::Code::NotFound);
    let approved = approve(noticed.etag.clone(), approver.clone()).await.expect("approved");
    assert_eq!(approved.state, pb::PaymentBatchState::Approved as i32);
    let after_approval = suite.read_fund(&budget.name).await;
    assert_eq!(after_approval.payable.map(|m| m.fen), Some(150_300));
    assert_eq!(
        after_approval.reserved.map(|m| m.fen),
        Some(50_300),
        "the fourth claim stays reserved"
    );

    // The disbursement file: GBK, a header, three lines in clear, a trailer with the totals.
    let (bytes, trailer) = export(&suite, &finance, &made.name).await.expect("exported");
    assert_eq!(trailer.line_count, 3);
    assert_eq!(trailer.total_amount.map(|m| m.fen), Some(150_300));
    assert_eq!(trailer.file_size, bytes.len() as i64);
    let text = encoding_rs::GBK
        .decode_without_bom_handling_and_without_replacement(&bytes)
        .expect("GBK");
    let rows: Vec<&str> = text.lines().collect();
    assert_eq!(rows.len(), 5, "{text}");
    assert!(
        rows.iter()
            .any(|r| r.contains("6217000012345600") && r.contains("郑一") && r.contains(",500.00,")),
        "{text}"
    );
    assert_eq!(rows[4], "合计,3,1503.00");
    // Each line's id and amount, as the bank reads them: columns 明细编号 and 金额（元）.
    let lines: Vec<(String, String)> = rows[1..4]
        .iter()
        .map(|r| {
            let cells: Vec<&str> = r.split(',').collect();
            (cells[1].to_string(), cells[7].to_string())
        })
        .collect();
    let fen = |yuan: &str| (yuan.replace('.', "")).parse::<i64>().expect("amount");

    // The bank pays two lines, fails one, and the file carries a line of no batch.
    let file = format!(
        "明细编号,金额（元）,结果,付款日期,银行流水号,失败原因\n\
         {},{},成功,2025-03-12,R001,\n\
         {},{},成功,2025-03-12,R002,\n\
         {},{},失败,,,账户已冻结\n\
         nosuchbatch-9,1.00,成功,2025-03-12,R009,\n",
        lines[0].0, lines[0].1, lines[1].0, lines[1].1, lines[2].0, lines[2].1
    );
    let paid_fen = fen(&lines[0].1) + fen(&lines[1].1);
    let failed_fen = fen(&lines[2].1);
    let (results, report) = import(&suite, &finance, &made.name, &file).await;
    assert_eq!(results.len(), 4);
    assert_eq!(results[3].outcome, pb::BankLineOutcome::Issue as i32);
    assert_eq!(report.paid_count, 2);
    assert_eq!(report.paid_amount.map(|m| m.fen), Some(paid_fen));
    assert_eq!(report.failed_count, 1);
    assert_eq!(report.pending_count, 0);
    assert_eq!(report.issue_count, 1);
    assert!(!report.balanced, "an issue is reported, never absorbed");

    // The same file again changes nothing.
    let (again, report_again) = import(&suite, &finance, &made.name, &file).await;
    assert!(again.is_empty());
    assert_eq!(report_again, report);
    // Once the bank has answered, the file is not made again: a failed line may be paid by a
    // new batch.
    let second_file = export(&suite, &finance, &made.name).await.expect_err("results are in");
    assert_eq!(reason(&second_file), "STATE_CONFLICT");

    let settled = suite.read_fund(&budget.name).await;
    assert_eq!(settled.consumed.map(|m| m.fen), Some(paid_fen));
    assert_eq!(settled.payable.map(|m| m.fen), Some(0));
    assert_eq!(
        settled.reserved.map(|m| m.fen),
        Some(50_300 + failed_fen),
        "the failed line is kept for a new batch"
    );
    // The batch's claims, and the journal entries it made, are listed by the batch.
    let in_batch = suite
        .subsidy()
        .await
        .list_claims(with_token(
            pb::ListClaimsRequest {
                payment_batch: made.name.clone(),
                ..Default::default()
            },
            &finance,
        ))
        .await
        .expect("listed")
        .into_inner()
        .claims;
    assert_eq!(in_batch.len(), 3);
    assert!(in_batch.iter().all(|c| c.payment_batch == made.name));
    // Each paid claim says what was paid and when; the failed one says nothing paid.
    let paid_on_claims: Vec<i64> = in_batch
        .iter()
        .filter_map(|c| c.paid_amount.as_ref().map(|m| m.fen))
        .collect();
    assert_eq!(paid_on_claims.len(), 2);
    assert_eq!(paid_on_claims.iter().sum::<i64>(), paid_fen);
    assert!(in_batch.iter().filter(|c| c.paid_amount.is_some()).all(|c| c.paid_date
        == Some(common::Date {
            year: 2025,
            month: 3,
            day: 12
        })));
    let batch_entries = suite
        .subsidy()
        .await
        .list_ledger_entries(with_token(
            pb::ListLedgerEntriesRequest {
                parent: budget.name.clone(),
                payment_batch: made.name.clone(),
                ..Default::default()
            },
            &finance,
        ))
        .await
        .expect("entries")
        .into_inner()
        .entries;
    assert!(!batch_entries.is_empty());
    assert!(batch_entries.iter().all(|e| e.payment_batch == made.name));
    let none_in_2024 = suite
        .subsidy()
        .await
        .list_ledger_entries(with_token(
            pb::ListLedgerEntriesRequest {
                parent: budget.name.clone(),
                entry_period: Some(common::Period {
                    first_day: Some(common::Date {
                        year: 2024,
                        month: 1,
                        day: 1,
                    }),
                    last_day: Some(common::Date {
                        year: 2024,
                        month: 12,
                        day: 31,
                    }),
                }),
                ..Default::default()
            },
            &finance,
        ))
        .await
        .expect("entries")
        .into_inner()
        .entries;
    assert!(none_in_2024.is_empty(), "every entry was made in 2025");

    // Each person's statement shows what was granted and paid; over the four, the file's paid sum.
    let mut paid_over_statements = 0;
    for person in &persons {
        let statement = suite
            .subsidy()
            .await
            .get_person_statement(with_token(
                pb::GetPersonStatementRequest {
                    person: person.clone(),
                    ..Default::default()
                },
                &finance,
            ))
            .await
            .expect("statement")
            .into_inner()
            .statement
            .expect("statement");
        assert_eq!(statement.lines.len(), 1);
        assert!(statement.total_granted.map(|m| m.fen).unwrap_or_default() > 0);
        let paid = statement.total_paid.map(|m| m.fen).unwrap_or_default();
        if paid > 0 {
            assert_eq!(statement.lines[0].state, "PAID");
            assert!(statement.lines[0].paid_date.is_some());
        }
        paid_over_statements += paid;
    }
    assert_eq!(paid_over_statements, paid_fen);

    // The submitting side learns every step from the claim feed.
    let mut feed = suite
        .subsidy()
        .await
        .watch_claim_changes(with_token(pb::WatchClaimChangesRequest::default(), &agri))
        .await
        .expect("watching")
        .into_inner();
    let mut kinds = Vec::new();
    loop {
        let Ok(message) = tokio::time::timeout(std::time::Duration::from_secs(1), feed.message()).await else {
            break;
        };
        let Some(message) = message.expect("the feed stays open") else {
            break;
        };
        if let Some(pb::watch_claim_changes_response::Item::Change(change)) = message.item {
            kinds.push(change.kind);
        }
        if kinds.len() == 4 + 3 + 3 {
            break;
        }
    }
    let count = |kind: pb::ClaimChangeKind| kinds.iter().filter(|k| **k == kind as i32).count();
    assert_eq!(count(pb::ClaimChangeKind::Decided), 4);
    assert_eq!(count(pb::ClaimChangeKind::Batched), 3);
    assert_eq!(count(pb::ClaimChangeKind::Paid), 2);
    assert_eq!(count(pb::ClaimChangeKind::PaymentFailed), 1);

    let budget_fen = settled.budget.map(|m| m.fen).unwrap_or_default();
    let parts = [
        &settled.available,
        &settled.reserved,
        &settled.payable,
        &settled.consumed,
    ]
    .iter()
    .map(|m| m.as_ref().map(|m| m.fen).unwrap_or_default())
    .sum::<i64>();
    assert_eq!(parts, budget_fen, "available + reserved + payable + consumed = budget");
}

async fn an_upheld_objection_cancels_the_batch_and_sends_the_claim_to_review(backend: Backend) {
    let suite = Suite::start(backend).await;
    let budget = suite.fund(10_000_000).await;
    let agri = suite.agri_clerk();
    let finance = suite.finance_clerk();
    let mut claims = Vec::new();
    for (i, name) in ["冯一", "冯二"].iter().enumerate() {
        let sequence = format!("{:03}", 501 + 2 * i);
        let person = suite.poverty_alleviated_person(name, &sequence).await;
        let claim = submit(
            &suite,
            &agri,
            post_claim(&person, &format!("posts/o{i}/2025-03"), 2025, 3, 31, 50_000),
        )
        .await
        .expect("claim")
        .claim
        .expect("claim");
        let id = citizen_id(&format!("37040219700315{sequence}"));
        register(
            &suite,
            &finance,
            person_account(&person, name, &id, &format!("62170000765432{i:02}")),
        )
        .await
        .expect("account");
        claims.push(claim);
    }
    let made = batch(&suite, &finance, &budget.name).await.expect("batch");
    let mut client = suite.subsidy().await;
    let noticed = client
        .publish_batch_notice(with_token(
            pb::PublishBatchNoticeRequest {
                issuer: "枣庄市市中区财政局".into(),
                name: made.name.clone(),
                first_day: None,
                objection_contact: "市中区财政局 0632-1234567".into(),
                etag: made.etag.clone(),
            },
            &finance,
        ))
        .await
        .expect("noticed")
        .into_inner()
        .payment_batch
        .expect("batch");
    let lines = client
        .list_payment_lines(with_token(
            pb::ListPaymentLinesRequest {
                parent: made.name.clone(),
                ..Default::default()
            },
            &finance,
        ))
        .await
        .expect("lines")
        .into_inner()
        .lines;
    let contested = lines[0].clone();
    // Recorded by a subject who could also resolve it, to show that they may not.
    let admin = suite.token(
        "admin-finance",
        bangfu_platform::auth::Department::Finance,
        bangfu_platform::auth::Role::Admin,
        "3704",
    );
    let objection = client
        .raise_objection(with_token(
            pb::RaiseObjectionRequest {
                parent: made.name.clone(),
                objection: Some(pb::Objection {
                    line_number: contested.line_number,
                    channel: pb::ObjectionChannel::Phone as i32,
                    content: "该户3月外出务工，未实际在岗".into(),
                    objector_contact: "李某 13800001234".into(),
                    received_date: Some(crate::support::date(2025, 3, 2)),
                    ..Default::default()
                }),
                request_id: String::new(),
            },
            &admin,
        ))
        .await
        .expect("raised")
        .into_inner()
        .objection
        .expect("objection");
    assert_eq!(objection.state, pb::ObjectionState::Open as i32);
    assert!(
        !objection.objector_contact.contains("13800001234"),
        "the objector's contact is masked"
    );

    suite.time.advance(time::Duration::days(8));
    let batch_now = client
        .get_payment_batch(with_token(
            pb::GetPaymentBatchRequest {
                name: made.name.clone(),
            },
            &finance,
        ))
        .await
        .expect("batch")
        .into_inner()
        .payment_batch
        .expect("batch");
    assert_eq!(batch_now.open_objections, 1);
    let blocked = client
        .approve_payment_batch(with_token(
            pb::ApprovePaymentBatchRequest {
                name: made.name.clone(),
                note: "审批".into(),
                etag: batch_now.etag.clone(),
            },
            &suite.finance_reviewer("reviewer-approver"),
        ))
        .await
        .expect_err("an objection is open");
    assert_eq!(reason(&blocked), "OBJECTION_OPEN");
    let _ = noticed;

    let resolve = |token: String, etag: String| {
        let name = objection.name.clone();
        let suite = &suite;
        async move {
            suite
                .subsidy()
                .await
                .resolve_objection(with_token(
                    pb::ResolveObjectionRequest {
                        name,
                        resolution: pb::ObjectionState::Upheld as i32,
                        finding: "经村委会核实，该户3月未在岗".into(),
                        etag,
                    },
                    &token,
                ))
                .await
                .map(|r| r.into_inner())
        }
    };
    let own = resolve(admin.clone(), batch_now.etag.clone())
        .await
        .expect_err("the recorder does not resolve");
    assert_eq!(reason(&own), "SAME_MAKER_AND_CHECKER");
    let resolved = resolve(suite.finance_reviewer("reviewer-checker"), batch_now.etag.clone())
        .await
        .expect("upheld");
    assert_eq!(
        resolved.payment_batch.expect("batch").state,
        pb::PaymentBatchState::Cancelled as i32
    );

    let claim_state = |name: String| {
        let suite = &suite;
        let finance = finance.clone();
        async move {
            suite
                .subsidy()
                .await
                .get_claim(with_token(pb::GetClaimRequest { name }, &finance))
                .await
                .expect("claim")
                .into_inner()
                .claim
                .expect("claim")
        }
    };
    let back = claim_state(contested.claim.clone()).await;
    assert_eq!(back.state, pb::ClaimState::PendingReview as i32);
    assert_eq!(back.review_cause, pb::ReviewCause::ObjectionUpheld as i32);
    let other = claims
        .iter()
        .find(|c| c.name != contested.claim)
        .expect("other")
        .name
        .clone();
    assert_eq!(claim_state(other).await.state, pb::ClaimState::Approved as i32);
    let fund_after = suite.read_fund(&budget.name).await;
    assert_eq!(
        fund_after.reserved.map(|m| m.fen),
        Some(50_000),
        "the contested claim's reservation is released"
    );
    // The uncontested claim can go into a new batch.
    assert_eq!(
        batch(&suite, &finance, &budget.name)
            .await
            .expect("new batch")
            .control_count,
        1
    );
}

async fn a_category_revoked_before_a_paid_month_opens_a_recovery(backend: Backend) {
    let suite = Suite::start(backend).await;
    let budget = suite.fund(10_000_000).await;
    let agri = suite.agri_clerk();
    let finance = suite.finance_clerk();
    let person = suite.poverty_alleviated_person("褚一", "701").await;
    submit(
        &suite,
        &agri,
        post_claim(&person, "posts/r1/2025-03", 2025, 3, 31, 50_000),
    )
    .await
    .expect("claim");
    register(
        &suite,
        &finance,
        person_account(&person, "褚一", &citizen_id("37040219700315701"), "6217000055550000"),
    )
    .await
    .expect("account");
    let paid = pay_through_the_bank(
        suite.server.channel().await,
        &budget.name,
        "370402",
        &finance,
        &suite.finance_reviewer("reviewer-approver"),
        |_| suite.time.advance(time::Duration::days(8)),
        "2025-03-12",
    )
    .await;
    assert_eq!(paid.paid_count, 1);
    let mut client = suite.subsidy().await;

    // The category ends in February: March was paid on a fact that no longer holds.
    let reviewer = suite.token(
        "reviewer-agri",
        bangfu_platform::auth::Department::Agri,
        bangfu_platform::auth::Role::Reviewer,
        "370402",
    );
    let mut identity = suite.identity().await;
    let certification = identity
        .get_person(with_token(
            bangfu_proto::identity::v1::GetPersonRequest {
                name: person.clone(),
                ..Default::default()
            },
            &reviewer,
        ))
        .await
        .expect("person")
        .into_inner()
        .person
        .expect("person")
        .certifications[0]
        .name
        .clone();
    identity
        .revoke_category(with_token(
            bangfu_proto::identity::v1::RevokeCategoryRequest {
                name: certification,
                valid_to: Some(crate::support::date(2025, 2, 28)),
                annul: false,
                document_reference: "市中乡振〔2025〕7号".into(),
                request_id: String::new(),
            },
            &reviewer,
        ))
        .await
        .expect("revoked");

    // The follower notes the change; the job opens the recovery (here called as its schedule would).
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    loop {
        if suite.app.process_recovery_checks().await.expect("checked") > 0 {
            break;
        }
        assert!(std::time::Instant::now() < deadline, "no recovery was opened");
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    let recoveries = client
        .list_recoveries(with_token(
            pb::ListRecoveriesRequest {
                person: person.clone(),
                ..Default::default()
            },
            &finance,
        ))
        .await
        .expect("listed")
        .into_inner()
        .recoveries;
    assert_eq!(recoveries.len(), 1);
    let recovery = &recoveries[0];
    let by_reason = |reason: pb::RecoveryReason| {
        let (suite, finance) = (&suite, finance.clone());
        async move {
            suite
                .subsidy()
                .await
                .list_recoveries(with_token(
                    pb::ListRecoveriesRequest {
                        reason: reason as i32,
                        ..Default::default()
                    },
                    &finance,
                ))
                .await
                .expect("listed")
                .into_inner()
                .recoveries
                .len()
        }
    };
    assert_eq!(by_reason(pb::RecoveryReason::CategoryRevoked).await, 1);
    assert_eq!(by_reason(pb::RecoveryReason::PersonDeceased).await, 0);
    assert_eq!(recovery.reason, pb::RecoveryReason::CategoryRevoked as i32);
    assert_eq!(recovery.amount.as_ref().map(|m| m.fen), Some(50_000));
    assert_eq!(recovery.state, pb::RecoveryState::Open as i32);
    let reevaluation = recovery.reevaluation.as_ref().expect("re-evaluation");
    assert_eq!(reevaluation.outcome, pb::DecisionOutcome::Rejected as i32);
    assert_eq!(
        reevaluation.policy_version, "policies/zz-welfare-post-2021/versions/1",
        "re-evaluated under the version that decided the claim"
    );
    assert_eq!(
        reevaluation.rejection_reasons[0].reason,
        pb::RejectionReason::NotTargetPerson as i32
    );
    let claim = client
        .get_claim(with_token(
            pb::GetClaimRequest {
                name: recovery.claim.clone(),
            },
            &finance,
        ))
        .await
        .expect("claim")
        .into_inner()
        .claim
        .expect("claim");
    assert_eq!(claim.state, pb::ClaimState::RecoveryOpen as i32);
    let fund_after = suite.read_fund(&budget.name).await;
    assert_eq!(fund_after.recoverable.map(|m| m.fen), Some(50_000));
    assert_eq!(
        fund_after.consumed.map(|m| m.fen),
        Some(50_000),
        "asked back, not yet returned"
    );
    // A second run of the job opens nothing twice.
    assert_eq!(suite.app.process_recovery_checks().await.expect("checked"), 0);

    // The person returns 200 yuan; the rest is written off.
    let settle = |settlement: pb::RecoveryState, amount: i64, etag: String| {
        let name = recovery.name.clone();
        let suite = &suite;
        let finance = finance.clone();
        async move {
            suite
                .subsidy()
                .await
                .settle_recovery(with_token(
                    pb::SettleRecoveryRequest {
                        name,
                        settlement: settlement as i32,
                        returned_amount: Some(bangfu_proto::common::v1::Money { fen: amount }),
                        document: "缴款书 0001".into(),
                        etag,
                        request_id: String::new(),
                    },
                    &finance,
                ))
                .await
                .map(|r| r.into_inner().recovery.expect("recovery"))
        }
    };
    let too_much = settle(pb::RecoveryState::Returned, 60_000, recovery.etag.clone())
        .await
        .expect_err("more than is due");
    assert_eq!(reason(&too_much), "AMOUNT_OUT_OF_RANGE");
    let part = settle(pb::RecoveryState::Returned, 20_000, recovery.etag.clone())
        .await
        .expect("returned");
    assert_eq!(part.state, pb::RecoveryState::Open as i32);
    assert_eq!(part.returned_amount.map(|m| m.fen), Some(20_000));
    let closed = settle(pb::RecoveryState::WrittenOff, 0, part.etag.clone())
        .await
        .expect("written off");
    assert_eq!(closed.state, pb::RecoveryState::WrittenOff as i32);
    let claim = client
        .get_claim(with_token(
            pb::GetClaimRequest {
                name: recovery.claim.clone(),
            },
            &finance,
        ))
        .await
        .expect("claim")
        .into_inner()
        .claim
        .expect("claim");
    assert_eq!(claim.state, pb::ClaimState::Recovered as i32);
    let settled = suite.read_fund(&budget.name).await;
    assert_eq!(settled.recoverable.map(|m| m.fen), Some(0));
    assert_eq!(settled.consumed.map(|m| m.fen), Some(30_000));
    let fen = |m: &Option<bangfu_proto::common::v1::Money>| m.as_ref().map(|m| m.fen).unwrap_or_default();
    assert_eq!(
        fen(&settled.available) + fen(&settled.reserved) + fen(&settled.payable) + fen(&settled.consumed),
        fen(&settled.budget)
    );
}

on_both_backends!(
    a_batch_goes_from_approved_claims_to_reconciled_payments,
    an_upheld_objection_cancels_the_batch_and_sends_the_claim_to_review,
    a_category_revoked_before_a_paid_month_opens_a_recovery,
);
