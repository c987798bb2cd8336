//! Correcting a mistyped citizen ID: one subject proposes, another with the PII permission
//! approves; the ID, birth date and retirement month change, the old ID stays in the history,
//! lookups follow the new one, and an ID another person holds is refused.

use bangfu_platform::auth::{Department, Role};
use bangfu_platform::error::reason_of;
use bangfu_proto::common::v1 as common;
use bangfu_proto::identity::v1 as pb;
use tonic::Code;

use crate::on_both_backends;
use crate::support::{Backend, Identity, SHIZHONG_VILLAGE, citizen_id, request};

on_both_backends!(
    an_approved_correction_replaces_the_id_and_what_derives_from_it,
    the_proposer_cannot_approve_and_a_held_id_is_refused,
);

async fn register(identity: &Identity, id: &str) -> String {
    let mut client = identity.client().await;
    let person = pb::Person {
        display_name: "吴九".into(),
        citizen_id: id.into(),
        registered_region: Some(common::RegionCode {
            code: SHIZHONG_VILLAGE.into(),
            display_name: String::new(),
        }),
        ..Default::default()
    };
    client
        .create_person(request(
            pb::CreatePersonRequest {
                person: Some(person),
                request_id: String::new(),
            },
            &identity.shizhong_clerk(),
        ))
        .await
        .expect("created")
        .into_inner()
        .person
        .expect("person")
        .name
}

async fn propose(identity: &Identity, person: &str, new_id: &str) -> Result<pb::CitizenIdCorrection, tonic::Status> {
    let mut client = identity.client().await;
    client
        .correct_citizen_id(request(
            pb::CorrectCitizenIdRequest {
                person: person.into(),
                correction: Some(pb::CitizenIdCorrection {
                    new_citizen_id: new_id.into(),
                    reason: "户籍证明显示出生日期为4月16日，原录入有误".into(),
                    ..Default::default()
                }),
                request_id: String::new(),
            },
            &identity.shizhong_clerk(),
        ))
        .await
        .map(|r| r.into_inner().correction.expect("correction"))
}

async fn review(
    identity: &Identity,
    token: &str,
    name: &str,
    approve: bool,
) -> Result<pb::CitizenIdCorrection, tonic::Status> {
    let mut client = identity.client().await;
    client
        .approve_citizen_id_correction(request(
            pb::ApproveCitizenIdCorrectionRequest {
                name: name.into(),
                approve,
                reason: "已核对户籍证明".into(),
            },
            token,
        ))
        .await
        .map(|r| r.into_inner().correction.expect("correction"))
}

async fn an_approved_correction_replaces_the_id_and_what_derives_from_it(backend: Backend) {
    let identity = Identity::start(backend).await;
    let old_id = citizen_id("370402", "19650415", "091");
    let new_id = citizen_id("370402", "19650416", "091");
    let person = register(&identity, &old_id).await;
    let proposed = propose(&identity, &person, &new_id).await.expect("proposed");
    assert_eq!(proposed.state, pb::CorrectionState::Proposed as i32);
    assert_eq!(
        proposed.new_citizen_id,
        format!("{}*************{}", &new_id[..4], &new_id[17..])
    );
    let reviewer = identity.token("reviewer-zhao", Department::Hr, Role::Reviewer, "370402");
    let applied = review(&identity, &reviewer, &proposed.name, true)
        .await
        .expect("approved");
    assert_eq!(applied.state, pb::CorrectionState::Applied as i32);
    assert_eq!(applied.review_subject, "reviewer-zhao");

    let mut client = identity.client().await;
    let read = client
        .get_person(request(
            pb::GetPersonRequest {
                name: person.clone(),
                view: common::PersonalDataView::Unmasked as i32,
                purpose: Some(common::AccessPurpose {
                    code: common::AccessPurposeCode::EligibilityReview as i32,
                    reference: "核对更正结果".into(),
                }),
                ..Default::default()
            },
            &reviewer,
        ))
        .await
        .expect("read")
        .into_inner()
        .person
        .expect("person");
    assert_eq!(
        read.birth_date,
        Some(common::Date {
            year: 1965,
            month: 4,
            day: 16
        })
    );
    assert_eq!(read.etag, "r2");
    let lookup = |id: &str| pb::LookupPersonRequest {
        citizen_id: id.into(),
        display_name: String::new(),
    };
    let by_new = client
        .lookup_person(request(lookup(&new_id), &identity.shizhong_clerk()))
        .await
        .expect("lookup")
        .into_inner();
    assert_eq!(by_new.person, person);
    let by_old = client
        .lookup_person(request(lookup(&old_id), &identity.shizhong_clerk()))
        .await
        .expect("lookup")
        .into_inner();
    assert!(by_old.person.is_empty(), "the old ID no longer finds the person");
    let kept: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM person_citizen_id_history")
        .fetch_one(identity.store.db.pool())
        .await
        .expect("history");
    assert_eq!(kept, 1, "the old ID is kept, encrypted");
    let again = review(&identity, &reviewer, &proposed.name, true)
        .await
        .expect_err("already applied");
    assert_eq!(again.code(), Code::FailedPrecondition);
}

async fn the_proposer_cannot_approve_and_a_held_id_is_refused(backend: Backend) {
    let identity = Identity::start(backend).await;
    let person = register(&identity, &citizen_id("370402", "19700101", "101")).await;
    let other = citizen_id("370402", "19700101", "103");
    register(&identity, &other).await;
    let held = propose(&identity, &person, &other)
        .await
        .expect_err("another person holds it");
    assert_eq!(held.code(), Code::FailedPrecondition);
    let proposed = propose(&identity, &person, &citizen_id("370402", "19700101", "105"))
        .await
        .expect("proposed");
    // The proposer, holding a reviewer role too, still may not check their own change.
    let same_subject = identity.token("clerk-li", Department::Hr, Role::Reviewer, "370402");
    let status = review(&identity, &same_subject, &proposed.name, true)
        .await
        .expect_err("maker is not checker");
    assert_eq!(status.code(), Code::PermissionDenied);
    assert_eq!(reason_of(&status).as_deref(), Some("SAME_MAKER_AND_CHECKER"));
    let reviewer = identity.token("reviewer-zhao", Department::Hr, Role::Reviewer, "370402");
    let rejected = review(&identity, &reviewer, &proposed.name, false)
        .await
        .expect("rejected");
    assert_eq!(rejected.state, pb::CorrectionState::Rejected as i32);
}
