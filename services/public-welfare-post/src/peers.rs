//! What posts ask of the other services, and only that: persons from identity and holders'
//! employment recorded there (the platform's identity reader), subsidy payment's catalog, dry
//! run and claims (the platform's claim sender, as system "welfare-post").

use bangfu_platform::error::Problem;
use bangfu_platform::identity_reader::{Employment, IdentityReader};
use bangfu_platform::peers::{CallContext, Peer};
use bangfu_platform::subsidy_claims::SubsidyClaims;
pub use bangfu_platform::subsidy_claims::{ClaimLine, FactValue, LineAnswer};
use bangfu_proto::common::v1::EmploymentStatus;
use time::Date;

/// The claim source system posts' claims carry.
pub const CLAIM_SYSTEM: &str = "welfare-post";

/// The other services, as configured.
#[derive(Debug, Clone)]
pub struct Peers {
    pub identity: IdentityReader,
    subsidy: SubsidyClaims,
}

impl Peers {
    pub fn new(identity: Peer, subsidy: Peer) -> Self {
        Self {
            identity: IdentityReader::new(identity),
            subsidy: SubsidyClaims::new(subsidy, CLAIM_SYSTEM),
        }
    }

    /// Records in identity that the holder is on a public-welfare post for the contract's term,
    /// acting for the clerk; the request id makes a retry (or a re-run) record it once.
    pub async fn record_post_employment(
        &self,
        call: &CallContext,
        person_id: &str,
        village: &str,
        first: Date,
        last: Date,
        request_id: &str,
    ) -> Result<(), Problem> {
        let employment = employment(person_id, EmploymentStatus::PublicWelfarePost, village, first, last);
        self.identity.record_employment(call, &employment, request_id).await
    }

    /// Records that the holder is off the post from `from` to `until` (the contract's end), so
    /// identity no longer counts them as employed on it.
    pub async fn record_post_exit(
        &self,
        call: &CallContext,
        person_id: &str,
        from: Date,
        until: Date,
        request_id: &str,
    ) -> Result<(), Problem> {
        let employment = employment(person_id, EmploymentStatus::Unemployed, "", from, until);
        self.identity.record_employment(call, &employment, request_id).await
    }

    /// See [`SubsidyClaims::claim_fact_names`].
    pub async fn claim_fact_names(
        &self,
        call: &CallContext,
        policy: &str,
        day: Date,
    ) -> Result<Option<Vec<String>>, Problem> {
        self.subsidy.claim_fact_names(call, policy, day).await
    }

    /// See [`SubsidyClaims::evaluate`].
    pub async fn evaluate(&self, call: &CallContext, claim: &ClaimLine) -> Result<Vec<String>, Problem> {
        self.subsidy.evaluate(call, claim).await
    }

    /// See [`SubsidyClaims::submit`].
    pub async fn submit(&self, call: &CallContext, claims: &[ClaimLine]) -> Result<Vec<LineAnswer>, Problem> {
        self.subsidy.submit(call, claims).await
    }
}

fn employment(person_id: &str, status: EmploymentStatus, work_region: &str, first: Date, last: Date) -> Employment {
    Employment {
        person_id: person_id.to_string(),
        status,
        employer: if status == EmploymentStatus::PublicWelfarePost {
            "乡村公益性岗位".into()
        } else {
            String::new()
        },
        work_region: work_region.to_string(),
        first,
        last: Some(last),
        reporting_system: "乡村公益性岗位管理".into(),
    }
}

/// The claim source reference of a holder's month: assignment + month.
pub fn month_reference(assignment_id: &str, month: &str) -> String {
    format!("assignments/{assignment_id}/months/{month}")
}
