//! Every RPC of `bangfu.welfare_post.v1` with the permission it needs. The permissions, and
//! which roles and services hold them, are the platform's one table (`bangfu_platform::auth::
//! permissions`); `bangfu permissions` prints both joined.

use bangfu_platform::auth::permissions::{Access, CallKind, MethodRule, Permission::*, rule};

macro_rules! unary {
    ($name:literal, $permission:expr) => {
        rule(
            concat!("/bangfu.welfare_post.v1.WelfarePostService/", $name),
            Access::Requires($permission),
            CallKind::Unary,
        )
    };
}

/// The service's methods, hosted with it (see [`crate::DESCRIPTOR`]).
pub const METHODS: &[MethodRule] = &[
    unary!("CreatePost", WelfarePostWrite),
    unary!("GetPost", WelfarePostRead),
    unary!("ListPosts", WelfarePostRead),
    unary!("UpdatePost", WelfarePostWrite),
    unary!("PublishAnnouncement", WelfarePostWrite),
    unary!("SubmitApplication", WelfarePostWrite),
    unary!("ListApplications", WelfarePostRead),
    unary!("CheckEligibility", WelfarePostWrite),
    unary!("ProposeHires", WelfarePostWrite),
    unary!("GetHireNotice", WelfarePostRead),
    unary!("RaiseObjection", WelfarePostWrite),
    unary!("ResolveObjection", WelfarePostApprove),
    unary!("ConfirmHires", WelfarePostApprove),
    unary!("GetAssignment", WelfarePostRead),
    unary!("ListAssignments", WelfarePostRead),
    unary!("RenewContract", WelfarePostWrite),
    unary!("RecordEvaluation", WelfarePostWrite),
    unary!("CloseMonth", WelfarePostWrite),
    unary!("ExitHolder", WelfarePostWrite),
    unary!("ListExitProposals", WelfarePostRead),
    unary!("ListFraudSignals", WelfarePostRead),
    unary!("RegisterVillageCadre", WelfarePostWrite),
    unary!("GetPostStats", WelfarePostStatsRead),
    unary!("ListParameters", WelfarePostParametersRead),
    unary!("UpdateParameter", WelfarePostParametersWrite),
    unary!("ListAuditEvents", WelfarePostAuditRead),
];
