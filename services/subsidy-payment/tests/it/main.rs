//! Subsidy payment through its gRPC surface, with identity on the same server.

mod accounts;
mod claims;
mod policies;
mod support;
