//! `bangfu <service> parameter`: a service's rules by region and date (parameters) — list them,
//! or set one value without overwriting a change made meanwhile (the row's etag). Every service
//! serves the same ListParameters and UpdateParameter in its own package; one command serves
//! them all.

use bangfu_proto::common::v1 as common;
use bangfu_proto::exchange::v1::exchange_service_client::ExchangeServiceClient;
use bangfu_proto::identity::v1::identity_service_client::IdentityServiceClient;
use bangfu_proto::jobs::v1::job_matching_service_client::JobMatchingServiceClient;
use bangfu_proto::reports::v1::report_service_client::ReportServiceClient;
use bangfu_proto::subsidy::v1::subsidy_service_client::SubsidyServiceClient;
use bangfu_proto::welfare_post::v1::welfare_post_service_client::WelfarePostServiceClient;
use bangfu_proto::work_relief::v1::work_relief_service_client::WorkReliefServiceClient;
use clap::Subcommand;

use crate::Failure;
use crate::client::{Authorized, ClientArgs, PageArgs, authorized, call, list_pages};
use crate::format::parse_date;
use crate::print::{Columns, show};

/// The service whose parameters a command reads or sets.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Service {
    Identity,
    Subsidy,
    Posts,
    Relief,
    Jobs,
    Exchange,
    Reports,
}

/// A connection to one service's parameter methods.
enum Parameters {
    Identity(IdentityServiceClient<Authorized>),
    Subsidy(SubsidyServiceClient<Authorized>),
    Posts(WelfarePostServiceClient<Authorized>),
    Relief(WorkReliefServiceClient<Authorized>),
    Jobs(JobMatchingServiceClient<Authorized>),
    Exchange(ExchangeServiceClient<Authorized>),
    Reports(ReportServiceClient<Authorized>),
}

/// Runs `$body` with `$client` bound to the connected client and `$pb` to its package.
macro_rules! each_service {
    ($parameters:expr, $client:ident, $pb:ident, $body:expr) => {
        match $parameters {
            Parameters::Identity($client) => {
                use bangfu_proto::identity::v1 as $pb;
                $body
            }
            Parameters::Subsidy($client) => {
                use bangfu_proto::subsidy::v1 as $pb;
                $body
            }
            Parameters::Posts($client) => {
                use bangfu_proto::welfare_post::v1 as $pb;
                $body
            }
            Parameters::Relief($client) => {
                use bangfu_proto::work_relief::v1 as $pb;
                $body
            }
            Parameters::Jobs($client) => {
                use bangfu_proto::jobs::v1 as $pb;
                $body
            }
            Parameters::Exchange($client) => {
                use bangfu_proto::exchange::v1 as $pb;
                $body
            }
            Parameters::Reports($client) => {
                use bangfu_proto::reports::v1 as $pb;
                $body
            }
        }
    };
}

impl Parameters {
    async fn connect(service: Service, client: &ClientArgs) -> Result<Self, Failure> {
        let channel = authorized(client).await?;
        Ok(match service {
            Service::Identity => Self::Identity(IdentityServiceClient::new(channel)),
            Service::Subsidy => Self::Subsidy(SubsidyServiceClient::new(channel)),
            Service::Posts => Self::Posts(WelfarePostServiceClient::new(channel)),
            Service::Relief => Self::Relief(WorkReliefServiceClient::new(channel)),
            Service::Jobs => Self::Jobs(JobMatchingServiceClient::new(channel)),
            Service::Exchange => Self::Exchange(ExchangeServiceClient::new(channel)),
            Service::Reports => Self::Reports(ReportServiceClient::new(channel)),
        })
    }

    /// One page of the rows of `key` (every key when empty).
    async fn list(
        &mut self,
        key: String,
        page_size: i32,
        page_token: String,
    ) -> Result<(Vec<common::Parameter>, String), Failure> {
        let filter = Some(common::ParameterFilter {
            key,
            ..Default::default()
        });
        each_service!(self, client, pb, {
            let page = call(client.list_parameters(pb::ListParametersRequest {
                filter,
                page_size,
                page_token,
            }))
            .await?;
            Ok((page.parameters, page.next_page_token))
        })
    }

    async fn update(
        &mut self,
        parameter: common::Parameter,
        paths: Vec<String>,
        allow_missing: bool,
    ) -> Result<common::Parameter, Failure> {
        let update_mask = Some(prost_types::FieldMask { paths });
        each_service!(self, client, pb, {
            let answer = call(client.update_parameter(pb::UpdateParameterRequest {
                parameter: Some(parameter),
                update_mask,
                allow_missing,
            }))
            .await?;
            Ok(answer.parameter.unwrap_or_default())
        })
    }
}

#[derive(Debug, Subcommand)]
pub enum ParameterCommand {
    /// The rows of a key (or of every key), with their regions, dates and documents.
    List {
        #[command(flatten)]
        client: ClientArgs,
        /// Only this key, e.g. identity.income_drop_alert_bp or subsidy.labor_base_award_min_absorbed.
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

pub async fn run(service: Service, command: ParameterCommand) -> Result<(), Failure> {
    match command {
        ParameterCommand::List { client, key } => {
            let mut parameters = Parameters::connect(service, &client).await?;
            let page = PageArgs {
                page_size: 1000,
                page_token: String::new(),
                all: true,
                output: None,
            };
            list_pages(
                &mut parameters,
                client.output(),
                &page,
                &PARAMETER_ROW,
                |parameters, page_size, page_token| Box::pin(parameters.list(key.clone(), page_size, page_token)),
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
            let mut parameters = Parameters::connect(service, &client).await?;
            // The row's etag, when it exists, so a change made meanwhile is not overwritten.
            let existing = parameters
                .list(key.clone(), 1000, String::new())
                .await?
                .0
                .into_iter()
                .find(|row| row.region_prefix == region && row.valid_from == Some(valid_from));
            let parameter = common::Parameter {
                key,
                region_prefix: region,
                valid_from: Some(valid_from),
                valid_to: existing.as_ref().and_then(|row| row.valid_to),
                value,
                source_document: document,
                etag: existing.as_ref().map(|row| row.etag.clone()).unwrap_or_default(),
                ..Default::default()
            };
            let updated = parameters
                .update(
                    parameter,
                    vec!["value".to_string(), "source_document".to_string()],
                    existing.is_none(),
                )
                .await?;
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
