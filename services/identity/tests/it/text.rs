//! Text no request may carry — NUL, control characters, bidi overrides — refused in any string
//! field, naming it, on both backends, and nothing written.

use bangfu_platform::auth::{Department, Role};
use bangfu_platform::error::reason_of;
use bangfu_proto::common::v1 as common;
use bangfu_proto::identity::v1 as pb;
use tonic::Code;

use crate::on_both_backends;
use crate::support::{Backend, Identity, SHIZHONG_VILLAGE, citizen_id, request};

on_both_backends!(
    nul_controls_and_bidi_overrides_are_refused_in_any_field_naming_it,
    dates_a_registration_cannot_take_and_letters_for_a_region_code_are_refused_naming_the_field,
);

fn refused_field(status: &tonic::Status) -> String {
    assert_eq!(status.code(), Code::InvalidArgument, "{status:?}");
    assert_eq!(reason_of(status).as_deref(), Some("FIELD_INVALID"), "{status:?}");
    tonic_types::StatusExt::get_error_details(status)
        .bad_request()
        .expect("the field is named")
        .field_violations[0]
        .field
        .clone()
}

fn person(name: &str, skills: Vec<String>) -> pb::Person {
    pb::Person {
        display_name: name.into(),
        citizen_id: citizen_id("370402", "19800101", "011"),
        registered_region: Some(common::RegionCode {
            code: SHIZHONG_VILLAGE.into(),
            display_name: String::new(),
        }),
        skills,
        ..Default::default()
    }
}

async fn nul_controls_and_bidi_overrides_are_refused_in_any_field_naming_it(backend: Backend) {
    let identity = Identity::start(backend).await;
    let clerk = identity.shizhong_clerk();
    let mut client = identity.client().await;
    let create = |person: pb::Person| pb::CreatePersonRequest {
        person: Some(person),
        request_id: String::new(),
    };
    let cases = [
        (create(person("王\0秀英", vec![])), "person.display_name"),
        (create(person("王\u{202E}英秀", vec![])), "person.display_name"),
        (
            create(person("王秀英", vec!["电工".into(), "焊\u{1b}[31m工".into()])),
            "person.skills[1]",
        ),
    ];
    for (message, field) in cases {
        let status = client.create_person(request(message, &clerk)).await.expect_err(field);
        assert_eq!(refused_field(&status), field);
    }
    let listed = client
        .list_persons(request(pb::ListPersonsRequest::default(), &clerk))
        .await
        .expect("list")
        .into_inner()
        .persons;
    assert!(listed.is_empty(), "nothing was written");

    // A parameter's source document, where ESC and NUL used to be stored.
    let admin = identity.token("admin-li", Department::Hr, Role::Admin, "*");
    let status = client
        .update_parameter(request(
            pb::UpdateParameterRequest {
                parameter: Some(common::Parameter {
                    key: "identity.lookups_per_minute".into(),
                    region_prefix: "37".into(),
                    valid_from: Some(common::Date {
                        year: 2026,
                        month: 1,
                        day: 1,
                    }),
                    value: 100,
                    source_document: "鲁人社字\u{1b}〔2026〕1号\0".into(),
                    ..Default::default()
                }),
                update_mask: None,
                allow_missing: true,
            },
            &admin,
        ))
        .await
        .expect_err("control characters in the source document");
    assert_eq!(refused_field(&status), "parameter.source_document");

    // Ordinary Chinese text goes through.
    client
        .create_person(request(create(person("王秀英", vec!["电工".into()])), &clerk))
        .await
        .expect("plain text");
}

async fn dates_a_registration_cannot_take_and_letters_for_a_region_code_are_refused_naming_the_field(backend: Backend) {
    let identity = Identity::start(backend).await;
    let clerk = identity.shizhong_clerk();
    let mut client = identity.client().await;
    let impossible = common::Date {
        year: 2026,
        month: 13,
        day: 32,
    };
    let real = common::Date {
        year: 2026,
        month: 1,
        day: 5,
    };
    for (death, moved, field) in [
        (Some(impossible), None, "person.death_date"),
        (None, Some(impossible), "person.moved_away_date"),
        (Some(real), None, "person.death_date"),
    ] {
        let status = client
            .create_person(request(
                pb::CreatePersonRequest {
                    person: Some(pb::Person {
                        death_date: death,
                        moved_away_date: moved,
                        ..person("王秀英", vec![])
                    }),
                    request_id: String::new(),
                },
                &clerk,
            ))
            .await
            .expect_err(field);
        assert_eq!(status.code(), Code::InvalidArgument, "{status:?}");
        let named = tonic_types::StatusExt::get_error_details(&status)
            .bad_request()
            .expect("the field is named")
            .field_violations[0]
            .field
            .clone();
        assert_eq!(named, field);
    }
    let admin = identity.token("admin-li", Department::Hr, Role::Admin, "*");
    let status = client
        .list_parameters(request(
            pb::ListParametersRequest {
                filter: Some(common::ParameterFilter {
                    region_code: "shandong".into(),
                    ..Default::default()
                }),
                ..Default::default()
            },
            &admin,
        ))
        .await
        .expect_err("letters are no region code");
    assert_eq!(refused_field(&status), "filter.region_code");
}
