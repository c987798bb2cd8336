//! What work relief asks of the other services, and only that: persons from identity and
//! workers' employment recorded there (the platform's identity reader), subsidy payment's
//! catalog and claims (the platform's claim sender, as system "work-relief").

use bangfu_platform::error::Problem;
use bangfu_platform::identity_reader::{Employment, IdentityReader};
use bangfu_platform::peers::{CallContext, Peer};
use bangfu_platform::subsidy_claims::SubsidyClaims;
use bangfu_proto::common::v1::EmploymentStatus;
use time::Date;

/// The claim source system work relief's claims carry.
pub const CLAIM_SYSTEM: &str = "work-relief";

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

    /// Records in identity that the worker is on work relief for the enrolment (its end, when
    /// planned, or open), acting for the clerk.
    pub async fn record_enrolment(
        &self,
        call: &CallContext,
        person_id: &str,
        project_name: &str,
        region: &str,
        period: (Date, Option<Date>),
        request_id: &str,
    ) -> Result<(), Problem> {
        let employment = Employment {
            person_id: person_id.to_string(),
            status: EmploymentStatus::WorkRelief,
            employer: project_name.to_string(),
            work_region: region.to_string(),
            first: period.0,
            last: period.1,
            reporting_system: "以工代赈管理".into(),
        };
        self.identity.record_employment(call, &employment, request_id).await
    }

    /// Records in identity that the worker's work relief ends on `end`: off work from the next
    /// day, until identity hears otherwise.
    pub async fn record_enrolment_end(
        &self,
        call: &CallContext,
        person_id: &str,
        end: Date,
        request_id: &str,
    ) -> Result<(), Problem> {
        let employment = Employment::ended(person_id, end, "以工代赈管理");
        self.identity.record_employment(call, &employment, request_id).await
    }
}
