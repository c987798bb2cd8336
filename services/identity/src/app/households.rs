//! Households (户): registering one, reading it with its members, and the checks a person's
//! household must pass when a person joins it.

use bangfu_platform::audit::AuditEntry;
use bangfu_platform::auth::Principal;
use bangfu_platform::error::{ErrorReason, Problem};
use bangfu_platform::idempotency::RequestKey;
use bangfu_platform::write::{self, Begun};

use super::{Identity, method};
use crate::domain::{HouseholdRelation, IdentityError};
use crate::store::{Member, Store, StoredHousehold};

/// A household with its members (masked names).
pub struct HouseholdView {
    pub household: StoredHousehold,
    pub members: Vec<Member>,
}

impl Identity {
    /// Registers a household under `number` in the village `region`.
    pub async fn create_household(
        &self,
        caller: &Principal,
        key: Option<RequestKey>,
        number: String,
        region: String,
    ) -> Result<HouseholdView, Problem> {
        let method = method("CreateHousehold");
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
                return self.household(caller, &method, id).await;
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
        self.household(caller, &method, &id).await
    }

    /// A household with its members (masked names), NOT_FOUND outside the caller's scope.
    pub async fn household(&self, caller: &Principal, method: &str, id: &str) -> Result<HouseholdView, Problem> {
        let resource = format!("households/{id}");
        let mut connection = self.store.db.acquire().await.map_err(Problem::from)?;
        let household = self
            .store
            .household(&mut connection, id)
            .await?
            .ok_or_else(|| Problem::not_found(&resource))?;
        self.ensure_sees(caller, method, &resource, [household.region.as_str()])?;
        let members = self.store.members(&mut connection, id).await?;
        Ok(HouseholdView { household, members })
    }

    /// The household exists in the caller's scope, and a head is its only head (checked here
    /// for the clear answer; the schema's one-head index holds it against a concurrent write).
    pub(super) async fn ensure_household_fits(
        &self,
        connection: &mut sqlx::AnyConnection,
        caller: &Principal,
        method: &str,
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
        self.ensure_sees(caller, method, &resource, [stored.region.as_str()])?;
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
pub(super) fn household_head_taken(problem: Problem) -> Problem {
    let at_head_index = problem
        .metadata
        .iter()
        .any(|(k, v)| k == "constraint" && (v == "persons_one_head" || v == "persons.household_id"));
    if at_head_index { head_taken() } else { problem }
}
