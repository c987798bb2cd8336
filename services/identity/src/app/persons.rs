//! Registering, reading, finding and changing persons: the use cases behind CreatePerson,
//! GetPerson, BatchGetPersons, LookupPerson, BatchLookupPersons, ListPersons and UpdatePerson.

use std::collections::HashMap;
use std::time::Instant;

use bangfu_platform::audit::{self, AuditEntry, Outcome};
use bangfu_platform::auth::{Principal, RegionScope};
use bangfu_platform::error::{ErrorReason, Problem};
use bangfu_platform::idempotency::RequestKey;
use bangfu_platform::outbox::NewEvent;
use bangfu_platform::paging;
use bangfu_platform::pii::CitizenId;
use bangfu_platform::wire::Disclosure;
use bangfu_platform::write::{self, Begun};
use time::Date;

use super::households::household_head_taken;
use super::{Identity, method, visible_prefix};
use crate::domain::categories::Category;
use crate::domain::monitoring::EmploymentStatus;
use crate::domain::{
    ChangeKind, HouseholdRelation, IdentityError, LaborCapacity, NewPerson, PersonName, RetirementTrack, resolve_track,
    retirement_month,
};
use crate::store::{Facts, ListFilter, PersonChanges, Store, StoredPerson};

/// The first history entry of a registered person: what was known at registration stands for
/// the time before it, so a later change may be dated before the registration day.
pub(super) const HISTORY_START: Date = time::macros::date!(1900 - 01 - 01);

/// A person as a use case answers it: the stored row, its facts for the period asked, and
/// the personal data in clear only when the caller asked for it and may see it.
pub struct PersonView {
    pub person: StoredPerson,
    pub facts: Facts,
    /// Citizen ID, name and phone in clear; None when the answer is masked.
    pub revealed: Option<(String, String, Option<String>)>,
}

/// What a lookup by citizen ID found, in the caller's scope.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct LookupAnswer {
    pub person_id: Option<String>,
    /// Whether the given name matched; None when no name was given or nobody was found.
    pub name_match: Option<bool>,
}

impl LookupAnswer {
    /// The person's resource name, empty when nobody was found (as the audit row names it).
    pub fn resource(&self) -> String {
        self.person_id
            .as_ref()
            .map(|id| format!("persons/{id}"))
            .unwrap_or_default()
    }
}

/// One page of persons as ListPersons asks for it.
pub struct PersonListing<'a> {
    pub region: RegionScope,
    pub category: Option<Category>,
    pub employment_status: Option<EmploymentStatus>,
    pub page_size: i32,
    pub page_token: &'a str,
}

/// An UpdatePerson request in domain values: the revision it was read at and the fields it
/// changes, in the order of its update mask.
pub struct PersonUpdate {
    pub revision: i64,
    /// The day the change takes effect; today when not given.
    pub effective: Option<Date>,
    /// Each change with the top-level field it names, for the feed's "changed" list.
    pub changes: Vec<(String, FieldChange)>,
}

/// One field an update changes.
pub enum FieldChange {
    Name(PersonName),
    Phone(Option<String>),
    RegisteredRegion(String),
    ResidenceRegion(String),
    LaborCapacity(LaborCapacity),
    Skills(Vec<String>),
    /// The track asked for; None takes the region's default for the person's sex.
    RetirementTrack(Option<RetirementTrack>),
    DeathDate(Option<Date>),
    MovedAwayDate(Option<Date>),
    Household(Option<(String, HouseholdRelation)>),
}

/// ABORTED: the person changed since the caller read it.
pub fn stale_person() -> Problem {
    Problem::new(
        tonic::Code::Aborted,
        ErrorReason::EtagMismatch,
        "the person changed since it was read; read it again and reapply the change",
        "该人员信息已被他人修改，请刷新后重新修改",
    )
}

impl Identity {
    /// The person for `caller`, or NOT_FOUND when missing or outside the caller's scope.
    pub(super) async fn visible_person(
        &self,
        caller: &Principal,
        method: &str,
        id: &str,
    ) -> Result<StoredPerson, Problem> {
        let mut connection = self.store.db.acquire().await.map_err(Problem::from)?;
        self.visible_person_on(&mut connection, caller, method, id).await
    }

    /// `visible_person` on a connection the caller already holds.
    async fn visible_person_on(
        &self,
        connection: &mut sqlx::AnyConnection,
        caller: &Principal,
        method: &str,
        id: &str,
    ) -> Result<StoredPerson, Problem> {
        let resource = format!("persons/{id}");
        let person = self
            .store
            .get(connection, id)
            .await?
            .ok_or_else(|| Problem::not_found(&resource))?;
        self.ensure_sees(
            caller,
            method,
            &resource,
            [person.registered_region.as_str(), person.residence_region.as_str()],
        )?;
        Ok(person)
    }

    /// One person, masked, with its facts for the period `first..=last`.
    async fn masked_view(&self, person: StoredPerson, (first, last): (Date, Date)) -> Result<PersonView, Problem> {
        let mut connection = self.store.db.acquire().await.map_err(Problem::from)?;
        let mut facts = self.store.facts(&mut connection, &[&person], first, last).await?;
        let facts = facts.remove(&person.id).ok_or_else(Problem::internal)?;
        Ok(PersonView {
            person,
            facts,
            revealed: None,
        })
    }

    /// A person with its facts, masked or revealed as `disclosure` says.
    fn view(&self, person: StoredPerson, facts: Facts, disclosure: &Disclosure) -> Result<PersonView, Problem> {
        let revealed = match disclosure {
            Disclosure::Masked => None,
            Disclosure::Unmasked(_) => Some(self.store.reveal(&person)?),
        };
        Ok(PersonView {
            person,
            facts,
            revealed,
        })
    }

    pub async fn create_person(
        &self,
        caller: &Principal,
        key: Option<RequestKey>,
        new: NewPerson,
    ) -> Result<PersonView, Problem> {
        let method = method("CreatePerson");
        let today = self.clock.today();
        let now = self.clock.now();
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
                let person = self.visible_person(caller, &method, id).await?;
                return self.masked_view(person, (today, today)).await;
            }
            Begun::Fresh(unit) => unit,
        };
        if let Some(household) = &new.household {
            self.ensure_household_fits(unit.tx(), caller, &method, household, None)
                .await?;
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
        unit.commit(AuditEntry::by(caller, &method, resource, now).in_region(&new.registered_region))
            .await?;
        let person = self.visible_person(caller, &method, &id).await?;
        self.masked_view(person, (today, today)).await
    }

    pub async fn get_person(
        &self,
        caller: &Principal,
        id: &str,
        period: (Date, Date),
        disclosure: Disclosure,
    ) -> Result<PersonView, Problem> {
        // One connection and two queries for the whole read: other services make it most.
        let mut connection = self.store.db.acquire().await.map_err(Problem::from)?;
        let resource = format!("persons/{id}");
        let (person, facts) = self
            .store
            .get_as_of(
                &mut connection,
                id,
                period,
                matches!(disclosure, Disclosure::Unmasked(_)),
            )
            .await?
            .ok_or_else(|| Problem::not_found(&resource))?;
        drop(connection);
        self.ensure_sees(
            caller,
            &method("GetPerson"),
            &resource,
            [person.registered_region.as_str(), person.residence_region.as_str()],
        )?;
        let view = self.view(person, facts, &disclosure)?;
        if let Disclosure::Unmasked(purpose) = &disclosure {
            let read = AuditEntry::by(caller, &method("GetPerson"), view.person.resource(), self.clock.now())
                .in_region(&view.person.registered_region)
                .with_purpose(&purpose.code, &purpose.reference);
            audit::append_now(&self.store.db, &read).await.map_err(Problem::from)?;
        }
        Ok(view)
    }

    /// The persons of `ids` the caller sees, by id; the others are missing from the answer.
    pub async fn batch_get_persons(
        &self,
        caller: &Principal,
        ids: &[&str],
        period: (Date, Date),
        disclosure: Disclosure,
    ) -> Result<HashMap<String, PersonView>, Problem> {
        let mut unique = ids.to_vec();
        unique.sort_unstable();
        unique.dedup();
        let mut connection = self.store.db.acquire().await.map_err(Problem::from)?;
        let found = self
            .store
            .persons_as_of(
                &mut connection,
                &unique,
                period,
                matches!(disclosure, Disclosure::Unmasked(_)),
            )
            .await?;
        drop(connection);
        let mut answers: HashMap<String, PersonView> = HashMap::with_capacity(found.len());
        for (person, facts) in found {
            if caller.scope.contains(&person.registered_region) || caller.scope.contains(&person.residence_region) {
                answers.insert(person.id.clone(), self.view(person, facts, &disclosure)?);
            }
        }
        if let Disclosure::Unmasked(purpose) = &disclosure {
            // One audit row for each person read in clear, in that person's region.
            let now = self.clock.now();
            let method = method("BatchGetPersons");
            let reads: Vec<AuditEntry> = answers
                .values()
                .map(|view| {
                    AuditEntry::by(caller, &method, view.person.resource(), now)
                        .in_region(&view.person.registered_region)
                        .with_purpose(&purpose.code, &purpose.reference)
                })
                .collect();
            audit::append_many_now(&self.store.db, &reads)
                .await
                .map_err(Problem::from)?;
        }
        Ok(answers)
    }

    /// Looks up each `(citizen ID, name)` pair as given; the ID is parsed after the lookups
    /// are counted, so a malformed one counts against the limit like any other.
    pub async fn batch_lookup_persons(
        &self,
        caller: &Principal,
        lookups: &[(&str, &str)],
    ) -> Result<Vec<LookupAnswer>, Problem> {
        let today = self.clock.today();
        self.check_lookup_rate(caller, today, lookups.len()).await?;
        let mut parsed = Vec::with_capacity(lookups.len());
        for (i, (citizen_id, display_name)) in lookups.iter().enumerate() {
            let citizen_id = CitizenId::parse(citizen_id, today).map_err(|source| IdentityError::CitizenId {
                field: format!("lookups[{i}].citizen_id"),
                source,
            })?;
            let name = match display_name.trim() {
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
        let mut connection = self.store.db.acquire().await.map_err(Problem::from)?;
        let holders = self.store.holders_by_index(&mut connection, &all_indexes).await?;
        drop(connection);
        let by_index: HashMap<&str, _> = holders.iter().map(|h| (h.citizen_id_index.as_str(), h)).collect();
        let answers: Vec<LookupAnswer> = parsed
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
                    None => LookupAnswer::default(),
                    Some(h) => LookupAnswer {
                        person_id: Some(h.holder.id.clone()),
                        name_match: name_key.as_ref().map(|key| *key == h.holder.name_key),
                    },
                }
            })
            .collect();
        // One row for the batch, then one naming each person the lookups revealed.
        let now = self.clock.now();
        let method = method("BatchLookupPersons");
        let found: Vec<&crate::store::IndexedHolder> = parsed
            .iter()
            .filter_map(|(indexes, _)| indexes.iter().find_map(|index| by_index.get(index.as_str())))
            .copied()
            .filter(|h| {
                caller.scope.contains(&h.holder.registered_region) || caller.scope.contains(&h.holder.residence_region)
            })
            .collect();
        let mut rows = vec![AuditEntry::by(
            caller,
            &method,
            format!("persons ({} looked up, {} found)", answers.len(), found.len()),
            now,
        )];
        rows.extend(found.iter().map(|h| {
            AuditEntry::by(caller, &method, format!("persons/{}", h.holder.id), now)
                .in_region(&h.holder.registered_region)
        }));
        audit::append_many_now(&self.store.db, &rows)
            .await
            .map_err(Problem::from)?;
        Ok(answers)
    }

    /// Counts `lookups` lookups by citizen ID against the subject's per-minute limit (a
    /// parameter; services acting on their own have their own, for payee checks). Each ID
    /// counts: a batch is as many lookups as it holds.
    pub(super) async fn check_lookup_rate(
        &self,
        caller: &Principal,
        today: Date,
        lookups: usize,
    ) -> Result<(), Problem> {
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

    /// Looks up one citizen ID as given; like the batch, it counts before it parses.
    pub async fn lookup_person(
        &self,
        caller: &Principal,
        citizen_id: &str,
        display_name: &str,
    ) -> Result<LookupAnswer, Problem> {
        let today = self.clock.today();
        self.check_lookup_rate(caller, today, 1).await?;
        let citizen_id = CitizenId::parse(citizen_id, today).map_err(|source| IdentityError::CitizenId {
            field: "citizen_id".into(),
            source,
        })?;
        let name = match display_name.trim() {
            "" => None,
            given => Some(PersonName::parse(given).map_err(|source| IdentityError::Name {
                field: "display_name".into(),
                source,
            })?),
        };
        let mut connection = self.store.db.acquire().await.map_err(Problem::from)?;
        let holder = self.store.holder(&mut connection, &citizen_id).await?;
        drop(connection);
        let visible = holder
            .filter(|h| caller.scope.contains(&h.registered_region) || caller.scope.contains(&h.residence_region));
        let mut answer = LookupAnswer::default();
        let visible_region = visible.as_ref().map(|h| h.registered_region.clone());
        if let Some(holder) = visible {
            answer.person_id = Some(holder.id.clone());
            answer.name_match = name
                .as_ref()
                .map(|name| self.store.name_key(name.as_str()) == holder.name_key);
        }
        let mut looked_up = AuditEntry::by(caller, &method("LookupPerson"), answer.resource(), self.clock.now());
        if let Some(holder) = &visible_region {
            looked_up = looked_up.in_region(holder);
        }
        audit::append_now(&self.store.db, &looked_up)
            .await
            .map_err(Problem::from)?;
        Ok(answer)
    }

    /// A page of the persons registered in the caller's scope, masked, and the next page's token.
    pub async fn list_persons(
        &self,
        caller: &Principal,
        listing: PersonListing<'_>,
    ) -> Result<(Vec<PersonView>, String), Problem> {
        let filter = ListFilter {
            category: listing.category,
            employment_status: listing.employment_status,
            day: self.clock.today(),
        };
        let Some(prefix) = visible_prefix(caller, &listing.region) else {
            return Ok((Vec::new(), String::new()));
        };
        let size = paging::page_size(listing.page_size, 100, 1000)?;
        // A token carries its query's filters: one from another query is refused, not
        // silently continued with different rows.
        let fingerprint = paging::fingerprint(&[
            &prefix,
            listing.category.map(Category::as_str).unwrap_or(""),
            listing.employment_status.map(EmploymentStatus::as_str).unwrap_or(""),
        ]);
        let cursor = paging::decode_token(listing.page_token, &fingerprint)?;
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
        let mut connection = self.store.db.acquire().await.map_err(Problem::from)?;
        let mut persons = self
            .store
            .list_registered(&mut connection, &prefix, cursor, &filter, size + 1)
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
        let mut facts = self.store.facts(&mut connection, &refs, today, today).await?;
        drop(connection);
        let persons = persons
            .into_iter()
            .map(|person| {
                let facts = facts.remove(&person.id).ok_or_else(Problem::internal)?;
                Ok(PersonView {
                    person,
                    facts,
                    revealed: None,
                })
            })
            .collect::<Result<Vec<_>, Problem>>()?;
        Ok((persons, next_page_token))
    }

    pub async fn update_person(
        &self,
        caller: &Principal,
        id: &str,
        update: PersonUpdate,
    ) -> Result<PersonView, Problem> {
        let method = method("UpdatePerson");
        let today = self.clock.today();
        let effective = update.effective.unwrap_or(today);
        let current = self.visible_person(caller, &method, id).await?;
        if current.revision != update.revision {
            return Err(stale_person());
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
        for (field, change) in update.changes {
            match change {
                FieldChange::Name(name) => changes.name = Some(name.as_str().to_string()),
                FieldChange::Phone(phone) => changes.phone = Some(phone),
                FieldChange::RegisteredRegion(code) => changes.registered_region = code,
                FieldChange::ResidenceRegion(code) => changes.residence_region = code,
                FieldChange::LaborCapacity(capacity) => changes.labor_capacity = capacity,
                FieldChange::Skills(skills) => changes.skills = skills,
                FieldChange::RetirementTrack(track) => {
                    let default_female_age = self
                        .parameters
                        .lookup(
                            "identity.default_female_retirement_age",
                            &current.registered_region,
                            today,
                        )
                        .await?
                        .unwrap_or(55);
                    changes.retirement_track = resolve_track(track, current.sex, default_female_age);
                    changes.retirement_month = retirement_month(current.birth_date, changes.retirement_track);
                }
                FieldChange::DeathDate(day) => changes.death_date = day,
                FieldChange::MovedAwayDate(day) => changes.moved_away_date = day,
                FieldChange::Household(household) => changes.household = household,
            }
            changed_fields.push(field);
        }
        let now = self.clock.now();
        // An etag makes the update safe to retry: a replay finds the revision moved on.
        let mut unit = write::begin_unkeyed(&self.store.db, now).await?;
        if let Some(household) = &changes.household
            && current.household_id.clone().zip(current.household_relation).as_ref() != Some(household)
        {
            self.ensure_household_fits(unit.tx(), caller, &method, household, Some(&current.id))
                .await?;
        }
        if !self
            .store
            .update(unit.tx(), &current, update.revision, &changes, effective, now)
            .await
            .map_err(household_head_taken)?
        {
            return Err(stale_person());
        }
        append_update_events(&mut unit, &current, &changes, &changed_fields, effective).await?;
        unit.commit(AuditEntry::by(caller, &method, current.resource(), now).in_region(&current.registered_region))
            .await?;
        // The caller may have moved the person out of its own scope: the answer is still its own.
        let mut connection = self.store.db.acquire().await.map_err(Problem::from)?;
        let updated = self
            .store
            .get(&mut connection, &current.id)
            .await?
            .ok_or_else(Problem::internal)?;
        drop(connection);
        self.masked_view(updated, (today, today)).await
    }
}

/// The feed events of an update, one per kind of change, so followers react to what concerns
/// them: moves, household, death and move-away get their own kinds, the rest is "updated" with
/// the field paths.
pub(super) async fn append_update_events(
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
