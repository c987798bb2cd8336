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

on_both_backends!(an_account_is_verified_by_name_and_id_and_never_shown_whole);
