//! Job matching through its gRPC surface, with identity running, on SQLite and on PostgreSQL.

mod awards;
mod claims;
mod exports;
mod feed;
mod flow;
mod matching;
mod refusals;
mod stats;
mod support;
mod training;
