//! The one write path every service's changes take (a unit of work): the request id is claimed
//! first, then the change, its feed events and its audit row are written in one transaction,
//! and the request id remembers what the change produced — all committed together or not at all.
//!
//! ```text
//! let unit = match write::begin(&db, key).await? {
//!     Begun::Replay { resource } => return read_back(resource),   // a retry: the first answer
//!     Begun::Fresh(unit) => unit,
//! };
//! store.change(unit.tx(), …).await?;          // reads and writes on the unit's transaction
//! unit.publish(&NewEvent { … }).await?;       // feed events, same transaction
//! unit.commit(AuditEntry::by(…)).await?;      // audit row + request id, then COMMIT
//! read_back(resource)                          // after commit, on the caller's view
//! ```
//!
//! Why the request id is claimed before anything else: a retried state change (a repeated
//! annul) must get the first call's answer, not a refusal because the state has moved on; and
//! two first attempts racing on two replicas must not both write. On PostgreSQL the claim is an
//! `INSERT … ON CONFLICT DO NOTHING` that waits on the first attempt's uncommitted key: when it
//! commits, the second sees its row and replays it; when it rolls back, the second goes ahead.
//! SQLite's `BEGIN IMMEDIATE` serializes writers, so the second simply finds the first's row.

use sqlx::{Any, AnyConnection, Row, Transaction};

use crate::audit::{self, AuditEntry};
use crate::db::{Database, to_micros};
use crate::error::{ErrorReason, Problem};
use crate::idempotency::RequestKey;
use crate::outbox::{self, NewEvent};

/// How `begin` found the request id.
pub enum Begun {
    /// First time: make the change on this unit.
    Fresh(Unit),
    /// The same request was made before and committed; answer with what it produced.
    Replay { resource: String },
}

/// An open write: one transaction holding the claimed request id, if any.
pub struct Unit {
    tx: Transaction<'static, Any>,
    key: Option<RequestKey>,
    now: time::OffsetDateTime,
    /// The resource of the last audit row written, which a replay answers with.
    audited: Option<String>,
}

/// Opens a write transaction and claims `key` in it. The same id with another request is
/// REQUEST_ID_REUSED; the same request committed before is a [`Begun::Replay`].
pub async fn begin(db: &Database, key: Option<RequestKey>, now: time::OffsetDateTime) -> Result<Begun, Problem> {
    let mut tx = db.begin().await?;
    if let Some(key) = &key {
        let claimed = sqlx::query(
            "INSERT INTO request_ids (subject, method, request_id, request_hash, resource, created_us) \
             VALUES ($1, $2, $3, $4, '', $5) ON CONFLICT (subject, method, request_id) DO NOTHING",
        )
        .bind(&key.subject)
        .bind(&key.method)
        .bind(&key.request_id)
        .bind(&key.request_hash)
        .bind(to_micros(now))
        .execute(&mut *tx)
        .await?
        .rows_affected();
        if claimed == 0 {
            let row = sqlx::query(
                "SELECT request_hash, resource FROM request_ids WHERE subject = $1 AND method = $2 AND request_id = $3",
            )
            .bind(&key.subject)
            .bind(&key.method)
            .bind(&key.request_id)
            .fetch_one(&mut *tx)
            .await?;
            let hash: String = row.try_get("request_hash")?;
            let resource: String = row.try_get("resource")?;
            tx.rollback().await?;
            if hash != key.request_hash {
                return Err(request_id_reused());
            }
            return Ok(Begun::Replay { resource });
        }
    }
    Ok(Begun::Fresh(Unit {
        tx,
        key,
        now,
        audited: None,
    }))
}

/// A write with no request id (made safe to retry by an etag or a guarded state change): the
/// unit itself, since there is nothing to replay.
pub async fn begin_unkeyed(db: &Database, now: time::OffsetDateTime) -> Result<Unit, Problem> {
    Ok(Unit {
        tx: db.begin().await?,
        key: None,
        now,
        audited: None,
    })
}

/// REQUEST_ID_REUSED: the client sent another request under an id it used before.
pub fn request_id_reused() -> Problem {
    Problem::new(
        tonic::Code::FailedPrecondition,
        ErrorReason::RequestIdReused,
        "this request_id was used before with a different request",
        "该请求编号已用于另一笔不同的业务，请使用新的请求编号",
    )
}

impl Unit {
    /// The transaction every read and write of the use case runs on.
    pub fn tx(&mut self) -> &mut AnyConnection {
        &mut self.tx
    }

    /// The instant the write happens at (the request id's creation time).
    pub fn now(&self) -> time::OffsetDateTime {
        self.now
    }

    /// Appends a feed event in the unit's transaction.
    pub async fn publish(&mut self, event: &NewEvent<'_>) -> Result<(), Problem> {
        outbox::append(&mut self.tx, event, self.now).await?;
        Ok(())
    }

    /// Appends many feed events in the unit's transaction (a bulk import's chunk).
    pub async fn publish_many(&mut self, events: &[NewEvent<'_>]) -> Result<(), Problem> {
        outbox::append_many(&mut self.tx, events, self.now).await?;
        Ok(())
    }

    /// Appends an audit row in the unit's transaction: for a write that changes several
    /// records (a confirmation of many, an import chunk), one per record; `commit_audited` then
    /// commits them.
    pub async fn audit(&mut self, entry: AuditEntry) -> Result<(), Problem> {
        let entry = entry.with_current_trace();
        audit::append(&mut self.tx, &entry).await?;
        self.audited = Some(entry.resource);
        Ok(())
    }

    /// Appends one audit row per record a bulk step wrote, in a few statements; `commit_audited`
    /// then commits them.
    pub async fn audit_many(&mut self, entries: Vec<AuditEntry>) -> Result<(), Problem> {
        let entries: Vec<AuditEntry> = entries.into_iter().map(AuditEntry::with_current_trace).collect();
        audit::append_many(&mut self.tx, &entries).await?;
        if let Some(last) = entries.last() {
            self.audited = Some(last.resource.clone());
        }
        Ok(())
    }

    /// Appends the audit row, records the request id's outcome (the audited resource) and
    /// commits. Every write is audited: there is no commit without an entry.
    pub async fn commit(mut self, entry: AuditEntry) -> Result<(), Problem> {
        self.audit(entry).await?;
        self.commit_audited().await
    }

    /// Commits what `audit` recorded; the request id remembers the last audited resource. A
    /// unit with no audit row wrote nothing worth recording (every candidate was refused) and
    /// commits nothing but its request id.
    pub async fn commit_audited(mut self) -> Result<(), Problem> {
        let resource = self.audited.take().unwrap_or_default();
        if let Some(key) = &self.key {
            sqlx::query("UPDATE request_ids SET resource = $1 WHERE subject = $2 AND method = $3 AND request_id = $4")
                .bind(&resource)
                .bind(&key.subject)
                .bind(&key.method)
                .bind(&key.request_id)
                .execute(&mut *self.tx)
                .await?;
        }
        self.tx.commit().await?;
        Ok(())
    }
}
