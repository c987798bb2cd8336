//! The wire edge of identity: each RPC parses its message into domain values, runs the use
//! case in one transaction, and maps the result back. Bulk import and monitoring live in their
//! own modules.

mod import;
mod monitoring;

use std::collections::HashMap;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Instant;

use bangfu_platform::audit::{self, AuditEntry, Outcome};
use bangfu_platform::auth::{Permission, Principal, RegionScope, caller};
use bangfu_platform::clock::Clock;
use bangfu_platform::config::ServerConfig;
use bangfu_platform::error::Problem;
use bangfu_platform::idempotency::RequestKey;
use bangfu_platform::outbox::{self, FeedEvent, FeedItem, NewEvent, Position, Start, WatchSettings};
use bangfu_platform::parameters::Parameters;
use bangfu_platform::pii::{CitizenId, Sex};
use bangfu_platform::ratelimit::SubjectRateLimiter;
use bangfu_platform::regions::DivisionTable;
use bangfu_platform::server::Shutdown;
use bangfu_platform::wire::{self, Disclosure};
use bangfu_platform::write::{self, Begun};
use bangfu_platform::{error::ErrorReason, paging, service_rpc};
use bangfu_proto::common::v1 as common;
use bangfu_proto::identity::v1 as pb;
use bangfu_proto::identity::v1::identity_service_server::{IdentityService, IdentityServiceServer};
use time::Date;
use tokio_stream::Stream;
use tonic::{Request, Response, Status};

use crate::domain::categories::{Category, CertificationError, HouseholdType, NewCertification, short_text};
use crate::domain::{
    ChangeKind, HouseholdRelation, IdentityError, LaborCapacity, NewPerson, PersonName, RetirementTrack,
    parse_household_number, parse_phone, parse_skills, resolve_track, retirement_month,
};
use crate::store::{Facts, PersonChanges, Store, StoredCertification, StoredPerson};

const METHOD_PREFIX: &str = "/bangfu.identity.v1.IdentityService/";

fn method(name: &str) -> String {
    format!("{METHOD_PREFIX}{name}")
}

/// The identity service.
pub struct Identity {
    store: Store,
    parameters: Arc<Parameters>,
    clock: Clock,
    regions: &'static DivisionTable,
    lookups: SubjectRateLimiter,
    shutdown: Shutdown,
    feed: WatchSettings,
}

impl Identity {
    pub fn new(store: Store, parameters: Arc<Parameters>, clock: Clock, regions: &'static DivisionTable) -> Self {
        Self {
            store,
            parameters,
            clock,
            regions,
            lookups: SubjectRateLimiter::new(),
            shutdown: Shutdown::new(),
            feed: WatchSettings::default(),
        }
    }

    /// Ends change-feed streams when this server drains.
    pub fn with_shutdown(mut self, shutdown: Shutdown) -> Self {
        self.shutdown = shutdown;
        self
    }

    /// How the change feed polls and how often idle streams get a heartbeat.
    pub fn with_feed_settings(mut self, feed: WatchSettings) -> Self {
        self.feed = feed;
        self
    }

    /// The service with the configured message limits.
    pub fn into_server(self, config: &ServerConfig) -> IdentityServiceServer<Self> {
        IdentityServiceServer::new(self)
            .max_decoding_message_size(config.max_receive_bytes)
            .max_encoding_message_size(config.max_send_bytes)
    }

    /// Checks a 12-digit village code against the current division table.
    fn village(&self, field: &str, code: &str) -> Result<String, IdentityError> {
        let code = code.trim();
        if code.len() == 12 && self.regions.is_village(code) {
            Ok(code.to_string())
        } else {
            Err(IdentityError::RegionUnknown {
                field: field.to_string(),
                code: code.to_string(),
            })
        }
    }

    fn parse_new_person(&self, person: &pb::Person, today: Date) -> Result<NewPerson, IdentityError> {
        let citizen_id = CitizenId::parse(&person.citizen_id, today).map_err(|source| IdentityError::CitizenId {
            field: "person.citizen_id".into(),
            source,
        })?;
        let name = PersonName::parse(&person.display_name).map_err(|source| IdentityError::Name {
            field: "person.display_name".into(),
            source,
        })?;
        // Birth date and sex come from the ID; anything given must agree with it.
        if let Some(given) = wire::optional_date("person.birth_date", person.birth_date.as_ref())
            .ok()
            .flatten()
            && given != citizen_id.birth_date()
        {
            return Err(IdentityError::Invalid {
                field: "person.birth_date".into(),
                what: "does not agree with the citizen ID".into(),
                what_zh: "出生日期与身份证号码不一致".into(),
            });
        }
        let sex_from_id = match citizen_id.sex() {
            Sex::Male => common::Sex::Male,
            Sex::Female => common::Sex::Female,
        };
        if person.sex != common::Sex::Unspecified as i32 && person.sex != sex_from_id as i32 {
            return Err(IdentityError::Invalid {
                field: "person.sex".into(),
                what: "does not agree with the citizen ID".into(),
                what_zh: "性别与身份证号码不一致".into(),
            });
        }
        let registered = person
            .registered_region
            .as_ref()
            .map(|r| r.code.as_str())
            .unwrap_or_default();
        let registered_region = self.village("person.registered_region.code", registered)?;
        let residence_region = match person
            .residence_region
            .as_ref()
            .map(|r| r.code.trim())
            .filter(|c| !c.is_empty())
        {
            Some(code) => self.village("person.residence_region.code", code)?,
            None => registered_region.clone(),
        };
        let phone = match person.phone.trim() {
            "" => None,
            text => Some(parse_phone(text).ok_or(IdentityError::Phone)?),
        };
        let household = household_of_wire(&person.household, person.household_relation)?;
        Ok(NewPerson {
            name,
            citizen_id,
            phone,
            registered_region,
            residence_region,
            labor_capacity: labor_capacity_from_wire(person.labor_capacity)?,
            skills: parse_skills(&person.skills)?,
            retirement_track: track_from_wire(person.retirement_track)?,
            household,
        })
    }

    /// The household exists in the caller's scope, and a head is its only head.
    /// The household exists in the caller's scope, and a head is its only head (checked here
    /// for the clear answer; the schema's one-head index holds it against a concurrent write).
    async fn ensure_household_fits(
        &self,
        connection: &mut sqlx::AnyConnection,
        caller: &Principal,
        household: &(String, HouseholdRelation),
        person_id: Option<&str>,
    ) -> Result<(), Problem> {
        let (id, relation) = household;
        let resource = format!("households/{id}");
        let stored = self
            .store
            .household(connection, id)
            .await?
            .ok_or_else(|| Problem::not_found(&resource))?;
        caller.ensure_sees(&resource, [stored.region.as_str()])?;
        if *relation == HouseholdRelation::Head {
            let members = self.store.members(connection, id).await?;
            if members
                .iter()
                .any(|m| m.relation == Some(HouseholdRelation::Head) && Some(m.person_id.as_str()) != person_id)
            {
                return Err(head_taken());
            }
        }
        Ok(())
    }

    /// The person for `caller`, or NOT_FOUND when missing or outside the caller's scope.
    async fn visible_person(&self, caller: &Principal, id: &str) -> Result<StoredPerson, Problem> {
        let mut connection = self.store.db.pool().acquire().await.map_err(Problem::from)?;
        self.visible_person_on(&mut connection, caller, id).await
    }

    /// `visible_person` on a connection the caller already holds.
    async fn visible_person_on(
        &self,
        connection: &mut sqlx::AnyConnection,
        caller: &Principal,
        id: &str,
    ) -> Result<StoredPerson, Problem> {
        let resource = format!("persons/{id}");
        let person = self
            .store
            .get(connection, id)
            .await?
            .ok_or_else(|| Problem::not_found(&resource))?;
        caller.ensure_sees(
            &resource,
            [person.registered_region.as_str(), person.residence_region.as_str()],
        )?;
        Ok(person)
    }

    /// The wire form of one person for the period `first..=last`.
    async fn one_person_to_wire(
        &self,
        person: &StoredPerson,
        (first, last): (Date, Date),
        disclosure: &Disclosure,
    ) -> Result<pb::Person, Problem> {
        let mut connection = self.store.db.pool().acquire().await.map_err(Problem::from)?;
        self.one_person_to_wire_on(&mut connection, person, (first, last), disclosure)
            .await
    }

    /// `one_person_to_wire` on a connection the caller already holds.
    async fn one_person_to_wire_on(
        &self,
        connection: &mut sqlx::AnyConnection,
        person: &StoredPerson,
        (first, last): (Date, Date),
        disclosure: &Disclosure,
    ) -> Result<pb::Person, Problem> {
        let facts = self.store.facts(connection, &[person], first, last).await?;
        let facts = facts.get(&person.id).ok_or_else(Problem::internal)?;
        self.person_to_wire(person, facts, disclosure)
    }

    /// The wire form of a person with its facts for a period: regions, labor capacity and
    /// status as of the period's last day, every certification overlapping it; masked or
    /// revealed.
    fn person_to_wire(
        &self,
        person: &StoredPerson,
        facts: &Facts,
        disclosure: &Disclosure,
    ) -> Result<pb::Person, Problem> {
        let registered = facts.registered_region.clone();
        let residence = facts.residence_region.clone();
        let labor = facts.labor_capacity;
        let certifications = &facts.certifications;
        let (citizen_id, display_name, phone) = match disclosure {
            Disclosure::Masked => (
                person.citizen_id_masked.clone(),
                person.name_masked.clone(),
                person.phone_masked.clone().unwrap_or_default(),
            ),
            Disclosure::Unmasked(_) => {
                let (id, name, phone) = self.store.reveal(person)?;
                (id, name, phone.unwrap_or_default())
            }
        };
        let region = |code: String| common::RegionCode {
            display_name: self.regions.full_name(&code).unwrap_or_default(),
            code,
        };
        Ok(pb::Person {
            name: person.resource(),
            display_name,
            citizen_id,
            sex: match person.sex {
                Sex::Male => common::Sex::Male,
                Sex::Female => common::Sex::Female,
            } as i32,
            // Masked, the year and month only (google.type.Date with day 0): with the day, the
            // registered county and the sex the masked ID could be rebuilt.
            birth_date: Some(match disclosure {
                Disclosure::Masked => common::Date {
                    day: 0,
                    ..wire::date_to_wire(person.birth_date)
                },
                Disclosure::Unmasked(_) => wire::date_to_wire(person.birth_date),
            }),
            phone,
            registered_region: Some(region(registered)),
            residence_region: Some(region(residence)),
            household: person
                .household_id
                .as_ref()
                .map(|id| format!("households/{id}"))
                .unwrap_or_default(),
            household_relation: person
                .household_relation
                .map_or(pb::HouseholdRelation::Unspecified, relation_to_wire) as i32,
            labor_capacity: labor_capacity_to_wire(labor) as i32,
            skills: person.skills.clone(),
            retirement_track: track_to_wire(person.retirement_track) as i32,
            retirement_month: Some(common::YearMonth {
                year: person.retirement_month.year,
                month: i32::from(person.retirement_month.month),
            }),
            employment_status: monitoring::status_to_wire(facts.employment_status) as i32,
            certifications: certifications.iter().map(certification_to_wire).collect(),
            death_date: person.death_date.map(wire::date_to_wire),
            moved_away_date: person.moved_away_date.map(wire::date_to_wire),
            create_time: Some(wire::timestamp_to_wire(person.created)),
            update_time: Some(wire::timestamp_to_wire(person.updated)),
            etag: person.etag(),
        })
    }

    async fn create_person_inner(
        &self,
        caller: &Principal,
        request: pb::CreatePersonRequest,
    ) -> Result<pb::Person, Problem> {
        let method = method("CreatePerson");
        let key = RequestKey::of_message(&caller.subject, &method, &request.request_id, &request)?;
        let wire_person = request.person.ok_or_else(|| Problem::required("person", "人员信息"))?;
        let today = self.clock.today();
        let now = self.clock.now();
        let new = self.parse_new_person(&wire_person, today)?;
        if !caller.scope.contains(&new.registered_region) && !caller.scope.contains(&new.residence_region) {
            return Err(IdentityError::RegionOutsideScope {
                field: "person.registered_region.code".into(),
            }
            .into());
        }
        let mut unit = match write::begin(&self.store.db, key, now).await? {
            Begun::Replay { resource } => {
                let id = resource.strip_prefix("persons/").unwrap_or(&resource);
                // The scope is checked again: a retry must not reveal a person moved out of it.
                let person = self.visible_person(caller, id).await?;
                return self
                    .one_person_to_wire(&person, (today, today), &Disclosure::Masked)
                    .await;
            }
            Begun::Fresh(unit) => unit,
        };
        if let Some(household) = &new.household {
            self.ensure_household_fits(unit.tx(), caller, household, None).await?;
        }
        if let Some(holder) = self.store.holder(unit.tx(), &new.citizen_id).await? {
            drop(unit);
            let resource = format!("persons/{}", holder.id);
            if caller.scope.contains(&holder.registered_region) || caller.scope.contains(&holder.residence_region) {
                return Err(IdentityError::PersonExists { resource }.into());
            }
            // The answer tells that the ID is registered elsewhere: it is a lookup, limited and
            // audited as one, naming whom it revealed.
            self.check_lookup_rate(caller, today, 1).await?;
            let refused = AuditEntry::by(caller, &method, resource, now)
                .with_outcome(Outcome::Failed, "PERSON_EXISTS_OUTSIDE_SCOPE");
            audit::append_now(&self.store.db, &refused)
                .await
                .map_err(Problem::from)?;
            return Err(IdentityError::PersonExistsOutsideScope.into());
        }
        let default_female_age = self
            .parameters
            .lookup_on(
                unit.tx(),
                "identity.default_female_retirement_age",
                &new.registered_region,
                today,
            )
            .await?
            .unwrap_or(55);
        let track = resolve_track(new.retirement_track, new.citizen_id.sex(), default_female_age);
        let retirement = retirement_month(new.citizen_id.birth_date(), track);
        let id = Store::new_person_id();
        let resource = format!("persons/{id}");
        self.store
            .insert(unit.tx(), &id, &new, track, retirement, HISTORY_START, now)
            .await
            .map_err(household_head_taken)?;
        let regions = [new.registered_region.as_str(), new.residence_region.as_str()];
        unit.publish(&NewEvent {
            kind: ChangeKind::Created.as_str(),
            resource: &resource,
            regions: &regions,
            effective_date: Some(today),
            detail: "{}",
        })
        .await?;
        unit.commit(AuditEntry::by(caller, &method, resource, now)).await?;
        let person = self.visible_person(caller, &id).await?;
        self.one_person_to_wire(&person, (today, today), &Disclosure::Masked)
            .await
    }

    async fn get_person_inner(&self, caller: &Principal, request: pb::GetPersonRequest) -> Result<pb::Person, Problem> {
        let id = person_id(&request.name, "name")?;
        let period = wire::period("period", request.period.as_ref(), self.clock.today())?;
        let disclosure = wire::disclosure(
            caller,
            Permission::IdentityPiiRead,
            request.view,
            request.purpose.as_ref(),
        )?;
        // One connection and two queries for the whole read: other services make it most.
        let mut connection = self.store.db.pool().acquire().await.map_err(Problem::from)?;
        let resource = format!("persons/{id}");
        let (person, facts) = self
            .store
            .get_as_of(&mut connection, id, period.0, period.1)
            .await?
            .ok_or_else(|| Problem::not_found(&resource))?;
        drop(connection);
        caller.ensure_sees(
            &resource,
            [person.registered_region.as_str(), person.residence_region.as_str()],
        )?;
        let wire_person = self.person_to_wire(&person, &facts, &disclosure)?;
        if let Disclosure::Unmasked(purpose) = &disclosure {
            let read = AuditEntry::by(caller, &method("GetPerson"), person.resource(), self.clock.now())
                .with_purpose(&purpose.code, &purpose.reference);
            audit::append_now(&self.store.db, &read).await.map_err(Problem::from)?;
        }
        Ok(wire_person)
    }

    /// The caller's department may certify `category`, or PERMISSION_DENIED naming both.
    async fn ensure_may_certify(
        &self,
        connection: &mut sqlx::AnyConnection,
        caller: &Principal,
        category: Category,
    ) -> Result<(), Problem> {
        let department = caller.department.map(|d| d.as_str()).unwrap_or("");
        if self.store.may_certify(connection, category, department).await? {
            return Ok(());
        }
        Err(Problem::new(
            tonic::Code::PermissionDenied,
            ErrorReason::PermissionMissing,
            format!("department {department:?} does not certify {}", category.as_str()),
            "您所在部门不负责认定该类人员",
        )
        .with_metadata("category", category.as_str()))
    }

    async fn certify_category_inner(
        &self,
        caller: &Principal,
        request: pb::CertifyCategoryRequest,
    ) -> Result<pb::Certification, Problem> {
        let method = method("CertifyCategory");
        let key = RequestKey::of_message(&caller.subject, &method, &request.request_id, &request)?;
        let person_id = person_id(&request.person, "person")?;
        let wire_certification = request
            .certification
            .ok_or_else(|| Problem::required("certification", "认定信息"))?;
        let certification = certification_from_wire(&wire_certification)?;
        let mut connection = self.store.db.pool().acquire().await.map_err(Problem::from)?;
        let may = self
            .ensure_may_certify(&mut connection, caller, certification.category)
            .await;
        drop(connection);
        if let Err(refusal) = may {
            return Err(audit::denied(&self.store.db, caller, &method, &request.person, refusal).await);
        }
        let person = self.visible_person(caller, person_id).await?;
        let now = self.clock.now();
        let id = match write::begin(&self.store.db, key, now).await? {
            Begun::Replay { resource } => resource.rsplit('/').next().unwrap_or_default().to_string(),
            Begun::Fresh(mut unit) => {
                let id = Store::new_person_id();
                self.store
                    .insert_certification(unit.tx(), &id, &person.id, &certification, &caller.subject, now)
                    .await?;
                let resource = format!("persons/{}/certifications/{id}", person.id);
                let detail = serde_json::json!({ "category": certification.category.as_str() }).to_string();
                let regions = [person.registered_region.as_str(), person.residence_region.as_str()];
                unit.publish(&NewEvent {
                    kind: ChangeKind::CategoryCertified.as_str(),
                    resource: &person.resource(),
                    regions: &regions,
                    effective_date: Some(certification.valid_from),
                    detail: &detail,
                })
                .await?;
                unit.commit(AuditEntry::by(caller, &method, resource, now)).await?;
                id
            }
        };
        self.certification_of(&person.id, &id).await
    }

    async fn revoke_category_inner(
        &self,
        caller: &Principal,
        request: pb::RevokeCategoryRequest,
    ) -> Result<pb::Certification, Problem> {
        let method = method("RevokeCategory");
        let key = RequestKey::of_message(&caller.subject, &method, &request.request_id, &request)?;
        let (person_id, certification_id) = certification_name(&request.name)?;
        let document = short_text(&request.document_reference, "document_reference").map_err(|e| {
            Problem::invalid_field(ErrorReason::FieldRequired, e.field(), e.to_string(), e.message_zh())
        })?;
        let valid_to = wire::optional_date("valid_to", request.valid_to.as_ref())?;
        if !request.annul && valid_to.is_none() {
            return Err(Problem::required("valid_to", "失效日期（或选择撤销认定）"));
        }
        let person = self.visible_person(caller, person_id).await?;
        let now = self.clock.now();
        // The request id first: a retried revocation answers with the first one's result
        // instead of finding the certification already ended.
        let mut unit = match write::begin(&self.store.db, key, now).await? {
            Begun::Replay { .. } => return self.certification_of(&person.id, certification_id).await,
            Begun::Fresh(unit) => unit,
        };
        let current = self
            .store
            .certification(unit.tx(), &person.id, certification_id)
            .await?
            .ok_or_else(|| Problem::not_found(&request.name))?;
        if let Err(refusal) = self.ensure_may_certify(unit.tx(), caller, current.category).await {
            drop(unit);
            return Err(audit::denied(&self.store.db, caller, &method, &request.name, refusal).await);
        }
        if current.annulled {
            return Err(certification_annulled());
        }
        if let Some(to) = valid_to
            && to < current.valid_from
        {
            return Err(Problem::invalid_field(
                ErrorReason::FieldInvalid,
                "valid_to",
                "is before the certification's valid_from; annul it instead",
                "失效日期早于生效日期；如认定有误，请选择撤销认定",
            ));
        }
        // Each change is guarded on the certification not being annulled in the meantime: of a
        // revocation and an annulment racing, the one that commits second finds no row to change.
        let (changed, kind, effective) = if request.annul {
            let changed = self
                .store
                .annul_certification(unit.tx(), &current.id, &document, &caller.subject, now)
                .await?;
            (changed, ChangeKind::CategoryAnnulled, current.valid_from)
        } else {
            let to = valid_to.unwrap_or(current.valid_from);
            let changed = self
                .store
                .revoke_certification(unit.tx(), &current.id, to, &document, &caller.subject, now)
                .await?;
            (changed, ChangeKind::CategoryRevoked, to)
        };
        if !changed {
            return Err(certification_annulled());
        }
        let detail = serde_json::json!({ "category": current.category.as_str() }).to_string();
        let regions = [person.registered_region.as_str(), person.residence_region.as_str()];
        unit.publish(&NewEvent {
            kind: kind.as_str(),
            resource: &person.resource(),
            regions: &regions,
            effective_date: Some(effective),
            detail: &detail,
        })
        .await?;
        unit.commit(AuditEntry::by(caller, &method, current.resource(), now))
            .await?;
        self.certification_of(&person.id, &current.id).await
    }

    async fn certification_of(&self, person_id: &str, id: &str) -> Result<pb::Certification, Problem> {
        let mut connection = self.store.db.pool().acquire().await.map_err(Problem::from)?;
        let stored = self
            .store
            .certification(&mut connection, person_id, id)
            .await?
            .ok_or_else(|| Problem::not_found(&format!("persons/{person_id}/certifications/{id}")))?;
        Ok(certification_to_wire(&stored))
    }

    async fn update_person_inner(
        &self,
        caller: &Principal,
        request: pb::UpdatePersonRequest,
    ) -> Result<pb::Person, Problem> {
        let method = method("UpdatePerson");
        let wire_person = request.person.ok_or_else(|| Problem::required("person", "人员信息"))?;
        let id = person_id(&wire_person.name, "person.name")?;
        if wire_person.etag.is_empty() {
            return Err(Problem::required("person.etag", "版本标记（etag，先读取再修改）"));
        }
        let stale = || {
            Problem::new(
                tonic::Code::Aborted,
                ErrorReason::EtagMismatch,
                "the person changed since it was read; read it again and reapply the change",
                "该人员信息已被他人修改，请刷新后重新修改",
            )
        };
        let revision: i64 = wire_person
            .etag
            .strip_prefix('r')
            .and_then(|r| r.parse().ok())
            .ok_or_else(stale)?;
        let paths = request.update_mask.map(|m| m.paths).unwrap_or_default();
        if paths.is_empty() {
            return Err(Problem::required("update_mask", "要修改的字段"));
        }
        let today = self.clock.today();
        let effective = wire::optional_date("effective_date", request.effective_date.as_ref())?.unwrap_or(today);
        let current = self.visible_person(caller, id).await?;
        if current.revision != revision {
            return Err(stale());
        }
        let mut changes = PersonChanges {
            name: None,
            phone: None,
            registered_region: current.registered_region.clone(),
            residence_region: current.residence_region.clone(),
            labor_capacity: current.labor_capacity,
            skills: current.skills.clone(),
            retirement_track: current.retirement_track,
            retirement_month: current.retirement_month,
            death_date: current.death_date,
            moved_away_date: current.moved_away_date,
            household: current.household_id.clone().zip(current.household_relation),
        };
        let mut changed_fields = Vec::new();
        for path in &paths {
            match path.as_str() {
                "display_name" => {
                    let name = PersonName::parse(&wire_person.display_name).map_err(|source| IdentityError::Name {
                        field: "person.display_name".into(),
                        source,
                    })?;
                    changes.name = Some(name.as_str().to_string());
                }
                "phone" => {
                    changes.phone = Some(match wire_person.phone.trim() {
                        "" => None,
                        text => Some(parse_phone(text).ok_or(IdentityError::Phone)?),
                    });
                }
                "registered_region" | "registered_region.code" => {
                    let code = wire_person
                        .registered_region
                        .as_ref()
                        .map(|r| r.code.as_str())
                        .unwrap_or_default();
                    changes.registered_region = self.village("person.registered_region.code", code)?;
                }
                "residence_region" | "residence_region.code" => {
                    let code = wire_person
                        .residence_region
                        .as_ref()
                        .map(|r| r.code.as_str())
                        .unwrap_or_default();
                    changes.residence_region = self.village("person.residence_region.code", code)?;
                }
                "labor_capacity" => changes.labor_capacity = labor_capacity_from_wire(wire_person.labor_capacity)?,
                "skills" => changes.skills = parse_skills(&wire_person.skills)?,
                "retirement_track" => {
                    let default_female_age = self
                        .parameters
                        .lookup(
                            "identity.default_female_retirement_age",
                            &current.registered_region,
                            today,
                        )
                        .await?
                        .unwrap_or(55);
                    changes.retirement_track = resolve_track(
                        track_from_wire(wire_person.retirement_track)?,
                        current.sex,
                        default_female_age,
                    );
                    changes.retirement_month = retirement_month(current.birth_date, changes.retirement_track);
                }
                "death_date" => {
                    changes.death_date = wire::optional_date("person.death_date", wire_person.death_date.as_ref())?
                }
                "moved_away_date" => {
                    changes.moved_away_date =
                        wire::optional_date("person.moved_away_date", wire_person.moved_away_date.as_ref())?
                }
                "household" | "household_relation" => {
                    changes.household = household_of_wire(&wire_person.household, wire_person.household_relation)?;
                }
                other => {
                    return Err(Problem::invalid_field(
                        ErrorReason::FieldInvalid,
                        "update_mask",
                        format!("{other} cannot be changed here (the citizen ID changes through CorrectCitizenId)"),
                        "该字段不能在此修改（身份证号码请通过更正流程修改）",
                    ));
                }
            }
            changed_fields.push(path.split('.').next().unwrap_or(path).to_string());
        }
        let now = self.clock.now();
        // An etag makes the update safe to retry: a replay finds the revision moved on.
        let mut unit = write::begin_unkeyed(&self.store.db, now).await?;
        if let Some(household) = &changes.household
            && current.household_id.clone().zip(current.household_relation).as_ref() != Some(household)
        {
            self.ensure_household_fits(unit.tx(), caller, household, Some(&current.id))
                .await?;
        }
        if !self
            .store
            .update(unit.tx(), &current, revision, &changes, effective, now)
            .await
            .map_err(household_head_taken)?
        {
            return Err(stale());
        }
        append_update_events(&mut unit, &current, &changes, &changed_fields, effective).await?;
        unit.commit(AuditEntry::by(caller, &method, current.resource(), now))
            .await?;
        // The caller may have moved the person out of its own scope: the answer is still its own.
        let mut connection = self.store.db.pool().acquire().await.map_err(Problem::from)?;
        let updated = self
            .store
            .get(&mut connection, &current.id)
            .await?
            .ok_or_else(Problem::internal)?;
        drop(connection);
        self.one_person_to_wire(&updated, (today, today), &Disclosure::Masked)
            .await
    }

    async fn list_persons_inner(
        &self,
        caller: &Principal,
        request: pb::ListPersonsRequest,
    ) -> Result<pb::ListPersonsResponse, Problem> {
        let prefix = scoped_prefix(caller, &request.region_prefix, "region_prefix")?;
        if request.employment_status != common::EmploymentStatus::Unspecified as i32 {
            return Err(IdentityError::NotYetSupported {
                field: "employment_status".into(),
                what: "filtering by employment status",
            }
            .into());
        }
        let category = match request.category {
            0 => None,
            value => Some((category_from_wire(value)?, self.clock.today())),
        };
        let Some(prefix) = prefix else {
            return Ok(pb::ListPersonsResponse::default());
        };
        let size = paging::page_size(request.page_size, 100, 1000)?;
        let fingerprint = paging::fingerprint(&[&prefix, &request.category.to_string()]);
        let cursor = paging::decode_token(&request.page_token, &fingerprint)?;
        let cursor = match cursor.as_deref() {
            Some([region, id]) => Some((region.as_str(), id.as_str())),
            Some(_) => {
                return Err(Problem::invalid_field(
                    ErrorReason::PageTokenInvalid,
                    "page_token",
                    "is not valid",
                    "翻页标记无效",
                ));
            }
            None => None,
        };
        let mut connection = self.store.db.pool().acquire().await.map_err(Problem::from)?;
        let mut persons = self
            .store
            .list_registered(&mut connection, &prefix, cursor, category, size + 1)
            .await?;
        let next_page_token = if persons.len() > size as usize {
            persons.truncate(size as usize);
            persons
                .last()
                .map(|p| paging::encode_token(&fingerprint, &[p.registered_region.clone(), p.id.clone()]))
                .unwrap_or_default()
        } else {
            String::new()
        };
        let today = self.clock.today();
        let refs: Vec<&StoredPerson> = persons.iter().collect();
        let facts = self.store.facts(&mut connection, &refs, today, today).await?;
        drop(connection);
        let persons = persons
            .iter()
            .map(|p| self.person_to_wire(p, facts.get(&p.id).ok_or_else(Problem::internal)?, &Disclosure::Masked))
            .collect::<Result<Vec<_>, _>>()?;
        Ok(pb::ListPersonsResponse {
            persons,
            next_page_token,
        })
    }

    async fn correct_citizen_id_inner(
        &self,
        caller: &Principal,
        request: pb::CorrectCitizenIdRequest,
    ) -> Result<pb::CitizenIdCorrection, Problem> {
        let method = method("CorrectCitizenId");
        let key = RequestKey::of_message(&caller.subject, &method, &request.request_id, &request)?;
        let id = person_id(&request.person, "person")?;
        let correction = request
            .correction
            .ok_or_else(|| Problem::required("correction", "更正信息"))?;
        let new_id = CitizenId::parse(&correction.new_citizen_id, self.clock.today()).map_err(|source| {
            IdentityError::CitizenId {
                field: "correction.new_citizen_id".into(),
                source,
            }
        })?;
        let reason = review_reason(&correction.reason, "correction.reason")?;
        let person = self.visible_person(caller, id).await?;
        let now = self.clock.now();
        let mut unit = match write::begin(&self.store.db, key, now).await? {
            Begun::Replay { resource } => {
                let correction_id = resource.rsplit('/').next().unwrap_or_default();
                return self.correction_to_wire(&person.id, correction_id).await;
            }
            Begun::Fresh(unit) => unit,
        };
        self.ensure_id_free(unit.tx(), &new_id, &person.id).await?;
        let correction_id = Store::new_person_id();
        self.store
            .insert_correction(
                unit.tx(),
                &correction_id,
                &person.id,
                &new_id,
                &reason,
                &caller.subject,
                now,
            )
            .await?;
        let resource = format!("{}/citizenIdCorrections/{correction_id}", person.resource());
        unit.commit(AuditEntry::by(caller, &method, resource, now)).await?;
        self.correction_to_wire(&person.id, &correction_id).await
    }

    /// FAILED_PRECONDITION when another person already holds `citizen_id`.
    async fn ensure_id_free(
        &self,
        connection: &mut sqlx::AnyConnection,
        citizen_id: &CitizenId,
        person_id: &str,
    ) -> Result<(), Problem> {
        match self.store.holder(connection, citizen_id).await? {
            Some(holder) if holder.id == person_id => Err(Problem::invalid_field(
                ErrorReason::FieldInvalid,
                "correction.new_citizen_id",
                "is the ID the person already holds",
                "新身份证号码与现有号码相同",
            )),
            Some(_) => Err(Problem::new(
                tonic::Code::FailedPrecondition,
                ErrorReason::StateConflict,
                "another person holds this citizen ID",
                "该身份证号码已被其他档案使用，请先核实",
            )),
            None => Ok(()),
        }
    }

    async fn approve_correction_inner(
        &self,
        caller: &Principal,
        request: pb::ApproveCitizenIdCorrectionRequest,
    ) -> Result<pb::CitizenIdCorrection, Problem> {
        let method = method("ApproveCitizenIdCorrection");
        // The reviewer reads the proposed ID in clear to check it: the PII permission is required.
        if !caller.has(Permission::IdentityPiiRead) {
            return Err(Problem::new(
                tonic::Code::PermissionDenied,
                ErrorReason::PermissionMissing,
                "approving a citizen-ID correction needs identity.pii.read",
                "审核身份证号码更正须具有查看完整个人信息的权限",
            )
            .with_metadata("permission", Permission::IdentityPiiRead.as_str()));
        }
        let (person_id, correction_id) = correction_name(&request.name)?;
        let reason = review_reason(&request.reason, "reason")?;
        let person = self.visible_person(caller, person_id).await?;
        let today = self.clock.today();
        let now = self.clock.now();
        let mut unit = write::begin_unkeyed(&self.store.db, now).await?;
        let correction = self
            .store
            .correction(unit.tx(), &person.id, correction_id)
            .await?
            .ok_or_else(|| Problem::not_found(&request.name))?;
        if let Err(refusal) = caller.ensure_not_maker(&correction.propose_subject) {
            drop(unit);
            return Err(audit::denied(&self.store.db, caller, &method, &request.name, refusal).await);
        }
        // The review is one guarded change of state (`proposed` → `applied` or `rejected`) in the
        // transaction that applies it: of an approval and a rejection racing, the second finds
        // the correction reviewed and changes nothing, the person's ID included.
        let state = if request.approve { "applied" } else { "rejected" };
        if !self
            .store
            .review_correction(unit.tx(), &correction.id, state, &caller.subject, &reason, now)
            .await?
        {
            drop(unit);
            let current = self.correction_to_wire(&person.id, &correction.id).await?;
            return Err(correction_reviewed(current.state()));
        }
        if request.approve {
            let new_id = CitizenId::parse(&self.store.reveal_correction(&correction)?, today)
                .map_err(|_| Problem::internal())?;
            self.ensure_id_free(unit.tx(), &new_id, &person.id).await?;
            let default_female_age = self
                .parameters
                .lookup_on(
                    unit.tx(),
                    "identity.default_female_retirement_age",
                    &person.registered_region,
                    today,
                )
                .await?
                .unwrap_or(55);
            // A corrected sex may change the track; a corrected birth date always moves the month.
            let track = if new_id.sex() == person.sex {
                Some(person.retirement_track)
            } else {
                None
            };
            let track = resolve_track(track, new_id.sex(), default_female_age);
            let retirement = retirement_month(new_id.birth_date(), track);
            if !self
                .store
                .apply_correction(unit.tx(), &person, &correction, &new_id, track, retirement, now)
                .await?
            {
                return Err(Problem::new(
                    tonic::Code::Aborted,
                    ErrorReason::EtagMismatch,
                    "the person changed during the review; review again",
                    "审核期间人员信息已变化，请重新审核",
                ));
            }
            let regions = [person.registered_region.as_str(), person.residence_region.as_str()];
            unit.publish(&NewEvent {
                kind: ChangeKind::CitizenIdCorrected.as_str(),
                resource: &person.resource(),
                regions: &regions,
                effective_date: Some(today),
                detail: "{}",
            })
            .await?;
        }
        let entry = AuditEntry::by(caller, &method, correction.resource(), now).with_purpose("DATA_CORRECTION", state);
        unit.commit(entry).await?;
        self.correction_to_wire(&person.id, &correction.id).await
    }

    async fn correction_to_wire(&self, person_id: &str, id: &str) -> Result<pb::CitizenIdCorrection, Problem> {
        let mut connection = self.store.db.pool().acquire().await.map_err(Problem::from)?;
        let correction = self
            .store
            .correction(&mut connection, person_id, id)
            .await?
            .ok_or_else(Problem::internal)?;
        Ok(pb::CitizenIdCorrection {
            name: correction.resource(),
            new_citizen_id: correction.new_citizen_id_masked.clone(),
            reason: correction.reason.clone(),
            state: match correction.state.as_str() {
                "proposed" => pb::CorrectionState::Proposed,
                "applied" => pb::CorrectionState::Applied,
                "rejected" => pb::CorrectionState::Rejected,
                _ => pb::CorrectionState::Unspecified,
            } as i32,
            propose_subject: correction.propose_subject.clone(),
            review_subject: correction.review_subject.clone().unwrap_or_default(),
            propose_time: Some(wire::timestamp_to_wire(correction.proposed)),
            review_time: correction.reviewed.map(wire::timestamp_to_wire),
        })
    }

    async fn create_household_inner(
        &self,
        caller: &Principal,
        request: pb::CreateHouseholdRequest,
    ) -> Result<pb::Household, Problem> {
        let method = method("CreateHousehold");
        let key = RequestKey::of_message(&caller.subject, &method, &request.request_id, &request)?;
        let household = request
            .household
            .ok_or_else(|| Problem::required("household", "户信息"))?;
        let number = parse_household_number(&household.household_number).ok_or_else(|| {
            Problem::invalid_field(
                ErrorReason::FieldInvalid,
                "household.household_number",
                "must be 1 to 50 letters, digits or '-'",
                "户编号应为1至50位字母、数字或“-”",
            )
        })?;
        let code = household.region.as_ref().map(|r| r.code.as_str()).unwrap_or_default();
        let region = self.village("household.region.code", code)?;
        if !caller.scope.contains(&region) {
            return Err(IdentityError::RegionOutsideScope {
                field: "household.region.code".into(),
            }
            .into());
        }
        let now = self.clock.now();
        let mut unit = match write::begin(&self.store.db, key, now).await? {
            Begun::Replay { resource } => {
                let id = resource.strip_prefix("households/").unwrap_or(&resource);
                return self.household_to_wire(caller, id).await;
            }
            Begun::Fresh(unit) => unit,
        };
        if let Some(existing) = self.store.household_by_number(unit.tx(), &number).await? {
            let mut problem = household_number_taken();
            if caller.scope.contains(&existing.region) {
                problem = problem.with_metadata("resource", existing.resource());
            }
            return Err(problem);
        }
        let id = Store::new_person_id();
        self.store
            .insert_household(unit.tx(), &id, &number, &region, now)
            .await
            .map_err(|problem| {
                // Registered by someone else between the check and the insert.
                if problem.metadata.iter().any(|(k, _)| k == "constraint") {
                    household_number_taken()
                } else {
                    problem
                }
            })?;
        let resource = format!("households/{id}");
        unit.commit(AuditEntry::by(caller, &method, resource, now)).await?;
        self.household_to_wire(caller, &id).await
    }

    /// A household with its members (masked names), NOT_FOUND outside the caller's scope.
    async fn household_to_wire(&self, caller: &Principal, id: &str) -> Result<pb::Household, Problem> {
        let resource = format!("households/{id}");
        let mut connection = self.store.db.pool().acquire().await.map_err(Problem::from)?;
        let household = self
            .store
            .household(&mut connection, id)
            .await?
            .ok_or_else(|| Problem::not_found(&resource))?;
        caller.ensure_sees(&resource, [household.region.as_str()])?;
        let members = self.store.members(&mut connection, id).await?;
        Ok(pb::Household {
            name: household.resource(),
            household_number: household.household_number.clone(),
            region: Some(common::RegionCode {
                display_name: self.regions.full_name(&household.region).unwrap_or_default(),
                code: household.region.clone(),
            }),
            members: members
                .into_iter()
                .map(|m| pb::HouseholdMember {
                    person: format!("persons/{}", m.person_id),
                    relation: m.relation.map_or(pb::HouseholdRelation::Unspecified, relation_to_wire) as i32,
                    display_name: m.name_masked,
                })
                .collect(),
            create_time: Some(wire::timestamp_to_wire(household.created)),
        })
    }

    async fn batch_get_persons_inner(
        &self,
        caller: &Principal,
        request: pb::BatchGetPersonsRequest,
    ) -> Result<Vec<pb::PersonResult>, Problem> {
        if request.names.len() > MAX_BATCH {
            return Err(batch_too_large("names"));
        }
        let ids = request
            .names
            .iter()
            .enumerate()
            .map(|(i, name)| person_id(name, &format!("names[{i}]")))
            .collect::<Result<Vec<_>, _>>()?;
        let period = wire::period("period", request.period.as_ref(), self.clock.today())?;
        let disclosure = wire::disclosure(
            caller,
            Permission::IdentityPiiRead,
            request.view,
            request.purpose.as_ref(),
        )?;
        let mut unique = ids.clone();
        unique.sort_unstable();
        unique.dedup();
        let mut connection = self.store.db.pool().acquire().await.map_err(Problem::from)?;
        let persons = self.store.persons_by_ids(&mut connection, &unique).await?;
        let visible: Vec<&StoredPerson> = persons
            .iter()
            .filter(|p| caller.scope.contains(&p.registered_region) || caller.scope.contains(&p.residence_region))
            .collect();
        let facts = self.store.facts(&mut connection, &visible, period.0, period.1).await?;
        drop(connection);
        let mut answers: HashMap<&str, pb::Person> = HashMap::with_capacity(visible.len());
        for person in &visible {
            let facts = facts.get(&person.id).ok_or_else(Problem::internal)?;
            answers.insert(person.id.as_str(), self.person_to_wire(person, facts, &disclosure)?);
        }
        if let Disclosure::Unmasked(purpose) = &disclosure {
            // One audit row for the batch, naming how many persons were read in clear.
            let read = AuditEntry::by(
                caller,
                &method("BatchGetPersons"),
                format!("persons ({} unmasked)", answers.len()),
                self.clock.now(),
            )
            .with_purpose(&purpose.code, &purpose.reference);
            audit::append_now(&self.store.db, &read).await.map_err(Problem::from)?;
        }
        Ok(request
            .names
            .iter()
            .zip(ids)
            .map(|(name, id)| match answers.get(id) {
                Some(person) => pb::PersonResult {
                    name: name.clone(),
                    person: Some(person.clone()),
                    not_found: false,
                },
                None => pb::PersonResult {
                    name: name.clone(),
                    person: None,
                    not_found: true,
                },
            })
            .collect())
    }

    async fn batch_lookup_persons_inner(
        &self,
        caller: &Principal,
        request: pb::BatchLookupPersonsRequest,
    ) -> Result<Vec<pb::LookupPersonResponse>, Problem> {
        if request.lookups.len() > MAX_BATCH {
            return Err(batch_too_large("lookups"));
        }
        let today = self.clock.today();
        self.check_lookup_rate(caller, today, request.lookups.len()).await?;
        let mut parsed = Vec::with_capacity(request.lookups.len());
        for (i, lookup) in request.lookups.iter().enumerate() {
            let citizen_id =
                CitizenId::parse(&lookup.citizen_id, today).map_err(|source| IdentityError::CitizenId {
                    field: format!("lookups[{i}].citizen_id"),
                    source,
                })?;
            let name = match lookup.display_name.trim() {
                "" => None,
                given => Some(
                    self.store.name_key(
                        PersonName::parse(given)
                            .map_err(|source| IdentityError::Name {
                                field: format!("lookups[{i}].display_name"),
                                source,
                            })?
                            .as_str(),
                    ),
                ),
            };
            parsed.push((self.store.blind_indexes(&citizen_id), name));
        }
        let all_indexes: Vec<String> = parsed.iter().flat_map(|(indexes, _)| indexes.iter().cloned()).collect();
        let mut connection = self.store.db.pool().acquire().await.map_err(Problem::from)?;
        let holders = self.store.holders_by_index(&mut connection, &all_indexes).await?;
        drop(connection);
        let by_index: HashMap<&str, _> = holders.iter().map(|h| (h.citizen_id_index.as_str(), h)).collect();
        let answers: Vec<pb::LookupPersonResponse> = parsed
            .iter()
            .map(|(indexes, name_key)| {
                let found = indexes
                    .iter()
                    .find_map(|index| by_index.get(index.as_str()))
                    .filter(|h| {
                        caller.scope.contains(&h.holder.registered_region)
                            || caller.scope.contains(&h.holder.residence_region)
                    });
                match found {
                    None => pb::LookupPersonResponse::default(),
                    Some(h) => pb::LookupPersonResponse {
                        person: format!("persons/{}", h.holder.id),
                        name_match: match name_key {
                            None => pb::NameMatch::Unspecified,
                            Some(key) if *key == h.name_key => pb::NameMatch::Matched,
                            Some(_) => pb::NameMatch::Mismatched,
                        } as i32,
                    },
                }
            })
            .collect();
        let found = answers.iter().filter(|a| !a.person.is_empty()).count();
        let looked_up = AuditEntry::by(
            caller,
            &method("BatchLookupPersons"),
            format!("persons ({} looked up, {found} found)", answers.len()),
            self.clock.now(),
        );
        audit::append_now(&self.store.db, &looked_up)
            .await
            .map_err(Problem::from)?;
        Ok(answers)
    }

    /// Counts `lookups` lookups by citizen ID against the subject's per-minute limit (a
    /// parameter; services acting on their own have their own, for payee checks). Each ID
    /// counts: a batch is as many lookups as it holds.
    async fn check_lookup_rate(&self, caller: &Principal, today: Date, lookups: usize) -> Result<(), Problem> {
        let key = if caller.department.is_none() && caller.acting_service.is_some() {
            "identity.service_lookups_per_minute"
        } else {
            "identity.lookups_per_minute"
        };
        let per_minute = self
            .parameters
            .lookup(key, "", today)
            .await?
            .unwrap_or(60)
            .clamp(1, i64::from(u32::MAX)) as u32;
        let lookups = u32::try_from(lookups).unwrap_or(u32::MAX);
        if lookups > per_minute {
            return Err(Problem::new(
                tonic::Code::ResourceExhausted,
                ErrorReason::RateLimited,
                format!("{lookups} lookups in one call exceed the limit of {per_minute} per minute ({key}); send smaller batches"),
                format!("单次查询{lookups}条，超过每分钟{per_minute}条的限额，请分批查询"),
            )
            .with_metadata("parameter", key));
        }
        self.lookups.check(&caller.subject, per_minute, lookups, Instant::now())
    }

    async fn lookup_person_inner(
        &self,
        caller: &Principal,
        request: pb::LookupPersonRequest,
    ) -> Result<pb::LookupPersonResponse, Problem> {
        let today = self.clock.today();
        self.check_lookup_rate(caller, today, 1).await?;
        let citizen_id = CitizenId::parse(&request.citizen_id, today).map_err(|source| IdentityError::CitizenId {
            field: "citizen_id".into(),
            source,
        })?;
        let name = match request.display_name.trim() {
            "" => None,
            given => Some(PersonName::parse(given).map_err(|source| IdentityError::Name {
                field: "display_name".into(),
                source,
            })?),
        };
        let mut connection = self.store.db.pool().acquire().await.map_err(Problem::from)?;
        let holder = self.store.holder(&mut connection, &citizen_id).await?;
        let visible = holder
            .filter(|h| caller.scope.contains(&h.registered_region) || caller.scope.contains(&h.residence_region));
        let mut response = pb::LookupPersonResponse::default();
        if let Some(holder) = visible {
            response.person = format!("persons/{}", holder.id);
            if let Some(name) = &name
                && let Some(person) = self.store.get(&mut connection, &holder.id).await?
            {
                response.name_match = if self.store.name_matches(&person, name.as_str()) {
                    pb::NameMatch::Matched
                } else {
                    pb::NameMatch::Mismatched
                } as i32;
            }
        }
        drop(connection);
        let looked_up = AuditEntry::by(
            caller,
            &method("LookupPerson"),
            response.person.clone(),
            self.clock.now(),
        );
        audit::append_now(&self.store.db, &looked_up)
            .await
            .map_err(Problem::from)?;
        Ok(response)
    }
}

/// The first history entry of a registered person: what was known at registration stands for
/// the time before it, so a later change may be dated before the registration day.
const HISTORY_START: Date = time::macros::date!(1900 - 01 - 01);

/// The most names or lookups one batch call takes.
const MAX_BATCH: usize = 1000;

/// FAILED_PRECONDITION: an annulled certification is final.
fn certification_annulled() -> Problem {
    Problem::new(
        tonic::Code::FailedPrecondition,
        ErrorReason::StateConflict,
        "the certification is annulled",
        "该认定已被撤销，不能再修改",
    )
}

/// FAILED_PRECONDITION: the correction was reviewed already (by someone else, just now).
fn correction_reviewed(state: pb::CorrectionState) -> Problem {
    let state = match state {
        pb::CorrectionState::Applied => "applied",
        pb::CorrectionState::Rejected => "rejected",
        _ => "reviewed",
    };
    Problem::new(
        tonic::Code::FailedPrecondition,
        ErrorReason::StateConflict,
        format!("the correction is already {state}"),
        "该更正申请已审核完毕",
    )
    .with_metadata("state", state)
}

/// ALREADY_EXISTS: the household number is registered.
fn household_number_taken() -> Problem {
    Problem::new(
        tonic::Code::AlreadyExists,
        ErrorReason::AlreadyExists,
        "a household with this number exists",
        "该户编号已登记",
    )
}

/// The household already has a head.
fn head_taken() -> Problem {
    Problem::invalid_field(
        ErrorReason::FieldInvalid,
        "person.household_relation",
        "the household already has a head",
        "该户已有户主，请核对与户主关系",
    )
}

/// A write that met the one-head index (`persons_one_head`): another head was registered at
/// the same time, and the answer is the one the check gives when it sees that head.
fn household_head_taken(problem: Problem) -> Problem {
    let at_head_index = problem
        .metadata
        .iter()
        .any(|(k, v)| k == "constraint" && (v == "persons_one_head" || v == "persons.household_id"));
    if at_head_index { head_taken() } else { problem }
}

fn batch_too_large(field: &str) -> Problem {
    Problem::invalid_field(
        ErrorReason::FieldInvalid,
        field,
        format!("at most {MAX_BATCH} per call"),
        "单次最多查询1000条，请分批提交",
    )
}

/// The ids of a resource name made of `collections` each followed by an id (20 hex digits):
/// `ids("persons/ab…/certifications/cd…", &["persons", "certifications"])` is `[ab…, cd…]`.
fn ids<'a>(name: &'a str, collections: &[&str]) -> Option<Vec<&'a str>> {
    let mut parts = name.split('/');
    let mut found = Vec::with_capacity(collections.len());
    for collection in collections {
        if parts.next() != Some(*collection) {
            return None;
        }
        let id = parts
            .next()
            .filter(|id| id.len() == 20 && id.bytes().all(|b| b.is_ascii_hexdigit()))?;
        found.push(id);
    }
    parts.next().is_none().then_some(found)
}

/// The id in `persons/{id}`.
fn person_id<'a>(name: &'a str, field: &str) -> Result<&'a str, Problem> {
    ids(name, &["persons"]).map(|found| found[0]).ok_or_else(|| {
        Problem::invalid_field(
            ErrorReason::FieldInvalid,
            field,
            "must be a person's resource name, persons/{person}",
            "人员编号格式不正确",
        )
    })
}

fn relation_to_wire(value: HouseholdRelation) -> pb::HouseholdRelation {
    match value {
        HouseholdRelation::Head => pb::HouseholdRelation::Head,
        HouseholdRelation::Spouse => pb::HouseholdRelation::Spouse,
        HouseholdRelation::Child => pb::HouseholdRelation::Child,
        HouseholdRelation::Parent => pb::HouseholdRelation::Parent,
        HouseholdRelation::Grandchild => pb::HouseholdRelation::Grandchild,
        HouseholdRelation::Grandparent => pb::HouseholdRelation::Grandparent,
        HouseholdRelation::Sibling => pb::HouseholdRelation::Sibling,
        HouseholdRelation::ChildInLaw => pb::HouseholdRelation::ChildInLaw,
        HouseholdRelation::Other => pb::HouseholdRelation::Other,
    }
}

/// The household and relation a person names: both or neither.
fn household_of_wire(household: &str, relation: i32) -> Result<Option<(String, HouseholdRelation)>, IdentityError> {
    let relation = match pb::HouseholdRelation::try_from(relation) {
        Ok(pb::HouseholdRelation::Unspecified) => None,
        Ok(pb::HouseholdRelation::Head) => Some(HouseholdRelation::Head),
        Ok(pb::HouseholdRelation::Spouse) => Some(HouseholdRelation::Spouse),
        Ok(pb::HouseholdRelation::Child) => Some(HouseholdRelation::Child),
        Ok(pb::HouseholdRelation::Parent) => Some(HouseholdRelation::Parent),
        Ok(pb::HouseholdRelation::Grandchild) => Some(HouseholdRelation::Grandchild),
        Ok(pb::HouseholdRelation::Grandparent) => Some(HouseholdRelation::Grandparent),
        Ok(pb::HouseholdRelation::Sibling) => Some(HouseholdRelation::Sibling),
        Ok(pb::HouseholdRelation::ChildInLaw) => Some(HouseholdRelation::ChildInLaw),
        Ok(pb::HouseholdRelation::Other) => Some(HouseholdRelation::Other),
        Err(_) => return Err(unknown_value("person.household_relation")),
    };
    match (household.trim(), relation) {
        ("", None) => Ok(None),
        ("", Some(_)) => Err(IdentityError::Invalid {
            field: "person.household".into(),
            what: "is required with a household relation".into(),
            what_zh: "填写与户主关系时须同时填写所在户".into(),
        }),
        (_, None) => Err(IdentityError::Invalid {
            field: "person.household_relation".into(),
            what: "is required with a household".into(),
            what_zh: "请填写与户主关系".into(),
        }),
        (name, Some(relation)) => {
            let id = household_id(name).ok_or_else(|| IdentityError::Invalid {
                field: "person.household".into(),
                what: "must be households/{household}".into(),
                what_zh: "户编号格式不正确".into(),
            })?;
            Ok(Some((id.to_string(), relation)))
        }
    }
}

/// The id in `households/{household}`.
fn household_id(name: &str) -> Option<&str> {
    ids(name, &["households"]).map(|found| found[0])
}

/// A reason a clerk or reviewer gives: 1 to 500 characters, no control characters.
fn review_reason(value: &str, field: &str) -> Result<String, Problem> {
    let value = value.trim();
    if value.is_empty() {
        return Err(Problem::required(field, "理由"));
    }
    if value.chars().count() > 500 || value.chars().any(|c| c.is_control() && c != '\n') {
        return Err(Problem::invalid_field(
            ErrorReason::FieldTooLong,
            field,
            "must be 1 to 500 characters without control characters",
            "理由不能超过500个字",
        ));
    }
    Ok(value.to_string())
}

/// The ids in `persons/{person}/citizenIdCorrections/{correction}`.
fn correction_name(name: &str) -> Result<(&str, &str), Problem> {
    let invalid = || {
        Problem::invalid_field(
            ErrorReason::FieldInvalid,
            "name",
            "must be persons/{person}/citizenIdCorrections/{correction}",
            "更正申请编号格式不正确",
        )
    };
    let found = ids(name, &["persons", "citizenIdCorrections"]).ok_or_else(invalid)?;
    Ok((found[0], found[1]))
}

/// The ids in `persons/{person}/certifications/{certification}`.
fn certification_name(name: &str) -> Result<(&str, &str), Problem> {
    let invalid = || {
        Problem::invalid_field(
            ErrorReason::FieldInvalid,
            "name",
            "must be persons/{person}/certifications/{certification}",
            "认定记录编号格式不正确",
        )
    };
    let found = ids(name, &["persons", "certifications"]).ok_or_else(invalid)?;
    Ok((found[0], found[1]))
}

fn category_from_wire(value: i32) -> Result<Category, Problem> {
    match common::PersonCategory::try_from(value) {
        Ok(common::PersonCategory::PovertyAlleviated) => Ok(Category::PovertyAlleviated),
        Ok(common::PersonCategory::MonitoredAtRisk) => Ok(Category::MonitoredAtRisk),
        Ok(common::PersonCategory::RuralLowIncome) => Ok(Category::RuralLowIncome),
        Ok(common::PersonCategory::Relocated) => Ok(Category::Relocated),
        Ok(common::PersonCategory::YellowRiverResettled) => Ok(Category::YellowRiverResettled),
        Ok(common::PersonCategory::EmploymentDifficulty) => Ok(Category::EmploymentDifficulty),
        Ok(common::PersonCategory::Disabled) => Ok(Category::Disabled),
        Ok(common::PersonCategory::Unspecified) => Err(Problem::required("certification.category", "认定类别")),
        Err(_) => Err(unknown_value("certification.category").into()),
    }
}

fn category_to_wire(value: Category) -> common::PersonCategory {
    match value {
        Category::PovertyAlleviated => common::PersonCategory::PovertyAlleviated,
        Category::MonitoredAtRisk => common::PersonCategory::MonitoredAtRisk,
        Category::RuralLowIncome => common::PersonCategory::RuralLowIncome,
        Category::Relocated => common::PersonCategory::Relocated,
        Category::YellowRiverResettled => common::PersonCategory::YellowRiverResettled,
        Category::EmploymentDifficulty => common::PersonCategory::EmploymentDifficulty,
        Category::Disabled => common::PersonCategory::Disabled,
    }
}

fn household_type_from_wire(value: i32) -> Result<HouseholdType, Problem> {
    match common::MonitoredHouseholdType::try_from(value) {
        Ok(common::MonitoredHouseholdType::Unspecified) => Ok(HouseholdType::None),
        Ok(common::MonitoredHouseholdType::UnstableAlleviated) => Ok(HouseholdType::UnstableAlleviated),
        Ok(common::MonitoredHouseholdType::MarginalAtRisk) => Ok(HouseholdType::MarginalAtRisk),
        Ok(common::MonitoredHouseholdType::SuddenHardship) => Ok(HouseholdType::SuddenHardship),
        Err(_) => Err(unknown_value("certification.household_type").into()),
    }
}

fn household_type_to_wire(value: HouseholdType) -> common::MonitoredHouseholdType {
    match value {
        HouseholdType::None => common::MonitoredHouseholdType::Unspecified,
        HouseholdType::UnstableAlleviated => common::MonitoredHouseholdType::UnstableAlleviated,
        HouseholdType::MarginalAtRisk => common::MonitoredHouseholdType::MarginalAtRisk,
        HouseholdType::SuddenHardship => common::MonitoredHouseholdType::SuddenHardship,
    }
}

fn certification_from_wire(value: &common::CategoryCertification) -> Result<NewCertification, Problem> {
    let text_problem = |e: CertificationError| {
        Problem::invalid_field(ErrorReason::FieldInvalid, e.field(), e.to_string(), e.message_zh())
    };
    let certification = NewCertification {
        category: category_from_wire(value.category)?,
        household_type: household_type_from_wire(value.household_type)?,
        certifying_body: short_text(&value.certifying_body, "certification.certifying_body").map_err(text_problem)?,
        document_reference: short_text(&value.document_reference, "certification.document_reference")
            .map_err(text_problem)?,
        valid_from: wire::date("certification.valid_from", value.valid_from.as_ref())?,
        valid_to: wire::optional_date("certification.valid_to", value.valid_to.as_ref())?,
    };
    certification.check().map_err(text_problem)?;
    Ok(certification)
}

fn certification_to_wire(value: &StoredCertification) -> pb::Certification {
    pb::Certification {
        name: value.resource(),
        certification: Some(common::CategoryCertification {
            category: category_to_wire(value.category) as i32,
            household_type: household_type_to_wire(value.household_type) as i32,
            certifying_body: value.certifying_body.clone(),
            document_reference: value.document_reference.clone(),
            valid_from: Some(wire::date_to_wire(value.valid_from)),
            valid_to: value.valid_to.map(wire::date_to_wire),
            annulled: value.annulled,
        }),
        revoke_time: value.revoked.map(wire::timestamp_to_wire),
        annul_time: value.annulled_at.map(wire::timestamp_to_wire),
        certify_subject: value.certify_subject.clone(),
    }
}

fn labor_capacity_from_wire(value: i32) -> Result<LaborCapacity, IdentityError> {
    match common::LaborCapacity::try_from(value) {
        Ok(common::LaborCapacity::Unspecified) => Ok(LaborCapacity::Unassessed),
        Ok(common::LaborCapacity::Full) => Ok(LaborCapacity::Full),
        Ok(common::LaborCapacity::Weak) => Ok(LaborCapacity::Weak),
        Ok(common::LaborCapacity::Half) => Ok(LaborCapacity::Half),
        Ok(common::LaborCapacity::None) => Ok(LaborCapacity::None),
        Err(_) => Err(unknown_value("person.labor_capacity")),
    }
}

fn labor_capacity_to_wire(value: LaborCapacity) -> common::LaborCapacity {
    match value {
        LaborCapacity::Unassessed => common::LaborCapacity::Unspecified,
        LaborCapacity::Full => common::LaborCapacity::Full,
        LaborCapacity::Weak => common::LaborCapacity::Weak,
        LaborCapacity::Half => common::LaborCapacity::Half,
        LaborCapacity::None => common::LaborCapacity::None,
    }
}

fn track_from_wire(value: i32) -> Result<Option<RetirementTrack>, IdentityError> {
    match pb::RetirementTrack::try_from(value) {
        Ok(pb::RetirementTrack::Unspecified) => Ok(None),
        Ok(pb::RetirementTrack::Man) => Ok(Some(RetirementTrack::Man)),
        Ok(pb::RetirementTrack::Woman55) => Ok(Some(RetirementTrack::Woman55)),
        Ok(pb::RetirementTrack::Woman50) => Ok(Some(RetirementTrack::Woman50)),
        Err(_) => Err(unknown_value("person.retirement_track")),
    }
}

fn track_to_wire(value: RetirementTrack) -> pb::RetirementTrack {
    match value {
        RetirementTrack::Man => pb::RetirementTrack::Man,
        RetirementTrack::Woman55 => pb::RetirementTrack::Woman55,
        RetirementTrack::Woman50 => pb::RetirementTrack::Woman50,
    }
}

fn unknown_value(field: &str) -> IdentityError {
    IdentityError::Invalid {
        field: field.to_string(),
        what: "is not one of the values the contract lists".into(),
        what_zh: "选项取值无效".into(),
    }
}

/// A feed event as watchers read it: what changed, never personal data.
fn change_to_wire(event: &FeedEvent) -> pb::PersonChange {
    let kind = match ChangeKind::parse(&event.kind) {
        Some(ChangeKind::Created) => pb::ChangeKind::Created,
        Some(ChangeKind::Updated) => pb::ChangeKind::Updated,
        Some(ChangeKind::CitizenIdCorrected) => pb::ChangeKind::CitizenIdCorrected,
        Some(ChangeKind::HouseholdChanged) => pb::ChangeKind::HouseholdChanged,
        Some(ChangeKind::ResidenceMoved) => pb::ChangeKind::ResidenceMoved,
        Some(ChangeKind::RegistrationMoved) => pb::ChangeKind::RegistrationMoved,
        Some(ChangeKind::CategoryCertified) => pb::ChangeKind::CategoryCertified,
        Some(ChangeKind::CategoryRevoked) => pb::ChangeKind::CategoryRevoked,
        Some(ChangeKind::CategoryAnnulled) => pb::ChangeKind::CategoryAnnulled,
        Some(ChangeKind::CategoryDatesChanged) => pb::ChangeKind::CategoryDatesChanged,
        Some(ChangeKind::EmploymentChanged) => pb::ChangeKind::EmploymentChanged,
        Some(ChangeKind::Died) => pb::ChangeKind::Died,
        Some(ChangeKind::MovedAway) => pb::ChangeKind::MovedAway,
        None => pb::ChangeKind::Unspecified,
    };
    let detail: serde_json::Value = serde_json::from_str(&event.detail).unwrap_or_default();
    let changed_fields = detail
        .get("changed")
        .and_then(|v| v.as_array())
        .map(|fields| fields.iter().filter_map(|f| f.as_str().map(str::to_string)).collect())
        .unwrap_or_default();
    let category = detail
        .get("category")
        .and_then(|v| v.as_str())
        .and_then(|c| common::PersonCategory::from_str_name(&format!("PERSON_CATEGORY_{}", c.to_uppercase())))
        .map_or(0, |c| c as i32);
    pb::PersonChange {
        cursor: event.position.encode(),
        person: event.resource.clone(),
        kind: kind as i32,
        effective_date: event.effective_date.map(wire::date_to_wire),
        category,
        changed_fields,
        record_time: Some(wire::timestamp_to_wire(event.recorded)),
    }
}

/// The region prefix a listing covers: the caller's scope and the requested prefix together
/// (the longer one); None when they do not overlap, so nothing is visible.
fn scoped_prefix(caller: &Principal, requested: &str, field: &str) -> Result<Option<String>, Problem> {
    let requested = requested.trim();
    if !requested.is_empty() && RegionScope::parse(requested).is_none() {
        return Err(Problem::invalid_field(
            ErrorReason::FieldInvalid,
            field,
            "must be a 2, 4, 6, 9 or 12 digit division code",
            "地区代码应为2、4、6、9或12位数字",
        ));
    }
    let wanted = RegionScope::parse(requested).unwrap_or(RegionScope::Country);
    Ok(match caller.scope.intersect(&wanted) {
        RegionScope::Country => Some(String::new()),
        RegionScope::Prefix(prefix) => Some(prefix),
        RegionScope::Nothing => None,
    })
}

/// The feed events of an update, one per kind of change, so followers react to what concerns
/// them: moves, household, death and move-away get their own kinds, the rest is "updated" with
/// the field paths.
async fn append_update_events(
    unit: &mut write::Unit,
    current: &StoredPerson,
    changes: &PersonChanges,
    changed_fields: &[String],
    effective: Date,
) -> Result<(), Problem> {
    let regions = [
        current.registered_region.as_str(),
        current.residence_region.as_str(),
        changes.registered_region.as_str(),
        changes.residence_region.as_str(),
    ];
    let mut events: Vec<(ChangeKind, Date, String)> = Vec::new();
    if changes.registered_region != current.registered_region {
        events.push((ChangeKind::RegistrationMoved, effective, "{}".into()));
    }
    if changes.residence_region != current.residence_region {
        events.push((ChangeKind::ResidenceMoved, effective, "{}".into()));
    }
    if changes.household != current.household_id.clone().zip(current.household_relation) {
        events.push((ChangeKind::HouseholdChanged, effective, "{}".into()));
    }
    if let Some(day) = changes.death_date.filter(|_| current.death_date != changes.death_date) {
        events.push((ChangeKind::Died, day, "{}".into()));
    }
    if let Some(day) = changes
        .moved_away_date
        .filter(|_| current.moved_away_date != changes.moved_away_date)
    {
        events.push((ChangeKind::MovedAway, day, "{}".into()));
    }
    let others: Vec<&String> = changed_fields
        .iter()
        .filter(|f| {
            !matches!(
                f.as_str(),
                "registered_region" | "residence_region" | "death_date" | "moved_away_date"
            )
        })
        .collect();
    if !others.is_empty() {
        events.push((
            ChangeKind::Updated,
            effective,
            serde_json::json!({ "changed": others }).to_string(),
        ));
    }
    let resource = current.resource();
    for (kind, day, detail) in &events {
        let event = NewEvent {
            kind: kind.as_str(),
            resource: &resource,
            regions: &regions,
            effective_date: Some(*day),
            detail,
        };
        unit.publish(&event).await?;
    }
    Ok(())
}

type BoxStream<T> = Pin<Box<dyn Stream<Item = Result<T, Status>> + Send>>;

#[tonic::async_trait]
impl IdentityService for Identity {
    async fn create_person(
        &self,
        request: Request<pb::CreatePersonRequest>,
    ) -> Result<Response<pb::CreatePersonResponse>, Status> {
        let caller = caller(&request)?;
        let person = self.create_person_inner(&caller, request.into_inner()).await?;
        Ok(Response::new(pb::CreatePersonResponse { person: Some(person) }))
    }

    async fn get_person(
        &self,
        request: Request<pb::GetPersonRequest>,
    ) -> Result<Response<pb::GetPersonResponse>, Status> {
        let caller = caller(&request)?;
        let person = self.get_person_inner(&caller, request.into_inner()).await?;
        Ok(Response::new(pb::GetPersonResponse { person: Some(person) }))
    }

    async fn batch_get_persons(
        &self,
        request: Request<pb::BatchGetPersonsRequest>,
    ) -> Result<Response<pb::BatchGetPersonsResponse>, Status> {
        let caller = caller(&request)?;
        let results = self.batch_get_persons_inner(&caller, request.into_inner()).await?;
        Ok(Response::new(pb::BatchGetPersonsResponse { results }))
    }

    async fn lookup_person(
        &self,
        request: Request<pb::LookupPersonRequest>,
    ) -> Result<Response<pb::LookupPersonResponse>, Status> {
        let caller = caller(&request)?;
        Ok(Response::new(
            self.lookup_person_inner(&caller, request.into_inner()).await?,
        ))
    }

    async fn batch_lookup_persons(
        &self,
        request: Request<pb::BatchLookupPersonsRequest>,
    ) -> Result<Response<pb::BatchLookupPersonsResponse>, Status> {
        let caller = caller(&request)?;
        let results = self.batch_lookup_persons_inner(&caller, request.into_inner()).await?;
        Ok(Response::new(pb::BatchLookupPersonsResponse { results }))
    }

    async fn list_persons(
        &self,
        request: Request<pb::ListPersonsRequest>,
    ) -> Result<Response<pb::ListPersonsResponse>, Status> {
        let caller = caller(&request)?;
        Ok(Response::new(
            self.list_persons_inner(&caller, request.into_inner()).await?,
        ))
    }

    async fn update_person(
        &self,
        request: Request<pb::UpdatePersonRequest>,
    ) -> Result<Response<pb::UpdatePersonResponse>, Status> {
        let caller = caller(&request)?;
        let person = self.update_person_inner(&caller, request.into_inner()).await?;
        Ok(Response::new(pb::UpdatePersonResponse { person: Some(person) }))
    }

    async fn correct_citizen_id(
        &self,
        request: Request<pb::CorrectCitizenIdRequest>,
    ) -> Result<Response<pb::CorrectCitizenIdResponse>, Status> {
        let caller = caller(&request)?;
        let correction = self.correct_citizen_id_inner(&caller, request.into_inner()).await?;
        Ok(Response::new(pb::CorrectCitizenIdResponse {
            correction: Some(correction),
        }))
    }

    async fn approve_citizen_id_correction(
        &self,
        request: Request<pb::ApproveCitizenIdCorrectionRequest>,
    ) -> Result<Response<pb::ApproveCitizenIdCorrectionResponse>, Status> {
        let caller = caller(&request)?;
        let correction = self.approve_correction_inner(&caller, request.into_inner()).await?;
        Ok(Response::new(pb::ApproveCitizenIdCorrectionResponse {
            correction: Some(correction),
        }))
    }

    type ImportPersonsStream = BoxStream<pb::ImportPersonsResponse>;

    async fn import_persons(
        &self,
        request: Request<tonic::Streaming<pb::ImportPersonsRequest>>,
    ) -> Result<Response<Self::ImportPersonsStream>, Status> {
        let caller = caller(&request)?;
        let stream = self.import_persons_inner(caller, request.into_inner()).await?;
        Ok(Response::new(stream))
    }

    async fn create_household(
        &self,
        request: Request<pb::CreateHouseholdRequest>,
    ) -> Result<Response<pb::CreateHouseholdResponse>, Status> {
        let caller = caller(&request)?;
        let household = self.create_household_inner(&caller, request.into_inner()).await?;
        Ok(Response::new(pb::CreateHouseholdResponse {
            household: Some(household),
        }))
    }

    async fn get_household(
        &self,
        request: Request<pb::GetHouseholdRequest>,
    ) -> Result<Response<pb::GetHouseholdResponse>, Status> {
        let caller = caller(&request)?;
        let id = household_id(&request.get_ref().name)
            .ok_or_else(|| {
                Status::from(Problem::invalid_field(
                    ErrorReason::FieldInvalid,
                    "name",
                    "must be households/{household}",
                    "户编号格式不正确",
                ))
            })?
            .to_string();
        let household = self.household_to_wire(&caller, &id).await?;
        Ok(Response::new(pb::GetHouseholdResponse {
            household: Some(household),
        }))
    }

    async fn certify_category(
        &self,
        request: Request<pb::CertifyCategoryRequest>,
    ) -> Result<Response<pb::CertifyCategoryResponse>, Status> {
        let caller = caller(&request)?;
        let certification = self.certify_category_inner(&caller, request.into_inner()).await?;
        Ok(Response::new(pb::CertifyCategoryResponse {
            certification: Some(certification),
        }))
    }

    async fn revoke_category(
        &self,
        request: Request<pb::RevokeCategoryRequest>,
    ) -> Result<Response<pb::RevokeCategoryResponse>, Status> {
        let caller = caller(&request)?;
        let certification = self.revoke_category_inner(&caller, request.into_inner()).await?;
        Ok(Response::new(pb::RevokeCategoryResponse {
            certification: Some(certification),
        }))
    }

    async fn list_pending_certifications(
        &self,
        request: Request<pb::ListPendingCertificationsRequest>,
    ) -> Result<Response<pb::ListPendingCertificationsResponse>, Status> {
        let caller = caller(&request)?;
        Ok(Response::new(
            self.list_pending_inner(&caller, request.into_inner()).await?,
        ))
    }

    async fn confirm_certifications(
        &self,
        request: Request<pb::ConfirmCertificationsRequest>,
    ) -> Result<Response<pb::ConfirmCertificationsResponse>, Status> {
        let caller = caller(&request)?;
        Ok(Response::new(
            self.confirm_certifications_inner(&caller, request.into_inner()).await?,
        ))
    }

    async fn record_employment(
        &self,
        request: Request<pb::RecordEmploymentRequest>,
    ) -> Result<Response<pb::RecordEmploymentResponse>, Status> {
        let caller = caller(&request)?;
        Ok(Response::new(
            self.record_employment_inner(&caller, request.into_inner()).await?,
        ))
    }

    async fn record_income(
        &self,
        request: Request<pb::RecordIncomeRequest>,
    ) -> Result<Response<pb::RecordIncomeResponse>, Status> {
        let caller = caller(&request)?;
        Ok(Response::new(
            self.record_income_inner(&caller, request.into_inner()).await?,
        ))
    }

    async fn list_alerts(
        &self,
        request: Request<pb::ListAlertsRequest>,
    ) -> Result<Response<pb::ListAlertsResponse>, Status> {
        let caller = caller(&request)?;
        Ok(Response::new(
            self.list_alerts_inner(&caller, request.into_inner()).await?,
        ))
    }

    async fn acknowledge_alert(
        &self,
        request: Request<pb::AcknowledgeAlertRequest>,
    ) -> Result<Response<pb::AcknowledgeAlertResponse>, Status> {
        let caller = caller(&request)?;
        let alert = self.acknowledge_alert_inner(&caller, request.into_inner()).await?;
        Ok(Response::new(pb::AcknowledgeAlertResponse { alert: Some(alert) }))
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
        // A watcher sees a change when the person was in its scope before or after it.
        let scope = caller.scope.clone();
        let visible: Arc<dyn Fn(&FeedEvent) -> bool + Send + Sync> =
            Arc::new(move |event: &FeedEvent| event.regions.iter().any(|region| scope.contains(region)));
        let feed = outbox::watch(self.store.db.clone(), start, visible, self.feed, self.shutdown.clone()).await?;
        let stream = tokio_stream::StreamExt::map(feed, |item| match item {
            Ok(FeedItem::Event(event)) => Ok(pb::WatchPersonChangesResponse {
                item: Some(pb::watch_person_changes_response::Item::Change(change_to_wire(&event))),
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
        Ok(Response::new(
            self.get_monitoring_stats_inner(&caller, request.into_inner()).await?,
        ))
    }

    async fn list_parameters(
        &self,
        request: Request<pb::ListParametersRequest>,
    ) -> Result<Response<pb::ListParametersResponse>, Status> {
        let request = request.into_inner();
        let (parameters, next_page_token) = service_rpc::list_parameters(
            &self.parameters,
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
            &self.parameters,
            &caller,
            &method("UpdateParameter"),
            request.parameter.as_ref(),
            request.update_mask.as_ref(),
            request.allow_missing,
            self.clock.now(),
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
        let request = request.into_inner();
        let (audit_events, next_page_token) = service_rpc::list_audit_events(
            &self.store.db,
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

#[cfg(test)]
mod tests {
    use super::ids;

    const A: &str = "0123456789abcdef0123";
    const B: &str = "fedcba9876543210fedc";

    #[test]
    fn resource_names_give_their_ids_and_nothing_else_passes() {
        assert_eq!(ids(&format!("persons/{A}"), &["persons"]), Some(vec![A]));
        assert_eq!(
            ids(
                &format!("persons/{A}/certifications/{B}"),
                &["persons", "certifications"]
            ),
            Some(vec![A, B])
        );
        assert_eq!(
            ids(&format!("households/{A}"), &["persons"]),
            None,
            "another collection"
        );
        assert_eq!(
            ids(&format!("persons/{A}/certifications/{B}"), &["persons"]),
            None,
            "trailing segments"
        );
        assert_eq!(ids("persons/not-hex-not-twenty", &["persons"]), None);
        assert_eq!(
            ids(&format!("persons/{A}/certifications"), &["persons", "certifications"]),
            None
        );
    }
}
