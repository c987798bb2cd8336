//! The append-only, hash-chained audit log each service keeps in its own database: every
//! write, every unmasked read of personal data, every lookup by citizen ID and every denied
//! call. Rows are appended inside the business transaction they describe (so a rolled-back
//! change leaves no audit row claiming it happened) and chained afterwards by one sealer in
//! commit order: each event gets a seal (a row of its own in `audit_seals`, so the event is
//! written once and never changed) holding its sequence and the hash of the previous one, so a
//! row changed or removed behind the service's back breaks the chain at that row, and `verify`
//! names it.
//!
//! Sealing afterwards keeps writers from queueing on the chain's last row. On PostgreSQL only
//! rows below the oldest running transaction are sealed (the rule the change feeds use), so a
//! late commit can never land behind a sealed row; an advisory lock keeps replicas from sealing
//! at once.

use sha2::{Digest, Sha256};
use sqlx::{AnyConnection, Row};
use time::OffsetDateTime;

use crate::auth::Principal;
use crate::db::{Backend, Database, DbError, from_micros, to_micros};

/// The advisory lock a PostgreSQL sealer holds for its transaction.
const SEALER_LOCK: i64 = 0x6261_6e67_6675_0001;
/// Rows sealed per transaction.
const SEAL_BATCH: i64 = 500;
/// The `prev_hash` of the first row ever sealed.
pub const GENESIS: &str = "genesis";

/// How an audited call ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    Succeeded,
    Denied,
    Failed,
}

impl Outcome {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Succeeded => "succeeded",
            Self::Denied => "denied",
            Self::Failed => "failed",
        }
    }

    pub fn parse(text: &str) -> Option<Self> {
        [Self::Succeeded, Self::Denied, Self::Failed]
            .into_iter()
            .find(|o| o.as_str() == text)
    }
}

/// One audited event, before it is sealed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuditEntry {
    pub time: OffsetDateTime,
    pub subject: String,
    pub department: String,
    pub acting_service: String,
    pub method: String,
    pub resource: String,
    pub outcome: Outcome,
    pub reason: String,
    pub purpose_code: String,
    pub purpose_reference: String,
    pub trace_id: String,
    /// The region the event concerns (see `in_region`); '' for the whole country.
    pub region: String,
}

impl AuditEntry {
    /// A successful call by `principal`, in the region of the caller's scope until `in_region`
    /// names the record's.
    pub fn by(principal: &Principal, method: &str, resource: impl Into<String>, time: OffsetDateTime) -> Self {
        let region = match &principal.scope {
            crate::auth::RegionScope::Prefix(prefix) => prefix.clone(),
            crate::auth::RegionScope::Country | crate::auth::RegionScope::Nothing => String::new(),
        };
        Self {
            region,
            time,
            subject: principal.subject.clone(),
            department: principal.department.map(|d| d.as_str().to_string()).unwrap_or_default(),
            acting_service: principal.acting_service.clone().unwrap_or_default(),
            method: method.to_string(),
            resource: resource.into(),
            outcome: Outcome::Succeeded,
            reason: String::new(),
            purpose_code: String::new(),
            purpose_reference: String::new(),
            trace_id: String::new(),
        }
    }

    /// Work a service does on its own account (a scheduled job): the service is the subject.
    pub fn by_service(service: &str, method: &str, resource: impl Into<String>, time: OffsetDateTime) -> Self {
        Self {
            subject: service.to_string(),
            acting_service: service.to_string(),
            resource: resource.into(),
            ..Self::anonymous(method, time)
        }
    }

    /// A call whose caller is not known (no token, or one that did not verify).
    pub fn anonymous(method: &str, time: OffsetDateTime) -> Self {
        Self {
            time,
            subject: String::new(),
            department: String::new(),
            acting_service: String::new(),
            method: method.to_string(),
            resource: String::new(),
            outcome: Outcome::Succeeded,
            reason: String::new(),
            purpose_code: String::new(),
            purpose_reference: String::new(),
            trace_id: String::new(),
            region: String::new(),
        }
    }

    /// The region of the record the call concerned (a person's registered region): auditors
    /// of that region see the event.
    pub fn in_region(mut self, region: &str) -> Self {
        self.region = region.to_string();
        self
    }

    pub fn with_outcome(mut self, outcome: Outcome, reason: &str) -> Self {
        self.outcome = outcome;
        self.reason = reason.to_string();
        self
    }

    /// The purpose stated for reading personal data in clear.
    pub fn with_purpose(mut self, code: &str, reference: &str) -> Self {
        self.purpose_code = code.to_string();
        self.purpose_reference = reference.to_string();
        self
    }

    /// Fills in the current call's trace id unless one was set.
    pub fn with_current_trace(mut self) -> Self {
        if self.trace_id.is_empty()
            && let Some(trace_id) = crate::telemetry::current_trace_id()
        {
            self.trace_id = trace_id;
        }
        self
    }

    pub fn with_trace_id(mut self, trace_id: &str) -> Self {
        self.trace_id = trace_id.to_string();
        self
    }
}

/// A sealed event as auditors read it: the event and its seal (a row of its own, so the event
/// is written once and never changed).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SealedEvent {
    pub sequence: i64,
    pub entry: AuditEntry,
    pub prev_hash: String,
    pub hash: String,
}

/// Appends an event inside the caller's transaction.
pub async fn append(connection: &mut AnyConnection, entry: &AuditEntry) -> Result<(), sqlx::Error> {
    append_many(connection, std::slice::from_ref(entry)).await
}

/// Appends many events inside the caller's transaction in a few statements (a bulk call's
/// chunk, one row per record it wrote).
pub async fn append_many(connection: &mut AnyConnection, entries: &[AuditEntry]) -> Result<(), sqlx::Error> {
    const COLUMNS: usize = 12;
    for batch in entries.chunks(ROWS_PER_STATEMENT) {
        let sql = format!(
            "INSERT INTO audit_events (event_time_us, subject, department, acting_service, method, resource, \
             outcome, reason, purpose_code, purpose_reference, trace_id, region) VALUES {}",
            crate::db::values_groups(connection, batch.len(), COLUMNS)
        );
        let mut query = sqlx::query(sqlx::AssertSqlSafe(sql));
        for entry in batch {
            query = query
                .bind(to_micros(entry.time))
                .bind(entry.subject.clone())
                .bind(entry.department.clone())
                .bind(entry.acting_service.clone())
                .bind(entry.method.clone())
                .bind(entry.resource.clone())
                .bind(entry.outcome.as_str())
                .bind(entry.reason.clone())
                .bind(entry.purpose_code.clone())
                .bind(entry.purpose_reference.clone())
                .bind(entry.trace_id.clone())
                .bind(entry.region.clone());
        }
        query.execute(&mut *connection).await?;
    }
    Ok(())
}

/// Appends an event in a transaction of its own: for reads and denied calls, which change
/// nothing else.
pub async fn append_now(db: &Database, entry: &AuditEntry) -> Result<(), DbError> {
    append_many_now(db, std::slice::from_ref(entry)).await
}

/// Appends events in a transaction of their own (a batch read names each person it read) and
/// returns once they are committed. Rows of concurrent calls share one transaction and one
/// commit (a group commit): a read that must be audited before it is answered (a lookup, an
/// unmasked read) then waits for one disk flush shared with the others instead of queueing for
/// a flush of its own. Nothing is answered before its rows are durable.
pub async fn append_many_now(db: &Database, entries: &[AuditEntry]) -> Result<(), DbError> {
    let entries: Vec<AuditEntry> = entries.iter().map(|e| e.clone().with_current_trace()).collect();
    if let Some(group) = GroupCommit::of(db) {
        let (done, committed) = tokio::sync::oneshot::channel();
        let queued = Queued {
            entries: entries.clone(),
            done,
        };
        if group.sender.send(queued).await.is_ok() && committed.await == Ok(true) {
            return Ok(());
        }
        // The group's transaction failed (or its writer is gone): these rows go alone, so the
        // caller learns its own error. Rows of a commit whose outcome was lost may then be
        // written twice; an audit row is never lost.
    }
    commit_rows(db, &entries).await
}

/// Rows one INSERT statement writes (`append_many`'s chunk).
const ROWS_PER_STATEMENT: usize = 500;

async fn commit_rows(db: &Database, entries: &[AuditEntry]) -> Result<(), DbError> {
    if entries.len() <= ROWS_PER_STATEMENT {
        // One statement is its own transaction: all its rows or none, and one round trip to
        // the database instead of three (BEGIN, INSERT, COMMIT).
        let mut connection = db.acquire().await?;
        append_many(&mut connection, entries).await?;
        return Ok(());
    }
    let mut tx = db.begin().await?;
    append_many(&mut tx, entries).await?;
    tx.commit().await?;
    Ok(())
}

/// Calls' audit rows waiting for the group's next commit, and how each learns it committed.
struct Queued {
    entries: Vec<AuditEntry>,
    done: tokio::sync::oneshot::Sender<bool>,
}

/// The writer of a database's group commits: one task that takes every call queued while the
/// previous commit ran and writes them in one transaction.
#[derive(Debug)]
pub(crate) struct GroupCommit {
    sender: tokio::sync::mpsc::Sender<Queued>,
}

/// Calls in one group at most: a bound on one transaction's rows and on what one failure sends
/// back to be written alone.
const GROUP_CALLS: usize = 256;

impl GroupCommit {
    /// The database's group commit, started on first use inside a Tokio runtime; None outside
    /// one (the rows are then written alone).
    fn of(db: &Database) -> Option<&GroupCommit> {
        let slot = db.audit_group();
        if let Some(group) = slot.get() {
            return Some(group);
        }
        let runtime = tokio::runtime::Handle::try_current().ok()?;
        let (sender, receiver) = tokio::sync::mpsc::channel(4 * GROUP_CALLS);
        // Two calls may race to start it: the one that loses drops its sender, and its writer
        // ends at once.
        if slot.set(GroupCommit { sender }).is_ok() {
            runtime.spawn(Self::write(db.without_audit_group(), receiver));
        }
        slot.get()
    }

    async fn write(db: Database, mut receiver: tokio::sync::mpsc::Receiver<Queued>) {
        while let Some(first) = receiver.recv().await {
            let mut group = vec![first];
            while group.len() < GROUP_CALLS {
                match receiver.try_recv() {
                    Ok(queued) => group.push(queued),
                    Err(_) => break,
                }
            }
            let entries: Vec<AuditEntry> = group.iter().flat_map(|q| q.entries.iter().cloned()).collect();
            let committed = match commit_rows(&db, &entries).await {
                Ok(()) => true,
                Err(error) => {
                    tracing::warn!(%error, rows = entries.len(), "an audit group commit failed; each call writes its rows alone");
                    false
                }
            };
            for queued in group {
                // A caller gone (its deadline passed) needs no answer; its rows are written.
                let _ = queued.done.send(committed);
            }
        }
    }
}

/// The hash that chains `entry` at `sequence` after `prev_hash`. Every field is
/// length-prefixed, so no two different rows encode alike.
pub fn chain_hash(prev_hash: &str, sequence: i64, entry: &AuditEntry) -> String {
    let mut hasher = Sha256::new();
    let time = to_micros(entry.time).to_string();
    let sequence = sequence.to_string();
    for field in [
        prev_hash,
        &sequence,
        &time,
        &entry.subject,
        &entry.department,
        &entry.acting_service,
        &entry.method,
        &entry.resource,
        entry.outcome.as_str(),
        &entry.reason,
        &entry.purpose_code,
        &entry.purpose_reference,
        &entry.trace_id,
    ] {
        hasher.update((field.len() as u32).to_be_bytes());
        hasher.update(field.as_bytes());
    }
    // Rows from before regions were recorded (all '') keep the hashes they were sealed with.
    if !entry.region.is_empty() {
        hasher.update((entry.region.len() as u32).to_be_bytes());
        hasher.update(entry.region.as_bytes());
    }
    hasher.finalize().iter().map(|b| format!("{b:02x}")).collect()
}

fn entry_of(row: &sqlx::any::AnyRow) -> Result<AuditEntry, sqlx::Error> {
    let outcome: String = row.try_get("outcome")?;
    let micros: i64 = row.try_get("event_time_us")?;
    Ok(AuditEntry {
        time: from_micros(micros).unwrap_or(OffsetDateTime::UNIX_EPOCH),
        subject: row.try_get("subject")?,
        department: row.try_get("department")?,
        acting_service: row.try_get("acting_service")?,
        method: row.try_get("method")?,
        resource: row.try_get("resource")?,
        // An unknown outcome can only be a row written behind our back; the hash will not match.
        outcome: Outcome::parse(&outcome).unwrap_or(Outcome::Failed),
        reason: row.try_get("reason")?,
        purpose_code: row.try_get("purpose_code")?,
        purpose_reference: row.try_get("purpose_reference")?,
        trace_id: row.try_get("trace_id")?,
        region: row.try_get("region")?,
    })
}

/// Chains every committed, unsealed row; returns how many were sealed. Safe to run on every
/// replica at once: only one seals at a time, the others return 0.
pub async fn seal(db: &Database) -> Result<u64, DbError> {
    let mut total = 0;
    loop {
        let sealed = seal_batch(db).await?;
        total += sealed;
        if sealed < SEAL_BATCH as u64 {
            return Ok(total);
        }
    }
}

async fn seal_batch(db: &Database) -> Result<u64, DbError> {
    let mut tx = db.begin().await?;
    let unsealed_sql = match db.backend() {
        Backend::Postgres => {
            let locked: bool = sqlx::query_scalar("SELECT pg_try_advisory_xact_lock($1)")
                .bind(SEALER_LOCK)
                .fetch_one(&mut *tx)
                .await?;
            if !locked {
                return Ok(0);
            }
            // Events are sealed in (xid, id) order and only once every transaction below their
            // xid has ended, so none still to seal can lie behind the last sealed one: the
            // ordered index scan from there reads only what it returns.
            "SELECT id, xid::text AS xid_text, event_time_us, subject, department, acting_service, method, \
             resource, outcome, reason, purpose_code, purpose_reference, trace_id, region FROM audit_events \
             WHERE (xid, id) > ($2::text::xid8, $3) AND xid < pg_snapshot_xmin(pg_current_snapshot()) \
             ORDER BY xid, id LIMIT $1"
        }
        Backend::Sqlite => {
            "SELECT id, '' AS xid_text, event_time_us, subject, department, acting_service, method, resource, \
             outcome, reason, purpose_code, purpose_reference, trace_id, region FROM audit_events \
             WHERE id > $2 ORDER BY id LIMIT $1"
        }
    };
    let head = sqlx::query(head_sql(db.backend())).fetch_one(&mut *tx).await?;
    let mut sequence: i64 = head.try_get("last_sequence")?;
    let mut prev_hash: String = head.try_get("last_hash")?;
    let mut last_xid: String = head.try_get("last_xid")?;
    let mut last_event_id: i64 = head.try_get("last_event_id")?;
    let unsealed = sqlx::query(unsealed_sql).bind(SEAL_BATCH);
    let rows = match db.backend() {
        Backend::Postgres => unsealed.bind(&last_xid).bind(last_event_id),
        Backend::Sqlite => unsealed.bind(last_event_id),
    }
    .fetch_all(&mut *tx)
    .await?;
    if rows.is_empty() {
        return Ok(0);
    }
    let mut seals = Vec::with_capacity(rows.len());
    for row in &rows {
        let entry = entry_of(row)?;
        last_event_id = row.try_get("id")?;
        last_xid = row.try_get("xid_text")?;
        sequence += 1;
        let hash = chain_hash(&prev_hash, sequence, &entry);
        seals.push((
            sequence,
            last_event_id,
            std::mem::replace(&mut prev_hash, hash.clone()),
            hash,
        ));
    }
    // One statement for the batch, inserting only: the events themselves are never written again.
    let sql = format!(
        "INSERT INTO audit_seals (sequence, event_id, prev_hash, hash) VALUES {}",
        crate::db::values_groups(&tx, seals.len(), 4)
    );
    let mut insert = sqlx::query(sqlx::AssertSqlSafe(sql));
    for (sequence, event_id, prev_hash, hash) in seals {
        insert = insert.bind(sequence).bind(event_id).bind(prev_hash).bind(hash);
    }
    insert.execute(&mut *tx).await?;
    // The head moves to the last event sealed (SQLite keeps no xid).
    let advance = match db.backend() {
        Backend::Postgres => sqlx::query(
            "UPDATE audit_chain SET last_sequence = $1, last_hash = $2, last_event_id = $3, last_xid = $4::text::xid8 \
             WHERE singleton = 1",
        )
        .bind(sequence)
        .bind(&prev_hash)
        .bind(last_event_id)
        .bind(&last_xid),
        Backend::Sqlite => sqlx::query(
            "UPDATE audit_chain SET last_sequence = $1, last_hash = $2, last_event_id = $3 WHERE singleton = 1",
        )
        .bind(sequence)
        .bind(&prev_hash)
        .bind(last_event_id),
    };
    advance.execute(&mut *tx).await?;
    tx.commit().await?;
    Ok(rows.len() as u64)
}

/// The chain's head: its last sequence and hash, and the last sealed event's (xid, id), past
/// which the events still to seal lie (SQLite has no xid: ids are in commit order there).
fn head_sql(backend: Backend) -> &'static str {
    match backend {
        Backend::Postgres => {
            "SELECT last_sequence, last_hash, last_xid::text AS last_xid, last_event_id FROM audit_chain WHERE singleton = 1"
        }
        Backend::Sqlite => {
            "SELECT last_sequence, last_hash, '' AS last_xid, last_event_id FROM audit_chain WHERE singleton = 1"
        }
    }
}

/// Events committed or in flight and not yet sealed, and the time of the oldest: the sealer's
/// lag. Read from the events' order index past the chain's head, so it costs what it counts.
pub async fn unsealed(db: &Database) -> Result<(i64, Option<OffsetDateTime>), DbError> {
    let sql = match db.backend() {
        Backend::Postgres => {
            "SELECT COUNT(*) AS events, MIN(e.event_time_us) AS oldest FROM audit_events e \
             JOIN audit_chain c ON c.singleton = 1 WHERE (e.xid, e.id) > (c.last_xid, c.last_event_id)"
        }
        Backend::Sqlite => {
            "SELECT COUNT(*) AS events, MIN(event_time_us) AS oldest FROM audit_events \
             WHERE id > (SELECT last_event_id FROM audit_chain WHERE singleton = 1)"
        }
    };
    let row = sqlx::query(sql).fetch_one(db.pool()).await?;
    let oldest: Option<i64> = row.try_get("oldest")?;
    Ok((row.try_get("events")?, oldest.and_then(from_micros)))
}

/// The columns of a sealed event, its seal's first: what `verify` and `list` read.
const SEALED_COLUMNS: &str = "s.sequence, s.prev_hash, s.hash, e.id AS event_id, e.event_time_us, e.subject, \
    e.department, e.acting_service, e.method, e.resource, e.outcome, e.reason, e.purpose_code, e.purpose_reference, \
    e.trace_id, e.region";

/// What `verify` found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Verification {
    /// Sealed rows checked.
    pub checked: u64,
    /// The sequence of the first row that does not verify, if any.
    pub first_broken: Option<i64>,
}

/// Recomputes the chain from the oldest kept row to the head and reports the first row that
/// was changed, removed or inserted behind the service's back.
pub async fn verify(db: &Database) -> Result<Verification, DbError> {
    // One snapshot for the head and the rows: a sealer on another replica chaining rows between
    // the two reads would otherwise look like a broken chain.
    let mut tx = db.pool().begin().await?;
    if db.backend() == Backend::Postgres {
        sqlx::query("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY")
            .execute(&mut *tx)
            .await?;
    }
    let verification = verify_on(&mut tx).await;
    tx.rollback().await?;
    verification
}

async fn verify_on(tx: &mut AnyConnection) -> Result<Verification, DbError> {
    let head = sqlx::query("SELECT last_sequence, last_hash FROM audit_chain WHERE singleton = 1")
        .fetch_one(&mut *tx)
        .await?;
    let last_sequence: i64 = head.try_get("last_sequence")?;
    let last_hash: String = head.try_get("last_hash")?;
    let mut checked = 0u64;
    let mut expected_prev: Option<String> = None;
    let mut expected_sequence: Option<i64> = None;
    let mut after = 0i64;
    loop {
        // Every seal with its event, if the event is still there: a seal without one is an
        // event removed behind the service's back.
        let rows = sqlx::query(sqlx::AssertSqlSafe(format!(
            "SELECT {SEALED_COLUMNS} FROM audit_seals s LEFT JOIN audit_events e ON e.id = s.event_id \
             WHERE s.sequence > $1 ORDER BY s.sequence LIMIT 1000"
        )))
        .bind(after)
        .fetch_all(&mut *tx)
        .await?;
        if rows.is_empty() {
            break;
        }
        for row in &rows {
            let sequence: i64 = row.try_get("sequence")?;
            let prev_hash: String = row.try_get("prev_hash")?;
            let hash: String = row.try_get("hash")?;
            let present: Option<i64> = row.try_get("event_id")?;
            // The oldest kept row may follow rows removed by retention; from there on the chain
            // must be unbroken, and the very first row must start from genesis.
            let prev_ok = match &expected_prev {
                Some(expected) => *expected == prev_hash,
                None => sequence != 1 || prev_hash == GENESIS,
            };
            let sequence_ok = expected_sequence.is_none_or(|expected| expected == sequence);
            let hash_ok = present.is_some() && chain_hash(&prev_hash, sequence, &entry_of(row)?) == hash;
            if !prev_ok || !sequence_ok || !hash_ok {
                return Ok(Verification {
                    checked,
                    first_broken: Some(sequence),
                });
            }
            checked += 1;
            expected_prev = Some(hash);
            expected_sequence = Some(sequence + 1);
            after = sequence;
        }
    }
    // Rows removed from the end leave the head pointing past the last row.
    let head_ok = match &expected_prev {
        Some(hash) => after == last_sequence && *hash == last_hash,
        None => last_sequence == 0 || retention_removed_everything(tx, last_sequence).await?,
    };
    Ok(Verification {
        checked,
        first_broken: (!head_ok).then_some(expected_sequence.unwrap_or(1)),
    })
}

async fn retention_removed_everything(tx: &mut AnyConnection, last_sequence: i64) -> Result<bool, DbError> {
    // With every row past retention gone, the head may legitimately point at nothing; then no
    // unsealed-then-sealed row can exist either.
    let remaining: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM audit_seals")
        .fetch_one(&mut *tx)
        .await?;
    Ok(remaining == 0 && last_sequence > 0)
}

/// Which sealed events a listing returns.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AuditQuery {
    pub start: Option<OffsetDateTime>,
    pub end: Option<OffsetDateTime>,
    pub subject: Option<String>,
    pub resource: Option<String>,
    pub outcome: Option<Outcome>,
    /// Only events in regions under this prefix ('' for all): the auditor's scope.
    pub region_prefix: String,
    /// Return events after this sequence (the page cursor).
    pub after_sequence: i64,
    pub limit: u32,
}

/// Sealed events matching `query`, in chain order. Seals first, so a listing shows what has
/// been committed so far.
pub async fn list(db: &Database, query: &AuditQuery) -> Result<Vec<SealedEvent>, DbError> {
    seal(db).await?;
    let rows = sqlx::query(sqlx::AssertSqlSafe(format!(
        "SELECT {SEALED_COLUMNS} FROM audit_seals s JOIN audit_events e ON e.id = s.event_id \
         WHERE s.sequence > $1 \
           AND ($2 = 0 OR e.event_time_us >= $3) \
           AND ($4 = 0 OR e.event_time_us < $5) \
           AND ($6 = '' OR e.subject = $6) \
           AND ($7 = '' OR e.resource = $7) \
           AND ($8 = '' OR e.outcome = $8) \
           AND ($10 = '' OR (e.region >= $10 AND e.region < $11)) \
         ORDER BY s.sequence LIMIT $9"
    )))
    .bind(query.after_sequence)
    .bind(i64::from(query.start.is_some()))
    .bind(query.start.map(to_micros).unwrap_or(0))
    .bind(i64::from(query.end.is_some()))
    .bind(query.end.map(to_micros).unwrap_or(0))
    .bind(query.subject.clone().unwrap_or_default())
    .bind(query.resource.clone().unwrap_or_default())
    .bind(query.outcome.map(Outcome::as_str).unwrap_or(""))
    .bind(i64::from(query.limit))
    .bind(&query.region_prefix)
    .bind(crate::regions::prefix_upper_bound(&query.region_prefix))
    .fetch_all(db.pool())
    .await?;
    rows.iter()
        .map(|row| {
            Ok(SealedEvent {
                sequence: row.try_get("sequence")?,
                entry: entry_of(row)?,
                prev_hash: row.try_get("prev_hash")?,
                hash: row.try_get("hash")?,
            })
        })
        .collect::<Result<Vec<_>, sqlx::Error>>()
        .map_err(DbError::from)
}

/// How often retention runs: a few times a day is plenty for a cut-off counted in months.
const RETENTION_INTERVAL: std::time::Duration = std::time::Duration::from_secs(6 * 3600);

/// The least retention the rules allow (等级保护 第三级: audit records kept at least 6 months),
/// whatever the parameter says.
const MIN_RETENTION_MONTHS: i64 = 6;

/// The job that deletes `service`'s sealed audit events older than `audit.retention_months`
/// (never fewer than six), on a schedule and once across replicas.
pub fn retention_job(db: Database, service: &'static str, clock: crate::clock::Clock) -> crate::jobs::Job {
    crate::jobs::Job::new("audit-retention", RETENTION_INTERVAL, db.clone(), move || {
        let db = db.clone();
        let clock = clock.clone();
        async move {
            let parameters =
                crate::parameters::Parameters::open(db.clone(), service, std::time::Duration::ZERO).await?;
            let today = clock.today();
            let months = parameters
                .lookup("audit.retention_months", "", today)
                .await?
                .unwrap_or(MIN_RETENTION_MONTHS)
                .max(MIN_RETENTION_MONTHS);
            let cutoff = months_before(today, months)
                .midnight()
                .assume_offset(crate::clock::CHINA_STANDARD_TIME);
            let removed = apply_retention(&db, cutoff).await?;
            if removed > 0 {
                tracing::info!(service, removed, months, "audit events past their retention removed");
            }
            Ok(())
        }
    })
}

/// The same day `months` months earlier, or the month's last day when it is shorter.
fn months_before(day: time::Date, months: i64) -> time::Date {
    let index = i64::from(day.year()) * 12 + i64::from(u8::from(day.month())) - 1 - months;
    let year = i32::try_from(index.div_euclid(12)).unwrap_or(day.year());
    let month =
        time::Month::try_from(u8::try_from(index.rem_euclid(12) + 1).unwrap_or(1)).unwrap_or(time::Month::January);
    let last = month.length(year);
    time::Date::from_calendar_date(year, month, day.day().min(last)).unwrap_or(day)
}

/// Seals removed per transaction by retention. A first run over a year of a payroll service's
/// audit log, or a lowered retention parameter, removes millions of rows: in one transaction
/// that held SQLite's only write lock (and PostgreSQL's locks on the rows) for as long as it
/// took, and every call writing an audit row waited behind it.
const RETENTION_SEALS_PER_TRANSACTION: i64 = 10_000;

/// Deletes sealed events older than `cutoff` (the retention parameter decides it; at least six
/// months). The chain stays verifiable from the oldest kept row.
pub async fn apply_retention(db: &Database, cutoff: OffsetDateTime) -> Result<u64, DbError> {
    apply_retention_in_batches(db, cutoff, RETENTION_SEALS_PER_TRANSACTION).await
}

/// [`apply_retention`], committing after each `seals_per_transaction` seals. Events go in the
/// order they were sealed, and only up to the first one still within retention, so a run
/// stopped between transactions leaves a chain that verifies from its oldest kept row, as a
/// finished run does, and the next run goes on from there.
pub async fn apply_retention_in_batches(
    db: &Database,
    cutoff: OffsetDateTime,
    seals_per_transaction: i64,
) -> Result<u64, DbError> {
    seal(db).await?;
    let cutoff = to_micros(cutoff);
    sqlx::query("UPDATE audit_chain SET retention_cutoff_us = $1 WHERE singleton = 1 AND retention_cutoff_us < $1")
        .bind(cutoff)
        .execute(db.pool())
        .await?;
    // Only the oldest run of events past the cut-off goes. An event's time is taken before its
    // transaction commits, so near the cut-off a kept event can be sealed before an older one;
    // removing the older one would leave a gap the chain check reports as tampering. Read
    // outside any transaction: on a first run these scan millions of rows, and no lock waits
    // for them.
    let (first, last_old, first_kept): (Option<i64>, Option<i64>, Option<i64>) = sqlx::query_as(
        "SELECT (SELECT MIN(sequence) FROM audit_seals), \
         (SELECT MAX(s.sequence) FROM audit_events e JOIN audit_seals s ON s.event_id = e.id WHERE e.event_time_us < $1), \
         (SELECT MIN(s.sequence) FROM audit_events e JOIN audit_seals s ON s.event_id = e.id WHERE e.event_time_us >= $1)",
    )
    .bind(cutoff)
    .fetch_one(db.pool())
    .await?;
    let (Some(first), Some(last_old)) = (first, last_old) else {
        return Ok(0);
    };
    let last = match first_kept {
        Some(kept) => last_old.min(kept - 1),
        None => last_old,
    };
    let step = seals_per_transaction.max(1);
    let mut deleted = 0;
    let mut from = first;
    while from <= last {
        let upto = from.saturating_add(step - 1).min(last);
        let mut tx = db.begin().await?;
        deleted += sqlx::query(
            "DELETE FROM audit_events WHERE event_time_us < $1 \
             AND id IN (SELECT event_id FROM audit_seals WHERE sequence BETWEEN $2 AND $3)",
        )
        .bind(cutoff)
        .bind(from)
        .bind(upto)
        .execute(&mut *tx)
        .await?
        .rows_affected();
        sqlx::query(
            "DELETE FROM audit_seals WHERE sequence BETWEEN $1 AND $2 \
             AND NOT EXISTS (SELECT 1 FROM audit_events e WHERE e.id = audit_seals.event_id)",
        )
        .bind(from)
        .bind(upto)
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        from = upto.saturating_add(1);
    }
    Ok(deleted)
}

#[cfg(test)]
mod tests {
    use super::*;
    use time::macros::datetime;

    fn entry() -> AuditEntry {
        AuditEntry {
            time: datetime!(2026-03-01 08:00 UTC),
            subject: "clerk-li".into(),
            department: "hr".into(),
            acting_service: String::new(),
            method: "/bangfu.identity.v1.IdentityService/GetPerson".into(),
            resource: "persons/abc".into(),
            outcome: Outcome::Succeeded,
            reason: String::new(),
            purpose_code: "PAYMENT".into(),
            purpose_reference: "枣人社函〔2026〕12号".into(),
            trace_id: String::new(),
            region: String::new(),
        }
    }

    #[test]
    fn months_before_keeps_the_day_or_takes_the_shorter_months_last() {
        use time::macros::date;
        assert_eq!(months_before(date!(2026 - 12 - 05), 6), date!(2026 - 06 - 05));
        assert_eq!(months_before(date!(2026 - 08 - 31), 6), date!(2026 - 02 - 28));
        assert_eq!(months_before(date!(2026 - 03 - 15), 15), date!(2024 - 12 - 15));
    }

    #[test]
    fn the_hash_covers_every_field_and_the_previous_hash() {
        let base = chain_hash(GENESIS, 1, &entry());
        assert_eq!(base.len(), 64);
        assert_ne!(base, chain_hash("other", 1, &entry()));
        assert_ne!(base, chain_hash(GENESIS, 2, &entry()));
        let mut changed = entry();
        changed.resource = "persons/abd".into();
        assert_ne!(base, chain_hash(GENESIS, 1, &changed));
        let mut shifted = entry();
        shifted.subject = "clerk-lih".into();
        shifted.department = "r".into();
        assert_ne!(base, chain_hash(GENESIS, 1, &shifted));
        let mut placed = entry();
        placed.region = "370402".into();
        assert_ne!(base, chain_hash(GENESIS, 1, &placed), "the region is chained");
    }
}
