//! Households (户): register one, show it with its members, add and remove a member, change
//! the head. A person's household and relation are fields of the person, changed with the
//! person's etag like any other.

use bangfu_proto::common::v1 as common;
use bangfu_proto::identity::v1 as pb;
use clap::Subcommand;

use super::persons::change;
use super::{Identity, connect_identity};
use crate::Failure;
use crate::client::{ClientArgs, call};
use crate::format::{enum_value, resource_name};
use crate::print::show;

const HOUSEHOLD: &str = "bangfu.identity.v1.Household";

#[derive(Debug, Subcommand)]
pub enum HouseholdCommand {
    /// Register a household by its number (户编号) in a village.
    Create {
        #[command(flatten)]
        client: ClientArgs,
        /// The household number (户编号).
        #[arg(long)]
        number: String,
        /// The household's village: a 12-digit code.
        #[arg(long)]
        region: String,
        /// A unique id making a retry safe.
        #[arg(long, default_value = "")]
        request_id: String,
    },
    /// Show a household and its members with their relations to the head.
    Show {
        #[command(flatten)]
        client: ClientArgs,
        /// The household: households/… or the bare id.
        household: String,
    },
    /// Add a person to a household (or move them from another one).
    Add {
        #[command(flatten)]
        client: ClientArgs,
        /// The household: households/… or the bare id.
        household: String,
        /// The person: persons/… or the bare id.
        person: String,
        /// The relation to the head: head, spouse, child, parent, grandchild, grandparent,
        /// sibling, child-in-law, other.
        #[arg(long)]
        relation: String,
    },
    /// Remove a person from a household (a member who married out, or was entered in error).
    Remove {
        #[command(flatten)]
        client: ClientArgs,
        /// The household: households/… or the bare id.
        household: String,
        /// The person: persons/… or the bare id.
        person: String,
    },
    /// Make a member the head of the household; the present head takes --old-head-relation.
    Head {
        #[command(flatten)]
        client: ClientArgs,
        /// The household: households/… or the bare id.
        household: String,
        /// The member who becomes the head: persons/… or the bare id.
        person: String,
        /// The present head's relation to the new head, e.g. spouse or parent.
        #[arg(long)]
        old_head_relation: String,
    },
}

pub(super) async fn run(command: HouseholdCommand) -> Result<(), Failure> {
    match command {
        HouseholdCommand::Create {
            client,
            number,
            region,
            request_id,
        } => {
            let mut identity = connect_identity(&client).await?;
            let created = call(identity.create_household(pb::CreateHouseholdRequest {
                household: Some(pb::Household {
                    household_number: number,
                    region: Some(common::RegionCode {
                        code: region,
                        display_name: String::new(),
                    }),
                    ..Default::default()
                }),
                request_id,
            }))
            .await?;
            show(
                HOUSEHOLD,
                &created.household.unwrap_or_default(),
                client.output().is_json(),
            )
        }
        HouseholdCommand::Show { client, household } => {
            let mut identity = connect_identity(&client).await?;
            let household = read(&mut identity, &household).await?;
            show(HOUSEHOLD, &household, client.output().is_json())
        }
        HouseholdCommand::Add {
            client,
            household,
            person,
            relation,
        } => {
            let relation = enum_value::<pb::HouseholdRelation>("--relation", &relation)?;
            let mut identity = connect_identity(&client).await?;
            let household = resource_name("households", &household);
            set_membership(&mut identity, &person, &household, relation).await?;
            let household = read(&mut identity, &household).await?;
            show(HOUSEHOLD, &household, client.output().is_json())
        }
        HouseholdCommand::Remove {
            client,
            household,
            person,
        } => {
            let mut identity = connect_identity(&client).await?;
            let household = resource_name("households", &household);
            let person = resource_name("persons", &person);
            let members = read(&mut identity, &household).await?.members;
            if !members.iter().any(|m| m.person == person) {
                return Err(Failure::not_found(format!("{person} is not a member of {household}")));
            }
            set_membership(&mut identity, &person, "", 0).await?;
            let household = read(&mut identity, &household).await?;
            show(HOUSEHOLD, &household, client.output().is_json())
        }
        HouseholdCommand::Head {
            client,
            household,
            person,
            old_head_relation,
        } => {
            let old_relation = enum_value::<pb::HouseholdRelation>("--old-head-relation", &old_head_relation)?;
            if old_relation == pb::HouseholdRelation::Head as i32 {
                return Err(Failure::usage(
                    "--old-head-relation is the present head's relation to the new head, e.g. spouse: a household has one head",
                ));
            }
            let mut identity = connect_identity(&client).await?;
            let household = resource_name("households", &household);
            let person = resource_name("persons", &person);
            let members = read(&mut identity, &household).await?.members;
            if !members.iter().any(|m| m.person == person) {
                return Err(Failure::not_found(format!(
                    "{person} is not a member of {household}: add them first (identity household add)"
                )));
            }
            let head = pb::HouseholdRelation::Head as i32;
            let old_head = members.iter().find(|m| m.relation == head).map(|m| m.person.clone());
            // A household has one head at a time (the registry refuses a second), so the present
            // head steps down first; if the new head cannot then be set, the old one is restored.
            if let Some(old_head) = &old_head
                && *old_head != person
            {
                set_membership(&mut identity, old_head, &household, old_relation).await?;
                if let Err(failure) = set_membership(&mut identity, &person, &household, head).await {
                    let restored = set_membership(&mut identity, old_head, &household, head).await;
                    return Err(Failure {
                        message: format!(
                            "{person} could not be made the head ({}); {}",
                            failure.message,
                            match restored {
                                Ok(_) => format!("{old_head} is the head again"),
                                Err(again) => format!(
                                    "and {old_head} could not be made the head again ({}): the household has no head until one is set",
                                    again.message
                                ),
                            }
                        ),
                        ..failure
                    });
                }
            } else {
                set_membership(&mut identity, &person, &household, head).await?;
            }
            let household = read(&mut identity, &household).await?;
            show(HOUSEHOLD, &household, client.output().is_json())
        }
    }
}

async fn read(identity: &mut Identity, household: &str) -> Result<pb::Household, Failure> {
    Ok(call(identity.get_household(pb::GetHouseholdRequest {
        name: resource_name("households", household),
    }))
    .await?
    .household
    .unwrap_or_default())
}

/// Sets a person's household and relation (an empty household and relation 0 remove them).
async fn set_membership(
    identity: &mut Identity,
    person: &str,
    household: &str,
    relation: i32,
) -> Result<pb::Person, Failure> {
    let person = pb::Person {
        name: resource_name("persons", person),
        household: household.to_string(),
        household_relation: relation,
        ..Default::default()
    };
    change(
        identity,
        person,
        vec!["household".to_string(), "household_relation".to_string()],
        None,
    )
    .await
}
