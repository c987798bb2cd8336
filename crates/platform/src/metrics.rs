//! Gauges of a hosted service's database, read from memory when metrics are collected (a
//! scrape never waits on the database, so it answers during an outage): the pool's connections
//! in use and idle and its maximum, and how far the audit sealer is behind (rows not yet
//! chained, and the age of the oldest), which a background task measures every few seconds.

use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering};
use std::time::Duration;

use opentelemetry::KeyValue;
use opentelemetry::metrics::ObservableGauge;

use crate::db::Database;
use crate::server::Shutdown;

/// How often the unsealed audit rows are counted.
const AUDIT_LAG_INTERVAL: Duration = Duration::from_secs(10);
/// How long that count may take.
const AUDIT_LAG_TIMEOUT: Duration = Duration::from_secs(3);

/// The gauges of one service's database; they report while this value lives.
#[derive(Debug)]
pub struct DatabaseGauges {
    _pool: ObservableGauge<u64>,
    _max: ObservableGauge<u64>,
    _waiting: ObservableGauge<u64>,
    _unsealed: ObservableGauge<u64>,
    _unsealed_age: ObservableGauge<f64>,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for DatabaseGauges {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// The last count of unsealed audit rows; `oldest_us` is 0 when there were none.
#[derive(Debug, Default)]
struct AuditLag {
    rows: AtomicI64,
    oldest_us: AtomicI64,
}

/// Starts the gauges of `service`'s database (inside the runtime).
pub fn watch_database(service: &'static str, db: Database, shutdown: Shutdown) -> DatabaseGauges {
    let meter = opentelemetry::global::meter(crate::telemetry::SCOPE);
    let label = KeyValue::new("service", service);
    let pool = db.pool().clone();
    let pool_gauge = {
        let label = label.clone();
        meter
            .u64_observable_gauge("bangfu.db.pool.connections")
            .with_description("the pool's open connections, by state (in_use, idle)")
            .with_unit("{connection}")
            .with_callback(move |observer| {
                let size = u64::from(pool.size());
                let idle = u64::try_from(pool.num_idle()).unwrap_or(u64::MAX).min(size);
                observer.observe(size - idle, &[label.clone(), KeyValue::new("state", "in_use")]);
                observer.observe(idle, &[label.clone(), KeyValue::new("state", "idle")]);
            })
            .build()
    };
    let waiting = {
        let (label, db) = (label.clone(), db.clone());
        meter
            .u64_observable_gauge("bangfu.db.pool.waiting")
            .with_description("calls waiting for a database connection")
            .with_unit("{call}")
            .with_callback(move |observer| observer.observe(db.waiting(), std::slice::from_ref(&label)))
            .build()
    };
    let max = {
        let label = label.clone();
        let max = u64::from(db.pool().options().get_max_connections());
        meter
            .u64_observable_gauge("bangfu.db.pool.max_connections")
            .with_description("the most connections the pool opens")
            .with_unit("{connection}")
            .with_callback(move |observer| observer.observe(max, std::slice::from_ref(&label)))
            .build()
    };
    let lag = Arc::new(AuditLag::default());
    let unsealed = {
        let (label, lag) = (label.clone(), lag.clone());
        meter
            .u64_observable_gauge("bangfu.audit.unsealed")
            .with_description("audit rows written but not yet chained by the sealer, as last counted")
            .with_unit("{row}")
            .with_callback(move |observer| {
                let rows = u64::try_from(lag.rows.load(Ordering::Relaxed)).unwrap_or(0);
                observer.observe(rows, std::slice::from_ref(&label));
            })
            .build()
    };
    let unsealed_age = {
        let (label, lag) = (label, lag.clone());
        meter
            .f64_observable_gauge("bangfu.audit.oldest_unsealed_age")
            .with_description("seconds since the oldest audit row not yet chained was written; 0 when none")
            .with_unit("s")
            .with_callback(move |observer| {
                let oldest = lag.oldest_us.load(Ordering::Relaxed);
                // Grows between counts, and while the database does not answer: a stalled
                // sealer shows as a rising line, not as the last value seen.
                let age = if oldest == 0 {
                    0.0
                } else {
                    let now = crate::db::to_micros(time::OffsetDateTime::now_utc());
                    (now.saturating_sub(oldest)).max(0) as f64 / 1e6
                };
                observer.observe(age, std::slice::from_ref(&label));
            })
            .build()
    };
    let task = tokio::spawn(count_unsealed(db, lag, shutdown));
    DatabaseGauges {
        _pool: pool_gauge,
        _max: max,
        _waiting: waiting,
        _unsealed: unsealed,
        _unsealed_age: unsealed_age,
        task,
    }
}

/// Counts the unsealed audit rows now and every few seconds until the shutdown. A count that
/// fails keeps the last one (the age keeps growing from it).
async fn count_unsealed(db: Database, lag: Arc<AuditLag>, shutdown: Shutdown) {
    loop {
        let count = crate::audit::unsealed(&db);
        if let Ok(Ok((rows, oldest))) = tokio::time::timeout(AUDIT_LAG_TIMEOUT, count).await {
            lag.rows.store(rows, Ordering::Relaxed);
            lag.oldest_us
                .store(oldest.map(crate::db::to_micros).unwrap_or(0), Ordering::Relaxed);
        }
        tokio::select! {
            () = tokio::time::sleep(AUDIT_LAG_INTERVAL) => {}
            () = shutdown.triggered() => return,
        }
    }
}
