//! The wire edge of reports: each RPC takes its caller, parses the message into domain values,
//! runs the use case in `app`, and maps the answer back.

use std::pin::Pin;
use std::sync::Arc;

use bangfu_platform::auth::caller;
use bangfu_platform::config::ServerConfig;
use bangfu_platform::error::{ErrorReason, Problem};
use bangfu_platform::paging;
use bangfu_platform::peers::CallContext;
use bangfu_platform::regions::DivisionTable;
use bangfu_platform::service_rpc;
use bangfu_platform::wire::{self, date_to_wire, region_to_wire, timestamp_to_wire};
use bangfu_proto::common::v1 as common;
use bangfu_proto::reports::v1 as pb;
use bangfu_proto::reports::v1::report_service_server::{ReportService, ReportServiceServer};
use tokio_stream::Stream;
use tonic::{Request, Response, Status};

use crate::app::{ReportView, Reports, method};
use crate::domain::{self, Column, Form, Level, Period, State};
use crate::export::{self, instant};
use crate::store::ReportFilter;

/// The size of each part of an exported file.
const CHUNK_BYTES: usize = 64 * 1024;

/// The gRPC face of [`Reports`].
#[derive(Clone)]
pub struct ReportServer {
    reports: Arc<Reports>,
}

impl ReportServer {
    /// The service with the configured message limits.
    pub fn shared(reports: Arc<Reports>, config: &ServerConfig) -> ReportServiceServer<Self> {
        ReportServiceServer::new(Self { reports })
            .max_decoding_message_size(config.max_receive_bytes)
            .max_encoding_message_size(config.max_send_bytes)
    }
}

bangfu_platform::enum_mapping!(form_of, form_to_wire, Form, pb::ReportForm, "REPORT_FORM_", "报表种类");
bangfu_platform::enum_mapping!(
    state_of,
    state_to_wire,
    State,
    pb::ReportState,
    "REPORT_STATE_",
    "报表状态"
);
bangfu_platform::to_wire!(level_to_wire, Level, pb::RowLevel, "ROW_LEVEL_");

fn column_to_wire(column: Column) -> i32 {
    pb::ProgressColumn::from_str_name(&format!("PROGRESS_COLUMN_{}", column.code())).map_or(0, |c| c as i32)
}

/// A region a form is filled for: a county, city or province in the division table.
fn region_of(field: &str, value: &str) -> Result<String, Problem> {
    let value = value.trim();
    if value.is_empty() {
        return Err(Problem::required(field, "地区代码"));
    }
    if Level::of(value).is_none() {
        return Err(Problem::invalid_field(
            ErrorReason::FieldInvalid,
            field,
            "must be a county (6 digits), a city (4) or a province (2)",
            "地区应为6位县级、4位市级或2位省级行政区划代码",
        ));
    }
    if DivisionTable::embedded().name(value).is_none() {
        return Err(Problem::invalid_field(
            ErrorReason::RegionUnknown,
            field,
            format!("{value} is not in the division table"),
            "行政区划代码不存在",
        ));
    }
    Ok(value.to_string())
}

fn period_of(value: Option<&pb::ReportingPeriod>) -> Result<Period, Problem> {
    let period = value.ok_or_else(|| Problem::required("period", "报告期"))?;
    let year = wire::within("period.year", i64::from(period.year), 2000, 2100, "年度")?;
    let quarter = wire::within("period.quarter", i64::from(period.quarter), 0, 4, "季度")?;
    Ok(Period {
        year: i32::try_from(year).unwrap_or(0),
        quarter: u8::try_from(quarter).unwrap_or(0),
    })
}

fn period_to_wire(period: Period) -> pb::ReportingPeriod {
    pb::ReportingPeriod {
        year: period.year,
        quarter: i32::from(period.quarter),
    }
}

fn report_id(name: &str) -> Result<String, Problem> {
    let id = wire::id_of("name", name, "reports")?;
    if domain::parse_report_id(&id).is_none() {
        return Err(Problem::not_found(name.trim()));
    }
    Ok(id)
}

fn report_to_wire(view: &ReportView, whole: bool) -> pb::Report {
    let report = &view.report;
    let content = &report.content;
    let mut wire = pb::Report {
        name: format!("reports/{}", report.id),
        form: form_to_wire(report.form),
        region: Some(region_to_wire(&report.region)),
        period: Some(period_to_wire(report.period)),
        state: state_to_wire(report.state),
        generated_by: report.generated_by.clone(),
        generate_time: Some(timestamp_to_wire(instant(report.generated_us))),
        due_date: view.due.map(date_to_wire),
        overdue: view.overdue,
        etag: report.etag(),
        ..Default::default()
    };
    wire.as_of = content.as_of_date().map(date_to_wire);
    wire.sign_off = view
        .sign_off
        .iter()
        .map(|step| pb::SignOffEvent {
            action: step.action.clone(),
            subject: step.subject.clone(),
            scope: step.scope.clone(),
            time: Some(timestamp_to_wire(instant(step.at_us))),
            note: step.note.clone(),
        })
        .collect();
    if !whole {
        return wire;
    }
    wire.rows = content
        .rows
        .iter()
        .map(|row| pb::ProgressRow {
            region: Some(common::RegionCode {
                code: row.region.clone(),
                display_name: row.name.clone(),
            }),
            level: level_to_wire(row.level),
            cells: row
                .cells
                .iter()
                .map(|(column, cell)| pb::ProgressCell {
                    column: column_to_wire(*column),
                    value: cell.value,
                    source: cell.source.map_or(-1, |s| i32::try_from(s).unwrap_or(i32::MAX)),
                })
                .collect(),
        })
        .collect();
    wire.projects = content
        .projects
        .iter()
        .map(|p| pb::ProjectListRow {
            county: Some(common::RegionCode {
                code: p.county.clone(),
                display_name: p.county_name.clone(),
            }),
            sequence: i32::try_from(p.sequence).unwrap_or(i32::MAX),
            project: p.project.clone(),
            project_number: p.project_number.clone(),
            display_name: p.display_name.clone(),
            summary: p.summary.clone(),
            people_employed: i32::try_from(p.people_employed).unwrap_or(i32::MAX),
            target_persons: i32::try_from(p.target_persons).unwrap_or(i32::MAX),
            in_key_assistance_county: p.in_key_assistance_county,
            at_relocation_site: p.at_relocation_site,
            in_flood_plain_resettlement: p.in_flood_plain_resettlement,
            contact_name: p.contact_name.clone(),
            contact_phone: p.contact_phone.clone(),
            remarks: p.remarks.clone(),
            source: i32::try_from(p.source).unwrap_or(i32::MAX),
        })
        .collect();
    wire.sources = content
        .sources
        .iter()
        .map(|s| pb::ReportSource {
            service: s.service.clone(),
            method: s.method.clone(),
            region_prefix: s.region_prefix.clone(),
            read_time: Some(timestamp_to_wire(instant(s.read_us))),
        })
        .collect();
    wire.missing_parts = content
        .missing
        .iter()
        .map(|m| pb::MissingPart {
            service: m.service.clone(),
            method: m.method.clone(),
            region_prefix: m.region_prefix.clone(),
            columns: m.columns.iter().map(|c| column_to_wire(*c)).collect(),
            reason: m.reason.clone(),
        })
        .collect();
    wire.differences = view
        .differences
        .iter()
        .map(|d| pb::CellDifference {
            row: d.row.clone(),
            column: d.column.clone(),
            frozen_value: d.frozen.clone(),
            live_value: d.live.clone(),
        })
        .collect();
    wire.live_read_time = report
        .live
        .as_ref()
        .filter(|_| report.state.is_frozen())
        .map(|(_, at)| timestamp_to_wire(instant(*at)));
    wire
}

type BoxStream<T> = Pin<Box<dyn Stream<Item = Result<T, Status>> + Send>>;

#[tonic::async_trait]
impl ReportService for ReportServer {
    async fn generate_report(
        &self,
        request: Request<pb::GenerateReportRequest>,
    ) -> Result<Response<pb::GenerateReportResponse>, Status> {
        let caller = caller(&request)?;
        let call = CallContext::of(&request);
        let request = request.into_inner();
        let form = form_of("form", request.form)?;
        let region = region_of("region_code", &request.region_code)?;
        let period = period_of(request.period.as_ref())?;
        let view = self.reports.generate(caller, call, form, &region, period).await?;
        Ok(Response::new(pb::GenerateReportResponse {
            report: Some(report_to_wire(&view, true)),
        }))
    }

    async fn get_report(
        &self,
        request: Request<pb::GetReportRequest>,
    ) -> Result<Response<pb::GetReportResponse>, Status> {
        let caller = caller(&request)?;
        let id = report_id(&request.get_ref().name)?;
        let view = self.reports.get(&caller, &id).await?;
        Ok(Response::new(pb::GetReportResponse {
            report: Some(report_to_wire(&view, true)),
        }))
    }

    async fn list_reports(
        &self,
        request: Request<pb::ListReportsRequest>,
    ) -> Result<Response<pb::ListReportsResponse>, Status> {
        let caller = caller(&request)?;
        let request = request.into_inner();
        let filter = ReportFilter {
            region_prefix: wire::region_prefix("region_prefix", &request.region_prefix, false)?,
            form: wire::optional(request.form, form_of, "form")?,
            year: (request.year != 0)
                .then(|| wire::within("year", i64::from(request.year), 2000, 2100, "年度"))
                .transpose()?
                .map(|y| i32::try_from(y).unwrap_or(0)),
            state: wire::optional(request.state, state_of, "state")?,
        };
        let size = paging::page_size(request.page_size, 100, 1000)?;
        let (rows, next_page_token) = self.reports.list(&caller, filter, size, &request.page_token).await?;
        let mut reports = Vec::with_capacity(rows.len());
        for report in rows {
            let view = ReportView {
                report,
                sign_off: Vec::new(),
                due: None,
                overdue: false,
                differences: Vec::new(),
            };
            reports.push(report_to_wire(&view, false));
        }
        Ok(Response::new(pb::ListReportsResponse {
            reports,
            next_page_token,
        }))
    }

    type ExportReportStream = BoxStream<pb::ExportReportResponse>;

    async fn export_report(
        &self,
        request: Request<pb::ExportReportRequest>,
    ) -> Result<Response<Self::ExportReportStream>, Status> {
        let caller = caller(&request)?;
        let request = request.into_inner();
        let id = report_id(&request.name)?;
        let format = match pb::ExportFormat::try_from(request.format) {
            Ok(pb::ExportFormat::Unspecified | pb::ExportFormat::Xlsx) => pb::ExportFormat::Xlsx,
            Ok(pb::ExportFormat::Csv) => pb::ExportFormat::Csv,
            Err(_) => {
                return Err(Problem::invalid_field(
                    ErrorReason::FieldInvalid,
                    "format",
                    format!("{} is not a known format", request.format),
                    "导出格式无效",
                )
                .into());
            }
        };
        let view = self.reports.exportable(&caller, &id).await?;
        let (bytes, file_name, content_type) = match format {
            pb::ExportFormat::Csv => (
                export::csv(&view)?,
                export::file_name(&view, "csv"),
                "text/csv; charset=utf-8",
            ),
            _ => (
                export::xlsx(&view)?,
                export::file_name(&view, "xlsx"),
                "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
            ),
        };
        let mut messages = Vec::with_capacity(bytes.len() / CHUNK_BYTES + 1);
        for (i, chunk) in bytes.chunks(CHUNK_BYTES).enumerate() {
            messages.push(Ok(pb::ExportReportResponse {
                file_name: if i == 0 { file_name.clone() } else { String::new() },
                content_type: if i == 0 {
                    content_type.to_string()
                } else {
                    String::new()
                },
                chunk: chunk.to_vec(),
            }));
        }
        Ok(Response::new(Box::pin(tokio_stream::iter(messages))))
    }

    async fn submit_report(
        &self,
        request: Request<pb::SubmitReportRequest>,
    ) -> Result<Response<pb::SubmitReportResponse>, Status> {
        let caller = caller(&request)?;
        let request = request.into_inner();
        let id = report_id(&request.name)?;
        let etag = wire::etag(&request.etag)?;
        let view = self.reports.submit(&caller, &id, etag).await?;
        Ok(Response::new(pb::SubmitReportResponse {
            report: Some(report_to_wire(&view, true)),
        }))
    }

    async fn approve_report(
        &self,
        request: Request<pb::ApproveReportRequest>,
    ) -> Result<Response<pb::ApproveReportResponse>, Status> {
        let caller = caller(&request)?;
        let request = request.into_inner();
        let id = report_id(&request.name)?;
        let etag = wire::etag(&request.etag)?;
        let note = wire::optional_text("note", &request.note, 500, "审核意见")?;
        let view = self.reports.decide(&caller, &id, etag, true, &note).await?;
        Ok(Response::new(pb::ApproveReportResponse {
            report: Some(report_to_wire(&view, true)),
        }))
    }

    async fn return_report(
        &self,
        request: Request<pb::ReturnReportRequest>,
    ) -> Result<Response<pb::ReturnReportResponse>, Status> {
        let caller = caller(&request)?;
        let request = request.into_inner();
        let id = report_id(&request.name)?;
        let etag = wire::etag(&request.etag)?;
        let reason = wire::text("reason", &request.reason, 500, "退回原因")?;
        let view = self.reports.decide(&caller, &id, etag, false, &reason).await?;
        Ok(Response::new(pb::ReturnReportResponse {
            report: Some(report_to_wire(&view, true)),
        }))
    }

    async fn list_reporting_periods(
        &self,
        request: Request<pb::ListReportingPeriodsRequest>,
    ) -> Result<Response<pb::ListReportingPeriodsResponse>, Status> {
        let caller = caller(&request)?;
        let request = request.into_inner();
        let region = region_of("region_code", &request.region_code)?;
        let year = i32::try_from(wire::within("year", i64::from(request.year), 2000, 2100, "年度")?).unwrap_or(0);
        let periods = self.reports.periods(&caller, &region, year).await?;
        Ok(Response::new(pb::ListReportingPeriodsResponse {
            periods: periods
                .into_iter()
                .map(|status| pb::ReportingPeriodStatus {
                    form: form_to_wire(status.form),
                    period: Some(period_to_wire(status.period)),
                    days: Some(common::Period {
                        first_day: Some(date_to_wire(status.period.first_day())),
                        last_day: Some(date_to_wire(status.period.last_day())),
                    }),
                    due_date: status.due.map(date_to_wire),
                    regions: status
                        .regions
                        .into_iter()
                        .map(|(region, report, state, overdue)| pb::RegionReportStatus {
                            region: Some(region_to_wire(&region)),
                            report: if report.is_empty() {
                                String::new()
                            } else {
                                format!("reports/{report}")
                            },
                            state: state.map_or(0, state_to_wire),
                            overdue,
                        })
                        .collect(),
                })
                .collect(),
        }))
    }

    async fn list_parameters(
        &self,
        request: Request<pb::ListParametersRequest>,
    ) -> Result<Response<pb::ListParametersResponse>, Status> {
        let request = request.into_inner();
        let (parameters, next_page_token) = service_rpc::list_parameters(
            self.reports.parameters(),
            request.filter.as_ref(),
            request.page_size,
            &request.page_token,
        )
        .await?;
        Ok(Response::new(pb::ListParametersResponse {
            parameters,
            next_page_token,
        }))
    }

    async fn update_parameter(
        &self,
        request: Request<pb::UpdateParameterRequest>,
    ) -> Result<Response<pb::UpdateParameterResponse>, Status> {
        let caller = caller(&request)?;
        let request = request.into_inner();
        let parameter = service_rpc::update_parameter(
            self.reports.parameters(),
            &caller,
            &method("UpdateParameter"),
            request.parameter.as_ref(),
            request.update_mask.as_ref(),
            request.allow_missing,
            self.reports.now(),
        )
        .await?;
        Ok(Response::new(pb::UpdateParameterResponse {
            parameter: Some(parameter),
        }))
    }

    async fn list_audit_events(
        &self,
        request: Request<pb::ListAuditEventsRequest>,
    ) -> Result<Response<pb::ListAuditEventsResponse>, Status> {
        let caller = caller(&request)?;
        let request = request.into_inner();
        let (audit_events, next_page_token) = service_rpc::list_audit_events(
            self.reports.db(),
            &caller,
            request.filter.as_ref(),
            request.page_size,
            &request.page_token,
        )
        .await?;
        Ok(Response::new(pb::ListAuditEventsResponse {
            audit_events,
            next_page_token,
        }))
    }
}
