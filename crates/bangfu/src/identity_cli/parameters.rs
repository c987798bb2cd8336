//! `parameter`: the service's rules by region and date — list them, or set one value without
//! overwriting a change made meanwhile (the row's etag).

use bangfu_proto::common::v1 as common;
use bangfu_proto::identity::v1 as pb;
use clap::Subcommand;

use super::connect_identity;
use crate::Failure;
use crate::client::{ClientArgs, PageArgs, call, list_pages};
use crate::format::parse_date;
use crate::print::{Columns, show};

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
    match command {
        ParameterCommand::List { client, key } => {
            let mut identity = connect_identity(&client).await?;
            let page = PageArgs {
                page_size: 1000,
                page_token: String::new(),
                all: true,
                output: None,
            };
            list_pages(
                &mut identity,
                client.output(),
                &page,
                &PARAMETER_ROW,
                |identity, page_size, page_token| {
                    let request = pb::ListParametersRequest {
                        filter: Some(common::ParameterFilter {
                            key: key.clone(),
                            ..Default::default()
                        }),
                        page_size,
                        page_token,
                    };
                    Box::pin(async move {
                        let page = call(identity.list_parameters(request)).await?;
                        Ok((page.parameters, page.next_page_token))
                    })
                },
            )
            .await
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
            show("bangfu.common.v1.Parameter", &updated, client.output().is_json())
        }
    }
}

/// One line a parameter row.
const PARAMETER_ROW: Columns = Columns {
    message: "bangfu.common.v1.Parameter",
    columns: &[
        ("key", "key"),
        ("region", "region_prefix"),
        ("from", "valid_from"),
        ("to", "valid_to"),
        ("value", "value"),
        ("document", "source_document"),
    ],
};
