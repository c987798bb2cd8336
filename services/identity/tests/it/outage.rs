//! A database that goes away, as a client sees it: every call that needs it is UNAVAILABLE with
//! DATABASE_UNAVAILABLE and a hint when to retry — never INTERNAL, whatever the driver reports —
//! a call's own deadline is kept, readiness turns on the failing calls, and all comes back.

use std::time::{Duration, Instant};

use bangfu_platform::auth::{Department, Role};
use bangfu_platform::error::reason_of;
use bangfu_proto::identity::v1 as pb;
use tonic::Code;
use tonic_health::pb::health_check_response::ServingStatus;
use tonic_health::pb::{HealthCheckRequest, health_client::HealthClient};

use crate::support::{IDENTITY_SERVICE, Identity, SHIZHONG_VILLAGE, citizen_id, register, request};

fn ok<T>(answer: Result<T, tonic::Status>) -> Result<(), tonic::Status> {
    answer.map(|_| ())
}

async fn readiness(identity: &Identity) -> i32 {
    HealthClient::new(identity.server.channel().await)
        .check(HealthCheckRequest {
            service: IDENTITY_SERVICE.into(),
        })
        .await
        .expect("health answers")
        .into_inner()
        .status
}

/// The outcome of each kind of call identity serves from its database.
async fn calls(identity: &Identity, person: &str, n: u32) -> Vec<(&'static str, Result<(), tonic::Status>)> {
    let clerk = identity.shizhong_clerk();
    let auditor = identity.token("auditor-qian", Department::Hr, Role::Auditor, "*");
    let mut client = identity.client().await;
    vec![
        (
            "GetPerson",
            ok(client
                .get_person(request(
                    pb::GetPersonRequest {
                        name: person.into(),
                        ..Default::default()
                    },
                    &clerk,
                ))
                .await),
        ),
        (
            "CreatePerson",
            ok(client
                .create_person(request(
                    pb::CreatePersonRequest {
                        person: Some(pb::Person {
                            display_name: "钱七".into(),
                            citizen_id: citizen_id("370402", "19810101", &format!("{:03}", 101 + 2 * n)),
                            registered_region: Some(bangfu_proto::common::v1::RegionCode {
                                code: SHIZHONG_VILLAGE.into(),
                                display_name: String::new(),
                            }),
                            ..Default::default()
                        }),
                        request_id: format!("outage-{n}"),
                    },
                    &clerk,
                ))
                .await),
        ),
        (
            "ListPersons",
            ok(client
                .list_persons(request(pb::ListPersonsRequest::default(), &clerk))
                .await),
        ),
        (
            "LookupPerson",
            ok(client
                .lookup_person(request(
                    pb::LookupPersonRequest {
                        citizen_id: citizen_id("370402", "19800101", "011"),
                        ..Default::default()
                    },
                    &clerk,
                ))
                .await),
        ),
        (
            "ListAuditEvents",
            ok(client
                .list_audit_events(request(pb::ListAuditEventsRequest::default(), &auditor))
                .await),
        ),
    ]
}

#[tokio::test]
async fn every_call_during_a_database_outage_is_database_unavailable_and_readiness_follows_on_postgres() {
    let (identity, proxy) = Identity::start_through_proxy().await;
    let clerk = identity.shizhong_clerk();
    let person = register(
        &identity,
        &clerk,
        "张三",
        &citizen_id("370402", "19800101", "011"),
        SHIZHONG_VILLAGE,
    )
    .await;
    for (method, outcome) in calls(&identity, &person, 0).await {
        outcome.unwrap_or_else(|status| panic!("{method} before the outage: {status:?}"));
    }
    assert_eq!(readiness(&identity).await, ServingStatus::Serving as i32);

    // A proxy that accepts connections and closes them at once.
    proxy.cut();
    for round in 1..=3 {
        for (method, outcome) in calls(&identity, &person, round).await {
            let status = outcome.expect_err(method);
            assert_eq!(status.code(), Code::Unavailable, "{method}, round {round}: {status:?}");
            assert_eq!(
                reason_of(&status).as_deref(),
                Some("DATABASE_UNAVAILABLE"),
                "{method}: {status:?}"
            );
            let retry = tonic_types::StatusExt::get_error_details(&status).retry_info().cloned();
            assert!(retry.is_some_and(|r| r.retry_delay.is_some()), "{method}: no RetryInfo");
        }
    }
    // Readiness is checked every minute here: the failing calls turned it.
    let deadline = Instant::now() + Duration::from_secs(20);
    while readiness(&identity).await != ServingStatus::NotServing as i32 {
        assert!(Instant::now() < deadline, "readiness did not follow the failing calls");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }

    // A caller with 3 s hears it from the database in time, not DEADLINE_EXCEEDED.
    let mut client = identity.client().await;
    let mut read = request(
        pb::GetPersonRequest {
            name: person.clone(),
            ..Default::default()
        },
        &clerk,
    );
    read.set_timeout(Duration::from_secs(3));
    let status = client.get_person(read).await.expect_err("the database is away");
    assert_eq!(status.code(), Code::Unavailable, "{status:?}");

    proxy.restore();
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let outcomes = calls(&identity, &person, 9).await;
        if outcomes.iter().all(|(_, outcome)| outcome.is_ok()) {
            break;
        }
        assert!(Instant::now() < deadline, "calls did not recover: {outcomes:?}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}
