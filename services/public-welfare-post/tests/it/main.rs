//! Public-welfare posts through their gRPC surface, with identity and subsidy payment running,
//! on SQLite and on PostgreSQL.

mod hiring;
mod months;
mod refusals;
mod support;
