//! bangfu's wire contracts, generated from `proto/bangfu/**.proto`.
//!
//! Wire types stay at the edge: services convert them to domain values in their `grpc`
//! module and never pass them further in. Only conversions of the common types live here.

#![allow(clippy::all, clippy::pedantic)]

/// The encoded file descriptor set of every bangfu contract, for server reflection.
pub const FILE_DESCRIPTOR_SET: &[u8] = tonic::include_file_descriptor_set!("bangfu_descriptor");

pub mod common {
    pub mod v1 {
        tonic::include_proto!("bangfu.common.v1");
    }
}

pub mod identity {
    pub mod v1 {
        tonic::include_proto!("bangfu.identity.v1");
    }
}

/// Subsidy payment's contract (`services/subsidy-payment`).
pub mod subsidy {
    pub mod v1 {
        tonic::include_proto!("bangfu.subsidy.v1");
    }
}

/// Public-welfare posts' contract (`services/public-welfare-post`).
pub mod welfare_post {
    pub mod v1 {
        tonic::include_proto!("bangfu.welfare_post.v1");
    }
}

/// Job matching's contract (`services/job-matching`).
pub mod jobs {
    pub mod v1 {
        tonic::include_proto!("bangfu.jobs.v1");
    }
}

/// Work relief's contract (`services/work-relief`).
pub mod work_relief {
    pub mod v1 {
        tonic::include_proto!("bangfu.work_relief.v1");
    }
}

pub mod diagnostics {
    pub mod v1 {
        tonic::include_proto!("bangfu.diagnostics.v1");
    }
}

impl common::v1::ErrorReason {
    /// The reason as it appears in `google.rpc.ErrorInfo.reason`: the enum value's name
    /// without its `ERROR_REASON_` prefix.
    pub fn code(self) -> &'static str {
        let name = self.as_str_name();
        name.strip_prefix("ERROR_REASON_").unwrap_or(name)
    }
}

/// The Shandong–Chongqing exchange's contract (`services/exchange`).
pub mod exchange {
    pub mod v1 {
        tonic::include_proto!("bangfu.exchange.v1");
    }
}

/// Reports' contract (`services/reports`).
pub mod reports {
    pub mod v1 {
        tonic::include_proto!("bangfu.reports.v1");
    }
}
