//! Seekers (求职登记): persons in identity with the will to work, each a link to the person,
//! never a copy of their personal data beyond what matching reads.

use bangfu_platform::audit::AuditEntry;
use bangfu_platform::auth::Principal;
use bangfu_platform::error::{ErrorReason, Problem};
use bangfu_platform::idempotency::RequestKey;
use bangfu_platform::peers::CallContext;
use bangfu_platform::write::{self, Begun};
use sqlx::AnyConnection;
use time::Date;
use tonic::Code;

use super::{Jobs, check_etag, invalid, method};
use crate::domain::{SeekerState, WorkIntention};
use crate::peers;
use crate::store::{self, PersonSnapshot, SeekerData, SeekerFilter, StoredSeeker};

/// What UpdateSeeker changes: each field present replaces the stored one.
#[derive(Debug, Clone, Default)]
pub struct SeekerChange {
    pub skills: Option<Vec<String>>,
    pub intentions: Option<Vec<WorkIntention>>,
    pub destinations: Option<Vec<String>>,
    pub expected_wage_fen: Option<i64>,
    pub available_from: Option<Date>,
    pub route: Option<(String, String)>,
    /// Active or withdrawn; a placed seeker's state follows its placement.
    pub state: Option<SeekerState>,
}

pub(crate) fn seeker_not_found(id: &str) -> Problem {
    Problem::not_found(&format!("seekers/{id}"))
}

impl Jobs {
    /// The seeker, if the caller's scope holds the person's registered region (NOT_FOUND,
    /// audited, otherwise).
    pub(crate) async fn seeker_for(
        &self,
        conn: &mut AnyConnection,
        caller: &Principal,
        method_name: &str,
        id: &str,
    ) -> Result<StoredSeeker, Problem> {
        let seeker = store::get_seeker(conn, id).await?.ok_or_else(|| seeker_not_found(id))?;
        self.ensure_sees(caller, method_name, &seeker.name(), &seeker.person.registered_region)?;
        Ok(seeker)
    }

    /// What identity says of a person today, for matching; NOT_FOUND when identity does not
    /// know them or the caller may not see them there.
    pub(crate) async fn person_snapshot(
        &self,
        call: &CallContext,
        field: &str,
        person_id: &str,
    ) -> Result<PersonSnapshot, Problem> {
        let today = self.today();
        self.peers()?
            .identity
            .person(call, person_id, (today, today))
            .await?
            .map(|facts| peers::snapshot(&facts, today))
            .ok_or_else(|| {
                Problem::not_found(&format!("persons/{person_id}"))
                    .with_violation(field, "no such person in your scope")
            })
    }

    pub async fn register_seeker(
        &self,
        caller: &Principal,
        call: &CallContext,
        key: Option<RequestKey>,
        seeker: SeekerData,
    ) -> Result<StoredSeeker, Problem> {
        // Identity answers within the clerk's scope: a person outside it is not found there.
        let person = self.person_snapshot(call, "seeker.person", &seeker.person_id).await?;
        self.ensure_sees(
            caller,
            "RegisterSeeker",
            &format!("persons/{}", seeker.person_id),
            &person.registered_region,
        )?;
        let mut unit = match write::begin(self.db(), key, self.now()).await? {
            Begun::Replay { resource } => {
                return self.get_seeker(caller, resource.trim_start_matches("seekers/")).await;
            }
            Begun::Fresh(unit) => unit,
        };
        // One seeker per person: the registration to change is named. The unique index holds
        // the rule against two clerks registering at once.
        let already = |existing: Option<&StoredSeeker>| {
            let problem = Problem::new(
                Code::AlreadyExists,
                ErrorReason::AlreadyExists,
                "the person is registered as a seeker already",
                "此人已有求职登记，请修改原登记",
            )
            .with_violation("seeker.person", "already registered");
            match existing {
                Some(existing) => problem.with_metadata("resource", existing.name()),
                None => problem,
            }
        };
        if let Some(existing) = store::get_seeker_of_person(unit.tx(), &seeker.person_id).await? {
            return Err(already(Some(&existing)));
        }
        let now = unit.now();
        let id = store::new_id();
        if let Err(error) = store::insert_seeker(unit.tx(), &id, &seeker, &person, &caller.subject, now).await {
            return Err(if store::is_duplicate(&error) {
                already(None)
            } else {
                error.into()
            });
        }
        let stored = store::get_seeker(unit.tx(), &id).await?.ok_or_else(Problem::internal)?;
        unit.commit(
            AuditEntry::by(caller, &method("RegisterSeeker"), stored.name(), now).in_region(&person.registered_region),
        )
        .await?;
        Ok(stored)
    }

    pub async fn get_seeker(&self, caller: &Principal, id: &str) -> Result<StoredSeeker, Problem> {
        let mut conn = self.db().acquire().await?;
        self.seeker_for(&mut conn, caller, "GetSeeker", id).await
    }

    pub async fn list_seekers(
        &self,
        caller: &Principal,
        mut filter: SeekerFilter,
        after: &str,
        limit: u32,
    ) -> Result<Vec<StoredSeeker>, Problem> {
        let Some(prefix) = caller.scope.narrowed(&filter.region_prefix) else {
            return Ok(Vec::new());
        };
        filter.region_prefix = prefix;
        let mut conn = self.db().acquire().await?;
        Ok(store::list_seekers(&mut conn, &filter, after, i64::from(limit) + 1).await?)
    }

    pub async fn update_seeker(
        &self,
        caller: &Principal,
        id: &str,
        etag: &str,
        change: SeekerChange,
    ) -> Result<StoredSeeker, Problem> {
        let mut unit = write::begin_unkeyed(self.db(), self.now()).await?;
        let mut seeker = self.seeker_for(unit.tx(), caller, "UpdateSeeker", id).await?;
        let name = seeker.name();
        check_etag(&name, etag, &seeker.etag())?;
        if let Some(state) = change.state {
            match (seeker.state, state) {
                (SeekerState::Placed, _) | (_, SeekerState::Placed) => {
                    return Err(Problem::state_conflict(
                        &name,
                        "a placed seeker's state follows the placement: end it first",
                        "已安置人员的状态随安置记录变化，请先结束安置",
                    ));
                }
                (_, state) => seeker.state = state,
            }
        }
        let data = &mut seeker.data;
        let SeekerChange {
            skills,
            intentions,
            destinations,
            expected_wage_fen,
            available_from,
            route,
            state: _,
        } = change;
        if let Some(intentions) = intentions {
            if intentions.is_empty() {
                return Err(Problem::required("seeker.intentions", "就业意向"));
            }
            data.intentions = intentions;
        }
        data.skills = skills.unwrap_or(data.skills.clone());
        data.destinations = destinations.unwrap_or(data.destinations.clone());
        data.expected_wage_fen = expected_wage_fen.unwrap_or(data.expected_wage_fen);
        data.available_from = available_from.unwrap_or(data.available_from);
        data.route = route.unwrap_or(data.route.clone());
        if data.expected_wage_fen <= 0 {
            return Err(invalid(
                "seeker.expected_wage",
                "must be above zero",
                "期望月薪应大于零",
            ));
        }
        let now = unit.now();
        if !store::update_seeker(unit.tx(), &seeker, seeker.revision, now).await? {
            return Err(Problem::etag_mismatch(&name));
        }
        let region = seeker.person.registered_region.clone();
        let stored = store::get_seeker(unit.tx(), id).await?.ok_or_else(Problem::internal)?;
        unit.commit(AuditEntry::by(caller, &method("UpdateSeeker"), name, now).in_region(&region))
            .await?;
        Ok(stored)
    }
}

/// The changes that withdraw a person's seeker.
const WITHDRAWING: [&str; 2] = ["DIED", "MOVED_AWAY"];

/// The changes to who a person is that matching reads (a category, the registered region).
/// Employment this service records itself, and households and residences it does not read.
const RESTATING: [&str; 6] = [
    "CATEGORY_CERTIFIED",
    "CATEGORY_REVOKED",
    "CATEGORY_ANNULLED",
    "CATEGORY_DATES_CHANGED",
    "REGISTRATION_MOVED",
    "UPDATED",
];

/// Every kind of identity change this service reads; the feed is asked for these alone.
pub fn followed_kinds() -> Vec<&'static str> {
    WITHDRAWING.iter().chain(RESTATING.iter()).copied().collect()
}

/// Identity's change to a person, on their seeker: one who died or moved away is withdrawn;
/// any change to who they are (a category, the registered region) has their facts read again.
pub async fn note_person_change(
    tx: &mut AnyConnection,
    person_id: &str,
    kind: &str,
    now: time::OffsetDateTime,
) -> Result<(), Problem> {
    if WITHDRAWING.contains(&kind) {
        store::withdraw_person(tx, person_id, now).await?;
        store::mark_person_stale(tx, person_id).await?;
    } else if RESTATING.contains(&kind) {
        store::mark_person_stale(tx, person_id).await?;
    }
    Ok(())
}

impl Jobs {
    /// Reads again from identity, on the service's own account, the seekers whose person
    /// changed there, so rankings score today's priority and region; returns how many.
    pub async fn refresh_stale_seekers(&self) -> Result<usize, Problem> {
        let stale = {
            let mut conn = self.db().acquire().await?;
            store::stale_seekers(&mut conn, 1000).await?
        };
        if stale.is_empty() {
            return Ok(0);
        }
        let today = self.today();
        let ids: Vec<String> = stale.iter().map(|s| s.data.person_id.clone()).collect();
        let facts = self
            .peers()?
            .identity
            .persons(&CallContext::own(), &ids, (today, today))
            .await?;
        let now = self.now();
        let mut conn = self.db().acquire().await?;
        for seeker in &stale {
            // One identity no longer returns keeps what was last read, marked read, so it is
            // not asked for on every round.
            let snapshot = facts
                .get(&seeker.data.person_id)
                .map(|f| crate::peers::snapshot(f, today))
                .unwrap_or_else(|| seeker.person.clone());
            store::refresh_person(&mut conn, &seeker.id, &snapshot, now).await?;
        }
        Ok(stale.len())
    }
}
