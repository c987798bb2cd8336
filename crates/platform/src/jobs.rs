//! Background jobs a service runs on a schedule (sealing the audit log, audit retention, a
//! monthly check after each month's end), once across replicas: each round takes the job's
//! lease, so one replica runs it while the others skip that round. Jobs are written to be
//! idempotent, so a round repeated after a crash, or by two holders at once, changes nothing
//! twice.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use crate::db::Database;
use crate::error::Problem;
use crate::lease;
use crate::server::Shutdown;

type RunFn = Arc<dyn Fn() -> Pin<Box<dyn Future<Output = Result<(), Problem>> + Send>> + Send + Sync>;

/// A job: `run` every `every`, under the lease `job:<name>` in `db`.
#[derive(Clone)]
pub struct Job {
    name: String,
    every: Duration,
    db: Database,
    run: RunFn,
    wake: JobWaker,
}

/// Starts a job's next round now instead of at its time: a call that leaves work to its job
/// (claims it could not send within its budget) wakes the job rather than leaving the work
/// idle until the next round. A wake while a round runs starts another right after it.
#[derive(Clone, Debug, Default)]
pub struct JobWaker(Arc<tokio::sync::Notify>);

impl JobWaker {
    pub fn wake(&self) {
        self.0.notify_one();
    }
}

impl std::fmt::Debug for Job {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Job")
            .field("name", &self.name)
            .field("every", &self.every)
            .finish_non_exhaustive()
    }
}

impl Job {
    pub fn new<F, Fut>(name: &str, every: Duration, db: Database, run: F) -> Self
    where
        F: Fn() -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Result<(), Problem>> + Send + 'static,
    {
        Self {
            name: name.to_string(),
            every,
            db,
            run: Arc::new(move || Box::pin(run())),
            wake: JobWaker::default(),
        }
    }

    /// The job also runs a round whenever `waker` wakes it.
    pub fn woken_by(mut self, waker: &JobWaker) -> Self {
        self.wake = waker.clone();
        self
    }

    /// Runs one round now if this replica takes the lease; false when another holds it.
    pub async fn run_once(&self) -> Result<bool, Problem> {
        let Some(held) = lease::try_take(&self.db, &format!("job:{}", self.name)).await? else {
            return Ok(false);
        };
        let outcome = (self.run)().await;
        held.release().await;
        outcome.map(|()| true)
    }

    /// Runs a round every `every`, and when woken, until the shutdown; a failed round is
    /// logged and the next one tries again.
    pub fn spawn(self, shutdown: Shutdown) -> tokio::task::JoinHandle<()> {
        tokio::spawn(async move {
            loop {
                tokio::select! {
                    () = tokio::time::sleep(self.every) => {}
                    () = self.wake.0.notified() => {}
                    () = shutdown.triggered() => return,
                }
                if let Err(problem) = self.run_once().await {
                    tracing::warn!(job = %self.name, error = %problem.message, "background job failed; the next round tries again");
                }
            }
        })
    }
}
