//! Every RPC of `bangfu.reports.v1` with the permission it needs. The permissions, and which
//! roles and services hold them, are the platform's one table (`bangfu_platform::auth::
//! permissions`); `bangfu permissions` prints both joined.

use bangfu_platform::auth::permissions::{Access, CallKind, MethodRule, Permission::*, rule};

macro_rules! method {
    ($name:literal, $permission:expr) => {
        method!($name, $permission, CallKind::Unary)
    };
    ($name:literal, $permission:expr, $kind:expr) => {
        rule(
            concat!("/bangfu.reports.v1.ReportService/", $name),
            Access::Requires($permission),
            $kind,
        )
    };
}

/// The service's methods, hosted with it (see [`crate::DESCRIPTOR`]).
pub const METHODS: &[MethodRule] = &[
    method!("GenerateReport", ReportsWrite),
    method!("GetReport", ReportsRead),
    method!("ListReports", ReportsRead),
    method!("ExportReport", ReportsRead, CallKind::ServerStreaming),
    method!("SubmitReport", ReportsWrite),
    method!("ApproveReport", ReportsApprove),
    method!("ReturnReport", ReportsApprove),
    method!("ListReportingPeriods", ReportsRead),
    method!("ListParameters", ReportsParametersRead),
    method!("UpdateParameter", ReportsParametersWrite),
    method!("ListAuditEvents", ReportsAuditRead),
];
