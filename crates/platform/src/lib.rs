//! What every bangfu service shares: configuration, the clock, the database, authorization,
//! the error model, telemetry, the server, personal-data protection, the audit log and rule
//! parameters. A service crate brings its domain, its store and its `grpc` edge; everything
//! here is written once so every service behaves alike.

pub mod audit;
pub mod auth;
pub mod clock;
pub mod config;
pub mod data_key_check;
pub mod db;
pub mod diagnostics;
pub mod error;
pub mod follow;
pub mod idempotency;
pub mod identity_reader;
pub mod jobs;
pub mod key_files;
pub mod lease;
pub mod metrics;
pub mod outbox;
pub mod paging;
pub mod parameters;
pub mod peers;
pub mod pii;
pub mod ratelimit;
pub mod regions;
pub mod request_text;
pub mod rows;
pub mod server;
pub mod service;
pub mod service_base;
pub mod service_rpc;
pub mod streams;
pub mod subsidy_claims;
pub mod telemetry;
#[cfg(feature = "testing")]
pub mod testing;
pub mod wire;
pub mod write;
