//! `parameter`: the service's rules by region and date — list them, or set one value without
//! overwriting a change made meanwhile (the row's etag).

use bangfu_proto::common::v1 as common;
use bangfu_proto::identity::v1 as pb;
use clap::Subcommand;

use super::connect_identity;
use crate::Failure;
use crate::client::{ClientArgs, call};
use crate::format::{date_text, parse_date};

#[derive(Debug, Subcommand)]
pub enum ParameterCommand {
    /// The rows of a key (or of every key), with their regions, dates and documents.
    List {
        #[command(flatten)]
        client: ClientArgs,
        /// Only this key, e.g. identity.income_drop_alert_bp.
        #[arg(long, default_value = "")]
        key: String,
    },
    /// Set the value of the row (key, region, first day), creating it when missing. An
    /// administrator with the parameter permission; the change is audited and reaches every
    /// replica within its cache time (30 s).
    Set {
        #[command(flatten)]
        client: ClientArgs,
        /// The key, e.g. identity.lookups_per_minute.
        key: String,
        /// The region prefix the row applies to, or `*` for the whole country.
        #[arg(long)]
        region: String,
        /// The row's first day, YYYY-MM-DD.
        #[arg(long)]
        from: String,
        /// The value, an integer in the key's unit.
        #[arg(long, allow_negative_numbers = true)]
        value: i64,
        /// The policy document the value comes from.
        #[arg(long)]
        document: String,
    },
}

pub(super) async fn run(command: ParameterCommand) -> Result<(), Failure> {
    let date_text = |d: &Option<common::Date>| d.as_ref().map(date_text).unwrap_or_default();
    match command {
        ParameterCommand::List { client, key } => {
            let mut identity = connect_identity(&client).await?;
            let mut page_token = String::new();
            loop {
                let page = call(identity.list_parameters(pb::ListParametersRequest {
                    filter: Some(common::ParameterFilter {
                        key: key.clone(),
                        ..Default::default()
                    }),
                    page_size: 1000,
                    page_token,
                }))
                .await?;
                for row in &page.parameters {
                    if client.json {
                        say!(
                            "{}",
                            serde_json::json!({
                                "key": row.key, "region_prefix": row.region_prefix, "valid_from": date_text(&row.valid_from),
                                "valid_to": date_text(&row.valid_to), "value": row.value, "source_document": row.source_document,
                            })
                        );
                    } else {
                        say!(
                            "{}  {}  {} .. {}  {}  ({})",
                            row.key,
                            row.region_prefix,
                            date_text(&row.valid_from),
                            date_text(&row.valid_to),
                            row.value,
                            row.source_document
                        );
                    }
                }
                if page.next_page_token.is_empty() {
                    return Ok(());
                }
                page_token = page.next_page_token;
            }
        }
        ParameterCommand::Set {
            client,
            key,
            region,
            from,
            value,
            document,
        } => {
            let valid_from = parse_date("--from", &from)?;
            let mut identity = connect_identity(&client).await?;
            // The row's etag, when it exists, so a change made meanwhile is not overwritten.
            let existing = call(identity.list_parameters(pb::ListParametersRequest {
                filter: Some(common::ParameterFilter {
                    key: key.clone(),
                    ..Default::default()
                }),
                page_size: 1000,
                page_token: String::new(),
            }))
            .await?
            .parameters
            .into_iter()
            .find(|row| row.region_prefix == region && row.valid_from == Some(valid_from));
            let mut request = pb::UpdateParameterRequest {
                parameter: Some(common::Parameter {
                    key: key.clone(),
                    region_prefix: region.clone(),
                    valid_from: Some(valid_from),
                    valid_to: existing.as_ref().and_then(|row| row.valid_to),
                    value,
                    source_document: document,
                    etag: existing.as_ref().map(|row| row.etag.clone()).unwrap_or_default(),
                    ..Default::default()
                }),
                update_mask: None,
                allow_missing: existing.is_none(),
            };
            request.update_mask.get_or_insert_with(Default::default).paths =
                vec!["value".to_string(), "source_document".to_string()];
            let updated = call(identity.update_parameter(request))
                .await?
                .parameter
                .unwrap_or_default();
            say!(
                "{} {} from {}: {}",
                updated.key,
                updated.region_prefix,
                date_text(&updated.valid_from),
                updated.value
            );
            Ok(())
        }
    }
}
