//! What every service's application layer holds and does the same way: its database, rule
//! parameters and clock, and refusals audited under the refused method's full path. A service's
//! use-case struct (`Relief`, `Posts`) wraps a [`ServiceBase`] and dereferences to it.

use std::sync::Arc;

use time::{Date, OffsetDateTime};

use crate::auth::Principal;
use crate::auth::layer::DenialAudit;
use crate::clock::Clock;
use crate::db::Database;
use crate::error::Problem;
use crate::parameters::Parameters;

/// A service's database, parameters and clock, and the writer of its refusals' audit rows.
pub struct ServiceBase {
    db: Database,
    parameters: Arc<Parameters>,
    clock: Clock,
    refusals: DenialAudit,
    /// "/bangfu.work_relief.v1.WorkReliefService/": a method's name appended makes its path.
    service_path: &'static str,
}

impl ServiceBase {
    /// Starts the writer of refused calls' audit rows, so call it inside the runtime.
    /// `path_prefix` is the package's ("/bangfu.work_relief.v1."), `service_path` the service's.
    pub fn new(
        db: Database,
        parameters: Arc<Parameters>,
        clock: Clock,
        path_prefix: &'static str,
        service_path: &'static str,
    ) -> Self {
        Self {
            refusals: DenialAudit::start(path_prefix, db.clone()),
            db,
            parameters,
            clock,
            service_path,
        }
    }

    pub fn db(&self) -> &Database {
        &self.db
    }

    pub fn parameters(&self) -> &Parameters {
        &self.parameters
    }

    pub fn now(&self) -> OffsetDateTime {
        self.clock.now()
    }

    pub fn today(&self) -> Date {
        self.clock.today()
    }

    /// The method's full gRPC path, as audit rows and request ids name it.
    pub fn method(&self, name: &str) -> String {
        format!("{}{name}", self.service_path)
    }

    /// Audits a refusal made in a use case (not by the auth layer) and hands it back.
    pub fn refuse(&self, caller: &Principal, method_name: &str, resource: &str, refusal: Problem) -> Problem {
        self.refusals
            .refused(caller, &self.method(method_name), resource, refusal)
    }

    /// NOT_FOUND, audited, when `region` lies outside the caller's scope.
    pub fn ensure_sees(
        &self,
        caller: &Principal,
        method_name: &str,
        resource: &str,
        region: &str,
    ) -> Result<(), Problem> {
        caller
            .ensure_sees(resource, [region])
            .map_err(|refusal| self.refuse(caller, method_name, resource, refusal))
    }

    /// A rule parameter for `region` on `day`, which must be configured.
    pub async fn parameter(&self, key: &str, region: &str, day: Date) -> Result<i64, Problem> {
        self.parameters.require(key, region, day).await
    }
}
