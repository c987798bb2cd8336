//! Persons: register, read, find by citizen ID, list. What a clerk sees is masked unless the
//! call is one that is audited for it (`find`).

use bangfu_proto::common::v1 as common;
use bangfu_proto::identity::v1 as pb;
use clap::Args;

use super::connect_identity;
use crate::Failure;
use crate::client::{ClientArgs, call, print_rows};
use crate::client::{PageArgs, Pages};
use crate::format::{enum_filter, or_dash, resource_name};

#[derive(Debug, Args)]
pub struct CreateArgs {
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
}

#[derive(Debug, Args)]
pub struct GetArgs {
    #[command(flatten)]
    client: ClientArgs,
    /// The person: persons/… or the bare id.
    person: String,
}

#[derive(Debug, Args)]
pub struct FindArgs {
    #[command(flatten)]
    client: ClientArgs,
    /// Citizen ID.
    citizen_id: String,
    /// A name to compare.
    #[arg(long, default_value = "")]
    name: String,
}

#[derive(Debug, Args)]
pub struct ListArgs {
    #[command(flatten)]
    client: ClientArgs,
    /// Only persons registered or residing under this division-code prefix, e.g. 370402.
    #[arg(long, default_value = "")]
    region: String,
    /// Only persons holding this category today: poverty-alleviated, monitored-at-risk,
    /// rural-low-income, relocated, yellow-river-resettled, employment-difficulty, disabled.
    #[arg(long)]
    category: Option<String>,
    /// Only persons with this employment status today (the values `employment --status` takes).
    #[arg(long)]
    status: Option<String>,
    #[command(flatten)]
    page: PageArgs,
}

pub(super) async fn create(args: CreateArgs) -> Result<(), Failure> {
    let mut identity = connect_identity(&args.client).await?;
    let person = pb::Person {
        display_name: args.name,
        citizen_id: args.citizen_id,
        registered_region: Some(common::RegionCode {
            code: args.region,
            display_name: String::new(),
        }),
        ..Default::default()
    };
    let created = call(identity.create_person(pb::CreatePersonRequest {
        person: Some(person),
        request_id: args.request_id,
    }))
    .await?;
    show(created.person.as_ref(), args.client.json);
    Ok(())
}

pub(super) async fn get(args: GetArgs) -> Result<(), Failure> {
    let mut identity = connect_identity(&args.client).await?;
    let read = call(identity.get_person(pb::GetPersonRequest {
        name: resource_name("persons", &args.person),
        ..Default::default()
    }))
    .await?;
    show(read.person.as_ref(), args.client.json);
    Ok(())
}

pub(super) async fn find(args: FindArgs) -> Result<(), Failure> {
    let mut identity = connect_identity(&args.client).await?;
    let found = call(identity.lookup_person(pb::LookupPersonRequest {
        citizen_id: args.citizen_id,
        display_name: args.name,
    }))
    .await?;
    let matched = pb::NameMatch::try_from(found.name_match).unwrap_or(pb::NameMatch::Unspecified);
    if args.client.json {
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

pub(super) async fn list(args: ListArgs) -> Result<(), Failure> {
    let category = enum_filter::<common::PersonCategory>("--category", args.category.as_deref())?;
    let employment_status = enum_filter::<common::EmploymentStatus>("--status", args.status.as_deref())?;
    let mut pages = Pages::new(args.page.page_size, args.page.page_token, args.page.all)?;
    let json = args.client.json;
    let mut identity = connect_identity(&args.client).await?;
    while let Some(page_token) = pages.next_token() {
        let page = call(identity.list_persons(pb::ListPersonsRequest {
            region_prefix: args.region.clone(),
            category,
            employment_status,
            page_size: pages.size,
            page_token,
        }))
        .await?;
        for person in &page.persons {
            let region = person.registered_region.as_ref().map(|r| r.code.as_str());
            if json {
                say!(
                    "{}",
                    serde_json::json!({
                        "name": person.name,
                        "display_name": person.display_name,
                        "citizen_id": person.citizen_id,
                        "registered_region": region,
                    })
                );
            } else {
                say!(
                    "{}  {}  {}  {}",
                    person.name,
                    or_dash(&person.citizen_id),
                    region.unwrap_or("-"),
                    person.display_name
                );
            }
        }
        pages.fetched(page.next_page_token);
    }
    pages.finish(json);
    Ok(())
}

/// Prints the person a call answered with (an empty one if it answered none).
fn show(person: Option<&pb::Person>, json: bool) {
    let unset = pb::Person::default();
    let person = person.unwrap_or(&unset);
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
