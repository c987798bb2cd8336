//! Certifying persons into categories and revoking or annulling them, through gRPC: who may
//! certify what is data, history is kept, and a read for a period answers as of that period.

use bangfu_platform::auth::{Department, Role};
use bangfu_platform::error::reason_of;
use bangfu_proto::common::v1 as common;
use bangfu_proto::identity::v1 as pb;
use tonic::Code;

use crate::on_both_backends;
use crate::support::{Backend, Identity, SHIZHONG_VILLAGE, citizen_id, request};

on_both_backends!(
    a_certification_shows_in_reads_of_periods_it_overlaps,
    only_the_department_the_table_names_may_certify_a_category,
    a_revocation_ends_it_and_an_annulment_voids_it_with_history_kept,
    bad_certifications_are_refused_naming_the_field,
    a_retried_certification_is_made_once,
);

fn date(year: i32, month: i32, day: i32) -> Option<common::Date> {
    Some(common::Date { year, month, day })
}

fn poverty_alleviated(from: Option<common::Date>, to: Option<common::Date>) -> common::CategoryCertification {
    common::CategoryCertification {
        category: common::PersonCategory::PovertyAlleviated as i32,
        household_type: 0,
        certifying_body: "枣庄市市中区乡村振兴局".into(),
        document_reference: "市中振发〔2026〕5号".into(),
        valid_from: from,
        valid_to: to,
        annulled: false,
    }
}

async fn registered(identity: &Identity) -> String {
    let mut client = identity.client().await;
    let person = pb::Person {
        display_name: "刘大".into(),
        citizen_id: citizen_id("370402", "19680808", "071"),
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

fn agri_reviewer(identity: &Identity) -> String {
    identity.token("reviewer-agri", Department::Agri, Role::Reviewer, "370402")
}

async fn certify(
    identity: &Identity,
    token: &str,
    person: &str,
    certification: common::CategoryCertification,
    request_id: &str,
) -> Result<pb::Certification, tonic::Status> {
    let mut client = identity.client().await;
    client
        .certify_category(request(
            pb::CertifyCategoryRequest {
                person: person.into(),
                certification: Some(certification),
                request_id: request_id.into(),
            },
            token,
        ))
        .await
        .map(|r| r.into_inner().certification.expect("certification"))
}

async fn categories_in(
    identity: &Identity,
    person: &str,
    first: Option<common::Date>,
    last: Option<common::Date>,
) -> Vec<pb::Certification> {
    let mut client = identity.client().await;
    client
        .get_person(request(
            pb::GetPersonRequest {
                name: person.into(),
                period: Some(common::Period {
                    first_day: first,
                    last_day: last,
                }),
                ..Default::default()
            },
            &identity.shizhong_clerk(),
        ))
        .await
        .expect("read")
        .into_inner()
        .person
        .expect("person")
        .certifications
}

async fn a_certification_shows_in_reads_of_periods_it_overlaps(backend: Backend) {
    let identity = Identity::start(backend).await;
    let person = registered(&identity).await;
    let made = certify(
        &identity,
        &agri_reviewer(&identity),
        &person,
        poverty_alleviated(date(2026, 1, 1), None),
        "",
    )
    .await
    .expect("certified");
    assert!(made.name.starts_with(&format!("{person}/certifications/")));
    assert_eq!(made.certify_subject, "reviewer-agri");
    let march = categories_in(&identity, &person, date(2026, 3, 1), date(2026, 3, 31)).await;
    assert_eq!(march.len(), 1);
    assert_eq!(march[0].name, made.name);
    let december = categories_in(&identity, &person, date(2025, 12, 1), date(2025, 12, 31)).await;
    assert!(december.is_empty(), "nothing before valid_from");
    let spanning = categories_in(&identity, &person, date(2025, 12, 1), date(2026, 1, 1)).await;
    assert_eq!(spanning.len(), 1, "a period touching the first day overlaps");
}

async fn only_the_department_the_table_names_may_certify_a_category(backend: Backend) {
    let identity = Identity::start(backend).await;
    let person = registered(&identity).await;
    let hr_reviewer = identity.token("reviewer-hr", Department::Hr, Role::Reviewer, "370402");
    let status = certify(
        &identity,
        &hr_reviewer,
        &person,
        poverty_alleviated(date(2026, 1, 1), None),
        "",
    )
    .await
    .expect_err("HR does not certify poverty-alleviated persons");
    assert_eq!(status.code(), Code::PermissionDenied);
    assert_eq!(reason_of(&status).as_deref(), Some("PERMISSION_MISSING"));
    assert!(
        status.message().contains("certified by agri"),
        "the refusal names the department to ask: {}",
        status.message()
    );
    let mut difficulty = poverty_alleviated(date(2026, 1, 1), None);
    difficulty.category = common::PersonCategory::EmploymentDifficulty as i32;
    difficulty.certifying_body = "枣庄市市中区人社局".into();
    certify(&identity, &hr_reviewer, &person, difficulty, "")
        .await
        .expect("HR certifies employment difficulty");
    let mut disabled = poverty_alleviated(date(2026, 1, 1), None);
    disabled.category = common::PersonCategory::Disabled as i32;
    disabled.certifying_body = "枣庄市残疾人联合会".into();
    certify(&identity, &hr_reviewer, &person, disabled, "")
        .await
        .expect("HR enters the federation's document");
    let status = certify(
        &identity,
        &identity.shizhong_clerk(),
        &person,
        poverty_alleviated(date(2026, 1, 1), None),
        "",
    )
    .await
    .expect_err("clerks do not certify");
    assert_eq!(status.code(), Code::PermissionDenied);
}

async fn a_revocation_ends_it_and_an_annulment_voids_it_with_history_kept(backend: Backend) {
    let identity = Identity::start(backend).await;
    let person = registered(&identity).await;
    let reviewer = agri_reviewer(&identity);
    let made = certify(
        &identity,
        &reviewer,
        &person,
        poverty_alleviated(date(2026, 1, 1), None),
        "",
    )
    .await
    .expect("certified");
    let mut client = identity.client().await;
    let revoked = client
        .revoke_category(request(
            pb::RevokeCategoryRequest {
                name: made.name.clone(),
                valid_to: date(2026, 2, 28),
                annul: false,
                document_reference: "市中振发〔2026〕9号".into(),
                request_id: String::new(),
            },
            &reviewer,
        ))
        .await
        .expect("revoked")
        .into_inner()
        .certification
        .expect("certification");
    assert_eq!(revoked.certification.as_ref().expect("c").valid_to, date(2026, 2, 28));
    assert!(revoked.revoke_time.is_some());
    // A payroll for February run later still sees it; March does not.
    assert_eq!(
        categories_in(&identity, &person, date(2026, 2, 1), date(2026, 2, 28))
            .await
            .len(),
        1
    );
    assert!(
        categories_in(&identity, &person, date(2026, 3, 1), date(2026, 3, 31))
            .await
            .is_empty()
    );

    let mistaken = certify(
        &identity,
        &reviewer,
        &person,
        poverty_alleviated(date(2026, 3, 1), None),
        "",
    )
    .await
    .expect("second");
    client
        .revoke_category(request(
            pb::RevokeCategoryRequest {
                name: mistaken.name.clone(),
                valid_to: None,
                annul: true,
                document_reference: "市中振发〔2026〕10号".into(),
                request_id: String::new(),
            },
            &reviewer,
        ))
        .await
        .expect("annulled");
    let march = categories_in(&identity, &person, date(2026, 3, 1), date(2026, 3, 31)).await;
    assert_eq!(march.len(), 1, "the annulled certification is still listed");
    assert!(march[0].certification.as_ref().expect("c").annulled);
    assert!(march[0].annul_time.is_some());
    let again = client
        .revoke_category(request(
            pb::RevokeCategoryRequest {
                name: mistaken.name,
                valid_to: date(2026, 3, 31),
                annul: false,
                document_reference: "x".into(),
                request_id: String::new(),
            },
            &reviewer,
        ))
        .await
        .expect_err("an annulled certification does not change again");
    assert_eq!(again.code(), Code::FailedPrecondition);
}

async fn bad_certifications_are_refused_naming_the_field(backend: Backend) {
    let identity = Identity::start(backend).await;
    let person = registered(&identity).await;
    let reviewer = agri_reviewer(&identity);
    let mut monitored = poverty_alleviated(date(2026, 1, 1), None);
    monitored.category = common::PersonCategory::MonitoredAtRisk as i32;
    let backwards = poverty_alleviated(date(2026, 3, 1), date(2026, 2, 1));
    let no_start = poverty_alleviated(None, None);
    let mut no_document = poverty_alleviated(date(2026, 1, 1), None);
    no_document.document_reference = "  ".into();
    for (certification, field) in [
        (monitored, "certification.household_type"),
        (backwards, "certification.valid_to"),
        (no_start, "certification.valid_from"),
        (no_document, "certification.document_reference"),
    ] {
        let status = certify(&identity, &reviewer, &person, certification, "")
            .await
            .expect_err("refused");
        assert_eq!(status.code(), Code::InvalidArgument, "{field}");
        let details = tonic_types::StatusExt::get_error_details(&status);
        assert_eq!(details.bad_request().expect("field").field_violations[0].field, field);
    }
    let rows: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM certifications")
        .fetch_one(identity.store.db.pool())
        .await
        .expect("count");
    assert_eq!(rows, 0);
}

async fn a_retried_certification_is_made_once(backend: Backend) {
    let identity = Identity::start(backend).await;
    let person = registered(&identity).await;
    let reviewer = agri_reviewer(&identity);
    let id = "8d3b1f0e-55aa-4d2c-9e71-0c6a5b4d3e21";
    let first = certify(
        &identity,
        &reviewer,
        &person,
        poverty_alleviated(date(2026, 1, 1), None),
        id,
    )
    .await
    .expect("first");
    let retry = certify(
        &identity,
        &reviewer,
        &person,
        poverty_alleviated(date(2026, 1, 1), None),
        id,
    )
    .await
    .expect("retry");
    assert_eq!(first.name, retry.name);
    let rows: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM certifications")
        .fetch_one(identity.store.db.pool())
        .await
        .expect("count");
    assert_eq!(rows, 1);
}
