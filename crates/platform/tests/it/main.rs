//! The platform through its real gRPC surface (a server on a random port, called as a client
//! would) and its stores on real databases: a SQLite file and the PostgreSQL server. One test
//! binary (linking dominates on two cores).

/// Runs each listed `async fn(TestDatabase)` once on SQLite and once on PostgreSQL; the
/// PostgreSQL runs carry `on_postgres` in their names and fail when the server does not answer.
macro_rules! on_both_backends {
    ($($test:ident),+ $(,)?) => {
        mod on_sqlite {
            $(
                #[tokio::test]
                async fn $test() {
                    super::$test(bangfu_platform::testing::TestDatabase::sqlite(&bangfu_platform::db::Migrations::NONE).await).await;
                }
            )+
        }
        mod on_postgres {
            $(
                #[tokio::test]
                async fn $test() {
                    super::$test(bangfu_platform::testing::TestDatabase::postgres(&bangfu_platform::db::Migrations::NONE).await).await;
                }
            )+
        }
    };
}

mod audit;
mod auth;
mod data_key_check;
mod db;
mod jobs;
mod keys;
mod outbox;
mod parameters;
mod peers;
mod server;
mod tls;
