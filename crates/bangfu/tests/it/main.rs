//! The `bangfu` binary as a user runs it: `up`, the client commands, `token issue`.

mod backup;
mod check_config;
mod import;
mod replicas;
mod tls;
mod up;
