//! Households: a number, members and their relations to the head — what other services read
//! to find relatives.

use bangfu_platform::auth::{Department, Role};
use bangfu_proto::common::v1 as common;
use bangfu_proto::identity::v1 as pb;
use tonic::Code;

use crate::on_both_backends;
use crate::support::{Backend, Identity, SHIZHONG_VILLAGE, citizen_id, request};

on_both_backends!(a_household_lists_its_members_with_one_head);

fn region(code: &str) -> Option<common::RegionCode> {
    Some(common::RegionCode {
        code: code.into(),
        display_name: String::new(),
    })
}

async fn add_member(
    identity: &Identity,
    household: &str,
    name: &str,
    sequence: &str,
    relation: pb::HouseholdRelation,
) -> Result<pb::Person, tonic::Status> {
    let mut client = identity.client().await;
    let person = pb::Person {
        display_name: name.into(),
        citizen_id: citizen_id("370402", "19750101", sequence),
        registered_region: region(SHIZHONG_VILLAGE),
        household: household.into(),
        household_relation: relation as i32,
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
        .map(|r| r.into_inner().person.expect("person"))
}

async fn a_household_lists_its_members_with_one_head(backend: Backend) {
    let identity = Identity::start(backend).await;
    let mut client = identity.client().await;
    let clerk = identity.shizhong_clerk();
    let household = client
        .create_household(request(
            pb::CreateHouseholdRequest {
                household: Some(pb::Household {
                    household_number: "3704020010130001".into(),
                    region: region(SHIZHONG_VILLAGE),
                    ..Default::default()
                }),
                request_id: String::new(),
            },
            &clerk,
        ))
        .await
        .expect("household")
        .into_inner()
        .household
        .expect("household");
    let head = add_member(&identity, &household.name, "郑大", "111", pb::HouseholdRelation::Head)
        .await
        .expect("head");
    assert_eq!(head.household, household.name);
    assert_eq!(head.household_relation, pb::HouseholdRelation::Head as i32);
    add_member(&identity, &household.name, "冯二", "112", pb::HouseholdRelation::Spouse)
        .await
        .expect("spouse");
    let second_head = add_member(&identity, &household.name, "郑三", "113", pb::HouseholdRelation::Head)
        .await
        .expect_err("a household has one head");
    let details = tonic_types::StatusExt::get_error_details(&second_head);
    assert_eq!(
        details.bad_request().expect("field").field_violations[0].field,
        "person.household_relation"
    );
    let no_relation = add_member(
        &identity,
        &household.name,
        "郑四",
        "115",
        pb::HouseholdRelation::Unspecified,
    )
    .await
    .expect_err("relation required");
    assert_eq!(no_relation.code(), Code::InvalidArgument);
    let missing = add_member(
        &identity,
        "households/0000000000000000000a",
        "郑五",
        "117",
        pb::HouseholdRelation::Child,
    )
    .await
    .expect_err("no such household");
    assert_eq!(missing.code(), Code::NotFound);

    let read = client
        .get_household(request(
            pb::GetHouseholdRequest {
                name: household.name.clone(),
            },
            &clerk,
        ))
        .await
        .expect("read")
        .into_inner()
        .household
        .expect("household");
    let mut members: Vec<(String, i32)> = read
        .members
        .iter()
        .map(|m| (m.display_name.clone(), m.relation))
        .collect();
    members.sort();
    assert_eq!(
        members,
        vec![
            ("冯*".to_string(), pb::HouseholdRelation::Spouse as i32),
            ("郑*".to_string(), pb::HouseholdRelation::Head as i32)
        ]
    );
    let chongqing = identity.token("clerk-chen", Department::Hr, Role::Clerk, "50");
    let hidden = client
        .get_household(request(
            pb::GetHouseholdRequest {
                name: household.name.clone(),
            },
            &chongqing,
        ))
        .await
        .expect_err("outside scope");
    assert_eq!(hidden.code(), Code::NotFound);
    let duplicate = client
        .create_household(request(
            pb::CreateHouseholdRequest {
                household: Some(pb::Household {
                    household_number: "3704020010130001".into(),
                    region: region(SHIZHONG_VILLAGE),
                    ..Default::default()
                }),
                request_id: String::new(),
            },
            &clerk,
        ))
        .await
        .expect_err("number taken");
    assert_eq!(duplicate.code(), Code::AlreadyExists);
}
