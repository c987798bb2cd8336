//! What a service reads from identity about persons, and the one thing it writes there: a
//! person's facts for a period in the masked view, who holds a citizen ID, and an employment
//! record (a post taken, a work-relief enrolment, a placement). Identity's contract stops here;
//! a service sees [`PersonFacts`], [`Lookup`] and [`Employment`].

use std::collections::HashMap;

use bangfu_proto::common::v1 as common;
use bangfu_proto::identity::v1 as pb;
use bangfu_proto::identity::v1::identity_service_client::IdentityServiceClient;
use time::Date;

use crate::error::Problem;
use crate::peers::{CallContext, Peer, Retry};
use crate::wire::date_to_wire;

/// The categories that make a person a target person (帮扶对象) of the employment campaign:
/// poverty-alleviated, monitored at risk of falling back, rural low-income.
pub const TARGET_CATEGORIES: &[&str] = &["POVERTY_ALLEVIATED", "MONITORED_AT_RISK", "RURAL_LOW_INCOME"];

/// One certification as identity gave it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CategoryHeld {
    /// The category's name without prefix ("POVERTY_ALLEVIATED").
    pub category: String,
    pub valid_from: Option<Date>,
    pub valid_to: Option<Date>,
    pub annulled: bool,
}

/// A person's facts for a period, masked.
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
    /// The household, "households/{household}" stripped to its id; empty when none.
    pub household: String,
}

impl PersonFacts {
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

    /// The certifications in force on `day`: not annulled, valid that day.
    pub fn certifications_on(&self, day: Date) -> impl Iterator<Item = &CategoryHeld> {
        self.certifications.iter().filter(move |c| {
            !c.annulled && c.valid_from.is_none_or(|from| from <= day) && c.valid_to.is_none_or(|to| day <= to)
        })
    }

    /// The categories (without prefix) held on `day`: certified, not annulled, valid that day.
    pub fn categories_on(&self, day: Date) -> Vec<String> {
        let mut held: Vec<String> = self.certifications_on(day).map(|c| c.category.clone()).collect();
        held.sort();
        held.dedup();
        held
    }
}

/// Reads persons from identity over the peer channel.
#[derive(Debug, Clone)]
pub struct IdentityReader {
    peer: Peer,
}

impl IdentityReader {
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
        period: (Date, Date),
    ) -> Result<Option<PersonFacts>, Problem> {
        let mut found = self.persons(call, &[person_id.to_string()], period).await?;
        Ok(found.remove(person_id))
    }
}

impl IdentityReader {
    /// Many persons' facts for one period, in calls of up to 1,000 names; the ones identity
    /// does not know (or the caller may not see) are absent.
    pub async fn persons(
        &self,
        call: &CallContext,
        person_ids: &[String],
        period: (Date, Date),
    ) -> Result<HashMap<String, PersonFacts>, Problem> {
        let mut found = HashMap::new();
        for chunk in person_ids.chunks(1000) {
            let request = pb::BatchGetPersonsRequest {
                names: chunk.iter().map(|id| format!("persons/{id}")).collect(),
                period: Some(common::Period {
                    first_day: Some(date_to_wire(period.0)),
                    last_day: Some(date_to_wire(period.1)),
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

impl IdentityReader {
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

/// A span of employment a service records in identity's history for a person.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Employment {
    pub person_id: String,
    pub status: common::EmploymentStatus,
    /// The employer as identity shows it, e.g. "乡村公益性岗位", the project's name.
    pub employer: String,
    /// Where the work is (a division code); empty when off work.
    pub work_region: String,
    pub first: Date,
    pub last: Option<Date>,
    /// The recording system, e.g. "以工代赈管理".
    pub reporting_system: String,
}

impl Employment {
    /// Off work from the day after `last_day`, until identity hears otherwise: how a service
    /// ends the employment it recorded (an enrolment, a placement).
    pub fn ended(person_id: &str, last_day: Date, reporting_system: &str) -> Self {
        Self {
            person_id: person_id.to_string(),
            status: common::EmploymentStatus::Unemployed,
            employer: String::new(),
            work_region: String::new(),
            first: last_day.next_day().unwrap_or(last_day),
            last: None,
            reporting_system: reporting_system.to_string(),
        }
    }
}

impl IdentityReader {
    /// Records a month's income from work in identity acting for the caller (identity's
    /// monitoring raises its alerts from it); the request id makes a retry record it once.
    pub async fn record_income(
        &self,
        call: &CallContext,
        person_id: &str,
        month: (i32, u8),
        income_fen: i64,
        reporting_system: &str,
        request_id: &str,
    ) -> Result<(), Problem> {
        let request = pb::RecordIncomeRequest {
            person: format!("persons/{person_id}"),
            month: Some(common::YearMonth {
                year: month.0,
                month: i32::from(month.1),
            }),
            income: Some(common::Money { fen: income_fen }),
            reporting_system: reporting_system.to_string(),
            request_id: request_id.to_string(),
        };
        self.peer
            .call(call, Retry::Safe, |channel| {
                let request = request.clone();
                async move { IdentityServiceClient::new(channel).record_income(request).await }
            })
            .await?;
        Ok(())
    }

    /// Records `employment` in identity acting for the caller; the request id makes a retry (or
    /// a re-run) record it once.
    pub async fn record_employment(
        &self,
        call: &CallContext,
        employment: &Employment,
        request_id: &str,
    ) -> Result<(), Problem> {
        let request = pb::RecordEmploymentRequest {
            person: format!("persons/{}", employment.person_id),
            record: Some(pb::EmploymentRecord {
                name: String::new(),
                status: employment.status as i32,
                employer: employment.employer.clone(),
                work_region: employment.work_region.clone(),
                start_date: Some(date_to_wire(employment.first)),
                end_date: employment.last.map(date_to_wire),
                reporting_system: employment.reporting_system.clone(),
            }),
            request_id: request_id.to_string(),
        };
        self.peer
            .call(call, Retry::Safe, |channel| {
                let request = request.clone();
                async move { IdentityServiceClient::new(channel).record_employment(request).await }
            })
            .await?;
        Ok(())
    }
}

impl IdentityReader {
    /// The person's employment periods, latest start first (the latest 100), acting for the
    /// caller.
    pub async fn employment_records(&self, call: &CallContext, person_id: &str) -> Result<Vec<Employment>, Problem> {
        let request = pb::ListEmploymentRecordsRequest {
            parent: format!("persons/{person_id}"),
            page_size: 100,
            page_token: String::new(),
        };
        let response = self
            .peer
            .call(call, Retry::Safe, |channel| {
                let request = request.clone();
                async move {
                    IdentityServiceClient::new(channel)
                        .list_employment_records(request)
                        .await
                }
            })
            .await?;
        Ok(response
            .employment_records
            .into_iter()
            .filter_map(|record| {
                Some(Employment {
                    person_id: person_id.to_string(),
                    status: record.status(),
                    employer: record.employer,
                    work_region: record.work_region,
                    first: date(record.start_date.as_ref())?,
                    last: date(record.end_date.as_ref()),
                    reporting_system: record.reporting_system,
                })
            })
            .collect())
    }

    /// The citizen IDs of persons, read in clear for `purpose` with `reference` (identity
    /// audits each read), in calls of up to 1,000; absent: identity does not know the person.
    pub async fn citizen_ids(
        &self,
        call: &CallContext,
        person_ids: &[String],
        purpose: common::AccessPurposeCode,
        reference: &str,
    ) -> Result<HashMap<String, String>, Problem> {
        let mut found = HashMap::new();
        for chunk in person_ids.chunks(1000) {
            let request = pb::BatchGetPersonsRequest {
                names: chunk.iter().map(|id| format!("persons/{id}")).collect(),
                period: None,
                view: common::PersonalDataView::Unmasked as i32,
                purpose: Some(common::AccessPurpose {
                    code: purpose as i32,
                    reference: reference.to_string(),
                }),
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
                    found.insert(id.clone(), person.citizen_id);
                }
            }
        }
        Ok(found)
    }
}

fn strip<'a>(name: &'a str, prefix: &str) -> &'a str {
    name.strip_prefix(prefix).unwrap_or(name)
}

/// A wire date as a calendar date; None when unset or impossible.
pub fn date(value: Option<&common::Date>) -> Option<Date> {
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
        household: strip(&person.household, "households/").to_string(),
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
