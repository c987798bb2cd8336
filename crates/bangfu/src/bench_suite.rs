//! What the end-to-end benches (`close-month`, `relief-month`) share: calls with a bearer token,
//! the persons they pay read from identity, and the server's peak memory.

use bangfu_proto::common::v1 as common;
use bangfu_proto::identity::v1 as id;
use tonic::metadata::{Ascii, MetadataValue};
use tonic::transport::Channel;

use crate::Failure;

/// A token as the authorization header.
pub(crate) fn bearer(token: &str) -> Result<MetadataValue<Ascii>, Failure> {
    format!("Bearer {token}")
        .parse()
        .map_err(|_| Failure::usage("a token cannot be sent as a header"))
}

pub(crate) fn authorized<T>(message: T, bearer: &MetadataValue<Ascii>) -> tonic::Request<T> {
    let mut request = tonic::Request::new(message);
    request.metadata_mut().insert("authorization", bearer.clone());
    request
}

pub(crate) fn failed(what: &str) -> impl Fn(tonic::Status) -> Failure + '_ {
    move |status| Failure::failed(format!("{what}: {}", status.message()))
}

/// Lets the planner see rows a bench loaded in one go, as autovacuum would before long; a table
/// still empty is left alone (`db::holds_rows`).
pub(crate) async fn analyze_filled(db: &bangfu_platform::db::Database, tables: &[&str]) -> Result<(), Failure> {
    let mut connection = db
        .pool()
        .acquire()
        .await
        .map_err(|e| Failure::failed(format!("connecting to analyze: {e}")))?;
    for table in tables {
        let filled = bangfu_platform::db::holds_rows(&mut connection, table)
            .await
            .map_err(|e| Failure::failed(format!("reading {table}: {e}")))?;
        if filled {
            sqlx::query(sqlx::AssertSqlSafe(format!("ANALYZE {table}")))
                .execute(&mut *connection)
                .await
                .map_err(|e| Failure::failed(format!("ANALYZE {table}: {e}")))?;
        }
    }
    Ok(())
}

/// Peak resident memory of a process in MiB (VmHWM), when /proc has it.
pub(crate) fn peak_mib(pid: u32) -> Option<f64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    let kib: f64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kib / 1024.0)
}

/// `count` poverty-alleviated persons registered in a village under `region_prefix`, as
/// identity lists them: (person id, village, masked name), by village.
pub(crate) async fn poverty_alleviated(
    channel: &Channel,
    bearer: &MetadataValue<Ascii>,
    region_prefix: &str,
    count: usize,
) -> Result<Vec<(String, String, String)>, Failure> {
    let mut identity = id::identity_service_client::IdentityServiceClient::new(channel.clone());
    let mut persons = Vec::with_capacity(count);
    let mut page_token = String::new();
    while persons.len() < count {
        let page = identity
            .list_persons(authorized(
                id::ListPersonsRequest {
                    region_prefix: region_prefix.to_string(),
                    category: common::PersonCategory::PovertyAlleviated as i32,
                    page_size: 1000,
                    page_token: page_token.clone(),
                    ..Default::default()
                },
                bearer,
            ))
            .await
            .map_err(failed("listing persons"))?
            .into_inner();
        for person in page.persons {
            let village = person.registered_region.map(|r| r.code).unwrap_or_default();
            if village.len() == 12 && persons.len() < count {
                let person_id = person.name.trim_start_matches("persons/").to_string();
                persons.push((person_id, village, person.display_name));
            }
        }
        if page.next_page_token.is_empty() {
            break;
        }
        page_token = page.next_page_token;
    }
    if persons.len() < count {
        return Err(Failure::failed(format!(
            "identity has {} poverty-alleviated persons under {region_prefix}; import more (bench persons-csv, identity import)",
            persons.len()
        )));
    }
    persons.sort_by(|a, b| a.1.cmp(&b.1));
    Ok(persons)
}
