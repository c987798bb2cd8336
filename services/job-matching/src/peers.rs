//! What job matching asks of the other services, and only that: persons from identity (masked),
//! the employment and income of placed persons recorded there (the platform's identity reader),
//! and subsidy payment's catalog and claims (the platform's claim sender, as system "jobs").

use bangfu_platform::error::Problem;
use bangfu_platform::identity_reader::{Employment, IdentityReader, PersonFacts};
use bangfu_platform::peers::{CallContext, Peer};
use bangfu_platform::subsidy_claims::SubsidyClaims;
use bangfu_proto::common::v1::EmploymentStatus;
use time::Date;

use crate::domain::{EmploymentPlace, LaborCapacity, Priority};
use crate::store::{PersonSnapshot, StoredPlacement};

/// How identity's employment history names this service.
pub const REPORTING_SYSTEM: &str = "就业帮扶管理";

/// The claim source system job matching's claims carry.
pub const CLAIM_SYSTEM: &str = "jobs";

/// The other services, as configured.
#[derive(Debug, Clone)]
pub struct Peers {
    pub identity: IdentityReader,
    pub subsidy: SubsidyClaims,
}

impl Peers {
    pub fn new(identity: Peer, subsidy: Peer) -> Self {
        Self {
            identity: IdentityReader::new(identity),
            subsidy: SubsidyClaims::new(subsidy, CLAIM_SYSTEM),
        }
    }

    /// Records a placement in identity: employed from its start, and once ended, off work from
    /// the day after its end. The start goes first every time under its own request id, so a
    /// start identity missed (it was away) is never skipped by the end that follows, and one it
    /// holds is not recorded twice.
    pub async fn record_placement(
        &self,
        call: &CallContext,
        placement: &StoredPlacement,
        employer: &str,
    ) -> Result<(), Problem> {
        let data = &placement.data;
        let start = Employment {
            person_id: data.person_id.clone(),
            status: match data.place {
                EmploymentPlace::InCounty => EmploymentStatus::EmployedInCounty,
                EmploymentPlace::OutOfCounty => EmploymentStatus::EmployedOutOfCounty,
                EmploymentPlace::OutOfProvince => EmploymentStatus::EmployedOutOfProvince,
            },
            employer: employer.to_string(),
            work_region: data.work_region.clone(),
            first: data.start,
            last: None,
            reporting_system: REPORTING_SYSTEM.to_string(),
        };
        let request_id = |fact: &str| format!("jobs-placement-{}-{fact}", placement.id);
        self.identity
            .record_employment(call, &start, &request_id("start"))
            .await?;
        if let Some(end) = placement.end_date {
            let ended = Employment::ended(&data.person_id, end, REPORTING_SYSTEM);
            self.identity
                .record_employment(call, &ended, &request_id("end"))
                .await?;
        }
        Ok(())
    }
}

/// What matching keeps of a person from identity's masked view, as of `day`.
pub fn snapshot(facts: &PersonFacts, day: Date) -> PersonSnapshot {
    let capacity = facts
        .labor_capacity
        .strip_prefix("LABOR_CAPACITY_")
        .unwrap_or(&facts.labor_capacity)
        .to_ascii_lowercase();
    PersonSnapshot {
        display_name: facts.display_name.clone(),
        registered_region: facts.registered_region.clone(),
        labor_capacity: LaborCapacity::parse(&capacity),
        priority: Priority::of_categories(&facts.categories_on(day)),
        birth_month: facts
            .birth_year_month
            .map(|(year, month)| format!("{year:04}-{month:02}"))
            .unwrap_or_default(),
    }
}
