//! The platform through its real gRPC surface: a server on a random port, called as a client
//! would. One test binary (linking dominates on two cores).

mod auth;
mod keys;
mod server;
