//! The change feed every service publishes for the others to follow: events are written to an
//! outbox table in the same transaction as the change they describe (so none is lost on a
//! crash and none describes a change that rolled back), and read in commit order behind an
//! opaque cursor that a consumer stores and resumes from.
//!
//! Gap-free on PostgreSQL: ids are taken before commit, so a reader that remembered the last id
//! would skip a transaction that committed late. Each row records its transaction id (`xid8`)
//! and a reader returns only rows below the oldest running transaction, ordered by (xid, id):
//! every transaction below that horizon has ended, so nothing can later appear behind the
//! cursor. On SQLite writers are serialized (`BEGIN IMMEDIATE`) and the id is commit order.
//! Events carry no personal data: the resource name, the kind, the regions and dates.

use std::sync::Arc;
use std::time::{Duration, Instant};

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use sqlx::{AnyConnection, Row};
use time::{Date, OffsetDateTime};
use tokio_stream::Stream;
use tokio_stream::wrappers::ReceiverStream;

use crate::db::{Backend, Database, DbError, from_micros, to_micros};
use crate::error::{ErrorReason, Problem};
use crate::parameters::{date_text, parse_date_text};
use crate::server::Shutdown;

/// An event to write with a change.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewEvent<'a> {
    /// What happened, e.g. `category_revoked`.
    pub kind: &'a str,
    /// The resource it happened to, e.g. `persons/…`.
    pub resource: &'a str,
    /// The regions the resource was in before and after the change: a watcher sees the event
    /// when any of them lies in its scope (the county a person leaves sees the move).
    pub regions: &'a [&'a str],
    /// The business date the change takes effect.
    pub effective_date: Option<Date>,
    /// Further facts as JSON, never personal data (changed field paths, a category).
    pub detail: &'a str,
}

/// Appends an event inside the caller's transaction.
pub async fn append(
    connection: &mut AnyConnection,
    event: &NewEvent<'_>,
    now: OffsetDateTime,
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "INSERT INTO outbox_events (kind, resource, regions, effective_date, detail, recorded_us) \
         VALUES ($1, $2, $3, $4, $5, $6)",
    )
    .bind(event.kind)
    .bind(event.resource)
    .bind(event.regions.join(" "))
    .bind(event.effective_date.map(date_text))
    .bind(event.detail)
    .bind(to_micros(now))
    .execute(connection)
    .await?;
    Ok(())
}

/// Appends many events in one statement per few hundred, in order: a bulk import writes a
/// chunk's events in one round trip instead of one each.
pub async fn append_many(
    connection: &mut AnyConnection,
    events: &[NewEvent<'_>],
    now: OffsetDateTime,
) -> Result<(), sqlx::Error> {
    const COLUMNS: usize = 6;
    for batch in events.chunks(500) {
        let sql = format!(
            "INSERT INTO outbox_events (kind, resource, regions, effective_date, detail, recorded_us) VALUES {}",
            crate::db::values_groups(connection, batch.len(), COLUMNS)
        );
        let mut query = sqlx::query(sqlx::AssertSqlSafe(sql));
        for event in batch {
            query = query
                .bind(event.kind)
                .bind(event.resource)
                .bind(event.regions.join(" "))
                .bind(event.effective_date.map(date_text))
                .bind(event.detail)
                .bind(to_micros(now));
        }
        query.execute(&mut *connection).await?;
    }
    Ok(())
}

/// A place in the feed: events after it are still to be read.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct Position {
    /// PostgreSQL's transaction id of the last event read; 0 on SQLite.
    pub xid: u64,
    pub id: i64,
}

impl Position {
    /// Before the first event.
    pub const START: Position = Position { xid: 0, id: 0 };

    /// The opaque cursor clients store.
    pub fn encode(self) -> String {
        URL_SAFE_NO_PAD.encode(format!("c1:{}:{}", self.xid, self.id))
    }

    /// Reads a cursor; the empty cursor is the start of the feed.
    pub fn decode(cursor: &str) -> Result<Position, Problem> {
        if cursor.is_empty() {
            return Ok(Self::START);
        }
        let invalid = || {
            Problem::invalid_field(
                ErrorReason::FieldInvalid,
                "after_cursor",
                "is not a cursor this feed issued",
                "续传位置无效，请使用上次收到的位置，或从头开始",
            )
        };
        let text = URL_SAFE_NO_PAD
            .decode(cursor)
            .ok()
            .and_then(|bytes| String::from_utf8(bytes).ok())
            .ok_or_else(invalid)?;
        let mut parts = text.split(':');
        match (parts.next(), parts.next(), parts.next(), parts.next()) {
            (Some("c1"), Some(xid), Some(id), None) => Ok(Position {
                xid: xid.parse().map_err(|_| invalid())?,
                id: id.parse().map_err(|_| invalid())?,
            }),
            _ => Err(invalid()),
        }
    }
}

/// An event as a follower reads it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FeedEvent {
    pub position: Position,
    pub kind: String,
    pub resource: String,
    pub regions: Vec<String>,
    pub effective_date: Option<Date>,
    pub detail: String,
    pub recorded: OffsetDateTime,
    /// About how many events of the feed come after this one (0 once a watch has caught up):
    /// the newest event id less this one's. Ids are taken before commit and include events a
    /// watcher's scope hides, so it is an estimate — what a follower's lag gauge needs.
    pub behind: u64,
}

/// Up to `limit` committed events after `after`, in commit order.
pub async fn read_after(db: &Database, after: Position, limit: u32) -> Result<Vec<FeedEvent>, DbError> {
    read_after_excluding(db, after, None, limit).await
}

/// `read_after`, leaving out the events of transactions that had committed in `snapshot` (a
/// PostgreSQL `pg_snapshot` as text): a watch that starts at the head skips what was already
/// committed when it started, though the horizon had not yet passed it.
async fn read_after_excluding(
    db: &Database,
    after: Position,
    snapshot: Option<&str>,
    limit: u32,
) -> Result<Vec<FeedEvent>, DbError> {
    let rows = match db.backend() {
        Backend::Postgres => {
            sqlx::query(
                // The text copy of the id is named apart from the column: an output column
                // named `xid` would capture `ORDER BY xid` and sort the ids as text ("10003"
                // before "9998"), while the cursor compares them as numbers.
                "SELECT id, xid::text AS xid_text, kind, resource, regions, effective_date, detail, recorded_us \
                 FROM outbox_events \
                 WHERE (outbox_events.xid, id) > ($1::text::xid8, $2) \
                   AND outbox_events.xid < pg_snapshot_xmin(pg_current_snapshot()) \
                   AND ($4::text IS NULL OR NOT pg_visible_in_snapshot(outbox_events.xid, $4::text::pg_snapshot)) \
                 ORDER BY outbox_events.xid, id LIMIT $3",
            )
            .bind(after.xid.to_string())
            .bind(after.id)
            .bind(i64::from(limit))
            .bind(snapshot)
            .fetch_all(db.pool())
            .await?
        }
        Backend::Sqlite => {
            sqlx::query(
                "SELECT id, '0' AS xid_text, kind, resource, regions, effective_date, detail, recorded_us \
                 FROM outbox_events WHERE id > $1 ORDER BY id LIMIT $2",
            )
            .bind(after.id)
            .bind(i64::from(limit))
            .fetch_all(db.pool())
            .await?
        }
    };
    rows.iter()
        .map(|row| {
            let xid: String = row.try_get("xid_text")?;
            let regions: String = row.try_get("regions")?;
            let effective: Option<String> = row.try_get("effective_date")?;
            let micros: i64 = row.try_get("recorded_us")?;
            Ok(FeedEvent {
                position: Position {
                    xid: xid
                        .parse()
                        .map_err(|_| sqlx::Error::Decode(format!("transaction id {xid:?}").into()))?,
                    id: row.try_get("id")?,
                },
                kind: row.try_get("kind")?,
                resource: row.try_get("resource")?,
                regions: regions.split_whitespace().map(str::to_string).collect(),
                effective_date: effective.as_deref().and_then(parse_date_text),
                detail: row.try_get("detail")?,
                recorded: from_micros(micros).unwrap_or(OffsetDateTime::UNIX_EPOCH),
                behind: 0,
            })
        })
        .collect::<Result<Vec<_>, sqlx::Error>>()
        .map_err(DbError::from)
}

/// The id of the newest event written (committed or not): the top of a backlog estimate.
async fn newest_id(db: &Database) -> Result<i64, DbError> {
    let id: Option<i64> = sqlx::query_scalar("SELECT MAX(id) FROM outbox_events")
        .fetch_one(db.pool())
        .await?;
    Ok(id.unwrap_or(0))
}

/// The feed's head: a watcher starting here sees only what commits from now on.
pub async fn head(db: &Database) -> Result<Position, DbError> {
    match db.backend() {
        Backend::Postgres => {
            // Transactions still running may commit later; starting at the horizon keeps them.
            let xmin: String = sqlx::query_scalar("SELECT pg_snapshot_xmin(pg_current_snapshot())::text")
                .fetch_one(db.pool())
                .await?;
            Ok(Position {
                xid: xmin.parse::<u64>().unwrap_or(1).saturating_sub(1),
                id: i64::MAX,
            })
        }
        Backend::Sqlite => {
            let id: Option<i64> = sqlx::query_scalar("SELECT MAX(id) FROM outbox_events")
                .fetch_one(db.pool())
                .await?;
            Ok(Position {
                xid: 0,
                id: id.unwrap_or(0),
            })
        }
    }
}

/// Where a watch begins.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Start {
    /// After a cursor the consumer stored (or the beginning, `Position::START`).
    After(Position),
    /// At the head: only what had not committed when the watch began.
    Head,
}

/// The head with, on PostgreSQL, the snapshot that tells which transactions above the horizon
/// had already committed (and are therefore not "from now on").
async fn head_with_snapshot(db: &Database) -> Result<(Position, Option<String>), DbError> {
    match db.backend() {
        Backend::Postgres => {
            let row = sqlx::query(
                "SELECT pg_current_snapshot()::text AS snapshot, \
                 pg_snapshot_xmin(pg_current_snapshot())::text AS xmin",
            )
            .fetch_one(db.pool())
            .await?;
            let snapshot: String = row.try_get("snapshot")?;
            let xmin: String = row.try_get("xmin")?;
            let xmin: u64 = xmin
                .parse()
                .map_err(|_| DbError::Query(sqlx::Error::Decode(format!("snapshot xmin {xmin:?}").into())))?;
            Ok((
                Position {
                    xid: xmin.saturating_sub(1),
                    id: i64::MAX,
                },
                Some(snapshot),
            ))
        }
        Backend::Sqlite => Ok((head(db).await?, None)),
    }
}

/// Refuses a cursor this feed never issued or no longer holds: one from another deployment's
/// database, or one issued before the database was restored from an older backup. Quietly
/// starting such a follower from the beginning, or from wherever the number happens to land,
/// would apply events twice or skip them; it must stop and be looked at.
pub async fn ensure_known(db: &Database, position: Position) -> Result<(), Problem> {
    if position == Position::START {
        return Ok(());
    }
    let known = match db.backend() {
        // A head cursor (the horizon, no event yet): its transaction id must have been issued.
        Backend::Postgres if position.id == i64::MAX => {
            // The snapshot's xmax is the first id not yet issued; pg_current_xact_id() would
            // issue one to this read just to compare against it.
            sqlx::query_scalar::<_, bool>("SELECT $1::text::xid8 < pg_snapshot_xmax(pg_current_snapshot())")
                .bind(position.xid.to_string())
                .fetch_one(db.pool())
                .await?
        }
        Backend::Postgres => {
            sqlx::query_scalar::<_, i64>("SELECT COUNT(*) FROM outbox_events WHERE id = $1 AND xid = $2::text::xid8")
                .bind(position.id)
                .bind(position.xid.to_string())
                .fetch_one(db.pool())
                .await?
                == 1
        }
        Backend::Sqlite => {
            position.xid == 0
                && sqlx::query_scalar::<_, i64>("SELECT COUNT(*) FROM outbox_events WHERE id = $1")
                    .bind(position.id)
                    .fetch_one(db.pool())
                    .await?
                    == 1
        }
    };
    if known { Ok(()) } else { Err(cursor_unknown()) }
}

/// CURSOR_UNKNOWN: see [`ensure_known`].
pub fn cursor_unknown() -> Problem {
    Problem::new(
        tonic::Code::FailedPrecondition,
        ErrorReason::CursorUnknown,
        "after_cursor: this feed holds no event at that cursor (another deployment's cursor, or the \
         database was restored from an older backup); the follower must not resume from it",
        "续传位置在本变更流中不存在（可能来自其他部署，或数据库已从较早的备份恢复），请由运维人员核实后再续传",
    )
    .with_violation("after_cursor", "is not an event of this feed")
}

/// The `xmax` of a snapshot's text form `xmin:xmax:xip,…`: every transaction from it on began
/// after the snapshot.
fn snapshot_xmax(snapshot: &str) -> Option<u64> {
    snapshot.split(':').nth(1)?.parse().ok()
}

/// What a watch stream carries.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FeedItem {
    Event(FeedEvent),
    /// Nothing the watcher may see happened for a while; here is the cursor to resume from.
    Heartbeat(Position),
}

/// How a watch polls.
#[derive(Debug, Clone, Copy)]
pub struct WatchSettings {
    /// How often to look for new events when there are none.
    pub poll: Duration,
    /// How long without an item before a heartbeat is sent.
    pub heartbeat: Duration,
    /// Events read per query.
    pub batch: u32,
}

impl Default for WatchSettings {
    fn default() -> Self {
        Self {
            poll: Duration::from_millis(250),
            heartbeat: Duration::from_secs(15),
            batch: 500,
        }
    }
}

/// Follows the feed from `from`, yielding the events `visible` admits and heartbeats when idle,
/// until the client goes away or the server drains. A database outage pauses the stream (it
/// retries) rather than ending it.
pub async fn watch(
    db: Database,
    start: Start,
    visible: Arc<dyn Fn(&FeedEvent) -> bool + Send + Sync>,
    settings: WatchSettings,
    shutdown: Shutdown,
) -> Result<impl Stream<Item = Result<FeedItem, Problem>>, Problem> {
    let (from, mut snapshot) = match start {
        Start::After(position) => {
            ensure_known(&db, position).await?;
            (position, None)
        }
        Start::Head => head_with_snapshot(&db).await?,
    };
    let (sender, receiver) = tokio::sync::mpsc::channel(64);
    tokio::spawn(async move {
        let mut position = from;
        let mut last_sent = Instant::now();
        let mut backoff = settings.poll;
        loop {
            if shutdown.is_triggered() {
                return;
            }
            // Past the snapshot's xmax nothing read can have committed before the watch began.
            if snapshot
                .as_deref()
                .and_then(snapshot_xmax)
                .is_some_and(|xmax| position.id != i64::MAX && position.xid >= xmax)
            {
                snapshot = None;
            }
            let events = match read_after_excluding(&db, position, snapshot.as_deref(), settings.batch).await {
                Ok(events) => {
                    backoff = settings.poll;
                    events
                }
                Err(error) if error.is_unavailable() => {
                    tracing::warn!(%error, "change feed paused: database unavailable");
                    backoff = (backoff * 2).min(Duration::from_secs(10));
                    Vec::new()
                }
                Err(error) => {
                    let _ = sender.send(Err(Problem::from(error))).await;
                    return;
                }
            };
            let full = events.len() as u32 >= settings.batch;
            // A full page means more is waiting: say about how much, once per page (one
            // index lookup), so a follower can report its lag in events.
            let newest = if full { newest_id(&db).await.unwrap_or(0) } else { 0 };
            for mut event in events {
                event.behind = u64::try_from(newest.saturating_sub(event.position.id)).unwrap_or(0);
                position = event.position;
                if visible(&event) {
                    if sender.send(Ok(FeedItem::Event(event))).await.is_err() {
                        return;
                    }
                    last_sent = Instant::now();
                }
            }
            if last_sent.elapsed() >= settings.heartbeat {
                if sender.send(Ok(FeedItem::Heartbeat(position))).await.is_err() {
                    return;
                }
                last_sent = Instant::now();
            }
            if !full {
                tokio::select! {
                    () = shutdown.triggered() => return,
                    () = tokio::time::sleep(backoff) => {}
                    () = sender.closed() => return,
                }
            }
        }
    });
    Ok(ReceiverStream::new(receiver))
}
