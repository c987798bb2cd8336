//! What subsidy payment reads from identity, and only that: a person's facts for a period, in
//! the masked view (a decision never needs a clear citizen ID), read by the platform's
//! [`IdentityReader`]; here they are turned into the facts a policy's rules read.

use bangfu_platform::error::Problem;
use bangfu_platform::identity_reader::date;
pub use bangfu_platform::identity_reader::{CategoryHeld, IdentityReader, Lookup, PersonFacts};
use bangfu_platform::peers::CallContext;
use bangfu_proto::identity::v1 as pb;
use time::Date;

use crate::domain::{CategoryAsOf, Period, day_text};

/// What a policy reads of a person: the categories by the policy's day rule and the identity
/// facts by name.
pub trait PolicyFacts {
    fn categories(&self, period: &Period, as_of: CategoryAsOf) -> Vec<String>;
    fn fact(&self, name: &str, period: &Period, as_of: CategoryAsOf) -> Option<crate::domain::FactValue>;
}

impl PolicyFacts for PersonFacts {
    /// The categories that count for `period` by the policy's day rule.
    fn categories(&self, period: &Period, as_of: CategoryAsOf) -> Vec<String> {
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
    fn fact(&self, name: &str, period: &Period, as_of: CategoryAsOf) -> Option<crate::domain::FactValue> {
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
}

/// Identity as subsidy payment reads it: persons for a claim's period.
#[derive(Debug, Clone)]
pub struct IdentityFacts {
    reader: IdentityReader,
}

impl IdentityFacts {
    pub fn new(peer: bangfu_platform::peers::Peer) -> Self {
        Self {
            reader: IdentityReader::new(peer),
        }
    }

    /// The person's facts for `period`, acting for the caller; None when identity does not
    /// know the person or the caller may not see them.
    pub async fn person(
        &self,
        call: &CallContext,
        person_id: &str,
        period: &Period,
    ) -> Result<Option<PersonFacts>, Problem> {
        self.reader.person(call, person_id, (period.first, period.last)).await
    }

    /// Many persons' facts for one period; the ones identity does not know are absent.
    pub async fn persons(
        &self,
        call: &CallContext,
        person_ids: &[String],
        period: &Period,
    ) -> Result<std::collections::HashMap<String, PersonFacts>, Problem> {
        self.reader.persons(call, person_ids, (period.first, period.last)).await
    }

    /// Who holds `citizen_id`, and whether `name` is theirs.
    pub async fn lookup(&self, call: &CallContext, citizen_id: &str, name: &str) -> Result<Lookup, Problem> {
        self.reader.lookup(call, citizen_id, name).await
    }

    /// Who holds each (citizen ID, name), in order.
    pub async fn lookup_many(&self, call: &CallContext, holders: &[(String, String)]) -> Result<Vec<Lookup>, Problem> {
        self.reader.lookup_many(call, holders).await
    }
}

fn strip<'a>(name: &'a str, prefix: &str) -> &'a str {
    name.strip_prefix(prefix).unwrap_or(name)
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
