//! Payee accounts: checked against identity by name and citizen ID, stored encrypted, shown
//! masked; a verified newer account replaces the one in use.

use bangfu_platform::testing::{citizen_id, with_token};
use bangfu_proto::subsidy::v1 as pb;

use crate::on_both_backends;
use crate::support::{Backend, Suite, reason};

pub fn person_account(person: &str, holder: &str, id: &str, number: &str) -> pb::PayeeAccount {
    pb::PayeeAccount {
        owner: Some(pb::Payee {
            payee: Some(pb::payee::Payee::Person(person.into())),
        }),
        kind: pb::PayeeAccountKind::SocialSecurityCard as i32,
        account_number: number.into(),
        holder_name: holder.into(),
        holder_citizen_id: id.into(),
        bank_name: "中国农业银行枣庄市中支行".into(),
        ..Default::default()
    }
}

pub async fn register(
    suite: &Suite,
    token: &str,
    account: pb::PayeeAccount,
) -> Result<pb::PayeeAccount, tonic::Status> {
    suite
        .subsidy()
        .await
        .register_payee_account(with_token(
            pb::RegisterPayeeAccountRequest {
                payee_account: Some(account),
                request_id: String::new(),
            },
            token,
        ))
        .await
        .map(|r| r.into_inner().payee_account.expect("account"))
}

async fn an_account_is_verified_by_name_and_id_and_never_shown_whole(backend: Backend) {
    let suite = Suite::start(backend).await;
    let person = suite.poverty_alleviated_person("吴十", "301").await;
    let clerk = suite.finance_clerk();
    let id = citizen_id("37040219700315301");

    let verified = register(&suite, &clerk, person_account(&person, "吴十", &id, "6217000012345678"))
        .await
        .expect("registered");
    assert_eq!(
        verified.verification_state,
        pb::PayeeAccountVerificationState::Verified as i32
    );
    assert!(verified.in_use);
    assert_eq!(verified.masked_account_number, "6217********5678");
    assert_eq!(verified.holder_name, "吴*");
    assert!(verified.account_number.is_empty() && verified.holder_citizen_id.is_empty());

    let wrong_name = register(&suite, &clerk, person_account(&person, "吴拾", &id, "6217000099990000"))
        .await
        .expect("stored, not usable");
    assert_eq!(
        wrong_name.verification_state,
        pb::PayeeAccountVerificationState::NameMismatch as i32
    );
    assert!(!wrong_name.in_use);

    let newer = register(
        &suite,
        &clerk,
        person_account(&person, "吴十", &id, "6228480012345678901"),
    )
    .await
    .expect("a new card");
    assert!(newer.in_use);
    let older = suite
        .subsidy()
        .await
        .get_payee_account(with_token(
            pb::GetPayeeAccountRequest {
                name: verified.name.clone(),
            },
            &clerk,
        ))
        .await
        .expect("read")
        .into_inner()
        .payee_account
        .expect("account");
    assert!(!older.in_use);
    assert_eq!(older.superseded_by, newer.name);

    let wrong_check = format!("{}{}", &id[..17], if id.ends_with('0') { '1' } else { '0' });
    let bad_id = register(
        &suite,
        &clerk,
        person_account(&person, "吴十", &wrong_check, "6217000012345678"),
    )
    .await
    .expect_err("a wrong check character");
    assert_eq!(reason(&bad_id), "CITIZEN_ID_INVALID");
}

fn row(number: i64, holder: &str, citizen_id: &str, account: &str) -> pb::PayeeAccountRow {
    pb::PayeeAccountRow {
        row_number: number,
        kind: pb::PayeeAccountKind::SocialSecurityCard as i32,
        holder_name: holder.into(),
        holder_citizen_id: citizen_id.into(),
        account_number: account.into(),
        bank_name: "枣庄农村商业银行".into(),
        ..Default::default()
    }
}

async fn register_list(
    suite: &Suite,
    token: &str,
    messages: Vec<pb::RegisterPayeeAccountsRequest>,
) -> Result<Vec<pb::PayeeAccountRowResult>, tonic::Status> {
    let mut responses = suite
        .subsidy()
        .await
        .register_payee_accounts(with_token(tokio_stream::iter(messages), token))
        .await?
        .into_inner();
    let mut results = Vec::new();
    while let Some(response) = responses.message().await? {
        results.extend(response.results);
    }
    Ok(results)
}

async fn a_banks_account_list_registers_each_row_once_with_its_check(backend: Backend) {
    let suite = Suite::start(backend).await;
    let wu = suite.person("吴十", "301").await;
    suite.person("郑一", "302").await;
    let clerk = suite.finance_clerk();
    let (wu_id, zheng_id) = (citizen_id("37040219700315301"), citizen_id("37040219700315302"));
    let stranger = citizen_id("37040219700315399");
    let bad_check = format!("{}{}", &wu_id[..17], if wu_id.ends_with('0') { '1' } else { '0' });
    let first = pb::RegisterPayeeAccountsRequest {
        source_document: "枣庄农商行2025年3月社保卡名单.csv".into(),
        verification_document: "营业执照 91350100M000100Y43".into(),
        organization_region: "370402".into(),
        rows: vec![
            row(2, "吴十", &wu_id, "6217000012345678"),
            row(3, "郑壹", &zheng_id, "6217000012345679"),
            row(4, "王五", &stranger, "6217000012345680"),
            row(5, "王五", &bad_check, "6217000012345681"),
            pb::PayeeAccountRow {
                holder_citizen_id: String::new(),
                credit_code: "91350100M000100Y43".into(),
                kind: pb::PayeeAccountKind::BankAccount as i32,
                ..row(6, "枣庄市市中区某劳务公司", "", "1602000009000123456")
            },
            row(7, "吴十", &wu_id, "6217000099999999"),
        ],
    };
    let results = register_list(&suite, &clerk, vec![first.clone()])
        .await
        .expect("registered");
    let outcome = |i: usize| pb::PayeeAccountRowOutcome::try_from(results[i].outcome).expect("outcome");
    let error = |i: usize| results[i].error.clone().map(|e| e.reason).unwrap_or_default();
    assert_eq!(
        results.iter().map(|r| r.row_number).collect::<Vec<_>>(),
        vec![2, 3, 4, 5, 6, 7]
    );
    assert_eq!(outcome(0), pb::PayeeAccountRowOutcome::Created);
    assert_eq!(
        results[0].verification_state,
        pb::PayeeAccountVerificationState::Verified as i32
    );
    assert_eq!(outcome(1), pb::PayeeAccountRowOutcome::Created);
    assert_eq!(
        results[1].verification_state,
        pb::PayeeAccountVerificationState::NameMismatch as i32
    );
    assert_eq!(
        (outcome(2), error(2).as_str()),
        (pb::PayeeAccountRowOutcome::Rejected, "NOT_FOUND")
    );
    assert_eq!(
        (outcome(3), error(3).as_str()),
        (pb::PayeeAccountRowOutcome::Rejected, "CITIZEN_ID_INVALID")
    );
    assert_eq!(outcome(4), pb::PayeeAccountRowOutcome::Created);
    assert_eq!(
        (outcome(5), error(5).as_str()),
        (pb::PayeeAccountRowOutcome::Rejected, "DUPLICATE_IN_IMPORT")
    );

    // The person's account is theirs, in use, masked.
    let listed = suite
        .subsidy()
        .await
        .list_payee_accounts(with_token(
            pb::ListPayeeAccountsRequest {
                person: wu.clone(),
                ..Default::default()
            },
            &clerk,
        ))
        .await
        .expect("listed")
        .into_inner()
        .payee_accounts;
    assert_eq!(listed.len(), 1);
    assert_eq!(listed[0].name, results[0].payee_account);
    assert!(listed[0].in_use);
    assert_eq!(listed[0].masked_account_number, "6217********5678");

    // The same list sent again, after a crash: nothing registered twice.
    let again = register_list(&suite, &clerk, vec![first]).await.expect("sent again");
    assert_eq!(again[0].outcome, pb::PayeeAccountRowOutcome::Unchanged as i32);
    assert_eq!(again[0].payee_account, results[0].payee_account);
    assert_eq!(again[4].outcome, pb::PayeeAccountRowOutcome::Unchanged as i32);
    assert_eq!(again[4].payee_account, results[4].payee_account);

    // The mismatched row corrected (the holder's name as identity has it): now registered and
    // verified, not taken for the row sent before.
    let corrected = register_list(
        &suite,
        &clerk,
        vec![pb::RegisterPayeeAccountsRequest {
            source_document: "枣庄农商行更正名单".into(),
            rows: vec![row(3, "郑一", &zheng_id, "6217000012345679")],
            ..Default::default()
        }],
    )
    .await
    .expect("corrected");
    assert_eq!(corrected[0].outcome, pb::PayeeAccountRowOutcome::Created as i32);
    assert_eq!(
        corrected[0].verification_state,
        pb::PayeeAccountVerificationState::Verified as i32
    );
    assert_ne!(corrected[0].payee_account, results[1].payee_account);

    // Accounts waiting for a corrected name, and the ones in use, each listed on their own.
    let listed_by = |state: pb::PayeeAccountVerificationState, in_use_only: bool| {
        let (suite, clerk) = (&suite, clerk.clone());
        async move {
            suite
                .subsidy()
                .await
                .list_payee_accounts(with_token(
                    pb::ListPayeeAccountsRequest {
                        verification_state: state as i32,
                        in_use_only,
                        ..Default::default()
                    },
                    &clerk,
                ))
                .await
                .expect("listed")
                .into_inner()
                .payee_accounts
        }
    };
    let mismatched = listed_by(pb::PayeeAccountVerificationState::NameMismatch, false).await;
    assert_eq!(
        mismatched.iter().map(|a| a.name.clone()).collect::<Vec<_>>(),
        vec![results[1].payee_account.clone()]
    );
    let in_use = listed_by(pb::PayeeAccountVerificationState::Unspecified, true).await;
    assert_eq!(in_use.len(), 3, "吴十's, 郑一's corrected one, the company's");
    assert!(in_use.iter().all(|a| a.in_use));

    // A list without its origin is refused before any row is read.
    let unnamed = register_list(
        &suite,
        &clerk,
        vec![pb::RegisterPayeeAccountsRequest {
            rows: vec![row(2, "吴十", &wu_id, "6217000012345678")],
            ..Default::default()
        }],
    )
    .await
    .expect_err("no origin");
    assert_eq!(reason(&unnamed), "FIELD_REQUIRED");

    // A clerk of another city finds nobody on the list: no account, no hint who exists.
    let other_city = suite.token(
        "clerk-finance-5",
        bangfu_platform::auth::Department::Finance,
        bangfu_platform::auth::Role::Clerk,
        "3705",
    );
    let elsewhere = register_list(
        &suite,
        &other_city,
        vec![pb::RegisterPayeeAccountsRequest {
            source_document: "名单".into(),
            rows: vec![row(2, "吴十", &wu_id, "6217000055555555")],
            ..Default::default()
        }],
    )
    .await
    .expect("answered");
    assert_eq!(
        elsewhere[0].error.clone().map(|e| e.reason).unwrap_or_default(),
        "NOT_FOUND"
    );
}

on_both_backends!(
    an_account_is_verified_by_name_and_id_and_never_shown_whole,
    a_banks_account_list_registers_each_row_once_with_its_check,
);
