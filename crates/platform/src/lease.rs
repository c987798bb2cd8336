//! Work that one replica does at a time (a feed follower, a monthly job): whoever takes the
//! lease does it, the others stand by. On PostgreSQL the lease is a session advisory lock held
//! on a connection of its own, so a replica that dies (SIGKILL, a lost node) releases it with
//! its connection and another takes over without waiting for an expiry. SQLite serves one
//! process, which always holds it.
//!
//! A lease only saves duplicate work; correctness never rests on it alone. Followers advance
//! their cursor by compare-and-set and jobs are idempotent, so two holders at once (a lock
//! lost with a connection the holder did not notice yet) still apply every effect once.

use sha2::{Digest, Sha256};
use sqlx::Any;
use sqlx::pool::PoolConnection;

use crate::db::{Backend, Database, DbError};

/// A lease held until dropped or released.
pub struct Lease {
    /// The connection holding the advisory lock (PostgreSQL).
    holder: Option<(PoolConnection<Any>, i64)>,
}

/// The advisory-lock key of a lease name: stable across replicas and versions.
fn lock_key(name: &str) -> i64 {
    let digest = Sha256::digest(format!("bangfu.lease:{name}").as_bytes());
    let mut bytes = [0u8; 8];
    bytes.copy_from_slice(&digest[..8]);
    i64::from_be_bytes(bytes)
}

/// Takes the lease `name` in `db` if no other replica holds it.
pub async fn try_take(db: &Database, name: &str) -> Result<Option<Lease>, DbError> {
    match db.backend() {
        Backend::Sqlite => Ok(Some(Lease { holder: None })),
        Backend::Postgres => {
            let key = lock_key(name);
            let mut connection = db.pool().acquire().await?;
            let taken: bool = sqlx::query_scalar("SELECT pg_try_advisory_lock($1)")
                .bind(key)
                .fetch_one(&mut *connection)
                .await?;
            Ok(taken.then(|| Lease {
                holder: Some((connection, key)),
            }))
        }
    }
}

impl Lease {
    /// Whether the lock's connection still answers: a holder whose connection broke has lost
    /// the lease (PostgreSQL released the lock) and must stop and take it again.
    pub async fn still_held(&mut self) -> bool {
        match &mut self.holder {
            None => true,
            Some((connection, _)) => sqlx::query("SELECT 1").execute(&mut **connection).await.is_ok(),
        }
    }

    /// Gives the lease back at once, so a standby replica takes over without waiting.
    /// The connection stays in the lease until the unlock has answered: a release cancelled
    /// half-way (a request dropped by its caller) or failed leaves it to `Drop`, which closes it
    /// rather than hand a locked connection back to the pool.
    pub async fn release(mut self) {
        if let Some((connection, key)) = self.holder.as_mut() {
            let unlocked = sqlx::query("SELECT pg_advisory_unlock($1)")
                .bind(*key)
                .execute(&mut **connection)
                .await;
            if unlocked.is_ok() {
                // Unlocked: the connection goes back to the pool.
                drop(self.holder.take());
            }
        }
    }
}

impl Drop for Lease {
    fn drop(&mut self) {
        // Dropped without `release` (a cancelled task): close the connection rather than return
        // it to the pool still holding the lock.
        if let Some((connection, _)) = self.holder.take() {
            drop(connection.detach());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lock_keys_are_stable_and_differ_by_name() {
        assert_eq!(
            lock_key("subsidy/identity-persons"),
            lock_key("subsidy/identity-persons")
        );
        assert_ne!(
            lock_key("subsidy/identity-persons"),
            lock_key("welfare_post/identity-persons")
        );
    }
}
