//! Identity's application layer: one use case per method, each taking the caller and domain
//! values (or plain request values where the order of checks depends on the caller), running its
//! work in one `write::Unit` transaction or one read, and answering with store values or a
//! `Problem`. No protobuf type crosses in or out except the rows of a bulk import.

mod certifications;
mod corrections;
mod feed;
mod households;
mod import;
mod jobs;
mod monitoring;
mod persons;

use std::sync::Arc;

use bangfu_platform::auth::layer::DenialAudit;
use bangfu_platform::auth::{Principal, RegionScope};
use bangfu_platform::clock::Clock;
use bangfu_platform::db::Database;
use bangfu_platform::error::{ErrorReason, Problem};
use bangfu_platform::outbox::WatchSettings;
use bangfu_platform::parameters::Parameters;
use bangfu_platform::ratelimit::SubjectRateLimiter;
use bangfu_platform::regions::DivisionTable;
use bangfu_platform::server::Shutdown;
use time::{Date, OffsetDateTime};
use tonic::Code;

pub use certifications::Revocation;
pub use households::HouseholdView;
pub use import::{Importer, RowChange, RowNote, RowOutcome, RowResult};
pub use monitoring::RecordedEmployment;
pub use persons::{FieldChange, LookupAnswer, PersonListing, PersonUpdate, PersonView, stale_person};

use crate::domain::{IdentityError, NameError};
use crate::store::Store;

/// The identity service: what every use case needs, shared by the gRPC edge.
pub struct Identity {
    store: Store,
    parameters: Arc<Parameters>,
    clock: Clock,
    regions: &'static DivisionTable,
    lookups: SubjectRateLimiter,
    shutdown: Shutdown,
    feed: WatchSettings,
    /// Refusals made by the use cases, audited like the layer's.
    refusals: DenialAudit,
}

impl Identity {
    /// Starts the writer of refused calls' audit rows, so call it inside the runtime.
    pub fn new(store: Store, parameters: Arc<Parameters>, clock: Clock, regions: &'static DivisionTable) -> Self {
        Self {
            refusals: DenialAudit::start(crate::PATH_PREFIX, store.db.clone()),
            store,
            parameters,
            clock,
            regions,
            lookups: SubjectRateLimiter::named("identity.lookups"),
            shutdown: Shutdown::new(),
            feed: WatchSettings::default(),
        }
    }

    /// Ends change-feed streams when this server drains.
    pub fn with_shutdown(mut self, shutdown: Shutdown) -> Self {
        self.shutdown = shutdown;
        self
    }

    /// How the change feed polls and how often idle streams get a heartbeat.
    pub fn with_feed_settings(mut self, feed: WatchSettings) -> Self {
        self.feed = feed;
        self
    }

    /// The division table the edge checks region codes against and names regions from.
    pub(crate) fn regions(&self) -> &'static DivisionTable {
        self.regions
    }

    /// Today in China, for parsing what may not lie in the future.
    pub(crate) fn today(&self) -> Date {
        self.clock.today()
    }

    pub(crate) fn now(&self) -> OffsetDateTime {
        self.clock.now()
    }

    pub(crate) fn parameters(&self) -> &Parameters {
        &self.parameters
    }

    pub(crate) fn db(&self) -> &Database {
        &self.store.db
    }

    pub(crate) fn shutdown(&self) -> &Shutdown {
        &self.shutdown
    }

    /// Audits a refusal made here and hands it back (see `DenialAudit::refused`).
    pub(crate) fn refuse(&self, caller: &Principal, method: &str, resource: &str, refusal: Problem) -> Problem {
        self.refusals.refused(caller, method, resource, refusal)
    }

    /// NOT_FOUND, audited as a refusal, when none of `regions` lies in the caller's scope: the
    /// record's existence is not revealed, but the attempt is on record.
    pub(crate) fn ensure_sees<'a>(
        &self,
        caller: &Principal,
        method: &str,
        resource: &str,
        regions: impl IntoIterator<Item = &'a str>,
    ) -> Result<(), Problem> {
        caller
            .ensure_sees(resource, regions)
            .map_err(|refusal| self.refuse(caller, method, resource, refusal))
    }
}

const METHOD_PREFIX: &str = "/bangfu.identity.v1.IdentityService/";

/// The full method name of an RPC, as request keys and audit rows record it.
pub fn method(name: &str) -> String {
    format!("{METHOD_PREFIX}{name}")
}

/// The most names or lookups one batch call takes.
pub const MAX_BATCH: usize = 1000;

/// INVALID_ARGUMENT: more than `MAX_BATCH` items in `field`.
pub fn batch_too_large(field: &str) -> Problem {
    Problem::invalid_field(
        ErrorReason::FieldInvalid,
        field,
        format!("at most {MAX_BATCH} per call"),
        "单次最多查询1000条，请分批提交",
    )
}

/// The region prefix a listing covers: the caller's scope and the requested one together
/// (the longer one); None when they do not overlap, so nothing is visible.
fn visible_prefix(caller: &Principal, wanted: &RegionScope) -> Option<String> {
    match caller.scope.intersect(wanted) {
        RegionScope::Country => Some(String::new()),
        RegionScope::Prefix(prefix) => Some(prefix),
        RegionScope::Nothing => None,
    }
}

/// The status each domain refusal becomes. It lives here, not in `domain`, so that the rules
/// stay free of gRPC codes.
impl From<IdentityError> for Problem {
    fn from(error: IdentityError) -> Self {
        let message = error.to_string();
        match error {
            IdentityError::CitizenId { field, source } => Problem::invalid_field(
                ErrorReason::CitizenIdInvalid,
                field,
                source.to_string(),
                source.message_zh(),
            ),
            IdentityError::Name { field, source } => {
                let reason = if source == NameError::TooLong {
                    ErrorReason::FieldTooLong
                } else {
                    ErrorReason::FieldInvalid
                };
                Problem::invalid_field(reason, field, source.to_string(), source.message_zh())
            }
            IdentityError::RegionUnknown { field, .. } => Problem::invalid_field(
                ErrorReason::RegionUnknown,
                field,
                message,
                "地区代码不是现行区划表中的村级（12位）代码，请核对",
            ),
            IdentityError::RegionOutsideScope { field } => Problem::new(
                Code::PermissionDenied,
                ErrorReason::PermissionMissing,
                message,
                "该地区不在您的管辖范围内，不能登记",
            )
            .with_violation(field, "outside the caller's region scope"),
            IdentityError::Phone => Problem::invalid_field(
                ErrorReason::FieldInvalid,
                "person.phone",
                "must be an 11-digit mobile number",
                "手机号码应为11位数字",
            ),
            IdentityError::Skills(what) => Problem::invalid_field(
                ErrorReason::FieldInvalid,
                "person.skills",
                what,
                "技能最多20项，每项不超过50个字",
            ),
            IdentityError::Invalid { field, what, what_zh } => {
                Problem::invalid_field(ErrorReason::FieldInvalid, field, what, what_zh)
            }
            IdentityError::PersonExists { resource } => Problem::new(
                Code::AlreadyExists,
                ErrorReason::AlreadyExists,
                message,
                "该身份证号码已登记，请直接查看已有档案",
            )
            .with_metadata("resource", resource),
            IdentityError::PersonExistsOutsideScope => Problem::new(
                Code::AlreadyExists,
                ErrorReason::PersonExistsOutsideScope,
                message,
                "该身份证号码已在其他地区登记，请联系上级部门核实",
            ),
        }
    }
}
