//! The `bangfu` binary as a user runs it: `up`, the client commands, `token issue`.

mod backup;
mod check_config;
mod cli;
mod exchange;
mod identity_cli;
mod import;
mod jobs_cli;
mod logs;
mod metrics;
mod migrate;
mod operator;
mod posts_cli;
mod relief_cli;
mod replicas;
mod reports;
mod subsidy_cli;
mod subsidy_crash;
mod tls;
mod up;
