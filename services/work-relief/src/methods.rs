//! Every RPC of `bangfu.work_relief.v1` with the permission it needs. The permissions, and
//! which roles and services hold them, are the platform's one table (`bangfu_platform::auth::
//! permissions`); `bangfu permissions` prints both joined.

use bangfu_platform::auth::permissions::{Access, CallKind, MethodRule, Permission::*, rule};

macro_rules! method {
    ($name:literal, $permission:expr) => {
        method!($name, $permission, CallKind::Unary)
    };
    ($name:literal, $permission:expr, $kind:expr) => {
        rule(
            concat!("/bangfu.work_relief.v1.WorkReliefService/", $name),
            Access::Requires($permission),
            $kind,
        )
    };
}

/// The service's methods, hosted with it (see [`crate::DESCRIPTOR`]).
pub const METHODS: &[MethodRule] = &[
    method!("CreateProject", WorkReliefWrite),
    method!("GetProject", WorkReliefRead),
    method!("ListProjects", WorkReliefRead),
    method!("UpdateProject", WorkReliefWrite),
    method!("AllocateFunds", WorkReliefWrite),
    method!("ListAllocations", WorkReliefRead),
    method!("EnrolWorker", WorkReliefWrite),
    method!("ListWorkers", WorkReliefRead),
    method!("EndEnrolment", WorkReliefWrite),
    method!("RecordAttendance", WorkReliefWrite, CallKind::ClientStreaming),
    method!("PreparePayroll", WorkReliefWrite),
    method!("GetPayroll", WorkReliefRead),
    method!("ListPayrolls", WorkReliefRead),
    method!("PublishPayrollNotice", WorkReliefWrite),
    method!("GetPayrollNotice", WorkReliefRead),
    method!("RaiseObjection", WorkReliefWrite),
    method!("ResolveObjection", WorkReliefApprove),
    method!("ApprovePayroll", WorkReliefApprove),
    method!("ConfirmReceipt", WorkReliefWrite),
    method!("ResubmitLine", WorkReliefApprove),
    method!("ListArrears", WorkReliefRead),
    method!("CloseProject", WorkReliefApprove),
    method!("GetProjectStats", WorkReliefStatsRead),
    method!("ListParameters", WorkReliefParametersRead),
    method!("UpdateParameter", WorkReliefParametersWrite),
    method!("ListAuditEvents", WorkReliefAuditRead),
];
