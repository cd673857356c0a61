//! Where a validation's time goes: one latency histogram per stage of the
//! issuer's payment path (the wait for a crypto worker, opening both
//! envelopes, reserving, staging, the log's group commit, the session
//! writer's, the HTTP handler around it all) and per durable commit of the
//! log and of the session store.
//!
//! Recording is a few relaxed atomic adds, no lock and no allocation, so the
//! histograms stay on in production; `/metrics` renders them and the
//! benchmark prints their percentiles over one phase (a [`TimingsSnapshot`]
//! taken before and after, subtracted).
//!
//! Buckets are fixed: four per octave (each bound 19% above the last) from
//! 8 µs to about 8.4 s, so a percentile read from them is within 19% of
//! the true value, and two snapshots subtract bucket by bucket.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

/// Buckets per doubling of the latency.
const BUCKETS_PER_OCTAVE: u32 = 4;
/// The first bucket's upper bound, in microseconds.
const FIRST_BOUND_MICROS: f64 = 8.0;
/// Bounded buckets; one more counts everything above the last bound.
pub const BUCKETS_N: usize = 81;

/// A stage of the payment path, or a durable commit, that is timed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stage {
    /// A validation's wait in the crypto pool's queue until a worker takes
    /// its opening step.
    PoolWait,
    /// Both RSA-OAEP decryptions (the ValidationRequest envelope, then the
    /// payer's `EncC_1` found inside it) with their decoding.
    Decrypt,
    /// Replay check, the payee's enrollment and the input coins' tags.
    Checks,
    /// Reserving the inputs in their shards.
    Reserve,
    /// Staging: body and expiry checks, minting, the balanced batch, and
    /// new coins' Issuance1 (its OAEP encryption of `K_I`).
    StageBatch,
    /// From handing the batch to the log writer until it is durable.
    LogDurable,
    /// Committing the touched shards and the bookkeeping after the log.
    AfterLog,
    /// Waiting for the ack session's commit once everything else is done
    /// (zero when the session store committed before the log).
    SessionWait,
    /// The whole validation in the issuer, from the gateway's call to its
    /// answer.
    Validation,
    /// The HTTP handler of `POST /v1/validate`: reading and decoding the
    /// body, the validation, encoding the answer.
    HttpHandler,
    /// One durable append of the log (one redb transaction, one fsync),
    /// per group commit.
    LogAppend,
    /// One transaction of the session store (one fsync), per group commit.
    SessionCommit,
}

impl Stage {
    pub const ALL: [Stage; 12] = [
        Stage::PoolWait,
        Stage::Decrypt,
        Stage::Checks,
        Stage::Reserve,
        Stage::StageBatch,
        Stage::LogDurable,
        Stage::AfterLog,
        Stage::SessionWait,
        Stage::Validation,
        Stage::HttpHandler,
        Stage::LogAppend,
        Stage::SessionCommit,
    ];

    /// The label value in `/metrics` and the benchmark's name for it.
    pub fn name(self) -> &'static str {
        match self {
            Stage::PoolWait => "pool_wait",
            Stage::Decrypt => "decrypt",
            Stage::Checks => "checks",
            Stage::Reserve => "reserve",
            Stage::StageBatch => "stage",
            Stage::LogDurable => "log_durable",
            Stage::AfterLog => "after_log",
            Stage::SessionWait => "session_wait",
            Stage::Validation => "validation",
            Stage::HttpHandler => "http_handler",
            Stage::LogAppend => "log_append",
            Stage::SessionCommit => "session_commit",
        }
    }

    fn index(self) -> usize {
        Stage::ALL.iter().position(|s| *s == self).unwrap_or(0)
    }
}

/// The upper bound of bucket `i`, in microseconds.
pub fn bucket_bound_micros(i: usize) -> f64 {
    FIRST_BOUND_MICROS * 2f64.powf(i as f64 / f64::from(BUCKETS_PER_OCTAVE))
}

/// The bucket a latency of `micros` falls in (`BUCKETS_N`: above them all).
fn bucket_of(micros: f64) -> usize {
    if micros <= FIRST_BOUND_MICROS {
        return 0;
    }
    let i = ((micros / FIRST_BOUND_MICROS).log2() * f64::from(BUCKETS_PER_OCTAVE)).ceil();
    // A float at a bound may land one bucket high or low: settle it exactly.
    let mut i = (i.max(0.0) as usize).min(BUCKETS_N);
    while i > 0 && micros <= bucket_bound_micros(i - 1) {
        i -= 1;
    }
    while i < BUCKETS_N && micros > bucket_bound_micros(i) {
        i += 1;
    }
    i
}

/// One stage's histogram.
struct Histogram {
    buckets: [AtomicU64; BUCKETS_N + 1],
    count: AtomicU64,
    sum_micros: AtomicU64,
}

impl Histogram {
    fn new() -> Histogram {
        Histogram {
            buckets: std::array::from_fn(|_| AtomicU64::new(0)),
            count: AtomicU64::new(0),
            sum_micros: AtomicU64::new(0),
        }
    }

    fn record(&self, d: Duration) {
        let micros = d.as_secs_f64() * 1e6;
        self.buckets[bucket_of(micros)].fetch_add(1, Ordering::Relaxed);
        self.count.fetch_add(1, Ordering::Relaxed);
        self.sum_micros.fetch_add(
            u64::try_from(d.as_micros()).unwrap_or(u64::MAX),
            Ordering::Relaxed,
        );
    }

    fn snapshot(&self) -> HistogramSnapshot {
        HistogramSnapshot {
            buckets: self
                .buckets
                .iter()
                .map(|b| b.load(Ordering::Relaxed))
                .collect(),
            count: self.count.load(Ordering::Relaxed),
            sum_micros: self.sum_micros.load(Ordering::Relaxed),
        }
    }
}

/// The histograms of every [`Stage`]. Shared by the issuer's threads.
pub struct StageTimings {
    stages: Vec<Histogram>,
}

impl Default for StageTimings {
    fn default() -> Self {
        StageTimings {
            stages: Stage::ALL.iter().map(|_| Histogram::new()).collect(),
        }
    }
}

impl std::fmt::Debug for StageTimings {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StageTimings").finish_non_exhaustive()
    }
}

impl StageTimings {
    pub fn record(&self, stage: Stage, d: Duration) {
        if let Some(h) = self.stages.get(stage.index()) {
            h.record(d);
        }
    }

    /// Counts so far, to subtract from a later snapshot.
    pub fn snapshot(&self) -> TimingsSnapshot {
        TimingsSnapshot {
            stages: self.stages.iter().map(Histogram::snapshot).collect(),
        }
    }
}

/// One stage's counts at one moment (or between two).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HistogramSnapshot {
    /// Per bucket (not cumulative); the last one is above every bound.
    pub buckets: Vec<u64>,
    pub count: u64,
    pub sum_micros: u64,
}

impl HistogramSnapshot {
    /// The upper bound of the bucket holding the `p` (0..=1) quantile, in
    /// milliseconds (an over-estimate by at most 19%); `None` with no
    /// samples, infinity when it lies above the last bound.
    pub fn percentile_ms(&self, p: f64) -> Option<f64> {
        if self.count == 0 {
            return None;
        }
        let rank = ((p * self.count as f64).ceil() as u64).clamp(1, self.count);
        let mut seen = 0;
        for (i, n) in self.buckets.iter().enumerate() {
            seen += n;
            if seen >= rank {
                return Some(if i < BUCKETS_N {
                    bucket_bound_micros(i) / 1000.0
                } else {
                    f64::INFINITY
                });
            }
        }
        Some(f64::INFINITY)
    }

    /// The mean, in milliseconds; `None` with no samples.
    pub fn mean_ms(&self) -> Option<f64> {
        (self.count > 0).then(|| self.sum_micros as f64 / self.count as f64 / 1000.0)
    }

    fn minus(&self, earlier: &HistogramSnapshot) -> HistogramSnapshot {
        HistogramSnapshot {
            buckets: self
                .buckets
                .iter()
                .zip(&earlier.buckets)
                .map(|(now, then)| now.saturating_sub(*then))
                .collect(),
            count: self.count.saturating_sub(earlier.count),
            sum_micros: self.sum_micros.saturating_sub(earlier.sum_micros),
        }
    }
}

/// Every stage's counts at one moment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TimingsSnapshot {
    stages: Vec<HistogramSnapshot>,
}

impl TimingsSnapshot {
    pub fn stage(&self, stage: Stage) -> &HistogramSnapshot {
        &self.stages[stage.index()]
    }

    /// What was recorded between `earlier` and this snapshot.
    pub fn since(&self, earlier: &TimingsSnapshot) -> TimingsSnapshot {
        TimingsSnapshot {
            stages: self
                .stages
                .iter()
                .zip(&earlier.stages)
                .map(|(now, then)| now.minus(then))
                .collect(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_latency_lands_in_the_first_bucket_whose_bound_holds_it() {
        assert_eq!(bucket_of(0.0), 0);
        assert_eq!(bucket_of(8.0), 0);
        assert_eq!(bucket_of(8.01), 1);
        for i in 0..BUCKETS_N {
            let bound = bucket_bound_micros(i);
            assert_eq!(bucket_of(bound), i, "at bound {i}");
            assert_eq!(bucket_of(bound * 1.001), i + 1, "just above bound {i}");
        }
        assert_eq!(bucket_of(1e12), BUCKETS_N);
    }

    #[test]
    fn percentiles_and_means_come_from_the_recorded_latencies() {
        let t = StageTimings::default();
        for ms in 1..=100u64 {
            t.record(Stage::Decrypt, Duration::from_millis(ms));
        }
        let s = t.snapshot();
        let d = s.stage(Stage::Decrypt);
        assert_eq!(d.count, 100);
        assert_eq!(d.mean_ms(), Some(50.5));
        let p50 = d.percentile_ms(0.5).expect("samples");
        assert!((50.0..=50.0 * 1.19).contains(&p50), "{p50}");
        let p99 = d.percentile_ms(0.99).expect("samples");
        assert!((99.0..=99.0 * 1.19).contains(&p99), "{p99}");
        assert_eq!(s.stage(Stage::Reserve).percentile_ms(0.5), None);
    }

    #[test]
    fn a_later_snapshot_minus_an_earlier_one_holds_only_what_came_between() {
        let t = StageTimings::default();
        t.record(Stage::LogAppend, Duration::from_secs(5));
        let before = t.snapshot();
        t.record(Stage::LogAppend, Duration::from_micros(100));
        let between = t.snapshot().since(&before);
        let h = between.stage(Stage::LogAppend);
        assert_eq!(h.count, 1);
        assert_eq!(h.sum_micros, 100);
        let p = h.percentile_ms(1.0).expect("one sample");
        assert!((0.1..=0.1 * 1.19).contains(&p), "{p}");
    }
}
