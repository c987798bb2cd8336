//! Every RPC of `bangfu.exchange.v1` with the permission it needs. The partner-facing methods
//! answer only a partner province's token (`Access::Partner`), on the partner port; the local
//! ones never answer it. The permissions, and who holds them, are the platform's one table.

use bangfu_platform::auth::permissions::{Access, CallKind, MethodRule, Permission::*, rule};

macro_rules! local {
    ($name:literal, $permission:expr) => {
        rule(
            concat!("/bangfu.exchange.v1.ExchangeService/", $name),
            Access::Requires($permission),
            CallKind::Unary,
        )
    };
}

macro_rules! partner {
    ($name:literal, $permission:expr) => {
        rule(
            concat!("/bangfu.exchange.v1.PartnerExchangeService/", $name),
            Access::Partner($permission),
            CallKind::Unary,
        )
    };
}

/// The partner-facing methods, served on the partner port.
pub const PARTNER_METHODS: &[MethodRule] = &[
    partner!("VerifyPerson", ExchangeVerifyPerson),
    partner!("BatchVerifyPersons", ExchangeVerifyPerson),
    partner!("ListSharedPostings", ExchangePostings),
    partner!("DeliverEmploymentConfirmations", ExchangeConfirmations),
    partner!("GetPartnerInfo", ExchangePartnerInfo),
];

/// Every method of the service: the local ones (hosted with the suite) and the partner-facing
/// ones (so the one table lists them too).
pub const METHODS: &[MethodRule] = &[
    local!("ListPartners", ExchangeRead),
    local!("VerifyPartnerPerson", ExchangeVerifyPerson),
    local!("ListPartnerPostings", ExchangeRead),
    local!("GetCooperationStats", ExchangeStatsRead),
    local!("ListExchangeMessages", ExchangeRead),
    local!("GetMessage", ExchangeRead),
    local!("ListReceivedConfirmations", ExchangeConfirmations),
    local!("ListParameters", ExchangeParametersRead),
    local!("UpdateParameter", ExchangeParametersWrite),
    local!("ListAuditEvents", ExchangeAuditRead),
    partner!("VerifyPerson", ExchangeVerifyPerson),
    partner!("BatchVerifyPersons", ExchangeVerifyPerson),
    partner!("ListSharedPostings", ExchangePostings),
    partner!("DeliverEmploymentConfirmations", ExchangeConfirmations),
    partner!("GetPartnerInfo", ExchangePartnerInfo),
];
