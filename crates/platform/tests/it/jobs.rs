//! Scheduled jobs: a round at its time, or sooner when a call wakes it.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use bangfu_platform::jobs::{Job, JobWaker};
use bangfu_platform::server::Shutdown;
use bangfu_platform::testing::TestDatabase;

on_both_backends!(a_woken_job_runs_a_round_before_its_time);

async fn rounds_after(runs: &AtomicUsize, at_least: usize) -> usize {
    for _ in 0..100 {
        if runs.load(Ordering::SeqCst) >= at_least {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    runs.load(Ordering::SeqCst)
}

async fn a_woken_job_runs_a_round_before_its_time(test: TestDatabase) {
    let runs = Arc::new(AtomicUsize::new(0));
    let waker = JobWaker::default();
    let counted = runs.clone();
    let job = Job::new("woken", Duration::from_secs(3600), test.db.clone(), move || {
        let counted = counted.clone();
        async move {
            counted.fetch_add(1, Ordering::SeqCst);
            Ok(())
        }
    })
    .woken_by(&waker);
    let shutdown = Shutdown::new();
    let running = job.spawn(shutdown.clone());
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert_eq!(
        runs.load(Ordering::SeqCst),
        0,
        "nothing runs before its hour unless woken"
    );
    waker.wake();
    assert_eq!(rounds_after(&runs, 1).await, 1, "the wake ran one round");
    waker.wake();
    assert_eq!(rounds_after(&runs, 2).await, 2, "and the next wake another");
    shutdown.trigger();
    running.await.expect("the job ends with the shutdown");
}
