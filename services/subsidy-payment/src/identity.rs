//! What subsidy payment reads from identity, and only that: a person's facts for a period, in
//! the masked view (a decision never needs a clear citizen ID). The identity contract's types
//! stop here; the application sees [`PersonFacts`].

use bangfu_platform::error::Problem;
use bangfu_platform::peers::{CallContext, Peer, Retry};
use bangfu_platform::wire::date_to_wire;
use bangfu_proto::common::v1 as common;
use bangfu_proto::identity::v1 as pb;
use bangfu_proto::identity::v1::identity_service_client::IdentityServiceClient;
use time::Date;

use crate::domain::{CategoryAsOf, Period, day_text};

/// One certification as identity gave it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CategoryHeld {
    /// The category's name without prefix ("POVERTY_ALLEVIATED").
    pub category: String,
    pub valid_from: Option<Date>,
    pub valid_to: Option<Date>,
    pub annulled: bool,
}

/// A person's facts for a claim's period, masked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PersonFacts {
    pub person_id: String,
    /// Masked, as identity gives it ("张*").
    pub display_name: String,
    pub registered_region: String,
    pub residence_region: String,
    pub employment_status: String,
    pub labor_capacity: String,
    /// Year and month only, as the masked view gives it.
    pub birth_year_month: Option<(i32, u8)>,
    pub retirement_month: Option<String>,
    pub death_date: Option<Date>,
    pub moved_away_date: Option<Date>,
    pub certifications: Vec<CategoryHeld>,
}

impl PersonFacts {
    /// The categories that count for `period` by the policy's day rule.
    pub fn categories(&self, period: &Period, as_of: CategoryAsOf) -> Vec<String> {
        let holds_on = |c: &CategoryHeld, day: Date| {
            !c.annulled && c.valid_from.is_none_or(|from| from <= day) && c.valid_to.is_none_or(|to| day <= to)
        };
        let mut held: Vec<String> = self
            .certifications
            .iter()
            .filter(|c| match as_of {
                CategoryAsOf::PeriodFirstDay => holds_on(c, period.first),
                CategoryAsOf::PeriodLastDay => holds_on(c, period.last),
                CategoryAsOf::AnyDay => {
                    !c.annulled
                        && c.valid_from.is_none_or(|from| from <= period.last)
                        && c.valid_to.is_none_or(|to| period.first <= to)
                }
                CategoryAsOf::EveryDay => holds_on(c, period.first) && holds_on(c, period.last),
            })
            .map(|c| c.category.clone())
            .collect();
        held.sort();
        held.dedup();
        held
    }

    /// The value of identity fact `name` ("person.categories", …) for `period`; None when the
    /// person has none (alive: no death date) or the name is not an identity fact.
    pub fn fact(&self, name: &str, period: &Period, as_of: CategoryAsOf) -> Option<crate::domain::FactValue> {
        use crate::domain::FactValue;
        match name {
            "person.categories" => Some(FactValue::TextList(self.categories(period, as_of))),
            "person.registered_region" => Some(FactValue::RegionCode(self.registered_region.clone())),
            "person.residence_region" => Some(FactValue::RegionCode(self.residence_region.clone())),
            "person.employment_status" => Some(FactValue::Text(self.employment_status.clone())),
            "person.labor_capacity" => Some(FactValue::Text(self.labor_capacity.clone())),
            "person.age_years" => self.age_on(period.first).map(FactValue::Integer),
            "person.retirement_month" => self.retirement_month.clone().map(FactValue::YearMonth),
            "person.death_date" => self.death_date.map(|d| FactValue::Date(day_text(d))),
            "person.moved_away_date" => self.moved_away_date.map(|d| FactValue::Date(day_text(d))),
            _ => None,
        }
    }

    /// Whole years of age on `day`, from the year and month of birth (the day is masked, so a
    /// birthday in `day`'s month counts as passed).
    pub fn age_on(&self, day: Date) -> Option<i64> {
        let (year, month) = self.birth_year_month?;
        let mut age = i64::from(day.year() - year);
        if u8::from(day.month()) < month {
            age -= 1;
        }
        Some(age)
    }
}

/// Reads persons from identity over the peer channel.
#[derive(Debug, Clone)]
pub struct IdentityFacts {
    peer: Peer,
}

impl IdentityFacts {
    pub fn new(peer: Peer) -> Self {
        Self { peer }
    }

    /// The person's facts for `period`, acting for the caller (identity applies the user's
    /// region scope); None when identity does not know the person or the caller may not see
    /// them. Identity unreachable is UNAVAILABLE: nothing is decided on missing facts.
    pub async fn person(
        &self,
        call: &CallContext,
        person_id: &str,
        period: &Period,
    ) -> Result<Option<PersonFacts>, Problem> {
        let mut found = self.persons(call, &[person_id.to_string()], period).await?;
        Ok(found.remove(person_id))
    }
}

impl IdentityFacts {
    /// Many persons' facts for one period, in calls of up to 1,000 names; the ones identity
    /// does not know (or the caller may not see) are absent.
    pub async fn persons(
        &self,
        call: &CallContext,
        person_ids: &[String],
        period: &Period,
    ) -> Result<std::collections::HashMap<String, PersonFacts>, Problem> {
        let mut found = std::collections::HashMap::new();
        for chunk in person_ids.chunks(1000) {
            let request = pb::BatchGetPersonsRequest {
                names: chunk.iter().map(|id| format!("persons/{id}")).collect(),
                period: Some(common::Period {
                    first_day: Some(date_to_wire(period.first)),
                    last_day: Some(date_to_wire(period.last)),
                }),
                view: common::PersonalDataView::Masked as i32,
                purpose: None,
            };
            let response = self
                .peer
                .call(call, Retry::Safe, |channel| {
                    let request = request.clone();
                    async move { IdentityServiceClient::new(channel).batch_get_persons(request).await }
                })
                .await?;
            for (id, result) in chunk.iter().zip(response.results) {
                if let Some(person) = result.person.filter(|_| !result.not_found) {
                    found.insert(id.clone(), facts_from(id, person));
                }
            }
        }
        Ok(found)
    }
}

/// What identity said of a citizen ID and a name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Lookup {
    /// No person in the caller's scope holds the ID.
    NotFound,
    /// The person holding it, and whether the name matched.
    Found { person_id: String, name_matches: bool },
}

impl IdentityFacts {
    /// Who holds `citizen_id`, and whether `name` is theirs (BatchLookupPersons: nothing is
    /// unmasked; identity audits the lookup).
    pub async fn lookup(&self, call: &CallContext, citizen_id: &str, name: &str) -> Result<Lookup, Problem> {
        let mut found = self
            .lookup_many(call, &[(citizen_id.to_string(), name.to_string())])
            .await?;
        Ok(found.pop().unwrap_or(Lookup::NotFound))
    }

    /// Who holds each (citizen ID, name), in order, in calls of up to 1,000.
    pub async fn lookup_many(&self, call: &CallContext, holders: &[(String, String)]) -> Result<Vec<Lookup>, Problem> {
        let mut found = Vec::with_capacity(holders.len());
        for chunk in holders.chunks(1000) {
            let request = pb::BatchLookupPersonsRequest {
                lookups: chunk
                    .iter()
                    .map(|(citizen_id, name)| pb::LookupPersonRequest {
                        citizen_id: citizen_id.clone(),
                        display_name: name.clone(),
                    })
                    .collect(),
            };
            let response = self
                .peer
                .call(call, Retry::Safe, |channel| {
                    let request = request.clone();
                    async move { IdentityServiceClient::new(channel).batch_lookup_persons(request).await }
                })
                .await?;
            if response.results.len() != chunk.len() {
                tracing::error!(
                    asked = chunk.len(),
                    answered = response.results.len(),
                    "identity answered a batch lookup with another number of results"
                );
                return Err(Problem::internal());
            }
            for result in response.results {
                found.push(if result.person.is_empty() {
                    Lookup::NotFound
                } else {
                    Lookup::Found {
                        person_id: result.person.trim_start_matches("persons/").to_string(),
                        name_matches: result.name_match == pb::NameMatch::Matched as i32,
                    }
                });
            }
        }
        Ok(found)
    }
}

fn strip<'a>(name: &'a str, prefix: &str) -> &'a str {
    name.strip_prefix(prefix).unwrap_or(name)
}

fn date(value: Option<&common::Date>) -> Option<Date> {
    let value = value?;
    let month = time::Month::try_from(u8::try_from(value.month).ok()?).ok()?;
    Date::from_calendar_date(value.year, month, u8::try_from(value.day).ok()?).ok()
}

fn facts_from(person_id: &str, person: pb::Person) -> PersonFacts {
    let region = |r: Option<&common::RegionCode>| r.map(|r| r.code.clone()).unwrap_or_default();
    PersonFacts {
        person_id: person_id.to_string(),
        display_name: person.display_name.clone(),
        registered_region: region(person.registered_region.as_ref()),
        residence_region: region(person.residence_region.as_ref()),
        employment_status: strip(person.employment_status().as_str_name(), "EMPLOYMENT_STATUS_").to_string(),
        labor_capacity: strip(person.labor_capacity().as_str_name(), "LABOR_CAPACITY_").to_string(),
        birth_year_month: person
            .birth_date
            .as_ref()
            .and_then(|d| Some((d.year, u8::try_from(d.month).ok()?))),
        retirement_month: person
            .retirement_month
            .as_ref()
            .map(|m| format!("{:04}-{:02}", m.year, m.month)),
        death_date: date(person.death_date.as_ref()),
        moved_away_date: date(person.moved_away_date.as_ref()),
        certifications: person
            .certifications
            .iter()
            .filter_map(|c| {
                let certification = c.certification.as_ref()?;
                Some(CategoryHeld {
                    category: strip(certification.category().as_str_name(), "PERSON_CATEGORY_").to_string(),
                    valid_from: date(certification.valid_from.as_ref()),
                    valid_to: date(certification.valid_to.as_ref()),
                    annulled: certification.annulled || c.annul_time.is_some(),
                })
            })
            .collect(),
    }
}

/// Where identity facts were read, for the frozen facts.
pub fn source_detail(person_id: &str, period: &Period) -> String {
    format!(
        "identity BatchGetPersons persons/{person_id} {}..{}",
        day_text(period.first),
        day_text(period.last)
    )
}

/// A change on identity's feed, as the recovery follower needs it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PersonEvent {
    pub cursor: String,
    pub person_id: String,
    /// The change kind without its prefix ("CATEGORY_REVOKED").
    pub kind: String,
    pub effective_date: Option<Date>,
    /// The category without its prefix, for a category change ("" otherwise).
    pub category: String,
}

/// The follower's effect: the identity change, read off the wire, handed to the application.
pub struct RecoveryFollower {
    pub clock: bangfu_platform::clock::Clock,
}

impl bangfu_platform::follow::Apply<pb::PersonChange> for RecoveryFollower {
    async fn apply(&self, tx: &mut sqlx::AnyConnection, change: &pb::PersonChange) -> Result<(), Problem> {
        let event = PersonEvent {
            cursor: change.cursor.clone(),
            person_id: change.person.trim_start_matches("persons/").to_string(),
            kind: strip(change.kind().as_str_name(), "CHANGE_KIND_").to_string(),
            effective_date: date(change.effective_date.as_ref()),
            category: if change.category == 0 {
                String::new()
            } else {
                strip(change.category().as_str_name(), "PERSON_CATEGORY_").to_string()
            },
        };
        crate::app::note_person_change(tx, &event, self.clock.now()).await
    }
}
