//! `bangfu identity …`: the person registry from the command line, for administrators and for
//! trying the suite. Reads the address and token like every client command.

use bangfu_proto::common::v1 as common;
use bangfu_proto::identity::v1 as pb;
use bangfu_proto::identity::v1::identity_service_client::IdentityServiceClient;
use clap::Subcommand;

use crate::Failure;
use crate::client::{ClientArgs, authorized, call_failed, print_rows};

#[derive(Debug, Subcommand)]
pub enum IdentityCommand {
    /// Register a person.
    Create {
        #[command(flatten)]
        client: ClientArgs,
        /// Name.
        #[arg(long)]
        name: String,
        /// Citizen ID (18 characters).
        #[arg(long)]
        citizen_id: String,
        /// Registered region: a 12-digit village code.
        #[arg(long)]
        region: String,
        /// A unique id making a retry safe.
        #[arg(long, default_value = "")]
        request_id: String,
    },
    /// Show a person, masked.
    Get {
        #[command(flatten)]
        client: ClientArgs,
        /// persons/….
        person: String,
    },
    /// Find a person by citizen ID (audited); with --name, say whether it matches.
    Find {
        #[command(flatten)]
        client: ClientArgs,
        /// Citizen ID.
        citizen_id: String,
        /// A name to compare.
        #[arg(long, default_value = "")]
        name: String,
    },
}

pub async fn run(command: IdentityCommand) -> Result<(), Failure> {
    match command {
        IdentityCommand::Create {
            client,
            name,
            citizen_id,
            region,
            request_id,
        } => {
            let mut identity = IdentityServiceClient::new(authorized(&client).await?);
            let person = pb::Person {
                display_name: name,
                citizen_id,
                registered_region: Some(common::RegionCode {
                    code: region,
                    display_name: String::new(),
                }),
                ..Default::default()
            };
            let created = identity
                .create_person(pb::CreatePersonRequest {
                    person: Some(person),
                    request_id,
                })
                .await
                .map_err(|s| call_failed(&s))?
                .into_inner()
                .person
                .unwrap_or_default();
            show(&created, client.json);
            Ok(())
        }
        IdentityCommand::Get { client, person } => {
            let mut identity = IdentityServiceClient::new(authorized(&client).await?);
            let read = identity
                .get_person(pb::GetPersonRequest {
                    name: person,
                    ..Default::default()
                })
                .await
                .map_err(|s| call_failed(&s))?
                .into_inner()
                .person
                .unwrap_or_default();
            show(&read, client.json);
            Ok(())
        }
        IdentityCommand::Find {
            client,
            citizen_id,
            name,
        } => {
            let mut identity = IdentityServiceClient::new(authorized(&client).await?);
            let found = identity
                .lookup_person(pb::LookupPersonRequest {
                    citizen_id,
                    display_name: name,
                })
                .await
                .map_err(|s| call_failed(&s))?
                .into_inner();
            let matched = pb::NameMatch::try_from(found.name_match).unwrap_or(pb::NameMatch::Unspecified);
            if client.json {
                say!(
                    "{}",
                    serde_json::json!({ "person": found.person, "name_match": matched.as_str_name() })
                );
            } else if found.person.is_empty() {
                say!("not found (or outside your scope)");
            } else {
                print_rows(&[("person", found.person), ("name", matched.as_str_name().to_string())]);
            }
            Ok(())
        }
    }
}

fn show(person: &pb::Person, json: bool) {
    let region = |r: &Option<common::RegionCode>| {
        r.as_ref()
            .map(|r| format!("{} {}", r.code, r.display_name))
            .unwrap_or_default()
    };
    let retirement = person
        .retirement_month
        .as_ref()
        .map(|m| format!("{:04}-{:02}", m.year, m.month))
        .unwrap_or_default();
    if json {
        say!(
            "{}",
            serde_json::json!({
                "name": person.name,
                "display_name": person.display_name,
                "citizen_id": person.citizen_id,
                "registered_region": person.registered_region.as_ref().map(|r| r.code.clone()),
                "residence_region": person.residence_region.as_ref().map(|r| r.code.clone()),
                "retirement_month": retirement,
                "etag": person.etag,
            })
        );
    } else {
        print_rows(&[
            ("person", person.name.clone()),
            ("name", person.display_name.clone()),
            ("citizen id", person.citizen_id.clone()),
            ("registered", region(&person.registered_region)),
            ("residence", region(&person.residence_region)),
            ("retirement", retirement),
            ("certifications", person.certifications.len().to_string()),
            ("etag", person.etag.clone()),
        ]);
    }
}
