//! The wire edge of job matching: each RPC takes its caller, parses the message into domain
//! values (`wire`), runs the use case in `app`, and maps the answer back.

mod wire;

use std::pin::Pin;
use std::sync::Arc;

use bangfu_platform::auth::caller;
use bangfu_platform::config::ServerConfig;
use bangfu_platform::error::Problem;
use bangfu_platform::idempotency::RequestKey;
use bangfu_platform::outbox::{FeedItem, Position, Start};
use bangfu_platform::paging;
use bangfu_platform::peers::CallContext;
use bangfu_platform::service_rpc;
use bangfu_platform::wire::{date, date_to_wire, timestamp_to_wire};
use bangfu_proto::jobs::v1 as pb;
use bangfu_proto::jobs::v1::job_matching_service_server::{JobMatchingService, JobMatchingServiceServer};
use tokio_stream::Stream;
use tonic::{Request, Response, Status};

use crate::app::postings::{POSTING_CLOSED, POSTING_CREATED};
use crate::app::{CarrierChange, Ending, Jobs, NewPlacement, PostingChange, SeekerChange, method};
use crate::store::{ApplicationFilter, CarrierFilter, Certification, PlacementFilter, PostingFilter, SeekerFilter};

/// Recommendations in one answer: 20 unless asked, at most 100.
const RECOMMENDATIONS: (u32, u32) = (20, 100);

/// The gRPC face of [`Jobs`].
#[derive(Clone)]
pub struct JobsServer {
    jobs: Arc<Jobs>,
}

impl JobsServer {
    /// The service with the configured message limits.
    pub fn shared(jobs: Arc<Jobs>, config: &ServerConfig) -> JobMatchingServiceServer<Self> {
        JobMatchingServiceServer::new(Self { jobs })
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

/// A page of a list: its size and the id to continue after.
fn page(size: i32, token: &str, filters: &[&str]) -> Result<(u32, String, String), Problem> {
    let fingerprint = paging::fingerprint(filters);
    let (size, cursor) = paging::page(size, token, &fingerprint)?;
    let after = cursor.and_then(|c| c.into_iter().next()).unwrap_or_default();
    Ok((size, after, fingerprint))
}

/// An optional "collection/{id}" filter: empty is "any".
fn optional_id(field: &str, name: &str, collection: &str) -> Result<String, Problem> {
    if name.trim().is_empty() {
        Ok(String::new())
    } else {
        wire::id_of(field, name, collection)
    }
}

type PostingChanges = Pin<Box<dyn Stream<Item = Result<pb::WatchPostingChangesResponse, Status>> + Send>>;

#[tonic::async_trait]
impl JobMatchingService for JobsServer {
    async fn create_carrier(
        &self,
        request: Request<pb::CreateCarrierRequest>,
    ) -> Result<Response<pb::CreateCarrierResponse>, Status> {
        let caller = caller(&request)?;
        let request = request.into_inner();
        let key = request_key(&caller.subject, "CreateCarrier", &request.request_id, &request)?;
        let carrier = wire::new_carrier(
            request
                .carrier
                .as_ref()
                .ok_or_else(|| Problem::required("carrier", "就业载体"))?,
        )?;
        let view = self.jobs.create_carrier(&caller, key, carrier).await?;
        Ok(Response::new(pb::CreateCarrierResponse {
            carrier: Some(wire::carrier_to_wire(&view)),
        }))
    }

    async fn get_carrier(
        &self,
        request: Request<pb::GetCarrierRequest>,
    ) -> Result<Response<pb::GetCarrierResponse>, Status> {
        let caller = caller(&request)?;
        let id = wire::id_of("name", &request.get_ref().name, "carriers")?;
        let view = self.jobs.get_carrier(&caller, &id).await?;
        Ok(Response::new(pb::GetCarrierResponse {
            carrier: Some(wire::carrier_to_wire(&view)),
        }))
    }

    async fn list_carriers(
        &self,
        request: Request<pb::ListCarriersRequest>,
    ) -> Result<Response<pb::ListCarriersResponse>, Status> {
        let caller = caller(&request)?;
        let request = request.into_inner();
        let filter = CarrierFilter {
            region_prefix: wire::region_prefix("region_prefix", &request.region_prefix, false)?,
            kind: wire::optional(request.kind, wire::carrier_kind, "kind")?,
        };
        let (size, after, fingerprint) = page(
            request.page_size,
            &request.page_token,
            &[&filter.region_prefix, &request.kind.to_string()],
        )?;
        let mut carriers = self.jobs.list_carriers(&caller, filter, &after, size).await?;
        let next_page_token = paging::next_page(&mut carriers, size, &fingerprint, |c| vec![c.carrier.id.clone()]);
        Ok(Response::new(pb::ListCarriersResponse {
            carriers: carriers.iter().map(wire::carrier_to_wire).collect(),
            next_page_token,
        }))
    }

    async fn update_carrier(
        &self,
        request: Request<pb::UpdateCarrierRequest>,
    ) -> Result<Response<pb::UpdateCarrierResponse>, Status> {
        let caller = caller(&request)?;
        let request = request.into_inner();
        let carrier = request
            .carrier
            .as_ref()
            .ok_or_else(|| Problem::required("carrier", "就业载体"))?;
        let id = wire::id_of("carrier.name", &carrier.name, "carriers")?;
        let mut change = CarrierChange::default();
        for path in wire::mask(request.update_mask.as_ref())? {
            match path.as_str() {
                "display_name" => {
                    change.display_name = Some(wire::text(
                        "carrier.display_name",
                        &carrier.display_name,
                        100,
                        "载体名称",
                    )?)
                }
                "region" => {
                    change.region = Some(wire::known_region("carrier.region", carrier.region.as_ref(), "所在地")?)
                }
                "contact_name" => {
                    change.contact_name = Some(wire::text("carrier.contact_name", &carrier.contact_name, 40, "联系人")?)
                }
                "contact_phone" => {
                    change.contact_phone = Some(wire::phone("carrier.contact_phone", &carrier.contact_phone)?)
                }
                "at_relocation_site" => change.relocation_site = Some(carrier.at_relocation_site),
                other => return Err(wire::unknown_path(other).into()),
            }
        }
        let view = self
            .jobs
            .update_carrier(&caller, &id, wire::etag(&carrier.etag)?, change)
            .await?;
        Ok(Response::new(pb::UpdateCarrierResponse {
            carrier: Some(wire::carrier_to_wire(&view)),
        }))
    }

    async fn certify_carrier(
        &self,
        request: Request<pb::CertifyCarrierRequest>,
    ) -> Result<Response<pb::CertifyCarrierResponse>, Status> {
        let caller = caller(&request)?;
        let request = request.into_inner();
        let id = wire::id_of("name", &request.name, "carriers")?;
        let certification = request
            .certification
            .as_ref()
            .ok_or_else(|| Problem::required("certification", "认定信息"))?;
        let certification = Certification {
            body: wire::text(
                "certification.certifying_body",
                &certification.certifying_body,
                100,
                "认定部门",
            )?,
            document: wire::text("certification.document", &certification.document, 100, "认定文件")?,
            date: date("certification.certify_date", certification.certify_date.as_ref())?,
            valid_until: bangfu_platform::wire::optional_date(
                "certification.valid_until",
                certification.valid_until.as_ref(),
            )?,
            subject: String::new(),
        };
        let view = self
            .jobs
            .certify_carrier(&caller, &id, wire::etag(&request.etag)?, certification)
            .await?;
        Ok(Response::new(pb::CertifyCarrierResponse {
            carrier: Some(wire::carrier_to_wire(&view)),
        }))
    }

    async fn create_posting(
        &self,
        request: Request<pb::CreatePostingRequest>,
    ) -> Result<Response<pb::CreatePostingResponse>, Status> {
        let caller = caller(&request)?;
        let request = request.into_inner();
        let key = request_key(&caller.subject, "CreatePosting", &request.request_id, &request)?;
        let posting = wire::new_posting(
            request
                .posting
                .as_ref()
                .ok_or_else(|| Problem::required("posting", "岗位"))?,
        )?;
        let stored = self.jobs.create_posting(&caller, key, posting).await?;
        Ok(Response::new(pb::CreatePostingResponse {
            posting: Some(wire::posting_to_wire(&stored, self.jobs.today())),
        }))
    }

    async fn get_posting(
        &self,
        request: Request<pb::GetPostingRequest>,
    ) -> Result<Response<pb::GetPostingResponse>, Status> {
        let caller = caller(&request)?;
        let id = wire::id_of("name", &request.get_ref().name, "postings")?;
        let stored = self.jobs.get_posting(&caller, &id).await?;
        Ok(Response::new(pb::GetPostingResponse {
            posting: Some(wire::posting_to_wire(&stored, self.jobs.today())),
        }))
    }

    async fn list_postings(
        &self,
        request: Request<pb::ListPostingsRequest>,
    ) -> Result<Response<pb::ListPostingsResponse>, Status> {
        let caller = caller(&request)?;
        let request = request.into_inner();
        let filter = PostingFilter {
            region_prefix: wire::region_prefix("region_prefix", &request.region_prefix, false)?,
            carrier_id: optional_id("carrier", &request.carrier, "carriers")?,
            occupation_prefix: wire::optional_text(
                "occupation_code_prefix",
                &request.occupation_code_prefix,
                12,
                "职业编码",
            )?,
            state: wire::optional(request.state, wire::posting_state, "state")?,
        };
        let (size, after, fingerprint) = page(
            request.page_size,
            &request.page_token,
            &[
                &filter.region_prefix,
                &filter.carrier_id,
                &filter.occupation_prefix,
                &request.state.to_string(),
            ],
        )?;
        let mut postings = self.jobs.list_postings(&caller, filter, &after, size).await?;
        let next_page_token = paging::next_page(&mut postings, size, &fingerprint, |p| vec![p.id.clone()]);
        let today = self.jobs.today();
        Ok(Response::new(pb::ListPostingsResponse {
            postings: postings.iter().map(|p| wire::posting_to_wire(p, today)).collect(),
            next_page_token,
        }))
    }

    async fn update_posting(
        &self,
        request: Request<pb::UpdatePostingRequest>,
    ) -> Result<Response<pb::UpdatePostingResponse>, Status> {
        let caller = caller(&request)?;
        let request = request.into_inner();
        let posting = request
            .posting
            .as_ref()
            .ok_or_else(|| Problem::required("posting", "岗位"))?;
        let id = wire::id_of("posting.name", &posting.name, "postings")?;
        let mut change = PostingChange::default();
        for path in wire::mask(request.update_mask.as_ref())? {
            match path.as_str() {
                "title" => change.title = Some(wire::text("posting.title", &posting.title, 60, "岗位名称")?),
                "occupation" => {
                    change.occupation = Some(wire::occupation("posting.occupation", posting.occupation.as_ref())?)
                }
                "wage_min" => {
                    change.wage_min_fen = Some(wire::positive_money(
                        "posting.wage_min",
                        posting.wage_min.as_ref(),
                        "最低月薪",
                    )?)
                }
                "wage_max" => {
                    change.wage_max_fen = Some(wire::positive_money(
                        "posting.wage_max",
                        posting.wage_max.as_ref(),
                        "最高月薪",
                    )?)
                }
                "headcount" => {
                    change.headcount = Some(wire::within(
                        "posting.headcount",
                        i64::from(posting.headcount),
                        1,
                        10_000,
                        "招聘人数",
                    )?)
                }
                "contract_months" => {
                    change.contract_months = Some(wire::within(
                        "posting.contract_months",
                        i64::from(posting.contract_months),
                        1,
                        120,
                        "合同期限（月）",
                    )?)
                }
                "weekly_hours" => {
                    change.weekly_hours = Some(wire::within(
                        "posting.weekly_hours",
                        i64::from(posting.weekly_hours),
                        1,
                        84,
                        "每周工时",
                    )?)
                }
                "accepted_labor_capacities" => {
                    change.accepted = Some(wire::accepted(
                        "posting.accepted_labor_capacities",
                        &posting.accepted_labor_capacities,
                    )?)
                }
                "min_age" => {
                    change.min_age = Some(wire::within(
                        "posting.min_age",
                        i64::from(posting.min_age),
                        16,
                        75,
                        "年龄下限",
                    )?)
                }
                "max_age" => {
                    change.max_age = Some(wire::within(
                        "posting.max_age",
                        i64::from(posting.max_age),
                        16,
                        75,
                        "年龄上限",
                    )?)
                }
                "skills" => change.skills = Some(wire::skills("posting.skills", &posting.skills)?),
                "accommodation" => change.accommodation = Some(posting.accommodation),
                "meals" => change.meals = Some(posting.meals),
                "valid_until" => change.valid_until = Some(date("posting.valid_until", posting.valid_until.as_ref())?),
                "shared_across_regions" => change.shared = Some(posting.shared_across_regions),
                other => return Err(wire::unknown_path(other).into()),
            }
        }
        let stored = self
            .jobs
            .update_posting(&caller, &id, wire::etag(&posting.etag)?, change)
            .await?;
        Ok(Response::new(pb::UpdatePostingResponse {
            posting: Some(wire::posting_to_wire(&stored, self.jobs.today())),
        }))
    }

    async fn close_posting(
        &self,
        request: Request<pb::ClosePostingRequest>,
    ) -> Result<Response<pb::ClosePostingResponse>, Status> {
        let caller = caller(&request)?;
        let request = request.into_inner();
        let id = wire::id_of("name", &request.name, "postings")?;
        let reason = wire::text("reason", &request.reason, 200, "关闭原因")?;
        let stored = self
            .jobs
            .close_posting(&caller, &id, wire::etag(&request.etag)?, &reason)
            .await?;
        Ok(Response::new(pb::ClosePostingResponse {
            posting: Some(wire::posting_to_wire(&stored, self.jobs.today())),
        }))
    }

    type WatchPostingChangesStream = PostingChanges;

    async fn watch_posting_changes(
        &self,
        request: Request<pb::WatchPostingChangesRequest>,
    ) -> Result<Response<Self::WatchPostingChangesStream>, Status> {
        let caller = caller(&request)?;
        let request = request.into_inner();
        let start = if request.start_at_head {
            Start::Head
        } else {
            Start::After(Position::decode(&request.after_cursor)?)
        };
        let feed = self.jobs.watch_posting_changes(&caller, start).await?;
        let stream = tokio_stream::StreamExt::map(feed, |item| match item {
            Ok(FeedItem::Event(event)) => Ok(pb::WatchPostingChangesResponse {
                item: Some(pb::watch_posting_changes_response::Item::Change(pb::PostingChange {
                    cursor: event.position.encode(),
                    posting: event.resource.clone(),
                    kind: match event.kind.as_str() {
                        POSTING_CREATED => pb::PostingChangeKind::Created,
                        POSTING_CLOSED => pb::PostingChangeKind::Closed,
                        _ => pb::PostingChangeKind::Updated,
                    } as i32,
                    work_region: event.regions.first().cloned().unwrap_or_default(),
                    change_time: Some(timestamp_to_wire(event.recorded)),
                })),
            }),
            Ok(FeedItem::Heartbeat(position)) => Ok(pb::WatchPostingChangesResponse {
                item: Some(pb::watch_posting_changes_response::Item::Heartbeat(pb::Heartbeat {
                    cursor: position.encode(),
                })),
            }),
            Err(problem) => Err(Status::from(problem)),
        });
        Ok(Response::new(Box::pin(stream)))
    }

    async fn register_seeker(
        &self,
        request: Request<pb::RegisterSeekerRequest>,
    ) -> Result<Response<pb::RegisterSeekerResponse>, Status> {
        let caller = caller(&request)?;
        let call = CallContext::of(&request);
        let request = request.into_inner();
        let key = request_key(&caller.subject, "RegisterSeeker", &request.request_id, &request)?;
        let seeker = wire::new_seeker(
            request
                .seeker
                .as_ref()
                .ok_or_else(|| Problem::required("seeker", "求职人员"))?,
        )?;
        let stored = self.jobs.register_seeker(&caller, &call, key, seeker).await?;
        Ok(Response::new(pb::RegisterSeekerResponse {
            seeker: Some(wire::seeker_to_wire(&stored)),
        }))
    }

    async fn get_seeker(
        &self,
        request: Request<pb::GetSeekerRequest>,
    ) -> Result<Response<pb::GetSeekerResponse>, Status> {
        let caller = caller(&request)?;
        let id = wire::id_of("name", &request.get_ref().name, "seekers")?;
        let stored = self.jobs.get_seeker(&caller, &id).await?;
        Ok(Response::new(pb::GetSeekerResponse {
            seeker: Some(wire::seeker_to_wire(&stored)),
        }))
    }

    async fn list_seekers(
        &self,
        request: Request<pb::ListSeekersRequest>,
    ) -> Result<Response<pb::ListSeekersResponse>, Status> {
        let caller = caller(&request)?;
        let request = request.into_inner();
        let filter = SeekerFilter {
            region_prefix: wire::region_prefix("region_prefix", &request.region_prefix, false)?,
            state: wire::optional(request.state, wire::seeker_state, "state")?,
            min_priority: wire::priority("min_priority", request.min_priority)?,
        };
        let (size, after, fingerprint) = page(
            request.page_size,
            &request.page_token,
            &[
                &filter.region_prefix,
                &request.state.to_string(),
                &request.min_priority.to_string(),
            ],
        )?;
        let mut seekers = self.jobs.list_seekers(&caller, filter, &after, size).await?;
        let next_page_token = paging::next_page(&mut seekers, size, &fingerprint, |s| vec![s.id.clone()]);
        Ok(Response::new(pb::ListSeekersResponse {
            seekers: seekers.iter().map(wire::seeker_to_wire).collect(),
            next_page_token,
        }))
    }

    async fn update_seeker(
        &self,
        request: Request<pb::UpdateSeekerRequest>,
    ) -> Result<Response<pb::UpdateSeekerResponse>, Status> {
        let caller = caller(&request)?;
        let request = request.into_inner();
        let seeker = request
            .seeker
            .as_ref()
            .ok_or_else(|| Problem::required("seeker", "求职人员"))?;
        let id = wire::id_of("seeker.name", &seeker.name, "seekers")?;
        let mut change = SeekerChange::default();
        for path in wire::mask(request.update_mask.as_ref())? {
            match path.as_str() {
                "skills" => change.skills = Some(wire::skills("seeker.skills", &seeker.skills)?),
                "intentions" => change.intentions = Some(wire::intentions("seeker.intentions", &seeker.intentions)?),
                "destination_regions" => {
                    change.destinations = Some(wire::destinations(
                        "seeker.destination_regions",
                        &seeker.destination_regions,
                    )?)
                }
                "expected_wage" => {
                    change.expected_wage_fen = Some(wire::positive_money(
                        "seeker.expected_wage",
                        seeker.expected_wage.as_ref(),
                        "期望月薪",
                    )?)
                }
                "available_from" => {
                    change.available_from = Some(date("seeker.available_from", seeker.available_from.as_ref())?)
                }
                "route" => change.route = Some(wire::route("seeker.route", seeker.route.as_ref())?),
                "state" => change.state = Some(wire::seeker_state("seeker.state", seeker.state)?),
                other => return Err(wire::unknown_path(other).into()),
            }
        }
        let stored = self
            .jobs
            .update_seeker(&caller, &id, wire::etag(&seeker.etag)?, change)
            .await?;
        Ok(Response::new(pb::UpdateSeekerResponse {
            seeker: Some(wire::seeker_to_wire(&stored)),
        }))
    }

    async fn recommend_postings(
        &self,
        request: Request<pb::RecommendPostingsRequest>,
    ) -> Result<Response<pb::RecommendPostingsResponse>, Status> {
        let caller = caller(&request)?;
        let call = CallContext::of(&request);
        let request = request.into_inner();
        let seeker = wire::id_of("seeker", &request.seeker, "seekers")?;
        let size = paging::page_size(request.page_size, RECOMMENDATIONS.0, RECOMMENDATIONS.1)?;
        let found = self.jobs.recommend_postings(&caller, &call, &seeker, size).await?;
        let today = self.jobs.today();
        Ok(Response::new(pb::RecommendPostingsResponse {
            recommendations: found.iter().map(|m| wire::posting_match_to_wire(m, today)).collect(),
            as_of: Some(date_to_wire(today)),
        }))
    }

    async fn recommend_seekers(
        &self,
        request: Request<pb::RecommendSeekersRequest>,
    ) -> Result<Response<pb::RecommendSeekersResponse>, Status> {
        let caller = caller(&request)?;
        let call = CallContext::of(&request);
        let request = request.into_inner();
        let posting = wire::id_of("posting", &request.posting, "postings")?;
        let prefix = wire::region_prefix("region_prefix", &request.region_prefix, false)?;
        let size = paging::page_size(request.page_size, RECOMMENDATIONS.0, RECOMMENDATIONS.1)?;
        let found = self
            .jobs
            .recommend_seekers(&caller, &call, &posting, &prefix, size)
            .await?;
        Ok(Response::new(pb::RecommendSeekersResponse {
            recommendations: found.iter().map(wire::seeker_match_to_wire).collect(),
            as_of: Some(date_to_wire(self.jobs.today())),
        }))
    }

    async fn submit_application(
        &self,
        request: Request<pb::SubmitApplicationRequest>,
    ) -> Result<Response<pb::SubmitApplicationResponse>, Status> {
        let caller = caller(&request)?;
        let request = request.into_inner();
        let key = request_key(&caller.subject, "SubmitApplication", &request.request_id, &request)?;
        let application = request
            .application
            .as_ref()
            .ok_or_else(|| Problem::required("application", "求职申请"))?;
        let posting = wire::id_of("application.posting", &application.posting, "postings")?;
        let seeker = wire::id_of("application.seeker", &application.seeker, "seekers")?;
        let stored = self.jobs.submit_application(&caller, key, &posting, &seeker).await?;
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
        let filter = ApplicationFilter {
            region_prefix: String::new(),
            posting_id: optional_id("posting", &request.posting, "postings")?,
            seeker_id: optional_id("seeker", &request.seeker, "seekers")?,
            state: wire::optional(request.state, wire::application_state, "state")?,
        };
        let (size, after, fingerprint) = page(
            request.page_size,
            &request.page_token,
            &[&filter.posting_id, &filter.seeker_id, &request.state.to_string()],
        )?;
        let mut applications = self.jobs.list_applications(&caller, filter, &after, size).await?;
        let next_page_token = paging::next_page(&mut applications, size, &fingerprint, |a| vec![a.id.clone()]);
        Ok(Response::new(pb::ListApplicationsResponse {
            applications: applications.iter().map(wire::application_to_wire).collect(),
            next_page_token,
        }))
    }

    async fn decide_application(
        &self,
        request: Request<pb::DecideApplicationRequest>,
    ) -> Result<Response<pb::DecideApplicationResponse>, Status> {
        let caller = caller(&request)?;
        let request = request.into_inner();
        let id = wire::id_of("name", &request.name, "applications")?;
        let decision = wire::application_state("decision", request.decision)?;
        let note = wire::optional_text("note", &request.note, 200, "说明")?;
        let stored = self
            .jobs
            .decide_application(&caller, &id, wire::etag(&request.etag)?, decision, &note)
            .await?;
        Ok(Response::new(pb::DecideApplicationResponse {
            application: Some(wire::application_to_wire(&stored)),
        }))
    }

    async fn record_placement(
        &self,
        request: Request<pb::RecordPlacementRequest>,
    ) -> Result<Response<pb::RecordPlacementResponse>, Status> {
        let caller = caller(&request)?;
        let call = CallContext::of(&request);
        let request = request.into_inner();
        let key = request_key(&caller.subject, "RecordPlacement", &request.request_id, &request)?;
        let placement = request
            .placement
            .as_ref()
            .ok_or_else(|| Problem::required("placement", "安置记录"))?;
        let new = NewPlacement {
            posting_id: wire::id_of("placement.posting", &placement.posting, "postings")?,
            seeker_id: wire::id_of("placement.seeker", &placement.seeker, "seekers")?,
            application_id: optional_id("placement.application", &placement.application, "applications")?,
            start: date("placement.start_date", placement.start_date.as_ref())?,
            contract_months: wire::within(
                "placement.contract_months",
                i64::from(placement.contract_months),
                1,
                120,
                "合同期限（月）",
            )?,
            monthly_wage_fen: wire::positive_money(
                "placement.monthly_wage",
                placement.monthly_wage.as_ref(),
                "月工资",
            )?,
            social_insurance: placement.social_insurance,
        };
        let view = self.jobs.record_placement(&caller, &call, key, new).await?;
        Ok(Response::new(pb::RecordPlacementResponse {
            placement: Some(wire::placement_to_wire(&view)),
        }))
    }

    async fn get_placement(
        &self,
        request: Request<pb::GetPlacementRequest>,
    ) -> Result<Response<pb::GetPlacementResponse>, Status> {
        let caller = caller(&request)?;
        let id = wire::id_of("name", &request.get_ref().name, "placements")?;
        let view = self.jobs.get_placement(&caller, &id).await?;
        Ok(Response::new(pb::GetPlacementResponse {
            placement: Some(wire::placement_to_wire(&view)),
        }))
    }

    async fn list_placements(
        &self,
        request: Request<pb::ListPlacementsRequest>,
    ) -> Result<Response<pb::ListPlacementsResponse>, Status> {
        let caller = caller(&request)?;
        let request = request.into_inner();
        let filter = PlacementFilter {
            region_prefix: wire::region_prefix("region_prefix", &request.region_prefix, false)?,
            carrier_id: optional_id("carrier", &request.carrier, "carriers")?,
            posting_id: optional_id("posting", &request.posting, "postings")?,
            state: wire::optional(request.state, wire::placement_state, "state")?,
        };
        let (size, after, fingerprint) = page(
            request.page_size,
            &request.page_token,
            &[
                &filter.region_prefix,
                &filter.carrier_id,
                &filter.posting_id,
                &request.state.to_string(),
            ],
        )?;
        let mut placements = self.jobs.list_placements(&caller, filter, &after, size).await?;
        let next_page_token = paging::next_page(&mut placements, size, &fingerprint, |p| vec![p.placement.id.clone()]);
        Ok(Response::new(pb::ListPlacementsResponse {
            placements: placements.iter().map(wire::placement_to_wire).collect(),
            next_page_token,
        }))
    }

    async fn record_follow_up(
        &self,
        request: Request<pb::RecordFollowUpRequest>,
    ) -> Result<Response<pb::RecordFollowUpResponse>, Status> {
        let caller = caller(&request)?;
        let call = CallContext::of(&request);
        let request = request.into_inner();
        let key = request_key(&caller.subject, "RecordFollowUp", &request.request_id, &request)?;
        let placement = wire::id_of("parent", &request.parent, "placements")?;
        let follow_up = wire::new_follow_up(
            request
                .follow_up
                .as_ref()
                .ok_or_else(|| Problem::required("follow_up", "回访记录"))?,
        )?;
        let stored = self
            .jobs
            .record_follow_up(&caller, &call, key, &placement, follow_up)
            .await?;
        Ok(Response::new(pb::RecordFollowUpResponse {
            follow_up: Some(wire::follow_up_to_wire(&stored)),
        }))
    }

    async fn end_placement(
        &self,
        request: Request<pb::EndPlacementRequest>,
    ) -> Result<Response<pb::EndPlacementResponse>, Status> {
        let caller = caller(&request)?;
        let call = CallContext::of(&request);
        let request = request.into_inner();
        let id = wire::id_of("name", &request.name, "placements")?;
        let end = date("end_date", request.end_date.as_ref())?;
        let reason = wire::end_reason("reason", request.reason)?;
        let note = wire::optional_text("note", &request.note, 200, "说明")?;
        let view = self
            .jobs
            .end_placement(
                &caller,
                &call,
                &id,
                wire::etag(&request.etag)?,
                Ending { end, reason, note },
            )
            .await?;
        Ok(Response::new(pb::EndPlacementResponse {
            placement: Some(wire::placement_to_wire(&view)),
        }))
    }

    async fn create_export_batch(
        &self,
        request: Request<pb::CreateExportBatchRequest>,
    ) -> Result<Response<pb::CreateExportBatchResponse>, Status> {
        let caller = caller(&request)?;
        let call = CallContext::of(&request);
        let request = request.into_inner();
        let key = request_key(&caller.subject, "CreateExportBatch", &request.request_id, &request)?;
        let batch = wire::new_export_batch(
            request
                .export_batch
                .as_ref()
                .ok_or_else(|| Problem::required("export_batch", "输出批次"))?,
        )?;
        let view = self.jobs.create_export_batch(&caller, &call, key, batch).await?;
        Ok(Response::new(pb::CreateExportBatchResponse {
            export_batch: Some(wire::export_batch_to_wire(&view)),
        }))
    }

    async fn get_export_batch(
        &self,
        request: Request<pb::GetExportBatchRequest>,
    ) -> Result<Response<pb::GetExportBatchResponse>, Status> {
        let caller = caller(&request)?;
        let id = wire::id_of("name", &request.get_ref().name, "exportBatches")?;
        let view = self.jobs.get_export_batch(&caller, &id).await?;
        Ok(Response::new(pb::GetExportBatchResponse {
            export_batch: Some(wire::export_batch_to_wire(&view)),
        }))
    }

    async fn list_export_batches(
        &self,
        request: Request<pb::ListExportBatchesRequest>,
    ) -> Result<Response<pb::ListExportBatchesResponse>, Status> {
        let caller = caller(&request)?;
        let request = request.into_inner();
        let prefix = wire::region_prefix("region_prefix", &request.region_prefix, false)?;
        let state = wire::optional(request.state, wire::export_batch_state, "state")?;
        let (size, after, fingerprint) = page(
            request.page_size,
            &request.page_token,
            &[&prefix, &request.state.to_string()],
        )?;
        let mut batches = self
            .jobs
            .list_export_batches(&caller, &prefix, state, &after, size)
            .await?;
        let next_page_token = paging::next_page(&mut batches, size, &fingerprint, |b| vec![b.batch.id.clone()]);
        Ok(Response::new(pb::ListExportBatchesResponse {
            export_batches: batches.iter().map(wire::export_batch_to_wire).collect(),
            next_page_token,
        }))
    }

    async fn add_travellers(
        &self,
        request: Request<pb::AddTravellersRequest>,
    ) -> Result<Response<pb::AddTravellersResponse>, Status> {
        let caller = caller(&request)?;
        let request = request.into_inner();
        let id = wire::id_of("name", &request.name, "exportBatches")?;
        let travellers = wire::travellers(&request.travellers)?;
        let view = self
            .jobs
            .add_travellers(&caller, &id, wire::etag(&request.etag)?, travellers)
            .await?;
        Ok(Response::new(pb::AddTravellersResponse {
            export_batch: Some(wire::export_batch_to_wire(&view)),
        }))
    }

    async fn depart_export_batch(
        &self,
        request: Request<pb::DepartExportBatchRequest>,
    ) -> Result<Response<pb::DepartExportBatchResponse>, Status> {
        let caller = caller(&request)?;
        let call = CallContext::of(&request);
        let request = request.into_inner();
        let id = wire::id_of("name", &request.name, "exportBatches")?;
        let departed = date("departed_date", request.departed_date.as_ref())?;
        let view = self
            .jobs
            .depart_export_batch(&caller, &call, &id, wire::etag(&request.etag)?, departed)
            .await?;
        Ok(Response::new(pb::DepartExportBatchResponse {
            export_batch: Some(wire::export_batch_to_wire(&view)),
        }))
    }

    async fn claim_on_job_training(
        &self,
        request: Request<pb::ClaimOnJobTrainingRequest>,
    ) -> Result<Response<pb::ClaimOnJobTrainingResponse>, Status> {
        let caller = caller(&request)?;
        let call = CallContext::of(&request);
        let request = request.into_inner();
        let carrier = wire::id_of("carrier", &request.carrier, "carriers")?;
        let month = wire::month("month", request.month.as_ref())?;
        let policy = wire::text("policy", &request.policy, 64, "补贴政策")?;
        let standard = wire::positive_money("monthly_standard", request.monthly_standard.as_ref(), "月补贴标准")?;
        let placements = request
            .placements
            .iter()
            .enumerate()
            .map(|(i, name)| wire::id_of(&format!("placements[{i}]"), name, "placements"))
            .collect::<Result<Vec<_>, _>>()?;
        let claims = self
            .jobs
            .claim_on_job_training(&caller, &call, &carrier, month, &policy, standard, &placements)
            .await?;
        Ok(Response::new(pb::ClaimOnJobTrainingResponse {
            claims: claims.iter().map(wire::subsidy_claim_to_wire).collect(),
        }))
    }

    async fn claim_agency_subsidy(
        &self,
        request: Request<pb::ClaimAgencySubsidyRequest>,
    ) -> Result<Response<pb::ClaimAgencySubsidyResponse>, Status> {
        let caller = caller(&request)?;
        let call = CallContext::of(&request);
        let request = request.into_inner();
        let placement = wire::id_of("placement", &request.placement, "placements")?;
        let agency = wire::id_of("agency", &request.agency, "carriers")?;
        let policy = wire::text("policy", &request.policy, 64, "补贴政策")?;
        let insured = wire::known_region("insured_region", request.insured_region.as_ref(), "参保地")?;
        let claim = self
            .jobs
            .claim_agency_subsidy(&caller, &call, &placement, &agency, &policy, &insured)
            .await?;
        Ok(Response::new(pb::ClaimAgencySubsidyResponse {
            claim: Some(wire::subsidy_claim_to_wire(&claim)),
        }))
    }

    async fn claim_carrier_award(
        &self,
        request: Request<pb::ClaimCarrierAwardRequest>,
    ) -> Result<Response<pb::ClaimCarrierAwardResponse>, Status> {
        let caller = caller(&request)?;
        let call = CallContext::of(&request);
        let request = request.into_inner();
        let carrier = wire::id_of("carrier", &request.carrier, "carriers")?;
        let policy = wire::text("policy", &request.policy, 64, "补贴政策")?;
        let claim = self.jobs.claim_carrier_award(&caller, &call, &carrier, &policy).await?;
        Ok(Response::new(pb::ClaimCarrierAwardResponse {
            claim: Some(wire::subsidy_claim_to_wire(&claim)),
        }))
    }

    async fn list_subsidy_claims(
        &self,
        request: Request<pb::ListSubsidyClaimsRequest>,
    ) -> Result<Response<pb::ListSubsidyClaimsResponse>, Status> {
        let caller = caller(&request)?;
        let owner = wire::text("owner", &request.get_ref().owner, 100, "资源名称")?;
        let claims = self.jobs.list_subsidy_claims(&caller, &owner).await?;
        Ok(Response::new(pb::ListSubsidyClaimsResponse {
            claims: claims.iter().map(wire::subsidy_claim_to_wire).collect(),
        }))
    }

    async fn create_training_course(
        &self,
        request: Request<pb::CreateTrainingCourseRequest>,
    ) -> Result<Response<pb::CreateTrainingCourseResponse>, Status> {
        let caller = caller(&request)?;
        let call = CallContext::of(&request);
        let request = request.into_inner();
        let key = request_key(&caller.subject, "CreateTrainingCourse", &request.request_id, &request)?;
        let course = wire::new_course(
            request
                .training_course
                .as_ref()
                .ok_or_else(|| Problem::required("training_course", "培训班"))?,
        )?;
        let stored = self.jobs.create_training_course(&caller, &call, key, course).await?;
        Ok(Response::new(pb::CreateTrainingCourseResponse {
            training_course: Some(wire::course_to_wire(&stored)),
        }))
    }

    async fn enrol_trainee(
        &self,
        request: Request<pb::EnrolTraineeRequest>,
    ) -> Result<Response<pb::EnrolTraineeResponse>, Status> {
        let caller = caller(&request)?;
        let call = CallContext::of(&request);
        let request = request.into_inner();
        let key = request_key(&caller.subject, "EnrolTrainee", &request.request_id, &request)?;
        let course = wire::id_of("parent", &request.parent, "trainingCourses")?;
        let enrolment = request
            .enrolment
            .as_ref()
            .ok_or_else(|| Problem::required("enrolment", "学员"))?;
        let person = wire::id_of("enrolment.person", &enrolment.person, "persons")?;
        let stored = self.jobs.enrol_trainee(&caller, &call, key, &course, &person).await?;
        Ok(Response::new(pb::EnrolTraineeResponse {
            enrolment: Some(wire::enrolment_to_wire(&stored)),
        }))
    }

    async fn record_training_completion(
        &self,
        request: Request<pb::RecordTrainingCompletionRequest>,
    ) -> Result<Response<pb::RecordTrainingCompletionResponse>, Status> {
        let caller = caller(&request)?;
        let call = CallContext::of(&request);
        let request = request.into_inner();
        let (course, enrolment) = wire::enrolment_name("name", &request.name)?;
        let outcome = wire::enrolment_state("outcome", request.outcome)?;
        let certificate = wire::optional_text("certificate", &request.certificate, 60, "证书编号")?;
        let stored = self
            .jobs
            .record_training_completion(&caller, &call, &course, &enrolment, outcome, &certificate)
            .await?;
        Ok(Response::new(pb::RecordTrainingCompletionResponse {
            enrolment: Some(wire::enrolment_to_wire(&stored)),
        }))
    }

    async fn create_recruitment_event(
        &self,
        request: Request<pb::CreateRecruitmentEventRequest>,
    ) -> Result<Response<pb::CreateRecruitmentEventResponse>, Status> {
        let caller = caller(&request)?;
        let request = request.into_inner();
        let key = request_key(&caller.subject, "CreateRecruitmentEvent", &request.request_id, &request)?;
        let event = wire::new_event(
            request
                .recruitment_event
                .as_ref()
                .ok_or_else(|| Problem::required("recruitment_event", "招聘活动"))?,
        )?;
        let stored = self.jobs.create_recruitment_event(&caller, key, event).await?;
        Ok(Response::new(pb::CreateRecruitmentEventResponse {
            recruitment_event: Some(wire::event_to_wire(&stored)),
        }))
    }

    async fn list_recruitment_events(
        &self,
        request: Request<pb::ListRecruitmentEventsRequest>,
    ) -> Result<Response<pb::ListRecruitmentEventsResponse>, Status> {
        let caller = caller(&request)?;
        let request = request.into_inner();
        let prefix = wire::region_prefix("region_prefix", &request.region_prefix, false)?;
        let kind = wire::optional(request.kind, wire::event_kind, "kind")?;
        let year = if request.year == 0 {
            None
        } else {
            Some(i32::try_from(wire::within("year", i64::from(request.year), 2000, 2100, "年度")?).unwrap_or(0))
        };
        let (size, after, fingerprint) = page(
            request.page_size,
            &request.page_token,
            &[&prefix, &request.kind.to_string(), &request.year.to_string()],
        )?;
        let mut events = self
            .jobs
            .list_recruitment_events(&caller, &prefix, kind, year, &after, size)
            .await?;
        let next_page_token = paging::next_page(&mut events, size, &fingerprint, |e| vec![e.id.clone()]);
        Ok(Response::new(pb::ListRecruitmentEventsResponse {
            recruitment_events: events.iter().map(wire::event_to_wire).collect(),
            next_page_token,
        }))
    }

    async fn get_job_stats(
        &self,
        request: Request<pb::GetJobStatsRequest>,
    ) -> Result<Response<pb::GetJobStatsResponse>, Status> {
        let caller = caller(&request)?;
        let request = request.into_inner();
        let prefix = wire::region_prefix("region_prefix", &request.region_prefix, true)?;
        let as_of = bangfu_platform::wire::optional_date("as_of", request.as_of.as_ref())?;
        let stats = self.jobs.job_stats(&caller, &prefix, as_of).await?;
        Ok(Response::new(wire::stats_to_wire(&stats)))
    }

    async fn list_parameters(
        &self,
        request: Request<pb::ListParametersRequest>,
    ) -> Result<Response<pb::ListParametersResponse>, Status> {
        let request = request.into_inner();
        let (parameters, next_page_token) = service_rpc::list_parameters(
            self.jobs.parameters(),
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
            self.jobs.parameters(),
            &caller,
            &method("UpdateParameter"),
            request.parameter.as_ref(),
            request.update_mask.as_ref(),
            request.allow_missing,
            self.jobs.now(),
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
            self.jobs.db(),
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
