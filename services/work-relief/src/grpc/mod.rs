//! The wire edge of work relief: each RPC takes its caller, parses the message into domain
//! values (`wire`), runs the use case in `app`, and maps the answer back.

mod wire;

use std::sync::Arc;

use bangfu_platform::auth::caller;
use bangfu_platform::config::ServerConfig;
use bangfu_platform::error::{ErrorReason, Problem};
use bangfu_platform::idempotency::RequestKey;
use bangfu_platform::paging;
use bangfu_platform::peers::CallContext;
use bangfu_platform::service_rpc;
use bangfu_platform::wire::{date, etag, optional_date};
use bangfu_proto::work_relief::v1 as pb;
use bangfu_proto::work_relief::v1::work_relief_service_server::{WorkReliefService, WorkReliefServiceServer};
use tonic::{Request, Response, Status};

use crate::app::roster::AttendanceEntry;
use crate::app::{NoticeRequest, ObjectionRequest, ProjectChange, ReceiptRequest, Relief, method};
use crate::domain::PayBasis;
use crate::store::{NewWorker, OwedCursor, PayrollFilter, ProjectFilter};

/// Entries in one RecordAttendance message, and in a whole muster roll.
const ENTRIES_PER_MESSAGE: usize = 1000;
const ENTRIES_PER_ROLL: usize = 20_000;

/// The gRPC face of [`Relief`].
#[derive(Clone)]
pub struct ReliefServer {
    relief: Arc<Relief>,
}

impl ReliefServer {
    /// The service with the configured message limits.
    pub fn shared(relief: Arc<Relief>, config: &ServerConfig) -> WorkReliefServiceServer<Self> {
        WorkReliefServiceServer::new(Self { relief })
            .max_decoding_message_size(config.max_receive_bytes)
            .max_encoding_message_size(config.max_send_bytes)
    }
}

/// The request key of a create, bound to the whole message; the contract requires the id.
fn request_key(
    subject: &str,
    name: &str,
    request_id: &str,
    message: &impl prost::Message,
) -> Result<Option<RequestKey>, Problem> {
    RequestKey::required_of_message(subject, &method(name), request_id, message)
}

#[tonic::async_trait]
impl WorkReliefService for ReliefServer {
    async fn create_project(
        &self,
        request: Request<pb::CreateProjectRequest>,
    ) -> Result<Response<pb::CreateProjectResponse>, Status> {
        let caller = caller(&request)?;
        let call = CallContext::of(&request);
        let request = request.into_inner();
        let key = request_key(&caller.subject, "CreateProject", &request.request_id, &request)?;
        let project = wire::new_project(
            request
                .project
                .as_ref()
                .ok_or_else(|| Problem::required("project", "项目"))?,
        )?;
        let view = self.relief.create_project(&caller, &call, key, project).await?;
        Ok(Response::new(pb::CreateProjectResponse {
            project: Some(wire::project_to_wire(&view)),
        }))
    }

    async fn get_project(
        &self,
        request: Request<pb::GetProjectRequest>,
    ) -> Result<Response<pb::GetProjectResponse>, Status> {
        let caller = caller(&request)?;
        let id = wire::id_of("name", &request.get_ref().name, "projects")?;
        let view = self.relief.get_project(&caller, &id).await?;
        Ok(Response::new(pb::GetProjectResponse {
            project: Some(wire::project_to_wire(&view)),
        }))
    }

    async fn list_projects(
        &self,
        request: Request<pb::ListProjectsRequest>,
    ) -> Result<Response<pb::ListProjectsResponse>, Status> {
        let caller = caller(&request)?;
        let request = request.into_inner();
        let filter = ProjectFilter {
            region_prefix: wire::region_prefix("region_prefix", &request.region_prefix, false)?,
            channel: wire::optional(request.channel, wire::channel, "channel")?,
            state: wire::optional(request.state, wire::project_state, "state")?,
            year: if request.year == 0 {
                None
            } else {
                Some(i32::try_from(wire::within("year", i64::from(request.year), 2000, 2100, "年度")?).unwrap_or(0))
            },
        };
        let fingerprint = paging::fingerprint(&[
            &filter.region_prefix,
            &request.channel.to_string(),
            &request.state.to_string(),
            &request.year.to_string(),
        ]);
        let (size, cursor) = paging::page(request.page_size, &request.page_token, &fingerprint)?;
        let after = cursor.and_then(|c| c.into_iter().next()).unwrap_or_default();
        let mut projects = self.relief.list_projects(&caller, filter, &after, size).await?;
        let next_page_token = paging::next_page(&mut projects, size, &fingerprint, |p| vec![p.project.id.clone()]);
        Ok(Response::new(pb::ListProjectsResponse {
            projects: projects.iter().map(wire::project_to_wire).collect(),
            next_page_token,
        }))
    }

    async fn update_project(
        &self,
        request: Request<pb::UpdateProjectRequest>,
    ) -> Result<Response<pb::UpdateProjectResponse>, Status> {
        let caller = caller(&request)?;
        let request = request.into_inner();
        let project = request
            .project
            .as_ref()
            .ok_or_else(|| Problem::required("project", "项目"))?;
        let id = wire::id_of("project.name", &project.name, "projects")?;
        let paths = request
            .update_mask
            .as_ref()
            .map(|m| m.paths.clone())
            .filter(|p| !p.is_empty())
            .ok_or_else(|| Problem::required("update_mask", "修改字段"))?;
        let mut change = ProjectChange::default();
        for path in &paths {
            match path.as_str() {
                "display_name" => {
                    change.display_name = Some(wire::text(
                        "project.display_name",
                        &project.display_name,
                        100,
                        "项目名称",
                    )?)
                }
                "summary" => change.summary = Some(wire::text("project.summary", &project.summary, 500, "建设内容")?),
                "schedule" => change.schedule = Some(wire::schedule("project.schedule", project.schedule.as_ref())?),
                "owner_unit" => {
                    change.owner_unit = Some(wire::text(
                        "project.owner_unit",
                        &project.owner_unit,
                        100,
                        "项目业主单位",
                    )?)
                }
                "contact_name" => {
                    change.contact_name = Some(wire::text("project.contact_name", &project.contact_name, 40, "联系人")?)
                }
                "contact_phone" => {
                    change.contact_phone = Some(wire::phone("project.contact_phone", &project.contact_phone)?)
                }
                "in_key_assistance_county" => change.key_assistance_county = Some(project.in_key_assistance_county),
                "at_relocation_site" => change.relocation_site = Some(project.at_relocation_site),
                "in_flood_plain_resettlement" => change.flood_plain = Some(project.in_flood_plain_resettlement),
                "remarks" => {
                    change.remarks = Some(wire::optional_text("project.remarks", &project.remarks, 500, "备注")?)
                }
                "pay_day" => {
                    change.pay_day = Some(wire::within(
                        "project.pay_day",
                        i64::from(project.pay_day),
                        1,
                        28,
                        "发放日",
                    )?)
                }
                other => {
                    return Err(Problem::invalid_field(
                        ErrorReason::FieldInvalid,
                        "update_mask",
                        format!("{other} cannot be changed"),
                        format!("字段 {other} 不能修改"),
                    )
                    .into());
                }
            }
        }
        let view = self
            .relief
            .update_project(&caller, &id, etag(&project.etag)?, change)
            .await?;
        Ok(Response::new(pb::UpdateProjectResponse {
            project: Some(wire::project_to_wire(&view)),
        }))
    }

    async fn allocate_funds(
        &self,
        request: Request<pb::AllocateFundsRequest>,
    ) -> Result<Response<pb::AllocateFundsResponse>, Status> {
        let caller = caller(&request)?;
        let request = request.into_inner();
        let key = request_key(&caller.subject, "AllocateFunds", &request.request_id, &request)?;
        let project = wire::id_of("parent", &request.parent, "projects")?;
        let allocation = wire::new_allocation(
            request
                .allocation
                .as_ref()
                .ok_or_else(|| Problem::required("allocation", "资金下达"))?,
        )?;
        let (stored, share) = self.relief.allocate_funds(&caller, key, &project, allocation).await?;
        Ok(Response::new(pb::AllocateFundsResponse {
            allocation: Some(wire::allocation_to_wire(&stored)),
            labor_share: Some(wire::labor_share_to_wire(&share)),
        }))
    }

    async fn list_allocations(
        &self,
        request: Request<pb::ListAllocationsRequest>,
    ) -> Result<Response<pb::ListAllocationsResponse>, Status> {
        let caller = caller(&request)?;
        let project = wire::id_of("parent", &request.get_ref().parent, "projects")?;
        let allocations = self.relief.list_allocations(&caller, &project).await?;
        Ok(Response::new(pb::ListAllocationsResponse {
            allocations: allocations.iter().map(wire::allocation_to_wire).collect(),
        }))
    }

    async fn enrol_worker(
        &self,
        request: Request<pb::EnrolWorkerRequest>,
    ) -> Result<Response<pb::EnrolWorkerResponse>, Status> {
        let caller = caller(&request)?;
        let call = CallContext::of(&request);
        let request = request.into_inner();
        let key = request_key(&caller.subject, "EnrolWorker", &request.request_id, &request)?;
        let project = wire::id_of("parent", &request.parent, "projects")?;
        let worker = request
            .worker
            .as_ref()
            .ok_or_else(|| Problem::required("worker", "务工人员"))?;
        let (pay_basis, rate) = match &worker.pay {
            Some(pb::worker::Pay::DailyWage(m)) => (PayBasis::Daily, m.fen),
            Some(pb::worker::Pay::PieceRate(m)) => (PayBasis::Piece, m.fen),
            None => return Err(Problem::required("worker.pay", "日工资或计件单价").into()),
        };
        let rate_field = match pay_basis {
            PayBasis::Daily => "worker.daily_wage",
            PayBasis::Piece => "worker.piece_rate",
        };
        let worker = NewWorker {
            person_id: wire::id_of("worker.person", &worker.person, "persons")?,
            role: wire::worker_role("worker.role", worker.role)?,
            pay_basis,
            rate_fen: wire::within(rate_field, rate, 1, 10_000_000, "报酬单价（分）")?,
            piece_unit: match pay_basis {
                PayBasis::Piece => wire::text("worker.piece_unit", &worker.piece_unit, 20, "计件单位")?,
                PayBasis::Daily => String::new(),
            },
            start: date("worker.start_date", worker.start_date.as_ref())?,
            end: optional_date("worker.end_date", worker.end_date.as_ref())?,
            agreement_reference: wire::text(
                "worker.agreement_reference",
                &worker.agreement_reference,
                64,
                "劳务协议编号",
            )?,
        };
        let stored = self.relief.enrol_worker(&caller, &call, key, &project, worker).await?;
        Ok(Response::new(pb::EnrolWorkerResponse {
            worker: Some(wire::worker_to_wire(&stored)),
        }))
    }

    async fn list_workers(
        &self,
        request: Request<pb::ListWorkersRequest>,
    ) -> Result<Response<pb::ListWorkersResponse>, Status> {
        let caller = caller(&request)?;
        let request = request.into_inner();
        let project = wire::id_of("parent", &request.parent, "projects")?;
        let state = wire::optional(request.state, wire::enrolment_state, "state")?;
        let fingerprint = paging::fingerprint(&[&project, &request.state.to_string()]);
        let (size, cursor) = paging::page(request.page_size, &request.page_token, &fingerprint)?;
        let after = cursor.and_then(|c| c.into_iter().next()).unwrap_or_default();
        let (mut workers, counts) = self.relief.list_workers(&caller, &project, state, &after, size).await?;
        let next_page_token = paging::next_page(&mut workers, size, &fingerprint, |w| vec![w.id.clone()]);
        Ok(Response::new(pb::ListWorkersResponse {
            workers: workers.iter().map(wire::worker_to_wire).collect(),
            next_page_token,
            counts: Some(wire::counts_to_wire(&counts)),
        }))
    }

    async fn end_enrolment(
        &self,
        request: Request<pb::EndEnrolmentRequest>,
    ) -> Result<Response<pb::EndEnrolmentResponse>, Status> {
        let caller = caller(&request)?;
        let call = CallContext::of(&request);
        let request = request.into_inner();
        let (project, worker) = wire::child_name("name", &request.name, "workers")?;
        let end = date("end_date", request.end_date.as_ref())?;
        let reason = wire::text("reason", &request.reason, 200, "结束原因")?;
        let stored = self
            .relief
            .end_enrolment(&caller, &call, &project, &worker, end, &reason)
            .await?;
        Ok(Response::new(pb::EndEnrolmentResponse {
            worker: Some(wire::worker_to_wire(&stored)),
        }))
    }

    async fn record_attendance(
        &self,
        request: Request<tonic::Streaming<pb::RecordAttendanceRequest>>,
    ) -> Result<Response<pb::RecordAttendanceResponse>, Status> {
        let caller = caller(&request)?;
        let mut inbound = request.into_inner();
        let malformed = |status: Status| {
            Problem::new(
                tonic::Code::InvalidArgument,
                ErrorReason::MessageMalformed,
                status.message().to_string(),
                "考勤数据无法读取",
            )
        };
        // The whole roll, as one message, is what the request id is bound to.
        let mut roll = pb::RecordAttendanceRequest::default();
        let mut first = true;
        while let Some(part) = inbound.message().await.map_err(malformed)? {
            if part.entries.len() > ENTRIES_PER_MESSAGE {
                return Err(Problem::invalid_field(
                    ErrorReason::MessageTooLarge,
                    "entries",
                    format!("at most {ENTRIES_PER_MESSAGE} entries per message"),
                    format!("每条消息最多{ENTRIES_PER_MESSAGE}条考勤"),
                )
                .into());
            }
            if first {
                roll.parent = part.parent.clone();
                roll.month = part.month;
                roll.request_id = part.request_id.clone();
                first = false;
            } else if (!part.parent.is_empty() && part.parent != roll.parent)
                || (part.month.is_some() && part.month != roll.month)
            {
                return Err(Problem::invalid_field(
                    ErrorReason::FieldInvalid,
                    "parent",
                    "every part of a muster roll is of one project and month",
                    "同一考勤表的各部分应属于同一项目和月份",
                )
                .into());
            }
            roll.entries.extend(part.entries);
            if roll.entries.len() > ENTRIES_PER_ROLL {
                return Err(Problem::invalid_field(
                    ErrorReason::MessageTooLarge,
                    "entries",
                    format!("at most {ENTRIES_PER_ROLL} entries per muster roll"),
                    format!("一份考勤表最多{ENTRIES_PER_ROLL}条"),
                )
                .into());
            }
        }
        let key = request_key(&caller.subject, "RecordAttendance", &roll.request_id, &roll)?;
        let project = wire::id_of("parent", &roll.parent, "projects")?;
        let month = wire::month("month", roll.month.as_ref())?;
        let mut entries = Vec::with_capacity(roll.entries.len());
        for (index, entry) in roll.entries.iter().enumerate() {
            let number = i64::try_from(index).unwrap_or(i64::MAX) + 1;
            let field = format!("entries[{index}].worker");
            let (of_project, worker) = wire::child_name(&field, &entry.worker, "workers")?;
            if of_project != project {
                return Err(Problem::invalid_field(
                    ErrorReason::FieldInvalid,
                    &field,
                    "names a worker of another project",
                    "考勤人员不属于本项目",
                )
                .into());
            }
            entries.push(AttendanceEntry {
                entry_number: number,
                worker_id: worker,
                days: i64::from(entry.days),
                pieces: entry.pieces,
            });
        }
        let (recorded, problems) = self
            .relief
            .record_attendance(&caller, key, &project, month, entries)
            .await?;
        Ok(Response::new(pb::RecordAttendanceResponse {
            recorded: i32::try_from(recorded).unwrap_or(i32::MAX),
            problems: problems
                .iter()
                .map(|p| pb::AttendanceProblem {
                    entry_number: i32::try_from(p.entry_number).unwrap_or(0),
                    worker: p.worker.clone(),
                    reason: p.reason.code().to_string(),
                    field: p.field.clone(),
                    message: p.message_zh.clone(),
                })
                .collect(),
        }))
    }

    async fn prepare_payroll(
        &self,
        request: Request<pb::PreparePayrollRequest>,
    ) -> Result<Response<pb::PreparePayrollResponse>, Status> {
        let caller = caller(&request)?;
        let request = request.into_inner();
        let project = wire::id_of("parent", &request.parent, "projects")?;
        let month = wire::month("month", request.month.as_ref())?;
        let view = self.relief.prepare_payroll(&caller, &project, month).await?;
        Ok(Response::new(pb::PreparePayrollResponse {
            payroll: Some(wire::view_to_wire(&view)),
        }))
    }

    async fn get_payroll(
        &self,
        request: Request<pb::GetPayrollRequest>,
    ) -> Result<Response<pb::GetPayrollResponse>, Status> {
        let caller = caller(&request)?;
        let (project, month) = wire::payroll_name("name", &request.get_ref().name)?;
        let view = self.relief.get_payroll(&caller, &project, month).await?;
        Ok(Response::new(pb::GetPayrollResponse {
            payroll: Some(wire::view_to_wire(&view)),
        }))
    }

    async fn list_payrolls(
        &self,
        request: Request<pb::ListPayrollsRequest>,
    ) -> Result<Response<pb::ListPayrollsResponse>, Status> {
        let caller = caller(&request)?;
        let request = request.into_inner();
        let project_id = if request.parent.trim() == "projects/-" {
            String::new()
        } else {
            wire::id_of("parent", &request.parent, "projects")?
        };
        let filter = PayrollFilter {
            project_id,
            region_prefix: wire::region_prefix("region_prefix", &request.region_prefix, false)?,
            state: wire::optional(request.state, wire::payroll_state, "state")?,
            month: match &request.month {
                Some(m) => Some(wire::month("month", Some(m))?),
                None => None,
            },
        };
        let fingerprint = paging::fingerprint(&[
            &request.parent,
            &filter.region_prefix,
            &request.state.to_string(),
            &filter.month.map(|m| m.text()).unwrap_or_default(),
        ]);
        let (size, cursor) = paging::page(request.page_size, &request.page_token, &fingerprint)?;
        let cursor = cursor.unwrap_or_default();
        let after = (
            cursor.first().map(String::as_str).unwrap_or(""),
            cursor.get(1).map(String::as_str).unwrap_or(""),
        );
        let mut payrolls = self.relief.list_payrolls(&caller, filter, after, size).await?;
        let next_page_token = paging::next_page(&mut payrolls, size, &fingerprint, |(p, _)| {
            vec![p.project_id.clone(), p.month.text()]
        });
        Ok(Response::new(pb::ListPayrollsResponse {
            payrolls: payrolls
                .iter()
                .map(|(p, state)| wire::payroll_to_wire(p, *state, &[]))
                .collect(),
            next_page_token,
        }))
    }

    async fn publish_payroll_notice(
        &self,
        request: Request<pb::PublishPayrollNoticeRequest>,
    ) -> Result<Response<pb::PublishPayrollNoticeResponse>, Status> {
        let caller = caller(&request)?;
        let request = request.into_inner();
        let (project, month) = wire::payroll_name("name", &request.name)?;
        let notice = NoticeRequest {
            first_day: optional_date("first_day", request.first_day.as_ref())?,
            objection_contact: wire::text("objection_contact", &request.objection_contact, 200, "异议受理联系方式")?,
        };
        let view = self
            .relief
            .publish_payroll_notice(&caller, &project, month, etag(&request.etag)?, notice)
            .await?;
        Ok(Response::new(pb::PublishPayrollNoticeResponse {
            payroll: Some(wire::view_to_wire(&view)),
        }))
    }

    async fn get_payroll_notice(
        &self,
        request: Request<pb::GetPayrollNoticeRequest>,
    ) -> Result<Response<pb::GetPayrollNoticeResponse>, Status> {
        let caller = caller(&request)?;
        let name = request.get_ref().name.trim();
        let payroll = name.strip_suffix("/notice").ok_or_else(|| {
            Problem::invalid_field(
                ErrorReason::FieldInvalid,
                "name",
                "must be \"projects/{project}/payrolls/{yyyy-mm}/notice\"",
                "公示名称应为 projects/项目编号/payrolls/年-月/notice",
            )
        })?;
        let (project, month) = wire::payroll_name("name", payroll)?;
        let view = self.relief.payroll_notice(&caller, &project, month).await?;
        Ok(Response::new(pb::GetPayrollNoticeResponse {
            notice: Some(wire::notice_to_wire(&view)),
        }))
    }

    async fn raise_objection(
        &self,
        request: Request<pb::RaiseObjectionRequest>,
    ) -> Result<Response<pb::RaiseObjectionResponse>, Status> {
        let caller = caller(&request)?;
        let request = request.into_inner();
        let key = request_key(&caller.subject, "RaiseObjection", &request.request_id, &request)?;
        let (project, month) = wire::payroll_name("parent", &request.parent)?;
        let objection = request
            .objection
            .as_ref()
            .ok_or_else(|| Problem::required("objection", "异议"))?;
        let asked = ObjectionRequest {
            line_number: i64::from(objection.line_number),
            content: wire::text("objection.content", &objection.content, 2000, "异议内容")?,
            channel: wire::text("objection.channel", &objection.channel, 20, "受理方式")?,
            received: date("objection.received_date", objection.received_date.as_ref())?,
        };
        let stored = self
            .relief
            .raise_objection(&caller, key, &project, month, asked)
            .await?;
        Ok(Response::new(pb::RaiseObjectionResponse {
            objection: Some(wire::objection_to_wire(&stored)),
        }))
    }

    async fn resolve_objection(
        &self,
        request: Request<pb::ResolveObjectionRequest>,
    ) -> Result<Response<pb::ResolveObjectionResponse>, Status> {
        let caller = caller(&request)?;
        let request = request.into_inner();
        let (payroll, objection) = request.name.trim().rsplit_once("/objections/").ok_or_else(|| {
            Problem::invalid_field(
                ErrorReason::FieldInvalid,
                "name",
                "must be \"projects/{project}/payrolls/{yyyy-mm}/objections/{objection}\"",
                "异议名称格式不正确",
            )
        })?;
        let (project, month) = wire::payroll_name("name", payroll)?;
        let objection = wire::id_of("name", &format!("objections/{objection}"), "objections")?;
        let resolution = wire::text("resolution", &request.resolution, 2000, "核实结果")?;
        let stored = self
            .relief
            .resolve_objection(&caller, &project, month, &objection, request.upheld, &resolution)
            .await?;
        Ok(Response::new(pb::ResolveObjectionResponse {
            objection: Some(wire::objection_to_wire(&stored)),
        }))
    }

    async fn approve_payroll(
        &self,
        request: Request<pb::ApprovePayrollRequest>,
    ) -> Result<Response<pb::ApprovePayrollResponse>, Status> {
        let caller = caller(&request)?;
        let call = CallContext::of(&request);
        let request = request.into_inner();
        let (project, month) = wire::payroll_name("name", &request.name)?;
        let view = self
            .relief
            .approve_payroll(&caller, &call, &project, month, etag(&request.etag)?)
            .await?;
        Ok(Response::new(pb::ApprovePayrollResponse {
            payroll: Some(wire::view_to_wire(&view)),
        }))
    }

    async fn confirm_receipt(
        &self,
        request: Request<pb::ConfirmReceiptRequest>,
    ) -> Result<Response<pb::ConfirmReceiptResponse>, Status> {
        let caller = caller(&request)?;
        let call = CallContext::of(&request);
        let request = request.into_inner();
        let (project, month) = wire::payroll_name("payroll", &request.payroll)?;
        let line_number = wire::within("line_number", i64::from(request.line_number), 1, 1_000_000, "行号")?;
        let reference = wire::text("ledger_reference", &request.ledger_reference, 64, "签字确认表编号")?;
        let paid_date = date("paid_date", request.paid_date.as_ref())?;
        let line = self
            .relief
            .confirm_receipt(
                &caller,
                &call,
                &project,
                month,
                ReceiptRequest {
                    line_number,
                    ledger_reference: reference,
                    paid_date,
                },
            )
            .await?;
        Ok(Response::new(pb::ConfirmReceiptResponse {
            line: Some(wire::line_to_wire(&line)),
        }))
    }

    async fn resubmit_line(
        &self,
        request: Request<pb::ResubmitLineRequest>,
    ) -> Result<Response<pb::ResubmitLineResponse>, Status> {
        let caller = caller(&request)?;
        let call = CallContext::of(&request);
        let request = request.into_inner();
        let (project, month) = wire::payroll_name("payroll", &request.payroll)?;
        let line_number = wire::within("line_number", i64::from(request.line_number), 1, 1_000_000, "行号")?;
        let reason = wire::text("reason", &request.reason, 500, "重新提交原因")?;
        let line = self
            .relief
            .resubmit_line(&caller, &call, &project, month, line_number, &reason)
            .await?;
        Ok(Response::new(pb::ResubmitLineResponse {
            line: Some(wire::line_to_wire(&line)),
        }))
    }

    async fn list_arrears(
        &self,
        request: Request<pb::ListArrearsRequest>,
    ) -> Result<Response<pb::ListArrearsResponse>, Status> {
        let caller = caller(&request)?;
        let request = request.into_inner();
        let prefix = wire::region_prefix("region_prefix", &request.region_prefix, false)?;
        let fingerprint = paging::fingerprint(&[&prefix]);
        let (size, cursor) = paging::page(request.page_size, &request.page_token, &fingerprint)?;
        let after = match cursor.as_deref() {
            Some([due, project, month, line]) => OwedCursor {
                due_date: due.clone(),
                project_id: project.clone(),
                month: month.clone(),
                line_number: line.parse().map_err(|_| paging::token_invalid())?,
            },
            Some(_) => return Err(paging::token_invalid().into()),
            None => OwedCursor::default(),
        };
        let (arrears, next) = self.relief.list_arrears(&caller, &prefix, &after, size).await?;
        let next_page_token = next
            .map(|c| {
                paging::encode_token(
                    &fingerprint,
                    &[c.due_date, c.project_id, c.month, c.line_number.to_string()],
                )
            })
            .unwrap_or_default();
        Ok(Response::new(pb::ListArrearsResponse {
            arrears: arrears.iter().map(wire::arrear_to_wire).collect(),
            next_page_token,
        }))
    }

    async fn close_project(
        &self,
        request: Request<pb::CloseProjectRequest>,
    ) -> Result<Response<pb::CloseProjectResponse>, Status> {
        let caller = caller(&request)?;
        let request = request.into_inner();
        let id = wire::id_of("name", &request.name, "projects")?;
        let view = self.relief.close_project(&caller, &id, etag(&request.etag)?).await?;
        Ok(Response::new(pb::CloseProjectResponse {
            project: Some(wire::project_to_wire(&view)),
        }))
    }

    async fn get_project_stats(
        &self,
        request: Request<pb::GetProjectStatsRequest>,
    ) -> Result<Response<pb::GetProjectStatsResponse>, Status> {
        let caller = caller(&request)?;
        let request = request.into_inner();
        let prefix = wire::region_prefix("region_prefix", &request.region_prefix, false)?;
        let year = i32::try_from(wire::within("year", i64::from(request.year), 2000, 2100, "年度")?).unwrap_or(0);
        let as_of = bangfu_platform::wire::optional_date("as_of", request.as_of.as_ref())?;
        let stats = self.relief.project_stats(&caller, &prefix, year, as_of).await?;
        Ok(Response::new(wire::stats_to_wire(&stats)))
    }

    async fn list_parameters(
        &self,
        request: Request<pb::ListParametersRequest>,
    ) -> Result<Response<pb::ListParametersResponse>, Status> {
        let request = request.into_inner();
        let (parameters, next_page_token) = service_rpc::list_parameters(
            self.relief.parameters(),
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
            self.relief.parameters(),
            &caller,
            &method("UpdateParameter"),
            request.parameter.as_ref(),
            request.update_mask.as_ref(),
            request.allow_missing,
            self.relief.now(),
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
            self.relief.db(),
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
