//! Subsidy payment through its gRPC surface, with identity on the same server.

mod accounts;
mod batches;
mod claims;
mod funds;
mod policies;
mod proposals;
mod support;
