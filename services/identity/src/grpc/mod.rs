//! The wire edge of identity: each RPC takes its caller, parses the message into domain values
//! (`wire`), runs the use case in `app`, and maps the answer back. Bulk import, a stream both
//! ways, has its own module.

mod import;
mod wire;

use std::pin::Pin;

use bangfu_platform::auth::{Permission, caller};
use bangfu_platform::config::ServerConfig;
use bangfu_platform::error::{ErrorReason, Problem};
use bangfu_platform::idempotency::RequestKey;
use bangfu_platform::outbox::{FeedItem, Position, Start};
use bangfu_platform::pii::CitizenId;
use bangfu_platform::{service_rpc, wire as common_wire};
use bangfu_proto::identity::v1 as pb;
use bangfu_proto::identity::v1::identity_service_server::{IdentityService, IdentityServiceServer};
use tokio_stream::Stream;
use tonic::{Request, Response, Status};

pub use crate::app::Identity;
use crate::app::{MAX_BATCH, PersonListing, batch_too_large, method};
use crate::domain::IdentityError;

/// The request key of a create, bound to the whole message: a request id reused with other
/// content is refused. (A macro: the message trait belongs to prost, which this crate does not
/// name.)
macro_rules! request_key {
    ($caller:expr, $method:literal, $request:expr) => {
        RequestKey::of_message(&$caller.subject, &method($method), &$request.request_id, &$request)
    };
}

type BoxStream<T> = Pin<Box<dyn Stream<Item = Result<T, Status>> + Send>>;

impl Identity {
    /// The service with the configured message limits.
    pub fn into_server(self, config: &ServerConfig) -> IdentityServiceServer<Self> {
        Self::shared_server(std::sync::Arc::new(self), config)
    }

    /// The service, shared with the jobs that run beside it.
    pub fn shared_server(identity: std::sync::Arc<Self>, config: &ServerConfig) -> IdentityServiceServer<Self> {
        IdentityServiceServer::from_arc(identity)
            .max_decoding_message_size(config.max_receive_bytes)
            .max_encoding_message_size(config.max_send_bytes)
    }
}

#[tonic::async_trait]
impl IdentityService for Identity {
    async fn create_person(
        &self,
        request: Request<pb::CreatePersonRequest>,
    ) -> Result<Response<pb::CreatePersonResponse>, Status> {
        let caller = caller(&request)?;
        let request = request.into_inner();
        let key = request_key!(caller, "CreatePerson", request)?;
        let person = request
            .person
            .as_ref()
            .ok_or_else(|| Problem::required("person", "人员信息"))?;
        wire::no_registration_dates(person)?;
        let new = wire::new_person(person, self.regions(), self.today()).map_err(Problem::from)?;
        let person = self.create_person(&caller, key, new).await?;
        Ok(Response::new(pb::CreatePersonResponse {
            person: Some(wire::person_to_wire(person, &mut self.regions().full_names())),
        }))
    }

    async fn get_person(
        &self,
        request: Request<pb::GetPersonRequest>,
    ) -> Result<Response<pb::GetPersonResponse>, Status> {
        let caller = caller(&request)?;
        let request = request.into_inner();
        let id = wire::person_id(&request.name, "name")?;
        let period = common_wire::period("period", request.period.as_ref(), self.today())?;
        let disclosure = common_wire::disclosure(
            &caller,
            Permission::IdentityPiiRead,
            request.view,
            request.purpose.as_ref(),
        )?;
        let person = self.get_person(&caller, id, period, disclosure).await?;
        Ok(Response::new(pb::GetPersonResponse {
            person: Some(wire::person_to_wire(person, &mut self.regions().full_names())),
        }))
    }

    async fn batch_get_persons(
        &self,
        request: Request<pb::BatchGetPersonsRequest>,
    ) -> Result<Response<pb::BatchGetPersonsResponse>, Status> {
        let caller = caller(&request)?;
        let request = request.into_inner();
        if request.names.len() > MAX_BATCH {
            return Err(batch_too_large("names").into());
        }
        let ids = request
            .names
            .iter()
            .enumerate()
            .map(|(i, name)| wire::person_id(name, &format!("names[{i}]")))
            .collect::<Result<Vec<_>, _>>()?;
        let period = common_wire::period("period", request.period.as_ref(), self.today())?;
        let disclosure = common_wire::disclosure(
            &caller,
            Permission::IdentityPiiRead,
            request.view,
            request.purpose.as_ref(),
        )?;
        let mut found = self.batch_get_persons(&caller, &ids, period, disclosure).await?;
        let mut names = self.regions().full_names();
        // Each person is converted once and moved into its last place in the answer; a name
        // asked more than once gets copies in its earlier places.
        let mut remaining: std::collections::HashMap<&str, usize> = std::collections::HashMap::new();
        for id in &ids {
            *remaining.entry(*id).or_default() += 1;
        }
        let mut copies: std::collections::HashMap<&str, pb::Person> = std::collections::HashMap::new();
        let results = request
            .names
            .iter()
            .zip(&ids)
            .map(|(name, id)| {
                let left = remaining.get_mut(*id).map_or(0, |n| {
                    *n -= 1;
                    *n
                });
                let person = match copies.remove(*id) {
                    Some(copy) if left > 0 => {
                        copies.insert(*id, copy.clone());
                        Some(copy)
                    }
                    Some(copy) => Some(copy),
                    None => {
                        let person = found.remove(*id).map(|view| wire::person_to_wire(view, &mut names));
                        if let (Some(person), true) = (&person, left > 0) {
                            copies.insert(*id, person.clone());
                        }
                        person
                    }
                };
                pb::PersonResult {
                    name: name.clone(),
                    not_found: person.is_none(),
                    person,
                }
            })
            .collect();
        Ok(Response::new(pb::BatchGetPersonsResponse { results }))
    }

    async fn lookup_person(
        &self,
        request: Request<pb::LookupPersonRequest>,
    ) -> Result<Response<pb::LookupPersonResponse>, Status> {
        let caller = caller(&request)?;
        let request = request.into_inner();
        let answer = self
            .lookup_person(&caller, &request.citizen_id, &request.display_name)
            .await?;
        Ok(Response::new(wire::lookup_to_wire(&answer)))
    }

    async fn batch_lookup_persons(
        &self,
        request: Request<pb::BatchLookupPersonsRequest>,
    ) -> Result<Response<pb::BatchLookupPersonsResponse>, Status> {
        let caller = caller(&request)?;
        let request = request.into_inner();
        if request.lookups.len() > MAX_BATCH {
            return Err(batch_too_large("lookups").into());
        }
        let lookups: Vec<(&str, &str)> = request
            .lookups
            .iter()
            .map(|l| (l.citizen_id.as_str(), l.display_name.as_str()))
            .collect();
        let answers = self.batch_lookup_persons(&caller, &lookups).await?;
        Ok(Response::new(pb::BatchLookupPersonsResponse {
            results: answers.iter().map(wire::lookup_to_wire).collect(),
        }))
    }

    async fn list_persons(
        &self,
        request: Request<pb::ListPersonsRequest>,
    ) -> Result<Response<pb::ListPersonsResponse>, Status> {
        let caller = caller(&request)?;
        let request = request.into_inner();
        let region = wire::region_scope(&request.region_prefix, "region_prefix")?;
        let category = match request.category {
            0 => None,
            value => Some(wire::category_from_wire(value)?),
        };
        let employment_status = match request.employment_status {
            0 => None,
            value => Some(wire::status_from_wire(value, "employment_status")?),
        };
        let listing = PersonListing {
            region,
            category,
            employment_status,
            page_size: request.page_size,
            page_token: &request.page_token,
        };
        let (persons, next_page_token) = self.list_persons(&caller, listing).await?;
        let mut names = self.regions().full_names();
        Ok(Response::new(pb::ListPersonsResponse {
            persons: persons
                .into_iter()
                .map(|view| wire::person_to_wire(view, &mut names))
                .collect(),
            next_page_token,
        }))
    }

    async fn update_person(
        &self,
        request: Request<pb::UpdatePersonRequest>,
    ) -> Result<Response<pb::UpdatePersonResponse>, Status> {
        let caller = caller(&request)?;
        let request = request.into_inner();
        let (id, update) = wire::person_update(&request, self.regions())?;
        let person = self.update_person(&caller, id, update).await?;
        Ok(Response::new(pb::UpdatePersonResponse {
            person: Some(wire::person_to_wire(person, &mut self.regions().full_names())),
        }))
    }

    async fn correct_citizen_id(
        &self,
        request: Request<pb::CorrectCitizenIdRequest>,
    ) -> Result<Response<pb::CorrectCitizenIdResponse>, Status> {
        let caller = caller(&request)?;
        let request = request.into_inner();
        let key = request_key!(caller, "CorrectCitizenId", request)?;
        let id = wire::person_id(&request.person, "person")?;
        let correction = request
            .correction
            .as_ref()
            .ok_or_else(|| Problem::required("correction", "更正信息"))?;
        let new_id = CitizenId::parse(&correction.new_citizen_id, self.today()).map_err(|source| {
            Problem::from(IdentityError::CitizenId {
                field: "correction.new_citizen_id".into(),
                source,
            })
        })?;
        let reason = wire::review_reason(&correction.reason, "correction.reason")?;
        let correction = self.correct_citizen_id(&caller, key, id, new_id, reason).await?;
        Ok(Response::new(pb::CorrectCitizenIdResponse {
            correction: Some(wire::correction_to_wire(&correction)),
        }))
    }

    async fn approve_citizen_id_correction(
        &self,
        request: Request<pb::ApproveCitizenIdCorrectionRequest>,
    ) -> Result<Response<pb::ApproveCitizenIdCorrectionResponse>, Status> {
        let caller = caller(&request)?;
        let request = request.into_inner();
        // Who may review is answered before what the request says.
        self.ensure_correction_reviewer(&caller)?;
        let name = wire::correction_name(&request.name)?;
        let reason = wire::review_reason(&request.reason, "reason")?;
        let correction = self.review_correction(&caller, name, request.approve, reason).await?;
        Ok(Response::new(pb::ApproveCitizenIdCorrectionResponse {
            correction: Some(wire::correction_to_wire(&correction)),
        }))
    }

    type ImportPersonsStream = BoxStream<pb::ImportPersonsResponse>;

    async fn import_persons(
        &self,
        request: Request<tonic::Streaming<pb::ImportPersonsRequest>>,
    ) -> Result<Response<Self::ImportPersonsStream>, Status> {
        let caller = caller(&request)?;
        let stream = self.import_persons_stream(caller, request.into_inner()).await?;
        Ok(Response::new(stream))
    }

    async fn create_household(
        &self,
        request: Request<pb::CreateHouseholdRequest>,
    ) -> Result<Response<pb::CreateHouseholdResponse>, Status> {
        let caller = caller(&request)?;
        let request = request.into_inner();
        let key = request_key!(caller, "CreateHousehold", request)?;
        let household = request
            .household
            .as_ref()
            .ok_or_else(|| Problem::required("household", "户信息"))?;
        let (number, region) = wire::new_household(household, self.regions())?;
        let household = self.create_household(&caller, key, number, region).await?;
        Ok(Response::new(pb::CreateHouseholdResponse {
            household: Some(wire::household_to_wire(household, self.regions())),
        }))
    }

    async fn get_household(
        &self,
        request: Request<pb::GetHouseholdRequest>,
    ) -> Result<Response<pb::GetHouseholdResponse>, Status> {
        let caller = caller(&request)?;
        let id = wire::household_id(&request.get_ref().name).ok_or_else(|| {
            Status::from(Problem::invalid_field(
                ErrorReason::FieldInvalid,
                "name",
                "must be households/{household}",
                "户编号格式不正确",
            ))
        })?;
        let household = self.household(&caller, &method("GetHousehold"), id).await?;
        Ok(Response::new(pb::GetHouseholdResponse {
            household: Some(wire::household_to_wire(household, self.regions())),
        }))
    }

    async fn certify_category(
        &self,
        request: Request<pb::CertifyCategoryRequest>,
    ) -> Result<Response<pb::CertifyCategoryResponse>, Status> {
        let caller = caller(&request)?;
        let request = request.into_inner();
        let key = request_key!(caller, "CertifyCategory", request)?;
        let person_id = wire::person_id(&request.person, "person")?;
        let certification = request
            .certification
            .as_ref()
            .ok_or_else(|| Problem::required("certification", "认定信息"))?;
        let certification = wire::certification_from_wire(certification)?;
        let certification = self.certify_category(&caller, key, person_id, certification).await?;
        Ok(Response::new(pb::CertifyCategoryResponse {
            certification: Some(wire::certification_to_wire(&certification)),
        }))
    }

    async fn revoke_category(
        &self,
        request: Request<pb::RevokeCategoryRequest>,
    ) -> Result<Response<pb::RevokeCategoryResponse>, Status> {
        let caller = caller(&request)?;
        let request = request.into_inner();
        let key = request_key!(caller, "RevokeCategory", request)?;
        let name = wire::certification_name(&request.name)?;
        let revocation = wire::revocation(&request)?;
        let certification = self.revoke_category(&caller, key, name, revocation).await?;
        Ok(Response::new(pb::RevokeCategoryResponse {
            certification: Some(wire::certification_to_wire(&certification)),
        }))
    }

    async fn list_pending_certifications(
        &self,
        request: Request<pb::ListPendingCertificationsRequest>,
    ) -> Result<Response<pb::ListPendingCertificationsResponse>, Status> {
        let caller = caller(&request)?;
        let request = request.into_inner();
        let limit = bangfu_platform::paging::page_size(request.page_size, 100, MAX_BATCH as u32)?;
        let region = wire::region_scope(&request.region_prefix, "region_prefix")?;
        let (pending, next_page_token) = self.list_pending(&caller, &region, limit, &request.page_token).await?;
        Ok(Response::new(pb::ListPendingCertificationsResponse {
            pending_certifications: pending.iter().map(wire::pending_to_wire).collect(),
            next_page_token,
        }))
    }

    async fn confirm_certifications(
        &self,
        request: Request<pb::ConfirmCertificationsRequest>,
    ) -> Result<Response<pb::ConfirmCertificationsResponse>, Status> {
        let caller = caller(&request)?;
        let request = request.into_inner();
        if request.names.is_empty() {
            return Err(Problem::required("names", "待确认的认定").into());
        }
        if request.names.len() > MAX_BATCH {
            return Err(batch_too_large("names").into());
        }
        let (certifications, not_confirmed) = self.confirm_certifications(&caller, &request.names).await?;
        Ok(Response::new(pb::ConfirmCertificationsResponse {
            certifications: certifications.iter().map(wire::certification_to_wire).collect(),
            not_confirmed,
        }))
    }

    async fn record_employment(
        &self,
        request: Request<pb::RecordEmploymentRequest>,
    ) -> Result<Response<pb::RecordEmploymentResponse>, Status> {
        let caller = caller(&request)?;
        let request = request.into_inner();
        let key = request_key!(caller, "RecordEmployment", request)?;
        let person_id = wire::person_id(&request.person, "person")?;
        let record = request
            .record
            .as_ref()
            .ok_or_else(|| Problem::required("record", "就业记录"))?;
        let record = wire::employment_from_wire(record, self.regions(), self.today())?;
        let recorded = self.record_employment(&caller, key, person_id, record).await?;
        Ok(Response::new(pb::RecordEmploymentResponse {
            record: Some(wire::employment_to_wire(&recorded.record)),
            current_status: wire::status_to_wire(recorded.current_status) as i32,
        }))
    }

    async fn list_employment_records(
        &self,
        request: Request<pb::ListEmploymentRecordsRequest>,
    ) -> Result<Response<pb::ListEmploymentRecordsResponse>, Status> {
        let caller = caller(&request)?;
        let request = request.into_inner();
        let person_id = wire::person_id(&request.parent, "parent")?;
        let fingerprint = bangfu_platform::paging::fingerprint(&[person_id]);
        let (size, cursor) = bangfu_platform::paging::page(request.page_size, &request.page_token, &fingerprint)?;
        let after = cursor.and_then(|c| match c.as_slice() {
            [start, id] => Some((start.clone(), id.clone())),
            _ => None,
        });
        let mut records = self.employment_records_of(&caller, person_id, after, size + 1).await?;
        let next_page_token = if records.len() > size as usize {
            records.truncate(size as usize);
            records
                .last()
                .map(|r| {
                    bangfu_platform::paging::encode_token(
                        &fingerprint,
                        &[bangfu_platform::parameters::date_text(r.start_date), r.id.clone()],
                    )
                })
                .unwrap_or_default()
        } else {
            String::new()
        };
        Ok(Response::new(pb::ListEmploymentRecordsResponse {
            employment_records: records.iter().map(wire::employment_to_wire).collect(),
            next_page_token,
        }))
    }

    async fn record_income(
        &self,
        request: Request<pb::RecordIncomeRequest>,
    ) -> Result<Response<pb::RecordIncomeResponse>, Status> {
        let caller = caller(&request)?;
        let request = request.into_inner();
        let key = request_key!(caller, "RecordIncome", request)?;
        let person_id = wire::person_id(&request.person, "person")?;
        let report = wire::income_report(&request, self.today())?;
        let alerts = self.record_income(&caller, key, person_id, report).await?;
        Ok(Response::new(pb::RecordIncomeResponse {
            alerts: alerts.iter().map(wire::alert_to_wire).collect(),
        }))
    }

    async fn list_alerts(
        &self,
        request: Request<pb::ListAlertsRequest>,
    ) -> Result<Response<pb::ListAlertsResponse>, Status> {
        let caller = caller(&request)?;
        let request = request.into_inner();
        let limit = bangfu_platform::paging::page_size(request.page_size, 100, MAX_BATCH as u32)?;
        let kind = wire::kind_from_wire(request.kind)?;
        let region = wire::region_scope(&request.region_prefix, "region_prefix")?;
        let (alerts, next_page_token) = self
            .list_alerts(
                &caller,
                &region,
                kind,
                request.include_acknowledged,
                (limit, &request.page_token),
            )
            .await?;
        Ok(Response::new(pb::ListAlertsResponse {
            alerts: alerts.iter().map(wire::alert_to_wire).collect(),
            next_page_token,
        }))
    }

    async fn acknowledge_alert(
        &self,
        request: Request<pb::AcknowledgeAlertRequest>,
    ) -> Result<Response<pb::AcknowledgeAlertResponse>, Status> {
        let caller = caller(&request)?;
        let request = request.into_inner();
        let id = wire::alert_id(&request.name)?;
        let note = wire::acknowledgement_note(&request.note)?;
        let alert = self.acknowledge_alert(&caller, id, note).await?;
        Ok(Response::new(pb::AcknowledgeAlertResponse {
            alert: Some(wire::alert_to_wire(&alert)),
        }))
    }

    type WatchPersonChangesStream = BoxStream<pb::WatchPersonChangesResponse>;

    async fn watch_person_changes(
        &self,
        request: Request<pb::WatchPersonChangesRequest>,
    ) -> Result<Response<Self::WatchPersonChangesStream>, Status> {
        let caller = caller(&request)?;
        let request = request.into_inner();
        let start = if request.start_at_head {
            Start::Head
        } else {
            Start::After(Position::decode(&request.after_cursor)?)
        };
        let kinds = wire::change_kinds_from_wire(&request.kinds).map_err(Problem::from)?;
        let feed = self.watch_changes(&caller, start, &kinds).await?;
        let stream = tokio_stream::StreamExt::map(feed, |item| match item {
            Ok(FeedItem::Event(event)) => Ok(pb::WatchPersonChangesResponse {
                item: Some(pb::watch_person_changes_response::Item::Change(wire::change_to_wire(
                    &event,
                ))),
            }),
            Ok(FeedItem::Heartbeat(position)) => Ok(pb::WatchPersonChangesResponse {
                item: Some(pb::watch_person_changes_response::Item::Heartbeat(pb::Heartbeat {
                    cursor: position.encode(),
                })),
            }),
            Err(problem) => Err(Status::from(problem)),
        });
        Ok(Response::new(Box::pin(stream)))
    }

    async fn get_monitoring_stats(
        &self,
        request: Request<pb::GetMonitoringStatsRequest>,
    ) -> Result<Response<pb::GetMonitoringStatsResponse>, Status> {
        let caller = caller(&request)?;
        let request = request.into_inner();
        if request.region_prefix.trim().is_empty() {
            return Err(Problem::required("region_prefix", "统计地区").into());
        }
        let period = common_wire::period("period", request.period.as_ref(), self.today())?;
        let region = wire::region_scope(&request.region_prefix, "region_prefix")?;
        let counts = self
            .monitoring_stats(
                &caller,
                (&region, &request.region_prefix),
                request.group_by_digits,
                period,
            )
            .await?;
        Ok(Response::new(wire::stats_to_wire(counts, self.regions())))
    }

    async fn list_parameters(
        &self,
        request: Request<pb::ListParametersRequest>,
    ) -> Result<Response<pb::ListParametersResponse>, Status> {
        let request = request.into_inner();
        let (parameters, next_page_token) = service_rpc::list_parameters(
            self.parameters(),
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
            self.parameters(),
            &caller,
            &method("UpdateParameter"),
            request.parameter.as_ref(),
            request.update_mask.as_ref(),
            request.allow_missing,
            self.now(),
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
            self.db(),
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
