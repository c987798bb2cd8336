//! Changing a person: a field mask and an etag, so two counties editing one person never
//! overwrite each other silently; regions and labor capacity keep their history; the county a
//! person leaves sees the move on its feed.

use std::time::Duration;

use bangfu_platform::auth::{Department, Role};
use bangfu_platform::error::reason_of;
use bangfu_proto::common::v1 as common;
use bangfu_proto::identity::v1 as pb;
use bangfu_proto::identity::v1::watch_person_changes_response::Item;
use tonic::Code;

use crate::on_both_backends;
use crate::support::{Backend, Identity, SHIZHONG_VILLAGE, XUECHENG_VILLAGE, citizen_id, read_person, request};

on_both_backends!(
    a_change_with_the_current_etag_is_kept_and_history_answers_earlier_dates,
    a_stale_etag_is_aborted_and_unchangeable_fields_are_refused,
    a_person_moving_away_is_seen_leaving_and_then_is_out_of_scope,
);

async fn register(identity: &Identity) -> pb::Person {
    let mut client = identity.client().await;
    let person = pb::Person {
        display_name: "周八".into(),
        citizen_id: citizen_id("370402", "19700303", "081"),
        registered_region: Some(common::RegionCode {
            code: SHIZHONG_VILLAGE.into(),
            display_name: String::new(),
        }),
        labor_capacity: common::LaborCapacity::Full as i32,
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
}

fn region(code: &str) -> Option<common::RegionCode> {
    Some(common::RegionCode {
        code: code.into(),
        display_name: String::new(),
    })
}

async fn update(
    identity: &Identity,
    token: &str,
    person: pb::Person,
    paths: &[&str],
    effective: Option<common::Date>,
) -> Result<pb::Person, tonic::Status> {
    let mut client = identity.client().await;
    client
        .update_person(request(
            pb::UpdatePersonRequest {
                person: Some(person),
                update_mask: Some(prost_types::FieldMask {
                    paths: paths.iter().map(|p| p.to_string()).collect(),
                }),
                effective_date: effective,
            },
            token,
        ))
        .await
        .map(|r| r.into_inner().person.expect("person"))
}

async fn read_on(identity: &Identity, token: &str, name: &str, day: common::Date) -> pb::Person {
    let period = common::Period {
        first_day: Some(day),
        last_day: Some(day),
    };
    read_person(identity, token, name, Some(period)).await
}

async fn a_change_with_the_current_etag_is_kept_and_history_answers_earlier_dates(backend: Backend) {
    let identity = Identity::start(backend).await;
    let clerk = identity.shizhong_clerk();
    let mut person = register(&identity).await;
    let name = person.name.clone();
    person.labor_capacity = common::LaborCapacity::Half as i32;
    person.residence_region = region(XUECHENG_VILLAGE);
    person.phone = "13900001111".into();
    let updated = update(
        &identity,
        &clerk,
        person,
        &["labor_capacity", "residence_region", "phone"],
        Some(common::Date {
            year: 2026,
            month: 2,
            day: 1,
        }),
    )
    .await
    .expect("updated");
    assert_eq!(updated.etag, "r2");
    assert_eq!(updated.labor_capacity, common::LaborCapacity::Half as i32);
    assert_eq!(updated.residence_region.expect("residence").code, XUECHENG_VILLAGE);
    assert_eq!(updated.phone, "139****1111");
    let january = read_on(
        &identity,
        &clerk,
        &name,
        common::Date {
            year: 2026,
            month: 1,
            day: 15,
        },
    )
    .await;
    assert_eq!(
        january.labor_capacity,
        common::LaborCapacity::Full as i32,
        "January's answer is January's"
    );
    assert_eq!(january.residence_region.expect("residence").code, SHIZHONG_VILLAGE);
}

async fn a_stale_etag_is_aborted_and_unchangeable_fields_are_refused(backend: Backend) {
    let identity = Identity::start(backend).await;
    let clerk = identity.shizhong_clerk();
    let person = register(&identity).await;
    let mut first = person.clone();
    first.skills = vec!["电焊".into()];
    update(&identity, &clerk, first, &["skills"], None)
        .await
        .expect("first edit");
    // A second county edits from the same read: refused, not silently overwritten.
    let mut second = person.clone();
    second.skills = vec!["厨师".into()];
    let status = update(&identity, &clerk, second, &["skills"], None)
        .await
        .expect_err("stale");
    assert_eq!(status.code(), Code::Aborted);
    assert_eq!(reason_of(&status).as_deref(), Some("ETAG_MISMATCH"));
    let mut no_etag = person.clone();
    no_etag.etag = String::new();
    let status = update(&identity, &clerk, no_etag, &["skills"], None)
        .await
        .expect_err("no etag");
    assert_eq!(status.code(), Code::InvalidArgument);
    let mut current = read_on(
        &identity,
        &clerk,
        &person.name,
        common::Date {
            year: 2026,
            month: 3,
            day: 2,
        },
    )
    .await;
    assert_eq!(current.skills, ["电焊"]);
    current.citizen_id = citizen_id("370402", "19700303", "083");
    let status = update(&identity, &clerk, current, &["citizen_id"], None)
        .await
        .expect_err("ID changes by correction only");
    let details = tonic_types::StatusExt::get_error_details(&status);
    assert_eq!(
        details.bad_request().expect("field").field_violations[0].field,
        "update_mask"
    );
}

async fn a_person_moving_away_is_seen_leaving_and_then_is_out_of_scope(backend: Backend) {
    let identity = Identity::start(backend).await;
    let clerk = identity.shizhong_clerk();
    let mut person = register(&identity).await;
    let name = person.name.clone();
    let watcher = identity.token("feed-shizhong", Department::Hr, Role::Admin, "370402");
    let mut client = identity.client().await;
    let mut feed = client
        .watch_person_changes(request(
            pb::WatchPersonChangesRequest {
                after_cursor: String::new(),
                start_at_head: false,
                kinds: Vec::new(),
            },
            &watcher,
        ))
        .await
        .expect("watch")
        .into_inner();
    person.registered_region = region(XUECHENG_VILLAGE);
    person.residence_region = region(XUECHENG_VILLAGE);
    update(
        &identity,
        &clerk,
        person,
        &["registered_region", "residence_region"],
        None,
    )
    .await
    .expect("moved");
    let mut kinds = Vec::new();
    while kinds.len() < 3 {
        let item = tokio::time::timeout(Duration::from_secs(10), feed.message())
            .await
            .expect("in time")
            .expect("healthy")
            .expect("open");
        if let Some(Item::Change(change)) = item.item {
            assert_eq!(change.person, name);
            kinds.push(change.kind);
        }
    }
    assert_eq!(
        kinds,
        [
            pb::ChangeKind::Created as i32,
            pb::ChangeKind::RegistrationMoved as i32,
            pb::ChangeKind::ResidenceMoved as i32
        ],
        "the county the person leaves sees the move"
    );
    let status = client
        .get_person(request(
            pb::GetPersonRequest {
                name,
                ..Default::default()
            },
            &clerk,
        ))
        .await
        .expect_err("now outside the county");
    assert_eq!(status.code(), Code::NotFound);
}
