//! Per-subject rate limits for calls that could be used to harvest personal data, such as
//! lookups by citizen ID: a token bucket per subject, refilled continuously. Each replica
//! keeps its own buckets, so with N replicas a subject gets at most N times the limit; the
//! audit log, not this limiter, is the record of who looked up whom.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use crate::error::{ErrorReason, Problem};

#[derive(Debug, Clone, Copy)]
struct Bucket {
    tokens: f64,
    updated: Instant,
}

/// Token buckets by subject.
#[derive(Debug)]
pub struct SubjectRateLimiter {
    buckets: Mutex<HashMap<String, Bucket>>,
    /// `bangfu.ratelimit.refusals{limit}`: by the limit's name, never by subject (a label per
    /// subject would be a series per clerk).
    refusals: opentelemetry::metrics::Counter<u64>,
    name: &'static str,
}

impl Default for SubjectRateLimiter {
    fn default() -> Self {
        Self::new()
    }
}

/// Buckets kept before idle ones are dropped.
const MAX_BUCKETS: usize = 100_000;

impl SubjectRateLimiter {
    pub fn new() -> Self {
        Self::named("subject")
    }

    /// A limiter whose refusals are counted under `name` (e.g. `identity.lookups`). Create it
    /// after telemetry is set up: the counter comes from the meter provider installed then.
    pub fn named(name: &'static str) -> Self {
        Self {
            buckets: Mutex::default(),
            refusals: opentelemetry::global::meter(crate::telemetry::SCOPE)
                .u64_counter("bangfu.ratelimit.refusals")
                .with_description("calls refused by a per-subject rate limit, by limit")
                .with_unit("{call}")
                .build(),
            name,
        }
    }

    /// Takes `cost` calls from `subject`'s bucket of `per_minute`, or refuses with
    /// RESOURCE_EXHAUSTED saying when to retry.
    pub fn check(&self, subject: &str, per_minute: u32, cost: u32, now: Instant) -> Result<(), Problem> {
        let capacity = f64::from(per_minute.max(1));
        let rate = capacity / 60.0;
        let mut buckets = self.buckets.lock().unwrap_or_else(|p| p.into_inner());
        if buckets.len() >= MAX_BUCKETS {
            // A bucket idle for a minute is full again: dropping it changes nothing.
            buckets.retain(|_, b| now.saturating_duration_since(b.updated) < Duration::from_secs(60));
        }
        let bucket = buckets.entry(subject.to_string()).or_insert(Bucket {
            tokens: capacity,
            updated: now,
        });
        let elapsed = now.saturating_duration_since(bucket.updated).as_secs_f64();
        bucket.tokens = (bucket.tokens + elapsed * rate).min(capacity);
        bucket.updated = now;
        let cost = f64::from(cost);
        if bucket.tokens >= cost {
            bucket.tokens -= cost;
            return Ok(());
        }
        let wait = ((cost - bucket.tokens) / rate).ceil().max(1.0) as u64;
        self.refusals
            .add(1, &[opentelemetry::KeyValue::new("limit", self.name)]);
        Err(Problem::new(
            tonic::Code::ResourceExhausted,
            ErrorReason::RateLimited,
            format!("more than {per_minute} per minute; retry in {wait} s"),
            format!("查询过于频繁，请{wait}秒后再试"),
        )
        .with_metadata("retry_after_seconds", wait.to_string()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_subject_gets_its_limit_then_waits_and_others_are_unaffected() {
        let limiter = SubjectRateLimiter::new();
        let start = Instant::now();
        for _ in 0..60 {
            limiter.check("clerk-li", 60, 1, start).expect("within the limit");
        }
        let refused = limiter.check("clerk-li", 60, 1, start).expect_err("61st in the minute");
        assert_eq!(refused.code, tonic::Code::ResourceExhausted);
        assert_eq!(refused.reason, ErrorReason::RateLimited);
        limiter.check("clerk-wang", 60, 1, start).expect("another subject");
        limiter
            .check("clerk-li", 60, 1, start + Duration::from_secs(1))
            .expect("one refilled after a second");
    }

    #[test]
    fn a_batch_costs_as_many_as_it_holds() {
        let limiter = SubjectRateLimiter::new();
        let now = Instant::now();
        limiter.check("subsidy", 1000, 1000, now).expect("a full batch");
        assert!(limiter.check("subsidy", 1000, 1, now).is_err());
        assert!(
            limiter
                .check("subsidy", 1000, 1001, now + Duration::from_secs(3600))
                .is_err(),
            "never more than the bucket"
        );
    }
}
