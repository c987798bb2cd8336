//! Work relief through its gRPC surface, with identity and subsidy payment running, on SQLite
//! and on PostgreSQL.

mod payroll;
mod refusals;
mod support;
