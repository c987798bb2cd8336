//! Identity's scheduled work, which the platform runs once across replicas.

use bangfu_platform::audit::AuditEntry;
use bangfu_platform::error::Problem;
use bangfu_platform::write;

use super::Identity;
use crate::domain::monitoring::Month;

/// How the month-end check names itself in the audit log.
pub const MONTH_END_EMPLOYMENT_CHECK: &str = "job:month-end-employment-check";

impl Identity {
    /// After a month's end, for every county persons reside in: the employed count at the
    /// month's end against the month before's, raising REGION_EMPLOYMENT_DROP beyond the
    /// county's threshold. RecordEmployment checks a county when someone loses work; this
    /// catches falls no single record crosses (a batch of ended contracts, moves). Idempotent:
    /// the alert's key is the county and month, shared with RecordEmployment's check, so a
    /// rerun, a second replica or an earlier alert changes nothing. Answers how many alerts it
    /// raised.
    pub async fn check_month_end_employment(&self) -> Result<usize, Problem> {
        let month = Month::of(self.clock.today()).previous();
        let day = month.last_day();
        let counties = {
            let mut connection = self.store.db.acquire().await.map_err(Problem::from)?;
            self.store.residence_counties(&mut connection).await?
        };
        let mut raised = 0;
        // One short transaction per county: SQLite's one writer is not held for the whole run.
        for county in counties {
            let now = self.clock.now();
            let mut unit = write::begin_unkeyed(&self.store.db, now).await?;
            let alert = self.check_county_employment(unit.tx(), &county, day, now).await?;
            if let Some((alert, true)) = alert {
                raised += 1;
                let entry = AuditEntry::by_service(crate::SERVICE, MONTH_END_EMPLOYMENT_CHECK, alert.resource(), now)
                    .in_region(&county);
                unit.audit(entry).await?;
            }
            unit.commit_audited().await?;
        }
        Ok(raised)
    }
}
