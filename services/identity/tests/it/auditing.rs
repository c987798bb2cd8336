//! What the audit log holds and who reads it: auditors see the events of their own region
//! scope; a read of a person outside the caller's scope is refused as NOT_FOUND and is on
//! record; an unmasked batch read names each person it read.

use bangfu_platform::auth::{Department, Role};
use bangfu_proto::common::v1 as common;
use bangfu_proto::identity::v1 as pb;
use tonic::Code;

use crate::on_both_backends;
use crate::support::{Backend, Identity, SHIZHONG_VILLAGE, YUZHONG_VILLAGE, citizen_id, register, request};

on_both_backends!(
    auditors_read_the_events_of_their_scope_and_refusals_outside_scope_are_on_record,
    an_unmasked_batch_read_names_each_person_it_read,
);

/// Every event the auditor with `token` can list, in chain order.
async fn audit_log(identity: &Identity, token: &str) -> Vec<common::AuditEvent> {
    let mut client = identity.client().await;
    let mut events = Vec::new();
    let mut page_token = String::new();
    loop {
        let page = client
            .list_audit_events(request(
                pb::ListAuditEventsRequest {
                    page_size: 2,
                    page_token: page_token.clone(),
                    ..Default::default()
                },
                token,
            ))
            .await
            .expect("the auditor reads the log")
            .into_inner();
        events.extend(page.audit_events);
        if page.next_page_token.is_empty() {
            return events;
        }
        page_token = page.next_page_token;
    }
}

async fn auditors_read_the_events_of_their_scope_and_refusals_outside_scope_are_on_record(backend: Backend) {
    let identity = Identity::start(backend).await;
    let country = identity.token("admin-country", Department::Hr, Role::Admin, "*");
    let shizhong = register(
        &identity,
        &identity.shizhong_clerk(),
        "张三",
        &citizen_id("370402", "19800101", "011"),
        SHIZHONG_VILLAGE,
    )
    .await;
    // Registered by a whole-country administrator: the row is in the person's region.
    let yuzhong = register(
        &identity,
        &country,
        "李四",
        &citizen_id("500101", "19800101", "013"),
        YUZHONG_VILLAGE,
    )
    .await;
    let xuecheng_clerk = identity.token("clerk-xue", Department::Hr, Role::Clerk, "370403");
    let refused = identity
        .client()
        .await
        .get_person(request(
            pb::GetPersonRequest {
                name: shizhong.clone(),
                ..Default::default()
            },
            &xuecheng_clerk,
        ))
        .await
        .expect_err("outside the clerk's county");
    assert_eq!(refused.code(), Code::NotFound);
    // The answer names its trace three ways a client may read, all the same id.
    let trace_id = tonic_types::StatusExt::get_error_details(&refused)
        .request_info()
        .expect("RequestInfo")
        .request_id
        .clone();
    assert_eq!(trace_id.len(), 32, "{trace_id}");
    assert_eq!(
        refused
            .metadata()
            .get("x-bangfu-trace-id")
            .and_then(|v| v.to_str().ok()),
        Some(trace_id.as_str())
    );
    assert_eq!(
        tonic_types::StatusExt::get_error_details(&refused)
            .error_info()
            .and_then(|info| info.metadata.get("trace_id").cloned()),
        Some(trace_id.clone())
    );

    let zaozhuang_auditor = identity.token("auditor-zao", Department::Hr, Role::Auditor, "3704");
    let chongqing_auditor = identity.token("auditor-yu", Department::Hr, Role::Auditor, "50");
    let country_auditor = identity.token("auditor-all", Department::Hr, Role::Auditor, "*");
    // The refusal is written off the request path: wait until the log holds it.
    let mut zaozhuang = Vec::new();
    for _ in 0..100 {
        bangfu_platform::testing::seal_audit(&identity.store.db, 2).await;
        zaozhuang = audit_log(&identity, &zaozhuang_auditor).await;
        if zaozhuang
            .iter()
            .any(|e| e.outcome == common::AuditOutcome::Denied as i32)
        {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    let denied = zaozhuang
        .iter()
        .find(|e| e.outcome == common::AuditOutcome::Denied as i32)
        .expect("the refused read is on record");
    assert_eq!(denied.resource, shizhong);
    assert!(denied.method.ends_with("/GetPerson"), "{}", denied.method);
    assert_eq!(denied.subject, "clerk-xue");
    assert_eq!(denied.reason, "NOT_FOUND");
    assert_eq!(denied.region, "370403", "in the region of the caller's scope");
    assert_eq!(
        denied.trace_id, trace_id,
        "the audit row names the trace the clerk was told"
    );
    assert!(
        zaozhuang
            .iter()
            .any(|e| e.resource == shizhong && e.method.ends_with("/CreatePerson"))
    );
    assert!(
        zaozhuang.iter().all(|e| e.region.starts_with("3704")),
        "nothing outside Zaozhuang"
    );
    assert!(!zaozhuang.iter().any(|e| e.resource == yuzhong));

    let chongqing = audit_log(&identity, &chongqing_auditor).await;
    assert_eq!(chongqing.len(), 1, "{chongqing:?}");
    assert_eq!(chongqing[0].resource, yuzhong);
    assert_eq!(chongqing[0].region, YUZHONG_VILLAGE);

    let everything = audit_log(&identity, &country_auditor).await;
    assert_eq!(everything.len(), zaozhuang.len() + chongqing.len());
}

async fn an_unmasked_batch_read_names_each_person_it_read(backend: Backend) {
    let identity = Identity::start(backend).await;
    let clerk = identity.shizhong_clerk();
    let mut names = Vec::new();
    for (n, sequence) in ["011", "013", "015"].iter().enumerate() {
        names.push(
            register(
                &identity,
                &clerk,
                &format!("王{n}"),
                &citizen_id("370402", "19800101", sequence),
                SHIZHONG_VILLAGE,
            )
            .await,
        );
    }
    let reviewer = identity.token("reviewer-zhao", Department::Hr, Role::Reviewer, "370402");
    let read = identity
        .client()
        .await
        .batch_get_persons(request(
            pb::BatchGetPersonsRequest {
                names: names.clone(),
                period: None,
                view: common::PersonalDataView::Unmasked as i32,
                purpose: Some(common::AccessPurpose {
                    code: common::AccessPurposeCode::EligibilityReview as i32,
                    reference: "枣人社函〔2026〕12号".into(),
                }),
            },
            &reviewer,
        ))
        .await
        .expect("a reviewer with a purpose")
        .into_inner();
    assert_eq!(read.results.len(), 3);
    bangfu_platform::testing::seal_audit(&identity.store.db, 6).await;
    let auditor = identity.token("auditor-zao", Department::Hr, Role::Auditor, "3704");
    let mut read_in_clear: Vec<String> = audit_log(&identity, &auditor)
        .await
        .into_iter()
        .filter(|e| e.subject == "reviewer-zhao")
        .inspect(|e| assert!(e.purpose.is_some(), "each row states the purpose"))
        .map(|e| e.resource)
        .collect();
    read_in_clear.sort();
    names.sort();
    assert_eq!(read_in_clear, names);
}
