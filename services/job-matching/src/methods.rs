//! Every RPC of `bangfu.jobs.v1` with the permission it needs. The permissions, and which roles
//! and services hold them, are the platform's one table (`bangfu_platform::auth::permissions`);
//! `bangfu permissions` prints both joined.

use bangfu_platform::auth::permissions::{Access, CallKind, MethodRule, Permission::*, rule};

macro_rules! method {
    ($name:literal, $permission:expr) => {
        method!($name, $permission, CallKind::Unary)
    };
    ($name:literal, $permission:expr, $kind:expr) => {
        rule(
            concat!("/bangfu.jobs.v1.JobMatchingService/", $name),
            Access::Requires($permission),
            $kind,
        )
    };
}

/// The service's methods, hosted with it (see [`crate::DESCRIPTOR`]).
pub const METHODS: &[MethodRule] = &[
    method!("CreateCarrier", JobsWrite),
    method!("GetCarrier", JobsRead),
    method!("ListCarriers", JobsRead),
    method!("UpdateCarrier", JobsWrite),
    method!("CertifyCarrier", JobsApprove),
    method!("CreatePosting", JobsWrite),
    method!("GetPosting", JobsRead),
    method!("ListPostings", JobsRead),
    method!("UpdatePosting", JobsWrite),
    method!("ClosePosting", JobsWrite),
    method!("WatchPostingChanges", JobsRead, CallKind::ServerStreaming),
    method!("RegisterSeeker", JobsWrite),
    method!("GetSeeker", JobsRead),
    method!("ListSeekers", JobsRead),
    method!("UpdateSeeker", JobsWrite),
    method!("RecommendPostings", JobsRead),
    method!("RecommendSeekers", JobsRead),
    method!("SubmitApplication", JobsWrite),
    method!("ListApplications", JobsRead),
    method!("DecideApplication", JobsWrite),
    method!("RecordPlacement", JobsWrite),
    method!("GetPlacement", JobsRead),
    method!("ListPlacements", JobsRead),
    method!("RecordFollowUp", JobsWrite),
    method!("EndPlacement", JobsWrite),
    method!("CreateExportBatch", JobsWrite),
    method!("GetExportBatch", JobsRead),
    method!("ListExportBatches", JobsRead),
    method!("AddTravellers", JobsWrite),
    method!("DepartExportBatch", JobsWrite),
    method!("ClaimOnJobTraining", JobsWrite),
    method!("ClaimAgencySubsidy", JobsWrite),
    method!("ClaimCarrierAward", JobsWrite),
    method!("ListSubsidyClaims", JobsRead),
    method!("CreateTrainingCourse", JobsWrite),
    method!("EnrolTrainee", JobsWrite),
    method!("RecordTrainingCompletion", JobsWrite),
    method!("CreateRecruitmentEvent", JobsWrite),
    method!("ListRecruitmentEvents", JobsRead),
    method!("GetJobStats", JobsStatsRead),
    method!("ListParameters", JobsParametersRead),
    method!("UpdateParameter", JobsParametersWrite),
    method!("ListAuditEvents", JobsAuditRead),
];
