//! Feed followers: a service applying another service's change feed (subsidy payment following
//! identity for recoveries, posts following it for exits, the exchange following job postings).
//!
//! A follower reads a `Watch…Changes` stream ([`Feed`]), applies each event's effect
//! ([`Apply`]) and stores the cursor **in the same local transaction** as the effect, so after
//! a crash it resumes exactly where its last commit left it: every event's effect is applied
//! once. The cursor moves by compare-and-set from the value the follower read, so even two
//! replicas following at once (a lease lost without noticing) cannot both apply an event. It:
//! - runs in one replica at a time ([`crate::lease`]); the others stand by and take over;
//! - reconnects with backoff when the producer or the network is away;
//! - stops, loudly, on what retrying cannot mend: a cursor the producer does not know (never a
//!   silent restart from the beginning), a permission it lacks, an effect that fails;
//! - reports its state and lag in GetServerInfo and as metrics.

use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use opentelemetry::KeyValue;
use opentelemetry::metrics::{Counter, ObservableGauge};
use sqlx::{AnyConnection, Row};
use time::OffsetDateTime;
use tokio_stream::{Stream, StreamExt};

use crate::db::{Database, to_micros};
use crate::error::{ErrorReason, Problem};
use crate::lease;
use crate::server::Shutdown;

/// One item of a followed feed.
#[derive(Debug, Clone)]
pub enum Followed<E> {
    /// An event to apply, and the cursor to resume after it.
    Event {
        cursor: String,
        /// When the producer recorded it (for the lag).
        recorded: Option<OffsetDateTime>,
        /// About how many events come after it at the producer (for the lag).
        behind: u64,
        event: E,
    },
    /// Nothing new: the follower is caught up at this cursor.
    Heartbeat { cursor: String },
}

/// A feed as the follower reads it.
pub type FeedStream<E> = Pin<Box<dyn Stream<Item = Result<Followed<E>, Problem>> + Send>>;

/// Where events come from: opens the producer's watch after a cursor ("" is the beginning).
pub trait Feed: Send + Sync + 'static {
    type Event: Send + Sync + 'static;
    fn open(&self, after: String) -> impl Future<Output = Result<FeedStream<Self::Event>, Problem>> + Send;
}

/// What an event does here: written on the follower's transaction, which also moves the cursor.
pub trait Apply<E: Sync>: Send + Sync + 'static {
    fn apply(&self, tx: &mut AnyConnection, event: &E) -> impl Future<Output = Result<(), Problem>> + Send;

    /// A page of events, in feed order, in one transaction: one at a time unless the effect
    /// overrides it to read what the whole page needs in one statement.
    fn apply_all(&self, tx: &mut AnyConnection, events: &[&E]) -> impl Future<Output = Result<(), Problem>> + Send {
        async move {
            for event in events {
                self.apply(tx, event).await?;
            }
            Ok(())
        }
    }
}

/// How a follower paces itself.
#[derive(Debug, Clone, Copy)]
pub struct FollowSettings {
    /// First wait after a failure; doubled up to `max_backoff`.
    pub backoff: Duration,
    pub max_backoff: Duration,
    /// How often a standby replica tries to take the lease.
    pub standby_poll: Duration,
    /// Events applied per transaction when several are waiting (one commit for them all).
    pub batch: usize,
}

impl Default for FollowSettings {
    fn default() -> Self {
        Self {
            backoff: Duration::from_millis(200),
            max_backoff: Duration::from_secs(30),
            standby_poll: Duration::from_secs(5),
            batch: 200,
        }
    }
}

/// What a follower is doing, as GetServerInfo shows it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FollowerState {
    Following,
    Standby,
    Reconnecting,
    Stopped,
}

/// A snapshot of a follower's status.
#[derive(Debug, Clone, PartialEq)]
pub struct FollowerReport {
    pub name: String,
    pub state: FollowerState,
    pub events_applied: u64,
    pub lag_seconds: f64,
    /// About how many events the producer holds that are not applied yet.
    pub events_behind: u64,
    pub last_error: String,
}

/// A follower's live status, shared with diagnostics and the metrics callback.
#[derive(Debug)]
pub struct FollowerStatus {
    report: Mutex<FollowerReport>,
}

impl FollowerStatus {
    fn new(name: &str) -> Self {
        Self {
            report: Mutex::new(FollowerReport {
                name: name.to_string(),
                state: FollowerState::Standby,
                events_applied: 0,
                lag_seconds: 0.0,
                events_behind: 0,
                last_error: String::new(),
            }),
        }
    }

    pub fn report(&self) -> FollowerReport {
        self.report
            .lock()
            .map(|r| r.clone())
            .unwrap_or_else(|e| e.into_inner().clone())
    }

    fn update(&self, change: impl FnOnce(&mut FollowerReport)) {
        let mut report = self.report.lock().unwrap_or_else(|e| e.into_inner());
        change(&mut report);
    }
}

/// A follower ready to run: `name` is "<service>/<feed>", the key of its cursor and lease.
pub struct Follower<F: Feed, A: Apply<F::Event>> {
    name: String,
    db: Database,
    feed: F,
    apply: A,
    settings: FollowSettings,
    status: Arc<FollowerStatus>,
    /// Events still to be applied one per transaction: a batch that failed as a whole is taken
    /// again one event at a time, so the one that cannot be applied is named and stops the
    /// follower alone.
    singles: std::sync::atomic::AtomicUsize,
}

/// A follower's run, its types erased.
type Run = Box<dyn FnOnce(Shutdown) -> Pin<Box<dyn Future<Output = ()> + Send>> + Send>;

/// A follower with its types erased, as a server hosts it.
pub struct HostedFollower {
    pub status: Arc<FollowerStatus>,
    run: Run,
}

impl HostedFollower {
    /// Runs until the shutdown (or a stop), in its own task.
    pub fn spawn(self, shutdown: Shutdown) -> tokio::task::JoinHandle<()> {
        tokio::spawn((self.run)(shutdown))
    }
}

impl<F: Feed, A: Apply<F::Event>> Follower<F, A> {
    pub fn new(name: &str, db: Database, feed: F, apply: A) -> Self {
        Self {
            name: name.to_string(),
            db,
            feed,
            apply,
            settings: FollowSettings::default(),
            status: Arc::new(FollowerStatus::new(name)),
            singles: std::sync::atomic::AtomicUsize::new(0),
        }
    }

    pub fn with_settings(mut self, settings: FollowSettings) -> Self {
        self.settings = settings;
        self
    }

    pub fn status(&self) -> Arc<FollowerStatus> {
        self.status.clone()
    }

    /// The follower for a server to host.
    pub fn hosted(self) -> HostedFollower {
        HostedFollower {
            status: self.status.clone(),
            run: Box::new(move |shutdown| Box::pin(self.run(shutdown))),
        }
    }

    /// Follows until the shutdown, or until an error retrying cannot mend.
    pub async fn run(self, shutdown: Shutdown) {
        let metrics = Metrics::new(&self.status);
        let mut backoff = self.settings.backoff;
        loop {
            if shutdown.is_triggered() {
                return;
            }
            let failure = match lease::try_take(&self.db, &format!("follower:{}", self.name)).await {
                Ok(Some(mut held)) => {
                    self.status.update(|r| r.state = FollowerState::Following);
                    let outcome = self.follow(&mut held, &shutdown, &metrics, &mut backoff).await;
                    held.release().await;
                    match outcome {
                        Ok(()) => return,
                        Err(failure) => failure,
                    }
                }
                Ok(None) => {
                    self.status.update(|r| r.state = FollowerState::Standby);
                    if wait(&shutdown, self.settings.standby_poll).await {
                        return;
                    }
                    continue;
                }
                Err(error) => Failure::Retry(Problem::from(error)),
            };
            match failure {
                Failure::Retry(problem) => {
                    tracing::warn!(follower = %self.name, error = %problem.message, "feed follower: retrying");
                    self.status.update(|r| {
                        r.state = FollowerState::Reconnecting;
                        r.last_error = problem.message.clone();
                    });
                    if wait(&shutdown, backoff).await {
                        return;
                    }
                    backoff = (backoff * 2).min(self.settings.max_backoff);
                }
                Failure::Stop(problem) => {
                    tracing::error!(
                        follower = %self.name,
                        reason = problem.reason_code(),
                        error = %problem.message,
                        "feed follower stopped: this needs an operator"
                    );
                    self.status.update(|r| {
                        r.state = FollowerState::Stopped;
                        r.last_error = format!("{}: {}", problem.reason_code(), problem.message);
                    });
                    return;
                }
            }
        }
    }

    /// Reads and applies while the lease is held. `Ok` only at the shutdown.
    async fn follow(
        &self,
        held: &mut lease::Lease,
        shutdown: &Shutdown,
        metrics: &Metrics,
        backoff: &mut Duration,
    ) -> Result<(), Failure> {
        let mut cursor = load_cursor(&self.db, &self.name).await.map_err(retry_db)?;
        let mut stream = self.feed.open(cursor.clone()).await.map_err(classify)?;
        *backoff = self.settings.backoff;
        self.status.update(|r| r.last_error.clear());
        loop {
            let first = tokio::select! {
                () = shutdown.triggered() => return Ok(()),
                item = stream.next() => item,
            };
            let Some(first) = first else {
                return Err(Failure::Retry(Problem::new(
                    tonic::Code::Unavailable,
                    ErrorReason::PeerUnavailable,
                    "the feed ended; reconnecting",
                    "变更流已断开，正在重新连接",
                )));
            };
            // Whatever else is already waiting joins the same transaction: one commit for many.
            let mut batch = vec![first.map_err(classify)?];
            let limit = if self.singles.load(Ordering::Relaxed) > 0 {
                1
            } else {
                self.settings.batch
            };
            while batch.len() < limit {
                match tokio::time::timeout(Duration::ZERO, stream.next()).await {
                    Ok(Some(item)) => batch.push(item.map_err(classify)?),
                    _ => break,
                }
            }
            if !held.still_held().await {
                return Err(Failure::Retry(Problem::new(
                    tonic::Code::Unavailable,
                    ErrorReason::DatabaseUnavailable,
                    "the follower's lease was lost with its database connection",
                    "数据库连接中断，正在重新连接",
                )));
            }
            let applied = self.apply_batch(&cursor, &batch).await?;
            let singles = self.singles.load(Ordering::Relaxed);
            self.singles
                .store(singles.saturating_sub(batch.len()), Ordering::Relaxed);
            let caught_up = matches!(batch.last(), Some(Followed::Heartbeat { .. }));
            let newest = batch.iter().rev().find_map(|item| match item {
                Followed::Event { recorded, .. } => *recorded,
                Followed::Heartbeat { .. } => None,
            });
            let behind = match batch.last() {
                Some(Followed::Event { behind, .. }) => *behind,
                _ => 0,
            };
            if let Some(next) = batch.last().map(|item| match item {
                Followed::Event { cursor, .. } | Followed::Heartbeat { cursor } => cursor.clone(),
            }) {
                cursor = next;
            }
            metrics
                .applied
                .add(applied, &[KeyValue::new("follower", self.name.clone())]);
            self.status.update(|r| {
                r.events_applied += applied;
                r.events_behind = behind;
                if caught_up {
                    r.lag_seconds = 0.0;
                } else if let Some(recorded) = newest {
                    r.lag_seconds = (OffsetDateTime::now_utc() - recorded).as_seconds_f64().max(0.0);
                }
            });
        }
    }

    /// Applies the batch's events and moves the cursor from `from` to the batch's last, in one
    /// transaction; returns how many events it applied.
    async fn apply_batch(&self, from: &str, batch: &[Followed<F::Event>]) -> Result<u64, Failure> {
        let to = match batch.last() {
            Some(Followed::Event { cursor, .. } | Followed::Heartbeat { cursor }) => cursor.as_str(),
            None => return Ok(0),
        };
        // A heartbeat at the cursor already stored: nothing to apply, nothing to move.
        if to == from {
            return Ok(0);
        }
        let mut tx = self.db.begin().await.map_err(retry_db)?;
        let events: Vec<&F::Event> = batch
            .iter()
            .filter_map(|item| match item {
                Followed::Event { event, .. } => Some(event),
                Followed::Heartbeat { .. } => None,
            })
            .collect();
        let applied = events.len() as u64;
        let outcome = self.apply.apply_all(&mut tx, &events).await;
        if let Err(problem) = outcome {
            return Err(match classify(problem) {
                Failure::Stop(problem) if events.len() == 1 => Failure::Stop(Problem {
                    message: format!("the event at cursor {to} cannot be applied: {}", problem.message),
                    ..problem
                }),
                // Which event of several failed is found by taking them one at a time: the batch
                // is rolled back and read again, an event per transaction.
                Failure::Stop(problem) if events.len() > 1 => {
                    self.singles.store(batch.len(), Ordering::Relaxed);
                    Failure::Retry(Problem {
                        message: format!(
                            "an event after cursor {from} up to {to} cannot be applied ({}); taking them one at a time",
                            problem.message
                        ),
                        ..problem
                    })
                }
                failure => failure,
            });
        }
        let moved = sqlx::query(
            "UPDATE follower_cursors SET cursor = $1, events_applied = events_applied + $2, updated_us = $3 \
             WHERE follower = $4 AND cursor = $5",
        )
        .bind(to)
        .bind(applied as i64)
        .bind(to_micros(OffsetDateTime::now_utc()))
        .bind(&self.name)
        .bind(from)
        .execute(&mut *tx)
        .await
        .map_err(|e| retry_db(e.into()))?
        .rows_affected();
        if moved != 1 {
            // Another holder moved the cursor since this one read it: roll back, read it again.
            return Err(Failure::Retry(Problem::new(
                tonic::Code::Aborted,
                ErrorReason::StateConflict,
                "another replica advanced this follower's cursor; resuming from it",
                "其他副本已推进该订阅的位置，将从新位置继续",
            )));
        }
        tx.commit().await.map_err(|e| retry_db(e.into()))?;
        Ok(applied)
    }
}

/// The stored cursor of `follower`, created empty (the beginning) on its first run.
async fn load_cursor(db: &Database, follower: &str) -> Result<String, crate::db::DbError> {
    sqlx::query(
        "INSERT INTO follower_cursors (follower, cursor, events_applied, updated_us) VALUES ($1, '', 0, $2) \
         ON CONFLICT (follower) DO NOTHING",
    )
    .bind(follower)
    .bind(to_micros(OffsetDateTime::now_utc()))
    .execute(db.pool())
    .await?;
    let row = sqlx::query("SELECT cursor FROM follower_cursors WHERE follower = $1")
        .bind(follower)
        .fetch_one(db.pool())
        .await?;
    Ok(row.try_get("cursor")?)
}

/// Why following paused.
enum Failure {
    /// The producer, the network or the database is away, or a race was lost: try again.
    Retry(Problem),
    /// Retrying would not mend it (an unknown cursor, a missing permission, a failing effect).
    Stop(Problem),
}

fn retry_db(error: crate::db::DbError) -> Failure {
    Failure::Retry(Problem::from(error))
}

fn classify(problem: Problem) -> Failure {
    use tonic::Code;
    match problem.code {
        Code::Unavailable
        | Code::DeadlineExceeded
        | Code::Aborted
        | Code::ResourceExhausted
        | Code::Cancelled
        | Code::Unknown => Failure::Retry(problem),
        _ => Failure::Stop(problem),
    }
}

/// Sleeps for `duration`; true when the shutdown came first.
async fn wait(shutdown: &Shutdown, duration: Duration) -> bool {
    tokio::select! {
        () = shutdown.triggered() => true,
        () = tokio::time::sleep(duration) => false,
    }
}

/// A follower's instruments: events applied, and its lag (seconds, events) as gauges read at
/// export time.
struct Metrics {
    applied: Counter<u64>,
    _lag: ObservableGauge<f64>,
    _behind: ObservableGauge<u64>,
}

impl Metrics {
    fn new(status: &Arc<FollowerStatus>) -> Self {
        let meter = opentelemetry::global::meter(crate::telemetry::SCOPE);
        let observed = status.clone();
        let counted = status.clone();
        Self {
            _behind: meter
                .u64_observable_gauge("bangfu.follower.events_behind")
                .with_description("about how many events the producer holds that the follower has not applied")
                .with_unit("{event}")
                .with_callback(move |observer| {
                    let report = counted.report();
                    observer.observe(report.events_behind, &[KeyValue::new("follower", report.name)]);
                })
                .build(),
            applied: meter
                .u64_counter("bangfu.follower.events_applied")
                .with_description("feed events a follower applied")
                .with_unit("{event}")
                .build(),
            _lag: meter
                .f64_observable_gauge("bangfu.follower.lag")
                .with_description("seconds between the newest applied event's recording and now; 0 when caught up")
                .with_unit("s")
                .with_callback(move |observer| {
                    let report = observed.report();
                    observer.observe(report.lag_seconds, &[KeyValue::new("follower", report.name)]);
                })
                .build(),
        }
    }
}

/// Identity's person change feed (`WatchPersonChanges`), read through a peer on the
/// following service's own account: what subsidy payment, posts and job matching follow.
pub struct PersonChanges {
    peer: crate::peers::Peer,
    kinds: Vec<bangfu_proto::identity::v1::ChangeKind>,
}

impl PersonChanges {
    /// Every kind of change.
    pub fn new(peer: crate::peers::Peer) -> Self {
        Self {
            peer,
            kinds: Vec::new(),
        }
    }

    /// Only the kinds of change the follower acts on, named as its rules name them ("DIED",
    /// "CATEGORY_REVOKED"): identity leaves the others out (a million-row import's
    /// registrations, for most followers), and its heartbeats still move the cursor past them.
    /// A name identity does not list is a mistake in the follower's rules: it is logged, and
    /// every kind is followed, so that nothing is missed.
    pub fn of_kinds(peer: crate::peers::Peer, names: &[&str]) -> Self {
        match change_kinds(names) {
            Some(kinds) => Self { peer, kinds },
            None => {
                tracing::error!(
                    ?names,
                    "a follower names a change kind identity does not list; it follows every kind"
                );
                Self::new(peer)
            }
        }
    }
}

/// The change kinds named ("DIED" for CHANGE_KIND_DIED), or None when one is not a kind.
fn change_kinds(names: &[&str]) -> Option<Vec<bangfu_proto::identity::v1::ChangeKind>> {
    names
        .iter()
        .map(|name| {
            bangfu_proto::identity::v1::ChangeKind::from_str_name(&format!("CHANGE_KIND_{name}"))
                .filter(|kind| *kind != bangfu_proto::identity::v1::ChangeKind::Unspecified)
        })
        .collect()
}

impl Feed for PersonChanges {
    type Event = bangfu_proto::identity::v1::PersonChange;

    async fn open(&self, after: String) -> Result<FeedStream<Self::Event>, Problem> {
        use bangfu_proto::identity::v1::identity_service_client::IdentityServiceClient;
        use bangfu_proto::identity::v1::watch_person_changes_response::Item;
        use bangfu_proto::identity::v1::{WatchPersonChangesRequest, WatchPersonChangesResponse};

        let service = self.peer.service().to_string();
        let kinds: Vec<i32> = self.kinds.iter().map(|kind| *kind as i32).collect();
        let stream = self
            .peer
            .open_stream(|channel| async move {
                IdentityServiceClient::new(channel)
                    .watch_person_changes(WatchPersonChangesRequest {
                        after_cursor: after,
                        start_at_head: false,
                        kinds,
                    })
                    .await
            })
            .await?;
        let items = stream.map(move |answer: Result<WatchPersonChangesResponse, tonic::Status>| {
            let refused = |status| {
                Problem::from(crate::peers::PeerError::Refused {
                    service: service.clone(),
                    status,
                })
            };
            match answer.map(|response| response.item) {
                Ok(Some(Item::Change(change))) => Ok(Followed::Event {
                    cursor: change.cursor.clone(),
                    behind: u64::try_from(change.changes_behind).unwrap_or(0),
                    recorded: change
                        .record_time
                        .as_ref()
                        .and_then(|t| OffsetDateTime::from_unix_timestamp(t.seconds).ok()),
                    event: change,
                }),
                Ok(Some(Item::Heartbeat(beat))) => Ok(Followed::Heartbeat { cursor: beat.cursor }),
                Ok(None) => Err(refused(tonic::Status::unknown(
                    "a feed item with neither a change nor a heartbeat",
                ))),
                Err(status) => Err(refused(status)),
            }
        });
        Ok(Box::pin(items))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use bangfu_proto::identity::v1::ChangeKind;

    #[test]
    fn a_followers_kinds_are_named_as_its_rules_name_them_and_an_unlisted_name_is_caught() {
        assert_eq!(
            change_kinds(&["DIED", "CATEGORY_REVOKED", "EMPLOYMENT_CHANGED"]),
            Some(vec![
                ChangeKind::Died,
                ChangeKind::CategoryRevoked,
                ChangeKind::EmploymentChanged
            ])
        );
        assert_eq!(change_kinds(&["DIED", "DECEASED"]), None);
        assert_eq!(
            change_kinds(&["UNSPECIFIED"]),
            None,
            "identity refuses a watch for no kind"
        );
    }
}
