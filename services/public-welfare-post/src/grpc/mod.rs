//! The wire edge of public-welfare posts: each RPC takes its caller, parses the message into
//! domain values (`wire`), runs the use case in `app`, and maps the answer back.

mod wire;

use std::sync::Arc;

use bangfu_platform::auth::caller;
use bangfu_platform::config::ServerConfig;
use bangfu_platform::error::{ErrorReason, Problem};
use bangfu_platform::idempotency::RequestKey;
use bangfu_platform::paging;
use bangfu_platform::peers::CallContext;
use bangfu_platform::service_rpc;
use bangfu_platform::wire::{date, optional_date, period};
use bangfu_proto::welfare_post::v1 as pb;
use bangfu_proto::welfare_post::v1::welfare_post_service_server::{WelfarePostService, WelfarePostServiceServer};
use tonic::{Request, Response, Status};

use crate::app::{
    AnnouncementRequest, CadreRequest, CheckSubject, EvaluationRequest, ExitRequest, HireRequest, ObjectionRequest,
    PostChange, Posts, method,
};
use crate::store::{AssignmentFilter, NewAnnouncement, PostFilter};

/// The gRPC face of [`Posts`].
#[derive(Clone)]
pub struct PostsServer {
    posts: Arc<Posts>,
}

impl PostsServer {
    /// The service with the configured message limits.
    pub fn shared(posts: Arc<Posts>, config: &ServerConfig) -> WelfarePostServiceServer<Self> {
        WelfarePostServiceServer::new(Self { posts })
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

fn insurance(
    field: &str,
    value: Option<&pb::AccidentInsurance>,
) -> Result<(String, String, time::Date, time::Date), Problem> {
    let value = value.ok_or_else(|| Problem::required(field, "意外伤害保险"))?;
    let coverage = value
        .coverage
        .as_ref()
        .ok_or_else(|| Problem::required(format!("{field}.coverage"), "保险期间"))?;
    let (first, last) = period(&format!("{field}.coverage"), Some(coverage), time::Date::MIN)?;
    Ok((
        wire::text(&format!("{field}.insurer"), &value.insurer, 100, "保险公司")?,
        wire::text(&format!("{field}.policy_number"), &value.policy_number, 64, "保单号")?,
        first,
        last,
    ))
}

fn month(field: &str, value: Option<&bangfu_proto::common::v1::YearMonth>) -> Result<(i32, u8), Problem> {
    let value = value.ok_or_else(|| Problem::required(field, "月份"))?;
    match (u8::try_from(value.month), (1900..=9999).contains(&value.year)) {
        (Ok(m @ 1..=12), true) => Ok((value.year, m)),
        _ => Err(Problem::invalid_field(
            ErrorReason::FieldInvalid,
            field,
            "is not a month",
            "月份无效",
        )),
    }
}

#[tonic::async_trait]
impl WelfarePostService for PostsServer {
    async fn create_post(
        &self,
        request: Request<pb::CreatePostRequest>,
    ) -> Result<Response<pb::CreatePostResponse>, Status> {
        let caller = caller(&request)?;
        let call = CallContext::of(&request);
        let request = request.into_inner();
        let key = request_key(&caller.subject, "CreatePost", &request.request_id, &request)?;
        let post = wire::new_post(request.post.as_ref().ok_or_else(|| Problem::required("post", "岗位"))?)?;
        let stored = self.posts.create_post(&caller, &call, key, post).await?;
        let need = self.posts.village_need(&stored.post.village).await?;
        Ok(Response::new(pb::CreatePostResponse {
            post: Some(wire::post_to_wire(&stored, need)),
        }))
    }

    async fn get_post(&self, request: Request<pb::GetPostRequest>) -> Result<Response<pb::GetPostResponse>, Status> {
        let caller = caller(&request)?;
        let id = wire::id_of("name", &request.get_ref().name, "posts")?;
        let post = self.posts.get_post(&caller, &id).await?;
        let need = self.posts.village_need(&post.post.village).await?;
        Ok(Response::new(pb::GetPostResponse {
            post: Some(wire::post_to_wire(&post, need)),
        }))
    }

    async fn list_posts(
        &self,
        request: Request<pb::ListPostsRequest>,
    ) -> Result<Response<pb::ListPostsResponse>, Status> {
        let caller = caller(&request)?;
        let request = request.into_inner();
        let filter = PostFilter {
            region_prefix: wire::region_prefix("region_prefix", &request.region_prefix, false)?,
            post_type: wire::optional(request.post_type, wire::post_type, "post_type")?,
            funding_source: wire::optional(request.funding_source, wire::funding_source, "funding_source")?,
            state: wire::optional(request.state, wire::post_state, "state")?,
        };
        let fingerprint = paging::fingerprint(&[
            &filter.region_prefix,
            &request.post_type.to_string(),
            &request.funding_source.to_string(),
            &request.state.to_string(),
        ]);
        let (size, cursor) = paging::page(request.page_size, &request.page_token, &fingerprint)?;
        let after = cursor.and_then(|c| c.into_iter().next()).unwrap_or_default();
        let mut posts = self.posts.list_posts(&caller, filter, &after, size).await?;
        let next_page_token = paging::next_page(&mut posts, size, &fingerprint, |p| vec![p.id.clone()]);
        let mut wired = Vec::with_capacity(posts.len());
        for post in &posts {
            wired.push(wire::post_to_wire(
                post,
                self.posts.village_need(&post.post.village).await?,
            ));
        }
        Ok(Response::new(pb::ListPostsResponse {
            posts: wired,
            next_page_token,
        }))
    }

    async fn update_post(
        &self,
        request: Request<pb::UpdatePostRequest>,
    ) -> Result<Response<pb::UpdatePostResponse>, Status> {
        let caller = caller(&request)?;
        let request = request.into_inner();
        let post = request.post.as_ref().ok_or_else(|| Problem::required("post", "岗位"))?;
        let id = wire::id_of("post.name", &post.name, "posts")?;
        let paths = request
            .update_mask
            .as_ref()
            .map(|m| m.paths.clone())
            .filter(|p| !p.is_empty())
            .ok_or_else(|| Problem::required("update_mask", "修改字段"))?;
        let mut change = PostChange::default();
        for path in &paths {
            match path.as_str() {
                "title" => change.title = Some(wire::text("post.title", &post.title, 60, "岗位名称")?),
                "monthly_standard" => {
                    change.monthly_standard = Some(match &post.monthly_standard {
                        Some(m) => Some(wire::within(
                            "post.monthly_standard",
                            m.fen,
                            0,
                            10_000_000,
                            "岗位月补贴标准（分）",
                        )?),
                        None => None,
                    })
                }
                "hours_per_month" => {
                    change.hours_per_month = Some(wire::within(
                        "post.hours_per_month",
                        i64::from(post.hours_per_month),
                        1,
                        300,
                        "每月工作时长",
                    )?)
                }
                "days_per_month" => {
                    change.days_per_month = Some(wire::within(
                        "post.days_per_month",
                        i64::from(post.days_per_month),
                        1,
                        31,
                        "每月在岗天数",
                    )?)
                }
                "work_time" => change.work_time = Some(wire::work_time("post.work_time", post.work_time)?),
                "places" => {
                    change.places = Some(wire::within("post.places", i64::from(post.places), 1, 100, "岗位数")?)
                }
                "state" => change.state = Some(wire::post_state("post.state", post.state)?),
                other => {
                    return Err(Problem::invalid_field(
                        ErrorReason::FieldInvalid,
                        "update_mask",
                        format!("{other} cannot be changed"),
                        format!("字段 {other} 不可修改"),
                    )
                    .into());
                }
            }
        }
        let stored = self.posts.update_post(&caller, &id, &post.etag, change).await?;
        let need = self.posts.village_need(&stored.post.village).await?;
        Ok(Response::new(pb::UpdatePostResponse {
            post: Some(wire::post_to_wire(&stored, need)),
        }))
    }

    async fn publish_announcement(
        &self,
        request: Request<pb::PublishAnnouncementRequest>,
    ) -> Result<Response<pb::PublishAnnouncementResponse>, Status> {
        let caller = caller(&request)?;
        let request = request.into_inner();
        let key = request_key(&caller.subject, "PublishAnnouncement", &request.request_id, &request)?;
        let a = request
            .announcement
            .as_ref()
            .ok_or_else(|| Problem::required("announcement", "招聘公告"))?;
        let post_id = wire::id_of("announcement.post", &a.post, "posts")?;
        // Every missing field is named at once: a clerk fixes the notice in one go.
        let required = [
            ("announcement.duties", a.duties.trim().is_empty(), "岗位职责"),
            (
                "announcement.requirements",
                a.requirements.trim().is_empty(),
                "招聘条件",
            ),
            ("announcement.pay", a.pay.trim().is_empty(), "薪酬待遇"),
            ("announcement.hours", a.hours.trim().is_empty(), "工作时间"),
            ("announcement.place", a.place.trim().is_empty(), "工作地点"),
            (
                "announcement.application_period",
                a.application_period.is_none(),
                "报名期限",
            ),
        ];
        let missing: Vec<(&str, &str)> = required
            .iter()
            .filter(|(_, absent, _)| *absent)
            .map(|(field, _, zh)| (*field, *zh))
            .collect();
        if !missing.is_empty() {
            let mut problem = Problem::new(
                tonic::Code::InvalidArgument,
                ErrorReason::AnnouncementIncomplete,
                format!(
                    "the announcement lacks {}",
                    missing.iter().map(|(f, _)| *f).collect::<Vec<_>>().join(", ")
                ),
                format!(
                    "招聘公告缺少：{}",
                    missing.iter().map(|(_, zh)| *zh).collect::<Vec<_>>().join("、")
                ),
            );
            for (field, _) in &missing {
                problem = problem.with_violation(*field, "is required");
            }
            return Err(problem.into());
        }
        let (first_day, last_day) = period(
            "announcement.application_period",
            a.application_period.as_ref(),
            time::Date::MIN,
        )?;
        let announcement = NewAnnouncement {
            post_id: post_id.clone(),
            duties: wire::text("announcement.duties", &a.duties, 2000, "岗位职责")?,
            requirements: wire::text("announcement.requirements", &a.requirements, 2000, "招聘条件")?,
            pay: wire::text("announcement.pay", &a.pay, 500, "薪酬待遇")?,
            hours: wire::text("announcement.hours", &a.hours, 500, "工作时间")?,
            place: wire::text("announcement.place", &a.place, 500, "工作地点")?,
            first_day,
            last_day,
        };
        let stored = self
            .posts
            .publish_announcement(&caller, key, AnnouncementRequest { post_id, announcement })
            .await?;
        Ok(Response::new(pb::PublishAnnouncementResponse {
            announcement: Some(wire::announcement_to_wire(&stored, self.posts.today())),
        }))
    }

    async fn submit_application(
        &self,
        request: Request<pb::SubmitApplicationRequest>,
    ) -> Result<Response<pb::SubmitApplicationResponse>, Status> {
        let caller = caller(&request)?;
        let call = CallContext::of(&request);
        let request = request.into_inner();
        let key = request_key(&caller.subject, "SubmitApplication", &request.request_id, &request)?;
        let application = request
            .application
            .as_ref()
            .ok_or_else(|| Problem::required("application", "报名"))?;
        let announcement = wire::id_of("application.announcement", &application.announcement, "announcements")?;
        let person = wire::id_of("application.person", &application.person, "persons")?;
        let stored = self
            .posts
            .submit_application(&caller, &call, key, &announcement, &person, application.declared_fit)
            .await?;
        Ok(Response::new(pb::SubmitApplicationResponse {
            application: Some(wire::application_to_wire(&stored)),
        }))
    }

    async fn list_applications(
        &self,
        request: Request<pb::ListApplicationsRequest>,
    ) -> Result<Response<pb::ListApplicationsResponse>, Status> {
        let caller = caller(&request)?;
        let request = request.into_inner();
        let announcement = wire::id_of("announcement", &request.announcement, "announcements")?;
        let state = wire::optional(request.state, wire::application_state, "state")?;
        let fingerprint = paging::fingerprint(&[&announcement, &request.state.to_string()]);
        let (size, cursor) = paging::page(request.page_size, &request.page_token, &fingerprint)?;
        let (after, ranked) = match cursor.as_deref() {
            None => (None, 0),
            Some([rank, created, id, ranked]) => match (rank.parse(), created.parse(), ranked.parse()) {
                (Ok(rank), Ok(created), Ok(ranked)) => (Some((rank, created, id.clone())), ranked),
                _ => return Err(paging::token_invalid().into()),
            },
            Some(_) => return Err(paging::token_invalid().into()),
        };
        let mut applications = self
            .posts
            .list_applications(&caller, &announcement, state, after, size)
            .await?;
        let last_rank = ranked + applications.len().min(size as usize);
        let next_page_token = paging::next_page(&mut applications, size, &fingerprint, |a| {
            vec![
                a.rank_key.to_string(),
                bangfu_platform::db::to_micros(a.created).to_string(),
                a.id.clone(),
                last_rank.to_string(),
            ]
        });
        let applications = applications
            .iter()
            .enumerate()
            .map(|(i, a)| pb::Application {
                rank: i32::try_from(ranked + i + 1).unwrap_or(0),
                ..wire::application_to_wire(a)
            })
            .collect();
        Ok(Response::new(pb::ListApplicationsResponse {
            applications,
            next_page_token,
        }))
    }

    async fn check_eligibility(
        &self,
        request: Request<pb::CheckEligibilityRequest>,
    ) -> Result<Response<pb::CheckEligibilityResponse>, Status> {
        let caller = caller(&request)?;
        let call = CallContext::of(&request);
        let request = request.into_inner();
        let hire_date = date("hire_date", request.hire_date.as_ref())?;
        let subject = match &request.subject {
            Some(pb::check_eligibility_request::Subject::Application(name)) => {
                CheckSubject::Application(wire::id_of("application", name, "applications")?)
            }
            Some(pb::check_eligibility_request::Subject::PersonAndPost(pair)) => CheckSubject::PersonAndPost {
                person_id: wire::id_of("person_and_post.person", &pair.person, "persons")?,
                post_id: wire::id_of("person_and_post.post", &pair.post, "posts")?,
            },
            None => return Err(Problem::required("application", "报名或人员与岗位").into()),
        };
        let result = self.posts.check_eligibility(&caller, &call, subject, hire_date).await?;
        Ok(Response::new(pb::CheckEligibilityResponse {
            eligibility: Some(wire::eligibility_to_wire(&result.checked, result.eligible)),
        }))
    }

    async fn propose_hires(
        &self,
        request: Request<pb::ProposeHiresRequest>,
    ) -> Result<Response<pb::ProposeHiresResponse>, Status> {
        let caller = caller(&request)?;
        let call = CallContext::of(&request);
        let request = request.into_inner();
        let key = request_key(&caller.subject, "ProposeHires", &request.request_id, &request)?;
        let announcement = wire::id_of("announcement", &request.announcement, "announcements")?;
        if request.hires.is_empty() || request.hires.len() > 100 {
            return Err(Problem::invalid_field(
                ErrorReason::FieldInvalid,
                "hires",
                "must hold 1 to 100 hires",
                "拟聘人员应为1至100人",
            )
            .into());
        }
        let mut hires = Vec::with_capacity(request.hires.len());
        for (i, hire) in request.hires.iter().enumerate() {
            let field = format!("hires[{i}]");
            let term = hire
                .contract_term
                .as_ref()
                .ok_or_else(|| Problem::required(format!("{field}.contract_term"), "聘用期限"))?;
            let (start, end) = period(&format!("{field}.contract_term"), Some(term), time::Date::MIN)?;
            let (insurer, insurance_number, insurance_first, insurance_last) =
                insurance(&format!("{field}.insurance"), hire.insurance.as_ref())?;
            hires.push(HireRequest {
                application_id: wire::id_of(&format!("{field}.application"), &hire.application, "applications")?,
                start,
                end,
                insurer,
                insurance_number,
                insurance_first,
                insurance_last,
            });
        }
        let notice_first = optional_date("notice_first_day", request.notice_first_day.as_ref())?;
        let view = self
            .posts
            .propose_hires(&caller, &call, key, &announcement, hires, notice_first)
            .await?;
        Ok(Response::new(pb::ProposeHiresResponse {
            hire_notice: Some(wire::notice_to_wire(&view, self.posts.today())),
        }))
    }

    async fn get_hire_notice(
        &self,
        request: Request<pb::GetHireNoticeRequest>,
    ) -> Result<Response<pb::GetHireNoticeResponse>, Status> {
        let caller = caller(&request)?;
        let id = wire::id_of("name", &request.get_ref().name, "hireNotices")?;
        let view = self.posts.notice(&caller, "GetHireNotice", &id).await?;
        Ok(Response::new(pb::GetHireNoticeResponse {
            hire_notice: Some(wire::notice_to_wire(&view, self.posts.today())),
        }))
    }

    async fn raise_objection(
        &self,
        request: Request<pb::RaiseObjectionRequest>,
    ) -> Result<Response<pb::RaiseObjectionResponse>, Status> {
        let caller = caller(&request)?;
        let request = request.into_inner();
        let key = request_key(&caller.subject, "RaiseObjection", &request.request_id, &request)?;
        let objection = request
            .objection
            .as_ref()
            .ok_or_else(|| Problem::required("objection", "异议"))?;
        let stored = self
            .posts
            .raise_objection(
                &caller,
                key,
                ObjectionRequest {
                    assignment_id: wire::id_of("objection.assignment", &objection.assignment, "assignments")?,
                    content: wire::text("objection.content", &objection.content, 2000, "异议内容")?,
                    received_from: wire::optional_text(
                        "objection.received_from",
                        &objection.received_from,
                        200,
                        "异议来源",
                    )?,
                },
            )
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
        let id = wire::id_of("name", &request.name, "objections")?;
        let resolution = wire::text("resolution", &request.resolution, 2000, "核查结论")?;
        let stored = self
            .posts
            .resolve_objection(&caller, &id, request.upheld, &resolution)
            .await?;
        Ok(Response::new(pb::ResolveObjectionResponse {
            objection: Some(wire::objection_to_wire(&stored)),
        }))
    }

    async fn confirm_hires(
        &self,
        request: Request<pb::ConfirmHiresRequest>,
    ) -> Result<Response<pb::ConfirmHiresResponse>, Status> {
        let caller = caller(&request)?;
        let call = CallContext::of(&request);
        let id = wire::id_of("hire_notice", &request.get_ref().hire_notice, "hireNotices")?;
        let (view, assignments) = self.posts.confirm_hires(&caller, &call, &id).await?;
        Ok(Response::new(pb::ConfirmHiresResponse {
            hire_notice: Some(wire::notice_to_wire(&view, self.posts.today())),
            assignments: assignments.iter().map(wire::assignment_to_wire).collect(),
        }))
    }

    async fn get_assignment(
        &self,
        request: Request<pb::GetAssignmentRequest>,
    ) -> Result<Response<pb::GetAssignmentResponse>, Status> {
        let caller = caller(&request)?;
        let id = wire::id_of("name", &request.get_ref().name, "assignments")?;
        let assignment = self.posts.get_assignment(&caller, &id).await?;
        Ok(Response::new(pb::GetAssignmentResponse {
            assignment: Some(wire::assignment_to_wire(&assignment)),
        }))
    }

    async fn list_assignments(
        &self,
        request: Request<pb::ListAssignmentsRequest>,
    ) -> Result<Response<pb::ListAssignmentsResponse>, Status> {
        let caller = caller(&request)?;
        let request = request.into_inner();
        let filter = AssignmentFilter {
            region_prefix: wire::region_prefix("region_prefix", &request.region_prefix, false)?,
            post_id: if request.post.is_empty() {
                String::new()
            } else {
                wire::id_of("post", &request.post, "posts")?
            },
            person_id: if request.person.is_empty() {
                String::new()
            } else {
                wire::id_of("person", &request.person, "persons")?
            },
            state: wire::optional(request.state, wire::assignment_state, "state")?,
        };
        let fingerprint = paging::fingerprint(&[
            &filter.region_prefix,
            &filter.post_id,
            &filter.person_id,
            &request.state.to_string(),
        ]);
        let (size, cursor) = paging::page(request.page_size, &request.page_token, &fingerprint)?;
        let after = cursor.and_then(|c| c.into_iter().next()).unwrap_or_default();
        let mut assignments = self.posts.list_assignments(&caller, filter, &after, size).await?;
        let next_page_token = paging::next_page(&mut assignments, size, &fingerprint, |a| vec![a.id.clone()]);
        Ok(Response::new(pb::ListAssignmentsResponse {
            assignments: assignments.iter().map(wire::assignment_to_wire).collect(),
            next_page_token,
        }))
    }

    async fn renew_contract(
        &self,
        request: Request<pb::RenewContractRequest>,
    ) -> Result<Response<pb::RenewContractResponse>, Status> {
        let caller = caller(&request)?;
        let call = CallContext::of(&request);
        let request = request.into_inner();
        let key = request_key(&caller.subject, "RenewContract", &request.request_id, &request)?;
        let id = wire::id_of("name", &request.name, "assignments")?;
        let last_day = date("last_day", request.last_day.as_ref())?;
        let insurance = insurance("insurance", request.insurance.as_ref())?;
        let assignment = self
            .posts
            .renew_contract(&caller, &call, key, &id, &request.etag, last_day, insurance)
            .await?;
        Ok(Response::new(pb::RenewContractResponse {
            assignment: Some(wire::assignment_to_wire(&assignment)),
        }))
    }

    async fn record_evaluation(
        &self,
        request: Request<pb::RecordEvaluationRequest>,
    ) -> Result<Response<pb::RecordEvaluationResponse>, Status> {
        let caller = caller(&request)?;
        let request = request.into_inner();
        let assignment_id = wire::id_of("assignment", &request.assignment, "assignments")?;
        let evaluation = request
            .evaluation
            .as_ref()
            .ok_or_else(|| Problem::required("evaluation", "考核记录"))?;
        let (year, month) = month("evaluation.month", evaluation.month.as_ref())?;
        let stored = self
            .posts
            .record_evaluation(
                &caller,
                EvaluationRequest {
                    assignment_id,
                    year,
                    month,
                    days_on_post: wire::within(
                        "evaluation.days_on_post",
                        i64::from(evaluation.days_on_post),
                        0,
                        31,
                        "在岗天数",
                    )?,
                    hours_on_post: wire::within(
                        "evaluation.hours_on_post",
                        i64::from(evaluation.hours_on_post),
                        0,
                        744,
                        "在岗时长",
                    )?,
                    score: wire::within("evaluation.score", i64::from(evaluation.score), 0, 100, "考核分数")?,
                    remark: wire::optional_text("evaluation.remark", &evaluation.remark, 500, "备注")?,
                    etag: evaluation.etag.clone(),
                },
            )
            .await?;
        Ok(Response::new(pb::RecordEvaluationResponse {
            evaluation: Some(wire::evaluation_to_wire(&stored)),
        }))
    }

    async fn close_month(
        &self,
        request: Request<pb::CloseMonthRequest>,
    ) -> Result<Response<pb::CloseMonthResponse>, Status> {
        let caller = caller(&request)?;
        let call = CallContext::of(&request);
        let request = request.into_inner();
        let prefix = wire::region_prefix("region_prefix", &request.region_prefix, true)?;
        let (year, month) = month("month", request.month.as_ref())?;
        let limit = match request.line_limit {
            0 => 100,
            n => usize::try_from(n.clamp(1, 1000)).unwrap_or(100),
        };
        let closed = self
            .posts
            .close_month(&caller, &call, &prefix, year, month, limit)
            .await?;
        let count = |n: usize| i32::try_from(n).unwrap_or(i32::MAX);
        Ok(Response::new(pb::CloseMonthResponse {
            holder_count: count(closed.holders),
            claim_count: count(closed.claims),
            no_claim_count: count(closed.no_claims),
            refused_count: count(closed.refused),
            pending_count: count(closed.pending),
            lines: closed.lines.iter().map(wire::month_line_to_wire).collect(),
        }))
    }

    async fn exit_holder(
        &self,
        request: Request<pb::ExitHolderRequest>,
    ) -> Result<Response<pb::ExitHolderResponse>, Status> {
        let caller = caller(&request)?;
        let call = CallContext::of(&request);
        let request = request.into_inner();
        let exit = ExitRequest {
            assignment_id: wire::id_of("name", &request.name, "assignments")?,
            etag: request.etag.clone(),
            reason: wire::exit_reason("reason", request.reason)?,
            last_day: date("last_day", request.last_day.as_ref())?,
            note: wire::text("note", &request.note, 500, "退岗说明")?,
            exit_proposal: if request.exit_proposal.is_empty() {
                None
            } else {
                Some(wire::id_of("exit_proposal", &request.exit_proposal, "exitProposals")?)
            },
        };
        if exit.etag.is_empty() {
            return Err(Problem::required("etag", "版本号").into());
        }
        let assignment = self.posts.exit_holder(&caller, &call, exit).await?;
        Ok(Response::new(pb::ExitHolderResponse {
            assignment: Some(wire::assignment_to_wire(&assignment)),
        }))
    }

    async fn list_exit_proposals(
        &self,
        request: Request<pb::ListExitProposalsRequest>,
    ) -> Result<Response<pb::ListExitProposalsResponse>, Status> {
        let caller = caller(&request)?;
        let request = request.into_inner();
        let prefix = wire::region_prefix("region_prefix", &request.region_prefix, false)?;
        let open_only = match pb::ExitProposalState::try_from(request.state) {
            Ok(pb::ExitProposalState::Unspecified) => None,
            Ok(pb::ExitProposalState::Open) => Some(true),
            Ok(pb::ExitProposalState::Done) => Some(false),
            Err(_) => {
                return Err(Problem::invalid_field(
                    ErrorReason::FieldInvalid,
                    "state",
                    "is not a known state",
                    "状态无效",
                )
                .into());
            }
        };
        let fingerprint = paging::fingerprint(&[&prefix, &request.state.to_string()]);
        let (size, cursor) = paging::page(request.page_size, &request.page_token, &fingerprint)?;
        let after = cursor.and_then(|c| c.into_iter().next()).unwrap_or_default();
        let mut proposals = self
            .posts
            .list_exit_proposals(&caller, &prefix, open_only, &after, size)
            .await?;
        let next_page_token = paging::next_page(&mut proposals, size, &fingerprint, |p| vec![p.id.clone()]);
        Ok(Response::new(pb::ListExitProposalsResponse {
            exit_proposals: proposals.iter().map(wire::exit_proposal_to_wire).collect(),
            next_page_token,
        }))
    }

    async fn list_fraud_signals(
        &self,
        request: Request<pb::ListFraudSignalsRequest>,
    ) -> Result<Response<pb::ListFraudSignalsResponse>, Status> {
        let caller = caller(&request)?;
        let request = request.into_inner();
        let prefix = wire::region_prefix("region_prefix", &request.region_prefix, true)?;
        let kind = wire::signal_kind(request.kind)?;
        let as_of = optional_date("as_of", request.as_of.as_ref())?;
        let signals = self.posts.fraud_signals(&caller, &prefix, kind, as_of).await?;
        Ok(Response::new(pb::ListFraudSignalsResponse {
            signals: signals.iter().map(wire::signal_to_wire).collect(),
        }))
    }

    async fn register_village_cadre(
        &self,
        request: Request<pb::RegisterVillageCadreRequest>,
    ) -> Result<Response<pb::RegisterVillageCadreResponse>, Status> {
        let caller = caller(&request)?;
        let call = CallContext::of(&request);
        let request = request.into_inner();
        let key = request_key(&caller.subject, "RegisterVillageCadre", &request.request_id, &request)?;
        let cadre = request
            .village_cadre
            .as_ref()
            .ok_or_else(|| Problem::required("village_cadre", "村干部"))?;
        let term_start = date("village_cadre.term_start", cadre.term_start.as_ref())?;
        let term_end = optional_date("village_cadre.term_end", cadre.term_end.as_ref())?;
        if term_end.is_some_and(|end| end < term_start) {
            return Err(Problem::invalid_field(
                ErrorReason::FieldInvalid,
                "village_cadre.term_end",
                "must not be before term_start",
                "任期结束日期不能早于开始日期",
            )
            .into());
        }
        let stored = self
            .posts
            .register_cadre(
                &caller,
                &call,
                key,
                CadreRequest {
                    village: wire::village("village_cadre.village", cadre.village.as_ref())?,
                    person_id: wire::id_of("village_cadre.person", &cadre.person, "persons")?,
                    office: wire::text("village_cadre.office", &cadre.office, 60, "职务")?,
                    term_start,
                    term_end,
                },
            )
            .await?;
        Ok(Response::new(pb::RegisterVillageCadreResponse {
            village_cadre: Some(wire::cadre_to_wire(&stored)),
        }))
    }

    async fn get_post_stats(
        &self,
        request: Request<pb::GetPostStatsRequest>,
    ) -> Result<Response<pb::GetPostStatsResponse>, Status> {
        let caller = caller(&request)?;
        let request = request.into_inner();
        let prefix = wire::region_prefix("region_prefix", &request.region_prefix, true)?;
        let year = i32::try_from(wire::within("year", i64::from(request.year), 2000, 2100, "统计年度")?).unwrap_or(0);
        let as_of = optional_date("as_of", request.as_of.as_ref())?;
        let stats = self.posts.post_stats(&caller, &prefix, year, as_of).await?;
        Ok(Response::new(wire::stats_to_wire(&prefix, &stats)))
    }

    async fn list_parameters(
        &self,
        request: Request<pb::ListParametersRequest>,
    ) -> Result<Response<pb::ListParametersResponse>, Status> {
        let request = request.into_inner();
        let (parameters, next_page_token) = service_rpc::list_parameters(
            self.posts.parameters(),
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
            self.posts.parameters(),
            &caller,
            &method("UpdateParameter"),
            request.parameter.as_ref(),
            request.update_mask.as_ref(),
            request.allow_missing,
            self.posts.now(),
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
            self.posts.db(),
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
