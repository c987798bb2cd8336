//! Identity through its real gRPC surface, on SQLite and on PostgreSQL: a server on a random
//! port with the platform's layers, called with tokens as a department system would.

mod auditing;
mod batches;
mod categories;
mod corrections;
mod feed;
mod follow;
mod households;
mod import;
mod listing;
mod monitoring;
mod outage;
mod persons;
mod races;
mod support;
mod text;
mod updates;
